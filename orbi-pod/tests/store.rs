//! The read-model contract, run against both stores: uniqueness enforced by the store itself,
//! atomic commits, bounded size with eviction; plus SQLite durability across restarts.

mod common;

use common::*;
use orbi_pod::{
    AttachmentState, Durability, GrantState, HostPolicy, LifecycleState, MemoryStore, PodEngine,
    RejectionCode, Session, SessionTable, SqliteStore, Store, StoreError, StoreLimits, TraceKind,
    Verdict,
    store::{
        AttachmentRec, Change, ClientStanding, Commit, DetachmentOrigin, DetachmentRec, Found,
        Probe, RecoveryRec, TraceEvent,
    },
};
use orbi_types::{Sha256Digest, pod::DetachReason};
use serde_json::json;

/// Runs `body` against a fresh store of each kind, naming it `name`.
macro_rules! each_store {
    ($limits:expr, |$name:ident, $store:ident| $body:block) => {{
        {
            let $name = "memory";
            #[allow(unused_mut)]
            let mut $store = MemoryStore::with_limits($limits);
            $body
        }
        {
            let $name = "sqlite";
            #[allow(unused_mut)]
            let mut $store = SqliteStore::open_in_memory(&k1().node_id(), $limits).unwrap();
            $body
        }
    }};
}

fn record(id: &str, client: &str, state: AttachmentState) -> AttachmentRec {
    let now = instant("2026-03-28T19:42:05Z");
    AttachmentRec {
        attachment_id: id.into(),
        serving_node_id: k1().node_id(),
        client_instance_id: client.into(),
        participant_id: k2().participant_id(),
        pod_user_id: None,
        profile: orbi_types::pod::ProfileType::PodClient,
        export_capable: true,
        migration_allowed: true,
        models_local: None,
        bind_id: "pb:1".into(),
        bind_session: SESS1.into(),
        bound_at: at("2026-03-28T19:20:00Z"),
        bind_digest: Sha256Digest::of(b"bind"),
        attached_at: at("2026-03-28T19:42:00Z"),
        admitted_at: now,
        state,
        state_since: now,
        artifact: b"{}".to_vec(),
    }
}

fn trace() -> TraceEvent {
    TraceEvent {
        kind: orbi_pod::TraceKind::Attached,
        ts: instant("2026-03-28T19:42:05Z"),
        node: k1().node_id(),
        peer: None,
        detail: json!({"n": 1}),
    }
}

#[test]
fn one_live_attachment_per_client_is_enforced_by_the_store() {
    each_store!(StoreLimits::default(), |name, store| {
        let live = SessionTable::default();
        let both = Commit {
            changes: vec![
                Change::InsertAttachment(record("a:1", "c", AttachmentState::Attached)),
                Change::InsertAttachment(record("a:2", "c", AttachmentState::Degraded)),
            ],
            traces: vec![trace()],
        };
        let err = store.commit(both, &live).unwrap_err();
        assert!(matches!(err, StoreError::Constraint(_)), "{name}: {err:?}");
        // Atomic: neither the first attachment nor the trace was kept.
        assert!(store.attachment("a:1").unwrap().is_none(), "{name}");
        assert_eq!(store.counts().unwrap().traces, 0, "{name}");
        // A detached one and a live one may coexist; a second live one may not.
        let ok = Commit {
            changes: vec![
                Change::InsertAttachment(record("a:1", "c", AttachmentState::Detached)),
                Change::InsertAttachment(record("a:2", "c", AttachmentState::Attached)),
            ],
            traces: vec![trace()],
        };
        store.commit(ok, &live).unwrap();
        let revive = Commit {
            changes: vec![Change::SetAttachmentState {
                attachment_id: "a:1".into(),
                state: AttachmentState::Attached,
                since: instant("2026-03-28T19:43:00Z"),
            }],
            traces: vec![],
        };
        assert!(
            matches!(store.commit(revive, &live), Err(StoreError::Constraint(_))),
            "{name}"
        );
        // Duplicate ids and dangling references are refused too.
        let duplicate = Commit {
            changes: vec![Change::InsertAttachment(record(
                "a:2",
                "d",
                AttachmentState::Detached,
            ))],
            traces: vec![],
        };
        assert!(
            matches!(
                store.commit(duplicate, &live),
                Err(StoreError::Constraint(_))
            ),
            "{name}"
        );
        let missing = Commit {
            changes: vec![Change::SetAttachmentState {
                attachment_id: "a:none".into(),
                state: AttachmentState::Detached,
                since: instant("2026-03-28T19:43:00Z"),
            }],
            traces: vec![],
        };
        assert!(
            matches!(store.commit(missing, &live), Err(StoreError::Constraint(_))),
            "{name}"
        );
        let counts = store.counts().unwrap();
        assert_eq!(
            (counts.attachments, counts.live, counts.traces),
            (2, 1, 1),
            "{name}"
        );
    });
}

/// Admits `count` attach/detach lineages of distinct clients on sessions `sess:<i>`, closing
/// each session afterwards, with `reason` as the detach reason.
fn lineages<S: Store>(
    engine: &mut PodEngine<S>,
    range: std::ops::Range<usize>,
    reason: DetachReason,
) {
    for i in range {
        let session = format!("sess:{i}");
        engine.open_session(&session, Session::default());
        let client = format!("client:{i}");
        let attachment = attachment_with(
            &format!("attach:{i}"),
            &client,
            "2026-03-28T19:42:00Z",
            bind(&k2(), &format!("pb:{i}"), "2026-03-28T19:41:00Z", &session),
        );
        assert_admitted(
            &admit(engine, &attachment, &session, "2026-03-28T19:42:05Z"),
            LifecycleState::Attached,
        );
        let detachment = detachment_with(
            &format!("detach:{i}"),
            &format!("attach:{i}"),
            &client,
            reason,
            "2026-03-28T19:43:00Z",
            bind(&k2(), &format!("pb:{i}"), "2026-03-28T19:41:00Z", &session),
        );
        assert_admitted(
            &admit(engine, &detachment, &session, "2026-03-28T19:43:05Z"),
            LifecycleState::Detached,
        );
        engine
            .close_session(&session, instant("2026-03-28T19:43:10Z"))
            .unwrap();
    }
}

fn engine_on<S: Store>(store: S) -> PodEngine<S> {
    PodEngine::new(k1(), HostPolicy::default(), store).unwrap()
}

#[test]
fn eviction_drops_whole_lineages_oldest_first_and_fails_closed() {
    let limits = StoreLimits {
        max_records: 3,
        max_binds: 4,
        max_tombstones: 2,
        max_traces: 5,
    };
    each_store!(limits, |name, store| {
        let mut engine = engine_on(store);
        lineages(&mut engine, 0..5, DetachReason::UserRequest);
        let counts = engine.store().counts().unwrap();
        assert_eq!((counts.attachments, counts.detachments), (3, 3), "{name}");
        // Each lineage's bind came with its attachment, which keeps it: no cache entries.
        assert_eq!((counts.binds, counts.traces), (0, 5), "{name}");
        for gone in ["attach:0", "attach:1"] {
            assert!(engine.store().attachment(gone).unwrap().is_none(), "{name}");
        }
        assert!(
            engine.store().detachment("detach:0").unwrap().is_none(),
            "{name}"
        );
        assert!(
            engine.store().attachment("attach:2").unwrap().is_some(),
            "{name}"
        );
        // A user-request lineage leaves no tombstone: the client may attach again.
        assert_eq!(
            engine.store().tombstone("client:0").unwrap(),
            None,
            "{name}"
        );
        // Recovery from an evicted detachment fails closed (R1).
        engine.open_session(SESS3, Session::default());
        let recovery = recovery_with(
            "recover:evicted",
            "client:0",
            orbi_types::pod::RecoveryMode::ReattachExistingDevice,
            "detach:0",
            "2026-03-28T19:45:00Z",
            None,
            bind(&k2(), "pb:r", "2026-03-28T19:44:00Z", SESS3),
        );
        let admission = admit(&mut engine, &recovery, SESS3, "2026-03-28T19:45:00Z");
        assert_rejected(&admission, RejectionCode::UnknownDetachment);
    });
}

#[test]
fn evicted_lineages_that_required_recovery_leave_a_tombstone() {
    let limits = StoreLimits {
        max_records: 1,
        ..Default::default()
    };
    each_store!(limits, |name, store| {
        let mut engine = engine_on(store);
        lineages(&mut engine, 0..2, DetachReason::DeviceLoss);
        assert_eq!(
            engine.store().tombstone("client:0").unwrap(),
            Some(DetachReason::DeviceLoss),
            "{name}"
        );
        let standing = engine
            .store()
            .client_standing(&k1().node_id(), "client:0")
            .unwrap();
        assert_eq!(
            (standing.tombstone, standing.latest_detachment),
            (Some(DetachReason::DeviceLoss), None),
            "{name}"
        );
        engine.open_session(SESS3, Session::default());
        let plain = attachment_with(
            "attach:back",
            "client:0",
            "2026-03-28T19:50:00Z",
            bind(&k2(), "pb:back", "2026-03-28T19:49:00Z", SESS3),
        );
        let admission = admit(&mut engine, &plain, SESS3, "2026-03-28T19:50:00Z");
        assert_rejected(&admission, RejectionCode::RecoveryRequired);
        assert!(
            admission.rejection().unwrap().message.contains("evicted"),
            "{name}"
        );
    });
}

/// A client's newer lineage on a dead session is not evicted while its older one (on a live
/// session) stays: the older detachment would be the client's latest again, recoverable and
/// attachable around the newer one's `policy` end.
#[test]
fn a_clients_lineages_are_evicted_oldest_first_whatever_their_sessions() {
    let limits = StoreLimits {
        max_records: 2,
        ..Default::default()
    };
    each_store!(limits, |name, store| {
        let mut engine = engine_on(store);
        engine.open_session(SESS1, Session::default());
        engine.open_session(SESS2, Session::default());
        // A1 and D1 (user-request) on SESS1, which stays live.
        admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
        admit(&mut engine, &d1(), SESS1, "2026-03-28T20:05:10Z");
        // A2 on SESS2 ends with a policy sanction; SESS2 closes.
        let a2 = attachment_on("attach:A2", CLIENT, "2026-03-28T20:06:00Z", SESS2);
        admit(&mut engine, &a2, SESS2, "2026-03-28T20:06:00Z");
        engine
            .detach(
                "attach:A2",
                DetachReason::Policy,
                None,
                instant("2026-03-28T20:07:00Z"),
            )
            .unwrap();
        engine
            .close_session(SESS2, instant("2026-03-28T20:07:10Z"))
            .unwrap();
        // Another client's attachment needs room: a lineage goes.
        let other = attachment_on(
            "attach:other",
            "client:other",
            "2026-03-28T20:08:00Z",
            SESS1,
        );

        assert_admitted(
            &admit(&mut engine, &other, SESS1, "2026-03-28T20:08:00Z"),
            LifecycleState::Attached,
        );

        let store = engine.store();
        assert!(
            store.detachment("detach:01JQCLIDET001").unwrap().is_none(),
            "{name}: D1 first"
        );
        assert!(
            store.attachment("attach:A2").unwrap().is_some(),
            "{name}: A2 kept"
        );
        let stale = recovery_with(
            "recover:stale",
            CLIENT,
            orbi_types::pod::RecoveryMode::ReattachExistingDevice,
            "detach:01JQCLIDET001",
            "2026-03-28T20:09:00Z",
            None,
            bind(&k2(), "pb:stale", "2026-03-28T20:09:00Z", SESS1),
        );
        let refused = admit(&mut engine, &stale, SESS1, "2026-03-28T20:09:00Z");
        assert_rejected(&refused, RejectionCode::UnknownDetachment);
        let plain = attachment_on("attach:A3", CLIENT, "2026-03-28T20:09:30Z", SESS1);
        assert_rejected(
            &admit(&mut engine, &plain, SESS1, "2026-03-28T20:09:30Z"),
            RejectionCode::RecoveryRequired,
        );
    });
}

/// Whether the read model still holds `attach:{n}`.
fn holds<S: Store>(engine: &PodEngine<S>, n: u32) -> bool {
    engine
        .store()
        .attachment(&format!("attach:{n}"))
        .unwrap()
        .is_some()
}

#[test]
fn live_attachments_are_never_evicted_and_history_on_open_sessions_goes_last() {
    let limits = StoreLimits {
        max_records: 2,
        ..Default::default()
    };
    each_store!(limits, |name, store| {
        let mut engine = engine_on(store);
        let now = "2026-03-28T19:42:05Z";
        // Attachment `n` of client `n` on `session`, and its user-request detachment.
        let attach = |n: u32, session: &str| {
            attachment_with(
                &format!("attach:{n}"),
                &format!("client:{n}"),
                "2026-03-28T19:42:00Z",
                bind(&k2(), &format!("pb:{n}"), "2026-03-28T19:41:00Z", session),
            )
        };
        for session in [SESS1, SESS2, SESS3] {
            engine.open_session(session, Session::default());
        }
        for (n, session) in [(1, SESS1), (2, SESS2)] {
            assert_admitted(
                &admit(&mut engine, &attach(n, session), session, now),
                LifecycleState::Attached,
            );
        }
        // Full of live attachments: nothing may go.
        let admission = admit(&mut engine, &attach(3, SESS3), SESS3, now);
        assert_rejected(&admission, RejectionCode::Capacity);
        assert!(!holds(&engine, 3), "{name}");
        // Exit is never blocked by capacity. Client 1 leaves on its open session, then client
        // 2 leaves and its session ends.
        for (n, session, at) in [
            (1, SESS1, "2026-03-28T19:50:00Z"),
            (2, SESS2, "2026-03-28T19:51:00Z"),
        ] {
            assert_admitted(
                &admit(
                    &mut engine,
                    &user_detach(n, session, at, "2026-03-28T19:41:00Z"),
                    session,
                    at,
                ),
                LifecycleState::Detached,
            );
        }
        engine
            .close_session(SESS2, instant("2026-03-28T19:52:00Z"))
            .unwrap();
        // The dead session's lineage goes first, though client 1's detachment is older; with
        // no other left, the history on the open session goes too: one peer attaching and
        // detaching in turn there cannot keep others out.
        for (n, at, evicted, kept) in [
            (3, "2026-03-28T19:53:00Z", 2, 1),
            (4, "2026-03-28T19:54:00Z", 1, 3),
        ] {
            assert_admitted(
                &admit(&mut engine, &attach(n, SESS3), SESS3, at),
                LifecycleState::Attached,
            );
            assert!(
                !holds(&engine, evicted) && holds(&engine, kept),
                "{name}: {n}"
            );
        }
    });
}

#[test]
fn open_grants_protect_lineages_until_they_expire() {
    let limits = StoreLimits {
        max_records: 2,
        ..Default::default()
    };
    each_store!(limits, |name, store| {
        let mut engine = engine_on(store);
        engine.open_session(SESS1, Session::default());
        admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
        admit(&mut engine, &d1(), SESS1, "2026-03-28T20:05:10Z");
        engine
            .close_session(SESS1, instant("2026-03-28T20:06:00Z"))
            .unwrap();
        engine.open_session(SESS3, Session::default());
        let recovery = recovery_with(
            "recover:g",
            CLIENT,
            orbi_types::pod::RecoveryMode::ReattachExistingDevice,
            "detach:01JQCLIDET001",
            "2026-03-28T20:25:00Z",
            None,
            b3(),
        );
        assert_admitted(
            &admit(&mut engine, &recovery, SESS3, "2026-03-28T20:25:10Z"),
            LifecycleState::RecoveryGranted,
        );
        let other = attachment_with(
            "attach:other",
            "client:other",
            "2026-03-28T20:26:00Z",
            bind(&k2(), "pb:other", "2026-03-28T20:26:00Z", SESS3),
        );
        assert_rejected(
            &admit(&mut engine, &other, SESS3, "2026-03-28T20:26:00Z"),
            RejectionCode::Capacity,
        );
        assert!(
            engine
                .store()
                .detachment("detach:01JQCLIDET001")
                .unwrap()
                .is_some(),
            "{name}"
        );
        engine.tick(instant("2026-03-28T20:35:10Z")).unwrap();
        assert_admitted(
            &admit(&mut engine, &other, SESS3, "2026-03-28T20:36:00Z"),
            LifecycleState::Attached,
        );
        assert!(
            engine.store().recovery("recover:g").unwrap().is_none(),
            "{name}"
        );
        assert_eq!(engine.store().counts().unwrap().attachments, 1, "{name}");
    });
}

#[test]
fn group_commits_see_their_own_writes_and_can_be_abandoned() {
    each_store!(StoreLimits::default(), |name, store| {
        let mut engine = engine_on(store);
        engine.open_session(SESS1, Session::default());
        let a1 = bytes(&a1());
        let d1 = bytes(&d1());
        let admissions = engine
            .admit_group(
                [(&a1[..], SESS1), (&a1[..], SESS1), (&d1[..], SESS1)],
                instant("2026-03-28T20:05:10Z"),
            )
            .unwrap();
        let verdicts: Vec<&str> = admissions.iter().map(|a| a.verdict.as_str()).collect();
        assert_eq!(verdicts, ["admitted", "replayed", "admitted"], "{name}");
        assert_eq!(
            engine
                .store()
                .attachment("attach:01JQCLIATT001")
                .unwrap()
                .unwrap()
                .state,
            AttachmentState::Detached,
            "{name}"
        );
        // An abandoned group leaves nothing behind, a failed commit inside it neither.
        let mut store = engine.into_store();
        store.begin_group().unwrap();
        assert!(store.begin_group().is_err(), "{name}: groups do not nest");
        let live = SessionTable::default();
        store
            .commit(
                Commit {
                    changes: vec![Change::InsertAttachment(record(
                        "a:g",
                        "c:g",
                        AttachmentState::Attached,
                    ))],
                    traces: vec![trace()],
                },
                &live,
            )
            .unwrap();
        let clash = Commit {
            changes: vec![
                Change::InsertAttachment(record("a:h", "c:h", AttachmentState::Attached)),
                Change::InsertAttachment(record("a:g", "c:i", AttachmentState::Detached)),
            ],
            traces: vec![],
        };
        assert!(store.commit(clash, &live).is_err(), "{name}");
        assert!(
            store.attachment("a:h").unwrap().is_none(),
            "{name}: the failed commit left nothing"
        );
        assert!(
            store.attachment("a:g").unwrap().is_some(),
            "{name}: earlier commits are visible"
        );
        store.abandon_group();
        assert!(store.attachment("a:g").unwrap().is_none(), "{name}");
        assert_eq!(
            store.counts().unwrap().traces,
            3,
            "{name}: the three of the first group"
        );
    });
}

#[test]
fn counts_stay_exact_through_evictions_and_a_capacity_refusal_inside_a_group() {
    let limits = StoreLimits {
        max_records: 2,
        max_binds: 3,
        max_tombstones: 1,
        max_traces: 4,
    };
    each_store!(limits, |name, store| {
        let mut engine = engine_on(store);
        // Device-loss lineages leave tombstones as they are evicted; one is kept.
        lineages(&mut engine, 0..4, DetachReason::DeviceLoss);
        let counts = engine.store().counts().unwrap();
        assert_eq!(
            (counts.attachments, counts.detachments, counts.tombstones),
            (2, 2, 1),
            "{name}"
        );
        assert_eq!((counts.binds, counts.traces), (0, 4), "{name}");
        assert_eq!(
            engine.store().tombstone("client:1").unwrap(),
            Some(DetachReason::DeviceLoss),
            "{name}: the newest tombstone is the one kept"
        );
        // A group: two live attachments fill the store, the third is refused for capacity
        // (nothing evictable while their sessions live), the fourth is a replay of the first.
        engine.open_session(SESS1, Session::default());
        let attach = |i: usize| {
            bytes(&attachment_with(
                &format!("attach:g{i}"),
                &format!("client:g{i}"),
                "2026-03-28T19:42:00Z",
                bind(&k2(), &format!("pb:g{i}"), "2026-03-28T19:41:00Z", SESS1),
            ))
        };
        let group = [attach(0), attach(1), attach(2), attach(0)];
        let admissions = engine
            .admit_group(
                group.iter().map(|a| (&a[..], SESS1)),
                instant("2026-03-28T19:42:05Z"),
            )
            .unwrap();
        let verdicts: Vec<_> = admissions
            .iter()
            .map(|a| (a.verdict.as_str(), a.code()))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("admitted", None),
                ("admitted", None),
                ("rejected", Some(RejectionCode::Capacity)),
                ("replayed", None),
            ],
            "{name}"
        );
        let store = engine.store();
        assert!(store.attachment("attach:g2").unwrap().is_none(), "{name}");
        assert!(store.attachment("attach:g1").unwrap().is_some(), "{name}");
        let counts = store.counts().unwrap();
        assert_eq!(
            (counts.attachments, counts.live, counts.detachments),
            (2, 2, 0),
            "{name}: both old lineages were evicted to make room"
        );
        assert_eq!(
            (counts.binds, counts.tombstones, counts.traces),
            (0, 1, 4),
            "{name}"
        );
        let kinds: Vec<TraceKind> = store
            .recent_traces(10)
            .unwrap()
            .into_iter()
            .map(|trace| trace.event.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                TraceKind::BindAccepted,
                TraceKind::Attached,
                TraceKind::BindAccepted,
                TraceKind::Attached
            ],
            "{name}: the refused admission left no trace"
        );
    });
}

#[test]
fn traces_keep_their_node_and_peer() {
    each_store!(StoreLimits::default(), |name, store| {
        let other = orbi_types::KeyPair::from_seed(&[9; 32]).node_id();
        let mut from_other = trace();
        from_other.node = other.clone();
        from_other.peer = Some(k1().node_id());
        let mut with_peer = trace();
        with_peer.peer = Some(other);
        let events = vec![trace(), from_other, with_peer];
        store
            .commit(
                Commit {
                    changes: vec![],
                    traces: events.clone(),
                },
                &SessionTable::default(),
            )
            .unwrap();
        let stored: Vec<TraceEvent> = store
            .recent_traces(10)
            .unwrap()
            .into_iter()
            .map(|trace| trace.event)
            .collect();
        assert_eq!(stored, events, "{name}");
    });
}

#[test]
fn sqlite_trace_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let limits = StoreLimits {
        max_traces: 1,
        ..Default::default()
    };
    let open = || SqliteStore::open(&path, &k1().node_id(), limits, Durability::Normal).unwrap();
    let live = SessionTable::default();
    let mut seen = Vec::new();
    for round in 0..3 {
        let mut store = open();
        for _ in 0..2 {
            store
                .commit(
                    Commit {
                        changes: vec![],
                        traces: vec![trace(), trace()],
                    },
                    &live,
                )
                .unwrap();
            let traces = store.recent_traces(10).unwrap();
            assert_eq!(traces.len(), 1, "round {round}: only the newest is kept");
            seen.push(traces[0].trace_id.clone());
        }
    }
    assert_eq!(
        seen,
        [
            "trace:2", "trace:4", "trace:6", "trace:8", "trace:10", "trace:12"
        ]
    );
}

#[test]
fn probes_are_their_lookups_at_once() {
    each_store!(StoreLimits::default(), |name, store| {
        let live = SessionTable::default();
        let now = instant("2026-03-28T19:50:00Z");
        let detachment = DetachmentRec {
            detachment_id: "d:1".into(),
            attachment_id: "a:1".into(),
            client_instance_id: "c".into(),
            participant_id: k2().participant_id(),
            reason: DetachReason::DeviceLoss,
            detached_at: at("2026-03-28T19:45:00Z"),
            admitted_at: now,
            origin: DetachmentOrigin::Admitted,
            artifact: b"{}".to_vec(),
            sanction_cleared_at: None,
            under_suspension: false,
        };
        let recovery = RecoveryRec {
            recovery_id: "r:1".into(),
            from_detachment_id: "d:1".into(),
            client_instance_id: "c".into(),
            participant_id: k2().participant_id(),
            mode: orbi_types::pod::RecoveryMode::ReattachExistingDevice,
            recovered_at: at("2026-03-28T19:46:00Z"),
            token_ref: None,
            admitted_at: now,
            grant: GrantState::Open,
            grant_expires_at: instant("2026-03-28T20:50:00Z"),
            consumed_by: None,
            artifact: b"{}".to_vec(),
            bind_session: SESS1.into(),
        };
        for changes in [
            vec![Change::InsertAttachment(record(
                "a:1",
                "c",
                AttachmentState::Attached,
            ))],
            vec![
                Change::InsertDetachment(detachment),
                Change::SetAttachmentState {
                    attachment_id: "a:1".into(),
                    state: AttachmentState::Detached,
                    since: now,
                },
                Change::InsertRecovery(recovery),
                Change::InsertAttachment(record("a:2", "c", AttachmentState::Degraded)),
                Change::InsertAttachment(record("a:3", "other", AttachmentState::Attached)),
            ],
        ] {
            store
                .commit(
                    Commit {
                        changes,
                        traces: vec![],
                    },
                    &live,
                )
                .unwrap();
        }
        let node = k1().node_id();
        for client in ["c", "other", "nobody"] {
            let standing = store.client_standing(&node, client).unwrap();
            assert_eq!(
                standing,
                ClientStanding {
                    live: store.live_attachment(&node, client).unwrap(),
                    latest_detachment: store.latest_detachment(client).unwrap(),
                    tombstone: store.tombstone(client).unwrap(),
                    open_grant: store.open_grant(client).unwrap(),
                },
                "{name}: {client}"
            );
        }
        let standing = store.client_standing(&node, "c").unwrap();
        assert_eq!(
            standing.live.map(|rec| rec.attachment_id).as_deref(),
            Some("a:2"),
            "{name}"
        );
        assert_eq!(
            standing
                .latest_detachment
                .map(|rec| rec.detachment_id)
                .as_deref(),
            Some("d:1"),
            "{name}"
        );
        assert_eq!(
            standing.open_grant.map(|rec| rec.recovery_id).as_deref(),
            Some("r:1"),
            "{name}"
        );
        let elsewhere = orbi_types::KeyPair::from_seed(&[9; 32]).node_id();
        assert_eq!(
            store.client_standing(&elsewhere, "c").unwrap().live,
            None,
            "{name}: live on this node only"
        );
        // A probe is each of its lookups at once; unasked lookups stay empty.
        for (attachment, detachment, recovery, bind) in [
            ("a:1", "d:1", "r:1", ("sess:01JQPARTSESS001", "pb:1")),
            ("a:9", "d:9", "r:9", ("sess:x", "pb:1")),
        ] {
            let probe = Probe {
                attachment_id: Some(attachment),
                detachment_id: Some(detachment),
                recovery_id: Some(recovery),
                bind: Some(bind),
                client: Some((&node, "c")),
            };
            assert_eq!(
                store.probe(&probe).unwrap(),
                Found {
                    attachment: store.attachment(attachment).unwrap(),
                    detachment: store.detachment(detachment).unwrap(),
                    recovery: store.recovery(recovery).unwrap(),
                    bind_digest: store.bind_digest(bind.0, bind.1).unwrap(),
                    standing: store.client_standing(&node, "c").unwrap(),
                },
                "{name}: {attachment}"
            );
        }
        let only_attachment = Probe {
            attachment_id: Some("a:1"),
            ..Probe::default()
        };
        let found = store.probe(&only_attachment).unwrap();
        assert!(found.attachment.is_some(), "{name}");
        assert_eq!(
            (found.detachment, found.recovery, found.standing),
            (None, None, ClientStanding::default()),
            "{name}"
        );
    });
}

#[test]
fn bind_cache_entries_are_bounded_and_attachments_carry_their_binds() {
    let limits = StoreLimits {
        max_binds: 2,
        ..Default::default()
    };
    each_store!(limits, |name, store| {
        let mut engine = engine_on(store);
        engine.open_session(SESS1, Session::default());
        let now = "2026-03-28T19:42:05Z";
        let bare = |id: &str, bound_at: &str| bind(&k2(), id, bound_at, SESS1);
        for id in ["pb:1", "pb:2", "pb:3"] {
            assert_admitted(
                &admit(&mut engine, &bare(id, "2026-03-28T19:41:00Z"), SESS1, now),
                LifecycleState::Bound,
            );
        }
        assert_eq!(engine.store().counts().unwrap().binds, 2, "{name}");
        // The oldest entry is gone (documented: an evicted entry is a miss), the others hold.
        assert!(
            engine.store().bind_digest(SESS1, "pb:1").unwrap().is_none(),
            "{name}"
        );
        let changed = bare("pb:3", "2026-03-28T19:41:30Z");
        assert_rejected(
            &admit(&mut engine, &changed, SESS1, now),
            RejectionCode::BindConflict,
        );
        // A bind that arrives with an attachment is cached by the attachment record.
        let attachment = attachment_with(
            "attach:a",
            "client:a",
            "2026-03-28T19:42:00Z",
            bare("pb:a", "2026-03-28T19:41:00Z"),
        );
        assert_admitted(
            &admit(&mut engine, &attachment, SESS1, now),
            LifecycleState::Attached,
        );
        assert_eq!(engine.store().counts().unwrap().binds, 2, "{name}");
        assert_eq!(
            engine.store().bind_digest(SESS1, "pb:a").unwrap(),
            engine
                .store()
                .attachment("attach:a")
                .unwrap()
                .map(|rec| rec.bind_digest),
            "{name}"
        );
        let changed = bare("pb:a", "2026-03-28T19:41:30Z");
        let conflict = admit(&mut engine, &changed, SESS1, now);
        assert_rejected(&conflict, RejectionCode::BindConflict);
        // The same bind again, alone: a replay of the cached bind.
        let again = admit(
            &mut engine,
            &bare("pb:a", "2026-03-28T19:41:00Z"),
            SESS1,
            now,
        );
        assert_eq!(again.verdict, Verdict::Replayed, "{name}");
    });
}

#[test]
fn sqlite_group_is_durable_only_once_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let open = || sqlite_store(&path);
    let live = SessionTable::default();
    let insert = |id: &str| Commit {
        changes: vec![Change::InsertAttachment(record(
            id,
            id,
            AttachmentState::Attached,
        ))],
        traces: vec![trace()],
    };
    {
        let mut store = open();
        store.begin_group().unwrap();
        store.commit(insert("a:1"), &live).unwrap();
        store.finish_group().unwrap();
        store.begin_group().unwrap();
        store.commit(insert("a:2"), &live).unwrap();
        // Dropped with the group open, as in a crash.
    }
    let mut store = open();
    assert!(store.attachment("a:1").unwrap().is_some());
    assert!(store.attachment("a:2").unwrap().is_none());
    // The counters the finished group stored, and only those.
    assert_eq!(store.counts().unwrap().traces, 1);
    store.commit(insert("a:3"), &live).unwrap();
    let traces = store.recent_traces(10).unwrap();
    let ids: Vec<&str> = traces.iter().map(|trace| trace.trace_id.as_str()).collect();
    assert_eq!(ids, ["trace:1", "trace:2"]);
}

#[test]
fn sqlite_survives_a_restart_and_keeps_bytes_as_received() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let pretty = serde_json::to_vec_pretty(&a1()).unwrap();
    {
        let store = sqlite_store(&path);
        let mut engine = PodEngine::new(k1(), HostPolicy::default(), store).unwrap();
        engine.open_session(SESS1, Session::default());
        let admission = engine
            .admit(&pretty, SESS1, instant("2026-03-28T19:42:05Z"))
            .unwrap();
        assert_admitted(&admission, LifecycleState::Attached);
    }
    let store = SqliteStore::open(
        &path,
        &k1().node_id(),
        StoreLimits::default(),
        Durability::Normal,
    )
    .unwrap();
    let record = store.attachment("attach:01JQCLIATT001").unwrap().unwrap();
    assert_eq!(record.artifact, pretty, "stored exactly as received");
    assert_eq!(record.state, AttachmentState::Attached);
    assert_eq!(record.participant_id, k2().participant_id());
    let traces = store.recent_traces(10).unwrap();
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[1].trace_id, "trace:2");
    assert_eq!(
        traces[1].event.detail["attachment/id"],
        "attach:01JQCLIATT001"
    );
    let mut engine = PodEngine::new(k1(), HostPolicy::default(), store).unwrap();
    engine.open_session(SESS1, Session::default());
    // The compact spelling of the same artifact is the same artifact (JCS-equal): a replay.
    let replay = admit(&mut engine, &a1(), SESS1, "2026-03-28T19:43:00Z");
    assert_eq!(replay.verdict, Verdict::Replayed);
    assert_admitted(
        &admit(&mut engine, &d1(), SESS1, "2026-03-28T20:05:10Z"),
        LifecycleState::Detached,
    );
    drop(engine);
    // The database belongs to K1.
    let other = orbi_types::KeyPair::from_seed(&[9; 32]).node_id();
    let err =
        SqliteStore::open(&path, &other, StoreLimits::default(), Durability::Full).unwrap_err();
    assert!(matches!(err, StoreError::WrongNode { .. }), "{err}");
    let existing = SqliteStore::open_existing(&path, StoreLimits::default()).unwrap();
    assert_eq!(existing.node_id().unwrap(), Some(k1().node_id()));
    let history = existing.client_history(CLIENT).unwrap();
    assert_eq!(
        (history.attachments.len(), history.detachments.len()),
        (1, 1)
    );
    assert!(
        SqliteStore::open_existing(&dir.path().join("missing.sqlite"), StoreLimits::default())
            .is_err()
    );
}

#[test]
fn sqlite_refuses_a_corrupt_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    {
        let store = sqlite_store(&path);
        let mut engine = PodEngine::new(k1(), HostPolicy::default(), store).unwrap();
        engine.open_session(SESS1, Session::default());
        admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE attachments SET participant_id = 'participant:nope'",
        [],
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(
        &path,
        &k1().node_id(),
        StoreLimits::default(),
        Durability::Full,
    )
    .unwrap();
    let err = store.attachment("attach:01JQCLIATT001").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

/// A store whose first commit is beaten by "another writer" that commits the same thing.
struct RacedStore {
    inner: MemoryStore,
    raced: bool,
}

macro_rules! delegate_reads {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> Result<$out, StoreError> { self.inner.$name($($arg),*) })*
    };
}

/// Every read but `count_live_attachments_on` (which some wrappers count), to `self.inner`.
macro_rules! delegate_other_reads {
    () => {
        delegate_reads! {
            attachment(id: &str) -> Option<AttachmentRec>;
            live_attachment(node: &orbi_types::NodeId, client: &str) -> Option<AttachmentRec>;
            live_attachments() -> Vec<AttachmentRec>;
            live_attachments_on(session: &str) -> Vec<AttachmentRec>;
            attachments_due(state: AttachmentState, not_after: time::OffsetDateTime) -> Vec<AttachmentRec>;
            detachment(id: &str) -> Option<orbi_pod::store::DetachmentRec>;
            detachment_of(id: &str) -> Option<orbi_pod::store::DetachmentRec>;
            latest_detachment(client: &str) -> Option<orbi_pod::store::DetachmentRec>;
            tombstone(client: &str) -> Option<DetachReason>;
            recovery(id: &str) -> Option<orbi_pod::store::RecoveryRec>;
            recoveries_from(id: &str) -> Vec<orbi_pod::store::RecoveryRec>;
            open_grant(client: &str) -> Option<orbi_pod::store::RecoveryRec>;
            grants_due(not_after: time::OffsetDateTime) -> Vec<orbi_pod::store::RecoveryRec>;
            count_open_grants_on(session: &str, now: time::OffsetDateTime) -> usize;
            bind_digest(session: &str, bind_id: &str) -> Option<Sha256Digest>;
            client_history(client: &str) -> orbi_pod::store::ClientHistory;
            counts() -> orbi_pod::store::Counts;
            recent_traces(limit: usize) -> Vec<orbi_pod::store::Trace>;
        }
    };
}

impl Store for RacedStore {
    delegate_reads! {
        count_live_attachments_on(session: &str) -> usize;
    }
    delegate_other_reads!();

    fn commit(&mut self, commit: Commit, live: &SessionTable) -> Result<(), StoreError> {
        if !self.raced {
            self.raced = true;
            self.inner.commit(commit, live)?;
            return Err(StoreError::Constraint("another writer was first".into()));
        }
        self.inner.commit(commit, live)
    }

    fn begin_group(&mut self) -> Result<(), StoreError> {
        self.inner.begin_group()
    }

    fn finish_group(&mut self) -> Result<(), StoreError> {
        self.inner.finish_group()
    }

    fn abandon_group(&mut self) {
        self.inner.abandon_group()
    }
}

#[test]
fn losing_a_write_race_is_judged_again() {
    let store = RacedStore {
        inner: MemoryStore::new(),
        raced: false,
    };
    let mut engine = PodEngine::new(k1(), HostPolicy::default(), store).unwrap();
    engine.open_session(SESS1, Session::default());
    let admission = admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
    assert_eq!(admission.verdict, Verdict::Replayed);
    assert_eq!(admission.state, Some(LifecycleState::Attached));
}

#[test]
fn one_peer_node_holds_at_most_its_share_of_live_attachments() {
    each_store!(StoreLimits::default(), |name, store| {
        let policy = HostPolicy {
            max_live_attachments_per_peer: 2,
            ..HostPolicy::default()
        };
        let mut engine = PodEngine::new(k1(), policy, store).unwrap();
        let node = |seed: u8| Session {
            peer: Some(orbi_types::KeyPair::from_seed(&[seed; 32]).node_id()),
            ..Session::default()
        };
        // Two sessions of one client node, one of another.
        engine.open_session(SESS1, node(40));
        engine.open_session(SESS2, node(40));
        engine.open_session(SESS3, node(41));
        let attach = |n: u32, session: &str| {
            attachment_with(
                &format!("attach:{n}"),
                &format!("client:{n}"),
                "2026-03-28T19:42:00Z",
                bind(&k2(), &format!("pb:{n}"), "2026-03-28T19:41:00Z", session),
            )
        };
        let now = "2026-03-28T19:42:05Z";
        for (n, session) in [(1, SESS1), (2, SESS2)] {
            assert_admitted(
                &admit(&mut engine, &attach(n, session), session, now),
                LifecycleState::Attached,
            );
        }
        // The node's third, on either session, is over its share.
        let admission = admit(&mut engine, &attach(3, SESS1), SESS1, now);
        assert_rejected(&admission, RejectionCode::Capacity);
        let message = &admission.rejection().unwrap().message;
        assert!(
            message.contains("limit of 2 live attachments"),
            "{name}: {message}"
        );
        assert!(
            engine.store().attachment("attach:3").unwrap().is_none(),
            "{name}"
        );
        // Another node is not held to the first one's share.
        assert_admitted(
            &admit(&mut engine, &attach(4, SESS3), SESS3, now),
            LifecycleState::Attached,
        );
        // A detachment gives its place back.
        let detach = user_detach(1, SESS1, "2026-03-28T20:05:00Z", "2026-03-28T20:04:00Z");
        assert_admitted(
            &admit(&mut engine, &detach, SESS1, "2026-03-28T20:05:05Z"),
            LifecycleState::Detached,
        );
        assert_admitted(
            &admit(
                &mut engine,
                &attach(3, SESS1),
                SESS1,
                "2026-03-28T20:06:00Z",
            ),
            LifecycleState::Attached,
        );
        assert_rejected(
            &admit(
                &mut engine,
                &attach(5, SESS2),
                SESS2,
                "2026-03-28T20:06:00Z",
            ),
            RejectionCode::Capacity,
        );
        // A lost session's attachments still count for its node while they wait, degraded,
        // for their clients to come back (a node cannot shed its count by reconnecting) ...
        engine
            .session_lost(SESS2, instant("2026-03-28T20:06:00Z"))
            .unwrap();
        assert_rejected(
            &admit(
                &mut engine,
                &attach(5, SESS1),
                SESS1,
                "2026-03-28T20:06:01Z",
            ),
            RejectionCode::Capacity,
        );
        // ... until the degraded grace ends them.
        engine.tick(instant("2026-03-28T20:08:00Z")).unwrap();
        assert_admitted(
            &admit(
                &mut engine,
                &attach(5, SESS1),
                SESS1,
                "2026-03-28T20:08:00Z",
            ),
            LifecycleState::Attached,
        );
    });
}

/// A store that counts recounts and can be told to fail its next group commit.
struct Instrumented {
    inner: MemoryStore,
    recounts: std::cell::Cell<usize>,
    fail_next_group: std::cell::Cell<bool>,
}

impl Store for Instrumented {
    delegate_other_reads!();

    fn count_live_attachments_on(&self, session: &str) -> Result<usize, StoreError> {
        self.recounts.set(self.recounts.get() + 1);
        self.inner.count_live_attachments_on(session)
    }

    fn commit(&mut self, commit: Commit, live: &SessionTable) -> Result<(), StoreError> {
        self.inner.commit(commit, live)
    }

    fn begin_group(&mut self) -> Result<(), StoreError> {
        self.inner.begin_group()
    }

    fn finish_group(&mut self) -> Result<(), StoreError> {
        if self.fail_next_group.take() {
            self.inner.abandon_group();
            return Err(StoreError::Backend("the disk is gone".into()));
        }
        self.inner.finish_group()
    }

    fn abandon_group(&mut self) {
        self.inner.abandon_group()
    }
}

/// An engine on an [`Instrumented`] store where node 40 may hold `limit` live attachments,
/// with SESS1 and SESS2 its sessions.
fn share_engine(limit: usize) -> PodEngine<Instrumented> {
    let store = Instrumented {
        inner: MemoryStore::new(),
        recounts: std::cell::Cell::new(0),
        fail_next_group: std::cell::Cell::new(false),
    };
    let policy = HostPolicy {
        max_live_attachments_per_peer: limit,
        ..HostPolicy::default()
    };
    let mut engine = PodEngine::new(k1(), policy, store).unwrap();
    for session in [SESS1, SESS2] {
        engine.open_session(
            session,
            Session {
                peer: Some(orbi_types::KeyPair::from_seed(&[40; 32]).node_id()),
                ..Session::default()
            },
        );
    }
    engine
}

/// Attachment `id` of `client` on `session`.
fn attach_on(id: &str, client: &str, session: &str) -> serde_json::Value {
    attachment_with(
        id,
        client,
        "2026-03-28T19:42:00Z",
        bind(&k2(), &format!("pb:{id}"), "2026-03-28T19:41:00Z", session),
    )
}

/// The user-request detachment `detach:{n}` of `attach:{n}` (client `n`) on `session`, at
/// `detached_at`, under a bind `pb:d{n}` made at `bound_at`.
fn user_detach(n: u32, session: &str, detached_at: &str, bound_at: &str) -> serde_json::Value {
    detachment_with(
        &format!("detach:{n}"),
        &format!("attach:{n}"),
        &format!("client:{n}"),
        DetachReason::UserRequest,
        detached_at,
        bind(&k2(), &format!("pb:d{n}"), bound_at, session),
    )
}

/// Clients `n` in `clients`, attached as `attach:{n}{suffix}` on `session` at `now`: all admitted.
fn attach_clients(
    engine: &mut PodEngine<Instrumented>,
    clients: std::ops::RangeInclusive<u32>,
    suffix: &str,
    session: &str,
    now: &str,
) {
    for n in clients {
        let attach = attach_on(
            &format!("attach:{n}{suffix}"),
            &format!("client:{n}"),
            session,
        );
        assert_admitted(
            &admit(engine, &attach, session, now),
            LifecycleState::Attached,
        );
    }
}

/// A new client `n` on `session` at `now` is over its node's share.
#[track_caller]
fn assert_over_share(engine: &mut PodEngine<Instrumented>, n: u32, session: &str, now: &str) {
    let attach = attach_on(&format!("attach:{n}"), &format!("client:{n}"), session);
    assert_rejected(
        &admit(engine, &attach, session, now),
        RejectionCode::Capacity,
    );
}

#[test]
fn a_node_at_its_share_may_bring_its_own_clients_back_on_a_new_session() {
    let mut engine = share_engine(2);
    let now = "2026-03-28T19:42:05Z";
    attach_clients(&mut engine, 1..=2, "", SESS1, now);
    engine
        .session_lost(SESS1, instant("2026-03-28T19:43:00Z"))
        .unwrap();
    // Client 1 comes back on the node's new session: its degraded attachment is replaced
    // (T13), so the node's share does not grow.
    let back = attach_on("attach:1b", "client:1", SESS2);
    assert_admitted(
        &admit(&mut engine, &back, SESS2, "2026-03-28T19:43:10Z"),
        LifecycleState::Attached,
    );
    // A third client still does not fit.
    assert_over_share(&mut engine, 3, SESS2, "2026-03-28T19:43:10Z");
}

#[test]
fn a_node_at_its_share_is_recounted_at_most_once_per_backoff() {
    let mut engine = share_engine(1);
    let now = instant("2026-03-28T19:42:05Z");
    let first = attach_on("attach:1", "client:1", SESS1);
    assert_admitted(
        &admit(&mut engine, &first, SESS1, "2026-03-28T19:42:05Z"),
        LifecycleState::Attached,
    );
    let attempt = |engine: &mut PodEngine<Instrumented>, n: u32, at: time::OffsetDateTime| {
        let value = attach_on(&format!("attach:x{n}"), &format!("client:x{n}"), SESS2);
        engine.admit(&bytes(&value), SESS2, at).unwrap()
    };
    for n in 0..5 {
        let admission = attempt(
            &mut engine,
            n,
            now + time::Duration::milliseconds(100 * i64::from(n)),
        );
        assert_rejected(&admission, RejectionCode::Capacity);
    }
    let recounts = engine.store().recounts.get();
    assert_eq!(
        recounts, 2,
        "one recount for each of the node's two sessions, once"
    );
    let later = now + orbi_pod::RECOUNT_BACKOFF + time::Duration::milliseconds(1);
    assert_rejected(&attempt(&mut engine, 9, later), RejectionCode::Capacity);
    assert_eq!(
        engine.store().recounts.get(),
        recounts + 2,
        "recounted again after the backoff"
    );
}

#[test]
fn a_failed_group_puts_the_counts_back() {
    let mut engine = share_engine(3);
    let now = "2026-03-28T19:42:05Z";
    attach_clients(&mut engine, 1..=3, "", SESS1, now);
    // A group detaches two and attaches one (recounting inside the group), then fails.
    let detach = |n: u32| {
        bytes(&user_detach(
            n,
            SESS1,
            "2026-03-28T20:05:00Z",
            "2026-03-28T20:04:00Z",
        ))
    };
    let fourth = bytes(&attach_on("attach:4", "client:4", SESS1));
    engine.store().fail_next_group.set(true);
    let group = [
        (detach(1), SESS1),
        (detach(2), SESS1),
        (fourth.clone(), SESS1),
    ];
    let result = engine.admit_group(
        group
            .iter()
            .map(|(bytes, session)| (bytes.as_slice(), *session)),
        instant("2026-03-28T20:05:05Z"),
    );
    assert!(result.is_err());
    // The three are still live: a fourth does not fit.
    assert_eq!(engine.store().count_live_attachments_on(SESS1).unwrap(), 3);
    assert_over_share(&mut engine, 5, SESS2, "2026-03-28T20:05:10Z");
}

#[test]
fn the_timer_forgets_closed_sessions_once_their_attachments_end() {
    let mut engine = share_engine(10);
    let attach = attach_on("attach:1", "client:1", SESS1);
    assert_admitted(
        &admit(&mut engine, &attach, SESS1, "2026-03-28T19:42:05Z"),
        LifecycleState::Attached,
    );
    engine
        .session_lost(SESS1, instant("2026-03-28T19:43:00Z"))
        .unwrap();
    assert_eq!(
        engine.sessions().lost_counted(),
        1,
        "degraded, still counted"
    );
    engine.tick(instant("2026-03-28T19:43:30Z")).unwrap();
    assert_eq!(
        engine.sessions().lost_counted(),
        1,
        "within the degraded grace"
    );
    engine.tick(instant("2026-03-28T19:45:00Z")).unwrap();
    assert_eq!(
        engine.sessions().lost_counted(),
        0,
        "detached by the timer, forgotten"
    );
}

#[test]
fn bringing_clients_back_moves_their_places_without_a_recount() {
    let mut engine = share_engine(3);
    attach_clients(&mut engine, 1..=3, "", SESS1, "2026-03-28T19:42:05Z");
    engine
        .session_lost(SESS1, instant("2026-03-28T19:43:00Z"))
        .unwrap();
    attach_clients(&mut engine, 1..=3, "b", SESS2, "2026-03-28T19:43:10Z");
    assert_eq!(
        engine.store().recounts.get(),
        0,
        "each return took its old place"
    );
    assert_eq!(
        engine.sessions().lost_counted(),
        0,
        "the lost session has nothing left"
    );
    assert_over_share(&mut engine, 4, SESS2, "2026-03-28T19:43:10Z");
}

#[test]
fn an_ended_attachment_lifts_the_recount_backoff() {
    let mut engine = share_engine(1);
    let first = attach_on("attach:1", "client:1", SESS1);
    assert_admitted(
        &admit(&mut engine, &first, SESS1, "2026-03-28T19:42:05Z"),
        LifecycleState::Attached,
    );
    let second = attach_on("attach:2", "client:2", SESS2);
    assert_rejected(
        &admit(&mut engine, &second, SESS2, "2026-03-28T19:42:06.000Z"),
        RejectionCode::Capacity,
    );
    let detach = user_detach(1, SESS1, "2026-03-28T19:42:06.100Z", "2026-03-28T19:42:06Z");
    assert_admitted(
        &admit(&mut engine, &detach, SESS1, "2026-03-28T19:42:06.200Z"),
        LifecycleState::Detached,
    );
    // Within the backoff, but a place was freed: recounted, and it fits.
    assert_admitted(
        &admit(&mut engine, &second, SESS2, "2026-03-28T19:42:06.300Z"),
        LifecycleState::Attached,
    );
}

fn detachment_rec(id: &str, attachment_id: &str, reason: DetachReason) -> DetachmentRec {
    DetachmentRec {
        detachment_id: id.into(),
        attachment_id: attachment_id.into(),
        client_instance_id: format!("client:{attachment_id}"),
        participant_id: k2().participant_id(),
        reason,
        detached_at: at("2026-03-28T19:45:00Z"),
        admitted_at: instant("2026-03-28T19:45:05Z"),
        origin: DetachmentOrigin::Host,
        artifact: b"{}".to_vec(),
        sanction_cleared_at: None,
        under_suspension: false,
    }
}

#[test]
fn a_sanction_is_cleared_once_and_only_a_sanction_by_the_store_itself() {
    each_store!(StoreLimits::default(), |name, store| {
        let live = SessionTable::default();
        let mut changes = Vec::new();
        for (attachment, detachment, reason) in [
            ("a:1", "d:policy", DetachReason::Policy),
            ("a:2", "d:user", DetachReason::UserRequest),
        ] {
            let client = format!("client:{attachment}");
            changes.push(Change::InsertAttachment(record(
                attachment,
                &client,
                AttachmentState::Detached,
            )));
            changes.push(Change::InsertDetachment(detachment_rec(
                detachment, attachment, reason,
            )));
        }
        // A user's own exit of a suspended attachment holds the suspension as a sanction.
        changes.push(Change::InsertAttachment(record(
            "a:3",
            "client:a:3",
            AttachmentState::Detached,
        )));
        changes.push(Change::InsertDetachment(DetachmentRec {
            origin: DetachmentOrigin::Admitted,
            under_suspension: true,
            ..detachment_rec("d:suspended", "a:3", DetachReason::UserRequest)
        }));
        store
            .commit(
                Commit {
                    changes,
                    traces: vec![],
                },
                &live,
            )
            .unwrap();
        let at = instant("2026-03-28T19:55:00Z");
        let clear = |id: &str| Commit {
            changes: vec![Change::ClearSanction {
                detachment_id: id.into(),
                at,
            }],
            traces: vec![trace()],
        };
        let cleared_at = |store: &dyn Store| {
            store
                .detachment("d:policy")
                .unwrap()
                .unwrap()
                .sanction_cleared_at
        };
        for refused in ["d:nope", "d:user"] {
            let err = store.commit(clear(refused), &live).unwrap_err();
            assert!(
                matches!(err, StoreError::Constraint(_)),
                "{name} {refused}: {err}"
            );
        }
        // Atomic: a clearing beside a refused one is not kept either.
        let mut both = clear("d:policy");
        both.changes.extend(clear("d:user").changes);
        assert!(store.commit(both, &live).is_err(), "{name}");
        assert_eq!(cleared_at(&store), None, "{name}");
        assert_eq!(store.counts().unwrap().traces, 0, "{name}");

        store.commit(clear("d:policy"), &live).unwrap();
        assert_eq!(cleared_at(&store), Some(at), "{name}");
        let twice = Commit {
            changes: vec![Change::ClearSanction {
                detachment_id: "d:policy".into(),
                at: instant("2026-03-28T20:00:00Z"),
            }],
            traces: vec![],
        };
        let err = store.commit(twice, &live).unwrap_err();
        assert!(matches!(err, StoreError::Constraint(_)), "{name}: {err}");
        assert_eq!(
            cleared_at(&store),
            Some(at),
            "{name}: the first clearing is kept"
        );
        assert_eq!(
            store
                .detachment("d:user")
                .unwrap()
                .unwrap()
                .sanction_cleared_at,
            None
        );
        store.commit(clear("d:suspended"), &live).unwrap();
        let suspended = store.detachment("d:suspended").unwrap().unwrap();
        assert_eq!(
            (suspended.sanction_cleared_at, suspended.under_suspension),
            (Some(at), true),
            "{name}"
        );
    });
}

#[test]
fn clearing_a_sanction_another_writer_just_cleared_is_answered_as_cleared() {
    let mut engine = PodEngine::new(
        k1(),
        HostPolicy::default(),
        RacedStore {
            inner: MemoryStore::new(),
            raced: true,
        },
    )
    .unwrap();
    engine.open_session(SESS1, Session::default());
    admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
    engine
        .detach(
            "attach:01JQCLIATT001",
            DetachReason::Policy,
            None,
            instant("2026-03-28T19:50:00Z"),
        )
        .unwrap();
    let mut store = engine.into_store();
    let detachment = store
        .detachment_of("attach:01JQCLIATT001")
        .unwrap()
        .unwrap()
        .detachment_id;
    // The next commit lands, and then reports that another writer was first.
    store.raced = false;
    let mut engine = PodEngine::new(k1(), HostPolicy::default(), store).unwrap();
    let now = instant("2026-03-28T19:55:00Z");

    let cleared = engine.clear_sanction(&detachment, now).unwrap();

    assert!(!cleared.newly_cleared);
    assert_eq!(cleared.cleared_at, now);
    let record = engine.store().detachment(&detachment).unwrap().unwrap();
    assert_eq!(record.sanction_cleared_at, Some(now));
}

/// One step of [`sqlite_reopened_before_every_step_agrees_with_memory`].
enum Step {
    Open(&'static str),
    Lost(&'static str, &'static str),
    Admit(serde_json::Value, &'static str, &'static str),
    Tick(&'static str),
    Suspend(&'static str, &'static str),
    Lift(&'static str, &'static str),
    HostDetach(&'static str, DetachReason, &'static str),
    /// Clears the sanction of the detachment that ended this attachment.
    ClearSanctionOf(&'static str, &'static str),
}

/// What a step produced, comparable across read models.
#[derive(Debug, PartialEq)]
enum Outcome {
    Admission(orbi_pod::Admission),
    Transitions(Result<Vec<orbi_pod::Transition>, String>),
    Cleared(Result<orbi_pod::SanctionCleared, String>),
}

fn run_step<S: Store>(engine: &mut PodEngine<S>, step: &Step) -> Outcome {
    let one = |result: Result<orbi_pod::Transition, orbi_pod::EngineError>| {
        Outcome::Transitions(result.map(|t| vec![t]).map_err(|e| e.to_string()))
    };
    match step {
        Step::Open(id) => {
            engine.open_session(*id, Session::default());
            Outcome::Transitions(Ok(vec![]))
        }
        Step::Lost(id, now) => Outcome::Transitions(
            engine
                .session_lost(id, instant(now))
                .map_err(|e| e.to_string()),
        ),
        Step::Admit(value, session, now) => Outcome::Admission(admit(engine, value, session, now)),
        Step::Tick(now) => {
            Outcome::Transitions(engine.tick(instant(now)).map_err(|e| e.to_string()))
        }
        Step::Suspend(id, now) => one(engine.suspend(id, instant(now))),
        Step::Lift(id, now) => one(engine.lift(id, instant(now))),
        Step::HostDetach(id, reason, now) => one(engine.detach(id, *reason, None, instant(now))),
        Step::ClearSanctionOf(attachment, now) => {
            let detachment = engine
                .store()
                .detachment_of(attachment)
                .unwrap()
                .unwrap()
                .detachment_id;
            Outcome::Cleared(
                engine
                    .clear_sanction(&detachment, instant(now))
                    .map_err(|e| e.to_string()),
            )
        }
    }
}

fn script() -> Vec<Step> {
    use Step::*;
    let a2 = attachment_on("attach:a2", CLIENT, "2026-03-28T20:25:30Z", SESS3);
    let a3 = attachment_on("attach:a3", CLIENT, "2026-03-28T20:40:00Z", SESS2);
    let a4 = attachment_on("attach:a4", NEW_CLIENT, "2026-03-28T20:41:00Z", SESS2);
    let mut a1_changed = a1();
    a1_changed["export/capable?"] = json!(false);
    // Cites the detachment the host builds for a4; filled in when it exists.
    let resume = recovery_with(
        "recover:resume",
        NEW_CLIENT,
        orbi_types::pod::RecoveryMode::ResumeAfterSuspension,
        "PLACEHOLDER",
        "2026-03-28T20:50:00Z",
        None,
        bind(&k2(), "pb:resume", "2026-03-28T20:50:00Z", SESS2),
    );
    vec![
        Open(SESS1),
        Admit(a1(), SESS1, "2026-03-28T19:42:05Z"),
        Admit(a1(), SESS1, "2026-03-28T19:43:00Z"),
        Admit(a1_changed, SESS1, "2026-03-28T19:43:00Z"),
        Admit(d1(), SESS1, "2026-03-28T20:05:05Z"),
        Admit(d1(), SESS1, "2026-03-28T20:05:06Z"),
        Open(SESS3),
        Admit(
            reattach_after_d1("recover:r1"),
            SESS3,
            "2026-03-28T20:25:05Z",
        ),
        Admit(
            reattach_after_d1("recover:r1"),
            SESS3,
            "2026-03-28T20:25:06Z",
        ),
        Admit(a2, SESS3, "2026-03-28T20:25:35Z"),
        Lost(SESS3, "2026-03-28T20:30:00Z"),
        Tick("2026-03-28T20:30:30Z"),
        Tick("2026-03-28T20:32:00Z"),
        Open(SESS2),
        Admit(a3, SESS2, "2026-03-28T20:40:05Z"),
        Suspend("attach:a3", "2026-03-28T20:40:10Z"),
        Lift("attach:a3", "2026-03-28T20:40:20Z"),
        Suspend("attach:a3", "2026-03-28T20:40:30Z"),
        Admit(a4, SESS2, "2026-03-28T20:41:05Z"),
        HostDetach("attach:a4", DetachReason::Policy, "2026-03-28T20:45:00Z"),
        // Held: the policy has not cleared.
        Admit(resume.clone(), SESS2, "2026-03-28T20:50:05Z"),
        ClearSanctionOf("attach:a4", "2026-03-28T20:51:00Z"),
        ClearSanctionOf("attach:a4", "2026-03-28T20:51:30Z"),
        Admit(resume, SESS2, "2026-03-28T20:52:00Z"),
        Tick("2026-03-28T21:05:00Z"),
        HostDetach(
            "attach:a3",
            DetachReason::OperatorAction,
            "2026-03-28T21:06:00Z",
        ),
        ClearSanctionOf("attach:a3", "2026-03-28T21:07:00Z"),
        Tick("2026-03-28T21:10:00Z"),
    ]
}

type Snapshot = (
    orbi_pod::store::Counts,
    Vec<orbi_pod::store::Trace>,
    orbi_pod::store::ClientHistory,
    orbi_pod::store::ClientHistory,
);

fn snapshot<S: Store>(engine: &PodEngine<S>) -> Snapshot {
    let store = engine.store();
    (
        store.counts().unwrap(),
        store.recent_traces(1000).unwrap(),
        store.client_history(CLIENT).unwrap(),
        store.client_history(NEW_CLIENT).unwrap(),
    )
}

#[test]
fn sqlite_reopened_before_every_step_agrees_with_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let open = || sqlite_store(&path);
    let mut memory = engine_on(MemoryStore::new());
    let mut live: Vec<&'static str> = Vec::new();
    let mut outcomes = Vec::new();
    for (n, mut step) in script().into_iter().enumerate() {
        if let Step::Admit(value, _, _) = &mut step
            && value["recovery/from-detachment-id"] == "PLACEHOLDER"
        {
            let detachment = memory.store().detachment_of("attach:a4").unwrap().unwrap();
            // Outside the bind: the participant's signature still holds.
            value["recovery/from-detachment-id"] = json!(detachment.detachment_id);
        }
        let mut sqlite = engine_on(open());
        for session in &live {
            sqlite.open_session(*session, Session::default());
        }
        let expected = run_step(&mut memory, &step);
        let got = run_step(&mut sqlite, &step);
        assert_eq!(got, expected, "step {n}");
        match &step {
            Step::Open(id) => live.push(id),
            Step::Lost(id, _) => live.retain(|s| s != id),
            _ => {}
        }
        assert_eq!(snapshot(&sqlite), snapshot(&memory), "after step {n}");
        outcomes.push(expected);
    }
    // The script went where it meant to (not a vacuous agreement): the recovery of a4's
    // `policy` end was held, then admitted once the host had cleared it (the second clearing
    // changing nothing); a3's `operator-action` end is cleared.
    let code = |n: usize| match &outcomes[n] {
        Outcome::Admission(admission) => admission.code(),
        other => panic!("step {n}: {other:?}"),
    };
    assert_eq!(code(20), Some(RejectionCode::State));
    assert!(matches!(&outcomes[21], Outcome::Cleared(Ok(c)) if c.newly_cleared));
    assert!(matches!(&outcomes[22], Outcome::Cleared(Ok(c)) if !c.newly_cleared));
    assert!(matches!(&outcomes[23], Outcome::Admission(a) if a.verdict == Verdict::Admitted));
    assert!(matches!(&outcomes[26], Outcome::Cleared(Ok(c)) if c.newly_cleared));
    let history = engine_on(open()).store().client_history(CLIENT).unwrap();
    assert_eq!(history.attachments.len(), 3, "{history:#?}");
    assert!(
        history
            .detachments
            .iter()
            .any(|d| d.reason == DetachReason::OperatorAction && !d.sanction_in_force())
    );
    let grants = memory
        .store()
        .client_history(NEW_CLIENT)
        .unwrap()
        .recoveries;
    assert_eq!(grants.len(), 1);
}

/// The recount backoff is half-open: at exactly `RECOUNT_BACKOFF` after a refusing recount,
/// the node is recounted again.
#[test]
fn a_node_at_its_share_is_recounted_again_at_exactly_the_backoff() {
    let mut engine = share_engine(1);
    let now = instant("2026-03-28T19:42:05Z");
    assert_admitted(
        &admit(
            &mut engine,
            &attach_on("attach:1", "client:1", SESS1),
            SESS1,
            "2026-03-28T19:42:05Z",
        ),
        LifecycleState::Attached,
    );
    let attempt = |engine: &mut PodEngine<Instrumented>, n: u32, at: time::OffsetDateTime| {
        let value = attach_on(&format!("attach:x{n}"), &format!("client:x{n}"), SESS2);
        engine.admit(&bytes(&value), SESS2, at).unwrap()
    };
    assert_rejected(&attempt(&mut engine, 0, now), RejectionCode::Capacity);
    let recounts = engine.store().recounts.get();
    assert_rejected(
        &attempt(&mut engine, 1, now + orbi_pod::RECOUNT_BACKOFF),
        RejectionCode::Capacity,
    );
    assert!(engine.store().recounts.get() > recounts);
}

/// Hostile peer node, resources: a recovery grant keeps its lineage from eviction for its
/// window, so an open grant holds a place in the node's share like a live attachment. A
/// peer node allowed a single place cannot open grant after grant (attach, detach
/// `user-request`, `reattach-existing-device`, next client) and fill the read model with
/// lineages nothing may evict: its second client is `E_POD_CAPACITY`, and another node's
/// attachment still fits.
#[test]
fn one_node_cannot_fill_the_read_model_with_open_grants() {
    let limits = StoreLimits {
        max_records: 6,
        ..Default::default()
    };
    let policy = HostPolicy {
        max_live_attachments_per_peer: 1,
        ..HostPolicy::default()
    };
    let (hostile, victim) = (
        orbi_types::KeyPair::from_seed(&[41; 32]).node_id(),
        orbi_types::KeyPair::from_seed(&[40; 32]).node_id(),
    );
    let of = |peer: &orbi_types::NodeId| Session {
        peer: Some(peer.clone()),
        ..Session::default()
    };
    let at = "2026-03-28T19:42:00Z";
    let now = "2026-03-28T19:42:05Z";
    each_store!(limits, |name, store| {
        let mut engine = PodEngine::new(k1(), policy.clone(), store).unwrap();
        engine.open_session(SESS1, of(&victim));
        engine.open_session(SESS2, of(&hostile));
        let signed = |id: String| bind(&other_participant(), &id, at, SESS2);
        for n in 1..=3 {
            let client = format!("client:h{n}");
            let steps = [
                attachment_with(
                    &format!("attach:h{n}"),
                    &client,
                    at,
                    signed(format!("pb:h{n}a")),
                ),
                detachment_with(
                    &format!("detach:h{n}"),
                    &format!("attach:h{n}"),
                    &client,
                    DetachReason::UserRequest,
                    at,
                    signed(format!("pb:h{n}d")),
                ),
                recovery_with(
                    &format!("recover:h{n}"),
                    &client,
                    orbi_types::pod::RecoveryMode::ReattachExistingDevice,
                    &format!("detach:h{n}"),
                    at,
                    None,
                    signed(format!("pb:h{n}r")),
                ),
            ];
            for step in &steps {
                let admission = admit(&mut engine, step, SESS2, now);
                if n == 1 {
                    assert_eq!(
                        admission.verdict,
                        Verdict::Admitted,
                        "{name}: {admission:#?}"
                    );
                    continue;
                }
                // Its one grant holds the node's one place: the next client is refused.
                assert_eq!(
                    admission.code(),
                    Some(RejectionCode::Capacity),
                    "{name}: {admission:#?}"
                );
                break;
            }
        }
        let other = attachment_on("attach:victim", "client:victim", at, SESS1);
        let admission = admit(&mut engine, &other, SESS1, now);
        assert_eq!(
            admission.verdict,
            Verdict::Admitted,
            "{name}: a node held to one live attachment has filled the read model with \
             grants: {:?}",
            admission.rejection()
        );
    });
}

/// The other side of counting grants: a node at its share of one place, whose one place is
/// its open grant, may still use that grant (the attachment takes the grant's place, T17);
/// and a grant that expires (T18) frees its place at once for the node's next client.
#[test]
fn a_node_at_its_share_uses_its_own_grant_and_gets_the_place_back_when_one_expires() {
    let policy = HostPolicy {
        max_live_attachments_per_peer: 1,
        ..HostPolicy::default()
    };
    let peer = orbi_types::KeyPair::from_seed(&[41; 32]).node_id();
    let at = "2026-03-28T19:42:00Z";
    each_store!(StoreLimits::default(), |name, store| {
        let mut engine = PodEngine::new(k1(), policy.clone(), store).unwrap();
        engine.open_session(
            SESS2,
            Session {
                peer: Some(peer.clone()),
                ..Session::default()
            },
        );
        let signed = |id: &str| bind(&other_participant(), id, at, SESS2);
        let grant_for = |engine: &mut PodEngine<_>, n: u32, now: &str| {
            let client = format!("client:g{n}");
            for step in [
                attachment_with(
                    &format!("attach:g{n}"),
                    &client,
                    at,
                    signed(&format!("pb:g{n}a")),
                ),
                detachment_with(
                    &format!("detach:g{n}"),
                    &format!("attach:g{n}"),
                    &client,
                    DetachReason::UserRequest,
                    at,
                    signed(&format!("pb:g{n}d")),
                ),
                recovery_with(
                    &format!("recover:g{n}"),
                    &client,
                    orbi_types::pod::RecoveryMode::ReattachExistingDevice,
                    &format!("detach:g{n}"),
                    at,
                    None,
                    signed(&format!("pb:g{n}r")),
                ),
            ] {
                let admission = admit(engine, &step, SESS2, now);
                assert_eq!(
                    admission.verdict,
                    Verdict::Admitted,
                    "{name}: {admission:#?}"
                );
            }
        };
        grant_for(&mut engine, 1, "2026-03-28T19:42:05Z");
        let back = attachment_with("attach:g1-back", "client:g1", at, signed("pb:g1b"));
        let used = admit(&mut engine, &back, SESS2, "2026-03-28T19:42:06Z");
        assert_admitted(&used, LifecycleState::Attached);
        assert_eq!(used.transitions[0].rule, orbi_pod::Rule::T17, "{name}");
        // Its place is the live attachment now: a second client does not fit.
        let second = attachment_with("attach:g2", "client:g2", at, signed("pb:g2a"));
        assert_rejected(
            &admit(&mut engine, &second, SESS2, "2026-03-28T19:42:07Z"),
            RejectionCode::Capacity,
        );
        // End it, open a grant for another client, and let that grant expire.
        let ended = detachment_with(
            "detach:g1-back",
            "attach:g1-back",
            "client:g1",
            DetachReason::UserRequest,
            at,
            signed("pb:g1e"),
        );
        assert_admitted(
            &admit(&mut engine, &ended, SESS2, "2026-03-28T19:42:08Z"),
            LifecycleState::Detached,
        );
        grant_for(&mut engine, 3, "2026-03-28T19:42:09Z");
        // Refused (after a recount) just before the grant's window ends at 19:52:09 ...
        let fourth = attachment_with("attach:g4", "client:g4", at, signed("pb:g4a"));
        assert_rejected(
            &admit(&mut engine, &fourth, SESS2, "2026-03-28T19:52:08.800Z"),
            RejectionCode::Capacity,
        );
        let expired = engine.tick(instant("2026-03-28T19:52:09.200Z")).unwrap();
        assert!(
            expired
                .iter()
                .any(|t| t.rule == orbi_pod::Rule::T18 && t.subject == "recover:g3"),
            "{name}: {expired:#?}"
        );
        // ... and admitted right after it expired, inside the recount backoff of that refusal.
        assert_admitted(
            &admit(&mut engine, &fourth, SESS2, "2026-03-28T19:52:09.400Z"),
            LifecycleState::Attached,
        );
    });
}

/// Detached clients need no place, but a grant for one does: a node allowed one place that
/// attached and detached two clients in turn may recover one of them, not both.
#[test]
fn a_node_cannot_open_more_grants_than_its_share_at_once() {
    let policy = HostPolicy {
        max_live_attachments_per_peer: 1,
        ..HostPolicy::default()
    };
    let peer = orbi_types::KeyPair::from_seed(&[41; 32]).node_id();
    let at = "2026-03-28T19:42:00Z";
    let now = "2026-03-28T19:42:05Z";
    each_store!(StoreLimits::default(), |name, store| {
        let mut engine = PodEngine::new(k1(), policy.clone(), store).unwrap();
        engine.open_session(
            SESS2,
            Session {
                peer: Some(peer.clone()),
                ..Session::default()
            },
        );
        let signed = |id: &str| bind(&other_participant(), id, at, SESS2);
        for n in 1..=2 {
            let client = format!("client:d{n}");
            for step in [
                attachment_with(
                    &format!("attach:d{n}"),
                    &client,
                    at,
                    signed(&format!("pb:d{n}a")),
                ),
                detachment_with(
                    &format!("detach:d{n}"),
                    &format!("attach:d{n}"),
                    &client,
                    DetachReason::UserRequest,
                    at,
                    signed(&format!("pb:d{n}d")),
                ),
            ] {
                let admission = admit(&mut engine, &step, SESS2, now);
                assert_eq!(
                    admission.verdict,
                    Verdict::Admitted,
                    "{name}: {admission:#?}"
                );
            }
        }
        let recover = |n: u32| {
            recovery_with(
                &format!("recover:d{n}"),
                &format!("client:d{n}"),
                orbi_types::pod::RecoveryMode::ReattachExistingDevice,
                &format!("detach:d{n}"),
                at,
                None,
                signed(&format!("pb:d{n}r")),
            )
        };
        assert_admitted(
            &admit(&mut engine, &recover(1), SESS2, now),
            LifecycleState::RecoveryGranted,
        );
        assert_rejected(
            &admit(&mut engine, &recover(2), SESS2, now),
            RejectionCode::Capacity,
        );
        assert!(
            engine.store().open_grant("client:d2").unwrap().is_none(),
            "{name}"
        );
    });
}

/// A peer's session that ends while it holds only an open grant still counts for the peer
/// after the timers recount its closed sessions: reconnecting does not free the grant's place.
#[test]
fn a_grant_on_a_lost_session_still_holds_its_place_for_the_peer() {
    let policy = HostPolicy {
        max_live_attachments_per_peer: 1,
        ..HostPolicy::default()
    };
    let peer = orbi_types::KeyPair::from_seed(&[41; 32]).node_id();
    let at = "2026-03-28T19:42:00Z";
    let now = "2026-03-28T19:42:05Z";
    let of_peer = || Session {
        peer: Some(peer.clone()),
        ..Session::default()
    };
    each_store!(StoreLimits::default(), |name, store| {
        let mut engine = PodEngine::new(k1(), policy.clone(), store).unwrap();
        engine.open_session(SESS2, of_peer());
        let signed = |id: &str, session: &str| bind(&other_participant(), id, at, session);
        for step in [
            attachment_with("attach:l1", "client:l1", at, signed("pb:l1a", SESS2)),
            detachment_with(
                "detach:l1",
                "attach:l1",
                "client:l1",
                DetachReason::UserRequest,
                at,
                signed("pb:l1d", SESS2),
            ),
            recovery_with(
                "recover:l1",
                "client:l1",
                orbi_types::pod::RecoveryMode::ReattachExistingDevice,
                "detach:l1",
                at,
                None,
                signed("pb:l1r", SESS2),
            ),
        ] {
            let admission = admit(&mut engine, &step, SESS2, now);
            assert_eq!(
                admission.verdict,
                Verdict::Admitted,
                "{name}: {admission:#?}"
            );
        }
        engine.session_lost(SESS2, instant(now)).unwrap();
        engine.tick(instant("2026-03-28T19:42:06Z")).unwrap();
        engine.open_session(SESS3, of_peer());
        let other = attachment_with("attach:l2", "client:l2", at, signed("pb:l2a", SESS3));
        assert_rejected(
            &admit(&mut engine, &other, SESS3, "2026-03-28T19:42:07Z"),
            RejectionCode::Capacity,
        );
    });
}
