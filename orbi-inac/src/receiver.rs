//! The sans-IO [`Receiver`]: takes a frame, the authenticated peer and the time, consults its
//! state, and returns what to do. It never touches a socket or reads a clock.
//!
//! Processing order for an initiating frame (spec §6): parse → peer gate → budgets → replay
//! of a delivered push (`ingested` / `already-present` recorded under the same peer, key and
//! descriptor) → size limits → passport → kind → idempotency (a key reused for another
//! artifact, a terminal refusal replayed) → bytes (size + sha256, before any acceptor) →
//! acceptor → ledger. The crate docs say why a delivered outcome is replayed before step 4.
//! A stream-mode push stops after the header stage with
//! [`Handled::ReadBody`]; the caller feeds the body into the [`IncomingBody`], completes it
//! (length and digest check, fsync: no receiver needed) and calls [`Receiver::finish_push`],
//! which runs the acceptor and the ledger.

mod authorize;
mod body;
mod offer;
mod push;
mod request;

use std::{
    collections::{BTreeSet, VecDeque},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use orbi_types::{KeyPair, NodeId, ParticipantId, inac::Operation, inac::RefusalCode};

use body::BodySlots;
pub use body::{BodyEnd, BodyError, CompletedBody, IncomingBody};
pub use request::ServeArtifact;

use crate::{
    DecodeOptions, Descriptor, Frame, KindRegistry, Publisher, Refusal, Verdict,
    budget::{BudgetRule, Budgets},
    ledger::{Ledger, LedgerEntry, LedgerError, OfferRecord, TransferRecord},
    store::Store,
    verdict::bounded_message,
};

/// How many refusals [`Receiver::recent_refusals`] keeps (spec §7).
pub const RECENT_REFUSALS: usize = 16;

/// The receiver's policy. [`ReceiverConfig::default`] is the spec's defaults and denies
/// everything: no allowed peers, no trusted issuers, no budgets, no open offer intake.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// Largest inline payload, decoded (`inac.inline_max_bytes`, default 65536).
    pub inline_max_bytes: u64,
    /// Largest artifact (`inac.max_artifact_size_bytes`, default 1 GiB).
    pub max_artifact_size_bytes: u64,
    /// `inbound_allowed_peers`: these peers may offer, and may push without a passport. Empty
    /// means deny all.
    pub allowed_peers: BTreeSet<NodeId>,
    /// Let peers outside `allowed_peers` offer (budgets and the pending cap still apply).
    pub open_offer_intake: bool,
    /// Peers that may `request` any held artifact. The node that delivered an artifact may
    /// always request that artifact back.
    pub request_peers: BTreeSet<NodeId>,
    /// `inbound_budgets`.
    pub budgets: Vec<BudgetRule>,
    /// Issuers whose general and custody passports this node honours (its own key always is).
    pub trusted_issuers: BTreeSet<ParticipantId>,
    /// Lifetime of the invitations this node issues (default 3600 s).
    pub invitation_ttl_seconds: u64,
    /// Pending offers per peer before `defer` + `quota-exceeded` (default 128).
    pub pending_offers_per_peer: u64,
    /// Pending offers from all peers together (default 4096): with open intake, anyone can
    /// mint node keys, so the per-peer cap alone does not bound the table.
    pub pending_offers_total: u64,
    /// `retry/after-ms` on a deferred offer (default 60 000).
    pub offer_retry_after_ms: u64,
    /// Lifetime assumed for a passport with `expires_at: null` (default 86 400 s).
    pub passport_max_ttl_seconds: u64,
    /// Local `T_max`: oldest acceptable revocation view (default 300 s).
    pub revocation_max_staleness_seconds: u64,
    /// Tolerated clock skew for a passport's `issued_at` (default 300 s).
    pub clock_skew_seconds: u64,
    /// JSON bodies up to this size are checked for a `schema` member that contradicts the
    /// descriptor (`kind-conflict`); 0 disables the check (default 1 MiB).
    pub kind_probe_max_bytes: u64,
    /// Stream-mode pushes one peer may have in their body stage at once (default 4); the
    /// next is refused `rate-limited` before its body. 0 refuses every stream push
    /// (`policy-denied`, no retry invited).
    pub stream_pushes_per_peer: usize,
    /// `retry/after-ms` on a push refused for [`ReceiverConfig::stream_pushes_per_peer`]
    /// (default 1000).
    pub stream_push_retry_after_ms: u64,
    /// Artifacts served in stream mode to one peer at once (default 4): serving holds a
    /// reading thread and buffers until the requester has taken the body, so a requester that
    /// asks for many and reads none is refused `rate-limited` (with
    /// [`ReceiverConfig::stream_push_retry_after_ms`]) instead. 0 serves none in stream mode
    /// (`policy-denied`, no retry invited).
    pub stream_serves_per_peer: usize,
    /// How frames are decoded.
    pub decode: DecodeOptions,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            inline_max_bytes: 65_536,
            max_artifact_size_bytes: orbi_types::inac::MAX_ARTIFACT_SIZE_BYTES,
            allowed_peers: BTreeSet::new(),
            open_offer_intake: false,
            request_peers: BTreeSet::new(),
            budgets: Vec::new(),
            trusted_issuers: BTreeSet::new(),
            invitation_ttl_seconds: 3600,
            pending_offers_per_peer: 128,
            pending_offers_total: 4096,
            offer_retry_after_ms: 60_000,
            passport_max_ttl_seconds: 86_400,
            revocation_max_staleness_seconds: 300,
            clock_skew_seconds: 300,
            kind_probe_max_bytes: 1024 * 1024,
            stream_pushes_per_peer: 4,
            stream_push_retry_after_ms: 1000,
            stream_serves_per_peer: 4,
            decode: DecodeOptions::default(),
        }
    }
}

/// A snapshot of revoked passport ids from the issuers' revocation source.
///
/// Passports issued by other nodes need one that is fresh (no older than the tighter of the
/// profile's `max_revocation_staleness_seconds` and [`ReceiverConfig::revocation_max_staleness_seconds`]);
/// without it they are refused (`not-authorized`, fail closed). Passports this node issued are
/// checked against its own ledger, which is always current.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationView {
    /// When the snapshot was taken.
    pub as_of: SystemTime,
    /// The revoked `passport_id`s.
    pub revoked: BTreeSet<String>,
}

/// What the caller must do after [`Receiver::handle`].
#[derive(Debug)]
pub enum Handled {
    /// Send this answer and end the exchange. For a stream-mode push header this is a
    /// refusal or `already-present` decided before the body: stop the sender
    /// (`STOP_SENDING`) instead of reading it.
    Answer(Frame),
    /// A stream-mode push was admitted to the body stage: read exactly
    /// [`IncomingBody::remaining`] bytes into it, then [`IncomingBody::complete`] it and call
    /// [`Receiver::finish_push`].
    ReadBody(IncomingBody),
    /// A `request` was granted: send [`ServeArtifact::push_frame`] (and, in stream mode, the
    /// body from [`Receiver::store`]).
    Serve(ServeArtifact),
    /// The frame was a response where an initiating frame was expected: nothing to send.
    NoAnswer,
}

/// One refusal for the status surface: no payloads, no passports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusalNote {
    /// When, Unix milliseconds.
    pub at_ms: u64,
    /// Who.
    pub peer: NodeId,
    /// The initiating operation, when known.
    pub operation: Option<Operation>,
    /// The code.
    pub code: RefusalCode,
}

/// Ephemeral counters (reset on restart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Initiating frames handled.
    pub frames: u64,
    /// Pushes answered `ingested`.
    pub ingested: u64,
    /// Pushes answered `already-present`.
    pub already_present: u64,
    /// Frames refused, declined or deferred.
    pub refused: u64,
    /// Of those, refused as `malformed`.
    pub malformed: u64,
}

/// What one exchange is about, for the ledger and the answer.
#[derive(Clone, Debug)]
pub(crate) struct Exchange {
    pub peer: NodeId,
    pub operation: Option<Operation>,
    pub correlation_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub descriptor: Option<Descriptor>,
}

impl Exchange {
    fn of(peer: &NodeId, frame: &Frame) -> Self {
        Exchange {
            peer: peer.clone(),
            operation: Some(frame.operation()),
            correlation_id: frame.correlation_id().map(str::to_owned),
            idempotency_key: frame.idempotency_key().map(str::to_owned),
            descriptor: frame.descriptor(),
        }
    }
}

/// The INAC receiver: policy, kinds, storage and ledger, driven by frames.
pub struct Receiver {
    identity: KeyPair,
    config: ReceiverConfig,
    kinds: KindRegistry,
    store: Box<dyn Store>,
    ledger: Box<dyn Ledger>,
    budgets: Budgets,
    revocations: Option<RevocationView>,
    stats: Stats,
    recent_refusals: VecDeque<RefusalNote>,
    bodies: BodySlots,
    /// Stream-mode serves per peer ([`ReceiverConfig::stream_serves_per_peer`]).
    serves: crate::slots::PeerSlots,
    publisher: Option<Arc<dyn Publisher>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("node", &self.identity.node_id())
            .field("kinds", &self.kinds)
            .field("publisher", &self.publisher.is_some())
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub(crate) fn unix_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Receiver {
    /// A receiver for the node whose key is `identity` (it signs the invitations).
    pub fn new(
        identity: KeyPair,
        config: ReceiverConfig,
        kinds: KindRegistry,
        store: impl Store + 'static,
        ledger: impl Ledger + 'static,
    ) -> Self {
        let budgets = Budgets::new(config.budgets.clone());
        Receiver {
            identity,
            config,
            kinds,
            store: Box::new(store),
            ledger: Box::new(ledger),
            budgets,
            revocations: None,
            stats: Stats::default(),
            recent_refusals: VecDeque::with_capacity(RECENT_REFUSALS),
            bodies: BodySlots::default(),
            serves: crate::slots::PeerSlots::default(),
            publisher: None,
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// The policy in force.
    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// The kinds this node accepts.
    pub fn kinds(&self) -> &KindRegistry {
        &self.kinds
    }

    /// The content-addressed store (the transport reads served bodies from it).
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The ledger (read access for status and operator tools).
    pub fn ledger(&self) -> &dyn Ledger {
        self.ledger.as_ref()
    }

    /// Counts an answer the transport withdrew after its group failed to commit: the peer
    /// was told a retryable refusal instead of `was` (`ingested`, `already-present`, or the
    /// `accept` of an offer, which was deferred).
    #[cfg(feature = "quic")]
    pub(crate) fn count_withdrawn(&mut self, was: Operation) {
        match was {
            Operation::Ingested => self.stats.ingested = self.stats.ingested.saturating_sub(1),
            Operation::AlreadyPresent => {
                self.stats.already_present = self.stats.already_present.saturating_sub(1);
            }
            _ => {}
        }
        self.stats.refused += 1;
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The last [`RECENT_REFUSALS`] refusals, oldest first.
    pub fn recent_refusals(&self) -> impl Iterator<Item = &RefusalNote> {
        self.recent_refusals.iter()
    }

    /// Replaces the revocation snapshot for passports issued by other nodes.
    pub fn set_revocation_view(&mut self, view: Option<RevocationView>) {
        self.revocations = view;
    }

    /// Sets (or, with `None`, removes) the [`Publisher`] whose artifacts `request`s are served
    /// before the held ones; [`crate::publish`] has the rules.
    pub fn set_publisher(&mut self, publisher: Option<Arc<dyn Publisher>>) {
        self.publisher = publisher;
    }

    /// Every offer, oldest first.
    pub fn offers(&self) -> Result<Vec<OfferRecord>, LedgerError> {
        self.ledger.offers()
    }

    /// The operator accepts offer `id`: the next matching offer from that peer is answered
    /// `accept` with a fresh invitation. Accepting twice issues nothing new.
    pub fn accept_offer(&mut self, id: u64, now: SystemTime) -> Result<OfferRecord, LedgerError> {
        self.ledger.decide_offer(id, true, unix_ms(now))
    }

    /// The operator rejects offer `id`: the next matching offer is declined `policy-denied`.
    pub fn reject_offer(&mut self, id: u64, now: SystemTime) -> Result<OfferRecord, LedgerError> {
        self.ledger.decide_offer(id, false, unix_ms(now))
    }

    /// Revokes a passport (an invitation this node issued, or any other) durably.
    pub fn revoke_passport(
        &mut self,
        passport_id: &str,
        now: SystemTime,
    ) -> Result<(), LedgerError> {
        self.ledger.revoke(passport_id, unix_ms(now))
    }

    /// Decodes and handles one control frame from `peer`, the node id the transport
    /// authenticated. Undecodable frames are answered (`malformed`, or `payload-too-large` /
    /// `digest-mismatch` where the spec pins those) and logged.
    pub fn handle_bytes(&mut self, peer: &NodeId, bytes: &[u8], now: SystemTime) -> Handled {
        self.handle_decoded(peer, Frame::decode_with(bytes, self.config.decode), now)
    }

    /// Like [`Receiver::handle_bytes`] for a frame the caller decoded itself with
    /// [`ReceiverConfig::decode`] (a transport decodes on its own threads, so that the
    /// receiver only decides).
    pub fn handle_decoded(
        &mut self,
        peer: &NodeId,
        decoded: Result<Frame, crate::DecodeError>,
        now: SystemTime,
    ) -> Handled {
        match decoded {
            Ok(frame) => self.handle(peer, &frame, now),
            Err(error) => {
                if error.operation.is_some_and(|op| !op.is_initiating()) {
                    return Handled::NoAnswer;
                }
                let exchange = Exchange {
                    peer: peer.clone(),
                    operation: error.operation,
                    correlation_id: error.correlation_id.clone(),
                    idempotency_key: None,
                    descriptor: None,
                };
                let operation = error.operation.unwrap_or(Operation::Push);
                let verdict = Verdict::refusing(operation, error.refusal());
                Handled::Answer(self.conclude(
                    &exchange,
                    verdict,
                    LedgerEntry::default(),
                    unix_ms(now),
                ))
            }
        }
    }

    /// Answers an initiating frame the transport could not read whole (e.g. a length prefix
    /// over [`crate::MAX_FRAME_BYTES`]) with `refusal`, logged like any other decision. The
    /// frame's operation is unknown, so the answer is a `refused`.
    pub fn refuse_unread(&mut self, peer: &NodeId, refusal: Refusal, now: SystemTime) -> Frame {
        let exchange = Exchange {
            peer: peer.clone(),
            operation: None,
            correlation_id: None,
            idempotency_key: None,
            descriptor: None,
        };
        let verdict = Verdict::Refuse(refusal);
        self.conclude(&exchange, verdict, LedgerEntry::default(), unix_ms(now))
    }

    /// Stream-mode pushes from `peer` now in their body stage.
    pub fn bodies_in_flight(&self, peer: &NodeId) -> usize {
        self.bodies.count(peer)
    }

    /// Artifacts being served to `peer` in stream mode (each [`ServeArtifact`] of a stream
    /// serve holds its place until dropped).
    pub fn serves_in_flight(&self, peer: &NodeId) -> usize {
        self.serves.count(peer)
    }

    /// Handles one decoded frame from `peer`.
    pub fn handle(&mut self, peer: &NodeId, frame: &Frame, now: SystemTime) -> Handled {
        let now_ms = unix_ms(now);
        match frame.operation() {
            Operation::Offer => Handled::Answer(self.handle_offer(peer, frame, now_ms)),
            Operation::Push => self.handle_push(peer, frame, now_ms),
            Operation::Request => self.handle_request(peer, frame, now_ms),
            _ => Handled::NoAnswer,
        }
    }

    /// Starts a group of decisions whose ledger writes become durable together at
    /// [`Receiver::commit_group`] (see [`Ledger::begin_group`]). A transport that decides many
    /// frames at once groups them and sends no answer before the commit returns. If the
    /// group cannot start, each decision is committed on its own as usual.
    pub fn begin_group(&mut self) {
        if let Err(error) = self.ledger.begin_group() {
            tracing::warn!(%error, "cannot start a group; committing decisions one by one");
        }
    }

    /// Commits the group started by [`Receiver::begin_group`]. On error nothing the group
    /// decided is durable: answers that report success must not be sent.
    pub fn commit_group(&mut self) -> Result<(), LedgerError> {
        self.ledger.commit_group()
    }

    /// Lets group commits return before they reach the disk (see [`Ledger::defer_sync`]): a
    /// transport that sends no answer of a group before the returned handle has synced keeps
    /// every answer durable while the receiver goes on deciding. `None`: nothing to defer.
    pub fn defer_sync(&mut self) -> Result<Option<crate::ledger::SyncHandle>, LedgerError> {
        self.ledger.defer_sync()
    }

    /// Finishes a stream-mode push whose body stage ended ([`IncomingBody::complete`]): runs
    /// the acceptor on verified bytes and writes the ledger. The returned answer is sent when
    /// the stream can still carry it (not after [`BodyEnd::Interrupted`]). Staged bytes never
    /// survive a failure.
    pub fn finish_push(&mut self, body: CompletedBody, now: SystemTime) -> Frame {
        self.finish_body(body, unix_ms(now))
    }

    /// [`Receiver::conclude`] for a refusal that changes nothing else.
    fn refuse(&mut self, exchange: &Exchange, refusal: Refusal, now_ms: u64) -> Frame {
        self.conclude(
            exchange,
            Verdict::Refuse(refusal),
            LedgerEntry::default(),
            now_ms,
        )
    }

    /// Logs the decision with its side effects, updates the counters and builds the answer.
    /// If the ledger cannot record a success, the answer becomes `handler-unavailable`: the
    /// sender retries and nothing is half-admitted.
    fn conclude(
        &mut self,
        exchange: &Exchange,
        verdict: Verdict,
        mut effects: LedgerEntry,
        now_ms: u64,
    ) -> Frame {
        // Messages can quote peer-chosen text (ids, refs); the log keeps what the answer keeps.
        let note = match &verdict {
            Verdict::Decline(refusal) | Verdict::Refuse(refusal) => {
                bounded_message(refusal.message())
            }
            Verdict::Defer(deferral) => bounded_message(&deferral.message),
            _ => String::new(),
        };
        effects.transfer = Some(TransferRecord {
            at_ms: now_ms,
            peer: exchange.peer.clone(),
            operation: exchange.operation,
            correlation_id: exchange.correlation_id.clone(),
            idempotency_key: exchange.idempotency_key.clone(),
            descriptor: exchange.descriptor.as_ref().map(logged_descriptor),
            admission_id: exchange
                .descriptor
                .as_ref()
                .filter(|_| exchange.operation == Some(Operation::Push))
                .map(|d| {
                    crate::ledger::admission_id(
                        &exchange.peer,
                        exchange.idempotency_key.as_deref(),
                        &d.digest,
                        &d.schema,
                    )
                }),
            answer: verdict.operation(),
            refusal_code: verdict.refusal_code(),
            note,
        });
        let verdict = match self.ledger.record(&effects) {
            Ok(()) => verdict,
            Err(error) => {
                tracing::error!(%error, peer = %exchange.peer, "ledger write failed");
                if verdict.is_delivered() || matches!(verdict, Verdict::Accept { .. }) {
                    let refusal =
                        Refusal::handler_unavailable("the receiver's ledger is unavailable");
                    Verdict::refusing(exchange.operation.unwrap_or(Operation::Push), refusal)
                } else {
                    verdict
                }
            }
        };
        self.stats.frames += 1;
        match &verdict {
            Verdict::Ingested => self.stats.ingested += 1,
            Verdict::AlreadyPresent => self.stats.already_present += 1,
            Verdict::Accept { .. } => {}
            _ => {
                self.stats.refused += 1;
                if let Some(code) = verdict.refusal_code() {
                    if code == RefusalCode::Malformed {
                        self.stats.malformed += 1;
                    }
                    if self.recent_refusals.len() == RECENT_REFUSALS {
                        self.recent_refusals.pop_front();
                    }
                    self.recent_refusals.push_back(RefusalNote {
                        at_ms: now_ms,
                        peer: exchange.peer.clone(),
                        operation: exchange.operation,
                        code,
                    });
                }
            }
        }
        tracing::debug!(
            peer = %exchange.peer,
            operation = ?exchange.operation,
            answer = %verdict.operation(),
            code = ?verdict.refusal_code(),
            "inac decision"
        );
        Frame::answer(exchange.correlation_id.as_deref(), &verdict)
    }

    /// A refusal from the ledger itself: fail closed, but let the sender retry.
    fn ledger_unavailable(error: &LedgerError) -> Refusal {
        tracing::error!(%error, "ledger read failed");
        Refusal::handler_unavailable("the receiver's ledger is unavailable")
    }

    fn is_own_issuer(&self, issuer: &ParticipantId) -> bool {
        *issuer == self.identity.participant_id()
    }

    /// Whether passports of `issuer` may authorize anything here: this node, or an issuer
    /// the operator trusts.
    fn trusts_issuer(&self, issuer: &ParticipantId) -> bool {
        self.is_own_issuer(issuer) || self.config.trusted_issuers.contains(issuer)
    }
}

/// The longest text of a descriptor field the transfer log keeps, in characters.
pub(crate) const MAX_LOGGED_FIELD_CHARS: usize = 256;

/// `descriptor` as the transfer log keeps it: the contract bounds `schema`, `content/type` and
/// `artifact/id` only by the frame's size, and refusals are logged before any budget runs, so
/// each is cut at [`MAX_LOGGED_FIELD_CHARS`] (marked with a trailing `…`) rather than let one
/// frame write 256 KiB to disk.
fn logged_descriptor(descriptor: &Descriptor) -> Descriptor {
    let cut = |text: &str| match text.char_indices().nth(MAX_LOGGED_FIELD_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    };
    Descriptor {
        schema: cut(&descriptor.schema),
        content_type: cut(&descriptor.content_type),
        artifact_id: cut(&descriptor.artifact_id),
        digest: descriptor.digest.clone(),
        size_bytes: descriptor.size_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transport moves bodies into their own tasks and shares the receiver behind a lock.
    #[test]
    fn the_transport_can_move_what_it_needs_across_threads() {
        fn send<T: Send>() {}
        fn share<T: Send + Sync>() {}
        send::<Receiver>();
        send::<IncomingBody>();
        send::<CompletedBody>();
        send::<ServeArtifact>();
        share::<Frame>();
        share::<KindRegistry>();
    }
}
