//! `orbi demo`: the whole mission on embedded defaults, end to end, in a scratch directory.
//!
//! Two real nodes ([`crate::node::RunningNode`], exactly what `orbi node run` serves) start in
//! this process on loopback with fresh keys and their own `node.toml`: a serving node with
//! the archivist role and a client node. Then, over authenticated QUIC:
//!
//! 1. **pod**: a participant signs a bind on the live pod session and attaches a client
//!    instance; the attachment is replayed (idempotent);
//! 2. **inac**: a small artifact is pushed inline and a 10 MB one in stream mode (with a
//!    progress bar), the first again (`already-present`), then pushes refused with their typed
//!    codes (an unknown kind, a wrong digest);
//! 3. **archivist**: the client discovers the archivist's advertisement and submits two
//!    storage requests: one accepted, one refused with the decision's reasons;
//! 4. **pod**: the client instance is detached;
//! 5. **schemas**: every artifact that crossed the wire validates against its contract.
//!
//! Each step prints what it expected and what it got (a line of text, or one JSON object with
//! `--format json`); the command exits 0 only when every step got what it expected.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    time::SystemTime,
};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use orbi_inac::{Descriptor, Frame, quic::Session};
use orbi_pod::keyfile;
use orbi_schema::{Profile, validate};
use orbi_types::{
    KeyPair, NodeId, Sha256Digest, inac::Operation, pod::DetachReason, pod::ProfileType,
};
use serde_json::{Value, json};

use crate::{
    CliError, Outcome,
    node::{
        InitOptions, RunningNode,
        archivist_role::ADVERTISEMENT_SCHEMA,
        client::{self, AttachSpec, DetachSpec},
        config::NodeConfig,
        pod_service, write_node_dir,
    },
};

/// Arguments of `orbi demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Work in this new or empty directory (kept afterwards) instead of a scratch one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch directory afterwards.
    #[arg(long)]
    keep: bool,
    /// `text`: a line per step; `json`: one JSON object per step.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// How steps are printed.
#[derive(Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Format {
    #[default]
    Text,
    Json,
}

/// The artifact kind both nodes keep.
const NOTE_SCHEMA: &str = "orbi.demo-note.v1";
/// Size of the streamed artifact: 10 MB.
const STREAM_BYTES: usize = 10_000_000;
/// The demo's client instance.
const CLIENT: &str = "client:demo-phone";

/// Runs `orbi demo`.
pub fn run(args: Args) -> Result<Outcome, CliError> {
    let (dir, scratch) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (scratch_dir(), !args.keep),
    };
    // Fresh keys every run: an earlier run's node directories would no longer match them.
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(CliError::new(format!(
            "{} is not empty; the demo needs a new or empty directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|err| CliError::new(format!("cannot create {}: {err}", dir.display())))?;
    let runtime = crate::inac::runtime()?;
    let mut report = Report {
        format: args.format,
        ..Report::default()
    };
    let result = runtime.block_on(async {
        // Caught before the first step: a stopped demo still removes its scratch directory,
        // which holds both nodes' and the participant's private keys.
        let stop = crate::inac::StopSignals::catch();
        tokio::select! {
            result = demo(&dir, &mut report) => result,
            () = stop.wait() => Err(CliError::new("stopped by a signal before its last step")),
        }
    });
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    report.finish(if scratch { None } else { Some(&dir) });
    Ok(if report.unexpected == 0 {
        Outcome::Success
    } else {
        Outcome::Refused
    })
}

fn scratch_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!("orbi-demo-{}-{nanos}", std::process::id()))
}

/// Prints each step and counts the unexpected ones.
#[derive(Default)]
struct Report {
    format: Format,
    steps: usize,
    unexpected: usize,
    /// Every artifact that crossed the wire, by schema name, for the final schema step.
    artifacts: Vec<(&'static str, Vec<u8>)>,
}

impl Report {
    /// Records a step: `expected` and `got` are compared as text.
    fn step(&mut self, name: &str, expected: impl ToString, got: impl ToString, detail: Value) {
        let (expected, got) = (expected.to_string(), got.to_string());
        self.steps += 1;
        let ok = expected == got;
        if !ok {
            self.unexpected += 1;
        }
        match self.format {
            Format::Json => outln!(
                "{}",
                json!({"step": name, "ok": ok, "expected": expected, "got": got, "detail": detail})
            ),
            Format::Text => {
                let mark = if ok { "ok  " } else { "FAIL" };
                outln!("{mark} {name:<28} {got}");
                if !ok {
                    outln!("     expected: {expected}");
                }
                if let Some(note) = detail.get("note").and_then(Value::as_str) {
                    outln!("     {note}");
                }
            }
        }
    }

    fn finish(&self, kept: Option<&Path>) {
        match self.format {
            Format::Json => outln!(
                "{}",
                json!({
                    "demo": "done",
                    "directory": kept.map(|dir| dir.display().to_string()),
                    "steps": self.steps,
                    "unexpected": self.unexpected,
                })
            ),
            Format::Text => {
                outln!(
                    "{} of {} steps as expected",
                    self.steps - self.unexpected,
                    self.steps
                );
                if let Some(dir) = kept {
                    outln!("node directories kept in {}", dir.display());
                }
            }
        }
    }
}

fn cli<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> CliError + '_ {
    move |err| CliError::new(format!("{context}: {err}"))
}

/// A fresh key, written to `path` (mode 0600).
fn fresh_key(path: &Path) -> Result<KeyPair, CliError> {
    let key = KeyPair::from_seed(&*crate::keys::random_seed()?);
    keyfile::write(path, &key, true).map_err(cli("key file"))?;
    Ok(key)
}

/// A node directory as `orbi node init` writes it: listening on a free loopback port, trusting
/// `peer` and keeping notes; returns its key.
fn node_dir(dir: &Path, peer: &[NodeId], archivist: bool) -> Result<KeyPair, CliError> {
    let options = InitOptions {
        listen: "127.0.0.1:0".parse().map_err(cli("address"))?,
        allow: peer.to_vec(),
        accept: vec![NOTE_SCHEMA.to_owned()],
        archivist,
        advertisement: None,
        force: true,
    };
    write_node_dir(dir, &options)
}

async fn demo(dir: &Path, report: &mut Report) -> Result<(), CliError> {
    // Fresh identities: the participant, and the two nodes (each trusting the other; the
    // client's config is written again once the serving node's id is known, keeping its key).
    let participant = fresh_key(&dir.join("participant.key"))?;
    let (client_dir, serving_dir) = (dir.join("client"), dir.join("serving"));
    let client_key = node_dir(&client_dir, &[], false)?;
    let serving_key = node_dir(&serving_dir, &[client_key.node_id()], true)?;
    node_dir(&client_dir, &[serving_key.node_id()], false)?;
    let serving = RunningNode::start(&NodeConfig::load(&serving_dir.join("node.toml"))?).await?;
    let advertisement_id = std::fs::read(serving_dir.join("advertisement.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|ad| ad["advertisement/id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let client_config = client_dir.join("node.toml");
    let client_node = RunningNode::start(&NodeConfig::load(&client_config)?).await?;
    report.step(
        "nodes",
        "serving: inac pod archivist; client: inac pod",
        format!(
            "serving: {}; client: {}",
            roles(&serving.banner()),
            roles(&client_node.banner())
        ),
        json!({"serving": serving.banner(), "client": client_node.banner()}),
    );
    let to = serving.peer_addr();
    let result = exchanges(
        report,
        &participant,
        &client_key,
        &to,
        &serving,
        &advertisement_id,
    )
    .await;
    let stopped = (serving.stop().await, client_node.stop().await);
    result?;
    for stop in [stopped.0, stopped.1] {
        stop.map_err(|err| CliError::new(err.to_string()))?;
    }
    schemas(report);
    Ok(())
}

fn roles(banner: &Value) -> String {
    banner["roles"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

async fn exchanges(
    report: &mut Report,
    participant: &KeyPair,
    client_key: &KeyPair,
    to: &orbi_inac::quic::PeerAddr,
    serving: &RunningNode,
    advertisement_id: &str,
) -> Result<(), CliError> {
    // 1. Pod: attach over the live session the bind names.
    let (pod_client, pod) = client::connect_pod(client_key.clone(), to).await?;
    report.step(
        "pod session",
        to.node.as_str(),
        pod.peer().as_str(),
        json!({"session/id": pod.id().as_str(), "note": format!("session {}", pod.id().as_str())}),
    );
    let attachment = client::attachment_bytes(
        participant,
        &pod,
        AttachSpec {
            client: CLIENT.into(),
            attachment_id: "attach:demo-1".into(),
            profile: ProfileType::PodClient,
            pod_user: None,
            export_capable: true,
            migration_allowed: true,
        },
    )?;
    report
        .artifacts
        .push(("client-instance-attachment", attachment.clone()));
    for (name, expected) in [
        ("pod attach", "admitted attached"),
        ("pod attach replayed", "replayed attached"),
    ] {
        let answer = pod_service::submit(&pod, &attachment).await?;
        report.step(name, expected, pod_outcome(&answer), answer);
    }

    // 2. INAC pushes from the client node.
    let (inac_client, inac) = client::connect_inac(client_key.clone(), to).await?;
    let note = br#"{"schema":"orbi.demo-note.v1","text":"hello from the client node"}"#;
    let descriptor = Descriptor::of_bytes(NOTE_SCHEMA, "application/json", note);
    let push = |descriptor: &Descriptor, bytes: &[u8], id: &str| {
        Frame::push_inline(descriptor, bytes)
            .correlation_id(id)
            .idempotency_key(id)
            .build()
            .map_err(cli("frame"))
    };
    let inline = push(&descriptor, note, "demo:inline")?;
    report.artifacts.push(("inac-control", inline.encode()));
    exchange(report, &inac, "inac push inline", &inline, "ingested").await;
    stream_push(report, &inac, serving).await;
    let again = push(&descriptor, note, "demo:again")?;
    exchange(report, &inac, "inac push again", &again, "already-present").await;
    let unknown = Descriptor::of_bytes("vendor.unknown.v1", "application/json", b"{}");
    let unknown = push(&unknown, b"{}", "demo:unknown")?;
    exchange(
        report,
        &inac,
        "inac push unknown kind",
        &unknown,
        "refused kind-not-supported",
    )
    .await;
    let mut forged = Descriptor::of_bytes(NOTE_SCHEMA, "application/json", b"[]");
    forged.digest = Sha256Digest::of(b"{}");
    let forged = push(&forged, b"[]", "demo:forged")?;
    exchange(
        report,
        &inac,
        "inac push wrong digest",
        &forged,
        "refused digest-mismatch",
    )
    .await;

    // 3. Archivist: discover, then one accepted and one refused storage request.
    let got = match client::fetch(&inac, ADVERTISEMENT_SCHEMA, None).await? {
        Ok(bytes) => {
            report
                .artifacts
                .push(("archivist-advertisement", bytes.clone()));
            serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|ad| ad["advertisement/id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "an unreadable advertisement".into())
        }
        Err(answer) => format!("no advertisement: {answer}"),
    };
    report.step("archivist discover", advertisement_id, got, json!({}));
    for (name, id, scope, expected) in [
        (
            "archivist submit",
            "storage-request:demo-1",
            "private-retained",
            "ingested accepted []",
        ),
        (
            "archivist submit refused",
            "storage-request:demo-2",
            "public-vault",
            "refused refused [curation-missing, scope-not-accepted]",
        ),
    ] {
        let request = storage_request(&client_key.node_id(), id, scope);
        let bytes = serde_json::to_vec(&request).map_err(cli("storage request"))?;
        report
            .artifacts
            .push(("archival-storage-request", bytes.clone()));
        let submitted = client::submit_request(&inac, &bytes).await?;
        if let Some(lost) = submitted.decision_lost {
            return Err(lost);
        }
        let answer = submitted.report;
        let decision = &answer["decision"];
        if let Ok(decision) = serde_json::to_vec(decision) {
            report
                .artifacts
                .push(("archival-storage-decision", decision));
        }
        let reasons: Vec<&str> = decision["reason/codes"]
            .as_array()
            .map(|codes| codes.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let got = format!(
            "{} {} [{}]",
            answer["operation"].as_str().unwrap_or("?"),
            decision["status"].as_str().unwrap_or("no decision"),
            reasons.join(", ")
        );
        let note = match answer["message"].as_str() {
            Some(message) => message.to_owned(),
            None => format!(
                "decision {}",
                decision["decision/id"].as_str().unwrap_or("?")
            ),
        };
        let mut detail = answer.clone();
        detail["note"] = json!(note);
        report.step(name, expected, got, detail);
    }
    inac_client.close().await;

    // 4. Pod: detach the client instance.
    let detachment = client::detachment_bytes(
        participant,
        &pod,
        DetachSpec {
            client: CLIENT.into(),
            attachment_id: "attach:demo-1".into(),
            detachment_id: "detach:demo-1".into(),
            reason: DetachReason::UserRequest,
            notes: None,
        },
    )?;
    report
        .artifacts
        .push(("client-instance-detachment", detachment.clone()));
    let answer = pod_service::submit(&pod, &detachment).await?;
    report.step(
        "pod detach",
        "admitted detached",
        pod_outcome(&answer),
        answer,
    );
    pod_client.close().await;
    Ok(())
}

fn pod_outcome(answer: &Value) -> String {
    let outcome = answer["outcome"].as_str().unwrap_or("?");
    match (answer["state"].as_str(), answer["code"].as_str()) {
        (_, Some(code)) => format!("{outcome} {code}"),
        (Some(state), None) => format!("{outcome} {state}"),
        (None, None) => outcome.to_owned(),
    }
}

async fn exchange(
    report: &mut Report,
    session: &Session,
    name: &str,
    frame: &Frame,
    expected: &str,
) {
    let got = match session.exchange(frame).await {
        Ok(answer) => match answer.response().and_then(|r| r.refusal_code) {
            Some(code) if answer.operation() != Operation::AlreadyPresent => {
                format!("{} {code}", answer.operation())
            }
            _ => answer.operation().to_string(),
        },
        Err(err) => format!("error: {err}"),
    };
    let digest = frame
        .to_value()
        .pointer("/artifact/digest")
        .cloned()
        .unwrap_or(Value::Null);
    report.step(name, expected, got, json!({"digest": digest}));
}

/// A 10 MB push in stream mode: the header is judged first, then the body is hashed into the
/// store; a progress bar shows on a terminal.
async fn stream_push(report: &mut Report, session: &Session, serving: &RunningNode) {
    let body: Vec<u8> = (0..STREAM_BYTES).map(|i| (i % 251) as u8).collect();
    let descriptor = Descriptor::of_bytes(NOTE_SCHEMA, "application/octet-stream", &body);
    let bar = if report.format == Format::Text && std::io::stderr().is_terminal() {
        ProgressBar::new(STREAM_BYTES as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("     {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style);
    }
    let answer = session
        .push_stream(
            &descriptor,
            |builder| builder.correlation_id("demo:stream"),
            &body[..],
            &mut |sent| bar.set_position(sent),
        )
        .await;
    bar.finish_and_clear();
    let held = serving.holds(&descriptor.digest).await;
    let got = match answer {
        Ok(answer) => format!("{} held={held}", answer.operation()),
        Err(err) => format!("error: {err}"),
    };
    report.step(
        "inac push stream 10 MB",
        "ingested held=true",
        got,
        json!({"bytes": STREAM_BYTES, "digest": descriptor.digest}),
    );
}

fn storage_request(requester: &orbi_types::NodeId, id: &str, scope: &str) -> Value {
    json!({
        "schema/v": 1, "request/id": id, "requested-at": "2026-03-23T08:00:00Z",
        "requester/node-id": requester.as_str(), "package/id": "archival-package:demo-1",
        "publication/scope": scope, "artifact/type": "transcript-bundle",
        "publication/timing-profile": "curator-gated",
        "retention/max-duration-sec": 7776000, "retention/max-idle-ttl-sec": 2592000,
        "settlement/can-settle": true, "settlement/acceptable-rails": ["host-ledger"]
    })
}

/// 5. Every artifact that crossed the wire conforms to its canonical contract.
fn schemas(report: &mut Report) {
    let artifacts = std::mem::take(&mut report.artifacts);
    let mut invalid = Vec::new();
    for (schema, bytes) in &artifacts {
        if let Err(problem) = validate::validate_bytes(schema, bytes, Profile::Seed) {
            invalid.push(json!({"schema": schema, "report": problem.to_string()}));
        }
    }
    report.step(
        "schemas",
        format!("{} valid", artifacts.len()),
        format!("{} valid", artifacts.len() - invalid.len()),
        json!({"invalid": invalid}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step counts as unexpected exactly when what it got differs from what it expected.
    #[test]
    fn a_step_that_got_something_else_is_counted_unexpected() {
        let mut report = Report {
            format: Format::Json,
            ..Report::default()
        };
        report.step("same", "ingested", "ingested", json!({}));
        assert_eq!((report.steps, report.unexpected), (1, 0));
        report.step("differs", "ingested", "refused", json!({}));
        assert_eq!((report.steps, report.unexpected), (2, 1));
    }

    /// The schema step fails when an artifact that crossed the wire does not fit its contract.
    #[test]
    fn an_artifact_off_its_contract_fails_the_schema_step() {
        let mut report = Report {
            format: Format::Json,
            ..Report::default()
        };
        report
            .artifacts
            .push(("participant-bind", b"{\"schema/v\": 1}".to_vec()));
        schemas(&mut report);
        assert_eq!((report.steps, report.unexpected), (1, 1));
        assert!(report.artifacts.is_empty());
    }

    /// A refusal's code says more than the state the answer also names.
    #[test]
    fn a_pod_answer_reads_as_its_outcome_and_code_else_state() {
        let answer = json!({"outcome": "rejected", "state": "attached", "code": "E_POD_STATE"});
        assert_eq!(pod_outcome(&answer), "rejected E_POD_STATE");
        let answer = json!({"outcome": "admitted", "state": "attached"});
        assert_eq!(pod_outcome(&answer), "admitted attached");
        assert_eq!(pod_outcome(&json!({})), "?");
    }
}
