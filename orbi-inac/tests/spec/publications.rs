//! Publications (`orbi_inac::publish`): artifacts a node serves on `request` without having
//! received them, including well-known requests (no `artifact/id`, no `digest`).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use orbi_inac::{
    BudgetRule, Descriptor, Frame, Handled, Payload, Published, PublishedQuery, Publisher,
    ServeArtifact,
};
use orbi_types::{
    KeyPair, NodeId,
    inac::{Operation, RefusalCode},
};

use crate::common::*;

const AD: &str = "archivist-advertisement.v1";
const AD_BYTES: &[u8] = br#"{"schema/v":1,"advertisement/id":"ad:1"}"#;

fn advertisement() -> Published {
    Published::new(AD, JSON, "ad:1", AD_BYTES.to_vec())
}

/// Serves a fixed list (first match wins), optionally only to one peer; records every query.
#[derive(Default)]
struct Shelf {
    items: Vec<Published>,
    only: Option<NodeId>,
    calls: AtomicUsize,
    seen: Mutex<Vec<(NodeId, bool)>>,
}

impl Shelf {
    fn with(items: Vec<Published>) -> Arc<Shelf> {
        Arc::new(Shelf {
            items,
            ..Shelf::default()
        })
    }

    fn only_for(items: Vec<Published>, peer: &KeyPair) -> Arc<Shelf> {
        Arc::new(Shelf {
            items,
            only: Some(peer.node_id()),
            ..Shelf::default()
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Publisher for Shelf {
    fn lookup(&self, peer: &NodeId, query: &PublishedQuery<'_>) -> Option<Published> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap()
            .push((peer.clone(), query.is_well_known()));
        if self.only.as_ref().is_some_and(|only| only != peer) {
            return None;
        }
        self.items
            .iter()
            .find(|item| query.matches(&item.descriptor))
            .cloned()
    }
}

/// Answers every query with what it holds, whether it matches or not (a buggy publisher).
struct Liar(Published);

impl Publisher for Liar {
    fn lookup(&self, _: &NodeId, _: &PublishedQuery<'_>) -> Option<Published> {
        Some(self.0.clone())
    }
}

fn publishing(publisher: Option<Arc<dyn Publisher>>) -> Node {
    let mut node = standard();
    node.receiver.set_publisher(publisher);
    node
}

fn well_known(schema: &str) -> Frame {
    Frame::request_for(schema, JSON)
        .correlation_id("c-well-known")
        .build()
        .unwrap()
}

fn by_id(schema: &str, id: &str) -> Frame {
    Frame::request_for(schema, JSON)
        .artifact_id(id)
        .correlation_id("c-by-id")
        .build()
        .unwrap()
}

fn served(node: &mut Node, who: &KeyPair, frame: &Frame) -> ServeArtifact {
    match node.receiver.handle(&who.node_id(), frame, at(10)) {
        Handled::Serve(serve) => serve,
        Handled::Answer(answer) => panic!("not served: {:?}", answer.to_value()),
        other => panic!("unexpected {other:?}"),
    }
}

#[track_caller]
fn assert_inline(serve: &ServeArtifact, expected: &Published, correlation_id: &str) {
    assert!(serve.is_inline() && serve.is_published());
    assert_eq!(serve.descriptor(), &expected.descriptor);
    let push = serve.push_frame("unused").unwrap();
    assert_eq!(push.operation(), Operation::Push);
    assert_eq!(push.correlation_id(), Some(correlation_id));
    assert_eq!(push.descriptor().as_ref(), Some(&expected.descriptor));
    let Some(Payload::Inline(text)) = push.payload() else {
        panic!("inline expected, got {:?}", push.to_value())
    };
    assert_eq!(text.decode().unwrap(), &expected.bytes[..]);
    // The frame survives its own codec, as the requester will decode it.
    let decoded = Frame::decode(&push.encode()).unwrap();
    assert_eq!(decoded.inline_bytes().unwrap().0, &expected.bytes[..]);
}

#[test]
fn a_well_known_request_is_served_inline_and_logged() {
    let shelf = Shelf::with(vec![advertisement()]);
    let mut node = publishing(Some(shelf.clone()));
    let serve = served(&mut node, &peer(), &well_known(AD));
    assert_inline(&serve, &advertisement(), "c-well-known");
    assert_eq!(*shelf.seen.lock().unwrap(), [(peer().node_id(), true)]);
    let logged = &node.receiver.ledger().recent_transfers(1).unwrap()[0];
    assert_eq!(
        (logged.operation, logged.answer, logged.note.as_str()),
        (
            Some(Operation::Request),
            Operation::Push,
            "served publication"
        )
    );
    assert_eq!(
        logged.descriptor.as_ref(),
        Some(&advertisement().descriptor)
    );
    assert_eq!(logged.correlation_id.as_deref(), Some("c-well-known"));
    assert_eq!(node.receiver.stats().frames, 1);
    assert_eq!(node.stored_count(), 0, "publications are not stored");
}

#[test]
fn exact_requests_are_served_by_artifact_id_digest_or_digest_as_id() {
    let decision = Published::new(
        "archival-decision.v1",
        JSON,
        "decision:7",
        b"[1,2]".to_vec(),
    );
    let shelf = Shelf::with(vec![advertisement(), decision.clone()]);
    let mut node = publishing(Some(shelf));
    let serve = served(
        &mut node,
        &peer(),
        &by_id("archival-decision.v1", "decision:7"),
    );
    assert_inline(&serve, &decision, "c-by-id");
    let digest_text = decision.descriptor.digest.as_str().to_owned();
    let serve = served(
        &mut node,
        &peer(),
        &by_id("archival-decision.v1", &digest_text),
    );
    assert_inline(&serve, &decision, "c-by-id");
    let by_digest = Frame::request_for("archival-decision.v1", JSON)
        .digest(&decision.descriptor.digest)
        .build()
        .unwrap();
    assert_eq!(
        served(&mut node, &peer(), &by_digest).descriptor(),
        &decision.descriptor
    );
}

#[test]
fn without_a_publication_both_shapes_keep_their_old_answers() {
    // Held artifacts are still served when the publisher has nothing for the request.
    let shelf = Shelf::with(vec![advertisement()]);
    let mut node = publishing(Some(shelf.clone()));
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, A0, None), at(0)),
        Operation::Ingested,
        None,
    );
    let held = served(&mut node, &peer(), &by_id(BLOB, &descriptor.artifact_id));
    assert!(!held.is_published());
    assert_eq!(held.descriptor(), &descriptor);
    assert_eq!(shelf.calls(), 1, "the publisher was asked first");

    // A well-known request of an unpublished kind, and an id nobody holds, read as before,
    // and as they read on a node without any publisher.
    let mut plain = publishing(None);
    for frame in [well_known(BLOB), by_id(BLOB, "missing:1")] {
        let with = node.send(&peer(), &frame, at(1));
        let without = plain.send(&peer(), &frame, at(1));
        assert_eq!(with.to_value(), without.to_value());
    }
    assert_answer(
        &node.send(&peer(), &well_known(BLOB), at(2)),
        Operation::Decline,
        Some(RefusalCode::OperationNotSupported),
    );
    assert_answer(
        &node.send(&peer(), &by_id(BLOB, "missing:1"), at(2)),
        Operation::Decline,
        Some(RefusalCode::NotAuthorized),
    );
}

#[test]
fn mismatched_publications_are_never_served() {
    let good = advertisement();
    let wrong_bytes = Published {
        descriptor: good.descriptor.clone(),
        bytes: Arc::from(&br#"{"schema/v":1,"advertisement/id":"ad:X"}"#[..]),
    };
    let short = Published {
        descriptor: good.descriptor.clone(),
        bytes: Arc::from(&AD_BYTES[..AD_BYTES.len() - 1]),
    };
    let other_kind = Published::new(AD, "text/plain", "ad:1", AD_BYTES.to_vec());
    let other_id = Published::new(AD, JSON, "ad:2", AD_BYTES.to_vec());
    for (liar, frame) in [
        (wrong_bytes, well_known(AD)),
        (short, well_known(AD)),
        (other_kind, well_known(AD)),
        (other_id, by_id(AD, "ad:1")),
    ] {
        let mut node = publishing(Some(Arc::new(Liar(liar.clone()))));
        let answer = node.send(&peer(), &frame, at(0));
        let expected = if frame.request().unwrap().artifact_id.is_some() {
            RefusalCode::NotAuthorized
        } else {
            RefusalCode::OperationNotSupported
        };
        assert_answer(&answer, Operation::Decline, Some(expected));
        assert!(answer.inline_bytes().is_none(), "{liar:?} leaked");
    }
}

#[test]
fn a_peer_specific_publication_reads_as_absent_to_everyone_else() {
    let shelf = Shelf::only_for(vec![advertisement()], &peer());
    let mut node = publishing(Some(shelf.clone()));
    let mut plain = publishing(None);
    for frame in [well_known(AD), by_id(AD, "ad:1")] {
        let refused = node.send(&other_peer(), &frame, at(0));
        assert_eq!(
            refused.to_value(),
            plain.send(&other_peer(), &frame, at(0)).to_value(),
            "the other peer reads what a node without the publication answers"
        );
        assert_eq!(refused.operation(), Operation::Decline);
        served(&mut node, &peer(), &frame);
    }
    let id_refusal = node.send(&other_peer(), &by_id(AD, "ad:1"), at(1));
    assert_answer(
        &id_refusal,
        Operation::Decline,
        Some(RefusalCode::NotAuthorized),
    );
    let seen = shelf.seen.lock().unwrap();
    assert!(seen.iter().any(|(who, _)| *who == other_peer().node_id()));
}

#[test]
fn publications_reach_peers_outside_the_allowlist_when_the_publisher_agrees() {
    let stranger = KeyPair::from_seed(&[9; 32]);
    let mut node = publishing(Some(Shelf::with(vec![advertisement()])));
    assert!(
        !node
            .receiver
            .config()
            .allowed_peers
            .contains(&stranger.node_id())
    );
    assert_inline(
        &served(&mut node, &stranger, &well_known(AD)),
        &advertisement(),
        "c-well-known",
    );
}

#[test]
fn publications_beyond_the_inline_ceiling_or_empty_are_handler_unavailable() {
    let big = Published::new(AD, JSON, "ad:big", vec![b' '; 2049]);
    let fits = Published::new(AD, JSON, "ad:fits", vec![b' '; 2048]);
    let empty = Published::new(AD, JSON, "ad:empty", Vec::new());
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .config(|c| c.inline_max_bytes = 2048)
        .build();
    node.receiver
        .set_publisher(Some(Shelf::with(vec![big, fits.clone(), empty])));
    for id in ["ad:big", "ad:empty"] {
        let answer = node.send(&peer(), &by_id(AD, id), at(0));
        assert_answer(
            &answer,
            Operation::Decline,
            Some(RefusalCode::HandlerUnavailable),
        );
        assert!(
            message(&answer).contains("served inline only"),
            "{:?}",
            answer.to_value()
        );
        assert_eq!(answer.correlation_id(), Some("c-by-id"));
    }
    assert_inline(
        &served(&mut node, &peer(), &by_id(AD, "ad:fits")),
        &fits,
        "c-by-id",
    );
}

#[test]
fn budgets_come_before_the_publisher() {
    let shelf = Shelf::with(vec![advertisement()]);
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .config(|c| {
            c.budgets.push(BudgetRule {
                operations: vec![Operation::Request],
                max_per_minute: Some(1),
                ..BudgetRule::default()
            })
        })
        .build();
    node.receiver.set_publisher(Some(shelf.clone()));
    served(&mut node, &peer(), &well_known(AD));
    let second = node.send(&peer(), &well_known(AD), at(11));
    assert_eq!(code(&second), Some(RefusalCode::RateLimited));
    assert_eq!(
        shelf.calls(),
        1,
        "a refused request never reaches the publisher"
    );
}
