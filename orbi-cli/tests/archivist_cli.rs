//! `orbi archivist` end to end: the real binary on real files in a temporary directory.
//!
//! `cargo test` cannot read `../shared`, so AD-A is written here with the values of upstream's
//! `bounded-retention.archivist-advertisement.json`.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::{Value, json};
use tempfile::TempDir;

fn ad_a() -> Value {
    json!({
        "schema/v": 1,
        "advertisement/id": "archivist-advertisement:01JP0Q6F9B4R47AK9A8R8Q2HKS",
        "created-at": "2026-03-22T22:22:33Z",
        "archivist/node-id": "node:pl-wro-archivist-1",
        "accepted/scopes": ["private-retained", "federation-vault"],
        "accepted/artifact-types": ["transcript-bundle", "knowledge-artifact", "corpus-entry"],
        "retrieval/mode": "federation-discovery",
        "retention/default-max-duration-sec": 7776000,
        "retention/default-max-idle-ttl-sec": 2592000,
        "replication/max-copies": 3,
        "publication/timing-profiles": ["delayed-bundle", "curator-gated"],
        "settlement/required": true,
        "settlement/rail-hints": ["external-invoice", "host-ledger"]
    })
}

fn request() -> Value {
    json!({
        "schema/v": 1,
        "request/id": "storage-request:01JQORBISR0001",
        "requested-at": "2026-03-22T22:21:13Z",
        "requester/node-id": "node:pl-wro-preserver-1",
        "package/id": "archival-package:01JNZ94NQ90KJ0H2VTW6J8Q0DA",
        "publication/scope": "federation-vault",
        "artifact/type": "transcript-bundle",
        "publication/timing-profile": "curator-gated",
        "retention/max-duration-sec": 7776000,
        "retention/max-idle-ttl-sec": 2592000,
        "settlement/can-settle": true,
        "settlement/acceptable-rails": ["host-ledger"]
    })
}

struct Dir(TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        path
    }

    fn write_bytes(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn orbi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(args)
        .output()
        .unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// `orbi archivist match` judged at a fixed instant, with `extra` options before the files.
fn run_match(dir: &Dir, request: &Value, ads: &[&Path], extra: &[&str]) -> Output {
    let request = dir.write("request.json", request);
    let mut args = vec![
        "archivist",
        "match",
        "--request",
        path(&request),
        "--now",
        "2026-11-21T10:00:00Z",
    ];
    args.extend_from_slice(extra);
    args.extend(ads.iter().map(|p| path(p)));
    orbi(&args)
}

/// `orbi archivist match --format json` for the spec's default request (§6), whose gate
/// evidence (CD-A) passes: `--gates-passed`.
fn match_json(dir: &Dir, request: &Value, ads: &[&Path], extra: &[&str]) -> (i32, Value) {
    let options = [&["--format", "json", "--gates-passed"], extra].concat();
    let output = run_match(dir, request, ads, &options);
    (output.status.code().unwrap(), json_of(&output))
}

#[test]
fn done_when_the_upstream_example_negotiates_on_host_ledger_and_a_free_copy_accepts() {
    let dir = Dir::new();
    let ad = dir.write("ad-a.json", &ad_a());
    let (code, report) = match_json(&dir, &request(), &[&ad], &[]);
    assert_eq!(code, 0);
    let decision = &report["decisions"][0];
    assert_eq!(decision["status"], "negotiation-required");
    assert_eq!(decision["reason/codes"], json!(["settlement-required"]));
    assert_eq!(
        decision["terms"]["settlement/candidate-rails"],
        json!(["host-ledger"])
    );
    assert_eq!(
        decision["terms"]["retention/effective-max-duration-sec"],
        7776000
    );
    assert_eq!(decision["advertisement/id"], ad_a()["advertisement/id"]);
    assert_eq!(decision["archivist/node-id"], "node:pl-wro-archivist-1");

    let mut free = ad_a();
    free["settlement/required"] = json!(false);
    let free = dir.write("ad-free.json", &free);
    let (code, report) = match_json(&dir, &request(), &[&free], &[]);
    assert_eq!(code, 0);
    assert_eq!(report["decisions"][0]["status"], "accepted");
    assert_eq!(report["decisions"][0]["reason/codes"], json!([]));
    assert_eq!(report["replication"]["missing"], 0);
}

#[test]
fn lint_reads_at_most_10000_advertisements() {
    let dir = Dir::new();
    let many = dir.write_bytes(
        "many.json",
        format!("[{}]", vec!["{}"; 10_001].join(",")).as_bytes(),
    );
    let output = orbi(&["archivist", "lint", path(&many)]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("more than 10000 advertisements"),
        "{stderr}"
    );
    // An advertisement with hundreds of issues keeps twenty and a count.
    let noisy = dir.write(
        "noisy.json",
        &serde_json::json!({ "accepted/scopes": vec![0; 300] }),
    );
    let output = orbi(&["archivist", "lint", "--format", "json", path(&noisy)]);
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    let issues = report[0]["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 21, "{report}");
    assert!(
        issues[20]
            .as_str()
            .unwrap()
            .ends_with("more issues, not listed")
    );
    // Exactly twenty are all kept, with no count after them.
    let twenty = dir.write(
        "twenty.json",
        &serde_json::json!({ "accepted/scopes": vec![0; 6], "retrieval/mode": 0 }),
    );
    let output = orbi(&["archivist", "lint", "--format", "json", path(&twenty)]);
    let report = json_of(&output);
    let issues = report[0]["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 20, "{report}");
    assert!(
        issues
            .iter()
            .all(|issue| !issue.as_str().unwrap().contains("more issues")),
        "{report}"
    );
    let fewer = dir.write_bytes(
        "fewer.json",
        format!("[{}]", ["{}"; 3].join(",")).as_bytes(),
    );
    let output = orbi(&["archivist", "lint", path(&fewer)]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "three invalid advertisements"
    );
}

#[test]
fn a_refusal_lists_every_reason_and_exits_1() {
    let dir = Dir::new();
    let ad = dir.write("ad-a.json", &ad_a());
    let mut bad = request();
    bad["publication/scope"] = json!("public-vault");
    bad["publication/timing-profile"] = json!("live-mirror");
    bad["artifact/type"] = json!("room-summary");
    // A hint asks this archivist for all 4 copies (under a guarantee it would hold one).
    bad["replication/copies"] = json!(4);
    bad["replication/commitment"] = json!("hint");
    bad["settlement/can-settle"] = json!(false);
    let (code, report) = match_json(&dir, &bad, &[&ad], &[]);
    assert_eq!(code, 1);
    let decision = &report["decisions"][0];
    assert_eq!(decision["status"], "refused");
    assert_eq!(
        decision["reason/codes"],
        json!([
            "scope-not-accepted",
            "artifact-type-not-accepted",
            "timing-profile-unsupported",
            "live-mirror-not-authorized",
            "replication-exceeds-max",
            "settlement-required"
        ])
    );
    assert_eq!(
        decision["notes"],
        json!(["retrieval-mode-narrower-than-scope"])
    );
    let refused_stages: Vec<&str> = decision["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outcome"] == "refused")
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(refused_stages, ["3", "4", "5", "9", "10"]);
}

#[test]
fn text_output_explains_every_stage_in_words() {
    let dir = Dir::new();
    let ad = dir.write("ad-a.json", &ad_a());
    let request = dir.write("request.json", &request());
    let output = orbi(&[
        "archivist",
        "match",
        "--request",
        path(&request),
        "--now",
        "2026-11-21T10:00:00Z",
        "--gates-passed",
        path(&ad),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("negotiation-required because settlement-required"),
        "{text}"
    );
    for stage in ["stage 0 ", "stage 0b", "stage 1c", "stage 5 ", "stage 10"] {
        assert!(text.contains(stage), "{stage} missing:\n{text}");
    }
    assert!(text.contains("settle on one of host-ledger"), "{text}");
    assert!(text.contains("every export gate passed"), "{text}");
    assert!(text.contains("1 of 1 copy placed"), "{text}");
}

#[test]
fn invalid_and_superseded_advertisements_are_excluded_with_reasons() {
    let dir = Dir::new();
    let older = dir.write("older.json", &ad_a());
    let mut newer = ad_a();
    newer["advertisement/id"] = json!("archivist-advertisement:NEWER");
    newer["created-at"] = json!("2026-04-01T00:00:00Z");
    newer["settlement/required"] = json!(false);
    let newer = dir.write("newer.json", &newer);
    let mut invalid = ad_a();
    invalid["archivist/node-id"] = json!("node:pl-wro-archivist-2");
    invalid
        .as_object_mut()
        .unwrap()
        .remove("settlement/rail-hints");
    let invalid = dir.write("invalid.json", &invalid);
    let broken = dir.write_bytes("broken.json", b"{\"schema/v\": 1,");
    let (code, report) = match_json(&dir, &request(), &[&older, &newer, &invalid, &broken], &[]);
    assert_eq!(code, 0);
    assert_eq!(report["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(
        report["decisions"][0]["advertisement/id"],
        "archivist-advertisement:NEWER"
    );
    let excluded: Vec<(String, String)> = report["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let source = e["source"].as_str().unwrap();
            let file = Path::new(source).file_name().unwrap().to_str().unwrap();
            (
                file.to_owned(),
                e["reason/code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        excluded,
        [
            ("invalid.json".into(), "advertisement-invalid".into()),
            ("broken.json".into(), "advertisement-invalid".into()),
            ("older.json".into(), "advertisement-superseded".into()),
        ]
    );
    let invalid_details = report["excluded"][0]["details"].to_string();
    assert!(
        invalid_details.contains("settlement/rail-hints"),
        "{invalid_details}"
    );

    // With only invalid advertisements nothing is usable: exit 1.
    let (code, report) = match_json(&dir, &request(), &[&invalid], &[]);
    assert_eq!(code, 1);
    assert_eq!(report["decisions"], json!([]));
}

#[test]
fn an_array_file_is_a_cache_of_advertisements_and_policy_flags_apply() {
    let dir = Dir::new();
    let mut direct = ad_a();
    direct["archivist/node-id"] = json!("node:direct");
    direct["advertisement/id"] = json!("archivist-advertisement:DIRECT");
    direct["retrieval/mode"] = json!("direct-only");
    let cache = dir.write("cache.json", &json!([ad_a(), direct]));
    let (_, report) = match_json(&dir, &request(), &[&cache], &[]);
    let order: Vec<&str> = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["archivist/node-id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["node:pl-wro-archivist-1", "node:direct"]);
    assert!(
        report["decisions"][1]["source"]
            .as_str()
            .unwrap()
            .ends_with("cache.json#1")
    );

    let (_, strict) = match_json(&dir, &request(), &[&cache], &["--strict-mode-fit"]);
    assert_eq!(
        strict["decisions"][1]["reason/codes"],
        json!(["retrieval-mode-narrower-than-scope"])
    );

    let (code, aged) = match_json(&dir, &request(), &[&cache], &["--max-age-sec", "86400"]);
    assert_eq!(code, 1);
    assert_eq!(aged["excluded"][0]["reason/code"], "advertisement-stale");

    let (_, allowed) = match_json(
        &dir,
        &request(),
        &[&cache],
        &["--allow-archivist", "node:direct"],
    );
    assert_eq!(allowed["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(
        allowed["excluded"][0]["reason/code"],
        "archivist-not-allowed"
    );
    let (_, denied) = match_json(
        &dir,
        &request(),
        &[&cache],
        &["--deny-archivist", "node:direct"],
    );
    assert_eq!(
        denied["decisions"][0]["archivist/node-id"],
        "node:pl-wro-archivist-1"
    );
    assert_eq!(
        denied["excluded"][0]["reason/code"],
        "archivist-not-allowed"
    );

    let mut two = request();
    two["replication/copies"] = json!(2);
    let (_, plan) = match_json(&dir, &two, &[&cache], &[]);
    assert_eq!(
        plan["replication"]["assignments"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn a_package_that_disagrees_with_the_request_is_refused() {
    let dir = Dir::new();
    let ad = dir.write("ad-a.json", &ad_a());
    let package = dir.write(
        "package.json",
        &json!({
            "schema/v": 1,
            "package/id": "archival-package:01JNZ94NQ90KJ0H2VTW6J8Q0DA",
            "artifact/id": "bundle:1", "artifact/type": "transcript-bundle",
            "source/question-id": "question:1", "created-at": "2026-03-22T22:20:00Z",
            "publication/scope": "federation-vault", "publication/timing-profile": "delayed-bundle",
            "archival/basis": "federation-policy", "redaction/status": "partial",
            "retention/max-duration-sec": 7776000, "retention/max-idle-ttl-sec": 2592000,
            "payload/ref": "memarium:blob:1", "provenance/refs": ["transcript:1"],
            "classification": {}, "integrity/proof": {"alg": "sha256", "verification_ref": "proof:1"}
        }),
    );
    let (code, report) = match_json(&dir, &request(), &[&ad], &["--package", path(&package)]);
    assert_eq!(code, 1);
    assert_eq!(
        report["decisions"][0]["reason/codes"],
        json!(["request-package-mismatch"])
    );
    let stage1 = &report["decisions"][0]["stages"][2];
    assert!(
        stage1["detail"]
            .as_str()
            .unwrap()
            .contains("publication/timing-profile"),
        "{stage1}"
    );
}

#[test]
fn lint_of_only_empty_arrays_says_there_is_nothing_to_lint() {
    let dir = Dir::new();
    let empty = dir.write("cache.json", &json!([]));
    let output = orbi(&["archivist", "lint", path(&empty)]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text, "no advertisements: every file is an empty array\n");
}

#[test]
fn lint_reports_validity_and_lints_with_exit_codes() {
    let dir = Dir::new();
    let good = dir.write("good.json", &ad_a());
    let mut empty_rails = ad_a();
    empty_rails["settlement/rail-hints"] = json!([]);
    let linted = dir.write("linted.json", &empty_rails);
    let mut missing = ad_a();
    missing.as_object_mut().unwrap().remove("retrieval/mode");
    let invalid = dir.write("invalid.json", &missing);

    let output = orbi(&["archivist", "lint", path(&good), path(&linted)]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("settlement-rails-empty"), "{text}");

    let strict = orbi(&["archivist", "lint", "--strict", path(&good), path(&linted)]);
    assert_eq!(strict.status.code(), Some(1));

    let output = orbi(&[
        "archivist",
        "lint",
        "--format",
        "json",
        path(&good),
        path(&linted),
        path(&invalid),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    assert_eq!(report[0]["valid"], true);
    assert_eq!(report[1]["lints"][0]["code"], "settlement-rails-empty");
    assert_eq!(report[2]["valid"], false);
    assert!(
        report[2]["issues"][0]
            .as_str()
            .unwrap()
            .contains("retrieval/mode")
    );
}

/// `orbi archivist expiry` under TV-23's terms: accepted 2026-03-22T22:21:13Z, 90 days at
/// most, 30 days idle.
const TV23_EXPIRY: [&str; 8] = [
    "archivist",
    "expiry",
    "--accepted-at",
    "2026-03-22T22:21:13Z",
    "--max-duration-sec",
    "7776000",
    "--max-idle-ttl-sec",
    "2592000",
];

#[test]
fn expiry_follows_the_spec_clock_and_exits_1_once_expired() {
    let mut base = TV23_EXPIRY.to_vec();
    base.extend([
        // TV-23's retrievals (plus one on 2026-05-14, without which the package would have
        // expired on 2026-05-15), out of order: the command sorts them.
        "--access",
        "2026-06-10T00:00:00Z",
        "--access",
        "2026-03-22T22:24:31Z",
        "--access",
        "2026-05-14T00:00:00Z",
        "--access",
        "2026-04-15T10:00:00Z",
        "--format",
        "json",
    ]);
    let mut live = base.clone();
    live.extend(["--now", "2026-06-20T22:21:12Z"]);
    let output = orbi(&live);
    assert_eq!(output.status.code(), Some(0));
    let report = json_of(&output);
    assert_eq!(report["hard-expires-at"], "2026-06-20T22:21:13Z");
    assert_eq!(report["idle-expires-at"], "2026-07-10T00:00:00Z");
    assert_eq!(report["expires-at"], "2026-06-20T22:21:13Z");
    assert_eq!(report["cause"], "max-duration");
    assert_eq!(report["status"], "live");
    assert_eq!(report["accesses-after-expiry"], json!([]));

    let mut expired = base.clone();
    expired.extend(["--now", "2026-06-20T22:21:13Z"]);
    let output = orbi(&expired);
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    assert_eq!(report["status"], "expired");
    assert_eq!(report["reason/code"], "retention-expired");

    // A `found` after the idle expiry (2026-04-21T22:21:13Z) revives nothing.
    let mut late = TV23_EXPIRY.to_vec();
    late.extend([
        "--access",
        "2026-05-01T00:00:00Z",
        "--now",
        "2026-05-02T00:00:00Z",
        "--format",
        "json",
    ]);
    let output = orbi(&late);
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    assert_eq!(report["status"], "expired");
    assert_eq!(report["reason/code"], "idle-ttl-expired");
    assert_eq!(report["last-access"], "2026-03-22T22:21:13Z");
    assert_eq!(
        report["accesses-after-expiry"],
        json!(["2026-05-01T00:00:00Z"])
    );

    // Fractions of a second count: accepted at .9 with one second, alive at 14.0.
    let output = orbi(&[
        "archivist",
        "expiry",
        "--accepted-at",
        "2026-03-22T22:21:13.9Z",
        "--max-duration-sec",
        "1",
        "--now",
        "2026-03-22T22:21:14.0Z",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let report = json_of(&output);
    assert_eq!(report["expires-at"], "2026-03-22T22:21:14.9Z");
    assert_eq!(report["status"], "live");

    // Near the end of the range, an offset start still gives a real deadline (in UTC); one
    // second after a leap second is the next day's first second.
    for (accepted_at, seconds, now, expires_at) in [
        (
            "9999-12-31T23:30:00+01:00",
            "3600",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:30:00Z",
        ),
        (
            "2016-12-31T23:59:60Z",
            "1",
            "2017-01-01T00:00:00Z",
            "2017-01-01T00:00:00Z",
        ),
    ] {
        let output = orbi(&[
            "archivist",
            "expiry",
            "--accepted-at",
            accepted_at,
            "--max-duration-sec",
            seconds,
            "--now",
            now,
            "--format",
            "json",
        ]);
        assert_eq!(output.status.code(), Some(1), "{accepted_at}");
        assert_eq!(json_of(&output)["expires-at"], expires_at, "{accepted_at}");
    }

    // Unbounded terms never expire.
    let output = orbi(&[
        "archivist",
        "expiry",
        "--accepted-at",
        "2026-03-22T22:21:13Z",
        "--now",
        "9999-12-31T23:59:59Z",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("expires at       never"), "{text}");
}

#[test]
fn usage_and_io_errors_exit_2_with_a_message() {
    let dir = Dir::new();
    let ad = dir.write("ad-a.json", &ad_a());
    let request = dir.write("request.json", &request());
    let missing = dir.0.path().join("missing.json");
    let cases: Vec<Vec<&str>> = vec![
        vec!["archivist", "lint", path(&missing)],
        vec!["archivist", "match", "--request", path(&missing), path(&ad)],
        vec![
            "archivist",
            "match",
            "--request",
            path(&request),
            "--now",
            "yesterday",
            path(&ad),
        ],
        vec!["archivist", "match", "--request", path(&ad), path(&ad)],
        vec![
            "archivist",
            "expiry",
            "--accepted-at",
            "2026-13-01T00:00:00Z",
        ],
        vec!["archivist", "frobnicate"],
        // An access before the acceptance or after the instant judged at.
        vec![
            "archivist",
            "expiry",
            "--accepted-at",
            "2026-03-22T22:21:13Z",
            "--access",
            "2026-03-22T22:21:12Z",
            "--now",
            "2026-03-23T00:00:00Z",
        ],
        vec![
            "archivist",
            "expiry",
            "--accepted-at",
            "2026-03-22T22:21:13Z",
            "--access",
            "2026-03-23T00:00:01Z",
            "--now",
            "2026-03-23T00:00:00Z",
        ],
        // Retention terms are at least one second (the schemas' minimum).
        vec![
            "archivist",
            "expiry",
            "--accepted-at",
            "2026-03-22T22:21:13Z",
            "--max-duration-sec",
            "0",
        ],
    ];
    for args in cases {
        let output = orbi(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}");
    }
    // A package judged before it was accepted is no more live than an access before it.
    let output = orbi(&[
        "archivist",
        "expiry",
        "--accepted-at",
        "2026-03-22T22:21:13Z",
        "--now",
        "2026-03-22T22:21:12Z",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains(
        "--accepted-at 2026-03-22T22:21:13Z is after the instant judged at (2026-03-22T22:21:12Z)"
    ));
    // The message names the offending input.
    let output = orbi(&["archivist", "match", "--request", path(&ad), path(&ad)]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("request") && stderr.contains("ad-a.json"),
        "{stderr}"
    );
}

/// A key file `discover` cannot read is this command's usage error, named on stderr as
/// `submit` names it, and nobody is dialled for it: not one "archivist could not be asked"
/// per `--to`.
#[test]
fn discover_names_a_key_file_it_cannot_read() {
    let dir = Dir::new();
    let missing = dir.0.path().join("missing.key");
    // Nobody listens there: the key is read before anything is dialled.
    let to = "node:did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX@127.0.0.1:9";
    let request = dir.write("request.json", &request());
    for command in ["discover", "submit"] {
        let mut args = vec!["archivist", command, "--key", path(&missing), "--to", to];
        if command == "submit" {
            args.push(path(&request));
        }
        let run = common::run_within(dir.0.path(), &args, &[], std::time::Duration::from_secs(20));
        run.assert_usage_error(&["cannot read key file", "missing.key"]);
    }
}

/// `submit` judges locally what the archivist would refuse as malformed: exit 1 (refused,
/// not a usage error), the file and the field named, and nobody dialled (no key read).
#[test]
fn submit_refuses_a_malformed_request_before_dialling() {
    let dir = Dir::new();
    let missing = dir.0.path().join("missing.key");
    let to = "node:did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX@127.0.0.1:9";
    let mut malformed = request();
    malformed.as_object_mut().unwrap().remove("package/id");
    let file = dir.write("malformed.json", &malformed);
    let run = common::run_within(
        dir.0.path(),
        &[
            "archivist",
            "submit",
            "--key",
            path(&missing),
            "--to",
            to,
            path(&file),
        ],
        &[],
        std::time::Duration::from_secs(20),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let invalid = run.json["invalid"].as_str().unwrap();
    assert!(
        invalid.starts_with(&format!("{}: ", file.display())),
        "{invalid}"
    );
    assert!(invalid.contains("package/id"), "{invalid}");
}

/// `orbi archivist match` without `--gates-passed`, in text.
fn match_text(dir: &Dir, request: &Value, ads: &[&Path]) -> (i32, String) {
    let output = run_match(dir, request, ads, &[]);
    let text = String::from_utf8(output.stdout).unwrap();
    (output.status.code().unwrap(), text)
}

#[test]
fn vault_requests_without_gate_evidence_are_refused_curation_missing() {
    let dir = Dir::new();
    let mut free = ad_a();
    free["settlement/required"] = json!(false);
    free["accepted/scopes"] = json!(["private-retained", "federation-vault", "public-vault"]);
    let free = dir.write("ad-free.json", &free);
    // As the archivist node decides: no curation decision, no export (spec §5, TV-29).
    for scope in ["federation-vault", "public-vault"] {
        let mut vault = request();
        vault["publication/scope"] = json!(scope);
        let (code, text) = match_text(&dir, &vault, &[&free]);
        assert_eq!(code, 1, "{scope}: {text}");
        assert!(text.contains("refused because curation-missing"), "{text}");
        assert!(
            text.contains("needs an accepting curation-decision.v1"),
            "{text}"
        );
        assert!(text.contains("0 of 1 copy placed"), "{text}");
    }
    // private-retained needs no curation: its gates are reported as not evaluated.
    let mut private = request();
    private["publication/scope"] = json!("private-retained");
    let (code, text) = match_text(&dir, &private, &[&free]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(": accepted"), "{text}");
    assert!(text.contains("not evaluated: no gate evidence"), "{text}");
}

#[test]
fn the_exit_follows_the_plan_that_splits_copies_each_archivist_refuses_whole() {
    let dir = Dir::new();
    // Two archivists without max-copies (absent: one copy each).
    let mut one = ad_a();
    one["settlement/required"] = json!(false);
    one.as_object_mut()
        .unwrap()
        .remove("replication/max-copies");
    let mut two = one.clone();
    two["advertisement/id"] = json!("archivist-advertisement:TWO");
    two["archivist/node-id"] = json!("node:archivist-two");
    let (one, two) = (dir.write("one.json", &one), dir.write("two.json", &two));
    let mut request = request();
    request["replication/copies"] = json!(2);
    let (code, report) = match_json(&dir, &request, &[&one, &two], &[]);
    // Each refuses both copies, as it would if asked (TV-13); the set splits them.
    for decision in report["decisions"].as_array().unwrap() {
        assert_eq!(decision["status"], "refused", "{decision}");
        assert_eq!(
            decision["reason/codes"],
            serde_json::json!(["replication-exceeds-max"]),
            "{decision}"
        );
    }
    assert_eq!(report["replication"]["missing"], 0);
    assert_eq!(code, 0, "{report}");
    // One archivist cannot hold two guaranteed copies: one is placed, and that is a refusal.
    let (code, report) = match_json(&dir, &request, &[&one], &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["replication"]["missing"], 1);
}

#[test]
fn tv_13_says_how_many_copies_the_archivist_answers_for() {
    let dir = Dir::new();
    // AD-F: AD-A without required settlement (max-copies 3).
    let mut ad_f = ad_a();
    ad_f["settlement/required"] = json!(false);
    ad_f.as_object_mut()
        .unwrap()
        .remove("settlement/rail-hints");
    let ad_f = dir.write("ad-f.json", &ad_f);
    let mut request = request();
    request["replication/copies"] = json!(3);

    // Guarantee (the default): the pair accepts (TV-13), its decision answers for one copy,
    // and the set misses two.
    let (code, report) = match_json(&dir, &request, &[&ad_f], &[]);
    let decision = &report["decisions"][0];
    assert_eq!(decision["status"], "accepted", "{decision}");
    assert_eq!(decision["terms"]["replication/copies"], 3, "{decision}");
    assert_eq!(
        decision["terms"]["replication/confirmed-copies"], 1,
        "{decision}"
    );
    assert_eq!(report["replication"]["missing"], 2);
    assert_eq!(code, 1);
    let output = run_match(&dir, &request, &[&ad_f], &["--gates-passed"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("1 of 3 copies (guarantee: one copy per archivist)"),
        "{text}"
    );

    // Hint: one archivist may coordinate all three.
    request["replication/commitment"] = json!("hint");
    let (code, report) = match_json(&dir, &request, &[&ad_f], &[]);
    let decision = &report["decisions"][0];
    assert_eq!(
        decision["terms"]["replication/confirmed-copies"], 3,
        "{decision}"
    );
    assert_eq!(report["replication"]["missing"], 0);
    assert_eq!(code, 0, "{report}");
    let output = run_match(&dir, &request, &[&ad_f], &["--gates-passed"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains(", 3 copies"), "{text}");
}

/// The bounds are exact: an instant judged at the acceptance itself, and accesses at the
/// acceptance and at the instant judged, are the input's edges, not mistakes.
#[test]
fn expiry_takes_instants_at_the_edges_of_its_interval() {
    let at = "2026-03-22T22:21:13Z";
    let expiry = |access: &str| {
        let output = orbi(&[
            "archivist",
            "expiry",
            "--accepted-at",
            at,
            "--max-duration-sec",
            "60",
            "--access",
            access,
            "--now",
            access,
            "--format",
            "json",
        ]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        json_of(&output)
    };
    assert_eq!(expiry(at)["status"], "live");
    assert_eq!(
        expiry("2026-03-22T22:21:43Z")["last-access"],
        "2026-03-22T22:21:43Z"
    );
}

/// The limits are exact: 8 MiB a file (not a byte more), 10 000 advertisements over all the
/// files of one command (not one more, whether the last comes in an array or alone).
#[test]
fn input_limits_are_exact() {
    let dir = Dir::new();
    let limit = 8 * 1024 * 1024;
    let mut padded = serde_json::to_vec(&ad_a()).unwrap();
    padded.resize(limit, b' ');
    let at_limit = dir.write_bytes("at-limit.json", &padded);
    let output = orbi(&["archivist", "lint", path(&at_limit)]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    padded.push(b' ');
    let over = dir.write_bytes("over.json", &padded);
    let output = orbi(&["archivist", "lint", path(&over)]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("over.json") && stderr.contains("larger than the 8388608-byte limit"),
        "{stderr}"
    );

    let array = |n: usize| format!("[{}]", vec!["{}"; n].join(",")).into_bytes();
    let full = dir.write_bytes("full.json", &array(10_000));
    let almost = dir.write_bytes("almost.json", &array(9_999));
    let one = dir.write("one.json", &ad_a());
    for (files, code) in [
        (vec![&full], 1),
        (vec![&almost, &one], 1),
        (vec![&one, &almost], 1),
        (vec![&full, &one], 2),
        (vec![&one, &full], 2),
    ] {
        let mut args = vec!["archivist", "lint"];
        args.extend(files.iter().map(|file| path(file)));
        let output = orbi(&args);
        assert_eq!(output.status.code(), Some(code), "{args:?}");
        if code == 2 {
            assert!(
                String::from_utf8_lossy(&output.stderr).contains("more than 10000 advertisements"),
                "{args:?}"
            );
        }
    }
}

/// `--max-skew-sec` decides how far ahead an advertisement may be dated: AD-A, dated 33 s
/// after the instant judged at, is excluded under 10 s and matched under 60 s.
#[test]
fn max_skew_sec_bounds_future_dated_advertisements() {
    let dir = Dir::new();
    let ad = dir.write("ad-a.json", &ad_a());
    let request = dir.write("request.json", &request());
    for (skew, excluded) in [("10", true), ("60", false)] {
        let output = orbi(&[
            "archivist",
            "match",
            "--request",
            path(&request),
            "--now",
            "2026-03-22T22:22:00Z",
            "--gates-passed",
            "--format",
            "json",
            "--max-skew-sec",
            skew,
            path(&ad),
        ]);
        let report = json_of(&output);
        if excluded {
            assert_eq!(
                report["excluded"][0]["reason/code"], "advertisement-future-dated",
                "{report}"
            );
            assert_eq!(report["decisions"], json!([]), "{report}");
        } else {
            assert_eq!(report["excluded"], json!([]), "{report}");
            assert_eq!(report["decisions"].as_array().unwrap().len(), 1, "{report}");
        }
    }
}

/// A live-mirror request is refused `live-mirror-not-authorized` unless
/// `--live-mirror-authorized` says the room showed onward transmission; the ranking counts from
/// 1; the text calls an accepted decision's terms effective and a negotiated one's provisional.
#[test]
fn live_mirror_authorization_ranks_and_terms_reach_the_output() {
    let dir = Dir::new();
    let mut free = ad_a();
    free["settlement/required"] = json!(false);
    free["publication/timing-profiles"] = json!(["live-mirror", "curator-gated"]);
    let free = dir.write("ad-free.json", &free);
    let mut mirror = request();
    mirror["publication/timing-profile"] = json!("live-mirror");
    let (code, report) = match_json(&dir, &mirror, &[&free], &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        report["decisions"][0]["reason/codes"],
        json!(["live-mirror-not-authorized"])
    );
    let (code, report) = match_json(&dir, &mirror, &[&free], &["--live-mirror-authorized"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["decisions"][0]["status"], "accepted");
    assert_eq!(report["decisions"][0]["rank"], 1);

    let ad = dir.write("ad-a.json", &ad_a());
    for (ads, terms) in [(&free, "effective terms"), (&ad, "provisional terms")] {
        let output = run_match(&dir, &request(), &[ads], &["--gates-passed"]);
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains(&format!("   {terms}: ")), "{text}");
    }
}

/// `--min-distinct-archivists` reaches the plan: two hinted copies fit one archivist that
/// holds three, unless two distinct archivists are required.
#[test]
fn min_distinct_archivists_reaches_the_replication_plan() {
    let dir = Dir::new();
    let mut free = ad_a();
    free["settlement/required"] = json!(false);
    let free = dir.write("ad-free.json", &free);
    let mut request = request();
    request["replication/copies"] = json!(2);
    request["replication/commitment"] = json!("hint");
    let (code, report) = match_json(&dir, &request, &[&free], &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["replication"]["missing"], 0, "{report}");
    let (code, report) = match_json(
        &dir,
        &request,
        &[&free],
        &["--min-distinct-archivists", "2"],
    );
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["replication"]["missing"], 1, "{report}");
}
