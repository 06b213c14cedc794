//! `orbi pod` through the real binary: B1 from a seed, and the attach → replay → detach →
//! recovery script of the "done when", with real files and a real SQLite database.

mod common;

use std::path::{Path, PathBuf};

use common::Run;
use serde_json::Value;

const K1_SEED: &str = "2929292929292929292929292929292929292929292929292929292929292929";
const K2_SEED: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";
const K1_NODE: &str = "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE";
const B1_SIGNATURE: &str =
    "dGH7YsIiguOgGyw-2JYesHmuVNL_T1zGSC6c9FuS_O83nPT1egFZQQKeT6OXnVBo1xKznNUn3CSZFgimmTXkDQ";
const B3_SIGNATURE: &str =
    "A2YsBFPq_ecFL2mMJ8uB0OC0iJXZdwU7IpRBW06-S-CeptC35yKN9FinhCd_r8FIbZEYv3_OxOXNauyv1zk5Bw";
const SESS1: &str = "sess:01JQPARTSESS001";
const SESS3: &str = "sess:01JQPARTSESS003";
const OLD: &str = "client:ios-a13-82d1";
const NEW: &str = "client:ios-a17-19f4";

/// A working directory with K1 (node) and K2 (participant) key files.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let workspace = Workspace {
            dir: tempfile::tempdir().unwrap(),
        };
        for (name, seed) in [("k1.json", K1_SEED), ("k2.json", K2_SEED)] {
            let out = workspace.path(name);
            let run = workspace.orbi(&["keys", "generate", "--out", &out, "--seed", seed]);
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
        workspace
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn orbi(&self, args: &[&str]) -> Run {
        common::run(self.dir.path(), args)
    }

    /// Runs a builder command and saves its output as `name`.
    fn build(&self, name: &str, args: &[&str]) -> Value {
        let run = self.orbi(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        std::fs::write(self.path(name), &run.stdout).unwrap();
        run.json
    }

    /// A workspace whose read model has `attach:1` of client `OLD` attached (bind of 19:20 on
    /// `SESS1`, admitted at 19:42:05).
    fn with_attach_1() -> Self {
        let w = Workspace::new();
        w.build(
            "b1.json",
            &bind_args("pb:01JQPARTBIND001", "2026-03-28T19:20:00Z", SESS1),
        );
        w.build(
            "a1.json",
            &attachment_args("b1.json", "attach:1", "2026-03-28T19:42:00Z"),
        );
        w.admit("a1.json", SESS1, "2026-03-28T19:42:05Z", &[])
            .expect(0, "admitted", "attached");
        w
    }

    /// `orbi pod host` on the read model with node key K1 at `now`, then `args`.
    fn host(&self, now: &str, args: &[&str]) -> Run {
        let db = self.path("pod.sqlite");
        let mut all = vec![
            "pod",
            "host",
            "--db",
            &db,
            "--node-key",
            "k1.json",
            "--now",
            now,
        ];
        all.extend_from_slice(args);
        self.orbi(&all)
    }

    fn admit(&self, file: &str, session: &str, now: &str, extra: &[&str]) -> Run {
        let db = self.path("pod.sqlite");
        let key = self.path("k1.json");
        let file = self.path(file);
        let mut args = vec![
            "pod",
            "admit",
            "--db",
            &db,
            "--node-key",
            &key,
            "--session",
            session,
            "--now",
            now,
        ];
        args.extend_from_slice(extra);
        args.push(&file);
        self.orbi(&args)
    }
}

/// What a finished run is expected to have said.
trait Expect {
    fn expect(&self, code: i32, outcome: &str, detail: &str);
}

impl Expect for Run {
    #[track_caller]
    fn expect(&self, code: i32, outcome: &str, detail: &str) {
        assert_eq!(self.code, code, "{}{}", self.stdout, self.stderr);
        assert_eq!(self.json["outcome"], outcome, "{}", self.stdout);
        if outcome == "rejected" {
            assert_eq!(self.json["code"], detail, "{}", self.stdout);
        } else {
            assert_eq!(self.json["state"], detail, "{}", self.stdout);
        }
    }
}

fn bind_args<'a>(bind_id: &'a str, at: &'a str, session: &'a str) -> Vec<&'a str> {
    vec![
        "pod",
        "bind",
        "--key",
        "k2.json",
        "--via",
        K1_NODE,
        "--session",
        session,
        "--bind-id",
        bind_id,
        "--at",
        at,
    ]
}

/// `pod attachment` of client `OLD` from `bind`, with its id and time.
fn attachment_args<'a>(bind: &'a str, attachment_id: &'a str, at: &'a str) -> Vec<&'a str> {
    vec![
        "pod",
        "attachment",
        "--bind",
        bind,
        "--client",
        OLD,
        "--attachment-id",
        attachment_id,
        "--at",
        at,
    ]
}

#[test]
fn b1_from_the_seed() {
    let workspace = Workspace::new();
    let bind = workspace.build(
        "b1.json",
        &bind_args("pb:01JQPARTBIND001", "2026-03-28T19:20:00Z", SESS1),
    );
    assert_eq!(bind["proof/participant-signature"]["value"], B1_SIGNATURE);
    assert_eq!(bind["proof/participant-signature"]["alg"], "ed25519");
    let bind = workspace.build(
        "b3.json",
        &bind_args("pb:01JQPARTBIND003", "2026-03-28T20:24:30Z", SESS3),
    );
    assert_eq!(bind["proof/participant-signature"]["value"], B3_SIGNATURE);
}

#[test]
fn attach_replay_detach_recover() {
    let w = Workspace::new();
    w.build(
        "b1.json",
        &bind_args("pb:01JQPARTBIND001", "2026-03-28T19:20:00Z", SESS1),
    );
    w.build(
        "b3.json",
        &bind_args("pb:01JQPARTBIND003", "2026-03-28T20:24:30Z", SESS3),
    );
    let attachment = w.build(
        "a1.json",
        &[
            "pod",
            "attachment",
            "--bind",
            "b1.json",
            "--client",
            OLD,
            "--node",
            K1_NODE,
            "--attachment-id",
            "attach:01JQCLIATT001",
            "--at",
            "2026-03-28T19:42:00Z",
            "--models-local",
            "false",
        ],
    );
    assert_eq!(
        attachment["participant-bind"]["proof/participant-signature"]["value"],
        B1_SIGNATURE
    );

    // Attach, then replay: admitted, then idempotent.
    w.admit("a1.json", SESS1, "2026-03-28T19:42:05Z", &[])
        .expect(0, "admitted", "attached");
    w.admit("a1.json", SESS1, "2026-03-28T19:43:00Z", &[])
        .expect(0, "replayed", "attached");
    // The same bytes on another session are refused.
    w.admit(
        "a1.json",
        "sess:01JQPARTSESS002",
        "2026-03-28T19:43:00Z",
        &[],
    )
    .expect(1, "rejected", "E_POD_SESSION_MISMATCH");

    // Detach (user-request, reusing B1), replay, then a second detachment of the same attachment.
    let detach = |name: &str, id: &str| {
        w.build(
            name,
            &[
                "pod",
                "detachment",
                "--bind",
                "b1.json",
                "--attachment-id",
                "attach:01JQCLIATT001",
                "--client",
                OLD,
                "--reason",
                "user-request",
                "--detachment-id",
                id,
                "--at",
                "2026-03-28T20:05:00Z",
            ],
        )
    };
    detach("d1.json", "detach:01JQCLIDET001");
    detach("d2.json", "detach:01JQCLIDET002");
    w.admit("d1.json", SESS1, "2026-03-28T20:05:10Z", &[])
        .expect(0, "admitted", "detached");
    w.admit("d1.json", SESS1, "2026-03-28T20:06:00Z", &[])
        .expect(0, "replayed", "detached");
    w.admit("d2.json", SESS1, "2026-03-28T20:06:00Z", &[])
        .expect(1, "rejected", "E_POD_ALREADY_DETACHED");

    // Upstream's replace-device recovery (new device) under the strict default, then allowed.
    w.build(
        "replace.json",
        &[
            "pod",
            "recovery",
            "--bind",
            "b3.json",
            "--client",
            NEW,
            "--mode",
            "replace-device",
            "--from-detachment",
            "detach:01JQCLIDET001",
            "--recovery-id",
            "recover:01JQCLIREC001",
            "--at",
            "2026-03-28T20:25:00Z",
            "--token-ref",
            "migrate:01JQMIGRATE001",
        ],
    );
    let strict = w.admit("replace.json", SESS3, "2026-03-28T20:25:10Z", &[]);
    strict.expect(1, "rejected", "E_POD_CLIENT_MISMATCH");
    assert_eq!(strict.json["check"], "R2");
    let allowed = w.admit(
        "replace.json",
        SESS3,
        "2026-03-28T20:25:10Z",
        &["--recovery-policy", "allow-replace-device"],
    );
    allowed.expect(0, "admitted", "recovery-granted");
    assert_eq!(allowed.json["transitions"][0]["client-instance/id"], NEW);

    // The new device attaches with the recovery bind and consumes the grant (T17).
    w.build(
        "a2.json",
        &[
            "pod",
            "attachment",
            "--bind",
            "b3.json",
            "--client",
            NEW,
            "--attachment-id",
            "attach:01JQCLIATT002",
            "--at",
            "2026-03-28T20:25:30Z",
        ],
    );
    let attached = w.admit("a2.json", SESS3, "2026-03-28T20:25:35Z", &[]);
    attached.expect(0, "admitted", "attached");
    assert_eq!(attached.json["transitions"][0]["rule"], "T17");

    // A recovery citing a detachment this node never saw fails closed.
    w.build(
        "unknown.json",
        &[
            "pod",
            "recovery",
            "--bind",
            "b3.json",
            "--client",
            OLD,
            "--mode",
            "reattach-existing-device",
            "--from-detachment",
            "detach:NEVER",
            "--at",
            "2026-03-28T20:25:00Z",
        ],
    );
    w.admit("unknown.json", SESS3, "2026-03-28T20:26:00Z", &[])
        .expect(1, "rejected", "E_POD_UNKNOWN_DETACHMENT");

    // Status: the whole history of the old client, and the counts.
    let db = w.path("pod.sqlite");
    let status = w.orbi(&["pod", "status", "--db", &db, "--client", OLD]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(status.json["attachments"][0]["state"], "detached");
    assert_eq!(
        status.json["detachments"][0]["detachment/id"],
        "detach:01JQCLIDET001"
    );
    // The new device's recovery names the attachment that consumed its grant.
    let status = w.orbi(&["pod", "status", "--db", &db, "--client", NEW]);
    assert_eq!(
        status.json["recoveries"][0]["grant"], "consumed",
        "{}",
        status.stdout
    );
    assert_eq!(
        status.json["recoveries"][0]["consumed-by"], "attach:01JQCLIATT002",
        "{}",
        status.stdout
    );
    let status = w.orbi(&["pod", "status", "--db", &db]);
    assert_eq!(status.json["node/id"], K1_NODE);
    assert_eq!(status.json["counts"]["live"], 1);
    assert_eq!(status.json["counts"]["recoveries"], 1);
    assert_eq!(
        status.json["live"][0]["attachment/id"],
        "attach:01JQCLIATT002"
    );
    let kinds: Vec<&str> = status.json["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trace| trace["event/type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"client-instance/recovered"), "{kinds:?}");
    assert!(
        kinds.contains(&"client-instance/recovery-consumed"),
        "{kinds:?}"
    );
}

#[test]
fn host_commands_suspend_lift_and_detach() {
    let w = Workspace::with_attach_1();
    let host = |args: &[&str]| w.host("2026-03-28T19:50:00Z", args);
    let suspended = host(&["suspend", "attach:1"]);
    assert_eq!(suspended.code, 0, "{}", suspended.stderr);
    assert_eq!(suspended.json["transitions"][0]["to"], "suspended");
    let lifted = host(&["--live-session", SESS1, "lift", "attach:1"]);
    assert_eq!(lifted.json["transitions"][0]["to"], "attached");
    let again = host(&["lift", "attach:1"]);
    assert_eq!(again.code, 1);
    assert_eq!(again.json["outcome"], "refused");
    let user = host(&["detach", "attach:1", "--reason", "user-request"]);
    assert_eq!(user.code, 1);
    let detached = host(&[
        "detach",
        "attach:1",
        "--reason",
        "operator-action",
        "--notes",
        "abuse",
    ]);
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let artifact = &detached.json["transitions"][0]["artifact"];
    assert_eq!(artifact["detach/reason"], "operator-action");
    assert_eq!(artifact["detach/notes"], "abuse");
    assert!(artifact["proof/node-attestation"]["value"].is_string());
    // A plain attachment after an operator action needs a recovery first.
    w.build("b2.json", &bind_args("pb:2", "2026-03-28T19:51:00Z", SESS1));
    w.build(
        "a2.json",
        &attachment_args("b2.json", "attach:2", "2026-03-28T19:51:00Z"),
    );
    w.admit("a2.json", SESS1, "2026-03-28T19:51:05Z", &[])
        .expect(1, "rejected", "E_POD_RECOVERY_REQUIRED");
}

/// A suspension outlives its attachment: ended while suspended (here by the host for
/// `session-expired`), the client cannot attach again until `clear-sanction`, and `status`
/// says why.
#[test]
fn a_suspension_holds_the_client_after_its_attachment_ends() {
    let w = Workspace::with_attach_1();
    let db = w.path("pod.sqlite");
    let host = |now: &str, args: &[&str]| w.host(now, args);
    assert_eq!(
        host("2026-03-28T19:45:00Z", &["suspend", "attach:1"]).code,
        0
    );
    let ended = host(
        "2026-03-28T19:50:00Z",
        &["detach", "attach:1", "--reason", "session-expired"],
    );
    assert_eq!(ended.code, 0, "{}", ended.stderr);
    let detachment = ended.json["transitions"][0]["artifact"]["detachment/id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = w.orbi(&["pod", "status", "--db", &db, "--client", OLD]);
    let record = &status.json["detachments"][0];
    assert_eq!(
        (&record["sanction"], &record["under-suspension"]),
        (&serde_json::json!("in-force"), &serde_json::json!(true)),
        "{}",
        status.stdout
    );
    w.build("b2.json", &bind_args("pb:2", "2026-03-28T19:51:00Z", SESS1));
    w.build(
        "a2.json",
        &attachment_args("b2.json", "attach:2", "2026-03-28T19:51:00Z"),
    );
    let held = w.admit("a2.json", SESS1, "2026-03-28T19:51:05Z", &[]);
    held.expect(1, "rejected", "E_POD_STATE");
    let message = held.json["message"].as_str().unwrap();
    assert!(
        message.contains(&detachment) && message.contains("of a suspended attachment"),
        "{message}"
    );
    let cleared = host("2026-03-28T19:52:00Z", &["clear-sanction", &detachment]);
    assert_eq!(cleared.code, 0, "{}", cleared.stderr);
    assert_eq!(cleared.json["sanction"]["detach/reason"], "session-expired");
    w.admit("a2.json", SESS1, "2026-03-28T19:52:05Z", &[])
        .expect(0, "admitted", "attached");
    let status = w.orbi(&["pod", "status", "--db", &db, "--client", OLD]);
    assert_eq!(status.json["detachments"][0]["sanction"], "cleared");
}

/// `status --client` of a client whose lineage was evicted shows the tombstone kept of its
/// last detachment's reason (a read model of one record, filled by the library).
#[test]
fn status_shows_the_tombstone_of_an_evicted_client() {
    use orbi_pod::{Durability, HostPolicy, PodEngine, Session, SqliteStore, StoreLimits};
    let w = Workspace::with_attach_1();
    let db = w.path("pod.sqlite");
    let detached = w.host(
        "2026-03-28T19:50:00Z",
        &["detach", "attach:1", "--reason", "device-loss"],
    );
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    w.build("b2.json", &bind_args("pb:2", "2026-03-28T19:51:00Z", SESS1));
    let mut newcomer = attachment_args("b2.json", "attach:2", "2026-03-28T19:51:00Z");
    newcomer[5] = NEW;
    w.build("a2.json", &newcomer);

    let node = orbi_types::KeyPair::from_seed(&[0x29; 32]);
    let limits = StoreLimits {
        max_records: 1,
        ..Default::default()
    };
    let store = SqliteStore::open(
        std::path::Path::new(&db),
        &node.node_id(),
        limits,
        Durability::Full,
    )
    .unwrap();
    let mut engine = PodEngine::new(node, HostPolicy::default(), store).unwrap();
    engine.open_session(SESS1, Session::default());
    let now = orbi_types::Timestamp::parse("2026-03-28T19:51:05Z")
        .unwrap()
        .instant();
    let bytes = std::fs::read(w.path("a2.json")).unwrap();
    let admitted = engine.admit(&bytes, SESS1, now).unwrap();
    assert_eq!(
        admitted.verdict,
        orbi_pod::Verdict::Admitted,
        "{admitted:?}"
    );
    drop(engine);

    let status = w.orbi(&["pod", "status", "--db", &db, "--client", OLD]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(status.json["tombstone"], "device-loss", "{}", status.stdout);
    assert_eq!(status.json["detachments"], serde_json::json!([]));
    let status = w.orbi(&["pod", "status", "--db", &db, "--client", NEW]);
    assert_eq!(status.json["tombstone"], Value::Null, "{}", status.stdout);
}

#[test]
fn host_and_status_refuse_a_read_model_that_is_not_there_and_create_none() {
    let w = Workspace::new();
    let typo = w.path("pod.sqlte");
    w.orbi(&[
        "pod",
        "host",
        "--db",
        &typo,
        "--node-key",
        "k1.json",
        "tick",
    ])
    .assert_usage_error(&["no read model at", "pod.sqlte"]);
    w.orbi(&["pod", "status", "--db", &typo])
        .assert_usage_error(&["no read model at", "pod.sqlte"]);
    assert!(!std::path::Path::new(&typo).exists(), "nothing was created");
}

#[test]
fn host_clear_sanction_lets_the_sanctioned_participant_recover() {
    let w = Workspace::new();
    let db = w.path("pod.sqlite");
    let host = |now: &str, args: &[&str]| w.host(now, args);
    let attachment = |name: &str, bind: &str, id: &str, at: &str| {
        w.build(&format!("{bind}.json"), &bind_args(bind, at, SESS1));
        w.build(name, &attachment_args(&format!("{bind}.json"), id, at));
    };
    // The id of the detachment the host builds for `attachment` at `now`.
    let host_detach = |now: &str, attachment: &str, reason: &str| {
        let detached = host(now, &["detach", attachment, "--reason", reason]);
        assert_eq!(detached.code, 0, "{}", detached.stderr);
        detached.json["transitions"][0]["artifact"]["detachment/id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    attachment("a1.json", "pb-1", "attach:1", "2026-03-28T19:42:00Z");
    w.admit("a1.json", SESS1, "2026-03-28T19:42:05Z", &[])
        .expect(0, "admitted", "attached");
    let sanction = host_detach("2026-03-28T19:50:00Z", "attach:1", "policy");
    // The participant's recovery one second later is held: the policy has not cleared.
    w.build(
        "pb-2.json",
        &bind_args("pb-2", "2026-03-28T19:50:01Z", SESS1),
    );
    w.build(
        "r1.json",
        &[
            "pod",
            "recovery",
            "--bind",
            "pb-2.json",
            "--client",
            OLD,
            "--mode",
            "resume-after-suspension",
            "--from-detachment",
            &sanction,
            "--recovery-id",
            "recover:1",
            "--at",
            "2026-03-28T19:50:01Z",
        ],
    );
    let held = w.admit("r1.json", SESS1, "2026-03-28T19:50:01Z", &[]);
    held.expect(1, "rejected", "E_POD_STATE");
    assert_eq!(held.json["check"], "S");
    let message = held.json["message"].as_str().unwrap();
    assert!(
        message.contains(&sanction) && message.contains("has not cleared"),
        "{message}"
    );
    let status = w.orbi(&["pod", "status", "--db", &db, "--client", OLD]);
    assert_eq!(status.json["detachments"][0]["sanction"], "in-force");

    let cleared = host("2026-03-28T19:55:00Z", &["clear-sanction", &sanction]);
    assert_eq!(cleared.code, 0, "{}{}", cleared.stdout, cleared.stderr);
    assert_eq!(cleared.json["outcome"], "done");
    let expected = serde_json::json!({
        "detachment/id": sanction,
        "attachment/id": "attach:1",
        "client-instance/id": OLD,
        "detach/reason": "policy",
        "cleared-at": "2026-03-28T19:55:00Z",
        "newly-cleared": true,
    });
    assert_eq!(cleared.json["sanction"], expected);
    let again = host("2026-03-28T19:56:00Z", &["clear-sanction", &sanction]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json["sanction"]["newly-cleared"], false);
    assert_eq!(again.json["sanction"]["cleared-at"], "2026-03-28T19:55:00Z");

    w.admit("r1.json", SESS1, "2026-03-28T19:56:01Z", &[])
        .expect(0, "admitted", "recovery-granted");
    attachment("a2.json", "pb-3", "attach:2", "2026-03-28T19:56:02Z");
    w.admit("a2.json", SESS1, "2026-03-28T19:56:05Z", &[])
        .expect(0, "admitted", "attached");
    let status = w.orbi(&["pod", "status", "--db", &db, "--client", OLD]);
    assert_eq!(status.json["detachments"][0]["sanction"], "cleared");
    assert_eq!(
        status.json["detachments"][0]["sanction/cleared-at"],
        "2026-03-28T19:55:00Z"
    );
    let status = w.orbi(&["pod", "status", "--db", &db]);
    let cleared_traces = status.json["traces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|trace| trace["event/type"] == "client-instance/sanction-cleared")
        .count();
    assert_eq!(cleared_traces, 1, "{}", status.stdout);

    // Refused (exit 1): an unknown detachment, and one that is no sanction.
    let unknown = host("2026-03-28T19:57:00Z", &["clear-sanction", "detach:nope"]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert_eq!(unknown.json["outcome"], "refused");
    assert_eq!(
        unknown.json["message"],
        "no detachment \"detach:nope\" on record"
    );
    let expired = host_detach("2026-03-28T19:58:00Z", "attach:2", "session-expired");
    let not_sanction = host("2026-03-28T19:59:00Z", &["clear-sanction", &expired]);
    assert_eq!(not_sanction.code, 1, "{}", not_sanction.stderr);
    assert_eq!(not_sanction.json["outcome"], "refused");
    let message = not_sanction.json["message"].as_str().unwrap();
    assert!(
        message.contains(&expired) && message.contains("session-expired"),
        "{message}"
    );
    let status = w.orbi(&["pod", "status", "--db", &db, "--client", OLD]);
    assert_eq!(
        status.json["detachments"][1]["sanction"],
        serde_json::Value::Null
    );

    // Usage (exit 2): no detachment named.
    host("2026-03-28T19:59:00Z", &["clear-sanction"]).assert_usage_error(&["<DETACHMENT_ID>"]);
    let help = w.orbi(&["pod", "host", "clear-sanction", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(
        help.stdout.contains("policy or operator-action") && help.stdout.contains("E_POD_STATE"),
        "{}",
        help.stdout
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    let w = Workspace::new();
    let missing = w.admit("missing.json", SESS1, "2026-03-28T19:42:05Z", &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("missing.json"),
        "{}",
        missing.stderr
    );
    let bad_time = w.orbi(&[
        "pod",
        "bind",
        "--key",
        "k2.json",
        "--via",
        K1_NODE,
        "--session",
        "s",
        "--at",
        "yesterday",
    ]);
    assert_eq!(bad_time.code, 2);
    let bad_node = w.orbi(&[
        "pod",
        "bind",
        "--key",
        "k2.json",
        "--via",
        "node:x",
        "--session",
        "s",
    ]);
    assert_eq!(bad_node.code, 2);
    let no_db = w.orbi(&["pod", "status", "--db", &w.path("nothing.sqlite")]);
    assert_eq!(no_db.code, 2);
    assert!(!PathBuf::from(w.path("nothing.sqlite")).exists());
    // The database is bound to the node that created it.
    std::fs::write(w.path("junk.json"), "not json").unwrap();
    w.admit("junk.json", SESS1, "2026-03-28T19:42:05Z", &[])
        .expect(1, "rejected", "E_PROTO_INVALID");
    // Logs are plain text on stderr, one line an event: no colour codes, raw or written out.
    let (log_db, log_key, log_junk) =
        (w.path("pod.sqlite"), w.path("k1.json"), w.path("junk.json"));
    let logged = common::run_within(
        w.dir.path(),
        &[
            "pod",
            "admit",
            "--db",
            &log_db,
            "--node-key",
            &log_key,
            "--session",
            SESS1,
            "--now",
            "2026-03-28T19:42:05Z",
            &log_junk,
        ],
        &[("RUST_LOG", Path::new("debug"))],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(logged.code, 1, "{}", logged.stderr);
    let line = logged
        .stderr
        .lines()
        .find(|line| line.contains("pod artifact rejected"))
        .unwrap_or_else(|| panic!("no rejection logged: {}", logged.stderr));
    assert!(
        line.contains(" DEBUG orbi_pod::engine: pod artifact rejected "),
        "{line}"
    );
    assert!(
        !logged.stderr.contains('\u{1b}') && !logged.stderr.contains("\\u{1b}"),
        "{}",
        logged.stderr
    );
    // An artifact far over the limit is the engine's to reject, with its code (exit 1).
    std::fs::write(w.path("huge.json"), vec![b' '; 1 << 20]).unwrap();
    let huge = w.admit("huge.json", SESS1, "2026-03-28T19:42:05Z", &[]);
    huge.expect(1, "rejected", "E_PROTO_INVALID");
    assert!(
        huge.stdout.contains("the limit is 65536"),
        "{}",
        huge.stdout
    );
    // A replay is read, bounded by the artifact limit, before anything is dialled (nobody
    // listens at the address).
    let to = format!("{K1_NODE}@127.0.0.1:9");
    let huge_path = w.path("huge.json");
    let replay = common::run_within(
        w.dir.path(),
        &[
            "pod", "detach", "--key", "k2.json", "--to", &to, "--replay", &huge_path,
        ],
        &[],
        std::time::Duration::from_secs(30),
    );
    replay.assert_usage_error(&["huge.json", "larger than the 65536-byte limit"]);
    let other = w.path("other.json");
    w.orbi(&["keys", "generate", "--out", &other]);
    let db = w.path("pod.sqlite");
    let junk = w.path("junk.json");
    let wrong = w.orbi(&[
        "pod",
        "admit",
        "--db",
        &db,
        "--node-key",
        &other,
        "--session",
        SESS1,
        &junk,
    ]);
    assert_eq!(wrong.code, 2);
    assert!(wrong.stderr.contains("belongs to node"), "{}", wrong.stderr);
    assert!(Path::new(&db).exists());

    // A --save that cannot take the file is refused before the node is dialled (nobody
    // reads this socket: a dial would wait out its 30 s timeout).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = format!("{K1_NODE}@{}", silent.local_addr().unwrap());
    std::fs::create_dir(w.path("a-dir")).unwrap();
    for (command, save, expected) in [
        (
            "attach",
            "nowhere/a.json",
            "--save nowhere/a.json: nowhere is not a directory",
        ),
        ("detach", "a-dir", "--save a-dir: is a directory"),
    ] {
        let mut args = vec![
            "pod", command, "--key", "k2.json", "--to", &to, "--save", save,
        ];
        args.extend(match command {
            "attach" => ["--client", "client:x", "--attachment-id", "attach:1"],
            _ => ["--client", "client:x", "--attachment", "attach:1"],
        });
        let run = common::run_within(w.dir.path(), &args, &[], std::time::Duration::from_secs(20));
        run.assert_usage_error(&[expected]);
    }
}

#[test]
fn defaults_fill_ids_and_times() {
    let w = Workspace::new();
    let bind = w.build(
        "b.json",
        &[
            "pod",
            "bind",
            "--key",
            "k2.json",
            "--via",
            K1_NODE,
            "--session",
            SESS1,
        ],
    );
    let id = bind["bind/id"].as_str().unwrap();
    assert!(id.starts_with("pb:") && id.len() == 3 + 26, "{id}");
    let at = bind["bound-at"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    let attachment = w.build(
        "a.json",
        &["pod", "attachment", "--bind", "b.json", "--client", OLD],
    );
    assert!(
        attachment["attachment/id"]
            .as_str()
            .unwrap()
            .starts_with("attach:")
    );
    // A bind file over the artifact limit is refused, not read cut short (trailing spaces
    // would have parsed).
    let mut padded = std::fs::read(w.path("b.json")).unwrap();
    padded.resize(70_000, b' ');
    std::fs::write(w.path("padded.json"), &padded).unwrap();
    let run = w.orbi(&[
        "pod",
        "attachment",
        "--bind",
        "padded.json",
        "--client",
        OLD,
    ]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("larger than the 65536-byte limit"),
        "{}",
        run.stderr
    );
    assert_eq!(
        attachment["serving-node/id"], K1_NODE,
        "defaults to the bind's via/node-id"
    );
    assert_eq!(attachment["session/state"], "attached");
    // Admitted against the real clock.
    let db = w.path("pod.sqlite");
    let file = w.path("a.json");
    let run = w.orbi(&[
        "pod",
        "admit",
        "--db",
        &db,
        "--node-key",
        "k1.json",
        "--session",
        SESS1,
        &file,
    ]);
    run.expect(0, "admitted", "attached");
}

#[test]
fn profile_and_tenant_flags_reach_the_engine() {
    let w = Workspace::new();
    w.build(
        "b1.json",
        &bind_args("pb:01JQPARTBIND001", "2026-03-28T19:20:00Z", SESS1),
    );
    let hosted = "pod-user:did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    let mut attachment = w.build(
        "a.json",
        &[
            "pod",
            "attachment",
            "--bind",
            "b1.json",
            "--client",
            OLD,
            "--attachment-id",
            "attach:1",
            "--at",
            "2026-03-28T19:42:00Z",
            "--pod-user",
            hosted,
        ],
    );
    attachment["pod/id"] = Value::from("pod:pl-wro-node-7f3c:user-42");
    std::fs::write(w.path("a.json"), serde_json::to_vec(&attachment).unwrap()).unwrap();
    let now = "2026-03-28T19:42:05Z";
    w.admit("a.json", SESS1, now, &[])
        .expect(1, "rejected", "E_PROTO_INVALID");
    w.admit("a.json", SESS1, now, &["--profile", "seed"])
        .expect(1, "rejected", "E_POD_TENANCY_UNKNOWN");
    let tenant =
        format!("{hosted}=participant:did:key:z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn");
    w.admit(
        "a.json",
        SESS1,
        now,
        &["--profile", "seed", "--tenant", &tenant],
    )
    .expect(0, "admitted", "attached");
    let bad = w.admit("a.json", SESS1, now, &["--tenant", "nonsense"]);
    assert_eq!(bad.code, 2);
}

/// T13 / L10: a second attachment of a client attached on a session still live is
/// `E_POD_ALREADY_ATTACHED`; on a session that ended, it replaces the first.
#[test]
fn a_second_attachment_depends_on_whether_the_first_session_is_live() {
    let workspace = Workspace::new();
    let attachment = |n: &str, session: &str, at: &str| {
        let bind = format!("bind{n}.json");
        workspace.build(&bind, &bind_args(&format!("pb:{n}"), at, session));
        let name = format!("attach{n}.json");
        workspace.build(
            &name,
            &[
                "pod",
                "attachment",
                "--bind",
                &bind,
                "--client",
                OLD,
                "--attachment-id",
                &format!("attach:{n}"),
                "--at",
                at,
            ],
        );
        name
    };
    let first = attachment("1", SESS1, "2026-03-28T19:42:00Z");
    workspace
        .admit(&first, SESS1, "2026-03-28T19:42:05Z", &[])
        .expect(0, "admitted", "attached");
    let second = attachment("2", SESS3, "2026-03-28T19:43:00Z");

    let kept = workspace.admit(
        &second,
        SESS3,
        "2026-03-28T19:43:05Z",
        &["--live-session", SESS1],
    );
    let replaced = workspace.admit(&second, SESS3, "2026-03-28T19:43:06Z", &[]);

    kept.expect(1, "rejected", "E_POD_ALREADY_ATTACHED");
    replaced.expect(0, "admitted", "attached");
    assert_eq!(
        replaced.json["transitions"][0]["rule"], "T13",
        "{}",
        replaced.stdout
    );
}

/// Spec pod §5: egress is gated too. A builder whose artifact a node would reject on its
/// shape or ids prints nothing and exits 2.
#[test]
fn builders_refuse_artifacts_a_node_would_reject() {
    let workspace = Workspace::new();
    workspace.build(
        "bind.json",
        &bind_args("pb:egress", "2026-03-28T19:42:00Z", SESS1),
    );
    for client in [OLD, "", "client:with space"] {
        let run = workspace.orbi(&[
            "pod",
            "attachment",
            "--bind",
            "bind.json",
            "--client",
            client,
        ]);
        if client == OLD {
            assert_eq!(run.code, 0, "{}", run.stderr);
        } else {
            assert_eq!(run.code, 2, "{client:?}: {}", run.stdout);
            assert!(run.stdout.is_empty(), "{}", run.stdout);
            assert!(run.stderr.contains("client-instance"), "{}", run.stderr);
        }
    }
}

/// The egress gate follows the shape a node runs: a bind with a member only the open draft
/// shape allows builds with `--shape seed`, not with the default frozen shape.
#[test]
fn builders_gate_egress_under_the_shape_asked_for() {
    let workspace = Workspace::new();
    let mut bind = workspace.build(
        "bind.json",
        &bind_args("pb:shape", "2026-03-28T19:42:00Z", SESS1),
    );
    bind["bind/extra"] = serde_json::json!(1);
    std::fs::write(workspace.path("open.json"), bind.to_string()).unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["pod", "attachment", "--bind", "open.json", "--client", OLD];
        args.extend_from_slice(extra);
        workspace.orbi(&args)
    };

    let frozen = build(&[]);
    let seed = build(&["--shape", "seed"]);

    assert_eq!(frozen.code, 2, "{}", frozen.stdout);
    assert!(frozen.stderr.contains("bind/extra"), "{}", frozen.stderr);
    assert_eq!(seed.code, 0, "{}", seed.stderr);
    assert_eq!(seed.json["participant-bind"]["bind/extra"], 1);
}

/// Every flag of `pod admit` and `pod status` reaches what they print: the arrival's peer in
/// the traces, `--session-established` against the bind, the timers run first, `--traces`,
/// and the history's records field by field (a grant still open, then expired by a timer).
/// Dated in 2099 so that the open grant is due after the real clock too.
#[test]
fn admit_and_status_carry_every_flag_and_field() {
    let w = Workspace::new();
    let db = w.path("pod.sqlite");
    w.build("b1.json", &bind_args("pb:1", "2099-01-01T00:00:00Z", SESS1));
    w.build(
        "a1.json",
        &attachment_args("b1.json", "attach:1", "2099-01-01T00:00:01Z"),
    );
    // The bind predates the session it names by more than 30 s: refused.
    w.admit(
        "a1.json",
        SESS1,
        "2099-01-01T00:00:05Z",
        &["--session-established", "2099-01-01T00:00:31Z"],
    )
    .expect(1, "rejected", "E_POD_TIME_ORDER");
    let admitted = w.admit(
        "a1.json",
        SESS1,
        "2099-01-01T00:00:05Z",
        &[
            "--session-established",
            "2099-01-01T00:00:30Z",
            "--peer",
            K1_NODE,
        ],
    );
    admitted.expect(0, "admitted", "attached");
    assert_eq!(admitted.json["timers"], serde_json::json!([]));
    let status = w.orbi(&["pod", "status", "--db", &db, "--traces", "1"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let traces = status.json["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "{}", status.stdout);
    assert_eq!(traces[0]["peer"], K1_NODE, "{}", status.stdout);

    // A user detachment, then a recovery whose grant stays open for ten minutes.
    w.build(
        "d1.json",
        &[
            "pod",
            "detachment",
            "--bind",
            "b1.json",
            "--attachment-id",
            "attach:1",
            "--client",
            OLD,
            "--reason",
            "user-request",
            "--detachment-id",
            "detach:1",
            "--at",
            "2099-01-01T00:01:00Z",
        ],
    );
    w.admit("d1.json", SESS1, "2099-01-01T00:01:05Z", &[])
        .expect(0, "admitted", "detached");
    w.build("b2.json", &bind_args("pb:2", "2099-01-01T00:02:00Z", SESS1));
    w.build(
        "r1.json",
        &[
            "pod",
            "recovery",
            "--bind",
            "b2.json",
            "--client",
            OLD,
            "--mode",
            "reattach-existing-device",
            "--from-detachment",
            "detach:1",
            "--recovery-id",
            "recover:1",
            "--at",
            "2099-01-01T00:02:00Z",
        ],
    );
    w.admit("r1.json", SESS1, "2099-01-01T00:02:05Z", &[])
        .expect(0, "admitted", "recovery-granted");
    let status = w.orbi(&["pod", "status", "--db", &db]);
    let open = serde_json::json!({
        "recovery/id": "recover:1",
        "recovery/from-detachment-id": "detach:1",
        "client-instance/id": OLD,
        "recovery/mode": "reattach-existing-device",
        "recovered-at": "2099-01-01T00:02:00Z",
        "grant": "open",
        "grant/expires-at": "2099-01-01T00:12:05Z",
        "consumed-by": null,
    });
    assert_eq!(status.json["open-grants"], serde_json::json!([open]));
    assert_eq!(
        status.json["counts"],
        serde_json::json!({
            "attachments": 1, "live": 0, "detachments": 1, "recoveries": 1,
            "open-grants": 1, "binds": 1, "tombstones": 0, "traces": status.json["counts"]["traces"],
        })
    );
    // Past the grant's expiry, the next admission runs the timer first and says so.
    let replayed = w.admit("d1.json", SESS1, "2099-01-01T00:13:00Z", &[]);
    replayed.expect(0, "replayed", "detached");
    let timers = replayed.json["timers"].as_array().unwrap();
    assert_eq!(timers.len(), 1, "{}", replayed.stdout);
    assert_eq!(timers[0]["rule"], "T18", "{}", replayed.stdout);
    assert_eq!(timers[0]["subject"], "recover:1", "{}", replayed.stdout);
    let history = w.orbi(&["pod", "status", "--db", &db, "--client", OLD]);
    assert_eq!(history.json["recoveries"][0]["grant"], "expired");
    assert_eq!(history.json["tombstone"], Value::Null);
    let attachment = &history.json["attachments"][0];
    assert_eq!(attachment["admitted-at"], "2099-01-01T00:00:05Z");
    assert_eq!(attachment["state-since"], "2099-01-01T00:01:05Z");
    assert_eq!(attachment["state"], "detached");
}

/// `--node` names the serving node instead of the bind's `via/node-id`, in every builder;
/// a bind file that is JSON but not an object is named as such; a host action on an
/// attachment the node never saw is refused (exit 1), and `status` on a missing read model
/// says so.
#[test]
fn builders_take_node_and_refuse_a_bind_that_is_no_object() {
    let w = Workspace::new();
    w.build("b.json", &bind_args("pb:1", "2026-03-28T19:20:00Z", SESS1));
    let other = "node:did:key:z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn";
    let builders: [&[&str]; 3] = [
        &["attachment", "--client", OLD],
        &[
            "detachment",
            "--client",
            OLD,
            "--attachment-id",
            "attach:1",
            "--reason",
            "user-request",
        ],
        &[
            "recovery",
            "--client",
            OLD,
            "--mode",
            "reattach-existing-device",
            "--from-detachment",
            "detach:1",
        ],
    ];
    for builder in builders {
        let mut args = vec!["pod", builder[0], "--bind", "b.json", "--node", other];
        args.extend_from_slice(&builder[1..]);
        let run = w.orbi(&args);
        assert_eq!(run.code, 0, "{}: {}", builder[0], run.stderr);
        assert_eq!(run.json["serving-node/id"], other, "{}", builder[0]);
        assert_eq!(
            run.json["participant-bind"]["via/node-id"], K1_NODE,
            "{}",
            builder[0]
        );
    }
    std::fs::write(w.path("list.json"), "[]").unwrap();
    w.orbi(&["pod", "attachment", "--bind", "list.json", "--client", OLD])
        .assert_usage_error(&["bind list.json is not a json object"]);

    let db = w.path("pod.sqlite");
    w.build(
        "a.json",
        &[
            "pod",
            "attachment",
            "--bind",
            "b.json",
            "--client",
            OLD,
            "--at",
            "2026-03-28T19:42:00Z",
        ],
    );
    w.admit("a.json", SESS1, "2026-03-28T19:42:05Z", &[])
        .expect(0, "admitted", "attached");
    let host = w.orbi(&[
        "pod",
        "host",
        "--db",
        &db,
        "--node-key",
        "k1.json",
        "suspend",
        "attach:nope",
    ]);
    assert_eq!(host.code, 1, "{}", host.stderr);
    assert_eq!(host.json["outcome"], "refused");
    assert!(
        host.json["message"]
            .as_str()
            .unwrap()
            .contains("attach:nope"),
        "{}",
        host.stdout
    );
}

/// `pod host tick`: a timer that cannot fire (the attachment's bind carries a member the seed
/// profile admitted, and the host now runs the frozen profile, so its detachment fails the
/// egress gate) is listed under `failures` with its own error, exit 0, and the others run.
#[test]
fn host_tick_lists_a_timer_that_cannot_fire_and_runs_the_others() {
    let w = Workspace::new();
    let at = "2026-03-28T19:42:00Z";
    let mut bind = w.build("plain.json", &bind_args("pb:plain", at, SESS1));
    bind["x-planted"] = Value::from(1);
    bind["bind/id"] = Value::from("pb:planted");
    let participant = orbi_types::KeyPair::from_seed(&[0x2a; 32]);
    let input = orbi_types::pod::bind_signing_input(&bind).unwrap();
    bind["proof/participant-signature"]["value"] = Value::from(participant.sign(&input));
    std::fs::write(w.path("planted.json"), serde_json::to_vec(&bind).unwrap()).unwrap();
    let attaching = |bind: &str, client: &str, id: &str, name: &str| {
        w.build(
            name,
            &[
                "pod",
                "attachment",
                "--bind",
                bind,
                "--shape",
                "seed",
                "--client",
                client,
                "--attachment-id",
                id,
                "--at",
                at,
                "--state",
                "attaching",
            ],
        );
        w.admit(name, SESS1, "2026-03-28T19:42:05Z", &["--profile", "seed"])
            .expect(0, "admitted", "attaching");
    };
    attaching(
        "planted.json",
        "client:planted",
        "attach:planted",
        "a1.json",
    );
    attaching("plain.json", OLD, "attach:plain", "a2.json");
    // Past the 30 s setup timeout, on the default (frozen) profile.
    let ticked = w.host("2026-03-28T19:43:00Z", &["tick"]);
    assert_eq!(ticked.code, 0, "{}", ticked.stderr);
    let transitions = ticked.json["transitions"].as_array().unwrap();
    assert_eq!(transitions.len(), 1, "{}", ticked.stdout);
    assert_eq!(transitions[0]["rule"], "T4");
    assert_eq!(transitions[0]["subject"], "attach:plain");
    let failures = ticked.json["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{}", ticked.stdout);
    assert_eq!(failures[0]["rule"], "T4");
    assert_eq!(failures[0]["attachment/id"], "attach:planted");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("fails the egress gate"),
        "{}",
        ticked.stdout
    );
}
