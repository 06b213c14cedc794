//! Host policy: shape profile, recovery policy, tenancy, offered flags, timings and limits.

use std::collections::BTreeMap;

use orbi_schema::Profile;
use orbi_types::{ParticipantId, PodUserId, pod::ProfileType};
use time::Duration;

/// How recoveries may change the client instance (spec pod §7 C2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryPolicy {
    /// Upstream's rule: a recovery names the same client instance as its detachment.
    #[default]
    Strict,
    /// `replace-device` may name a different client instance when the participant matches,
    /// `recovery/token-ref` is present and the new client has no live attachment.
    AllowReplaceDevice,
}

/// What the host offers a profile: an attachment's `export/capable?` and
/// `migration/allowed?` must equal these (V10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Whether the host lets the user export.
    pub export_capable: bool,
    /// Whether the host lets the user migrate away.
    pub migration_allowed: bool,
}

impl Default for Offer {
    /// Both on: P006 requires export and exit.
    fn default() -> Self {
        Offer {
            export_capable: true,
            migration_allowed: true,
        }
    }
}

/// Timings of the lifecycle (spec pod §2.4 and §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How far a `*-at` may be ahead of the node clock, and how much older than its session a
    /// bind may be (the handshake's ±30 s).
    pub clock_skew: Duration,
    /// How long an attachment may stay `attaching` (the pending-`hello` 30 s, T4).
    pub setup_timeout: Duration,
    /// How long a `degraded` attachment waits for its keepalive before the host detaches it
    /// (T7). Our choice: one more keepalive timeout, 90 s.
    pub degraded_grace: Duration,
    /// How long a recovery grant stays open (T16, 10 min).
    pub recovery_window: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            clock_skew: Duration::seconds(30),
            setup_timeout: Duration::seconds(30),
            degraded_grace: Duration::seconds(90),
            recovery_window: Duration::minutes(10),
        }
    }
}

/// The most bytes an admitted artifact may have (V0).
pub const MAX_ARTIFACT_BYTES: usize = 64 * 1024;

/// The most bytes an opaque id may have (spec pod §2.3).
pub const MAX_ID_BYTES: usize = 256;

/// Everything the host decides.
#[derive(Clone, Debug)]
pub struct HostPolicy {
    /// Schema shape: `Frozen` (upstream HEAD, closed; the default, spec pod §3.6) or `Seed`
    /// (the open draft shapes, whose unknown bind members are signed and whose unknown proof
    /// members are ignored).
    pub profile: Profile,
    /// Whether `replace-device` may move to another client instance.
    pub recovery: RecoveryPolicy,
    /// Hosted users: `pod-user:did:key:…` → the participant it belongs to. Empty: every
    /// `pod-user:` id is refused (V9).
    pub tenancy: BTreeMap<PodUserId, ParticipantId>,
    /// What the host offers `pod-client` attachments.
    pub pod_client: Offer,
    /// What the host offers `hybrid` attachments.
    pub hybrid: Offer,
    /// Timings.
    pub timings: Timings,
    /// Places that the sessions of one peer node may hold together (default 25 000, a
    /// quarter of the default read model), so that one client node cannot fill the read
    /// model for the others; the next attachment or recovery is rejected `E_POD_CAPACITY`,
    /// and 0 admits none. A live attachment holds a place, and so does an open recovery grant
    /// (its lineage cannot be evicted while it is open); an attachment that consumes the
    /// node's own grant takes the grant's place. Closed sessions count while their
    /// attachments wait, degraded or suspended, for their clients, or their grants are open
    /// (counted in this process: see [`crate::SessionTable`]). A session whose peer the host
    /// did not name is held to it on its own.
    pub max_live_attachments_per_peer: usize,
    /// Whether a detachment with a host reason (`session-expired`, `policy`,
    /// `operator-action`) that carries the attachment's bind copied verbatim is admitted from a
    /// session (V6b's "host-originated copy"). Default `false`: those reasons are this node's
    /// to give (T11 builds them itself), and such a bind proves nothing about who sends it, so
    /// anyone holding a copy of the attachment could end it, or impose a sanction, from any
    /// session. They are refused `E_POD_SESSION_MISMATCH`. `true` admits them, as spec pod
    /// V6b's letter does (upstream's example detachment is one).
    pub admit_copied_host_detachments: bool,
}

impl Default for HostPolicy {
    fn default() -> Self {
        HostPolicy {
            profile: Profile::Frozen,
            recovery: RecoveryPolicy::default(),
            tenancy: BTreeMap::new(),
            pod_client: Offer::default(),
            hybrid: Offer::default(),
            timings: Timings::default(),
            max_live_attachments_per_peer: 25_000,
            admit_copied_host_detachments: false,
        }
    }
}

impl HostPolicy {
    /// The offer for a profile.
    pub fn offer(&self, profile: ProfileType) -> Offer {
        match profile {
            ProfileType::PodClient => self.pod_client,
            ProfileType::Hybrid => self.hybrid,
        }
    }

    /// The same policy under another schema profile.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// The same policy under another recovery policy.
    pub fn with_recovery(mut self, recovery: RecoveryPolicy) -> Self {
        self.recovery = recovery;
        self
    }
}
