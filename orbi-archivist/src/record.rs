//! Writing a decision as an `archival-storage-decision.v1` artifact (for `accepted`, the
//! storage confirmation).

use std::num::NonZeroU64;

use orbi_types::{
    ArchivalStorageDecision, KeyOrder, SchemaV1, Timestamp,
    archival::{DecisionStatus, HardExpiry, NonEmptyString, ReplicationCommitment},
};

use crate::{
    advertisement::Advertisement,
    engine::{Decision, Terms},
    expiry::Deadline,
    request::PreparedRequest,
};

/// What the archivist adds when it records a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordContext {
    /// `decision/id`.
    pub decision_id: String,
    /// `decided-at`; for an acceptance, the anchor of the expiry clock.
    pub decided_at: Timestamp,
    /// `retrieval/ref`: the stable retrieval id, required for an acceptance (FR-011).
    pub retrieval_ref: Option<String>,
    /// `integrity/verified`: whether hash and signature were verified.
    pub integrity_verified: Option<bool>,
}

/// The decision cannot be written as a valid artifact.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// An acceptance needs a stable retrieval id.
    #[error("an accepted decision needs a non-empty retrieval/ref")]
    MissingRetrievalRef,
    /// A required text field is empty.
    #[error("{0} must not be empty")]
    EmptyField(&'static str),
}

/// The decision as an artifact. An acceptance carries `retrieval/ref` and
/// `retention/hard-expires-at` (`decided-at + D_eff`, `null` when unbounded or beyond what
/// RFC 3339 can write). `replication/copies` is what this one archivist answers for (see
/// [`confirmed_copies`]), not what the request asked of the whole replication set.
pub fn record(
    request: &PreparedRequest,
    ad: &Advertisement,
    decision: &Decision,
    context: RecordContext,
) -> Result<ArchivalStorageDecision, RecordError> {
    let text = |value: &str, field: &'static str| {
        NonEmptyString::new(value).ok_or(RecordError::EmptyField(field))
    };
    let status = decision.status();
    let accepted = status == DecisionStatus::Accepted;
    let retrieval_ref = context
        .retrieval_ref
        .as_deref()
        .map(|value| text(value, "retrieval/ref"))
        .transpose()?;
    if accepted && retrieval_ref.is_none() {
        return Err(RecordError::MissingRetrievalRef);
    }
    let terms = &decision.terms;
    let hard_expires_at = accepted.then(|| {
        match Deadline::after(
            context.decided_at.instant_to_add_to(),
            terms.max_duration_sec,
        )
        .timestamp()
        {
            Some(at) => HardExpiry::At(at),
            None => HardExpiry::Never,
        }
    });
    let rails = terms
        .candidate_rails
        .iter()
        .filter_map(|rail| NonEmptyString::new(rail.as_str()))
        .collect::<Vec<_>>();
    let notes: Vec<_> = decision.notes.iter().collect();
    Ok(ArchivalStorageDecision {
        schema_v: SchemaV1,
        decision_id: text(&context.decision_id, "decision/id")?,
        request_id: request.request().request_id.clone(),
        package_id: request.request().package_id.clone(),
        archivist_node_id: text(ad.archivist(), "archivist/node-id")?,
        advertisement_id: text(ad.id(), "advertisement/id")?,
        decided_at: context.decided_at,
        status,
        publication_scope: request.scope(),
        retrieval_ref,
        effective_max_duration_sec: terms.max_duration_sec.and_then(NonZeroU64::new),
        effective_max_idle_ttl_sec: terms.max_idle_ttl_sec.and_then(NonZeroU64::new),
        hard_expires_at,
        copies: NonZeroU64::new(confirmed_copies(terms)),
        commitment: Some(terms.commitment),
        candidate_rails: (!rails.is_empty()).then_some(rails),
        rail: None,
        contract_ref: None,
        integrity_verified: context.integrity_verified,
        reason_codes: decision.reason_codes().iter().collect(),
        reason_notes: (!notes.is_empty()).then_some(notes),
        policy_annotations: None,
        key_order: KeyOrder::default(),
    })
}

/// The copies one archivist's decision answers for (spec §4.6 step 3): under `guarantee`, one
/// verifiable copy (N guaranteed copies need N distinct archivists, so a single archivist never
/// confirms more); under `hint`, the k copies it was asked to keep or coordinate, which the
/// spec allows one archivist to cover.
pub fn confirmed_copies(terms: &Terms) -> u64 {
    match terms.commitment {
        ReplicationCommitment::Guarantee => 1,
        ReplicationCommitment::Hint => terms.copies,
    }
}
