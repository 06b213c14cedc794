//! Stage-by-stage explanations in plain words, for people reading a decision.

use orbi_types::archivist::PublicationScope;

use crate::{
    advertisement::Advertisement,
    codes::Stage,
    engine::{Decision, MODE_FIT_DEGRADED, StageOutcome},
    request::PreparedRequest,
};

/// One stage of one decision, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageReport {
    /// The stage.
    pub stage: Stage,
    /// How it went.
    pub outcome: StageOutcome,
    /// Why, in words.
    pub text: String,
}

/// Every stage (0 to 10) of `decision` for `request` against the selected `ad`, explained.
pub fn explain(
    request: &PreparedRequest,
    ad: &Advertisement,
    decision: &Decision,
) -> Vec<StageReport> {
    Stage::ALL
        .iter()
        .map(|&stage| StageReport {
            stage,
            outcome: decision.stage(stage),
            text: describe(stage, decision.stage(stage), request, ad, decision),
        })
        .collect()
}

fn list<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| item.to_string()).collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn findings_at(request: &PreparedRequest, stage: Stage) -> String {
    list(
        request
            .findings()
            .iter()
            .filter(|finding| Stage::of(finding.code) == stage),
    )
}

fn describe(
    stage: Stage,
    outcome: StageOutcome,
    request: &PreparedRequest,
    ad: &Advertisement,
    decision: &Decision,
) -> String {
    let typed = ad.typed();
    let refused = outcome == StageOutcome::Refused;
    match stage {
        Stage::AdValidity => match ad.lints().len() {
            0 => "the advertisement passes its schema".into(),
            n => format!("the advertisement passes its schema ({n} lint(s): {})", list(ad.lints())),
        },
        Stage::AdFreshness if outcome == StageOutcome::Skipped => {
            "not run: this advertisement was judged alone, not chosen among others".into()
        }
        Stage::AdFreshness => format!(
            "the newest advertisement of {} (created-at {}), neither stale nor future-dated",
            ad.archivist(),
            ad.created_at()
        ),
        Stage::Package | Stage::Integrity | Stage::InlinePayload if refused => {
            findings_at(request, stage)
        }
        Stage::Package if request.package_checked() => {
            "the package satisfies its contract and the request copies it faithfully".into()
        }
        Stage::Package => {
            "the package facts the request copies satisfy the package rules (no package document given)"
                .into()
        }
        Stage::Integrity | Stage::InlinePayload if outcome == StageOutcome::Skipped => {
            "not checked: no package document given".into()
        }
        Stage::Integrity => "integrity/proof has one of its two forms".into(),
        Stage::InlinePayload => "the package carries its payload by payload/ref only".into(),
        Stage::ExportGates if refused => findings_at(request, stage),
        Stage::ExportGates if outcome == StageOutcome::Skipped => {
            "not evaluated: no gate evidence given (curation, quorum, classification and scope ceiling are judged separately)"
                .into()
        }
        Stage::ExportGates => "every export gate passed".into(),
        Stage::Scope => format!(
            "scope {} is {}accepted (the archivist takes {})",
            request.scope(),
            if refused { "not " } else { "" },
            list(&typed.accepted_scopes)
        ),
        Stage::ArtifactType => format!(
            "artifact type {} is {}accepted (the archivist takes {})",
            request.artifact_type(),
            if refused { "not " } else { "" },
            list(&typed.accepted_artifact_types)
        ),
        Stage::Timing => timing(request, ad, outcome),
        Stage::ModeFit => {
            let fit = decision.terms.mode_fit;
            let verdict = match outcome {
                StageOutcome::Refused => "narrower than the scope, refused under the strict policy",
                _ if fit >= MODE_FIT_DEGRADED => "narrower than the scope: noted and ranked lower",
                _ if fit == 0 => "the ideal fit",
                _ => "wider than needed: acceptable, ranked lower than the ideal fit",
            };
            format!(
                "retrieval mode {} for scope {} scores {fit} (0 ideal, {MODE_FIT_DEGRADED} degraded): {verdict}",
                ad.retrieval_mode(),
                request.scope()
            )
        }
        Stage::Duration => retention(
            "duration",
            request.max_duration_sec(),
            ad.default_max_duration_sec(),
            decision.terms.max_duration_sec,
            outcome,
        ),
        Stage::IdleTtl => {
            let mut text = retention(
                "idle ttl",
                request.max_idle_ttl_sec(),
                ad.default_max_idle_ttl_sec(),
                decision.terms.max_idle_ttl_sec,
                outcome,
            );
            if decision
                .notes
                .contains(orbi_types::archival::NoteCode::IdleTtlClamped)
            {
                text.push_str("; clamped to the effective duration");
            }
            text
        }
        Stage::Replication => format!(
            "{} cop{} {} replication/max-copies {}{}",
            request.copies(),
            if request.copies() == 1 { "y" } else { "ies" },
            if refused { "exceed" } else { "within" },
            ad.max_copies(),
            if typed.max_copies.is_none() { " (absent, so 1)" } else { "" }
        ) + if refused {
            "; the selector may split the copies across archivists"
        } else {
            ""
        },
        Stage::Settlement => settlement(request, ad, decision, outcome),
    }
}

fn timing(request: &PreparedRequest, ad: &Advertisement, outcome: StageOutcome) -> String {
    let supported = list(ad.typed().timing_profiles.iter().flatten());
    match request.timing_profile() {
        _ if request.scope() == PublicationScope::PrivateRetained => {
            "skipped: private-retained publishes nothing, so no timing profile is checked".into()
        }
        None => "skipped: the request names no timing profile".into(),
        Some(profile) if outcome == StageOutcome::Refused => {
            let mut why = Vec::new();
            if !ad.supports_timing(profile) {
                why.push(format!(
                    "{profile} is not supported (the archivist supports {supported})"
                ));
            }
            if profile == orbi_types::archivist::TimingProfile::LiveMirror
                && !request.live_mirror_authorized()
            {
                why.push(
                    "live-mirror outside private-retained needs evidence that the room showed onward transmission"
                        .into(),
                );
            }
            why.join("; ")
        }
        Some(profile) => format!("{profile} is supported (the archivist supports {supported})"),
    }
}

fn seconds(value: Option<u64>) -> String {
    value.map_or_else(|| "unbounded".into(), |s| format!("{s} s"))
}

fn retention(
    what: &str,
    wanted: Option<u64>,
    offered: Option<u64>,
    effective: Option<u64>,
    outcome: StageOutcome,
) -> String {
    let effective = seconds(effective);
    match (wanted, offered) {
        (Some(wanted), Some(offered)) if wanted > offered => match outcome {
            StageOutcome::Negotiable => format!(
                "requested {wanted} s exceeds the default {offered} s: negotiable (provisionally {effective})"
            ),
            StageOutcome::Refused => format!(
                "requested {wanted} s exceeds the default {offered} s and negotiation is not allowed"
            ),
            _ => format!(
                "requested {wanted} s exceeds the default {offered} s; a shortfall is allowed, so {effective} applies"
            ),
        },
        (Some(wanted), Some(offered)) => {
            format!("requested {wanted} s is within the default {offered} s: {what} {effective}")
        }
        (Some(wanted), None) => {
            format!("requested {wanted} s; the archivist states no default: {what} {effective}")
        }
        (None, Some(offered)) => {
            format!(
                "none requested; the archivist's default {offered} s applies: {what} {effective}"
            )
        }
        (None, None) => format!("neither side bounds the {what}: {effective}"),
    }
}

fn settlement(
    request: &PreparedRequest,
    ad: &Advertisement,
    decision: &Decision,
    outcome: StageOutcome,
) -> String {
    let hints = list(ad.rails());
    match outcome {
        StageOutcome::Skipped if ad.rails().is_empty() => "not required".into(),
        StageOutcome::Skipped => {
            format!("not required; the rail hints ({hints}) are informational")
        }
        StageOutcome::Negotiable => format!(
            "required: settle on one of {} before storage",
            list(&decision.terms.candidate_rails)
        ),
        _ if !request.can_settle() => {
            "required, but the request cannot settle (settlement/can-settle is false or absent)"
                .into()
        }
        _ => format!(
            "required, but no rail is common: the archivist hints {hints}, the request accepts {}",
            list(request.rails())
        ),
    }
}
