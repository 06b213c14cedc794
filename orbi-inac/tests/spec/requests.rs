//! `request` (issue item 6): exact-id pulls of held artifacts, answered with a `push`.

use std::io::Read;

use orbi_inac::{Descriptor, Frame, Handled, Payload, ServeArtifact, Store};
use orbi_types::{
    KeyPair,
    inac::{Operation, RefusalCode},
};

use crate::common::*;

fn request(descriptor: &Descriptor) -> Frame {
    Frame::request_for(&descriptor.schema, &descriptor.content_type)
        .artifact_id(&descriptor.artifact_id)
        .correlation_id("c-request")
        .build()
        .unwrap()
}

fn serve(node: &mut Node, who: &KeyPair, frame: &Frame) -> ServeArtifact {
    match node.receiver.handle(&who.node_id(), frame, at(10)) {
        Handled::Serve(serve) => serve,
        other => panic!("unexpected {other:?}"),
    }
}

/// Pushes (in stream mode, as P) an artifact over the inline ceiling; returns it.
fn hold_a_stream_artifact(node: &mut Node) -> (Descriptor, Vec<u8>) {
    let bytes = vec![7u8; 70_000];
    (ingest_stream(node, &bytes), bytes)
}

#[test]
fn the_source_peer_gets_its_artifact_back_inline() {
    let mut node = standard();
    let bytes = br#"{"note":"mine"}"#;
    let descriptor = Descriptor::of_bytes(BLOB, JSON, bytes).with_artifact_id("note:1");
    let push = Frame::push_inline(&descriptor, bytes).build().unwrap();
    assert_answer(&node.send(&peer(), &push, at(0)), Operation::Ingested, None);
    let served = serve(&mut node, &peer(), &request(&descriptor));
    assert!(served.is_inline());
    assert_eq!(served.descriptor(), &descriptor);
    let frame = served.push_frame("ignored").unwrap();
    assert_eq!(frame.operation(), Operation::Push);
    assert_eq!(frame.correlation_id(), Some("c-request"));
    let Some(Payload::Inline(text)) = frame.payload() else {
        panic!("inline expected")
    };
    assert_eq!(text.decode().unwrap(), bytes);
    let logged = &node.receiver.ledger().recent_transfers(1).unwrap()[0];
    assert_eq!(
        (logged.operation, logged.answer),
        (Some(Operation::Request), Operation::Push)
    );
    // The same artifact by digest.
    let by_digest = Frame::request_for(BLOB, JSON)
        .digest(&descriptor.digest)
        .build()
        .unwrap();
    assert_eq!(
        serve(&mut node, &peer(), &by_digest).descriptor(),
        &descriptor
    );
}

#[test]
fn a_large_artifact_is_served_as_a_stream_from_the_store() {
    let mut node = standard();
    let (descriptor, bytes) = hold_a_stream_artifact(&mut node);
    let served = serve(&mut node, &peer(), &request(&descriptor));
    assert!(!served.is_inline());
    let frame = served.push_frame("9").unwrap();
    assert_eq!(frame.payload(), Some(Payload::Stream { stream_id: "9" }));
    let mut body = Vec::new();
    node.receiver
        .store()
        .open(&descriptor.digest)
        .unwrap()
        .unwrap()
        .read_to_end(&mut body)
        .unwrap();
    assert_eq!(body, bytes);
}

#[test]
fn others_learn_nothing_and_listed_peers_are_served() {
    let mut node = standard();
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, A0, None), at(0)),
        Operation::Ingested,
        None,
    );
    let held = node.send(&other_peer(), &request(&descriptor), at(1));
    let missing = node.send(
        &other_peer(),
        &request(&Descriptor::of_bytes(BLOB, JSON, b"[]")),
        at(1),
    );
    for answer in [&held, &missing] {
        assert_answer(answer, Operation::Decline, Some(RefusalCode::NotAuthorized));
    }
    assert_eq!(
        held.response().unwrap().message,
        missing.response().unwrap().message,
        "held and missing read the same"
    );
    let mut open = standard_with(|c| {
        c.request_peers.insert(other_peer().node_id());
    });
    open.send(&peer(), &inline_push(BLOB, A0, None), at(0));
    serve(&mut open, &other_peer(), &request(&descriptor));
}

#[test]
fn filtered_requests_are_operation_not_supported() {
    let mut node = standard();
    let filtered = Frame::request_for(BLOB, JSON)
        .correlation_id("c-f")
        .build()
        .unwrap();
    let answer = answer(node.receiver.handle(&peer().node_id(), &filtered, at(0)));
    assert_answer(
        &answer,
        Operation::Decline,
        Some(RefusalCode::OperationNotSupported),
    );
    assert_eq!(answer.correlation_id(), Some("c-f"));
}

#[test]
fn artifacts_an_acceptor_took_are_not_served_from_the_store() {
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(BLOB, None, Scripted::new(orbi_inac::Acceptance::Taken))
        .build();
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, A0, None), at(0)),
        Operation::Ingested,
        None,
    );
    let answer = node.send(
        &peer(),
        &request(&Descriptor::of_bytes(BLOB, JSON, A0)),
        at(1),
    );
    assert_answer(
        &answer,
        Operation::Decline,
        Some(RefusalCode::NotAuthorized),
    );
    assert!(
        !node
            .store
            .contains(&Descriptor::of_bytes(BLOB, JSON, A0).digest)
            .unwrap()
    );
}

#[test]
fn stream_serves_per_peer_are_capped_and_given_back_when_done() {
    let mut node = standard_with(|c| c.stream_serves_per_peer = 2);
    let (descriptor, _) = hold_a_stream_artifact(&mut node);
    let first = serve(&mut node, &peer(), &request(&descriptor));
    let second = serve(&mut node, &peer(), &request(&descriptor));
    assert_eq!(node.receiver.serves_in_flight(&peer().node_id()), 2);
    // A third stream serve is refused.
    let refused = answer(
        node.receiver
            .handle(&peer().node_id(), &request(&descriptor), at(10)),
    );
    assert_eq!(refused.operation(), Operation::Decline);
    assert_eq!(code(&refused), Some(RefusalCode::RateLimited));
    assert!(refused.response().and_then(|r| r.retry_after_ms).is_some());
    // Inline serves are not held back.
    let small = br#"{"note":"small"}"#;
    let inline = Descriptor::of_bytes(BLOB, JSON, small);
    let push = Frame::push_inline(&inline, small).build().unwrap();
    assert_answer(&node.send(&peer(), &push, at(0)), Operation::Ingested, None);
    assert!(serve(&mut node, &peer(), &request(&inline)).is_inline());
    // A finished serve gives its place back.
    drop(first);
    assert_eq!(node.receiver.serves_in_flight(&peer().node_id()), 1);
    let third = serve(&mut node, &peer(), &request(&descriptor));
    drop((second, third));
    assert_eq!(node.receiver.serves_in_flight(&peer().node_id()), 0);
}

#[test]
fn a_node_that_streams_nothing_says_so_without_inviting_a_retry() {
    let mut node = standard_with(|c| c.stream_serves_per_peer = 0);
    let (descriptor, _) = hold_a_stream_artifact(&mut node);
    let refused = answer(
        node.receiver
            .handle(&peer().node_id(), &request(&descriptor), at(10)),
    );
    assert_eq!(code(&refused), Some(RefusalCode::PolicyDenied));
    assert!(refused.response().and_then(|r| r.retry_after_ms).is_none());
}

/// Another allowed peer pushing other bytes under the same `artifact/id` must not hide a
/// peer's own artifact from it; a peer allowed to fetch anything gets the newest.
#[test]
fn another_peers_bytes_under_my_id_do_not_hide_my_artifact() {
    let mine = br#"{"note":"mine"}"#;
    let theirs = br#"{"note":"squat"}"#;
    let descriptor = Descriptor::of_bytes(BLOB, JSON, mine).with_artifact_id("note:X");
    let squat = Descriptor::of_bytes(BLOB, JSON, theirs).with_artifact_id("note:X");
    let ingest = |node: &mut Node, from: &KeyPair, what: &Descriptor, bytes: &[u8], when: u64| {
        let push = Frame::push_inline(what, bytes).build().unwrap();
        assert_answer(&node.send(from, &push, at(when)), Operation::Ingested, None);
    };

    let mut node = standard_with(|c| {
        c.allowed_peers.insert(other_peer().node_id());
    });
    ingest(&mut node, &peer(), &descriptor, mine, 0);
    ingest(&mut node, &other_peer(), &squat, theirs, 1);
    assert_eq!(
        serve(&mut node, &peer(), &request(&descriptor)).descriptor(),
        &descriptor
    );
    assert_eq!(
        serve(&mut node, &other_peer(), &request(&squat)).descriptor(),
        &squat
    );

    let mut fetcher = standard_with(|c| {
        c.allowed_peers.insert(other_peer().node_id());
        c.request_peers.insert(other_peer().node_id());
    });
    ingest(&mut fetcher, &peer(), &descriptor, mine, 0);
    ingest(&mut fetcher, &peer(), &squat, theirs, 1);
    assert_eq!(
        serve(&mut fetcher, &other_peer(), &request(&descriptor)).descriptor(),
        &squat,
        "a peer that may fetch anything gets the newest under the id"
    );
}
