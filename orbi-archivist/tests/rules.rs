//! Rules beyond the spec's vectors: freshness and targeting, package checks, lints, unknown
//! rails, explanations and decision records.

mod common;

use common::*;
use orbi_archivist::{
    Advertisement, Policy, RecordContext, RecordError, Stage, StageOutcome, Verdict, decide,
    explain, match_request, record, select,
};
use orbi_schema::{Profile, registry};
use orbi_types::{
    ArchivalStorageDecision, Artifact,
    archival::{DecisionStatus, ExclusionCode, HardExpiry, LintCode, ReasonCode},
};
use serde_json::{Value, json};

#[test]
fn future_dated_stale_and_untargeted_advertisements_are_excluded_with_one_code_each() {
    let now = at("2026-04-01T00:00:00Z");
    let ads = [
        // 0: dated 301 s ahead: beyond the default 300 s skew.
        admit(with(ad_f(), json!({"created-at": "2026-04-01T00:05:01Z"}))),
        // 1: 300 s ahead: within the skew.
        admit(with(ad_d(), json!({"created-at": "2026-04-01T00:05:00Z"}))),
        // 2: old, own archivist.
        admit(with(ad_p(), json!({"created-at": "2025-01-01T00:00:00Z"}))),
        // 3: AD-A.
        admit(ad_a()),
    ];
    let policy = Policy {
        max_advertisement_age_sec: Some(30 * 86_400),
        ..Policy::default()
    };
    let selection = select(&ads, None, &policy, &now);
    assert_eq!(selection.current, [1, 3]);
    let excluded: Vec<(usize, ExclusionCode)> = selection
        .excluded
        .iter()
        .map(|e| (e.index, e.code))
        .collect();
    assert_eq!(
        excluded,
        [
            (0, ExclusionCode::AdvertisementFutureDated),
            (2, ExclusionCode::AdvertisementStale)
        ]
    );
    assert!(
        selection.excluded[1].detail.contains("2592000 s"),
        "{:?}",
        selection.excluded
    );

    // Default policy: no age limit, so the March advertisement is still current in November.
    let selection = select(
        &ads[2..],
        None,
        &Policy::default(),
        &at("2026-11-21T00:00:00Z"),
    );
    assert_eq!(selection.current, [0, 1]);

    // A direct submission leaves only its archivist.
    let selection = select(&ads, Some("node:pl-wro-archivist-1"), &policy, &now);
    assert_eq!(selection.current, [3]);
    assert!(
        selection
            .excluded
            .iter()
            .any(|e| e.index == 1 && e.code == ExclusionCode::ArchivistNotTargeted)
    );
}

#[test]
fn local_allow_and_deny_lists_exclude_archivists() {
    let ads = [admit(ad_a()), admit(ad_f()), admit(ad_d())];
    let now = at("2026-04-01T00:00:00Z");
    let deny = Policy {
        denied_archivists: ["node:archivist-f".to_owned()].into(),
        ..Policy::default()
    };
    let selection = select(&ads, None, &deny, &now);
    assert_eq!(selection.current, [0, 2]);
    assert_eq!(
        selection.excluded[0].code,
        ExclusionCode::ArchivistNotAllowed
    );

    let allow = Policy {
        allowed_archivists: Some(["node:archivist-d".to_owned()].into()),
        ..Policy::default()
    };
    assert_eq!(select(&ads, None, &allow, &now).current, [2]);
    // An empty allow list allows nobody (fail closed).
    let nobody = Policy {
        allowed_archivists: Some(Default::default()),
        ..Policy::default()
    };
    let selection = select(&ads, None, &nobody, &now);
    assert!(selection.current.is_empty());
    assert_eq!(selection.excluded.len(), 3);
}

#[test]
fn a_future_dated_newer_advertisement_does_not_supersede_the_current_one() {
    let future = with(
        ad_a(),
        json!({"advertisement/id": "archivist-advertisement:Z", "created-at": "2027-01-01T00:00:00Z"}),
    );
    let ads = [admit(ad_a()), admit(future)];
    let selection = select(&ads, None, &Policy::default(), &at("2026-04-01T00:00:00Z"));
    assert_eq!(selection.current, [0]);
    assert_eq!(
        selection.excluded[0].code,
        ExclusionCode::AdvertisementFutureDated
    );
}

#[test]
fn supersession_ties_break_on_the_larger_id() {
    let twin = with(
        ad_a(),
        json!({"advertisement/id": "archivist-advertisement:ZZZ"}),
    );
    let ads = [admit(twin), admit(ad_a())];
    let selection = select(&ads, None, &Policy::default(), &at("2026-04-01T00:00:00Z"));
    assert_eq!(selection.current, [0]);
    assert!(
        selection.excluded[0]
            .detail
            .contains("archivist-advertisement:ZZZ")
    );
}

#[test]
fn a_repeated_advertisement_keeps_its_later_copy() {
    let ads = [admit(ad_a()), admit(ad_a())];
    let selection = select(&ads, None, &Policy::default(), &at("2026-04-01T00:00:00Z"));
    assert_eq!(selection.current, [1]);
    assert_eq!(
        selection.excluded[0].detail,
        "a later copy of archivist-advertisement:01JP0Q6F9B4R47AK9A8R8Q2HKS is kept"
    );
}

#[test]
fn conflicting_twins_exclude_each_other_whatever_the_input_order() {
    // Same archivist, id and created-at; different terms. A third, older advertisement of
    // the same archivist stays superseded: the archivist has no current terms at all.
    let narrow = with(ad_a(), json!({"accepted/scopes": ["private-retained"]}));
    let older = with(
        ad_a(),
        json!({"advertisement/id": "archivist-advertisement:OLD", "created-at": "2026-01-01T00:00:00Z"}),
    );
    let now = at("2026-04-01T00:00:00Z");
    for order in [[0, 1, 2], [1, 0, 2], [2, 1, 0], [1, 2, 0]] {
        let pool = [ad_a(), narrow.clone(), older.clone()];
        let ads: Vec<_> = order.iter().map(|&i| admit(pool[i].clone())).collect();
        let selection = select(&ads, None, &Policy::default(), &now);
        assert!(selection.current.is_empty(), "{order:?}: {selection:?}");
        let code_of = |pool_index: usize| {
            let index = order.iter().position(|&i| i == pool_index).unwrap();
            selection
                .excluded
                .iter()
                .find(|exclusion| exclusion.index == index)
                .map(|exclusion| exclusion.code)
        };
        assert_eq!(code_of(0), Some(ExclusionCode::AdvertisementConflicting));
        assert_eq!(code_of(1), Some(ExclusionCode::AdvertisementConflicting));
        assert_eq!(code_of(2), Some(ExclusionCode::AdvertisementSuperseded));
    }
}

#[test]
fn twins_that_differ_only_in_annotations_or_the_offset_of_created_at_are_copies() {
    for copy in [
        json!({"policy_annotations": {"note": "mirrored"}}),
        json!({"created-at": "2026-03-23T00:22:33+02:00"}),
    ] {
        let ads = [admit(with(ad_a(), copy.clone())), admit(ad_a())];
        let selection = select(&ads, None, &Policy::default(), &at("2026-04-01T00:00:00Z"));
        assert_eq!(selection.current, [1], "{copy}");
        assert_eq!(
            selection.excluded[0].code,
            ExclusionCode::AdvertisementSuperseded,
            "{copy}"
        );
    }
}

#[test]
fn package_document_findings_cover_mismatch_integrity_and_inline_payload() {
    // PKG-F matches its request: nothing to report, and 1b/1c now pass instead of skipping.
    let clean = prepare(request_f()).with_package(&pkg_f());
    assert!(clean.findings().is_empty(), "{:?}", clean.findings());
    let decision = decide(&clean, &admit(ad_f()), &policy());
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(decision.stage(Stage::Integrity), StageOutcome::Passed);

    let mut broken = pkg_f();
    broken["retention/max-duration-sec"] = json!(100);
    broken["integrity/proof"] = json!({"alg": "ed25519", "signer": "node:x"});
    broken["payload/base64url"] = json!("AAAA");
    broken["archival/basis"] = json!("vibes");
    let request = prepare(request_f()).with_package(&broken);
    let found: Vec<(ReasonCode, &str)> = request
        .findings()
        .iter()
        .map(|f| (f.code, f.detail.as_str()))
        .collect();
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(found[0].0, ReasonCode::PackageInvalid);
    assert!(found[0].1.starts_with("/archival~1basis"), "{found:?}");
    assert_eq!(found[1].0, ReasonCode::RequestPackageMismatch);
    assert!(found[1].1.contains("retention/max-duration-sec"));
    assert_eq!(found[2].0, ReasonCode::IntegrityProofInvalid);
    assert_eq!(found[3].0, ReasonCode::InlinePayloadForbidden);
    assert!(found[3].1.starts_with("/payload~1base64url"));
    let decision = decide(&request, &admit(ad_f()), &policy());
    assert_eq!(
        decision.reason_codes().iter().collect::<Vec<_>>(),
        [
            ReasonCode::PackageInvalid,
            ReasonCode::RequestPackageMismatch,
            ReasonCode::IntegrityProofInvalid,
            ReasonCode::InlinePayloadForbidden
        ]
    );

    // The verification_ref form is as good as the signed one; a non-object is invalid.
    let mut referenced = pkg_f();
    referenced["integrity/proof"] =
        json!({"alg": "sha256", "verification_ref": "memarium:proof:1"});
    assert!(
        prepare(request_f())
            .with_package(&referenced)
            .findings()
            .is_empty()
    );
    let not_object = prepare(request_f()).with_package(&json!([1]));
    assert_eq!(not_object.findings()[0].code, ReasonCode::PackageInvalid);
    // A branch whose members are null or empty satisfies nothing.
    for hollow in [
        json!({"alg": "ed25519", "manifest_hash": null, "signer": null, "signature": null}),
        json!({"alg": "sha256", "verification_ref": ""}),
    ] {
        let mut package = pkg_f();
        package["integrity/proof"] = hollow.clone();
        let findings = prepare(request_f()).with_package(&package);
        let codes: Vec<_> = findings.findings().iter().map(|f| f.code).collect();
        assert_eq!(codes, [ReasonCode::IntegrityProofInvalid], "{hollow}");
    }
}

#[test]
fn every_lint_fires_on_its_own_condition() {
    let cases = [
        (
            json!({"settlement/rail-hints": ["none", "host-ledger"]}),
            LintCode::SettlementRailNoneWhileRequired,
        ),
        (
            json!({"retention/default-max-idle-ttl-sec": 7776001}),
            LintCode::IdleTtlExceedsDuration,
        ),
        (
            json!({"accepted/scopes": ["public-vault"]}),
            LintCode::PublicVaultWithoutPublicDiscovery,
        ),
        (
            json!({"publication/timing-profiles": ["curator-gated", "curator-gated"]}),
            LintCode::DuplicateEnumItems,
        ),
        (
            json!({"settlement/rail-hints": ["host-ledger", "host-ledger"]}),
            LintCode::DuplicateRailHints,
        ),
    ];
    for (change, code) in cases {
        let ad = admit(with(ad_a(), change.clone()));
        let codes: Vec<LintCode> = ad.lints().iter().map(|l| l.code).collect();
        assert_eq!(codes, [code], "{change}");
        assert!(!ad.lints()[0].message.is_empty());
    }
    // The public vault advertisement of the spec offers public discovery: no lint.
    assert!(admit(ad_p()).lints().is_empty());
}

#[test]
fn idle_ttl_is_clamped_to_the_effective_duration() {
    let ad = with(
        ad_f(),
        json!({"retention/default-max-duration-sec": 100, "retention/default-max-idle-ttl-sec": 500}),
    );
    let request = request_with(json!({
        "retention/max-duration-sec": null, "retention/max-idle-ttl-sec": null
    }));
    let decision = decide(&prepare(request), &admit(ad), &policy());
    assert_eq!(decision.terms.max_duration_sec, Some(100));
    assert_eq!(decision.terms.max_idle_ttl_sec, Some(100));
    assert!(
        decision
            .notes
            .contains(orbi_types::archival::NoteCode::IdleTtlClamped)
    );
}

#[test]
fn unknown_rails_are_kept_but_never_ranked_first() {
    let ad = with(
        ad_a(),
        json!({"settlement/rail-hints": ["x-community-credit", "host-ledger", "external-invoice"]}),
    );
    let request = request_with(json!({
        "settlement/acceptable-rails": ["x-community-credit", "external-invoice", "host-ledger"]
    }));
    let decision = decide(&prepare(request), &admit(ad), &policy());
    assert_eq!(
        decision.terms.candidate_rails,
        ["host-ledger", "external-invoice", "x-community-credit"]
    );
}

#[test]
fn integers_written_as_floats_are_refused_at_admission() {
    // JSON Schema counts 3.0 as an integer; admission does not (see Advertisement::admit).
    let fractional = with(ad_a(), json!({"replication/max-copies": 3.0}));
    let schema = registry()
        .validator("archivist-advertisement", Profile::Seed)
        .unwrap();
    assert!(schema.is_valid(&fractional));
    let invalid = Advertisement::admit(&fractional).unwrap_err();
    assert!(
        invalid.issues[0].contains("/replication~1max-copies"),
        "{invalid}"
    );
    let duplicate = br#"{"schema/v": 1, "schema/v": 1}"#;
    let invalid = Advertisement::admit_slice(duplicate).unwrap_err();
    assert!(invalid.issues[0].contains("duplicate key"), "{invalid}");
}

#[test]
fn integers_above_u64_are_refused_naming_the_field_and_the_limit() {
    let schema = registry()
        .validator("archivist-advertisement", Profile::Seed)
        .unwrap();
    // Schema-valid (no maximum), but no u64 holds it; not read as a float, not saturated.
    let text = serde_json::to_string(&ad_a()).unwrap().replace(
        "\"retention/default-max-duration-sec\":7776000",
        "\"retention/default-max-duration-sec\":18446744073709551616",
    );
    let huge: Value = serde_json::from_str(&text).unwrap();
    assert!(schema.is_valid(&huge));
    let invalid = Advertisement::admit_slice(text.as_bytes()).unwrap_err();
    assert_eq!(
        invalid.issues,
        [
            "\"/retention~1default-max-duration-sec\": the value is 2^64 or more, above 18446744073709551615, the largest value supported"
        ]
    );
}

#[test]
fn stage_0b_passes_for_every_advertisement_match_request_selected() {
    let request = prepare(request_with(json!({"replication/copies": 2})));
    let now = at("2026-04-01T00:00:00Z");
    let ads = [admit(ad_a()), admit(ad_d())];
    let report = match_request(&request, &ads, &policy(), &now);
    let assigned = report.replication.assignments.iter();
    let decisions: Vec<_> = (report
        .ranked
        .iter()
        .map(|entry| (entry.index, &entry.decision)))
    .chain(assigned.map(|entry| (entry.index, &entry.decision)))
    .collect();
    assert!(decisions.len() > ads.len(), "premise: ranked and assigned");
    for (index, decision) in decisions {
        assert_eq!(decision.stage(Stage::AdFreshness), StageOutcome::Passed);
        let report = explain(&request, &ads[index], decision);
        let freshness = report
            .iter()
            .find(|r| r.stage == Stage::AdFreshness)
            .unwrap();
        assert!(freshness.text.contains("the newest advertisement of"));
    }
}

#[test]
fn the_explanation_covers_every_stage_in_words() {
    let request = prepare(request_f());
    let ad = admit(ad_a());
    let decision = decide(&request, &ad, &policy());
    let report = explain(&request, &ad, &decision);
    assert_eq!(report.len(), Stage::ALL.len());
    let text = |stage: Stage| {
        report
            .iter()
            .find(|r| r.stage == stage)
            .map(|r| (r.outcome, r.text.clone()))
            .unwrap()
    };
    assert_eq!(text(Stage::ExportGates).0, StageOutcome::Passed);
    assert_eq!(text(Stage::ExportGates).1, "every export gate passed");
    // `decide` alone chose among nothing: stage 0b did not run and does not say it passed.
    assert_eq!(text(Stage::AdFreshness).0, StageOutcome::Skipped);
    assert!(text(Stage::AdFreshness).1.starts_with("not run"));
    assert!(
        text(Stage::Scope)
            .1
            .contains("federation-vault is accepted")
    );
    assert!(
        text(Stage::Settlement)
            .1
            .contains("settle on one of host-ledger")
    );
    assert_eq!(text(Stage::Settlement).0, StageOutcome::Negotiable);

    let refused = prepare(request_with(
        json!({"settlement/can-settle": false, "replication/copies": 4}),
    ));
    let decision = decide(&refused, &ad, &policy());
    let report = explain(&refused, &ad, &decision);
    let settlement = report
        .iter()
        .find(|r| r.stage == Stage::Settlement)
        .unwrap();
    assert_eq!(settlement.outcome, StageOutcome::Refused);
    assert!(
        settlement.text.contains("cannot settle"),
        "{}",
        settlement.text
    );
    let replication = report
        .iter()
        .find(|r| r.stage == Stage::Replication)
        .unwrap();
    assert!(
        replication.text.contains("4 copies exceed"),
        "{}",
        replication.text
    );
}

#[test]
fn an_accepted_record_is_a_valid_storage_confirmation() {
    let request = prepare(request_f());
    let ad = admit(ad_f());
    let decision = decide(&request, &ad, &policy());
    let context = RecordContext {
        decision_id: "storage-decision:1".into(),
        decided_at: at("2026-03-22T22:21:13Z"),
        retrieval_ref: Some("vault:1".into()),
        integrity_verified: Some(true),
    };
    let artifact = record(&request, &ad, &decision, context.clone()).unwrap();
    assert_eq!(artifact.status, DecisionStatus::Accepted);
    assert_eq!(
        artifact.hard_expires_at,
        Some(HardExpiry::At(at("2026-06-20T22:21:13Z")))
    );
    let validator = registry()
        .validator(ArchivalStorageDecision::NAME, Profile::Seed)
        .unwrap();
    let value = artifact.to_value();
    assert!(
        validator.issues(&value).is_empty(),
        "{:?}",
        validator.issues(&value)
    );
    assert_eq!(
        ArchivalStorageDecision::from_value(&value).unwrap(),
        artifact
    );

    let missing = RecordContext {
        retrieval_ref: None,
        ..context.clone()
    };
    assert_eq!(
        record(&request, &ad, &decision, missing),
        Err(RecordError::MissingRetrievalRef)
    );

    // A negotiation needs no retrieval ref and carries its items as reasons.
    let negotiated = decide(&request, &admit(ad_a()), &policy());
    let artifact = record(
        &request,
        &admit(ad_a()),
        &negotiated,
        RecordContext {
            retrieval_ref: None,
            ..context
        },
    )
    .unwrap();
    let value = artifact.to_value();
    assert_eq!(value["status"], "negotiation-required");
    assert_eq!(value["reason/codes"], json!(["settlement-required"]));
    assert_eq!(value["settlement/candidate-rails"], json!(["host-ledger"]));
    assert!(
        validator.issues(&value).is_empty(),
        "{:?}",
        validator.issues(&value)
    );
}

#[test]
fn an_unbounded_acceptance_records_a_null_hard_expiry() {
    let request = prepare(request_with(json!({
        "publication/scope": "public-vault",
        "retention/max-duration-sec": null,
        "retention/max-idle-ttl-sec": null
    })));
    let ad = admit(ad_p());
    let decision = decide(&request, &ad, &policy());
    let artifact = record(
        &request,
        &ad,
        &decision,
        RecordContext {
            decision_id: "storage-decision:2".into(),
            decided_at: at("2026-03-22T22:21:13Z"),
            retrieval_ref: Some("vault:2".into()),
            integrity_verified: None,
        },
    )
    .unwrap();
    let value = artifact.to_value();
    assert_eq!(value["retention/hard-expires-at"], Value::Null);
    assert_eq!(value["reason/notes"], json!(["retention-unbounded"]));
}

#[test]
fn match_report_ranks_candidates_before_refusals() {
    let ads = [admit(ad_p()), admit(ad_a()), admit(ad_f())];
    let report = match_request(
        &prepare(request_f()),
        &ads,
        &policy(),
        &at("2026-04-01T00:00:00Z"),
    );
    let statuses: Vec<(usize, DecisionStatus)> = report
        .ranked
        .iter()
        .map(|r| (r.index, r.decision.status()))
        .collect();
    assert_eq!(
        statuses,
        [
            (2, DecisionStatus::Accepted),
            (1, DecisionStatus::NegotiationRequired),
            (0, DecisionStatus::Refused)
        ]
    );
    assert_eq!(report.replication.assignments[0].index, 2);
}

/// An accepted record of `copies` copies under `commitment` from AD-F (max-copies 3).
fn recorded_copies(copies: u64, commitment: &str) -> Value {
    let request = prepare(request_with(json!({
        "replication/copies": copies, "replication/commitment": commitment
    })));
    let ad = admit(ad_f());
    let decision = decide(&request, &ad, &policy());
    assert_eq!(decision.verdict, Verdict::Accept);
    let context = RecordContext {
        decision_id: "storage-decision:3".into(),
        decided_at: at("2026-03-22T22:21:13Z"),
        retrieval_ref: Some("vault:3".into()),
        integrity_verified: None,
    };
    record(&request, &ad, &decision, context)
        .unwrap()
        .to_value()
}

#[test]
fn one_archivist_confirms_one_guaranteed_copy_or_the_hinted_copies_it_coordinates() {
    // Guaranteed copies need distinct archivists (§4.6 step 3): one answers for one.
    let guaranteed = recorded_copies(3, "guarantee");
    assert_eq!(guaranteed["replication/copies"], 1, "{guaranteed}");
    assert_eq!(guaranteed["replication/commitment"], "guarantee");
    // Under a hint one archivist may cover k copies.
    let hinted = recorded_copies(3, "hint");
    assert_eq!(hinted["replication/copies"], 3, "{hinted}");
    assert_eq!(hinted["replication/commitment"], "hint");
}

#[test]
fn a_replication_plan_never_places_two_copies_with_one_archivist() {
    // Two advertisements of one archivist, handed to the planner without stage 0b.
    let mut second = ad_f();
    second["advertisement/id"] = json!("archivist-advertisement:F2");
    second["created-at"] = json!("2026-03-23T00:00:00Z");
    let ads = [admit(ad_f()), admit(second), admit(ad_d())];
    for commitment in ["guarantee", "hint"] {
        let request = prepare(request_with(json!({
            "replication/copies": 3, "replication/commitment": commitment
        })));
        let strict = Policy {
            min_distinct_archivists: 3,
            ..policy()
        };
        let plan = orbi_archivist::plan_replication(&request, &ads, &[0, 1, 2], &strict);
        let archivists: Vec<&str> = plan
            .assignments
            .iter()
            .map(|a| ads[a.index].archivist())
            .collect();
        assert_eq!(
            archivists,
            ["node:archivist-f", "node:archivist-d"],
            "{commitment}"
        );
    }
}

#[test]
fn each_archivist_is_judged_on_every_copy_while_the_plan_splits_them() {
    // AD-P has no max-copies (one copy); two such archivists hold two guaranteed copies.
    let mut other = ad_p();
    other["advertisement/id"] = json!("archivist-advertisement:P2");
    other["archivist/node-id"] = json!("node:archivist-p2");
    let ads = [admit(ad_p()), admit(other)];
    for commitment in ["guarantee", "hint"] {
        let two = json!({
            "publication/scope": "public-vault", "replication/copies": 2,
            "replication/commitment": commitment,
            "retention/max-duration-sec": null, "retention/max-idle-ttl-sec": null
        });
        let report = match_request(
            &prepare(request_with(two)),
            &ads,
            &policy(),
            &at("2026-04-01T00:00:00Z"),
        );
        // TV-13: each alone refuses two copies (what it would answer to this request)...
        for entry in &report.ranked {
            assert_eq!(
                entry.decision.reason_codes().iter().collect::<Vec<_>>(),
                [ReasonCode::ReplicationExceedsMax],
                "{commitment}"
            );
        }
        // ... and the selector splits them over the two.
        assert_eq!(report.replication.missing, 0, "{commitment}");
    }
}

#[test]
fn parse_request_gates_with_the_schema_but_leaves_the_timing_conditional_to_the_pipeline() {
    let bytes = |value: &serde_json::Value| serde_json::to_vec(value).unwrap();
    // The typed parse alone reads `null` as absent; the schema refuses it.
    let mut nulled = request_f();
    nulled["replication/copies"] = serde_json::Value::Null;
    let error = orbi_archivist::parse_request(&bytes(&nulled)).unwrap_err();
    assert!(
        error.to_string().contains("/replication~1copies"),
        "{error}"
    );
    // Integers no u64 holds are named as such, not as floats.
    let marked = request_with(json!({"retention/max-duration-sec": 424_242}));
    let huge = String::from_utf8(bytes(&marked))
        .unwrap()
        .replace("424242", "18446744073709551616");
    let error = orbi_archivist::parse_request(huge.as_bytes()).unwrap_err();
    assert!(error.to_string().contains("2^64 or more"), "{error}");
    assert!(
        error.to_string().contains("/retention~1max-duration-sec"),
        "{error}"
    );
    // public-vault without a timing profile is read, and refused later as a stage 1 reason.
    let untimed = request_with(json!({
        "publication/scope": "public-vault", "publication/timing-profile": null
    }));
    let parsed = orbi_archivist::parse_request(&bytes(&untimed)).unwrap();
    assert!(!parsed.timing_rule_holds());
}

#[test]
fn rail_hints_are_kept_once_each_known_ones_first() {
    let ad = admit(with(
        ad_a(),
        json!({"settlement/rail-hints": ["vendor-rail", "host-ledger", "vendor-rail", "host-ledger"]}),
    ));
    assert_eq!(ad.rails(), ["host-ledger", "vendor-rail"]);
}

#[test]
fn a_long_rail_list_does_not_change_how_the_timing_rule_is_reported() {
    let bytes = |value: &serde_json::Value| serde_json::to_vec(value).unwrap();
    let rails: Vec<String> = (0..20_001).map(|i| format!("x-rail-{i}")).collect();
    let timed = request_with(json!({"settlement/acceptable-rails": rails}));
    orbi_archivist::parse_request(&bytes(&timed)).expect("a valid long request is read");
    let untimed = request_with(json!({
        "publication/scope": "public-vault", "publication/timing-profile": null,
        "settlement/acceptable-rails": rails
    }));
    // As with a short rail list: read, and refused later as a stage 1 reason.
    let parsed = orbi_archivist::parse_request(&bytes(&untimed))
        .unwrap_or_else(|e| panic!("refused unread: {e}"));
    assert!(!parsed.timing_rule_holds());
}
