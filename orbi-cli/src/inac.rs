//! `orbi inac serve|push|offer|request|offers|store`: the Inter-Node Artifact Channel over QUIC.
//!
//! - `serve` runs a node: its first stdout line is `{"node/id": …, "listen": "HOST:PORT"}` (so
//!   a script can read the port when listening on port 0); it stops gracefully on Ctrl-C or
//!   SIGTERM, draining exchanges in flight, and prints `{"stats": …}`.
//! - `push`, `offer`, `request` dial `NODE_ID@HOST:PORT`, print the answer frame (JSON) and exit
//!   0 (ingested, already present, accepted, served), 1 (refused, declined, deferred) or 2
//!   (usage, I/O, transport). Stream transfers draw a progress bar on stderr when it is a
//!   terminal. Each sets `correlation/id` (spec §3.2): `--correlation-id`, or a fresh
//!   `inac-correlation:<ULID>`; the printed answer echoes it.
//! - `offers` and `store` read (and `offers accept|reject` decide) a node's data directory, also
//!   while it is being served.
//!
//! Data directory layout ([`orbi_inac::NodeState`]): `inac.sqlite` (the ledger, and objects up
//! to 64 KiB) and `store/` (larger objects in `objects/`, bodies in transit in `staging/`).
//! Logs go to stderr, filtered by `RUST_LOG` (default `warn`).

use std::{
    io::{IsTerminal, Read},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use orbi_inac::{
    AuthorizationMode, Descriptor, Durability, Frame, FrameBuilder, KindRegistry, NodeState,
    Receiver, ReceiverConfig, SqliteLedger, Store,
    ledger::{Ledger, LedgerError, OfferRecord},
    quic::{
        Client, ExistingFile, PeerAddr, RequestOutcome, Server, Session, TransportConfig,
        TransportError,
    },
};
use orbi_types::{KeyPair, NodeId, Sha256Digest, Sha256Hasher, inac::Operation};
use serde_json::{Map, Value, json};

use crate::{
    CliError, Outcome,
    files::{Existing, read_file},
    keys::read_key,
    pod::print_json,
};

/// Arguments of `orbi inac`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: InacCommand,
}

#[derive(Subcommand)]
enum InacCommand {
    /// Serve a node: accept exchanges from peers into the data directory.
    Serve(ServeArgs),
    /// Push an artifact to a node (inline, or streamed when larger than 64 KiB). Prints the
    /// answer; exits 0 ingested or already-present (also as a refusal coded already-present),
    /// 1 refused, declined or deferred, 2 on a transport or usage error.
    Push(SendArgs),
    /// Offer an artifact (descriptor only); the answer may carry an invitation passport.
    /// Prints the answer; exits 0 accepted or already-present (the node holds it), 1 refused,
    /// declined or deferred, 2 on a transport or usage error.
    Offer(SendArgs),
    /// Request an artifact by id from a node and write it to a file. Exits 0 when it was
    /// written, 1 when the node refused or served something else, 2 on a transport or usage
    /// error.
    Request(RequestArgs),
    /// List pending offers, or record the operator's decision on one.
    Offers {
        /// The node's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        #[command(subcommand)]
        action: Option<OffersAction>,
    },
    /// Inspect the node's content-addressed store.
    Store {
        /// The node's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Subcommand)]
enum OffersAction {
    /// Every offer, oldest first (the default).
    List,
    /// Accept an offer: the peer's next matching offer is answered with an invitation.
    Accept {
        /// The offer id from `list`.
        id: u64,
    },
    /// Reject an offer: the peer's next matching offer is declined (policy-denied).
    Reject {
        /// The offer id from `list`.
        id: u64,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Every held object with what the ledger knows about it.
    List,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The node's key file (`orbi keys generate`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// UDP address to listen on; port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Where the ledger and the store live (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// A peer allowed to offer and to push without a passport (repeatable; none: deny all).
    #[arg(long = "allow", value_name = "NODE_ID")]
    allow: Vec<String>,
    /// Keep artifacts of this kind in the store (repeatable; none: every kind is refused).
    #[arg(long = "accept", value_name = "SCHEMA[=CONTENT_TYPE]")]
    accept: Vec<String>,
    /// Let peers outside --allow offer (each offer waits for `orbi inac offers accept`).
    #[arg(long)]
    open_offers: bool,
    /// `full`: every answer is on disk before it is sent (fsync; the default). `relaxed`:
    /// leave flushing to the OS; the last answers may be lost on power failure.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Full)]
    durability: DurabilityArg,
    /// Connections kept at once (handshakes included; default 512).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Connections one peer node may keep at once (default 32).
    #[arg(long, value_name = "N")]
    max_connections_per_peer: Option<usize>,
    /// Connections from one IP address at once, handshakes included (default 128).
    #[arg(long, value_name = "N")]
    max_connections_per_address: Option<usize>,
    /// Connections held at once by nodes outside --allow (default 256, or half of a lower
    /// --max-connections; 0: none; below --max-connections), so that strangers cannot take
    /// every place from allowed peers.
    #[arg(long, value_name = "N")]
    max_guest_connections: Option<usize>,
    /// Handshakes in progress at once from addresses no allowed peer has connected from
    /// (default 128; never more than half of what the guest connections leave; above 0), so
    /// that strangers on many addresses cannot keep allowed peers from coming back.
    #[arg(long, value_name = "N")]
    max_unfamiliar_handshakes: Option<usize>,
    /// The slowest average a stream body may move at, bytes per second, after the 15 min
    /// stall timeout (default 65536): a slower body is reset, so that a peer trickling bytes
    /// cannot hold a transfer. Lower it for peers on slow links.
    #[arg(long, value_name = "BYTES_PER_SECOND")]
    min_body_rate: Option<u64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Full,
    Relaxed,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransferArg {
    /// Inline up to 64 KiB (and non-empty), streamed above.
    Auto,
    /// Always inline: the receiver refuses more than its inline ceiling (64 KiB by default),
    /// and more than fits in one control frame (180 KiB) is refused here, before sending.
    Inline,
    /// Always streamed.
    Stream,
}

/// Who dials whom about which kind of artifact.
#[derive(clap::Args)]
struct Target {
    /// This node's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The other node, `NODE_ID@HOST:PORT`.
    #[arg(long, value_name = "NODE_ID@HOST:PORT")]
    to: String,
    /// The artifact's schema.
    #[arg(long)]
    schema: String,
    /// The artifact's media type.
    #[arg(long)]
    content_type: String,
    /// The slowest average a stream body may move at, bytes per second, after the 15 min
    /// stall timeout (default 65536). Lower it on a slow link.
    #[arg(long, value_name = "BYTES_PER_SECOND")]
    min_body_rate: Option<u64>,
}

impl Target {
    fn peer(&self) -> Result<PeerAddr, CliError> {
        self.to
            .parse()
            .map_err(|err: orbi_inac::quic::PeerAddrError| CliError::new(err.to_string()))
    }

    /// The dialer's transport settings.
    fn transport(&self) -> Result<TransportConfig, CliError> {
        TransportLimits {
            min_body_rate: self.min_body_rate,
            ..TransportLimits::default()
        }
        .transport("--")
        .map_err(CliError::new)
    }
}

#[derive(clap::Args)]
struct SendArgs {
    #[command(flatten)]
    target: Target,
    /// The artifact's domain id (default: its digest).
    #[arg(long)]
    artifact_id: Option<String>,
    /// Declare this digest instead of computing it (to test refusals).
    #[arg(long)]
    digest: Option<String>,
    /// `idempotency/key`: a retry with the same key is answered without a second admission.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// `correlation/id` (a push after an accepted offer reuses the offer's; default: a fresh
    /// `inac-correlation:<ULID>`, echoed in the answer).
    #[arg(long)]
    correlation_id: Option<String>,
    /// How the bytes travel.
    #[arg(long, value_enum, default_value_t = TransferArg::Auto)]
    transfer: TransferArg,
    /// A `capability-passport.v1` JSON file to present under `authorization`, or a saved
    /// `offer` answer whose invitation (`authorization.passport`) is taken.
    #[arg(long, value_name = "FILE")]
    passport: Option<PathBuf>,
    /// The artifact's bytes.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(clap::Args)]
struct RequestArgs {
    #[command(flatten)]
    target: Target,
    /// The artifact's id.
    #[arg(long)]
    artifact_id: String,
    /// The digest the artifact must have (`sha256:...`): anything else is refused unread.
    #[arg(long)]
    digest: Option<String>,
    /// The largest artifact to take, in bytes: a larger one is refused `payload-too-large`
    /// before any of it is read (default: no limit).
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<u64>,
    /// Where to write it (only once verified); an existing file is kept unless --force.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace a file already at --out (once the artifact is verified).
    #[arg(long)]
    force: bool,
    /// `correlation/id` of the request (default: a fresh `inac-correlation:<ULID>`), echoed
    /// by the node and printed.
    #[arg(long)]
    correlation_id: Option<String>,
}

/// The prefix of the `correlation/id` a command makes up when none is given.
const CORRELATION_PREFIX: &str = "inac-correlation";

/// `given`, or a fresh id for this exchange (spec §3.2: the initiator should always set
/// one). `inac-correlation:` and a ULID (26 Crockford base32 characters) are within the
/// token rules (`^[A-Za-z0-9:_./-]+$`, at most 256 characters).
fn correlation_id_or_fresh(given: Option<String>) -> Result<String, CliError> {
    match given {
        Some(given) => token_arg("--correlation-id", given),
        None => Ok(crate::pod::fresh_id(CORRELATION_PREFIX)),
    }
}

/// `value` of `flag` if it is a control token, found out before anything is dialled (a
/// stream push builds its frame only once connected).
fn token_arg(flag: &str, value: String) -> Result<String, CliError> {
    if orbi_inac::is_token(&value) {
        Ok(value)
    } else {
        Err(CliError::new(format!(
            "{flag} {value:?} is not 1 to 256 characters of A-Z a-z 0-9 : _ . / -"
        )))
    }
}

/// Runs `orbi inac`.
pub fn run(args: Args) -> Result<Outcome, CliError> {
    match args.command {
        InacCommand::Serve(args) => serve(args),
        InacCommand::Push(args) => send(args, Operation::Push),
        InacCommand::Offer(args) => send(args, Operation::Offer),
        InacCommand::Request(args) => request(args),
        InacCommand::Offers { data_dir, action } => offers(&data_dir, action),
        InacCommand::Store { data_dir, action } => match action {
            StoreAction::List => store_list(&data_dir),
        },
    }
}

/// A multi-threaded tokio runtime for a command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    build_runtime(tokio::runtime::Builder::new_multi_thread())
}

/// `serve`'s runtime leaves a core to the receiver thread.
pub(crate) fn server_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(orbi_inac::quic::config::server_worker_threads());
    build_runtime(builder)
}

fn build_runtime(
    mut builder: tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, CliError> {
    builder
        .enable_all()
        .build()
        .map_err(|err| CliError::new(format!("cannot start the runtime: {err}")))
}

/// `--transfer auto` sends inline up to the spec's default inline ceiling.
const INLINE_MAX_BYTES: u64 = 65_536;

/// The most bytes `--transfer inline` can carry: base64url makes 4 characters of every 3
/// bytes, and the rest of the frame (descriptor, ids, passport) gets 16 KiB of the 256 KiB.
const INLINE_CAPACITY_BYTES: u64 = ((orbi_inac::MAX_FRAME_BYTES as u64) - 16 * 1024) / 4 * 3;

/// An `--allow` value: a strict `node:did:key` of an ed25519 key.
fn parse_allowed_node(text: &str) -> Result<NodeId, CliError> {
    NodeId::parse_strict(text).map_err(|_| {
        CliError::new(format!(
            "--allow {text:?} is not a strict node:did:key node id"
        ))
    })
}

fn serve(args: ServeArgs) -> Result<Outcome, CliError> {
    let key = read_key(&args.key)?;
    let durability = match args.durability {
        DurabilityArg::Full => Durability::Full,
        DurabilityArg::Relaxed => Durability::Relaxed,
    };
    let mut policy = ReceiverConfig::default();
    for node in &args.allow {
        policy.allowed_peers.insert(parse_allowed_node(node)?);
    }
    policy.open_offer_intake = args.open_offers;
    let mut kinds = KindRegistry::builder();
    for kind in &args.accept {
        let (schema, content_type) = crate::node::config::parse_kind(kind)
            .map_err(|why| CliError::new(format!("--accept {why}")))?;
        kinds = kinds.keep(&schema, content_type.as_deref());
    }
    let kinds = kinds
        .build()
        .map_err(|conflicts| CliError::new(conflicts.to_string()))?;
    let transport = TransportLimits {
        total: args.max_connections,
        per_peer: args.max_connections_per_peer,
        per_address: args.max_connections_per_address,
        guests: args.max_guest_connections,
        unfamiliar: args.max_unfamiliar_handshakes,
        min_body_rate: args.min_body_rate,
    }
    .transport("--")
    .map_err(CliError::new)?;
    let made = crate::files::MadeDirs::before_creating(&args.data_dir);
    let NodeState { store, ledger } = made
        .unless_started(NodeState::open(&args.data_dir, durability))
        .map_err(|err| CliError::new(err.to_string()))?;
    let receiver = Receiver::new(key.clone(), policy, kinds, store, ledger);
    let runtime = made.unless_started(server_runtime())?;
    runtime.block_on(async move {
        let server = made
            .unless_started(Server::bind(args.listen, key, receiver, transport))
            .map_err(|err| CliError::new(err.to_string()))?;
        let stop = StopSignals::catch();
        let first = json!({
            "node/id": server.node_id().as_str(),
            "listen": server.local_addr().to_string(),
        });
        outln!("{first}");
        {
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
        let failed = wait_for_stop_or(stop, server.receiver_failed()).await;
        tracing::info!("shutting down");
        let receiver = server.shutdown().await.map_err(|err| {
            CliError::new(format!(
                "{err}; its committed decisions are in the ledger, restart it"
            ))
        })?;
        if failed {
            return Err(CliError::new(TransportError::ReceiverFailed.to_string()));
        }
        let stats = receiver.stats();
        // One line, like the first: serve's stdout is JSON lines.
        let stats = json!({"stats": {
            "frames": stats.frames,
            "ingested": stats.ingested,
            "already-present": stats.already_present,
            "refused": stats.refused,
            "malformed": stats.malformed,
        }});
        outln!("{stats}");
        Ok(Outcome::Success)
    })
}

/// Waits for a stop signal or for `failed`; `true` if `failed` came first.
pub(crate) async fn wait_for_stop_or(
    stop: StopSignals,
    failed: impl std::future::Future<Output = ()>,
) -> bool {
    tokio::select! {
        () = stop.wait() => false,
        () = failed => true,
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made (inside the runtime). Made before
/// a command says it is ready (a server's first line): a script that signals it as soon as it
/// reads that line must get the graceful stop, not the default action that kills the process.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    caught: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    /// Starts catching SIGINT and SIGTERM.
    pub(crate) fn catch() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let interrupt = signal(SignalKind::interrupt()).ok();
            StopSignals {
                caught: interrupt.zip(signal(SignalKind::terminate()).ok()),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Waits for SIGINT or SIGTERM.
    pub(crate) async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut interrupt, mut terminate)) = self.caught {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        // Signals could not be caught ahead: Ctrl-C is caught from here on.
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The descriptor of `file`: its size, and its digest unless `--digest` names one.
fn describe(args: &SendArgs) -> Result<Descriptor, CliError> {
    let io =
        |err: std::io::Error| CliError::new(format!("cannot read {}: {err}", args.file.display()));
    let metadata = std::fs::metadata(&args.file).map_err(io)?;
    // Its size is declared before it is read (and it is read twice: hashed, then sent), so
    // it must be a file that stays put, not a pipe or a device.
    if !metadata.is_file() {
        return Err(CliError::new(format!(
            "{} is not a regular file",
            args.file.display()
        )));
    }
    let size_bytes = metadata.len();
    let digest = match &args.digest {
        Some(text) => digest_arg(text)?,
        None => {
            let mut file = crate::files::open_regular(&args.file).map_err(io)?;
            let mut hasher = Sha256Hasher::new();
            let mut buffer = vec![0u8; 1024 * 1024];
            loop {
                let n = file.read(&mut buffer).map_err(io)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
            hasher.finish()
        }
    };
    Ok(Descriptor {
        schema: args.target.schema.clone(),
        content_type: args.target.content_type.clone(),
        artifact_id: args
            .artifact_id
            .clone()
            .unwrap_or_else(|| digest.as_str().to_owned()),
        digest,
        size_bytes,
    })
}

fn read_passport(path: &Path) -> Result<(AuthorizationMode, Map<String, Value>), CliError> {
    // A passport travels inside a control frame: anything larger could never be sent.
    let bytes = read_file(path, orbi_inac::MAX_FRAME_BYTES as u64)?;
    let value: Value = orbi_types::json::from_slice_strict(&bytes)
        .map_err(|err| CliError::new(format!("{}: {err}", path.display())))?;
    let not_a_passport = || {
        CliError::new(format!(
            "{} must hold a capability-passport.v1 object, or an offer answer carrying one \
             under authorization.passport",
            path.display()
        ))
    };
    let Value::Object(mut passport) = value else {
        return Err(not_a_passport());
    };
    // A saved `orbi inac offer` answer: its invitation.
    if passport.get("schema").and_then(Value::as_str) == Some("inac-control.v1") {
        passport = match passport
            .get_mut("authorization")
            .and_then(|authorization| authorization.get_mut("passport"))
            .map(Value::take)
        {
            Some(Value::Object(invitation)) => invitation,
            _ => return Err(not_a_passport()),
        };
    }
    // The receiver picks its checks by capability_id; the mode only labels the object.
    let mode = match passport.get("capability_id").and_then(Value::as_str) {
        Some("inac.invitation") => AuthorizationMode::InvitationPassport,
        Some("memarium.custody") => AuthorizationMode::CustodyPassport,
        _ => AuthorizationMode::CapabilityPassport,
    };
    Ok((mode, passport))
}

/// Adds the common optional members.
fn decorate(
    builder: FrameBuilder,
    args: &SendArgs,
    passport: Option<&(AuthorizationMode, Map<String, Value>)>,
) -> FrameBuilder {
    let mut builder = builder;
    if let Some(id) = &args.correlation_id {
        builder = builder.correlation_id(id);
    }
    if let Some(key) = &args.idempotency_key {
        builder = builder.idempotency_key(key);
    }
    if let Some((mode, passport)) = passport {
        builder = builder.authorization(*mode, passport);
    }
    builder
}

fn send(mut args: SendArgs, operation: Operation) -> Result<Outcome, CliError> {
    args.correlation_id = Some(correlation_id_or_fresh(args.correlation_id.take())?);
    args.idempotency_key = args
        .idempotency_key
        .take()
        .map(|key| token_arg("--idempotency-key", key))
        .transpose()?;
    let key = read_key(&args.target.key)?;
    let peer = args.target.peer()?;
    let transport = args.target.transport()?;
    let descriptor = describe(&args)?;
    let passport = args.passport.as_deref().map(read_passport).transpose()?;
    let inline = match args.transfer {
        TransferArg::Auto => descriptor.size_bytes > 0 && descriptor.size_bytes <= INLINE_MAX_BYTES,
        TransferArg::Inline => true,
        TransferArg::Stream => false,
    };
    let frame = match operation {
        Operation::Offer => Some(decorate(
            Frame::offer(&descriptor),
            &args,
            passport.as_ref(),
        )),
        _ if inline => {
            // The inline bytes are at least one base64url character (the frame's schema).
            if descriptor.size_bytes == 0 {
                return Err(CliError::new(format!(
                    "{} is empty: an empty artifact cannot go inline, use --transfer stream",
                    args.file.display()
                )));
            }
            // The frame limit (256 KiB, base64url inside) bounds what can go inline; read no
            // more than that.
            if descriptor.size_bytes > INLINE_CAPACITY_BYTES {
                return Err(CliError::new(format!(
                    "{} has {} bytes; at most {INLINE_CAPACITY_BYTES} fit in a control frame, \
                     use --transfer stream",
                    args.file.display(),
                    descriptor.size_bytes
                )));
            }
            let bytes = read_file(&args.file, INLINE_CAPACITY_BYTES)?;
            if bytes.len() as u64 != descriptor.size_bytes {
                return Err(CliError::new(format!(
                    "{} changed while it was read ({} bytes, then {})",
                    args.file.display(),
                    descriptor.size_bytes,
                    bytes.len()
                )));
            }
            Some(decorate(
                Frame::push_inline(&descriptor, &bytes),
                &args,
                passport.as_ref(),
            ))
        }
        _ => {
            // The stream header is built on its stream, whose id is known only then. Built
            // here with the first stream's id, a header the frame's schema refuses (an empty
            // --schema) fails before anything is dialled.
            decorate(
                Frame::push_stream(&descriptor, "0"),
                &args,
                passport.as_ref(),
            )
            .build()
            .map_err(|err| CliError::new(format!("cannot build the frame: {err}")))?;
            None
        }
    };
    let frame = frame
        .map(|builder| builder.build())
        .transpose()
        .map_err(|err| CliError::new(format!("cannot build the frame: {err}")))?;
    runtime()?.block_on(async move {
        let (client, session) = connect(&peer, key, transport).await?;
        let answer = closing(&client, async {
            match frame {
                Some(frame) => Ok(session.exchange(&frame).await),
                None => push_stream(&session, &descriptor, &args, passport.as_ref()).await,
            }
        })
        .await?;
        let answer = answer.map_err(|err| CliError::new(format!("{}: {err}", peer)))?;
        print_json(&answer.to_value());
        Ok(
            if answer.is_delivered() || answer.operation() == Operation::Accept {
                Outcome::Success
            } else {
                Outcome::Refused
            },
        )
    })
}

/// The transport limits a node's operator may set (`None`: the default), for `orbi inac
/// serve`'s flags and `node.toml`'s `[inac]` alike.
#[derive(Default)]
pub(crate) struct TransportLimits {
    /// `max-connections`.
    pub total: Option<usize>,
    /// `max-connections-per-peer`.
    pub per_peer: Option<usize>,
    /// `max-connections-per-address`.
    pub per_address: Option<usize>,
    /// `max-guest-connections`.
    pub guests: Option<usize>,
    /// `max-unfamiliar-handshakes`.
    pub unfamiliar: Option<usize>,
    /// `min-body-rate`.
    pub min_body_rate: Option<u64>,
}

impl TransportLimits {
    /// The transport settings with these limits, checked; an error names the setting as the
    /// user wrote it: `prefix` then its kebab-case name (`--max-connections`,
    /// `inac.max-connections`).
    pub(crate) fn transport(&self, prefix: &str) -> Result<TransportConfig, String> {
        let mut transport = TransportConfig::default();
        for (value, field) in [
            (self.total, &mut transport.max_connections),
            (self.per_peer, &mut transport.max_connections_per_peer),
            (self.per_address, &mut transport.max_connections_per_address),
            (self.guests, &mut transport.max_guest_connections),
            (self.unfamiliar, &mut transport.max_unfamiliar_handshakes),
        ] {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(rate) = self.min_body_rate {
            transport.min_body_rate = rate;
        }
        // Strangers get half of a lowered total unless told otherwise, so that the peers the
        // node knows keep places.
        if let (Some(total), None) = (self.total, self.guests) {
            transport.max_guest_connections = transport.max_guest_connections.min(total / 2);
        }
        transport.validate().map_err(|err| match err {
            TransportError::Config { setting, reason } => {
                format!("{prefix}{}: {reason}", setting.replace('_', "-"))
            }
            other => other.to_string(),
        })?;
        Ok(transport)
    }
}

/// Runs `work`, then closes `client` whatever `work` returned: a command failing half-way
/// leaves no connection for the peer to keep until its idle timeout (where it would count
/// against the peer's connection limit).
pub(crate) async fn closing<T>(client: &Client, work: impl std::future::Future<Output = T>) -> T {
    let result = work.await;
    client.close().await;
    result
}

async fn connect(
    peer: &PeerAddr,
    key: KeyPair,
    transport: TransportConfig,
) -> Result<(Client, Session), CliError> {
    let client =
        Client::for_peer(peer, key, transport).map_err(|err| CliError::new(err.to_string()))?;
    let session = client
        .connect(peer)
        .await
        .map_err(|err| CliError::new(format!("{peer}: {err}")))?;
    tracing::debug!(session = %session.id(), peer = %session.peer(), "connected");
    Ok((client, session))
}

/// A progress bar on stderr for `total` bytes, hidden unless stderr is a terminal.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

async fn push_stream(
    session: &Session,
    descriptor: &Descriptor,
    args: &SendArgs,
    passport: Option<&(AuthorizationMode, Map<String, Value>)>,
) -> Result<Result<Frame, orbi_inac::quic::ExchangeError>, CliError> {
    // Opened as `describe` checked it: a path swapped for a FIFO since cannot block here.
    let file = crate::files::open_regular(&args.file)
        .map(tokio::fs::File::from_std)
        .map_err(|err| CliError::new(format!("cannot read {}: {err}", args.file.display())))?;
    let bar = progress_bar(descriptor.size_bytes);
    let progress = bar.clone();
    let answer = session
        .push_stream(
            descriptor,
            |builder| decorate(builder, args, passport),
            file,
            &mut move |sent| progress.set_position(sent),
        )
        .await;
    bar.finish_and_clear();
    Ok(answer)
}

/// Enough of a file's metadata to tell whether it was replaced: length, modification time
/// and (on unix) inode; `None` when there is no file.
fn out_state(path: &Path) -> Option<(u64, Option<std::time::SystemTime>, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), meta.modified().ok(), inode))
}

/// A `--digest` value: the wire form only, `sha256:` and 43 base64url characters.
fn digest_arg(text: &str) -> Result<Sha256Digest, CliError> {
    text.parse::<Sha256Digest>()
        .ok()
        .filter(|digest| digest.bytes().is_ok())
        .ok_or_else(|| {
            CliError::new(format!(
                "--digest {text:?} is not sha256: followed by 43 base64url characters"
            ))
        })
}

fn request(args: RequestArgs) -> Result<Outcome, CliError> {
    let key = read_key(&args.target.key)?;
    let peer = args.target.peer()?;
    let transport = args.target.transport()?;
    // Found out before anything is asked of the peer, not after the whole transfer.
    crate::files::check_output("--out", &args.out, Existing::replaced_if(args.force))?;
    let replace = if args.force {
        ExistingFile::Replace
    } else {
        ExistingFile::Keep
    };
    let correlation_id = correlation_id_or_fresh(args.correlation_id.clone())?;
    let mut frame = Frame::request_for(&args.target.schema, &args.target.content_type)
        .artifact_id(&args.artifact_id)
        .correlation_id(&correlation_id);
    if let Some(digest) = &args.digest {
        frame = frame.digest(&digest_arg(digest)?);
    }
    let frame = frame
        .build()
        .map_err(|err| CliError::new(format!("cannot build the request: {err}")))?;
    let max_bytes = args.max_bytes.unwrap_or(u64::MAX);
    runtime()?.block_on(async move {
        let (client, session) = connect(&peer, key, transport).await?;
        let bar = progress_bar(0);
        let progress = bar.clone();
        let requested = async {
            // Stopped by the operator, the transfer is dropped: its temp file beside --out
            // goes with it, and the exchange is reset.
            let mut progress = move |received, size| {
                progress.set_length(size);
                progress.set_position(received)
            };
            // What --out was before: an interrupt after the verified artifact was renamed into
            // place (while our answer is still on its way) must not be reported as nothing.
            let before = out_state(&args.out);
            let stop = StopSignals::catch();
            tokio::select! {
                outcome = session.request_to_file_up_to(&frame, &args.out, max_bytes, replace, &mut progress) => {
                    outcome.map_err(|err| CliError::new(format!("{peer}: {err}")))
                }
                () = stop.wait() => Err(CliError::new(if out_state(&args.out) == before {
                    format!("{peer}: interrupted; nothing was written to {}", args.out.display())
                } else {
                    format!(
                        "{peer}: interrupted after the verified artifact was written to {}; \
                         the node may not have had our answer",
                        args.out.display()
                    )
                })),
            }
        };
        let outcome = closing(&client, requested).await;
        bar.finish_and_clear();
        match outcome? {
            RequestOutcome::Answered(answer) => {
                print_json(&answer.to_value());
                Ok(Outcome::Refused)
            }
            RequestOutcome::Received { push, answer } => {
                let descriptor = push.descriptor();
                let ingested = answer.operation() == Operation::Ingested;
                let mut report = json!({
                    "artifact": descriptor.map(|d| descriptor_json(&d)),
                    "answer": answer.operation().as_str(),
                    // The node's push echoed it (the client checked that it is ours).
                    "correlation/id": push.correlation_id(),
                });
                if ingested {
                    // Only then is there a file at --out.
                    report["out"] = json!(args.out.display().to_string());
                } else if let Some(response) = answer.to_value().get("response") {
                    // Why this side refused what it was sent (code and message).
                    report["response"] = response.clone();
                }
                print_json(&report);
                Ok(if ingested {
                    Outcome::Success
                } else {
                    Outcome::Refused
                })
            }
        }
    })
}

fn descriptor_json(d: &Descriptor) -> Value {
    json!({
        "schema": d.schema,
        "content/type": d.content_type,
        "artifact/id": d.artifact_id,
        "digest": d.digest.as_str(),
        "size/bytes": d.size_bytes,
    })
}

fn offer_json(offer: &OfferRecord, ledger: &SqliteLedger) -> Result<Value, LedgerError> {
    let consumed = match &offer.invitation_id {
        Some(id) => ledger.invitation(id)?.and_then(|i| i.consumed).is_some(),
        None => false,
    };
    Ok(json!({
        "id": offer.id,
        "peer": offer.peer.as_str(),
        "artifact": descriptor_json(&offer.descriptor),
        "correlation/id": offer.correlation_id,
        "state": offer.state.as_str(),
        "created-at-ms": offer.created_at_ms,
        "decided-at-ms": offer.decided_at_ms,
        "invitation/id": offer.invitation_id,
        "invitation/consumed": consumed,
    }))
}

fn inspect(data_dir: &Path) -> Result<NodeState, CliError> {
    NodeState::inspect(data_dir).map_err(|err| {
        // `orbi node run` keeps its INAC state one level down.
        let nested = data_dir.join(crate::node::INAC_DIR);
        match err {
            orbi_inac::StateError::Missing(_) if nested.join(NodeState::LEDGER_FILE).is_file() => {
                CliError::new(format!(
                    "{err}; an `orbi node` keeps it in {}: use --data-dir {}",
                    nested.display(),
                    nested.display()
                ))
            }
            missing @ orbi_inac::StateError::Missing(_) => CliError::new(missing.to_string()),
            other => CliError::new(format!(
                "cannot use the inac state in {}: {other}",
                data_dir.display()
            )),
        }
    })
}

fn offers(data_dir: &Path, action: Option<OffersAction>) -> Result<Outcome, CliError> {
    let mut ledger = inspect(data_dir)?.ledger;
    let ledger_error = |err: LedgerError| CliError::new(err.to_string());
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64;
    let (id, accept) = match action.unwrap_or(OffersAction::List) {
        OffersAction::List => {
            let list = ledger
                .offers()
                .map_err(ledger_error)?
                .iter()
                .map(|offer| offer_json(offer, &ledger))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ledger_error)?;
            print_json(&Value::Array(list));
            return Ok(Outcome::Success);
        }
        OffersAction::Accept { id } => (id, true),
        OffersAction::Reject { id } => (id, false),
    };
    match ledger.decide_offer(id, accept, now_ms) {
        Ok(offer) => {
            print_json(&offer_json(&offer, &ledger).map_err(ledger_error)?);
            Ok(Outcome::Success)
        }
        Err(err @ LedgerError::OfferDecided { .. }) => {
            // The offer as it stands, so that a script sees what was decided before.
            if let Some(offer) = ledger.offer(id).map_err(ledger_error)? {
                print_json(&offer_json(&offer, &ledger).map_err(ledger_error)?);
            }
            crate::exit::say(&err.to_string());
            Ok(Outcome::Refused)
        }
        Err(err) => Err(ledger_error(err)),
    }
}

fn store_list(data_dir: &Path) -> Result<Outcome, CliError> {
    let NodeState { store, ledger } = inspect(data_dir)?;
    let held = ledger
        .held_artifacts()
        .map_err(|err| CliError::new(err.to_string()))?;
    let objects = store
        .list()
        .map_err(|err| CliError::new(err.to_string()))?
        .into_iter()
        .map(|object| {
            let kinds: Vec<Value> = held
                .iter()
                .filter(|h| h.kept && h.descriptor.digest == object.digest)
                .map(|h| {
                    json!({
                        "schema": h.descriptor.schema,
                        "content/type": h.descriptor.content_type,
                        "artifact/id": h.descriptor.artifact_id,
                        "source/peer": h.source_peer.as_str(),
                    })
                })
                .collect();
            json!({
                "digest": object.digest.as_str(),
                "size/bytes": object.size_bytes,
                "path": (object.size_bytes > store.small_max() as u64)
                    .then(|| store.files().object_path(&object.digest).ok())
                    .flatten()
                    .map(|p| p.display().to_string()),
                "held-as": kinds,
            })
        })
        .collect();
    print_json(&Value::Array(objects));
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_min_body_rate_reaches_the_transport_of_serve_and_of_a_dialer() {
        let limits = TransportLimits {
            min_body_rate: Some(4096),
            ..TransportLimits::default()
        };
        assert_eq!(limits.transport("--").unwrap().min_body_rate, 4096);
        assert_eq!(
            TransportLimits::default()
                .transport("--")
                .unwrap()
                .min_body_rate,
            TransportConfig::default().min_body_rate
        );

        #[derive(Parser)]
        struct Dial {
            #[command(flatten)]
            target: Target,
        }
        let dial = Dial::try_parse_from([
            "orbi",
            "--key",
            "k.json",
            "--to",
            "x@127.0.0.1:1",
            "--schema",
            "s.v1",
            "--content-type",
            "t/t",
            "--min-body-rate",
            "2048",
        ])
        .unwrap();
        assert_eq!(dial.target.transport().unwrap().min_body_rate, 2048);
    }
}
