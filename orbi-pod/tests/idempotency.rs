//! I1–I3 without a canonicalization per admission: equal bytes decide a replay, different
//! bytes are compared by their JCS forms, and the bind cache's identity distinguishes exactly
//! what the binds' JCS forms distinguish (unknown members and proof members included). Each
//! scenario runs on both read models.

mod common;

use common::*;
use orbi_pod::{
    Check, HostPolicy, LifecycleState, MemoryStore, PodEngine, RejectionCode, Session, SqliteStore,
    Store, StoreLimits, Verdict,
};
use orbi_schema::Profile;
use serde_json::{Map, Value, json};

/// Runs `scenario` on an engine over each read model, with `policy` and SESS1 live.
fn on_each_store(policy: HostPolicy, scenario: impl Fn(&mut dyn Engine)) {
    let mut memory = PodEngine::new(k1(), policy.clone(), MemoryStore::new()).unwrap();
    memory.open_session(SESS1, Session::default());
    scenario(&mut memory);
    let store = SqliteStore::open_in_memory(&k1().node_id(), StoreLimits::default()).unwrap();
    let mut sqlite = PodEngine::new(k1(), policy, store).unwrap();
    sqlite.open_session(SESS1, Session::default());
    scenario(&mut sqlite);
}

/// What the scenarios need from an engine, whatever its store.
trait Engine {
    fn admit_bytes(&mut self, bytes: &[u8], session: &str, now: &str) -> orbi_pod::Admission;
    fn open(&mut self, session: &str);
    fn trace_count(&self) -> usize;
}

impl<S: Store> Engine for PodEngine<S> {
    fn admit_bytes(&mut self, bytes: &[u8], session: &str, now: &str) -> orbi_pod::Admission {
        self.admit(bytes, session, instant(now)).unwrap()
    }

    fn open(&mut self, session: &str) {
        self.open_session(session, Session::default());
    }

    fn trace_count(&self) -> usize {
        self.store().counts().unwrap().traces
    }
}

/// `value` with the members of every object in reverse order.
fn reordered(value: &Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .rev()
                .map(|(key, member)| (key.clone(), reordered(member)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(reordered).collect()),
        other => other.clone(),
    }
}

/// The same document as other bytes: members reordered at every depth, pretty-printed.
fn respelled(value: &Value) -> Vec<u8> {
    let other = serde_json::to_vec_pretty(&reordered(value)).unwrap();
    assert_ne!(other, bytes(value));
    other
}

#[track_caller]
fn assert_replayed(admission: &orbi_pod::Admission, state: LifecycleState) {
    assert_eq!(admission.verdict, Verdict::Replayed, "{admission:#?}");
    assert_eq!(admission.state, Some(state));
    assert!(admission.transitions.is_empty());
}

#[track_caller]
fn assert_conflict(admission: &orbi_pod::Admission, code: RejectionCode, check: Check) {
    assert_rejected(admission, code);
    assert_eq!(admission.rejection().unwrap().check, check);
}

#[test]
fn replays_with_other_bytes_but_the_same_jcs_are_identical() {
    on_each_store(HostPolicy::default(), |engine| {
        let a1 = a1();
        assert_admitted(
            &engine.admit_bytes(&bytes(&a1), SESS1, ATTACH_NOW),
            LifecycleState::Attached,
        );
        let traces = engine.trace_count();
        let replay = engine.admit_bytes(&respelled(&a1), SESS1, "2026-03-28T19:43:00Z");
        assert_replayed(&replay, LifecycleState::Attached);
        // Reordered and changed is still a conflict.
        let mut changed = reordered(&a1);
        changed["session/state"] = json!("attaching");
        let conflict = engine.admit_bytes(&bytes(&changed), SESS1, ATTACH_NOW);
        assert_conflict(&conflict, RejectionCode::Conflict, Check::I2);
        // I1: the detachment, and the bind it reuses, respelled.
        let d1 = d1();
        assert_admitted(
            &engine.admit_bytes(&bytes(&d1), SESS1, DETACH_NOW),
            LifecycleState::Detached,
        );
        let replay = engine.admit_bytes(&respelled(&d1), SESS1, "2026-03-28T20:06:00Z");
        assert_replayed(&replay, LifecycleState::Detached);
        let mut changed = reordered(&d1);
        changed["detach/notes"] = json!("changed my mind");
        let conflict = engine.admit_bytes(&bytes(&changed), SESS1, "2026-03-28T20:06:00Z");
        assert_conflict(&conflict, RejectionCode::Conflict, Check::I1);
        // I2 for a recovery.
        engine.open(SESS3);
        let recovery = reattach_after_d1("recover:1");
        assert_admitted(
            &engine.admit_bytes(&bytes(&recovery), SESS3, RECOVER_NOW),
            LifecycleState::RecoveryGranted,
        );
        let replay = engine.admit_bytes(&respelled(&recovery), SESS3, RECOVER_NOW);
        assert_replayed(&replay, LifecycleState::RecoveryGranted);
        let mut changed = reordered(&recovery);
        changed["recovered-at"] = json!("2026-03-28T20:25:01Z");
        let conflict = engine.admit_bytes(&bytes(&changed), SESS3, RECOVER_NOW);
        assert_conflict(&conflict, RejectionCode::Conflict, Check::I2);
        // Equal bytes, different spelling: nothing was written by any replay or conflict.
        assert_eq!(engine.trace_count(), traces + 3);
    });
}

#[test]
fn a_respelled_bind_is_the_same_bind() {
    on_each_store(HostPolicy::default(), |engine| {
        let b1 = b1();
        assert_admitted(
            &engine.admit_bytes(&bytes(&b1), SESS1, ATTACH_NOW),
            LifecycleState::Bound,
        );
        let replay = engine.admit_bytes(&respelled(&b1), SESS1, ATTACH_NOW);
        assert_replayed(&replay, LifecycleState::Bound);
        // An attachment carrying the respelled bind reuses the cache entry.
        let attachment =
            attachment_with("attach:1", CLIENT, "2026-03-28T19:42:00Z", reordered(&b1));
        assert_admitted(
            &engine.admit_bytes(&bytes(&attachment), SESS1, ATTACH_NOW),
            LifecycleState::Attached,
        );
    });
}

#[test]
fn a_changed_unknown_bind_member_under_the_same_bind_id_is_a_bind_conflict() {
    let seed = HostPolicy::default().with_profile(Profile::Seed);
    on_each_store(seed, |engine| {
        let mut first = b1();
        first["x-device"] = json!({"model": "a13", "os": [17, 4]});
        let first = resign(first, &k2());
        assert_admitted(
            &engine.admit_bytes(&bytes(&first), SESS1, ATTACH_NOW),
            LifecycleState::Bound,
        );
        // Signed by the participant, so only I3 can tell them apart.
        let mut second = first.clone();
        second["x-device"]["os"] = json!([17, 5]);
        let second = resign(second, &k2());
        let attachment = attachment_with("attach:1", CLIENT, "2026-03-28T19:42:00Z", second);
        let conflict = engine.admit_bytes(&bytes(&attachment), SESS1, ATTACH_NOW);
        assert_conflict(&conflict, RejectionCode::BindConflict, Check::I3);
        // The same unknown member moved elsewhere in the object is the same bind.
        let moved = attachment_with(
            "attach:1",
            CLIENT,
            "2026-03-28T19:42:00Z",
            reordered(&first),
        );
        assert_admitted(
            &engine.admit_bytes(&bytes(&moved), SESS1, ATTACH_NOW),
            LifecycleState::Attached,
        );
    });
}

#[test]
fn changed_proof_members_under_the_same_bind_id_are_a_bind_conflict() {
    let seed = HostPolicy::default().with_profile(Profile::Seed);
    on_each_store(seed, |engine| {
        let b1 = b1();
        assert_admitted(
            &engine.admit_bytes(&bytes(&b1), SESS1, ATTACH_NOW),
            LifecycleState::Bound,
        );
        // Neither change is signed, so the signature still verifies.
        let mut with_kid = b1.clone();
        with_kid["proof/participant-signature"]["kid"] = json!("k2");
        let mut attested = b1.clone();
        attested["proof/node-attestation"] = json!({"alg": "ed25519", "value": "x"});
        for changed in [with_kid, attested] {
            let conflict = engine.admit_bytes(&bytes(&changed), SESS1, ATTACH_NOW);
            assert_conflict(&conflict, RejectionCode::BindConflict, Check::I3);
        }
        assert_replayed(
            &engine.admit_bytes(&bytes(&b1), SESS1, ATTACH_NOW),
            LifecycleState::Bound,
        );
    });
}
