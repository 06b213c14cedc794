//! Why an artifact was rejected: the stable code, the check that failed and a message.

use crate::vocab::vocabulary;

vocabulary! {
    /// A rejection code (spec pod §5). The `E_PROTO_*` and `E_SIG_*` codes are the frozen P014
    /// ones; the `E_POD_*` codes are the spec's recommendation, plus `E_POD_CAPACITY` (ours:
    /// the bounded read model is full of facts it may not evict).
    pub enum RejectionCode: "rejection code" {
        /// Too large, not JSON, not a known artifact, or not the schema's shape.
        ProtoInvalid = "E_PROTO_INVALID",
        /// `schema/v` is a version other than 1.
        ProtoVersion = "E_PROTO_VERSION",
        /// The participant proof is not an ed25519 signature that verifies.
        SigInvalid = "E_SIG_INVALID",
        /// A `did:key` does not decode to an ed25519 public key.
        SigUnknownSigner = "E_SIG_UNKNOWN_SIGNER",
        /// `participant/id` and `participant/key/public` name different keys.
        KeyMismatch = "E_POD_KEY_MISMATCH",
        /// The artifact is addressed to another node.
        WrongNode = "E_POD_WRONG_NODE",
        /// The bind belongs to another session than the one it must be tied to.
        SessionMismatch = "E_POD_SESSION_MISMATCH",
        /// A timestamp is too far in the future of the node clock.
        Clock = "E_POD_CLOCK",
        /// Timestamps are out of order (a bind after its use, a detachment before its attachment).
        TimeOrder = "E_POD_TIME_ORDER",
        /// `pod-user/id` does not map to the bind's participant.
        TenancyUnknown = "E_POD_TENANCY_UNKNOWN",
        /// The declared export/migration flags do not match host policy.
        PolicyMismatch = "E_POD_POLICY_MISMATCH",
        /// A detachment cites an attachment this node does not know.
        UnknownAttachment = "E_POD_UNKNOWN_ATTACHMENT",
        /// The client instance differs from the one on record.
        ClientMismatch = "E_POD_CLIENT_MISMATCH",
        /// The participant differs from the one on record.
        ParticipantMismatch = "E_POD_PARTICIPANT_MISMATCH",
        /// A recovery cites a detachment this node does not know (never seen or evicted).
        UnknownDetachment = "E_POD_UNKNOWN_DETACHMENT",
        /// The recovery mode is not allowed after this detachment.
        ModeNotAllowed = "E_POD_MODE_NOT_ALLOWED",
        /// The same id was admitted before with different content.
        Conflict = "E_POD_CONFLICT",
        /// The same `bind/id` was seen on this session with different content.
        BindConflict = "E_POD_BIND_CONFLICT",
        /// The lifecycle state does not allow this artifact.
        State = "E_POD_STATE",
        /// The client instance already has a live attachment on a live session.
        AlreadyAttached = "E_POD_ALREADY_ATTACHED",
        /// The attachment was already ended by another detachment.
        AlreadyDetached = "E_POD_ALREADY_DETACHED",
        /// The client was detached for a reason that needs a recovery first.
        RecoveryRequired = "E_POD_RECOVERY_REQUIRED",
        /// A `migration` detachment of an attachment that does not allow migration.
        MigrationNotAllowed = "E_POD_MIGRATION_NOT_ALLOWED",
        /// The read model is full and nothing in it may be evicted.
        Capacity = "E_POD_CAPACITY",
    }
}

impl RejectionCode {
    /// The P014 error class this code is reported under in `error/occurred`.
    pub const fn class(self) -> &'static str {
        match self {
            RejectionCode::SigInvalid => "signature/invalid",
            RejectionCode::SigUnknownSigner => "signature/unknown-signer",
            _ => "protocol/invalid-contract",
        }
    }
}

vocabulary! {
    /// The admission check that failed, in spec pod §5 order; `S` is a state guard of §4.
    pub enum Check: "check" {
        /// Size limit.
        V0 = "V0",
        /// Schema gate (and our opaque-id rules).
        V1 = "V1",
        /// `schema/v` is 1.
        V2 = "V2",
        /// Strict `did:key` parse.
        V3 = "V3",
        /// Participant id matches its key; algorithms are ed25519.
        V4 = "V4",
        /// Addressed to this node.
        V5 = "V5",
        /// Attachment, recovery, bind: tied to the live session it arrived on.
        V6a = "V6a",
        /// Detachment: tied to the recorded or a live session.
        V6b = "V6b",
        /// The participant signature verifies.
        V7 = "V7",
        /// Clock skew and time order.
        V8 = "V8",
        /// Tenancy of `pod-user/id`.
        V9 = "V9",
        /// Export and migration flags against host policy.
        V10 = "V10",
        /// Detachment: the attachment is known.
        D1 = "D1",
        /// Detachment: same client and node as the attachment.
        D2 = "D2",
        /// Detachment: same participant as the attachment.
        D3 = "D3",
        /// Recovery: the detachment is known.
        R1 = "R1",
        /// Recovery: same client as the detachment.
        R2 = "R2",
        /// Recovery: same participant as the detachment.
        R3 = "R3",
        /// Recovery: mode guards.
        R4 = "R4",
        /// Idempotency of detachments.
        I1 = "I1",
        /// Idempotency of attachments and recoveries.
        I2 = "I2",
        /// Per-session bind cache.
        I3 = "I3",
        /// A state guard of the lifecycle (spec pod §4).
        S = "S",
    }
}

/// A rejected artifact: what failed, where, and why in words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({check}): {message}")]
pub struct Rejection {
    /// The stable code.
    pub code: RejectionCode,
    /// The check that produced it.
    pub check: Check,
    /// A lowercase explanation naming the offending field or record.
    pub message: String,
}

impl Rejection {
    /// A rejection with this code, check and message.
    pub fn new(code: RejectionCode, check: Check, message: impl Into<String>) -> Self {
        Rejection {
            code,
            check,
            message: message.into(),
        }
    }
}

/// A non-fatal remark about an admitted attachment (spec pod §5 V10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyWarning {
    /// A `pod-client` declares substantive local execution; it is drifting into `hybrid`.
    PodClientWithLocalModels,
    /// The attachment does not offer export (P006 requires it).
    ExportNotOffered,
    /// The attachment does not allow migration away (P006 makes exit constitutional).
    MigrationNotOffered,
}

impl PolicyWarning {
    /// A stable short name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            PolicyWarning::PodClientWithLocalModels => "pod-client-with-local-models",
            PolicyWarning::ExportNotOffered => "export-not-offered",
            PolicyWarning::MigrationNotOffered => "migration-not-offered",
        }
    }
}
