//! Lifecycle states, transition rules and trace kinds (spec pod §4).

use orbi_types::pod::{DetachReason, RecoveryMode, SessionState};

use crate::vocab::vocabulary;

vocabulary! {
    /// The state of one attachment: the four wire values plus the internal terminal `detached`.
    pub enum AttachmentState: "attachment state" {
        /// Setup in progress.
        Attaching = "attaching",
        /// Attached on a live session.
        Attached = "attached",
        /// Keepalive lost; waiting for it to come back or for the grace period to end.
        Degraded = "degraded",
        /// Suspended by the host.
        Suspended = "suspended",
        /// Ended by a detachment (terminal).
        Detached = "detached",
    }
}

impl AttachmentState {
    /// Every state except `detached`.
    pub const fn is_live(self) -> bool {
        !matches!(self, AttachmentState::Detached)
    }

    /// The state a newly admitted attachment starts in, for its declared wire state; `None`
    /// for `degraded` and `suspended` (a new attachment cannot start impaired, T3).
    pub const fn initial(declared: SessionState) -> Option<Self> {
        match declared {
            SessionState::Attaching => Some(AttachmentState::Attaching),
            SessionState::Attached => Some(AttachmentState::Attached),
            SessionState::Degraded | SessionState::Suspended => None,
        }
    }
}

vocabulary! {
    /// What an admission or a host event left behind: an attachment state, the per-client
    /// one-shot recovery grant, or (for a bare participant bind) an accepted bind.
    pub enum LifecycleState: "lifecycle state" {
        /// See [`AttachmentState::Attaching`].
        Attaching = "attaching",
        /// See [`AttachmentState::Attached`].
        Attached = "attached",
        /// See [`AttachmentState::Degraded`].
        Degraded = "degraded",
        /// See [`AttachmentState::Suspended`].
        Suspended = "suspended",
        /// See [`AttachmentState::Detached`].
        Detached = "detached",
        /// A recovery was admitted; the next attachment of the client may consume it (T16).
        RecoveryGranted = "recovery-granted",
        /// A bare participant bind was accepted into the session's bind cache.
        Bound = "bound",
    }
}

impl From<AttachmentState> for LifecycleState {
    fn from(state: AttachmentState) -> Self {
        match state {
            AttachmentState::Attaching => LifecycleState::Attaching,
            AttachmentState::Attached => LifecycleState::Attached,
            AttachmentState::Degraded => LifecycleState::Degraded,
            AttachmentState::Suspended => LifecycleState::Suspended,
            AttachmentState::Detached => LifecycleState::Detached,
        }
    }
}

vocabulary! {
    /// Where a recovery grant stands.
    pub enum GrantState: "grant state" {
        /// Admitted and not yet used; expires at its deadline.
        Open = "open",
        /// Used by a new attachment (T17).
        Consumed = "consumed",
        /// The window passed unused (T18).
        Expired = "expired",
    }
}

vocabulary! {
    /// The transition rules of spec pod §4.
    pub enum Rule: "transition rule" {
        /// New attachment admitted as `attaching`.
        T1 = "T1",
        /// New attachment admitted as `attached`.
        T2 = "T2",
        /// Host finished setup, or setup timed out (then with a host detachment).
        T4 = "T4",
        /// Keepalive lost.
        T5 = "T5",
        /// Keepalive restored.
        T6 = "T6",
        /// Grace ended or the session closed: host detachment `session-expired`.
        T7 = "T7",
        /// Host suspended the attachment.
        T8 = "T8",
        /// Host lifted the suspension.
        T9 = "T9",
        /// Participant-originated detachment admitted.
        T10 = "T10",
        /// Host-originated detachment.
        T11 = "T11",
        /// A newer attachment of the same client replaced a degraded one (reconnect path).
        T13 = "T13",
        /// Recovery admitted: a grant opens (never from a sanction the host has not cleared).
        T16 = "T16",
        /// A new attachment consumed the client's grant.
        T17 = "T17",
        /// The grant expired unused.
        T18 = "T18",
    }
}

vocabulary! {
    /// The `event/type` of a trace (P014 skeleton: `trace/id`, `event/type`, `ts`,
    /// `node/self`, `peer`, `detail`).
    pub enum TraceKind: "trace kind" {
        /// A bind was accepted into a session's bind cache.
        BindAccepted = "participant-bind/accepted",
        /// A bind was rejected (identity, session or signature checks).
        BindRejected = "participant-bind/rejected",
        /// An attachment was admitted.
        Attached = "client-instance/attached",
        /// An attachment was ended (participant or host).
        Detached = "client-instance/detached",
        /// A recovery was admitted.
        Recovered = "client-instance/recovered",
        /// A host-internal state change (T4, T5, T6, T8, T9).
        StateChanged = "client-instance/state-changed",
        /// A recovery grant was consumed by an attachment (T17).
        GrantConsumed = "client-instance/recovery-consumed",
        /// A recovery grant expired unused (T18).
        GrantExpired = "client-instance/recovery-expired",
        /// The host cleared the sanction of a `policy` or `operator-action` detachment: its
        /// recovery may now be admitted.
        SanctionCleared = "client-instance/sanction-cleared",
        /// Any other rejection.
        ErrorOccurred = "error/occurred",
    }
}

vocabulary! {
    /// Which of the pod artifacts a document is.
    pub enum ArtifactKind: "artifact kind" {
        /// `participant-bind.v1`, on its own.
        ParticipantBind = "participant-bind",
        /// `client-instance-attachment.v1`.
        Attachment = "client-instance-attachment",
        /// `client-instance-detachment.v1`.
        Detachment = "client-instance-detachment",
        /// `client-instance-recovery.v1`.
        Recovery = "client-instance-recovery",
    }
}

impl ArtifactKind {
    /// The member holding this kind's own id.
    pub const fn id_field(self) -> &'static str {
        match self {
            ArtifactKind::ParticipantBind => "bind/id",
            ArtifactKind::Attachment => "attachment/id",
            ArtifactKind::Detachment => "detachment/id",
            ArtifactKind::Recovery => "recovery/id",
        }
    }
}

/// Who may originate a detachment for this reason (spec pod §4 reason table).
pub const fn is_host_reason(reason: DetachReason) -> bool {
    matches!(
        reason,
        DetachReason::SessionExpired | DetachReason::Policy | DetachReason::OperatorAction
    )
}

/// Whether a detachment for `reason` is a sanction: `policy` and `operator-action` end an
/// attachment on the host's judgement, and no recovery of it is admitted until the host
/// clears it ([`crate::PodEngine::clear_sanction`]); spec pod §4, "once policy clears" and
/// "recovery under operator policy". Judged by reason, whoever made the detachment: one
/// carried over a session for these reasons binds its client the same way (fail closed).
pub const fn is_sanction(reason: DetachReason) -> bool {
    matches!(reason, DetachReason::Policy | DetachReason::OperatorAction)
}

/// Whether a plain new attachment after a detachment for `reason` needs a recovery first
/// (T14 versus T15).
pub const fn needs_recovery(reason: DetachReason) -> bool {
    !matches!(
        reason,
        DetachReason::UserRequest | DetachReason::SessionExpired
    )
}

/// The recovery modes allowed after a detachment for `reason` (the "how to come back" column
/// of spec pod §4; `operator-action` allows resuming and reattaching, our reading of
/// "recovery under operator policy"). After a sanction ([`is_sanction`]) every one of them
/// also waits until the host has cleared it: a state guard, not a mode guard.
pub const fn modes_after(reason: DetachReason) -> &'static [RecoveryMode] {
    use RecoveryMode::*;
    match reason {
        DetachReason::UserRequest => &[ReattachExistingDevice, ReplaceDevice],
        DetachReason::DeviceLoss => &[ReplaceDevice],
        DetachReason::SessionExpired => &[ReattachExistingDevice],
        DetachReason::Policy => &[ResumeAfterSuspension],
        DetachReason::Migration => &[MigrateToNewHost],
        DetachReason::OperatorAction => &[ResumeAfterSuspension, ReattachExistingDevice],
    }
}
