//! `cargo bench -p orbi-archivist`: one decision, and ranking 10,000 advertisements for one
//! request, each reported with a baseline measured in the same run.
//!
//! Baselines (why these): a decision is compared with allocating and dropping one short
//! `String` (the one allocation a negotiated decision makes), and with admitting one
//! advertisement (schema validation plus typed parse), which happens once per advertisement
//! and bounds what a decision is worth optimising. Ranking 10,000 is compared with sorting
//! 10,000 precomputed ranking keys: the part of ranking that no decision logic can avoid.
//! After the measurements the ratios are printed from criterion's own estimates.

use std::{
    cmp::Reverse,
    hint::black_box,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use criterion::{BatchSize, Criterion};
// The spec's fixtures (AD-A, the default request), shared with the tests.
#[path = "../tests/common/mod.rs"]
mod common;
use common::{ad_a, prepare, request_with};
use orbi_archivist::{Advertisement, Policy, decide, match_request, rank};
use orbi_types::Timestamp;
use serde_json::{Value, json};

/// A deterministic xorshift generator (no dependency, same population every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn subset<'a>(&mut self, items: &[&'a str]) -> Vec<&'a str> {
        let mask = 1 + self.below((1 << items.len()) - 1);
        (0..items.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| items[i])
            .collect()
    }
}

/// 10,000 varied advertisements from distinct archivists.
fn population(count: usize) -> Vec<Advertisement> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let day = 86_400;
    (0..count)
        .map(|i| {
            let mode = ["direct-only", "federation-discovery", "public-discovery"][rng.below(3) as usize];
            let mut ad = json!({
                "schema/v": 1,
                "advertisement/id": format!("archivist-advertisement:{i:08}"),
                "created-at": Timestamp::from_unix_seconds(1_767_225_600 + rng.below(90 * day) as i64)
                    .unwrap(),
                "archivist/node-id": format!("node:archivist-{i}"),
                "accepted/scopes": rng.subset(&["private-retained", "federation-vault", "public-vault"]),
                "accepted/artifact-types": rng.subset(&[
                    "transcript-bundle", "room-summary", "response-envelope",
                    "knowledge-artifact", "corpus-entry",
                ]),
                "retrieval/mode": mode,
                "publication/timing-profiles": rng.subset(&["live-mirror", "delayed-bundle", "curator-gated"]),
                "settlement/required": rng.below(2) == 0,
                "settlement/rail-hints": rng.subset(&["external-invoice", "host-ledger", "manual-transfer", "x-credit"]),
            });
            if rng.below(4) != 0 {
                ad["retention/default-max-duration-sec"] = json!(day * (30 + rng.below(335)));
            }
            if rng.below(4) != 0 {
                ad["retention/default-max-idle-ttl-sec"] = json!(day * (7 + rng.below(60)));
            }
            if rng.below(2) == 0 {
                ad["replication/max-copies"] = json!(1 + rng.below(5));
            }
            Advertisement::admit(&ad).expect("generated advertisements are valid")
        })
        .collect()
}

const GROUP_DECISION: &str = "decision";
const GROUP_RANKING: &str = "ranking";

fn benches(criterion: &mut Criterion) {
    let ad_a_value = ad_a();
    let ad_a = Advertisement::admit(&ad_a_value).expect("AD-A");
    let mut free_value = ad_a_value.clone();
    free_value["settlement/required"] = json!(false);
    let free = Advertisement::admit(&free_value).expect("AD-F");
    let policy = Policy::default();
    let plain = prepare(request_with(json!({})));
    let refused = prepare(request_with(json!({
        "publication/scope": "public-vault", "publication/timing-profile": "live-mirror",
        "artifact/type": "room-summary", "replication/copies": 9,
        "settlement/acceptable-rails": ["manual-transfer"]
    })));

    let mut group = criterion.benchmark_group(GROUP_DECISION);
    group.bench_function("negotiate", |b| {
        b.iter(|| decide(black_box(&plain), black_box(&ad_a), &policy))
    });
    group.bench_function("accept", |b| {
        b.iter(|| decide(black_box(&plain), black_box(&free), &policy))
    });
    group.bench_function("refuse-every-stage", |b| {
        b.iter(|| decide(black_box(&refused), black_box(&ad_a), &policy))
    });
    group.bench_function("baseline-string-alloc", |b| {
        b.iter(|| String::from(black_box("host-ledger")))
    });
    group.bench_function("baseline-admit-advertisement", |b| {
        b.iter(|| Advertisement::admit(black_box(&ad_a_value)))
    });
    group.finish();

    let ads = population(10_000);
    let all: Vec<usize> = (0..ads.len()).collect();
    let now = Timestamp::parse("2026-04-01T00:00:00Z").expect("now");
    // The keys a ranking sorts, computed up front for the baseline.
    type Key = (u8, u8, bool, u64, u64, Reverse<u64>, Reverse<i128>, String);
    let keys: Vec<Key> = all
        .iter()
        .map(|&i| {
            let decision = decide(&plain, &ads[i], &policy);
            (
                decision.status() as u8,
                decision.terms.mode_fit,
                decision.terms.settlement_required,
                decision.retention_shortfall,
                decision.idle_shortfall,
                Reverse(ads[i].default_max_duration_sec().unwrap_or(u64::MAX)),
                Reverse(ads[i].created_nanos()),
                ads[i].id().to_owned(),
            )
        })
        .collect();

    let mut group = criterion.benchmark_group(GROUP_RANKING);
    group.sample_size(20);
    group.bench_function("rank-10000", |b| {
        b.iter(|| rank(black_box(&plain), black_box(&ads), &all, &policy))
    });
    group.bench_function("match-10000", |b| {
        b.iter(|| match_request(black_box(&plain), black_box(&ads), &policy, &now))
    });
    group.bench_function("baseline-sort-10000-keys", |b| {
        b.iter_batched(
            || keys.clone(),
            |mut keys| {
                keys.sort();
                keys
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Criterion's estimate for `group/function` in nanoseconds, if it was measured in this run
/// (written after `since`).
fn estimate_ns(dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if written < since {
        return None;
    }
    let estimates: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    // The figure criterion prints: the slope when it fitted one, else the mean.
    estimates["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| estimates["mean"]["point_estimate"].as_f64())
}

fn report(dir: &Path, since: SystemTime) {
    let show = |group: &str, function: &str, baseline: &str, goal_ns: Option<f64>| {
        let (Some(value), Some(base)) = (
            estimate_ns(dir, group, function, since),
            estimate_ns(dir, group, baseline, since),
        ) else {
            return;
        };
        let goal = goal_ns.map_or_else(String::new, |goal| {
            let verdict = if value < goal { "met" } else { "missed" };
            format!("; goal {} ({verdict})", human(goal))
        });
        println!(
            "{group}/{function}: {} = {:.3}x {baseline} ({}){goal}",
            human(value),
            value / base,
            human(base),
        );
    };
    println!("\nratios against baselines measured in this run (criterion estimates):");
    for function in ["negotiate", "accept", "refuse-every-stage"] {
        show(
            GROUP_DECISION,
            function,
            "baseline-string-alloc",
            Some(1_000.0),
        );
        show(
            GROUP_DECISION,
            function,
            "baseline-admit-advertisement",
            None,
        );
    }
    // The goal is for ranking; selection plus ranking plus the replication plan is shown too.
    show(
        GROUP_RANKING,
        "rank-10000",
        "baseline-sort-10000-keys",
        Some(5e6),
    );
    show(
        GROUP_RANKING,
        "match-10000",
        "baseline-sort-10000-keys",
        None,
    );
}

fn human(ns: f64) -> String {
    match ns {
        ns if ns >= 1e6 => format!("{:.3} ms", ns / 1e6),
        ns if ns >= 1e3 => format!("{:.3} µs", ns / 1e3),
        ns => format!("{ns:.1} ns"),
    }
}

fn main() {
    // Where criterion keeps its estimates: target/criterion, as it would pick by itself.
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("criterion"))
        .unwrap_or_else(|| PathBuf::from("target/criterion"));
    let started = SystemTime::now();
    let mut criterion = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    report(&dir, started);
}
