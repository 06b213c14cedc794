//! The durable read model behind a trait: records, atomic commits, bounded size.
//!
//! Two implementations: [`SqliteStore`] (durable, survives restarts) and [`MemoryStore`]
//! (deterministic tests and ephemeral hosts). Both enforce the same rules, so the engine
//! cannot tell them apart:
//!
//! - **one live attachment per (`serving-node/id`, `client-instance/id`)**, one detachment per
//!   attachment, one open recovery grant per client, unique ids, a sanction cleared once and
//!   only a sanction (`policy`, `operator-action`): a commit that would break one fails as a
//!   whole with [`StoreError::Constraint`];
//! - **every commit is atomic**: its record changes and its trace events land together or not
//!   at all;
//! - **bounded size with eviction** ([`StoreLimits`]). When attachments plus recoveries exceed
//!   `max_records`, whole *lineages* are evicted oldest detachment first: the detachment, the
//!   attachment it ended and every recovery citing it. A lineage with an open recovery grant
//!   is kept (which is why the engine counts an open grant in its peer node's share, like a
//!   live attachment), and so is every live attachment. Lineages whose session is dead go first; one
//!   on a still-live session goes only when no other may, so that a peer attaching and
//!   detaching in turn on one open session cannot fill the read model for everyone. One
//!   client's lineages always go oldest first, whatever their sessions: were a newer one to
//!   go first, the older detachment would be the client's latest again, and a recovery of it
//!   would sidestep the newer one's reason (a `policy` end, a `device-loss`). A
//!   replay of such an evicted attachment on its session is then admitted anew, a retried
//!   detachment of it is `E_POD_UNKNOWN_ATTACHMENT` rather than `replayed`, and its bind id
//!   no longer guards against a different bind (I1, I2 and I3 give way under that pressure):
//!   only that session's own peer node can send there, and its participant's bind already
//!   lets it make such attachments. Evicted facts fail closed: a recovery citing an
//!   evicted detachment is `E_POD_UNKNOWN_DETACHMENT` (R1), a detachment citing an evicted
//!   attachment is `E_POD_UNKNOWN_ATTACHMENT` (D1), a replayed evicted attachment fails V6a
//!   once its session is dead, and a client whose evicted last detachment required a recovery
//!   keeps a small tombstone so that a plain attachment stays `E_POD_RECOVERY_REQUIRED`
//!   (the recovery itself can no longer succeed: the client must come back as a new
//!   instance). If nothing may be evicted, a commit that adds an attachment or a recovery
//!   fails with [`StoreError::Full`] (`E_POD_CAPACITY`); detachments always fit, because exit
//!   is never blocked. Bind-cache entries, tombstones and traces are evicted oldest first
//!   beyond their own limits;
//! - **the bind cache (I3) is the bind-cache entries plus the binds attachments carry**: an
//!   attachment record holds its bind's session, id and digest, so a bind that first arrives
//!   with an attachment needs no entry of its own and leaves with the attachment's lineage
//!   (whose session is dead by then, so the bind is worthless: V6a, D1).

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::{Durability, SqliteStore};

use orbi_types::{
    NodeId, ParticipantId, PodUserId, Sha256Digest, Timestamp,
    pod::{DetachReason, ProfileType, RecoveryMode},
};
use time::OffsetDateTime;

use crate::{
    session::SessionTable,
    state::{AttachmentState, GrantState, TraceKind, is_sanction},
    vocab::vocabulary,
};

/// An admitted attachment and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentRec {
    /// `attachment/id`.
    pub attachment_id: String,
    /// `serving-node/id` (always this node).
    pub serving_node_id: NodeId,
    /// `client-instance/id`.
    pub client_instance_id: String,
    /// The bind's `participant/id`.
    pub participant_id: ParticipantId,
    /// `pod-user/id`, if declared.
    pub pod_user_id: Option<PodUserId>,
    /// `profile/type`.
    pub profile: ProfileType,
    /// `export/capable?`.
    pub export_capable: bool,
    /// `migration/allowed?`.
    pub migration_allowed: bool,
    /// `models/local?`, if declared.
    pub models_local: Option<bool>,
    /// The bind's `bind/id`.
    pub bind_id: String,
    /// The bind's `session/id` (the session the attachment arrived on).
    pub bind_session: String,
    /// The bind's `bound-at`.
    pub bound_at: Timestamp,
    /// The bind's identity: equal exactly when the binds' JCS forms, proofs included, are
    /// byte-equal (SHA-256 over the §6.2 signing input and the canonical proof members).
    pub bind_digest: Sha256Digest,
    /// `attached-at`.
    pub attached_at: Timestamp,
    /// When this node admitted it (host clock).
    pub admitted_at: OffsetDateTime,
    /// The current state.
    pub state: AttachmentState,
    /// When the current state began (host clock).
    pub state_since: OffsetDateTime,
    /// The artifact exactly as received.
    pub artifact: Vec<u8>,
}

vocabulary! {
    /// Who made a detachment.
    pub enum DetachmentOrigin: "detachment origin" {
        /// Admitted from a peer (participant- or operator-made, carried over a session).
        Admitted = "admitted",
        /// Built by this node (T11, T4/T7 timeouts, the T13 reconnect path).
        Host = "host",
    }
}

/// An admitted or host-built detachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachmentRec {
    /// `detachment/id`.
    pub detachment_id: String,
    /// The attachment it ended.
    pub attachment_id: String,
    /// `client-instance/id`.
    pub client_instance_id: String,
    /// The bind's `participant/id`.
    pub participant_id: ParticipantId,
    /// `detach/reason`.
    pub reason: DetachReason,
    /// `detached-at`.
    pub detached_at: Timestamp,
    /// When this node admitted or built it (host clock).
    pub admitted_at: OffsetDateTime,
    /// Admitted from a peer or built here.
    pub origin: DetachmentOrigin,
    /// The artifact exactly as received (or as built).
    pub artifact: Vec<u8>,
    /// When the host cleared this detachment's sanction (host clock); `None` while a sanction
    /// ([`DetachmentRec::holds_sanction`]) is in force, and always for other detachments.
    pub sanction_cleared_at: Option<OffsetDateTime>,
    /// The attachment was suspended (T8) when this detachment ended it. The host's suspension
    /// then outlives the attachment as a sanction of its client, whatever the reason: else a
    /// suspended participant could detach (exit is never blocked) and attach again at once.
    pub under_suspension: bool,
}

impl DetachmentRec {
    /// Whether this detachment is a sanction the host has not cleared: no recovery of it is
    /// admitted, and no grant from it is consumed.
    pub fn sanction_in_force(&self) -> bool {
        self.holds_sanction() && self.sanction_cleared_at.is_none()
    }

    /// Whether this detachment holds its client under a sanction until the host clears it:
    /// one for a sanction's reason ([`is_sanction`]), or one that ended a suspended
    /// attachment ([`DetachmentRec::under_suspension`]).
    pub fn holds_sanction(&self) -> bool {
        is_sanction(self.reason) || self.under_suspension
    }

    /// Whether eviction must keep this detachment's lineage: a sanction in force that this
    /// node imposed (evicting it would end it): its own detachment for a sanction's reason,
    /// or any detachment of an attachment it had suspended. A participant's own `policy`
    /// detachment of its client may go, or anyone could fill the read model with them; only
    /// the host suspends, so the detachments under suspension are as few as its suspensions.
    pub fn kept_from_eviction(&self) -> bool {
        self.sanction_in_force() && (self.origin == DetachmentOrigin::Host || self.under_suspension)
    }
}

/// An admitted recovery and its one-shot grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryRec {
    /// `recovery/id`.
    pub recovery_id: String,
    /// `recovery/from-detachment-id`.
    pub from_detachment_id: String,
    /// `client-instance/id` (the client the grant is for).
    pub client_instance_id: String,
    /// The bind's `participant/id`.
    pub participant_id: ParticipantId,
    /// `recovery/mode`.
    pub mode: RecoveryMode,
    /// `recovered-at`.
    pub recovered_at: Timestamp,
    /// `recovery/token-ref`, if any.
    pub token_ref: Option<String>,
    /// When this node admitted it (host clock).
    pub admitted_at: OffsetDateTime,
    /// Where the grant stands.
    pub grant: GrantState,
    /// When an open grant expires (host clock).
    pub grant_expires_at: OffsetDateTime,
    /// The attachment that consumed the grant.
    pub consumed_by: Option<String>,
    /// The artifact exactly as received.
    pub artifact: Vec<u8>,
    /// The session of the recovery's bind: an open grant holds a place in the share of the
    /// peer node that session belongs to, as a live attachment does. Empty for a grant a read
    /// model of layout 4 or earlier holds whose bind could not be read.
    pub bind_session: String,
}

/// One change to the read model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new attachment.
    InsertAttachment(AttachmentRec),
    /// An attachment changes state.
    SetAttachmentState {
        /// Which attachment.
        attachment_id: String,
        /// The new state.
        state: AttachmentState,
        /// When it changed (host clock).
        since: OffsetDateTime,
    },
    /// A new detachment (the attachment's state is changed by its own `SetAttachmentState`).
    InsertDetachment(DetachmentRec),
    /// A new recovery.
    InsertRecovery(RecoveryRec),
    /// A recovery grant is consumed or expires.
    SetGrant {
        /// Which recovery.
        recovery_id: String,
        /// The new grant state.
        grant: GrantState,
        /// The consuming attachment, for `Consumed`.
        consumed_by: Option<String>,
    },
    /// The host clears the sanction of a `policy` or `operator-action` detachment. Refused
    /// (as a constraint) for any other reason, an unknown detachment, or one already cleared.
    ClearSanction {
        /// Which detachment.
        detachment_id: String,
        /// When (host clock).
        at: OffsetDateTime,
    },
    /// A bind enters its session's cache (I3).
    CacheBind {
        /// The bind's `session/id`.
        session_id: String,
        /// The bind's `bind/id`.
        bind_id: String,
        /// The bind's identity: equal exactly when the binds' JCS forms, proofs included, are
        /// byte-equal (SHA-256 over the §6.2 signing input and the canonical proof members).
        digest: Sha256Digest,
    },
}

/// A trace event before it is stored (P014 skeleton; `trace/id` is assigned by the store).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEvent {
    /// `event/type`.
    pub kind: TraceKind,
    /// `ts` (host clock).
    pub ts: OffsetDateTime,
    /// `node/self`.
    pub node: NodeId,
    /// `peer`, when the session's peer node is known.
    pub peer: Option<NodeId>,
    /// `detail`: ids, codes, states; never payload bytes or secrets.
    pub detail: serde_json::Value,
}

impl TraceEvent {
    /// The event as its P014 JSON object, under `trace_id`.
    pub fn to_json(&self, trace_id: &str) -> serde_json::Value {
        serde_json::json!({
            "trace/id": trace_id,
            "event/type": self.kind.as_str(),
            "ts": Timestamp::from_instant(self.ts).map(|ts| ts.as_str().to_owned()),
            "node/self": self.node.as_str(),
            "peer": self.peer.as_ref().map(NodeId::as_str),
            "detail": self.detail,
        })
    }
}

/// A stored trace event.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// `trace/id`, `trace:<sequence>`; never reused within one store.
    pub trace_id: String,
    /// The event.
    pub event: TraceEvent,
}

/// Record changes and the trace events that explain them, committed atomically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Commit {
    /// Changes, applied in order.
    pub changes: Vec<Change>,
    /// Trace events, stored in order.
    pub traces: Vec<TraceEvent>,
}

impl Commit {
    /// Whether the commit adds an attachment or a recovery (and so may be refused when the
    /// read model is full).
    pub fn grows(&self) -> bool {
        self.changes.iter().any(|change| {
            matches!(
                change,
                Change::InsertAttachment(_) | Change::InsertRecovery(_)
            )
        })
    }
}

/// Size limits of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Attachments plus recoveries kept (detachments follow their attachments).
    pub max_records: usize,
    /// Bind-cache entries kept (binds that arrived with an attachment are kept by its record).
    pub max_binds: usize,
    /// Tombstones of evicted clients that needed a recovery.
    pub max_tombstones: usize,
    /// Trace events kept.
    pub max_traces: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_records: 100_000,
            max_binds: 100_000,
            max_tombstones: 100_000,
            max_traces: 100_000,
        }
    }
}

/// Record counts, for status reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Attachments, live or detached.
    pub attachments: usize,
    /// Live attachments.
    pub live: usize,
    /// Detachments.
    pub detachments: usize,
    /// Recoveries.
    pub recoveries: usize,
    /// Open recovery grants.
    pub open_grants: usize,
    /// Bind-cache entries (binds that arrived with an attachment are kept by its record).
    pub binds: usize,
    /// Tombstones.
    pub tombstones: usize,
    /// Trace events.
    pub traces: usize,
}

/// Everything on record about one client instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHistory {
    /// Its attachments, oldest first.
    pub attachments: Vec<AttachmentRec>,
    /// Its detachments, oldest first.
    pub detachments: Vec<DetachmentRec>,
    /// Recoveries for it, oldest first.
    pub recoveries: Vec<RecoveryRec>,
    /// The reason of its evicted last detachment, if a tombstone is kept.
    pub tombstone: Option<DetachReason>,
}

/// Where a client instance stands: everything attaching or recovering it must know about its
/// past, looked up together (see [`Store::client_standing`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStanding {
    /// Its live attachment on the node, if any.
    pub live: Option<AttachmentRec>,
    /// Its most recent detachment, if any.
    pub latest_detachment: Option<DetachmentRec>,
    /// The reason kept after its last lineage was evicted, if it needed recovery.
    pub tombstone: Option<DetachReason>,
    /// Its open recovery grant (expired or not), if any.
    pub open_grant: Option<RecoveryRec>,
}

/// The keys one admission looks up (see [`Store::probe`]); `None` skips that lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Probe<'a> {
    /// An attachment by id (an attachment's own id, or the one a detachment cites).
    pub attachment_id: Option<&'a str>,
    /// A detachment by id (a detachment's own id, or the one a recovery cites).
    pub detachment_id: Option<&'a str>,
    /// A recovery by id.
    pub recovery_id: Option<&'a str>,
    /// A bind-cache entry by (`session/id`, `bind/id`).
    pub bind: Option<(&'a str, &'a str)>,
    /// Where a client stands, by (node, `client-instance/id`).
    pub client: Option<(&'a NodeId, &'a str)>,
}

/// What a [`Probe`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The attachment, if asked for and on record.
    pub attachment: Option<AttachmentRec>,
    /// The detachment, if asked for and on record.
    pub detachment: Option<DetachmentRec>,
    /// The recovery, if asked for and on record.
    pub recovery: Option<RecoveryRec>,
    /// The cached bind digest, if asked for and cached.
    pub bind_digest: Option<Sha256Digest>,
    /// Where the client stands (empty if not asked for).
    pub standing: ClientStanding,
}

/// Why the store failed. The engine never turns these into rejections except `Full`
/// (`E_POD_CAPACITY`); `Constraint` makes it re-run the admission once (another writer won a
/// race) before giving up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or set up.
    #[error("cannot open database {path}: {message}")]
    Open {
        /// The database path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The database belongs to another node.
    #[error("database {path} belongs to node {stored}, not {given}")]
    WrongNode {
        /// The database path.
        path: String,
        /// The node recorded in it.
        stored: String,
        /// The node that tried to use it.
        given: String,
    },
    /// A uniqueness or reference rule of the read model refused the commit.
    #[error("read model constraint refused the commit: {0}")]
    Constraint(String),
    /// Adding the records would exceed `max_records` and nothing may be evicted.
    #[error("read model full: {records} attachments and recoveries, none of them evictable")]
    Full {
        /// The limit that was hit.
        records: usize,
    },
    /// A stored record does not decode.
    #[error("stored {what} is corrupt: {message}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Any other backend failure.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// The read model the engine talks to.
pub trait Store {
    /// The attachment `attachment_id`.
    fn attachment(&self, attachment_id: &str) -> Result<Option<AttachmentRec>, StoreError>;
    /// The live attachment of `client` on `node`, if any.
    fn live_attachment(
        &self,
        node: &NodeId,
        client: &str,
    ) -> Result<Option<AttachmentRec>, StoreError>;
    /// Every live attachment (all sessions), oldest first.
    fn live_attachments(&self) -> Result<Vec<AttachmentRec>, StoreError>;
    /// Live attachments whose bind belongs to `session`.
    fn live_attachments_on(&self, session: &str) -> Result<Vec<AttachmentRec>, StoreError>;
    /// How many live attachments have their bind on `session` (without reading them).
    fn count_live_attachments_on(&self, session: &str) -> Result<usize, StoreError>;
    /// How many open recovery grants, not expired at `now`, have their bind on `session`.
    fn count_open_grants_on(&self, session: &str, now: OffsetDateTime)
    -> Result<usize, StoreError>;
    /// Attachments in `state` since `not_after` or earlier.
    fn attachments_due(
        &self,
        state: AttachmentState,
        not_after: OffsetDateTime,
    ) -> Result<Vec<AttachmentRec>, StoreError>;
    /// The detachment `detachment_id`.
    fn detachment(&self, detachment_id: &str) -> Result<Option<DetachmentRec>, StoreError>;
    /// The detachment that ended `attachment_id`.
    fn detachment_of(&self, attachment_id: &str) -> Result<Option<DetachmentRec>, StoreError>;
    /// The most recent detachment of `client`.
    fn latest_detachment(&self, client: &str) -> Result<Option<DetachmentRec>, StoreError>;
    /// The reason kept for `client` after its last lineage was evicted, if it needed recovery.
    fn tombstone(&self, client: &str) -> Result<Option<DetachReason>, StoreError>;
    /// The recovery `recovery_id`.
    fn recovery(&self, recovery_id: &str) -> Result<Option<RecoveryRec>, StoreError>;
    /// Recoveries citing `detachment_id`.
    fn recoveries_from(&self, detachment_id: &str) -> Result<Vec<RecoveryRec>, StoreError>;
    /// The open grant for `client`, if any (expired or not).
    fn open_grant(&self, client: &str) -> Result<Option<RecoveryRec>, StoreError>;
    /// Open grants expiring at `not_after` or earlier.
    fn grants_due(&self, not_after: OffsetDateTime) -> Result<Vec<RecoveryRec>, StoreError>;
    /// Where `client` stands on `node`: [`Store::live_attachment`],
    /// [`Store::latest_detachment`], [`Store::tombstone`] and [`Store::open_grant`] at once
    /// (a store may answer them in one look; for a client with no past, one miss).
    fn client_standing(&self, node: &NodeId, client: &str) -> Result<ClientStanding, StoreError> {
        Ok(ClientStanding {
            live: self.live_attachment(node, client)?,
            latest_detachment: self.latest_detachment(client)?,
            tombstone: self.tombstone(client)?,
            open_grant: self.open_grant(client)?,
        })
    }
    /// Every lookup `probe` asks for at once (a store may answer them in one look; an
    /// admission of new facts is then one miss).
    fn probe(&self, probe: &Probe<'_>) -> Result<Found, StoreError> {
        Ok(Found {
            attachment: probe
                .attachment_id
                .map(|id| self.attachment(id))
                .transpose()?
                .flatten(),
            detachment: probe
                .detachment_id
                .map(|id| self.detachment(id))
                .transpose()?
                .flatten(),
            recovery: probe
                .recovery_id
                .map(|id| self.recovery(id))
                .transpose()?
                .flatten(),
            bind_digest: probe
                .bind
                .map(|(session, bind_id)| self.bind_digest(session, bind_id))
                .transpose()?
                .flatten(),
            standing: probe
                .client
                .map(|(node, client)| self.client_standing(node, client))
                .transpose()?
                .unwrap_or_default(),
        })
    }
    /// The digest of bind `bind_id` on `session` as cached (I3): its bind-cache entry, or the
    /// bind an attachment on record carries (a new attachment's bind is kept by the
    /// attachment record, not by a separate entry, and leaves with it).
    fn bind_digest(&self, session: &str, bind_id: &str)
    -> Result<Option<Sha256Digest>, StoreError>;
    /// Everything on record about `client`.
    fn client_history(&self, client: &str) -> Result<ClientHistory, StoreError>;
    /// Record counts.
    fn counts(&self) -> Result<Counts, StoreError>;
    /// The most recent `limit` traces, oldest first.
    fn recent_traces(&self, limit: usize) -> Result<Vec<Trace>, StoreError>;
    /// Applies `commit` atomically, then evicts down to the limits, keeping every lineage
    /// whose session is in `live`. A failed commit changes nothing.
    fn commit(&mut self, commit: Commit, live: &SessionTable) -> Result<(), StoreError>;

    /// Starts a group commit: the commits that follow stay atomic one by one (a failed one
    /// changes nothing, later reads see the earlier ones), and become durable together at
    /// [`Store::finish_group`], one disk flush for the whole group.
    fn begin_group(&mut self) -> Result<(), StoreError>;

    /// Makes every commit since [`Store::begin_group`] durable; on failure none of them is.
    fn finish_group(&mut self) -> Result<(), StoreError>;

    /// Discards every commit since [`Store::begin_group`].
    fn abandon_group(&mut self);
}
