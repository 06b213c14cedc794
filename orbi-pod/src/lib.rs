//! The pod layer: participant binds and the client-instance attach, detach and recover
//! engine of a serving node (spec pod).
//!
//! - [`PodEngine`] is **sans-IO**: it judges raw artifact bytes that arrived on a live
//!   session, at a `now` the host passes in, against a [`HostPolicy`] and a read model behind
//!   the [`Store`] trait. It runs every admission check of spec §5 in order (V0–V10, D1–D3,
//!   R1–R4, I1–I3, then the state guards) and the state machine of §4 (T1–T18), including the
//!   host-originated transitions (setup timeout, keepalive loss and return, grace end,
//!   suspension and lift, host detachments it builds and attests itself, grant expiry), and
//!   the host's clearing of a sanction ([`PodEngine::clear_sanction`]).
//! - [`SqliteStore`] is the durable read model (one live attachment per client enforced by a
//!   unique index, every admission atomic with its trace events, bounded with documented
//!   eviction, `synchronous=FULL` unless [`Durability::Normal`] is chosen); [`MemoryStore`] has
//!   the same rules for deterministic tests. [`PodEngine::admit_group`] judges a burst of
//!   artifacts as one group commit: each admission stays atomic, the disk is flushed once.
//! - [`compose`] builds and signs artifacts; [`keyfile`] reads and writes ed25519 key files.
//!
//! ```
//! use orbi_pod::{
//!     HostPolicy, LifecycleState, MemoryStore, PodEngine, Session, Verdict,
//!     compose::{self, AttachmentDraft, BindDraft},
//! };
//! use orbi_types::{KeyPair, Timestamp, pod::{ProfileType, SessionState}};
//!
//! let node = KeyPair::from_seed(&[0x29; 32]);
//! let participant = KeyPair::from_seed(&[0x2a; 32]);
//! let at = |text| Timestamp::parse(text).unwrap();
//!
//! let mut engine = PodEngine::new(node.clone(), HostPolicy::default(), MemoryStore::new())?;
//! engine.open_session("sess:1", Session::default());
//!
//! let bind = compose::sign_bind(&participant, &BindDraft {
//!     bind_id: "pb:1".into(),
//!     bound_at: at("2026-03-28T19:20:00Z"),
//!     via: node.node_id(),
//!     session_id: "sess:1".into(),
//!     policy_annotations: None,
//! })?;
//! let attachment = compose::attachment(&AttachmentDraft {
//!     attachment_id: "attach:1".into(),
//!     attached_at: at("2026-03-28T19:42:00Z"),
//!     profile: ProfileType::PodClient,
//!     serving_node: node.node_id(),
//!     pod_user: None,
//!     client_instance_id: "client:phone".into(),
//!     models_local: None,
//!     state: SessionState::Attached,
//!     export_capable: true,
//!     migration_allowed: true,
//! }, bind);
//! let bytes = serde_json::to_vec(&attachment)?;
//! let now = at("2026-03-28T19:42:05Z").instant();
//!
//! let first = engine.admit(&bytes, "sess:1", now)?;
//! assert_eq!(first.verdict, Verdict::Admitted);
//! assert_eq!(first.state, Some(LifecycleState::Attached));
//! // An identical replay changes nothing.
//! assert_eq!(engine.admit(&bytes, "sess:1", now)?.verdict, Verdict::Replayed);
//! // The same bytes on another session are refused.
//! engine.open_session("sess:2", Session::default());
//! let moved = engine.admit(&bytes, "sess:2", now)?;
//! assert_eq!(moved.code().map(|code| code.as_str()), Some("E_POD_SESSION_MISMATCH"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Choices where the spec is silent or where we differ from its recommendations
//!
//! - **Shape profile** defaults to `frozen` (upstream HEAD, closed), as the spec recommends;
//!   `seed` is the open draft shape (unknown bind members are signed, unknown proof members
//!   ignored). A wrong `schema/v` is `E_PROTO_VERSION` (V2) although the gate fails on it too.
//! - **A bare `participant-bind.v1`** can be admitted too: it runs the checks that apply to a
//!   bind (V0–V8) and enters its session's bind cache (`participant-bind/accepted`).
//! - **V6b**: participant-originated detachments (`user-request`, `device-loss`, `migration`)
//!   need a bind on the session they arrive on, or on another live session of the same peer
//!   node (the spec's "bind expected" column, with §5's "a bind from session A is worthless on
//!   session B"). Host reasons (`session-expired`, `policy`, `operator-action`) are this
//!   node's to give (T11 builds them): one that carries the attachment's bind copied verbatim
//!   is admitted only under [`HostPolicy::admit_copied_host_detachments`] (off by default;
//!   the spec's letter admits it, but a copied bind proves nothing about who sends it, so a
//!   holder of the attachment's bytes could impose a sanction). A detachment of an unknown
//!   attachment is reported by D1 rather than V6b. An identical replay of an admitted
//!   detachment is answered `replayed` on any live session (I1 and upstream T12 before V6b):
//!   it changes nothing, and a client whose answer was lost can only retry on a new session.
//! - **T13**: an attached (or attaching) attachment whose session is no longer live is
//!   treated like a degraded one: a new attachment of the same client host-detaches it with
//!   `session-expired` and is admitted (the reconnect path). Only the participant of the old
//!   attachment may take it: another one is refused `E_POD_PARTICIPANT_MISMATCH` (otherwise
//!   it could end someone else's attachment and receive its signed bind in the host's
//!   detachment), as D3 and R3 require for detachments and recoveries.
//! - **Recovery modes per detach reason** follow the spec's table; `operator-action` allows
//!   `resume-after-suspension` and `reattach-existing-device` (our reading of "recovery under
//!   operator policy").
//! - **A sanction holds until the host clears it.** A `policy` or `operator-action`
//!   detachment is a sanction in force ("`resume-after-suspension` once policy clears",
//!   "recovery under operator policy"): a recovery citing it is `E_POD_STATE` (check `S`,
//!   the message names the detachment) in every mode, until the host calls
//!   [`PodEngine::clear_sanction`]; afterwards the modes above are admitted as usual. We chose
//!   the state-guard code over `E_POD_MODE_NOT_ALLOWED` because the mode is right and only the
//!   moment is wrong: the same recovery is admitted once cleared, and no other mode would be.
//!   A plain attachment stays `E_POD_RECOVERY_REQUIRED` (T15) either way. While a client's
//!   latest detachment is a sanction in force, no recovery naming that client is admitted,
//!   whatever detachment it cites (a `replace-device` may cite another client's), and no open
//!   grant for it is used (one opened before the sanction, or one a layout-2 read model opened
//!   from it). Eviction keeps a sanction in force that this node imposed like a lineage with
//!   an open grant: a full read model refuses new clients (`E_POD_CAPACITY`) rather than
//!   forget it. A participant's own `policy` detachment of its client may be evicted (or any
//!   participant could fill the read model); a client whose sanction was evicted is, like a
//!   plain attachment, told to attach as a new client instance. Clearing is recorded durably with a `client-instance/sanction-cleared` trace
//!   event, is idempotent (a second clearing changes nothing and reports the first one), and
//!   applies to detachments of these two reasons whoever made them: one carried over a session
//!   holds its client too (fail closed). The sanction is client-level, as the spec says: the
//!   same participant attaching a *new* client instance is not blocked by it.
//! - **A suspension outlives its attachment.** T10 lets a participant detach a suspended
//!   attachment (exit is never blocked) and T14 lets a `user-request` exit come back plainly;
//!   together they would let a suspended client lift its own suspension in two steps. So any
//!   detachment of a suspended attachment, whoever makes it and for whatever reason, is a
//!   sanction in force ([`store::DetachmentRec::under_suspension`]): a plain attachment of the
//!   client is `E_POD_STATE` (as it was while the suspension stood, T13), so is a recovery, and
//!   eviction keeps it, until the host clears it like any sanction.
//! - **A detachment is recovered once**: a second recovery while a grant is
//!   open, or after it was consumed, is `E_POD_STATE`; after expiry a new recovery may be
//!   admitted. A recovery while the client is attached is `E_POD_ALREADY_ATTACHED`. Only the
//!   latest detachment of the client it ended can be recovered: an older one was superseded
//!   by a later attachment, and recovering it (`E_POD_STATE`) would sidestep the newer
//!   detachment's reason, such as a `policy` sanction or a `device-loss`.
//! - **T17** keeps the attachment's declared state (`attaching` or `attached`) when it
//!   consumes a grant; a plain attachment also consumes an open grant of the same client and
//!   participant, so a grant is never left behind to be used later.
//! - **Degraded grace** (T7) is 90 s, one more keepalive timeout; the spec names none.
//! - **Host-built detachments** carry this node's `proof/node-attestation` under the §6.2
//!   "later" profile (`client-instance-detachment.v1` tag), and a deterministic
//!   `detach:<ULID>` id, since the engine has no randomness source. Attestations on
//!   *received* artifacts are not interpreted (their semantics are open upstream).
//! - **Rejections are not stored**: they change nothing and are reported through `tracing`
//!   (`participant-bind/rejected` or `error/occurred`, with code, class and check, never the
//!   payload), so junk input costs no disk writes. Admissions and host transitions store their
//!   trace events in the same transaction as their records.
//! - **`E_POD_CAPACITY`** is ours: the bounded read model refuses a new attachment or
//!   recovery when it is full of facts it may not evict (see [`store`]), and one peer node may
//!   hold at most [`HostPolicy::max_live_attachments_per_peer`] live attachments over all its
//!   sessions (default 25 000, a quarter of the default read model), so that one client node
//!   cannot fill it for the others. Its sessions' attachments still count after they drop,
//!   while they wait degraded or suspended, so reconnecting does not reset the count (a
//!   restart of the serving node does: the counts are kept in memory).
//! - **Idempotency without a canonicalization per admission.** I1/I2 "identical" is
//!   byte-equal JCS of the whole artifact. Records keep the artifact exactly as received, so a
//!   replay with the same bytes is identical without canonicalizing, and only a replay with
//!   other bytes (reordered members, other whitespace, or a real change) canonicalizes both
//!   sides. The I3 bind digest is SHA-256 over the length-prefixed §6.2 signing input (which
//!   V7 needs anyway) and the JCS of the proof members alone: equal exactly when the binds'
//!   JCS forms are, unknown and proof members included. One canonicalization of the bind per
//!   admission instead of three passes.
//!
//! # Durability and throughput
//!
//! Each admission commits its records and trace events atomically; the spec asks no more.
//! [`SqliteStore`] defaults to [`Durability::Full`] (`synchronous=FULL`): nothing is
//! acknowledged before it is on disk. [`Durability::Normal`] survives process crashes but not
//! power loss, and a lost detachment would not fail closed (a `device-loss` exit that required
//! a recovery would come back as an orphan and end as `session-expired`), so it stays opt-in.
//! What makes `Full` affordable is [`PodEngine::admit_group`]: a burst of admissions is judged
//! in one write transaction, each admission still atomic (a failed one is undone by rolling the
//! group back and applying the ones before it again), and the disk is flushed once for the
//! group before any outcome is returned. `docs/benchmarks.md` (P4) has the figures.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checks;
pub mod code;
pub mod compose;
mod engine;
mod host;
pub mod keyfile;
pub mod policy;
pub mod session;
pub mod state;
pub mod store;
mod vocab;

pub use code::{Check, PolicyWarning, Rejection, RejectionCode};
pub use engine::{Admission, EngineError, PodEngine, RECOUNT_BACKOFF, Transition, Verdict};
pub use host::{SanctionCleared, TickReport, TimerFailure};
pub use policy::{HostPolicy, Offer, RecoveryPolicy, Timings};
pub use session::{Session, SessionTable};
pub use state::{ArtifactKind, AttachmentState, GrantState, LifecycleState, Rule, TraceKind};
pub use store::{Durability, MemoryStore, SqliteStore, Store, StoreError, StoreLimits};
