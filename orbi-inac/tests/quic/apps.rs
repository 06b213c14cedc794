//! Application protocols beside INAC on one endpoint, chosen by ALPN: identity, session id,
//! dispatch, refusal of unknown protocols, bind-time checks and shutdown.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use orbi_inac::{
    Frame, KindRegistry, MemoryLedger, MemoryStore, Receiver, ReceiverConfig,
    quic::{
        ALPN, AlpnError, AppConnection, AppProtocol, Client, Server, SessionId, TransportConfig,
        TransportError, negotiated_alpn,
        wire::{read_frame, write_frame},
    },
};
use orbi_types::{NodeId, inac::Operation};
use tokio::sync::mpsc;

use crate::common::*;

const ECHO: &[u8] = b"orbi-test-echo/1";

/// What an echo handler saw: who dialled, the session id, and when its connection ended.
enum Seen {
    Connected(NodeId, SessionId),
    Ended(NodeId),
}

/// Answers every frame on every stream with the same frame, and reports what it sees.
fn echo(calls: Arc<AtomicUsize>, seen: mpsc::UnboundedSender<Seen>) -> AppProtocol {
    AppProtocol::new(ECHO, move |app: AppConnection| {
        calls.fetch_add(1, Ordering::SeqCst);
        let seen = seen.clone();
        async move {
            let _ = seen.send(Seen::Connected(app.peer.clone(), app.session.clone()));
            while let Ok((mut send, mut recv)) = app.connection.accept_bi().await {
                tokio::spawn(async move {
                    let Ok(bytes) = read_frame(&mut recv, Duration::from_secs(5)).await else {
                        return;
                    };
                    let Ok(frame) = Frame::decode(&bytes) else {
                        return;
                    };
                    if write_frame(&mut send, &frame).await.is_ok() {
                        let _ = send.finish();
                        let _ = send.stopped().await;
                    }
                });
            }
            let _ = seen.send(Seen::Ended(app.peer.clone()));
        }
    })
}

struct Echo {
    node: Node,
    calls: Arc<AtomicUsize>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

fn echo_node(setup: Setup) -> Echo {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tell, seen) = mpsc::unbounded_channel();
    let node = setup.app(echo(calls.clone(), tell)).start();
    Echo { node, calls, seen }
}

async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the handler reports in time")
        .expect("the handler is alive")
}

async fn echo_round_trip(connection: &quinn::Connection, frame: &Frame) -> Frame {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    write_frame(&mut send, frame).await.unwrap();
    send.finish().unwrap();
    let bytes = read_frame(&mut recv, Duration::from_secs(5)).await.unwrap();
    Frame::decode(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_protocol_and_inac_share_one_endpoint() {
    let Echo {
        node,
        calls,
        mut seen,
    } = echo_node(Setup::new());
    let (client, app) = node.connect_app(&peer_key(), ECHO).await;
    assert_eq!(app.peer(), &node_key().node_id());
    let Seen::Connected(dialer, session) = next(&mut seen).await else {
        panic!("connected first")
    };
    assert_eq!(dialer, peer_key().node_id());
    assert_eq!(&session, app.id(), "both ends export the same session id");
    assert_eq!(negotiated_alpn(app.connection()).as_deref(), Some(ECHO));

    // INAC on the same server, from the same client, while the app connection is open.
    let inac = client.connect(&node.peer_addr()).await.unwrap();
    assert_ne!(inac.id(), app.id());
    let bytes = pattern(512, 3);
    let push = inline_push(&bytes, "k-app");
    let (echoed, answer) = tokio::join!(
        echo_round_trip(app.connection(), &push),
        inac.exchange(&push)
    );
    assert_eq!(echoed.encode(), push.encode(), "the app answered, not inac");
    assert_answer(&answer.unwrap(), Operation::Ingested, None);
    assert!(node.holds(&bytes));
    // Several exchanges on the app connection, one handler call for it.
    for n in 0..3u8 {
        let frame = inline_push(&[n; 8], &format!("k-{n}"));
        assert_eq!(
            echo_round_trip(app.connection(), &frame).await.encode(),
            frame.encode()
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(node.stored(), 1, "app frames never reach the receiver");

    // The handler sees the dialer leave.
    app.close();
    assert!(matches!(next(&mut seen).await, Seen::Ended(who) if who == peer_key().node_id()));
    client.close().await;
}

#[tokio::test]
async fn an_unknown_alpn_fails_the_handshake() {
    let Echo { node, calls, .. } = echo_node(Setup::new());
    let client =
        Client::for_peer(&node.peer_addr(), peer_key(), TransportConfig::default()).unwrap();
    for alpn in [&b"orbi-test-other/1"[..], b"orbiplex-inac/2"] {
        match client.connect_protocol(&node.peer_addr(), alpn).await {
            Err(TransportError::Connection {
                source: quinn::ConnectionError::ConnectionClosed(close),
                ..
            }) => {
                // TLS alert no_application_protocol (120) as QUIC CRYPTO_ERROR 0x100 + 120.
                assert_eq!(u64::from(close.error_code), 0x178, "{close:?}");
            }
            other => panic!("expected a refused handshake, got {other:?}"),
        }
    }
    assert!(matches!(
        client.connect_protocol(&node.peer_addr(), b"").await,
        Err(TransportError::Alpn(AlpnError::Length(_)))
    ));
    // A server without apps refuses the app's ALPN too.
    let plain = Setup::new().start();
    assert!(
        client
            .connect_protocol(&plain.peer_addr(), ECHO)
            .await
            .is_err()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The listener still serves both known protocols.
    client.connect(&node.peer_addr()).await.unwrap();
    client
        .connect_protocol(&node.peer_addr(), ECHO)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_barred_peer_never_reaches_an_app_handler() {
    let Echo { node, calls, .. } = echo_node(Setup::new().transport(|t| {
        t.barred_peers.insert(key(6).node_id());
    }));
    let client = Client::for_peer(&node.peer_addr(), key(6), TransportConfig::default()).unwrap();
    let attempt = client.connect_protocol(&node.peer_addr(), ECHO).await;
    // Under a time limit: a barred peer that were served would never be closed.
    let closed =
        tokio::time::timeout(std::time::Duration::from_secs(10), closed_with(attempt)).await;
    assert_eq!(closed.ok(), Some(0x101), "the barred peer is closed");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

fn receiver() -> Receiver {
    Receiver::new(
        node_key(),
        ReceiverConfig::default(),
        KindRegistry::builder().build().unwrap(),
        MemoryStore::new(),
        MemoryLedger::new(),
    )
}

fn bind(apps: Vec<AppProtocol>) -> Result<Server, TransportError> {
    Server::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        node_key(),
        receiver(),
        TransportConfig::default(),
        apps,
    )
}

#[tokio::test]
async fn the_inac_alpn_and_duplicates_are_refused_at_bind() {
    let noop = |alpn: &[u8]| AppProtocol::new(alpn, |_| async {});
    match bind(vec![noop(b"a/1"), noop(ALPN)]) {
        Err(TransportError::Alpn(AlpnError::Reserved(alpn))) => {
            assert_eq!(alpn, "orbiplex-inac/1")
        }
        other => panic!("expected reserved, got {other:?}"),
    }
    match bind(vec![noop(b"a/1"), noop(b"b/1"), noop(b"a/1")]) {
        Err(error @ TransportError::Alpn(AlpnError::Duplicate(_))) => {
            assert_eq!(
                error.to_string(),
                "application protocol \"a/1\" is given twice"
            )
        }
        other => panic!("expected duplicate, got {other:?}"),
    }
    assert!(matches!(
        bind(vec![noop(&[b'x'; 256])]),
        Err(TransportError::Alpn(AlpnError::Length(_)))
    ));
    let server = bind(vec![noop(b"a/1"), noop(b"b/1")]).unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_app_connections_and_waits_for_their_handlers() {
    let Echo {
        mut node, mut seen, ..
    } = echo_node(Setup::new());
    let (client, app) = node.connect_app(&peer_key(), ECHO).await;
    assert!(matches!(next(&mut seen).await, Seen::Connected(..)));
    // The app connection is idle and open: it is closed, not drained for the whole grace.
    let started = std::time::Instant::now();
    node.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The handler returned before shutdown did.
    assert!(matches!(seen.try_recv(), Ok(Seen::Ended(_))));
    assert_eq!(closed_with(Ok(app)).await, 0x0);
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_never_returns_does_not_hold_up_the_shutdown() {
    const STUCK: &[u8] = b"orbi-test-stuck/1";
    let (entered, mut started) = mpsc::unbounded_channel();
    // Waits on something that is not its connection, for ever.
    let stuck = AppProtocol::new(STUCK, move |_app: AppConnection| {
        let entered = entered.clone();
        async move {
            let _ = entered.send(());
            std::future::pending::<()>().await;
        }
    });
    let mut node = Setup::new().app(stuck).start();
    let (_client, _app) = node.connect_app(&peer_key(), STUCK).await;
    tokio::time::timeout(Duration::from_secs(10), started.recv())
        .await
        .expect("the handler runs")
        .expect("the handler is alive");
    let shutdown = tokio::time::timeout(Duration::from_secs(20), node.shutdown()).await;
    assert!(
        shutdown.is_ok(),
        "the shutdown returned although the handler never did"
    );
}
