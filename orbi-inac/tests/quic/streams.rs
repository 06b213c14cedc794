//! Spec §8.5 and §9.4 over real QUIC: stream bodies verified byte for byte, refusals before
//! the body, malformed and interrupted bodies, stalls, and the per-peer cap.

use std::time::Duration;

use orbi_inac::{
    Frame,
    quic::{ExchangeError, StreamCode, wire::encode_frame},
};
use orbi_types::{
    Sha256Digest,
    inac::{Operation, RefusalCode},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_stream_is_verified_and_stored_byte_for_byte() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = pattern(100_000_000, 3);
    let mut seen = 0;
    let answer = session
        .push_stream(
            &descriptor(&bytes),
            |b| b.correlation_id("c-big").idempotency_key("k-big"),
            &bytes[..],
            &mut |sent| seen = sent,
        )
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);
    assert_eq!(answer.correlation_id(), Some("c-big"));
    assert_eq!(seen, 100_000_000);
    let path = node
        .store
        .files()
        .object_path(&Sha256Digest::of(&bytes))
        .unwrap();
    assert!(
        std::fs::read(path).unwrap() == bytes,
        "stored byte for byte"
    );
    assert_eq!(node.staged_files(), 0);
}

#[tokio::test]
async fn a_flipped_byte_is_a_digest_mismatch_after_the_body() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = vec![0u8; 100_000];
    let mut flipped = bytes.clone();
    flipped[50_000] = 1;
    let answer = session
        .push_stream(&descriptor(&bytes), |b| b, &flipped[..], &mut |_| {})
        .await
        .unwrap();
    assert_answer(
        &answer,
        Operation::Refused,
        Some(RefusalCode::DigestMismatch),
    );
    assert_eq!(node.accepted.calls(), 0);
    assert_eq!(node.stored(), 0);
    assert_eq!(node.staged_files(), 0);
}

#[tokio::test]
async fn a_refused_header_stops_a_1_gib_body_within_the_window() {
    let window = 256 * 1024;
    let node = Setup::new()
        .transport(|t| t.stream_receive_window = window)
        .start();
    // Not allowlisted: refused on the header.
    let (_client, session) = node.connect(&key(7)).await;
    let size = 1u64 << 30;
    let d = orbi_inac::Descriptor {
        size_bytes: size,
        ..descriptor(b"unused")
    };
    let mut sent = 0;
    let answer = session
        .push_stream(&d, |b| b, tokio::io::repeat(0).take(size), &mut |n| {
            sent = n
        })
        .await
        .unwrap();
    assert_answer(
        &answer,
        Operation::Refused,
        Some(RefusalCode::NotAuthorized),
    );
    let on_the_wire = session.connection().stats().udp_tx.bytes;
    assert!(
        on_the_wire < u64::from(window) + 128 * 1024,
        "{on_the_wire} bytes left the sender for a refused push"
    );
    assert!(
        sent < 64 << 20,
        "the sender stopped early ({sent} bytes buffered)"
    );
    assert_eq!(node.staged_files(), 0);
}

/// Opens a raw exchange: the header of `declared`, then `body` and FIN.
async fn raw_push(session: &orbi_inac::quic::Session, declared: &[u8], body: &[u8]) -> Frame {
    let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
    let id = orbi_inac::quic::wire::stream_number(send.id()).to_string();
    let header = Frame::push_stream(&descriptor(declared), &id)
        .build()
        .unwrap();
    send.write_all(&encode_frame(&header)).await.unwrap();
    let _ = send.write_all(body).await;
    let _ = send.finish();
    let answer = orbi_inac::quic::wire::read_frame(&mut recv, Duration::from_secs(5))
        .await
        .unwrap();
    Frame::decode(&answer).unwrap()
}

#[tokio::test]
async fn a_short_or_long_body_is_malformed_and_never_admitted() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = vec![0u8; 100_000];
    let short = raw_push(&session, &bytes, &bytes[..99_999]).await;
    assert_answer(&short, Operation::Refused, Some(RefusalCode::Malformed));
    let mut long = bytes.clone();
    long.push(0);
    let long = raw_push(&session, &bytes, &long).await;
    assert_answer(&long, Operation::Refused, Some(RefusalCode::Malformed));
    assert_eq!(node.accepted.calls(), 0);
    assert_eq!(node.stored(), 0);
    assert_eq!(node.staged_files(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_runs_on_is_stopped_as_malformed() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let declared = vec![0u8; 100_000];
    let (mut send, _recv) = session.connection().open_bi().await.unwrap();
    let id = orbi_inac::quic::wire::stream_number(send.id()).to_string();
    let header = Frame::push_stream(&descriptor(&declared), &id)
        .build()
        .unwrap();
    send.write_all(&encode_frame(&header)).await.unwrap();
    // Far more than declared: the receiver stops the stream once it sees the excess.
    let endless = vec![0u8; 32 << 20];
    let code = match send.write_all(&endless).await {
        Err(quinn::WriteError::Stopped(code)) => Some(code),
        Ok(()) => {
            let _ = send.finish();
            send.stopped().await.ok().flatten()
        }
        Err(error) => panic!("{error}"),
    };
    assert_eq!(code, Some(StreamCode::Malformed.varint()));
}

/// Opens a raw exchange: `header` as the push's frame (whatever it holds), then `body`.
/// Returns the answer and the code the listener stopped the body with.
async fn header_then_body(
    session: &orbi_inac::quic::Session,
    header: &[u8],
    body: &[u8],
) -> (Frame, Option<quinn::VarInt>) {
    let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
    let mut framed = u32::try_from(header.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(header);
    send.write_all(&framed).await.unwrap();
    let code = match send.write_all(body).await {
        Err(quinn::WriteError::Stopped(code)) => Some(code),
        Ok(()) => {
            let _ = send.finish();
            send.stopped().await.ok().flatten()
        }
        Err(error) => panic!("{error}"),
    };
    let answer = orbi_inac::quic::wire::read_frame(&mut recv, Duration::from_secs(5))
        .await
        .unwrap();
    (Frame::decode(&answer).unwrap(), code)
}

/// Spec §8.7: a header judged before its body stops the body with the code the same answer
/// gets after a body: `0x2` when it is malformed, `0x1` when it is refused for another
/// reason. The stream window is smaller than the body, so the body is still on its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_refused_before_its_body_stops_it_with_the_code_of_its_answer() {
    let node = Setup::new()
        .transport(|t| t.stream_receive_window = 256 * 1024)
        .start();
    let body = vec![0u8; 4 << 20];
    let header = Frame::push_stream(&descriptor(&body), "4").build().unwrap();
    let mut extra_member = header.to_value();
    extra_member["x-extra"] = serde_json::json!(1);
    let (_client, session) = node.connect(&peer_key()).await;
    let (_stranger_client, stranger) = node.connect(&key(9)).await;

    let extra = serde_json::to_vec(&extra_member).unwrap();
    let (malformed, malformed_code) = header_then_body(&session, &extra, &body).await;
    let (unreadable, unreadable_code) = header_then_body(&session, b"{not json", &body).await;
    // The stranger's first stream is 0, the one its header must name.
    let on_its_stream = Frame::push_stream(&descriptor(&body), "0").build().unwrap();
    let (refused, refused_code) = header_then_body(&stranger, &on_its_stream.encode(), &body).await;

    assert_answer(&malformed, Operation::Refused, Some(RefusalCode::Malformed));
    assert_eq!(malformed_code, Some(StreamCode::Malformed.varint()), "0x2");
    assert_answer(
        &unreadable,
        Operation::Refused,
        Some(RefusalCode::Malformed),
    );
    assert_eq!(unreadable_code, Some(StreamCode::Malformed.varint()), "0x2");
    assert_answer(
        &refused,
        Operation::Refused,
        Some(RefusalCode::NotAuthorized),
    );
    assert_eq!(refused_code, Some(StreamCode::Refused.varint()), "0x1");
    assert_eq!(node.staged_files(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_body_leaves_nothing_and_the_retry_ingests_once() {
    // A killed process sends no close (and a close can be lost behind a full socket buffer):
    // the idle timeout is what tells the listener. The listener's keep-alives keep the live
    // connection through a slow fsync of the retry (a loaded machine took over 1 s).
    let node = Setup::new()
        .transport(|t| {
            t.idle_timeout = Duration::from_secs(1);
            t.keep_alive = Duration::from_millis(250);
        })
        .start();
    let bytes = pattern(20_000_000, 4);
    let d = descriptor(&bytes);
    {
        let (client, session) = node.connect(&peer_key()).await;
        let (mut pipe, source) = tokio::io::duplex(1 << 20);
        let d = d.clone();
        let push = tokio::spawn(async move {
            session
                .push_stream(&d, |b| b.idempotency_key("k-retry"), source, &mut |_| {})
                .await
        });
        pipe.write_all(&bytes[..5_000_000]).await.unwrap();
        let peer = peer_key().node_id();
        node.until("the body is staged", move |r| {
            r.bodies_in_flight(&peer) == 1
        })
        .await;
        client.close().await;
        drop(pipe);
        let result = push.await.unwrap();
        assert!(result.is_err(), "{result:?}");
    }
    let peer = peer_key().node_id();
    node.until("the body is abandoned", move |r| {
        r.bodies_in_flight(&peer) == 0
    })
    .await;
    assert_eq!(node.staged_files(), 0, "no temp file survives");
    assert_eq!(node.accepted.calls(), 0);

    let (_client, session) = node.connect(&peer_key()).await;
    for _ in 0..2 {
        let answer = session
            .push_stream(
                &d,
                |b| b.idempotency_key("k-retry"),
                &bytes[..],
                &mut |_| {},
            )
            .await
            .unwrap();
        assert_answer(&answer, Operation::Ingested, None);
    }
    assert_eq!(node.accepted.calls(), 1, "ingested once");
    assert_eq!(node.stored(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_reset_with_0x6_while_other_peers_go_on() {
    let other = key(5);
    let node = Setup::new()
        .allow(&other)
        .transport(|t| t.stall_timeout = Duration::from_millis(400))
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = pattern(4_000_000, 5);
    let (mut pipe, source) = tokio::io::duplex(1 << 20);
    let d = descriptor(&bytes);
    let push =
        tokio::spawn(async move { session.push_stream(&d, |b| b, source, &mut |_| {}).await });
    pipe.write_all(&bytes[..1_000_000]).await.unwrap();

    // Meanwhile another peer is served at once.
    let (_c, quick) = node.connect(&other).await;
    let small = pattern(500, 9);
    let answer = quick
        .exchange(&inline_push(&small, "k-quick"))
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);

    let peer = peer_key().node_id();
    node.until("the stalled body is dropped", move |r| {
        r.bodies_in_flight(&peer) == 0
    })
    .await;
    assert_eq!(node.staged_files(), 0);
    // The sender learns on its first write once the listener's stop has reached it: feed it
    // slowly (the stop may still be in flight) until it gives up.
    for chunk in bytes[1_000_000..].chunks(64 * 1024) {
        if push.is_finished() || pipe.write_all(chunk).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(pipe);
    let error = push.await.unwrap().unwrap_err();
    assert!(
        matches!(error, ExchangeError::Reset(code) if code == u64::from(StreamCode::Stale.value())),
        "{error}"
    );
    assert_eq!(node.stored(), 1, "only the other peer's artifact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_inside_each_stall_timeout_is_reset_by_its_deadline() {
    // 2 MB at 1 MiB/s at least: done within 0.4 s + ~1.9 s. It comes at ~80 kB/s, each piece
    // well inside the stall timeout.
    let node = Setup::new()
        .transport(|t| {
            t.stall_timeout = Duration::from_millis(400);
            t.min_body_rate = 1024 * 1024;
        })
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = pattern(2_000_000, 7);
    let (mut pipe, source) = tokio::io::duplex(64 * 1024);
    let d = descriptor(&bytes);
    let push =
        tokio::spawn(async move { session.push_stream(&d, |b| b, source, &mut |_| {}).await });
    for chunk in bytes.chunks(4096) {
        if push.is_finished() || pipe.write_all(chunk).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(pipe);
    let error = push.await.unwrap().unwrap_err();
    assert!(
        matches!(error, ExchangeError::Reset(code) if code == u64::from(StreamCode::Stale.value())),
        "{error}"
    );
    let peer = peer_key().node_id();
    node.until("the trickled body is dropped", move |r| {
        r.bodies_in_flight(&peer) == 0
    })
    .await;
    assert_eq!(node.staged_files(), 0);
    assert_eq!(node.stored(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_stream_cap_is_rate_limited_before_the_body() {
    let node = Setup::new()
        .policy(|p| p.stream_pushes_per_peer = 1)
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let first = pattern(3_000_000, 6);
    let (mut pipe, source) = tokio::io::duplex(1 << 20);
    let d = descriptor(&first);
    let held = session.clone();
    let push = tokio::spawn(async move { held.push_stream(&d, |b| b, source, &mut |_| {}).await });
    pipe.write_all(&first[..1_000_000]).await.unwrap();
    let peer = peer_key().node_id();
    node.until("the first body is in flight", move |r| {
        r.bodies_in_flight(&peer) == 1
    })
    .await;

    let second = pattern(100_000, 7);
    let answer = session
        .push_stream(&descriptor(&second), |b| b, &second[..], &mut |_| {})
        .await
        .unwrap();
    assert_answer(&answer, Operation::Refused, Some(RefusalCode::RateLimited));
    let response = answer.response().unwrap();
    assert_eq!(response.retryable, Some(true));
    assert_eq!(response.retry_after_ms, Some(1000));

    pipe.write_all(&first[1_000_000..]).await.unwrap();
    assert_answer(&push.await.unwrap().unwrap(), Operation::Ingested, None);
    let answer = session
        .push_stream(&descriptor(&second), |b| b, &second[..], &mut |_| {})
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);
}

/// Bodies held up by a slow disk keep their stream windows full, but they must not take the
/// connection's whole credit: a frame on the same connection is still answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stuck_behind_a_slow_disk_leave_credit_for_frames() {
    let gate = Gate::default();
    let _opened = gate.opened_when_dropped();
    let node = Setup::new().gate(&gate).start();
    let config = orbi_inac::quic::TransportConfig {
        frame_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let (_client, session) = node.connect_with(&peer_key(), config).await;
    let pushes = orbi_inac::ReceiverConfig::default().stream_pushes_per_peer;
    let size = 24 * 1024 * 1024;
    let mut bodies = Vec::new();
    for seed in 0..pushes {
        let session = session.clone();
        let bytes = pattern(size, 20 + seed as u8);
        let described = descriptor(&bytes);
        bodies.push(tokio::spawn(async move {
            session
                .push_stream(&described, |b| b, &bytes[..], &mut |_| {})
                .await
        }));
    }
    let peer = peer_key().node_id();
    let probe = peer.clone();
    node.until("bodies wait for the disk", move |r| {
        r.bodies_in_flight(&probe) >= 2
    })
    .await;
    // Every body sends what its stream window takes, then waits.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let answer = session
        .exchange(&inline_push(b"a small note", "k-note"))
        .await;

    let waiting = node.with(move |r| r.bodies_in_flight(&peer)).await;
    gate.open();
    assert_answer(&answer.unwrap(), Operation::Ingested, None);
    assert_eq!(waiting, pushes, "every push got its header through");
    for body in bodies {
        assert_answer(&body.await.unwrap().unwrap(), Operation::Ingested, None);
    }
}

/// An object cut short on disk (written without a sync, then a power loss) is neither
/// served nor answered `already-present`: the next push of it is taken again and repairs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_cut_short_on_disk_is_not_served_and_the_next_push_repairs_it() {
    let node = Setup::new()
        .policy(|p| {
            p.request_peers.insert(peer_key().node_id());
        })
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = pattern(300_000, 9);
    let described = descriptor(&bytes);
    let push = || async {
        session
            .push_stream(&described, |b| b, &bytes[..], &mut |_| {})
            .await
    };
    assert_answer(&push().await.unwrap(), Operation::Ingested, None);
    let path = node
        .store
        .files()
        .object_path(&Sha256Digest::of(&bytes))
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100_000)
        .unwrap();

    let request = Frame::request_for(BLOB, OCTETS)
        .artifact_id(&descriptor(&bytes).artifact_id)
        .build()
        .unwrap();
    let served = session.exchange(&request).await.unwrap();
    let again = push().await.unwrap();

    assert_answer(
        &served,
        Operation::Decline,
        Some(RefusalCode::NotAuthorized),
    );
    assert_answer(&again, Operation::Ingested, None);
    assert!(
        std::fs::read(&path).unwrap() == bytes,
        "repaired byte for byte"
    );
    assert_eq!(node.staged_files(), 0);
    // Whole again: the next push is already present.
    assert_answer(&push().await.unwrap(), Operation::AlreadyPresent, None);
}

// Spec §8.5/§8.7: a body with no progress for the stall timeout is stopped with 0x6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_stopped_with_0x6() {
    let node = Setup::new()
        .transport(|t| t.stall_timeout = Duration::from_millis(400))
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let body = pattern(100_000, 3);
    let (mut send, _recv) = session.connection().open_bi().await.unwrap();
    let id = orbi_inac::quic::wire::stream_number(send.id()).to_string();
    let header = Frame::push_stream(&descriptor(&body), &id).build().unwrap();
    send.write_all(&encode_frame(&header)).await.unwrap();
    send.write_all(&body[..1000]).await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), send.stopped())
        .await
        .expect("the listener stops the stalled body");
    assert_eq!(stopped.ok().flatten(), Some(StreamCode::Stale.varint()));
}

/// Spec §8.5: a sender that resets its body (`0x3`) mid-way leaves no temp file and nothing
/// stored, the transfer is logged `malformed` (interrupted), and its stream place (the cap is
/// 1 here) comes back at once for the next push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_its_sender_resets_leaves_nothing_and_gives_its_place_back() {
    let node = Setup::new()
        .policy(|p| p.stream_pushes_per_peer = 1)
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let body = pattern(300_000, 13);
    let (mut send, _recv) = session.connection().open_bi().await.unwrap();
    let id = orbi_inac::quic::wire::stream_number(send.id()).to_string();
    let header = Frame::push_stream(&descriptor(&body), &id).build().unwrap();
    send.write_all(&encode_frame(&header)).await.unwrap();
    send.write_all(&body[..100_000]).await.unwrap();
    let peer = peer_key().node_id();
    node.until("the body is staged", move |r| {
        r.bodies_in_flight(&peer) == 1
    })
    .await;
    send.reset(StreamCode::SenderAbort.varint()).unwrap();
    let peer = peer_key().node_id();
    node.until("the reset body is dropped", move |r| {
        r.bodies_in_flight(&peer) == 0
    })
    .await;
    assert_eq!(node.staged_files(), 0);
    assert_eq!(node.stored(), 0);
    assert_eq!(node.accepted.calls(), 0);
    let logged = node
        .with(|r| r.ledger().recent_transfers(1).unwrap().remove(0))
        .await;
    assert_eq!(
        (logged.answer, logged.refusal_code),
        (Operation::Refused, Some(RefusalCode::Malformed))
    );
    // How much arrived before the reset is up to the network; what ended it is not.
    assert!(
        logged.note.starts_with("body interrupted after ")
            && logged.note.ends_with(" of 300000 bytes"),
        "{}",
        logged.note
    );

    let answer = session
        .push_stream(&descriptor(&body), |b| b, &body[..], &mut |_| {})
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);
}

/// Each stream body in its body stage holds a blocking thread for its whole life (the
/// writer waits there for the next buffer), however slowly the peer sends, and the body
/// cap is per peer only: the pool (tokio's 512 threads in `orbi inac serve`) is shared with
/// every other peer's bodies, their fsyncs and stream serves. So 128 admitted peers holding
/// 4 stuck bodies each (64 holding pushes and serves) stop every other peer's stream pushes
/// until their stall timeouts. Scaled down: a pool of 4 threads and one peer at its cap of 4.
#[test]
fn a_peer_holding_stuck_bodies_does_not_hold_up_another_peers_stream_push() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let other = key(5);
    let outcome = runtime.block_on(async {
        let node = Setup::new()
            .allow(&other)
            .policy(|p| p.stream_pushes_per_peer = 4)
            .transport(|t| t.stall_timeout = Duration::from_secs(60))
            .start();
        let (_client, stuck) = node.connect(&peer_key()).await;
        let mut held = Vec::new();
        for seed in 0..4u8 {
            let body = pattern(100_000, 30 + seed);
            let (mut send, recv) = stuck.connection().open_bi().await.unwrap();
            let id = orbi_inac::quic::wire::stream_number(send.id()).to_string();
            let header = Frame::push_stream(&descriptor(&body), &id).build().unwrap();
            send.write_all(&encode_frame(&header)).await.unwrap();
            send.write_all(&body[..1000]).await.unwrap();
            held.push((send, recv));
        }
        let peer = peer_key().node_id();
        node.until("the stuck bodies are staged", move |r| {
            r.bodies_in_flight(&peer) == 4
        })
        .await;

        let (_other_client, honest) = node.connect(&other).await;
        let bytes = pattern(300_000, 40);
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            honest.push_stream(&descriptor(&bytes), |b| b, &bytes[..], &mut |_| {}),
        )
        .await;
        drop(held);
        answer.map(|answer| answer.unwrap().operation())
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    assert_eq!(
        outcome.ok(),
        Some(Operation::Ingested),
        "the other peer's push waited behind the stuck bodies' threads"
    );
}

/// Spec §8.5: a stream-mode header names the QUIC stream its body follows on
/// (`transfer.stream/id`, the decimal stream id). A header naming another stream is a frame
/// that does not describe its exchange: `malformed`, stopped `0x2` before the body, never
/// admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_header_naming_another_stream_is_malformed() {
    // A body larger than the stream window is still on its way when the answer stops it.
    let node = Setup::new()
        .transport(|t| t.stream_receive_window = 256 * 1024)
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let body = pattern(4 << 20, 14);
    // Our first stream is 0; the header says 4 (the next one).
    let header = Frame::push_stream(&descriptor(&body), "4").build().unwrap();
    let (answer, code) = header_then_body(&session, &header.encode(), &body).await;
    assert_answer(&answer, Operation::Refused, Some(RefusalCode::Malformed));
    assert_eq!(code, Some(StreamCode::Malformed.varint()), "0x2");
    assert_eq!(node.stored(), 0);
    assert_eq!(node.accepted.calls(), 0);
}
