//! Graceful shutdown: exchanges in flight are answered, new ones are not taken.

use std::time::Duration;

use orbi_inac::quic::{Client, TransportConfig, TransportError};
use orbi_types::inac::Operation;
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
    assert!(
        session
            .exchange(&inline_push(b"after", "k-after"))
            .await
            .is_err()
    );
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
