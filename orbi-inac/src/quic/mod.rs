//! INAC over QUIC (quinn + rustls with ring), feature `quic`: the thin I/O layer around the
//! sans-IO [`crate::Receiver`].
//!
//! - **Identity.** TLS 1.3 only, ALPN [`ALPN`], 0-RTT and session resumption off. Both sides
//!   present their ed25519 node key as an RFC 7250 raw public key and sign the handshake with
//!   it; the verifiers in [`identity`] derive the peer's `node:did:key:…` from what the
//!   handshake proved. A dialer names the node it expects ([`PeerAddr`], `NODE_ID@HOST:PORT`)
//!   and the handshake fails if the listener proves another key; the listener learns the
//!   dialer's id from the dialer's proof and hands it to the receiver as the authenticated peer.
//! - **Application protocols.** [`Server::bind_with`] serves [`AppProtocol`]s beside INAC on
//!   the same UDP endpoint; the dialer picks one by ALPN ([`Client::connect_protocol`]) and
//!   any other ALPN fails the handshake. They share INAC's identity rules and session id and
//!   hand each connection, with the proven dialer, to the protocol's handler ([`app`] has
//!   the details).
//! - **Session id.** [`SessionId`]: `sess:` + base64url of 32 bytes exported from the TLS
//!   session with the label [`SESSION_EXPORTER_LABEL`] and an empty context; both ends compute
//!   it independently.
//! - **Exchanges.** One bidirectional stream per exchange, opened by the dialer; control frames
//!   are a `u32` big-endian length plus UTF-8 JSON ([`wire`]), at most 256 KiB. A stream-mode
//!   push is its header frame followed by exactly `size/bytes` raw bytes; the receiver decides
//!   on the header before reading any body byte and stops a refused body with `STOP_SENDING`
//!   ([`StreamCode`]), so a refused 1 GiB push costs at most the flow-control windows.
//! - **Receiver thread.** The [`Server`] runs the receiver on one thread fed by every exchange
//!   task. It decides whatever is waiting as one group and commits the group's ledger writes
//!   once before any of its answers leaves (group commit): durable answers cost one commit per
//!   group instead of one per decision. Bodies are hashed and written on blocking threads,
//!   never on the receiver thread, so a slow peer delays nobody else.
//!
//! # Decisions where the spec leaves room (or where we deviate)
//!
//! - **Identity binding: raw public keys in TLS, not the exporter-bound app handshake of spec
//!   §8.2 (B).** The issue asks for the node key in the handshake itself. Of its two options
//!   we chose RFC 7250 raw public keys over self-signed certificates: the 44-byte
//!   `SubjectPublicKeyInfo` is compared byte for byte, with no X.509 parser, validity dates or
//!   names to get wrong, and no certificate generator (the handshake is signed by the node key
//!   through `orbi-types`' one ed25519 implementation). What (B) would add: the node id is
//!   not revealed to an active prober that completes a handshake with the listener (with raw
//!   keys the listener presents its key to anyone speaking `orbiplex-inac/1`; TLS 1.3 still
//!   encrypts it against passive observers, and the dialer's key is only sent after the
//!   listener proved its own). What it costs us: nothing per exchange, no extra round trip, no
//!   auth stream; the proof covers every byte of the connection. Consequences for §8.7: a
//!   failed proof ends the handshake with a TLS alert (QUIC `CRYPTO_ERROR` 0x1XX), so app
//!   code `0x100` is only used if a proof turns out unusable after the handshake; `0x101`
//!   closes a barred peer ([`TransportConfig::barred_peers`]) right after it.
//! - **No resumption, no 0-RTT, no SNI.** Session tickets are never issued, so every
//!   connection proves both keys afresh and nothing can be replayed early; the server name is
//!   meaningless with raw keys and is not sent.
//! - **Who may open exchanges.** The dialer opens them; a [`Client`] grants the peer no
//!   streams (the spec lets either side open one; a node that wants to push back dials).
//! - **Stop codes** ([`StreamCode::after`]). §8.5 stops a body refused at its header with
//!   `0x1`, §8.7 has `0x2` for a malformed frame. A side that has judged an exchange stops
//!   what may still arrive with `0x2` when its answer is `malformed` (an undecodable or
//!   invalid header, a body longer or shorter than declared) and `0x1` for every other
//!   refusal, decline or deferral, whether the judgement came before the body or after it,
//!   on the listener and on a requester taking a served artifact alike; `0x0` after a
//!   success.
//! - **Frames over 256 KiB** are refused from the length prefix alone: `STOP_SENDING(0x5)`
//!   and a `refused`/`malformed` answer (logged like any decision via
//!   [`crate::Receiver::refuse_unread`]), since a reset would leave no room for the answer.
//! - **Connection limits** (ours; the spec sets none). A dialer first proves its address (a
//!   QUIC Retry), so spoofed packets cannot hold places. A listener keeps at most
//!   [`TransportConfig::max_connections`] connections (default 512) and refuses further
//!   attempts with QUIC `CONNECTION_REFUSED` before the TLS handshake, and at most
//!   [`TransportConfig::max_connections_per_peer`] (default 32) per authenticated peer,
//!   closing the next with `0x103` right after the handshake; one address (an IPv4 address
//!   or an IPv6 /64) may hold at most [`TransportConfig::max_connections_per_address`]
//!   (default 128), refused like the rest before the handshake. Together with the receive
//!   windows (40 MiB each by default) and the control frames being read (a frame's bytes are
//!   taken out of the window as they arrive, so each of a connection's
//!   [`TransportConfig::max_concurrent_exchanges`] exchanges may hold up to 256 KiB of an
//!   unfinished frame for [`TransportConfig::frame_timeout`]: 8 MiB more by default; 48 MiB a
//!   connection, 24 GiB for 512) they bound what anyone who can reach the port can make the
//!   node buffer. Peers the node does not know (outside the
//!   receiver's allowed and request peers and [`TransportConfig::known_peers`]) share
//!   [`TransportConfig::max_guest_connections`] (default 256), so strangers with many keys
//!   cannot take the places of known peers; the next stranger is closed with `0x103`. Before
//!   its handshake a dialer's key is unknown, so handshakes are bounded per address instead
//!   ([`TransportConfig::max_handshakes_per_address`], 16) and in time
//!   ([`TransportConfig::handshake_timeout`], 10 s), and by familiarity: once a known peer
//!   has connected from an address, that address is familiar (each known peer's latest
//!   [`config::FAMILIAR_ADDRESSES_PER_PEER`] since the listener started), and handshakes from
//!   all other addresses share [`TransportConfig::unfamiliar_handshake_places`] (128 at the
//!   defaults: [`TransportConfig::max_unfamiliar_handshakes`], at most half of what the
//!   guests leave). So strangers on however many addresses (an IPv6 /48 holds 65 536 /64s)
//!   hold at most 256 + 128 places at the defaults, and the other 128 or more stay for known
//!   peers' connections, new ones from familiar addresses included. What remains: while
//!   strangers hold those places, a known peer's first handshake from an address it has not
//!   used since the listener started waits like a stranger's, and strangers sharing a
//!   familiar address (one IPv4 address behind NAT, one IPv6 /64) get up to its per-address
//!   limits outside both counts. Peers admitted by passports or open offers are strangers to
//!   both counts.
//! - **Per-peer cap on concurrent stream pushes** ([`crate::ReceiverConfig::stream_pushes_per_peer`],
//!   default 4) lives in the core, after every header check: the next push is refused
//!   `rate-limited` with `retry/after-ms` before its body. Stream-mode serves of `request`s
//!   have their own cap ([`crate::ReceiverConfig::stream_serves_per_peer`], default 4), and a
//!   requester that takes nothing of a served body for the stall timeout is given up on.
//! - **Timers.** The response timeout (5 s) runs from the end of what the sender sent (the
//!   body's FIN in stream mode, plus one second per 32 MiB of body: the answer follows the
//!   receiver's fsync of it, which a slow disk may take that long for); on expiry the sender
//!   resets with `0x4`. A listener waits
//!   [`TransportConfig::frame_timeout`] for the initiating frame and
//!   [`TransportConfig::stall_timeout`] (15 min) for body progress (then `0x6`, staged bytes
//!   removed). A killed peer sends nothing: the idle timeout (30 s) ends its transfers.
//!   **Beyond the spec:** a body must also be done within the stall timeout plus its size at
//!   [`TransportConfig::min_body_rate`] (64 KiB/s), on both sides and in both directions, or
//!   it is reset `0x6` too: the stall timeout alone resets on each byte, so a peer trickling
//!   one byte per 15 min could hold a transfer (and one of its peer's stream places) for ever.
//!   A dialer bounds its own waits the same way ([`ExchangeError::Stalled`],
//!   [`ExchangeError::TooSlow`]): opening an exchange (frame timeout), writing a frame
//!   (frame timeout without progress, and the frame's own deadline), every body step. A
//!   frame shares the connection's flow-control credit with the bodies on it, first come
//!   first served. Bodies held up by a receiver slower than its sender keep their stream
//!   windows full, so the connection window is sized to leave [`config::FRAME_ROOM`] (8 MiB)
//!   beside a peer's [`crate::ReceiverConfig::stream_pushes_per_peer`] bodies: frames and
//!   the next pushes' headers are still answered at once. With smaller windows a frame that
//!   gets no credit for the frame timeout is reset like a stalled one.
//! - **Durability.** Group commit never answers before the group is durable. With
//!   [`crate::Durability::Full`] the SQLite ledger commits without syncing and a syncer thread
//!   `fdatasync`s the WAL once per batch of groups before their answers leave
//!   ([`crate::Ledger::defer_sync`]), so the receiver decides the next group meanwhile.
//!   Small objects live in the ledger's database ([`crate::HybridStore`]), so one sync covers
//!   the object and its admission. `Durability::Relaxed` (`orbi inac serve --durability
//!   relaxed`) skips syncs and says so.
//! - **Buffers.** UDP socket buffers 4 MiB (loopback dropped packets at the default), stream
//!   window 8 MiB, connection window 40 MiB (above), send window 16 MiB; bodies are copied
//!   into three 1 MiB buffers that a blocking thread hashes and writes (handing quinn's small
//!   chunks over one by one costs several times the memory).
//!
//! # A push over loopback
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use orbi_inac::{Descriptor, Frame, KindRegistry, MemoryLedger, MemoryStore, Receiver,
//!     ReceiverConfig};
//! use orbi_inac::quic::{Client, PeerAddr, Server, TransportConfig};
//! use orbi_types::{KeyPair, inac::Operation};
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     let (node, sender) = (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]));
//!     let mut policy = ReceiverConfig::default();
//!     policy.allowed_peers.insert(sender.node_id());
//!     let kinds = KindRegistry::builder().keep("vendor.note.v1", None).build()?;
//!     let receiver = Receiver::new(node.clone(), policy, kinds, MemoryStore::new(), MemoryLedger::new());
//!     let server = Server::bind("127.0.0.1:0".parse()?, node.clone(), receiver, TransportConfig::default())?;
//!
//!     let peer = PeerAddr::new(node.node_id(), server.local_addr());
//!     let client = Client::for_peer(&peer, sender, TransportConfig::default())?;
//!     let session = client.connect(&peer).await?;
//!     let bytes = br#"{"note":"hello"}"#;
//!     let descriptor = Descriptor::of_bytes("vendor.note.v1", "application/json", bytes);
//!     let answer = session.exchange(&Frame::push_inline(&descriptor, bytes).build()?).await?;
//!     assert_eq!(answer.operation(), Operation::Ingested);
//!     client.close().await;
//!     server.shutdown().await?;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

mod actor;
pub mod app;
mod client;
pub mod config;
mod familiar;
pub mod identity;
mod serve;
mod server;
pub mod wire;

use std::{fmt, net::SocketAddr, str::FromStr};

use orbi_types::{NodeId, b64};

pub use app::{AlpnError, AppConnection, AppProtocol, negotiated_alpn};
pub use client::{
    Client, ExchangeError, ExistingFile, InlineOutcome, RequestOutcome, Session, Stall,
};
pub use config::TransportConfig;
pub use server::Server;
pub use wire::{ConnectionCode, StreamCode};

/// The ALPN protocol id of INAC; a connection offering neither it nor one of the listener's
/// [`AppProtocol`]s is refused in the handshake.
pub const ALPN: &[u8] = b"orbiplex-inac/1";

/// The TLS exporter label of the session id (RFC 8446 §7.5), with an empty context.
pub const SESSION_EXPORTER_LABEL: &[u8] = b"EXPORTER-orbiplex-inac-session-v1";

/// Why the transport could not start or connect.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The UDP socket could not be opened.
    #[error("cannot bind udp {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// No tokio runtime is running.
    #[error("the quic transport needs a running tokio runtime")]
    NoRuntime,
    /// The TLS configuration could not be built.
    #[error("tls configuration: {0}")]
    Tls(String),
    /// The receiver was built for another node than the transport key.
    #[error("the receiver serves {receiver} but the transport key is {key}")]
    KeyMismatch {
        /// The receiver's node.
        receiver: NodeId,
        /// The key's node.
        key: NodeId,
    },
    /// A connection attempt could not start.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The handshake or the connection failed (a peer proving another key ends here).
    #[error("connection to {addr} failed: {source}")]
    Connection {
        /// The address.
        addr: SocketAddr,
        /// What quinn reported.
        source: quinn::ConnectionError,
    },
    /// The listener did not prove the node the dialer named: another key, or none usable
    /// (our verifier ended the handshake with a `bad_certificate` alert).
    #[error("the listener at {addr} did not prove it is {expected}")]
    NotProven {
        /// The address dialled.
        addr: SocketAddr,
        /// The node named in `NODE_ID@HOST:PORT`.
        expected: NodeId,
    },
    /// The peer's proof names no usable node.
    #[error("{0}")]
    Identity(#[from] identity::IdentityError),
    /// The TLS session exports no keying material.
    #[error("cannot derive the session id: {0}")]
    SessionId(String),
    /// The server has shut down.
    #[error("the inac server has shut down")]
    Closed,
    /// The receiver stopped after an internal error (a bug), or its ledger failed to sync
    /// (an I/O error: decisions it had committed may not be on disk, so it answers nothing
    /// as a success any more). Restart the node: the ledger recovers what the disk holds.
    #[error(
        "the inac receiver stopped after an internal error or a failed ledger sync (see the log)"
    )]
    ReceiverFailed,
    /// A [`Server::with_receiver`] task ran, but the ledger failed to make its writes durable
    /// (they may be lost in a crash); its result was dropped.
    #[error("the receiver's ledger could not make the task's writes durable")]
    NotDurable,
    /// An application protocol id is unusable (reserved, duplicate, or of a bad length).
    #[error("{0}")]
    Alpn(#[from] AlpnError),
    /// A [`TransportConfig`] setting is out of its range.
    #[error("transport setting {setting}: {reason}")]
    Config {
        /// The setting (the field's name).
        setting: &'static str,
        /// Why it is unusable.
        reason: String,
    },
}

/// A node to dial: its id and where it listens, written `NODE_ID@HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    /// The node the listener must prove.
    pub node: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Why a `NODE_ID@HOST:PORT` text is not a peer address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerAddrError {
    /// No `@`.
    #[error("peer address {0:?} must be NODE_ID@HOST:PORT")]
    Shape(String),
    /// The node id is not a strict `node:did:key:z…` of an ed25519 key.
    #[error("peer node id {0:?} is not a strict node:did:key of an ed25519 key")]
    Node(String),
    /// The host and port do not resolve.
    #[error("peer address {0:?} does not resolve to a socket address")]
    Address(String),
}

impl PeerAddr {
    /// A peer address.
    pub fn new(node: NodeId, addr: SocketAddr) -> Self {
        PeerAddr { node, addr }
    }
}

impl FromStr for PeerAddr {
    type Err = PeerAddrError;

    /// Parses `NODE_ID@HOST:PORT`; the host is resolved with the system resolver (the first
    /// address wins).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (node, address) = text
            .rsplit_once('@')
            .ok_or_else(|| PeerAddrError::Shape(text.to_owned()))?;
        let node = NodeId::parse_strict(node).map_err(|_| PeerAddrError::Node(node.to_owned()))?;
        let addr = std::net::ToSocketAddrs::to_socket_addrs(address)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| PeerAddrError::Address(address.to_owned()))?;
        Ok(PeerAddr { node, addr })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.node, self.addr)
    }
}

/// The id of one authenticated connection, `sess:` + base64url of 32 exported bytes. Both ends
/// derive it from the TLS session ([`SESSION_EXPORTER_LABEL`]), so it needs no message and
/// cannot be replayed onto another connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// The session id of `connection`.
    pub fn of(connection: &quinn::Connection) -> Result<SessionId, TransportError> {
        let mut exported = [0u8; 32];
        connection
            .export_keying_material(&mut exported, SESSION_EXPORTER_LABEL, b"")
            .map_err(|error| TransportError::SessionId(format!("{error:?}")))?;
        Ok(SessionId(format!("sess:{}", b64::encode(&exported))))
    }

    /// The text, `sess:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
