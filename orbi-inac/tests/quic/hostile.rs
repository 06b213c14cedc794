//! A hostile listener against our client: it proves the right key, then withholds stream and
//! flow-control credit. Every wait of the client on the peer must end, with
//! `ExchangeError::Stalled` naming what it waited for.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use orbi_inac::{
    Descriptor, Frame,
    quic::{
        Client, ExchangeError, PeerAddr, Session, Stall, StreamCode, TransportConfig,
        config::{endpoint, server_config},
        wire::read_frame,
    },
};
use quinn::VarInt;

use crate::common::{BLOB, OCTETS, node_key, peer_key};

/// Short limits so that a stalled exchange ends within the test.
fn short_limits() -> TransportConfig {
    TransportConfig {
        frame_timeout: Duration::from_millis(700),
        response_timeout: Duration::from_millis(700),
        stall_timeout: Duration::from_millis(700),
        ..TransportConfig::default()
    }
}

/// A listener with the node's real key and `shape`d transport parameters, and the address to
/// dial it at.
fn hostile_listener(
    shape: impl FnOnce(&mut quinn::TransportConfig),
) -> (quinn::Endpoint, PeerAddr) {
    let config = TransportConfig::default();
    let mut server = server_config(&node_key(), &config).unwrap();
    let mut transport = config.quinn_transport(true);
    shape(&mut transport);
    server.transport_config(Arc::new(transport));
    let listener = endpoint("127.0.0.1:0".parse().unwrap(), Some(server), &config).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let peer = PeerAddr {
        node: node_key().node_id(),
        addr,
    };
    (listener, peer)
}

async fn dial(peer: &PeerAddr) -> (Client, Session) {
    let client = Client::for_peer(peer, peer_key(), short_limits()).unwrap();
    let session = client.connect(peer).await.unwrap();
    (client, session)
}

fn offer() -> Frame {
    Frame::offer(&Descriptor::of_bytes(BLOB, OCTETS, b"x"))
        .build()
        .unwrap()
}

/// `exchange`'s error; a client still waiting after 10 s fails the test instead of hanging it.
async fn error_of<T: std::fmt::Debug>(
    exchange: impl Future<Output = Result<T, ExchangeError>>,
) -> ExchangeError {
    match tokio::time::timeout(Duration::from_secs(10), exchange).await {
        Ok(outcome) => outcome.unwrap_err(),
        Err(_) => panic!("the client still waits on the hostile listener after 10 s"),
    }
}

fn stalled_on(error: &ExchangeError) -> Option<Stall> {
    match error {
        ExchangeError::Stalled { waiting, .. } => Some(*waiting),
        _ => None,
    }
}

#[tokio::test]
async fn a_listener_that_grants_no_stream_cannot_hold_an_exchange_open() {
    let (listener, peer) = hostile_listener(|transport| {
        transport.max_concurrent_bidi_streams(VarInt::from_u32(0));
    });
    let held = tokio::spawn(async move {
        let connection = listener.accept().await.unwrap().await.unwrap();
        // Keep-alives keep the connection up; it just never grants a stream.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(connection);
    });
    let (_client, session) = dial(&peer).await;
    let error = error_of(session.exchange(&offer())).await;
    assert_eq!(stalled_on(&error), Some(Stall::Open), "{error}");
    held.abort();
}

#[tokio::test]
async fn a_listener_that_reads_no_frame_cannot_hold_an_exchange_open() {
    // 64 bytes of stream credit: less than any frame.
    let (listener, peer) = hostile_listener(|transport| {
        transport.stream_receive_window(VarInt::from_u32(64));
    });
    let held = tokio::spawn(async move {
        let connection = listener.accept().await.unwrap().await.unwrap();
        let (_send, mut recv) = connection.accept_bi().await.unwrap();
        // Reading would grant more credit: it only waits for the client to give up.
        recv.received_reset().await
    });
    let (_client, session) = dial(&peer).await;
    let error = error_of(session.exchange(&offer())).await;
    assert_eq!(stalled_on(&error), Some(Stall::Frame), "{error}");
    let ended = held.await.unwrap();
    assert_eq!(
        ended.unwrap(),
        Some(StreamCode::ResponseTimeout.varint()),
        "the listener sees the exchange reset 0x4"
    );
}

#[tokio::test]
async fn a_listener_that_never_reads_the_body_cannot_hold_a_stream_push() {
    let (listener, peer) = hostile_listener(|_| {});
    let held = tokio::spawn(async move {
        let connection = listener.accept().await.unwrap().await.unwrap();
        let (_send, mut recv) = connection.accept_bi().await.unwrap();
        read_frame(&mut recv, Duration::from_secs(10))
            .await
            .unwrap();
        // Reads nothing more, answers nothing: the body fills the stream window and stops.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop((recv, connection));
    });
    let (_client, session) = dial(&peer).await;
    let body = vec![7u8; 64 << 20];
    let descriptor = Descriptor::of_bytes(BLOB, OCTETS, &body);
    let mut sent = 0u64;
    let error =
        error_of(session.push_stream(&descriptor, |header| header, &body[..], &mut |n| sent = n))
            .await;
    assert_eq!(stalled_on(&error), Some(Stall::Body), "{error}");
    assert!(
        sent < body.len() as u64,
        "the window stopped the body at {sent} bytes"
    );
    held.abort();
}
