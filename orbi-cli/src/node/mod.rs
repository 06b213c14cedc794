//! `orbi node init|run`: one serving node that hosts pods, INAC and, optionally, the archivist
//! role on one QUIC endpoint.
//!
//! - **INAC** (ALPN `orbiplex-inac/1`): the receiver with the configured allowlist, budgets
//!   and kept kinds; the INAC store and ledger live in `DATA/inac`.
//! - **Pods** (ALPN `orbiplex-pod/1`, [`pod_service`]): lifecycle artifacts ride the
//!   authenticated connection they bind to; the read model is `DATA/pod.sqlite`.
//! - **Archivist** ([`archivist_role`]): the advertisement answers INAC requests, storage
//!   requests pushed over INAC are judged and their decisions recorded.
//!
//! The first stdout line is `{"node/id", "listen", "roles"}`; logs go to stderr (`RUST_LOG`,
//! default `info`). SIGINT or SIGTERM drains the exchanges in flight and stops; every state
//! (store, ledgers, read model, decisions) is on disk, so a restart carries on. At start,
//! attachments whose sessions died with the previous run are degraded (their grace then runs).

pub mod archivist_role;
pub mod client;
pub mod config;
pub mod pod_service;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use clap::Subcommand;
use orbi_archivist::Policy;
use orbi_inac::{
    KindRegistry, NodeState, Receiver,
    quic::{AppProtocol, Server},
    store::create_private_dir_all,
};
use orbi_pod::{PodEngine, SqliteStore};
use orbi_types::{KeyPair, NodeId};
use serde_json::json;
use time::OffsetDateTime;

use self::{
    archivist_role::{ArchivistRole, JSON, REQUEST_SCHEMA, SharedRole},
    config::NodeConfig,
    pod_service::{POD_ALPN, SharedEngine},
};
use crate::{CliError, Outcome, files::write_atomically, keys::read_key, pod::print_json};

/// Arguments of `orbi node`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Write a commented `node.toml` and a fresh key into DIR.
    Init {
        /// The node directory (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// UDP address the node will listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7400")]
        listen: std::net::SocketAddr,
        /// A node allowed to offer and push (repeatable; goes to `inac.allow`).
        #[arg(long, value_name = "NODE_ID")]
        allow: Vec<NodeId>,
        /// A kind to keep, SCHEMA or SCHEMA=CONTENT_TYPE (repeatable; goes to `inac.accept`).
        #[arg(long, value_name = "KIND")]
        accept: Vec<String>,
        /// Turn the archivist role on, publishing a default advertisement for this node.
        #[arg(long)]
        archivist: bool,
        /// Publish this advertisement file instead (copied into DIR; implies --archivist).
        #[arg(long, value_name = "FILE")]
        advertisement: Option<PathBuf>,
        /// Replace an existing config (the key, and an advertisement.json already in DIR unless
        /// --advertisement is given, are kept).
        #[arg(long)]
        force: bool,
    },
    /// Run the node described by a config file until SIGINT or SIGTERM (then exits 0). Exits
    /// 2 when the config or the state cannot be used, or when the INAC receiver or the pod
    /// engine stops after an internal error.
    Run {
        /// The config file (`orbi node init` writes one).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// The log level when `RUST_LOG` is unset: a running node reports its life at `info`; every
/// other command only at `warn`.
pub fn default_log_level(args: &Args) -> &'static str {
    match args.command {
        NodeCommand::Run { .. } => "info",
        _ => "warn",
    }
}

/// Runs `orbi node`.
pub fn run(args: Args) -> Result<Outcome, CliError> {
    match args.command {
        NodeCommand::Init {
            dir,
            listen,
            allow,
            accept,
            archivist,
            advertisement,
            force,
        } => init(
            &dir,
            InitOptions {
                listen,
                allow,
                accept,
                archivist: archivist || advertisement.is_some(),
                advertisement,
                force,
            },
        ),
        NodeCommand::Run { config } => {
            let config = NodeConfig::load(&config)?;
            let runtime = crate::inac::server_runtime()?;
            runtime.block_on(async move {
                let node = RunningNode::start(&config).await?;
                let stop = crate::inac::StopSignals::catch();
                outln!("{}", node.banner());
                {
                    use std::io::Write;
                    let _ = std::io::stdout().flush();
                }
                let failure = tokio::select! {
                    () = stop.wait() => None,
                    failure = node.failed() => Some(failure),
                };
                tracing::info!("shutting down");
                let stopped = node.stop().await;
                match failure {
                    Some(NodeFailure::PodEngine) => Err(CliError::new(
                        "the pod engine stopped after an internal error; restart the node",
                    )),
                    Some(NodeFailure::Receiver) => Err(CliError::new(
                        orbi_inac::quic::TransportError::ReceiverFailed.to_string(),
                    )),
                    None => stopped
                        .map(|()| Outcome::Success)
                        .map_err(|err| CliError::new(err.to_string())),
                }
            })
        }
    }
}

/// What `orbi node init` writes.
pub struct InitOptions {
    /// The UDP address to listen on.
    pub listen: std::net::SocketAddr,
    /// `inac.allow`.
    pub allow: Vec<NodeId>,
    /// `inac.accept`.
    pub accept: Vec<String>,
    /// Whether the archivist role is on.
    pub archivist: bool,
    /// The advertisement to publish (default: [`archivist_role::default_advertisement`]).
    pub advertisement: Option<PathBuf>,
    /// Replace an existing config (the key, and an existing advertisement unless one is
    /// given, are kept).
    pub force: bool,
}

fn init(dir: &Path, options: InitOptions) -> Result<Outcome, CliError> {
    let key = write_node_dir(dir, &options)?;
    print_json(&json!({
        "config": dir.join("node.toml").display().to_string(),
        "key": dir.join("node.key").display().to_string(),
        "node/id": key.node_id().as_str(),
        "participant/id": key.participant_id().as_str(),
    }));
    Ok(Outcome::Success)
}

/// Where a node keeps its INAC state, under its data directory (what `orbi inac store` and
/// `orbi inac offers` take as `--data-dir`).
pub const INAC_DIR: &str = "inac";

/// Writes a node directory: `node.key` (made once, never replaced), `node.toml` and, with the
/// archivist role, `advertisement.json`. Returns the node's key.
pub fn write_node_dir(dir: &Path, options: &InitOptions) -> Result<KeyPair, CliError> {
    let io = |path: &Path, err: std::io::Error| {
        CliError::new(format!("cannot write {}: {err}", path.display()))
    };
    for kind in &options.accept {
        config::parse_kind(kind).map_err(|why| CliError::new(format!("--accept {why}")))?;
    }
    let key_path = dir.join("node.key");
    let fresh_key = !key_path.exists();
    let key = if fresh_key {
        KeyPair::from_seed(&*crate::keys::random_seed()?)
    } else {
        read_key(&key_path)?
    };
    // A given advertisement is read and checked (for this node's key, new or kept) before
    // anything is written: `node run` would refuse it anyway, after the key had been made.
    let target = dir.join("advertisement.json");
    let given = match &options.advertisement {
        Some(file) if options.archivist => {
            let bytes = archivist_role::read_advertisement(file, &key.node_id())?;
            // Copying a file onto itself would truncate it.
            (!same_file(file, &target)).then_some(bytes)
        }
        None if options.archivist && target.exists() => {
            archivist_role::read_advertisement(&target, &key.node_id())?;
            None
        }
        _ => None,
    };
    let text = config::template(
        options.listen,
        options.archivist,
        &options.allow,
        &options.accept,
    );
    // Init never writes a config `node run` would refuse (a flag given twice, this node's
    // own id allowed).
    let checked = NodeConfig::parse(&text, dir).map_err(|problem| {
        CliError::new(format!("the node.toml to write is refused: {problem}"))
    })?;
    refuse_listing_itself(&checked, &key.node_id())?;
    create_private_dir_all(dir).map_err(|err| io(dir, err))?;
    let config_path = dir.join("node.toml");
    if config_path.exists() && !options.force {
        return Err(CliError::new(format!(
            "{} exists (use --force to replace it)",
            config_path.display()
        )));
    }
    if fresh_key {
        orbi_pod::keyfile::write(&key_path, &key, false)
            .map_err(|err| CliError::new(err.to_string()))?;
    }
    if options.archivist {
        let bytes = match &options.advertisement {
            Some(_) => given,
            // An advertisement already there may be the operator's own (checked above):
            // --force replaces the config only.
            None if target.exists() => None,
            None => Some(
                serde_json::to_vec_pretty(&archivist_role::default_advertisement(&key.node_id()))
                    .map_err(|err| CliError::new(err.to_string()))?,
            ),
        };
        if let Some(bytes) = bytes {
            write_atomically(&target, &bytes).map_err(|err| io(&target, err))?;
        }
    }
    write_atomically(&config_path, text.as_bytes()).map_err(|err| io(&config_path, err))?;
    Ok(key)
}

/// A node listing its own id as a peer has a pasted id in place of the peer's: refused, naming
/// the setting (`peers` ⊂ `inac.allow` ⊂ the pod peers, so the first match is where it is).
fn refuse_listing_itself(config: &NodeConfig, own: &NodeId) -> Result<(), CliError> {
    let settings = [
        ("peers", config.peers.iter().any(|peer| &peer.node == own)),
        ("inac.allow", config.inac.allowed_peers.contains(own)),
        ("pod.allow", config.pod_peers.contains(own)),
    ];
    match settings.iter().find(|(_, listed)| *listed) {
        Some((setting, _)) => Err(CliError::new(format!(
            "{setting} lists this node's own id {own}: a node is never its own peer"
        ))),
        None => Ok(()),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Why a running node stopped on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFailure {
    /// The INAC receiver stopped after an internal error (see
    /// [`orbi_inac::quic::Server::receiver_failed`]).
    Receiver,
    /// A panic stopped the pod engine (see [`SharedEngine::broken`]).
    PodEngine,
}

/// A node serving on its endpoint.
pub struct RunningNode {
    server: Server,
    pod: SharedEngine,
    archivist: Option<Arc<ArchivistRole>>,
    timers: tokio::task::JoinHandle<()>,
    roles: Vec<&'static str>,
}

impl RunningNode {
    /// Opens every state under the config's data directory and starts serving. Must be called
    /// inside a tokio runtime.
    pub async fn start(config: &NodeConfig) -> Result<RunningNode, CliError> {
        let key = read_key(&config.key)?;
        refuse_listing_itself(config, &key.node_id())?;
        let made = crate::files::MadeDirs::before_creating(&config.data_dir);
        made.unless_started(Self::start_with(config, key).await)
    }

    async fn start_with(config: &NodeConfig, key: KeyPair) -> Result<RunningNode, CliError> {
        let data = &config.data_dir;
        // The role is checked first: a config it refuses leaves no data directory behind.
        let archivist = match &config.archivist {
            Some(role) => {
                let policy = Policy {
                    strict_mode_fit: role.strict_mode_fit,
                    ..Policy::default()
                };
                let role = ArchivistRole::open(&role.advertisement, &key.node_id(), data, policy)?;
                use orbi_types::archivist::PublicationScope;
                for scope in [
                    PublicationScope::FederationVault,
                    PublicationScope::PublicVault,
                ] {
                    if role.advertisement().accepts_scope(scope) {
                        tracing::warn!(
                            scope = scope.as_str(),
                            "the advertisement accepts a scope this role refuses \
                             (curation-missing: a storage request carries no curation evidence)"
                        );
                    }
                }
                Some(Arc::new(role))
            }
            None => None,
        };
        create_private_dir_all(data)
            .map_err(|err| CliError::new(format!("cannot create {}: {err}", data.display())))?;
        let mut kinds = KindRegistry::builder();
        for (schema, content_type) in &config.accept {
            kinds = kinds.keep(schema, content_type.as_deref());
        }
        if let Some(role) = &archivist {
            kinds = kinds.accept(REQUEST_SCHEMA, Some(JSON), SharedRole(role.clone()));
        }
        let kinds = kinds
            .build()
            .map_err(|conflicts| CliError::new(conflicts.to_string()))?;
        let NodeState { store, ledger } =
            NodeState::open(&data.join(INAC_DIR), config.inac_durability)
                .map_err(|err| CliError::new(err.to_string()))?;
        let mut receiver = Receiver::new(key.clone(), config.inac.clone(), kinds, store, ledger);
        if let Some(role) = &archivist {
            receiver.set_publisher(Some(Arc::new(SharedRole(role.clone()))));
        }
        let engine = open_pod_engine(&key, config, data)?;
        let pod = {
            let engine = engine.clone();
            let allowed = Arc::new(config.pod_peers.clone());
            AppProtocol::new(POD_ALPN, move |connection| {
                pod_service::serve(engine.clone(), allowed.clone(), connection)
            })
        };
        let server = Server::bind_with(
            config.listen,
            key,
            receiver,
            config.transport.clone(),
            vec![pod],
        )
        .map_err(|err| CliError::new(err.to_string()))?;
        let timers = {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                for second in 0u64.. {
                    every.tick().await;
                    pod_service::tick(&engine, second % 60 == 59).await;
                }
            })
        };
        for peer in &config.peers {
            tracing::info!(peer = %peer.node, addr = %peer.addr, "known peer");
        }
        let mut roles = vec!["inac", "pod"];
        if archivist.is_some() {
            roles.push("archivist");
        }
        Ok(RunningNode {
            server,
            pod: engine,
            archivist,
            timers,
            roles,
        })
    }

    /// The first line `orbi node run` prints.
    pub fn banner(&self) -> serde_json::Value {
        json!({
            "node/id": self.server.node_id().as_str(),
            "listen": self.server.local_addr().to_string(),
            "roles": self.roles,
        })
    }

    /// The node's address, as clients dial it.
    pub fn peer_addr(&self) -> orbi_inac::quic::PeerAddr {
        orbi_inac::quic::PeerAddr::new(self.server.node_id().clone(), self.server.local_addr())
    }

    /// Whether the node's INAC store holds `digest`.
    pub async fn holds(&self, digest: &orbi_types::Sha256Digest) -> bool {
        let digest = digest.clone();
        self.server
            .with_receiver(move |receiver| receiver.store().contains(&digest).unwrap_or(false))
            .await
            .unwrap_or(false)
    }

    /// Resolves when a part the node cannot serve without stops after an internal error, and
    /// says which: the node should then stop, and a restart recovers from what is on disk.
    pub async fn failed(&self) -> NodeFailure {
        tokio::select! {
            () = self.server.receiver_failed() => NodeFailure::Receiver,
            () = self.pod.broken() => NodeFailure::PodEngine,
        }
    }

    /// Drains the exchanges in flight and stops; everything is on disk already.
    pub async fn stop(self) -> Result<(), orbi_inac::quic::TransportError> {
        self.timers.abort();
        let receiver = self.server.shutdown().await?;
        let stats = receiver.stats();
        tracing::info!(
            frames = stats.frames,
            ingested = stats.ingested,
            refused = stats.refused,
            decisions = self
                .archivist
                .as_ref()
                .map_or(0, |role| role.decision_count()),
            "node stopped"
        );
        Ok(())
    }
}

fn open_pod_engine(
    key: &KeyPair,
    config: &NodeConfig,
    data: &Path,
) -> Result<SharedEngine, CliError> {
    let store = SqliteStore::open(
        &data.join("pod.sqlite"),
        &key.node_id(),
        config.pod_limits,
        config.pod_durability,
    )
    .map_err(|err| CliError::new(err.to_string()))?;
    let mut engine = PodEngine::new(key.clone(), config.pod.clone(), store)
        .map_err(|err| CliError::new(err.to_string()))?;
    // Sessions of the previous run are gone: their attachments lost keepalive at the stop.
    let degraded = engine
        .degrade_orphans(OffsetDateTime::now_utc())
        .map_err(|err| CliError::new(err.to_string()))?;
    if !degraded.is_empty() {
        tracing::info!(
            count = degraded.len(),
            "attachments of ended sessions degraded"
        );
    }
    Ok(SharedEngine::new(engine))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node on an ephemeral loopback port, with no peers and no kinds.
    fn loopback_options(archivist: bool) -> InitOptions {
        InitOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            allow: Vec::new(),
            accept: Vec::new(),
            archivist,
            advertisement: None,
            force: false,
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_node_directory_and_its_data_are_readable_by_its_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("node");
        let options = loopback_options(true);
        write_node_dir(&dir, &options).unwrap();
        let config = NodeConfig::load(&dir.join("node.toml")).unwrap();
        let node = RunningNode::start(&config).await.unwrap();
        node.stop().await.unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let data = &config.data_dir;
        for private_dir in [&dir, data, &data.join("archivist").join("decisions")] {
            assert_eq!(mode(private_dir), 0o700, "{}", private_dir.display());
        }
        assert_eq!(mode(&data.join("inac")), 0o700);
        for database in [
            data.join("pod.sqlite"),
            data.join("inac").join("inac.sqlite"),
        ] {
            assert_eq!(mode(&database), 0o600, "{}", database.display());
        }
    }

    /// An attachment still attached when the node stopped has lost its session: a restart
    /// degrades it at once (its grace then runs), not at the next minute's sweep.
    #[tokio::test]
    async fn a_start_degrades_the_attachments_of_the_previous_runs_sessions() {
        use orbi_pod::{
            AttachmentState, Session, Store,
            compose::{self, AttachmentDraft, BindDraft},
        };
        use orbi_types::{
            Timestamp,
            pod::{ProfileType, SessionState},
        };
        let dir = tempfile::tempdir().unwrap();
        write_node_dir(dir.path(), &loopback_options(false)).unwrap();
        let config = NodeConfig::load(&dir.path().join("node.toml")).unwrap();
        let key = read_key(&config.key).unwrap();
        create_private_dir_all(&config.data_dir).unwrap();
        {
            let store = SqliteStore::open(
                &config.data_dir.join("pod.sqlite"),
                &key.node_id(),
                config.pod_limits,
                config.pod_durability,
            )
            .unwrap();
            let mut engine = PodEngine::new(key.clone(), config.pod.clone(), store).unwrap();
            engine.open_session("sess:old", Session::default());
            let now = OffsetDateTime::now_utc();
            let at = Timestamp::from_instant(now).unwrap();
            let participant = KeyPair::from_seed(&[2; 32]);
            let bind = compose::sign_bind(
                &participant,
                &BindDraft {
                    bind_id: "pb:old".into(),
                    bound_at: at.clone(),
                    via: key.node_id(),
                    session_id: "sess:old".into(),
                    policy_annotations: None,
                },
            )
            .unwrap();
            let attachment = compose::attachment(
                &AttachmentDraft {
                    attachment_id: "attach:old".into(),
                    attached_at: at,
                    profile: ProfileType::PodClient,
                    serving_node: key.node_id(),
                    pod_user: None,
                    client_instance_id: "client:old".into(),
                    models_local: None,
                    state: SessionState::Attached,
                    export_capable: true,
                    migration_allowed: true,
                },
                bind,
            );
            let admitted = engine
                .admit(attachment.to_string().as_bytes(), "sess:old", now)
                .unwrap();
            assert_eq!(admitted.verdict, orbi_pod::Verdict::Admitted);
        }

        let node = RunningNode::start(&config).await.unwrap();

        let state = pod_service::with_engine(&node.pod, |engine| {
            engine
                .store()
                .attachment("attach:old")
                .unwrap()
                .unwrap()
                .state
        })
        .await;
        assert_eq!(state, Some(AttachmentState::Degraded));
        node.stop().await.unwrap();
    }

    #[test]
    fn a_node_listing_itself_as_a_known_peer_is_told_which_setting() {
        let own = KeyPair::from_seed(&[7; 32]).node_id();
        let config = NodeConfig::parse(
            &format!(
                "key = \"k\"\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n\
                 peers = [\"{own}@127.0.0.1:9\"]\n"
            ),
            Path::new("/etc/orbi"),
        )
        .unwrap();
        assert_eq!(
            refuse_listing_itself(&config, &own)
                .unwrap_err()
                .to_string(),
            format!("peers lists this node's own id {own}: a node is never its own peer")
        );
        let other = KeyPair::from_seed(&[8; 32]).node_id();
        assert!(refuse_listing_itself(&config, &other).is_ok());
    }

    #[tokio::test]
    async fn a_running_node_reports_a_broken_pod_engine_as_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        let options = loopback_options(false);
        write_node_dir(dir.path(), &options).unwrap();
        let node = RunningNode::start(&NodeConfig::load(&dir.path().join("node.toml")).unwrap())
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), node.failed())
                .await
                .is_err(),
            "a healthy node has not failed"
        );

        pod_service::with_engine(&node.pod, |_| panic!("injected")).await;

        let failure = tokio::time::timeout(Duration::from_secs(5), node.failed()).await;
        assert_eq!(failure, Ok(NodeFailure::PodEngine));
        node.stop().await.unwrap();
    }
}
