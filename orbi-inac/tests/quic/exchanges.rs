//! Whole exchanges over QUIC: inline pushes, offers and invitations, requests, concurrency,
//! frame limits and response timeouts.

use std::time::{Duration, SystemTime};

use orbi_inac::{
    Descriptor, Frame, MAX_FRAME_BYTES,
    quic::{
        ExchangeError, RequestOutcome, StreamCode, TransportConfig,
        config::{endpoint, server_config},
        wire::encode_frame,
    },
};
use orbi_types::inac::{Operation, RefusalCode};

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
        let (_send, mut recv) = connection.accept_bi().await.unwrap();
        // Reads the push, then says nothing until the dialer gives up.
        let stopped = loop {
            match recv.read_chunk(1 << 20, true).await {
                Ok(Some(_)) => continue,
                Ok(None) => break connection.closed().await.to_string(),
                Err(error) => break error.to_string(),
            }
        };
        let _ = reset_tx.send(stopped);
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
    drop(session);
    client.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(3), reset_rx).await;
    let _ = encode_frame;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_that_stops_reading_is_given_up_on_after_the_stall_timeout() {
    let node = Setup::new()
        .transport(|t| t.stall_timeout = Duration::from_millis(1500))
        .start();
    let (_client, session) = node.connect(&peer_key()).await;
    // Larger than the stream and connection windows, so that serving it must wait for reads.
    let large = pattern(24_000_000, 3);
    let answer = session
        .push_stream(&descriptor(&large), |b| b, &large[..], &mut |_| {})
        .await
        .unwrap();
    assert_answer(&answer, Operation::Ingested, None);
    let request = Frame::request_for(BLOB, OCTETS)
        .artifact_id(&descriptor(&large).artifact_id)
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
