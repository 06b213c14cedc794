//! `orbi inac` through the real binary: `serve` and `push`/`offer`/`request`/`offers`/`store`
//! processes on loopback, with real files and a real SQLite ledger, and every exit code.

mod common;

use std::{
    io::BufReader,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use common::{Run, Started};
use serde_json::Value;

const BLOB: &str = "vendor.blob.v1";
const OCTETS: &str = "application/octet-stream";

/// A working directory with key files `r.json` (the serving node), `s.json` and `t.json`.
struct Workspace {
    dir: tempfile::TempDir,
}

fn seed(byte: u8) -> String {
    format!("{byte:02x}").repeat(32)
}

impl Workspace {
    fn new() -> Self {
        let workspace = Workspace {
            dir: tempfile::tempdir().unwrap(),
        };
        for (name, byte) in [("r.json", 1), ("s.json", 2), ("t.json", 3)] {
            let out = workspace.path(name);
            let run = workspace.orbi(&["keys", "generate", "--out", &out, "--seed", &seed(byte)]);
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
        workspace
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn node_id(&self, key: &str) -> String {
        let run = self.orbi(&["keys", "show", &self.path(key)]);
        run.json["node/id"].as_str().unwrap().to_owned()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
        self.path(name)
    }

    fn orbi(&self, args: &[&str]) -> Run {
        common::run(self.dir.path(), args)
    }

    /// `orbi inac serve` as `r.json` on a free port, with its data in `data`, then `extra`.
    fn serve_args(&self, data: &str, extra: &[&str]) -> Vec<String> {
        let key = self.path("r.json");
        [
            "inac",
            "serve",
            "--key",
            &key,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ]
        .iter()
        .chain(extra)
        .map(|arg| arg.to_string())
        .collect()
    }

    /// Runs `orbi inac serve` ([`Workspace::serve_args`]) to completion: for usage errors.
    /// Bounded: a serve that starts after all fails the test instead of hanging it.
    fn serve_fails(&self, data: &str, extra: &[&str]) -> Run {
        let args = self.serve_args(data, extra);
        common::run_within(
            self.dir.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
            std::time::Duration::from_secs(30),
        )
    }

    /// Starts `orbi inac serve` as `r.json` on a free port with `extra` arguments.
    fn serve(&self, extra: &[&str]) -> Served {
        self.serve_with(extra, |_| {})
    }

    /// [`Workspace::serve`], with the command set up by `configure` first.
    fn serve_with(&self, extra: &[&str], configure: impl FnOnce(&mut Command)) -> Served {
        let data = self.path("data");
        let args = self.serve_args(&data, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = common::start_with(self.dir.path(), &args, configure);
        let to = started.to();
        let Started { child, stdout, .. } = started;
        Served {
            child,
            stdout,
            to,
            data: PathBuf::from(data),
        }
    }
}

struct Served {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    to: String,
    data: PathBuf,
}

impl Served {
    /// SIGTERM, then the exit code and the rest of stdout.
    fn stop(mut self) -> (i32, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        (code, rest)
    }

    fn data(&self) -> &Path {
        &self.data
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push_args<'a>(key: &'a str, to: &'a str, file: &'a str) -> Vec<&'a str> {
    vec![
        "inac",
        "push",
        "--key",
        key,
        "--to",
        to,
        "--schema",
        BLOB,
        "--content-type",
        OCTETS,
        file,
    ]
}

fn request_args<'a>(key: &'a str, to: &'a str, id: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "inac",
        "request",
        "--key",
        key,
        "--to",
        to,
        "--schema",
        BLOB,
        "--content-type",
        OCTETS,
        "--artifact-id",
        id,
        "--out",
        out,
    ]
}

fn bytes(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}

#[test]
fn push_exit_codes_and_the_store() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let served = ws.serve(&["--allow", &sender, "--accept", BLOB]);
    let key = ws.path("s.json");

    // 0: ingested inline, and again (already held, replayed).
    let small = ws.write("small.bin", &bytes(5000, 1));
    for _ in 0..2 {
        let run = ws.orbi(&push_args(&key, &served.to, &small));
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            ["ingested", "already-present"].contains(&run.json["operation"].as_str().unwrap()),
            "{}",
            run.json
        );
    }

    // 0: a 300 kB file goes in stream mode; stderr is not a terminal, so no progress bar.
    let large_bytes = bytes(300_000, 2);
    let large = ws.write("large.bin", &large_bytes);
    let run = ws.orbi(&push_args(&key, &served.to, &large));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json["operation"], "ingested");
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains('\u{1b}'),
        "no progress drawing off a terminal: {:?}",
        run.stderr
    );

    // 1: refused (a declared digest that does not match, stream mode: after the body).
    let mut args = push_args(&key, &served.to, &large);
    args.extend([
        "--digest",
        "sha256:RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o",
    ]);
    let run = ws.orbi(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json["response"]["refusal/code"], "digest-mismatch");

    // 1: a kind the node does not take.
    let mut args = push_args(&key, &served.to, &small);
    args[7] = "vendor.other.v1";
    let run = ws.orbi(&args);
    assert_eq!(run.code, 1);
    // The refusal quotes the kind: what a terminal would act on is escaped in the JSON.
    let mut args = push_args(&key, &served.to, &small);
    args[7] = "vendor.x\u{202e}\u{9b}2J.v1";
    let run = ws.orbi(&args);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(r"vendor.x\u202e\u009b2J.v1") && !run.stdout.contains('\u{202e}'),
        "{:?}",
        run.stdout
    );
    let message = run.json["response"]["message"].as_str().unwrap();
    assert!(message.contains("vendor.x\u{202e}\u{9b}2J.v1"), "{message}");
    assert_eq!(run.json["response"]["refusal/code"], "kind-not-supported");

    // 1: a peer the node does not allow.
    let other = ws.path("t.json");
    let run = ws.orbi(&push_args(&other, &served.to, &small));
    assert_eq!(run.code, 1);
    assert_eq!(run.json["response"]["refusal/code"], "not-authorized");

    // 2: the listener is not the node named.
    let (_, addr) = served.to.split_once('@').unwrap();
    let impostor = format!("{}@{addr}", ws.node_id("t.json"));
    let run = ws.orbi(&push_args(&key, &impostor, &small));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("orbi:"), "{}", run.stderr);

    // 2: usage and input errors.
    let run = ws.orbi(&push_args(&key, "not-a-peer", &small));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("NODE_ID@HOST:PORT"), "{}", run.stderr);
    let run = ws.orbi(&push_args(&key, &served.to, &ws.path("missing.bin")));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("missing.bin"), "{}", run.stderr);
    let run = ws.orbi(&["inac", "push", "--key", &key, &small]);
    assert_eq!(run.code, 2);

    // The store holds both artifacts under their digests.
    let data = served.data().display().to_string();
    let run = ws.orbi(&["inac", "store", "--data-dir", &data, "list"]);
    assert_eq!(run.code, 0);
    let listed = run.json.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{}", run.json);
    let large_entry = listed.iter().find(|o| o["size/bytes"] == 300_000).unwrap();
    let path = Path::new(&ws.path("")).join(large_entry["path"].as_str().unwrap());
    assert_eq!(std::fs::read(path).unwrap(), large_bytes);
    assert_eq!(large_entry["held-as"][0]["source/peer"], sender);

    let (code, rest) = served.stop();
    assert_eq!(code, 0, "graceful stop");
    assert_eq!(rest.lines().count(), 1, "stdout is JSON lines: {rest}");
    let stats: Value = serde_json::from_str(&rest).unwrap();
    assert_eq!(stats["stats"]["ingested"], 2);
}

#[test]
fn offer_operator_accept_invitation_push_consumed() {
    let ws = Workspace::new();
    let served = ws.serve(&["--open-offers", "--accept", BLOB]);
    let key = ws.path("s.json");
    let data = served.data().display().to_string();
    let file = ws.write("offered.bin", &bytes(2000, 3));
    let mut offer = push_args(&key, &served.to, &file);
    offer[1] = "offer";
    offer.extend(["--correlation-id", "c-offer"]);

    let run = ws.orbi(&offer);
    assert_eq!(run.code, 1, "deferred: {}", run.json);
    assert_eq!(run.json["operation"], "defer");
    let run = ws.orbi(&["inac", "offers", "--data-dir", &data]);
    assert_eq!(run.code, 0);
    assert_eq!(run.json[0]["state"], "pending");
    let id = run.json[0]["id"].to_string();

    let run = ws.orbi(&["inac", "offers", "--data-dir", &data, "accept", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json["state"], "accepted");
    let run = ws.orbi(&["inac", "offers", "--data-dir", &data, "reject", &id]);
    assert_eq!(run.code, 1, "already accepted");
    assert_eq!(
        run.json["state"], "accepted",
        "stdout shows the offer as it stands"
    );
    let run = ws.orbi(&["inac", "offers", "--data-dir", &data, "accept", "999"]);
    assert_eq!(run.code, 2, "no such offer");

    let run = ws.orbi(&offer);
    assert_eq!(run.code, 0, "{}", run.json);
    assert_eq!(run.json["operation"], "accept");
    // The saved answer serves as the passport file, as does the passport alone.
    let answer = ws.write("answer.json", run.stdout.as_bytes());
    let passport = ws.write(
        "invitation.json",
        &serde_json::to_vec(&run.json["authorization"]["passport"]).unwrap(),
    );

    let mut push = push_args(&key, &served.to, &file);
    push.extend(["--correlation-id", "c-offer", "--passport", &answer]);
    let run = ws.orbi(&push);
    assert_eq!(run.code, 0, "{} {}", run.json, run.stderr);
    assert_eq!(run.json["operation"], "ingested");
    assert_eq!(run.json["correlation/id"], "c-offer");

    let run = ws.orbi(&["inac", "offers", "--data-dir", &data, "list"]);
    assert_eq!(run.json[0]["invitation/consumed"], true);

    // Another artifact under the used invitation.
    let other = ws.write("other.bin", &bytes(100, 4));
    let mut reuse = push_args(&key, &served.to, &other);
    reuse.extend(["--passport", &passport]);
    let run = ws.orbi(&reuse);
    assert_eq!(run.code, 1);
    assert_eq!(run.json["response"]["refusal/code"], "invitation-revoked");
}

#[test]
fn request_writes_the_verified_artifact() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let served = ws.serve(&["--allow", &sender, "--accept", BLOB]);
    let key = ws.path("s.json");
    let content = bytes(150_000, 5);
    let file = ws.write("pushed.bin", &content);
    let mut push = push_args(&key, &served.to, &file);
    push.extend(["--artifact-id", "blob:one"]);
    assert_eq!(ws.orbi(&push).code, 0);

    let out = ws.path("fetched.bin");
    let request_with = |id: &str, more: &[&str]| {
        let mut args = request_args(&key, &served.to, id, &out);
        args.extend(more);
        ws.orbi(&args)
    };
    let request = |id: &str| request_with(id, &[]);

    // Larger than --max-bytes: refused from its descriptor, nothing written.
    let run = request_with("blob:one", &["--max-bytes", "149999"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json["response"]["refusal/code"], "payload-too-large");
    assert!(!std::path::Path::new(&out).exists());
    // Another digest than the one pinned: not taken.
    let other = "sha256:RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o";
    let run = request_with("blob:one", &["--digest", other]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!std::path::Path::new(&out).exists());
    request_with("blob:one", &["--digest", "sha256:short"])
        .assert_usage_error(&["--digest \"sha256:short\" is not sha256:"]);

    let run = request_with("blob:one", &["--max-bytes", "150000"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json["answer"], "ingested");
    // The report says where the verified artifact is, and carries no refusal.
    assert_eq!(run.json["out"], out.as_str(), "{}", run.json);
    assert_eq!(run.json["response"], Value::Null, "{}", run.json);
    assert_eq!(run.json["artifact"]["artifact/id"], "blob:one");
    assert_eq!(run.json["artifact"]["size/bytes"], 150_000);
    assert_eq!(std::fs::read(&out).unwrap(), content);
    std::fs::remove_file(&out).unwrap();
    let digest = run.json["artifact"]["digest"].as_str().unwrap().to_owned();
    let run = request_with("blob:one", &["--digest", &digest]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), content);
    // A file already at --out is kept, found out before the peer is asked; --force replaces
    // it once the artifact is verified.
    std::fs::write(&out, b"precious").unwrap();
    request("blob:one").assert_usage_error(&[&format!(
        "--out {out}: a file is already there (--force replaces it)"
    )]);
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let run = request_with("blob:one", &["--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), content);
    std::fs::remove_file(&out).unwrap();

    let run = request("blob:none");
    assert_eq!(run.code, 1);
    assert_eq!(run.json["operation"], "decline");

    // --out naming a directory can never take the file: found out before the peer is asked
    // (as a missing parent is), not after the whole transfer, and the peer is not told
    // handler-unavailable.
    let dir_out = ws.path("out-dir");
    std::fs::create_dir(&dir_out).unwrap();
    let run = common::run_within(
        ws.dir.path(),
        &request_args(&key, &served.to, "blob:one", &dir_out),
        &[],
        std::time::Duration::from_secs(60),
    );
    run.assert_usage_error(&[&format!("--out {dir_out}"), "is a directory"]);
    assert_eq!(std::fs::read_dir(&dir_out).unwrap().count(), 0);
}

/// A serve that cannot bind its address exits 2 having created nothing: a mistyped or taken
/// port must not leave a fresh ledger and store behind (nor a data dir a later serve would
/// reuse).
#[test]
fn a_serve_that_cannot_bind_leaves_no_data_dir() {
    let ws = Workspace::new();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let data = ws.path("fresh-data");
    let mut args = ws.serve_args(&data, &[]);
    args[5] = listen.clone();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = common::run_within(
        ws.dir.path(),
        &args,
        &[],
        std::time::Duration::from_secs(60),
    );
    run.assert_usage_error(&[&format!("cannot bind udp {listen}")]);
    assert!(
        !Path::new(&data).exists(),
        "left behind: {:?}",
        std::fs::read_dir(&data).map(|entries| entries.count())
    );
}

/// Whether `id` is what a command makes up: `inac-correlation:` and a ULID.
fn is_fresh_correlation_id(id: &Value) -> bool {
    id.as_str()
        .and_then(|id| id.strip_prefix("inac-correlation:"))
        .is_some_and(|ulid| {
            ulid.len() == 26
                && ulid
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        })
}

/// Spec §3.2: the initiator always sets `correlation/id`. Without `--correlation-id` every
/// push, offer and request makes up a fresh one, and the printed answer echoes it.
#[test]
fn every_exchange_carries_a_correlation_id_fresh_unless_given() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let served = ws.serve(&["--allow", &sender, "--accept", BLOB]);
    let key = ws.path("s.json");
    let file = ws.write("small.bin", &bytes(3000, 6));
    let send = |operation: &'static str, more: &[&'static str]| {
        let mut args = push_args(&key, &served.to, &file);
        args[1] = operation;
        args.extend(["--artifact-id", "blob:c"]);
        args.extend(more);
        ws.orbi(&args)
    };

    let first = send("push", &[]);
    let second = send("push", &[]);
    let offered = send("offer", &[]);
    let given = send("push", &["--correlation-id", "c-given"]);

    let ids: Vec<&Value> = [&first, &second, &offered]
        .iter()
        .map(|run| {
            assert_eq!(run.code, 0, "{} {}", run.json, run.stderr);
            &run.json["correlation/id"]
        })
        .collect();
    assert!(ids.iter().all(|id| is_fresh_correlation_id(id)), "{ids:?}");
    assert_ne!(ids[0], ids[1], "two pushes, two exchanges");
    assert_ne!(ids[1], ids[2]);
    assert_eq!(given.json["correlation/id"], "c-given");

    let out = ws.path("fetched.bin");
    let request = |id: &str, more: &[&str]| {
        let mut args = request_args(&key, &served.to, id, &out);
        args.extend(more);
        ws.orbi(&args)
    };
    let received = request("blob:c", &[]);
    // Kept otherwise: the next requests would be refused before they are sent.
    std::fs::remove_file(&out).unwrap();
    let declined = request("blob:none", &[]);
    let declined_given = request("blob:none", &["--correlation-id", "c-request"]);

    assert_eq!(received.code, 0, "{} {}", received.json, received.stderr);
    let received_id = &received.json["correlation/id"];
    assert!(is_fresh_correlation_id(received_id), "{}", received.json);
    assert_eq!(declined.json["operation"], "decline");
    let declined_id = &declined.json["correlation/id"];
    assert!(is_fresh_correlation_id(declined_id), "{}", declined.json);
    assert_ne!(received_id, declined_id);
    assert_eq!(declined_given.json["correlation/id"], "c-request");
}

#[test]
fn data_dir_commands_report_usage_errors() {
    let ws = Workspace::new();
    let missing = ws.path("nowhere");
    let run = ws.orbi(&["inac", "offers", "--data-dir", &missing]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nowhere"), "{}", run.stderr);
    let run = ws.orbi(&["inac", "store", "--data-dir", &missing, "list"]);
    assert_eq!(run.code, 2);
    // A ledger that is not one: the message names the directory it was looked for in.
    let garbage = ws.path("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(format!("{garbage}/inac.sqlite"), [b'x'; 512]).unwrap();
    let run = ws.orbi(&["inac", "store", "--data-dir", &garbage, "list"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(&format!("cannot use the inac state in {garbage}: ")),
        "{}",
        run.stderr
    );
    // What the message quotes cannot drive the operator's terminal.
    let hostile = ws.path("x\u{1b}[2J\u{1b}]0;owned\u{7}");
    let run = ws.orbi(&["inac", "store", "--data-dir", &hostile, "list"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("x\\u{1b}[2J\\u{1b}]0;owned\\u{7}") && !run.stderr.contains('\u{1b}'),
        "{:?}",
        run.stderr
    );
    let run = ws.serve_fails(&missing, &["--accept", "=x"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--accept"), "{}", run.stderr);
    // memarium-blob.v1 custody needs its baseline acceptor (spec §4.1): never plain bytes.
    let run = ws.serve_fails(&missing, &["--accept", "memarium-blob.v1"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("§4.1"), "{}", run.stderr);
}

#[test]
fn send_inputs_are_bounded_and_named_before_anything_is_dialled() {
    let ws = Workspace::new();
    let key = ws.path("s.json");
    // Nobody listens there: every error below must come before a connection is tried.
    let to = format!("{}@127.0.0.1:9", ws.node_id("r.json"));
    let run = ws.orbi(&push_args(&key, &to, "/dev/zero"));
    run.assert_usage_error(&["/dev/zero is not a regular file"]);
    let big = ws.write("big.bin", &bytes(200_000, 1));
    let mut args = push_args(&key, &to, &big);
    args.extend(["--transfer", "inline"]);
    let run = ws.orbi(&args);
    run.assert_usage_error(&["big.bin has 200000 bytes", "--transfer stream"]);
    let small = ws.write("small.bin", &bytes(100, 2));
    let passport = ws.write("passport.json", &vec![b' '; 300 * 1024]);
    let mut args = push_args(&key, &to, &small);
    args.extend(["--passport", &passport]);
    let run = ws.orbi(&args);
    run.assert_usage_error(&["passport.json", "limit"]);
    let declined = ws.write(
        "declined.json",
        br#"{"schema": "inac-control.v1", "operation": "decline"}"#,
    );
    let mut args = push_args(&key, &to, &small);
    args.extend(["--passport", &declined]);
    let run = ws.orbi(&args);
    run.assert_usage_error(&["declined.json", "offer answer carrying one"]);
    let run = ws.orbi(&request_args(&key, &to, "blob:one", "nowhere/x.bin"));
    run.assert_usage_error(&["--out nowhere/x.bin: nowhere is not a directory"]);
    // Ids and keys outside the token rules, also for a stream push (whose frame is built
    // once connected).
    for (flag, value) in [("--correlation-id", "two words"), ("--idempotency-key", "")] {
        for transfer in ["inline", "stream"] {
            let mut args = push_args(&key, &to, &small);
            args.extend([flag, value, "--transfer", transfer]);
            ws.orbi(&args)
                .assert_usage_error(&[&format!("{flag} {value:?} is not 1 to 256 characters")]);
        }
    }
    let long = "c".repeat(257);
    let mut args = request_args(&key, &to, "blob:one", "x.bin");
    args.extend(["--correlation-id", &long]);
    ws.orbi(&args)
        .assert_usage_error(&["--correlation-id \"ccc"]);
    let hex_digest = format!("sha256:{}", "ab".repeat(32));
    let mut args = push_args(&key, &to, &small);
    args.extend(["--digest", &hex_digest]);
    let run = ws.orbi(&args);
    run.assert_usage_error(&[&format!("--digest \"{hex_digest}\" is not")]);
    for (flag, value, named) in [
        ("--allow", "bogus", "--allow \"bogus\""),
        (
            "--max-connections",
            "0",
            "--max-connections: must be above zero",
        ),
        (
            "--max-unfamiliar-handshakes",
            "0",
            "--max-unfamiliar-handshakes: must be above zero",
        ),
        (
            "--min-body-rate",
            "0",
            "--min-body-rate: must be above zero",
        ),
    ] {
        ws.serve_fails("data", &[flag, value])
            .assert_usage_error(&[named]);
    }
    let mut args = push_args(&key, &to, &small);
    args.extend(["--min-body-rate", "0"]);
    ws.orbi(&args)
        .assert_usage_error(&["--min-body-rate: must be above zero"]);
}

/// What the frame's schema refuses is refused before dialling for a stream push too, as for
/// an inline one (whose frame is built first): a stream push builds its header once
/// connected, so an empty `--schema` there cost a dial (30 s against a silent address) before
/// the usage error. An empty file cannot go inline, and the message says which file.
#[test]
fn stream_push_inputs_are_judged_before_anything_is_dialled() {
    let ws = Workspace::new();
    let key = ws.path("s.json");
    // Nobody listens there: every error below must come before a connection is tried.
    let to = format!("{}@127.0.0.1:9", ws.node_id("r.json"));
    let small = ws.write("small.bin", &bytes(100, 2));
    let within = std::time::Duration::from_secs(20);
    for (flag, pointer) in [
        ("--schema", "/artifact/schema"),
        ("--content-type", "/artifact/content~1type"),
        ("--artifact-id", "/artifact/artifact~1id"),
    ] {
        let mut args = push_args(&key, &to, &small);
        match args.iter().position(|arg| *arg == flag) {
            Some(at) => args[at + 1] = "",
            None => args.extend([flag, ""]),
        }
        args.extend(["--transfer", "stream"]);
        let run = common::run_within(ws.dir.path(), &args, &[], within);
        run.assert_usage_error(&[pointer]);
    }
    let empty = ws.write("empty.bin", b"");
    let mut args = push_args(&key, &to, &empty);
    args.extend(["--transfer", "inline"]);
    let run = common::run_within(ws.dir.path(), &args, &[], within);
    run.assert_usage_error(&["empty.bin"]);
}

#[test]
fn a_second_node_on_the_same_data_dir_is_refused() {
    let ws = Workspace::new();
    let first = ws.serve(&[]);
    let data = first.data().display().to_string();
    let mut second = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(ws.serve_args(&data, &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second node started on a data dir in use");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    // The first one was not disturbed: it still stops cleanly.
    let (code, _) = first.stop();
    assert_eq!(code, 0);
}

#[test]
fn with_no_guest_places_only_allowed_peers_are_served() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let served = ws.serve(&[
        "--allow",
        &sender,
        "--accept",
        BLOB,
        "--max-guest-connections",
        "0",
    ]);
    let small = ws.write("small.bin", &bytes(100, 3));
    let run = ws.orbi(&push_args(&ws.path("s.json"), &served.to, &small));
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A stranger is closed right after its handshake (0x103), before any frame: a transport
    // failure rather than a refusal.
    let run = ws.orbi(&push_args(&ws.path("t.json"), &served.to, &small));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("too many connections"),
        "{}",
        run.stderr
    );
}

/// A serving node whose stderr reader went away keeps serving: its log lines are lost, the
/// node is not (the log subscriber's own error report used to panic on the closed pipe).
#[test]
fn a_closed_stderr_does_not_stop_a_serving_node() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let args = ws.serve_args(&ws.path("data"), &["--allow", &sender]);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(&args)
        .current_dir(ws.dir.path())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.contains("node/id"), "{first:?}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(exited, None, "the node stopped: {exited:?}");
}

#[test]
fn a_server_signalled_as_soon_as_it_says_where_it_listens_stops_gracefully() {
    let ws = Workspace::new();
    // Stop signals are caught before the first line: one sent on reading it is a graceful
    // stop (exit 0, the stats line), never the default action that kills the process.
    for _ in 0..3 {
        let (code, rest) = ws.serve(&[]).stop();
        assert_eq!(code, 0, "graceful stop");
        let stats: Value = serde_json::from_str(&rest).unwrap();
        assert_eq!(stats["stats"]["frames"], 0);
    }
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A body larger than the node may write (RLIMIT_FSIZE: an operator's quota, a filesystem's
/// file size limit; `SIGXFSZ` at its default action, as `prlimit --fsize` leaves it) is
/// refused retryably, nothing of it stays staged, and the node keeps serving the others.
#[cfg(unix)]
#[test]
fn a_body_past_the_file_size_limit_is_refused_and_the_node_keeps_serving() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let served = ws.serve_with(&["--allow", &sender, "--accept", BLOB], |command| {
        common::limit_file_size(command, 1_000_000)
    });
    let key = ws.path("s.json");
    let large = ws.write("large.bin", &bytes(1_500_000, 4));
    let run = common::run_within(
        ws.dir.path(),
        &push_args(&key, &served.to, &large),
        &[],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json["response"]["refusal/code"], "handler-unavailable");
    assert_eq!(run.json["response"]["retryable"], true);
    assert!(
        names_in(&served.data().join("store/staging")).is_empty(),
        "nothing staged stays"
    );
    // The node still serves: the next push is ingested, and only it is held.
    let small = ws.write("small.bin", &bytes(3000, 5));
    let run = ws.orbi(&push_args(&key, &served.to, &small));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json["operation"], "ingested");
    let data = served.data().display().to_string();
    let run = ws.orbi(&["inac", "store", "--data-dir", &data, "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json.as_array().unwrap().len(), 1, "{}", run.json);
    assert_eq!(run.json[0]["size/bytes"], 3000);
    let (code, rest) = served.stop();
    assert_eq!(code, 0, "graceful stop");
    let stats: Value = serde_json::from_str(&rest).unwrap();
    assert_eq!(stats["stats"]["ingested"], 1, "{stats}");
    assert_eq!(stats["stats"]["refused"], 1, "{stats}");
}

/// A ledger that is not a database (cut short, overwritten) stops the start with exit 2 and a
/// message naming the file, which is left as it was, as is the store beside it.
#[test]
fn a_corrupt_ledger_is_named_and_left_untouched() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let served = ws.serve(&["--allow", &sender, "--accept", BLOB]);
    let large = ws.write("large.bin", &bytes(100_000, 6));
    let run = ws.orbi(&push_args(&ws.path("s.json"), &served.to, &large));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let data = served.data().to_owned();
    assert_eq!(served.stop().0, 0);
    let ledger = data.join("inac.sqlite");
    for name in ["inac.sqlite-wal", "inac.sqlite-shm"] {
        let _ = std::fs::remove_file(data.join(name));
    }
    let garbage = b"not a database, not even its header".repeat(200);
    std::fs::write(&ledger, &garbage).unwrap();
    let objects = || -> Vec<String> {
        let root = data.join("store/objects");
        names_in(&root)
            .iter()
            .flat_map(|shard| names_in(&root.join(shard)))
            .collect()
    };
    let objects_before = objects();
    assert_eq!(objects_before.len(), 1, "the large artifact is a file");

    let run = ws.serve_fails(&data.display().to_string(), &["--allow", &sender]);
    run.assert_usage_error(&["inac.sqlite", "not a database"]);
    let shown = data.display().to_string();
    let run = ws.orbi(&["inac", "store", "--data-dir", &shown, "list"]);
    run.assert_usage_error(&["inac.sqlite", "not a database"]);
    assert_eq!(std::fs::read(&ledger).unwrap(), garbage, "left as it was");
    assert_eq!(objects(), objects_before);
}

/// The store's directory gone while the node serves (replaced by a file): a stream push is
/// refused retryably, and the refusal, which goes to a remote peer, names no local path.
#[test]
fn a_store_gone_while_serving_is_refused_without_naming_local_paths() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let served = ws.serve(&["--allow", &sender, "--accept", BLOB]);
    let store = served.data().join("store");
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::write(&store, b"not a directory").unwrap();
    let large = ws.write("large.bin", &bytes(300_000, 7));
    let run = ws.orbi(&push_args(&ws.path("s.json"), &served.to, &large));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json["response"]["refusal/code"], "handler-unavailable");
    assert_eq!(run.json["response"]["retryable"], true);
    let message = run.json["response"]["message"].as_str().unwrap();
    let root = ws.dir.path().display().to_string();
    assert!(
        !message.contains(&root) && !message.contains("staging"),
        "the node's paths are its own: {message}"
    );
}

/// Answers withdrawn because their group commit failed (the ledger's file can grow no more)
/// are what the peers got, `handler-unavailable`, and the stop's stats count them as such.
#[cfg(unix)]
#[test]
fn stats_count_the_answers_a_failed_ledger_commit_withdrew() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let served = ws.serve_with(&["--allow", &sender, "--accept", BLOB], |command| {
        common::ignore_file_size_signal(command);
        common::limit_file_size(command, 300_000);
    });
    let key = ws.path("s.json");
    let (mut ingested, mut refused) = (0, 0);
    for salt in 0..6u8 {
        // 60 kB: kept in the ledger's database, so its WAL reaches the limit.
        let file = ws.write(&format!("m{salt}.bin"), &bytes(60_000, salt + 10));
        let run = ws.orbi(&push_args(&key, &served.to, &file));
        match run.json["operation"].as_str() {
            Some("ingested") => ingested += 1,
            Some("refused") => {
                assert_eq!(run.json["response"]["refusal/code"], "handler-unavailable");
                refused += 1;
            }
            _ => panic!("{}: {}", run.code, run.stderr),
        }
    }
    assert!(refused > 0, "the limit was reached");
    let (code, rest) = served.stop();
    assert_eq!(code, 0, "graceful stop");
    let stats: Value = serde_json::from_str(&rest).unwrap();
    assert_eq!(stats["stats"]["ingested"], ingested, "{stats}");
    assert_eq!(stats["stats"]["refused"], refused, "{stats}");
}

/// A serving node killed outright (`kill -9`, a power cut) in the middle of a stream body:
/// restarted on the same data, it holds no part of it (the staged body is removed at open,
/// nothing is in the store or the ledger), and the sender's retry under the same idempotency
/// key is ingested once.
#[test]
fn a_node_killed_mid_body_restarts_clean_and_the_retry_ingests_once() {
    let ws = Workspace::new();
    let sender = ws.node_id("s.json");
    let mut served = ws.serve(&["--allow", &sender, "--accept", BLOB]);
    let staging = served.data().join("store/staging");
    let body = bytes(40_000_000, 8);
    let large = ws.write("large.bin", &body);
    let key = ws.path("s.json");
    let mut args = push_args(&key, &served.to, &large);
    args.extend(["--idempotency-key", "retry:1"]);
    let mut push = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let staged_some = || {
        std::fs::read_dir(&staging)
            .unwrap()
            .any(|entry| entry.unwrap().metadata().is_ok_and(|meta| meta.len() > 0))
    };
    while !staged_some() {
        assert!(std::time::Instant::now() < deadline, "the body never began");
        assert_eq!(push.try_wait().unwrap(), None, "the push ended first");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    let _ = push.kill();
    let _ = push.wait();
    assert_eq!(
        names_in(&staging).len(),
        1,
        "a crash leaves the staged part"
    );
    drop(served);

    let served = ws.serve(&["--allow", &sender, "--accept", BLOB]);
    assert!(names_in(&staging).is_empty(), "removed at open");
    let data = served.data().display().to_string();
    let run = ws.orbi(&["inac", "store", "--data-dir", &data, "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json, serde_json::json!([]), "nothing of it is held");
    let mut args = push_args(&key, &served.to, &large);
    args.extend(["--idempotency-key", "retry:1"]);
    for _ in 0..2 {
        let run = ws.orbi(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.json["operation"], "ingested", "{}", run.json);
    }
    let run = ws.orbi(&["inac", "store", "--data-dir", &data, "list"]);
    assert_eq!(run.json.as_array().unwrap().len(), 1, "{}", run.json);
    let path = Path::new(&ws.path("")).join(run.json[0]["path"].as_str().unwrap());
    assert!(std::fs::read(path).unwrap() == body, "the whole body");
    assert!(names_in(&staging).is_empty());
    let (code, rest) = served.stop();
    assert_eq!(code, 0);
    let stats: Value = serde_json::from_str(&rest).unwrap();
    // The retry is a replay of the first answer: one artifact ingested, one ledger decision.
    assert_eq!(stats["stats"]["frames"], 2, "{stats}");
}

/// The store's directory removed while the node serves (an operator cleaning up, a script):
/// a second node on the same data dir is still refused, so that two never write one ledger.
#[test]
fn a_store_removed_while_serving_still_keeps_a_second_node_out() {
    let ws = Workspace::new();
    let first = ws.serve(&[]);
    std::fs::remove_dir_all(first.data().join("store")).unwrap();
    let data = first.data().display().to_string();
    let args = ws.serve_args(&data, &[]);
    let run = common::run_within(
        ws.dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
        std::time::Duration::from_secs(10),
    );
    run.assert_usage_error(&["in use"]);
    let (code, _) = first.stop();
    assert_eq!(code, 0);
}
