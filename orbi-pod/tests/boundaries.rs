//! Admission checks, lifecycle timers and the SQLite read model at their boundaries:
//! behaviours a hand mutation audit found no test for. Each test fails when its decision
//! point is mutated (a comparison flipped, a check dropped) and passes on the code as it is.

mod common;

use common::*;
use orbi_pod::{AttachmentState, Check, HostPolicy, LifecycleState, RejectionCode, Rule, Session};
use orbi_types::pod::{DetachReason, RecoveryMode, SessionState};
use serde_json::json;

/// RECOVER_NOW plus the default 10-minute recovery window.
const GRANT_EXPIRES: &str = "2026-03-28T20:35:10Z";

/// V5: an attachment for another serving node is refused even when its bind speaks through
/// that node (the via check alone would pass).
#[test]
fn an_attachment_for_another_node_through_that_node_is_wrong_node() {
    let other_node = format!("node:did:key:{K3}");
    let mut bind = b1();
    bind["via/node-id"] = json!(other_node);
    let bind = resign(bind, &k2());
    let mut elsewhere = attachment_with("attach:elsewhere", CLIENT, "2026-03-28T19:42:00Z", bind);
    elsewhere["serving-node/id"] = json!(other_node);
    let admission = admit(&mut engine(), &elsewhere, SESS1, ATTACH_NOW);
    assert_rejected(&admission, RejectionCode::WrongNode);
    assert_eq!(admission.rejection().unwrap().check, Check::V5);
}

/// V0: "at most 64 KiB" admits exactly 65 536 bytes to the later checks.
#[test]
fn v0_is_inclusive_at_64_kib() {
    const LIMIT: usize = 64 * 1024;
    let sized = |len: usize| {
        let mut value = a1();
        value["policy_annotations"] = json!({"pad": ""});
        let pad = len - bytes(&value).len();
        value["policy_annotations"] = json!({"pad": "x".repeat(pad)});
        let encoded = bytes(&value);
        assert_eq!(encoded.len(), len);
        encoded
    };
    let mut engine = engine();
    let at_limit = engine
        .admit(&sized(LIMIT), SESS1, instant(ATTACH_NOW))
        .unwrap();
    assert_ne!(
        at_limit.rejection().map(|r| r.check),
        Some(Check::V0),
        "{at_limit:#?}"
    );
    let over = engine
        .admit(&sized(LIMIT + 1), SESS1, instant(ATTACH_NOW))
        .unwrap();
    assert_eq!(over.rejection().map(|r| r.check), Some(Check::V0));
}

/// V9: a `pod-user:` id the tenancy table maps to another participant is unknown.
#[test]
fn a_pod_user_of_another_participant_is_refused() {
    let hosted = format!("pod-user:did:key:{K3}");
    let mut policy = HostPolicy::default();
    policy.tenancy.insert(
        hosted.parse().unwrap(),
        other_participant().participant_id(),
    );
    let mut attachment = a1();
    attachment["pod-user/id"] = json!(hosted);
    let admission = admit(&mut engine_with(policy), &attachment, SESS1, ATTACH_NOW);
    assert_rejected(&admission, RejectionCode::TenancyUnknown);
}

/// V10: `migration/allowed?` must match the host's offer as well as `export/capable?`.
#[test]
fn a_migration_flag_the_host_does_not_offer_is_a_policy_mismatch() {
    let mut attachment = a1();
    attachment["migration/allowed?"] = json!(false);
    let admission = admit(&mut engine(), &attachment, SESS1, ATTACH_NOW);
    assert_rejected(&admission, RejectionCode::PolicyMismatch);
    assert_eq!(admission.rejection().unwrap().check, Check::V10);
}

/// An engine with A1 attached, D1 admitted and a grant open from RECOVER_NOW on SESS3.
fn granted_engine() -> orbi_pod::PodEngine<orbi_pod::MemoryStore> {
    let mut engine = engine();
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    assert_admitted(
        &admit(&mut engine, &d1(), SESS1, DETACH_NOW),
        LifecycleState::Detached,
    );
    engine.open_session(SESS3, Session::default());
    assert_admitted(
        &admit(
            &mut engine,
            &reattach_after_d1("recover:1"),
            SESS3,
            RECOVER_NOW,
        ),
        LifecycleState::RecoveryGranted,
    );
    engine
}

/// T17/T18: a grant is expired from its deadline on (the same half-open window `tick` uses),
/// so an attachment at exactly that instant does not consume it.
#[test]
fn a_grant_is_not_consumed_at_its_expiry_instant() {
    let mut engine = granted_engine();
    let attachment = attachment_on("attach:late", CLIENT, GRANT_EXPIRES, SESS3);
    let admission = admit(&mut engine, &attachment, SESS3, GRANT_EXPIRES);
    assert_admitted(&admission, LifecycleState::Attached);
    let rules: Vec<Rule> = admission.transitions.iter().map(|t| t.rule).collect();
    assert_eq!(rules, [Rule::T2], "{admission:#?}");
}

/// T18: at exactly its deadline the old grant no longer blocks a new recovery.
#[test]
fn a_new_recovery_at_the_old_grants_expiry_instant_is_admitted() {
    let mut engine = granted_engine();
    assert_admitted(
        &admit(
            &mut engine,
            &reattach_after_d1("recover:2"),
            SESS3,
            GRANT_EXPIRES,
        ),
        LifecycleState::RecoveryGranted,
    );
}

/// T15: after a `migration` detachment a plain attachment needs a recovery first.
#[test]
fn a_plain_attachment_after_migration_needs_a_recovery() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let migrate = detachment_with(
        "detach:migrate",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::Migration,
        DETACH_NOW,
        b1(),
    );
    assert_admitted(
        &admit(&mut engine, &migrate, SESS1, DETACH_NOW),
        LifecycleState::Detached,
    );
    let again = attachment_on("attach:again", CLIENT, "2026-03-28T20:06:00Z", SESS1);
    assert_rejected(
        &admit(&mut engine, &again, SESS1, "2026-03-28T20:06:00Z"),
        RejectionCode::RecoveryRequired,
    );
}

/// T5/T6: keepalive is restored only on a live session; a lost session's degraded
/// attachments stay degraded.
#[test]
fn keepalive_is_not_restored_on_a_lost_session() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    engine
        .session_lost(SESS1, instant("2026-03-28T19:50:00Z"))
        .unwrap();
    let restored = engine
        .keepalive_restored(SESS1, instant("2026-03-28T19:50:30Z"))
        .unwrap();
    assert!(restored.is_empty(), "{restored:#?}");
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Degraded
    );
}

/// T5 applies to attached attachments only: one still attaching keeps its setup timer.
#[test]
fn keepalive_loss_leaves_an_attaching_attachment_alone() {
    let mut engine = engine();
    let mut attaching = a1();
    attaching["session/state"] = json!(SessionState::Attaching.as_str());
    assert_admitted(
        &admit(&mut engine, &attaching, SESS1, ATTACH_NOW),
        LifecycleState::Attaching,
    );
    let lost = engine
        .keepalive_lost(SESS1, instant("2026-03-28T19:43:00Z"))
        .unwrap();
    assert!(lost.is_empty(), "{lost:#?}");
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Attaching
    );
}

/// Restart recovery degrades only attachments whose session the host has not reopened.
#[test]
fn orphans_on_a_reopened_session_are_not_degraded() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let degraded = engine
        .degrade_orphans(instant("2026-03-28T19:43:00Z"))
        .unwrap();
    assert!(degraded.is_empty(), "{degraded:#?}");
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Attached
    );
}

/// T7 on the SQLite read model: the degraded grace ends at exactly 90 s, as with the
/// in-memory one.
#[test]
fn sqlite_ends_a_degraded_attachment_at_exactly_its_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = sqlite_engine(&dir.path().join("pod.db"));
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    engine
        .keepalive_lost(SESS1, instant("2026-03-28T19:51:00Z"))
        .unwrap();
    assert!(
        engine
            .tick(instant("2026-03-28T19:52:29Z"))
            .unwrap()
            .is_empty()
    );
    let ended = engine.tick(instant("2026-03-28T19:52:30Z")).unwrap();
    assert_eq!(
        ended.iter().map(|t| t.rule).collect::<Vec<_>>(),
        [Rule::T7],
        "{ended:#?}"
    );
}

/// T18 for a grant the client holds from another detachment (a `replace-device` into it):
/// it blocks the client's recovery of its own detachment until its deadline, and from that
/// instant on it no longer does (the window is half-open, as `tick` and T17 use it).
#[test]
fn another_detachments_grant_stops_blocking_at_its_expiry_instant() {
    let mut engine = engine_with(
        HostPolicy::default().with_recovery(orbi_pod::RecoveryPolicy::AllowReplaceDevice),
    );
    let x = attachment_on("attach:x", NEW_CLIENT, ATTACH_NOW, SESS1);
    assert_admitted(
        &admit(&mut engine, &x, SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    let x_left = detachment_with(
        "detach:x",
        "attach:x",
        NEW_CLIENT,
        DetachReason::UserRequest,
        "2026-03-28T19:50:00Z",
        bind(&k2(), "pb:x-left", "2026-03-28T19:50:00Z", SESS1),
    );
    assert_admitted(
        &admit(&mut engine, &x_left, SESS1, "2026-03-28T19:50:00Z"),
        LifecycleState::Detached,
    );
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    assert_admitted(
        &admit(&mut engine, &d1(), SESS1, DETACH_NOW),
        LifecycleState::Detached,
    );
    engine.open_session(SESS3, Session::default());
    let into_x = recovery_with(
        "recover:into-x",
        NEW_CLIENT,
        RecoveryMode::ReplaceDevice,
        "detach:01JQCLIDET001",
        "2026-03-28T20:25:00Z",
        Some("token:x"),
        b3(),
    );
    assert_admitted(
        &admit(&mut engine, &into_x, SESS3, RECOVER_NOW),
        LifecycleState::RecoveryGranted,
    );
    let own = |now: &str| {
        recovery_with(
            "recover:x-own",
            NEW_CLIENT,
            RecoveryMode::ReattachExistingDevice,
            "detach:x",
            now,
            None,
            bind(&k2(), "pb:x-own", now, SESS3),
        )
    };
    let early = "2026-03-28T20:35:09Z";
    let blocked = admit(&mut engine, &own(early), SESS3, early);
    assert_rejected(&blocked, RejectionCode::State);
    assert!(
        blocked
            .rejection()
            .unwrap()
            .message
            .contains("already holds an open grant (\"recover:into-x\")"),
        "{blocked:#?}"
    );
    assert_admitted(
        &admit(&mut engine, &own(GRANT_EXPIRES), SESS3, GRANT_EXPIRES),
        LifecycleState::RecoveryGranted,
    );
}

/// T11 at the skew edge: an attachment may declare `attached-at` up to the clock skew ahead
/// of the node clock; a host detachment built at once must not be dated before it.
#[test]
fn a_host_detachment_is_never_dated_before_its_attachment() {
    let mut engine = engine();
    let ahead = "2026-03-28T19:42:25Z";
    let attachment = attachment_on("attach:ahead", CLIENT, ahead, SESS1);
    assert_admitted(
        &admit(&mut engine, &attachment, SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    let ended = engine
        .detach(
            "attach:ahead",
            DetachReason::OperatorAction,
            None,
            instant(ATTACH_NOW),
        )
        .unwrap();
    let artifact: serde_json::Value =
        serde_json::from_slice(ended.artifact.as_deref().unwrap()).unwrap();
    assert_eq!(artifact["detached-at"], json!(ahead));
}
