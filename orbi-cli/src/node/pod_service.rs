//! The pod protocol on the node's QUIC endpoint: ALPN [`POD_ALPN`], beside INAC.
//!
//! A client node dials the serving node with this ALPN (the same raw-public-key mutual TLS as
//! INAC, so both ends know each other's node id and derive the same session id). The
//! connection is the live node-to-node session of spec pod §2: attachment, recovery and bare
//! bind artifacts must name its session id, and participant detachments it or another live
//! session of the same node (the engine's V6a/V6b; host reasons are refused, an identical
//! replay of an admitted detachment is answered `replayed`).
//! Only allowed nodes get a session: `[pod] allow`, `inac.allow` and the known peers; anyone
//! else is closed with `0x101`. Each lifecycle artifact travels on its own bidirectional stream as a `u32`
//! big-endian length and the artifact's exact bytes; the answer comes back the same way as a
//! JSON object (`orbi pod admit`'s report: `outcome`, `code`, `check`, `message`, `state`,
//! `transitions`, …). The bytes are handed to `orbi-pod` as received, never re-serialized.
//!
//! When the connection ends, keepalive is lost: the session's attached attachments become
//! `degraded` (T5) and the session is forgotten; unless their clients attach again meanwhile
//! (T13 replaces a degraded attachment), they are detached with `session-expired` by the
//! node's one-second timer once the degraded grace has passed (T7). Nothing waits per
//! connection, so a stop is never held up by a grace period.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use orbi_inac::quic::{AppConnection, ConnectionCode, Session as QuicSession, wire};
use orbi_pod::{
    Admission, PodEngine, Session, SqliteStore, Transition, policy::MAX_ARTIFACT_BYTES,
};
use orbi_types::NodeId;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};

use crate::CliError;

/// The pod protocol's ALPN.
pub const POD_ALPN: &[u8] = b"orbiplex-pod/1";

/// How long a client has to send its artifact once it opened a stream.
const ARTIFACT_TIMEOUT: Duration = Duration::from_secs(10);

/// Admissions one peer node may have waiting for the engine at once, over all its
/// connections: the others wait for a place without holding anything but their stream.
const ADMISSIONS_PER_PEER: usize = 4;

/// The serving node's pod engine, shared by every connection and the timer task.
///
/// Work on it waits its turn in order (a fair async lock), and only the task holding the
/// lock uses a blocking thread (SQLite commits fsync): a flood of streams waits as tasks,
/// never as parked threads, and cannot delay the others by more than its place in the
/// queue. Each peer node has [`ADMISSIONS_PER_PEER`] places in that queue.
#[derive(Clone)]
pub struct SharedEngine {
    engine: Arc<tokio::sync::Mutex<PodEngine<SqliteStore>>>,
    /// Set by a panic while the engine was in use: its state is unknown, so nothing more is
    /// admitted (every answer is then "cannot admit now") and the node stops (see
    /// [`SharedEngine::broken`]).
    broken: Arc<watch::Sender<bool>>,
    places: Arc<Mutex<HashMap<NodeId, Arc<Semaphore>>>>,
}

impl SharedEngine {
    /// Shares `engine`.
    pub fn new(engine: PodEngine<SqliteStore>) -> Self {
        SharedEngine {
            engine: Arc::new(tokio::sync::Mutex::new(engine)),
            broken: Arc::new(watch::channel(false).0),
            places: Arc::default(),
        }
    }

    /// Resolves once a panic has stopped the engine. Admitting nothing while still serving
    /// INAC would leave the node half alive, so `orbi node run` stops on it (fail closed) and a
    /// restart opens the engine again from what its store committed.
    pub async fn broken(&self) {
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = self.broken.subscribe().wait_for(|broken| *broken).await;
    }

    /// `peer`'s places in the queue (the allowed peers are few: one entry each).
    fn places_of(&self, peer: &NodeId) -> Arc<Semaphore> {
        let mut places = self
            .places
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        places
            .entry(peer.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(ADMISSIONS_PER_PEER)))
            .clone()
    }
}

/// Runs `task` on the engine, in turn, on a blocking thread; `None` once the engine is broken.
pub(super) async fn with_engine<T: Send + 'static>(
    engine: &SharedEngine,
    task: impl FnOnce(&mut PodEngine<SqliteStore>) -> T + Send + 'static,
) -> Option<T> {
    let mut held = engine.engine.clone().lock_owned().await;
    let broken = engine.broken.clone();
    if *broken.borrow() {
        return None;
    }
    tokio::task::spawn_blocking(move || {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(&mut held))) {
            Ok(done) => Some(done),
            Err(_) => {
                // Marked while the lock is still held: whoever takes it next sees it.
                broken.send_replace(true);
                tracing::error!("the pod engine stopped after a panic; restart the node");
                None
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Admits `bytes` arriving on `session_id`, and finishes the setup of an attachment admitted
/// `attaching` at once (T4): the serving node has nothing to set up beyond the admission
/// itself, and an attachment left `attaching` would be detached with `session-expired` after
/// 30 s. A replay of an attachment still `attaching` (its first setup failed) is set up too,
/// so that the client's retry mends it.
fn admit_and_set_up(
    engine: &mut PodEngine<SqliteStore>,
    bytes: &[u8],
    session_id: &str,
    now: OffsetDateTime,
) -> Result<Admission, orbi_pod::EngineError> {
    let mut admission = engine.admit(bytes, session_id, now)?;
    if matches!(
        admission.verdict,
        orbi_pod::Verdict::Admitted | orbi_pod::Verdict::Replayed
    ) && admission.state == Some(orbi_pod::LifecycleState::Attaching)
        && let Some(id) = admission.id.clone()
    {
        match engine.finish_setup(&id, now) {
            Ok(transition) => {
                admission.state = Some(transition.to);
                admission.transitions.push(transition);
            }
            // The 30 s timer detaches it then; the admission itself stands.
            Err(error) => tracing::error!(%error, attachment = %id, "cannot finish setup"),
        }
    }
    Ok(admission)
}

/// The nodes that may open pod sessions (`[pod] allow`, `inac.allow` and known peers).
pub type PodPeers = Arc<std::collections::BTreeSet<NodeId>>;

/// Serves one pod connection until it ends, then starts its degraded grace. A node outside
/// `allowed` is closed with `0x101` before anything is read (fail closed: an empty list
/// admits nobody).
pub async fn serve(engine: SharedEngine, allowed: PodPeers, app: AppConnection) {
    let AppConnection {
        peer,
        session,
        connection,
    } = app;
    if !allowed.contains(&peer) {
        tracing::info!(%peer, "pod session refused: peer not allowed");
        connection.close(ConnectionCode::PeerNotAllowed.varint(), b"peer not allowed");
        return;
    }
    let session_id = session.as_str().to_owned();
    {
        let (id, peer) = (session_id.clone(), peer.clone());
        with_engine(&engine, move |engine| {
            engine.open_session(
                id,
                Session {
                    established_at: Some(OffsetDateTime::now_utc()),
                    peer: Some(peer),
                },
            );
        })
        .await;
    }
    tracing::info!(%peer, session = %session_id, "pod session opened");
    while let Ok((mut send, mut recv)) = connection.accept_bi().await {
        let (engine, session_id) = (engine.clone(), session_id.clone());
        let places = engine.places_of(&peer);
        tokio::spawn(async move {
            // The length is checked before anything is allocated.
            let read = wire::read_frame_within(&mut recv, ARTIFACT_TIMEOUT, MAX_ARTIFACT_BYTES);
            let bytes = match read.await {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::debug!(%error, "pod stream abandoned");
                    // The code says why (spec §8.7): over the limit, too slow, or broken.
                    let code = match error {
                        wire::ReadFrameError::TooLarge { .. } => wire::StreamCode::FrameTooLarge,
                        wire::ReadFrameError::Timeout(_) => wire::StreamCode::ResponseTimeout,
                        _ => wire::StreamCode::Malformed,
                    };
                    let _ = recv.stop(code.varint());
                    let _ = send.reset(code.varint());
                    return;
                }
            };
            // The semaphore is never closed.
            let Ok(_place) = places.acquire_owned().await else {
                return;
            };
            let answer = with_engine(&engine, move |engine| {
                let now = OffsetDateTime::now_utc();
                admit_and_set_up(engine, &bytes, &session_id, now)
                    .map(|admission| admission_json(&admission))
            })
            .await;
            let answer = match answer {
                Some(Ok(answer)) => answer,
                Some(Err(error)) => {
                    tracing::error!(%error, "pod admission failed");
                    json!({"outcome": "error", "message": "the serving node cannot admit now"})
                }
                None => {
                    json!({"outcome": "error", "message": "the serving node cannot admit now"})
                }
            };
            log_admission(&answer);
            // A client that takes no answer does not keep this task.
            match tokio::time::timeout(ARTIFACT_TIMEOUT, write_message(&mut send, &answer)).await {
                Ok(_) => {
                    let _ = send.finish();
                }
                Err(_) => {
                    let _ = send.reset(wire::StreamCode::ResponseTimeout.varint());
                }
            }
        });
    }
    // How it ended, in our words: a peer's close reason is its text, not ours to log.
    let how = match connection.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(_)) => "closed by the client",
        Some(quinn::ConnectionError::TimedOut) => "keepalive lost",
        Some(quinn::ConnectionError::LocallyClosed) => "closed by this node",
        Some(quinn::ConnectionError::Reset) => "reset by the client",
        _ => "transport error",
    };
    tracing::info!(%peer, session = %session_id, how, "pod session ended");
    // Degraded now; the timer task detaches with session-expired once the grace has passed.
    let lost = with_engine(&engine, move |engine| {
        engine.session_lost(&session_id, OffsetDateTime::now_utc())
    })
    .await;
    log_transitions(lost);
}

/// Runs the lifecycle timers (setup timeouts, degraded grace, grant expiry) once; with
/// `sweep`, first degrades attached attachments whose session is no longer live (normally
/// `session_lost` did that when the connection ended; this catches a failed one).
pub async fn tick(engine: &SharedEngine, sweep: bool) {
    let transitions = with_engine(engine, move |engine| {
        let now = OffsetDateTime::now_utc();
        let mut transitions = if sweep {
            engine.degrade_orphans(now)?
        } else {
            Vec::new()
        };
        transitions.extend(engine.tick(now)?);
        Ok(transitions)
    })
    .await;
    log_transitions(transitions);
}

fn log_admission(answer: &Value) {
    // Rejections are the peer's doing: debug, so that bad input costs no log volume.
    if answer["outcome"] == "rejected" {
        tracing::debug!(
            kind = answer["kind"].as_str().unwrap_or_default(),
            code = answer["code"].as_str().unwrap_or_default(),
            "pod artifact rejected"
        );
        return;
    }
    tracing::info!(
        outcome = answer["outcome"].as_str().unwrap_or_default(),
        kind = answer["kind"].as_str().unwrap_or_default(),
        id = answer["id"].as_str().unwrap_or_default(),
        code = answer["code"].as_str().unwrap_or_default(),
        "pod artifact judged"
    );
}

fn log_transitions(transitions: Option<Result<Vec<Transition>, orbi_pod::EngineError>>) {
    match transitions {
        Some(Ok(transitions)) => {
            for transition in transitions {
                tracing::info!(
                    rule = transition.rule.as_str(),
                    subject = %transition.subject,
                    to = transition.to.as_str(),
                    "pod transition"
                );
            }
        }
        Some(Err(error)) => tracing::error!(%error, "pod transition failed"),
        None => tracing::error!("the pod engine is unavailable"),
    }
}

/// `orbi pod admit`'s report of one admission.
pub fn admission_json(admission: &Admission) -> Value {
    let mut out = json!({
        "outcome": admission.verdict.as_str(),
        "kind": admission.kind.map(|kind| kind.as_str()),
        "id": admission.id,
    });
    if let Some(state) = admission.state {
        out["state"] = json!(state.as_str());
    }
    if let Some(rejection) = admission.rejection() {
        out["code"] = json!(rejection.code.as_str());
        out["check"] = json!(rejection.check.as_str());
        out["message"] = json!(rejection.message);
    }
    out["warnings"] = admission
        .warnings
        .iter()
        .map(|warning| warning.as_str())
        .collect();
    out["transitions"] = admission.transitions.iter().map(transition_json).collect();
    out
}

/// One lifecycle transition as JSON.
pub fn transition_json(transition: &Transition) -> Value {
    let mut out = json!({
        "rule": transition.rule.as_str(),
        "subject": transition.subject,
        "client-instance/id": transition.client_instance_id,
        "from": transition.from.map(|state| state.as_str()),
        "to": transition.to.as_str(),
    });
    if let Some(artifact) = &transition.artifact {
        out["artifact"] = serde_json::from_slice(artifact).unwrap_or(Value::Null);
    }
    out
}

async fn write_message(send: &mut quinn::SendStream, answer: &Value) -> Result<(), String> {
    write_bytes(send, answer.to_string().as_bytes()).await
}

/// Writes `body` with its `u32` length prefix; a body over the frame limit is refused rather
/// than announced with a wrong length.
async fn write_bytes(send: &mut quinn::SendStream, body: &[u8]) -> Result<(), String> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&len| len as usize <= orbi_inac::MAX_FRAME_BYTES)
        .ok_or_else(|| format!("a frame of {} bytes is over the limit", body.len()))?;
    send.write_all(&len.to_be_bytes())
        .await
        .map_err(|err| err.to_string())?;
    send.write_all(body).await.map_err(|err| err.to_string())
}

/// How long a client waits for a whole pod exchange: opening the stream, sending the
/// artifact and the serving node's answer (its admission commits, and may wait behind others).
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(40);

/// Client side: sends one artifact's exact bytes on `session` and returns the serving node's
/// answer, a JSON object. A serving node that grants no stream, takes no bytes or never answers is given up
/// on after 40 s.
pub async fn submit(session: &QuicSession, artifact: &[u8]) -> Result<Value, CliError> {
    submit_within(session, artifact, SUBMIT_TIMEOUT).await
}

async fn submit_within(
    session: &QuicSession,
    artifact: &[u8],
    limit: Duration,
) -> Result<Value, CliError> {
    if artifact.len() > MAX_ARTIFACT_BYTES {
        return Err(CliError::new(format!(
            "a pod artifact has at most {MAX_ARTIFACT_BYTES} bytes; this one has {}",
            artifact.len()
        )));
    }
    // A write can fail as plain "connection lost" before the peer's close frame is read;
    // the connection's close reason (e.g. "peer not allowed") says why.
    let failed = |what: &str, err: &dyn std::fmt::Display| {
        let why = match session.connection().close_reason() {
            Some(reason) => reason.to_string(),
            None => err.to_string(),
        };
        CliError::new(format!(
            "pod exchange with {}: {what}: {why}",
            session.peer()
        ))
    };
    let exchange = async {
        let (mut send, mut recv) = session
            .connection()
            .open_bi()
            .await
            .map_err(|err| failed("open a stream", &err))?;
        write_bytes(&mut send, artifact)
            .await
            .map_err(|err| failed("send", &err))?;
        send.finish().map_err(|err| failed("finish", &err))?;
        let answer = wire::read_frame(&mut recv, limit)
            .await
            .map_err(|err| failed("answer", &err))?;
        // Strict: a duplicated member (a second `verdict`) would otherwise pick the answer.
        match orbi_types::json::from_slice_strict(&answer) {
            Ok(answer @ Value::Object(_)) => Ok(answer),
            Ok(_) => Err(failed("answer", &"not a JSON object")),
            Err(err) => Err(failed("answer is not JSON", &err)),
        }
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(answered) => answered,
        Err(_) => Err(CliError::new(format!(
            "pod exchange with {}: no answer within {limit:?}",
            session.peer()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbi_pod::{
        AttachmentState, HostPolicy, Store, StoreLimits, Verdict,
        compose::{self, AttachmentDraft, BindDraft},
    };
    use orbi_types::{
        KeyPair, Timestamp,
        pod::{ProfileType, SessionState},
    };

    #[tokio::test]
    async fn a_panic_in_the_engine_is_reported_and_nothing_more_runs_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let node = KeyPair::from_seed(&[0x41; 32]);
        let engine = SharedEngine::new(engine_with(
            &node,
            &dir.path().join("pod.sqlite"),
            orbi_pod::Durability::Full,
        ));
        let quiet = Duration::from_millis(200);
        assert_eq!(with_engine(&engine, |_| 7).await, Some(7));
        assert!(
            tokio::time::timeout(quiet, engine.broken()).await.is_err(),
            "a working engine is not broken"
        );

        let panicked = with_engine(&engine, |_| -> u8 { panic!("injected") }).await;

        assert_eq!(panicked, None);
        tokio::time::timeout(Duration::from_secs(5), engine.broken())
            .await
            .expect("the panic is reported");
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let later = {
            let ran = ran.clone();
            with_engine(&engine, move |_| {
                ran.store(true, std::sync::atomic::Ordering::SeqCst)
            })
        };
        assert_eq!(later.await, None);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_serving_node_that_grants_no_stream_cannot_hold_a_submit() {
        use orbi_inac::quic::{
            Client, PeerAddr, TransportConfig,
            config::{endpoint, server_config_with_alpns},
        };
        let (node, client_key) = (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]));
        let config = TransportConfig::default();
        let mut server = server_config_with_alpns(&node, &config, vec![POD_ALPN.to_vec()]).unwrap();
        let mut transport = config.quinn_transport(true);
        transport.max_concurrent_bidi_streams(0u8.into());
        server.transport_config(Arc::new(transport));
        let listener = endpoint("127.0.0.1:0".parse().unwrap(), Some(server), &config).unwrap();
        let peer = PeerAddr {
            node: node.node_id(),
            addr: listener.local_addr().unwrap(),
        };
        let held = tokio::spawn(async move {
            let connection = listener.accept().await.unwrap().await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(connection);
        });
        let client = Client::for_peer(&peer, client_key, config).unwrap();
        let session = client.connect_protocol(&peer, POD_ALPN).await.unwrap();
        let submitted = tokio::time::timeout(
            Duration::from_secs(10),
            submit_within(&session, b"{}", Duration::from_millis(500)),
        )
        .await
        .expect("the submit ends on its own limit");
        let error = submitted.unwrap_err().to_string();
        assert!(error.contains("no answer within 500ms"), "{error}");
        held.abort();
    }

    #[tokio::test]
    async fn an_answer_with_a_duplicated_member_is_refused() {
        use orbi_inac::quic::{
            Client, PeerAddr, TransportConfig,
            config::{endpoint, server_config_with_alpns},
        };
        let (node, client_key) = (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]));
        let config = TransportConfig::default();
        let server = server_config_with_alpns(&node, &config, vec![POD_ALPN.to_vec()]).unwrap();
        let listener = endpoint("127.0.0.1:0".parse().unwrap(), Some(server), &config).unwrap();
        let peer = PeerAddr {
            node: node.node_id(),
            addr: listener.local_addr().unwrap(),
        };
        let answers = |answer: &'static [u8]| {
            let listener = listener.clone();
            tokio::spawn(async move {
                let connection = listener.accept().await.unwrap().await.unwrap();
                let (mut send, mut recv) = connection.accept_bi().await.unwrap();
                recv.read_to_end(1 << 20).await.unwrap();
                send.write_all(&(answer.len() as u32).to_be_bytes())
                    .await
                    .unwrap();
                send.write_all(answer).await.unwrap();
                send.finish().unwrap();
                connection.closed().await;
            })
        };
        let client = Client::for_peer(&peer, client_key, config).unwrap();
        for (answer, accepted) in [
            (
                &br#"{"verdict":"rejected","verdict":"admitted"}"#[..],
                false,
            ),
            (&br#"{"verdict":"rejected"}"#[..], true),
        ] {
            let server = answers(answer);
            let session = client.connect_protocol(&peer, POD_ALPN).await.unwrap();
            let submitted = submit_within(&session, b"{}", Duration::from_secs(10)).await;
            match submitted {
                Ok(value) => assert!(accepted, "{value}"),
                Err(error) => {
                    assert!(!accepted, "{error}");
                    assert!(error.to_string().contains("duplicate"), "{error}");
                }
            }
            session.connection().close(0u32.into(), b"done");
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_client_that_takes_no_answer_does_not_keep_the_serving_task() {
        let dir = tempfile::tempdir().unwrap();
        let (node, client_key) = (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]));
        let engine = SharedEngine::new(engine(&node, &dir.path().join("pod.sqlite")));
        let (addr, mut served) = serve_pod(&node, engine, &[&client_key]);
        // 16 bytes of stream credit: less than any answer.
        let connection = dial_pod(&node, &client_key, addr, |transport| {
            transport.stream_receive_window(16u8.into());
        })
        .await;
        let served = served.recv().await.unwrap();
        let (mut send, mut recv) = connection.open_bi().await.unwrap();
        write_bytes(&mut send, b"{}").await.unwrap();
        send.finish().unwrap();
        // Reading would grant credit: only wait for the serving node to give up on the answer.
        let reset = tokio::time::timeout(ARTIFACT_TIMEOUT * 2, recv.received_reset())
            .await
            .expect("the serving node gives up on the answer");
        assert_eq!(
            reset.unwrap(),
            Some(wire::StreamCode::ResponseTimeout.varint())
        );
        connection.close(0u8.into(), b"done");
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("the connection's task ends")
            .unwrap();
    }

    fn engine(node: &KeyPair, db: &std::path::Path) -> PodEngine<SqliteStore> {
        engine_with(node, db, orbi_pod::Durability::Normal)
    }

    fn engine_with(
        node: &KeyPair,
        db: &std::path::Path,
        durability: orbi_pod::Durability,
    ) -> PodEngine<SqliteStore> {
        let store =
            SqliteStore::open(db, &node.node_id(), StoreLimits::default(), durability).unwrap();
        PodEngine::new(node.clone(), HostPolicy::default(), store).unwrap()
    }

    /// `node` serving the pod protocol on loopback to `allowed`, as `orbi node run` does: its
    /// address, and the task of each connection it serves, in order.
    fn serve_pod(
        node: &KeyPair,
        engine: SharedEngine,
        allowed: &[&KeyPair],
    ) -> (
        std::net::SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<tokio::task::JoinHandle<()>>,
    ) {
        use orbi_inac::quic::{
            SessionId, TransportConfig,
            config::{endpoint, server_config_with_alpns},
        };
        let config = TransportConfig::default();
        let server = server_config_with_alpns(node, &config, vec![POD_ALPN.to_vec()]).unwrap();
        let listener = endpoint("127.0.0.1:0".parse().unwrap(), Some(server), &config).unwrap();
        let addr = listener.local_addr().unwrap();
        let allowed: PodPeers = Arc::new(allowed.iter().map(|key| key.node_id()).collect());
        let (served, connections) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(incoming) = listener.accept().await {
                let (engine, allowed) = (engine.clone(), allowed.clone());
                let _ = served.send(tokio::spawn(async move {
                    let connection = incoming.await.unwrap();
                    let app = AppConnection {
                        peer: orbi_inac::quic::identity::peer_node_id(&connection).unwrap(),
                        session: SessionId::of(&connection).unwrap(),
                        connection,
                    };
                    serve(engine, allowed, app).await;
                }));
            }
        });
        (addr, connections)
    }

    /// A pod connection to `node` at `addr` as `key`, with `shape`d transport parameters.
    async fn dial_pod(
        node: &KeyPair,
        key: &KeyPair,
        addr: std::net::SocketAddr,
        shape: impl FnOnce(&mut quinn::TransportConfig),
    ) -> quinn::Connection {
        use orbi_inac::quic::{
            TransportConfig,
            config::{client_config_for_alpn, endpoint},
        };
        let config = TransportConfig::default();
        let mut dial =
            client_config_for_alpn(Some(key), &node.node_id(), &config, POD_ALPN).unwrap();
        let mut transport = config.quinn_transport(false);
        shape(&mut transport);
        dial.transport_config(Arc::new(transport));
        let client = endpoint("127.0.0.1:0".parse().unwrap(), None, &config).unwrap();
        client
            .connect_with(dial, addr, "pod")
            .unwrap()
            .await
            .unwrap()
    }

    /// An attachment sent `attaching` to `node` on session `sess:setup`, signed by a fixed
    /// participant.
    fn attaching_attachment(node: &KeyPair, now: OffsetDateTime) -> Value {
        let participant = KeyPair::from_seed(&[2; 32]);
        let at = Timestamp::from_instant(now).unwrap();
        let bind = compose::sign_bind(
            &participant,
            &BindDraft {
                bind_id: "pb:setup".into(),
                bound_at: at.clone(),
                via: node.node_id(),
                session_id: "sess:setup".into(),
                policy_annotations: None,
            },
        )
        .unwrap();
        compose::attachment(
            &AttachmentDraft {
                attachment_id: "attach:setup".into(),
                attached_at: at,
                profile: ProfileType::PodClient,
                serving_node: node.node_id(),
                pod_user: None,
                client_instance_id: "client:setup".into(),
                models_local: None,
                state: SessionState::Attaching,
                export_capable: true,
                migration_allowed: true,
            },
            bind,
        )
    }

    #[test]
    fn a_replayed_attachment_still_attaching_is_set_up() {
        let dir = tempfile::tempdir().unwrap();
        let node = KeyPair::from_seed(&[1; 32]);
        let now = OffsetDateTime::now_utc();
        let bytes = attaching_attachment(&node, now).to_string();
        let mut engine = engine(&node, &dir.path().join("pod.sqlite"));
        engine.open_session("sess:setup", Session::default());
        // The first admission stood but its setup never ran (as when finish_setup failed).
        let first = engine.admit(bytes.as_bytes(), "sess:setup", now).unwrap();
        assert_eq!(first.state, Some(orbi_pod::LifecycleState::Attaching));

        let replay = admit_and_set_up(&mut engine, bytes.as_bytes(), "sess:setup", now).unwrap();

        assert_eq!(replay.verdict, Verdict::Replayed);
        assert_eq!(replay.state, Some(orbi_pod::LifecycleState::Attached));
        let rules: Vec<_> = replay.transitions.iter().map(|t| t.rule).collect();
        assert_eq!(rules, vec![orbi_pod::Rule::T4]);
        let stored = engine.store().attachment("attach:setup").unwrap().unwrap();
        assert_eq!(stored.state, AttachmentState::Attached);
        // A further replay finds it attached and changes nothing.
        let again = admit_and_set_up(&mut engine, bytes.as_bytes(), "sess:setup", now).unwrap();
        assert_eq!(again.verdict, Verdict::Replayed);
        assert_eq!(again.state, Some(orbi_pod::LifecycleState::Attached));
        assert!(again.transitions.is_empty(), "{:?}", again.transitions);
    }

    #[test]
    fn an_attachment_admitted_attaching_is_set_up_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let node = KeyPair::from_seed(&[1; 32]);
        let now = OffsetDateTime::now_utc();
        let attachment = attaching_attachment(&node, now);
        let mut engine = engine(&node, &dir.path().join("pod.sqlite"));
        engine.open_session("sess:setup", Session::default());

        let admission = admit_and_set_up(
            &mut engine,
            attachment.to_string().as_bytes(),
            "sess:setup",
            now,
        )
        .unwrap();

        assert_eq!(admission.verdict, Verdict::Admitted);
        assert_eq!(admission.state, Some(orbi_pod::LifecycleState::Attached));
        let rules: Vec<_> = admission.transitions.iter().map(|t| t.rule).collect();
        assert_eq!(rules.last(), Some(&orbi_pod::Rule::T4), "{rules:?}");
        let stored = engine.store().attachment("attach:setup").unwrap().unwrap();
        assert_eq!(stored.state, AttachmentState::Attached);
        // Nothing is left for the setup timeout.
        let later = engine.tick(now + Duration::from_secs(31)).unwrap();
        assert!(later.is_empty(), "{later:?}");
    }

    #[tokio::test]
    async fn the_sweep_degrades_attachments_whose_session_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pod.sqlite");
        let (node, participant) = (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]));
        let now = Timestamp::from_instant(OffsetDateTime::now_utc()).unwrap();
        let bind = compose::sign_bind(
            &participant,
            &BindDraft {
                bind_id: "pb:sweep".into(),
                bound_at: now.clone(),
                via: node.node_id(),
                session_id: "sess:sweep".into(),
                policy_annotations: None,
            },
        )
        .unwrap();
        let attachment = compose::attachment(
            &AttachmentDraft {
                attachment_id: "attach:sweep".into(),
                attached_at: now,
                profile: ProfileType::PodClient,
                serving_node: node.node_id(),
                pod_user: None,
                client_instance_id: "client:sweep".into(),
                models_local: None,
                state: SessionState::Attached,
                export_capable: true,
                migration_allowed: true,
            },
            bind,
        );
        {
            let mut first = engine(&node, &db);
            first.open_session("sess:sweep", Session::default());
            let admitted = first
                .admit(
                    attachment.to_string().as_bytes(),
                    "sess:sweep",
                    OffsetDateTime::now_utc(),
                )
                .unwrap();
            assert_eq!(admitted.verdict, Verdict::Admitted);
        }
        // Its session is gone and nobody degraded the attachment (a failed session_lost).
        let shared = SharedEngine::new(engine(&node, &db));
        let state = |shared: &SharedEngine| {
            let engine = shared.engine.try_lock().unwrap();
            engine
                .store()
                .attachment("attach:sweep")
                .unwrap()
                .unwrap()
                .state
        };
        tick(&shared, false).await;
        assert_eq!(state(&shared), AttachmentState::Attached);
        tick(&shared, true).await;
        assert_eq!(state(&shared), AttachmentState::Degraded);
    }

    #[tokio::test]
    async fn an_artifact_over_the_limit_is_ended_with_frame_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let (node, peer) = (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]));
        let engine = SharedEngine::new(engine(&node, &dir.path().join("pod.sqlite")));
        let (addr, _served) = serve_pod(&node, engine, &[&peer]);
        let connection = dial_pod(&node, &peer, addr, |_| {}).await;
        let (mut send, mut recv) = connection.open_bi().await.unwrap();
        let announced = u32::try_from(MAX_ARTIFACT_BYTES + 1).unwrap();
        send.write_all(&announced.to_be_bytes()).await.unwrap();
        let ended = recv.read_to_end(1024).await;
        assert!(
            matches!(
                ended,
                Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)))
                    if code == wire::StreamCode::FrameTooLarge.varint()
            ),
            "{ended:?}"
        );
    }

    /// Once a panic has stopped the engine, every artifact is answered `error` (the client
    /// exits 2: nothing was judged), never `rejected` (which would say it was judged and
    /// refused).
    #[tokio::test]
    async fn a_broken_engine_answers_error_not_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (node, peer) = (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]));
        let engine = SharedEngine::new(engine(&node, &dir.path().join("pod.sqlite")));
        let _ = with_engine(&engine, |_| -> u8 { panic!("injected") }).await;
        let (addr, _served) = serve_pod(&node, engine, &[&peer]);
        let connection = dial_pod(&node, &peer, addr, |_| {}).await;
        let answer = tokio::time::timeout(Duration::from_secs(15), exchange(&connection, b"{}"))
            .await
            .expect("an answer");
        assert_eq!(
            answer,
            json!({"outcome": "error", "message": "the serving node cannot admit now"})
        );
    }

    /// One exchange on `connection`: the artifact's bytes, the answer as JSON.
    async fn exchange(connection: &quinn::Connection, artifact: &[u8]) -> Value {
        let (mut send, mut recv) = connection.open_bi().await.unwrap();
        write_bytes(&mut send, artifact).await.unwrap();
        send.finish().unwrap();
        let answer = wire::read_frame(&mut recv, Duration::from_secs(60))
            .await
            .unwrap();
        serde_json::from_slice(&answer).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_peer_flooding_admissions_delays_another_by_its_places_only() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

        use orbi_inac::quic::SessionId;
        let dir = tempfile::tempdir().unwrap();
        let node = KeyPair::from_seed(&[1; 32]);
        let (flooder, other) = (KeyPair::from_seed(&[2; 32]), KeyPair::from_seed(&[3; 32]));
        let db = dir.path().join("pod.sqlite");
        let engine = SharedEngine::new(engine_with(&node, &db, orbi_pod::Durability::Full));
        let (addr, _served) = serve_pod(&node, engine, &[&flooder, &other]);
        let other_connection = dial_pod(&node, &other, addr, |_| {}).await;
        // The flooder: 8 connections with 32 streams each, every stream a valid attachment
        // after another (a fresh participant each time), fsynced one by one.
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(1));
        let mut flood = Vec::new();
        for _ in 0..8 {
            let connection = dial_pod(&node, &flooder, addr, |_| {}).await;
            let session = SessionId::of(&connection).unwrap().as_str().to_owned();
            for _ in 0..32 {
                let (connection, session) = (connection.clone(), session.clone());
                let (stop, next, via) = (stop.clone(), next.clone(), node.node_id());
                flood.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let mut seed = [0u8; 32];
                        seed[..8].copy_from_slice(&n.to_be_bytes());
                        let participant = KeyPair::from_seed(&seed);
                        let now = Timestamp::from_instant(OffsetDateTime::now_utc()).unwrap();
                        let draft = BindDraft {
                            bind_id: format!("pb:{n}"),
                            bound_at: now.clone(),
                            via: via.clone(),
                            session_id: session.clone(),
                            policy_annotations: None,
                        };
                        let bind = compose::sign_bind(&participant, &draft).unwrap();
                        let draft = AttachmentDraft {
                            attachment_id: format!("attach:{n}"),
                            attached_at: now,
                            profile: ProfileType::PodClient,
                            serving_node: via.clone(),
                            pod_user: None,
                            client_instance_id: format!("client:{n}"),
                            models_local: None,
                            state: SessionState::Attached,
                            export_capable: true,
                            migration_allowed: true,
                        };
                        let artifact = compose::attachment(&draft, bind).to_string();
                        exchange(&connection, artifact.as_bytes()).await;
                    }
                }));
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The other peer's artifact waits behind the flooder's 4 places at most.
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let answer = exchange(&other_connection, b"{}").await;
            assert_eq!(answer["outcome"], "rejected", "{answer}");
            slowest = slowest.max(started.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        for task in flood {
            let _ = task.await;
        }
        assert!(
            slowest < Duration::from_millis(1500),
            "another peer waited {slowest:?} behind one peer's flood"
        );
    }

    /// An attachment of `client` by `participant` on `session`, and the detachment built
    /// around the *same* bind (upstream reuses binds; the outer fields are unsigned).
    fn attachment_and_detachment_reusing_its_bind(
        node: &KeyPair,
        participant: &KeyPair,
        session: &str,
        client: &str,
        reason: orbi_types::pod::DetachReason,
    ) -> (Vec<u8>, Vec<u8>) {
        let now = Timestamp::from_instant(OffsetDateTime::now_utc()).unwrap();
        let bind = compose::sign_bind(
            participant,
            &BindDraft {
                bind_id: format!("pb:{client}"),
                bound_at: now.clone(),
                via: node.node_id(),
                session_id: session.to_owned(),
                policy_annotations: None,
            },
        )
        .unwrap();
        let attachment = compose::attachment(
            &AttachmentDraft {
                attachment_id: format!("attach:{client}"),
                attached_at: now.clone(),
                profile: ProfileType::PodClient,
                serving_node: node.node_id(),
                pod_user: None,
                client_instance_id: client.to_owned(),
                models_local: None,
                state: SessionState::Attached,
                export_capable: true,
                migration_allowed: true,
            },
            bind.clone(),
        );
        let detachment = compose::detachment(
            &compose::DetachmentDraft {
                detachment_id: format!("detach:forged-{client}"),
                detached_at: now,
                attachment_id: format!("attach:{client}"),
                serving_node: node.node_id(),
                client_instance_id: client.to_owned(),
                reason,
                notes: None,
            },
            bind,
        );
        (
            attachment.to_string().into_bytes(),
            detachment.to_string().into_bytes(),
        )
    }

    /// Another allowed node holding copies of a client's artifacts cannot detach it: a
    /// participant-reason detachment whose bind names the client node's live session, sent
    /// over the other node's connection, is refused (V6b: the bind's session is the arrival
    /// session or another live session of the same node); a `policy` detachment (a host
    /// reason: spec pod §4, "Originator: host") with the attachment's bind copied verbatim,
    /// after the client's session has died, is refused too: admitted, it would leave a
    /// sanction only the operator can clear.
    #[tokio::test]
    async fn another_node_cannot_detach_a_client_with_copies_of_its_binds() {
        use orbi_inac::quic::SessionId;
        let dir = tempfile::tempdir().unwrap();
        let (node, victim, other) = (
            KeyPair::from_seed(&[1; 32]),
            KeyPair::from_seed(&[2; 32]),
            KeyPair::from_seed(&[3; 32]),
        );
        let engine = SharedEngine::new(engine(&node, &dir.path().join("pod.sqlite")));
        let (addr, _served) = serve_pod(&node, engine, &[&victim, &other]);
        let victim_connection = dial_pod(&node, &victim, addr, |_| {}).await;
        let session = SessionId::of(&victim_connection)
            .unwrap()
            .as_str()
            .to_owned();
        let other_connection = dial_pod(&node, &other, addr, |_| {}).await;
        let mut forged = Vec::new();
        for (client, reason) in [
            ("client:relayed", orbi_types::pod::DetachReason::DeviceLoss),
            ("client:sanctioned", orbi_types::pod::DetachReason::Policy),
        ] {
            let (attachment, detachment) = attachment_and_detachment_reusing_its_bind(
                &node, &victim, &session, client, reason,
            );
            let answer = exchange(&victim_connection, &attachment).await;
            assert_eq!(answer["outcome"], "admitted", "{answer}");
            forged.push(detachment);
        }
        // While the client's session is live.
        let answer = exchange(&other_connection, &forged[0]).await;
        assert_eq!(answer["code"], "E_POD_SESSION_MISMATCH", "{answer}");
        // After it has died.
        victim_connection.close(0u8.into(), b"bye");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let answer = exchange(&other_connection, &forged[1]).await;
        assert_eq!(answer["code"], "E_POD_SESSION_MISMATCH", "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("this node's to give"),
            "{answer}"
        );
    }

    /// Garbage, a never-finished stream and many streams at once get clear answers and leave
    /// another peer served.
    #[tokio::test]
    async fn garbage_and_stalled_streams_leave_others_served() {
        let dir = tempfile::tempdir().unwrap();
        let (node, hostile, good) = (
            KeyPair::from_seed(&[1; 32]),
            KeyPair::from_seed(&[2; 32]),
            KeyPair::from_seed(&[3; 32]),
        );
        let engine = SharedEngine::new(engine(&node, &dir.path().join("pod.sqlite")));
        let (addr, _served) = serve_pod(&node, engine, &[&hostile, &good]);
        let bad = dial_pod(&node, &hostile, addr, |_| {}).await;
        // Garbage with a valid length prefix.
        let answer = tokio::time::timeout(
            Duration::from_secs(15),
            exchange(&bad, &[0xff, 0x00, 0x13, 0x37]),
        )
        .await
        .expect("an answer to garbage");
        assert_eq!(answer["outcome"], "rejected", "{answer}");
        // Raw garbage without a frame: a prefix announcing more than it sends, never finished.
        let mut stalled = Vec::new();
        for _ in 0..30 {
            let (mut send, recv) = tokio::time::timeout(Duration::from_secs(5), bad.open_bi())
                .await
                .expect("stream credit")
                .unwrap();
            send.write_all(&[0, 0, 0, 200, b'{']).await.unwrap();
            stalled.push((send, recv));
        }
        let good_connection = dial_pod(&node, &good, addr, |_| {}).await;
        let started = std::time::Instant::now();
        let answer =
            tokio::time::timeout(Duration::from_secs(15), exchange(&good_connection, b"{}"))
                .await
                .expect("the other peer is answered");
        assert_eq!(answer["outcome"], "rejected", "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let (_send, mut recv) = stalled.pop().unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(15), recv.read_to_end(1024))
            .await
            .expect("a stalled stream is ended by the node");
        assert!(
            matches!(
                ended,
                Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)))
                    if code == wire::StreamCode::ResponseTimeout.varint()
            ),
            "{ended:?}"
        );
    }
}
