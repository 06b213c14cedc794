//! A hostile listener against our client: it proves the right key, then withholds stream and
//! flow-control credit. Every wait of the client on the peer must end, with
//! `ExchangeError::Stalled` naming what it waited for.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use orbi_inac::{
    Descriptor, Frame,
    quic::{
        Client, ExchangeError, PeerAddr, Session, Stall, StreamCode, TransportConfig,
        config::{endpoint, server_config},
        wire::{read_frame, write_frame},
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

/// A listener that serves any request with the push header of a 1 MiB artifact, 1000 body
/// bytes, and, once the requester has taken them (`taken`), `then` on its half of the
/// exchange; returns the stream code it saw from us.
fn serve_a_broken_body(
    listener: quinn::Endpoint,
    body: Vec<u8>,
    taken: tokio::sync::oneshot::Receiver<()>,
    then: fn(&mut quinn::SendStream),
) -> tokio::task::JoinHandle<Option<VarInt>> {
    tokio::spawn(async move {
        let connection = listener.accept().await.unwrap().await.unwrap();
        let (mut send, mut recv) = connection.accept_bi().await.unwrap();
        read_frame(&mut recv, Duration::from_secs(10))
            .await
            .unwrap();
        let descriptor = Descriptor::of_bytes(BLOB, OCTETS, &body);
        let stream_id = VarInt::from(send.id()).into_inner().to_string();
        let header = Frame::push_stream(&descriptor, &stream_id).build().unwrap();
        write_frame(&mut send, &header).await.unwrap();
        send.write_all(&body[..1000]).await.unwrap();
        let _ = taken.await;
        then(&mut send);
        let ours = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await;
        drop(connection);
        ours.ok().and_then(Result::ok).flatten()
    })
}

/// Requests the 1 MiB artifact into a fresh directory; the error and what the directory holds.
async fn request_broken_body(
    session: &Session,
    body: &[u8],
    taken: tokio::sync::oneshot::Sender<()>,
) -> (ExchangeError, usize) {
    let dir = tempfile::tempdir().unwrap();
    let digest = Descriptor::of_bytes(BLOB, OCTETS, body).artifact_id;
    let request = Frame::request_for(BLOB, OCTETS)
        .artifact_id(&digest)
        .build()
        .unwrap();
    let out = dir.path().join("out.bin");
    let mut taken = Some(taken);
    let mut progress = |received: u64, _| {
        if received > 0
            && let Some(taken) = taken.take()
        {
            let _ = taken.send(());
        }
    };
    let error = error_of(session.request_to_file(&request, &out, &mut progress)).await;
    (error, std::fs::read_dir(dir.path()).unwrap().count())
}

#[tokio::test]
async fn a_served_body_the_peer_breaks_off_is_an_error_not_our_refusal() {
    let (listener, peer) = hostile_listener(|_| {});
    let body = vec![9u8; 1 << 20];
    let (taken, on_taken) = tokio::sync::oneshot::channel();
    let served = serve_a_broken_body(listener, body.clone(), on_taken, |send| {
        send.reset(StreamCode::SenderAbort.varint()).unwrap();
    });
    let (_client, session) = dial(&peer).await;
    let (error, left) = request_broken_body(&session, &body, taken).await;
    assert!(
        matches!(error, ExchangeError::Reset(code) if code == u64::from(StreamCode::SenderAbort.value())),
        "{error}"
    );
    assert_eq!(left, 0, "no file and no temp file");
    served.abort();
}

#[tokio::test]
async fn a_served_body_that_stalls_is_given_up_with_0x6() {
    let (listener, peer) = hostile_listener(|_| {});
    let body = vec![9u8; 1 << 20];
    // Sends nothing more and keeps the stream open.
    let (taken, on_taken) = tokio::sync::oneshot::channel();
    let served = serve_a_broken_body(listener, body.clone(), on_taken, |_| {});
    let (_client, session) = dial(&peer).await;
    let (error, left) = request_broken_body(&session, &body, taken).await;
    assert_eq!(stalled_on(&error), Some(Stall::Served), "{error}");
    assert_eq!(left, 0, "no file and no temp file");
    // The connection stays up until the listener has seen our STOP_SENDING.
    assert_eq!(served.await.unwrap(), Some(StreamCode::Stale.varint()));
}
