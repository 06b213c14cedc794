//! The archivist policy engine: which archivist should keep an archival package, on which
//! terms, and for how long (spec archivist §4).
//!
//! - [`Advertisement::admit`] is stage 0 (schema, typed parse, [`lint()`]s);
//!   [`PreparedRequest`] resolves a request's defaults and its advertisement-independent
//!   findings (the package rules, optionally a package document and export-gate evidence).
//! - [`decide`] runs stages 1–10 for one pair and returns every reason, in pipeline order, as
//!   `Accept`, `Negotiate(items)` or `Refuse(reasons)` with effective or provisional
//!   [`Terms`] and soft notes; [`explain()`] puts each stage into words.
//! - [`select()`] (stage 0b: newest per archivist, stale, future-dated, not targeted),
//!   [`rank`] (the §4.6 key) and [`plan_replication`] (distinct archivists) choose among
//!   many; [`match_request`] does all three.
//! - [`ExpiryClock`] is the §4.4 clock: hard and idle expiry, half-open, saturating.
//! - [`record()`] writes a decision as an `archival-storage-decision.v1` artifact.
//!
//! Pure: no I/O, no clock reads (the caller passes `now`), no printing.
//!
//! # Choices where the spec is silent
//!
//! - **Reason lists.** A refusal's `reason/codes` are its hard reasons in pipeline order; a
//!   negotiation's are its items (`retention-exceeds-default`, `idle-ttl-exceeds-default`,
//!   `settlement-required`). Negotiable items hidden by a refusal stay visible in
//!   [`Decision::negotiation`] and in the explanation. Soft notes are separate
//!   ([`NoteSet`]; `idle-ttl-clamped` is ours).
//! - **Package facts.** The request copies the package's scope, type, timing and retention,
//!   so stage 1 checks the package rule (`public-vault` ⇒ timing profile) on those copies and
//!   reports `package-invalid`; [`PreparedRequest::with_package`] adds the package document's
//!   own checks (1, 1b, 1c and `request-package-mismatch`).
//! - **Stage 2** takes the export gates' findings as evidence
//!   ([`PreparedRequest::with_gate_findings`]); the gates themselves are not evaluated here.
//!   Without evidence it fails closed: `federation-vault` and `public-vault` are refused
//!   `curation-missing` (spec §5, TV-29), and for `private-retained` (exempt from curation)
//!   the stage is reported as not evaluated, never as passed. `live-mirror` outside
//!   `private-retained` needs [`PreparedRequest::with_live_mirror_authorized`] (fail closed).
//! - **Stage 0b.** Invalid advertisements never supersede; future-dated ones (beyond
//!   [`Policy::max_future_skew_sec`]) neither. There is no default maximum age (upstream
//!   advertisements have no validity window). Local allow/deny lists exclude with
//!   `archivist-not-allowed`; an empty allow list allows nobody. Copies of an archivist's newest
//!   advertisement (same id and `created-at`) count once; if they state different terms, all of
//!   them are excluded `advertisement-conflicting` (an extension of §4.7's codes): which terms
//!   hold cannot be known, and an input-order tie-break would let a sender of a twin choose.
//! - **Ranking.** An absent default duration counts as the largest headroom; refusals are
//!   ranked last rather than dropped; `advertisement/id` then `archivist/node-id` break the
//!   last ties, so the order is total.
//! - **Replication.** The default commitment is `guarantee` (one copy per distinct archivist):
//!   [`match_request`] judges each archivist on the request as sent (TV-13) and its plan
//!   splits the copies, one per archivist; a recorded decision confirms one copy
//!   ([`confirmed_copies`]). A `hint` lets one archivist coordinate
//!   up to its `replication/max-copies`, and its decision confirms those k copies. A plan never
//!   uses one `archivist/node-id` twice.
//! - **Integers.** The schema gives `retention/default-*` and `replication/max-copies` no
//!   maximum; admission refuses values that no `u64` holds, naming the field and the limit
//!   (never saturating, so an admitted advertisement re-serializes to its own text).
//! - **Expiry.** Exact instants, fractions of a second included; a tie between hard and idle
//!   expiry is reported as `max-duration`. Expiry is final: a `found` recorded at or after the
//!   expiry the clock shows is [`Recorded::AfterExpiry`] and changes nothing (§4.4: from
//!   `expires_at` on every retrieval answers `tombstoned`, and nothing renews silently). TV-23
//!   as written records its second `found` (2026-06-10) after the expiry its first one set
//!   (2026-05-15); our vector test adds a retrieval on 2026-05-14 to make that history possible
//!   and checks the literal one revives nothing.
//!
//! # Not built
//!
//! The export gates (curation, curator quorum, classification, scope ceiling) and retrieval
//! (`retrieval-request.v1`) are not implemented: gate vectors (TV-15's quorum half, TV-17)
//! pass only with injected findings, and TV-25 … TV-28, TV-30 … TV-32 and TV-29's
//! curation-decision check are not reproduced.
//!
//! ```
//! use orbi_archivist::{Advertisement, Policy, PreparedRequest, Verdict, match_request};
//! use orbi_types::{Artifact, ArchivalStorageRequest, Timestamp};
//! use serde_json::json;
//!
//! let ad = Advertisement::admit(&json!({
//!     "schema/v": 1, "advertisement/id": "archivist-advertisement:1",
//!     "created-at": "2026-03-22T22:22:33Z", "archivist/node-id": "node:pl-wro-archivist-1",
//!     "accepted/scopes": ["private-retained", "federation-vault"],
//!     "accepted/artifact-types": ["transcript-bundle"],
//!     "retrieval/mode": "federation-discovery",
//!     "retention/default-max-duration-sec": 7776000,
//!     "retention/default-max-idle-ttl-sec": 2592000,
//!     "publication/timing-profiles": ["curator-gated"],
//!     "settlement/required": true, "settlement/rail-hints": ["external-invoice", "host-ledger"]
//! }))?;
//! let request = ArchivalStorageRequest::from_value(&json!({
//!     "schema/v": 1, "request/id": "storage-request:1", "requested-at": "2026-03-23T08:00:00Z",
//!     "requester/node-id": "node:pl-wro-1", "package/id": "archival-package:1",
//!     "publication/scope": "federation-vault", "artifact/type": "transcript-bundle",
//!     "publication/timing-profile": "curator-gated",
//!     "retention/max-duration-sec": 7776000, "retention/max-idle-ttl-sec": 2592000,
//!     "settlement/can-settle": true, "settlement/acceptable-rails": ["host-ledger"]
//! }))?;
//! let now = Timestamp::parse("2026-03-23T08:00:00Z")?;
//! // The export gates were judged elsewhere and found nothing; without this evidence the
//! // federation-vault request would be refused `curation-missing` (fail closed).
//! let prepared = PreparedRequest::new(&request).with_gate_findings([])?;
//! let report = match_request(&prepared, &[ad], &Policy::default(), &now);
//! let best = &report.ranked[0].decision;
//! assert!(matches!(best.verdict, Verdict::Negotiate(items) if items.settlement_only()));
//! assert_eq!(best.terms.candidate_rails, ["host-ledger"]);
//! assert_eq!(best.terms.max_duration_sec, Some(7776000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod advertisement;
pub mod codes;
pub mod engine;
pub mod expiry;
pub mod explain;
pub mod lint;
pub mod package;
pub mod record;
pub mod request;
pub mod select;

pub use advertisement::{Advertisement, InvalidAdvertisement};
pub use codes::{NoteSet, ReasonSet, Stage};
pub use engine::{
    Decision, Negotiation, Policy, Shortfall, StageOutcome, Terms, Verdict, decide, mode_fit,
};
pub use expiry::{Access, Deadline, Expiry, ExpiryClock, ExpiryStatus, Recorded, RetrievalStatus};
pub use explain::{StageReport, explain};
pub use lint::{Lint, lint};
pub use record::{RecordContext, RecordError, confirmed_copies, record};
pub use request::{Finding, InvalidRequest, NotAGateCode, PreparedRequest, parse_request};
pub use select::{
    Assignment, Exclusion, RankKey, Ranked, ReplicationPlan, Selection, plan_replication, rank,
    select,
};

use orbi_types::Timestamp;

/// Everything a requester needs to choose: exclusions, ranked decisions, replication set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchReport {
    /// Stage 0b over the admitted advertisements.
    pub selection: Selection,
    /// Decisions for the selected advertisements, best first (refusals last), each on the
    /// request as sent: what that archivist would answer to it. [`MatchReport::replication`]
    /// may place copies with archivists that refuse the whole count (TV-13: "the selector may
    /// split").
    pub ranked: Vec<Ranked>,
    /// Where the requested copies go.
    pub replication: ReplicationPlan,
}

/// Selects, ranks and plans replication for `request` over admitted `ads` at `now`.
pub fn match_request(
    request: &PreparedRequest,
    ads: &[Advertisement],
    policy: &Policy,
    now: &Timestamp,
) -> MatchReport {
    let selection = select(ads, request.target(), policy, now);
    // Each archivist is judged on the request as sent, as it would judge it itself (TV-13:
    // more copies than its max-copies is `replication-exceeds-max`); the plan may still
    // split the copies over several archivists (§4.6 step 3).
    let mut ranked = rank(request, ads, &selection.current, policy);
    // One copy asked: the ranking already is the one-copy-per-archivist ranking.
    let mut replication = if request.copies() == 1 {
        select::plan_from_ranking(request, ads, &ranked, policy)
    } else {
        plan_replication(request, ads, &selection.current, policy)
    };
    // Every advertisement decided here came through stage 0b.
    let decisions = ranked.iter_mut().map(|entry| &mut entry.decision);
    let assigned = replication
        .assignments
        .iter_mut()
        .map(|entry| &mut entry.decision);
    decisions.chain(assigned).for_each(Decision::mark_selected);
    MatchReport {
        selection,
        ranked,
        replication,
    }
}
