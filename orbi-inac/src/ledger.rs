//! The receiver's durable memory behind the [`Ledger`] trait: every decision, idempotency
//! keys, held artifacts, pending offers, issued and consumed invitations, revocations and
//! custody usage. [`SqliteLedger`] persists it; [`MemoryLedger`] keeps it in memory for
//! deterministic tests. Both keep the same contract (tested against each).

mod memory;
pub(crate) mod sqlite;

use orbi_types::{NodeId, Sha256Digest, Sha256Hasher, inac::Operation, inac::RefusalCode};

pub use memory::MemoryLedger;
pub use sqlite::{SqliteLedger, TRANSFER_LOG_ROWS};

use crate::{Descriptor, Refusal, Verdict, passport::IssuedPassport};

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database refused an operation.
    #[error("ledger database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A stored row cannot be read back (a value no longer parses).
    #[error("ledger row is unreadable: {0}")]
    Corrupt(String),
    /// The ledger file's schema is older than this build's, and it was opened without
    /// migrating ([`SqliteLedger::open_existing`]). Version 0: the file was never a ledger.
    #[error(
        "ledger schema version {found} is older than this build's {current}; the serving node \
         migrates it when it opens the ledger"
    )]
    Outdated {
        /// The file's schema version.
        found: i64,
        /// This build's schema version.
        current: i64,
    },
    /// The ledger file could not be created.
    #[error("cannot create ledger file {}: {source}", path.display())]
    Create {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No offer has this id.
    #[error("no offer with id {0}")]
    UnknownOffer(u64),
    /// The offer was already decided the other way.
    #[error("offer {id} is already {state}")]
    OfferDecided {
        /// The offer.
        id: u64,
        /// Its current state.
        state: OfferState,
    },
}

/// The receiver-local identity of a push admission (spec §3.4): sha256 over a
/// domain-separated, length-framed tuple of the remote node id, the idempotency key (or, without
/// one, the digest) and the schema. Retries of one transfer share it; the sender's own ids
/// never take its place.
///
/// ```
/// use orbi_inac::ledger::admission_id;
/// use orbi_types::{KeyPair, Sha256Digest};
///
/// let peer = KeyPair::from_seed(&[2; 32]).node_id();
/// let digest = Sha256Digest::of(b"{}");
/// let first = admission_id(&peer, Some("k-1"), &digest, "memarium-blob.v1");
/// assert_eq!(first, admission_id(&peer, Some("k-1"), &digest, "memarium-blob.v1"));
/// assert_ne!(first, admission_id(&peer, None, &digest, "memarium-blob.v1"));
/// ```
pub fn admission_id(
    peer: &NodeId,
    idempotency_key: Option<&str>,
    digest: &Sha256Digest,
    schema: &str,
) -> Sha256Digest {
    let (kind, value): (&[u8], &str) = match idempotency_key {
        Some(key) => (b"key", key),
        None => (b"digest", digest.as_str()),
    };
    let mut hasher = Sha256Hasher::new();
    hasher.update(b"orbi-inac-admission-v1\0");
    for field in [
        peer.as_str().as_bytes(),
        kind,
        value.as_bytes(),
        schema.as_bytes(),
    ] {
        hasher.update(&(field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    hasher.finish()
}

/// Makes committed ledger writes durable (see [`Ledger::defer_sync`]).
#[derive(Clone)]
pub struct SyncHandle(std::sync::Arc<dyn Fn() -> std::io::Result<()> + Send + Sync>);

impl SyncHandle {
    /// A handle that runs `sync`.
    pub fn new(sync: impl Fn() -> std::io::Result<()> + Send + Sync + 'static) -> Self {
        SyncHandle(std::sync::Arc::new(sync))
    }

    /// Makes every write committed before this call durable.
    pub fn sync(&self) -> std::io::Result<()> {
        (self.0)()
    }
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncHandle")
    }
}

/// One decision as logged: every initiating frame gets one, refusals included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    /// When, in Unix milliseconds.
    pub at_ms: u64,
    /// The authenticated remote node.
    pub peer: NodeId,
    /// The initiating operation, when the frame named one.
    pub operation: Option<Operation>,
    /// `correlation/id`.
    pub correlation_id: Option<String>,
    /// `idempotency/key`.
    pub idempotency_key: Option<String>,
    /// The artifact, when the frame described one; the receiver cuts its `schema`,
    /// `content/type` and `artifact/id` at 256 characters (marked with a trailing `…`).
    pub descriptor: Option<Descriptor>,
    /// The [`admission_id`] of a push.
    pub admission_id: Option<Sha256Digest>,
    /// The answer's operation.
    pub answer: Operation,
    /// The answer's refusal code.
    pub refusal_code: Option<RefusalCode>,
    /// Why, in words (never payload bytes or passport bodies).
    pub note: String,
}

/// A recorded push outcome, replayable for a repeated idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedOutcome {
    /// `ingested`, `already-present` or `refused`.
    pub answer: Operation,
    /// The refusal code when refused.
    pub refusal_code: Option<RefusalCode>,
    /// The message that was sent.
    pub message: String,
}

impl RecordedOutcome {
    /// The outcome of a push verdict.
    pub fn of(verdict: &Verdict) -> Self {
        let message = match verdict {
            Verdict::Refuse(refusal) | Verdict::Decline(refusal) => refusal.message().to_owned(),
            _ => String::new(),
        };
        RecordedOutcome {
            answer: verdict.operation(),
            refusal_code: verdict.refusal_code(),
            message,
        }
    }

    /// The verdict to replay.
    pub fn verdict(&self) -> Verdict {
        match (self.answer, self.refusal_code) {
            (Operation::Ingested, _) => Verdict::Ingested,
            (Operation::AlreadyPresent, _) => Verdict::AlreadyPresent,
            (_, code) => Verdict::Refuse(Refusal::new(
                code.unwrap_or(RefusalCode::Malformed),
                self.message.clone(),
            )),
        }
    }
}

/// The descriptor and outcome recorded under `(peer, idempotency/key)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// What was pushed under the key.
    pub descriptor: Descriptor,
    /// How it ended.
    pub outcome: RecordedOutcome,
}

/// An artifact this node admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldArtifact {
    /// What it is.
    pub descriptor: Descriptor,
    /// The node that delivered it first.
    pub source_peer: NodeId,
    /// Whether the bytes are in this node's store (`false`: an acceptor took them).
    pub kept: bool,
    /// When, in Unix milliseconds.
    pub at_ms: u64,
}

/// Where an offer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferState {
    /// Waiting for the operator.
    Pending,
    /// The operator accepted: the next matching offer gets an invitation.
    Accepted,
    /// The operator rejected.
    Rejected,
}

impl OfferState {
    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            OfferState::Pending => "pending",
            OfferState::Accepted => "accepted",
            OfferState::Rejected => "rejected",
        }
    }

    /// The state an operator decision leads to.
    pub const fn decided(accept: bool) -> Self {
        if accept {
            OfferState::Accepted
        } else {
            OfferState::Rejected
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            OfferState::Pending,
            OfferState::Accepted,
            OfferState::Rejected,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

impl std::fmt::Display for OfferState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An offer from a peer, awaiting or past an operator decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferRecord {
    /// Local id (what the operator names).
    pub id: u64,
    /// Who offered.
    pub peer: NodeId,
    /// What was offered.
    pub descriptor: Descriptor,
    /// The offer's `correlation/id`.
    pub correlation_id: Option<String>,
    /// When it arrived, Unix milliseconds.
    pub created_at_ms: u64,
    /// Where it stands.
    pub state: OfferState,
    /// When the operator decided.
    pub decided_at_ms: Option<u64>,
    /// The invitation issued for it, once issued.
    pub invitation_id: Option<String>,
}

/// A use of a single-use invitation: which transfer consumed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumption {
    /// The pushing node.
    pub peer: NodeId,
    /// The push's `idempotency/key`.
    pub idempotency_key: Option<String>,
    /// The pushed digest.
    pub digest: Sha256Digest,
    /// When, Unix milliseconds.
    pub at_ms: u64,
}

impl Consumption {
    /// Whether `other` is the same transfer (same peer, key and digest): a retry, not a
    /// second use.
    pub fn same_transfer(&self, other: &Consumption) -> bool {
        self.peer == other.peer
            && self.idempotency_key == other.idempotency_key
            && self.digest == other.digest
    }
}

/// An invitation passport this node issued.
#[derive(Clone, Debug, PartialEq)]
pub struct InvitationRecord {
    /// `passport_id`.
    pub passport_id: String,
    /// The offer it answers.
    pub offer_id: u64,
    /// The invited node.
    pub peer: NodeId,
    /// The passport as issued.
    pub passport: IssuedPassport,
    /// Issue time, Unix milliseconds.
    pub issued_at_ms: u64,
    /// Expiry, Unix milliseconds.
    pub expires_at_ms: u64,
    /// Which transfer used it, once used.
    pub consumed: Option<Consumption>,
}

/// Everything one decision changes, written atomically by [`Ledger::record`].
#[derive(Clone, Debug, Default)]
pub struct LedgerEntry {
    /// The decision (always logged when present).
    pub transfer: Option<TransferRecord>,
    /// `(idempotency/key, record)` to store under the transfer's peer (replacing an earlier
    /// retryable outcome).
    pub idempotency: Option<(String, IdempotencyRecord)>,
    /// A newly admitted artifact (kept if one with the same schema and digest is held).
    pub admitted: Option<HeldArtifact>,
    /// `(passport_id, use)`: consumes a single-use invitation not consumed yet.
    pub consumed_invitation: Option<(String, Consumption)>,
    /// `(passport_id, schema, digest)`: one record against a custody passport's quota.
    pub custody_use: Option<(String, String, Sha256Digest)>,
}

/// Where a [`HeldArtifact`] is looked up from a `request`.
#[derive(Clone, Copy, Debug)]
pub struct ArtifactQuery<'a> {
    /// The artifact schema.
    pub schema: &'a str,
    /// The media type.
    pub content_type: &'a str,
    /// The exact artifact id, if asked.
    pub artifact_id: Option<&'a str>,
    /// The exact digest, if asked.
    pub digest: Option<&'a Sha256Digest>,
    /// Only artifacts this node delivered first, if set: a peer that may fetch only its own
    /// artifacts must find its own under an id that another peer used for other bytes since.
    pub delivered_by: Option<&'a NodeId>,
}

impl ArtifactQuery<'_> {
    fn matches(&self, held: &HeldArtifact) -> bool {
        let d = &held.descriptor;
        d.schema == self.schema
            && d.content_type == self.content_type
            && self.artifact_id.is_none_or(|id| d.artifact_id == id)
            && self.digest.is_none_or(|digest| d.digest == *digest)
            && self
                .delivered_by
                .is_none_or(|peer| held.source_peer == *peer)
    }
}

/// The receiver's durable state. Implementations must make [`Ledger::record`] atomic and
/// durable before returning.
pub trait Ledger: Send {
    /// Writes one decision and everything it changes, atomically.
    fn record(&mut self, entry: &LedgerEntry) -> Result<(), LedgerError>;

    /// Starts a group: writes until [`Ledger::commit_group`] are atomic each, become durable
    /// together at the commit, and are visible to this ledger's own reads at once. The
    /// default (for ledgers whose writes are durable at once) does nothing.
    fn begin_group(&mut self) -> Result<(), LedgerError> {
        Ok(())
    }

    /// Makes every write since [`Ledger::begin_group`] durable; on error none of them is.
    /// After [`Ledger::defer_sync`], durable only once the [`SyncHandle`] has synced.
    fn commit_group(&mut self) -> Result<(), LedgerError> {
        Ok(())
    }

    /// Lets commits return before their writes reach the disk; the returned handle makes every
    /// write committed before the call durable, and may run on another thread while this
    /// ledger goes on. The caller must sync before reporting any decision committed since the
    /// last sync. `None` (the default): commits are as durable as they will get already.
    fn defer_sync(&mut self) -> Result<Option<SyncHandle>, LedgerError> {
        Ok(None)
    }

    /// The record under `(peer, key)`.
    fn idempotency(
        &self,
        peer: &NodeId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, LedgerError>;

    /// The admitted artifact with `schema` and `digest`.
    fn held(
        &self,
        schema: &str,
        digest: &Sha256Digest,
    ) -> Result<Option<HeldArtifact>, LedgerError>;

    /// The most recently admitted artifact matching `query`.
    fn find_held(&self, query: &ArtifactQuery<'_>) -> Result<Option<HeldArtifact>, LedgerError>;

    /// Every admitted artifact, oldest first.
    fn held_artifacts(&self) -> Result<Vec<HeldArtifact>, LedgerError>;

    /// Logged decisions, newest first, at most `limit`.
    fn recent_transfers(&self, limit: usize) -> Result<Vec<TransferRecord>, LedgerError>;

    /// Stores a new pending offer and returns its id.
    fn insert_offer(
        &mut self,
        peer: &NodeId,
        descriptor: &Descriptor,
        correlation_id: Option<&str>,
        at_ms: u64,
    ) -> Result<u64, LedgerError>;

    /// The newest offer from `peer` for exactly `descriptor`.
    fn latest_offer(
        &self,
        peer: &NodeId,
        descriptor: &Descriptor,
    ) -> Result<Option<OfferRecord>, LedgerError>;

    /// How many offers await a decision: from `peer`, or from anyone.
    fn pending_offer_count(&self, peer: Option<&NodeId>) -> Result<u64, LedgerError>;

    /// One offer.
    fn offer(&self, id: u64) -> Result<Option<OfferRecord>, LedgerError>;

    /// Every offer, oldest first.
    fn offers(&self) -> Result<Vec<OfferRecord>, LedgerError>;

    /// Records the operator's decision. Deciding the same way twice changes nothing;
    /// deciding a decided offer the other way is [`LedgerError::OfferDecided`].
    fn decide_offer(
        &mut self,
        id: u64,
        accept: bool,
        at_ms: u64,
    ) -> Result<OfferRecord, LedgerError>;

    /// Stores an issued invitation and links it to its offer.
    fn insert_invitation(&mut self, invitation: &InvitationRecord) -> Result<(), LedgerError>;

    /// An issued invitation.
    fn invitation(&self, passport_id: &str) -> Result<Option<InvitationRecord>, LedgerError>;

    /// Adds `passport_id` to the local revocation list.
    fn revoke(&mut self, passport_id: &str, at_ms: u64) -> Result<(), LedgerError>;

    /// Whether `passport_id` is on the local revocation list.
    fn is_revoked(&self, passport_id: &str) -> Result<bool, LedgerError>;

    /// How many distinct artifacts were admitted under custody passport `passport_id`, and
    /// whether `(schema, digest)` is one of them.
    fn custody_usage(
        &self,
        passport_id: &str,
        schema: &str,
        digest: &Sha256Digest,
    ) -> Result<(u64, bool), LedgerError>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use orbi_types::{KeyPair, inac::Operation};

    fn peer(seed: u8) -> NodeId {
        KeyPair::from_seed(&[seed; 32]).node_id()
    }

    pub(crate) fn transfer(peer: &NodeId, at_ms: u64) -> TransferRecord {
        TransferRecord {
            at_ms,
            peer: peer.clone(),
            operation: Some(Operation::Push),
            correlation_id: Some("c".into()),
            idempotency_key: Some("k".into()),
            descriptor: Some(Descriptor::of_bytes("vendor.x.v1", "text/plain", b"x")),
            admission_id: Some(Sha256Digest::of(b"admission")),
            answer: Operation::Refused,
            refusal_code: Some(RefusalCode::NotAuthorized),
            note: "no".into(),
        }
    }

    /// The contract every ledger keeps.
    pub(crate) fn ledger_contract(ledger: &mut dyn Ledger) {
        let p = peer(1);
        let descriptor = Descriptor::of_bytes("vendor.x.v1", "text/plain", b"x");

        // Transfers, newest first.
        ledger
            .record(&LedgerEntry {
                transfer: Some(transfer(&p, 1)),
                ..LedgerEntry::default()
            })
            .unwrap();
        ledger
            .record(&LedgerEntry {
                transfer: Some(transfer(&p, 2)),
                ..LedgerEntry::default()
            })
            .unwrap();
        let recent = ledger.recent_transfers(10).unwrap();
        assert_eq!(
            recent.iter().map(|t| t.at_ms).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(recent[0], transfer(&p, 2));
        assert_eq!(ledger.recent_transfers(1).unwrap().len(), 1);

        // Idempotency upserts.
        assert_eq!(ledger.idempotency(&p, "k").unwrap(), None);
        let limited = IdempotencyRecord {
            descriptor: descriptor.clone(),
            outcome: RecordedOutcome::of(&Verdict::Refuse(Refusal::handler_unavailable("down"))),
        };
        ledger
            .record(&LedgerEntry {
                idempotency: Some(("k".into(), limited.clone())),
                ..LedgerEntry::default()
            })
            .unwrap();
        assert_eq!(
            ledger.idempotency(&p, "k").unwrap(),
            None,
            "needs a transfer's peer"
        );
        let ingested = IdempotencyRecord {
            descriptor: descriptor.clone(),
            outcome: RecordedOutcome::of(&Verdict::Ingested),
        };
        let held = HeldArtifact {
            descriptor: descriptor.clone(),
            source_peer: p.clone(),
            kept: true,
            at_ms: 3,
        };
        ledger
            .record(&LedgerEntry {
                transfer: Some(transfer(&p, 3)),
                idempotency: Some(("k".into(), limited)),
                ..LedgerEntry::default()
            })
            .unwrap();
        ledger
            .record(&LedgerEntry {
                transfer: Some(transfer(&p, 4)),
                idempotency: Some(("k".into(), ingested.clone())),
                admitted: Some(held.clone()),
                custody_use: Some((
                    "passport:capability:c".into(),
                    "vendor.x.v1".into(),
                    descriptor.digest.clone(),
                )),
                ..LedgerEntry::default()
            })
            .unwrap();
        assert_eq!(ledger.idempotency(&p, "k").unwrap(), Some(ingested));
        assert_eq!(ledger.idempotency(&peer(2), "k").unwrap(), None);

        // Held artifacts: first admission wins.
        let mut later = held.clone();
        later.source_peer = peer(2);
        later.at_ms = 9;
        ledger
            .record(&LedgerEntry {
                admitted: Some(later),
                ..LedgerEntry::default()
            })
            .unwrap();
        assert_eq!(
            ledger.held("vendor.x.v1", &descriptor.digest).unwrap(),
            Some(held.clone())
        );
        assert_eq!(
            ledger.held("vendor.y.v1", &descriptor.digest).unwrap(),
            None
        );
        let query = ArtifactQuery {
            schema: "vendor.x.v1",
            content_type: "text/plain",
            artifact_id: Some(descriptor.artifact_id.as_str()),
            digest: None,
            delivered_by: None,
        };
        assert_eq!(ledger.find_held(&query).unwrap(), Some(held.clone()));
        let wrong_type = ArtifactQuery {
            content_type: "application/json",
            ..query
        };
        assert_eq!(ledger.find_held(&wrong_type).unwrap(), None);
        assert_eq!(ledger.held_artifacts().unwrap(), vec![held.clone()]);

        // Other bytes under the same id from another peer: newest first, unless the query
        // names whose artifact it wants.
        let reused = HeldArtifact {
            descriptor: Descriptor::of_bytes("vendor.x.v1", "text/plain", b"other")
                .with_artifact_id(&descriptor.artifact_id),
            source_peer: peer(2),
            kept: true,
            at_ms: 10,
        };
        ledger
            .record(&LedgerEntry {
                admitted: Some(reused.clone()),
                ..LedgerEntry::default()
            })
            .unwrap();
        assert_eq!(ledger.find_held(&query).unwrap(), Some(reused.clone()));
        for (peer, expected) in [(&p, &held), (&peer(2), &reused)] {
            let theirs = ArtifactQuery {
                delivered_by: Some(peer),
                ..query
            };
            assert_eq!(ledger.find_held(&theirs).unwrap().as_ref(), Some(expected));
            let by_digest = ArtifactQuery {
                artifact_id: None,
                digest: Some(&expected.descriptor.digest),
                ..theirs
            };
            assert_eq!(
                ledger.find_held(&by_digest).unwrap().as_ref(),
                Some(expected)
            );
        }
        let stranger = peer(3);
        let nobodys = ArtifactQuery {
            delivered_by: Some(&stranger),
            ..query
        };
        assert_eq!(ledger.find_held(&nobodys).unwrap(), None);
        assert_eq!(ledger.held_artifacts().unwrap(), vec![held, reused]);

        // Custody usage counts distinct artifacts.
        assert_eq!(
            ledger
                .custody_usage("passport:capability:c", "vendor.x.v1", &descriptor.digest)
                .unwrap(),
            (1, true)
        );
        let other = Sha256Digest::of(b"y");
        assert_eq!(
            ledger
                .custody_usage("passport:capability:c", "vendor.x.v1", &other)
                .unwrap(),
            (1, false)
        );

        // Offers.
        let first = ledger
            .insert_offer(&p, &descriptor, Some("c-1"), 10)
            .unwrap();
        let second = ledger.insert_offer(&p, &descriptor, None, 11).unwrap();
        assert_ne!(first, second);
        assert_eq!(ledger.pending_offer_count(Some(&p)).unwrap(), 2);
        assert_eq!(ledger.pending_offer_count(Some(&peer(2))).unwrap(), 0);
        assert_eq!(ledger.pending_offer_count(None).unwrap(), 2);
        assert_eq!(
            ledger.latest_offer(&p, &descriptor).unwrap().unwrap().id,
            second
        );
        let accepted = ledger.decide_offer(second, true, 12).unwrap();
        assert_eq!(accepted.state, OfferState::Accepted);
        assert_eq!(accepted.decided_at_ms, Some(12));
        assert_eq!(ledger.decide_offer(second, true, 13).unwrap(), accepted);
        assert!(matches!(
            ledger.decide_offer(second, false, 13),
            Err(LedgerError::OfferDecided { .. })
        ));
        assert!(matches!(
            ledger.decide_offer(999, true, 13),
            Err(LedgerError::UnknownOffer(999))
        ));
        assert!(matches!(
            ledger.decide_offer(u64::MAX, true, 13),
            Err(LedgerError::UnknownOffer(u64::MAX))
        ));
        assert_eq!(ledger.offer(u64::MAX).unwrap(), None);
        assert_eq!(ledger.pending_offer_count(Some(&p)).unwrap(), 1);
        assert_eq!(
            ledger
                .offers()
                .unwrap()
                .iter()
                .map(|o| o.id)
                .collect::<Vec<_>>(),
            vec![first, second]
        );
        assert_eq!(
            ledger
                .offer(first)
                .unwrap()
                .unwrap()
                .correlation_id
                .as_deref(),
            Some("c-1")
        );

        // Invitations: consumed once.
        let passport = crate::passport::issue_invitation(
            &KeyPair::from_seed(&[9; 32]),
            &crate::passport::InvitationTerms {
                peer: p.clone(),
                descriptor: descriptor.clone(),
                issued_at: 1_000,
                ttl_seconds: 60,
                serial: second,
            },
        )
        .unwrap();
        let invitation = InvitationRecord {
            passport_id: passport.passport_id().to_owned(),
            offer_id: second,
            peer: p.clone(),
            passport,
            issued_at_ms: 1_000_000,
            expires_at_ms: 1_060_000,
            consumed: None,
        };
        ledger.insert_invitation(&invitation).unwrap();
        assert_eq!(
            ledger
                .offer(second)
                .unwrap()
                .unwrap()
                .invitation_id
                .as_deref(),
            Some(invitation.passport_id.as_str())
        );
        assert_eq!(
            ledger.invitation(&invitation.passport_id).unwrap(),
            Some(invitation.clone())
        );
        let use_one = Consumption {
            peer: p.clone(),
            idempotency_key: Some("k".into()),
            digest: descriptor.digest.clone(),
            at_ms: 20,
        };
        let use_two = Consumption {
            idempotency_key: None,
            at_ms: 21,
            ..use_one.clone()
        };
        for consumption in [&use_one, &use_two] {
            ledger
                .record(&LedgerEntry {
                    consumed_invitation: Some((
                        invitation.passport_id.clone(),
                        consumption.clone(),
                    )),
                    ..LedgerEntry::default()
                })
                .unwrap();
        }
        let stored = ledger.invitation(&invitation.passport_id).unwrap().unwrap();
        assert_eq!(stored.consumed, Some(use_one));

        // Revocations.
        assert!(!ledger.is_revoked("passport:capability:x").unwrap());
        ledger.revoke("passport:capability:x", 30).unwrap();
        ledger.revoke("passport:capability:x", 31).unwrap();
        assert!(ledger.is_revoked("passport:capability:x").unwrap());
    }
}
