//! The listener: accepts connections, learns each peer's node id from its handshake proof,
//! and runs every exchange (one bidirectional stream) in its own task against the receiver
//! thread.

use std::{
    io::Read,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use orbi_types::{KeyPair, NodeId, inac::Operation, inac::RefusalCode};
use quinn::{RecvStream, SendStream};
use tokio::sync::{mpsc, watch};

use super::{
    ALPN, AppConnection, AppProtocol, ConnectionCode, SessionId, StreamCode, TransportConfig,
    TransportError,
    actor::{self, Decision, ReceiverHandle},
    app::{negotiated_alpn, offered_alpns},
    config::{FRAME_ROOM, endpoint, server_config_with_alpns},
    identity::peer_node_id,
    wire::{BodyClock, ReadFrameError, read_frame, write_frame_within},
};
use crate::{BodyEnd, Frame, IncomingBody, Receiver, Refusal, Verdict};

/// An INAC listener on one UDP socket.
///
/// ```no_run
/// # async fn serve(key: orbi_types::KeyPair, receiver: orbi_inac::Receiver) -> Result<(), Box<dyn std::error::Error>> {
/// use orbi_inac::quic::{Server, TransportConfig};
///
/// let server = Server::bind("127.0.0.1:0".parse()?, key, receiver, TransportConfig::default())?;
/// println!("listening on {} as {}", server.local_addr(), server.node_id());
/// tokio::signal::ctrl_c().await?;
/// let receiver = server.shutdown().await?; // drains in-flight exchanges
/// # drop(receiver); Ok(()) }
/// ```
pub struct Server {
    endpoint: quinn::Endpoint,
    node_id: NodeId,
    local_addr: SocketAddr,
    receiver: ReceiverHandle,
    thread: actor::Thread,
    shutdown: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    alive: mpsc::Sender<()>,
    drained: mpsc::Receiver<()>,
    apps_alive: mpsc::Sender<()>,
    apps_drained: mpsc::Receiver<()>,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("node_id", &self.node_id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// What every exchange task shares.
struct Context {
    receiver: ReceiverHandle,
    config: TransportConfig,
    /// How the receiver decodes frames; exchange tasks decode, the receiver only decides.
    decode: crate::DecodeOptions,
    /// The application protocols served beside INAC.
    apps: Vec<AppProtocol>,
    /// Connections each peer holds ([`TransportConfig::max_connections_per_peer`]).
    connections: crate::slots::PeerSlots,
    /// Connections (and handshakes) in progress ([`TransportConfig::max_connections`]).
    connection_permits: Arc<tokio::sync::Semaphore>,
    /// Connections per remote IP ([`TransportConfig::max_connections_per_address`]).
    addresses: crate::slots::Slots<std::net::IpAddr>,
    /// Handshakes in progress per remote IP ([`TransportConfig::max_handshakes_per_address`]).
    handshakes: crate::slots::Slots<std::net::IpAddr>,
    /// The peers this node knows: the receiver's allowed and request peers and
    /// [`TransportConfig::known_peers`]. Everyone else is a guest.
    known: std::collections::BTreeSet<NodeId>,
    /// Connections guests hold ([`TransportConfig::max_guest_connections`]).
    guest_permits: Arc<tokio::sync::Semaphore>,
    /// Address blocks known peers have connected from.
    familiar: super::familiar::FamiliarAddresses,
    /// Handshakes from other addresses ([`TransportConfig::unfamiliar_handshake_places`]).
    unfamiliar_permits: Arc<tokio::sync::Semaphore>,
}

impl Server {
    /// Binds `addr` and starts serving `receiver` as the node whose key is `identity` (the
    /// receiver must have been built with the same key). Must be called inside a tokio runtime.
    /// The same as [`Server::bind_with`] without application protocols.
    pub fn bind(
        addr: SocketAddr,
        identity: KeyPair,
        receiver: Receiver,
        config: TransportConfig,
    ) -> Result<Server, TransportError> {
        Self::bind_with(addr, identity, receiver, config, Vec::new())
    }

    /// Like [`Server::bind`], also serving `apps` on the same endpoint: a dialer picks INAC or
    /// one of them by ALPN ([`super::Client::connect_protocol`]); any other ALPN fails the
    /// handshake. Every protocol gets the same identity checks (raw keys both ways,
    /// [`TransportConfig::barred_peers`] closed before its handler runs) and the same
    /// [`SessionId`]. An app using [`ALPN`], two apps with one ALPN, or an ALPN outside 1 to
    /// 255 bytes is [`TransportError::Alpn`], before anything is bound.
    ///
    /// App handlers are not part of the graceful drain: [`Server::shutdown`] first lets the
    /// INAC exchanges in flight finish, then closes every connection (`0x0`), so the handlers
    /// see their connection end, and waits briefly for them to return.
    pub fn bind_with(
        addr: SocketAddr,
        identity: KeyPair,
        receiver: Receiver,
        config: TransportConfig,
        apps: Vec<AppProtocol>,
    ) -> Result<Server, TransportError> {
        let alpns = offered_alpns(&apps)?;
        let node_id = identity.node_id();
        if receiver.node_id() != node_id {
            return Err(TransportError::KeyMismatch {
                receiver: receiver.node_id(),
                key: node_id,
            });
        }
        let bodies = receiver.config().stream_pushes_per_peer;
        if config
            .room_beside(bodies)
            .is_none_or(|room| room < FRAME_ROOM)
        {
            tracing::warn!(
                receive_window = config.receive_window,
                stream_receive_window = config.stream_receive_window,
                stream_pushes_per_peer = bodies,
                "the connection window leaves under 8 MiB beside a peer's stream bodies: \
                 behind bodies to a slow disk, that peer's frames wait for credit"
            );
        }
        let decode = receiver.config().decode;
        let known = receiver
            .config()
            .allowed_peers
            .iter()
            .chain(&receiver.config().request_peers)
            .chain(&config.known_peers)
            .cloned()
            .collect();
        let tls = server_config_with_alpns(&identity, &config, alpns)?;
        let endpoint = endpoint(addr, Some(tls), &config)?;
        let local_addr = endpoint
            .local_addr()
            .map_err(|source| TransportError::Bind { addr, source })?;
        let (handle, thread) = actor::spawn(receiver, config.group_max)
            .map_err(|source| TransportError::Bind { addr, source })?;
        let (shutdown, watching) = watch::channel(false);
        let (alive, drained) = mpsc::channel(1);
        let (apps_alive, apps_drained) = mpsc::channel(1);
        let grace = config.shutdown_grace;
        let context = Arc::new(Context {
            receiver: handle.clone(),
            connection_permits: permits(config.max_connections),
            guest_permits: permits(config.max_guest_connections),
            familiar: super::familiar::FamiliarAddresses::new(
                super::config::FAMILIAR_ADDRESSES_PER_PEER,
            ),
            unfamiliar_permits: permits(config.unfamiliar_handshake_places()),
            known,
            config,
            decode,
            apps,
            connections: crate::slots::PeerSlots::default(),
            addresses: crate::slots::Slots::default(),
            handshakes: crate::slots::Slots::default(),
        });
        let accept = tokio::spawn(accept_loop(
            endpoint.clone(),
            context,
            watching,
            Alive {
                exchanges: alive.clone(),
                apps: apps_alive.clone(),
            },
        ));
        tracing::info!(%node_id, %local_addr, "inac listener started");
        Ok(Server {
            endpoint,
            node_id,
            local_addr,
            receiver: handle,
            thread,
            shutdown,
            accept,
            alive,
            drained,
            apps_alive,
            apps_drained,
            grace,
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id, as peers see it proven in the handshake.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// Resolves if the receiver (or the thread that syncs its ledger) stops after an internal
    /// error (a bug), or once a ledger sync has failed: from then on every exchange is
    /// answered with a retryable `handler-unavailable` refusal (`defer` for an offer; no
    /// success is reported after a failed sync), so whoever runs the server should shut it down
    /// ([`Server::shutdown`] then returns [`TransportError::ReceiverFailed`]) and restart it.
    /// Pending for as long as the receiver runs.
    pub async fn receiver_failed(&self) {
        let mut failed = self.thread.failed.clone();
        if failed.wait_for(|failed| *failed).await.is_err() {
            // The thread ended without failing (a shutdown): never resolve.
            std::future::pending::<()>().await;
        }
    }

    /// Runs `task` on the receiver, e.g. to read its ledger or record an operator decision.
    /// It runs between decision groups (the decisions queued before it are committed first,
    /// its own writes commit as it makes them) and its result is returned only once those
    /// writes are durable; if they could not be made durable the result is dropped and the
    /// error is [`TransportError::NotDurable`].
    pub async fn with_receiver<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Receiver) -> T + Send + 'static,
    ) -> Result<T, TransportError> {
        self.receiver.run(task).await.map_err(|error| match error {
            actor::RunError::Gone => TransportError::Closed,
            actor::RunError::NotDurable => TransportError::NotDurable,
        })
    }

    /// Stops accepting connections and exchanges, waits (up to
    /// [`TransportConfig::shutdown_grace`]) for the exchanges in flight to be answered, closes
    /// every connection with `0x0` (application protocols' too), waits up to 2 s for the
    /// application handlers to return, and returns the receiver, or
    /// [`TransportError::ReceiverFailed`] if it stopped after an internal error.
    pub async fn shutdown(self) -> Result<Receiver, TransportError> {
        let Server {
            endpoint,
            receiver,
            thread,
            shutdown,
            accept,
            alive,
            mut drained,
            apps_alive,
            mut apps_drained,
            grace,
            ..
        } = self;
        let _ = shutdown.send(true);
        // New connection attempts are refused from here on.
        endpoint.set_server_config(None);
        let _ = accept.await;
        drop(alive);
        if tokio::time::timeout(grace, drained.recv()).await.is_err() {
            tracing::warn!(
                ?grace,
                "exchanges still in flight at the end of the shutdown grace"
            );
        }
        endpoint.close(ConnectionCode::Done.varint(), b"shutting down");
        drop(apps_alive);
        if tokio::time::timeout(Duration::from_secs(2), apps_drained.recv())
            .await
            .is_err()
        {
            tracing::warn!("application handlers still running after their connections closed");
        }
        drop(receiver);
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        let join = thread.join;
        match tokio::task::spawn_blocking(move || join.join()).await {
            Ok(Ok(Some(receiver))) => Ok(receiver),
            _ => Err(TransportError::ReceiverFailed),
        }
    }
}

/// Held by every task the shutdown waits for; the channels close when the last is dropped.
#[derive(Clone)]
struct Alive {
    /// INAC connections and exchanges (drained gracefully).
    exchanges: mpsc::Sender<()>,
    /// Application handlers (ended by closing their connections).
    apps: mpsc::Sender<()>,
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    context: Arc<Context>,
    mut shutdown: watch::Receiver<bool>,
    alive: Alive,
) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = shutdown.changed() => break,
        };
        let Some(incoming) = incoming else { break };
        // The dialer proves it receives at its address (one round trip) before it may hold a
        // place: spoofed Initial packets then cost nothing but the Retry.
        if !incoming.remote_address_validated() && incoming.may_retry() {
            if let Err(error) = incoming.retry() {
                tracing::debug!(%error, "cannot send a retry");
            }
            continue;
        }
        let remote = incoming.remote_address();
        let block = address_block(remote.ip());
        let config = &context.config;
        let places = context
            .addresses
            .claim(&block, config.max_connections_per_address)
            .ok_or("its address is at its limit")
            .and_then(|from_address| {
                let handshake = context
                    .handshakes
                    .claim(&block, config.max_handshakes_per_address)
                    .ok_or("its address has too many handshakes")?;
                // Strangers' handshakes from however many addresses share these places, so
                // they cannot take every place from known peers coming back.
                let unfamiliar = if context.familiar.contains(&block) {
                    None
                } else {
                    let permit = context
                        .unfamiliar_permits
                        .clone()
                        .try_acquire_owned()
                        .map_err(|_| "handshakes from unfamiliar addresses are at their limit")?;
                    Some(permit)
                };
                let permit = context
                    .connection_permits
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| "the listener is at its limit")?;
                Ok(Places {
                    permit,
                    from_address,
                    handshake: Handshake {
                        _slot: handshake,
                        _unfamiliar: unfamiliar,
                    },
                })
            });
        let places = match places {
            Ok(places) => places,
            Err(why) => {
                tracing::debug!(%remote, "connection refused: {why}");
                incoming.refuse();
                continue;
            }
        };
        tokio::spawn(serve_connection(
            incoming,
            context.clone(),
            shutdown.clone(),
            alive.clone(),
            places,
        ));
    }
}

/// A semaphore of `count` permits (at most what tokio allows).
fn permits(count: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(
        count.min(tokio::sync::Semaphore::MAX_PERMITS),
    ))
}

/// What [`TransportConfig::max_connections_per_address`] counts as one address: an IPv4
/// address (also when it arrives IPv4-mapped on the dual-stack socket), or an IPv6 /64, the
/// block one host is usually given.
fn address_block(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            std::net::IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// The places a connection holds while it lives (given back when dropped).
struct Places {
    /// One of [`TransportConfig::max_connections`].
    permit: tokio::sync::OwnedSemaphorePermit,
    /// One of its address's [`TransportConfig::max_connections_per_address`].
    from_address: crate::slots::Slot<std::net::IpAddr>,
    /// Its handshake's places, until the handshake ends.
    handshake: Handshake,
}

/// The places a handshake holds until it ends.
struct Handshake {
    /// One of its address's [`TransportConfig::max_handshakes_per_address`].
    _slot: crate::slots::Slot<std::net::IpAddr>,
    /// From an unfamiliar address: one of [`TransportConfig::unfamiliar_handshake_places`].
    _unfamiliar: Option<tokio::sync::OwnedSemaphorePermit>,
}

async fn serve_connection(
    incoming: quinn::Incoming,
    context: Arc<Context>,
    mut shutdown: watch::Receiver<bool>,
    alive: Alive,
    places: Places,
) {
    let Places {
        permit: _permit,
        from_address: _from_address,
        handshake,
    } = places;
    let remote = incoming.remote_address();
    // Dropping the unfinished handshake closes it and frees its places; so does a shutdown.
    let handshake_done = tokio::select! {
        done = tokio::time::timeout(context.config.handshake_timeout, incoming) => done,
        _ = shutdown.changed() => return,
    };
    let connection = match handshake_done {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            tracing::debug!(%remote, %error, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "handshake not completed in time");
            return;
        }
    };
    drop(handshake);
    let peer = match peer_node_id(&connection) {
        Ok(peer) => peer,
        Err(error) => {
            tracing::debug!(%remote, %error, "peer proof unusable");
            connection.close(
                ConnectionCode::AuthFailed.varint(),
                b"authentication failed",
            );
            return;
        }
    };
    if context.config.barred_peers.contains(&peer) {
        tracing::info!(%peer, %remote, "barred peer refused");
        connection.close(ConnectionCode::PeerNotAllowed.varint(), b"peer not allowed");
        return;
    }
    let too_many = |why: &str| {
        tracing::info!(%peer, %remote, "{why}");
        connection.close(
            ConnectionCode::TooManyConnections.varint(),
            b"too many connections",
        );
    };
    // The peer's own limit first: a stranger over it must not hold a guest place meanwhile.
    let Some(_slot) = context
        .connections
        .claim(&peer, context.config.max_connections_per_peer)
    else {
        too_many("peer over its connection limit refused");
        return;
    };
    let guest = if context.known.contains(&peer) {
        // Its next handshake from here is not one of the unfamiliar ones.
        context.familiar.remember(&peer, address_block(remote.ip()));
        None
    } else {
        let Ok(permit) = context.guest_permits.clone().try_acquire_owned() else {
            too_many("unknown peer refused: guest connections at their limit");
            return;
        };
        Some(permit)
    };
    let session = SessionId::of(&connection);
    let protocol = negotiated_alpn(&connection);
    if protocol.as_deref() != Some(ALPN) {
        let Alive { exchanges, apps } = alive;
        drop(exchanges);
        serve_app(context, connection, peer, session, protocol, apps).await;
        return;
    }
    let Alive {
        exchanges: alive,
        apps,
    } = alive;
    drop(apps);
    tracing::debug!(%peer, %remote, session = ?session.as_ref().map(SessionId::as_str), "peer connected");
    // One handle per exchange in flight on this connection, beside this one.
    let in_flight = Arc::new(());
    let idle_timeout = context.config.idle_timeout;
    loop {
        let stream = tokio::select! {
            stream = connection.accept_bi() => stream,
            _ = shutdown.changed() => break,
            // Keep-alives keep an idle connection up; a stranger's must not hold its guest
            // place for ever.
            () = tokio::time::sleep(idle_timeout), if guest.is_some() => {
                if Arc::strong_count(&in_flight) == 1 {
                    tracing::debug!(%peer, %remote, "idle guest connection closed");
                    connection.close(ConnectionCode::Done.varint(), b"idle");
                    break;
                }
                continue;
            }
        };
        match stream {
            Ok((send, recv)) => {
                let exchange = exchange(context.clone(), peer.clone(), send, recv, alive.clone());
                let token = in_flight.clone();
                tokio::spawn(async move {
                    exchange.await;
                    drop(token);
                });
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "connection ended");
                break;
            }
        }
    }
}

/// Hands an authenticated connection of an application protocol to its handler, in this
/// connection's task, until the handler returns.
async fn serve_app(
    context: Arc<Context>,
    connection: quinn::Connection,
    peer: NodeId,
    session: Result<SessionId, TransportError>,
    protocol: Option<Vec<u8>>,
    _alive: mpsc::Sender<()>,
) {
    let app = protocol
        .as_deref()
        .and_then(|alpn| context.apps.iter().find(|app| app.alpn() == alpn))
        .cloned();
    // The context holds a handle to the receiver thread, which ends (and lets the shutdown
    // finish) only once every handle is gone: a handler that outlives the shutdown's wait
    // must not keep one.
    drop(context);
    let Some(app) = app else {
        // The TLS configuration offers only known protocols; this is a bug, not a peer error.
        tracing::error!(%peer, ?protocol, "connection with an unserved protocol");
        connection.close(
            ConnectionCode::ProtocolViolation.varint(),
            b"unknown protocol",
        );
        return;
    };
    let session = match session {
        Ok(session) => session,
        Err(error) => {
            tracing::warn!(%peer, %error, "no session id; connection closed");
            connection.close(ConnectionCode::AuthFailed.varint(), b"no session id");
            return;
        }
    };
    tracing::debug!(
        %peer,
        remote = %connection.remote_address(),
        session = session.as_str(),
        protocol = %String::from_utf8_lossy(app.alpn()),
        "application connection"
    );
    app.handle(AppConnection {
        peer,
        session,
        connection,
    })
    .await;
}

/// One exchange: read the initiating frame, let the receiver decide, carry out the decision.
async fn exchange(
    context: Arc<Context>,
    peer: NodeId,
    mut send: SendStream,
    mut recv: RecvStream,
    _alive: mpsc::Sender<()>,
) {
    let config = &context.config;
    let bytes = match read_frame(&mut recv, config.frame_timeout).await {
        Ok(bytes) => bytes,
        Err(error @ ReadFrameError::TooLarge { .. }) => {
            let _ = recv.stop(StreamCode::FrameTooLarge.varint());
            let refusal = Refusal::new(RefusalCode::Malformed, error.to_string());
            // Logged by the receiver; said anyway if it has stopped (the frame is malformed
            // whatever the receiver's state).
            let answer = match context.receiver.unread(peer, refusal.clone()).await {
                Ok(answer) => answer,
                Err(actor::Gone) => Frame::answer(None, &Verdict::Refuse(refusal)),
            };
            answer_and_finish(&mut send, &answer, config).await;
            return;
        }
        Err(error @ ReadFrameError::Timeout(_)) => {
            tracing::debug!(%peer, %error, "no frame on an opened exchange");
            let _ = recv.stop(StreamCode::ResponseTimeout.varint());
            let _ = send.reset(StreamCode::ResponseTimeout.varint());
            return;
        }
        Err(error) => {
            tracing::debug!(%peer, %error, "exchange abandoned before its frame");
            let _ = send.reset(StreamCode::Malformed.varint());
            return;
        }
    };
    let arrived = super::wire::stream_number(recv.id());
    let decoded = Frame::decode_with(&bytes, context.decode)
        .and_then(|frame| frame.check_stream(arrived).map(|()| frame));
    // Kept for the answer if the receiver has stopped and can no longer give one.
    let initiating = decoded
        .as_ref()
        .ok()
        .map(|frame| (frame.operation(), frame.correlation_id().map(str::to_owned)));
    let Ok(decision) = context.receiver.frame(peer.clone(), decoded).await else {
        let (operation, correlation) = initiating.unwrap_or((Operation::Push, None));
        let answer = receiver_stopped(operation, correlation.as_deref());
        let _ = recv.stop(StreamCode::after_answer(&answer).varint());
        answer_and_finish(&mut send, &answer, config).await;
        return;
    };
    match decision {
        Decision::Answer(answer) => {
            // Anything still arriving (a refused stream body) is not wanted: stop it.
            let _ = recv.stop(StreamCode::after_answer(&answer).varint());
            answer_and_finish(&mut send, &answer, config).await;
        }
        Decision::ReadBody(body) => {
            if let Some(answer) = receive_body(&context, &mut recv, &mut send, body).await {
                answer_and_finish(&mut send, &answer, config).await;
            }
        }
        Decision::Serve(serve, body) => {
            super::serve::serve_request(&peer, &mut send, &mut recv, serve, body, config).await;
        }
        Decision::NoAnswer => {
            let _ = recv.stop(StreamCode::Malformed.varint());
            let _ = send.finish();
        }
    }
}

/// The answer to an initiating `operation` once the receiver has stopped (a bug, or a failed
/// ledger sync; see [`Server::receiver_failed`]): retryable `handler-unavailable`, as every
/// answer the receiver withdraws after a failed sync, so the sender tries again after the
/// node's restart instead of reading an unexplained reset.
fn receiver_stopped(operation: Operation, correlation_id: Option<&str>) -> Frame {
    let refusal = Refusal::handler_unavailable("the receiver has stopped; retry later");
    Frame::answer(correlation_id, &Verdict::refusing(operation, refusal))
}

/// Sends `answer`, finishes the stream and waits (bounded) until the peer has it, so that a
/// shutdown right after cannot discard it. A peer that lets none of the answer through for
/// [`TransportConfig::frame_timeout`] gets the stream reset `0x4` instead (an honest peer's
/// connection may be busy with bodies for a while, but it moves).
pub(super) async fn answer_and_finish(
    send: &mut SendStream,
    answer: &Frame,
    config: &TransportConfig,
) {
    if !write_frame_within(send, answer, config).await {
        return;
    }
    let _ = send.finish();
    let _ = tokio::time::timeout(config.response_timeout, send.stopped()).await;
}

/// The body stage of an admitted stream push. Returns the answer to send, or `None` when the
/// stream can no longer carry one (the sender reset it, the connection is gone, it stalled).
async fn receive_body(
    context: &Context,
    recv: &mut RecvStream,
    send: &mut SendStream,
    body: IncomingBody,
) -> Option<Frame> {
    let config = &context.config;
    let correlation = body.correlation_id().map(str::to_owned);
    let (end, body) = copy_body(recv, body, config).await;
    match end {
        BodyEnd::Finished => {}
        BodyEnd::Stalled => {
            let _ = recv.stop(StreamCode::Stale.varint());
            let _ = send.reset(StreamCode::Stale.varint());
        }
        BodyEnd::Interrupted => {}
    }
    let peer = body.peer().clone();
    // Length and digest check, fsync: a blocking pool thread, not the receiver thread.
    let completed = tokio::task::spawn_blocking(move || body.complete(end))
        .await
        .ok()?;
    let answer = match context.receiver.finish(completed).await {
        Ok(answer) => answer,
        Err(actor::Gone) => receiver_stopped(Operation::Push, correlation.as_deref()),
    };
    tracing::debug!(%peer, ?end, answer = %answer.operation(), "stream push finished");
    if end != BodyEnd::Finished {
        return None;
    }
    if answer.operation() != Operation::Ingested && answer.operation() != Operation::AlreadyPresent
    {
        // A body that broke the protocol (too long) may still be arriving.
        let _ = recv.stop(StreamCode::after_answer(&answer).varint());
    }
    Some(answer)
}

/// Copies exactly the declared body from the stream into `body`: quinn's chunks are gathered
/// into a few [`TransportConfig::body_buffer_bytes`] buffers that a blocking thread hashes and
/// writes while the next one fills (handing quinn's small chunks over one by one costs far more
/// memory). Returns how the stream ended.
async fn copy_body(
    recv: &mut RecvStream,
    body: IncomingBody,
    config: &TransportConfig,
) -> (BodyEnd, IncomingBody) {
    const BUFFERS: usize = 3;
    let size = config.body_buffer_bytes.max(4096);
    let remaining = body.remaining();
    let (filled_tx, mut filled_rx) = mpsc::channel::<(Vec<u8>, usize)>(BUFFERS);
    let (free_tx, mut free_rx) = mpsc::channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = free_tx.try_send(Vec::new());
    }
    let failed = Arc::new(AtomicBool::new(false));
    let writer_failed = failed.clone();
    // A blocking thread only while a buffer is hashed and written, never while the peer is
    // slow: the pool is shared by every peer's bodies, and stuck ones must not drain it.
    let writer = tokio::spawn(async move {
        let mut body = body;
        while let Some((buffer, len)) = filled_rx.recv().await {
            let (written, buffer, failed) = tokio::task::spawn_blocking(move || {
                let failed = !body.is_failed() && body.write(&buffer[..len]).is_err();
                (body, buffer, failed)
            })
            .await
            // The write only ends by returning the body; a panic there is a bug.
            .unwrap_or_else(|error| panic!("inac body writer failed: {error}"));
            body = written;
            if failed {
                writer_failed.store(true, Ordering::Relaxed);
            }
            let _ = free_tx.send(buffer).await;
        }
        body
    });
    let pump = Pump {
        recv,
        filled: filled_tx,
        // Too slow on average counts as stalled: the same `0x6`, the same interrupted transfer.
        clock: BodyClock::start(config, remaining),
        failed: &failed,
    };
    let end = pump.run(&mut free_rx, remaining, size).await;
    let body = match writer.await {
        Ok(body) => body,
        // The writer only ends by returning the body; a panic there is a bug.
        Err(error) => panic!("inac body writer failed: {error}"),
    };
    (end, body)
}

/// The reading half of [`copy_body`].
struct Pump<'a> {
    recv: &'a mut RecvStream,
    filled: mpsc::Sender<(Vec<u8>, usize)>,
    clock: BodyClock,
    failed: &'a AtomicBool,
}

/// One read, as the body stage sees it.
enum Read1 {
    Bytes(usize),
    Fin,
    End(BodyEnd),
}

impl Pump<'_> {
    async fn read(&mut self, buffer: &mut [u8]) -> Read1 {
        match self.clock.step(self.recv.read(buffer)).await {
            Err(_) => Read1::End(BodyEnd::Stalled),
            Ok(Ok(Some(n))) => Read1::Bytes(n),
            Ok(Ok(None)) => Read1::Fin,
            Ok(Err(_)) => Read1::End(BodyEnd::Interrupted),
        }
    }

    async fn run(
        mut self,
        free: &mut mpsc::Receiver<Vec<u8>>,
        mut remaining: u64,
        size: usize,
    ) -> BodyEnd {
        loop {
            let Some(mut buffer) = free.recv().await else {
                return BodyEnd::Interrupted;
            };
            if buffer.len() < size {
                buffer.resize(size, 0);
            }
            if remaining == 0 {
                // The body is complete: only the FIN may follow. Extra bytes go to the body,
                // which refuses them (`malformed`).
                return match self.read(&mut buffer).await {
                    Read1::Fin => BodyEnd::Finished,
                    Read1::Bytes(n) => {
                        let _ = self.filled.send((buffer, n)).await;
                        BodyEnd::Finished
                    }
                    Read1::End(end) => end,
                };
            }
            let want = usize::try_from(remaining).map_or(size, |r| r.min(size));
            let mut len = 0;
            let mut fin = false;
            while len < want {
                match self.read(&mut buffer[len..want]).await {
                    Read1::Bytes(n) => len += n,
                    Read1::Fin => {
                        fin = true;
                        break;
                    }
                    Read1::End(end) => return end,
                }
            }
            remaining -= len as u64;
            if self.filled.send((buffer, len)).await.is_err() {
                return BodyEnd::Interrupted;
            }
            // A short body (FIN too early) or a failed write: stop reading; completing the
            // body says which.
            if fin || self.failed.load(Ordering::Relaxed) {
                return BodyEnd::Finished;
            }
        }
    }
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Answer(frame) => write!(f, "Answer({})", frame.operation()),
            Decision::ReadBody(body) => write!(f, "ReadBody({body:?})"),
            Decision::Serve(serve, _) => write!(f, "Serve({serve:?})"),
            Decision::NoAnswer => f.write_str("NoAnswer"),
        }
    }
}

/// A served body's source.
pub(super) type ServedBody = Option<Box<dyn Read + Send>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_an_ipv4_address_or_an_ipv6_block_of_64() {
        let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(address_block(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_block(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            address_block(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            address_block(ip("2001:db8:1:2::1")),
            address_block(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_block(ip("2001:db8:1:2::1")),
            address_block(ip("2001:db8:1:3::1"))
        );
    }
}
