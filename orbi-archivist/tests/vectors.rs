//! Spec archivist §6 test vectors TV-01 … TV-24 and TV-33 (the advertisement, the request,
//! matching, ranking and expiry), one named test each, and TV-29's fail-closed half (no gate
//! evidence ⇒ `curation-missing`). The gates are not evaluated here, so TV-15's quorum half and
//! TV-17 use injected gate findings; the other gate and retrieval vectors (TV-25 … TV-32) are
//! not reproduced.

mod common;

use common::*;
use orbi_archivist::{
    Access, Advertisement, Deadline, Decision, ExpiryClock, ExpiryStatus, Finding, Negotiation,
    Policy, PreparedRequest, Recorded, RetrievalStatus, Shortfall, Stage, StageOutcome, Verdict,
    decide, match_request, plan_replication, rank,
};
use orbi_types::{
    Artifact,
    archival::{
        ExclusionCode, ExpiryCause, LintCode, NoteCode, ReasonCode, ReplicationCommitment,
        RetrievalReason,
    },
};
use serde_json::{Value, json};

fn decide_on(ad: Value, request: Value) -> Decision {
    decide(&prepare(request), &admit(ad), &policy())
}

fn codes(decision: &Decision) -> Vec<&'static str> {
    decision.reason_codes().iter().map(|c| c.as_str()).collect()
}

fn notes(decision: &Decision) -> Vec<NoteCode> {
    decision.notes.iter().collect()
}

fn settlement_only() -> Verdict {
    Verdict::Negotiate(Negotiation {
        settlement: true,
        ..Negotiation::default()
    })
}

#[test]
fn tv_01_ad_a_is_valid_and_ad_x_is_excluded_as_invalid() {
    let ad = admit(ad_a());
    assert_eq!(
        ad.id(),
        "archivist-advertisement:01JP0Q6F9B4R47AK9A8R8Q2HKS"
    );
    assert!(ad.lints().is_empty(), "{:?}", ad.lints());

    let invalid = Advertisement::admit(&ad_x()).unwrap_err();
    assert_eq!(invalid.code(), ExclusionCode::AdvertisementInvalid);
    assert_eq!(
        invalid.advertisement_id.as_deref(),
        Some("archivist-advertisement:01JP0TDKXH0K7J4JZWK65F0JVT")
    );
    assert_eq!(invalid.issues.len(), 1, "{:?}", invalid.issues);
    assert!(
        invalid.issues[0].contains("settlement/rail-hints"),
        "{:?}",
        invalid.issues
    );
}

#[test]
fn tv_02_empty_rail_hints_lint_and_refuse_every_request() {
    let mut ad = ad_a();
    ad["settlement/rail-hints"] = json!([]);
    let admitted = admit(ad.clone());
    let lints: Vec<LintCode> = admitted.lints().iter().map(|l| l.code).collect();
    assert_eq!(lints, [LintCode::SettlementRailsEmpty]);
    for rails in [
        json!(["host-ledger"]),
        json!(["external-invoice", "manual-transfer", "none"]),
        json!([]),
    ] {
        let request = request_with(json!({ "settlement/acceptable-rails": rails }));
        let decision = decide_on(ad.clone(), request);
        assert_eq!(codes(&decision), ["no-common-settlement-rail"]);
    }
}

#[test]
fn tv_03_unknown_key_survives_and_duplicates_are_linted_and_ignored() {
    let mut extra = ad_a();
    extra["x-extra"] = json!(1);
    let admitted = admit(extra.clone());
    assert_eq!(admitted.typed().to_value(), extra);
    assert_eq!(
        admitted.typed().to_json_vec(),
        serde_json::to_vec(&extra).unwrap()
    );

    let mut duplicated = ad_a();
    duplicated["accepted/scopes"] =
        json!(["private-retained", "federation-vault", "private-retained"]);
    let admitted = admit(duplicated.clone());
    assert_eq!(
        admitted.lints().iter().map(|l| l.code).collect::<Vec<_>>(),
        [LintCode::DuplicateEnumItems]
    );
    assert_eq!(admitted.lints()[0].pointer, "/accepted~1scopes");
    // Same decision as without the duplicate.
    assert_eq!(
        decide_on(duplicated, request_f()),
        decide_on(ad_a(), request_f())
    );
}

#[test]
fn tv_04_ad_a_with_pkg_f_negotiates_settlement_on_host_ledger() {
    let decision = decide_on(ad_a(), request_f());
    assert_eq!(decision.verdict, settlement_only());
    assert_eq!(codes(&decision), ["settlement-required"]);
    assert_eq!(decision.terms.candidate_rails, ["host-ledger"]);
    assert_eq!(decision.terms.max_duration_sec, Some(7_776_000));
    assert_eq!(decision.terms.max_idle_ttl_sec, Some(2_592_000));
    assert!(decision.notes.is_empty(), "{:?}", decision.notes);
}

#[test]
fn tv_05_candidate_rails_follow_the_archivists_order() {
    let request = request_with(json!({
        "settlement/acceptable-rails": ["host-ledger", "external-invoice"]
    }));
    let decision = decide_on(ad_a(), request);
    assert_eq!(
        decision.terms.candidate_rails,
        ["external-invoice", "host-ledger"]
    );
}

#[test]
fn tv_06_no_common_rail_or_no_ability_to_settle_refuses() {
    let manual = request_with(json!({ "settlement/acceptable-rails": ["manual-transfer"] }));
    assert_eq!(
        codes(&decide_on(ad_a(), manual)),
        ["no-common-settlement-rail"]
    );
    let cannot = request_with(json!({ "settlement/can-settle": false }));
    let decision = decide_on(ad_a(), cannot);
    assert_eq!(codes(&decision), ["settlement-required"]);
    assert!(matches!(decision.verdict, Verdict::Refuse(_)));
}

#[test]
fn tv_07_ad_f_accepts_pkg_f() {
    let decision = decide_on(ad_f(), request_f());
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(decision.terms.max_duration_sec, Some(7_776_000));
    assert_eq!(decision.terms.max_idle_ttl_sec, Some(2_592_000));
    assert_eq!(decision.terms.copies, 1);
    assert!(codes(&decision).is_empty());
    assert_eq!(decision.stage(Stage::Settlement), StageOutcome::Skipped);
}

#[test]
fn tv_08_duration_above_the_default_negotiates_refuses_or_shortens() {
    let longer = json!({ "retention/max-duration-sec": 7_776_001 });
    let decision = decide_on(ad_f(), request_with(longer.clone()));
    assert_eq!(
        decision.verdict,
        Verdict::Negotiate(Negotiation {
            retention: Some(Shortfall {
                wanted: 7_776_001,
                offered: 7_776_000
            }),
            ..Negotiation::default()
        })
    );
    assert_eq!(codes(&decision), ["retention-exceeds-default"]);
    assert_eq!(decision.retention_shortfall, 1);

    let mut no_negotiation = request_with(longer.clone());
    no_negotiation["negotiation/allowed"] = json!(false);
    assert_eq!(
        codes(&decide_on(ad_f(), no_negotiation)),
        ["retention-exceeds-default"]
    );

    for negotiation in [true, false] {
        let mut shortfall = request_with(longer.clone());
        shortfall["retention/allow-shortfall"] = json!(true);
        shortfall["negotiation/allowed"] = json!(negotiation);
        let decision = decide_on(ad_f(), shortfall);
        assert_eq!(decision.verdict, Verdict::Accept);
        assert_eq!(decision.terms.max_duration_sec, Some(7_776_000));
        assert_eq!(notes(&decision), [NoteCode::RetentionShortened]);
    }
}

#[test]
fn tv_09_idle_ttl_above_the_default_negotiates() {
    let decision = decide_on(
        ad_f(),
        request_with(json!({ "retention/max-idle-ttl-sec": 5_184_000 })),
    );
    assert_eq!(
        decision.verdict,
        Verdict::Negotiate(Negotiation {
            idle_ttl: Some(Shortfall {
                wanted: 5_184_000,
                offered: 2_592_000
            }),
            ..Negotiation::default()
        })
    );
    assert_eq!(codes(&decision), ["idle-ttl-exceeds-default"]);
}

#[test]
fn tv_10_absent_retention_takes_the_archivists_defaults() {
    let request = request_with(json!({
        "retention/max-duration-sec": null, "retention/max-idle-ttl-sec": null
    }));
    let decision = decide_on(ad_f(), request);
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(decision.terms.max_duration_sec, Some(7_776_000));
    assert_eq!(decision.terms.max_idle_ttl_sec, Some(2_592_000));
    assert_eq!(notes(&decision), [NoteCode::RetentionDefaultedByArchivist]);
}

#[test]
fn tv_11_unaccepted_artifact_type_refuses() {
    let decision = decide_on(
        ad_f(),
        request_with(json!({ "artifact/type": "room-summary" })),
    );
    assert_eq!(codes(&decision), ["artifact-type-not-accepted"]);
}

#[test]
fn tv_12_live_mirror_is_unsupported_and_unauthorized() {
    let request = request_with(json!({ "publication/timing-profile": "live-mirror" }));
    let decision = decide_on(ad_f(), request.clone());
    assert_eq!(
        codes(&decision),
        ["timing-profile-unsupported", "live-mirror-not-authorized"]
    );
    // With onward-transmission evidence only the unsupported profile remains.
    let authorized = prepare(request).with_live_mirror_authorized(true);
    let decision = decide(&authorized, &admit(ad_f()), &policy());
    assert_eq!(codes(&decision), ["timing-profile-unsupported"]);
}

#[test]
fn tv_13_copies_within_max_accept_above_refuse_and_the_selector_splits() {
    let three = decide_on(ad_f(), request_with(json!({ "replication/copies": 3 })));
    assert_eq!(three.verdict, Verdict::Accept);
    assert_eq!(three.terms.copies, 3);
    let four = request_with(json!({ "replication/copies": 4 }));
    assert_eq!(
        codes(&decide_on(ad_f(), four.clone())),
        ["replication-exceeds-max"]
    );

    // The selector splits: a guarantee puts one copy per distinct archivist.
    let ads = [admit(ad_f()), admit(ad_d())];
    let plan = plan_replication(&prepare(four.clone()), &ads, &[0, 1], &policy());
    assert_eq!(plan.assignments.len(), 2);
    assert!(plan.assignments.iter().all(|a| a.copies == 1));
    assert_eq!(plan.missing, 2);
    // A hint lets one archivist coordinate up to its max-copies.
    let mut hint = four;
    hint["replication/commitment"] = json!("hint");
    let plan = plan_replication(&prepare(hint), &ads, &[0, 1], &policy());
    assert_eq!(plan.commitment, ReplicationCommitment::Hint);
    assert_eq!(
        plan.assignments
            .iter()
            .map(|a| (a.index, a.copies))
            .collect::<Vec<_>>(),
        [(0, 3), (1, 1)]
    );
    assert_eq!(plan.missing, 0);
    assert!(plan.assignments.iter().all(|a| a.decision.is_candidate()));
}

fn pkg_x_request() -> Value {
    request_with(json!({
        "publication/scope": "public-vault",
        "publication/timing-profile": null,
        "retention/max-duration-sec": null,
        "retention/max-idle-ttl-sec": null
    }))
}

fn pkg_x() -> Value {
    let mut package = pkg_f();
    let fields = package.as_object_mut().unwrap();
    fields.insert("publication/scope".into(), json!("public-vault"));
    for key in [
        "publication/timing-profile",
        "retention/max-duration-sec",
        "retention/max-idle-ttl-sec",
    ] {
        fields.remove(key);
    }
    package
}

#[test]
fn tv_14_public_vault_without_timing_refuses_with_every_reason() {
    let decision = decide_on(ad_a(), pkg_x_request());
    assert_eq!(codes(&decision), ["package-invalid", "scope-not-accepted"]);
    // The same with the package document itself: the rule is reported once.
    let request = prepare(pkg_x_request()).with_package(&pkg_x());
    assert_eq!(request.findings().len(), 1, "{:?}", request.findings());
    let decision = decide(&request, &admit(ad_a()), &policy());
    assert_eq!(codes(&decision), ["package-invalid", "scope-not-accepted"]);
    // The negotiable settlement item is still known, though the refusal does not list it.
    assert!(decision.negotiation.settlement);
}

fn pkg_x_curated_request() -> Value {
    let mut request = pkg_x_request();
    request["publication/timing-profile"] = json!("curator-gated");
    request
}

#[test]
fn tv_15_public_vault_accepts_unbounded_and_gate_findings_refuse() {
    let decision = decide_on(ad_p(), pkg_x_curated_request());
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(decision.terms.max_duration_sec, None);
    assert_eq!(notes(&decision), [NoteCode::RetentionUnbounded]);

    // The quorum itself is judged by the gate engine; its finding refuses here.
    let gated = prepare(pkg_x_curated_request())
        .with_gate_findings([Finding::new(
            ReasonCode::CuratorQuorumNotMet,
            "1 of 2 accepting curators",
        )])
        .unwrap();
    let decision = decide(&gated, &admit(ad_p()), &policy());
    assert_eq!(codes(&decision), ["curator-quorum-not-met"]);
    assert_eq!(decision.stage(Stage::ExportGates), StageOutcome::Refused);
}

#[test]
fn tv_16_public_vault_archivist_refuses_federation_scope() {
    assert_eq!(
        codes(&decide_on(ad_p(), request_f())),
        ["scope-not-accepted"]
    );
}

#[test]
fn tv_17_classification_gate_findings_refuse_the_rescoped_package() {
    // Rescoped to public-vault but still Community: the gate engine reports
    // declassification_required; the pipeline carries it through, with upstream spelling.
    let request = request_with(json!({ "publication/scope": "public-vault" }));
    let gated = prepare(request)
        .with_gate_findings([Finding::new(
            ReasonCode::DeclassificationRequired,
            "effective tier Community",
        )])
        .unwrap();
    let decision = decide(&gated, &admit(ad_p()), &policy());
    assert_eq!(codes(&decision), ["declassification_required"]);
}

#[test]
fn tv_18_accept_ranks_before_negotiate() {
    let ads = [admit(ad_a()), admit(ad_f())];
    let report = match_request(
        &prepare(request_f()),
        &ads,
        &policy(),
        &at("2026-03-23T00:00:00Z"),
    );
    let order: Vec<usize> = report.ranked.iter().map(|r| r.index).collect();
    assert_eq!(order, [1, 0]);
    assert_eq!(report.ranked[0].decision.verdict, Verdict::Accept);
}

#[test]
fn tv_19_mode_fit_ranks_least_disclosure_first() {
    let ads = [admit(ad_f()), admit(ad_d())];
    let federation = rank(&prepare(request_f()), &ads, &[0, 1], &policy());
    assert_eq!(
        federation
            .iter()
            .map(|r| (r.index, r.decision.terms.mode_fit))
            .collect::<Vec<_>>(),
        [(0, 0), (1, 3)]
    );
    assert!(
        federation[1]
            .decision
            .notes
            .contains(NoteCode::RetrievalModeNarrowerThanScope)
    );

    let private = request_with(json!({ "publication/scope": "private-retained" }));
    let private = rank(&prepare(private), &ads, &[0, 1], &policy());
    assert_eq!(
        private
            .iter()
            .map(|r| (r.index, r.decision.terms.mode_fit))
            .collect::<Vec<_>>(),
        [(1, 0), (0, 1)]
    );
}

#[test]
fn tv_20_only_the_newest_advertisement_per_archivist_counts() {
    let older = ad_a();
    let mut newer = ad_a();
    newer["advertisement/id"] = json!("archivist-advertisement:01JP0Q6F9B4R47AK9A8R8Q2HKT");
    newer["created-at"] = json!("2026-03-23T08:00:00Z");
    let ads = [admit(older), admit(newer)];
    let report = match_request(
        &prepare(request_f()),
        &ads,
        &policy(),
        &at("2026-03-24T00:00:00Z"),
    );
    assert_eq!(report.selection.current, [1]);
    assert_eq!(report.selection.excluded.len(), 1);
    assert_eq!(report.selection.excluded[0].index, 0);
    assert_eq!(
        report.selection.excluded[0].code,
        ExclusionCode::AdvertisementSuperseded
    );
    assert_eq!(report.ranked.len(), 1);
    assert_eq!(report.ranked[0].index, 1);
}

fn tv_21_clock() -> ExpiryClock {
    ExpiryClock::new(
        &at("2026-03-22T22:21:13Z"),
        Some(7_776_000),
        Some(2_592_000),
    )
}

fn stamp(deadline: Deadline) -> String {
    deadline.timestamp().unwrap().to_string()
}

#[test]
fn tv_21_hard_and_first_idle_expiry() {
    let clock = tv_21_clock();
    assert_eq!(stamp(clock.hard_expires_at()), "2026-06-20T22:21:13Z");
    assert_eq!(stamp(clock.idle_expires_at()), "2026-04-21T22:21:13Z");
    assert_eq!(clock.expiry().cause, Some(ExpiryCause::IdleTtl));
}

fn tv_22_clock() -> ExpiryClock {
    let mut clock = tv_21_clock();
    clock.record(
        Access::Retrieval(RetrievalStatus::Found),
        &at("2026-03-22T22:24:31Z"),
    );
    clock
}

#[test]
fn tv_22_a_found_retrieval_moves_idle_expiry_and_then_it_tombstones() {
    let clock = tv_22_clock();
    assert_eq!(stamp(clock.idle_expires_at()), "2026-04-21T22:24:31Z");
    assert!(matches!(
        clock.status_at(&at("2026-04-21T22:24:30Z")),
        ExpiryStatus::Live { .. }
    ));
    for now in ["2026-04-21T22:24:31Z", "2026-05-01T00:00:00Z"] {
        let status = clock.status_at(&at(now));
        assert!(
            matches!(
                status,
                ExpiryStatus::Expired {
                    cause: ExpiryCause::IdleTtl,
                    ..
                }
            ),
            "{now}: {status:?}"
        );
        assert_eq!(
            status.retrieval_reason(),
            Some(RetrievalReason::IdleTtlExpired)
        );
    }
}

/// TV-23 as written records its second `found` (2026-06-10) after the expiry its first one
/// set (2026-05-15T10:00:00Z); by §4.4 the package answers `tombstoned` from then on, so that
/// `found` cannot happen and counts for nothing (see the next test). A third retrieval before
/// 2026-05-15 makes the vector's history possible and gives its figures.
#[test]
fn tv_23_later_retrievals_extend_idle_but_never_past_the_hard_limit() {
    let mut clock = tv_22_clock();
    let found = Access::Retrieval(RetrievalStatus::Found);
    assert_eq!(
        clock.record(found, &at("2026-04-15T10:00:00Z")),
        Recorded::IdleRestarted
    );
    assert_eq!(stamp(clock.expiry().at), "2026-05-15T10:00:00Z");
    assert_eq!(
        clock.record(found, &at("2026-05-14T00:00:00Z")),
        Recorded::IdleRestarted
    );
    assert_eq!(
        clock.record(found, &at("2026-06-10T00:00:00Z")),
        Recorded::IdleRestarted
    );
    assert_eq!(stamp(clock.idle_expires_at()), "2026-07-10T00:00:00Z");
    let expiry = clock.expiry();
    assert_eq!(stamp(expiry.at), "2026-06-20T22:21:13Z");
    assert_eq!(expiry.cause, Some(ExpiryCause::MaxDuration));
    let status = clock.status_at(&at("2026-06-20T22:21:13Z"));
    assert!(matches!(status, ExpiryStatus::Expired { .. }), "{status:?}");
    assert_eq!(
        status.retrieval_reason(),
        Some(RetrievalReason::RetentionExpired)
    );
    assert!(matches!(
        clock.status_at(&at("2026-06-20T22:21:12Z")),
        ExpiryStatus::Live { .. }
    ));
}

/// TV-23's literal second `found` comes after the package expired: expiry is final, so the
/// package stays tombstoned with the idle cause it expired by.
#[test]
fn tv_23_a_found_after_expiry_revives_nothing() {
    let mut clock = tv_22_clock();
    let found = Access::Retrieval(RetrievalStatus::Found);
    let _ = clock.record(found, &at("2026-04-15T10:00:00Z"));
    let late = clock.record(found, &at("2026-06-10T00:00:00Z"));
    assert!(
        matches!(
            late,
            Recorded::AfterExpiry {
                cause: ExpiryCause::IdleTtl,
                ..
            }
        ),
        "{late:?}"
    );
    assert_eq!(stamp(clock.expiry().at), "2026-05-15T10:00:00Z");
    let status = clock.status_at(&at("2026-06-11T00:00:00Z"));
    assert_eq!(
        status.retrieval_reason(),
        Some(RetrievalReason::IdleTtlExpired),
        "{status:?}"
    );
}

#[test]
fn tv_24_denied_and_other_accesses_never_reset_idle() {
    let mut clock = tv_22_clock();
    let later = at("2026-04-20T00:00:00Z");
    let others: Vec<Access> = Access::ALL
        .into_iter()
        .filter(|access| *access != Access::Retrieval(RetrievalStatus::Found))
        .collect();
    assert_eq!(others.len(), 6);
    for access in others {
        assert!(!access.resets_idle());
        clock.record(access, &later);
    }
    assert_eq!(stamp(clock.expiry().at), "2026-04-21T22:24:31Z");
}

#[test]
fn tv_33_private_retained_skips_timing_and_negotiates_settlement() {
    let request = request_with(json!({
        "publication/scope": "private-retained",
        "publication/timing-profile": null
    }));
    let decision = decide_on(ad_a(), request);
    assert_eq!(decision.verdict, settlement_only());
    assert_eq!(decision.terms.mode_fit, 1);
    assert_eq!(decision.stage(Stage::Scope), StageOutcome::Passed);
    assert_eq!(decision.stage(Stage::Timing), StageOutcome::Skipped);
}

#[test]
fn done_when_upstream_example_negotiates_and_free_copy_accepts() {
    let now = at("2026-11-21T10:00:00Z");
    let request = prepare(request_f());
    let negotiated = match_request(&request, &[admit(ad_a())], &policy(), &now);
    let best = &negotiated.ranked[0].decision;
    assert_eq!(best.verdict, settlement_only());
    assert_eq!(best.terms.candidate_rails, ["host-ledger"]);

    let mut free = ad_a();
    free["settlement/required"] = json!(false);
    let accepted = match_request(&request, &[admit(free)], &policy(), &now);
    assert_eq!(accepted.ranked[0].decision.verdict, Verdict::Accept);
    assert_eq!(accepted.replication.assignments.len(), 1);
}

#[test]
fn refusals_list_every_reason_in_pipeline_order() {
    let request = request_with(json!({
        "publication/scope": "public-vault",
        "publication/timing-profile": "live-mirror",
        "artifact/type": "room-summary",
        "retention/max-duration-sec": 9_000_000,
        "negotiation/allowed": false,
        "replication/copies": 9,
        "settlement/acceptable-rails": ["manual-transfer"]
    }));
    let decision = decide_on(ad_a(), request);
    assert_eq!(
        codes(&decision),
        [
            "scope-not-accepted",
            "artifact-type-not-accepted",
            "timing-profile-unsupported",
            "live-mirror-not-authorized",
            "retention-exceeds-default",
            "replication-exceeds-max",
            "no-common-settlement-rail",
        ]
    );
    let timing_codes: Vec<ReasonCode> = decision.reason_codes().at(Stage::Timing).iter().collect();
    assert_eq!(
        timing_codes,
        [
            ReasonCode::TimingProfileUnsupported,
            ReasonCode::LiveMirrorNotAuthorized
        ]
    );
    assert!(
        decision
            .notes
            .contains(NoteCode::RetrievalModeNarrowerThanScope)
    );
}

#[test]
fn strict_policy_refuses_a_degraded_mode_fit() {
    let strict = Policy {
        strict_mode_fit: true,
        ..Policy::default()
    };
    let decision = decide(&prepare(request_f()), &admit(ad_d()), &strict);
    assert_eq!(codes(&decision), ["retrieval-mode-narrower-than-scope"]);
}

#[test]
fn gate_findings_must_be_gate_codes() {
    let err = PreparedRequest::new(&typed(request_f()))
        .with_gate_findings([Finding::new(ReasonCode::ScopeNotAccepted, "x")])
        .unwrap_err();
    assert_eq!(err.0, ReasonCode::ScopeNotAccepted);
    assert!(err.to_string().contains("scope-not-accepted"), "{err}");
    // Evaluated and clean: the stage passes.
    let clean = prepare_without_gate_evidence(request_f())
        .with_gate_findings([])
        .unwrap();
    let decision = decide(&clean, &admit(ad_f()), &policy());
    assert_eq!(decision.stage(Stage::ExportGates), StageOutcome::Passed);
    assert_eq!(decision.verdict, Verdict::Accept);
}

#[test]
fn tv_29_vault_scopes_without_gate_evidence_fail_closed_with_curation_missing() {
    // No evidence at all counts as an absent curation decision (spec §5, TV-29).
    let federation = prepare_without_gate_evidence(request_f());
    assert_eq!(
        federation
            .findings()
            .iter()
            .map(|f| f.code)
            .collect::<Vec<_>>(),
        [ReasonCode::CurationMissing]
    );
    let decision = decide(&federation, &admit(ad_f()), &policy());
    assert_eq!(codes(&decision), ["curation-missing"]);
    assert_eq!(decision.stage(Stage::ExportGates), StageOutcome::Refused);
    let decision = decide(
        &prepare_without_gate_evidence(pkg_x_curated_request()),
        &admit(ad_p()),
        &policy(),
    );
    assert_eq!(codes(&decision), ["curation-missing"]);
    // Evidence replaces the assumption: the evidence's own findings are what count.
    let quorum = prepare_without_gate_evidence(pkg_x_curated_request())
        .with_gate_findings([Finding::new(ReasonCode::CuratorQuorumNotMet, "1 of 2")])
        .unwrap();
    let decision = decide(&quorum, &admit(ad_p()), &policy());
    assert_eq!(codes(&decision), ["curator-quorum-not-met"]);
    // private-retained needs no curation: its gates are not evaluated, and it is accepted.
    let private = prepare_without_gate_evidence(request_with(
        json!({ "publication/scope": "private-retained" }),
    ));
    assert!(private.findings().is_empty(), "{:?}", private.findings());
    let decision = decide(&private, &admit(ad_f()), &policy());
    assert_eq!(decision.stage(Stage::ExportGates), StageOutcome::Skipped);
    assert_eq!(decision.verdict, Verdict::Accept);
}
