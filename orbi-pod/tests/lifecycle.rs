//! Spec pod §8.4 lifecycle scenarios L1–L13, the §8.1 upstream flow with B1/B3, and the
//! host-originated transitions of §4 (T1–T18).

mod common;

use common::*;
use orbi_pod::{
    AttachmentState, Check, EngineError, HostPolicy, LifecycleState, RecoveryPolicy, RejectionCode,
    Rule, Session, Store, TraceKind, Verdict, compose,
};
use orbi_types::pod::{DetachReason, RecoveryMode};
use serde_json::{Value, json};

/// An engine with A1 attached and D1 admitted.
fn detached_engine(policy: HostPolicy) -> orbi_pod::PodEngine<orbi_pod::MemoryStore> {
    let mut engine = engine_with(policy);
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    assert_admitted(
        &admit(&mut engine, &d1(), SESS1, DETACH_NOW),
        LifecycleState::Detached,
    );
    engine
}

fn trace_kinds<S: Store>(engine: &orbi_pod::PodEngine<S>) -> Vec<TraceKind> {
    engine
        .store()
        .recent_traces(100)
        .unwrap()
        .into_iter()
        .map(|trace| trace.event.kind)
        .collect()
}

#[test]
fn l1_attach_replay_conflict() {
    let mut engine = engine();
    let first = admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    assert_admitted(&first, LifecycleState::Attached);
    assert_eq!(first.transitions[0].rule, Rule::T2);
    assert_eq!(
        trace_kinds(&engine),
        [TraceKind::BindAccepted, TraceKind::Attached]
    );
    let replay = admit(&mut engine, &a1(), SESS1, "2026-03-28T19:43:00Z");
    assert_eq!(replay.verdict, Verdict::Replayed);
    assert_eq!(replay.state, Some(LifecycleState::Attached));
    assert!(replay.transitions.is_empty());
    assert_eq!(
        trace_kinds(&engine).len(),
        2,
        "a replay has no side effects"
    );
    let mut changed = a1();
    changed["session/state"] = json!("attaching");
    let conflict = admit(&mut engine, &changed, SESS1, ATTACH_NOW);
    assert_rejected(&conflict, RejectionCode::Conflict);
    assert_eq!(conflict.rejection().unwrap().check, Check::I2);
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Attached
    );
}

#[test]
fn l2_detach_replay_and_second_detachment() {
    let mut engine = detached_engine(HostPolicy::default());
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Detached
    );
    let replay = admit(&mut engine, &d1(), SESS1, "2026-03-28T20:06:00Z");
    assert_eq!(replay.verdict, Verdict::Replayed);
    assert_eq!(replay.state, Some(LifecycleState::Detached));
    let d2 = detachment_with(
        "detach:D2",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::UserRequest,
        "2026-03-28T20:06:00Z",
        b1(),
    );
    let second = admit(&mut engine, &d2, SESS1, "2026-03-28T20:06:00Z");
    assert_rejected(&second, RejectionCode::AlreadyDetached);
    assert!(
        second
            .rejection()
            .unwrap()
            .message
            .contains("detach:01JQCLIDET001")
    );
    // Same detachment/id with different content: the first record wins.
    let mut altered = d1();
    altered["detach/notes"] = json!("changed my mind");
    let conflict = admit(&mut engine, &altered, SESS1, "2026-03-28T20:06:00Z");
    assert_rejected(&conflict, RejectionCode::Conflict);
    assert_eq!(conflict.rejection().unwrap().check, Check::I1);
}

#[test]
fn l2_a_detachment_replayed_on_a_later_session_is_idempotent() {
    let mut engine = detached_engine(HostPolicy::default());
    engine
        .close_session(SESS1, instant("2026-03-28T20:06:00Z"))
        .unwrap();
    engine.open_session("sess:later", Session::default());
    let replay = admit(&mut engine, &d1(), "sess:later", "2026-03-28T20:07:00Z");
    assert_eq!(replay.verdict, Verdict::Replayed);
    assert_eq!(replay.state, Some(LifecycleState::Detached));
    // Only identical bytes: anything else still needs a bind on a live session.
    let mut altered = d1();
    altered["detach/notes"] = json!("changed my mind");
    let conflict = admit(&mut engine, &altered, "sess:later", "2026-03-28T20:07:00Z");
    assert_rejected(&conflict, RejectionCode::SessionMismatch);
}

#[test]
fn l3_l4_l5_detachment_checks() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let unknown = detachment_with(
        "detach:L3",
        "attach:UNKNOWN",
        CLIENT,
        DetachReason::UserRequest,
        DETACH_NOW,
        b1(),
    );
    let admission = admit(&mut engine, &unknown, SESS1, DETACH_NOW);
    assert_rejected(&admission, RejectionCode::UnknownAttachment);
    assert_eq!(admission.rejection().unwrap().check, Check::D1);
    let other_client = detachment_with(
        "detach:L4",
        "attach:01JQCLIATT001",
        NEW_CLIENT,
        DetachReason::UserRequest,
        DETACH_NOW,
        b1(),
    );
    assert_rejected(
        &admit(&mut engine, &other_client, SESS1, DETACH_NOW),
        RejectionCode::ClientMismatch,
    );
    let early = detachment_with(
        "detach:L5",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::UserRequest,
        "2026-03-28T19:30:00Z",
        b1(),
    );
    let admission = admit(&mut engine, &early, SESS1, DETACH_NOW);
    assert_rejected(&admission, RejectionCode::TimeOrder);
    // D3: another participant cannot detach it.
    let intruder = detachment_with(
        "detach:D3",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::UserRequest,
        DETACH_NOW,
        bind(
            &other_participant(),
            "pb:intruder",
            "2026-03-28T20:00:00Z",
            SESS1,
        ),
    );
    let admission = admit(&mut engine, &intruder, SESS1, DETACH_NOW);
    assert_rejected(&admission, RejectionCode::ParticipantMismatch);
    assert_eq!(admission.rejection().unwrap().check, Check::D3);
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Attached
    );
}

#[test]
fn l6_l7_l9_recovery_checks() {
    let mut engine = detached_engine(HostPolicy::default());
    engine.open_session(SESS3, Session::default());
    let recover = |from: &str, at: &str, bind: Value| {
        recovery_with(
            "recover:L",
            CLIENT,
            RecoveryMode::ReattachExistingDevice,
            from,
            at,
            None,
            bind,
        )
    };
    let unknown = admit(
        &mut engine,
        &recover("detach:NEVER", "2026-03-28T20:25:00Z", b3()),
        SESS3,
        RECOVER_NOW,
    );
    assert_rejected(&unknown, RejectionCode::UnknownDetachment);
    assert_eq!(unknown.rejection().unwrap().check, Check::R1);
    let other = bind(
        &other_participant(),
        "pb:other",
        "2026-03-28T20:24:30Z",
        SESS3,
    );
    let stranger = admit(
        &mut engine,
        &recover("detach:01JQCLIDET001", "2026-03-28T20:25:00Z", other),
        SESS3,
        RECOVER_NOW,
    );
    assert_rejected(&stranger, RejectionCode::ParticipantMismatch);
    assert_eq!(stranger.rejection().unwrap().check, Check::R3);
    let early_bind = bind(&k2(), "pb:early", "2026-03-28T20:00:00Z", SESS3);
    let early = admit(
        &mut engine,
        &recover("detach:01JQCLIDET001", "2026-03-28T20:04:00Z", early_bind),
        SESS3,
        RECOVER_NOW,
    );
    assert_rejected(&early, RejectionCode::TimeOrder);
}

#[test]
fn l8_reattach_then_attach_consumes_the_grant() {
    let mut engine = detached_engine(HostPolicy::default());
    engine.open_session(SESS3, Session::default());
    let recovery = reattach_after_d1("recover:L8");
    let granted = admit(&mut engine, &recovery, SESS3, RECOVER_NOW);
    assert_admitted(&granted, LifecycleState::RecoveryGranted);
    assert_eq!(granted.transitions[0].rule, Rule::T16);
    assert_eq!(
        admit(&mut engine, &recovery, SESS3, RECOVER_NOW).state,
        Some(LifecycleState::RecoveryGranted)
    );
    let again = attachment_with("attach:L8", CLIENT, "2026-03-28T20:25:05Z", b3());
    let attached = admit(&mut engine, &again, SESS3, RECOVER_NOW);
    assert_admitted(&attached, LifecycleState::Attached);
    assert_eq!(attached.transitions[0].rule, Rule::T17);
    assert_eq!(
        attached.transitions[0].from,
        Some(LifecycleState::RecoveryGranted)
    );
    // The grant is used up, and a replay of the recovery reports where the client is now.
    let grant = engine.store().recovery("recover:L8").unwrap().unwrap();
    assert_eq!(grant.grant, orbi_pod::GrantState::Consumed);
    assert_eq!(grant.consumed_by.as_deref(), Some("attach:L8"));
    assert_eq!(
        admit(&mut engine, &recovery, SESS3, RECOVER_NOW).state,
        Some(LifecycleState::Attached)
    );
    // Recovering the same detachment again is a state error.
    let second = reattach_after_d1("recover:L8b");
    assert_rejected(
        &admit(&mut engine, &second, SESS3, RECOVER_NOW),
        RejectionCode::AlreadyAttached,
    );
}

#[test]
fn l10_second_attachment_live_then_degraded() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    engine.open_session(SESS2, Session::default());
    let second = attachment_with(
        "attach:L10",
        CLIENT,
        "2026-03-28T19:50:00Z",
        bind(&k2(), "pb:L10", "2026-03-28T19:49:00Z", SESS2),
    );
    let refused = admit(&mut engine, &second, SESS2, "2026-03-28T19:50:00Z");
    assert_rejected(&refused, RejectionCode::AlreadyAttached);
    let degraded = engine
        .keepalive_lost(SESS1, instant("2026-03-28T19:51:00Z"))
        .unwrap();
    assert_eq!(degraded[0].rule, Rule::T5);
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Degraded
    );
    let admitted = admit(&mut engine, &second, SESS2, "2026-03-28T19:52:00Z");
    assert_admitted(&admitted, LifecycleState::Attached);
    let rules: Vec<Rule> = admitted.transitions.iter().map(|t| t.rule).collect();
    assert_eq!(rules, [Rule::T13, Rule::T2]);
    let host_built = admitted.transitions[0].artifact.as_ref().unwrap();
    let detachment: Value = serde_json::from_slice(host_built).unwrap();
    assert_eq!(detachment["detach/reason"], "session-expired");
    assert_eq!(
        detachment["participant-bind"],
        b1(),
        "the bind is copied verbatim"
    );
    compose::verify_detachment_attestation(&k1().node_id(), &detachment).unwrap();
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Detached
    );
}

#[test]
fn only_the_same_participant_may_take_the_reconnect_path() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    engine
        .keepalive_lost(SESS1, instant("2026-03-28T19:51:00Z"))
        .unwrap();
    engine.open_session(SESS2, Session::default());
    // Another participant naming the degraded client: refused, and the victim keeps its
    // attachment (and its bind is not handed out in a host detachment).
    let intruder = attachment_with(
        "attach:intruder",
        CLIENT,
        "2026-03-28T19:52:00Z",
        bind(
            &other_participant(),
            "pb:intruder",
            "2026-03-28T19:51:30Z",
            SESS2,
        ),
    );
    let refused = admit(&mut engine, &intruder, SESS2, "2026-03-28T19:52:00Z");
    assert_rejected(&refused, RejectionCode::ParticipantMismatch);
    assert!(refused.transitions.is_empty());
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Degraded
    );
    // The participant itself still reconnects.
    let own = attachment_with(
        "attach:own",
        CLIENT,
        "2026-03-28T19:52:30Z",
        bind(&k2(), "pb:own", "2026-03-28T19:52:10Z", SESS2),
    );
    let admitted = admit(&mut engine, &own, SESS2, "2026-03-28T19:52:30Z");
    assert_admitted(&admitted, LifecycleState::Attached);
    let rules: Vec<Rule> = admitted.transitions.iter().map(|t| t.rule).collect();
    assert_eq!(rules, [Rule::T13, Rule::T2]);
}

/// Hostile participant, T14 path: after the victim (K2) detached its client with
/// `user-request`, another participant names the same `client-instance/id` in a plain
/// attachment and then ends it with `device-loss` (or a self-made `policy`). The client's
/// latest detachment is then the intruder's: the victim's plain attachment needs a recovery,
/// and the victim's recovery of its own detachment is "superseded", so the victim is locked
/// out of its own client id for good. Like the T13 reconnect path, only the participant of
/// the client's lineage may continue it.
#[test]
fn another_participant_cannot_take_over_a_detached_client_and_lock_it_out() {
    let mut engine = detached_engine(HostPolicy::default());
    engine.open_session(SESS2, Session::default());
    let intruder = attachment_with(
        "attach:intruder",
        CLIENT,
        "2026-03-28T20:06:00Z",
        bind(
            &other_participant(),
            "pb:intruder",
            "2026-03-28T20:05:30Z",
            SESS2,
        ),
    );
    let taken = admit(&mut engine, &intruder, SESS2, "2026-03-28T20:06:00Z");
    if taken.verdict == Verdict::Admitted {
        // Today: admitted (T2). Finish the attack to show its effect on the victim.
        let lost = detachment_with(
            "detach:intruder",
            "attach:intruder",
            CLIENT,
            DetachReason::DeviceLoss,
            "2026-03-28T20:06:10Z",
            bind(
                &other_participant(),
                "pb:intruder",
                "2026-03-28T20:05:30Z",
                SESS2,
            ),
        );
        assert_admitted(
            &admit(&mut engine, &lost, SESS2, "2026-03-28T20:06:10Z"),
            LifecycleState::Detached,
        );
        let plain = attachment_on("attach:victim", CLIENT, "2026-03-28T20:07:00Z", SESS1);
        let victim = admit(&mut engine, &plain, SESS1, "2026-03-28T20:07:00Z");
        let own = recovery_with(
            "recover:victim",
            CLIENT,
            RecoveryMode::ReattachExistingDevice,
            "detach:01JQCLIDET001",
            "2026-03-28T20:07:10Z",
            None,
            bind(&k2(), "pb:victim-recover", "2026-03-28T20:07:05Z", SESS1),
        );
        let recovered = admit(&mut engine, &own, SESS1, "2026-03-28T20:07:10Z");
        panic!(
            "another participant took over client {CLIENT:?}; afterwards the victim's plain \
             attachment is {:?} and its recovery of its own detachment is {:?}",
            victim.code(),
            recovered.code()
        );
    }
    assert_rejected(&taken, RejectionCode::ParticipantMismatch);
    assert_eq!(taken.rejection().unwrap().check, Check::S);
    // The victim's own lineage is untouched: its plain return is admitted (T14).
    let plain = attachment_on("attach:victim", CLIENT, "2026-03-28T20:07:00Z", SESS1);
    let back = admit(&mut engine, &plain, SESS1, "2026-03-28T20:07:00Z");
    assert_admitted(&back, LifecycleState::Attached);
    assert_eq!(back.transitions[0].rule, Rule::T2);
}

/// The same hole through `replace-device` (under `AllowReplaceDevice`): another participant
/// recovering its own detachment cannot name a client whose lineage here is the victim's as
/// its "new device", and so cannot take the detached client over either.
#[test]
fn replace_device_cannot_name_a_client_of_another_participant() {
    let policy = HostPolicy::default().with_recovery(RecoveryPolicy::AllowReplaceDevice);
    let mut engine = detached_engine(policy);
    engine.open_session(SESS2, Session::default());
    let signed = |id: &str, at: &str| bind(&other_participant(), id, at, SESS2);
    let own = attachment_with(
        "attach:own",
        "client:own",
        "2026-03-28T20:06:00Z",
        signed("pb:own", "2026-03-28T20:05:30Z"),
    );
    assert_admitted(
        &admit(&mut engine, &own, SESS2, "2026-03-28T20:06:00Z"),
        LifecycleState::Attached,
    );
    let lost = detachment_with(
        "detach:own",
        "attach:own",
        "client:own",
        DetachReason::DeviceLoss,
        "2026-03-28T20:06:10Z",
        signed("pb:own-lost", "2026-03-28T20:06:10Z"),
    );
    assert_admitted(
        &admit(&mut engine, &lost, SESS2, "2026-03-28T20:06:10Z"),
        LifecycleState::Detached,
    );
    let replace = |client: &str, id: &str| {
        recovery_with(
            id,
            client,
            RecoveryMode::ReplaceDevice,
            "detach:own",
            "2026-03-28T20:06:20Z",
            Some("migrate:01JQMIGRATE001"),
            signed(&format!("pb:{id}"), "2026-03-28T20:06:20Z"),
        )
    };
    let taken = admit(
        &mut engine,
        &replace(CLIENT, "recover:take"),
        SESS2,
        "2026-03-28T20:06:20Z",
    );
    assert_rejected(&taken, RejectionCode::ParticipantMismatch);
    assert!(
        !taken
            .rejection()
            .unwrap()
            .message
            .contains("detach:01JQCLIDET001")
    );
    assert!(engine.store().open_grant(CLIENT).unwrap().is_none());
    // A client new to this node is fine.
    assert_admitted(
        &admit(
            &mut engine,
            &replace("client:fresh", "recover:fresh"),
            SESS2,
            "2026-03-28T20:06:21Z",
        ),
        LifecycleState::RecoveryGranted,
    );
}

#[test]
fn l11_migration_needs_allowance_but_exit_does_not() {
    let mut policy = HostPolicy::default();
    policy.pod_client.migration_allowed = false;
    let mut engine = engine_with(policy);
    let mut attachment = a1();
    attachment["migration/allowed?"] = json!(false);
    assert_admitted(
        &admit(&mut engine, &attachment, SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    let migrate = detachment_with(
        "detach:L11",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::Migration,
        DETACH_NOW,
        b1(),
    );
    assert_rejected(
        &admit(&mut engine, &migrate, SESS1, DETACH_NOW),
        RejectionCode::MigrationNotAllowed,
    );
    let leave = detachment_with(
        "detach:L11",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::UserRequest,
        DETACH_NOW,
        b1(),
    );
    assert_admitted(
        &admit(&mut engine, &leave, SESS1, DETACH_NOW),
        LifecycleState::Detached,
    );
}

#[test]
fn l12_device_loss_needs_replace_device() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let lost = detachment_with(
        "detach:L12",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::DeviceLoss,
        DETACH_NOW,
        bind(&k2(), "pb:report", "2026-03-28T20:05:00Z", SESS1),
    );
    assert_admitted(
        &admit(&mut engine, &lost, SESS1, DETACH_NOW),
        LifecycleState::Detached,
    );
    let plain = attachment_with(
        "attach:L12",
        CLIENT,
        "2026-03-28T20:10:00Z",
        bind(&k2(), "pb:L12", "2026-03-28T20:09:00Z", SESS1),
    );
    let admission = admit(&mut engine, &plain, SESS1, "2026-03-28T20:10:00Z");
    assert_rejected(&admission, RejectionCode::RecoveryRequired);
    let reattach = recovery_with(
        "recover:L12",
        CLIENT,
        RecoveryMode::ReattachExistingDevice,
        "detach:L12",
        "2026-03-28T20:10:00Z",
        None,
        bind(&k2(), "pb:L12", "2026-03-28T20:09:00Z", SESS1),
    );
    let admission = admit(&mut engine, &reattach, SESS1, "2026-03-28T20:10:00Z");
    assert_rejected(&admission, RejectionCode::ModeNotAllowed);
    assert_eq!(admission.rejection().unwrap().check, Check::R4);
    // replace-device for the same client is the way back.
    let replace = recovery_with(
        "recover:L12",
        CLIENT,
        RecoveryMode::ReplaceDevice,
        "detach:L12",
        "2026-03-28T20:10:00Z",
        None,
        bind(&k2(), "pb:L12", "2026-03-28T20:09:00Z", SESS1),
    );
    assert_admitted(
        &admit(&mut engine, &replace, SESS1, "2026-03-28T20:10:00Z"),
        LifecycleState::RecoveryGranted,
    );
    let admitted = admit(&mut engine, &plain, SESS1, "2026-03-28T20:10:30Z");
    assert_admitted(&admitted, LifecycleState::Attached);
    assert_eq!(admitted.transitions[0].rule, Rule::T17);
}

/// A1 attached, D1 (`user-request`) admitted, then A2 attached plainly (T14) under `policy`.
fn reattached_engine(policy: HostPolicy) -> orbi_pod::PodEngine<orbi_pod::MemoryStore> {
    let mut engine = engine_with(policy);
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    admit(&mut engine, &d1(), SESS1, DETACH_NOW);
    let a2 = attachment_on("attach:A2", CLIENT, "2026-03-28T20:06:00Z", SESS1);
    assert_admitted(
        &admit(&mut engine, &a2, SESS1, "2026-03-28T20:06:00Z"),
        LifecycleState::Attached,
    );
    engine
}

/// The participant reports A2's device lost (`detach:lost`).
fn lose_a2(engine: &mut orbi_pod::PodEngine<orbi_pod::MemoryStore>) {
    let lost = detachment_with(
        "detach:lost",
        "attach:A2",
        CLIENT,
        DetachReason::DeviceLoss,
        "2026-03-28T20:07:00Z",
        bind(&k2(), "pb:lost", "2026-03-28T20:07:00Z", SESS1),
    );
    assert_admitted(
        &admit(engine, &lost, SESS1, "2026-03-28T20:07:00Z"),
        LifecycleState::Detached,
    );
}

/// What a recovery says, for [`recovery_of`].
struct Recovering<'a> {
    client: &'a str,
    mode: RecoveryMode,
    token_ref: Option<&'a str>,
    session: &'a str,
}

/// Recovery `id` from detachment `from` at 20:08, its bind named after it.
fn recovery_of(id: &str, from: &str, what: &Recovering<'_>) -> Value {
    let at = "2026-03-28T20:08:00Z";
    let bind = bind(&k2(), &format!("pb:{id}"), at, what.session);
    recovery_with(id, what.client, what.mode, from, at, what.token_ref, bind)
}

const REATTACH: Recovering<'static> = Recovering {
    client: CLIENT,
    mode: RecoveryMode::ReattachExistingDevice,
    token_ref: None,
    session: SESS1,
};

#[test]
fn a_superseded_detachment_cannot_be_recovered_around_a_policy_sanction() {
    let mut engine = reattached_engine(HostPolicy::default());
    engine
        .detach(
            "attach:A2",
            DetachReason::Policy,
            None,
            instant("2026-03-28T20:07:00Z"),
        )
        .unwrap();
    // D1 allowed reattach-existing-device, but A2 superseded it; its `policy` end stands.
    let stale = recovery_of("recover:stale", "detach:01JQCLIDET001", &REATTACH);

    let admission = admit(&mut engine, &stale, SESS1, "2026-03-28T20:08:00Z");

    assert_rejected(&admission, RejectionCode::State);
    assert_eq!(admission.rejection().unwrap().check, Check::S);
    let plain = attachment_on("attach:A3", CLIENT, "2026-03-28T20:08:30Z", SESS1);
    assert_rejected(
        &admit(&mut engine, &plain, SESS1, "2026-03-28T20:08:30Z"),
        RejectionCode::RecoveryRequired,
    );
}

#[test]
fn a_superseded_detachment_cannot_be_recovered_around_a_device_loss() {
    let mut engine = reattached_engine(HostPolicy::default());
    lose_a2(&mut engine);

    let stale = recovery_of("recover:stale", "detach:01JQCLIDET001", &REATTACH);

    assert_rejected(
        &admit(&mut engine, &stale, SESS1, "2026-03-28T20:08:00Z"),
        RejectionCode::State,
    );
    let plain = attachment_on("attach:A3", CLIENT, "2026-03-28T20:08:30Z", SESS1);
    assert_rejected(
        &admit(&mut engine, &plain, SESS1, "2026-03-28T20:08:30Z"),
        RejectionCode::RecoveryRequired,
    );
    // The latest detachment's own way back still works.
    let replace = Recovering {
        mode: RecoveryMode::ReplaceDevice,
        ..REATTACH
    };
    assert_admitted(
        &admit(
            &mut engine,
            &recovery_of("recover:latest", "detach:lost", &replace),
            SESS1,
            "2026-03-28T20:08:40Z",
        ),
        LifecycleState::RecoveryGranted,
    );
}

#[test]
fn a_new_device_cannot_recover_a_superseded_detachment_of_the_old_one() {
    let policy = HostPolicy::default().with_recovery(RecoveryPolicy::AllowReplaceDevice);
    let mut engine = reattached_engine(policy);
    lose_a2(&mut engine);
    engine.open_session(SESS3, Session::default());
    let new_device = Recovering {
        client: NEW_CLIENT,
        mode: RecoveryMode::ReplaceDevice,
        token_ref: Some("migrate:01JQMIGRATE001"),
        session: SESS3,
    };

    let stale = admit(
        &mut engine,
        &recovery_of("recover:stale", "detach:01JQCLIDET001", &new_device),
        SESS3,
        "2026-03-28T20:08:00Z",
    );

    assert_rejected(&stale, RejectionCode::State);
    assert_admitted(
        &admit(
            &mut engine,
            &recovery_of("recover:latest", "detach:lost", &new_device),
            SESS3,
            "2026-03-28T20:08:10Z",
        ),
        LifecycleState::RecoveryGranted,
    );
}

#[test]
fn l13_replay_after_eviction_fails_on_its_dead_session() {
    let limits = orbi_pod::StoreLimits {
        max_records: 1,
        ..Default::default()
    };
    let mut engine = orbi_pod::PodEngine::new(
        k1(),
        HostPolicy::default(),
        orbi_pod::MemoryStore::with_limits(limits),
    )
    .unwrap();
    engine.open_session(SESS1, Session::default());
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    admit(&mut engine, &d1(), SESS1, DETACH_NOW);
    engine.close_session(SESS1, instant(DETACH_NOW)).unwrap();
    // A newer attachment on a new session pushes the old lineage out.
    engine.open_session(SESS2, Session::default());
    let newer = attachment_with(
        "attach:newer",
        "client:other",
        "2026-03-28T20:10:00Z",
        bind(&k2(), "pb:newer", "2026-03-28T20:09:00Z", SESS2),
    );
    assert_admitted(
        &admit(&mut engine, &newer, SESS2, "2026-03-28T20:10:00Z"),
        LifecycleState::Attached,
    );
    assert!(
        engine
            .store()
            .attachment("attach:01JQCLIATT001")
            .unwrap()
            .is_none()
    );
    let replayed = admit(&mut engine, &a1(), SESS2, "2026-03-28T20:11:00Z");
    assert_rejected(&replayed, RejectionCode::SessionMismatch);
    // And a recovery from the evicted detachment fails closed.
    let recovery = recovery_with(
        "recover:L13",
        CLIENT,
        RecoveryMode::ReattachExistingDevice,
        "detach:01JQCLIDET001",
        "2026-03-28T20:11:00Z",
        None,
        bind(&k2(), "pb:L13", "2026-03-28T20:10:30Z", SESS2),
    );
    assert_rejected(
        &admit(&mut engine, &recovery, SESS2, "2026-03-28T20:11:00Z"),
        RejectionCode::UnknownDetachment,
    );
}

#[test]
fn upstream_flow_with_b1_and_b3() {
    for (policy, expected) in [
        (RecoveryPolicy::Strict, Err(RejectionCode::ClientMismatch)),
        (
            RecoveryPolicy::AllowReplaceDevice,
            Ok(LifecycleState::RecoveryGranted),
        ),
    ] {
        let mut engine = detached_engine(HostPolicy::default().with_recovery(policy));
        assert_eq!(
            admit(&mut engine, &d1(), SESS1, DETACH_NOW).verdict,
            Verdict::Replayed
        );
        engine.open_session(SESS3, Session::default());
        let recovery = recovery_with(
            "recover:01JQCLIREC001",
            NEW_CLIENT,
            RecoveryMode::ReplaceDevice,
            "detach:01JQCLIDET001",
            "2026-03-28T20:25:00Z",
            Some("migrate:01JQMIGRATE001"),
            b3(),
        );
        assert_eq!(
            recovery["participant-bind"]["proof/participant-signature"]["value"],
            B3_SIGNATURE
        );
        let admission = admit(&mut engine, &recovery, SESS3, RECOVER_NOW);
        match expected {
            Err(code) => {
                assert_rejected(&admission, code);
                assert_eq!(admission.rejection().unwrap().check, Check::R2);
            }
            Ok(state) => {
                assert_admitted(&admission, state);
                assert_eq!(admission.transitions[0].client_instance_id, NEW_CLIENT);
                let grant = engine.store().open_grant(NEW_CLIENT).unwrap().unwrap();
                assert_eq!(grant.recovery_id, "recover:01JQCLIREC001");
            }
        }
    }
    // Without recovery/token-ref the allowance does not apply.
    let mut engine =
        detached_engine(HostPolicy::default().with_recovery(RecoveryPolicy::AllowReplaceDevice));
    engine.open_session(SESS3, Session::default());
    let no_token = recovery_with(
        "recover:no-token",
        NEW_CLIENT,
        RecoveryMode::ReplaceDevice,
        "detach:01JQCLIDET001",
        "2026-03-28T20:25:00Z",
        None,
        b3(),
    );
    assert_rejected(
        &admit(&mut engine, &no_token, SESS3, RECOVER_NOW),
        RejectionCode::ClientMismatch,
    );
}

#[test]
fn t1_t3_t4_setup_finished_declared_impaired_and_timed_out() {
    let mut engine = engine();
    let mut attaching = a1();
    attaching["session/state"] = json!("attaching");
    let admission = admit(&mut engine, &attaching, SESS1, ATTACH_NOW);
    assert_admitted(&admission, LifecycleState::Attaching);
    assert_eq!(admission.transitions[0].rule, Rule::T1);
    let done = engine
        .finish_setup("attach:01JQCLIATT001", instant("2026-03-28T19:42:10Z"))
        .unwrap();
    assert_eq!((done.rule, done.to), (Rule::T4, LifecycleState::Attached));
    assert!(matches!(
        engine.finish_setup("attach:01JQCLIATT001", instant(ATTACH_NOW)),
        Err(EngineError::Transition { .. })
    ));
    for impaired in ["degraded", "suspended"] {
        let mut value = attachment_with("attach:T3", "client:t3", "2026-03-28T19:42:00Z", b1());
        value["session/state"] = json!(impaired);
        let admission = admit(&mut engine, &value, SESS1, ATTACH_NOW);
        assert_rejected(&admission, RejectionCode::State);
    }
    // An attachment left attaching for 30 s is detached by the host.
    let slow = {
        let mut value = attachment_with("attach:slow", "client:slow", "2026-03-28T19:42:00Z", b1());
        value["session/state"] = json!("attaching");
        value
    };
    admit(&mut engine, &slow, SESS1, ATTACH_NOW);
    assert!(
        engine
            .tick(instant("2026-03-28T19:42:34Z"))
            .unwrap()
            .is_empty()
    );
    let expired = engine.tick(instant("2026-03-28T19:42:35Z")).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].rule, expired[0].to),
        (Rule::T4, LifecycleState::Detached)
    );
    assert_eq!(state_of(&engine, "attach:slow"), AttachmentState::Detached);
    // The host-built detachment is a valid artifact; replaying it is idempotent.
    let built = expired[0].artifact.clone().unwrap();
    let replay = engine
        .admit(&built, SESS1, instant("2026-03-28T19:43:00Z"))
        .unwrap();
    assert_eq!(replay.verdict, Verdict::Replayed, "{replay:#?}");
    // Session-expired: a plain attachment may come back (T14).
    let back = attachment_with(
        "attach:slow-2",
        "client:slow",
        "2026-03-28T19:43:00Z",
        bind(&k2(), "pb:back", "2026-03-28T19:43:00Z", SESS1),
    );
    assert_admitted(
        &admit(&mut engine, &back, SESS1, "2026-03-28T19:43:00Z"),
        LifecycleState::Attached,
    );
}

#[test]
fn t5_t6_t7_keepalive_and_grace() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let id = "attach:01JQCLIATT001";
    engine
        .keepalive_lost(SESS1, instant("2026-03-28T19:50:00Z"))
        .unwrap();
    assert_eq!(state_of(&engine, id), AttachmentState::Degraded);
    let restored = engine
        .keepalive_restored(SESS1, instant("2026-03-28T19:50:30Z"))
        .unwrap();
    assert_eq!(restored[0].rule, Rule::T6);
    assert_eq!(state_of(&engine, id), AttachmentState::Attached);
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
        (ended[0].rule, ended[0].to),
        (Rule::T7, LifecycleState::Detached)
    );
    let history = engine.store().client_history(CLIENT).unwrap();
    assert_eq!(history.detachments[0].reason, DetachReason::SessionExpired);
    assert_eq!(
        history.detachments[0].origin,
        orbi_pod::store::DetachmentOrigin::Host
    );
    // Closing a session ends what is left on it at once.
    let mut engine = engine_with(HostPolicy::default());
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let closed = engine
        .close_session(SESS1, instant("2026-03-28T19:50:00Z"))
        .unwrap();
    assert_eq!(
        (closed[0].rule, closed[0].to),
        (Rule::T7, LifecycleState::Detached)
    );
}

#[test]
fn a_lost_session_degrades_then_expires_after_the_grace() {
    let mut engine = engine();
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    let lost = engine
        .session_lost(SESS1, instant("2026-03-28T19:50:00Z"))
        .unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].rule, Rule::T5);
    assert!(!engine.sessions().is_live(SESS1));
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Degraded
    );
    // Nothing more is admitted on the lost session.
    let replay = admit(&mut engine, &a1(), SESS1, "2026-03-28T19:50:01Z");
    assert_rejected(&replay, RejectionCode::SessionMismatch);
    // Within the grace nothing happens; after it, session-expired.
    assert!(
        engine
            .tick(instant("2026-03-28T19:51:00Z"))
            .unwrap()
            .is_empty()
    );
    let expired = engine.tick(instant("2026-03-28T19:51:31Z")).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].rule, Rule::T7);
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Detached
    );
}

#[test]
fn t8_t9_suspend_and_lift() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let id = "attach:01JQCLIATT001";
    let suspended = engine.suspend(id, instant("2026-03-28T19:45:00Z")).unwrap();
    assert_eq!(suspended.rule, Rule::T8);
    // T13: a new attachment of a suspended client is refused.
    engine.open_session(SESS2, Session::default());
    let second = attachment_with(
        "attach:T9",
        CLIENT,
        "2026-03-28T19:46:00Z",
        bind(&k2(), "pb:T9", "2026-03-28T19:46:00Z", SESS2),
    );
    assert_rejected(
        &admit(&mut engine, &second, SESS2, "2026-03-28T19:46:00Z"),
        RejectionCode::State,
    );
    let lifted = engine.lift(id, instant("2026-03-28T19:47:00Z")).unwrap();
    assert_eq!(
        (lifted.rule, lifted.to),
        (Rule::T9, LifecycleState::Attached)
    );
    engine.suspend(id, instant("2026-03-28T19:48:00Z")).unwrap();
    // A session closing leaves a suspension in place; lifting it then degrades.
    assert!(
        engine
            .close_session(SESS1, instant("2026-03-28T19:49:00Z"))
            .unwrap()
            .is_empty()
    );
    let lifted = engine.lift(id, instant("2026-03-28T19:50:00Z")).unwrap();
    assert_eq!(lifted.to, LifecycleState::Degraded);
    assert!(matches!(
        engine.lift(id, instant("2026-03-28T19:50:00Z")),
        Err(EngineError::Transition { .. })
    ));
    assert!(matches!(
        engine.suspend("attach:nope", instant("2026-03-28T19:50:00Z")),
        Err(EngineError::UnknownAttachment(_))
    ));
}

#[test]
fn t11_policy_detach_then_resume_after_suspension_once_the_host_clears_it() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let id = "attach:01JQCLIATT001";
    assert!(matches!(
        engine.detach(id, DetachReason::UserRequest, None, instant(DETACH_NOW)),
        Err(EngineError::NotHostReason(DetachReason::UserRequest))
    ));
    let detached = engine
        .detach(
            id,
            DetachReason::Policy,
            Some("rate limit".into()),
            instant(DETACH_NOW),
        )
        .unwrap();
    assert_eq!(detached.rule, Rule::T11);
    let artifact: Value = serde_json::from_slice(detached.artifact.as_ref().unwrap()).unwrap();
    assert_eq!(artifact["detach/notes"], "rate limit");
    assert_eq!(artifact["detached-at"], "2026-03-28T20:05:10Z");
    assert!(matches!(
        engine.detach(id, DetachReason::Policy, None, instant(DETACH_NOW)),
        Err(EngineError::Transition { .. })
    ));
    let detachment_id = artifact["detachment/id"].as_str().unwrap().to_owned();
    assert!(detachment_id.starts_with("detach:"));
    let fresh = || bind(&k2(), "pb:resume", "2026-03-28T20:20:00Z", SESS1);
    let plain = attachment_with(
        "attach:after-policy",
        CLIENT,
        "2026-03-28T20:20:00Z",
        fresh(),
    );
    assert_rejected(
        &admit(&mut engine, &plain, SESS1, "2026-03-28T20:20:00Z"),
        RejectionCode::RecoveryRequired,
    );
    let reattach = recovery_with(
        "recover:wrong-mode",
        CLIENT,
        RecoveryMode::ReattachExistingDevice,
        &detachment_id,
        "2026-03-28T20:20:00Z",
        None,
        fresh(),
    );
    assert_rejected(
        &admit(&mut engine, &reattach, SESS1, "2026-03-28T20:20:00Z"),
        RejectionCode::ModeNotAllowed,
    );
    let resume = recovery_with(
        "recover:resume",
        CLIENT,
        RecoveryMode::ResumeAfterSuspension,
        &detachment_id,
        "2026-03-28T20:20:00Z",
        None,
        fresh(),
    );
    // The right mode, but the policy has not cleared: a state guard, not a mode guard.
    let held = admit(&mut engine, &resume, SESS1, "2026-03-28T20:20:00Z");
    assert_rejected(&held, RejectionCode::State);
    assert_eq!(held.rejection().unwrap().check, Check::S);
    let cleared = engine
        .clear_sanction(&detachment_id, instant("2026-03-28T20:21:00Z"))
        .unwrap();
    assert!(cleared.newly_cleared);
    assert_admitted(
        &admit(&mut engine, &resume, SESS1, "2026-03-28T20:21:00Z"),
        LifecycleState::RecoveryGranted,
    );
    let attached = admit(&mut engine, &plain, SESS1, "2026-03-28T20:21:05Z");
    assert_admitted(&attached, LifecycleState::Attached);
    assert_eq!(attached.transitions[0].rule, Rule::T17);
}

#[test]
fn t16_t18_grants_expire_and_can_be_reissued() {
    let mut engine = detached_engine(HostPolicy::default());
    engine.open_session(SESS3, Session::default());
    let recovery = reattach_after_d1;
    assert_admitted(
        &admit(&mut engine, &recovery("recover:1"), SESS3, RECOVER_NOW),
        LifecycleState::RecoveryGranted,
    );
    // While the grant is open, another recovery of the same detachment is refused.
    assert_rejected(
        &admit(&mut engine, &recovery("recover:2"), SESS3, RECOVER_NOW),
        RejectionCode::State,
    );
    assert!(
        engine
            .tick(instant("2026-03-28T20:35:09Z"))
            .unwrap()
            .is_empty()
    );
    let expired = engine.tick(instant("2026-03-28T20:35:10Z")).unwrap();
    assert_eq!(
        (expired[0].rule, expired[0].to),
        (Rule::T18, LifecycleState::Detached)
    );
    assert!(engine.store().open_grant(CLIENT).unwrap().is_none());
    assert!(trace_kinds(&engine).contains(&TraceKind::GrantExpired));
    // After expiry a new recovery may open a new grant.
    assert_admitted(
        &admit(
            &mut engine,
            &recovery("recover:2"),
            SESS3,
            "2026-03-28T20:36:00Z",
        ),
        LifecycleState::RecoveryGranted,
    );
}

#[test]
fn recovery_guards() {
    let mut engine = detached_engine(HostPolicy::default());
    let fresh = bind(&k2(), "pb:guard", "2026-03-28T20:24:00Z", SESS1);
    let migrate = recovery_with(
        "recover:m",
        CLIENT,
        RecoveryMode::MigrateToNewHost,
        "detach:01JQCLIDET001",
        "2026-03-28T20:25:00Z",
        None,
        fresh.clone(),
    );
    let admission = admit(&mut engine, &migrate, SESS1, RECOVER_NOW);
    assert_rejected(&admission, RejectionCode::ModeNotAllowed);
    assert!(admission.rejection().unwrap().message.contains("token-ref"));
    let resume = recovery_with(
        "recover:r",
        CLIENT,
        RecoveryMode::ResumeAfterSuspension,
        "detach:01JQCLIDET001",
        "2026-03-28T20:25:00Z",
        None,
        fresh.clone(),
    );
    assert_rejected(
        &admit(&mut engine, &resume, SESS1, RECOVER_NOW),
        RejectionCode::ModeNotAllowed,
    );
    // A client that is attached again has nothing to recover.
    let again = attachment_with(
        "attach:again",
        CLIENT,
        "2026-03-28T20:24:00Z",
        fresh.clone(),
    );
    assert_admitted(
        &admit(&mut engine, &again, SESS1, RECOVER_NOW),
        LifecycleState::Attached,
    );
    let reattach = recovery_with(
        "recover:x",
        CLIENT,
        RecoveryMode::ReattachExistingDevice,
        "detach:01JQCLIDET001",
        "2026-03-28T20:25:00Z",
        None,
        fresh,
    );
    assert_rejected(
        &admit(&mut engine, &reattach, SESS1, RECOVER_NOW),
        RejectionCode::AlreadyAttached,
    );
}

#[test]
fn v6b_binds_of_detachments() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    // Restart: the attachment is on record, its session is no longer live.
    let mut engine =
        orbi_pod::PodEngine::new(k1(), HostPolicy::default(), engine.into_store()).unwrap();
    engine.open_session(SESS3, Session::default());
    // A participant reason needs a bind on a live session; the original bind's is dead.
    let user = detachment_with(
        "detach:user",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::UserRequest,
        DETACH_NOW,
        b1(),
    );
    let admission = admit(&mut engine, &user, SESS3, DETACH_NOW);
    assert_rejected(&admission, RejectionCode::SessionMismatch);
    assert_eq!(admission.rejection().unwrap().check, Check::V6b);
    // A fresh bind on the live session works for the participant.
    let fresh = detachment_with(
        "detach:user",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::UserRequest,
        DETACH_NOW,
        bind(&k2(), "pb:fresh", "2026-03-28T20:05:00Z", SESS3),
    );
    // A host reason may carry the attachment's own bind, copied verbatim.
    let operator = detachment_with(
        "detach:operator",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::OperatorAction,
        DETACH_NOW,
        b1(),
    );
    // By default this node gives host reasons itself: a copied bind proves nothing about who
    // sends it, so from a session it is refused.
    let mut strict =
        orbi_pod::PodEngine::new(k1(), HostPolicy::default(), engine.store().clone()).unwrap();
    strict.open_session(SESS3, Session::default());
    let refused = admit(&mut strict, &operator, SESS3, DETACH_NOW);
    assert_rejected(&refused, RejectionCode::SessionMismatch);
    assert!(
        refused
            .rejection()
            .unwrap()
            .message
            .contains("this node's to give")
    );
    // A policy that admits the spec's host-originated copy takes it.
    let copies = HostPolicy {
        admit_copied_host_detachments: true,
        ..HostPolicy::default()
    };
    let mut other = orbi_pod::PodEngine::new(k1(), copies.clone(), engine.store().clone()).unwrap();
    other.open_session(SESS3, Session::default());
    assert_admitted(
        &admit(&mut engine, &fresh, SESS3, DETACH_NOW),
        LifecycleState::Detached,
    );
    let admission = admit(&mut other, &operator, SESS3, DETACH_NOW);
    assert_admitted(&admission, LifecycleState::Detached);
    assert_eq!(admission.transitions[0].rule, Rule::T11);
    // But not a bind of some other dead session.
    let mut third = orbi_pod::PodEngine::new(k1(), copies, orbi_pod::MemoryStore::new()).unwrap();
    third.open_session(SESS1, Session::default());
    admit(&mut third, &a1(), SESS1, ATTACH_NOW);
    let stray = detachment_with(
        "detach:stray",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::Policy,
        DETACH_NOW,
        bind(&k2(), "pb:stray", "2026-03-28T19:30:00Z", "sess:dead"),
    );
    assert_rejected(
        &admit(&mut third, &stray, SESS1, DETACH_NOW),
        RejectionCode::SessionMismatch,
    );
}

#[test]
fn a_participant_detachment_arrives_on_its_binds_session_or_another_of_the_same_node() {
    let (client_node, other_node) = (
        orbi_types::KeyPair::from_seed(&[7; 32]).node_id(),
        orbi_types::KeyPair::from_seed(&[8; 32]).node_id(),
    );
    let of = |peer: &orbi_types::NodeId| Session {
        peer: Some(peer.clone()),
        ..Session::default()
    };
    let mut engine = engine();
    engine.open_session(SESS1, of(&client_node));
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    // The attachment's own bind, on its live session, sent by another node over its own.
    engine.open_session(SESS2, of(&other_node));
    let relayed = detachment_with(
        "detach:relayed",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::DeviceLoss,
        DETACH_NOW,
        b1(),
    );
    let admission = admit(&mut engine, &relayed, SESS2, DETACH_NOW);
    assert_rejected(&admission, RejectionCode::SessionMismatch);
    assert_eq!(admission.rejection().unwrap().check, Check::V6b);
    // The client's node may send it over another of its sessions.
    engine.open_session(SESS3, of(&client_node));
    assert_admitted(
        &admit(&mut engine, &relayed, SESS3, DETACH_NOW),
        LifecycleState::Detached,
    );
}

#[test]
fn i3_bind_conflict_on_one_session() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let same_id = bind(&k2(), "pb:01JQPARTBIND001", "2026-03-28T19:21:00Z", SESS1);
    let admission = admit(&mut engine, &same_id, SESS1, ATTACH_NOW);
    assert_rejected(&admission, RejectionCode::BindConflict);
    assert_eq!(admission.rejection().unwrap().check, Check::I3);
}

#[test]
fn orphans_degrade_after_a_restart() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    let store = engine.into_store();
    let mut restarted = orbi_pod::PodEngine::new(k1(), HostPolicy::default(), store).unwrap();
    let degraded = restarted
        .degrade_orphans(instant("2026-03-28T19:50:00Z"))
        .unwrap();
    assert_eq!(
        (degraded[0].rule, degraded[0].to),
        (Rule::T5, LifecycleState::Degraded)
    );
    let ended = restarted.tick(instant("2026-03-28T19:51:30Z")).unwrap();
    assert_eq!(ended[0].to, LifecycleState::Detached);
}

/// A node clock at either end of the representable range (years 0 and 9999) is refused or
/// admitted like any other, never a panic: the skew limit, the recovery window and the timers
/// saturate.
#[test]
fn a_clock_at_the_ends_of_its_range_never_panics() {
    let end = "9999-12-31T23:59:59Z";
    let mut engine = engine();
    let attached = admit(&mut engine, &a1(), SESS1, end);
    assert_eq!(attached.verdict, Verdict::Admitted, "{attached:#?}");
    let detached = admit(&mut engine, &d1(), SESS1, end);
    assert_eq!(detached.verdict, Verdict::Admitted, "{detached:#?}");
    engine.open_session(SESS3, Session::default());
    let recovered = admit(&mut engine, &reattach_after_d1("recover:end"), SESS3, end);
    assert_eq!(recovered.verdict, Verdict::Admitted, "{recovered:#?}");
    engine.tick(instant(end)).unwrap();

    let mut engine = engine_with(HostPolicy::default());
    let start = "0000-01-01T00:00:00Z";
    engine.tick(instant(start)).unwrap();
    // Everything A1 says lies in the future of that clock.
    let early = admit(&mut engine, &a1(), SESS1, start);
    assert_eq!(early.code(), Some(RejectionCode::Clock), "{early:#?}");
}

/// Hostile participant probing a client id it does not hold: the refusal may say that the
/// client is taken, but it goes back to the prober's node (`message` in the pod service's
/// answer) and must not hand out the holder's attachment id or live session id; the T13
/// refusal withholds them for the same reason.
#[test]
fn a_refusal_for_a_client_of_another_participant_names_nothing_of_its_attachment() {
    let mut engine = engine();
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    engine.open_session(SESS2, Session::default());
    let probe = attachment_with(
        "attach:probe",
        CLIENT,
        "2026-03-28T19:43:00Z",
        bind(
            &other_participant(),
            "pb:probe",
            "2026-03-28T19:42:30Z",
            SESS2,
        ),
    );
    let refused = admit(&mut engine, &probe, SESS2, "2026-03-28T19:43:00Z");
    assert!(
        matches!(
            refused.code(),
            Some(RejectionCode::AlreadyAttached | RejectionCode::ParticipantMismatch)
        ),
        "{refused:#?}"
    );
    let message = &refused.rejection().unwrap().message;
    assert!(!message.contains("attach:01JQCLIATT001"), "{message}");
    assert!(!message.contains(SESS1), "{message}");
}

/// T12 across sessions: the V8 rule that a bind must not predate its session is for
/// attachments and recoveries; an identical replay of an admitted detachment (whose bind is
/// necessarily older) on a session established later is still `replayed`.
#[test]
fn a_detachment_replayed_on_a_session_established_later_is_replayed() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, ATTACH_NOW);
    assert_admitted(
        &admit(&mut engine, &d1(), SESS1, DETACH_NOW),
        LifecycleState::Detached,
    );
    engine.open_session(
        SESS3,
        Session {
            established_at: Some(instant("2026-03-28T20:30:00Z")),
            ..Session::default()
        },
    );
    let replay = admit(&mut engine, &d1(), SESS3, "2026-03-28T20:30:05Z");
    assert_eq!(replay.verdict, Verdict::Replayed, "{replay:#?}");
    assert_eq!(replay.state, Some(LifecycleState::Detached));
}

/// T13 for an attachment still `attached` whose session is gone without a keepalive loss
/// being reported (here: a restart before `degrade_orphans`): it is treated like a degraded
/// one, so the same participant's new attachment on a live session replaces it instead of
/// being refused `E_POD_ALREADY_ATTACHED`.
#[test]
fn an_attached_attachment_on_a_dead_session_takes_the_reconnect_path() {
    let mut engine = engine();
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    let mut engine =
        orbi_pod::PodEngine::new(k1(), HostPolicy::default(), engine.into_store()).unwrap();
    engine.open_session(SESS2, Session::default());
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Attached
    );
    let again = attachment_on("attach:again", CLIENT, "2026-03-28T19:50:00Z", SESS2);
    let admitted = admit(&mut engine, &again, SESS2, "2026-03-28T19:50:00Z");
    assert_admitted(&admitted, LifecycleState::Attached);
    let rules: Vec<Rule> = admitted.transitions.iter().map(|t| t.rule).collect();
    assert_eq!(rules, [Rule::T13, Rule::T2]);
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Detached
    );
}

/// Hostile participant under `AllowReplaceDevice`: one detachment opens one grant. After a
/// `replace-device` grant was used by the new device, a second `replace-device` citing the
/// same detachment for yet another device is `E_POD_STATE` (the old client was never attached
/// again, so nothing else supersedes the detachment): one lost phone is not a licence for any
/// number of new ones.
#[test]
fn one_detachment_cannot_be_replaced_into_a_second_new_device() {
    let policy = HostPolicy::default().with_recovery(RecoveryPolicy::AllowReplaceDevice);
    let mut engine = detached_engine(policy);
    engine.open_session(SESS3, Session::default());
    let replace = |id: &str, client: &str, at: &str| {
        recovery_with(
            id,
            client,
            RecoveryMode::ReplaceDevice,
            "detach:01JQCLIDET001",
            at,
            Some("migrate:01JQMIGRATE001"),
            bind(&k2(), &format!("pb:{id}"), at, SESS3),
        )
    };
    assert_admitted(
        &admit(
            &mut engine,
            &replace("recover:first", NEW_CLIENT, "2026-03-28T20:25:00Z"),
            SESS3,
            RECOVER_NOW,
        ),
        LifecycleState::RecoveryGranted,
    );
    let device = attachment_on("attach:new", NEW_CLIENT, "2026-03-28T20:25:20Z", SESS3);
    let used = admit(&mut engine, &device, SESS3, "2026-03-28T20:25:20Z");
    assert_admitted(&used, LifecycleState::Attached);
    assert_eq!(used.transitions[0].rule, Rule::T17);
    let again = admit(
        &mut engine,
        &replace("recover:second", "client:third", "2026-03-28T20:26:00Z"),
        SESS3,
        "2026-03-28T20:26:00Z",
    );
    assert_rejected(&again, RejectionCode::State);
    assert!(
        again
            .rejection()
            .unwrap()
            .message
            .contains("was already recovered by \"recover:first\""),
        "{again:#?}"
    );
    assert!(engine.store().open_grant("client:third").unwrap().is_none());
}

/// Hostile participant, timers: an attachment whose host detachment this node can no longer
/// build (its bind carries a member the seed profile admitted and signed, and the operator
/// has since moved the node to the default frozen profile) is one failure of its own. It
/// must not stall every later T7 (and the T18 grant expiry after them): today `tick` stops
/// at it with `EngineError::Egress`, every second, for good, so no other degraded
/// attachment is ever ended.
#[test]
fn one_attachment_the_host_cannot_detach_does_not_stall_the_timers() {
    let seed = HostPolicy::default().with_profile(orbi_schema::Profile::Seed);
    let mut engine = engine_with(seed);
    let mut planted = bind(&other_participant(), "pb:poison", ATTACH_NOW, SESS1);
    planted["x-planted"] = json!(1);
    let planted = resign(planted, &other_participant());
    let poison = attachment_with("attach:poison", "client:poison", ATTACH_NOW, planted);
    assert_admitted(
        &admit(&mut engine, &poison, SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    engine
        .session_lost(SESS1, instant("2026-03-28T19:50:00Z"))
        .unwrap();
    // The operator moves the node to the default (frozen) profile and restarts it.
    let mut engine =
        orbi_pod::PodEngine::new(k1(), HostPolicy::default(), engine.into_store()).unwrap();
    for now in ["2026-03-28T19:52:00Z", "2026-03-28T19:52:01Z"] {
        let _ = engine.tick(instant(now));
    }
    assert_eq!(
        state_of(&engine, "attach:01JQCLIATT001"),
        AttachmentState::Detached,
        "the victim's degraded attachment outlived its grace behind the poisoned one"
    );
    // The poisoned one is reported on every tick, with its own error, until it can go.
    let report = engine.tick_report(instant("2026-03-28T19:52:02Z")).unwrap();
    assert!(report.transitions.is_empty(), "{report:#?}");
    let [failure] = report.failures.as_slice() else {
        panic!("{report:#?}");
    };
    assert_eq!(
        (failure.rule, failure.subject.as_str()),
        (Rule::T7, "attach:poison")
    );
    assert!(
        matches!(failure.error, orbi_pod::EngineError::Egress { .. }),
        "{failure:#?}"
    );
    assert_eq!(
        state_of(&engine, "attach:poison"),
        AttachmentState::Degraded
    );
}
