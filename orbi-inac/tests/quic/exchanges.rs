//! Whole exchanges over QUIC: inline pushes, offers and invitations, requests, concurrency,
//! frame limits and response timeouts.

use std::time::{Duration, SystemTime};

use orbi_inac::{
    Descriptor, Frame, MAX_FRAME_BYTES,
    quic::{
        ExchangeError, ExistingFile, RequestOutcome, StreamCode, TransportConfig,
        config::{endpoint, server_config},
        wire::encode_frame,
    },
};
use orbi_types::inac::{Operation, RefusalCode};
use quinn::VarInt;

use crate::common::*;

#[tokio::test]
async fn an_inline_push_is_ingested_into_real_files_and_sqlite() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let bytes = pattern(1024, 1);
    let answer = session.exchange(&inline_push(&bytes, "k-1")).await.unwrap();
    assert_answer(&answer, Operation::Ingested, None);
    assert_eq!(answer.correlation_id(), Some("c-k-1"));
    assert!(node.holds(&bytes));
    let again = session.exchange(&inline_push(&bytes, "k-1")).await.unwrap();
    assert_answer(&again, Operation::Ingested, None);
    assert_eq!(node.accepted.calls(), 1, "the retry was replayed");
    let peer = peer_key().node_id();
    let logged = node.with(move |r| ingested_count(r, &peer)).await;
    assert_eq!(logged, 2);
}

#[tokio::test]
async fn refusals_travel_back_with_their_code() {
    let node = Setup::new().start();
    // Not allowlisted, no passport.
    let (_client, session) = node.connect(&key(7)).await;
    let answer = session.exchange(&inline_push(b"{}", "k-1")).await.unwrap();
    assert_answer(
        &answer,
        Operation::Refused,
        Some(RefusalCode::NotAuthorized),
    );
    assert_eq!(answer.response().unwrap().retryable, Some(false));
}

#[tokio::test]
async fn offer_operator_accept_invitation_push_consumed() {
    let stranger = key(6);
    let node = Setup::new().policy(|p| p.open_offer_intake = true).start();
    let (_client, session) = node.connect(&stranger).await;
    let bytes = pattern(2048, 6);
    let descriptor = descriptor(&bytes);
    let offer = Frame::offer(&descriptor)
        .correlation_id("c-offer")
        .build()
        .unwrap();

    let first = session.exchange(&offer).await.unwrap();
    assert_answer(&first, Operation::Defer, None);
    let offers = node.with(|r| r.offers().unwrap()).await;
    assert_eq!(offers.len(), 1);
    let id = offers[0].id;
    node.with(move |r| r.accept_offer(id, SystemTime::now()).unwrap())
        .await;

    let second = session.exchange(&offer).await.unwrap();
    assert_answer(&second, Operation::Accept, None);
    let invitation = second
        .authorization()
        .expect("an invitation passport")
        .clone();
    let passport_id = invitation.passport["passport_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let push = Frame::push_inline(&descriptor, &bytes)
        .correlation_id("c-offer")
        .idempotency_key("k-invited")
        .authorization(invitation.mode, &invitation.passport)
        .build()
        .unwrap();
    assert_answer(
        &session.exchange(&push).await.unwrap(),
        Operation::Ingested,
        None,
    );
    assert!(node.holds(&bytes));
    let id = passport_id.clone();
    let consumed = node
        .with(move |r| r.ledger().invitation(&id).unwrap().unwrap().consumed)
        .await;
    assert!(consumed.is_some(), "the single-use invitation is consumed");

    // A different artifact under the used invitation.
    let other = pattern(100, 7);
    let reuse = Frame::push_inline(&Descriptor::of_bytes(BLOB, OCTETS, &other), &other)
        .authorization(invitation.mode, &invitation.passport)
        .build()
        .unwrap();
    let refused = session.exchange(&reuse).await.unwrap();
    assert_answer(
        &refused,
        Operation::Refused,
        Some(RefusalCode::InvitationRevoked),
    );
}

#[tokio::test]
async fn requests_are_served_inline_and_streamed() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let small = pattern(3000, 1);
    session
        .exchange(&inline_push(&small, "k-small"))
        .await
        .unwrap();
    let large = pattern(300_000, 2);
    let answer = session
        .push_stream(&descriptor(&large), |b| b, &large[..], &mut |_| {})
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);

    let out = tempfile::tempdir().unwrap();
    for (bytes, name) in [(&small, "small"), (&large, "large")] {
        let d = descriptor(bytes);
        let request = Frame::request_for(BLOB, OCTETS)
            .artifact_id(&d.artifact_id)
            .correlation_id("c-request")
            .build()
            .unwrap();
        let path = out.path().join(name);
        let mut last = None;
        let outcome = session
            .request_to_file(&request, &path, &mut |received, size| {
                last = Some((received, size))
            })
            .await
            .unwrap();
        let len = bytes.len() as u64;
        assert_eq!(last, Some((len, len)), "progress ends at the served size");
        let RequestOutcome::Received { push, answer } = outcome else {
            panic!("not served: {outcome:?}")
        };
        assert_eq!(push.is_stream_push(), bytes.len() > 65_536);
        assert_answer(&answer, Operation::Ingested, None);
        assert_eq!(&std::fs::read(&path).unwrap(), bytes);
        // The mode a plain create gives (the umask's), not the temp file's 0600.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let plain = out.path().join(format!("{name}.plain"));
            std::fs::write(&plain, b"").unwrap();
            let mode = |path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), mode(&plain));
        }
    }
    // A file already at `out` is kept: nothing is asked of the peer (it decides no frame),
    // unless replacing it was asked for.
    let request = Frame::request_for(BLOB, OCTETS)
        .artifact_id(&descriptor(&small).artifact_id)
        .build()
        .unwrap();
    let path = out.path().join("small");
    std::fs::write(&path, b"precious").unwrap();
    let serves = || node.with(|r| r.stats().frames);
    let before = serves().await;
    let kept = session
        .request_to_file(&request, &path, &mut |_, _| {})
        .await;
    let Err(ExchangeError::Output {
        path: named,
        source,
    }) = kept
    else {
        panic!("a file at out was not kept: {kept:?}")
    };
    assert_eq!(
        (named, source.kind()),
        (path.clone(), std::io::ErrorKind::AlreadyExists)
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    assert_eq!(serves().await, before, "the peer was asked");
    let replaced = session
        .request_to_file_up_to(
            &request,
            &path,
            u64::MAX,
            ExistingFile::Replace,
            &mut |_, _| {},
        )
        .await
        .unwrap();
    assert!(
        matches!(replaced, RequestOutcome::Received { .. }),
        "{replaced:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), small);
    assert_eq!(serves().await, before + 1);
    // Someone else asking learns nothing.
    let (_other, stranger) = node.connect(&key(8)).await;
    let request = Frame::request_for(BLOB, OCTETS)
        .artifact_id(&descriptor(&small).artifact_id)
        .build()
        .unwrap();
    let outcome = stranger
        .request_to_file(&request, &out.path().join("nope"), &mut |_, _| {})
        .await
        .unwrap();
    let RequestOutcome::Answered(answer) = outcome else {
        panic!("served to a stranger")
    };
    assert_answer(
        &answer,
        Operation::Decline,
        Some(RefusalCode::NotAuthorized),
    );
    assert!(!out.path().join("nope").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_pushes_from_four_peers_are_all_accounted() {
    let peers: Vec<_> = (10..14).map(key).collect();
    let mut setup = Setup::new();
    for peer in &peers {
        setup = setup.allow(peer);
    }
    let node = setup.start();
    let mut tasks = Vec::new();
    for (p, peer) in peers.iter().enumerate() {
        let (client, session) = node.connect(peer).await;
        for i in 0..8u8 {
            let session = session.clone();
            let seed = (p as u8) * 8 + i;
            tasks.push(tokio::spawn(async move {
                let answer = if i < 2 {
                    let bytes = pattern(200_000, seed);
                    session
                        .push_stream(
                            &descriptor(&bytes),
                            |b| b.idempotency_key(&format!("k-{seed}")),
                            &bytes[..],
                            &mut |_| {},
                        )
                        .await
                } else {
                    let bytes = pattern(1024, seed);
                    session
                        .exchange(&inline_push(&bytes, &format!("k-{seed}")))
                        .await
                };
                answer.unwrap().operation()
            }));
        }
        std::mem::forget(client);
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Operation::Ingested);
    }
    assert_eq!(node.stored(), 32);
    assert_eq!(node.accepted.calls(), 32);
    let counts = node
        .with(move |r| {
            peers
                .iter()
                .map(|p| ingested_count(r, &p.node_id()))
                .collect::<Vec<_>>()
        })
        .await;
    assert_eq!(counts, vec![8; 4]);
    assert_eq!(node.staged_files(), 0);
}

#[tokio::test]
async fn a_control_frame_over_256_kib_is_stopped_with_0x5_and_answered_malformed() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
    let len = 256 * 1024 + 1;
    send.write_all(&(len as u32).to_be_bytes()).await.unwrap();
    // The listener stops the stream after the length prefix: later writes fail with 0x5.
    let filler = vec![b' '; 64 * 1024];
    let mut stopped = None;
    for _ in 0..8 {
        if let Err(quinn::WriteError::Stopped(code)) = send.write_all(&filler).await {
            stopped = Some(code.into_inner());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stopped, Some(u64::from(StreamCode::FrameTooLarge.value())));
    let answer = orbi_inac::quic::wire::read_frame(&mut recv, Duration::from_secs(5))
        .await
        .unwrap();
    let answer = Frame::decode(&answer).unwrap();
    assert_answer(&answer, Operation::Refused, Some(RefusalCode::Malformed));
}

#[tokio::test]
async fn a_peer_that_never_answers_times_out_with_0x4() {
    let config = TransportConfig {
        response_timeout: Duration::from_millis(300),
        ..TransportConfig::default()
    };
    let listener = endpoint(
        "127.0.0.1:0".parse().unwrap(),
        Some(server_config(&node_key(), &config).unwrap()),
        &config,
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let (reset_tx, reset_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let connection = listener.accept().await.unwrap().await.unwrap();
        let (send, mut recv) = connection.accept_bi().await.unwrap();
        // Reads the push, then says nothing until the dialer gives up.
        while let Ok(Some(_)) = recv.read_chunk(1 << 20, true).await {}
        let _ = reset_tx.send(send.stopped().await.ok().flatten());
        let _ = connection.closed().await;
    });
    let peer = orbi_inac::quic::PeerAddr::new(node_key().node_id(), addr);
    let client = orbi_inac::quic::Client::for_peer(&peer, peer_key(), config).unwrap();
    let session = client.connect(&peer).await.unwrap();
    let started = std::time::Instant::now();
    let error = session
        .exchange(&inline_push(b"{}", "k"))
        .await
        .unwrap_err();
    assert!(matches!(error, ExchangeError::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let stopped = tokio::time::timeout(Duration::from_secs(3), reset_rx)
        .await
        .expect("the listener learns the exchange is over")
        .unwrap();
    assert_eq!(stopped, Some(StreamCode::ResponseTimeout.varint()), "0x4");
    drop(session);
    client.close().await;
}

/// Pushes `large` (ingested), then requests it back on a new exchange and reads the served
/// push header; the request and the exchange's halves, the body still to read.
async fn stored_then_requested(
    session: &orbi_inac::quic::Session,
    large: &[u8],
) -> (Frame, quinn::SendStream, quinn::RecvStream) {
    let answer = session
        .push_stream(&descriptor(large), |b| b, large, &mut |_| {})
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);
    let request = Frame::request_for(BLOB, OCTETS)
        .artifact_id(&descriptor(large).artifact_id)
        .build()
        .unwrap();
    let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
    orbi_inac::quic::wire::write_frame(&mut send, &request)
        .await
        .unwrap();
    let push = orbi_inac::quic::wire::read_frame(&mut recv, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(Frame::decode(&push).unwrap().is_stream_push());
    (request, send, recv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_that_stops_reading_is_given_up_on_after_the_stall_timeout() {
    let node = Setup::new()
        .transport(|t| t.stall_timeout = Duration::from_millis(1500))
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    // Larger than the stream and connection windows, so that serving it must wait for reads.
    let large = pattern(24_000_000, 3);
    let (_request, _send, mut recv) = stored_then_requested(&session, &large).await;
    // Read nothing for longer than the stall timeout: the server gives the body up (`0x6`).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut read = 0usize;
    let ended = loop {
        match recv.read_chunk(1 << 20, true).await {
            Ok(Some(chunk)) => read += chunk.bytes.len(),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    assert!(
        matches!(ended, Err(quinn::ReadError::Reset(code)) if code == StreamCode::Stale.varint()),
        "{ended:?} after {read} bytes"
    );
    assert!(read < large.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_another_artifact_than_the_one_requested_is_refused() {
    use orbi_inac::quic::{
        Client, PeerAddr,
        config::{endpoint, server_config},
        wire::{read_frame, write_frame},
    };
    // A peer that answers every request with a push of some other (well-formed) artifact.
    let liar = node_key();
    let config = TransportConfig::default();
    let server = endpoint(
        "127.0.0.1:0".parse().unwrap(),
        Some(server_config(&liar, &config).unwrap()),
        &config,
    )
    .unwrap();
    let addr = PeerAddr::new(liar.node_id(), server.local_addr().unwrap());
    let other = pattern(2000, 7);
    tokio::spawn(async move {
        let connection = server.accept().await.unwrap().await.unwrap();
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let request = read_frame(&mut recv, Duration::from_secs(5)).await.unwrap();
            let request = Frame::decode(&request).unwrap();
            let mut push = Frame::push_inline(&descriptor(&other), &other);
            if let Some(correlation) = request.correlation_id() {
                push = push.correlation_id(correlation);
            }
            write_frame(&mut send, &push.build().unwrap())
                .await
                .unwrap();
            let _ = send.finish();
            let _ = read_frame(&mut recv, Duration::from_secs(5)).await;
        }
    });
    let client = Client::for_peer(&addr, peer_key(), TransportConfig::default()).unwrap();
    let session = client.connect(&addr).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let wanted = descriptor(&pattern(2000, 8));
    let by_id = Frame::request_for(BLOB, OCTETS)
        .artifact_id(&wanted.artifact_id)
        .build()
        .unwrap();
    let by_digest = Frame::request_for(BLOB, OCTETS)
        .digest(&wanted.digest)
        .build()
        .unwrap();
    for request in [by_id, by_digest] {
        let path = out.path().join("wanted");
        let outcome = session
            .request_to_file(&request, &path, &mut |_, _| {})
            .await
            .unwrap();
        let RequestOutcome::Received { answer, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_answer(&answer, Operation::Refused, Some(RefusalCode::Malformed));
        assert!(
            !path.exists(),
            "nothing written for an artifact not asked for"
        );
    }
}

// Spec §8.4: a control frame of exactly 256 KiB is read and answered, not reset 0x5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_of_exactly_256_kib_is_answered() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let mut json = inline_push(b"{}", "k-1").encode();
    json.resize(MAX_FRAME_BYTES, b' ');
    let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
    let mut framed = u32::try_from(json.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&json);
    send.write_all(&framed).await.unwrap();
    let _ = send.finish();
    let answer = orbi_inac::quic::wire::read_frame(&mut recv, Duration::from_secs(10))
        .await
        .unwrap();
    assert_answer(&Frame::decode(&answer).unwrap(), Operation::Ingested, None);
}

/// Transfers logged for `peer`, newest first: `(answer, refusal code, note)`.
async fn logged_for(
    node: &Node,
    peer: orbi_types::NodeId,
) -> Vec<(Operation, Option<RefusalCode>)> {
    node.with(move |r| {
        r.ledger()
            .recent_transfers(10_000)
            .unwrap()
            .into_iter()
            .filter(|t| t.peer == peer)
            .map(|t| (t.answer, t.refusal_code))
            .collect()
    })
    .await
}

/// What a raw exchange's two halves ended with: the reset code read on ours, and the stop
/// code the listener sent for the one we write.
async fn ended_with(
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> (Option<u64>, Option<u64>) {
    let bounded = Duration::from_secs(10);
    let mut sink = [0u8; 1024];
    let read = tokio::time::timeout(bounded, async {
        loop {
            match recv.read(&mut sink).await {
                Ok(Some(_)) => continue,
                Ok(None) => break None,
                Err(quinn::ReadError::Reset(code)) => break Some(code.into_inner()),
                Err(error) => panic!("{error}"),
            }
        }
    })
    .await
    .expect("the listener ends the exchange");
    let stopped = tokio::time::timeout(bounded, send.stopped())
        .await
        .expect("the listener stops our half");
    (read, stopped.ok().flatten().map(VarInt::into_inner))
}

/// A hostile (allowlisted) peer fills its connection's exchange places with streams that
/// never carry a whole frame: half a length prefix, or a prefix announcing 200 000 bytes
/// followed by 1000. Another peer is served meanwhile, inline and in stream mode; after the
/// frame timeout each stuck exchange is reset and stopped `0x4`, nothing is logged for it, and
/// its places come back: the hostile connection can exchange again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_without_a_whole_frame_are_reset_0x4_after_the_frame_timeout_and_hold_nothing() {
    let other = key(5);
    let node = Setup::new()
        .allow(&other)
        .transport(|t| {
            t.frame_timeout = Duration::from_millis(800);
            t.max_concurrent_exchanges = 4;
        })
        .start();
    let (_client, hostile) = node.connect(&peer_key()).await;
    let mut stuck = Vec::new();
    for i in 0..4 {
        let (mut send, recv) = hostile.connection().open_bi().await.unwrap();
        if i % 2 == 0 {
            send.write_all(&[0, 0]).await.unwrap();
        } else {
            send.write_all(&200_000u32.to_be_bytes()).await.unwrap();
            send.write_all(&[b' '; 1000]).await.unwrap();
        }
        stuck.push((send, recv));
    }
    let started = std::time::Instant::now();

    let (_other_client, honest) = node.connect(&other).await;
    let small = pattern(1000, 21);
    let answer = honest
        .exchange(&inline_push(&small, "k-honest"))
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);
    let large = pattern(300_000, 22);
    let answer = honest
        .push_stream(&descriptor(&large), |b| b, &large[..], &mut |_| {})
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);

    let timeout = u64::from(StreamCode::ResponseTimeout.value());
    for (send, recv) in &mut stuck {
        assert_eq!(ended_with(send, recv).await, (Some(timeout), Some(timeout)));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "reset by the frame timeout, not at once: {:?}",
        started.elapsed()
    );
    assert_eq!(logged_for(&node, peer_key().node_id()).await, vec![]);
    // Our halves answer the stops (quinn resets a stopped stream when it is dropped); a peer
    // that never does keeps only its own connection's places.
    drop(stuck);
    let mine = pattern(1000, 23);
    let again = tokio::time::timeout(
        Duration::from_secs(10),
        hostile.exchange(&inline_push(&mine, "k-after")),
    )
    .await
    .expect("the stuck exchanges gave their places back")
    .unwrap();
    assert_answer(&again, Operation::Ingested, None);
    assert_eq!(node.stored(), 3);
}

/// A stream ended inside its frame (the prefix announces 100 bytes, 50 come, then FIN) is
/// reset `0x2`; an answer frame sent as an exchange is not answered (FIN, no bytes) and the
/// rest of it is stopped `0x2`. Neither is logged nor stored.
#[tokio::test]
async fn a_frame_cut_by_its_fin_is_reset_0x2_and_an_answer_opening_an_exchange_is_stopped_0x2() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let malformed = u64::from(StreamCode::Malformed.value());

    let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
    send.write_all(&100u32.to_be_bytes()).await.unwrap();
    send.write_all(&[b' '; 50]).await.unwrap();
    send.finish().unwrap();
    let (read, _) = ended_with(&mut send, &mut recv).await;
    assert_eq!(read, Some(malformed));

    let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
    let answer = Frame::answer(Some("c-unasked"), &orbi_inac::Verdict::Ingested);
    send.write_all(&encode_frame(&answer)).await.unwrap();
    assert_eq!(
        ended_with(&mut send, &mut recv).await,
        (None, Some(malformed))
    );

    assert_eq!(logged_for(&node, peer_key().node_id()).await, vec![]);
    assert_eq!(node.stored(), 0);
}

/// A requester that takes a streamed artifact whole and then never answers holds its serve
/// place only while the listener waits for that answer (twice the response timeout): the
/// next stream serve is refused `rate-limited` meanwhile and served afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_that_never_answers_gives_its_serve_place_back() {
    let node = Setup::new()
        .policy(|p| p.stream_serves_per_peer = 1)
        .transport(|t| t.response_timeout = Duration::from_secs(1))
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let large = pattern(300_000, 24);
    // Takes the push and the whole body, keeps its half open and answers nothing.
    let (request, silent_send, mut silent_recv) = stored_then_requested(&session, &large).await;
    let body = tokio::time::timeout(Duration::from_secs(10), silent_recv.read_to_end(1 << 20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.len(), large.len());

    let peer = peer_key().node_id();
    let busy = node.with(move |r| r.serves_in_flight(&peer)).await;
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("again");
    let refused = session
        .request_to_file(&request, &path, &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(busy, 1, "the silent requester still holds its place");
    let RequestOutcome::Answered(refused) = refused else {
        panic!("served beyond the cap: {refused:?}")
    };
    assert_eq!(
        refused.response().and_then(|r| r.refusal_code),
        Some(RefusalCode::RateLimited)
    );

    let peer = peer_key().node_id();
    node.until("the silent requester's place is back", move |r| {
        r.serves_in_flight(&peer) == 0
    })
    .await;
    let served = session
        .request_to_file(&request, &path, &mut |_, _| {})
        .await
        .unwrap();
    let RequestOutcome::Received { answer, .. } = served else {
        panic!("not served: {served:?}")
    };
    assert_answer(&answer, Operation::Ingested, None);
    assert_eq!(std::fs::read(&path).unwrap(), large);
    drop((silent_send, silent_recv));
}

/// What one connection can make the listener buffer, as `TransportConfig::max_connections`
/// documents it: the receive window, plus up to 256 KiB of an unfinished control frame in
/// each of its `max_concurrent_exchanges` exchanges (a frame's bytes are read as they arrive,
/// which hands their flow-control credit back). Here 16 such frames against a 512 KiB window
/// and an exchange limit of 8: the frames past the limit wait in the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_announced_but_never_completed_stay_within_the_documented_bound() {
    const EXCHANGES: u32 = 8;
    let window: u32 = 512 * 1024;
    let node = Setup::new()
        .transport(|t| {
            t.receive_window = window;
            t.stream_receive_window = 256 * 1024;
            t.max_concurrent_exchanges = EXCHANGES;
            t.frame_timeout = Duration::from_secs(30);
        })
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..16 {
        // Streams past the limit are opened once earlier ones end; they never do here.
        let Ok(Ok((mut send, recv))) =
            tokio::time::timeout(Duration::from_millis(500), session.connection().open_bi()).await
        else {
            break;
        };
        let written = written.clone();
        writers.push(tokio::spawn(async move {
            let _recv = recv;
            let mut frame = (MAX_FRAME_BYTES as u32).to_be_bytes().to_vec();
            frame.resize(4 + 250 * 1024, b' ');
            let mut sent = 0;
            while sent < frame.len() {
                match send.write(&frame[sent..]).await {
                    Ok(n) => {
                        sent += n;
                        written.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(_) => break,
                }
            }
            // Never completes its frame.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(send);
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let taken = written.load(std::sync::atomic::Ordering::SeqCst);
    for writer in writers {
        writer.abort();
    }
    let bound = window as usize + EXCHANGES as usize * MAX_FRAME_BYTES;
    assert!(
        taken <= bound,
        "the listener took {taken} bytes of unfinished frames on one connection, over the \
         documented {bound}"
    );
    assert!(
        taken > window as usize,
        "the frames were not read as they came: {taken} bytes"
    );
}
