//! Spec §8.1/§8.2/§9.8: the node key in the handshake, both directions, and the session id.

use std::{net::SocketAddr, sync::Arc};

use orbi_inac::quic::{
    ALPN, Client, PeerAddr, SessionId, TransportConfig, TransportError,
    config::{client_config, client_config_from_tls, endpoint, server_config, tls_client_builder},
    identity::{AnyNode, ExpectedNode, certified_key, peer_node_id},
    negotiated_alpn,
};
use orbi_types::{
    KeyPair,
    inac::{Operation, RefusalCode},
};
use rustls::{
    client::AlwaysResolvesClientRawPublicKeys, server::AlwaysResolvesServerRawPublicKeys,
    sign::CertifiedKey,
};

use crate::common::*;

/// A bare quinn listener with the INAC server configuration; returns the connection the
/// first dialer opens.
fn raw_listener(identity: &KeyPair) -> quinn::Endpoint {
    let config = TransportConfig::default();
    let server = server_config(identity, &config).unwrap();
    endpoint("127.0.0.1:0".parse().unwrap(), Some(server), &config).unwrap()
}

fn dialer() -> quinn::Endpoint {
    endpoint(
        "127.0.0.1:0".parse().unwrap(),
        None,
        &TransportConfig::default(),
    )
    .unwrap()
}

async fn dial(
    endpoint: &quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
) -> Result<quinn::Connection, quinn::ConnectionError> {
    endpoint
        .connect_with(config, addr, "orbiplex-inac")
        .unwrap()
        .await
}

/// `key`'s public half, signed for by `signer` (a proof that cannot hold).
fn forged(key: &KeyPair, signer: &KeyPair) -> Arc<CertifiedKey> {
    Arc::new(CertifiedKey::new(
        certified_key(key).cert.clone(),
        certified_key(signer).key.clone(),
    ))
}

/// A hand-made TLS client that dials R presenting `key` (ALPN and early data left to the test).
fn tls_client(key: Arc<CertifiedKey>) -> rustls::ClientConfig {
    tls_client_builder()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExpectedNode::new(node_key().node_id())))
        .with_client_cert_resolver(Arc::new(AlwaysResolvesClientRawPublicKeys::new(key)))
}

#[tokio::test]
async fn both_ends_learn_each_other_and_agree_on_the_session_id() {
    let listener = raw_listener(&node_key());
    let addr = listener.local_addr().unwrap();
    let client = Client::bind(
        "127.0.0.1:0".parse().unwrap(),
        peer_key(),
        TransportConfig::default(),
    )
    .unwrap();
    let peer = PeerAddr::new(node_key().node_id(), addr);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (session, accepted) = tokio::join!(client.connect(&peer), async {
            listener.accept().await.unwrap().await.unwrap()
        });
        let session = session.unwrap();
        assert_eq!(session.peer(), &node_key().node_id());
        assert_eq!(peer_node_id(&accepted).unwrap(), peer_key().node_id());
        let server_side = SessionId::of(&accepted).unwrap();
        assert_eq!(session.id(), &server_side, "both ends derive the same id");
        assert!(session.id().as_str().starts_with("sess:"));
        assert_eq!(session.id().as_str().len(), "sess:".len() + 43);
        assert_eq!(negotiated_alpn(&accepted).as_deref(), Some(ALPN));
        ids.push(session.id().clone());
    }
    assert_ne!(ids[0], ids[1], "every connection has its own session id");
}

#[tokio::test]
async fn a_listener_proving_another_node_than_dialled_is_refused() {
    let node = Setup::new().start();
    let impostor = PeerAddr::new(key(9).node_id(), node.addr());
    let client = Client::for_peer(&impostor, peer_key(), TransportConfig::default()).unwrap();
    let error = client.connect(&impostor).await.unwrap_err();
    assert!(
        matches!(&error, TransportError::NotProven { expected, .. } if *expected == key(9).node_id()),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the listener at {} did not prove it is {}",
            node.addr(),
            key(9).node_id()
        )
    );
    // The right id works on the same listener.
    client.connect(&node.peer_addr()).await.unwrap();
}

#[tokio::test]
async fn a_listener_that_cannot_sign_for_its_key_is_refused() {
    // It presents R's key but signs the handshake with another key.
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_client_cert_verifier(Arc::new(AnyNode::default()))
    .with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(forged(
        &node_key(),
        &key(9),
    ))));
    let mut tls = tls;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let listener = endpoint(
        "127.0.0.1:0".parse().unwrap(),
        Some(server),
        &TransportConfig::default(),
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Some(incoming) = listener.accept().await {
            let _ = incoming.await;
        }
    });
    let config = client_config(
        Some(&peer_key()),
        &node_key().node_id(),
        &TransportConfig::default(),
    )
    .unwrap();
    let result = dial(&dialer(), config, addr).await;
    assert!(
        result.is_err(),
        "a handshake signed by another key must fail"
    );
}

#[tokio::test]
async fn a_dialer_that_cannot_sign_for_its_key_is_refused() {
    let node = Setup::new().start();
    // Claims P's key (allowlisted) but signs with another.
    let tls = tls_client(forged(&peer_key(), &key(9)));
    let config = client_config_from_tls(tls, &TransportConfig::default()).unwrap();
    // In TLS 1.3 the dialer's proof is checked after the dialer considers the handshake done:
    // either the connect fails or the listener closes the connection right after.
    if let Ok(connection) = dial(&dialer(), config, node.addr()).await {
        let closed = connection.closed().await;
        assert!(
            matches!(closed, quinn::ConnectionError::ConnectionClosed(_)),
            "{closed:?}"
        );
        let push = connection.open_bi().await;
        assert!(push.is_err());
    }
    let peer = peer_key().node_id();
    let logged = node
        .with(move |r| {
            r.ledger()
                .recent_transfers(10)
                .unwrap()
                .iter()
                .filter(|t| t.peer == peer)
                .count()
        })
        .await;
    assert_eq!(logged, 0, "nothing ran as the claimed peer");
}

/// A dialer whose raw key is no usable ed25519 key (another algorithm, a small-order point)
/// is refused by the listener's verifier during the handshake, with the TLS alert
/// `bad_certificate` (QUIC crypto error 0x100 + 42), whatever it signs with.
#[tokio::test]
async fn a_dialer_whose_raw_key_is_not_a_usable_ed25519_key_gets_a_tls_alert() {
    let node = Setup::new().start();
    let genuine = certified_key(&peer_key());
    let mut ed448 = genuine.cert[0].as_ref().to_vec();
    ed448[8] = 0x71; // id-Ed448 in place of id-Ed25519
    let mut small_order = genuine.cert[0].as_ref()[..12].to_vec();
    small_order.push(1); // y = 1: the identity point
    small_order.extend_from_slice(&[0; 31]);
    for (name, spki) in [("ed448", ed448), ("small order", small_order)] {
        let presented = Arc::new(CertifiedKey::new(
            vec![rustls::pki_types::CertificateDer::from(spki)],
            genuine.key.clone(),
        ));
        let config =
            client_config_from_tls(tls_client(presented), &TransportConfig::default()).unwrap();
        let error = match dial(&dialer(), config, node.addr()).await {
            Ok(connection) => connection.closed().await,
            Err(error) => error,
        };
        let quinn::ConnectionError::ConnectionClosed(close) = &error else {
            panic!("{name}: {error:?}");
        };
        assert_eq!(
            close.error_code,
            quinn::TransportErrorCode::crypto(42),
            "{name}: {close:?}"
        );
    }
    let logged = node
        .with(|r| r.ledger().recent_transfers(10).unwrap().len())
        .await;
    assert_eq!(logged, 0, "no exchange ran");
}

#[tokio::test]
async fn a_dialer_with_no_key_is_refused() {
    let node = Setup::new().start();
    let config = client_config(None, &node_key().node_id(), &TransportConfig::default()).unwrap();
    let result = dial(&dialer(), config, node.addr()).await;
    let error = result.expect_err("mutual authentication is mandatory");
    assert!(
        matches!(error, quinn::ConnectionError::ConnectionClosed(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_wrong_alpn_is_refused() {
    let node = Setup::new().start();
    for alpn in [Some(b"h3".to_vec()), None] {
        let mut tls = tls_client(certified_key(&peer_key()));
        tls.alpn_protocols = alpn.into_iter().collect();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let config = quinn::ClientConfig::new(Arc::new(crypto));
        let result = dial(&dialer(), config, node.addr()).await;
        assert!(result.is_err(), "no orbiplex-inac/1, no connection");
    }
}

#[tokio::test]
async fn zero_rtt_is_never_available() {
    let node = Setup::new().start();
    let mut tls = tls_client(certified_key(&peer_key()));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // A client that would send early data if it could (resumption on, early data on).
    tls.enable_early_data = true;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let dialer = dialer();
    let first = dial(&dialer, config.clone(), node.addr()).await.unwrap();
    // Give the listener the chance to send tickets (it sends none).
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(first);
    let connecting = dialer
        .connect_with(config, node.addr(), "orbiplex-inac")
        .unwrap();
    assert!(
        connecting.into_0rtt().is_err(),
        "no session ticket, so no 0-RTT attempt"
    );
}

#[tokio::test]
async fn a_barred_peer_is_closed_with_0x101() {
    let node = Setup::new()
        .transport(|t| {
            t.barred_peers.insert(peer_key().node_id());
        })
        .start();
    let client =
        Client::for_peer(&node.peer_addr(), peer_key(), TransportConfig::default()).unwrap();
    // Under a time limit: a barred peer that were served would never be closed.
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        closed_with(client.connect(&node.peer_addr()).await),
    )
    .await;
    assert_eq!(closed.ok(), Some(0x101), "the barred peer is closed");
    // Another peer is served.
    node.connect(&key(5)).await;
}

#[tokio::test]
async fn a_peer_over_its_connection_limit_is_closed_with_0x103() {
    let node = Setup::new()
        .transport(|t| t.max_connections_per_peer = 2)
        .start();
    let (_first, kept) = node.connect(&peer_key()).await;
    let (_second, _also) = node.connect(&peer_key()).await;
    let client =
        Client::for_peer(&node.peer_addr(), peer_key(), TransportConfig::default()).unwrap();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        closed_with(client.connect(&node.peer_addr()).await),
    )
    .await;
    assert_eq!(closed.ok(), Some(0x103), "the third connection is closed");
    // Another peer is served, and a connection that ends gives its place back.
    node.connect(&key(5)).await;
    kept.connection().close(0u32.into(), b"done");
    // The listener notices the close asynchronously: retry until an exchange goes through.
    let mut served = false;
    for _ in 0..100 {
        if let Ok(again) = client.connect(&node.peer_addr()).await
            && again
                .exchange(&inline_push(b"after", "k-after"))
                .await
                .is_ok()
        {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(served, "a closed connection gives its place back");
}

#[tokio::test]
async fn connections_beyond_the_listener_or_address_limit_are_refused_before_the_handshake() {
    // Each limit, and how many connections the allowed peer keeps to reach it.
    type Edit = fn(&mut TransportConfig);
    let limits: [(Edit, usize); 2] = [
        (
            |t| {
                t.max_connections = 2;
                t.max_guest_connections = 0;
                t.max_unfamiliar_handshakes = 1;
            },
            2,
        ),
        // Every test dialer is on 127.0.0.1, whatever its key.
        (|t| t.max_connections_per_address = 1, 1),
    ];
    for (limit, holders) in limits {
        let node = Setup::new().transport(limit).start();
        let mut kept = Vec::new();
        for _ in 0..holders {
            kept.push(node.connect(&peer_key()).await);
        }
        let client =
            Client::for_peer(&node.peer_addr(), key(5), TransportConfig::default()).unwrap();
        match client.connect(&node.peer_addr()).await {
            Err(TransportError::Connection {
                source: quinn::ConnectionError::ConnectionClosed(close),
                ..
            }) => assert_eq!(
                close.error_code,
                quinn::TransportErrorCode::CONNECTION_REFUSED
            ),
            other => panic!("expected a refused connection, got {other:?}"),
        }
        drop(kept);
        let mut served = false;
        for _ in 0..100 {
            if client.connect(&node.peer_addr()).await.is_ok() {
                served = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(served, "a freed place is given to the next connection");
    }
}

/// Whether `who` gets an answer to an exchange (any answer: the connection is served).
async fn served(node: &Node, who: &KeyPair, key: &str) -> bool {
    served_from(node, [127, 0, 0, 1], who, key).await
}

/// Whether `who`, dialling from `local`, gets an answer to an exchange (all of 127.0.0.0/8 is
/// loopback on Linux, where these tests run).
async fn served_from(node: &Node, local: [u8; 4], who: &KeyPair, key: &str) -> bool {
    let Ok(client) = Client::bind((local, 0).into(), who.clone(), TransportConfig::default())
    else {
        return false;
    };
    match client.connect(&node.peer_addr()).await {
        Ok(session) => session.exchange(&inline_push(b"hello", key)).await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn strangers_share_the_guest_places_and_known_peers_keep_theirs() {
    let known = key(7);
    let node = Setup::new()
        .transport(|t| {
            t.max_guest_connections = 1;
            t.known_peers.insert(key(7).node_id());
        })
        .start();
    let (_guest, guest) = node.connect(&key(5)).await;
    // Served: a stranger is answered (not allowlisted, so refused), not cut off.
    assert_answer(
        &guest.exchange(&inline_push(b"g", "k-g")).await.unwrap(),
        Operation::Refused,
        Some(RefusalCode::NotAuthorized),
    );
    let stranger = Client::for_peer(&node.peer_addr(), key(6), TransportConfig::default()).unwrap();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        closed_with(stranger.connect(&node.peer_addr()).await),
    )
    .await;
    assert_eq!(closed.ok(), Some(0x103), "the second stranger is closed");
    assert!(
        served(&node, &peer_key(), "k-allowed").await,
        "an allowed peer"
    );
    assert!(served(&node, &known, "k-known").await, "a known peer");
    // A guest that leaves gives its place to the next stranger.
    guest.connection().close(0u32.into(), b"done");
    let mut next = false;
    for _ in 0..100 {
        if served(&node, &key(6), "k-next").await {
            next = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(next, "a guest place comes back when its connection ends");
}

/// A stranger that connects and never opens an exchange must not keep a guest place for
/// ever. Today nothing closes a connection without exchanges, and keep-alives (the
/// listener's own included) keep it up: a few idle connections (two hosts at the defaults,
/// 128 per address) lock every other stranger out with `0x103` for good, among them the
/// peers that passports and open offers admit. Here the idle stranger waits six times the
/// frame timeout (a listener's wait for an exchange's frame) and three idle timeouts.
#[tokio::test]
async fn a_stranger_that_never_exchanges_does_not_keep_its_guest_place_for_ever() {
    let node = Setup::new()
        .policy(|p| p.open_offer_intake = true)
        .transport(|t| {
            t.max_guest_connections = 1;
            t.frame_timeout = std::time::Duration::from_millis(500);
            t.idle_timeout = std::time::Duration::from_secs(1);
            t.keep_alive = std::time::Duration::from_millis(250);
        })
        .start();
    let (_idle_client, idle) = node.connect(&key(5)).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let still_open = idle.connection().close_reason().is_none();
    assert!(
        served(&node, &key(6), "k-next").await,
        "another stranger is locked out (the idle one is still connected: {still_open})"
    );
}

/// The idle close above waits for the guest's exchanges: a stranger whose one exchange outlasts
/// the idle timeout (its frame arrives in two halves, 1.6 idle timeouts apart, inside the frame
/// timeout) still gets its answer. Closing on the timer alone would cut it off mid-frame.
#[tokio::test]
async fn a_guest_with_an_exchange_in_flight_is_not_closed_as_idle() {
    use orbi_inac::quic::wire::{encode_frame, read_frame};
    let node = Setup::new()
        .transport(|t| {
            t.frame_timeout = std::time::Duration::from_secs(5);
            t.idle_timeout = std::time::Duration::from_millis(500);
            t.keep_alive = std::time::Duration::from_millis(100);
        })
        .start();
    let (_guest_client, guest) = node.connect(&key(5)).await;
    let frame = encode_frame(&inline_push(b"slow", "k-slow"));
    let (first, second) = frame.split_at(frame.len() / 2);
    let (mut send, mut recv) = guest.connection().open_bi().await.unwrap();
    send.write_all(first).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    send.write_all(second).await.unwrap();
    send.finish().unwrap();
    let answer = read_frame(&mut recv, std::time::Duration::from_secs(5))
        .await
        .expect("the guest's exchange is answered");
    let answer = orbi_inac::Frame::decode(&answer).unwrap();
    // Served: a stranger's push is refused, not cut off.
    assert_answer(
        &answer,
        Operation::Refused,
        Some(RefusalCode::NotAuthorized),
    );
    assert_eq!(guest.connection().close_reason(), None);
}

/// A dialer's verifier that holds its side of the handshake for a while before checking, as
/// a dialer that stalls half-way would.
/// It says when it starts to stall: the listener has then sent its flight and holds the
/// handshake's places.
#[derive(Debug)]
struct Stalling {
    verifier: ExpectedNode,
    stall: std::time::Duration,
    stalling: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl rustls::client::danger::ServerCertVerifier for Stalling {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if let Some(stalling) = self.stalling.lock().unwrap().take() {
            let _ = stalling.send(());
        }
        std::thread::sleep(self.stall);
        self.verifier
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.verifier.requires_raw_public_keys()
    }
}

/// How long the staller holds its handshake: far beyond the listener's handshake timeout.
const STALL: std::time::Duration = std::time::Duration::from_secs(6);

/// Dials `addr` as P from 127.0.0.1 (see [`stall_handshake_from`]).
async fn stall_handshake(addr: SocketAddr) -> std::thread::JoinHandle<()> {
    stall_handshake_from([127, 0, 0, 1], addr).await
}

/// Dials `addr` as P from `local` in a thread of its own (its verifier blocks that thread)
/// and stalls the handshake for [`STALL`]; returns once the listener holds the handshake.
async fn stall_handshake_from(local: [u8; 4], addr: SocketAddr) -> std::thread::JoinHandle<()> {
    let (stalling, stalled) = std::sync::mpsc::channel();
    let staller = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let tls = tls_client_builder()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Stalling {
                    verifier: ExpectedNode::new(node_key().node_id()),
                    stall: STALL,
                    stalling: std::sync::Mutex::new(Some(stalling)),
                }))
                .with_client_cert_resolver(Arc::new(AlwaysResolvesClientRawPublicKeys::new(
                    certified_key(&peer_key()),
                )));
            let config = client_config_from_tls(tls, &TransportConfig::default()).unwrap();
            let dialer = endpoint((local, 0).into(), None, &TransportConfig::default()).unwrap();
            let _ = dial(&dialer, config, addr).await;
        })
    });
    tokio::task::spawn_blocking(move || stalled.recv())
        .await
        .unwrap()
        .expect("the staller reached the listener");
    staller
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_holds_its_address_place_only_until_the_handshake_timeout() {
    let node = Setup::new()
        .transport(|t| {
            t.max_handshakes_per_address = 1;
            t.handshake_timeout = std::time::Duration::from_millis(1500);
        })
        .start();
    let addr = node.addr();
    let staller = stall_handshake(addr).await;
    let started = std::time::Instant::now();
    let client = Client::for_peer(&node.peer_addr(), key(5), TransportConfig::default()).unwrap();
    let refused = matches!(
        client.connect(&node.peer_addr()).await,
        Err(TransportError::Connection {
            source: quinn::ConnectionError::ConnectionClosed(close),
            ..
        }) if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED
    );
    assert!(refused, "no second handshake from the staller's address");
    let mut next = false;
    while started.elapsed() < STALL / 2 {
        if served(&node, &peer_key(), "k-after-stall").await {
            next = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        next,
        "the handshake timeout frees the place while the staller still stalls"
    );
    tokio::task::spawn_blocking(move || staller.join())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_finished_handshake_gives_its_address_place_back() {
    let node = Setup::new()
        .transport(|t| t.max_handshakes_per_address = 1)
        .start();
    // One connection stays open; the next from the same address still gets its handshake.
    let (_client, kept) = node.connect(&peer_key()).await;
    assert_answer(
        &kept
            .exchange(&inline_push(b"kept", "k-kept"))
            .await
            .unwrap(),
        Operation::Ingested,
        None,
    );
    assert!(served(&node, &key(5), "k-second").await);
}

#[tokio::test]
async fn request_peers_are_known_peers() {
    let asker = key(6);
    let node = Setup::new()
        .policy(|p| {
            p.request_peers.insert(key(6).node_id());
        })
        .transport(|t| t.max_guest_connections = 0)
        .start();
    assert!(served(&node, &asker, "k-asker").await, "a request peer");
    assert!(!served(&node, &key(7), "k-stranger").await, "a stranger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_does_not_wait_for_a_stalled_handshake() {
    let mut node = Setup::new()
        .transport(|t| {
            t.handshake_timeout = std::time::Duration::from_secs(30);
            t.shutdown_grace = std::time::Duration::from_secs(30);
        })
        .start();
    let staller = stall_handshake(node.addr()).await;
    let started = std::time::Instant::now();
    node.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < STALL,
        "shutdown took {took:?}: it waited for the stalled handshake"
    );
    tokio::task::spawn_blocking(move || staller.join())
        .await
        .unwrap()
        .unwrap();
}

/// Whether dialling from `local` as `who` is refused before the handshake.
async fn refused_from(node: &Node, local: [u8; 4], who: &KeyPair) -> bool {
    let client = Client::bind((local, 0).into(), who.clone(), TransportConfig::default()).unwrap();
    matches!(
        client.connect(&node.peer_addr()).await,
        Err(TransportError::Connection {
            source: quinn::ConnectionError::ConnectionClosed(close),
            ..
        }) if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_handshakes_cannot_take_the_places_of_known_peers_coming_back() {
    let known = key(7);
    let node = Setup::new()
        .transport(|t| {
            t.max_unfamiliar_handshakes = 1;
            t.handshake_timeout = std::time::Duration::from_secs(30);
            t.known_peers.insert(key(7).node_id());
        })
        .start();
    // The allowed peer's first connection, from 127.0.0.1, makes that address familiar.
    assert!(served(&node, &peer_key(), "k-first").await);
    // A staller on another address holds the one place for unfamiliar handshakes...
    let staller = stall_handshake_from([127, 0, 0, 2], node.addr()).await;
    assert!(
        refused_from(&node, [127, 0, 0, 3], &key(5)).await,
        "a stranger's handshake from a third address"
    );
    assert!(
        refused_from(&node, [127, 0, 0, 4], &known).await,
        "a known peer's first handshake from a new address waits like anyone's"
    );
    // ... but not the places of handshakes from the familiar address.
    assert!(
        served(&node, &peer_key(), "k-back").await,
        "the allowed peer coming back"
    );
    assert!(
        served(&node, &known, "k-known").await,
        "a known peer from a familiar address"
    );
    tokio::task::spawn_blocking(move || staller.join())
        .await
        .unwrap()
        .unwrap();
}

/// A dialer that sends from an address it does not receive at (a spoofed source) gets only the
/// Retry and holds no place: its Initial packets reach the listener through a one-way relay
/// on 127.0.0.9, which drops every answer. Had the listener accepted that Initial, its
/// handshake would hold the one place for unfamiliar handshakes for the whole handshake
/// timeout, and the honest stranger after it would be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_that_never_receives_the_retry_holds_no_handshake_place() {
    let node = Setup::new()
        .transport(|t| {
            t.max_unfamiliar_handshakes = 1;
            t.handshake_timeout = std::time::Duration::from_secs(30);
        })
        .start();
    let relay = tokio::net::UdpSocket::bind("127.0.0.9:0").await.unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let listener = node.addr();
    let (forwarded, first_forwarded) = tokio::sync::oneshot::channel();
    let relaying = tokio::spawn(async move {
        let mut forwarded = Some(forwarded);
        let mut datagram = vec![0u8; 65_536];
        loop {
            let Ok((len, from)) = relay.recv_from(&mut datagram).await else {
                return;
            };
            // Only the dialer's datagrams go on; the listener's answers end here.
            if from != listener {
                let _ = relay.send_to(&datagram[..len], listener).await;
                if let Some(forwarded) = forwarded.take() {
                    let _ = forwarded.send(());
                }
            }
        }
    });
    let spoofer = Client::bind(
        ([127, 0, 0, 8], 0).into(),
        key(5),
        TransportConfig::default(),
    )
    .unwrap();
    let relay_peer: PeerAddr = format!("{}@{relay_addr}", node.server().node_id().as_str())
        .parse()
        .unwrap();
    let spoofing = tokio::spawn(async move { spoofer.connect(&relay_peer).await.is_ok() });
    tokio::time::timeout(std::time::Duration::from_secs(5), first_forwarded)
        .await
        .expect("the spoofed Initial reached the relay")
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        served_from(&node, [127, 0, 0, 3], &key(6), "k-honest").await,
        "the honest stranger is refused: the spoofed dialer holds the unfamiliar place"
    );
    assert!(!spoofing.is_finished(), "the spoofed dialer never connects");
    spoofing.abort();
    relaying.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_give_their_unfamiliar_place_back_and_make_no_address_familiar() {
    let node = Setup::new()
        .transport(|t| {
            t.max_unfamiliar_handshakes = 1;
            t.handshake_timeout = std::time::Duration::from_secs(30);
        })
        .start();
    // A stranger's finished handshake gives the one place back while its connection lives.
    let first = Client::bind(
        ([127, 0, 0, 2], 0).into(),
        key(5),
        TransportConfig::default(),
    )
    .unwrap();
    let kept = first.connect(&node.peer_addr()).await.unwrap();
    assert_answer(
        &kept
            .exchange(&inline_push(b"kept", "k-kept"))
            .await
            .unwrap(),
        Operation::Refused,
        Some(RefusalCode::NotAuthorized),
    );
    assert!(
        served_from(&node, [127, 0, 0, 3], &key(6), "k-next").await,
        "the next stranger's handshake gets the place back"
    );
    // Its address did not become familiar: with the place held, it waits like any other.
    let staller = stall_handshake_from([127, 0, 0, 4], node.addr()).await;
    assert!(
        refused_from(&node, [127, 0, 0, 2], &key(5)).await,
        "a stranger's address is not familiar"
    );
    tokio::task::spawn_blocking(move || staller.join())
        .await
        .unwrap()
        .unwrap();
}

// quic module docs (session id): `sess:` + base64url of 32 bytes exported under
// `EXPORTER-orbiplex-inac-session-v1` with an empty context, the same at both ends.
#[tokio::test]
async fn the_session_id_is_the_documented_export_of_the_tls_session() {
    let node = Setup::new().start();
    let (_client, session) = node.connect(&peer_key()).await;
    let mut exported = [0u8; 32];
    session
        .connection()
        .export_keying_material(&mut exported, b"EXPORTER-orbiplex-inac-session-v1", b"")
        .unwrap();
    let expected = format!("sess:{}", orbi_types::b64::encode(&exported));
    assert_eq!(session.id().as_str(), expected);
}
