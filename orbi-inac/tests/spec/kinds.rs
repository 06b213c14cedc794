//! Spec §9.5: kind dispatch (the Agora and memarium-blob baseline acceptors are out of scope;
//! their generic parts are exercised with registered acceptors).

use orbi_inac::{Acceptance, Descriptor, Frame, KindRegistry, Refusal};
use orbi_types::inac::{Operation, RefusalCode};

use crate::common::*;

const UNKNOWN: &str = "vendor.unknown.v1";
const VENDOR: &str = "vendor.x.v1";

#[test]
fn an_unknown_kind_is_refused_and_nothing_is_stored() {
    let mut node = standard();
    let answer = node.send(&peer(), &inline_push(UNKNOWN, A0, None), at(0));
    // The shape of the upstream `refused` example.
    assert_refused(&answer, RefusalCode::KindNotSupported);
    let response = answer.response().unwrap();
    assert_eq!(response.retryable, Some(false));
    assert!(message(&answer).contains(UNKNOWN));
    assert_eq!(answer.correlation_id(), Some("inac-correlation:test"));
    assert_eq!(node.stored_count(), 0);
    assert_eq!(node.store.staged_count(), 0);
}

#[test]
fn an_offer_of_an_unknown_kind_is_declined() {
    let mut node = standard();
    let offer = Frame::offer(&Descriptor::of_bytes(UNKNOWN, JSON, A0))
        .build()
        .unwrap();
    let answer = node.send(&peer(), &offer, at(0));
    assert_answer(
        &answer,
        Operation::Decline,
        Some(RefusalCode::KindNotSupported),
    );
    assert!(
        node.receiver.offers().unwrap().is_empty(),
        "no pending offer for an unknown kind"
    );
}

#[test]
fn two_exact_acceptors_are_a_readiness_error_and_a_forced_run_refuses_kind_conflict() {
    let error = KindRegistry::builder()
        .keep(VENDOR, Some(JSON))
        .keep(VENDOR, Some(JSON))
        .build()
        .unwrap_err();
    assert_eq!(error.keys().len(), 1);
    assert!(error.to_string().contains("vendor.x.v1=application/json"));
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .keep(VENDOR, Some(JSON))
        .keep(VENDOR, Some(JSON))
        .keep(BLOB, None)
        .degraded()
        .build();
    let answer = node.send(&peer(), &inline_push(VENDOR, A0, None), at(0));
    assert_refused(&answer, RefusalCode::KindConflict);
    assert_eq!(node.stored_count(), 0);
    // Unconflicted kinds still work.
    let answer = node.send(&peer(), &inline_push(BLOB, A0, None), at(0));
    assert_answer(&answer, Operation::Ingested, None);
}

#[test]
fn exact_acceptor_wins_over_the_wildcard() {
    let exact = Scripted::new(Acceptance::Taken);
    let wildcard = Scripted::new(Acceptance::Taken);
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(VENDOR, Some(JSON), exact.clone())
        .accept(VENDOR, None, wildcard.clone())
        .build();
    let json = Frame::push_inline(&Descriptor::of_bytes(VENDOR, JSON, A0), A0)
        .build()
        .unwrap();
    assert_answer(&node.send(&peer(), &json, at(0)), Operation::Ingested, None);
    assert_eq!((exact.calls(), wildcard.calls()), (1, 0));
    let text = Frame::push_inline(&Descriptor::of_bytes(VENDOR, "text/plain", b"hi"), b"hi")
        .build()
        .unwrap();
    assert_answer(&node.send(&peer(), &text, at(0)), Operation::Ingested, None);
    assert_eq!((exact.calls(), wildcard.calls()), (1, 1));
    // `Taken` means the acceptor keeps the bytes, not this node's store.
    assert_eq!(node.stored_count(), 0);
}

#[test]
fn bytes_naming_another_schema_are_kind_conflict() {
    let acceptor = Scripted::new(Acceptance::Keep);
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(BLOB, None, acceptor.clone())
        .build();
    let record = br#"{"schema":"agora-record.v1","record/id":"sha256:x"}"#;
    let answer = node.send(&peer(), &inline_push(BLOB, record, None), at(0));
    assert_refused(&answer, RefusalCode::KindConflict);
    assert_eq!(acceptor.calls(), 0);
    // The same check runs on streamed bodies.
    let header = Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, record), "4")
        .build()
        .unwrap();
    let answer = node.stream(&peer(), &header, record, at(0));
    assert_refused(&answer, RefusalCode::KindConflict);
    // A body that names its own schema, or none, passes.
    let own = br#"{"schema":"memarium-blob.v1"}"#;
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, own, None), at(0)),
        Operation::Ingested,
        None,
    );
    assert_eq!(acceptor.calls(), 1);
}

#[test]
fn an_acceptor_that_is_down_answers_handler_unavailable_retryably() {
    let acceptor = Scripted::new(Acceptance::Refuse(
        Refusal::handler_unavailable("no local agora").retry_after_ms(5_000),
    ));
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept("agora-record.v1", None, acceptor)
        .build();
    let answer = node.send(&peer(), &inline_push("agora-record.v1", A0, None), at(0));
    assert_refused(&answer, RefusalCode::HandlerUnavailable);
    let response = answer.response().unwrap();
    assert_eq!(response.retryable, Some(true));
    assert_eq!(response.retry_after_ms, Some(5_000));
}

#[test]
fn an_ingested_artifact_pushed_again_is_already_present() {
    let acceptor = Scripted::new(Acceptance::Keep);
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(BLOB, None, acceptor.clone())
        .build();
    let blob = br#"{"schema":"memarium-blob.v1","blob/id":"sha256:x"}"#;
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, blob, Some("k-1")), at(0)),
        Operation::Ingested,
        None,
    );
    // A new transfer (another key) of the same content: dedup, no second acceptor call.
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, blob, Some("k-2")), at(1)),
        Operation::AlreadyPresent,
        None,
    );
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, blob, None), at(2)),
        Operation::AlreadyPresent,
        None,
    );
    assert_eq!(acceptor.calls(), 1);
    assert_eq!(node.stored_count(), 1);
}

#[test]
fn an_acceptor_that_already_holds_the_artifact_answers_already_present() {
    let acceptor = Scripted::new(Acceptance::AlreadyPresent);
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(VENDOR, None, acceptor)
        .build();
    let answer = node.send(&peer(), &inline_push(VENDOR, A0, None), at(0));
    assert_answer(&answer, Operation::AlreadyPresent, None);
}

#[test]
fn an_acceptor_policy_refusal_is_passed_through() {
    let acceptor = Scripted::new(Acceptance::Refuse(Refusal::new(
        RefusalCode::PolicyDenied,
        "plaintext custody is refused",
    )));
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(BLOB, None, acceptor)
        .build();
    let answer = node.send(&peer(), &inline_push(BLOB, A0, None), at(0));
    assert_refused(&answer, RefusalCode::PolicyDenied);
    assert_eq!(node.stored_count(), 0);
}

#[test]
fn only_a_contradicting_schema_member_of_a_json_object_is_a_kind_conflict() {
    let mut node = standard();
    let push =
        |node: &mut Node, body: &[u8]| node.send(&peer(), &inline_push(BLOB, body, None), at(0));
    // Arrays, scalars and objects without a string schema are the acceptor's business.
    for body in [
        &br#"["agora-record.v1"]"#[..],
        br#""agora-record.v1""#,
        br#"{"schema":1}"#,
        b"not json",
    ] {
        assert_answer(&push(&mut node, body), Operation::Ingested, None);
    }
    let twice = br#"{"schema":"memarium-blob.v1","schema":"agora-record.v1"}"#;
    assert_refused(&push(&mut node, twice), RefusalCode::KindConflict);
    // Not probed: other media types, and bodies over the probe limit.
    let record = br#"{"schema":"agora-record.v1"}"#;
    let text = Frame::push_inline(&Descriptor::of_bytes(BLOB, "text/plain", record), record)
        .build()
        .unwrap();
    assert_answer(&node.send(&peer(), &text, at(0)), Operation::Ingested, None);
    let mut unprobed = standard_with(|c| c.kind_probe_max_bytes = 0);
    assert_answer(&push(&mut unprobed, record), Operation::Ingested, None);
}

/// [`Scripted`] with a size limit.
struct Limited(Scripted, u64);

impl orbi_inac::Acceptor for Limited {
    fn accept(&self, delivery: &orbi_inac::Delivery<'_>) -> Acceptance {
        self.0.accept(delivery)
    }

    fn max_size_bytes(&self) -> Option<u64> {
        Some(self.1)
    }
}

#[test]
fn an_acceptors_size_limit_refuses_with_the_header_before_any_body() {
    let scripted = Scripted::new(Acceptance::Keep);
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(VENDOR, None, Limited(scripted.clone(), 10))
        .build();
    let big = [b'x'; 100];
    let header = Frame::push_stream(&Descriptor::of_bytes(VENDOR, JSON, &big), "4")
        .build()
        .unwrap();
    // Answered at once: no body is asked for.
    let answer = answer(node.receiver.handle(&peer().node_id(), &header, at(0)));
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    assert!(message(&answer).contains("at most 10 bytes"));
    let offer = Frame::offer(&Descriptor::of_bytes(VENDOR, JSON, &big))
        .build()
        .unwrap();
    assert_answer(
        &node.send(&peer(), &offer, at(0)),
        Operation::Decline,
        Some(RefusalCode::PayloadTooLarge),
    );
    assert_refused(
        &node.send(
            &peer(),
            &inline_push(VENDOR, &[b'x'; 11], Some("k-11")),
            at(0),
        ),
        RefusalCode::PayloadTooLarge,
    );
    assert_eq!(
        scripted.calls(),
        0,
        "the acceptor never sees what is too large"
    );
    assert_answer(
        &node.send(
            &peer(),
            &inline_push(VENDOR, &[b'x'; 10], Some("k-10")),
            at(0),
        ),
        Operation::Ingested,
        None,
    );
    assert_eq!(scripted.calls(), 1);
}
