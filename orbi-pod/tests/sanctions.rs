//! A `policy` or `operator-action` detachment is a sanction in force until the host clears it
//! (spec pod §4: "`resume-after-suspension` once policy clears", "recovery under operator
//! policy"): the sanctioned participant cannot undo it by recovering at once. On both read
//! models, across restarts of the SQLite one, and from a read model of the layout before.

mod common;

use std::path::Path;

use common::*;
use orbi_pod::{
    Check, Durability, EngineError, LifecycleState, PodEngine, RejectionCode, Rule,
    SanctionCleared, Session, SqliteStore, Store, StoreLimits, TraceKind,
    state::modes_after,
    store::{ClientHistory, Counts, Trace},
};
use orbi_types::pod::{DetachReason, RecoveryMode};
use serde_json::Value;

const A1: &str = "attach:01JQCLIATT001";
const SANCTIONED_AT: &str = "2026-03-28T19:50:00Z";
const CLEARED_AT: &str = "2026-03-28T19:55:00Z";

/// Everything a rejection must leave as it was.
type Snapshot = (Counts, Vec<Trace>, ClientHistory);

fn snapshot<S: Store>(engine: &PodEngine<S>) -> Snapshot {
    let store = engine.store();
    (
        store.counts().unwrap(),
        store.recent_traces(1000).unwrap(),
        store.client_history(CLIENT).unwrap(),
    )
}

/// A1 attached, then detached by the host for `reason` at 19:50:00; the detachment's id.
fn sanctioned<S: Store>(engine: &mut PodEngine<S>, reason: DetachReason) -> String {
    assert_admitted(
        &admit(engine, &a1(), SESS1, "2026-03-28T19:42:05Z"),
        LifecycleState::Attached,
    );
    let detached = engine
        .detach(A1, reason, Some("abuse".into()), instant(SANCTIONED_AT))
        .unwrap();
    assert_eq!(detached.rule, Rule::T11);
    engine
        .store()
        .detachment_of(A1)
        .unwrap()
        .unwrap()
        .detachment_id
}

/// A1 detached by the host for `policy` at 19:50:00, cleared at 19:55:00; the detachment's id.
fn cleared_policy<S: Store>(engine: &mut PodEngine<S>) -> String {
    let detachment = sanctioned(engine, DetachReason::Policy);
    engine
        .clear_sanction(&detachment, instant(CLEARED_AT))
        .unwrap();
    detachment
}

/// The participant resumes after the cleared `detachment` at 19:55:01: a grant opens.
fn resumed<S: Store>(engine: &mut PodEngine<S>, detachment: &str) {
    let resume = recovery(
        detachment,
        RecoveryMode::ResumeAfterSuspension,
        "2026-03-28T19:55:01Z",
    );
    assert_admitted(
        &admit(engine, &resume, SESS1, "2026-03-28T19:55:01Z"),
        LifecycleState::RecoveryGranted,
    );
}

/// The sanctioned participant's own recovery of `detachment` in `mode`, bound at `bound_at`.
fn recovery(detachment: &str, mode: RecoveryMode, bound_at: &str) -> Value {
    recovery_with(
        "recover:self",
        CLIENT,
        mode,
        detachment,
        bound_at,
        None,
        bind(&k2(), "pb:self", bound_at, SESS1),
    )
}

fn back() -> Value {
    attachment_on("attach:back", CLIENT, "2026-03-28T19:50:02Z", SESS1)
}

#[track_caller]
fn assert_held(admission: &orbi_pod::Admission, detachment: &str) {
    assert_rejected(admission, RejectionCode::State);
    let rejection = admission.rejection().unwrap();
    assert_eq!(rejection.check, Check::S);
    assert!(
        rejection.message.contains(&format!("{detachment:?}"))
            && rejection.message.contains("has not cleared"),
        "{}",
        rejection.message
    );
}

/// The reviewer's scenario for `reason` and `mode` on `engine`: the recovery one second after
/// the sanction and the plain attachment one second later are refused and change nothing;
/// after the host clears the sanction, the same two artifacts bring the client back if the
/// mode is allowed after `reason`, and a mode that is not stays `E_POD_MODE_NOT_ALLOWED`.
fn held_until_cleared<S: Store>(
    mut engine: PodEngine<S>,
    reason: DetachReason,
    mode: RecoveryMode,
) {
    let detachment = sanctioned(&mut engine, reason);
    let recovery = recovery(&detachment, mode, "2026-03-28T19:50:01Z");
    let allowed = modes_after(reason).contains(&mode);
    let before = snapshot(&engine);

    let early = admit(&mut engine, &recovery, SESS1, "2026-03-28T19:50:01Z");
    if allowed {
        assert_held(&early, &detachment);
    } else {
        assert_rejected(&early, RejectionCode::ModeNotAllowed);
    }
    assert_rejected(
        &admit(&mut engine, &back(), SESS1, "2026-03-28T19:50:02Z"),
        RejectionCode::RecoveryRequired,
    );
    assert_eq!(
        snapshot(&engine),
        before,
        "a refusal changed the read model"
    );
    assert!(engine.store().open_grant(CLIENT).unwrap().is_none());

    let cleared = engine
        .clear_sanction(&detachment, instant(CLEARED_AT))
        .unwrap();
    assert_eq!(
        cleared,
        SanctionCleared {
            detachment_id: detachment.clone(),
            attachment_id: A1.into(),
            client_instance_id: CLIENT.into(),
            reason,
            cleared_at: instant(CLEARED_AT),
            newly_cleared: true,
        }
    );
    let recovered = admit(&mut engine, &recovery, SESS1, "2026-03-28T19:55:01Z");
    if !allowed {
        assert_rejected(&recovered, RejectionCode::ModeNotAllowed);
        return;
    }
    assert_admitted(&recovered, LifecycleState::RecoveryGranted);
    assert_eq!(recovered.transitions[0].rule, Rule::T16);
    let attached = admit(&mut engine, &back(), SESS1, "2026-03-28T19:55:02Z");
    assert_admitted(&attached, LifecycleState::Attached);
    assert_eq!(attached.transitions[0].rule, Rule::T17);
}

#[test]
fn a_sanction_holds_until_the_host_clears_it_whatever_the_mode() {
    for reason in [DetachReason::Policy, DetachReason::OperatorAction] {
        for mode in RecoveryMode::ALL.iter().copied() {
            held_until_cleared(engine(), reason, mode);
            let dir = tempfile::tempdir().unwrap();
            held_until_cleared(sqlite_engine(&dir.path().join("pod.sqlite")), reason, mode);
        }
    }
}

#[test]
fn a_sanction_carried_over_a_session_holds_its_client_too() {
    // A `policy` detachment admitted from the peer (origin `admitted`, the attachment's bind
    // copied) binds the client as the host's own does: judged by reason, failing closed.
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
    let policy = detachment_with(
        "detach:carried",
        A1,
        CLIENT,
        DetachReason::Policy,
        SANCTIONED_AT,
        b1(),
    );
    assert_admitted(
        &admit(&mut engine, &policy, SESS1, SANCTIONED_AT),
        LifecycleState::Detached,
    );
    let resume = recovery(
        "detach:carried",
        RecoveryMode::ResumeAfterSuspension,
        "2026-03-28T19:50:01Z",
    );
    assert_held(
        &admit(&mut engine, &resume, SESS1, "2026-03-28T19:50:01Z"),
        "detach:carried",
    );
    engine
        .clear_sanction("detach:carried", instant(CLEARED_AT))
        .unwrap();
    assert_admitted(
        &admit(&mut engine, &resume, SESS1, CLEARED_AT),
        LifecycleState::RecoveryGranted,
    );
}

#[test]
fn clearing_twice_changes_nothing_the_second_time() {
    let mut engine = engine();
    let detachment = sanctioned(&mut engine, DetachReason::OperatorAction);
    let first = engine
        .clear_sanction(&detachment, instant(CLEARED_AT))
        .unwrap();
    assert!(first.newly_cleared);
    let after_first = snapshot(&engine);
    let last = after_first.1.last().unwrap();
    assert_eq!(last.event.kind, TraceKind::SanctionCleared);
    assert_eq!(last.event.ts, instant(CLEARED_AT));
    assert_eq!(last.event.detail["detachment/id"], detachment.as_str());
    assert_eq!(last.event.detail["attachment/id"], A1);
    assert_eq!(last.event.detail["client-instance/id"], CLIENT);
    assert_eq!(last.event.detail["detach/reason"], "operator-action");
    let record = engine.store().detachment(&detachment).unwrap().unwrap();
    assert_eq!(record.sanction_cleared_at, Some(instant(CLEARED_AT)));
    assert!(!record.sanction_in_force());

    let again = engine
        .clear_sanction(&detachment, instant("2026-03-28T20:10:00Z"))
        .unwrap();

    assert_eq!(
        again,
        SanctionCleared {
            newly_cleared: false,
            ..first
        },
        "the first clearing's instant is kept"
    );
    assert_eq!(
        snapshot(&engine),
        after_first,
        "a second clearing wrote something"
    );
}

#[test]
fn only_a_sanction_on_record_can_be_cleared() {
    let mut engine = engine();
    engine.open_session(SESS2, Session::default());
    // D1 (`user-request`, admitted), a host-built `session-expired` and a host-built
    // `device-loss`: none of them is a sanction.
    admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
    admit(&mut engine, &d1(), SESS1, "2026-03-28T20:05:05Z");
    let a2 = attachment_on("attach:A2", CLIENT, "2026-03-28T20:06:00Z", SESS2);
    assert_admitted(
        &admit(&mut engine, &a2, SESS2, "2026-03-28T20:06:00Z"),
        LifecycleState::Attached,
    );
    engine
        .close_session(SESS2, instant("2026-03-28T20:07:00Z"))
        .unwrap();
    let a3 = attachment_on("attach:A3", NEW_CLIENT, "2026-03-28T20:08:00Z", SESS1);
    admit(&mut engine, &a3, SESS1, "2026-03-28T20:08:00Z");
    engine
        .detach(
            "attach:A3",
            DetachReason::DeviceLoss,
            None,
            instant("2026-03-28T20:09:00Z"),
        )
        .unwrap();
    let expired = engine.store().detachment_of("attach:A2").unwrap().unwrap();
    let lost = engine.store().detachment_of("attach:A3").unwrap().unwrap();
    let before = snapshot(&engine);
    let now = instant("2026-03-28T20:10:00Z");

    for (id, reason) in [
        ("detach:01JQCLIDET001", DetachReason::UserRequest),
        (expired.detachment_id.as_str(), DetachReason::SessionExpired),
        (lost.detachment_id.as_str(), DetachReason::DeviceLoss),
    ] {
        let err = engine.clear_sanction(id, now).unwrap_err();
        assert_eq!(
            err,
            EngineError::NotSanction {
                detachment_id: id.into(),
                reason,
            }
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("{id:?}")) && message.contains("not a sanction"),
            "{message}"
        );
    }
    let err = engine.clear_sanction("detach:nope", now).unwrap_err();
    assert_eq!(err, EngineError::UnknownDetachment("detach:nope".into()));
    assert_eq!(err.to_string(), "no detachment \"detach:nope\" on record");
    assert_eq!(snapshot(&engine), before);
}

#[test]
fn a_clearing_survives_a_restart_of_the_sqlite_read_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let detachment = cleared_policy(&mut sqlite_engine(&path));
    let mut engine = sqlite_engine(&path);
    let record = engine.store().detachment(&detachment).unwrap().unwrap();
    assert_eq!(record.sanction_cleared_at, Some(instant(CLEARED_AT)));
    resumed(&mut engine, &detachment);
    // Clearing it again after the restart still reports the first clearing.
    let again = engine
        .clear_sanction(&detachment, instant("2026-03-28T20:00:00Z"))
        .unwrap();
    assert_eq!(
        (again.newly_cleared, again.cleared_at),
        (false, instant(CLEARED_AT))
    );
}

#[test]
fn a_sanction_not_cleared_survives_a_restart_of_the_sqlite_read_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let detachment = sanctioned(&mut sqlite_engine(&path), DetachReason::OperatorAction);
    let mut engine = sqlite_engine(&path);
    let record = engine.store().detachment(&detachment).unwrap().unwrap();
    assert!(record.sanction_in_force());
    let reattach = recovery(
        &detachment,
        RecoveryMode::ReattachExistingDevice,
        "2026-03-28T19:56:00Z",
    );
    assert_held(
        &admit(&mut engine, &reattach, SESS1, "2026-03-28T19:56:00Z"),
        &detachment,
    );
}

#[test]
fn the_host_clears_a_sanction_in_the_read_model_a_running_node_holds() {
    // `orbi pod host clear-sanction` opens DATA/pod.sqlite while `orbi node run` holds it: the
    // node's engine reads the clearing with its next recovery, no restart needed.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let mut node = sqlite_engine(&path);
    let detachment = sanctioned(&mut node, DetachReason::Policy);
    let resume = recovery(
        &detachment,
        RecoveryMode::ResumeAfterSuspension,
        "2026-03-28T19:50:01Z",
    );
    assert_held(
        &admit(&mut node, &resume, SESS1, "2026-03-28T19:50:01Z"),
        &detachment,
    );

    let mut operator = sqlite_engine(&path);
    operator
        .clear_sanction(&detachment, instant(CLEARED_AT))
        .unwrap();
    drop(operator);

    assert_admitted(
        &admit(&mut node, &resume, SESS1, "2026-03-28T19:55:01Z"),
        LifecycleState::RecoveryGranted,
    );
}

/// Takes an SQLite read model back to layout 2, the layout before sanctions were kept: the
/// column is dropped (SQLite rewrites the table's definition without it) and the layout row
/// says 2. Returns the detachments table's definition afterwards.
fn back_to_layout_2(path: &Path) -> String {
    back_to_layout_3(path);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "ALTER TABLE detachments DROP COLUMN sanction_cleared_at;
         UPDATE meta SET value = '2' WHERE key = 'layout';",
    )
    .unwrap();
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'detachments'",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

/// Takes an SQLite read model back to layout 3, the layout before a detachment recorded that
/// it ended a suspended attachment. Returns the detachments table's definition afterwards.
fn back_to_layout_3(path: &Path) -> String {
    back_to_layout_4(path);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "ALTER TABLE detachments DROP COLUMN under_suspension;
         UPDATE meta SET value = '3' WHERE key = 'layout';",
    )
    .unwrap();
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'detachments'",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

/// Takes an SQLite read model back to layout 4, the layout before a recovery recorded its
/// bind's session. Returns the recoveries table's definition afterwards.
fn back_to_layout_4(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "DROP INDEX recoveries_open_by_session;
         ALTER TABLE recoveries DROP COLUMN bind_session;
         UPDATE meta SET value = '4' WHERE key = 'layout';",
    )
    .unwrap();
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'recoveries'",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

/// A read model of layout 4 opens as layout 5: each recovery gets its bind's session from
/// the artifact as admitted, so its open grant still counts for its node, and the grant is
/// consumed as before.
#[test]
fn a_read_model_of_layout_4_gives_its_recoveries_their_bind_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    {
        let mut engine = sqlite_engine(&path);
        admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
        let ended = detachment_with(
            "detach:u1",
            A1,
            CLIENT,
            DetachReason::UserRequest,
            "2026-03-28T19:43:00Z",
            b1(),
        );
        assert_admitted(
            &admit(&mut engine, &ended, SESS1, "2026-03-28T19:43:00Z"),
            LifecycleState::Detached,
        );
        let recovered = recovery_with(
            "recover:p1",
            CLIENT,
            RecoveryMode::ReattachExistingDevice,
            "detach:u1",
            "2026-03-28T19:43:01Z",
            None,
            bind(&k2(), "pb:r1", "2026-03-28T19:43:01Z", SESS1),
        );
        assert_admitted(
            &admit(&mut engine, &recovered, SESS1, "2026-03-28T19:43:01Z"),
            LifecycleState::RecoveryGranted,
        );
    }
    let definition = back_to_layout_4(&path);
    assert!(!definition.contains("bind_session"), "{definition}");
    let mut engine = sqlite_engine(&path);
    assert_eq!(layout_of(&path), "5");
    let grant = engine.store().open_grant(CLIENT).unwrap().unwrap();
    assert_eq!(grant.bind_session, SESS1);
    assert_eq!(
        engine
            .store()
            .count_open_grants_on(SESS1, instant("2026-03-28T19:44:00Z"))
            .unwrap(),
        1
    );
    let attached = admit(&mut engine, &back(), SESS1, "2026-03-28T19:50:02Z");
    assert_admitted(&attached, LifecycleState::Attached);
    assert_eq!(attached.transitions[0].rule, Rule::T17);
}

fn layout_of(path: &Path) -> String {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = 'layout'", [], |row| {
            row.get(0)
        })
        .unwrap()
}

#[test]
fn a_read_model_of_layout_2_opens_with_its_sanctions_in_force() {
    // Layout 2 admitted a recovery of a sanction without asking the host: here, a `policy`
    // detachment whose recovery holds an open grant.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let detachment = {
        let mut engine = sqlite_engine(&path);
        let detachment = cleared_policy(&mut engine);
        resumed(&mut engine, &detachment);
        detachment
    };
    let definition = back_to_layout_2(&path);
    assert!(!definition.contains("sanction_cleared_at"), "{definition}");

    let mut engine = sqlite_engine(&path);

    assert_eq!(layout_of(&path), "5");
    let record = engine.store().detachment(&detachment).unwrap().unwrap();
    assert!(record.sanction_in_force(), "{record:?}");
    // The open grant is not used while its sanction stands; nothing changes.
    let before = snapshot(&engine);
    let held = admit(&mut engine, &back(), SESS1, "2026-03-28T19:56:00Z");
    assert_held(&held, &detachment);
    assert!(
        held.rejection().unwrap().message.contains("recover:self"),
        "{held:#?}"
    );
    assert_eq!(snapshot(&engine), before);
    engine
        .clear_sanction(&detachment, instant("2026-03-28T19:57:00Z"))
        .unwrap();
    let attached = admit(&mut engine, &back(), SESS1, "2026-03-28T19:57:30Z");
    assert_admitted(&attached, LifecycleState::Attached);
    assert_eq!(attached.transitions[0].rule, Rule::T17);
    // Opening it again finds layout 5 and migrates nothing.
    drop(engine);
    let engine = sqlite_engine(&path);
    assert_eq!(layout_of(&path), "5");
    assert!(
        !engine
            .store()
            .detachment(&detachment)
            .unwrap()
            .unwrap()
            .sanction_in_force()
    );
}

#[test]
fn a_read_model_of_an_unknown_layout_is_still_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    drop(sqlite_engine(&path));
    for layout in ["1", "6"] {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE meta SET value = ?1 WHERE key = 'layout'", [layout])
            .unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();
        let err = SqliteStore::open(
            &path,
            &k1().node_id(),
            StoreLimits::default(),
            Durability::Full,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("unsupported read model layout \"{layout}\"")),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "layout {layout}");
    }
}

/// The same participant attaches a throwaway client at 19:51:00 and detaches it
/// (`user-request`) at 19:51:01: `detach:tmp`.
fn throwaway_client<S: Store>(engine: &mut PodEngine<S>) {
    let at = "2026-03-28T19:51:00Z";
    let throwaway = attachment_on("attach:tmp", "client:throwaway", at, SESS1);
    assert_admitted(
        &admit(engine, &throwaway, SESS1, at),
        LifecycleState::Attached,
    );
    let ended = detachment_with(
        "detach:tmp",
        "attach:tmp",
        "client:throwaway",
        DetachReason::UserRequest,
        "2026-03-28T19:51:01Z",
        bind(&k2(), "pb:attach:tmp", at, SESS1),
    );
    assert_admitted(
        &admit(engine, &ended, SESS1, "2026-03-28T19:51:01Z"),
        LifecycleState::Detached,
    );
}

/// A `replace-device` recovery at 19:51:02 naming the sanctioned client, citing `detach:tmp`.
fn into_sanctioned_client() -> Value {
    recovery_with(
        "recover:into",
        CLIENT,
        RecoveryMode::ReplaceDevice,
        "detach:tmp",
        "2026-03-28T19:51:02Z",
        Some("token:any"),
        bind(&k2(), "pb:into", "2026-03-28T19:51:02Z", SESS1),
    )
}

/// A `replace-device` recovery names the sanctioned client but cites another client's
/// detachment (a throwaway client of the same participant): the sanction of the client it
/// names holds it, whatever detachment it cites.
#[test]
fn a_sanctioned_client_cannot_be_replaced_into_from_another_clients_detachment() {
    let mut engine = engine_with(
        orbi_pod::HostPolicy::default().with_recovery(orbi_pod::RecoveryPolicy::AllowReplaceDevice),
    );
    let sanction = sanctioned(&mut engine, DetachReason::Policy);
    throwaway_client(&mut engine);
    let before = snapshot(&engine);
    let into_sanctioned = into_sanctioned_client();
    let refused = admit(&mut engine, &into_sanctioned, SESS1, "2026-03-28T19:51:02Z");
    assert_held(&refused, &sanction);
    assert_eq!(
        snapshot(&engine),
        before,
        "a refusal changed the read model"
    );
    assert!(engine.store().open_grant(CLIENT).unwrap().is_none());
}

/// A client whose participant holds an open grant is that participant's: another one that
/// names the same client id is `E_POD_PARTICIPANT_MISMATCH` (it could otherwise end the client
/// with a sanction and so strand the grant), and the grant is still there for its owner.
#[test]
fn another_participant_cannot_attach_a_client_whose_grant_is_open() {
    let mut engine = engine();
    admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z");
    let ended = detachment_with(
        "detach:u1",
        A1,
        CLIENT,
        DetachReason::UserRequest,
        "2026-03-28T19:43:00Z",
        b1(),
    );
    assert_admitted(
        &admit(&mut engine, &ended, SESS1, "2026-03-28T19:43:00Z"),
        LifecycleState::Detached,
    );
    let recovered = recovery_with(
        "recover:p1",
        CLIENT,
        RecoveryMode::ReattachExistingDevice,
        "detach:u1",
        "2026-03-28T19:43:01Z",
        None,
        bind(&k2(), "pb:r1", "2026-03-28T19:43:01Z", SESS1),
    );
    assert_admitted(
        &admit(&mut engine, &recovered, SESS1, "2026-03-28T19:43:01Z"),
        LifecycleState::RecoveryGranted,
    );
    // Another participant names the same client id: refused, nothing changes.
    let other = attachment_with(
        "attach:p2",
        CLIENT,
        "2026-03-28T19:44:00Z",
        bind(&other_participant(), "pb:p2", "2026-03-28T19:44:00Z", SESS1),
    );
    let before = snapshot(&engine);
    let refused = admit(&mut engine, &other, SESS1, "2026-03-28T19:44:00Z");
    assert_rejected(&refused, RejectionCode::ParticipantMismatch);
    assert_eq!(
        snapshot(&engine),
        before,
        "a refusal changed the read model"
    );
    // The owner's return consumes its grant (T17).
    let back = admit(&mut engine, &back(), SESS1, "2026-03-28T19:50:02Z");
    assert_admitted(&back, LifecycleState::Attached);
    assert_eq!(back.transitions[0].rule, Rule::T17);
}

/// Eviction never ends a sanction: a lineage whose sanction holds is kept like one with an
/// open grant, so a full read model refuses new clients (`E_POD_CAPACITY`) rather than forget
/// it; once cleared, it can go like any other.
#[test]
fn eviction_never_ends_a_sanction() {
    let limits = StoreLimits {
        max_records: 1,
        max_tombstones: 1,
        ..Default::default()
    };
    never_evicted(orbi_pod::MemoryStore::with_limits(limits));
    never_evicted(SqliteStore::open_in_memory(&k1().node_id(), limits).unwrap());
}

fn never_evicted<S: Store>(store: S) {
    let mut engine = PodEngine::new(k1(), orbi_pod::HostPolicy::default(), store).unwrap();
    engine.open_session(SESS1, Session::default());
    let sanction = sanctioned(&mut engine, DetachReason::Policy);
    let at = "2026-03-28T19:51:00Z";
    let newcomer = attachment_on("attach:new", "client:new", at, SESS1);
    assert_rejected(
        &admit(&mut engine, &newcomer, SESS1, at),
        RejectionCode::Capacity,
    );
    assert!(
        engine
            .store()
            .detachment_of(A1)
            .unwrap()
            .is_some_and(|d| d.sanction_in_force())
    );
    engine
        .clear_sanction(&sanction, instant(CLEARED_AT))
        .unwrap();
    let at = "2026-03-28T19:55:01Z";
    let newcomer = attachment_on("attach:new", "client:new", at, SESS1);
    assert_admitted(
        &admit(&mut engine, &newcomer, SESS1, at),
        LifecycleState::Attached,
    );
    assert!(engine.store().detachment_of(A1).unwrap().is_none());
}

/// A participant's own `policy` or `operator-action` detachments are sanctions of its clients
/// but never keep a record from eviction: otherwise anyone could fill the read model with
/// them and every new client would be refused `E_POD_CAPACITY`.
#[test]
fn a_participants_own_sanctions_cannot_fill_the_read_model() {
    let limits = StoreLimits {
        max_records: 2,
        max_tombstones: 2,
        ..Default::default()
    };
    for reason in [DetachReason::Policy, DetachReason::OperatorAction] {
        self_sanctioned_then_newcomer(orbi_pod::MemoryStore::with_limits(limits), reason);
        self_sanctioned_then_newcomer(
            SqliteStore::open_in_memory(&k1().node_id(), limits).unwrap(),
            reason,
        );
    }
}

fn self_sanctioned_then_newcomer<S: Store>(store: S, reason: DetachReason) {
    let mut engine = PodEngine::new(k1(), orbi_pod::HostPolicy::default(), store).unwrap();
    engine.open_session(SESS1, Session::default());
    for n in 0..2 {
        let (id, client) = (format!("attach:self-{n}"), format!("client:self-{n}"));
        let at = format!("2026-03-28T19:4{n}:00Z");
        let attached = attachment_on(&id, &client, &at, SESS1);
        assert_admitted(
            &admit(&mut engine, &attached, SESS1, &at),
            LifecycleState::Attached,
        );
        let detached_at = format!("2026-03-28T19:4{n}:01Z");
        let own = detachment_with(
            &format!("detach:self-{n}"),
            &id,
            &client,
            reason,
            &detached_at,
            bind(&k2(), &format!("pb:{id}"), &at, SESS1),
        );
        assert_admitted(
            &admit(&mut engine, &own, SESS1, &detached_at),
            LifecycleState::Detached,
        );
    }
    engine.open_session(SESS2, Session::default());
    let at = "2026-03-28T19:46:00Z";
    let newcomer = attachment_with(
        "attach:newcomer",
        "client:newcomer",
        at,
        bind(&other_participant(), "pb:newcomer", at, SESS2),
    );
    assert_admitted(
        &admit(&mut engine, &newcomer, SESS2, at),
        LifecycleState::Attached,
    );
}

/// The refusals say which sanction holds the client: a grant from an earlier detachment is
/// the client's, not "from" the sanction, and a plain attachment is told to wait for the host.
#[test]
fn refusals_name_the_sanction_that_holds_the_client() {
    let mut engine = engine();
    let sanction = sanctioned(&mut engine, DetachReason::Policy);
    let plain = admit(&mut engine, &back(), SESS1, "2026-03-28T19:50:02Z");
    assert_rejected(&plain, RejectionCode::RecoveryRequired);
    let message = &plain.rejection().unwrap().message;
    assert!(
        message.contains(&format!("{sanction:?}")) && message.contains("has not cleared"),
        "{message}"
    );
}

/// A client whose sanction was evicted (a tombstone of its reason is left) is not recovered
/// through a `replace-device` that cites another client's detachment.
#[test]
fn a_client_whose_sanction_was_evicted_is_not_recovered_into() {
    let limits = StoreLimits {
        max_records: 1,
        max_tombstones: 4,
        ..Default::default()
    };
    let mut engine = PodEngine::new(
        k1(),
        orbi_pod::HostPolicy::default().with_recovery(orbi_pod::RecoveryPolicy::AllowReplaceDevice),
        orbi_pod::MemoryStore::with_limits(limits),
    )
    .unwrap();
    engine.open_session(SESS1, Session::default());
    // The participant sanctions its own client (evictable), then uses a throwaway client.
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, "2026-03-28T19:42:05Z"),
        LifecycleState::Attached,
    );
    let own = detachment_with(
        "detach:own",
        A1,
        CLIENT,
        DetachReason::Policy,
        "2026-03-28T19:43:00Z",
        b1(),
    );
    assert_admitted(
        &admit(&mut engine, &own, SESS1, "2026-03-28T19:43:00Z"),
        LifecycleState::Detached,
    );
    throwaway_client(&mut engine);
    assert!(
        engine.store().detachment_of(A1).unwrap().is_none(),
        "evicted"
    );
    assert_eq!(
        engine.store().tombstone(CLIENT).unwrap(),
        Some(DetachReason::Policy)
    );
    let into = into_sanctioned_client();
    let refused = admit(&mut engine, &into, SESS1, "2026-03-28T19:51:02Z");
    assert_rejected(&refused, RejectionCode::State);
    assert!(
        refused.rejection().unwrap().message.contains("evicted"),
        "{:?}",
        refused.rejection()
    );
}

/// A1 attached, suspended by the host at 19:45:00, then ended while suspended: by its
/// participant's own `user-request` detachment (exit is never blocked, T10), or by the host
/// for `host_reason`. Returns the detachment's id.
fn suspended_then_ended<S: Store>(
    engine: &mut PodEngine<S>,
    host_reason: Option<DetachReason>,
) -> String {
    assert_admitted(
        &admit(engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    engine.suspend(A1, instant("2026-03-28T19:45:00Z")).unwrap();
    match host_reason {
        None => {
            let left = admit(engine, &d1(), SESS1, DETACH_NOW);
            assert_admitted(&left, LifecycleState::Detached);
            assert_eq!(left.transitions[0].rule, Rule::T10);
        }
        Some(reason) => {
            let ended = engine
                .detach(A1, reason, None, instant(DETACH_NOW))
                .unwrap();
            assert_eq!(ended.rule, Rule::T11);
        }
    }
    let record = engine.store().detachment_of(A1).unwrap().unwrap();
    assert!(
        record.under_suspension && record.sanction_in_force(),
        "{record:?}"
    );
    record.detachment_id
}

/// The client comes back plainly at 20:06:00 after its user-request exit.
fn plain_return() -> Value {
    attachment_on("attach:return", CLIENT, "2026-03-28T20:06:00Z", SESS1)
}

/// A suspension is a sanction of the client, not of one attachment: a suspended participant
/// that detaches itself (which is never blocked) and attaches again at once is refused
/// `E_POD_STATE` naming the detachment, as it was while still attached (T13), and so is a
/// recovery; the host clears it like any sanction, and then the plain return is admitted.
#[test]
fn a_suspension_outlives_its_attachment_until_the_host_clears_it() {
    held_after_suspension(engine());
    let dir = tempfile::tempdir().unwrap();
    held_after_suspension(sqlite_engine(&dir.path().join("pod.sqlite")));
}

fn held_after_suspension<S: Store>(mut engine: PodEngine<S>) {
    let detachment = suspended_then_ended(&mut engine, None);
    let before = snapshot(&engine);
    let plain = admit(&mut engine, &plain_return(), SESS1, "2026-03-28T20:06:00Z");
    assert_held(&plain, &detachment);
    let message = &plain.rejection().unwrap().message;
    assert!(
        message.contains("(user-request, of a suspended attachment)")
            && message.contains(&format!("client {CLIENT:?} cannot attach")),
        "{message}"
    );
    let reattach = recovery(
        &detachment,
        RecoveryMode::ReattachExistingDevice,
        "2026-03-28T20:06:00Z",
    );
    assert_held(
        &admit(&mut engine, &reattach, SESS1, "2026-03-28T20:06:00Z"),
        &detachment,
    );
    assert_eq!(
        snapshot(&engine),
        before,
        "a refusal changed the read model"
    );
    // The attachment is gone, so there is nothing to lift: the host clears the detachment.
    assert!(matches!(
        engine.lift(A1, instant("2026-03-28T20:07:00Z")),
        Err(EngineError::Transition { .. })
    ));
    let cleared = engine
        .clear_sanction(&detachment, instant("2026-03-28T20:07:00Z"))
        .unwrap();
    assert_eq!(
        (cleared.reason, cleared.newly_cleared),
        (DetachReason::UserRequest, true)
    );
    let back = admit(&mut engine, &plain_return(), SESS1, "2026-03-28T20:07:01Z");
    assert_admitted(&back, LifecycleState::Attached);
    assert_eq!(back.transitions[0].rule, Rule::T2);
}

/// The host ending a suspended attachment for a reason that is no sanction of its own
/// (`session-expired`) keeps the suspension too.
#[test]
fn a_host_detachment_of_a_suspended_attachment_keeps_the_suspension() {
    let mut engine = engine();
    let detachment = suspended_then_ended(&mut engine, Some(DetachReason::SessionExpired));
    assert_held(
        &admit(&mut engine, &plain_return(), SESS1, "2026-03-28T20:06:00Z"),
        &detachment,
    );
}

/// A detachment that carries a suspension is kept from eviction while in force, though the
/// participant made it (only the host suspends, so these are as few as its suspensions);
/// once cleared it can go. On the SQLite read model it survives a restart, and a read model
/// of layout 3 opens as layout 5 with none of its detachments under suspension.
#[test]
fn a_carried_suspension_is_kept_from_eviction_and_survives_a_restart() {
    let limits = StoreLimits {
        max_records: 1,
        max_tombstones: 1,
        ..Default::default()
    };
    kept_until_cleared(orbi_pod::MemoryStore::with_limits(limits));
    kept_until_cleared(SqliteStore::open_in_memory(&k1().node_id(), limits).unwrap());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let detachment = suspended_then_ended(&mut sqlite_engine(&path), None);
    let mut engine = sqlite_engine(&path);
    assert_held(
        &admit(&mut engine, &plain_return(), SESS1, "2026-03-28T20:06:00Z"),
        &detachment,
    );
    drop(engine);
    let definition = back_to_layout_3(&path);
    assert!(!definition.contains("under_suspension"), "{definition}");
    let engine = sqlite_engine(&path);
    assert_eq!(layout_of(&path), "5");
    let record = engine.store().detachment(&detachment).unwrap().unwrap();
    assert!(
        !record.under_suspension && !record.sanction_in_force(),
        "{record:?}"
    );
}

fn kept_until_cleared<S: Store>(store: S) {
    let mut engine = PodEngine::new(k1(), orbi_pod::HostPolicy::default(), store).unwrap();
    engine.open_session(SESS1, Session::default());
    let detachment = suspended_then_ended(&mut engine, None);
    let at = "2026-03-28T20:06:00Z";
    let newcomer = attachment_on("attach:new", "client:new", at, SESS1);
    assert_rejected(
        &admit(&mut engine, &newcomer, SESS1, at),
        RejectionCode::Capacity,
    );
    engine
        .clear_sanction(&detachment, instant("2026-03-28T20:07:00Z"))
        .unwrap();
    let at = "2026-03-28T20:07:01Z";
    let newcomer = attachment_on("attach:new", "client:new", at, SESS1);
    assert_admitted(
        &admit(&mut engine, &newcomer, SESS1, at),
        LifecycleState::Attached,
    );
    assert!(engine.store().detachment_of(A1).unwrap().is_none());
}

/// Hostile participant, sanction escape by a new device: its suspended attachment is ended by
/// its own `user-request` (exit is never blocked), and a `replace-device` recovery of that
/// detachment names a fresh client id. The cited detachment is the old client's latest and
/// the new client has no history, so only the sanction check of the cited detachment holds
/// it; the host's clearing then lets the same recovery through.
#[test]
fn a_suspended_client_cannot_escape_into_a_new_device() {
    let mut engine = engine_with(
        orbi_pod::HostPolicy::default().with_recovery(orbi_pod::RecoveryPolicy::AllowReplaceDevice),
    );
    let detachment = suspended_then_ended(&mut engine, None);
    let at = "2026-03-28T20:06:00Z";
    let escape = recovery_with(
        "recover:escape",
        NEW_CLIENT,
        RecoveryMode::ReplaceDevice,
        &detachment,
        at,
        Some("token:new-phone"),
        bind(&k2(), "pb:escape", at, SESS1),
    );
    let before = snapshot(&engine);
    let refused = admit(&mut engine, &escape, SESS1, at);
    assert_held(&refused, &detachment);
    assert_eq!(
        snapshot(&engine),
        before,
        "a refusal changed the read model"
    );
    assert!(engine.store().open_grant(NEW_CLIENT).unwrap().is_none());
    engine
        .clear_sanction(&detachment, instant("2026-03-28T20:07:00Z"))
        .unwrap();
    assert_admitted(
        &admit(&mut engine, &escape, SESS1, "2026-03-28T20:07:01Z"),
        LifecycleState::RecoveryGranted,
    );
}

/// Sanction escape by restart: a suspended attachment stays suspended when the node restarts
/// and sweeps its orphans (only attached ones become degraded), so the participant cannot
/// come back through the T13 reconnect path that a degraded attachment would open.
#[test]
fn a_suspension_survives_a_restart_and_its_orphan_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.sqlite");
    let mut engine = sqlite_engine(&path);
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, ATTACH_NOW),
        LifecycleState::Attached,
    );
    engine.suspend(A1, instant("2026-03-28T19:45:00Z")).unwrap();
    drop(engine);
    let mut engine =
        PodEngine::new(k1(), orbi_pod::HostPolicy::default(), sqlite_store(&path)).unwrap();
    let swept = engine
        .degrade_orphans(instant("2026-03-28T19:46:00Z"))
        .unwrap();
    assert!(swept.is_empty(), "{swept:?}");
    assert_eq!(state_of(&engine, A1), orbi_pod::AttachmentState::Suspended);
    engine.open_session(SESS2, Session::default());
    let again = attachment_on("attach:again", CLIENT, "2026-03-28T19:46:30Z", SESS2);
    let refused = admit(&mut engine, &again, SESS2, "2026-03-28T19:46:30Z");
    assert_rejected(&refused, RejectionCode::State);
    assert!(
        refused
            .rejection()
            .unwrap()
            .message
            .contains("has suspended attachment"),
        "{refused:#?}"
    );
}
