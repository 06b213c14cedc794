//! Transport settings, and the quinn/rustls configurations built from them. Both the INAC
//! [`super::Server`]/[`super::Client`] and raw-quinn baselines (benchmarks, tests) use these
//! builders, so that they run on exactly the same TLS and flow-control settings.

use std::{
    collections::BTreeSet,
    net::{SocketAddr, UdpSocket},
    sync::Arc,
    time::Duration,
};

use orbi_types::{KeyPair, NodeId};
use quinn::{EndpointConfig, IdleTimeout, VarInt};
use rustls::{
    client::Resumption,
    crypto::CryptoProvider,
    server::{AlwaysResolvesServerRawPublicKeys, NoServerSessionStorage},
};

use super::{
    ALPN, TransportError,
    identity::{AnyNode, ExpectedNode, certified_key},
};

/// Connection credit kept free of stream bodies, for frames and the headers of pushes that
/// are still being decided (see [`TransportConfig::receive_window`]).
pub const FRAME_ROOM: u64 = 8 * 1024 * 1024;

/// How the QUIC transport behaves. [`TransportConfig::default`] is the tuned default (spec §8
/// plus what the benchmarks showed).
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Close a connection after this long without any packet (default 30 s).
    pub idle_timeout: Duration,
    /// Send a keep-alive after this long without traffic (default 10 s).
    pub keep_alive: Duration,
    /// Per-stream receive window, bytes (default 8 MiB).
    pub stream_receive_window: u32,
    /// Per-connection receive window, bytes (default 40 MiB). Bodies held up by a receiver
    /// slower than its sender keep their stream windows full, and frames share this credit
    /// with them: it should exceed [`crate::ReceiverConfig::stream_pushes_per_peer`] stream
    /// windows by at least [`FRAME_ROOM`] (by default 4 × 8 MiB + 8 MiB), or a peer's frames
    /// wait behind its own bodies ([`crate::quic::Server::bind_with`] warns).
    pub receive_window: u32,
    /// Unacknowledged bytes a sender may have in flight per connection (default 16 MiB).
    pub send_window: u64,
    /// `SO_RCVBUF`/`SO_SNDBUF` of the UDP socket (default 4 MiB; the kernel may cap it at
    /// `net.core.rmem_max`/`wmem_max`).
    pub socket_buffer_bytes: usize,
    /// Exchanges (bidirectional streams) a peer may have open on one connection at once
    /// (default 32).
    pub max_concurrent_exchanges: u32,
    /// How long a sender waits for the answer after its frame (stream mode: after the body's
    /// FIN), spec `response_timeout_ms` (default 5 s).
    pub response_timeout: Duration,
    /// How long a listener waits for the initiating frame of an opened exchange, a dialer for
    /// the peer to grant it a stream, and either side for any byte of a frame it writes to
    /// move (default 30 s).
    pub frame_timeout: Duration,
    /// A stream body with no progress for this long is reset with `0x6` (default 15 min).
    pub stall_timeout: Duration,
    /// The slowest average a stream body may move at, bytes per second (default 64 KiB/s): a
    /// body of `size` bytes not done within the stall timeout plus `size / min_body_rate` is
    /// reset with `0x6`, so that a peer sending (or taking) one byte just inside each stall
    /// timeout cannot hold a transfer for longer. A 1 GiB body gets 15 min + 4 h 33 min.
    pub min_body_rate: u64,
    /// Size of each buffer a body is copied into before it is hashed and written (default
    /// 1 MiB; three are used per body).
    pub body_buffer_bytes: usize,
    /// Most decisions the receiver makes (and commits) as one group (default 16: small enough
    /// that the network and the receiver overlap, large enough to amortize each commit).
    pub group_max: usize,
    /// Nodes whose connections are closed right after the handshake (`0x101`).
    pub barred_peers: BTreeSet<NodeId>,
    /// Connections a listener keeps at once, handshakes included (default 512); beyond it
    /// new attempts are refused after the address check (a QUIC Retry) and before the TLS
    /// handshake (QUIC `CONNECTION_REFUSED`). Each connection may buffer up to
    /// [`TransportConfig::receive_window`] bytes, plus up to 256 KiB of an unfinished control
    /// frame in each of its [`TransportConfig::max_concurrent_exchanges`] exchanges (40 + 8 MiB
    /// by default: 24 GiB for 512), so this bounds a listener's memory against anyone who can
    /// reach it; lower them on a small host.
    pub max_connections: usize,
    /// Connections one peer may keep at once (default 32); the next is closed with `0x103`
    /// right after the handshake.
    pub max_connections_per_peer: usize,
    /// Connections (handshakes included) from one address at once (default 128): an IPv4
    /// address or an IPv6 /64, so that a few hosts cannot take every place of
    /// [`TransportConfig::max_connections`] however many keys they make. Refused like
    /// connections over that limit, before the TLS handshake.
    pub max_connections_per_address: usize,
    /// Connections held at once by peers this node does not know (default 256): peers outside
    /// the receiver's [`crate::ReceiverConfig::allowed_peers`] and
    /// [`crate::ReceiverConfig::request_peers`] and [`TransportConfig::known_peers`]. The rest
    /// of [`TransportConfig::max_connections`] stays free for the peers it knows, however many
    /// keys strangers make; a stranger's connection beyond it is closed with `0x103` right
    /// after the handshake. 0 lets no stranger hold a connection; it must be below
    /// `max_connections`. Peers admitted by other means than those lists (a passport from a
    /// trusted issuer, open offers, a node asking back what it delivered) are strangers here.
    /// A stranger's INAC connection with no exchange in flight for
    /// [`TransportConfig::idle_timeout`] is closed (`0x0`), keep-alives or not, so that idle
    /// connections cannot keep these places from other strangers.
    pub max_guest_connections: usize,
    /// Peers that count as known for [`TransportConfig::max_guest_connections`] besides the
    /// receiver's allowed and request peers (e.g. the clients an application protocol admits).
    pub known_peers: BTreeSet<NodeId>,
    /// Handshakes one address (as for [`TransportConfig::max_connections_per_address`]) may
    /// have in progress at once (default 16): before its handshake a dialer's key is unknown,
    /// so this is what keeps a few hosts from holding the places known peers need to start
    /// theirs. Refused like connections over the address limit.
    pub max_handshakes_per_address: usize,
    /// Handshakes in progress at once from addresses no known peer has connected from
    /// (default 128), but never more than half of what
    /// [`TransportConfig::max_guest_connections`] leaves of
    /// [`TransportConfig::max_connections`] (at least one; see
    /// [`TransportConfig::unfamiliar_handshake_places`]). A known peer's finished handshake
    /// makes its address familiar (the listener remembers each known peer's latest
    /// [`FAMILIAR_ADDRESSES_PER_PEER`] since it started); handshakes from familiar addresses do
    /// not count here. So strangers using however many addresses and keys hold at most the
    /// guest places after their handshakes and these before, and the rest of
    /// `max_connections` stays for known peers coming back from addresses they used before.
    /// Strangers sharing such an address (behind the same NAT, in the same IPv6 /64) share
    /// its places too, up to the per-address limits. Must be above zero: a peer's first
    /// connection comes from an unfamiliar address. Refused like connections over the
    /// address limit.
    pub max_unfamiliar_handshakes: usize,
    /// How long a dialer has to complete its handshake once its address is proven (default
    /// 10 s); a dialer that stalls it loses its place.
    pub handshake_timeout: Duration,
    /// How long a graceful shutdown waits for in-flight exchanges (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            stream_receive_window: 8 * 1024 * 1024,
            receive_window: 40 * 1024 * 1024,
            send_window: 16 * 1024 * 1024,
            socket_buffer_bytes: 4 * 1024 * 1024,
            max_concurrent_exchanges: 32,
            response_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(15 * 60),
            min_body_rate: 64 * 1024,
            body_buffer_bytes: 1024 * 1024,
            group_max: 16,
            barred_peers: BTreeSet::new(),
            max_connections: 512,
            max_connections_per_peer: 32,
            max_connections_per_address: 128,
            max_guest_connections: 256,
            known_peers: BTreeSet::new(),
            max_handshakes_per_address: 16,
            max_unfamiliar_handshakes: 128,
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How many addresses (IPv4 addresses or IPv6 /64s) of each known peer a listener remembers
/// as familiar ([`TransportConfig::max_unfamiliar_handshakes`]): its latest; a fifth forgets
/// the one it used longest ago.
pub const FAMILIAR_ADDRESSES_PER_PEER: usize = 4;

/// The largest [`TransportConfig::body_buffer_bytes`]: spec §8.5's bounded buffers are at
/// most 8 MiB (the upstream chunk ceiling).
pub const MAX_BODY_BUFFER_BYTES: usize = 8 * 1024 * 1024;

impl TransportConfig {
    /// The connection credit `bodies` stream bodies, each with a full stream window, leave for
    /// frames; `None` when they can take all of it.
    pub fn room_beside(&self, bodies: usize) -> Option<u64> {
        let held = u64::from(self.stream_receive_window).saturating_mul(bodies as u64);
        u64::from(self.receive_window).checked_sub(held)
    }

    /// Checks every setting against its range, so that a mistaken value is an error naming
    /// it rather than a limit silently switched off (a zero or oversized idle timeout would
    /// disable it; a zero response timeout would fail every exchange). Run by every
    /// constructor of a quinn configuration in this module.
    pub fn validate(&self) -> Result<(), TransportError> {
        let bad = |setting: &'static str, reason: &str| {
            Err(TransportError::Config {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.idle_timeout.is_zero() || IdleTimeout::try_from(self.idle_timeout).is_err() {
            return bad(
                "idle_timeout",
                "must be above zero and at most 2^62 ms (zero would disable it)",
            );
        }
        for (setting, value) in [
            ("keep_alive", self.keep_alive),
            ("response_timeout", self.response_timeout),
            ("frame_timeout", self.frame_timeout),
            ("stall_timeout", self.stall_timeout),
            ("handshake_timeout", self.handshake_timeout),
        ] {
            if value.is_zero() {
                return bad(setting, "must be above zero");
            }
        }
        // The negotiated idle timeout is the lower of both ends': a peer waiting for an answer
        // longer than that, with no keep-alive in between, loses the connection.
        if self.keep_alive >= self.idle_timeout {
            return bad(
                "keep_alive",
                "must be below idle_timeout, or an idle connection times out before it is kept alive",
            );
        }
        if self.min_body_rate == 0 {
            return bad(
                "min_body_rate",
                "must be above zero (zero would disable it)",
            );
        }
        if !(4096..=MAX_BODY_BUFFER_BYTES).contains(&self.body_buffer_bytes) {
            return bad("body_buffer_bytes", "must be between 4 KiB and 8 MiB");
        }
        for (setting, value) in [
            (
                "stream_receive_window",
                u64::from(self.stream_receive_window),
            ),
            ("receive_window", u64::from(self.receive_window)),
            ("send_window", self.send_window),
            (
                "max_concurrent_exchanges",
                u64::from(self.max_concurrent_exchanges),
            ),
            ("group_max", self.group_max as u64),
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_peer",
                self.max_connections_per_peer as u64,
            ),
            (
                "max_connections_per_address",
                self.max_connections_per_address as u64,
            ),
            (
                "max_handshakes_per_address",
                self.max_handshakes_per_address as u64,
            ),
            (
                "max_unfamiliar_handshakes",
                self.max_unfamiliar_handshakes as u64,
            ),
        ] {
            if value == 0 {
                return bad(setting, "must be above zero");
            }
        }
        if self.max_guest_connections >= self.max_connections {
            return bad(
                "max_guest_connections",
                "must be below max_connections, so that the peers this node knows keep places",
            );
        }
        Ok(())
    }

    /// How many handshakes from unfamiliar addresses a listener lets run at once:
    /// [`TransportConfig::max_unfamiliar_handshakes`], capped at half of what
    /// [`TransportConfig::max_guest_connections`] leaves of
    /// [`TransportConfig::max_connections`] (128 of 256 at the defaults), and at least one:
    /// when the guests leave a single place (say a total of 1), that place is shared with
    /// strangers' handshakes and nothing is reserved for known peers.
    ///
    /// ```
    /// use orbi_inac::quic::TransportConfig;
    /// assert_eq!(TransportConfig::default().unfamiliar_handshake_places(), 128);
    /// let small = TransportConfig { max_connections: 100, max_guest_connections: 50, ..Default::default() };
    /// assert_eq!(small.unfamiliar_handshake_places(), 25);
    /// ```
    pub fn unfamiliar_handshake_places(&self) -> usize {
        let left = self
            .max_connections
            .saturating_sub(self.max_guest_connections);
        self.max_unfamiliar_handshakes.min(left / 2).max(1)
    }

    /// The quinn transport parameters. `accept_exchanges`: whether the peer may open
    /// exchanges towards this side (listeners yes, dialers no).
    pub fn quinn_transport(&self, accept_exchanges: bool) -> quinn::TransportConfig {
        let mut transport = quinn::TransportConfig::default();
        transport
            // `validate` has checked that it converts.
            .max_idle_timeout(IdleTimeout::try_from(self.idle_timeout).ok())
            .keep_alive_interval(Some(self.keep_alive))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.receive_window))
            .send_window(self.send_window)
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .max_concurrent_bidi_streams(VarInt::from_u32(if accept_exchanges {
                self.max_concurrent_exchanges
            } else {
                0
            }));
        transport
    }
}

/// ring, TLS 1.3 suites only, AES-128-GCM first (the cheapest per byte with AES-NI).
fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|suite| suite.tls13().is_some());
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

fn tls_error(error: impl std::fmt::Display) -> TransportError {
    TransportError::Tls(error.to_string())
}

/// Tokio worker threads for a runtime that hosts a [`super::Server`]: one fewer than the
/// cores (at least one), since the server's receiver thread keeps a core busy of its own. On
/// two cores a second worker only adds wake-ups and work stealing: 1 KiB pushes ran ~12 %
/// faster with one (P2 in docs/benchmarks.md), and so did the raw-quinn baselines, which the
/// benchmark runs on the same count.
pub fn server_worker_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |cores| cores.get().saturating_sub(1))
        .max(1)
}

/// The listener's quinn configuration: TLS 1.3 only, ALPN `orbiplex-inac/1`, the node key as
/// a raw public key, mandatory client keys, no session tickets (so no resumption and no 0-RTT).
pub fn server_config(
    identity: &KeyPair,
    config: &TransportConfig,
) -> Result<quinn::ServerConfig, TransportError> {
    server_config_with_alpns(identity, config, vec![ALPN.to_vec()])
}

/// Like [`server_config`], offering the protocol ids `alpns` (in order of preference; the
/// dialer offers one, so the order only matters to dialers that offer several).
pub fn server_config_with_alpns(
    identity: &KeyPair,
    config: &TransportConfig,
    alpns: Vec<Vec<u8>>,
) -> Result<quinn::ServerConfig, TransportError> {
    config.validate()?;
    for alpn in &alpns {
        super::app::check_length(alpn)?;
    }
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(Arc::new(AnyNode::default()))
        .with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(
            certified_key(identity),
        )));
    tls.alpn_protocols = alpns;
    tls.max_early_data_size = 0;
    tls.send_tls13_tickets = 0;
    tls.session_storage = Arc::new(NoServerSessionStorage {});
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(tls_error)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(config.quinn_transport(true)));
    Ok(server)
}

/// A dialer's quinn configuration for reaching `expected`: the handshake fails unless the
/// server proves that node's key. `identity: None` sends no client key, which every INAC
/// listener refuses (useful only to test that it does).
pub fn client_config(
    identity: Option<&KeyPair>,
    expected: &NodeId,
    config: &TransportConfig,
) -> Result<quinn::ClientConfig, TransportError> {
    client_config_for_alpn(identity, expected, config, ALPN)
}

/// Like [`client_config`], offering the protocol id `alpn` instead of INAC's (an
/// [`super::AppProtocol`] of the listener).
pub fn client_config_for_alpn(
    identity: Option<&KeyPair>,
    expected: &NodeId,
    config: &TransportConfig,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, TransportError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExpectedNode::new(expected.clone())));
    let tls = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(certified_key(identity)),
        )),
        None => builder.with_no_client_auth(),
    };
    client_config_from_tls_for_alpn(tls, config, alpn)
}

/// Wraps a rustls client configuration with the INAC settings (ALPN, no SNI, no resumption,
/// no early data) and the transport parameters. Exposed for tests that need a hand-made TLS
/// identity.
pub fn client_config_from_tls(
    tls: rustls::ClientConfig,
    config: &TransportConfig,
) -> Result<quinn::ClientConfig, TransportError> {
    client_config_from_tls_for_alpn(tls, config, ALPN)
}

/// Like [`client_config_from_tls`], offering the protocol id `alpn`.
pub fn client_config_from_tls_for_alpn(
    mut tls: rustls::ClientConfig,
    config: &TransportConfig,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, TransportError> {
    config.validate()?;
    super::app::check_length(alpn)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    // The server name is meaningless with raw keys; sending none leaks nothing.
    tls.enable_sni = false;
    tls.resumption = Resumption::disabled();
    tls.enable_early_data = false;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_error)?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(config.quinn_transport(false)));
    Ok(client)
}

/// A rustls client builder with the INAC provider, for hand-made identities in tests.
pub fn tls_client_builder()
-> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, TransportError> {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)
}

/// A UDP socket on `addr` with the configured buffer sizes, wrapped in a quinn endpoint
/// (a listener when `server` is given).
pub fn endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
    config: &TransportConfig,
) -> Result<quinn::Endpoint, TransportError> {
    let bind = |source| TransportError::Bind { addr, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(bind)?;
    if addr.is_ipv6() {
        // Dual-stack where the system allows it; failure only narrows reachability.
        let _ = socket.set_only_v6(false);
    }
    for (name, result) in [
        (
            "receive",
            socket.set_recv_buffer_size(config.socket_buffer_bytes),
        ),
        (
            "send",
            socket.set_send_buffer_size(config.socket_buffer_bytes),
        ),
    ] {
        if let Err(error) = result {
            tracing::warn!(%error, buffer = name, "cannot size the udp socket buffer");
        }
    }
    socket.bind(&addr.into()).map_err(bind)?;
    let socket: UdpSocket = socket.into();
    let runtime = quinn::default_runtime().ok_or(TransportError::NoRuntime)?;
    quinn::Endpoint::new(EndpointConfig::default(), server, socket, runtime).map_err(bind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_window_leaves_frame_room_beside_a_peers_bodies() {
        let config = TransportConfig::default();
        let bodies = crate::ReceiverConfig::default().stream_pushes_per_peer;
        assert!(
            config
                .room_beside(bodies)
                .is_some_and(|room| room >= FRAME_ROOM)
        );
        let mut small = config.clone();
        small.receive_window = 16 * 1024 * 1024;
        assert_eq!(small.room_beside(bodies), None);
        assert_eq!(small.room_beside(1), Some(8 * 1024 * 1024));
    }

    fn rejected(edit: impl FnOnce(&mut TransportConfig)) -> &'static str {
        let mut config = TransportConfig::default();
        edit(&mut config);
        let key = KeyPair::from_seed(&[1; 32]);
        // The quinn configurations refuse it too, not only `validate`.
        assert!(server_config(&key, &config).is_err());
        match config.validate() {
            Err(TransportError::Config { setting, .. }) => setting,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn settings_out_of_range_are_errors_naming_the_setting() {
        assert!(TransportConfig::default().validate().is_ok());
        type Edit = fn(&mut TransportConfig);
        let cases: [(Edit, &str); 19] = [
            (|c| c.idle_timeout = Duration::ZERO, "idle_timeout"),
            (|c| c.keep_alive = c.idle_timeout, "keep_alive"),
            (|c| c.idle_timeout = Duration::from_secs(1), "keep_alive"),
            (
                |c| c.idle_timeout = Duration::from_secs(u64::MAX),
                "idle_timeout",
            ),
            (|c| c.response_timeout = Duration::ZERO, "response_timeout"),
            (|c| c.stall_timeout = Duration::ZERO, "stall_timeout"),
            (|c| c.min_body_rate = 0, "min_body_rate"),
            (
                |c| c.handshake_timeout = Duration::ZERO,
                "handshake_timeout",
            ),
            (
                |c| c.body_buffer_bytes = MAX_BODY_BUFFER_BYTES + 1,
                "body_buffer_bytes",
            ),
            (|c| c.body_buffer_bytes = 0, "body_buffer_bytes"),
            (|c| c.group_max = 0, "group_max"),
            (|c| c.max_connections = 0, "max_connections"),
            (
                |c| c.max_concurrent_exchanges = 0,
                "max_concurrent_exchanges",
            ),
            (
                |c| c.max_connections_per_peer = 0,
                "max_connections_per_peer",
            ),
            (
                |c| c.max_connections_per_address = 0,
                "max_connections_per_address",
            ),
            (
                |c| c.max_handshakes_per_address = 0,
                "max_handshakes_per_address",
            ),
            (
                |c| c.max_guest_connections = c.max_connections,
                "max_guest_connections",
            ),
            (|c| c.max_connections = 100, "max_guest_connections"),
            (
                |c| c.max_unfamiliar_handshakes = 0,
                "max_unfamiliar_handshakes",
            ),
        ];
        for (edit, setting) in cases {
            assert_eq!(rejected(edit), setting);
        }
        // Unfamiliar handshakes get at most half of what guests leave, and always one.
        for ((total, guests, unfamiliar), places) in [
            ((512, 256, 128), 128),
            ((512, 256, usize::MAX), 128),
            ((512, 500, 128), 6),
            ((512, 0, 128), 128),
            ((100, 50, 128), 25),
            ((100, 50, 7), 7),
            ((2, 1, 128), 1),
            ((1, 0, 128), 1),
        ] {
            let config = TransportConfig {
                max_connections: total,
                max_guest_connections: guests,
                max_unfamiliar_handshakes: unfamiliar,
                ..TransportConfig::default()
            };
            assert!(config.validate().is_ok());
            assert_eq!(
                config.unfamiliar_handshake_places(),
                places,
                "{total} {guests} {unfamiliar}"
            );
        }
        // Letting no stranger in is a policy, not a mistake.
        let closed = TransportConfig {
            max_guest_connections: 0,
            ..TransportConfig::default()
        };
        assert!(closed.validate().is_ok());
    }
}
