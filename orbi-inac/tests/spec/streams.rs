//! Spec §9.4 as far as the core decides it: stream bodies are hashed while staged in a real
//! [`FsStore`], and no failed body reaches an acceptor or leaves a file behind.

use std::fs;

use orbi_inac::{
    Acceptance, BodyEnd, BodyError, Descriptor, Frame, FsStore, Handled, KindRegistry,
    MemoryLedger, Receiver, ReceiverConfig, Store,
};
use orbi_types::{
    Sha256Digest,
    inac::{Operation, RefusalCode},
};

use crate::common::*;

struct FsNode {
    receiver: Receiver,
    store: FsStore,
    acceptor: Scripted,
    _dir: tempfile::TempDir,
}

fn fs_node() -> FsNode {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path().join("store")).unwrap();
    let acceptor = Scripted::new(Acceptance::Keep);
    let mut config = ReceiverConfig::default();
    config.allowed_peers.insert(peer().node_id());
    let kinds = KindRegistry::builder()
        .accept(BLOB, None, acceptor.clone())
        .build()
        .unwrap();
    let receiver = Receiver::new(
        receiver_key(),
        config,
        kinds,
        store.clone(),
        MemoryLedger::new(),
    );
    FsNode {
        receiver,
        store,
        acceptor,
        _dir: dir,
    }
}

impl FsNode {
    fn staged_files(&self) -> usize {
        fs::read_dir(self.store.staging_dir()).unwrap().count()
    }

    fn begin(&mut self, header: &Frame) -> orbi_inac::IncomingBody {
        match self.receiver.handle(&peer().node_id(), header, at(0)) {
            Handled::ReadBody(body) => body,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn zeros() -> Vec<u8> {
    vec![0u8; 100_000]
}

fn zeros_header() -> Frame {
    let descriptor = Descriptor::of_bytes(BLOB, "application/octet-stream", &zeros());
    assert_eq!(
        descriptor.digest.as_str(),
        "sha256:kZLCW3NPy62-MtrcKAicYNsOOfkMwgzi5XM_VyYazAw"
    );
    Frame::push_stream(&descriptor, "4")
        .correlation_id("c-stream")
        .idempotency_key("k-stream")
        .build()
        .unwrap()
}

#[test]
fn zeros_with_the_right_digest_are_ingested_byte_for_byte() {
    let mut node = fs_node();
    let mut body = node.begin(&zeros_header());
    assert_eq!(
        node.staged_files(),
        1,
        "the body is staged while it arrives"
    );
    for chunk in zeros().chunks(7777) {
        body.write(chunk).unwrap();
    }
    assert_eq!(body.remaining(), 0);
    let answer = node
        .receiver
        .finish_push(body.complete(BodyEnd::Finished), at(0));
    assert_answer(&answer, Operation::Ingested, None);
    assert_eq!(answer.correlation_id(), Some("c-stream"));
    assert_eq!(node.acceptor.calls(), 1);
    assert_eq!(node.staged_files(), 0);
    let digest = Sha256Digest::of(&zeros());
    assert_eq!(
        fs::read(node.store.object_path(&digest).unwrap()).unwrap(),
        zeros()
    );
}

#[test]
fn a_flipped_byte_is_digest_mismatch_with_no_acceptor_call_and_no_file() {
    let mut node = fs_node();
    let mut bytes = zeros();
    bytes[50_000] = 1;
    assert_eq!(
        Sha256Digest::of(&bytes).as_str(),
        "sha256:_vD-DcJI_0y9r2Pki9wQbjuUMlOA36zuF41YN5GQjjg"
    );
    let mut body = node.begin(&zeros_header());
    body.write(&bytes).unwrap();
    let answer = node
        .receiver
        .finish_push(body.complete(BodyEnd::Finished), at(0));
    assert_refused(&answer, RefusalCode::DigestMismatch);
    assert_eq!(node.acceptor.calls(), 0);
    assert_eq!(node.staged_files(), 0);
    assert!(node.store.list().unwrap().is_empty());
}

#[test]
fn a_body_cut_short_by_fin_is_malformed() {
    let mut node = fs_node();
    let mut body = node.begin(&zeros_header());
    body.write(&zeros()[..99_999]).unwrap();
    let answer = node
        .receiver
        .finish_push(body.complete(BodyEnd::Finished), at(0));
    assert_refused(&answer, RefusalCode::Malformed);
    assert_eq!(node.acceptor.calls(), 0);
    assert_eq!(node.staged_files(), 0);
}

#[test]
fn one_byte_too_many_is_malformed_and_discards_at_once() {
    let mut node = fs_node();
    let mut body = node.begin(&zeros_header());
    body.write(&zeros()).unwrap();
    assert_eq!(
        body.write(&[0]),
        Err(BodyError::Overrun { expected: 100_000 })
    );
    assert!(body.is_failed());
    assert_eq!(
        node.staged_files(),
        0,
        "the staged file goes with the first extra byte"
    );
    assert_eq!(body.write(&[0]), Err(BodyError::Failed));
    let answer = node
        .receiver
        .finish_push(body.complete(BodyEnd::Finished), at(0));
    assert_refused(&answer, RefusalCode::Malformed);
    assert_eq!(node.acceptor.calls(), 0);
}

#[test]
fn an_interrupted_body_admits_nothing_and_a_retry_ingests_once() {
    let mut node = fs_node();
    let mut body = node.begin(&zeros_header());
    body.write(&zeros()[..50_000]).unwrap();
    let _ = node
        .receiver
        .finish_push(body.complete(BodyEnd::Interrupted), at(0));
    assert_eq!(node.staged_files(), 0);
    assert_eq!(node.acceptor.calls(), 0);
    // The same idempotency key is evaluated afresh: the interrupted transfer never happened.
    let mut retry = node.begin(&zeros_header());
    retry.write(&zeros()).unwrap();
    let answer = node
        .receiver
        .finish_push(retry.complete(BodyEnd::Finished), at(1));
    assert_answer(&answer, Operation::Ingested, None);
    let again = answer_of(
        node.receiver
            .handle(&peer().node_id(), &zeros_header(), at(2)),
    );
    assert_answer(&again, Operation::Ingested, None);
    assert_eq!(node.acceptor.calls(), 1, "ingested once");
}

fn answer_of(handled: Handled) -> Frame {
    answer(handled)
}

#[test]
fn a_dropped_body_leaves_no_file() {
    let mut node = fs_node();
    let mut body = node.begin(&zeros_header());
    body.write(&zeros()[..10]).unwrap();
    drop(body);
    assert_eq!(node.staged_files(), 0);
}

#[test]
fn a_stalled_body_admits_nothing() {
    let mut node = fs_node();
    let mut body = node.begin(&zeros_header());
    body.write(&zeros()[..10]).unwrap();
    let answer = node
        .receiver
        .finish_push(body.complete(BodyEnd::Stalled), at(900));
    assert_refused(&answer, RefusalCode::Malformed);
    assert_eq!(node.staged_files(), 0);
    assert_eq!(node.acceptor.calls(), 0);
}

#[test]
fn a_sender_local_ref_is_operation_not_supported() {
    let mut node = standard();
    let mut value = push_a0_value();
    let artifact = value["artifact"].as_object_mut().unwrap();
    artifact.remove("bytes/base64url");
    artifact.insert("artifact/ref".into(), "artifact-store:x".into());
    value.as_object_mut().unwrap().remove("transfer");
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::OperationNotSupported);
    // An out-of-band href has no resolver here either.
    let artifact = value["artifact"].as_object_mut().unwrap();
    artifact.remove("artifact/ref");
    artifact.insert("artifact/href".into(), "https://example.org/a".into());
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::OperationNotSupported);
}

#[test]
fn an_empty_artifact_streams_with_no_body() {
    let mut node = standard();
    let descriptor = Descriptor::of_bytes(BLOB, "application/octet-stream", b"");
    assert_eq!(
        descriptor.digest.as_str(),
        "sha256:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    );
    assert!(
        Frame::push_inline(&descriptor, b"").build().is_err(),
        "inline cannot be empty"
    );
    let header = Frame::push_stream(&descriptor, "0").build().unwrap();
    assert_answer(
        &node.stream(&peer(), &header, b"", at(0)),
        Operation::Ingested,
        None,
    );
    assert!(node.holds(b""));
}

#[test]
fn a_stream_header_for_a_held_artifact_is_answered_before_the_body() {
    let mut node = standard();
    let header = zeros_header();
    assert_answer(
        &node.stream(&peer(), &header, &zeros(), at(0)),
        Operation::Ingested,
        None,
    );
    let other_key = Frame::push_stream(&header.descriptor().unwrap(), "8")
        .idempotency_key("k-other")
        .build()
        .unwrap();
    let answer = answer(node.receiver.handle(&peer().node_id(), &other_key, at(1)));
    assert_answer(&answer, Operation::AlreadyPresent, None);
    assert_eq!(node.store.staged_count(), 0);
}

#[test]
fn peer_chosen_text_in_refusals_is_bounded_in_the_answer_and_the_log() {
    let mut node = standard();
    let mut value = push_a0_value();
    let artifact = value["artifact"].as_object_mut().unwrap();
    artifact.remove("bytes/base64url");
    artifact.insert("artifact/ref".into(), "x".repeat(200_000).into());
    value.as_object_mut().unwrap().remove("transfer");
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::OperationNotSupported);
    assert!(!message(&answer).is_empty() && message(&answer).len() <= 1024);
    let logged = &node.receiver.ledger().recent_transfers(1).unwrap()[0];
    assert!(logged.note.chars().count() <= 1024, "{}", logged.note.len());
}

#[test]
fn a_peer_over_its_stream_cap_is_rate_limited_before_its_body() {
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .allow(&other_peer().node_id())
        .keep(BLOB, None)
        .config(|c| c.stream_pushes_per_peer = 2)
        .build();
    let header = |seed: u8| {
        let bytes = vec![seed; 1000];
        Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, &bytes), "4")
            .build()
            .unwrap()
    };
    let first = node.begin(&peer(), &header(1), at(0));
    let second = node.begin(&peer(), &header(2), at(0));
    assert_eq!(node.receiver.bodies_in_flight(&peer().node_id()), 2);
    let answer = answer(node.receiver.handle(&peer().node_id(), &header(3), at(0)));
    assert_refused(&answer, RefusalCode::RateLimited);
    assert_eq!(answer.response().unwrap().retry_after_ms, Some(1000));
    // Other peers have their own slots.
    let theirs = node.begin(&other_peer(), &header(4), at(0));
    // A finished body frees its slot; so does a dropped one.
    let mut first = first;
    first.write(&[1; 1000]).unwrap();
    let done = node
        .receiver
        .finish_push(first.complete(BodyEnd::Finished), at(1));
    assert_answer(&done, Operation::Ingested, None);
    drop(second);
    assert_eq!(node.receiver.bodies_in_flight(&peer().node_id()), 0);
    assert_eq!(node.receiver.bodies_in_flight(&other_peer().node_id()), 1);
    drop(theirs);
    node.begin(&peer(), &header(3), at(2));
}

#[test]
fn a_frame_the_transport_could_not_read_is_refused_and_logged() {
    let mut node = standard();
    let refusal = orbi_inac::Refusal::new(RefusalCode::Malformed, "control frame too large");
    let answer = node
        .receiver
        .refuse_unread(&peer().node_id(), refusal, at(0));
    assert_refused(&answer, RefusalCode::Malformed);
    let logged = &node.receiver.ledger().recent_transfers(1).unwrap()[0];
    assert_eq!(logged.operation, None);
    assert_eq!(logged.refusal_code, Some(RefusalCode::Malformed));
    assert_eq!(node.receiver.stats().malformed, 1);
}
