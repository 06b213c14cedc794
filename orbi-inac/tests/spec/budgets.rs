//! Spec §9.7: budgets, offers and the invitation flow, idempotency, response conventions and
//! outbound allows.

use orbi_inac::{
    Acceptance, BudgetRule, Descriptor, Frame, OutboundAllow, OutboundAllows, Refusal,
    ledger::OfferState,
};
use orbi_types::inac::{Operation, RefusalCode};

use crate::common::*;

fn budgeted(rule: BudgetRule) -> Node {
    Setup::new()
        .allow(&peer().node_id())
        .allow(&other_peer().node_id())
        .keep(BLOB, None)
        .config(|c| c.budgets = vec![rule])
        .build()
}

fn offer(bytes: &[u8]) -> Frame {
    Frame::offer(&Descriptor::of_bytes(BLOB, JSON, bytes))
        .correlation_id("c-offer")
        .build()
        .unwrap()
}

#[test]
fn a_zero_rate_budget_is_policy_denied() {
    let mut node = budgeted(BudgetRule {
        operations: vec![Operation::Push],
        max_per_minute: Some(0),
        ..BudgetRule::default()
    });
    let answer = node.send(&peer(), &inline_push(BLOB, A0, None), at(0));
    assert_refused(&answer, RefusalCode::PolicyDenied);
    // The rule names pushes only: offers pass it.
    assert_answer(
        &node.send(&peer(), &offer(A0), at(0)),
        Operation::Defer,
        None,
    );
}

#[test]
fn the_third_push_in_a_minute_is_rate_limited() {
    let mut node = budgeted(BudgetRule {
        max_per_minute: Some(2),
        ..BudgetRule::default()
    });
    let push = |n: u8| inline_push(BLOB, &[b'a' + n], None);
    assert_answer(
        &node.send(&peer(), &push(0), at_ms(0)),
        Operation::Ingested,
        None,
    );
    assert_answer(
        &node.send(&peer(), &push(1), at_ms(10_000)),
        Operation::Ingested,
        None,
    );
    let third = node.send(&peer(), &push(2), at_ms(20_000));
    assert_refused(&third, RefusalCode::RateLimited);
    let response = third.response().unwrap();
    assert_eq!(response.retryable, Some(true));
    assert_eq!(
        response.retry_after_ms,
        Some(40_000),
        "until the first push leaves the window"
    );
    assert_answer(
        &node.send(&peer(), &push(2), at_ms(60_000)),
        Operation::Ingested,
        None,
    );
    // An empty remote_node_ids list matches every peer, each counted on its own.
    assert_answer(
        &node.send(&other_peer(), &push(3), at_ms(60_000)),
        Operation::Ingested,
        None,
    );
}

#[test]
fn a_budget_size_limit_is_payload_too_large() {
    let mut node = budgeted(BudgetRule {
        max_size_bytes: Some(10),
        ..BudgetRule::default()
    });
    let answer = node.send(&peer(), &inline_push(BLOB, &[b'x'; 100], None), at(0));
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, &[b'x'; 10], None), at(0)),
        Operation::Ingested,
        None,
    );
}

#[test]
fn budget_lists_narrow_by_peer_schema_and_media_type() {
    let mut node = budgeted(BudgetRule {
        remote_node_ids: vec![other_peer().node_id()],
        artifact_schemas: vec![BLOB.into()],
        content_types: vec![JSON.into()],
        max_per_minute: Some(0),
        ..BudgetRule::default()
    });
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, A0, None), at(0)),
        Operation::Ingested,
        None,
    );
    let answer = node.send(&other_peer(), &inline_push(BLOB, b"[]", None), at(0));
    assert_refused(&answer, RefusalCode::PolicyDenied);
}

#[test]
fn the_129th_pending_offer_is_deferred_with_quota_exceeded() {
    let mut node = standard();
    for n in 0..128u32 {
        let answer = node.send(&peer(), &offer(&n.to_be_bytes()), at(0));
        assert_answer(&answer, Operation::Defer, None);
    }
    let answer = node.send(&peer(), &offer(b"one more"), at(0));
    assert_answer(&answer, Operation::Defer, Some(RefusalCode::QuotaExceeded));
    let response = answer.response().unwrap();
    assert_eq!(
        (response.retryable, response.retry_after_ms),
        (Some(true), Some(60_000))
    );
    assert_eq!(
        node.receiver.offers().unwrap().len(),
        128,
        "no record over the cap"
    );
    // Re-offering a pending artifact creates nothing new; other peers have their own cap.
    assert_answer(
        &node.send(&peer(), &offer(&0u32.to_be_bytes()), at(1)),
        Operation::Defer,
        None,
    );
    let mut node = Setup::new()
        .keep(BLOB, None)
        .config(|c| c.open_offer_intake = true)
        .build();
    for n in 0..128u32 {
        node.send(&peer(), &offer(&n.to_be_bytes()), at(0));
    }
    assert_answer(
        &node.send(&other_peer(), &offer(b"q"), at(0)),
        Operation::Defer,
        None,
    );
}

#[test]
fn open_intake_is_bounded_across_peers_too() {
    let mut node = Setup::new()
        .keep(BLOB, None)
        .config(|c| {
            c.open_offer_intake = true;
            c.pending_offers_total = 3;
        })
        .build();
    for seed in 10..13u8 {
        let stranger = orbi_types::KeyPair::from_seed(&[seed; 32]);
        assert_answer(
            &node.send(&stranger, &offer(&[seed]), at(0)),
            Operation::Defer,
            None,
        );
    }
    let late = orbi_types::KeyPair::from_seed(&[13; 32]);
    let answer = node.send(&late, &offer(&[13]), at(0));
    assert_answer(&answer, Operation::Defer, Some(RefusalCode::QuotaExceeded));
    assert_eq!(node.receiver.offers().unwrap().len(), 3);
}

#[test]
fn operator_accept_then_reoffer_returns_one_invitation() {
    let mut node = standard();
    assert_answer(
        &node.send(&peer(), &offer(A0), at(0)),
        Operation::Defer,
        None,
    );
    let pending = node.receiver.offers().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, OfferState::Pending);
    assert_eq!(pending[0].correlation_id.as_deref(), Some("c-offer"));
    node.receiver.accept_offer(pending[0].id, at(5)).unwrap();
    let accepted = node.send(&peer(), &offer(A0), at(10));
    assert_answer(&accepted, Operation::Accept, None);
    assert_eq!(accepted.correlation_id(), Some("c-offer"));
    let authorization = accepted.authorization().unwrap();
    assert_eq!(authorization.mode.as_str(), "invitation-passport");
    let passport = &authorization.passport;
    assert_eq!(passport["capability_id"], "inac.invitation");
    assert_eq!(passport["node_id"], peer().node_id().as_str());
    assert_eq!(
        passport["issuer/node_id"],
        receiver_key().node_id().as_str()
    );
    // Pressing Accept again issues nothing new; the next offer gets the same passport.
    node.receiver.accept_offer(pending[0].id, at(20)).unwrap();
    let again = node.send(&peer(), &offer(A0), at(30));
    assert_eq!(again.authorization().unwrap().passport, *passport);
    // The answer re-encodes as a valid frame.
    assert_eq!(Frame::decode(&accepted.encode()).unwrap(), accepted);
}

#[test]
fn operator_reject_then_reoffer_is_policy_denied() {
    let mut node = standard();
    node.send(&peer(), &offer(A0), at(0));
    let id = node.receiver.offers().unwrap()[0].id;
    node.receiver.reject_offer(id, at(1)).unwrap();
    let answer = node.send(&peer(), &offer(A0), at(2));
    assert_answer(&answer, Operation::Decline, Some(RefusalCode::PolicyDenied));
    assert!(
        node.receiver.accept_offer(id, at(3)).is_err(),
        "a decision stands"
    );
}

#[test]
fn an_offer_of_a_held_artifact_is_already_present() {
    let mut node = standard();
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, A0, None), at(0)),
        Operation::Ingested,
        None,
    );
    assert_answer(
        &node.send(&peer(), &offer(A0), at(1)),
        Operation::AlreadyPresent,
        None,
    );
    assert!(node.receiver.offers().unwrap().is_empty());
}

/// An offer carrying its bytes (the schema allows one location of any kind on an offer).
fn offer_carrying(text: &str, size_bytes: u64) -> serde_json::Value {
    serde_json::json!({
        "schema": "inac-control.v1", "operation": "offer", "correlation/id": "c-offer",
        "artifact": {"schema": BLOB, "content/type": JSON, "artifact/id": A0_DIGEST,
                     "digest": A0_DIGEST, "size/bytes": size_bytes, "bytes/base64url": text}
    })
}

#[test]
fn an_offer_whose_bytes_contradict_its_descriptor_is_declined_and_not_held() {
    let mut node = standard();
    // "e30" is A0 ("{}", 2 bytes): declared as 3 bytes, then with another digest's bytes.
    for (text, size, says) in [
        ("e30", 3, "decodes to 2 bytes but size/bytes declares 3"),
        ("W10", 2, "not the declared"),
    ] {
        let answer = node.send_value(&peer(), &offer_carrying(text, size), at(0));
        assert_answer(
            &answer,
            Operation::Decline,
            Some(RefusalCode::DigestMismatch),
        );
        assert!(message(&answer).contains(says), "{}", message(&answer));
    }
    // Bytes that do not decode (a base64url text of 4n+1 characters): a malformed frame.
    let answer = node.send_value(&peer(), &offer_carrying("e30ab", 2), at(0));
    assert_answer(&answer, Operation::Decline, Some(RefusalCode::Malformed));
    assert!(node.receiver.offers().unwrap().is_empty());
    // The same offer with its own bytes awaits the operator.
    let answer = node.send_value(&peer(), &offer_carrying("e30", 2), at(0));
    assert_answer(&answer, Operation::Defer, None);
    assert_eq!(node.receiver.offers().unwrap().len(), 1);
}

#[test]
fn an_invitation_that_lapsed_unused_needs_a_new_decision() {
    let mut node = standard();
    node.send(&peer(), &offer(A0), at(0));
    let id = node.receiver.offers().unwrap()[0].id;
    node.receiver.accept_offer(id, at(0)).unwrap();
    assert_answer(
        &node.send(&peer(), &offer(A0), at(1)),
        Operation::Accept,
        None,
    );
    assert_answer(
        &node.send(&peer(), &offer(A0), at(3601)),
        Operation::Defer,
        None,
    );
    let offers = node.receiver.offers().unwrap();
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[1].state, OfferState::Pending);
}

#[test]
fn the_same_key_with_another_digest_is_malformed() {
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .allow(&other_peer().node_id())
        .keep(BLOB, None)
        .build();
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, A0, Some("k-1")), at(0)),
        Operation::Ingested,
        None,
    );
    let answer = node.send(&peer(), &inline_push(BLOB, b"[]", Some("k-1")), at(1));
    assert_refused(&answer, RefusalCode::Malformed);
    assert_eq!(node.stored_count(), 1);
    // The original outcome stays recorded under the key.
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, A0, Some("k-1")), at(2)),
        Operation::Ingested,
        None,
    );
    // Keys are scoped by peer: Q's "k-1" is its own.
    let answer = node.send(&other_peer(), &inline_push(BLOB, b"[]", Some("k-1")), at(3));
    assert_answer(&answer, Operation::Ingested, None);
}

#[test]
fn a_repeated_key_after_handler_unavailable_is_evaluated_again() {
    let acceptor = Scripted::new(Acceptance::Refuse(Refusal::handler_unavailable("down")));
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(BLOB, None, acceptor.clone())
        .build();
    let push = inline_push(BLOB, A0, Some("k-1"));
    let first = node.send(&peer(), &push, at(0));
    assert_refused(&first, RefusalCode::HandlerUnavailable);
    acceptor.set(Acceptance::Keep);
    assert_answer(&node.send(&peer(), &push, at(1)), Operation::Ingested, None);
    assert_answer(&node.send(&peer(), &push, at(2)), Operation::Ingested, None);
    assert_eq!(
        acceptor.calls(),
        2,
        "the terminal outcome is replayed without the acceptor"
    );
}

#[test]
fn a_terminal_refusal_is_replayed_for_the_same_key() {
    let acceptor = Scripted::new(Acceptance::Refuse(Refusal::new(
        RefusalCode::PolicyDenied,
        "no",
    )));
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .accept(BLOB, None, acceptor.clone())
        .build();
    let push = inline_push(BLOB, A0, Some("k-1"));
    for second in 0..3 {
        assert_refused(
            &node.send(&peer(), &push, at(second)),
            RefusalCode::PolicyDenied,
        );
    }
    assert_eq!(acceptor.calls(), 1);
}

/// A refusal at the header is not recorded under the key: neither the retry it asks for
/// (stream mode after an inline `payload-too-large`) nor the key's earlier outcome is
/// disturbed by it.
#[test]
fn a_header_refusal_leaves_the_keys_record_and_its_own_retry_alone() {
    let mut node = standard_with(|c| c.inline_max_bytes = 4);
    assert_answer(
        &node.send(&peer(), &inline_push(BLOB, A0, Some("k-1")), at(0)),
        Operation::Ingested,
        None,
    );
    // The kind is checked before the key (spec §6), and that refusal is not recorded.
    let other_kind = inline_push("vendor.unknown.v1", b"[]", Some("k-1"));
    assert_refused(
        &node.send(&peer(), &other_kind, at(1)),
        RefusalCode::KindNotSupported,
    );
    let large = b"too large inline";
    assert_refused(
        &node.send(&peer(), &inline_push(BLOB, large, Some("k-2")), at(2)),
        RefusalCode::PayloadTooLarge,
    );

    let retried = node.send(&peer(), &inline_push(BLOB, A0, Some("k-1")), at(3));
    let streamed = Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, large), "4")
        .idempotency_key("k-2")
        .build()
        .unwrap();
    let stream_retry = node.stream(&peer(), &streamed, large, at(4));

    assert_answer(&retried, Operation::Ingested, None);
    assert_answer(&stream_retry, Operation::Ingested, None);
}

/// A node that may not push here (not allowlisted, no passport) writes nothing under its
/// keys: unknown nodes cannot grow the ledger, and a later retry is judged afresh.
#[test]
fn an_unknown_nodes_refusals_are_not_recorded_under_its_key() {
    let mut node = standard();
    let push = inline_push(BLOB, A0, Some("k-2"));
    assert_refused(
        &node.send(&other_peer(), &push, at(0)),
        RefusalCode::NotAuthorized,
    );
    let record = node
        .receiver
        .ledger()
        .idempotency(&other_peer().node_id(), "k-2");
    assert!(record.unwrap().is_none());
}

#[test]
fn responses_echo_the_correlation_id_and_never_the_meta() {
    let mut node = standard();
    let push = Frame::push_inline(&Descriptor::of_bytes(BLOB, JSON, A0), A0)
        .correlation_id("inac-correlation:meta")
        .meta("trace", "secret-ish")
        .build()
        .unwrap();
    let answer = node.send(&peer(), &push, at(0));
    assert_eq!(answer.correlation_id(), Some("inac-correlation:meta"));
    assert!(answer.meta().is_none());
    assert!(
        !String::from_utf8(answer.encode())
            .unwrap()
            .contains("secret-ish")
    );
    let refused = node.send(&other_peer(), &push, at(0));
    assert_eq!(refused.correlation_id(), Some("inac-correlation:meta"));
    assert!(refused.meta().is_none());
}

#[test]
fn an_outbound_allow_with_no_operations_grants_nothing() {
    let allows = OutboundAllows {
        entries: vec![OutboundAllow {
            component_id: "backup".into(),
            operations: vec![],
            schemas: vec![BLOB.into()],
            max_bytes: None,
        }],
    };
    for operation in Operation::ALL {
        assert!(!allows.permits("backup", *operation, BLOB, 1));
    }
    assert!(!OutboundAllows::default().permits("backup", Operation::Push, BLOB, 1));
}
