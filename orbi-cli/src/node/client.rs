//! Client commands against a running node: `orbi pod attach|detach` (the pod protocol) and
//! `orbi archivist submit|discover` (INAC).
//!
//! Each dials the node with raw-public-key mutual TLS, so the node learns this side's node id
//! from the handshake and both ends derive the same session id. Pod artifacts are built and
//! signed here around that session id, then sent as bytes; what was sent can be saved
//! (`--save`) and sent again byte for byte (`--replay`).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use orbi_archivist::{Advertisement, Policy, PreparedRequest, match_request};
use orbi_inac::{
    Descriptor, Frame,
    quic::{Client, InlineOutcome, PeerAddr, Session, TransportConfig},
};
use orbi_pod::{
    compose::{self, AttachmentDraft, BindDraft, DetachmentDraft},
    policy::MAX_ARTIFACT_BYTES,
};
use orbi_types::{
    ArchivalStorageDecision, ArchivalStorageRequest, Artifact, KeyPair, NodeId, PodUserId,
    Timestamp,
    inac::Operation,
    pod::{DetachReason, ProfileType, SessionState},
};
use serde_json::{Value, json};

use super::{
    archivist_role::{
        ADVERTISEMENT_SCHEMA, DECISION_SCHEMA, JSON, MAX_REQUEST_BYTES, REQUEST_SCHEMA, decision_id,
    },
    pod_service::{self, POD_ALPN},
};
use crate::{
    CliError, Outcome,
    files::{Existing, read_file, write_atomically_as},
    inac::closing,
    keys::read_key,
    pod::{fresh_id, print_json},
};

/// Who speaks and to which node.
#[derive(clap::Args)]
pub struct Dial {
    /// The participant's key file; it is also this side's node key unless --node-key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// This side's node key, when it differs from the participant's.
    #[arg(long, value_name = "FILE")]
    node_key: Option<PathBuf>,
    /// The serving node.
    #[arg(long, value_name = "NODE_ID@HOST:PORT")]
    to: PeerAddr,
}

/// Arguments of `orbi pod attach`.
#[derive(clap::Args)]
pub struct AttachArgs {
    #[command(flatten)]
    dial: Dial,
    /// `client-instance/id`.
    #[arg(long, value_name = "ID")]
    client: String,
    /// `attachment/id` (default `attach:` + ULID).
    #[arg(long, value_name = "ID")]
    attachment_id: Option<String>,
    /// `profile/type`: pod-client or hybrid.
    #[arg(long, default_value = "pod-client")]
    profile: ProfileType,
    /// `pod-user/id`.
    #[arg(long, value_name = "ID")]
    pod_user: Option<PodUserId>,
    /// `export/capable?`: must equal what the node offers the profile.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    export_capable: bool,
    /// `migration/allowed?`: must equal what the node offers the profile.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    migration_allowed: bool,
    /// Write the attachment that was sent to this file; an existing file is kept unless
    /// --force.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Replace a file already at --save.
    #[arg(long, requires = "save")]
    force: bool,
    /// Keep the session open until SIGINT or SIGTERM, then exit 0; exit 2 if the node ends it
    /// first. The attachment stays attached meanwhile; once the session ends it degrades, and
    /// the node detaches it when its degraded grace (90 s by default) has passed.
    #[arg(long)]
    hold: bool,
}

/// Arguments of `orbi pod detach`.
#[derive(clap::Args)]
pub struct DetachArgs {
    #[command(flatten)]
    dial: Dial,
    /// `client-instance/id`.
    #[arg(long, value_name = "ID", required_unless_present = "replay")]
    client: Option<String>,
    /// The attachment being ended.
    #[arg(long, value_name = "ID", required_unless_present = "replay")]
    attachment: Option<String>,
    /// `detach/reason`: user-request, device-loss, session-expired, policy, migration or
    /// operator-action.
    #[arg(long, default_value = "user-request")]
    reason: DetachReason,
    /// `detachment/id` (default `detach:` + ULID).
    #[arg(long, value_name = "ID")]
    detachment_id: Option<String>,
    /// `detach/notes`.
    #[arg(long, value_name = "TEXT")]
    notes: Option<String>,
    /// Send this file's bytes as they are instead of building a detachment (a replay).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["client", "attachment"])]
    replay: Option<PathBuf>,
    /// Write the detachment that was sent to this file; an existing file is kept unless
    /// --force.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Replace a file already at --save.
    #[arg(long, requires = "save")]
    force: bool,
}

/// Arguments of `orbi archivist submit`.
#[derive(clap::Args)]
pub struct SubmitArgs {
    /// This node's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The archivist node.
    #[arg(long, value_name = "NODE_ID@HOST:PORT")]
    to: PeerAddr,
    /// The archival-storage-request.v1 file, sent byte for byte.
    #[arg(value_name = "REQUEST.json")]
    request: PathBuf,
}

/// Arguments of `orbi archivist discover`.
#[derive(clap::Args)]
pub struct DiscoverArgs {
    /// This node's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Archivist nodes to ask (repeatable).
    #[arg(long = "to", value_name = "NODE_ID@HOST:PORT", required = true)]
    to: Vec<PeerAddr>,
    /// Rank the advertisements for this storage request (default: list them as fetched).
    #[arg(long, value_name = "REQUEST.json")]
    request: Option<PathBuf>,
}

/// `--save`: the exact bytes sent, written atomically (a replay must never send half a file).
fn save(path: Option<&Path>, bytes: &[u8], existing: Existing) -> Result<(), CliError> {
    if let Some(path) = path {
        write_atomically_as(path, bytes, existing)
            .map_err(|err| CliError::new(format!("cannot write {}: {err}", path.display())))?;
    }
    Ok(())
}

/// Dials `to` with the pod ALPN as `node`.
pub async fn connect_pod(node: KeyPair, to: &PeerAddr) -> Result<(Client, Session), CliError> {
    let client = Client::for_peer(to, node, TransportConfig::default())
        .map_err(|err| CliError::new(err.to_string()))?;
    let session = client
        .connect_protocol(to, POD_ALPN)
        .await
        .map_err(|err| CliError::new(format!("cannot reach {}: {err}", to.node)))?;
    Ok((client, session))
}

/// Dials `to` with the pod ALPN; returns the participant key and the session.
async fn pod_session(dial: &Dial) -> Result<(KeyPair, Client, Session), CliError> {
    let participant = read_key(&dial.key)?;
    let node = match &dial.node_key {
        Some(path) => read_key(path)?,
        None => participant.clone(),
    };
    let (client, session) = connect_pod(node, &dial.to).await?;
    Ok((participant, client, session))
}

/// A participant bind on `session`, through the node at its other end.
fn bind(participant: &KeyPair, session: &Session) -> Result<Value, CliError> {
    compose::sign_bind(
        participant,
        &BindDraft {
            bind_id: fresh_id("pb"),
            bound_at: crate::pod::now_timestamp()?,
            via: session.peer().clone(),
            session_id: session.id().as_str().to_owned(),
            policy_annotations: None,
        },
    )
    .map_err(|err| CliError::new(err.to_string()))
}

/// What an attachment says besides its bind.
pub struct AttachSpec {
    /// `client-instance/id`.
    pub client: String,
    /// `attachment/id`.
    pub attachment_id: String,
    /// `profile/type`.
    pub profile: ProfileType,
    /// `pod-user/id`.
    pub pod_user: Option<PodUserId>,
    /// `export/capable?`.
    pub export_capable: bool,
    /// `migration/allowed?`.
    pub migration_allowed: bool,
}

/// The bytes of an attachment signed by `participant` for `session`.
pub fn attachment_bytes(
    participant: &KeyPair,
    session: &Session,
    spec: AttachSpec,
) -> Result<Vec<u8>, CliError> {
    let attachment = compose::attachment(
        &AttachmentDraft {
            attachment_id: spec.attachment_id,
            attached_at: crate::pod::now_timestamp()?,
            profile: spec.profile,
            serving_node: session.peer().clone(),
            pod_user: spec.pod_user,
            client_instance_id: spec.client,
            models_local: None,
            state: SessionState::Attached,
            export_capable: spec.export_capable,
            migration_allowed: spec.migration_allowed,
        },
        bind(participant, session)?,
    );
    built_bytes(orbi_pod::ArtifactKind::Attachment, &attachment)
}

/// The bytes of a built artifact, once it passes what the node checks first (egress gate).
fn built_bytes(kind: orbi_pod::ArtifactKind, value: &Value) -> Result<Vec<u8>, CliError> {
    // Frozen: what a node accepts whichever shape profile it runs.
    compose::check_egress(kind, orbi_schema::Profile::Frozen, value)
        .map_err(|err| CliError::new(err.to_string()))?;
    Ok(value.to_string().into_bytes())
}

/// What a detachment says besides its bind.
pub struct DetachSpec {
    /// `client-instance/id`.
    pub client: String,
    /// `attachment/id` being ended.
    pub attachment_id: String,
    /// `detachment/id`.
    pub detachment_id: String,
    /// `detach/reason`.
    pub reason: DetachReason,
    /// `detach/notes`.
    pub notes: Option<String>,
}

/// The bytes of a detachment signed by `participant` for `session`.
pub fn detachment_bytes(
    participant: &KeyPair,
    session: &Session,
    spec: DetachSpec,
) -> Result<Vec<u8>, CliError> {
    let detachment = compose::detachment(
        &DetachmentDraft {
            detachment_id: spec.detachment_id,
            detached_at: crate::pod::now_timestamp()?,
            attachment_id: spec.attachment_id,
            serving_node: session.peer().clone(),
            client_instance_id: spec.client,
            reason: spec.reason,
            notes: spec.notes,
        },
        bind(participant, session)?,
    );
    built_bytes(orbi_pod::ArtifactKind::Detachment, &detachment)
}

/// Prints the node's answer and maps its outcome to the exit code.
/// Prints the node's answer: exit 0 admitted or replayed, 1 rejected, 2 when the node could
/// not judge the artifact at all.
fn report(session: &Session, mut answer: Value) -> Result<Outcome, CliError> {
    let outcome = match answer["outcome"].as_str() {
        Some("admitted" | "replayed") => Ok(Outcome::Success),
        Some("rejected") => Ok(Outcome::Refused),
        _ => Err(CliError::new(format!(
            "{} could not judge the artifact: {}",
            session.peer(),
            answer["message"].as_str().unwrap_or("no reason given")
        ))),
    };
    answer["session/id"] = json!(session.id().as_str());
    print_json(&answer);
    outcome
}

/// `orbi pod attach`.
pub fn attach(args: AttachArgs) -> Result<Outcome, CliError> {
    if let Some(path) = &args.save {
        crate::files::check_output("--save", path, Existing::replaced_if(args.force))?;
    }
    crate::inac::runtime()?.block_on(async move {
        let (participant, client, session) = pod_session(&args.dial).await?;
        closing(&client, async {
            let bytes = attachment_bytes(
                &participant,
                &session,
                AttachSpec {
                    client: args.client,
                    attachment_id: args.attachment_id.unwrap_or_else(|| fresh_id("attach")),
                    profile: args.profile,
                    pod_user: args.pod_user,
                    export_capable: args.export_capable,
                    migration_allowed: args.migration_allowed,
                },
            )?;
            save(
                args.save.as_deref(),
                &bytes,
                Existing::replaced_if(args.force),
            )?;
            let answer = pod_service::submit(&session, &bytes).await?;
            // Caught before the answer is printed: a script may signal on reading it.
            let stop = args.hold.then(crate::inac::StopSignals::catch);
            let outcome = report(&session, answer)?;
            if let Some(stop) = stop
                && outcome == Outcome::Success
            {
                // Held until the operator stops it, unless the node ends the session first:
                // then the attachment degrades there, and the operator must know.
                let connection = session.connection().clone();
                tokio::select! {
                    () = stop.wait() => {}
                    closed = connection.closed() => {
                        return Err(CliError::new(format!(
                            "{} ended the session: {closed}",
                            session.peer()
                        )));
                    }
                }
            }
            Ok(outcome)
        })
        .await
    })
}

/// `orbi pod detach`.
pub fn detach(args: DetachArgs) -> Result<Outcome, CliError> {
    if let Some(path) = &args.save {
        crate::files::check_output("--save", path, Existing::replaced_if(args.force))?;
    }
    crate::inac::runtime()?.block_on(async move {
        let replayed = match &args.replay {
            Some(path) => Some(read_file(path, MAX_ARTIFACT_BYTES as u64)?),
            None => None,
        };
        let (participant, client, session) = pod_session(&args.dial).await?;
        closing(&client, async {
            let bytes = match replayed {
                Some(bytes) => bytes,
                None => detachment_bytes(
                    &participant,
                    &session,
                    DetachSpec {
                        client: args.client.unwrap_or_default(),
                        attachment_id: args.attachment.unwrap_or_default(),
                        detachment_id: args.detachment_id.unwrap_or_else(|| fresh_id("detach")),
                        reason: args.reason,
                        notes: args.notes,
                    },
                )?,
            };
            save(
                args.save.as_deref(),
                &bytes,
                Existing::replaced_if(args.force),
            )?;
            let answer = pod_service::submit(&session, &bytes).await?;
            report(&session, answer)
        })
        .await
    })
}

/// Dials `to` with INAC as the node whose key file is `key`.
pub async fn inac_session(key: &Path, to: &PeerAddr) -> Result<(Client, Session), CliError> {
    connect_inac(read_key(key)?, to).await
}

/// Dials `to` with INAC as `node`.
pub async fn connect_inac(node: KeyPair, to: &PeerAddr) -> Result<(Client, Session), CliError> {
    let client = Client::for_peer(to, node, TransportConfig::default())
        .map_err(|err| CliError::new(err.to_string()))?;
    let session = client
        .connect(to)
        .await
        .map_err(|err| CliError::new(format!("cannot reach {}: {err}", to.node)))?;
    Ok((client, session))
}

/// The answer frame as printable JSON: operation, refusal code and message.
pub fn answer_json(answer: &Frame) -> Value {
    let value = answer.to_value();
    json!({
        "operation": answer.operation().as_str(),
        "refusal/code": value.pointer("/response/refusal~1code").cloned().unwrap_or(Value::Null),
        "message": value.pointer("/response/message").cloned().unwrap_or(Value::Null),
    })
}

/// Requests one published artifact (no id: the node's well-known one of `schema`); returns its exact bytes, or the answer that refused it.
pub async fn fetch(
    session: &Session,
    schema: &str,
    artifact_id: Option<&str>,
) -> Result<Result<Vec<u8>, Value>, CliError> {
    let mut request = Frame::request_for(schema, JSON);
    if let Some(id) = artifact_id {
        request = request.artifact_id(id);
    }
    let request = request
        .correlation_id(&fresh_id("c"))
        .build()
        .map_err(|err| CliError::new(err.to_string()))?;
    let outcome = session
        .request_inline(&request)
        .await
        .map_err(|err| CliError::new(format!("request to {}: {err}", session.peer())))?;
    match outcome {
        InlineOutcome::Answered(answer) => Ok(Err(answer_json(&answer))),
        InlineOutcome::Received { bytes, .. } => Ok(Ok(bytes)),
        InlineOutcome::Refused { refusal, .. } => Err(CliError::new(format!(
            "{} served something other than what was asked for ({}): {}",
            session.peer(),
            refusal.code().as_str(),
            refusal.message()
        ))),
    }
}

/// `orbi archivist submit`.
pub fn submit(args: SubmitArgs) -> Result<Outcome, CliError> {
    let bytes = read_file(&args.request, MAX_REQUEST_BYTES)?;
    // Judge locally what the archivist would refuse as malformed, with the field named.
    if let Err(err) = orbi_archivist::parse_request(&bytes) {
        print_json(&json!({
            "invalid": format!("{}: {err}", args.request.display()),
        }));
        return Ok(Outcome::Refused);
    }
    crate::inac::runtime()?.block_on(async move {
        let (client, session) = inac_session(&args.key, &args.to).await?;
        let submitted = closing(&client, submit_request(&session, &bytes)).await?;
        print_json(&submitted.report);
        if let Some(lost) = submitted.decision_lost {
            return Err(CliError::new(format!(
                "the push was answered, but its decision is unknown: {lost}"
            )));
        }
        Ok(if submitted.accepted {
            Outcome::Success
        } else {
            Outcome::Refused
        })
    })
}

/// Pushes a storage request's exact bytes to the archivist at the other end of `session` and
/// fetches the decision it recorded: whether it was accepted, and the answer with the
/// decision (or a transport failure that left the decision unknown).
pub async fn submit_request(session: &Session, bytes: &[u8]) -> Result<Submitted, CliError> {
    let descriptor = Descriptor::of_bytes(REQUEST_SCHEMA, JSON, bytes);
    let push = Frame::push_inline(&descriptor, bytes)
        .correlation_id(&fresh_id("c"))
        .idempotency_key(descriptor.digest.as_str())
        .build()
        .map_err(|err| CliError::new(err.to_string()))?;
    let answer = session
        .exchange(&push)
        .await
        .map_err(|err| CliError::new(format!("push to {}: {err}", session.peer())))?;
    let mut out = answer_json(&answer);
    let answer_operation = answer.operation();
    let stored = answer.is_delivered();
    let decision_id = decision_id(&descriptor.digest);
    out["decision/id"] = json!(decision_id);
    // The decision is recorded whatever it says; fetch it to show its reasons. A refused push
    // is refused whatever the fetch gives. A stored one is accepted only by its decision: a
    // fetch that fails, or serves something else, leaves the outcome unknown (exit 2).
    let unknown = |out: Value, lost: CliError| {
        if stored {
            Submitted::unknown(out, lost)
        } else {
            let mut report = out;
            report["decision/unavailable"] = json!(lost.to_string());
            Submitted {
                accepted: false,
                report,
                decision_lost: None,
            }
        }
    };
    match fetch(session, DECISION_SCHEMA, Some(&decision_id)).await {
        Ok(Ok(decision)) => {
            // Read like every artifact from a peer: strict JSON (no duplicate member to pick
            // the status), the contract, the typed parse.
            let decision = match orbi_schema::validate::<ArchivalStorageDecision>(
                &decision,
                orbi_schema::Profile::Seed,
            ) {
                Ok(decision) => decision.to_value(),
                Err(report) => {
                    let lost = CliError::new(format!(
                        "{} served a decision that does not fit its contract: {report}",
                        session.peer()
                    ));
                    return Ok(unknown(out, lost));
                }
            };
            // The decision must be about this request, not merely stored under its id.
            let asked: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            if decision["request/id"] != asked["request/id"] {
                let lost = CliError::new(format!(
                    "{} served a decision about request {} instead of {}",
                    session.peer(),
                    decision["request/id"],
                    asked["request/id"]
                ));
                return Ok(unknown(out, lost));
            }
            out["decision"] = decision;
        }
        // Bytes stored for this push have a decision the archivist must show. Bytes it held
        // already may be another requester's, whose decision stays private: declined, that is
        // no acceptance for this one.
        Ok(Err(answer)) if answer_operation == Operation::Ingested => {
            let lost = CliError::new(format!(
                "{} did not serve the decision: {}",
                session.peer(),
                answer["operation"].as_str().unwrap_or("no answer")
            ));
            let mut out = unknown(out, lost);
            out.report["decision/unavailable"] = answer;
            return Ok(out);
        }
        Ok(Err(answer)) => out["decision/unavailable"] = answer,
        // The transport failed or the node served something else.
        Err(lost) => return Ok(unknown(out, lost)),
    }
    // Accepted means this node's own decision says so: bytes the store already held (pushed
    // by another requester) are not an acceptance for this one.
    let accepted = stored && out["decision"]["status"] == "accepted";
    Ok(Submitted {
        accepted,
        report: out,
        decision_lost: None,
    })
}

/// What [`submit_request`] learned.
pub struct Submitted {
    /// The archivist's own decision accepts the request.
    pub accepted: bool,
    /// The push's answer and the decision (or why it is unavailable), as printed.
    pub report: Value,
    /// The decision could not be fetched because the transport failed after the push was
    /// answered: the outcome is unknown.
    pub decision_lost: Option<CliError>,
}

impl Submitted {
    /// The push was answered (`report`), but its decision could not be had (`lost`).
    fn unknown(mut report: Value, lost: CliError) -> Self {
        report["decision/unavailable"] = json!(lost.to_string());
        Submitted {
            accepted: false,
            report,
            decision_lost: Some(lost),
        }
    }
}

/// The advertisement `server` answered with, if valid and its own: the session proved who
/// answered, and an advertisement for another archivist could supersede that archivist's own
/// (stage 0b keeps the newest per `archivist/node-id`) or rank it under terms it never set.
fn served_advertisement(server: &NodeId, bytes: &[u8]) -> Result<Advertisement, String> {
    let ad = Advertisement::admit_slice(bytes).map_err(|err| err.to_string())?;
    if ad.archivist() != server.as_str() {
        return Err(format!(
            "the advertisement names archivist {}, not the node that served it",
            ad.archivist().chars().take(128).collect::<String>()
        ));
    }
    Ok(ad)
}

/// How many archivists `discover` dials at once.
const DISCOVER_DIALS_AT_ONCE: usize = 16;

/// `orbi archivist discover`.
pub fn discover(args: DiscoverArgs) -> Result<Outcome, CliError> {
    let request = match &args.request {
        Some(path) => Some(
            orbi_archivist::parse_request(&read_file(path, MAX_REQUEST_BYTES)?)
                .map_err(|err| CliError::new(format!("{}: {err}", path.display())))?,
        ),
        None => None,
    };
    // Read once, before anything is dialled: a key that cannot be read is this command's
    // error (exit 2, the file named), not every archivist's failure.
    let key = read_key(&args.key)?;
    crate::inac::runtime()?.block_on(async move {
        // Every archivist is asked at once: one that does not answer costs its timeout once,
        // not once per archivist after it.
        // (A bounded number at a time: each dial is its own socket.)
        let places = Arc::new(tokio::sync::Semaphore::new(DISCOVER_DIALS_AT_ONCE));
        let mut asking = tokio::task::JoinSet::new();
        for (index, peer) in args.to.iter().cloned().enumerate() {
            let (key, places) = (key.clone(), places.clone());
            asking.spawn(async move {
                let _place = places.acquire_owned().await;
                let result = async {
                    let (client, session) = connect_inac(key, &peer).await?;
                    closing(&client, fetch(&session, ADVERTISEMENT_SCHEMA, None)).await
                };
                (index, result.await)
            });
        }
        let mut answers = asking.join_all().await;
        answers.sort_by_key(|(index, _)| *index);
        let mut fetched = Vec::new();
        let mut failures = Vec::new();
        for (peer, (_, result)) in args.to.iter().zip(answers) {
            match result {
                Ok(Ok(bytes)) => match served_advertisement(&peer.node, &bytes) {
                    Ok(ad) => fetched.push((peer.node.as_str().to_owned(), ad)),
                    Err(invalid) => {
                        failures.push(json!({"node/id": peer.node.as_str(), "invalid": invalid}))
                    }
                },
                Ok(Err(answer)) => {
                    failures.push(json!({"node/id": peer.node.as_str(), "answer": answer}))
                }
                Err(err) => {
                    failures.push(json!({"node/id": peer.node.as_str(), "error": err.to_string()}))
                }
            }
        }
        let advertisements: Vec<Value> = match &request {
            Some(request) => {
                let ads: Vec<Advertisement> = fetched.iter().map(|(_, ad)| ad.clone()).collect();
                ranked_view(request, &ads, &crate::pod::now_timestamp()?)
            }
            None => fetched
                .iter()
                .map(|(node, ad)| json!({"node/id": node, "advertisement": ad.typed()}))
                .collect(),
        };
        let unreachable = failures
            .iter()
            .any(|failure| failure.get("error").is_some());
        print_json(&json!({"advertisements": advertisements, "failures": failures}));
        if unreachable {
            return Err(CliError::new(
                "some archivists could not be asked (see failures)",
            ));
        }
        Ok(if failures.is_empty() {
            Outcome::Success
        } else {
            Outcome::Refused
        })
    })
}

/// `discover --request`: the ranked decisions, then the advertisements stage 0b left out (each
/// with its exclusion code), so none is dropped silently.
fn ranked_view(
    request: &ArchivalStorageRequest,
    ads: &[Advertisement],
    now: &Timestamp,
) -> Vec<Value> {
    let report = match_request(&PreparedRequest::new(request), ads, &Policy::default(), now);
    let ranked = report
        .ranked
        .iter()
        .filter_map(|ranked| Some((ranked, ads.get(ranked.index)?)))
        .enumerate()
        .map(|(rank, (ranked, ad))| {
            json!({
                "rank": rank + 1,
                "advertisement/id": ad.id(),
                "archivist/node-id": ad.archivist(),
                "status": ranked.decision.status().as_str(),
                "reason/codes": ranked.decision.reason_codes().iter().map(|code| code.as_str()).collect::<Vec<_>>(),
            })
        });
    let excluded = report.selection.excluded.iter().filter_map(|exclusion| {
        let ad = ads.get(exclusion.index)?;
        Some(json!({
            "advertisement/id": ad.id(),
            "archivist/node-id": ad.archivist(),
            "status": "excluded",
            "reason/codes": [exclusion.code.as_str()],
            "detail": exclusion.detail,
        }))
    });
    ranked.chain(excluded).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::archivist_role::default_advertisement;

    #[test]
    fn a_served_advertisement_must_name_the_node_that_served_it() {
        let (server, other) = (
            KeyPair::from_seed(&[1; 32]).node_id(),
            KeyPair::from_seed(&[2; 32]).node_id(),
        );
        let own = serde_json::to_vec(&default_advertisement(&server)).unwrap();
        assert_eq!(
            served_advertisement(&server, &own).unwrap().archivist(),
            server.as_str()
        );
        let foreign = serde_json::to_vec(&default_advertisement(&other)).unwrap();
        let refused = served_advertisement(&server, &foreign).unwrap_err();
        assert!(refused.contains("not the node that served it"), "{refused}");
        assert!(served_advertisement(&server, b"{}").is_err());
    }

    #[test]
    fn discover_lists_the_advertisements_stage_0b_leaves_out() {
        let node = KeyPair::from_seed(&[1; 32]).node_id();
        let mut older = default_advertisement(&node);
        older["advertisement/id"] = json!("archivist-advertisement:OLDER");
        older["created-at"] = json!("2026-01-01T00:00:00Z");
        let mut newer = older.clone();
        newer["advertisement/id"] = json!("archivist-advertisement:NEWER");
        newer["created-at"] = json!("2026-02-01T00:00:00Z");
        let ads: Vec<Advertisement> = [older, newer]
            .iter()
            .map(|value| Advertisement::admit(value).unwrap())
            .collect();
        let request = <ArchivalStorageRequest as orbi_types::Artifact>::from_value(&json!({
            "schema/v": 1, "request/id": "r:1", "requested-at": "2026-03-01T00:00:00Z",
            "requester/node-id": "node:me", "package/id": "archival-package:1",
            "publication/scope": "private-retained", "artifact/type": "transcript-bundle"
        }))
        .unwrap();
        let now = Timestamp::parse("2026-03-01T00:00:00Z").unwrap();
        let view = ranked_view(&request, &ads, &now);
        assert_eq!(view.len(), 2, "{view:?}");
        assert_eq!(view[0]["advertisement/id"], "archivist-advertisement:NEWER");
        assert_eq!(view[0]["status"], "accepted");
        assert_eq!(view[1]["advertisement/id"], "archivist-advertisement:OLDER");
        assert_eq!(view[1]["status"], "excluded");
        assert_eq!(view[1]["reason/codes"], json!(["advertisement-superseded"]));
    }
}
