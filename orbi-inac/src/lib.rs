//! The Inter-Node Artifact Channel (INAC) core: `inac-control.v1` frames, the receiver
//! pipeline, authorization, idempotency and storage, with no transport.
//!
//! - [`Frame`]: strict codec and builders for the control frame.
//! - [`Receiver`]: sans-IO decisions. It takes a frame, the node id the transport
//!   authenticated and the current time, and answers with a [`Handled`]: a response
//!   [`Frame`], an [`IncomingBody`] to feed for a stream-mode push, or a [`ServeArtifact`] for
//!   a granted request. It never reads a clock or touches a socket; state lives behind the
//!   [`Store`] and [`Ledger`] traits.
//! - [`KindRegistry`] and [`Acceptor`]: which kinds this node takes and who decides about
//!   them. Unknown kinds are refused, never stored by default.
//! - [`Publisher`] ([`publish`]): artifacts the node serves on `request` without having
//!   received them (an archivist's advertisement), including well-known requests that name
//!   only a schema.
//! - [`quic`] (feature `quic`, on by default): the transport — authenticated QUIC
//!   connections, one stream per exchange, a [`quic::Server`] around a receiver and a
//!   [`quic::Client`] to dial one. The core below never imports it: `cargo build -p orbi-inac
//!   --no-default-features` builds without tokio and quinn.
//! - [`NodeState`] ([`HybridStore`] + [`SqliteLedger`] in one data directory) persists;
//!   [`FsStore`] alone keeps every object as a file; [`MemoryStore`] + [`MemoryLedger`] are for
//!   tests.
//!
//! # A push, inline
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use orbi_inac::{Descriptor, Frame, Handled, KindRegistry, MemoryLedger, MemoryStore,
//!     Receiver, ReceiverConfig, Store};
//! use orbi_types::{KeyPair, inac::Operation};
//!
//! let receiver_key = KeyPair::from_seed(&[1; 32]);
//! let sender = KeyPair::from_seed(&[2; 32]).node_id();
//! let mut config = ReceiverConfig::default();
//! config.allowed_peers.insert(sender.clone());
//! let kinds = KindRegistry::builder().keep("vendor.note.v1", None).build()?;
//! let store = MemoryStore::new();
//! let mut receiver = Receiver::new(receiver_key, config, kinds, store.clone(), MemoryLedger::new());
//!
//! let bytes = br#"{"note":"hello"}"#;
//! let descriptor = Descriptor::of_bytes("vendor.note.v1", "application/json", bytes);
//! let push = Frame::push_inline(&descriptor, bytes).correlation_id("c-1").build()?;
//! let now = UNIX_EPOCH + Duration::from_secs(1_774_726_920);
//! let Handled::Answer(answer) = receiver.handle_bytes(&sender, &push.encode(), now) else {
//!     unreachable!("inline pushes are answered at once")
//! };
//! assert_eq!(answer.operation(), Operation::Ingested);
//! assert_eq!(answer.correlation_id(), Some("c-1"));
//! assert!(store.contains(&descriptor.digest)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A push, streamed
//!
//! The transport evaluates the header completely before reading any body byte, then feeds the
//! body in bounded chunks:
//!
//! ```
//! # use std::time::{Duration, UNIX_EPOCH};
//! # use orbi_inac::{Descriptor, Frame, KindRegistry, MemoryLedger, MemoryStore, Receiver,
//! #     ReceiverConfig};
//! # use orbi_types::{KeyPair, inac::Operation};
//! use orbi_inac::{BodyEnd, Handled};
//! # let sender = KeyPair::from_seed(&[2; 32]).node_id();
//! # let mut config = ReceiverConfig::default();
//! # config.allowed_peers.insert(sender.clone());
//! # let kinds = KindRegistry::builder().keep("vendor.blob.v1", None).build()?;
//! # let mut receiver = Receiver::new(KeyPair::from_seed(&[1; 32]), config, kinds,
//! #     MemoryStore::new(), MemoryLedger::new());
//! # let now = UNIX_EPOCH + Duration::from_secs(1_774_726_920);
//! let body = vec![0u8; 100_000];
//! let descriptor = Descriptor::of_bytes("vendor.blob.v1", "application/octet-stream", &body);
//! let header = Frame::push_stream(&descriptor, "4").build()?;
//! match receiver.handle(&sender, &header, now) {
//!     Handled::ReadBody(mut incoming) => {
//!         for chunk in body.chunks(16 * 1024) {
//!             incoming.write(chunk)?;
//!         }
//!         // Hash check and fsync happen here, outside the receiver.
//!         let completed = incoming.complete(BodyEnd::Finished);
//!         let answer = receiver.finish_push(completed, now);
//!         assert_eq!(answer.operation(), Operation::Ingested);
//!     }
//!     Handled::Answer(refusal) => panic!("refused before the body: {:?}", refusal.response()),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Driving the receiver from a transport
//!
//! Nothing in this crate depends on an async runtime or on QUIC; a transport is a thin adapter:
//!
//! 1. Read one length-prefixed control frame (at most [`MAX_FRAME_BYTES`]) and pass it with
//!    the peer's authenticated node id and the current time to [`Receiver::handle_bytes`].
//! 2. [`Handled::Answer`]: send it and end the exchange. For a stream-mode push
//!    ([`Frame::is_stream_push`]) the header was refused (or the artifact is already held)
//!    before any body byte was read: stop the sender instead of reading.
//! 3. [`Handled::ReadBody`]: read exactly [`IncomingBody::remaining`] bytes in bounded chunks
//!    into [`IncomingBody::write`] (hashing and staging happen there; a failed write means
//!    stop reading), then [`IncomingBody::complete`] with how the stream ended and hand the
//!    result to [`Receiver::finish_push`]. Dropping an [`IncomingBody`] anywhere (cancelled
//!    task, lost connection) removes the staged bytes.
//! 4. [`Handled::Serve`]: send [`ServeArtifact::push_frame`] and, in stream mode, the body
//!    from [`Receiver::store`].
//! 5. [`Handled::NoAnswer`]: a response frame arrived as an initiating one; send nothing.
//!
//! [`Receiver`] is `Send` and takes `&mut self`: share it behind a mutex. Body writes and
//! [`IncomingBody::complete`] (which fsyncs) need no receiver, so a slow body never holds the
//! lock; header evaluation and [`Receiver::finish_push`] are short.
//!
//! # Decisions where the spec leaves room
//!
//! - A passport under `authorization` is always verified, even from an allowlisted peer; the
//!   passport's `capability_id` (not `authorization.mode`) picks the checks. Allowlisted
//!   peers may offer and may push without a passport; with
//!   [`ReceiverConfig::open_offer_intake`] others may offer too.
//! - Invitations are issued lazily: the operator's accept is only a ledger decision (a tool
//!   without the node key can record it), and the next matching offer gets a passport signed
//!   then, valid for [`ReceiverConfig::invitation_ttl_seconds`]. One that lapses unused sends
//!   the next offer back to the operator. Invitations also bind the offered digest.
//! - General and custody passports must come from [`ReceiverConfig::trusted_issuers`] (or
//!   this node) and need a fresh [`RevocationView`]; for passports this node issued, its own
//!   ledger is the revocation view.
//! - Pushes that never delivered a body properly (short, long, interrupted, stalled,
//!   unstageable) are logged but not recorded under their idempotency key: a retry is
//!   evaluated afresh. Nor are pushes refused at their header (peer gate, budgets, size,
//!   passport, kind, payload location): their refusals depend on this node's settings, the
//!   transfer mode or the payload location, which the retry they ask for changes, and a
//!   record written there would replace the key's earlier one. So a key whose only use was
//!   refused at the header is not yet taken (spec §3.4 (c) applies from the first push that
//!   reached the acceptor stage). Every other push outcome is recorded, and terminal ones
//!   are replayed.
//! - **A delivered push is replayed before the passport is checked.** Spec §6 puts the
//!   idempotency replay (step 7) after the passport (step 5), while §3.4 (a) says a retry
//!   gets the recorded outcome without consuming an invitation again. A retry of a push
//!   answered `ingested` or `already-present`, from the same authenticated peer under the
//!   same `idempotency/key` with the same descriptor, gets that answer right after the peer
//!   gate and the budgets: before the size limits, the passport's expiry, revocation, single
//!   use and scope, and the kind. A peer off the allowlist must still show a passport that
//!   binds it (its holder and allowed caller, from this node or a trusted issuer, with a
//!   signature that verifies): the peer gate admits nobody on a passport's mere presence. Those decide whether a
//!   delivery may happen *now*; asked again of one that happened, they turned a lost answer
//!   plus an expired, revoked or used invitation into a permanent refusal of an artifact the
//!   receiver holds. The replay tells the peer only what it was told before, runs no
//!   acceptor and consumes, records or extends nothing (a line in the transfer log). The
//!   peer gate and the budgets still run first: no ledger read for a peer with neither an
//!   allowlist entry nor a passport, none faster than the budgets allow. Keys are scoped by
//!   peer, so no other peer is answered from the record; another descriptor under the key
//!   goes the whole way (and is `malformed` at step 7 unless refused before). Recorded
//!   refusals are still replayed at step 7: a refused push delivered nothing, and its retry
//!   under a lapsed invitation is better told that (it needs a new one) than the old
//!   refusal.
//! - A JSON body (up to [`ReceiverConfig::kind_probe_max_bytes`]) whose top-level `schema`
//!   contradicts its descriptor is `kind-conflict`; a stream header for an artifact already
//!   held is answered `already-present` before the body.
//! - A `request` is served to the node that delivered the artifact and to
//!   [`ReceiverConfig::request_peers`]; anyone else reads `not-authorized` whether or not the
//!   artifact exists. A [`Publisher`] is asked before the held artifacts and decides per
//!   peer itself ([`publish`] has the rules).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod budget;
mod descriptor;
mod frame;
mod kinds;
pub mod ledger;
mod outbound;
pub mod passport;
pub mod publish;
#[cfg(feature = "quic")]
pub mod quic;
mod receiver;
mod slots;
mod state;
pub mod store;
mod verdict;

pub use budget::BudgetRule;
pub use descriptor::Descriptor;
pub use frame::{
    AuthorizationMode, DecodeError, DecodeOptions, Frame, FrameAuthorization, FrameBuilder,
    FrameError, MAX_FRAME_BYTES, OFFER_REF_PREFIX, Payload, RuleViolation, STREAM_REF_PREFIX,
    is_token,
};
pub use kinds::{
    Acceptance, Acceptor, Delivery, KindConflicts, KindKey, KindMatch, KindRegistry,
    KindRegistryBuilder, StoreAcceptor,
};
pub use ledger::{Ledger, LedgerError, MemoryLedger, SqliteLedger, TRANSFER_LOG_ROWS};
pub use outbound::{OutboundAllow, OutboundAllows};
pub use publish::{Published, PublishedQuery, Publisher};
pub use receiver::{
    BodyEnd, BodyError, CompletedBody, Handled, IncomingBody, RECENT_REFUSALS, Receiver,
    ReceiverConfig, RefusalNote, RevocationView, ServeArtifact, Stats,
};
pub use state::{NodeState, StateError};
pub use store::{Durability, FsStore, HybridStore, MemoryStore, Store, StoreError};
pub use verdict::{DEFAULT_DEFER_MS, Deferral, Refusal, Verdict, is_retryable};
