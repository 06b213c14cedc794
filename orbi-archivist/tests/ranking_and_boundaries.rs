//! The §4.6 ranking criteria one by one, and stage boundaries (max age, clamps, expiry ties, rails):
//! behaviours a hand mutation audit found no test for. Each test fails when its decision
//! point is mutated (a comparison flipped, a check dropped) and passes on the code as it is.

mod common;

use common::*;
use orbi_archivist::{
    Deadline, ExpiryClock, ExpiryStatus, Policy, Stage, StageOutcome, Verdict, decide, explain,
    plan_replication, rank, select,
};
use orbi_types::archival::{ExclusionCode, ExpiryCause, NoteCode, ReasonCode};
use serde_json::{Value, json};

/// `ad_f()` (free, federation-discovery, D 7776000, I 2592000) as archivist `name`, with
/// `changes` applied (`null` removes a key).
fn variant(name: &str, changes: Value) -> Value {
    let mut ad = ad_f();
    ad["advertisement/id"] = json!(format!("archivist-advertisement:{name}"));
    ad["archivist/node-id"] = json!(format!("node:archivist-{name}"));
    with(ad, changes)
}

/// The rank order (input indices) of `ads` for `request`.
fn ranked(request: Value, ads: Vec<Value>) -> Vec<usize> {
    let ads: Vec<_> = ads.into_iter().map(admit).collect();
    let all: Vec<usize> = (0..ads.len()).collect();
    rank(&prepare(request), &ads, &all, &policy())
        .iter()
        .map(|entry| entry.index)
        .collect()
}

const SETTLED: &str = "host-ledger";

/// §4.6 (1): `Negotiate(settlement only)` ranks before `Negotiate(terms)`.
#[test]
fn settlement_only_negotiation_ranks_before_negotiated_terms() {
    let terms = variant(
        "terms",
        json!({"retention/default-max-duration-sec": 7_775_000}),
    );
    let settle = variant(
        "settle",
        json!({"settlement/required": true, "settlement/rail-hints": [SETTLED]}),
    );
    assert_eq!(ranked(request_f(), vec![terms, settle]), [1, 0]);
}

/// §4.6 (3): within one outcome class, `settlement/required` false ranks first.
#[test]
fn free_archivists_rank_before_paid_ones_with_the_same_terms() {
    let short = json!(7_775_000);
    let paid = variant(
        "paid",
        json!({"settlement/required": true, "settlement/rail-hints": [SETTLED],
               "retention/default-max-duration-sec": short}),
    );
    let free = variant("free", json!({"retention/default-max-duration-sec": short}));
    assert_eq!(ranked(request_f(), vec![paid, free]), [1, 0]);
}

/// §4.6 (4): the retention shortfall is compared before the idle shortfall.
#[test]
fn retention_shortfall_ranks_before_idle_shortfall() {
    let short_duration = variant(
        "d",
        json!({"retention/default-max-duration-sec": 7_775_900}),
    );
    let short_idle = variant(
        "i",
        json!({"retention/default-max-idle-ttl-sec": 2_591_000}),
    );
    assert_eq!(
        ranked(request_f(), vec![short_duration, short_idle]),
        [1, 0]
    );
}

/// §4.6 (5): the larger default duration ranks first, and an absent one (unbounded) is the
/// largest.
#[test]
fn larger_and_absent_default_durations_rank_first() {
    let smaller = variant("small", json!({}));
    let larger = variant(
        "large",
        json!({"retention/default-max-duration-sec": 9_000_000}),
    );
    assert_eq!(ranked(request_f(), vec![smaller, larger.clone()]), [1, 0]);
    let unbounded = variant(
        "unbounded",
        json!({"retention/default-max-duration-sec": null}),
    );
    assert_eq!(ranked(request_f(), vec![larger, unbounded]), [1, 0]);
}

/// §4.6 (6) and (7): newer `created-at` first, then `advertisement/id` ascending.
#[test]
fn newer_advertisements_then_smaller_ids_rank_first() {
    let older = variant("a-older", json!({}));
    let newer = variant("b-newer", json!({"created-at": "2026-03-23T00:00:00Z"}));
    assert_eq!(ranked(request_f(), vec![older, newer]), [1, 0]);
    let later_id = variant("b", json!({}));
    let earlier_id = variant("a", json!({}));
    assert_eq!(ranked(request_f(), vec![later_id, earlier_id]), [1, 0]);
}

/// §4.2: for `private-retained`, `public-discovery` scores 2, worse than
/// `federation-discovery` (1), whatever the later criteria say.
#[test]
fn private_retained_prefers_federation_over_public_discovery() {
    let request = request_with(json!({"publication/scope": "private-retained"}));
    let federation = variant("fed", json!({}));
    let public = variant(
        "pub",
        json!({"retrieval/mode": "public-discovery", "created-at": "2026-03-23T00:00:00Z"}),
    );
    assert_eq!(ranked(request, vec![federation, public]), [0, 1]);
}

/// Stage 0b: "within configured max age" includes the limit itself.
#[test]
fn an_advertisement_exactly_at_the_max_age_is_not_stale() {
    let policy = Policy {
        max_advertisement_age_sec: Some(30 * 86_400),
        ..Policy::default()
    };
    let ads = [
        admit(variant(
            "edge",
            json!({"created-at": "2026-03-02T00:00:00Z"}),
        )),
        admit(variant(
            "old",
            json!({"created-at": "2026-03-01T23:59:59Z"}),
        )),
    ];
    let selection = select(&ads, None, &policy, &at("2026-04-01T00:00:00Z"));
    assert_eq!(selection.current, [0]);
    assert_eq!(
        selection.excluded[0].code,
        ExclusionCode::AdvertisementStale
    );
}

/// §4.4: an idle TTL equal to the effective duration is not clamped.
#[test]
fn an_idle_ttl_equal_to_the_duration_is_not_noted_as_clamped() {
    let request = request_with(json!({
        "retention/max-duration-sec": 2_592_000, "retention/max-idle-ttl-sec": 2_592_000
    }));
    let decision = decide(&prepare(request), &admit(ad_f()), &policy());
    assert_eq!(decision.terms.max_idle_ttl_sec, Some(2_592_000));
    assert!(!decision.notes.contains(NoteCode::IdleTtlClamped));
}

/// §4.4: "idle TTL works the same way": an idle TTL taken from the archivist alone flags
/// `retention-defaulted-by-archivist` even when the duration was given.
#[test]
fn a_defaulted_idle_ttl_alone_is_noted() {
    let request = request_with(json!({"retention/max-idle-ttl-sec": null}));
    let decision = decide(&prepare(request), &admit(ad_f()), &policy());
    assert_eq!(decision.terms.max_idle_ttl_sec, Some(2_592_000));
    assert!(
        decision
            .notes
            .contains(NoteCode::RetentionDefaultedByArchivist)
    );
}

/// Stage 5 as implemented: `private-retained` publishes nothing, so a timing profile it
/// names is not checked (and the explanation says so).
#[test]
fn private_retained_does_not_check_a_named_timing_profile() {
    let request = prepare(request_with(json!({
        "publication/scope": "private-retained", "publication/timing-profile": "live-mirror"
    })));
    let ad = admit(ad_f());
    let decision = decide(&request, &ad, &policy());
    assert_eq!(decision.verdict, Verdict::Accept);
    assert_eq!(decision.stage(Stage::Timing), StageOutcome::Skipped);
    let timing = explain(&request, &ad, &decision)
        .into_iter()
        .find(|report| report.stage == Stage::Timing)
        .unwrap();
    assert!(timing.text.contains("private-retained"), "{}", timing.text);
}

/// The stage 6 explanation calls a fit of 1 acceptable, not ideal.
#[test]
fn a_wider_mode_is_not_explained_as_the_ideal_fit() {
    let request = prepare(request_with(
        json!({"publication/scope": "private-retained"}),
    ));
    let ad = admit(ad_f());
    let decision = decide(&request, &ad, &policy());
    assert_eq!(decision.terms.mode_fit, 1);
    let fit = explain(&request, &ad, &decision)
        .into_iter()
        .find(|report| report.stage == Stage::ModeFit)
        .unwrap();
    assert!(fit.text.contains("wider than needed"), "{}", fit.text);
}

/// §4.4: a tie between the hard and idle deadlines is reported as `max-duration`.
#[test]
fn a_tied_expiry_is_a_max_duration_expiry() {
    let clock = ExpiryClock::new(&at("2026-03-22T22:21:13Z"), Some(100), Some(100));
    let expiry = clock.expiry();
    assert_eq!(expiry.at, clock.hard_expires_at());
    assert_eq!(expiry.cause, Some(ExpiryCause::MaxDuration));
    assert!(matches!(
        clock.status_at(&at("2026-03-22T22:22:53Z")),
        ExpiryStatus::Expired {
            cause: ExpiryCause::MaxDuration,
            ..
        }
    ));
    assert_ne!(expiry.at, Deadline::Never);
}

/// §4.6 step 3 with a hint: one archivist covers as many copies as it may while leaving
/// exactly one for each further distinct archivist required.
#[test]
fn a_hinted_plan_uses_no_more_archivists_than_required() {
    let ads = [
        admit(variant("a", json!({}))),
        admit(variant("b", json!({}))),
        admit(variant("c", json!({}))),
    ];
    let request = prepare(request_with(json!({
        "replication/copies": 3, "replication/commitment": "hint"
    })));
    let two = Policy {
        min_distinct_archivists: 2,
        ..policy()
    };
    let plan = plan_replication(&request, &ads, &[0, 1, 2], &two);
    let copies: Vec<u64> = plan.assignments.iter().map(|a| a.copies).collect();
    assert_eq!(copies, [2, 1]);
    assert_eq!(plan.missing, 0);
}

/// §4.5: rail strings compare exactly, unknown ones included.
#[test]
fn different_unknown_rails_are_not_a_common_rail() {
    let ad = variant(
        "paid",
        json!({"settlement/required": true, "settlement/rail-hints": ["x-rail-y"]}),
    );
    let request = request_with(json!({"settlement/acceptable-rails": ["x-rail-x"]}));
    let decision = decide(&prepare(request), &admit(ad), &policy());
    assert_eq!(
        decision.reason_codes().iter().collect::<Vec<_>>(),
        [ReasonCode::NoCommonSettlementRail]
    );
}
