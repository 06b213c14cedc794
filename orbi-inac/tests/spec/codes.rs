//! One named test per refusal code the receiver can emit: the code arises in the situation the
//! spec names, `retryable` and `retry/after-ms` follow the spec's table, and the refusal is
//! written to the ledger and the recent-refusals window before it is answered.
//!
//! Two codes are never emitted by a receiver: `transport-unavailable` is sender-local, and
//! `already-present` is answered with the `already-present` operation instead.

use orbi_inac::{
    Acceptance, BudgetRule, Descriptor, Frame, Handled, Refusal,
    passport::{InvitationTerms, issue_invitation},
};
use orbi_types::inac::{Operation, RefusalCode};

use crate::common::*;

/// Produces `code` and returns the node and its answer.
fn provoke(code: RefusalCode) -> (Node, Frame) {
    let p = peer();
    let blob_a0 = || inline_push(BLOB, A0, None);
    match code {
        RefusalCode::KindNotSupported => {
            let mut node = standard();
            let answer = node.send(&p, &inline_push("vendor.unknown.v1", A0, None), at(0));
            (node, answer)
        }
        RefusalCode::KindConflict => {
            let mut node = Setup::new()
                .allow(&p.node_id())
                .keep(BLOB, None)
                .keep(BLOB, None)
                .degraded()
                .build();
            let answer = node.send(&p, &blob_a0(), at(0));
            (node, answer)
        }
        RefusalCode::NotAuthorized => {
            let mut node = Setup::new().keep(BLOB, None).build();
            let answer = node.send(&p, &blob_a0(), at(0));
            (node, answer)
        }
        RefusalCode::InvitationUnknown => {
            let mut node = invitation_node();
            let terms = InvitationTerms {
                peer: p.node_id(),
                descriptor: Descriptor::of_bytes(BLOB, JSON, A0),
                issued_at: T0 as i64,
                ttl_seconds: 60,
                serial: 7,
            };
            let foreign = issue_invitation(&other_peer(), &terms).unwrap();
            let answer = node.send(&p, &push_under(A0, BLOB, "k", foreign.as_object()), at(1));
            (node, answer)
        }
        RefusalCode::InvitationExpired => {
            let mut node = invitation_node();
            let invitation = invite(&mut node, &p, &Descriptor::of_bytes(BLOB, JSON, A0), 0);
            let answer = node.send(&p, &push_under(A0, BLOB, "k", &invitation), at(7200));
            (node, answer)
        }
        RefusalCode::InvitationRevoked => {
            let mut node = invitation_node();
            let invitation = invite(&mut node, &p, &Descriptor::of_bytes(BLOB, JSON, A0), 0);
            node.receiver
                .revoke_passport(invitation["passport_id"].as_str().unwrap(), at(1))
                .unwrap();
            let answer = node.send(&p, &push_under(A0, BLOB, "k", &invitation), at(2));
            (node, answer)
        }
        RefusalCode::InvitationScopeMismatch => {
            let mut node = invitation_node();
            let invitation = invite(
                &mut node,
                &other_peer(),
                &Descriptor::of_bytes(BLOB, JSON, A0),
                0,
            );
            let answer = node.send(&p, &push_under(A0, BLOB, "k", &invitation), at(1));
            (node, answer)
        }
        RefusalCode::PayloadTooLarge => {
            let mut node = standard();
            let answer = node.send(&p, &inline_push(BLOB, &[0; 65_537], None), at(0));
            (node, answer)
        }
        RefusalCode::DigestMismatch => {
            let mut node = standard();
            let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
            let wrong = Frame::push_inline(&descriptor, b"[]").build().unwrap();
            let answer = node.send(&p, &wrong, at(0));
            (node, answer)
        }
        RefusalCode::Malformed => {
            let mut node = standard();
            let answer = answer(node.receiver.handle_bytes(
                &p.node_id(),
                b"\x00\xff not json",
                at(0),
            ));
            (node, answer)
        }
        RefusalCode::HandlerUnavailable => {
            let down = Scripted::new(Acceptance::Refuse(Refusal::handler_unavailable(
                "agora is down",
            )));
            let mut node = Setup::new()
                .allow(&p.node_id())
                .accept("agora-record.v1", None, down)
                .build();
            let answer = node.send(&p, &inline_push("agora-record.v1", A0, None), at(0));
            (node, answer)
        }
        RefusalCode::OperationNotSupported => {
            let mut node = standard();
            let filtered = Frame::request_for(BLOB, JSON).build().unwrap();
            let answer = answer(node.receiver.handle(&p.node_id(), &filtered, at(0)));
            (node, answer)
        }
        RefusalCode::PolicyDenied => {
            let rule = BudgetRule {
                max_per_minute: Some(0),
                ..BudgetRule::default()
            };
            let mut node = Setup::new()
                .allow(&p.node_id())
                .keep(BLOB, None)
                .config(|c| c.budgets = vec![rule])
                .build();
            let answer = node.send(&p, &blob_a0(), at(0));
            (node, answer)
        }
        RefusalCode::RateLimited => {
            let rule = BudgetRule {
                max_per_minute: Some(1),
                ..BudgetRule::default()
            };
            let mut node = Setup::new()
                .allow(&p.node_id())
                .keep(BLOB, None)
                .config(|c| c.budgets = vec![rule])
                .build();
            // The offer spends the minute's budget (and stores nothing).
            let offer = Frame::offer(&Descriptor::of_bytes(BLOB, JSON, b"[]"))
                .build()
                .unwrap();
            assert_answer(&node.send(&p, &offer, at_ms(0)), Operation::Defer, None);
            let answer = node.send(&p, &blob_a0(), at_ms(15_000));
            (node, answer)
        }
        RefusalCode::QuotaExceeded => {
            let mut node = Setup::new()
                .allow(&p.node_id())
                .keep(BLOB, None)
                .config(|c| c.pending_offers_per_peer = 1)
                .build();
            let offer = |bytes: &[u8]| {
                Frame::offer(&Descriptor::of_bytes(BLOB, JSON, bytes))
                    .build()
                    .unwrap()
            };
            node.send(&p, &offer(A0), at(0));
            let answer = node.send(&p, &offer(b"[]"), at(0));
            (node, answer)
        }
        RefusalCode::TransportUnavailable | RefusalCode::AlreadyPresent => {
            unreachable!("{code} is never emitted by a receiver")
        }
    }
}

#[track_caller]
fn check(code: RefusalCode) -> Frame {
    let (node, answer) = provoke(code);
    let response = answer.response().unwrap();
    assert_eq!(response.refusal_code, Some(code), "{:?}", answer.to_value());
    assert_eq!(response.retryable, Some(orbi_inac::is_retryable(code)));
    assert!(
        matches!(
            answer.operation(),
            Operation::Refused | Operation::Decline | Operation::Defer
        ),
        "{:?}",
        answer.operation()
    );
    let logged = node.receiver.ledger().recent_transfers(1).unwrap();
    assert_eq!(
        logged[0].refusal_code,
        Some(code),
        "logged before answering"
    );
    assert_eq!(logged[0].answer, answer.operation());
    assert_eq!(
        node.receiver.recent_refusals().last().map(|n| n.code),
        Some(code)
    );
    assert_eq!(node.stored_count(), 0, "a refusal stores nothing");
    answer
}

/// One test per code whose scenario needs no extra assertion.
macro_rules! code_tests {
    ($($name:ident => $code:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(RefusalCode::$code);
            }
        )+
    };
}

code_tests! {
    kind_not_supported => KindNotSupported,
    kind_conflict => KindConflict,
    not_authorized => NotAuthorized,
    invitation_unknown => InvitationUnknown,
    invitation_expired => InvitationExpired,
    invitation_revoked => InvitationRevoked,
    invitation_scope_mismatch => InvitationScopeMismatch,
    payload_too_large => PayloadTooLarge,
    digest_mismatch => DigestMismatch,
    handler_unavailable => HandlerUnavailable,
    policy_denied => PolicyDenied,
}

#[test]
fn malformed() {
    let answer = check(RefusalCode::Malformed);
    assert_eq!(answer.operation(), Operation::Refused);
}

#[test]
fn operation_not_supported() {
    let answer = check(RefusalCode::OperationNotSupported);
    assert_eq!(answer.operation(), Operation::Decline);
}

#[test]
fn rate_limited() {
    let answer = check(RefusalCode::RateLimited);
    assert_eq!(answer.response().unwrap().retry_after_ms, Some(45_000));
}

#[test]
fn quota_exceeded() {
    let answer = check(RefusalCode::QuotaExceeded);
    assert_eq!(answer.operation(), Operation::Defer);
    assert_eq!(answer.response().unwrap().retry_after_ms, Some(60_000));
}

#[test]
fn every_code_but_the_two_sender_side_ones_is_emitted() {
    let emitted: Vec<RefusalCode> = RefusalCode::ALL
        .iter()
        .copied()
        .filter(|code| {
            !matches!(
                code,
                RefusalCode::TransportUnavailable | RefusalCode::AlreadyPresent
            )
        })
        .collect();
    assert_eq!(emitted.len(), 15);
    for code in emitted {
        check(code);
    }
}

#[test]
fn the_recent_refusal_window_keeps_sixteen() {
    let mut node = Setup::new().keep(BLOB, None).build();
    for n in 0..20u8 {
        let answer = node.send(&peer(), &inline_push(BLOB, &[n], None), at(u64::from(n)));
        assert_refused(&answer, RefusalCode::NotAuthorized);
    }
    let window: Vec<u64> = node.receiver.recent_refusals().map(|n| n.at_ms).collect();
    assert_eq!(window.len(), orbi_inac::RECENT_REFUSALS);
    assert_eq!(window[0], (T0 + 4) * 1000);
    let stats = node.receiver.stats();
    assert_eq!((stats.frames, stats.refused, stats.ingested), (20, 20, 0));
    assert!(matches!(
        node.receiver.handle(
            &peer().node_id(),
            &Frame::answer(None, &orbi_inac::Verdict::Ingested),
            at(30)
        ),
        Handled::NoAnswer
    ));
}
