//! Pod-layer artifacts: the participant bind and the client-instance lifecycle.
//!
//! All four are **open** in the seed contracts (`additionalProperties: true`): unknown fields are
//! kept in `extra` and re-serialized. The later upstream freeze closes them; that is a schema
//! profile in `orbi-schema`, not a different type.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::{
    artifact::impl_artifact,
    common::{Object, SchemaV1, SignatureObject, wire_enum},
    ids::{DidKey, NodeId, ParticipantId, PodUserId},
    order::KeyOrder,
    timestamp::Timestamp,
};

/// The relative reference the lifecycle schemas use for their embedded bind.
pub const PARTICIPANT_BIND_REF: &str = "participant-bind.v1.schema.json";

fn participant_bind_ref(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"$ref": PARTICIPANT_BIND_REF})
}

wire_enum! {
    /// The algorithm of the participant key (`participant/key/alg`).
    pub enum KeyAlgorithm: "key algorithm" {
        /// Ed25519.
        Ed25519 = "ed25519",
    }
}

wire_enum! {
    /// The participation profile of an attached client (`profile/type`).
    pub enum ProfileType: "profile type" {
        /// A thin client backed by the pod.
        PodClient = "pod-client",
        /// A client that keeps some local keys, caches, tools or a model.
        Hybrid = "hybrid",
    }
}

wire_enum! {
    /// The operational state an attachment declares (`session/state`). There is no `detached`:
    /// a detachment is its own artifact.
    pub enum SessionState: "session state" {
        /// Setup in progress.
        Attaching = "attaching",
        /// Attached and live.
        Attached = "attached",
        /// Live session impaired (keepalive lost).
        Degraded = "degraded",
        /// Suspended by the host.
        Suspended = "suspended",
    }
}

wire_enum! {
    /// Why a client instance was detached (`detach/reason`); coarse on purpose.
    pub enum DetachReason: "detach reason" {
        /// The participant asked for it.
        UserRequest = "user-request",
        /// The device was lost or compromised.
        DeviceLoss = "device-loss",
        /// The session ended without coming back.
        SessionExpired = "session-expired",
        /// A host policy sanction.
        Policy = "policy",
        /// The participant is leaving for another host.
        Migration = "migration",
        /// The host operator acted.
        OperatorAction = "operator-action",
    }
}

wire_enum! {
    /// How access is being recovered (`recovery/mode`).
    pub enum RecoveryMode: "recovery mode" {
        /// The same device comes back.
        ReattachExistingDevice = "reattach-existing-device",
        /// A new device replaces a lost one.
        ReplaceDevice = "replace-device",
        /// The participant arrives from another host.
        MigrateToNewHost = "migrate-to-new-host",
        /// Access resumes after a suspension.
        ResumeAfterSuspension = "resume-after-suspension",
    }
}

/// `participant-bind.v1`: a participant's signed statement that it speaks through a given
/// node over a given live node-to-node session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "ParticipantBind v1",
    extend("$id" = "urn:orbiplex:schema:participant-bind:v1")
)]
pub struct ParticipantBind {
    /// Contract version, always 1.
    #[serde(rename = "schema/v")]
    pub schema_v: SchemaV1,
    /// Identifier of this bind.
    #[serde(rename = "bind/id")]
    #[schemars(length(min = 1))]
    pub bind_id: String,
    /// When the participant made this statement on the channel.
    #[serde(rename = "bound-at")]
    pub bound_at: Timestamp,
    /// The participant role being authorized on the session.
    #[serde(rename = "participant/id")]
    pub participant_id: ParticipantId,
    /// The node the participant speaks through.
    #[serde(rename = "via/node-id")]
    pub via_node_id: NodeId,
    /// The live node-to-node session (or equivalent channel) this bind is tied to.
    #[serde(rename = "session/id")]
    #[schemars(length(min = 1))]
    pub session_id: String,
    /// Algorithm of the participant key.
    #[serde(rename = "participant/key/alg")]
    pub participant_key_alg: KeyAlgorithm,
    /// The participant's public key, `z…`.
    #[serde(rename = "participant/key/public")]
    pub participant_key_public: DidKey,
    /// The participant's signature over the bind.
    #[serde(rename = "proof/participant-signature")]
    pub participant_signature: SignatureObject,
    /// Reserved: the node's attestation over the same bind.
    #[serde(
        rename = "proof/node-attestation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "SignatureObject")]
    pub node_attestation: Option<SignatureObject>,
    /// Local or federation annotations with no bearing on the bind's meaning.
    #[serde(
        rename = "policy_annotations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Object")]
    pub policy_annotations: Option<Object>,
    /// Fields the contract does not name (the seed shape is open).
    #[serde(flatten)]
    pub extra: Object,
    /// Key order seen at parse time.
    #[serde(skip)]
    pub key_order: KeyOrder,
}
impl_artifact!(ParticipantBind, "participant-bind");

/// `client-instance-attachment.v1`: attaches a client instance to a live session of the
/// serving node, carried by a participant bind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "ClientInstanceAttachment v1",
    extend("$id" = "urn:orbiplex:schema:client-instance-attachment:v1")
)]
pub struct ClientInstanceAttachment {
    /// Contract version, always 1.
    #[serde(rename = "schema/v")]
    pub schema_v: SchemaV1,
    /// Identifier of this attachment.
    #[serde(rename = "attachment/id")]
    #[schemars(length(min = 1))]
    pub attachment_id: String,
    /// When the client instance was attached.
    #[serde(rename = "attached-at")]
    pub attached_at: Timestamp,
    /// Participation profile of the client.
    #[serde(rename = "profile/type")]
    pub profile_type: ProfileType,
    /// The node that hosts the attachment.
    #[serde(rename = "serving-node/id")]
    pub serving_node_id: NodeId,
    /// The hosted user, when the attachment belongs to a pod tenancy.
    #[serde(
        rename = "pod-user/id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "PodUserId")]
    pub pod_user_id: Option<PodUserId>,
    /// The device, install or session lineage being attached.
    #[serde(rename = "client-instance/id")]
    #[schemars(length(min = 1))]
    pub client_instance_id: String,
    /// Whether the client keeps substantive local execution.
    #[serde(
        rename = "models/local?",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "bool")]
    pub models_local: Option<bool>,
    /// The state the attachment declares.
    #[serde(rename = "session/state")]
    pub session_state: SessionState,
    /// Whether the contract claims the user can export.
    #[serde(rename = "export/capable?")]
    pub export_capable: bool,
    /// Whether the contract claims the user may migrate away.
    #[serde(rename = "migration/allowed?")]
    pub migration_allowed: bool,
    /// Who speaks over the session.
    #[serde(rename = "participant-bind")]
    #[schemars(schema_with = "participant_bind_ref")]
    pub participant_bind: ParticipantBind,
    /// Hosting or federation annotations with no bearing on the attachment's meaning.
    #[serde(
        rename = "policy_annotations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Object")]
    pub policy_annotations: Option<Object>,
    /// Fields the contract does not name (the seed shape is open).
    #[serde(flatten)]
    pub extra: Object,
    /// Key order seen at parse time.
    #[serde(skip)]
    pub key_order: KeyOrder,
}
impl_artifact!(ClientInstanceAttachment, "client-instance-attachment");

/// `client-instance-detachment.v1`: ends an attachment, with the bind reused to show whose
/// session context is being ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "ClientInstanceDetachment v1",
    extend("$id" = "urn:orbiplex:schema:client-instance-detachment:v1")
)]
pub struct ClientInstanceDetachment {
    /// Contract version, always 1.
    #[serde(rename = "schema/v")]
    pub schema_v: SchemaV1,
    /// Identifier of this detachment.
    #[serde(rename = "detachment/id")]
    #[schemars(length(min = 1))]
    pub detachment_id: String,
    /// When the client instance was detached or invalidated.
    #[serde(rename = "detached-at")]
    pub detached_at: Timestamp,
    /// The attachment being ended.
    #[serde(rename = "attachment/id")]
    #[schemars(length(min = 1))]
    pub attachment_id: String,
    /// The node that hosted the attachment.
    #[serde(rename = "serving-node/id")]
    pub serving_node_id: NodeId,
    /// The device, install or session lineage being detached.
    #[serde(rename = "client-instance/id")]
    #[schemars(length(min = 1))]
    pub client_instance_id: String,
    /// Why, coarsely.
    #[serde(rename = "detach/reason")]
    pub detach_reason: DetachReason,
    /// Optional free-text note for the operator or the client.
    #[serde(
        rename = "detach/notes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "String", length(min = 1))]
    pub detach_notes: Option<String>,
    /// The bind, reused as session context.
    #[serde(rename = "participant-bind")]
    #[schemars(schema_with = "participant_bind_ref")]
    pub participant_bind: ParticipantBind,
    /// Reserved: the serving node's attestation over the detachment.
    #[serde(
        rename = "proof/node-attestation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "SignatureObject")]
    pub node_attestation: Option<SignatureObject>,
    /// Local or federation annotations with no bearing on the detachment's meaning.
    #[serde(
        rename = "policy_annotations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Object")]
    pub policy_annotations: Option<Object>,
    /// Fields the contract does not name (the seed shape is open).
    #[serde(flatten)]
    pub extra: Object,
    /// Key order seen at parse time.
    #[serde(skip)]
    pub key_order: KeyOrder,
}
impl_artifact!(ClientInstanceDetachment, "client-instance-detachment");

/// `client-instance-recovery.v1`: recovers client access after a detachment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "ClientInstanceRecovery v1",
    extend("$id" = "urn:orbiplex:schema:client-instance-recovery:v1")
)]
pub struct ClientInstanceRecovery {
    /// Contract version, always 1.
    #[serde(rename = "schema/v")]
    pub schema_v: SchemaV1,
    /// Identifier of this recovery.
    #[serde(rename = "recovery/id")]
    #[schemars(length(min = 1))]
    pub recovery_id: String,
    /// When the recovery was accepted.
    #[serde(rename = "recovered-at")]
    pub recovered_at: Timestamp,
    /// The node accepting the recovered access.
    #[serde(rename = "serving-node/id")]
    pub serving_node_id: NodeId,
    /// The client instance being recovered or re-established.
    #[serde(rename = "client-instance/id")]
    #[schemars(length(min = 1))]
    pub client_instance_id: String,
    /// How access is recovered.
    #[serde(rename = "recovery/mode")]
    pub recovery_mode: RecoveryMode,
    /// The detachment (or equivalent termination) being recovered from.
    #[serde(rename = "recovery/from-detachment-id")]
    #[schemars(length(min = 1))]
    pub from_detachment_id: String,
    /// A migration bundle, export token or recovery token used on the way.
    #[serde(
        rename = "recovery/token-ref",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "String", length(min = 1))]
    pub token_ref: Option<String>,
    /// Who is resuming access.
    #[serde(rename = "participant-bind")]
    #[schemars(schema_with = "participant_bind_ref")]
    pub participant_bind: ParticipantBind,
    /// Reserved: the serving node's attestation over the recovery.
    #[serde(
        rename = "proof/node-attestation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "SignatureObject")]
    pub node_attestation: Option<SignatureObject>,
    /// Local or federation annotations with no bearing on the recovery's meaning.
    #[serde(
        rename = "policy_annotations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Object")]
    pub policy_annotations: Option<Object>,
    /// Fields the contract does not name (the seed shape is open).
    #[serde(flatten)]
    pub extra: Object,
    /// Key order seen at parse time.
    #[serde(skip)]
    pub key_order: KeyOrder,
}
impl_artifact!(ClientInstanceRecovery, "client-instance-recovery");

/// The domain tag of the participant-bind signing profile.
pub const PARTICIPANT_BIND_TAG: &str = "participant-bind.v1";

/// Members of a bind that its participant signature does not cover.
pub const BIND_PROOF_FIELDS: [&str; 2] = ["proof/participant-signature", "proof/node-attestation"];

/// The bytes a participant signs for a bind (spec §6.2):
/// `participant-bind.v1 ‖ 0x00 ‖ JCS(bind minus proof/participant-signature and
/// proof/node-attestation)`.
///
/// Pass the bind **as received** (a JSON object): every member other than the two proofs is
/// covered, unknown ones and `policy_annotations` included. Returns `None` if `bind` is not an
/// object.
pub fn bind_signing_input(bind: &serde_json::Value) -> Option<crate::SigningInput> {
    let mut payload = bind.as_object()?.clone();
    for field in BIND_PROOF_FIELDS {
        payload.shift_remove(field);
    }
    crate::SigningInput::tagged(PARTICIPANT_BIND_TAG, &serde_json::Value::Object(payload)).ok()
}

#[cfg(test)]
mod signing_vectors {
    use serde_json::{Value, json};

    use super::*;
    use crate::{KeyPair, Sha256Digest, signing::verify};

    const B1_SIGNATURE: &str =
        "dGH7YsIiguOgGyw-2JYesHmuVNL_T1zGSC6c9FuS_O83nPT1egFZQQKeT6OXnVBo1xKznNUn3CSZFgimmTXkDQ";
    const B1_WITH_ANNOTATION: &str =
        "xXwDIDv9f02C89We9yJGNTvPpeDlt2jsvYxSi-AL4On6fVWROQ6HJ2lK-Jf5Xt9UoKjURvfeu3e5hucfRVHODA";
    const B1_UNTAGGED: &str =
        "EUjDzMCb9fbu5pBDWH4F5S7ytHZKK8Y0s3w-AkAOUmcz8kkFLl7rl89zB_CKzbMsmk6mSlMAnLhp_DtpB4T7Cg";
    const B3_SIGNATURE: &str =
        "A2YsBFPq_ecFL2mMJ8uB0OC0iJXZdwU7IpRBW06-S-CeptC35yKN9FinhCd_r8FIbZEYv3_OxOXNauyv1zk5Bw";

    /// The upstream example bind with participant K2 (secret 32 × 0x2a), unsigned.
    fn b1() -> Value {
        let k2 = "z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn";
        json!({
            "schema/v": 1,
            "bind/id": "pb:01JQPARTBIND001",
            "bound-at": "2026-03-28T19:20:00Z",
            "participant/id": format!("participant:did:key:{k2}"),
            "via/node-id": "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE",
            "session/id": "sess:01JQPARTSESS001",
            "participant/key/alg": "ed25519",
            "participant/key/public": k2,
            "proof/participant-signature": {"alg": "ed25519", "value": "placeholder"}
        })
    }

    #[test]
    fn b1_input_and_signature_byte_for_byte() {
        let input = bind_signing_input(&b1()).unwrap();
        assert_eq!(input.as_bytes().len(), 409);
        assert_eq!(
            Sha256Digest::of(input.as_bytes())
                .bytes()
                .unwrap()
                .map(|b| format!("{b:02x}"))
                .concat(),
            "61209add29c8aa16005f3b2deba1a0e962a2b86cd3d32fc7e97e05028ee26b39"
        );
        let k2 = KeyPair::from_seed(&[0x2a; 32]);
        assert_eq!(k2.sign(&input), B1_SIGNATURE);
        verify(&k2.verifying_key(), &input, B1_SIGNATURE).unwrap();
    }

    #[test]
    fn b1_with_annotation_is_signed_too() {
        let mut bind = b1();
        bind["policy_annotations"] = json!({"note": "x"});
        let k2 = KeyPair::from_seed(&[0x2a; 32]);
        let input = bind_signing_input(&bind).unwrap();
        assert_eq!(k2.sign(&input), B1_WITH_ANNOTATION);
        // S7: annotations added after signing break the signature.
        assert!(verify(&k2.verifying_key(), &input, B1_SIGNATURE).is_err());
    }

    #[test]
    fn untagged_and_tampered_signatures_do_not_verify() {
        let k2 = KeyPair::from_seed(&[0x2a; 32]);
        let input = bind_signing_input(&b1()).unwrap();
        assert!(verify(&k2.verifying_key(), &input, B1_UNTAGGED).is_err());
        let mut payload = b1();
        payload
            .as_object_mut()
            .unwrap()
            .remove("proof/participant-signature");
        let untagged = crate::SigningInput::untagged(&payload).unwrap();
        assert_eq!(k2.sign(&untagged), B1_UNTAGGED);
        let mut changed = b1();
        changed["session/id"] = json!("sess:01JQPARTSESS002");
        let changed_input = bind_signing_input(&changed).unwrap();
        assert!(verify(&k2.verifying_key(), &changed_input, B1_SIGNATURE).is_err());
    }

    #[test]
    fn b3_recovery_bind() {
        let mut bind = b1();
        bind["bind/id"] = json!("pb:01JQPARTBIND003");
        bind["bound-at"] = json!("2026-03-28T20:24:30Z");
        bind["session/id"] = json!("sess:01JQPARTSESS003");
        let input = bind_signing_input(&bind).unwrap();
        assert_eq!(
            Sha256Digest::of(input.as_bytes())
                .bytes()
                .unwrap()
                .map(|b| format!("{b:02x}"))
                .concat(),
            "d7254c8a2d4556c446e0c9d6b548c1a910b14be3f982276c0d30e315ea7c7a12"
        );
        assert_eq!(KeyPair::from_seed(&[0x2a; 32]).sign(&input), B3_SIGNATURE);
    }

    #[test]
    fn proofs_are_excluded_and_order_is_irrelevant() {
        let mut bind = b1();
        bind["proof/node-attestation"] = json!({"alg": "ed25519", "value": "anything"});
        let reordered: Value = serde_json::from_str(
            &serde_json::to_string(&bind)
                .unwrap()
                .replace("\"schema/v\":1,", ""),
        )
        .map(|mut v: Value| {
            v["schema/v"] = json!(1);
            v
        })
        .unwrap();
        assert_eq!(
            bind_signing_input(&reordered).unwrap().as_bytes(),
            bind_signing_input(&b1()).unwrap().as_bytes()
        );
        assert!(bind_signing_input(&json!([])).is_none());
    }
}
