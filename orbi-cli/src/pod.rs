//! `orbi pod`: build and sign pod artifacts, admit them into a node's read model, report its
//! status, and drive the host-originated transitions.
//!
//! Every command prints JSON on stdout. `admit` exits 0 when the artifact was admitted or
//! replayed, 1 when it was rejected (with the spec's code), 2 on a usage or I/O error.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use clap::Subcommand;
use orbi_pod::{
    ArtifactKind, Durability, EngineError, HostPolicy, PodEngine, RecoveryPolicy, Session,
    SqliteStore, Store, StoreLimits, Verdict,
    compose::{self, AttachmentDraft, BindDraft, DetachmentDraft, RecoveryDraft},
    policy::MAX_ARTIFACT_BYTES,
    store::{AttachmentRec, DetachmentRec, RecoveryRec},
};
use orbi_schema::Profile;
use orbi_types::{
    NodeId, ParticipantId, PodUserId, Timestamp, json,
    pod::{DetachReason, ProfileType, RecoveryMode, SessionState},
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{
    CliError, Outcome,
    keys::read_key,
    node::pod_service::{admission_json, transition_json},
};

/// Arguments of `orbi pod`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PodCommand,
}

#[derive(Subcommand)]
enum PodCommand {
    /// Sign a participant bind with a key file (spec pod §6.2) and print it.
    Bind {
        /// The participant's key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The serving node the participant speaks through (`via/node-id`).
        #[arg(long, value_name = "NODE_ID")]
        via: NodeId,
        /// The live node-to-node session (`session/id`).
        #[arg(long, value_name = "SESSION_ID")]
        session: String,
        /// `bind/id` (default `pb:` + ULID).
        #[arg(long, value_name = "ID")]
        bind_id: Option<String>,
        /// `bound-at` (default now, UTC).
        #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
        at: Option<Timestamp>,
    },
    /// Print a client-instance attachment around a signed bind.
    Attachment {
        /// The signed bind (embedded as is).
        #[arg(long, value_name = "FILE")]
        bind: PathBuf,
        /// The schema shape the artifact must fit before it is printed (egress gate): frozen
        /// (accepted by every node) or seed (for nodes running the open draft shapes).
        #[arg(long, value_name = "PROFILE", default_value_t = Profile::Frozen)]
        shape: Profile,
        /// `client-instance/id`.
        #[arg(long, value_name = "ID")]
        client: String,
        /// `serving-node/id` (default: the bind's `via/node-id`).
        #[arg(long, value_name = "NODE_ID")]
        node: Option<NodeId>,
        /// `attachment/id` (default `attach:` + ULID).
        #[arg(long, value_name = "ID")]
        attachment_id: Option<String>,
        /// `attached-at` (default now, UTC).
        #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
        at: Option<Timestamp>,
        /// `profile/type`: pod-client or hybrid.
        #[arg(long, default_value = "pod-client")]
        profile: ProfileType,
        /// `session/state`: attaching or attached.
        #[arg(long, default_value = "attached")]
        state: SessionState,
        /// `export/capable?`.
        #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
        export_capable: bool,
        /// `migration/allowed?`.
        #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
        migration_allowed: bool,
        /// `pod-user/id`.
        #[arg(long, value_name = "ID")]
        pod_user: Option<PodUserId>,
        /// `models/local?`.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        models_local: Option<bool>,
    },
    /// Print a client-instance detachment around a signed bind.
    Detachment {
        /// The signed bind (embedded as is).
        #[arg(long, value_name = "FILE")]
        bind: PathBuf,
        /// The schema shape the artifact must fit before it is printed (egress gate): frozen
        /// (accepted by every node) or seed (for nodes running the open draft shapes).
        #[arg(long, value_name = "PROFILE", default_value_t = Profile::Frozen)]
        shape: Profile,
        /// The attachment being ended.
        #[arg(long, value_name = "ID")]
        attachment_id: String,
        /// `client-instance/id`.
        #[arg(long, value_name = "ID")]
        client: String,
        /// `serving-node/id` (default: the bind's `via/node-id`).
        #[arg(long, value_name = "NODE_ID")]
        node: Option<NodeId>,
        /// `detach/reason`: user-request, device-loss, session-expired, policy, migration or
        /// operator-action.
        #[arg(long)]
        reason: DetachReason,
        /// `detachment/id` (default `detach:` + ULID).
        #[arg(long, value_name = "ID")]
        detachment_id: Option<String>,
        /// `detached-at` (default now, UTC).
        #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
        at: Option<Timestamp>,
        /// `detach/notes`.
        #[arg(long, value_name = "TEXT")]
        notes: Option<String>,
    },
    /// Print a client-instance recovery around a signed bind.
    Recovery {
        /// The signed bind (embedded as is).
        #[arg(long, value_name = "FILE")]
        bind: PathBuf,
        /// The schema shape the artifact must fit before it is printed (egress gate): frozen
        /// (accepted by every node) or seed (for nodes running the open draft shapes).
        #[arg(long, value_name = "PROFILE", default_value_t = Profile::Frozen)]
        shape: Profile,
        /// `client-instance/id` (the client being recovered or the replacing device).
        #[arg(long, value_name = "ID")]
        client: String,
        /// `serving-node/id` (default: the bind's `via/node-id`).
        #[arg(long, value_name = "NODE_ID")]
        node: Option<NodeId>,
        /// `recovery/mode`: reattach-existing-device, replace-device, migrate-to-new-host or
        /// resume-after-suspension.
        #[arg(long)]
        mode: RecoveryMode,
        /// `recovery/from-detachment-id`.
        #[arg(long, value_name = "ID")]
        from_detachment: String,
        /// `recovery/id` (default `recover:` + ULID).
        #[arg(long, value_name = "ID")]
        recovery_id: Option<String>,
        /// `recovered-at` (default now, UTC).
        #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
        at: Option<Timestamp>,
        /// `recovery/token-ref`.
        #[arg(long, value_name = "REF")]
        token_ref: Option<String>,
    },
    /// Attach a client instance to a running node: dial it with the pod protocol, sign a
    /// bind on that session, send the attachment and print the node's answer.
    ///
    /// Exit 0 admitted or replayed, 1 rejected, 2 usage, I/O or connection error.
    Attach(crate::node::client::AttachArgs),
    /// Detach a client instance from a running node (or replay a saved detachment) and print
    /// the node's answer.
    Detach(crate::node::client::DetachArgs),
    /// Judge one artifact arriving on a live session and commit it to the read model.
    ///
    /// Prints {"outcome": "admitted"|"replayed"|"rejected", "code"?, "check"?, "message"?,
    /// "state"?, "kind", "id", "warnings", "transitions", "timers"}. Timers due at --now run
    /// first (setup timeouts, degraded grace, grant expiry). Exit 0 admitted or replayed, 1
    /// rejected, 2 usage or I/O error.
    Admit {
        #[command(flatten)]
        node: NodeArgs,
        /// The session the artifact arrived on (considered live).
        #[arg(long, value_name = "SESSION_ID")]
        session: String,
        /// When that session was established; binds may not predate it by more than 30 s.
        #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
        session_established: Option<Timestamp>,
        /// The peer node on that session, for traces.
        #[arg(long, value_name = "NODE_ID")]
        peer: Option<NodeId>,
        /// Other sessions that are live right now (repeatable). Any other session counts as
        /// ended, so a client attached on it may attach again elsewhere (T13 replaces the old
        /// attachment); on a session named here that is `E_POD_ALREADY_ATTACHED`.
        #[arg(long = "live-session", value_name = "SESSION_ID")]
        live_sessions: Vec<String>,
        /// The artifact file (`-` for stdin).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the read model: counts, live attachments, open grants and recent traces, or the
    /// whole history of one client instance (each detachment with its `sanction`: in-force,
    /// cleared or null, `sanction/cleared-at`, and `under-suspension`: it ended a suspended
    /// attachment). A read model of an older layout is
    /// upgraded on opening, as by every command: older builds then refuse it.
    Status {
        /// The read model.
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// Show this client instance's attachments, detachments and recoveries.
        #[arg(long, value_name = "ID")]
        client: Option<String>,
        /// How many recent trace events to show.
        #[arg(long, value_name = "N", default_value_t = 20)]
        traces: usize,
    },
    /// Host-originated transitions: detach, suspend, lift, finish setup, run timers, clear a
    /// sanction.
    ///
    /// Prints {"outcome": "done", …} and exits 0, or {"outcome": "refused", "message"} and
    /// exits 1 when the action does not apply (unknown attachment or detachment, wrong state,
    /// not a host reason, not a sanction); 2 on a usage or I/O error, or when `--db` names no
    /// read model (host actions work on what `admit` recorded, so none is created here).
    Host {
        #[command(flatten)]
        node: NodeArgs,
        /// Sessions that are live right now (repeatable); lifting a suspension needs the
        /// attachment's session live to go back to attached.
        #[arg(long = "live-session", value_name = "SESSION_ID")]
        live_sessions: Vec<String>,
        #[command(subcommand)]
        action: HostAction,
    },
}

/// The node, its read model and its policy.
#[derive(clap::Args)]
struct NodeArgs {
    /// The read model (SQLite; `admit` creates it on first use, then it is bound to the node).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// This node's key file.
    #[arg(long, value_name = "FILE")]
    node_key: PathBuf,
    /// The host clock (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    now: Option<Timestamp>,
    /// Shape profile: frozen (upstream HEAD, closed) or seed (open draft shapes).
    #[arg(long, default_value_t = Profile::Frozen)]
    profile: Profile,
    /// Recovery policy: strict, or allow-replace-device (a replace-device recovery may name a
    /// new client instance when it carries recovery/token-ref).
    #[arg(long, value_name = "POLICY", default_value = "strict", value_parser = parse_recovery_policy)]
    recovery_policy: RecoveryPolicy,
    /// A hosted user: `pod-user:did:key:…=participant:did:key:…` (repeatable).
    #[arg(long, value_name = "POD_USER=PARTICIPANT", value_parser = parse_tenant)]
    tenant: Vec<(PodUserId, ParticipantId)>,
    /// Commit durability: full (fsync every commit) or normal (WAL, may lose the last commits
    /// on power loss).
    #[arg(long, value_name = "MODE", default_value = "full", value_parser = parse_durability)]
    durability: Durability,
}

#[derive(Subcommand)]
enum HostAction {
    /// Detach a live attachment (session-expired, policy, operator-action or device-loss); the
    /// host builds and attests the detachment. `policy` and `operator-action` are sanctions:
    /// the client cannot come back until `clear-sanction`.
    Detach {
        /// The attachment.
        attachment_id: String,
        /// The reason.
        #[arg(long)]
        reason: DetachReason,
        /// `detach/notes`.
        #[arg(long, value_name = "TEXT")]
        notes: Option<String>,
    },
    /// Suspend a live attachment. The suspension outlives it: a detachment of a suspended
    /// attachment, whoever makes it and for whatever reason, holds the client as a sanction
    /// until `clear-sanction`.
    Suspend {
        /// The attachment.
        attachment_id: String,
    },
    /// Lift the suspension of a live attachment (of one detached since: `clear-sanction` on
    /// its detachment).
    Lift {
        /// The attachment.
        attachment_id: String,
    },
    /// Mark an attaching attachment attached.
    FinishSetup {
        /// The attachment.
        attachment_id: String,
    },
    /// Run the timers due at --now; one that cannot fire is listed under `failures` and the
    /// others run.
    Tick,
    /// Clear the sanction of a policy or operator-action detachment, or the suspension a
    /// detachment of a suspended attachment carries.
    ///
    /// Until then a recovery citing it is rejected E_POD_STATE, and so is a plain attachment
    /// of the client after a suspension; from then on they are admitted as that reason allows. The client stays detached: it comes back with that
    /// recovery, then an attachment. Clearing a cleared sanction changes nothing and reports
    /// the first clearing ("newly-cleared": false, exit 0). The read model of a running
    /// `orbi node` (DATA/pod.sqlite, with its node key) may be given: the node reads the
    /// clearing with the next recovery, without a restart.
    ClearSanction {
        /// The detachment (`detachment/id`, as `host detach` and `status --client` print it).
        detachment_id: String,
    },
}

/// Runs `orbi pod`.
pub fn run(args: Args) -> Result<Outcome, CliError> {
    match args.command {
        PodCommand::Bind {
            key,
            via,
            session,
            bind_id,
            at,
        } => {
            let key = read_key(&key)?;
            let bind = compose::sign_bind(
                &key,
                &BindDraft {
                    bind_id: bind_id.unwrap_or_else(|| fresh_id("pb")),
                    bound_at: at.map_or_else(now_timestamp, Ok)?,
                    via,
                    session_id: session,
                    policy_annotations: None,
                },
            )
            .map_err(|err| CliError::new(err.to_string()))?;
            print_built(ArtifactKind::ParticipantBind, Profile::Frozen, &bind)?;
        }
        PodCommand::Attachment {
            bind,
            shape,
            client,
            node,
            attachment_id,
            at,
            profile,
            state,
            export_capable,
            migration_allowed,
            pod_user,
            models_local,
        } => {
            let (bind, via) = read_bind(&bind)?;
            let built = compose::attachment(
                &AttachmentDraft {
                    attachment_id: attachment_id.unwrap_or_else(|| fresh_id("attach")),
                    attached_at: at.map_or_else(now_timestamp, Ok)?,
                    profile,
                    serving_node: node.map_or(via, Ok)?,
                    pod_user,
                    client_instance_id: client,
                    models_local,
                    state,
                    export_capable,
                    migration_allowed,
                },
                bind,
            );
            print_built(ArtifactKind::Attachment, shape, &built)?;
        }
        PodCommand::Detachment {
            bind,
            shape,
            attachment_id,
            client,
            node,
            reason,
            detachment_id,
            at,
            notes,
        } => {
            let (bind, via) = read_bind(&bind)?;
            let built = compose::detachment(
                &DetachmentDraft {
                    detachment_id: detachment_id.unwrap_or_else(|| fresh_id("detach")),
                    detached_at: at.map_or_else(now_timestamp, Ok)?,
                    attachment_id,
                    serving_node: node.map_or(via, Ok)?,
                    client_instance_id: client,
                    reason,
                    notes,
                },
                bind,
            );
            print_built(ArtifactKind::Detachment, shape, &built)?;
        }
        PodCommand::Recovery {
            bind,
            shape,
            client,
            node,
            mode,
            from_detachment,
            recovery_id,
            at,
            token_ref,
        } => {
            let (bind, via) = read_bind(&bind)?;
            let built = compose::recovery(
                &RecoveryDraft {
                    recovery_id: recovery_id.unwrap_or_else(|| fresh_id("recover")),
                    recovered_at: at.map_or_else(now_timestamp, Ok)?,
                    serving_node: node.map_or(via, Ok)?,
                    client_instance_id: client,
                    mode,
                    from_detachment_id: from_detachment,
                    token_ref,
                },
                bind,
            );
            print_built(ArtifactKind::Recovery, shape, &built)?;
        }
        PodCommand::Attach(args) => return crate::node::client::attach(args),
        PodCommand::Detach(args) => return crate::node::client::detach(args),
        PodCommand::Admit {
            node,
            session,
            session_established,
            peer,
            live_sessions,
            file,
        } => {
            let arrival = Arrival {
                session,
                established: session_established,
                peer,
            };
            return admit(node, arrival, live_sessions, &file);
        }
        PodCommand::Status { db, client, traces } => status(&db, client.as_deref(), traces)?,
        PodCommand::Host {
            node,
            live_sessions,
            action,
        } => return host(node, live_sessions, action),
    }
    Ok(Outcome::Success)
}

/// Prints a JSON value on stdout, pretty. A closed pipe (`orbi … | head`) is not an error.
pub(crate) fn print_json(value: &Value) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = crate::json_out::write(&mut stdout, value, true)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(stdout));
    if let Err(err) = written
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        crate::exit::say(&format!("cannot write to stdout: {err}"));
    }
}

fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).map_err(|err| err.to_string())
}

fn parse_recovery_policy(text: &str) -> Result<RecoveryPolicy, String> {
    match text {
        "strict" => Ok(RecoveryPolicy::Strict),
        "allow-replace-device" => Ok(RecoveryPolicy::AllowReplaceDevice),
        other => Err(format!(
            "unknown recovery policy {other:?}: expected strict or allow-replace-device"
        )),
    }
}

fn parse_durability(text: &str) -> Result<Durability, String> {
    match text {
        "full" => Ok(Durability::Full),
        "normal" => Ok(Durability::Normal),
        other => Err(format!(
            "unknown durability {other:?}: expected full or normal"
        )),
    }
}

fn parse_tenant(text: &str) -> Result<(PodUserId, ParticipantId), String> {
    let (pod_user, participant) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not POD_USER=PARTICIPANT"))?;
    Ok((
        pod_user
            .parse()
            .map_err(|err: orbi_types::IdError| err.to_string())?,
        participant
            .parse()
            .map_err(|err: orbi_types::IdError| err.to_string())?,
    ))
}

/// `PREFIX:` + a fresh ULID.
pub(crate) fn fresh_id(prefix: &str) -> String {
    format!("{prefix}:{}", ulid::Ulid::generate())
}

fn system_now() -> OffsetDateTime {
    OffsetDateTime::from(SystemTime::now())
}

pub(crate) fn now_timestamp() -> Result<Timestamp, CliError> {
    Timestamp::from_instant(system_now())
        .ok_or_else(|| CliError::new("the system clock is outside years 0-9999"))
}

/// A bind file as its JSON value (embedded as is) and its `via/node-id`.
fn read_bind(path: &Path) -> Result<(Value, Result<NodeId, CliError>), CliError> {
    // Over the limit is refused, never read cut short.
    let bytes = crate::files::read_file(path, MAX_ARTIFACT_BYTES as u64)?;
    let bind = json::from_slice_strict(&bytes)
        .map_err(|err| CliError::new(format!("bind {}: {err}", path.display())))?;
    if !bind.is_object() {
        return Err(CliError::new(format!(
            "bind {} is not a json object",
            path.display()
        )));
    }
    let via = bind
        .get("via/node-id")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("bind {} has no via/node-id; pass --node", path.display()))
        .and_then(|text| NodeId::parse(text).map_err(|err| err.to_string()))
        .map_err(CliError::new);
    Ok((bind, via))
}

fn open_engine(node: &NodeArgs) -> Result<(PodEngine<SqliteStore>, OffsetDateTime), CliError> {
    let key = read_key(&node.node_key)?;
    let store = SqliteStore::open(
        &node.db,
        &key.node_id(),
        StoreLimits::default(),
        node.durability,
    )
    .map_err(|err| CliError::new(err.to_string()))?;
    let policy = HostPolicy {
        profile: node.profile,
        recovery: node.recovery_policy,
        tenancy: node.tenant.iter().cloned().collect::<BTreeMap<_, _>>(),
        ..HostPolicy::default()
    };
    let engine =
        PodEngine::new(key, policy, store).map_err(|err| CliError::new(err.to_string()))?;
    let now = node
        .now
        .as_ref()
        .map_or_else(system_now, Timestamp::instant);
    Ok((engine, now))
}

/// Prints a built artifact once it passes what an admitting node checks first (egress gate):
/// an artifact that would be rejected is an error (exit 2), not output.
fn print_built(kind: ArtifactKind, profile: Profile, value: &Value) -> Result<(), CliError> {
    compose::check_egress(kind, profile, value).map_err(|err| CliError::new(err.to_string()))?;
    print_json(value);
    Ok(())
}

fn engine_error(err: EngineError) -> CliError {
    CliError::new(err.to_string())
}

/// The session an artifact arrived on.
struct Arrival {
    session: String,
    established: Option<Timestamp>,
    peer: Option<NodeId>,
}

fn admit(
    node: NodeArgs,
    arrival: Arrival,
    live: Vec<String>,
    file: &Path,
) -> Result<Outcome, CliError> {
    let Arrival {
        session,
        established,
        peer,
    } = arrival;
    // One byte over the limit is enough for the engine to reject it with its own code.
    let bytes = crate::files::read_prefix(file, MAX_ARTIFACT_BYTES as u64 + 1)?;
    let (mut engine, now) = open_engine(&node)?;
    for other in live {
        engine.open_session(other, Session::default());
    }
    engine.open_session(
        session.clone(),
        Session {
            established_at: established.as_ref().map(Timestamp::instant),
            peer,
        },
    );
    let timers = engine.tick(now).map_err(engine_error)?;
    let admission = engine.admit(&bytes, &session, now).map_err(engine_error)?;
    let mut report = admission_json(&admission);
    report["timers"] = Value::Array(timers.iter().map(transition_json).collect());
    print_json(&report);
    Ok(match admission.verdict {
        Verdict::Admitted | Verdict::Replayed => Outcome::Success,
        Verdict::Rejected(_) => Outcome::Refused,
    })
}

fn host(node: NodeArgs, live: Vec<String>, action: HostAction) -> Result<Outcome, CliError> {
    // Every host action works on records `admit` made: a read model that is not there is a
    // mistyped --db, not a new one to create.
    require_read_model(&node.db)?;
    let (mut engine, now) = open_engine(&node)?;
    for session in live {
        engine.open_session(session, Session::default());
    }
    let result = match action {
        HostAction::ClearSanction { detachment_id } => {
            return refusable(engine.clear_sanction(&detachment_id, now).map(|cleared| {
                json!({
                    "outcome": "done",
                    "sanction": {
                        "detachment/id": cleared.detachment_id,
                        "attachment/id": cleared.attachment_id,
                        "client-instance/id": cleared.client_instance_id,
                        "detach/reason": cleared.reason.as_str(),
                        "cleared-at": host_time(cleared.cleared_at),
                        "newly-cleared": cleared.newly_cleared,
                    },
                })
            }));
        }
        HostAction::Detach {
            attachment_id,
            reason,
            notes,
        } => engine
            .detach(&attachment_id, reason, notes, now)
            .map(|t| vec![t]),
        HostAction::Suspend { attachment_id } => {
            engine.suspend(&attachment_id, now).map(|t| vec![t])
        }
        HostAction::Lift { attachment_id } => engine.lift(&attachment_id, now).map(|t| vec![t]),
        HostAction::FinishSetup { attachment_id } => {
            engine.finish_setup(&attachment_id, now).map(|t| vec![t])
        }
        HostAction::Tick => {
            // A timer that could not fire is reported next to what the others did.
            return refusable(engine.tick_report(now).map(|report| {
                json!({
                    "outcome": "done",
                    "transitions": report.transitions.iter().map(transition_json).collect::<Vec<_>>(),
                    "failures": report.failures.iter().map(|failure| json!({
                        "rule": failure.rule.as_str(),
                        "attachment/id": failure.subject,
                        "error": failure.error.to_string(),
                    })).collect::<Vec<_>>(),
                })
            }));
        }
    };
    refusable(result.map(|transitions| {
        json!({
            "outcome": "done",
            "transitions": transitions.iter().map(transition_json).collect::<Vec<_>>(),
        })
    }))
}

/// Prints what a host action did (exit 0), or why it does not apply (exit 1); any other
/// failure is an error (exit 2).
fn refusable(result: Result<Value, EngineError>) -> Result<Outcome, CliError> {
    match result {
        Ok(done) => {
            print_json(&done);
            Ok(Outcome::Success)
        }
        Err(
            err @ (EngineError::UnknownAttachment(_)
            | EngineError::UnknownDetachment(_)
            | EngineError::Transition { .. }
            | EngineError::NotHostReason(_)
            | EngineError::NotSanction { .. }),
        ) => {
            print_json(&json!({"outcome": "refused", "message": err.to_string()}));
            Ok(Outcome::Refused)
        }
        Err(err) => Err(engine_error(err)),
    }
}

/// Refuses a read model that is not there (exit 2) for the commands that only read or act on
/// one `admit` made.
fn require_read_model(db: &Path) -> Result<(), CliError> {
    if db.exists() {
        Ok(())
    } else {
        Err(CliError::new(format!("no read model at {}", db.display())))
    }
}

fn status(db: &Path, client: Option<&str>, traces: usize) -> Result<(), CliError> {
    require_read_model(db)?;
    let store = SqliteStore::open_existing(db, StoreLimits::default())
        .map_err(|err| CliError::new(err.to_string()))?;
    let failed = |err: orbi_pod::StoreError| CliError::new(err.to_string());
    let node = store.node_id().map_err(failed)?;
    let mut out = json!({"node/id": node.as_ref().map(NodeId::as_str)});
    match client {
        Some(client) => {
            let history = store.client_history(client).map_err(failed)?;
            out["client-instance/id"] = json!(client);
            out["attachments"] = history.attachments.iter().map(attachment_json).collect();
            out["detachments"] = history.detachments.iter().map(detachment_json).collect();
            out["recoveries"] = history.recoveries.iter().map(recovery_json).collect();
            out["tombstone"] = json!(history.tombstone.map(|reason| reason.as_str()));
        }
        None => {
            let counts = store.counts().map_err(failed)?;
            out["counts"] = json!({
                "attachments": counts.attachments,
                "live": counts.live,
                "detachments": counts.detachments,
                "recoveries": counts.recoveries,
                "open-grants": counts.open_grants,
                "binds": counts.binds,
                "tombstones": counts.tombstones,
                "traces": counts.traces,
            });
            out["live"] = store
                .live_attachments()
                .map_err(failed)?
                .iter()
                .map(attachment_json)
                .collect();
            // Every open grant is due by the end of time.
            out["open-grants"] = store
                .grants_due(OffsetDateTime::new_utc(
                    time::Date::MAX,
                    time::Time::MIDNIGHT,
                ))
                .map_err(failed)?
                .iter()
                .map(recovery_json)
                .collect();
            out["traces"] = store
                .recent_traces(traces)
                .map_err(failed)?
                .iter()
                .map(|trace| trace.event.to_json(&trace.trace_id))
                .collect();
        }
    }
    print_json(&out);
    Ok(())
}

fn host_time(instant: OffsetDateTime) -> Value {
    json!(Timestamp::from_instant(instant).map(|at| at.to_string()))
}

fn attachment_json(rec: &AttachmentRec) -> Value {
    json!({
        "attachment/id": rec.attachment_id,
        "client-instance/id": rec.client_instance_id,
        "participant/id": rec.participant_id.as_str(),
        "pod-user/id": rec.pod_user_id.as_ref().map(|id| id.as_str()),
        "profile/type": rec.profile.as_str(),
        "state": rec.state.as_str(),
        "session/id": rec.bind_session,
        "attached-at": rec.attached_at.as_str(),
        "admitted-at": host_time(rec.admitted_at),
        "state-since": host_time(rec.state_since),
    })
}

fn detachment_json(rec: &DetachmentRec) -> Value {
    // "in-force" until `orbi pod host clear-sanction`; null for a detachment that is no
    // sanction (neither its reason nor a suspension it ended).
    let sanction = match rec.sanction_cleared_at {
        _ if !rec.holds_sanction() => None,
        Some(_) => Some("cleared"),
        None => Some("in-force"),
    };
    json!({
        "detachment/id": rec.detachment_id,
        "attachment/id": rec.attachment_id,
        "detach/reason": rec.reason.as_str(),
        "detached-at": rec.detached_at.as_str(),
        "origin": rec.origin.as_str(),
        "sanction": sanction,
        "sanction/cleared-at": rec.sanction_cleared_at.map(host_time),
        "under-suspension": rec.under_suspension,
    })
}

fn recovery_json(rec: &RecoveryRec) -> Value {
    json!({
        "recovery/id": rec.recovery_id,
        "recovery/from-detachment-id": rec.from_detachment_id,
        "client-instance/id": rec.client_instance_id,
        "recovery/mode": rec.mode.as_str(),
        "recovered-at": rec.recovered_at.as_str(),
        "grant": rec.grant.as_str(),
        "grant/expires-at": host_time(rec.grant_expires_at),
        "consumed-by": rec.consumed_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each spelling maps to its own mode: `normal` is not `full`, nor the reverse.
    #[test]
    fn durability_and_recovery_policy_parse_to_what_they_name() {
        assert_eq!(parse_durability("full"), Ok(Durability::Full));
        assert_eq!(parse_durability("normal"), Ok(Durability::Normal));
        assert_eq!(
            parse_durability("off"),
            Err("unknown durability \"off\": expected full or normal".to_owned())
        );
        assert_eq!(parse_recovery_policy("strict"), Ok(RecoveryPolicy::Strict));
        assert_eq!(
            parse_recovery_policy("allow-replace-device"),
            Ok(RecoveryPolicy::AllowReplaceDevice)
        );
        assert_eq!(
            parse_recovery_policy("lax"),
            Err(
                "unknown recovery policy \"lax\": expected strict or allow-replace-device"
                    .to_owned()
            )
        );
    }
}
