//! The decision for one (request, advertisement) pair: stages 1–10 of spec archivist §4.1.
//!
//! Every stage runs, every reason is collected, and the outcome is
//! `Accept(terms)`, `Negotiate(items, provisional terms)` or `Refuse(reasons)`:
//! any hard reason refuses; otherwise any negotiable item negotiates; otherwise it accepts.
//! Pure: no I/O, no clock, no allocation unless a settlement is negotiated (the candidate
//! rails).

use std::collections::BTreeSet;

use orbi_types::{
    archival::{DecisionStatus, NoteCode, ReasonCode, ReplicationCommitment},
    archivist::{PublicationScope, RetrievalMode, TimingProfile},
};

use crate::{
    advertisement::Advertisement,
    codes::{NoteSet, ReasonSet, Stage},
    request::PreparedRequest,
};

/// The configurable recommendations (the spec's `[R]` items). `Policy::default()` is the spec's
/// default policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Stage 6 refuses (instead of noting) a retrieval mode narrower than the scope.
    /// Default false.
    pub strict_mode_fit: bool,
    /// Stage 0b excludes advertisements older than this. Default `None`: upstream gives
    /// advertisements no validity window, so age alone excludes nothing unless configured.
    pub max_advertisement_age_sec: Option<u64>,
    /// Stage 0b excludes advertisements dated further in the future than this. Default 300.
    pub max_future_skew_sec: u64,
    /// The fewest distinct archivists a replication set uses when it has at least that many
    /// copies. Default 1; set 2 for high-value artifacts (NFR-006).
    pub min_distinct_archivists: u64,
    /// Local federation policy: when set, only these `archivist/node-id`s are considered (an
    /// empty set allows none). Default `None`: no allow list.
    pub allowed_archivists: Option<BTreeSet<String>>,
    /// Local federation policy: these `archivist/node-id`s are never considered.
    pub denied_archivists: BTreeSet<String>,
}

impl Policy {
    /// Whether local federation policy lets `archivist` be considered.
    pub fn allows(&self, archivist: &str) -> bool {
        !self.denied_archivists.contains(archivist)
            && self
                .allowed_archivists
                .as_ref()
                .is_none_or(|allowed| allowed.contains(archivist))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            strict_mode_fit: false,
            max_advertisement_age_sec: None,
            max_future_skew_sec: 300,
            min_distinct_archivists: 1,
            allowed_archivists: None,
            denied_archivists: BTreeSet::new(),
        }
    }
}

/// How one stage went for one pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageOutcome {
    /// Checked and satisfied.
    Passed,
    /// Not applicable or not evaluated (the explanation says which).
    Skipped,
    /// Satisfied, with a soft note.
    Noted,
    /// Satisfiable by negotiation.
    Negotiable,
    /// A hard reason.
    Refused,
}

impl StageOutcome {
    /// The outcome in one lowercase word.
    pub const fn as_str(self) -> &'static str {
        match self {
            StageOutcome::Passed => "passed",
            StageOutcome::Skipped => "skipped",
            StageOutcome::Noted => "noted",
            StageOutcome::Negotiable => "negotiable",
            StageOutcome::Refused => "refused",
        }
    }
}

/// A requested value above the archivist's default ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shortfall {
    /// What the request asks for, in seconds.
    pub wanted: u64,
    /// The archivist's default ceiling, in seconds.
    pub offered: u64,
}

/// The items a decision leaves to negotiation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Negotiation {
    /// The duration exceeds the default ceiling.
    pub retention: Option<Shortfall>,
    /// The idle TTL exceeds the default ceiling.
    pub idle_ttl: Option<Shortfall>,
    /// Settlement must be agreed first (there is a common rail).
    pub settlement: bool,
}

impl Negotiation {
    /// Whether nothing needs negotiating.
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && self.idle_ttl.is_none() && !self.settlement
    }

    /// Whether settlement is the only item.
    pub fn settlement_only(&self) -> bool {
        self.settlement && self.retention.is_none() && self.idle_ttl.is_none()
    }

    /// The reason codes naming the items.
    pub fn codes(&self) -> ReasonSet {
        let mut codes = ReasonSet::EMPTY;
        if self.retention.is_some() {
            codes.insert(ReasonCode::RetentionExceedsDefault);
        }
        if self.idle_ttl.is_some() {
            codes.insert(ReasonCode::IdleTtlExceedsDefault);
        }
        if self.settlement {
            codes.insert(ReasonCode::SettlementRequired);
        }
        codes
    }
}

/// The effective (or, before negotiation, provisional) terms of a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// Effective storage ceiling, `None` when unbounded.
    pub max_duration_sec: Option<u64>,
    /// Effective idle TTL, `None` when unbounded; never above the duration.
    pub max_idle_ttl_sec: Option<u64>,
    /// Copies asked of this archivist.
    pub copies: u64,
    /// Guarantee or hint.
    pub commitment: ReplicationCommitment,
    /// Rails both sides accept, archivist order, unknown rails last (empty unless settlement
    /// is required).
    pub candidate_rails: Vec<String>,
    /// Retrieval-mode fit score (§4.2, lower is better).
    pub mode_fit: u8,
    /// Whether the advertisement requires settlement.
    pub settlement_required: bool,
}

/// `Accept(terms) | Negotiate(items, provisional terms) | Refuse(reasons)`; the terms live in
/// [`Decision::terms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Storable on the terms as they stand.
    Accept,
    /// Storable once these items are negotiated.
    Negotiate(Negotiation),
    /// Not storable: every hard reason, in pipeline order.
    Refuse(ReasonSet),
}

/// The decision for one pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The outcome.
    pub verdict: Verdict,
    /// Effective or provisional terms.
    pub terms: Terms,
    /// Soft notes.
    pub notes: NoteSet,
    /// Items that need negotiating, whatever the verdict (a refusal may hide some).
    pub negotiation: Negotiation,
    /// `max(0, wanted − offered)` for the duration, in seconds.
    pub retention_shortfall: u64,
    /// `max(0, wanted − offered)` for the idle TTL, in seconds.
    pub idle_shortfall: u64,
    stages: [StageOutcome; Stage::ALL.len()],
}

impl Decision {
    /// The contract's status word.
    pub fn status(&self) -> DecisionStatus {
        match self.verdict {
            Verdict::Accept => DecisionStatus::Accepted,
            Verdict::Negotiate(_) => DecisionStatus::NegotiationRequired,
            Verdict::Refuse(_) => DecisionStatus::Refused,
        }
    }

    /// `reason/codes`: the hard reasons of a refusal, the items of a negotiation, nothing for
    /// an acceptance.
    pub fn reason_codes(&self) -> ReasonSet {
        match self.verdict {
            Verdict::Accept => ReasonSet::EMPTY,
            Verdict::Negotiate(items) => items.codes(),
            Verdict::Refuse(reasons) => reasons,
        }
    }

    /// How `stage` went.
    pub fn stage(&self, stage: Stage) -> StageOutcome {
        self.stages[stage as usize]
    }

    /// Records that stage 0b chose this decision's advertisement.
    pub(crate) fn mark_selected(&mut self) {
        self.stages[Stage::AdFreshness as usize] = StageOutcome::Passed;
    }

    /// Whether the pair is usable (accepted or negotiable).
    pub fn is_candidate(&self) -> bool {
        !matches!(self.verdict, Verdict::Refuse(_))
    }
}

/// The §4.2 fit score that counts as degraded (the mode cannot serve the scope's audience).
pub const MODE_FIT_DEGRADED: u8 = 3;

/// Fit of an advertised `retrieval/mode` to a requested scope (spec §4.2, lower is better).
pub const fn mode_fit(scope: PublicationScope, mode: RetrievalMode) -> u8 {
    use PublicationScope as S;
    use RetrievalMode as M;
    match (scope, mode) {
        (S::PrivateRetained, M::DirectOnly) => 0,
        (S::PrivateRetained, M::FederationDiscovery) => 1,
        (S::PrivateRetained, M::PublicDiscovery) => 2,
        (S::FederationVault, M::DirectOnly) => 3,
        (S::FederationVault, M::FederationDiscovery) => 0,
        (S::FederationVault, M::PublicDiscovery) => 1,
        (S::PublicVault, M::DirectOnly | M::FederationDiscovery) => 3,
        (S::PublicVault, M::PublicDiscovery) => 0,
    }
}

/// How a requested maximum compares with the archivist's default ceiling (§4.4).
enum Fit {
    /// Within the ceiling (or one side states none).
    Fits,
    /// Above it, and the requester accepts the shorter ceiling.
    Shortened,
    /// Above it; negotiable.
    Negotiate(Shortfall),
    /// Above it; refused.
    Refuse,
}

/// One retention term: the fit and the effective value `min` over the values present.
fn retention_term(
    wanted: Option<u64>,
    offered: Option<u64>,
    request: &PreparedRequest,
) -> (Fit, Option<u64>) {
    match (wanted, offered) {
        (Some(wanted), Some(offered)) if wanted > offered => {
            let fit = if request.allow_shortfall() {
                Fit::Shortened
            } else if request.negotiation_allowed() {
                Fit::Negotiate(Shortfall { wanted, offered })
            } else {
                Fit::Refuse
            };
            (fit, Some(offered))
        }
        (Some(wanted), _) => (Fit::Fits, Some(wanted)),
        (None, offered) => (Fit::Fits, offered),
    }
}

/// Runs stages 1–10 for `request` against `ad` (stage 0 admitted `ad`; stage 0b is the
/// selector's).
pub fn decide(request: &PreparedRequest, ad: &Advertisement, policy: &Policy) -> Decision {
    let mut stages = [StageOutcome::Passed; Stage::ALL.len()];
    // Stage 0b is the selector's: `match_request` marks it passed for what it selected.
    stages[Stage::AdFreshness as usize] = StageOutcome::Skipped;
    let mut hard = request.finding_set();
    let mut notes = NoteSet::default();
    let mut negotiation = Negotiation::default();
    for code in hard.iter() {
        stages[Stage::of(code) as usize] = StageOutcome::Refused;
    }
    // Without gate evidence the vault scopes already carry `curation-missing` (fail closed);
    // only an exempt scope's stage 2 is left as not evaluated.
    if !request.gates_evaluated() && stages[Stage::ExportGates as usize] == StageOutcome::Passed {
        stages[Stage::ExportGates as usize] = StageOutcome::Skipped;
    }
    if !request.package_checked() {
        stages[Stage::Integrity as usize] = StageOutcome::Skipped;
        stages[Stage::InlinePayload as usize] = StageOutcome::Skipped;
    }
    let mut refuse = |stages: &mut [StageOutcome], code: ReasonCode| {
        hard.insert(code);
        stages[Stage::of(code) as usize] = StageOutcome::Refused;
    };

    // 3 and 4.
    let scope = request.scope();
    if !ad.accepts_scope(scope) {
        refuse(&mut stages, ReasonCode::ScopeNotAccepted);
    }
    if !ad.accepts_type(request.artifact_type()) {
        refuse(&mut stages, ReasonCode::ArtifactTypeNotAccepted);
    }

    // 5: private-retained publishes nothing, so its timing profile is not checked.
    match request.timing_profile() {
        _ if scope == PublicationScope::PrivateRetained => {
            stages[Stage::Timing as usize] = StageOutcome::Skipped;
        }
        None => stages[Stage::Timing as usize] = StageOutcome::Skipped,
        Some(profile) => {
            if !ad.supports_timing(profile) {
                refuse(&mut stages, ReasonCode::TimingProfileUnsupported);
            }
            if profile == TimingProfile::LiveMirror && !request.live_mirror_authorized() {
                refuse(&mut stages, ReasonCode::LiveMirrorNotAuthorized);
            }
        }
    }

    // 6.
    let fit = mode_fit(scope, ad.retrieval_mode());
    if fit >= MODE_FIT_DEGRADED {
        if policy.strict_mode_fit {
            refuse(&mut stages, ReasonCode::RetrievalModeNarrowerThanScope);
        } else {
            notes.insert(NoteCode::RetrievalModeNarrowerThanScope);
            stages[Stage::ModeFit as usize] = StageOutcome::Noted;
        }
    }

    // 7 and 8.
    let wanted_duration = request.max_duration_sec();
    let wanted_idle = request.max_idle_ttl_sec();
    let (duration_fit, duration) =
        retention_term(wanted_duration, ad.default_max_duration_sec(), request);
    let (idle_fit, mut idle) = retention_term(wanted_idle, ad.default_max_idle_ttl_sec(), request);
    for (stage, fit, code, item) in [
        (
            Stage::Duration,
            duration_fit,
            ReasonCode::RetentionExceedsDefault,
            &mut negotiation.retention,
        ),
        (
            Stage::IdleTtl,
            idle_fit,
            ReasonCode::IdleTtlExceedsDefault,
            &mut negotiation.idle_ttl,
        ),
    ] {
        match fit {
            Fit::Fits => {}
            Fit::Shortened => {
                notes.insert(NoteCode::RetentionShortened);
                stages[stage as usize] = StageOutcome::Noted;
            }
            Fit::Negotiate(shortfall) => {
                *item = Some(shortfall);
                stages[stage as usize] = StageOutcome::Negotiable;
            }
            Fit::Refuse => refuse(&mut stages, code),
        }
    }
    let defaulted = (wanted_duration.is_none() && ad.default_max_duration_sec().is_some())
        || (wanted_idle.is_none() && ad.default_max_idle_ttl_sec().is_some());
    if defaulted {
        notes.insert(NoteCode::RetentionDefaultedByArchivist);
    }
    if duration.is_none() {
        notes.insert(NoteCode::RetentionUnbounded);
    }
    if let (Some(duration), Some(ttl)) = (duration, idle)
        && ttl > duration
    {
        idle = Some(duration);
        notes.insert(NoteCode::IdleTtlClamped);
    }
    for stage in [Stage::Duration, Stage::IdleTtl] {
        if defaulted && stages[stage as usize] == StageOutcome::Passed {
            stages[stage as usize] = StageOutcome::Noted;
        }
    }
    if duration.is_none() && stages[Stage::Duration as usize] == StageOutcome::Passed {
        stages[Stage::Duration as usize] = StageOutcome::Noted;
    }

    // 9.
    if request.copies() > ad.max_copies() {
        refuse(&mut stages, ReasonCode::ReplicationExceedsMax);
    }

    // 10.
    let mut candidate_rails = Vec::new();
    if !ad.settlement_required() {
        stages[Stage::Settlement as usize] = StageOutcome::Skipped;
    } else if !request.can_settle() {
        refuse(&mut stages, ReasonCode::SettlementRequired);
    } else if !request.shares_a_rail_with(&ad.rail_mask(), ad.rails()) {
        refuse(&mut stages, ReasonCode::NoCommonSettlementRail);
    } else {
        candidate_rails = ad
            .rails()
            .iter()
            .filter(|rail| request.accepts_rail(rail))
            .cloned()
            .collect();
        negotiation.settlement = true;
        stages[Stage::Settlement as usize] = StageOutcome::Negotiable;
    }

    let verdict = if !hard.is_empty() {
        Verdict::Refuse(hard)
    } else if !negotiation.is_empty() {
        Verdict::Negotiate(negotiation)
    } else {
        Verdict::Accept
    };
    let shortfall = |wanted: Option<u64>, offered: Option<u64>| match (wanted, offered) {
        (Some(wanted), Some(offered)) => wanted.saturating_sub(offered),
        _ => 0,
    };
    Decision {
        verdict,
        terms: Terms {
            max_duration_sec: duration,
            max_idle_ttl_sec: idle,
            copies: request.copies(),
            commitment: request.commitment(),
            candidate_rails,
            mode_fit: fit,
            settlement_required: ad.settlement_required(),
        },
        notes,
        negotiation,
        retention_shortfall: shortfall(wanted_duration, ad.default_max_duration_sec()),
        idle_shortfall: shortfall(wanted_idle, ad.default_max_idle_ttl_sec()),
        stages,
    }
}
