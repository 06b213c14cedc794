//! `orbi demo`: the whole system on embedded defaults, end to end, in a scratch directory.
//!
//! Two nodes on loopback QUIC, a participant, real SQLite read models and a real store:
//!
//! 1. **identities**: a serving node, a client node and a participant from fixed seeds;
//! 2. **session**: the client node dials the serving node (raw-public-key mutual TLS); both
//!    ends derive the same session id, which becomes the pod layer's `session/id`;
//! 3. **pod**: the participant's signed bind rides that session into an attachment, which is
//!    admitted, replayed, refused on another session, detached, recovered and re-attached;
//! 4. **inac**: inline and streamed pushes are ingested, deduplicated and refused for the
//!    right reasons (unknown kind, digest mismatch);
//! 5. **archivist**: a storage request is matched against two advertisements;
//! 6. **schemas**: every artifact the demo built validates against its canonical contract.
//!
//! Each step prints one JSON line with what it expected and what it got; the command exits 0
//! when every step got what it expected, 1 otherwise.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use orbi_archivist::{Advertisement, Policy, PreparedRequest, match_request};
use orbi_inac::{
    Descriptor, Durability, Frame, KindRegistry, NodeState, Receiver, ReceiverConfig, Store,
    quic::{Client, PeerAddr, Server, TransportConfig},
};
use orbi_pod::{
    HostPolicy, PodEngine, Session as PodSession, SqliteStore, StoreLimits, Verdict,
    compose::{self, AttachmentDraft, BindDraft, DetachmentDraft, RecoveryDraft},
};
use orbi_schema::{Profile, validate};
use orbi_types::{
    ArchivalStorageRequest, Artifact, KeyPair, Sha256Digest, Timestamp,
    inac::Operation,
    pod::{DetachReason, ProfileType, RecoveryMode, SessionState},
};
use serde_json::{Value, json};

use crate::{CliError, Outcome};

/// Arguments of `orbi demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Work in this directory (created if needed, kept afterwards) instead of a scratch one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the scratch directory afterwards.
    #[arg(long)]
    keep: bool,
}

/// The artifact kind the demo's serving node keeps.
const NOTE_SCHEMA: &str = "orbi.demo-note.v1";
/// Size of the streamed artifact.
const STREAM_BYTES: usize = 8 * 1024 * 1024;

/// Runs `orbi demo`.
pub fn run(args: Args) -> Result<Outcome, CliError> {
    let (dir, scratch) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (scratch_dir(), !args.keep),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|err| CliError::new(format!("cannot create {}: {err}", dir.display())))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::new(format!("cannot start the runtime: {err}")))?;
    let mut report = Report::default();
    let result = runtime.block_on(demo(&dir, &mut report));
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    report.line(json!({
        "demo": "done",
        "directory": if scratch { Value::Null } else { json!(dir.display().to_string()) },
        "steps": report.steps,
        "unexpected": report.unexpected,
    }));
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

/// Prints one JSON line per step and counts the unexpected ones.
#[derive(Default)]
struct Report {
    steps: usize,
    unexpected: usize,
    /// Every artifact the demo built, by schema name, for the final schema step.
    artifacts: Vec<(&'static str, Value)>,
}

impl Report {
    fn line(&self, value: Value) {
        println!("{value}");
    }

    /// Records a step: `expected` and `got` are compared as text.
    fn step(&mut self, name: &str, expected: impl ToString, got: impl ToString, detail: Value) {
        let (expected, got) = (expected.to_string(), got.to_string());
        self.steps += 1;
        let ok = expected == got;
        if !ok {
            self.unexpected += 1;
        }
        self.line(
            json!({"step": name, "ok": ok, "expected": expected, "got": got, "detail": detail}),
        );
    }
}

fn cli<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> CliError + '_ {
    move |err| CliError::new(format!("{context}: {err}"))
}

async fn demo(dir: &Path, report: &mut Report) -> Result<(), CliError> {
    // 1. Identities from fixed seeds: K1 serves, K2 is the participant, K3 the client's node.
    let serving = KeyPair::from_seed(&[0x29; 32]);
    let participant = KeyPair::from_seed(&[0x2a; 32]);
    let client_node = KeyPair::from_seed(&[0x2b; 32]);
    report.step(
        "identities",
        "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE",
        serving.node_id(),
        json!({"participant/id": participant.participant_id(), "client-node/id": client_node.node_id()}),
    );

    // 2. The serving node listens; the client node dials it by node id.
    let NodeState { store, ledger } =
        NodeState::open(&dir.join("inac"), Durability::Full).map_err(cli("inac data dir"))?;
    let probe = store.clone();
    let mut policy = ReceiverConfig::default();
    policy.allowed_peers.insert(client_node.node_id());
    let kinds = KindRegistry::builder()
        .keep(NOTE_SCHEMA, None)
        .build()
        .map_err(cli("kinds"))?;
    let receiver = Receiver::new(serving.clone(), policy, kinds, store, ledger);
    let server = Server::bind(
        "127.0.0.1:0".parse().map_err(cli("address"))?,
        serving.clone(),
        receiver,
        TransportConfig::default(),
    )
    .map_err(cli("listen"))?;
    let peer = PeerAddr::new(serving.node_id(), server.local_addr());
    let client = Client::for_peer(&peer, client_node.clone(), TransportConfig::default())
        .map_err(cli("client"))?;
    let session = client.connect(&peer).await.map_err(cli("connect"))?;
    let session_id = session.id().to_string();
    report.step(
        "session",
        serving.node_id(),
        session.peer(),
        json!({"address": peer.to_string(), "session/id": session_id}),
    );

    let pod_result = pod(
        dir,
        report,
        &serving,
        &participant,
        &client_node,
        &session_id,
    );
    let inac_result = inac(report, &session, &probe).await;
    client.close().await;
    server.shutdown().await;
    pod_result?;
    inac_result?;
    archivist(report)?;
    schemas(report);
    Ok(())
}

fn now() -> Result<Timestamp, CliError> {
    Timestamp::from_instant(time::OffsetDateTime::now_utc())
        .ok_or_else(|| CliError::new("the clock is out of range"))
}

/// 3. The pod lifecycle over the live session.
fn pod(
    dir: &Path,
    report: &mut Report,
    serving: &KeyPair,
    participant: &KeyPair,
    client_node: &KeyPair,
    session_id: &str,
) -> Result<(), CliError> {
    let store = SqliteStore::open(
        &dir.join("pod.sqlite"),
        &serving.node_id(),
        StoreLimits::default(),
        orbi_pod::Durability::Full,
    )
    .map_err(cli("pod read model"))?;
    let mut engine =
        PodEngine::new(serving.clone(), HostPolicy::default(), store).map_err(cli("pod engine"))?;
    let at = now()?;
    let instant = at.instant();
    engine.open_session(
        session_id,
        PodSession {
            established_at: Some(instant),
            peer: Some(client_node.node_id()),
        },
    );
    let bind = compose::sign_bind(
        participant,
        &BindDraft {
            bind_id: "pb:demo-1".into(),
            bound_at: at.clone(),
            via: serving.node_id(),
            session_id: session_id.into(),
            policy_annotations: None,
        },
    )
    .map_err(cli("bind"))?;
    report.artifacts.push(("participant-bind", bind.clone()));
    let attachment = |id: &str| {
        compose::attachment(
            &AttachmentDraft {
                attachment_id: id.into(),
                attached_at: at.clone(),
                profile: ProfileType::PodClient,
                serving_node: serving.node_id(),
                pod_user: None,
                client_instance_id: "client:demo-phone".into(),
                models_local: Some(false),
                state: SessionState::Attached,
                export_capable: true,
                migration_allowed: true,
            },
            bind.clone(),
        )
    };
    let mut admit =
        |report: &mut Report, name: &str, artifact: &Value, session: &str, expected: &str| {
            let bytes = serde_json::to_vec(artifact).unwrap_or_default();
            let got = match engine.admit(&bytes, session, instant) {
                Ok(admission) => match &admission.verdict {
                    Verdict::Admitted => format!(
                        "admitted {}",
                        admission
                            .state
                            .map(|state| state.to_string())
                            .unwrap_or_default()
                    ),
                    Verdict::Replayed => "replayed".into(),
                    Verdict::Rejected(rejection) => rejection.code.to_string(),
                },
                Err(err) => format!("error: {err}"),
            };
            report.step(name, expected, got, json!({"session/id": session}));
        };

    let first = attachment("attach:demo-1");
    report
        .artifacts
        .push(("client-instance-attachment", first.clone()));
    admit(
        report,
        "pod attach",
        &first,
        session_id,
        "admitted attached",
    );
    admit(report, "pod replay", &first, session_id, "replayed");
    admit(
        report,
        "pod other session",
        &first,
        "sess:somewhere-else",
        "E_POD_SESSION_MISMATCH",
    );

    let detachment = compose::detachment(
        &DetachmentDraft {
            detachment_id: "detach:demo-1".into(),
            detached_at: at.clone(),
            attachment_id: "attach:demo-1".into(),
            serving_node: serving.node_id(),
            client_instance_id: "client:demo-phone".into(),
            reason: DetachReason::UserRequest,
            notes: None,
        },
        bind.clone(),
    );
    report
        .artifacts
        .push(("client-instance-detachment", detachment.clone()));
    admit(
        report,
        "pod detach",
        &detachment,
        session_id,
        "admitted detached",
    );

    let recovery = compose::recovery(
        &RecoveryDraft {
            recovery_id: "recover:demo-1".into(),
            recovered_at: at.clone(),
            serving_node: serving.node_id(),
            client_instance_id: "client:demo-phone".into(),
            mode: RecoveryMode::ReattachExistingDevice,
            from_detachment_id: "detach:demo-1".into(),
            token_ref: None,
        },
        bind.clone(),
    );
    report
        .artifacts
        .push(("client-instance-recovery", recovery.clone()));
    admit(
        report,
        "pod recover",
        &recovery,
        session_id,
        "admitted recovery-granted",
    );
    admit(
        report,
        "pod re-attach",
        &attachment("attach:demo-2"),
        session_id,
        "admitted attached",
    );
    Ok(())
}

/// 4. Artifact exchange over the live session.
async fn inac(
    report: &mut Report,
    session: &orbi_inac::quic::Session,
    store: &orbi_inac::HybridStore,
) -> Result<(), CliError> {
    let note = br#"{"schema":"orbi.demo-note.v1","text":"hello from the client node"}"#;
    let descriptor = Descriptor::of_bytes(NOTE_SCHEMA, "application/json", note);
    let push = Frame::push_inline(&descriptor, note)
        .correlation_id("demo:inline")
        .idempotency_key("demo:inline")
        .build()
        .map_err(cli("frame"))?;
    report.artifacts.push(("inac-control", push.to_value()));
    let exchange = async |report: &mut Report, name: &str, frame: &Frame, expected: &str| {
        let got = match session.exchange(frame).await {
            Ok(answer) => match answer.response().and_then(|r| r.refusal_code) {
                Some(code) if answer.operation() != Operation::AlreadyPresent => {
                    format!("{} {code}", answer.operation())
                }
                _ => answer.operation().to_string(),
            },
            Err(err) => format!("error: {err}"),
        };
        report.step(name, expected, got, json!({"digest": frame_digest(frame)}));
    };
    exchange(report, "inac inline push", &push, "ingested").await;
    let again = Frame::push_inline(&descriptor, note)
        .correlation_id("demo:again")
        .build()
        .map_err(cli("frame"))?;
    exchange(report, "inac same bytes again", &again, "already-present").await;

    let unknown = Descriptor::of_bytes("vendor.unknown.v1", "application/json", b"{}");
    let unknown_push = Frame::push_inline(&unknown, b"{}")
        .build()
        .map_err(cli("frame"))?;
    exchange(
        report,
        "inac unknown kind",
        &unknown_push,
        "refused kind-not-supported",
    )
    .await;

    let mut forged = Descriptor::of_bytes(NOTE_SCHEMA, "application/json", b"[]");
    forged.digest = Sha256Digest::of(b"{}");
    let forged_push = Frame::push_inline(&forged, b"[]")
        .build()
        .map_err(cli("frame"))?;
    exchange(
        report,
        "inac wrong digest",
        &forged_push,
        "refused digest-mismatch",
    )
    .await;

    // A streamed body: the header is judged first, then 8 MiB are hashed into the store.
    let body: Vec<u8> = (0..STREAM_BYTES).map(|i| (i % 251) as u8).collect();
    let streamed = Descriptor::of_bytes(NOTE_SCHEMA, "application/octet-stream", &body);
    let answer = session
        .push_stream(
            &streamed,
            |builder| builder.correlation_id("demo:stream"),
            &body[..],
            &mut |_| {},
        )
        .await;
    let held = store.contains(&streamed.digest).unwrap_or(false);
    let got = match answer {
        Ok(answer) => format!("{} held={held}", answer.operation()),
        Err(err) => format!("error: {err}"),
    };
    report.step(
        "inac stream push",
        "ingested held=true",
        got,
        json!({"bytes": STREAM_BYTES, "digest": streamed.digest}),
    );
    Ok(())
}

fn frame_digest(frame: &Frame) -> Value {
    frame
        .to_value()
        .pointer("/artifact/digest")
        .cloned()
        .unwrap_or(Value::Null)
}

/// 5. Matching a storage request against two advertisements.
fn archivist(report: &mut Report) -> Result<(), CliError> {
    let advertisement = |required: bool| {
        let mut ad = json!({
            "schema/v": 1, "advertisement/id": format!("archivist-advertisement:demo-{required}"),
            "created-at": "2026-03-22T22:22:33Z", "archivist/node-id": format!("node:demo-archivist-{required}"),
            "accepted/scopes": ["private-retained", "federation-vault"],
            "accepted/artifact-types": ["transcript-bundle", "knowledge-artifact", "corpus-entry"],
            "retrieval/mode": "federation-discovery",
            "retention/default-max-duration-sec": 7776000,
            "retention/default-max-idle-ttl-sec": 2592000,
            "replication/max-copies": 3,
            "publication/timing-profiles": ["delayed-bundle", "curator-gated"],
            "settlement/required": required,
        });
        if required {
            ad["settlement/rail-hints"] = json!(["external-invoice", "host-ledger"]);
        }
        ad
    };
    let request = json!({
        "schema/v": 1, "request/id": "storage-request:demo-1", "requested-at": "2026-03-23T08:00:00Z",
        "requester/node-id": "node:demo-preserver", "package/id": "archival-package:demo-1",
        "publication/scope": "federation-vault", "artifact/type": "transcript-bundle",
        "publication/timing-profile": "curator-gated",
        "retention/max-duration-sec": 7776000, "retention/max-idle-ttl-sec": 2592000,
        "settlement/can-settle": true, "settlement/acceptable-rails": ["host-ledger"]
    });
    report
        .artifacts
        .push(("archival-storage-request", request.clone()));
    let typed = ArchivalStorageRequest::from_value(&request).map_err(cli("storage request"))?;
    let prepared = PreparedRequest::new(&typed);
    let at = Timestamp::parse("2026-03-23T08:00:00Z").map_err(cli("timestamp"))?;
    for (required, expected) in [
        (true, "negotiation-required [host-ledger]"),
        (false, "accepted []"),
    ] {
        let ad_value = advertisement(required);
        report
            .artifacts
            .push(("archivist-advertisement", ad_value.clone()));
        let ad = Advertisement::admit(&ad_value).map_err(cli("advertisement"))?;
        let matched = match_request(&prepared, &[ad], &Policy::default(), &at);
        let got = matched
            .ranked
            .first()
            .map(|ranked| {
                let decision = &ranked.decision;
                let rails = if decision.is_candidate() && required {
                    decision.terms.candidate_rails.join(",")
                } else {
                    String::new()
                };
                format!("{} [{rails}]", decision.status())
            })
            .unwrap_or_else(|| "no decision".into());
        report.step(
            if required {
                "archivist settlement required"
            } else {
                "archivist free storage"
            },
            expected,
            got,
            json!({"advertisement/id": ad_value["advertisement/id"]}),
        );
    }
    Ok(())
}

/// 6. Every artifact built above conforms to its canonical contract.
fn schemas(report: &mut Report) {
    let artifacts = std::mem::take(&mut report.artifacts);
    let mut invalid = Vec::new();
    for (schema, artifact) in &artifacts {
        let bytes = serde_json::to_vec(artifact).unwrap_or_default();
        if let Err(problem) = validate::validate_bytes(schema, &bytes, Profile::Seed) {
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
