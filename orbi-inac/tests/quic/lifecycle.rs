//! Graceful shutdown: exchanges in flight are answered, new ones are not taken.

use std::time::Duration;

use orbi_inac::quic::{Client, TransportConfig, TransportError};
use orbi_types::inac::{Operation, RefusalCode};
use tokio::io::AsyncWriteExt;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_exchanges_and_refuses_new_ones() {
    let mut node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = pattern(3_000_000, 8);
    let d = descriptor(&bytes);
    let (mut pipe, source) = tokio::io::duplex(1 << 20);
    let push = tokio::spawn(async move {
        session
            .push_stream(&d, |b| b.idempotency_key("k-drain"), source, &mut |_| {})
            .await
    });
    pipe.write_all(&bytes[..1_000_000]).await.unwrap();
    let peer = peer_key().node_id();
    node.until("the body is in flight", move |r| {
        r.bodies_in_flight(&peer) == 1
    })
    .await;

    let addr = node.peer_addr();
    let server = node.server.take().unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = Client::for_peer(&addr, key(5), TransportConfig::default()).unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), late.connect(&addr))
            .await
            .map_or(true, |result| result.is_err()),
        "no new connection during shutdown"
    );

    pipe.write_all(&bytes[1_000_000..]).await.unwrap();
    let answer = push.await.unwrap().unwrap();
    assert_answer(&answer, Operation::Ingested, None);
    let mut receiver = shutdown.await.unwrap().unwrap();
    assert_eq!(ingested_count(&mut receiver, &peer_key().node_id()), 1);
    assert!(node.holds(&bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_panics_is_reported_and_the_shutdown_says_so() {
    let mut node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    assert!(
        session
            .exchange(&inline_push(b"before", "k-before"))
            .await
            .is_ok()
    );
    // A bug on the receiver thread (here a task that panics) stops it...
    let failing = node
        .server()
        .with_receiver(|_| -> () { panic!("a bug on the receiver thread") });
    assert!(matches!(failing.await, Err(TransportError::Closed)));
    // ... which whoever runs the server learns, instead of a node that refuses everything.
    tokio::time::timeout(Duration::from_secs(10), node.server().receiver_failed())
        .await
        .expect("the failure is reported");
    // Every exchange from then on is refused as retryable (the node must be restarted), with
    // its correlation id, and an offer is deferred: nothing reports success.
    let after = session
        .exchange(&inline_push(b"after", "k-after"))
        .await
        .unwrap();
    assert_answer(
        &after,
        Operation::Refused,
        Some(RefusalCode::HandlerUnavailable),
    );
    assert_eq!(after.correlation_id(), Some("c-k-after"));
    let offer = orbi_inac::Frame::offer(&descriptor(b"offered"))
        .correlation_id("c-offer")
        .build()
        .unwrap();
    let deferred = session.exchange(&offer).await.unwrap();
    assert_answer(
        &deferred,
        Operation::Defer,
        Some(RefusalCode::HandlerUnavailable),
    );
    assert_eq!(deferred.correlation_id(), Some("c-offer"));
    // A frame over the limit is still malformed, whatever the receiver's state.
    let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
    send.write_all(&(256 * 1024 + 1u32).to_be_bytes())
        .await
        .unwrap();
    let too_large = orbi_inac::quic::wire::read_frame(&mut recv, Duration::from_secs(5))
        .await
        .unwrap();
    let too_large = orbi_inac::Frame::decode(&too_large).unwrap();
    assert_answer(&too_large, Operation::Refused, Some(RefusalCode::Malformed));
    let shutdown = node.server.take().unwrap().shutdown().await;
    assert!(matches!(shutdown, Err(TransportError::ReceiverFailed)));
}

/// The receiver stops while a stream body is arriving: the push is still answered, retryable
/// `handler-unavailable` with its correlation id, and its staged body is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_whose_receiver_stops_meanwhile_is_answered_handler_unavailable() {
    let mut node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = pattern(2_000_000, 9);
    let d = descriptor(&bytes);
    let (mut pipe, source) = tokio::io::duplex(1 << 20);
    let push = tokio::spawn(async move {
        session
            .push_stream(
                &d,
                |b| b.idempotency_key("k-cut").correlation_id("c-k-cut"),
                source,
                &mut |_| {},
            )
            .await
    });
    pipe.write_all(&bytes[..1_000_000]).await.unwrap();
    let peer = peer_key().node_id();
    node.until("the body is in flight", move |r| {
        r.bodies_in_flight(&peer) == 1
    })
    .await;
    let failing = node
        .server()
        .with_receiver(|_| -> () { panic!("a bug on the receiver thread") });
    assert!(matches!(failing.await, Err(TransportError::Closed)));
    pipe.write_all(&bytes[1_000_000..]).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), push)
        .await
        .expect("the push is answered")
        .unwrap()
        .unwrap();
    assert_answer(
        &answer,
        Operation::Refused,
        Some(RefusalCode::HandlerUnavailable),
    );
    assert_eq!(answer.correlation_id(), Some("c-k-cut"));
    assert_eq!(node.staged_files(), 0);
    assert!(!node.holds(&bytes));
    let shutdown = node.server.take().unwrap().shutdown().await;
    assert!(matches!(shutdown, Err(TransportError::ReceiverFailed)));
}

#[tokio::test]
async fn a_running_receiver_reports_no_failure() {
    let mut node = Setup::new().start();
    let quiet =
        tokio::time::timeout(Duration::from_millis(300), node.server().receiver_failed()).await;
    assert!(quiet.is_err(), "no failure while it runs");
    assert!(node.shutdown().await.stats().frames == 0);
}

/// A graceful shutdown with a stuck peer beside an honest one: the honest push in flight is
/// drained and ingested; the stuck peer's exchanges (one with half a frame, one whose body
/// stopped moving) do not hold the shutdown past its grace. The stuck connection is closed
/// `0x0`, and its staged body leaves no temp file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_after_its_grace_despite_a_stuck_peer_and_leaves_no_temp_file() {
    let honest = key(5);
    let mut node = Setup::new()
        .allow(&honest)
        .transport(|t| t.shutdown_grace = Duration::from_secs(2))
        .start();
    let (_stuck_client, stuck) = node.connect(&peer_key()).await;
    let (mut half_frame, _half_frame_recv) = stuck.connection().open_bi().await.unwrap();
    half_frame.write_all(&[0, 0]).await.unwrap();
    let held = pattern(100_000, 11);
    let (mut body, _body_recv) = stuck.connection().open_bi().await.unwrap();
    let id = orbi_inac::quic::wire::stream_number(body.id()).to_string();
    let header = orbi_inac::Frame::push_stream(&descriptor(&held), &id)
        .build()
        .unwrap();
    body.write_all(&orbi_inac::quic::wire::encode_frame(&header))
        .await
        .unwrap();
    body.write_all(&held[..10_000]).await.unwrap();
    let stuck_peer = peer_key().node_id();
    node.until("the stuck body is staged", move |r| {
        r.bodies_in_flight(&stuck_peer) == 1
    })
    .await;

    let (_client, session) = node.connect(&honest).await;
    let bytes = pattern(2_000_000, 12);
    let d = descriptor(&bytes);
    let (mut pipe, source) = tokio::io::duplex(1 << 20);
    let push =
        tokio::spawn(async move { session.push_stream(&d, |b| b, source, &mut |_| {}).await });
    pipe.write_all(&bytes[..500_000]).await.unwrap();
    let honest_peer = honest.node_id();
    node.until("the honest body is in flight", move |r| {
        r.bodies_in_flight(&honest_peer) == 1
    })
    .await;

    let started = std::time::Instant::now();
    let shutdown = tokio::spawn(node.server.take().unwrap().shutdown());
    pipe.write_all(&bytes[500_000..]).await.unwrap();
    assert_answer(&push.await.unwrap().unwrap(), Operation::Ingested, None);
    let mut receiver = tokio::time::timeout(Duration::from_secs(15), shutdown)
        .await
        .expect("the shutdown ends despite the stuck peer")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "the grace was given: {took:?}"
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), stuck.connection().closed())
        .await
        .unwrap();
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(close) if close.error_code.into_inner() == 0),
        "{closed:?}"
    );
    assert_eq!(receiver.bodies_in_flight(&peer_key().node_id()), 0);
    assert_eq!(ingested_count(&mut receiver, &honest.node_id()), 1);
    assert_eq!(node.staged_files(), 0, "no temp file survives");
    assert!(node.holds(&bytes));
    assert!(!node.holds(&held));
    assert_eq!(node.accepted.calls(), 1);
}
