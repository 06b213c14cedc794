//! The sans-IO pod engine: admission of pod artifacts (spec pod §5) and the lifecycle state
//! machine (§4).
//!
//! The engine never reads a clock, opens a socket or spawns a task. Every call takes `now`
//! from the host; the host reports live sessions; the read model sits behind [`Store`].

use std::{collections::BTreeMap, sync::Arc};

use orbi_schema::{SchemaValidator, registry};
use orbi_types::{
    ClientInstanceAttachment, ClientInstanceDetachment, ClientInstanceRecovery, KeyPair, NodeId,
    ParticipantBind, Sha256Digest, SigningInput, Timestamp, canonical::to_canonical_bytes, json,
    pod::DetachReason,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{
    checks::{self, KeyCache, Typed, clip, invalid},
    code::{Check, PolicyWarning, Rejection, RejectionCode},
    policy::{HostPolicy, MAX_ARTIFACT_BYTES, RecoveryPolicy},
    session::{Session, SessionTable},
    state::{
        ArtifactKind, AttachmentState, GrantState, LifecycleState, Rule, TraceKind, is_host_reason,
        is_sanction, modes_after, needs_recovery,
    },
    store::{
        AttachmentRec, Change, Commit, DetachmentOrigin, DetachmentRec, Found, Probe, RecoveryRec,
        Store, StoreError, TraceEvent,
    },
};

/// How an admission ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New facts were committed (with their trace events).
    Admitted,
    /// An identical artifact was admitted before; nothing changed.
    Replayed,
    /// Refused; nothing changed.
    Rejected(Rejection),
}

impl Verdict {
    /// `admitted`, `replayed` or `rejected`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Verdict::Admitted => "admitted",
            Verdict::Replayed => "replayed",
            Verdict::Rejected(_) => "rejected",
        }
    }
}

/// One lifecycle transition the engine made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The spec §4 rule.
    pub rule: Rule,
    /// The attachment (or, for T16/T18, recovery) it concerns.
    pub subject: String,
    /// The client instance.
    pub client_instance_id: String,
    /// The state before, if there was one.
    pub from: Option<LifecycleState>,
    /// The state after.
    pub to: LifecycleState,
    /// A detachment artifact the host built (T4/T7/T11/T13), to forward to the client.
    pub artifact: Option<Vec<u8>>,
}

/// The outcome of [`PodEngine::admit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Which artifact it was, once recognised.
    pub kind: Option<ArtifactKind>,
    /// The artifact's own id (`attachment/id`, `detachment/id`, `recovery/id`, `bind/id`),
    /// once read.
    pub id: Option<String>,
    /// Admitted, replayed or rejected.
    pub verdict: Verdict,
    /// Where the subject stands afterwards.
    pub state: Option<LifecycleState>,
    /// Non-fatal policy remarks (V10).
    pub warnings: Vec<PolicyWarning>,
    /// Transitions made, in order (the T13 reconnect path makes two).
    pub transitions: Vec<Transition>,
}

impl Admission {
    /// The rejection, if rejected.
    pub fn rejection(&self) -> Option<&Rejection> {
        match &self.verdict {
            Verdict::Rejected(rejection) => Some(rejection),
            _ => None,
        }
    }

    /// The rejection code, if rejected.
    pub fn code(&self) -> Option<RejectionCode> {
        self.rejection().map(|rejection| rejection.code)
    }
}

/// Why the engine could not do its job (as opposed to rejecting an artifact).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The read model failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A canonical schema is missing or does not compile (a build defect).
    #[error("schema registry: {0}")]
    Schema(String),
    /// A host event named an attachment that is not on record.
    #[error("no attachment {0:?} on record")]
    UnknownAttachment(String),
    /// A host event named a detachment that is not on record (never admitted or built here,
    /// or evicted).
    #[error("no detachment {0:?} on record")]
    UnknownDetachment(String),
    /// The host asked to clear the sanction of a detachment that is not a sanction.
    #[error(
        "detachment {detachment_id:?} is a {reason} detachment, not a sanction; only policy and \
         operator-action detachments, and detachments of a suspended attachment, hold one to clear"
    )]
    NotSanction {
        /// The detachment.
        detachment_id: String,
        /// Its reason.
        reason: DetachReason,
    },
    /// A host event does not apply in the attachment's state.
    #[error("attachment {attachment_id:?} is {state}; cannot {event}")]
    Transition {
        /// The attachment.
        attachment_id: String,
        /// Its state.
        state: AttachmentState,
        /// What was asked.
        event: &'static str,
    },
    /// The host asked to detach for a reason only a participant may give.
    #[error(
        "{0} is a participant-originated reason; the host detaches for session-expired, policy, operator-action or device-loss"
    )]
    NotHostReason(DetachReason),
    /// An artifact this node built fails its own gate (a defect; nothing was committed).
    #[error("built {what} fails the egress gate: {message}")]
    Egress {
        /// Which artifact.
        what: String,
        /// Why.
        message: String,
    },
}

/// Internal: an admission either rejects or fails.
pub(crate) enum Fail {
    Reject(Rejection),
    Engine(EngineError),
}

impl From<Rejection> for Fail {
    fn from(rejection: Rejection) -> Self {
        Fail::Reject(rejection)
    }
}

impl From<StoreError> for Fail {
    fn from(err: StoreError) -> Self {
        Fail::Engine(EngineError::Store(err))
    }
}

impl From<EngineError> for Fail {
    fn from(err: EngineError) -> Self {
        Fail::Engine(err)
    }
}

/// What an admission has learned so far; it becomes an [`Admission`] with its verdict.
#[derive(Default)]
struct Draft {
    kind: Option<ArtifactKind>,
    id: Option<String>,
    state: Option<LifecycleState>,
    warnings: Vec<PolicyWarning>,
    transitions: Vec<Transition>,
}

impl Draft {
    fn finish(self, verdict: Verdict) -> Admission {
        Admission {
            kind: self.kind,
            id: self.id,
            verdict,
            state: self.state,
            warnings: self.warnings,
            transitions: self.transitions,
        }
    }
}

/// After a recount finds a peer node at its attachment limit, how long its further attempts
/// are refused on that count without asking the read model again.
pub const RECOUNT_BACKOFF: time::Duration = time::Duration::seconds(1);

/// The serving node's pod engine over a read model `S`.
pub struct PodEngine<S> {
    pub(crate) node_key: KeyPair,
    pub(crate) node_id: NodeId,
    pub(crate) policy: HostPolicy,
    pub(crate) store: S,
    pub(crate) sessions: SessionTable,
    validators: BTreeMap<ArtifactKind, Arc<SchemaValidator>>,
    keys: KeyCache,
}

impl<S> std::fmt::Debug for PodEngine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PodEngine({})", self.node_id)
    }
}

/// An artifact that passed V0–V2, with everything later checks need.
struct Checked<'a> {
    kind: ArtifactKind,
    value: Value,
    typed: Typed,
    /// The bind's §6.2 signing input (V7).
    signing_input: SigningInput,
    /// The bind's identity for the I3 cache and the records (see [`checks::bind_identity`]).
    bind_digest: Sha256Digest,
    bytes: &'a [u8],
    arrival: &'a str,
    now: OffsetDateTime,
}

impl Checked<'_> {
    fn bind(&self) -> &ParticipantBind {
        self.typed.bind()
    }
}

/// The bind inside an artifact of `kind` (the artifact itself for a bare bind), as received.
fn bind_member(kind: ArtifactKind, value: &mut Value) -> Option<&mut Value> {
    match kind {
        ArtifactKind::ParticipantBind => Some(value),
        _ => value.get_mut("participant-bind"),
    }
}

impl<S: Store> PodEngine<S> {
    /// An engine for the node whose key is `node_key`.
    pub fn new(node_key: KeyPair, policy: HostPolicy, store: S) -> Result<Self, EngineError> {
        let mut validators = BTreeMap::new();
        for kind in ArtifactKind::ALL {
            let validator = registry()
                .validator(kind.as_str(), policy.profile)
                .map_err(|err| EngineError::Schema(err.to_string()))?;
            validators.insert(*kind, validator);
        }
        Ok(PodEngine {
            node_id: node_key.node_id(),
            node_key,
            policy,
            store,
            sessions: SessionTable::default(),
            validators,
            keys: KeyCache::default(),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// The host policy.
    pub fn policy(&self) -> &HostPolicy {
        &self.policy
    }

    /// The read model.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The live sessions.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// Gives the read model back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Marks a node-to-node session live.
    pub fn open_session(&mut self, id: impl Into<String>, session: Session) {
        self.sessions.open(id, session);
    }

    /// The transport lost session `id` for good: its attached attachments become degraded
    /// (T5) and the session is forgotten, so nothing more is admitted on it. Unlike
    /// [`PodEngine::close_session`] nothing is detached yet: [`PodEngine::tick`] detaches
    /// the degraded ones with `session-expired` once the degraded grace has passed (T7), unless
    /// the client attaches again first (T13 replaces the degraded attachment).
    pub fn session_lost(
        &mut self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, EngineError> {
        // Forgotten even if degrading fails: a session without a connection must never
        // stay live (restart degrades whatever this left attached).
        self.sessions.close(id);
        self.keepalive_lost(id, now)
    }

    /// Judges one artifact (raw bytes) that arrived on the live session `arrival`, at `now`.
    ///
    /// Checks run in spec order (V0–V10, D1–D3, R1–R4, I1–I3, then the state guards) and stop
    /// at the first failure. An admission commits its read-model changes and trace events
    /// atomically; a replay or a rejection changes nothing (rejections are reported through
    /// `tracing`, never stored, so bad input costs no disk writes).
    pub fn admit(
        &mut self,
        bytes: &[u8],
        arrival: &str,
        now: OffsetDateTime,
    ) -> Result<Admission, EngineError> {
        match self.admit_once(bytes, arrival, now) {
            // Another writer committed first (a shared database): judge again against the
            // state it left, which turns the race into a replay or a proper rejection.
            Err(EngineError::Store(StoreError::Constraint(_))) => {
                self.admit_once(bytes, arrival, now)
            }
            other => other,
        }
    }

    /// Judges several artifacts at `now`, in order, as one group commit: each admission is
    /// still atomic with its trace events and sees the ones before it, but the read model
    /// reaches the disk once for the whole group, and only then are the outcomes returned.
    /// If anything fails, every admission of the group is discarded and the error returned.
    pub fn admit_group<'a>(
        &mut self,
        arrivals: impl IntoIterator<Item = (&'a [u8], &'a str)>,
        now: OffsetDateTime,
    ) -> Result<Vec<Admission>, EngineError> {
        self.store.begin_group()?;
        // Counts taken inside the group see its uncommitted changes: a failed group puts back
        // the ones from before it.
        let counted = self.sessions.counts();
        let mut admissions = Vec::new();
        for (bytes, arrival) in arrivals {
            match self.admit(bytes, arrival, now) {
                Ok(admission) => admissions.push(admission),
                Err(err) => {
                    self.store.abandon_group();
                    self.sessions.restore_counts(counted);
                    return Err(err);
                }
            }
        }
        if let Err(err) = self.store.finish_group() {
            self.sessions.restore_counts(counted);
            return Err(err.into());
        }
        Ok(admissions)
    }

    fn admit_once(
        &mut self,
        bytes: &[u8],
        arrival: &str,
        now: OffsetDateTime,
    ) -> Result<Admission, EngineError> {
        let mut out = Draft::default();
        match self.judge(bytes, arrival, now, &mut out) {
            Ok(verdict) => Ok(out.finish(verdict)),
            Err(Fail::Reject(rejection)) => {
                let event = match rejection.check {
                    Check::V3 | Check::V4 | Check::V6a | Check::V6b | Check::V7 | Check::I3 => {
                        TraceKind::BindRejected
                    }
                    _ => TraceKind::ErrorOccurred,
                };
                // Debug: rejections are the peer's doing, and must cost it no log volume.
                tracing::debug!(
                    event_type = event.as_str(),
                    class = rejection.code.class(),
                    code = rejection.code.as_str(),
                    check = rejection.check.as_str(),
                    kind = out.kind.map(ArtifactKind::as_str),
                    id = out.id.as_deref(),
                    session = arrival,
                    "pod artifact rejected"
                );
                Ok(Admission {
                    kind: out.kind,
                    id: out.id,
                    verdict: Verdict::Rejected(rejection),
                    state: None,
                    warnings: Vec::new(),
                    transitions: Vec::new(),
                })
            }
            Err(Fail::Engine(err)) => Err(err),
        }
    }

    fn judge(
        &mut self,
        bytes: &[u8],
        arrival: &str,
        now: OffsetDateTime,
        out: &mut Draft,
    ) -> Result<Verdict, Fail> {
        // V0
        if bytes.len() > MAX_ARTIFACT_BYTES {
            return Err(invalid(
                Check::V0,
                format!(
                    "artifact is {} bytes; the limit is {MAX_ARTIFACT_BYTES}",
                    bytes.len()
                ),
            )
            .into());
        }
        let mut value =
            json::from_slice_strict(bytes).map_err(|err| invalid(Check::V1, err.to_string()))?;
        let kind = checks::detect(&value)?;
        out.kind = Some(kind);
        out.id = value
            .get(kind.id_field())
            .and_then(Value::as_str)
            .map(|id| clip(id, 256));
        // V1, V2
        self.schema_gate(kind, &value)?;
        let typed = Typed::parse(kind, &value)?;
        checks::opaque_ids(&typed)?;
        // One canonicalization of the bind serves both V7 and I3.
        let bind = bind_member(kind, &mut value)
            .ok_or_else(|| invalid(Check::V1, "participant-bind is missing"))?;
        let (signing_input, bind_digest) = checks::bind_identity(bind)?;
        let checked = Checked {
            kind,
            value,
            typed,
            signing_input,
            bind_digest,
            bytes,
            arrival,
            now,
        };
        // V3, V4, V5
        let participant_key = checks::strict_keys(&checked.typed, &mut self.keys)?;
        checks::key_binding(checked.bind())?;
        checks::addressing(&checked.typed, &self.node_id)?;
        // Everything the later checks read from the store, in one probe.
        let found = self.store.probe(&self.probe(&checked.typed))?;
        // V6
        self.session_check(&checked, &found)?;
        // V7
        checks::signature(&checked.signing_input, checked.bind(), &participant_key)?;
        // V8
        self.time_checks(&checked, &found)?;
        match &checked.typed {
            Typed::Bind(_) => self.admit_bind(&checked, found, out),
            Typed::Attachment(attachment) => {
                self.admit_attachment(&checked, attachment, found, out)
            }
            Typed::Detachment(detachment) => {
                self.admit_detachment(&checked, detachment, found, out)
            }
            Typed::Recovery(recovery) => self.admit_recovery(&checked, recovery, found, out),
        }
    }

    /// V1 and V2: the schema gate of the policy's profile; a wrong `schema/v` is reported as
    /// `E_PROTO_VERSION` even though the gate fails on it too.
    fn schema_gate(&self, kind: ArtifactKind, value: &Value) -> Result<(), Rejection> {
        let Some(validator) = self.validators.get(&kind) else {
            return Err(invalid(Check::V1, format!("no schema for {kind}")));
        };
        if validator.is_valid(value) {
            return Ok(());
        }
        if let Some(version) = checks::wrong_version(value) {
            return Err(version);
        }
        let (issues, total) = validator.issues_counted(value);
        let mut message: Vec<String> = issues
            .iter()
            .take(3)
            .map(|issue| format!("{:?}: {}", issue.instance, clip(&issue.message, 160)))
            .collect();
        if total > 3 {
            message.push(format!("and {} more", total - 3));
        }
        Err(invalid(
            Check::V1,
            format!(
                "not a valid {kind} ({} profile): {}",
                validator.profile(),
                message.join("; ")
            ),
        ))
    }

    /// What an artifact's checks read from the store: its own id (I1, I2), the records it
    /// cites (D1, R1), its bind's cache entry (I3) and, for attachments and recoveries, where
    /// its client stands (the state guards).
    fn probe<'a>(&'a self, typed: &'a Typed) -> Probe<'a> {
        let bind = typed.bind();
        let mut probe = Probe {
            bind: Some((&bind.session_id, &bind.bind_id)),
            ..Probe::default()
        };
        match typed {
            Typed::Bind(_) => {}
            Typed::Attachment(a) => {
                probe.attachment_id = Some(&a.attachment_id);
                probe.client = Some((&self.node_id, &a.client_instance_id));
            }
            Typed::Detachment(d) => {
                probe.attachment_id = Some(&d.attachment_id);
                probe.detachment_id = Some(&d.detachment_id);
            }
            Typed::Recovery(r) => {
                probe.detachment_id = Some(&r.from_detachment_id);
                probe.recovery_id = Some(&r.recovery_id);
                probe.client = Some((&self.node_id, &r.client_instance_id));
            }
        }
        probe
    }

    /// V6a (attachment, recovery, bind) and V6b (detachment).
    fn session_check(&self, checked: &Checked<'_>, found: &Found) -> Result<(), Rejection> {
        let check = match checked.kind {
            ArtifactKind::Detachment => Check::V6b,
            _ => Check::V6a,
        };
        let mismatch =
            |message: String| Rejection::new(RejectionCode::SessionMismatch, check, message);
        if !self.sessions.is_live(checked.arrival) {
            return Err(mismatch(format!(
                "the artifact arrived on session {:?}, which is not live",
                clip(checked.arrival, 64)
            )));
        }
        let bind_session = &checked.bind().session_id;
        let Typed::Detachment(detachment) = &checked.typed else {
            if bind_session != checked.arrival {
                return Err(mismatch(format!(
                    "bind session/id {bind_session:?} is not the session it arrived on ({:?})",
                    clip(checked.arrival, 64)
                )));
            }
            return Ok(());
        };
        // A detachment: participant reasons need a bind on the session it arrived on, or on
        // another live session of the same peer node (a bind from session A is worthless on a
        // session of another node: §5 "Replay"); host reasons may carry the attachment's bind
        // copied verbatim (its session may be dead by now) when the policy admits that. An
        // unknown attachment is left to D1.
        if bind_session == checked.arrival || self.same_peer(bind_session, checked.arrival) {
            return Ok(());
        }
        // I1 before V6b: an identical replay of an admitted detachment succeeds wherever it
        // arrives (upstream T12). It has no side effects, and only a holder of the signed bytes
        // can send it: a client whose answer was lost retries on a new session.
        if let Some(existing) = &found.detachment
            && matches!(Self::identical(&existing.artifact, checked), Ok(true))
        {
            return Ok(());
        }
        let Some(attachment) = &found.attachment else {
            return Ok(());
        };
        let reason = detachment.detach_reason;
        if is_host_reason(reason)
            && attachment.bind_session == *bind_session
            && self.policy.admit_copied_host_detachments
        {
            return Ok(());
        }
        Err(mismatch(if is_host_reason(reason) {
            format!(
                "a {reason} detachment is this node's to give; its bind session/id \
                 {bind_session:?} is not the session it arrived on ({:?})",
                clip(checked.arrival, 64)
            )
        } else {
            format!(
                "a {reason} detachment needs a bind on the session it arrived on ({:?}) or \
                 another live session of the same node; {bind_session:?} is neither",
                clip(checked.arrival, 64)
            )
        }))
    }

    /// Whether `bind_session` is live and held by the same (named) peer node as `arrival`.
    fn same_peer(&self, bind_session: &str, arrival: &str) -> bool {
        let peer = |id: &str| {
            self.sessions
                .get(id)
                .and_then(|session| session.peer.as_ref())
        };
        matches!((peer(bind_session), peer(arrival)), (Some(a), Some(b)) if a == b)
    }

    /// V8: skew and order.
    fn time_checks(&self, checked: &Checked<'_>, found: &Found) -> Result<(), Rejection> {
        let skew = self.policy.timings.clock_skew;
        checks::not_ahead(&checked.typed, checked.now, skew)?;
        let bound = ("participant-bind bound-at", &checked.bind().bound_at);
        if let Some(own) = checked.typed.own_time() {
            checks::in_order(bound, own)?;
        }
        match &checked.typed {
            Typed::Detachment(d) => {
                if let Some(attachment) = &found.attachment {
                    let attached = ("the attachment's attached-at", &attachment.attached_at);
                    checks::in_order(attached, ("detached-at", &d.detached_at))?;
                }
            }
            Typed::Recovery(r) => {
                if let Some(detachment) = &found.detachment {
                    let detached = ("the cited detached-at", &detachment.detached_at);
                    checks::in_order(detached, ("recovered-at", &r.recovered_at))?;
                }
            }
            Typed::Bind(_) | Typed::Attachment(_) => {}
        }
        if !matches!(checked.kind, ArtifactKind::Detachment)
            && let Some(established) = self
                .sessions
                .get(checked.arrival)
                .and_then(|session| session.established_at)
            && checked.bind().bound_at.instant() < established - skew
        {
            return Err(Rejection::new(
                RejectionCode::TimeOrder,
                Check::V8,
                format!(
                    "participant-bind bound-at {} predates its session (established {})",
                    checked.bind().bound_at,
                    emit_time(established).map_or_else(String::new, |at| at.to_string())
                ),
            ));
        }
        Ok(())
    }

    /// I1, I2: whether `checked` repeats `stored`, the artifact admitted before under the same
    /// id. "Identical" is byte-equal JCS of the whole artifact, proofs included; equal bytes
    /// decide the common replay without canonicalizing, and only different bytes (reordered
    /// keys, other whitespace, or a real change) canonicalize both sides.
    fn identical(stored: &[u8], checked: &Checked<'_>) -> Result<bool, Fail> {
        if stored == checked.bytes {
            return Ok(true);
        }
        let canonical = |value: &Value| {
            to_canonical_bytes(value).map_err(|err| invalid(Check::V1, err.to_string()))
        };
        let earlier = json::from_slice_strict(stored).map_err(|err| StoreError::Corrupt {
            what: "stored artifact".into(),
            message: err.to_string(),
        })?;
        Ok(canonical(&earlier)? == canonical(&checked.value)?)
    }

    /// I3: the bind against its session's cache entry `cached`. `Ok(Some(trace))`, its
    /// `participant-bind/accepted` event, when the bind is new.
    fn bind_cache(
        &self,
        checked: &Checked<'_>,
        cached: Option<Sha256Digest>,
    ) -> Result<Option<TraceEvent>, Fail> {
        let bind = checked.bind();
        match cached {
            Some(cached) if cached != checked.bind_digest => Err(Rejection::new(
                RejectionCode::BindConflict,
                Check::I3,
                format!(
                    "bind/id {:?} was seen on session {:?} with different content",
                    bind.bind_id, bind.session_id
                ),
            )
            .into()),
            Some(_) => Ok(None),
            None => Ok(Some(self.trace(
                TraceKind::BindAccepted,
                checked.now,
                checked.arrival,
                json!({
                    "bind/id": bind.bind_id,
                    "session/id": bind.session_id,
                    "participant/id": bind.participant_id.as_str(),
                }),
            ))),
        }
    }

    /// Adds a new bind to `commit`: its cache entry and its trace. (A new attachment does not
    /// need the entry: its own record carries the bind's session, id and digest, and the
    /// store answers I3 from it.)
    fn cache_bind(checked: &Checked<'_>, trace: TraceEvent, commit: &mut Commit) {
        let bind = checked.bind();
        commit.changes.push(Change::CacheBind {
            session_id: bind.session_id.clone(),
            bind_id: bind.bind_id.clone(),
            digest: checked.bind_digest.clone(),
        });
        commit.traces.push(trace);
    }

    /// Commits, turning a full read model into `E_POD_CAPACITY`.
    fn commit(&mut self, commit: Commit) -> Result<(), Fail> {
        match self.store.commit(commit, &self.sessions) {
            Err(StoreError::Full { records }) => Err(Rejection::new(
                RejectionCode::Capacity,
                Check::S,
                format!(
                    "the read model holds its limit of {records} attachments and recoveries and \
                     none may be evicted"
                ),
            )
            .into()),
            other => Ok(other?),
        }
    }

    pub(crate) fn trace(
        &self,
        kind: TraceKind,
        now: OffsetDateTime,
        session: &str,
        detail: Value,
    ) -> TraceEvent {
        TraceEvent {
            kind,
            ts: now,
            node: self.node_id.clone(),
            peer: self
                .sessions
                .get(session)
                .and_then(|session| session.peer.clone()),
            detail,
        }
    }

    fn admit_bind(
        &mut self,
        checked: &Checked<'_>,
        found: Found,
        out: &mut Draft,
    ) -> Result<Verdict, Fail> {
        out.state = Some(LifecycleState::Bound);
        match self.bind_cache(checked, found.bind_digest)? {
            None => Ok(Verdict::Replayed),
            Some(trace) => {
                let mut commit = Commit::default();
                Self::cache_bind(checked, trace, &mut commit);
                self.commit(commit)?;
                Ok(Verdict::Admitted)
            }
        }
    }

    fn admit_attachment(
        &mut self,
        checked: &Checked<'_>,
        a: &ClientInstanceAttachment,
        found: Found,
        out: &mut Draft,
    ) -> Result<Verdict, Fail> {
        let bind = checked.bind();
        // V9
        if let Some(pod_user) = &a.pod_user_id {
            let mapped = match pod_user.role() {
                "participant" => pod_user.as_str() == bind.participant_id.as_str(),
                _ => self.policy.tenancy.get(pod_user) == Some(&bind.participant_id),
            };
            if !mapped {
                return Err(Rejection::new(
                    RejectionCode::TenancyUnknown,
                    Check::V9,
                    format!(
                        "pod-user/id {pod_user} is not a hosted user of participant {}",
                        bind.participant_id
                    ),
                )
                .into());
            }
        }
        // V10
        let offer = self.policy.offer(a.profile_type);
        if a.export_capable != offer.export_capable
            || a.migration_allowed != offer.migration_allowed
        {
            return Err(Rejection::new(
                RejectionCode::PolicyMismatch,
                Check::V10,
                format!(
                    "{} attachment declares export/capable? {} and migration/allowed? {}; this \
                     host offers {} and {}",
                    a.profile_type,
                    a.export_capable,
                    a.migration_allowed,
                    offer.export_capable,
                    offer.migration_allowed
                ),
            )
            .into());
        }
        if a.profile_type == orbi_types::pod::ProfileType::PodClient && a.models_local == Some(true)
        {
            out.warnings.push(PolicyWarning::PodClientWithLocalModels);
        }
        if !a.export_capable {
            out.warnings.push(PolicyWarning::ExportNotOffered);
        }
        if !a.migration_allowed {
            out.warnings.push(PolicyWarning::MigrationNotOffered);
        }
        // I2
        if let Some(existing) = found.attachment {
            return self.replay(
                Self::identical(&existing.artifact, checked)?,
                "attachment/id",
                &a.attachment_id,
                Check::I2,
                existing.state.into(),
                out,
            );
        }
        // I3
        let new_bind = self.bind_cache(checked, found.bind_digest)?;
        // State guards.
        let Some(initial) = AttachmentState::initial(a.session_state) else {
            return Err(state_error(format!(
                "a new attachment cannot start as {}",
                a.session_state
            ))
            .into());
        };
        let mut commit = Commit::default();
        let client = &a.client_instance_id;
        let standing = found.standing;
        // The session of a live attachment this one replaces (T13), which frees its place.
        let mut replaces = None;
        let previous_reason = match standing.live {
            // A client id belongs to the participant whose lineage it carries: anyone else
            // would end its attachment (and be handed its signed bind in the host's
            // detachment, T13), or lock the participant out of it. The refusal names nothing
            // of the other participant or its attachment, which would tell anyone who
            // guesses a client id who uses it and on which session.
            Some(old) if old.participant_id != bind.participant_id => {
                return Err(another_participants(client).into());
            }
            Some(old) => {
                match old.state {
                    AttachmentState::Suspended => {
                        return Err(state_error(format!(
                            "client {client:?} has suspended attachment {:?}; the host must lift \
                             or end the suspension first",
                            old.attachment_id
                        ))
                        .into());
                    }
                    AttachmentState::Attached | AttachmentState::Attaching
                        if self.sessions.is_live(&old.bind_session) =>
                    {
                        return Err(Rejection::new(
                            RejectionCode::AlreadyAttached,
                            Check::S,
                            format!(
                                "client {client:?} is attached by {:?} on live session {:?}",
                                old.attachment_id, old.bind_session
                            ),
                        )
                        .into());
                    }
                    // Degraded, or its session is gone: the reconnect path (T13).
                    _ => {
                        let host = self.host_detachment(
                            &old,
                            DetachReason::SessionExpired,
                            None,
                            checked.now,
                            Rule::T13,
                        )?;
                        commit.changes.extend(host.changes);
                        commit.traces.extend(host.traces);
                        out.transitions.push(host.transition);
                        replaces = Some(old.bind_session.clone());
                        None
                    }
                }
            }
            None => match &standing.latest_detachment {
                // T14 is the same participant's too: were another to attach the detached
                // client and end it with a reason that needs a recovery (`device-loss`), the
                // participant's own recovery would be superseded for good.
                Some(latest) if latest.participant_id != bind.participant_id => {
                    return Err(another_participants(client).into());
                }
                Some(latest) => Some((latest.reason, false)),
                None => standing.tombstone.map(|reason| (reason, true)),
            },
        };
        // The client's own latest detachment when it is a sanction the host has not cleared
        // (with a live attachment, any earlier detachment was superseded).
        let sanction_of_client = standing
            .latest_detachment
            .filter(|latest| replaces.is_none() && latest.sanction_in_force());
        let grant = self.usable_grant(standing.open_grant, bind, checked.now, &mut commit);
        // No grant opens from a sanction in force; one a read model of layout 2 opened before
        // sanctions were kept is not used until the host clears its sanction, and neither is
        // a grant opened before the client was sanctioned (from an earlier detachment, by
        // another participant sharing the client id).
        if let Some(grant) = &grant {
            if let Some(sanction) = &sanction_of_client {
                let blocked = format!(
                    "client {client:?} cannot use recovery grant {:?}",
                    grant.recovery_id
                );
                return Err(sanction_in_force(sanction, &blocked).into());
            }
            if let Some(sanction) = self
                .store
                .detachment(&grant.from_detachment_id)?
                .filter(DetachmentRec::sanction_in_force)
            {
                let blocked = format!(
                    "recovery grant {:?} from it cannot be used",
                    grant.recovery_id
                );
                return Err(sanction_in_force(&sanction, &blocked).into());
            }
        }
        if let Some((reason, evicted)) = previous_reason
            && needs_recovery(reason)
            && grant.is_none()
        {
            return Err(Rejection::new(
                RejectionCode::RecoveryRequired,
                Check::S,
                if let Some(sanction) = &sanction_of_client {
                    format!(
                        "client {client:?} was detached for {reason} by {:?}, a sanction the \
                         host has not cleared; once it does, admit a recovery for it first",
                        sanction.detachment_id
                    )
                } else if evicted {
                    format!(
                        "client {client:?} was detached for {reason} and that detachment was \
                         evicted; it cannot be recovered here, attach as a new client instance"
                    )
                } else {
                    format!(
                        "client {client:?} was detached for {reason}; admit a recovery for it \
                         first"
                    )
                },
            )
            .into());
        }
        // A sanction that needs no recovery to come back from: the client's attachment was
        // suspended when its participant detached it. It comes back only once the host lifts
        // the suspension (clears the sanction), as it would have while still attached (T13).
        if let Some(sanction) = &sanction_of_client
            && grant.is_none()
        {
            let blocked = format!("client {client:?} cannot attach");
            return Err(sanction_in_force(sanction, &blocked).into());
        }
        let rule = match (&grant, initial) {
            (Some(_), _) => Rule::T17,
            (None, AttachmentState::Attaching) => Rule::T1,
            (None, _) => Rule::T2,
        };
        if let Some(grant) = &grant {
            commit.changes.push(Change::SetGrant {
                recovery_id: grant.recovery_id.clone(),
                grant: GrantState::Consumed,
                consumed_by: Some(a.attachment_id.clone()),
            });
            commit.traces.push(self.trace(
                TraceKind::GrantConsumed,
                checked.now,
                checked.arrival,
                json!({"recovery/id": grant.recovery_id, "attachment/id": a.attachment_id}),
            ));
        }
        // The place this attachment takes over: the replaced attachment's (T13), else the
        // consumed grant's (T17), when it was counted for this node.
        let takes_over = replaces
            .clone()
            .or_else(|| grant.as_ref().map(|grant| grant.bind_session.clone()));
        self.peer_share(checked.arrival, takes_over.as_deref(), checked.now)?;
        // The record carries the bind (session, id, digest): no separate cache entry.
        commit.traces.extend(new_bind);
        commit.changes.push(Change::InsertAttachment(AttachmentRec {
            attachment_id: a.attachment_id.clone(),
            serving_node_id: a.serving_node_id.clone(),
            client_instance_id: client.clone(),
            participant_id: bind.participant_id.clone(),
            pod_user_id: a.pod_user_id.clone(),
            profile: a.profile_type,
            export_capable: a.export_capable,
            migration_allowed: a.migration_allowed,
            models_local: a.models_local,
            bind_id: bind.bind_id.clone(),
            bind_session: bind.session_id.clone(),
            bound_at: bind.bound_at.clone(),
            bind_digest: checked.bind_digest.clone(),
            attached_at: a.attached_at.clone(),
            admitted_at: checked.now,
            state: initial,
            state_since: checked.now,
            artifact: checked.bytes.to_vec(),
        }));
        commit.traces.push(self.trace(
            TraceKind::Attached,
            checked.now,
            checked.arrival,
            json!({
                "attachment/id": a.attachment_id,
                "client-instance/id": client,
                "participant/id": bind.participant_id.as_str(),
                "state": initial.as_str(),
                "rule": rule.as_str(),
            }),
        ));
        self.commit(commit)?;
        match &takes_over {
            // The replaced attachment was detached (or the grant consumed) by this same commit.
            Some(old) => self.sessions.move_attached(old, checked.arrival),
            None => self.sessions.count_attached(checked.arrival),
        }
        out.transitions.push(Transition {
            rule,
            subject: a.attachment_id.clone(),
            client_instance_id: client.clone(),
            from: grant.map(|_| LifecycleState::RecoveryGranted),
            to: initial.into(),
            artifact: None,
        });
        out.state = Some(initial.into());
        Ok(Verdict::Admitted)
    }

    /// Keeps one peer node from filling the read model: the sessions of the node that session
    /// `arrival` belongs to (live ones, and closed ones whose attachments still wait for their
    /// clients) may hold at most [`HostPolicy::max_live_attachments_per_peer`] places
    /// together. A live attachment holds a place, and so does an open recovery grant: its
    /// lineage cannot be evicted while it is open, so grants left unconsumed would otherwise
    /// fill the read model for every other node. An attachment that takes over one of the
    /// node's own places (`replaces`: the session of the attachment it replaces, T13, or of
    /// the grant it consumes, T17) takes no new one. The session table's running count is
    /// an upper bound, so the read model is asked for the exact count only when that bound
    /// reaches the limit, and after a recount that refuses, not again for
    /// [`RECOUNT_BACKOFF`] unless one of the node's attachments ends: a node at its limit
    /// cannot make every attempt cost a recount.
    fn peer_share(
        &mut self,
        arrival: &str,
        replaces: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), Fail> {
        let limit = self.policy.max_live_attachments_per_peer;
        let credit = usize::from(
            replaces.is_some_and(|old| self.sessions.counted_for_holder_of(arrival, old)),
        );
        let fits = |held: usize| held.saturating_sub(credit) < limit;
        if fits(self.sessions.held_at_most(arrival)) {
            return Ok(());
        }
        if self.sessions.may_recount(arrival, now, RECOUNT_BACKOFF) {
            let mut held = 0usize;
            for session in self.sessions.same_holder(arrival) {
                let places = self.places_on(&session, now)?;
                self.sessions.set_attached(&session, places);
                held = held.saturating_add(places);
            }
            if fits(held) {
                return Ok(());
            }
            self.sessions.refused_after_recount(arrival, now);
        }
        let holder = match self.sessions.get(arrival).and_then(|s| s.peer.as_ref()) {
            Some(peer) => format!("peer {peer}"),
            None => format!("session {:?}", clip(arrival, 64)),
        };
        Err(Rejection::new(
            RejectionCode::Capacity,
            Check::S,
            format!("{holder} holds its limit of {limit} live attachments"),
        )
        .into())
    }

    /// The places session `session` holds at `now`: its live attachments and its open,
    /// unexpired recovery grants.
    pub(crate) fn places_on(
        &self,
        session: &str,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let live = self.store.count_live_attachments_on(session)?;
        let grants = self.store.count_open_grants_on(session, now)?;
        Ok(live.saturating_add(grants))
    }

    /// The client's open `grant`, if it is for this participant and still inside its window;
    /// an expired one is closed in `commit` (T18).
    fn usable_grant(
        &self,
        grant: Option<RecoveryRec>,
        bind: &ParticipantBind,
        now: OffsetDateTime,
        commit: &mut Commit,
    ) -> Option<RecoveryRec> {
        let grant = grant?;
        if grant.grant_expires_at <= now {
            self.expire_grant(&grant, now, commit);
            return None;
        }
        (grant.participant_id == bind.participant_id).then_some(grant)
    }

    pub(crate) fn expire_grant(
        &self,
        grant: &RecoveryRec,
        now: OffsetDateTime,
        commit: &mut Commit,
    ) {
        commit.changes.push(Change::SetGrant {
            recovery_id: grant.recovery_id.clone(),
            grant: GrantState::Expired,
            consumed_by: None,
        });
        commit.traces.push(TraceEvent {
            kind: TraceKind::GrantExpired,
            ts: now,
            node: self.node_id.clone(),
            peer: None,
            detail: json!({
                "recovery/id": grant.recovery_id,
                "client-instance/id": grant.client_instance_id,
                "rule": Rule::T18.as_str(),
            }),
        });
    }

    fn replay(
        &self,
        identical: bool,
        field: &str,
        id: &str,
        check: Check,
        state: LifecycleState,
        out: &mut Draft,
    ) -> Result<Verdict, Fail> {
        if !identical {
            return Err(Rejection::new(
                RejectionCode::Conflict,
                check,
                format!("{field} {id:?} was admitted before with different content"),
            )
            .into());
        }
        out.state = Some(state);
        Ok(Verdict::Replayed)
    }

    fn admit_detachment(
        &mut self,
        checked: &Checked<'_>,
        d: &ClientInstanceDetachment,
        found: Found,
        out: &mut Draft,
    ) -> Result<Verdict, Fail> {
        let bind = checked.bind();
        // D1
        let Some(attachment) = found.attachment else {
            return Err(Rejection::new(
                RejectionCode::UnknownAttachment,
                Check::D1,
                format!(
                    "attachment/id {:?} is not known to this node (never admitted, or evicted)",
                    d.attachment_id
                ),
            )
            .into());
        };
        // D2
        if attachment.client_instance_id != d.client_instance_id
            || attachment.serving_node_id != d.serving_node_id
        {
            return Err(Rejection::new(
                RejectionCode::ClientMismatch,
                Check::D2,
                format!(
                    "detachment names client {:?}, but attachment {:?} is of client {:?}",
                    d.client_instance_id, attachment.attachment_id, attachment.client_instance_id
                ),
            )
            .into());
        }
        // D3
        if attachment.participant_id != bind.participant_id {
            return Err(Rejection::new(
                RejectionCode::ParticipantMismatch,
                Check::D3,
                format!(
                    "detachment is bound by {}, but attachment {:?} belongs to {}",
                    bind.participant_id, attachment.attachment_id, attachment.participant_id
                ),
            )
            .into());
        }
        // I1
        if let Some(existing) = found.detachment {
            return self.replay(
                Self::identical(&existing.artifact, checked)?,
                "detachment/id",
                &d.detachment_id,
                Check::I1,
                LifecycleState::Detached,
                out,
            );
        }
        // I3
        let new_bind = self.bind_cache(checked, found.bind_digest)?;
        // State guards.
        if attachment.state == AttachmentState::Detached {
            let by = self
                .store
                .detachment_of(&attachment.attachment_id)?
                .map(|earlier| earlier.detachment_id)
                .unwrap_or_default();
            return Err(Rejection::new(
                RejectionCode::AlreadyDetached,
                Check::S,
                format!(
                    "attachment {:?} was already ended by detachment {by:?}",
                    attachment.attachment_id
                ),
            )
            .into());
        }
        if d.detach_reason == DetachReason::Migration && !attachment.migration_allowed {
            return Err(Rejection::new(
                RejectionCode::MigrationNotAllowed,
                Check::S,
                format!(
                    "attachment {:?} declared migration/allowed? false; a user-request \
                     detachment still ends it",
                    attachment.attachment_id
                ),
            )
            .into());
        }
        let rule = if is_host_reason(d.detach_reason) {
            Rule::T11
        } else {
            Rule::T10
        };
        let mut commit = Commit::default();
        if let Some(trace) = new_bind {
            Self::cache_bind(checked, trace, &mut commit);
        }
        commit.changes.push(Change::InsertDetachment(DetachmentRec {
            detachment_id: d.detachment_id.clone(),
            attachment_id: d.attachment_id.clone(),
            client_instance_id: d.client_instance_id.clone(),
            participant_id: bind.participant_id.clone(),
            reason: d.detach_reason,
            detached_at: d.detached_at.clone(),
            admitted_at: checked.now,
            origin: DetachmentOrigin::Admitted,
            artifact: checked.bytes.to_vec(),
            sanction_cleared_at: None,
            under_suspension: attachment.state == AttachmentState::Suspended,
        }));
        commit.changes.push(Change::SetAttachmentState {
            attachment_id: attachment.attachment_id.clone(),
            state: AttachmentState::Detached,
            since: checked.now,
        });
        commit.traces.push(self.trace(
            TraceKind::Detached,
            checked.now,
            checked.arrival,
            json!({
                "detachment/id": d.detachment_id,
                "attachment/id": d.attachment_id,
                "client-instance/id": d.client_instance_id,
                "detach/reason": d.detach_reason.as_str(),
                "origin": DetachmentOrigin::Admitted.as_str(),
                "rule": rule.as_str(),
            }),
        ));
        self.commit(commit)?;
        self.sessions.freed(&attachment.bind_session);
        out.transitions.push(Transition {
            rule,
            subject: attachment.attachment_id.clone(),
            client_instance_id: attachment.client_instance_id.clone(),
            from: Some(attachment.state.into()),
            to: LifecycleState::Detached,
            artifact: None,
        });
        out.state = Some(LifecycleState::Detached);
        Ok(Verdict::Admitted)
    }

    fn admit_recovery(
        &mut self,
        checked: &Checked<'_>,
        r: &ClientInstanceRecovery,
        found: Found,
        out: &mut Draft,
    ) -> Result<Verdict, Fail> {
        let bind = checked.bind();
        // R1
        let Some(detachment) = found.detachment else {
            return Err(Rejection::new(
                RejectionCode::UnknownDetachment,
                Check::R1,
                format!(
                    "recovery/from-detachment-id {:?} is not in this node's read model (never \
                     seen, or evicted); recovery fails closed",
                    r.from_detachment_id
                ),
            )
            .into());
        };
        // R2
        if detachment.client_instance_id != r.client_instance_id {
            let replace_allowed = self.policy.recovery == RecoveryPolicy::AllowReplaceDevice
                && r.recovery_mode == orbi_types::pod::RecoveryMode::ReplaceDevice
                && r.token_ref.is_some();
            if !replace_allowed {
                return Err(Rejection::new(
                    RejectionCode::ClientMismatch,
                    Check::R2,
                    format!(
                        "recovery names client {:?}, but detachment {:?} ended client {:?} (a \
                         new device needs replace-device, recovery/token-ref and a host that \
                         allows it)",
                        r.client_instance_id,
                        detachment.detachment_id,
                        detachment.client_instance_id
                    ),
                )
                .into());
            }
        }
        // R3
        if detachment.participant_id != bind.participant_id {
            return Err(Rejection::new(
                RejectionCode::ParticipantMismatch,
                Check::R3,
                format!(
                    "recovery is bound by {}, but detachment {:?} was authorised by {}",
                    bind.participant_id, detachment.detachment_id, detachment.participant_id
                ),
            )
            .into());
        }
        // R4
        let mode = r.recovery_mode;
        let mode_error =
            |message: String| Rejection::new(RejectionCode::ModeNotAllowed, Check::R4, message);
        if mode == orbi_types::pod::RecoveryMode::MigrateToNewHost && r.token_ref.is_none() {
            return Err(mode_error("migrate-to-new-host needs recovery/token-ref".into()).into());
        }
        let allowed = modes_after(detachment.reason);
        if !allowed.contains(&mode) {
            let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            return Err(mode_error(format!(
                "{mode} is not allowed after a {} detachment (allowed: {})",
                detachment.reason,
                names.join(", ")
            ))
            .into());
        }
        // I2
        if let Some(existing) = found.recovery {
            let state = match existing.grant {
                GrantState::Open => LifecycleState::RecoveryGranted,
                GrantState::Consumed => existing
                    .consumed_by
                    .as_deref()
                    .map(|id| self.store.attachment(id))
                    .transpose()?
                    .flatten()
                    .map_or(LifecycleState::Detached, |attachment| {
                        attachment.state.into()
                    }),
                GrantState::Expired => LifecycleState::Detached,
            };
            return self.replay(
                Self::identical(&existing.artifact, checked)?,
                "recovery/id",
                &r.recovery_id,
                Check::I2,
                state,
                out,
            );
        }
        // I3
        let new_bind = self.bind_cache(checked, found.bind_digest)?;
        // State guards.
        let client = &r.client_instance_id;
        let standing = found.standing;
        // A `replace-device` names a new client: one whose lineage here is another
        // participant's is not this participant's to take (see the attachment's guard).
        if standing
            .live
            .as_ref()
            .map(|live| &live.participant_id)
            .or(standing
                .latest_detachment
                .as_ref()
                .map(|d| &d.participant_id))
            .is_some_and(|holder| *holder != bind.participant_id)
        {
            return Err(another_participants(client).into());
        }
        if let Some(live) = standing.live {
            return Err(Rejection::new(
                RejectionCode::AlreadyAttached,
                Check::S,
                format!(
                    "client {client:?} is attached by {:?}; there is nothing to recover",
                    live.attachment_id
                ),
            )
            .into());
        }
        // A client under a sanction comes back only once the host clears it, whichever
        // detachment a recovery cites (a `replace-device` may name another client's).
        if let Some(latest) = &standing.latest_detachment
            && latest.sanction_in_force()
        {
            return Err(sanction_in_force(latest, "its client cannot be recovered").into());
        }
        // A client whose sanction was evicted (only a tombstone of its reason is left, not
        // whether it was cleared) is not recovered here either, as a plain attachment is told.
        if standing.latest_detachment.is_none()
            && let Some(reason) = standing.tombstone
            && is_sanction(reason)
        {
            return Err(state_error(format!(
                "client {client:?} was detached for {reason} and that detachment was evicted; \
                 it cannot be recovered here, attach as a new client instance"
            ))
            .into());
        }
        // Only the latest detachment of the client it ended can be recovered: an older one
        // was superseded by a later attachment, and recovering it would sidestep the reason
        // of the newer detachment (a `policy` sanction, a `device-loss`).
        let latest = if detachment.client_instance_id == *client {
            standing.latest_detachment
        } else {
            self.store
                .latest_detachment(&detachment.client_instance_id)?
        };
        if let Some(latest) = latest
            && latest.detachment_id != detachment.detachment_id
        {
            return Err(state_error(format!(
                "detachment {:?} was superseded: client {:?} was attached again and then \
                 detached by {:?} ({}); only that latest detachment can be recovered",
                detachment.detachment_id,
                detachment.client_instance_id,
                latest.detachment_id,
                latest.reason
            ))
            .into());
        }
        // A sanction holds until the host clears it, whatever the mode (spec §4: "once policy
        // clears", "under operator policy").
        if detachment.sanction_in_force() {
            return Err(sanction_in_force(&detachment, "it cannot be recovered").into());
        }
        let mut commit = Commit::default();
        for prior in self.store.recoveries_from(&detachment.detachment_id)? {
            match prior.grant {
                GrantState::Open if prior.grant_expires_at > checked.now => {
                    return Err(state_error(format!(
                        "recovery {:?} already holds an open grant from detachment {:?}",
                        prior.recovery_id, detachment.detachment_id
                    ))
                    .into());
                }
                GrantState::Open => self.expire_grant(&prior, checked.now, &mut commit),
                GrantState::Consumed => {
                    return Err(state_error(format!(
                        "detachment {:?} was already recovered by {:?}",
                        detachment.detachment_id, prior.recovery_id
                    ))
                    .into());
                }
                GrantState::Expired => {}
            }
        }
        if let Some(other) = standing.open_grant
            && other.from_detachment_id != detachment.detachment_id
        {
            if other.grant_expires_at > checked.now {
                return Err(state_error(format!(
                    "client {client:?} already holds an open grant ({:?})",
                    other.recovery_id
                ))
                .into());
            }
            self.expire_grant(&other, checked.now, &mut commit);
        }
        // An open grant holds a place in the node's share until it is consumed or expires.
        self.peer_share(checked.arrival, None, checked.now)?;
        let expires = checked
            .now
            .saturating_add(self.policy.timings.recovery_window);
        if let Some(trace) = new_bind {
            Self::cache_bind(checked, trace, &mut commit);
        }
        commit.changes.push(Change::InsertRecovery(RecoveryRec {
            recovery_id: r.recovery_id.clone(),
            from_detachment_id: r.from_detachment_id.clone(),
            client_instance_id: client.clone(),
            participant_id: bind.participant_id.clone(),
            mode,
            recovered_at: r.recovered_at.clone(),
            token_ref: r.token_ref.clone(),
            admitted_at: checked.now,
            grant: GrantState::Open,
            grant_expires_at: expires,
            consumed_by: None,
            artifact: checked.bytes.to_vec(),
            bind_session: bind.session_id.clone(),
        }));
        commit.traces.push(self.trace(
            TraceKind::Recovered,
            checked.now,
            checked.arrival,
            json!({
                "recovery/id": r.recovery_id,
                "recovery/from-detachment-id": r.from_detachment_id,
                "client-instance/id": client,
                "recovery/mode": mode.as_str(),
                "grant/expires-at": emit_time(expires).map(|at| at.to_string()),
                "rule": Rule::T16.as_str(),
            }),
        ));
        self.commit(commit)?;
        self.sessions.count_attached(checked.arrival);
        out.transitions.push(Transition {
            rule: Rule::T16,
            subject: r.recovery_id.clone(),
            client_instance_id: client.clone(),
            from: Some(LifecycleState::Detached),
            to: LifecycleState::RecoveryGranted,
            artifact: None,
        });
        out.state = Some(LifecycleState::RecoveryGranted);
        Ok(Verdict::Admitted)
    }
}

/// `E_POD_PARTICIPANT_MISMATCH` for a client whose lineage on this node is another
/// participant's; it names nothing of that participant or its records.
fn another_participants(client: &str) -> Rejection {
    Rejection::new(
        RejectionCode::ParticipantMismatch,
        Check::S,
        format!(
            "client {:?} is another participant's on this node; only that participant may \
             attach or recover it",
            clip(client, 128)
        ),
    )
}

fn state_error(message: String) -> Rejection {
    Rejection::new(RejectionCode::State, Check::S, message)
}

/// `E_POD_STATE`: `detachment` is a sanction the host has not cleared, so `blocked` (what
/// cannot happen) waits until it does.
fn sanction_in_force(detachment: &DetachmentRec, blocked: &str) -> Rejection {
    let suspended = if detachment.under_suspension {
        ", of a suspended attachment"
    } else {
        ""
    };
    state_error(format!(
        "detachment {:?} ({}{suspended}) is a sanction the host has not cleared; {blocked} until \
         the host clears it",
        detachment.detachment_id, detachment.reason
    ))
}

/// A host instant as the timestamp we emit: UTC, `Z`, whole seconds, rounded up so that an
/// emitted time is never before the instant it stands for. `None` outside years 0–9999.
pub(crate) fn emit_time(instant: OffsetDateTime) -> Option<Timestamp> {
    let seconds = instant.unix_timestamp() + i64::from(instant.nanosecond() > 0);
    Timestamp::from_unix_seconds(seconds)
}
