//! A hostile node (a real node key on loopback, then answers no honest node gives) against
//! `orbi`'s client commands: each ends with a clear exit code and message, never a panic, a
//! hang, a false success or a file left behind.

mod common;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use orbi_inac::{
    Descriptor, Frame, Verdict,
    quic::{
        ALPN, TransportConfig,
        config::{endpoint, server_config_with_alpns},
        wire::{read_frame, write_frame},
    },
};
use orbi_types::KeyPair;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

const BLOB: &str = "vendor.blob.v1";
const OCTETS: &str = "application/octet-stream";
const POD_ALPN: &[u8] = b"orbiplex-pod/1";

fn node_key() -> KeyPair {
    KeyPair::from_seed(&[1; 32])
}

/// A temp dir holding the client's key file `c.json`; its path.
fn workspace() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("c.json").display().to_string();
    let seed = "02".repeat(32);
    let run = common::run(
        dir.path(),
        &["keys", "generate", "--out", &key, "--seed", &seed],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    (dir, key)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A listener proving the node key for `alpn`, and `NODE_ID@ADDR` to dial it.
fn listener(rt: &Runtime, alpn: &[u8]) -> (quinn::Endpoint, String) {
    listener_shaped(rt, alpn, |_| {})
}

/// [`listener`] with `shape`d transport parameters.
fn listener_shaped(
    rt: &Runtime,
    alpn: &[u8],
    shape: impl FnOnce(&mut quinn::TransportConfig),
) -> (quinn::Endpoint, String) {
    let _entered = rt.enter();
    let config = TransportConfig::default();
    let mut server = server_config_with_alpns(&node_key(), &config, vec![alpn.to_vec()]).unwrap();
    let mut transport = config.quinn_transport(true);
    shape(&mut transport);
    server.transport_config(std::sync::Arc::new(transport));
    let endpoint = endpoint("127.0.0.1:0".parse().unwrap(), Some(server), &config).unwrap();
    let addr: SocketAddr = endpoint.local_addr().unwrap();
    (
        endpoint,
        format!("{}@{addr}", node_key().node_id().as_str()),
    )
}

/// Accepts the first connection and its first exchange.
async fn first_stream(
    endpoint: &quinn::Endpoint,
) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let connection = endpoint.accept().await.unwrap().await.unwrap();
    let (send, recv) = connection.accept_bi().await.unwrap();
    (connection, send, recv)
}

/// Accepts the first connection and its first exchange, and reads the exchange's frame.
async fn first_exchange(
    endpoint: &quinn::Endpoint,
) -> (
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
    Frame,
) {
    let (connection, send, mut recv) = first_stream(endpoint).await;
    let frame = read_frame(&mut recv, Duration::from_secs(10))
        .await
        .unwrap();
    (connection, send, recv, Frame::decode(&frame).unwrap())
}

/// `orbi inac request` for `blob:one` into `out.bin`.
fn request_args<'a>(key: &'a str, to: &'a str) -> [&'a str; 14] {
    [
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
        "blob:one",
        "--out",
        "out.bin",
    ]
}

/// A pod node that answers the first artifact with `answer`, then, with `close`, ends the
/// session 200 ms later.
fn pod_node(rt: &Runtime, answer: &'static [u8], close: bool) -> String {
    let (endpoint, to) = listener(rt, POD_ALPN);
    rt.spawn(async move {
        let (connection, mut send, mut recv) = first_stream(&endpoint).await;
        let _artifact = recv.read_to_end(1 << 20).await.unwrap();
        send.write_all(&(answer.len() as u32).to_be_bytes())
            .await
            .unwrap();
        send.write_all(answer).await.unwrap();
        let _ = send.finish();
        if close {
            tokio::time::sleep(Duration::from_millis(200)).await;
            connection.close(0u32.into(), b"gone");
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    to
}

/// Starts `orbi args` in `dir`.
fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits up to `limit` for `child` to exit; its exit code and stderr (kills it on timeout).
fn exit_within(mut child: Child, limit: Duration) -> Option<(i32, String)> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8(output.stderr).unwrap();
            return Some((output.status.code().unwrap_or(-1), stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_pod_answer_that_is_not_an_object_is_an_error_not_a_panic() {
    let rt = runtime();
    let to = pod_node(&rt, b"[]", false);
    let (dir, key) = workspace();
    let run = common::run(
        dir.path(),
        &[
            "pod", "attach", "--key", &key, "--to", &to, "--client", "c1",
        ],
    );
    run.assert_usage_error(&["answer: not a JSON object"]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// A node that could not judge the artifact at all (`outcome: error`) is no refusal: exit 2
/// with its message, not 1.
#[test]
fn a_pod_answer_that_judged_nothing_exits_2_with_its_message() {
    let rt = runtime();
    let to = pod_node(
        &rt,
        br#"{"outcome":"error","message":"the serving node cannot admit now"}"#,
        false,
    );
    let (dir, key) = workspace();
    let run = common::run(
        dir.path(),
        &[
            "pod", "attach", "--key", &key, "--to", &to, "--client", "c1",
        ],
    );
    run.assert_usage_error(&["could not judge the artifact: the serving node cannot admit now"]);
    assert_eq!(run.json["outcome"], "error", "{}", run.stdout);
}

#[test]
fn a_held_attachment_whose_session_the_node_ends_is_reported() {
    let rt = runtime();
    let to = pod_node(&rt, br#"{"outcome":"admitted"}"#, true);
    let (dir, key) = workspace();
    let args = [
        "pod", "attach", "--key", &key, "--to", &to, "--client", "c1", "--hold",
    ];
    let held = spawn(dir.path(), &args);
    let (code, stderr) =
        exit_within(held, Duration::from_secs(20)).expect("the client noticed the session end");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("ended the session"), "{stderr}");
}

/// Spec §3.2: a `refused` answer whose code is `already-present` is idempotent success, so
/// `orbi inac push` exits 0 as it does for `already-present`.
#[test]
fn a_refusal_coded_already_present_is_a_success() {
    let rt = runtime();
    let (endpoint, to) = listener(&rt, ALPN);
    rt.spawn(async move {
        let (connection, mut send, _recv, push) = first_exchange(&endpoint).await;
        let held = orbi_inac::Refusal::new(
            orbi_types::inac::RefusalCode::AlreadyPresent,
            "held already",
        );
        let answer = Frame::answer(push.correlation_id(), &Verdict::Refuse(held));
        write_frame(&mut send, &answer).await.unwrap();
        let _ = send.finish();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(connection);
    });
    let (dir, key) = workspace();
    std::fs::write(dir.path().join("note.bin"), b"{}").unwrap();
    let args = [
        "inac",
        "push",
        "--key",
        &key,
        "--to",
        &to,
        "--schema",
        BLOB,
        "--content-type",
        OCTETS,
        "note.bin",
    ];

    let run = common::run(dir.path(), &args);

    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.json["response"]["refusal/code"], "already-present");
}

/// A node that serves any request with a 1 MiB stream push, sends 100 000 bytes of the body
/// and then nothing for a minute; `NODE_ID@ADDR` to dial it.
fn trickling_server(rt: &Runtime) -> String {
    let (endpoint, to) = listener(rt, ALPN);
    rt.spawn(async move {
        let (connection, mut send, mut recv) = first_stream(&endpoint).await;
        let request = read_frame(&mut recv, Duration::from_secs(10))
            .await
            .unwrap();
        let request = Frame::decode(&request).unwrap();
        let asked = request.request().unwrap().clone();
        let body = vec![7u8; 1 << 20];
        let mut served = Descriptor::of_bytes(&asked.schema, &asked.content_type, &body);
        served.artifact_id = asked.artifact_id.unwrap();
        let stream_id = orbi_inac::quic::wire::stream_number(send.id()).to_string();
        // Served as an honest node would: echoing the request's correlation/id.
        let mut header = Frame::push_stream(&served, &stream_id);
        if let Some(correlation) = request.correlation_id() {
            header = header.correlation_id(correlation);
        }
        let header = header.build().unwrap();
        write_frame(&mut send, &header).await.unwrap();
        // Part of the body, then nothing for a long while.
        send.write_all(&body[..100_000]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(connection);
    });
    to
}

/// The names in `dir` other than the client's key file.
fn left_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "c.json")
        .collect();
    names.sort();
    names
}

/// Waits until `child` has a file open in `dir` other than its key file: the download has
/// begun. Read from `/proc`, because on Linux the file has no name while it arrives.
fn wait_for_download(child: &Child, dir: &Path) {
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let dir = dir.canonicalize().unwrap();
    let started = Instant::now();
    loop {
        let open_here = std::fs::read_dir(&fds).into_iter().flatten().any(|fd| {
            fd.ok()
                .and_then(|fd| std::fs::read_link(fd.path()).ok())
                .is_some_and(|target| target.starts_with(&dir) && !target.ends_with("c.json"))
        });
        if open_here {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no transfer began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_interrupted_request_leaves_no_temp_file() {
    let rt = runtime();
    let to = trickling_server(&rt);
    let (dir, key) = workspace();
    let request = spawn(dir.path(), &request_args(&key, &to));
    wait_for_download(&request, dir.path());
    interrupt(&request);
    let (code, stderr) =
        exit_within(request, Duration::from_secs(20)).expect("the request stops when asked");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(left_in(dir.path()), Vec::<String>::new());
}

/// A request killed outright mid-download leaves nothing either: the file it was writing
/// had no name yet.
#[cfg(target_os = "linux")]
#[test]
fn a_request_killed_outright_leaves_no_temp_file() {
    let rt = runtime();
    let to = trickling_server(&rt);
    let (dir, key) = workspace();
    let mut request = spawn(dir.path(), &request_args(&key, &to));
    wait_for_download(&request, dir.path());
    request.kill().unwrap();
    request.wait().unwrap();
    assert_eq!(left_in(dir.path()), Vec::<String>::new());
}

#[test]
fn an_interrupt_after_the_artifact_is_written_says_so() {
    let rt = runtime();
    // Credit for the request as it is read, never for the requester's answer: the request
    // waits there after the verified artifact is renamed into place.
    let (endpoint, to) = listener_shaped(&rt, ALPN, |transport| {
        transport.stream_receive_window(16u8.into());
    });
    rt.spawn(async move {
        let (connection, mut send, recv, request) = first_exchange(&endpoint).await;
        write_frame(&mut send, &decision(&request, b"the artifact"))
            .await
            .unwrap();
        let _ = send.finish();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop((recv, connection));
    });
    let (dir, key) = workspace();
    let request = spawn(dir.path(), &request_args(&key, &to));
    let out = dir.path().join("out.bin");
    let started = Instant::now();
    while !out.exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "no file");
        std::thread::sleep(Duration::from_millis(10));
    }
    interrupt(&request);
    let (code, stderr) = exit_within(request, Duration::from_secs(20)).expect("it stops");
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the artifact");
    assert!(
        stderr.contains("interrupted after the verified artifact was written to out.bin"),
        "{stderr}"
    );
}

/// An archivist that answers the pushed storage request `ingested`, then handles the
/// decision request with `decide` (which writes to the stream, or not).
fn archivist(rt: &Runtime, decide: fn(Frame) -> Option<Frame>) -> String {
    archivist_answering(rt, Verdict::Ingested, decide)
}

/// [`archivist`] answering the push with `verdict`.
fn archivist_answering(
    rt: &Runtime,
    verdict: Verdict,
    decide: fn(Frame) -> Option<Frame>,
) -> String {
    let (endpoint, to) = listener(rt, ALPN);
    rt.spawn(async move {
        let (connection, mut send, _recv, push) = first_exchange(&endpoint).await;
        let answer = Frame::answer(push.correlation_id(), &verdict);
        write_frame(&mut send, &answer).await.unwrap();
        let _ = send.finish();
        let (mut send, mut recv) = connection.accept_bi().await.unwrap();
        let request = read_frame(&mut recv, Duration::from_secs(10))
            .await
            .unwrap();
        match decide(Frame::decode(&request).unwrap()) {
            Some(served) => {
                write_frame(&mut send, &served).await.unwrap();
                let _ = send.finish();
            }
            None => connection.close(0u32.into(), b"restarting"),
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(connection);
    });
    to
}

/// A decision served for `request` with `bytes`, under the asked kind and id.
fn decision(request: &Frame, bytes: &[u8]) -> Frame {
    let asked = request.request().unwrap();
    let mut served = Descriptor::of_bytes(&asked.schema, &asked.content_type, bytes);
    served.artifact_id = asked.artifact_id.clone().unwrap();
    let mut push = Frame::push_inline(&served, bytes);
    if let Some(correlation) = request.correlation_id() {
        push = push.correlation_id(correlation);
    }
    push.build().unwrap()
}

fn submit(to: &str) -> common::Run {
    let (dir, key) = workspace();
    let request = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/examples/valid/minimal-private.archival-storage-request.json");
    let request = request.display().to_string();
    common::run(
        dir.path(),
        &["archivist", "submit", "--key", &key, "--to", to, &request],
    )
}

fn request_id() -> Value {
    let request = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/examples/valid/minimal-private.archival-storage-request.json");
    let request: Value = serde_json::from_slice(&std::fs::read(request).unwrap()).unwrap();
    request["request/id"].clone()
}

#[test]
fn a_submit_whose_decision_is_lost_is_unknown_not_refused() {
    let rt = runtime();
    let to = archivist(&rt, |_| None);
    let run = submit(&to);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("its decision is unknown"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json["operation"], "ingested", "how far it got");
    assert!(run.json["decision/unavailable"].is_string(), "{}", run.json);
}

#[test]
fn a_stored_submit_without_its_decision_is_unknown_and_a_refused_one_stays_refused() {
    let rt = runtime();
    let decline = |request: Frame| {
        let refusal = orbi_inac::Refusal::new(orbi_types::inac::RefusalCode::PolicyDenied, "none");
        let verdict = Verdict::refusing(orbi_types::inac::Operation::Request, refusal);
        Some(Frame::answer(request.correlation_id(), &verdict))
    };
    let to = archivist(&rt, decline);
    let run = submit(&to);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("did not serve the decision"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json["operation"], "ingested");

    // Refused by the push's own answer: the lost decision changes nothing.
    let refusal = orbi_inac::Refusal::new(orbi_types::inac::RefusalCode::PolicyDenied, "no");
    let to = archivist_answering(&rt, Verdict::Refuse(refusal), |_| None);
    let run = submit(&to);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json["operation"], "refused");
    assert!(run.json["decision/unavailable"].is_string(), "{}", run.json);
    // Refused by the push's answer, whatever decision is then served: an `accepted` one
    // cannot turn the refusal into an acceptance.
    let refusal = orbi_inac::Refusal::new(orbi_types::inac::RefusalCode::PolicyDenied, "no");
    let to = archivist_answering(&rt, Verdict::Refuse(refusal), |request| {
        Some(decision(
            &request,
            &valid_decision(&request_id(), "accepted"),
        ))
    });
    let run = submit(&to);
    assert_eq!(run.code, 1, "{} {}", run.json, run.stderr);
    assert_eq!(run.json["operation"], "refused");
    assert_eq!(run.json["decision"]["status"], "accepted", "{}", run.json);
}

#[test]
fn a_submit_is_not_accepted_by_a_decision_it_did_not_ask_for() {
    let rt = runtime();
    // Another kind under the asked id.
    let to = archivist(&rt, |request| {
        let bytes = br#"{"status":"accepted"}"#;
        let mut served = Descriptor::of_bytes("vendor.other.v1", "text/plain", bytes);
        served.artifact_id = request.request().unwrap().artifact_id.clone().unwrap();
        Some(Frame::push_inline(&served, bytes).build().unwrap())
    });
    let run = submit(&to);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("served something other than what was asked for (malformed)"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json["decision"], Value::Null, "{}", run.json);

    // The asked kind and id, about another request.
    let to = archivist(&rt, |request| {
        let bytes = valid_decision(&json!("storage-request:someone-else"), "accepted");
        Some(decision(&request, &bytes))
    });
    let run = submit(&to);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("served a decision about request"),
        "{}",
        run.stderr
    );

    // About this request, but not an archival-storage-decision: not taken.
    let to = archivist(&rt, |request| {
        let bytes = serde_json::to_vec(&json!({"request/id": request_id(), "status": "accepted"}));
        Some(decision(&request, &bytes.unwrap()))
    });
    let run = submit(&to);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("served a decision that does not fit its contract"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json["decision"], Value::Null, "{}", run.json);

    // A refusal with a second `status` member that says accepted: strict JSON refuses it,
    // where a lenient reader would take the last member.
    let to = archivist(&rt, |request| {
        let refused = valid_decision(&request_id(), "refused");
        let text = String::from_utf8(refused).unwrap();
        let twice = text.replacen(
            r#""status":"refused""#,
            r#""status":"refused","status":"accepted""#,
            1,
        );
        assert_ne!(twice, text, "premise: the status member was found");
        Some(decision(&request, twice.as_bytes()))
    });
    let run = submit(&to);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("duplicate"), "{}", run.stderr);

    // About this request: taken as it says.
    let to = archivist(&rt, |request| {
        Some(decision(
            &request,
            &valid_decision(&request_id(), "accepted"),
        ))
    });
    let run = submit(&to);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json["decision"]["status"], "accepted");
}

/// A valid archival-storage-decision (from the committed fixtures) about `request_id`, with
/// `status` (`accepted` keeps the fixture's terms; `refused` gives it a reason).
fn valid_decision(request_id: &Value, status: &str) -> Vec<u8> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(if status == "accepted" {
        "../schemas/examples/valid/accepted-federation.archival-storage-decision.json"
    } else {
        "../schemas/examples/valid/refused-every-reason.archival-storage-decision.json"
    });
    let mut decision: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    decision["request/id"] = request_id.clone();
    assert_eq!(decision["status"], status, "premise: the fixture's status");
    serde_json::to_vec(&decision).unwrap()
}

#[test]
fn advertisement_text_from_a_peer_cannot_drive_the_terminal() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/examples/valid/federation-host-ledger.archivist-advertisement.json");
    let mut advertisement: Value =
        serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    advertisement["advertisement/id"] = json!("archivist-advertisement:x\u{1b}]0;owned\u{7}");
    advertisement["settlement/rail-hints"] = json!(["host-ledger\u{1b}[2J\u{202e}"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cache.json"),
        serde_json::to_vec(&advertisement).unwrap(),
    )
    .unwrap();
    let request = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/examples/valid/federation-host-ledger.archival-storage-request.json");
    for args in [
        vec!["archivist", "lint", "cache.json"],
        vec![
            "archivist",
            "match",
            "--request",
            request.to_str().unwrap(),
            "cache.json",
        ],
    ] {
        let run = common::run(dir.path(), &args);
        assert!(
            run.stdout.contains("x\\u{1b}]0;owned"),
            "{args:?}: {}",
            run.stdout
        );
        assert!(
            !run.stdout.contains(['\u{1b}', '\u{7}', '\u{202e}']),
            "{args:?}: {:?}",
            run.stdout
        );
    }
}
