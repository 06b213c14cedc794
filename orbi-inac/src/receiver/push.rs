//! `push`: the header stage (everything decidable before the body), the byte check, the
//! acceptor and the ledger. Inline and stream pushes share every step; only the way the bytes
//! arrive differs.

use std::io::Read;

use orbi_types::{Sha256Digest, inac::Operation, inac::RefusalCode};
use serde::Deserialize;

use super::{
    Exchange, Handled, Receiver,
    authorize::{Authority, PushClaim},
    body::{BodyOutcome, CompletedBody, IncomingBody},
};
use crate::{
    Descriptor, Frame, Payload, Refusal, Verdict,
    budget::BudgetSubject,
    kinds::{Acceptance, Delivery, DeliveryBody, KindMatch},
    ledger::{Consumption, HeldArtifact, IdempotencyRecord, LedgerEntry, RecordedOutcome},
    store::{StagedBody, stage_bytes},
};

/// Everything the header stage established, carried to the body stage.
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    pub exchange: Exchange,
    pub descriptor: Descriptor,
    pub authority: Authority,
}

impl Ticket {
    /// The use of a single-use invitation this transfer makes at `now_ms`.
    fn consumption(&self, now_ms: u64) -> Consumption {
        Consumption {
            peer: self.exchange.peer.clone(),
            idempotency_key: self.exchange.idempotency_key.clone(),
            digest: self.descriptor.digest.clone(),
            at_ms: now_ms,
        }
    }
}

/// Verified bytes, in memory (inline) or staged (stream).
enum VerifiedBody {
    Memory(Vec<u8>),
    Staged(Box<dyn StagedBody>),
}

impl VerifiedBody {
    fn delivery_body(&self) -> DeliveryBody<'_> {
        match self {
            VerifiedBody::Memory(bytes) => DeliveryBody::Memory(bytes),
            VerifiedBody::Staged(staged) => DeliveryBody::Staged(staged.as_ref()),
        }
    }
}

/// A decision made before the body stage: the verdict, logged without side effects.
struct Stop(Verdict);

fn refused(code: RefusalCode, message: impl Into<String>) -> Stop {
    Stop(Verdict::Refuse(Refusal::new(code, message)))
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

/// The top-level `schema` members of a JSON object body, read in one streaming pass (other
/// members are skipped without being kept). Anything but an object yields an error.
struct SchemaProbe(Vec<serde_json::Value>);

impl<'de> Deserialize<'de> for SchemaProbe {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = SchemaProbe;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a json object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SchemaProbe, A::Error> {
                let mut found = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "schema" {
                        found.push(map.next_value()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(SchemaProbe(found))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

impl Receiver {
    pub(super) fn handle_push(
        &mut self,
        peer: &orbi_types::NodeId,
        frame: &Frame,
        now_ms: u64,
    ) -> Handled {
        let exchange = Exchange::of(peer, frame);
        let ticket = match self.push_header(&exchange, frame, now_ms) {
            Ok(ticket) => ticket,
            Err(Stop(verdict)) => {
                return Handled::Answer(self.conclude(
                    &exchange,
                    verdict,
                    LedgerEntry::default(),
                    now_ms,
                ));
            }
        };
        match frame.payload() {
            // Decoded and hashed when the frame was checked (on the transport's thread).
            Some(Payload::Inline(_)) => match frame.verified_inline() {
                Some(Ok(bytes)) => Handled::Answer(self.admit(
                    ticket,
                    VerifiedBody::Memory(bytes.to_vec()),
                    now_ms,
                )),
                Some(Err(refusal)) => {
                    Handled::Answer(self.settle(ticket, Verdict::Refuse(refusal), None, now_ms))
                }
                None => {
                    let verdict = Verdict::Refuse(Refusal::new(
                        RefusalCode::Malformed,
                        "bytes/base64url does not decode",
                    ));
                    Handled::Answer(self.conclude(
                        &exchange,
                        verdict,
                        LedgerEntry::default(),
                        now_ms,
                    ))
                }
            },
            Some(Payload::Stream { .. }) => self.begin_body(ticket, now_ms),
            Some(Payload::Reference(reference)) => {
                let scheme: String = reference
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(32)
                    .collect();
                let refusal = Refusal::new(
                    RefusalCode::OperationNotSupported,
                    format!(
                        "artifact/ref scheme {scheme:?} cannot be resolved here; push inline or as inac-stream"
                    ),
                );
                Handled::Answer(self.refuse(&exchange, refusal, now_ms))
            }
            Some(Payload::Href(_)) | None => {
                let refusal = Refusal::new(
                    RefusalCode::OperationNotSupported,
                    "out-of-band artifact/href fetch is not supported; push inline or as inac-stream",
                );
                Handled::Answer(self.refuse(&exchange, refusal, now_ms))
            }
        }
    }

    /// Steps 2–7 of the processing order: peer gate, budgets, the replay of a delivered
    /// outcome, size limits, passport, kind, idempotency. Nothing here reads the body.
    fn push_header(
        &mut self,
        exchange: &Exchange,
        frame: &Frame,
        now_ms: u64,
    ) -> Result<Ticket, Stop> {
        let peer = &exchange.peer;
        let Some(descriptor) = exchange.descriptor.clone() else {
            return Err(refused(RefusalCode::Malformed, "push without artifact"));
        };
        let allowlisted = self.config.allowed_peers.contains(peer);
        if !allowlisted && frame.authorization().is_none() {
            return Err(refused(
                RefusalCode::NotAuthorized,
                "peer is not allowed to push here and presented no passport",
            ));
        }
        self.budgets
            .check(
                BudgetSubject {
                    peer,
                    operation: Operation::Push,
                    schema: &descriptor.schema,
                    content_type: &descriptor.content_type,
                    size_bytes: Some(descriptor.size_bytes),
                },
                now_ms,
            )
            .map_err(|refusal| Stop(Verdict::Refuse(refusal)))?;
        let recorded = self.recorded(exchange)?;
        if let Some(record) = &recorded
            && record.descriptor == descriptor
            && record.outcome.verdict().is_delivered()
            && (allowlisted || self.passport_binds(peer, frame))
        {
            // A delivered transfer is a fact, not a new admission: its retry is answered
            // before the checks that decide whether a delivery may happen now (limits, the
            // passport's expiry, revocation and single use, the kind), which would refuse for
            // good what this peer already delivered. Nothing is consumed or extended. A peer
            // off the allowlist must still show a passport that is genuinely its own from an
            // issuer this node trusts: the peer gate admits nobody on a passport's presence.
            return Err(Stop(record.outcome.verdict()));
        }
        if descriptor.size_bytes > self.config.max_artifact_size_bytes {
            return Err(refused(
                RefusalCode::PayloadTooLarge,
                format!(
                    "size/bytes {} exceeds this node's limit of {} bytes",
                    descriptor.size_bytes, self.config.max_artifact_size_bytes
                ),
            ));
        }
        if let Some(Payload::Inline(_)) = frame.payload() {
            // The ceiling holds for the bytes as decoded (spec §4) and for the declared size:
            // a length that disagrees with `size/bytes` is refused later, at the byte check.
            let decoded = frame
                .inline_bytes()
                .map_or(0, |(bytes, _)| bytes.len() as u64);
            let inline = decoded.max(descriptor.size_bytes);
            if inline > self.config.inline_max_bytes {
                return Err(refused(
                    RefusalCode::PayloadTooLarge,
                    format!(
                        "inline payload of {inline} bytes exceeds the inline ceiling of {} bytes; push in stream mode",
                        self.config.inline_max_bytes
                    ),
                ));
            }
        }
        let claim = PushClaim {
            peer,
            descriptor: &descriptor,
            idempotency_key: exchange.idempotency_key.as_deref(),
            now_ms,
        };
        let authority = match frame.authorization() {
            Some(authorization) => self
                .authorize_push(&claim, authorization)
                .map_err(|refusal| Stop(Verdict::Refuse(refusal)))?,
            None => Authority::Allowlisted,
        };
        self.kind_available(&descriptor)
            .map_err(|refusal| Stop(Verdict::Refuse(refusal)))?;
        Self::judge_recorded(exchange, recorded, &descriptor)?;
        Ok(Ticket {
            exchange: exchange.clone(),
            descriptor,
            authority,
        })
    }

    pub(super) fn kind_available(&self, descriptor: &Descriptor) -> Result<(), Refusal> {
        match self
            .kinds
            .lookup(&descriptor.schema, &descriptor.content_type)
        {
            KindMatch::Acceptor(acceptor) => match acceptor.max_size_bytes() {
                Some(max) if descriptor.size_bytes > max => Err(Refusal::new(
                    RefusalCode::PayloadTooLarge,
                    format!(
                        "{} artifacts have at most {max} bytes here",
                        descriptor.schema
                    ),
                )),
                _ => Ok(()),
            },
            KindMatch::Conflicted => Err(Refusal::new(
                RefusalCode::KindConflict,
                format!("more than one acceptor claims {} here", descriptor.schema),
            )),
            KindMatch::Unsupported => Err(Refusal::new(
                RefusalCode::KindNotSupported,
                format!(
                    "no acceptor for {} ({}) at this node",
                    descriptor.schema, descriptor.content_type
                ),
            )),
        }
    }

    /// Whether the frame's passport, apart from everything that changes with time or use
    /// (expiry, revocation, single use, scope), binds `peer`: it parses, names `peer` as its
    /// holder and allowed caller, comes from this node or an issuer it trusts, and its
    /// signature verifies.
    fn passport_binds(&self, peer: &orbi_types::NodeId, frame: &Frame) -> bool {
        let Some(authorization) = frame.authorization() else {
            return false;
        };
        let Ok(passport) = crate::passport::CapabilityPassport::parse(&authorization.passport)
        else {
            return false;
        };
        passport.node_id == *peer
            && passport.allows_caller(peer)
            && self.trusts_issuer(&passport.issuer_participant_id)
            && passport.verify_signature().is_ok()
    }

    /// The record under the push's `(peer, idempotency/key)`, if it has a key.
    fn recorded(&self, exchange: &Exchange) -> Result<Option<IdempotencyRecord>, Stop> {
        let Some(key) = &exchange.idempotency_key else {
            return Ok(None);
        };
        self.ledger
            .idempotency(&exchange.peer, key)
            .map_err(|e| Stop(Verdict::Refuse(Self::ledger_unavailable(&e))))
    }

    /// Spec §3.4: a repeated key with another descriptor is `malformed`; with the same one and
    /// a terminal outcome, that outcome is replayed; a retryable outcome is evaluated afresh.
    fn judge_recorded(
        exchange: &Exchange,
        record: Option<IdempotencyRecord>,
        descriptor: &Descriptor,
    ) -> Result<(), Stop> {
        match record {
            Some(record) if record.descriptor != *descriptor => Err(refused(
                RefusalCode::Malformed,
                format!(
                    "idempotency/key {:?} was used for a different artifact",
                    exchange.idempotency_key.as_deref().unwrap_or_default()
                ),
            )),
            Some(record) => {
                let verdict = record.outcome.verdict();
                if verdict.is_terminal() {
                    Err(Stop(verdict))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// `judge_recorded` on the record as it stands now.
    fn replay(&self, exchange: &Exchange, descriptor: &Descriptor) -> Result<(), Stop> {
        let record = self.recorded(exchange)?;
        Self::judge_recorded(exchange, record, descriptor)
    }

    /// A stream header that passed every check: already held means no body is needed;
    /// otherwise the body stage starts.
    fn begin_body(&mut self, ticket: Ticket, now_ms: u64) -> Handled {
        match self.held_already(&ticket.descriptor) {
            Ok(true) => {
                return Handled::Answer(self.settle(
                    ticket,
                    Verdict::AlreadyPresent,
                    Some(false),
                    now_ms,
                ));
            }
            Ok(false) => {}
            Err(refusal) => {
                return Handled::Answer(self.refuse(&ticket.exchange, refusal, now_ms));
            }
        }
        let claimed = self.bodies.claim_or_refuse(
            &ticket.exchange.peer,
            self.config.stream_pushes_per_peer,
            (
                "this node takes no stream-mode push",
                "stream-mode pushes of this peer are already in progress",
            ),
            self.config.stream_push_retry_after_ms,
        );
        let slot = match claimed {
            Ok(slot) => slot,
            Err(refusal) => {
                return Handled::Answer(self.refuse(&ticket.exchange, refusal, now_ms));
            }
        };
        match self.store.stage() {
            Ok(writer) => Handled::ReadBody(IncomingBody::new(ticket, writer, slot)),
            Err(error) => {
                tracing::error!(%error, "cannot stage a body");
                let refusal = Refusal::handler_unavailable("the receiver cannot stage bodies now");
                Handled::Answer(self.refuse(&ticket.exchange, refusal, now_ms))
            }
        }
    }

    /// Whether `descriptor` is held: on record, and, when this node kept the bytes, still whole
    /// in the store. An object cut short (relaxed durability, then a power loss) is taken again
    /// from the next push, which the store's commit repairs; the ledger keeps its first row.
    pub(super) fn held_already(&self, descriptor: &Descriptor) -> Result<bool, Refusal> {
        let held = self
            .ledger
            .held(&descriptor.schema, &descriptor.digest)
            .map_err(|e| Self::ledger_unavailable(&e))?;
        match held {
            Some(held) if held.kept => {
                let size = held.descriptor.size_bytes;
                match self.store.intact(&descriptor.digest, size) {
                    Ok(true) => Ok(true),
                    Ok(false) => {
                        let digest = &descriptor.digest;
                        tracing::warn!(%digest, "a held object is cut short; taking it again");
                        Ok(false)
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot inspect the store");
                        Err(Refusal::handler_unavailable("the store cannot be read now"))
                    }
                }
            }
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    pub(super) fn finish_body(&mut self, body: CompletedBody, now_ms: u64) -> Frame {
        let CompletedBody {
            ticket,
            outcome,
            _slot,
        } = body;
        match outcome {
            BodyOutcome::Verified(staged) => {
                self.admit(ticket, VerifiedBody::Staged(staged), now_ms)
            }
            BodyOutcome::Mismatch(refusal) => {
                self.settle(ticket, Verdict::Refuse(refusal), None, now_ms)
            }
            BodyOutcome::Failed(refusal) => self.refuse(&ticket.exchange, refusal, now_ms),
        }
    }

    /// Steps 8–10 for verified bytes. For a streamed body, state that may have changed while
    /// it was in flight (the key answered, the invitation used, the custody quota used up) is
    /// checked again first.
    fn admit(&mut self, ticket: Ticket, body: VerifiedBody, now_ms: u64) -> Frame {
        if let VerifiedBody::Staged(_) = body {
            if let Err(Stop(verdict)) = self.replay(&ticket.exchange, &ticket.descriptor) {
                return self.conclude(&ticket.exchange, verdict, LedgerEntry::default(), now_ms);
            }
            let still = self
                .invitation_still_usable(&ticket)
                .and_then(|()| self.custody_still_within(&ticket));
            if let Err(refusal) = still {
                let verdict = Verdict::Refuse(refusal);
                return self.conclude(&ticket.exchange, verdict, LedgerEntry::default(), now_ms);
            }
        }
        match self.held_already(&ticket.descriptor) {
            Ok(true) => return self.settle(ticket, Verdict::AlreadyPresent, Some(false), now_ms),
            Ok(false) => {}
            Err(refusal) => {
                return self.refuse(&ticket.exchange, refusal, now_ms);
            }
        }
        if let Some(refusal) = self.probe_kind(&ticket.descriptor, &body) {
            return self.settle(ticket, Verdict::Refuse(refusal), None, now_ms);
        }
        let acceptance = match self
            .kinds
            .lookup(&ticket.descriptor.schema, &ticket.descriptor.content_type)
        {
            KindMatch::Acceptor(acceptor) => acceptor.accept(&Delivery {
                peer: &ticket.exchange.peer,
                descriptor: &ticket.descriptor,
                body: body.delivery_body(),
            }),
            // The header stage checked the kind and the registry never changes.
            KindMatch::Conflicted | KindMatch::Unsupported => Acceptance::Refuse(Refusal::new(
                RefusalCode::KindNotSupported,
                "no acceptor for this kind",
            )),
        };
        let (verdict, kept) = match acceptance {
            Acceptance::Keep => match self.keep(&ticket.descriptor.digest, body) {
                Ok(()) => (Verdict::Ingested, Some(true)),
                Err(refusal) => (Verdict::Refuse(refusal), None),
            },
            Acceptance::Taken => (Verdict::Ingested, Some(false)),
            Acceptance::AlreadyPresent => (Verdict::AlreadyPresent, Some(false)),
            Acceptance::Refuse(refusal) => (Verdict::Refuse(refusal), None),
        };
        self.settle(ticket, verdict, kept, now_ms)
    }

    fn keep(&self, digest: &Sha256Digest, body: VerifiedBody) -> Result<(), Refusal> {
        let staged = match body {
            VerifiedBody::Staged(staged) => Ok(staged),
            VerifiedBody::Memory(bytes) => stage_bytes(self.store.as_ref(), &bytes),
        };
        staged
            .and_then(|staged| staged.commit(digest))
            .map(|_| ())
            .map_err(|error| {
                tracing::error!(%error, "cannot store an admitted artifact");
                Refusal::handler_unavailable("the receiver cannot store the artifact now")
            })
    }

    fn invitation_still_usable(&self, ticket: &Ticket) -> Result<(), Refusal> {
        let Authority::Invitation {
            passport_id,
            single_use: true,
        } = &ticket.authority
        else {
            return Ok(());
        };
        let record = self
            .ledger
            .invitation(passport_id)
            .map_err(|e| Self::ledger_unavailable(&e))?;
        let this_transfer = ticket.consumption(0);
        let used_by_other = record
            .and_then(|r| r.consumed)
            .is_some_and(|used| !used.same_transfer(&this_transfer));
        if used_by_other {
            return Err(Refusal::new(
                RefusalCode::InvitationRevoked,
                format!(
                    "single-use invitation {passport_id} was used by another transfer meanwhile"
                ),
            ));
        }
        Ok(())
    }

    /// A custody passport's record quota, checked again once a streamed body has arrived:
    /// other pushes under the same passport may have used it up meanwhile.
    fn custody_still_within(&self, ticket: &Ticket) -> Result<(), Refusal> {
        let Authority::Custody {
            passport_id,
            max_records: Some(max),
        } = &ticket.authority
        else {
            return Ok(());
        };
        let descriptor = &ticket.descriptor;
        let (records, holds) = self
            .ledger
            .custody_usage(passport_id, &descriptor.schema, &descriptor.digest)
            .map_err(|e| Self::ledger_unavailable(&e))?;
        if records >= *max && !holds {
            return Err(Refusal::new(
                RefusalCode::QuotaExceeded,
                format!("custody passport already holds its {max} records"),
            ));
        }
        Ok(())
    }

    /// `kind-conflict` when a JSON body names a different `schema` than its descriptor.
    fn probe_kind(&self, descriptor: &Descriptor, body: &VerifiedBody) -> Option<Refusal> {
        if descriptor.size_bytes > self.config.kind_probe_max_bytes
            || !is_json(&descriptor.content_type)
        {
            return None;
        }
        let probe: SchemaProbe = match body {
            VerifiedBody::Memory(bytes) => serde_json::from_slice(bytes).ok()?,
            VerifiedBody::Staged(staged) => {
                let reader = staged.open().ok()?;
                serde_json::from_reader(reader.take(self.config.kind_probe_max_bytes)).ok()?
            }
        };
        // The artifact's own text is not echoed: it is payload.
        let conflict = match probe.0.as_slice() {
            [] => false,
            [serde_json::Value::String(inner)] => *inner != descriptor.schema,
            [_] => false,
            // A repeated member is ambiguous: parsers disagree on which one counts.
            _ => true,
        };
        conflict.then(|| {
            Refusal::new(
                RefusalCode::KindConflict,
                format!(
                    "the artifact's own schema member contradicts the pushed schema {:?}",
                    descriptor.schema
                ),
            )
        })
    }

    /// Concludes a push outcome from step 8 on: records it under the idempotency key and, on
    /// success, admits the artifact and consumes the authority (`kept`: whether the bytes are
    /// in this node's store; `None` for refusals).
    fn settle(
        &mut self,
        ticket: Ticket,
        verdict: Verdict,
        kept: Option<bool>,
        now_ms: u64,
    ) -> Frame {
        let consumption = ticket.consumption(now_ms);
        let Ticket {
            exchange,
            descriptor,
            authority,
        } = ticket;
        let mut effects = LedgerEntry {
            idempotency: exchange.idempotency_key.clone().map(|key| {
                (
                    key,
                    IdempotencyRecord {
                        descriptor: descriptor.clone(),
                        outcome: RecordedOutcome::of(&verdict),
                    },
                )
            }),
            ..LedgerEntry::default()
        };
        if verdict.is_delivered() {
            effects.admitted = Some(HeldArtifact {
                descriptor: descriptor.clone(),
                source_peer: exchange.peer.clone(),
                kept: kept.unwrap_or(false),
                at_ms: now_ms,
            });
            match &authority {
                Authority::Invitation {
                    passport_id,
                    single_use: true,
                } => effects.consumed_invitation = Some((passport_id.clone(), consumption)),
                Authority::Custody { passport_id, .. } => {
                    effects.custody_use = Some((
                        passport_id.clone(),
                        descriptor.schema.clone(),
                        descriptor.digest.clone(),
                    ));
                }
                _ => {}
            }
        }
        self.conclude(&exchange, verdict, effects, now_ms)
    }
}
