//! `node.toml`: what one node serves, read once at start.
//!
//! Unknown keys are errors (a misspelt setting must not silently fall back to a default), and
//! every value is checked before the node binds its socket. Relative paths are resolved
//! against the directory of the config file, so a node directory can move as a whole.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use orbi_inac::{
    BudgetRule, Durability, ReceiverConfig,
    quic::{PeerAddr, TransportConfig},
};
use orbi_pod::{HostPolicy, RecoveryPolicy};
use orbi_schema::Profile;
use orbi_types::{NodeId, ParticipantId, PodUserId, inac::Operation};
use serde::Deserialize;

use crate::CliError;

/// The longest degraded grace: a year.
const MAX_GRACE_SEC: u64 = 365 * 24 * 3600;

/// The most bytes a config file may have.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    key: PathBuf,
    listen: SocketAddr,
    data_dir: PathBuf,
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    inac: RawInac,
    #[serde(default)]
    pod: RawPod,
    archivist: Option<RawArchivist>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawInac {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    accept: Vec<String>,
    #[serde(default)]
    durability: Option<String>,
    #[serde(default)]
    open_offers: bool,
    #[serde(default)]
    budgets: Vec<RawBudget>,
    max_connections: Option<usize>,
    max_connections_per_peer: Option<usize>,
    max_connections_per_address: Option<usize>,
    max_guest_connections: Option<usize>,
    max_unfamiliar_handshakes: Option<usize>,
    min_body_rate: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBudget {
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    operations: Vec<String>,
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(default)]
    content_types: Vec<String>,
    max_size_bytes: Option<u64>,
    max_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPod {
    #[serde(default)]
    allow: Vec<String>,
    profile: Option<String>,
    recovery: Option<String>,
    #[serde(default)]
    tenants: Vec<String>,
    degraded_grace_sec: Option<u64>,
    max_live_attachments_per_peer: Option<usize>,
    max_records: Option<usize>,
    durability: Option<String>,
    pod_client: Option<RawOffer>,
    hybrid: Option<RawOffer>,
}

/// What the host offers one profile (V10: attachments must declare exactly this).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawOffer {
    export_capable: bool,
    migration_allowed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawArchivist {
    advertisement: PathBuf,
    #[serde(default)]
    strict_mode_fit: bool,
}

/// A checked node configuration.
#[derive(Debug)]
pub struct NodeConfig {
    /// The node's key file.
    pub key: PathBuf,
    /// The UDP address to listen on.
    pub listen: SocketAddr,
    /// Where the INAC store and ledger, the pod read model and archival decisions live.
    pub data_dir: PathBuf,
    /// Known peers: trusted like `inac.allow`, and listed at start.
    pub peers: Vec<PeerAddr>,
    /// The INAC receiver's policy (allowlist, open offers, budgets).
    pub inac: ReceiverConfig,
    /// Kinds kept in the store: `(schema, content type or any)`.
    pub accept: Vec<(String, Option<String>)>,
    /// INAC ledger and store durability.
    pub inac_durability: Durability,
    /// The QUIC endpoint's settings (connection limits from `[inac]`, the rest default).
    pub transport: TransportConfig,
    /// Nodes that may open pod sessions: `pod.allow`, `inac.allow` and the known peers.
    pub pod_peers: std::collections::BTreeSet<NodeId>,
    /// The pod host policy.
    pub pod: HostPolicy,
    /// The pod read model's durability.
    pub pod_durability: orbi_pod::Durability,
    /// The pod read model's bounds.
    pub pod_limits: orbi_pod::StoreLimits,
    /// The archivist role, when the node has it.
    pub archivist: Option<ArchivistRole>,
}

/// The archivist role's settings.
#[derive(Debug)]
pub struct ArchivistRole {
    /// The advertisement file this node publishes.
    pub advertisement: PathBuf,
    /// Refuse, instead of noting, a retrieval mode narrower than the requested scope.
    pub strict_mode_fit: bool,
}

impl NodeConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<NodeConfig, CliError> {
        let text = read_bounded(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
            .map_err(|problem| CliError::new(format!("{}: {}", path.display(), clip(&problem))))
    }

    /// Checks the config `text`, resolving relative paths against `base`; the error names the
    /// setting and where it is.
    pub fn parse(text: &str, base: &Path) -> Result<NodeConfig, String> {
        let document = toml::Deserializer::parse(text).map_err(|err| toml_problem(text, &err))?;
        // The path names the setting a wrong value was found in, which the parser's own
        // message does not ("invalid type: string, expected usize").
        let raw: RawConfig = serde_path_to_error::deserialize(document).map_err(|err| {
            let problem = toml_problem(text, err.inner());
            match err.path().to_string() {
                root if root == "." => problem,
                setting => format!("{setting}: {problem}"),
            }
        })?;
        resolve(raw, base)
    }
}

/// `message` cut to a readable length: it may quote a value from the file, which a hostile
/// (or mistaken) file can make megabytes long.
fn clip(message: &str) -> String {
    const MOST: usize = 400;
    match message.char_indices().nth(MOST) {
        Some((at, _)) => format!("{}… (cut)", &message[..at]),
        None => message.to_owned(),
    }
}

/// What is wrong with the TOML `text`, and where: the parser's message with a line and column,
/// not its rendering, which quotes the whole offending line (megabytes, for a hostile file).
fn toml_problem(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} at line {line} column {column}")
        }
        None => message.to_owned(),
    }
}

fn read_bounded(path: &Path) -> Result<String, CliError> {
    let bytes = crate::files::read_file(path, MAX_CONFIG_BYTES)?;
    String::from_utf8(bytes)
        .map_err(|err| CliError::new(format!("{} is not UTF-8: {err}", path.display())))
}

fn resolve(raw: RawConfig, base: &Path) -> Result<NodeConfig, String> {
    let relative = |path: PathBuf| {
        if path.is_absolute() {
            path
        } else {
            base.join(path)
        }
    };
    let peers = raw
        .peers
        .iter()
        .map(|text| PeerAddr::from_str(text).map_err(|err| format!("peers: {text:?}: {err}")))
        .collect::<Result<Vec<_>, _>>()?;
    listed_once("peers", peers.iter().map(|peer| peer.node.as_str()))?;
    let mut inac = ReceiverConfig::default();
    for peer in &peers {
        inac.allowed_peers.insert(peer.node.clone());
    }
    listed_once("inac.allow", raw.inac.allow.iter().map(String::as_str))?;
    for text in &raw.inac.allow {
        inac.allowed_peers.insert(node_id(text, "inac.allow")?);
    }
    inac.open_offer_intake = raw.inac.open_offers;
    for (index, budget) in raw.inac.budgets.iter().enumerate() {
        inac.budgets
            .push(budget_rule(budget).map_err(|err| format!("inac.budgets[{index}]: {err}"))?);
    }
    let accept = raw
        .inac
        .accept
        .iter()
        .map(|kind| parse_kind(kind).map_err(|why| format!("inac.accept: {why}")))
        .collect::<Result<Vec<_>, _>>()?;
    listed_once("inac.accept", raw.inac.accept.iter().map(String::as_str))?;
    let inac_durability = match raw.inac.durability.as_deref() {
        None | Some("full") => Durability::Full,
        Some("relaxed") => Durability::Relaxed,
        Some(other) => return Err(format!("inac.durability: {other:?} is not full or relaxed")),
    };
    let mut transport = crate::inac::TransportLimits {
        total: raw.inac.max_connections,
        per_peer: raw.inac.max_connections_per_peer,
        per_address: raw.inac.max_connections_per_address,
        guests: raw.inac.max_guest_connections,
        unfamiliar: raw.inac.max_unfamiliar_handshakes,
        min_body_rate: raw.inac.min_body_rate,
    }
    .transport("inac.")?;
    let mut pod = HostPolicy::default();
    if let Some(profile) = &raw.pod.profile {
        pod.profile = Profile::from_str(profile)
            .map_err(|_| format!("pod.profile: {profile:?} is not seed or frozen"))?;
    }
    match raw.pod.recovery.as_deref() {
        None | Some("strict") => pod.recovery = RecoveryPolicy::Strict,
        Some("allow-replace-device") => pod.recovery = RecoveryPolicy::AllowReplaceDevice,
        Some(other) => {
            return Err(format!(
                "pod.recovery: {other:?} is not strict or allow-replace-device"
            ));
        }
    }
    for tenant in &raw.pod.tenants {
        let (user, participant) = tenant
            .split_once('=')
            .ok_or_else(|| format!("pod.tenants: {tenant:?} is not POD_USER=PARTICIPANT"))?;
        let user =
            PodUserId::from_str(user).map_err(|err| format!("pod.tenants: {user:?}: {err}"))?;
        let participant = ParticipantId::from_str(participant)
            .map_err(|err| format!("pod.tenants: {participant:?}: {err}"))?;
        if pod.tenancy.insert(user.clone(), participant).is_some() {
            return Err(format!("pod.tenants: {user} is listed twice"));
        }
    }
    let mut pod_peers = inac.allowed_peers.clone();
    listed_once("pod.allow", raw.pod.allow.iter().map(String::as_str))?;
    for text in &raw.pod.allow {
        pod_peers.insert(node_id(text, "pod.allow")?);
    }
    // Pod clients are no strangers: they keep their places beside the inac peers'.
    transport.known_peers.clone_from(&pod_peers);
    if let Some(seconds) = raw.pod.degraded_grace_sec {
        if seconds > MAX_GRACE_SEC {
            return Err(format!(
                "pod.degraded-grace-sec: {seconds} is over a year ({MAX_GRACE_SEC})"
            ));
        }
        let seconds = i64::try_from(seconds)
            .map_err(|_| format!("pod.degraded-grace-sec: {seconds} is too large"))?;
        pod.timings.degraded_grace = time::Duration::seconds(seconds);
    }
    if let Some(limit) = raw.pod.max_live_attachments_per_peer {
        pod.max_live_attachments_per_peer = limit;
    }
    let offer = |raw: &RawOffer| orbi_pod::Offer {
        export_capable: raw.export_capable,
        migration_allowed: raw.migration_allowed,
    };
    if let Some(raw) = &raw.pod.pod_client {
        pod.pod_client = offer(raw);
    }
    if let Some(raw) = &raw.pod.hybrid {
        pod.hybrid = offer(raw);
    }
    let mut pod_limits = orbi_pod::StoreLimits::default();
    match raw.pod.max_records {
        Some(0) => return Err("pod.max-records: must be above zero".into()),
        Some(records) => pod_limits.max_records = records,
        None => {}
    }
    let pod_durability = match raw.pod.durability.as_deref() {
        None | Some("full") => orbi_pod::Durability::Full,
        Some("normal") => orbi_pod::Durability::Normal,
        Some(other) => return Err(format!("pod.durability: {other:?} is not full or normal")),
    };
    Ok(NodeConfig {
        key: relative(raw.key),
        listen: raw.listen,
        data_dir: relative(raw.data_dir),
        peers,
        inac,
        accept,
        inac_durability,
        transport,
        pod_peers,
        pod,
        pod_durability,
        pod_limits,
        archivist: raw.archivist.map(|role| ArchivistRole {
            advertisement: relative(role.advertisement),
            strict_mode_fit: role.strict_mode_fit,
        }),
    })
}

/// Refuses an entry written twice in one list: a repeated line is usually a pasted one whose
/// intended replacement is missing, which a silent merge would hide.
fn listed_once<'a>(setting: &str, entries: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for entry in entries {
        if !seen.insert(entry) {
            return Err(format!("{setting}: {entry:?} is listed twice"));
        }
    }
    Ok(())
}

/// A node id the peer must be able to prove: a strict `node:did:key` (like `--allow`).
fn node_id(text: &str, field: &str) -> Result<NodeId, String> {
    NodeId::parse_strict(text).map_err(|err| format!("{field}: {text:?}: {err}"))
}

/// `SCHEMA` or `SCHEMA=CONTENT_TYPE`; the error says why, for the caller to prefix with the
/// setting or flag it came from.
pub fn parse_kind(kind: &str) -> Result<(String, Option<String>), String> {
    let (schema, content_type) = match kind.split_once('=') {
        Some((schema, content_type)) => (schema, Some(content_type)),
        None => (kind, None),
    };
    if schema.is_empty() || content_type.is_some_and(str::is_empty) {
        return Err(format!("{kind:?} must be SCHEMA or SCHEMA=CONTENT_TYPE"));
    }
    if schema == MEMARIUM_BLOB {
        return Err(format!(
            "{MEMARIUM_BLOB} cannot be kept as plain bytes: spec inac §4.1 wants its \
             baseline acceptor (plaintext custody refused, the signature checked), which orbi \
             does not build"
        ));
    }
    Ok((schema.to_owned(), content_type.map(str::to_owned)))
}

/// The kind whose custody the spec reserves to its own acceptor (inac §4.1).
const MEMARIUM_BLOB: &str = "memarium-blob.v1";

fn budget_rule(raw: &RawBudget) -> Result<BudgetRule, String> {
    Ok(BudgetRule {
        remote_node_ids: raw
            .peers
            .iter()
            .map(|text| node_id(text, "peers"))
            .collect::<Result<_, _>>()?,
        operations: raw
            .operations
            .iter()
            .map(|text| {
                Operation::from_str(text).map_err(|_| format!("operations: {text:?} is unknown"))
            })
            .collect::<Result<_, _>>()?,
        artifact_schemas: raw.schemas.clone(),
        content_types: raw.content_types.clone(),
        max_size_bytes: raw.max_size_bytes,
        max_per_minute: raw.max_per_minute,
    })
}

/// The commented config `orbi node init` writes: `allow` goes to `inac.allow` (and so may
/// open pod sessions), `accept` to `inac.accept`.
pub fn template(
    listen: SocketAddr,
    archivist: bool,
    allow: &[NodeId],
    accept: &[String],
) -> String {
    let list = |items: &mut dyn Iterator<Item = &str>| {
        let quoted: Vec<String> = items
            .map(|item| serde_json::Value::from(item).to_string())
            .collect();
        format!("[{}]", quoted.join(", "))
    };
    let allow = list(&mut allow.iter().map(NodeId::as_str));
    let accept = list(&mut accept.iter().map(String::as_str));
    let archivist = if archivist {
        "[archivist]\n\
         # This node keeps artifacts for others: it publishes this advertisement (answering an\n\
         # INAC `request` for archivist-advertisement.v1) and judges every pushed\n\
         # archival-storage-request.v1 against it. Its archivist/node-id must be this node.\n\
         advertisement = \"advertisement.json\"\n\
         # Refuse, instead of noting, a retrieval mode narrower than the requested scope.\n\
         strict-mode-fit = false\n"
    } else {
        "# [archivist]\n\
         # advertisement = \"advertisement.json\"   # turns the archivist role on\n"
    };
    format!(
        "# orbi node configuration. Relative paths are relative to this file.\n\
         \n\
         # The node's ed25519 key file (`orbi keys generate`); its node id is what peers dial.\n\
         key = \"node.key\"\n\
         # UDP address for QUIC (INAC and the pod protocol share it).\n\
         listen = \"{listen}\"\n\
         # Store, ledgers and the pod read model live here.\n\
         data-dir = \"data\"\n\
         # Known peers, NODE_ID@HOST:PORT: trusted like inac.allow.\n\
         peers = []\n\
         \n\
         [inac]\n\
         # Nodes that may offer and push without a passport. Empty denies everyone.\n\
         allow = {allow}\n\
         # Kinds kept in the store: \"SCHEMA\" or \"SCHEMA=CONTENT_TYPE\". Empty refuses every kind.\n\
         accept = {accept}\n\
         # full: every answer is on disk before it leaves; relaxed: the OS flushes later.\n\
         durability = \"full\"\n\
         # Let nodes outside `allow` offer (each offer waits for `orbi inac offers accept`).\n\
         open-offers = false\n\
         # Connections kept at once (INAC and pod sessions together), per peer node, and per\n\
         # IP address (handshakes included).\n\
         max-connections = 512\n\
         max-connections-per-peer = 32\n\
         max-connections-per-address = 128\n\
         # Connections held by nodes outside inac.allow, pod.allow and peers (0: none); it must\n\
         # be below max-connections. Default: 256, or half of a lower max-connections.\n\
         # max-guest-connections = 256\n\
         # Handshakes in progress from addresses none of those nodes has connected from (above\n\
         # 0). Default: 128; never more than half of what max-guest-connections leaves.\n\
         # max-unfamiliar-handshakes = 128\n\
         # The slowest average a stream body may move at after 15 min without progress, in\n\
         # bytes per second (above 0); slower bodies are reset. Lower it for slow links.\n\
         # min-body-rate = 65536\n\
         # Budgets, e.g.:\n\
         # [[inac.budgets]]\n\
         # schemas = [\"vendor.note.v1\"]\n\
         # max-size-bytes = 1048576\n\
         # max-per-minute = 600\n\
         \n\
         [pod]\n\
         # Nodes that may open pod sessions, besides inac.allow and the known peers.\n\
         allow = []\n\
         # Shape profile of pod artifacts: frozen (closed, upstream HEAD) or seed (open drafts).\n\
         profile = \"frozen\"\n\
         # strict, or allow-replace-device (a replace-device recovery may name a new client).\n\
         recovery = \"strict\"\n\
         # Hosted users, \"pod-user:did:key:…=participant:did:key:…\".\n\
         tenants = []\n\
         # How long an attachment whose session dropped stays degraded before it is detached\n\
         # with session-expired.\n\
         degraded-grace-sec = 90\n\
         # Live attachments all sessions of one client node may hold together (0 admits none).\n\
         max-live-attachments-per-peer = 25000\n\
         # Attachments and recoveries the read model keeps (each with its detachment, up to\n\
         # 64 KiB apiece: about 13 GB at worst for 100000, a few hundred MB typically); the\n\
         # oldest ended ones are evicted first, live ones never.\n\
         max-records = 100000\n\
         # full: fsync every commit; normal: WAL, may lose the last commits on power loss.\n\
         durability = \"full\"\n\
         # What the host offers each profile; attachments must declare exactly this (V10).\n\
         # Both on by default: users may export and leave.\n\
         # [pod.pod-client]\n\
         # export-capable = true\n\
         # migration-allowed = true\n\
         # [pod.hybrid]\n\
         # export-capable = true\n\
         # migration-allowed = true\n\
         \n\
         {archivist}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<NodeConfig, String> {
        NodeConfig::parse(text, Path::new("/etc/orbi"))
    }

    #[test]
    fn a_syntax_error_is_placed_without_quoting_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let long = "x".repeat(100_000);
        std::fs::write(&path, format!("[inac]\nallow = [\"{long}\" oops]\n")).unwrap();
        let error = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(
            error.len() < 300,
            "{} bytes: {}",
            error.len(),
            &error[..300]
        );
        assert!(error.contains("at line 2 column 100013"), "{error}");
        let good = template("127.0.0.1:7400".parse().unwrap(), false, &[], &[]);
        for hostile in [
            good.replacen("[inac]\n", &format!("[inac]\n{long} = 1\n"), 1),
            good.replacen("allow = []", &format!("allow = \"{long}\""), 1),
            good.replacen(
                "durability = \"full\"",
                &format!("durability = \"{long}\""),
                1,
            ),
        ] {
            assert_ne!(hostile, good);
            std::fs::write(&path, hostile).unwrap();
            let error = NodeConfig::load(&path).unwrap_err().to_string();
            assert!(
                error.len() < 600,
                "{} bytes: {}",
                error.len(),
                &error[..600]
            );
            assert!(error.ends_with("… (cut)"), "{error}");
        }
        std::fs::write(&path, "[inac]\nallowed = []\n").unwrap();
        let error = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(error.contains("unknown field `allowed`"), "{error}");
        assert!(error.contains("at line 2 column 1"), "{error}");
    }

    #[test]
    fn the_template_loads_with_its_defaults() {
        for archivist in [false, true] {
            let config = load(&template(
                "127.0.0.1:7400".parse().unwrap(),
                archivist,
                &[],
                &[],
            ))
            .unwrap();
            assert_eq!(config.key, Path::new("/etc/orbi/node.key"));
            assert_eq!(config.data_dir, Path::new("/etc/orbi/data"));
            assert!(config.inac.allowed_peers.is_empty());
            assert!(config.accept.is_empty());
            assert_eq!(config.pod.profile, Profile::Frozen);
            assert_eq!(
                config.pod.timings.degraded_grace,
                time::Duration::seconds(90)
            );
            assert_eq!(config.archivist.is_some(), archivist);
            assert_eq!(config.transport.max_connections, 512);
            assert_eq!(config.transport.max_connections_per_peer, 32);
            assert_eq!(config.transport.max_connections_per_address, 128);
            assert_eq!(config.transport.max_guest_connections, 256);
            assert_eq!(config.transport.unfamiliar_handshake_places(), 128);
            assert_eq!(config.pod.max_live_attachments_per_peer, 25_000);
            assert_eq!(config.pod_limits.max_records, 100_000);
        }
    }

    #[test]
    fn connection_limits_are_read_and_checked() {
        let base = "key = \"k\"\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n[inac]\n";
        let config = load(&format!(
            "{base}max-connections = 9\nmax-connections-per-peer = 3\nmax-guest-connections = 0\n"
        ))
        .unwrap();
        assert_eq!(
            (
                config.transport.max_connections,
                config.transport.max_connections_per_peer,
                config.transport.max_guest_connections,
            ),
            (9, 3, 0)
        );
        let error = load(&format!("{base}max-connections = 0\n")).unwrap_err();
        assert!(error.contains("inac.max-connections"), "{error}");
        // A lowered total keeps half of it for the peers the node knows, in a file written
        // from the template too ...
        let config = load(&format!("{base}max-connections = 100\n")).unwrap();
        assert_eq!(config.transport.max_guest_connections, 50);
        let text = template("127.0.0.1:7400".parse().unwrap(), false, &[], &[])
            .replace("max-connections = 512", "max-connections = 100");
        assert_eq!(load(&text).unwrap().transport.max_guest_connections, 50);
        // ... and strangers may never be given all of it.
        let error = load(&format!(
            "{base}max-connections = 100\nmax-guest-connections = 100\n"
        ))
        .unwrap_err();
        assert!(error.contains("inac.max-guest-connections"), "{error}");
        // The file's value is read and checked; the listener caps it at half of what the
        // guests leave.
        let config = load(&format!("{base}max-unfamiliar-handshakes = 7\n")).unwrap();
        assert_eq!(config.transport.max_unfamiliar_handshakes, 7);
        let config = load(&format!("{base}max-connections = 100\n")).unwrap();
        assert_eq!(config.transport.unfamiliar_handshake_places(), 25);
        let error = load(&format!("{base}max-unfamiliar-handshakes = 0\n")).unwrap_err();
        assert!(error.contains("inac.max-unfamiliar-handshakes"), "{error}");
        let config = load(&format!("{base}min-body-rate = 1024\n")).unwrap();
        assert_eq!(config.transport.min_body_rate, 1024);
        let error = load(&format!("{base}min-body-rate = 0\n")).unwrap_err();
        assert!(
            error.contains("inac.min-body-rate: must be above zero"),
            "{error}"
        );
    }

    #[test]
    fn peers_allow_kinds_and_budgets_are_parsed() {
        let node = orbi_types::KeyPair::from_seed(&[7; 32]).node_id();
        let pod_client = orbi_types::KeyPair::from_seed(&[8; 32]).node_id();
        let text = format!(
            "key = \"/k\"\nlisten = \"0.0.0.0:1\"\ndata-dir = \"d\"\npeers = [\"{node}@127.0.0.1:9\"]\n\
             [inac]\naccept = [\"a.v1\", \"b.v1=text/plain\"]\n\
             [[inac.budgets]]\noperations = [\"push\"]\nmax-per-minute = 3\n\
             [pod]\nallow = [\"{pod_client}\"]\nmax-live-attachments-per-peer = 7\nmax-records = 9\n\
             [pod.hybrid]\nexport-capable = true\nmigration-allowed = false\n"
        );
        let config = load(&text).unwrap();
        assert_eq!(config.key, Path::new("/k"));
        assert!(
            config.transport.known_peers.contains(&pod_client),
            "pod clients keep their connection places beside the inac peers'"
        );
        assert_eq!(config.pod.max_live_attachments_per_peer, 7);
        assert_eq!(config.pod_limits.max_records, 9);
        assert!(config.inac.allowed_peers.contains(&node));
        assert!(
            config.pod_peers.contains(&node),
            "known peers may open pod sessions"
        );
        assert_eq!(
            config.accept,
            [
                ("a.v1".to_owned(), None),
                ("b.v1".to_owned(), Some("text/plain".to_owned()))
            ]
        );
        assert_eq!(config.inac.budgets[0].operations, [Operation::Push]);
        assert_eq!(config.inac.budgets[0].max_per_minute, Some(3));
        assert!(!config.pod.hybrid.migration_allowed);
        assert!(config.pod.pod_client.migration_allowed);
    }

    /// Every setting the file may change reaches the node: a value read and then dropped
    /// would leave the node on its default with no word said.
    #[test]
    fn every_setting_reaches_the_node() {
        let peer = orbi_types::KeyPair::from_seed(&[7; 32]).node_id();
        let participant = orbi_types::KeyPair::from_seed(&[8; 32]).participant_id();
        let user = participant.as_str().replace("participant:", "pod-user:");
        let text = format!(
            "key = \"k\"\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n\
             [inac]\ndurability = \"relaxed\"\nopen-offers = true\n\
             [[inac.budgets]]\npeers = [\"{peer}\"]\nschemas = [\"a.v1\"]\n\
             content-types = [\"text/plain\"]\nmax-size-bytes = 1024\n\
             [pod]\nprofile = \"seed\"\nrecovery = \"allow-replace-device\"\n\
             tenants = [\"{user}={participant}\"]\n\
             degraded-grace-sec = {MAX_GRACE_SEC}\ndurability = \"normal\"\n\
             [pod.pod-client]\nexport-capable = false\nmigration-allowed = true\n\
             [archivist]\nadvertisement = \"ad.json\"\nstrict-mode-fit = true\n"
        );
        let config = load(&text).unwrap();
        assert_eq!(config.inac_durability, Durability::Relaxed);
        assert!(config.inac.open_offer_intake);
        assert_eq!(
            config.inac.budgets,
            [BudgetRule {
                remote_node_ids: [peer].into(),
                operations: Default::default(),
                artifact_schemas: vec!["a.v1".to_owned()],
                content_types: vec!["text/plain".to_owned()],
                max_size_bytes: Some(1024),
                max_per_minute: None,
            }]
        );
        assert_eq!(config.pod.profile, Profile::Seed);
        assert_eq!(config.pod.recovery, RecoveryPolicy::AllowReplaceDevice);
        assert_eq!(
            config.pod.tenancy,
            [(PodUserId::from_str(&user).unwrap(), participant)].into()
        );
        // A year is the longest grace, and allowed.
        assert_eq!(
            config.pod.timings.degraded_grace,
            time::Duration::seconds(i64::try_from(MAX_GRACE_SEC).unwrap())
        );
        assert_eq!(config.pod_durability, orbi_pod::Durability::Normal);
        assert_eq!(
            config.pod.pod_client,
            orbi_pod::Offer {
                export_capable: false,
                migration_allowed: true,
            }
        );
        let archivist = config.archivist.unwrap();
        assert_eq!(archivist.advertisement, Path::new("/etc/orbi/ad.json"));
        assert!(archivist.strict_mode_fit);
        // One second more is refused.
        let over = text.replace(
            &format!("degraded-grace-sec = {MAX_GRACE_SEC}"),
            &format!("degraded-grace-sec = {}", MAX_GRACE_SEC + 1),
        );
        assert_eq!(
            load(&over).unwrap_err(),
            format!(
                "pod.degraded-grace-sec: {} is over a year ({MAX_GRACE_SEC})",
                MAX_GRACE_SEC + 1
            )
        );
    }

    #[test]
    fn mistakes_are_named() {
        let base = "key = \"k\"\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n";
        for (extra, named) in [
            ("colour = 1\n", "colour"),
            ("[inac]\nallow = [\"node:nope\"]\n", "inac.allow"),
            ("[inac]\naccept = [\"=x\"]\n", "inac.accept"),
            (
                "[inac]\naccept = [\"a.v1=\"]\n",
                "inac.accept: \"a.v1=\" must be SCHEMA or SCHEMA=CONTENT_TYPE",
            ),
            (
                "[inac]\naccept = [\"memarium-blob.v1\"]\n",
                "inac.accept: memarium-blob.v1 cannot be kept as plain bytes",
            ),
            ("[inac]\ndurability = \"fast\"\n", "inac.durability"),
            ("[pod]\nprofile = \"draft\"\n", "pod.profile"),
            (
                "[pod]\ndegraded-grace-sec = 99999999999\n",
                "pod.degraded-grace-sec",
            ),
            ("[pod]\nallow = [\"x\"]\n", "pod.allow"),
            // The right shape, but no key a peer could prove (like `--allow`, refused).
            ("[pod]\nallow = [\"node:did:key:z1\"]\n", "pod.allow"),
            ("[pod]\ntenants = [\"x\"]\n", "pod.tenants"),
            ("[pod]\nmax-records = 0\n", "pod.max-records"),
            (
                "[[inac.budgets]]\noperations = [\"fly\"]\n",
                "inac.budgets[0]",
            ),
        ] {
            let error = load(&format!("{base}{extra}")).unwrap_err();
            assert!(error.contains(named), "{extra:?}: {error}");
        }
        let error = load("listen = \"127.0.0.1:1\"\ndata-dir = \"d\"\n").unwrap_err();
        assert!(error.starts_with("missing field `key`"), "{error}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_setting() {
        let base = "key = \"k\"\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n";
        for (extra, expected) in [
            (
                "[inac]\nmax-connections = \"many\"\n",
                "inac.max-connections: invalid type: string \"many\", expected usize at line 5",
            ),
            (
                "[pod]\ndegraded-grace-sec = -1\n",
                "pod.degraded-grace-sec: invalid value: integer `-1`, expected u64 at line 5",
            ),
            (
                "[[inac.budgets]]\nmax-per-minute = true\n",
                "inac.budgets[0].max-per-minute: invalid type: boolean `true`",
            ),
            (
                "peers = 3\n",
                "peers: invalid type: integer `3`, expected a sequence at line 4",
            ),
        ] {
            let error = load(&format!("{base}{extra}")).unwrap_err();
            assert!(error.starts_with(expected), "{extra:?}: {error}");
        }
    }

    #[test]
    fn an_entry_listed_twice_is_refused() {
        let node = orbi_types::KeyPair::from_seed(&[7; 32]).node_id();
        let participant = orbi_types::KeyPair::from_seed(&[8; 32]).participant_id();
        let other = orbi_types::KeyPair::from_seed(&[9; 32]).participant_id();
        let user = participant.as_str().replace("participant:", "pod-user:");
        let base = "key = \"k\"\nlisten = \"127.0.0.1:1\"\ndata-dir = \"d\"\n";
        for (extra, expected) in [
            (
                format!("peers = [\"{node}@127.0.0.1:9\", \"{node}@127.0.0.1:10\"]\n"),
                format!("peers: \"{node}\" is listed twice"),
            ),
            (
                format!("[inac]\nallow = [\"{node}\", \"{node}\"]\n"),
                format!("inac.allow: \"{node}\" is listed twice"),
            ),
            (
                "[inac]\naccept = [\"a.v1\", \"a.v1\"]\n".to_owned(),
                "inac.accept: \"a.v1\" is listed twice".to_owned(),
            ),
            (
                format!("[pod]\nallow = [\"{node}\", \"{node}\"]\n"),
                format!("pod.allow: \"{node}\" is listed twice"),
            ),
            (
                format!("[pod]\ntenants = [\"{user}={participant}\", \"{user}={other}\"]\n"),
                format!("pod.tenants: {user} is listed twice"),
            ),
        ] {
            assert_eq!(load(&format!("{base}{extra}")).unwrap_err(), expected);
        }
        // The same node in two lists is no slip: a known peer may be allowed explicitly.
        let config = load(&format!(
            "{base}peers = [\"{node}@127.0.0.1:9\"]\n[inac]\nallow = [\"{node}\"]\n\
             [pod]\nallow = [\"{node}\"]\n"
        ))
        .unwrap();
        assert!(config.pod_peers.contains(&node));
    }
}
