//! A node on loopback with a real `FsStore` and `SqliteLedger` in a temp dir, and clients.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use orbi_inac::{
    Acceptance, Delivery, Descriptor, Durability, Frame, HybridStore, KindRegistry, NodeState,
    Receiver, ReceiverConfig, Store,
    quic::{AppProtocol, Client, PeerAddr, Server, Session, TransportConfig, TransportError},
};
use orbi_types::{
    KeyPair, NodeId,
    inac::{Operation, RefusalCode},
};

pub const BLOB: &str = "vendor.blob.v1";
pub const OCTETS: &str = "application/octet-stream";

pub fn key(seed: u8) -> KeyPair {
    KeyPair::from_seed(&[seed; 32])
}

/// R, the listening node.
pub fn node_key() -> KeyPair {
    key(1)
}

/// P, the usual dialer.
pub fn peer_key() -> KeyPair {
    key(2)
}

/// Counts acceptor calls; keeps every artifact.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn calls(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Node {
    pub server: Option<Server>,
    /// Small objects in SQLite, large ones in files (the serving layout).
    pub store: HybridStore,
    pub accepted: Counter,
    pub dir: tempfile::TempDir,
}

pub struct Setup {
    pub policy: ReceiverConfig,
    pub transport: TransportConfig,
    pub apps: Vec<AppProtocol>,
    pub gate: Option<Gate>,
}

/// Holds staged stream bodies' writes until opened: a receiver whose disk has stopped.
#[derive(Clone, Default)]
pub struct Gate(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// Opens the gate when dropped, so that a failing test does not leave bodies waiting.
    pub fn opened_when_dropped(&self) -> impl Drop {
        struct Opener(Gate);
        impl Drop for Opener {
            fn drop(&mut self) {
                self.0.open();
            }
        }
        Opener(self.clone())
    }

    fn wait(&self) {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
    }
}

/// A store whose staged stream bodies wait at a [`Gate`] before each write.
struct GatedStore {
    inner: HybridStore,
    gate: Gate,
}

struct GatedWriter {
    inner: Box<dyn orbi_inac::store::StagingWriter>,
    gate: Gate,
}

impl Store for GatedStore {
    fn stage(&self) -> Result<Box<dyn orbi_inac::store::StagingWriter>, orbi_inac::StoreError> {
        Ok(Box::new(GatedWriter {
            inner: self.inner.stage()?,
            gate: self.gate.clone(),
        }))
    }

    fn contains(&self, digest: &orbi_types::Sha256Digest) -> Result<bool, orbi_inac::StoreError> {
        self.inner.contains(digest)
    }

    fn open(
        &self,
        digest: &orbi_types::Sha256Digest,
    ) -> Result<Option<Box<dyn std::io::Read + Send>>, orbi_inac::StoreError> {
        self.inner.open(digest)
    }

    fn list(&self) -> Result<Vec<orbi_inac::store::StoredObject>, orbi_inac::StoreError> {
        self.inner.list()
    }
}

impl orbi_inac::store::StagingWriter for GatedWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), orbi_inac::StoreError> {
        // Stream bodies come in body buffers; an inline payload (at most 64 KiB) passes.
        if bytes.len() > 64 * 1024 {
            self.gate.wait();
        }
        self.inner.write(bytes)
    }

    fn finish(
        self: Box<Self>,
    ) -> Result<Box<dyn orbi_inac::store::StagedBody>, orbi_inac::StoreError> {
        self.inner.finish()
    }
}

impl Setup {
    /// P allowlisted, `vendor.blob.v1` kept, default transport.
    pub fn new() -> Self {
        let mut policy = ReceiverConfig::default();
        policy.allowed_peers.insert(peer_key().node_id());
        Setup {
            policy,
            transport: TransportConfig::default(),
            apps: Vec::new(),
            gate: None,
        }
    }

    /// Stream bodies wait at `gate` before each write to the store.
    pub fn gate(mut self, gate: &Gate) -> Self {
        self.gate = Some(gate.clone());
        self
    }

    pub fn allow(mut self, peer: &KeyPair) -> Self {
        self.policy.allowed_peers.insert(peer.node_id());
        self
    }

    pub fn policy(mut self, edit: impl FnOnce(&mut ReceiverConfig)) -> Self {
        edit(&mut self.policy);
        self
    }

    pub fn transport(mut self, edit: impl FnOnce(&mut TransportConfig)) -> Self {
        edit(&mut self.transport);
        self
    }

    /// Serves `app` beside INAC.
    pub fn app(mut self, app: AppProtocol) -> Self {
        self.apps.push(app);
        self
    }

    pub fn start(self) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let NodeState { store, ledger } = NodeState::open(dir.path(), Durability::Full).unwrap();
        let accepted = Counter::default();
        let counter = accepted.clone();
        let kinds = KindRegistry::builder()
            .accept(BLOB, None, move |_: &Delivery<'_>| {
                counter.0.fetch_add(1, Ordering::SeqCst);
                Acceptance::Keep
            })
            .build()
            .unwrap();
        let receiver = match self.gate {
            Some(gate) => {
                let gated = GatedStore {
                    inner: store.clone(),
                    gate,
                };
                Receiver::new(node_key(), self.policy, kinds, gated, ledger)
            }
            None => Receiver::new(node_key(), self.policy, kinds, store.clone(), ledger),
        };
        let server = Server::bind_with(
            "127.0.0.1:0".parse().unwrap(),
            node_key(),
            receiver,
            self.transport,
            self.apps,
        )
        .unwrap();
        Node {
            server: Some(server),
            store,
            accepted,
            dir,
        }
    }
}

impl Node {
    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server().local_addr()
    }

    pub fn peer_addr(&self) -> PeerAddr {
        PeerAddr::new(node_key().node_id(), self.addr())
    }

    /// A connected session as `who`.
    pub async fn connect(&self, who: &KeyPair) -> (Client, Session) {
        self.connect_with(who, TransportConfig::default()).await
    }

    /// A client as `who` and its connection for the protocol `alpn`.
    pub async fn connect_app(&self, who: &KeyPair, alpn: &[u8]) -> (Client, Session) {
        let client =
            Client::for_peer(&self.peer_addr(), who.clone(), TransportConfig::default()).unwrap();
        let session = client
            .connect_protocol(&self.peer_addr(), alpn)
            .await
            .unwrap();
        (client, session)
    }

    pub async fn connect_with(&self, who: &KeyPair, config: TransportConfig) -> (Client, Session) {
        let client = Client::for_peer(&self.peer_addr(), who.clone(), config).unwrap();
        let session = client.connect(&self.peer_addr()).await.unwrap();
        (client, session)
    }

    pub fn staged_files(&self) -> usize {
        std::fs::read_dir(self.store.files().staging_dir())
            .unwrap()
            .count()
    }

    pub fn holds(&self, bytes: &[u8]) -> bool {
        self.store
            .contains(&orbi_types::Sha256Digest::of(bytes))
            .unwrap()
    }

    pub fn stored(&self) -> usize {
        self.store.list().unwrap().len()
    }

    /// Runs on the receiver thread.
    pub async fn with<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Receiver) -> T + Send + 'static,
    ) -> T {
        self.server().with_receiver(task).await.unwrap()
    }

    pub async fn shutdown(&mut self) -> Receiver {
        self.server.take().unwrap().shutdown().await.unwrap()
    }

    /// Waits until `check` holds on the receiver (bodies finish on their own tasks).
    pub async fn until(
        &self,
        what: &str,
        check: impl Fn(&mut Receiver) -> bool + Send + Sync + Clone + 'static,
    ) {
        for _ in 0..200 {
            let check = check.clone();
            if self.with(move |r| check(r)).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("timed out waiting until {what}");
    }
}

/// The application code a connection attempt ended with: closed in the handshake, or
/// right after it.
pub async fn closed_with(attempt: Result<Session, TransportError>) -> u64 {
    let closed = match attempt {
        Ok(session) => session.connection().closed().await,
        Err(TransportError::Connection { source, .. }) => source,
        Err(other) => panic!("unexpected {other}"),
    };
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => close.error_code.into_inner(),
        other => panic!("expected an application close, got {other:?}"),
    }
}

pub fn inline_push(bytes: &[u8], key: &str) -> Frame {
    let descriptor = Descriptor::of_bytes(BLOB, OCTETS, bytes);
    Frame::push_inline(&descriptor, bytes)
        .correlation_id(&format!("c-{key}"))
        .idempotency_key(key)
        .build()
        .unwrap()
}

pub fn descriptor(bytes: &[u8]) -> Descriptor {
    Descriptor::of_bytes(BLOB, OCTETS, bytes)
}

#[track_caller]
pub fn assert_answer(frame: &Frame, operation: Operation, code: Option<RefusalCode>) {
    assert_eq!(
        (
            frame.operation(),
            frame.response().and_then(|r| r.refusal_code)
        ),
        (operation, code),
        "answer {:?}",
        frame.to_value()
    );
}

pub fn ingested_count(receiver: &mut Receiver, peer: &NodeId) -> usize {
    receiver
        .ledger()
        .recent_transfers(10_000)
        .unwrap()
        .iter()
        .filter(|t| &t.peer == peer && t.answer == Operation::Ingested)
        .count()
}

/// Deterministic, incompressible-looking bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
