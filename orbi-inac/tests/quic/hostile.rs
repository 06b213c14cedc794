//! A hostile listener against our client: it proves the right key, then withholds stream and
//! flow-control credit. Every wait of the client on the peer must end, with
//! `ExchangeError::Stalled` naming what it waited for.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use orbi_inac::{
    Descriptor, Frame,
    quic::{
        Client, ExchangeError, ExistingFile, InlineOutcome, PeerAddr, RequestOutcome, Session,
        Stall, StreamCode, TransportConfig,
        config::{endpoint, server_config},
        wire::{read_frame, write_frame},
    },
};
use orbi_types::inac::{Operation, RefusalCode};
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

/// Accepts the first connection and its first exchange.
async fn first_stream(
    listener: &quinn::Endpoint,
) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let connection = listener.accept().await.unwrap().await.unwrap();
    let (send, recv) = connection.accept_bi().await.unwrap();
    (connection, send, recv)
}

/// Accepts the first connection and its first exchange, and reads the exchange's frame.
async fn first_exchange(
    listener: &quinn::Endpoint,
) -> (
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
    Frame,
) {
    let (connection, send, mut recv) = first_stream(listener).await;
    let frame = read_frame(&mut recv, Duration::from_secs(10))
        .await
        .unwrap();
    (connection, send, recv, Frame::decode(&frame).unwrap())
}

/// Writes the stream-mode push header of `body` on `send`.
async fn send_push_header(send: &mut quinn::SendStream, body: &[u8]) {
    let descriptor = Descriptor::of_bytes(BLOB, OCTETS, body);
    let stream_id = orbi_inac::quic::wire::stream_number(send.id()).to_string();
    let header = Frame::push_stream(&descriptor, &stream_id).build().unwrap();
    write_frame(send, &header).await.unwrap();
}

/// A `request` for the artifact `body` is.
fn request_of(body: &[u8]) -> Frame {
    Frame::request_for(BLOB, OCTETS)
        .artifact_id(&Descriptor::of_bytes(BLOB, OCTETS, body).artifact_id)
        .build()
        .unwrap()
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

/// `exchange`'s answer; a client still waiting after 30 s fails the test instead of hanging.
async fn error_free<T: std::fmt::Debug>(
    exchange: impl Future<Output = Result<T, ExchangeError>>,
) -> T {
    match tokio::time::timeout(Duration::from_secs(30), exchange).await {
        Ok(outcome) => outcome.unwrap(),
        Err(_) => panic!("the client still waits after 30 s"),
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
        let (_connection, _send, mut recv) = first_stream(&listener).await;
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
        let (_connection, _send, mut recv, _header) = first_exchange(&listener).await;
        // Reads nothing more, answers nothing: the body fills the stream window and stops
        // until the client gives up on it.
        recv.received_reset().await.unwrap()
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
    assert_eq!(
        held.await.unwrap(),
        Some(StreamCode::Stale.varint()),
        "the listener sees the body reset 0x6"
    );
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
        let (connection, mut send, _recv, _request) = first_exchange(&listener).await;
        send_push_header(&mut send, &body).await;
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

/// Limits under which a 1 MiB body has 0.7 s + 1 s: trickling is too slow, each step is not.
fn trickle_limits() -> TransportConfig {
    TransportConfig {
        min_body_rate: 1024 * 1024,
        ..short_limits()
    }
}

#[tokio::test]
async fn a_served_body_trickled_inside_each_stall_timeout_is_given_up_by_its_deadline() {
    let (listener, peer) = hostile_listener(|_| {});
    let body = vec![9u8; 1 << 20];
    let served = tokio::spawn(async move {
        let (connection, mut send, _recv, _request) = first_exchange(&listener).await;
        send_push_header(&mut send, &body).await;
        // 1000 bytes every 100 ms: always well inside the 700 ms stall timeout.
        for chunk in body.chunks(1000) {
            if send.write_all(chunk).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ours = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await;
        drop(connection);
        ours.ok().and_then(Result::ok).flatten()
    });
    let client = Client::for_peer(&peer, peer_key(), trickle_limits()).unwrap();
    let session = client.connect(&peer).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let request = request_of(&vec![9u8; 1 << 20]);
    let out = dir.path().join("out.bin");
    let error = error_of(session.request_to_file(&request, &out, &mut |_, _| {})).await;
    assert!(
        matches!(
            error,
            ExchangeError::TooSlow {
                waiting: Stall::Served,
                min_rate: 1_048_576
            }
        ),
        "{error}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(served.await.unwrap(), Some(StreamCode::Stale.varint()));
}

#[tokio::test]
async fn a_listener_that_takes_the_body_by_the_drop_cannot_hold_a_stream_push() {
    // 64 KiB of stream credit, then 2000 bytes taken every 100 ms: each of our 4 KiB writes
    // gets credit well inside the stall timeout, the whole body never comes near its deadline.
    let (listener, peer) = hostile_listener(|transport| {
        transport.stream_receive_window(VarInt::from_u32(64 * 1024));
    });
    let held = tokio::spawn(async move {
        let (_connection, _send, mut recv, _header) = first_exchange(&listener).await;
        let mut drop_of = [0u8; 2000];
        loop {
            match recv.read(&mut drop_of).await {
                Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                Ok(None) => return None,
                Err(quinn::ReadError::Reset(code)) => return Some(code),
                Err(_) => return None,
            }
        }
    });
    let limits = TransportConfig {
        stall_timeout: Duration::from_secs(2),
        body_buffer_bytes: 4096,
        ..trickle_limits()
    };
    let client = Client::for_peer(&peer, peer_key(), limits).unwrap();
    let session = client.connect(&peer).await.unwrap();
    let body = vec![7u8; 1 << 20];
    let descriptor = Descriptor::of_bytes(BLOB, OCTETS, &body);
    let mut sent = 0u64;
    let error =
        error_of(session.push_stream(&descriptor, |header| header, &body[..], &mut |n| sent = n))
            .await;
    assert!(
        matches!(
            error,
            ExchangeError::TooSlow {
                waiting: Stall::Body,
                ..
            }
        ),
        "{error} after {sent} bytes"
    );
    assert!(
        sent > 64 * 1024,
        "the body moved ({sent} bytes), just too slowly"
    );
    assert_eq!(held.await.unwrap(), Some(StreamCode::Stale.varint()));
}

/// A listener that answers one request with `serve(request)` and returns the requester's
/// answer frame.
fn serve_inline(
    listener: quinn::Endpoint,
    serve: impl FnOnce(&Frame) -> Frame + Send + 'static,
) -> tokio::task::JoinHandle<Frame> {
    tokio::spawn(async move {
        let (_connection, mut send, mut recv, request) = first_exchange(&listener).await;
        let push = serve(&request);
        write_frame(&mut send, &push).await.unwrap();
        let _ = send.finish();
        let answer = read_frame(&mut recv, Duration::from_secs(10))
            .await
            .unwrap();
        Frame::decode(&answer).unwrap()
    })
}

/// What a listener serves for a request.
type Serve = fn(&Frame) -> Frame;

fn refusal_code(frame: &Frame) -> Option<RefusalCode> {
    frame.response().and_then(|response| response.refusal_code)
}

#[tokio::test]
async fn an_inline_request_takes_only_what_it_asked_for_and_says_so() {
    const ASKED: &[u8] = b"the decision";
    let id = Descriptor::of_bytes(BLOB, OCTETS, ASKED).artifact_id;
    let request = || {
        Frame::request_for(BLOB, OCTETS)
            .artifact_id(&id)
            .correlation_id("c-1")
            .build()
            .unwrap()
    };
    // Each wrong push, and the refusal it earns.
    let other_kind = |request: &Frame| {
        let mut served = Descriptor::of_bytes("vendor.other.v1", OCTETS, ASKED);
        served.artifact_id = request.request().unwrap().artifact_id.clone().unwrap();
        Frame::push_inline(&served, ASKED)
            .correlation_id("c-1")
            .build()
            .unwrap()
    };
    let other_id = |_: &Frame| {
        let served = Descriptor::of_bytes(BLOB, OCTETS, b"another one");
        Frame::push_inline(&served, b"another one")
            .correlation_id("c-1")
            .build()
            .unwrap()
    };
    let wrong_digest = |request: &Frame| {
        let mut served = Descriptor::of_bytes(BLOB, OCTETS, ASKED);
        served.artifact_id = request.request().unwrap().artifact_id.clone().unwrap();
        served.digest = Descriptor::of_bytes(BLOB, OCTETS, b"the_decision").digest;
        Frame::push_inline(&served, ASKED)
            .correlation_id("c-1")
            .build()
            .unwrap()
    };
    let right = |request: &Frame| {
        let mut served = Descriptor::of_bytes(BLOB, OCTETS, ASKED);
        served.artifact_id = request.request().unwrap().artifact_id.clone().unwrap();
        Frame::push_inline(&served, ASKED)
            .correlation_id("c-1")
            .build()
            .unwrap()
    };
    let cases: [(Serve, Option<RefusalCode>); 4] = [
        (other_kind, Some(RefusalCode::Malformed)),
        (other_id, Some(RefusalCode::Malformed)),
        (wrong_digest, Some(RefusalCode::DigestMismatch)),
        (right, None),
    ];
    for (serve, refused) in cases {
        let (listener, peer) = hostile_listener(|_| {});
        let listener_saw = serve_inline(listener, serve);
        let (_client, session) = dial(&peer).await;
        let outcome = session.request_inline(&request()).await.unwrap();
        let ours = listener_saw.await.unwrap();
        match (outcome, refused) {
            (InlineOutcome::Received { bytes, .. }, None) => {
                assert_eq!(bytes, ASKED);
                assert_eq!(ours.operation(), Operation::Ingested);
            }
            (InlineOutcome::Refused { refusal, .. }, Some(code)) => {
                assert_eq!(refusal.code(), code, "{}", refusal.message());
                assert_eq!(ours.operation(), Operation::Refused);
                assert_eq!(refusal_code(&ours), Some(code));
            }
            (outcome, refused) => panic!("{outcome:?} where {refused:?} was due"),
        }
    }
}

#[tokio::test]
async fn a_served_body_refused_unread_is_stopped_with_0x1() {
    let (listener, peer) = hostile_listener(|_| {});
    let body = vec![9u8; 1 << 20];
    let served = tokio::spawn(async move {
        let (connection, mut send, mut recv, _request) = first_exchange(&listener).await;
        send_push_header(&mut send, &body).await;
        let _ = send.write_all(&body).await;
        let stopped = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await;
        let answer = read_frame(&mut recv, Duration::from_secs(10))
            .await
            .unwrap();
        drop(connection);
        let stopped = stopped.ok().and_then(Result::ok).flatten();
        (stopped, Frame::decode(&answer).unwrap())
    });
    let (_client, session) = dial(&peer).await;
    let dir = tempfile::tempdir().unwrap();
    let request = request_of(&vec![9u8; 1 << 20]);
    let out = dir.path().join("out.bin");
    session
        .request_to_file_up_to(&request, &out, 1000, ExistingFile::Keep, &mut |_, _| {})
        .await
        .unwrap();
    let (stopped, answer) = served.await.unwrap();
    assert_eq!(refusal_code(&answer), Some(RefusalCode::PayloadTooLarge));
    assert_eq!(stopped, Some(StreamCode::Refused.varint()), "spec 8.5: 0x1");
    assert!(!out.exists());
}

/// Spec §8.5 on the requester's side: a served stream-mode push must name the stream it came
/// on; one naming another is refused `malformed` unread, and nothing is written.
#[tokio::test]
async fn a_served_push_naming_another_stream_is_refused_malformed() {
    let (listener, peer) = hostile_listener(|_| {});
    let body = vec![9u8; 1 << 20];
    let served = tokio::spawn(async move {
        let (connection, mut send, mut recv, _request) = first_exchange(&listener).await;
        let descriptor = Descriptor::of_bytes(BLOB, OCTETS, &body);
        let elsewhere = orbi_inac::quic::wire::stream_number(send.id()) + 4;
        let header = Frame::push_stream(&descriptor, &elsewhere.to_string())
            .build()
            .unwrap();
        write_frame(&mut send, &header).await.unwrap();
        let _ = send.write_all(&body).await;
        let answer = read_frame(&mut recv, Duration::from_secs(10))
            .await
            .unwrap();
        drop(connection);
        Frame::decode(&answer).unwrap()
    });
    let (_client, session) = dial(&peer).await;
    let dir = tempfile::tempdir().unwrap();
    let request = request_of(&vec![9u8; 1 << 20]);
    let out = dir.path().join("out.bin");
    let outcome = session
        .request_to_file(&request, &out, &mut |_, _| {})
        .await
        .unwrap();
    let RequestOutcome::Received { answer: ours, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(refusal_code(&ours), Some(RefusalCode::Malformed));
    let message = ours.response().unwrap().message.clone().unwrap_or_default();
    assert!(message.contains("arrived on stream 0"), "{message}");
    let answer = served.await.unwrap();
    assert_eq!(refusal_code(&answer), Some(RefusalCode::Malformed));
    assert!(!out.exists());
}

#[tokio::test]
async fn a_frame_that_keeps_moving_slowly_is_not_given_up() {
    // An honest listener on a congested path: 64 bytes of stream credit, taken every 100 ms.
    // A 3 000-byte inline push (a frame of ~4 KB) then takes ~7 s, longer than the response
    // timeout, but it moves all along and ends well within its deadline: it goes through.
    let (listener, peer) = hostile_listener(|transport| {
        transport.stream_receive_window(VarInt::from_u32(64));
    });
    let server = tokio::spawn(async move {
        let (connection, mut send, mut recv) = first_stream(&listener).await;
        let mut frame = Vec::new();
        let mut piece = [0u8; 64];
        while let Some(n) = recv.read(&mut piece).await.unwrap() {
            frame.extend_from_slice(&piece[..n]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let push = Frame::decode(&frame[4..]).unwrap();
        let answer = Frame::answer(push.correlation_id(), &orbi_inac::Verdict::Ingested);
        write_frame(&mut send, &answer).await.unwrap();
        let _ = send.finish();
        let _ = send.stopped().await;
        drop(connection);
    });
    let client = Client::for_peer(&peer, peer_key(), TransportConfig::default()).unwrap();
    let session = client.connect(&peer).await.unwrap();
    let bytes = vec![5u8; 3000];
    let push = Frame::push_inline(&Descriptor::of_bytes(BLOB, OCTETS, &bytes), &bytes)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let answer = error_free(session.exchange(&push)).await;
    assert_eq!(answer.operation(), Operation::Ingested);
    let took = started.elapsed();
    assert!(
        took > TransportConfig::default().response_timeout,
        "the case needs a frame slower than the response timeout: {took:?}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn a_listener_that_takes_a_frame_a_byte_at_a_time_is_left_by_its_deadline() {
    // 8 bytes of stream credit, then one byte taken every 300 ms: always inside the frame
    // timeout, never near the frame's deadline.
    let (listener, peer) = hostile_listener(|transport| {
        transport.stream_receive_window(VarInt::from_u32(8));
    });
    let held = tokio::spawn(async move {
        let (connection, _send, mut recv) = first_stream(&listener).await;
        let mut byte = [0u8; 1];
        loop {
            match recv.read(&mut byte).await {
                Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(300)).await,
                Ok(None) => return None,
                Err(quinn::ReadError::Reset(code)) => return Some(code),
                Err(_) => return None,
            }
            let _ = &connection;
        }
    });
    let (_client, session) = dial(&peer).await;
    let error = error_of(session.exchange(&offer())).await;
    assert_eq!(stalled_on(&error), Some(Stall::Frame), "{error}");
    assert_eq!(
        held.await.unwrap(),
        Some(StreamCode::ResponseTimeout.varint())
    );
}

#[tokio::test]
async fn a_served_body_longer_than_declared_is_stopped_with_0x2() {
    let (listener, peer) = hostile_listener(|_| {});
    let body = vec![9u8; 1000];
    let served = tokio::spawn(async move {
        let (connection, mut send, _recv, _request) = first_exchange(&listener).await;
        send_push_header(&mut send, &body).await;
        // Twice the declared bytes, and the stream left open for the requester's stop.
        let _ = send.write_all(&body).await;
        let _ = send.write_all(&body).await;
        let stopped = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await;
        drop(connection);
        stopped.ok().and_then(Result::ok).flatten()
    });
    let (_client, session) = dial(&peer).await;
    let dir = tempfile::tempdir().unwrap();
    let request = Frame::request_for(BLOB, OCTETS)
        .artifact_id(&Descriptor::of_bytes(BLOB, OCTETS, &[9u8; 1000]).artifact_id)
        .build()
        .unwrap();
    let out = dir.path().join("out.bin");
    let outcome = session
        .request_to_file(&request, &out, &mut |_, _| {})
        .await
        .unwrap();
    let RequestOutcome::Received { answer, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(refusal_code(&answer), Some(RefusalCode::Malformed));
    assert_eq!(
        served.await.unwrap(),
        Some(StreamCode::Malformed.varint()),
        "0x2"
    );
    assert!(!out.exists());
}

#[tokio::test]
async fn a_dialer_that_takes_an_answer_a_byte_at_a_time_is_left_by_its_deadline() {
    use orbi_inac::quic::{ALPN, config::client_config_for_alpn};

    use crate::common::{Setup, inline_push};
    // A real node with short limits; a raw dialer granting 8 bytes of credit and taking one
    // byte of the answer every 300 ms: inside the frame timeout, never near its deadline.
    let node = Setup::new()
        .transport(|t| {
            t.frame_timeout = Duration::from_millis(700);
            t.response_timeout = Duration::from_millis(700);
        })
        .start();
    let config = TransportConfig::default();
    let mut dial =
        client_config_for_alpn(Some(&peer_key()), &node_key().node_id(), &config, ALPN).unwrap();
    let mut transport = config.quinn_transport(false);
    transport.stream_receive_window(VarInt::from_u32(8));
    dial.transport_config(std::sync::Arc::new(transport));
    let client = endpoint("127.0.0.1:0".parse().unwrap(), None, &config).unwrap();
    let connection = client
        .connect_with(dial, node.addr(), "inac")
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    write_frame(&mut send, &inline_push(b"{}", "k-drip"))
        .await
        .unwrap();
    send.finish().unwrap();
    let mut byte = [0u8; 1];
    let started = std::time::Instant::now();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), recv.read(&mut byte)).await {
            Ok(Ok(Some(_))) => tokio::time::sleep(Duration::from_millis(300)).await,
            Ok(outcome) => break outcome,
            Err(_) => panic!("the node still writes its answer after 10 s"),
        }
    };
    assert!(
        matches!(ended, Err(quinn::ReadError::Reset(code)) if code == StreamCode::ResponseTimeout.varint()),
        "{ended:?} after {:?}",
        started.elapsed()
    );
}

/// Spec §2: a receiver echoes `correlation/id`. An answer carrying another one is not this
/// exchange's answer, whatever it says.
#[tokio::test]
async fn an_answer_with_another_correlation_id_is_not_taken() {
    let (listener, peer) = hostile_listener(|_| {});
    let held = tokio::spawn(async move {
        let (connection, mut send, _recv, _offer) = first_exchange(&listener).await;
        let answer = Frame::answer(Some("c-someone-else"), &orbi_inac::Verdict::Ingested);
        write_frame(&mut send, &answer).await.unwrap();
        let _ = send.finish();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(connection);
    });
    let (_client, session) = dial(&peer).await;
    let push = Frame::push_inline(&Descriptor::of_bytes(BLOB, OCTETS, b"x"), b"x")
        .correlation_id("c-mine")
        .build()
        .unwrap();

    let error = error_of(session.exchange(&push)).await;
    // A refusal that echoes nothing (the peer could not read our frame) is still taken.
    let (listener, peer) = hostile_listener(|_| {});
    let unread = tokio::spawn(async move {
        let (connection, mut send, _recv, _push) = first_exchange(&listener).await;
        let refusal = orbi_inac::Refusal::new(RefusalCode::Malformed, "unreadable");
        let answer = Frame::answer(None, &orbi_inac::Verdict::Refuse(refusal));
        write_frame(&mut send, &answer).await.unwrap();
        let _ = send.finish();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(connection);
    });
    let (_other, second) = dial(&peer).await;
    let refused = error_free(second.exchange(&push)).await;
    assert_eq!(refused.operation(), Operation::Refused);
    unread.abort();

    assert!(
        matches!(&error, ExchangeError::CorrelationMismatch { sent, answered }
            if sent == "c-mine" && answered.as_deref() == Some("c-someone-else")),
        "{error}"
    );
    held.abort();
}
