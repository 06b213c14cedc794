//! Fixtures shared by the integration tests: the spec's keys, binds and artifacts.
#![allow(dead_code)]

use std::path::Path;

use orbi_pod::{
    Admission, Durability, HostPolicy, LifecycleState, MemoryStore, PodEngine, RejectionCode,
    Session, SqliteStore, Store, StoreLimits, Verdict,
    compose::{self, AttachmentDraft, BindDraft, DetachmentDraft, RecoveryDraft},
};
use orbi_types::{
    KeyPair, Timestamp,
    pod::{DetachReason, ProfileType, RecoveryMode, SessionState},
};
use serde_json::Value;
use time::OffsetDateTime;

/// K1: the serving node of every pod example.
pub fn k1() -> KeyPair {
    KeyPair::from_seed(&[0x29; 32])
}

/// K2: the participant of B1 and B3.
pub fn k2() -> KeyPair {
    KeyPair::from_seed(&[0x2a; 32])
}

/// Another participant (stands in for K3, whose secret we do not have).
pub fn other_participant() -> KeyPair {
    KeyPair::from_seed(&[0x33; 32])
}

/// K3, a valid key with no known secret.
pub const K3: &str = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
/// K4, the upstream participant key that is not a curve point.
pub const K4: &str = "z6MkrLQkJr2YQ6L8eYw6Qk8f9P8GmJm7a3x6P1v1Q2w3E4r5";

pub const B1_SIGNATURE: &str =
    "dGH7YsIiguOgGyw-2JYesHmuVNL_T1zGSC6c9FuS_O83nPT1egFZQQKeT6OXnVBo1xKznNUn3CSZFgimmTXkDQ";
pub const B1_UNTAGGED: &str =
    "EUjDzMCb9fbu5pBDWH4F5S7ytHZKK8Y0s3w-AkAOUmcz8kkFLl7rl89zB_CKzbMsmk6mSlMAnLhp_DtpB4T7Cg";
pub const B3_SIGNATURE: &str =
    "A2YsBFPq_ecFL2mMJ8uB0OC0iJXZdwU7IpRBW06-S-CeptC35yKN9FinhCd_r8FIbZEYv3_OxOXNauyv1zk5Bw";

pub const SESS1: &str = "sess:01JQPARTSESS001";
pub const SESS2: &str = "sess:01JQPARTSESS002";
pub const SESS3: &str = "sess:01JQPARTSESS003";
/// The scenario's instants (spec pod §8): attached, detached, recovered.
pub const ATTACH_NOW: &str = "2026-03-28T19:42:05Z";
pub const DETACH_NOW: &str = "2026-03-28T20:05:10Z";
pub const RECOVER_NOW: &str = "2026-03-28T20:25:10Z";
pub const CLIENT: &str = "client:ios-a13-82d1";
pub const NEW_CLIENT: &str = "client:ios-a17-19f4";

pub fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

pub fn instant(text: &str) -> OffsetDateTime {
    at(text).instant()
}

/// A bind signed by `key` for node K1.
pub fn bind(key: &KeyPair, bind_id: &str, bound_at: &str, session: &str) -> Value {
    compose::sign_bind(
        key,
        &BindDraft {
            bind_id: bind_id.into(),
            bound_at: at(bound_at),
            via: k1().node_id(),
            session_id: session.into(),
            policy_annotations: None,
        },
    )
    .unwrap()
}

/// B1: the upstream example bind, signed by K2.
pub fn b1() -> Value {
    bind(&k2(), "pb:01JQPARTBIND001", "2026-03-28T19:20:00Z", SESS1)
}

/// B3: the recovery bind.
pub fn b3() -> Value {
    bind(&k2(), "pb:01JQPARTBIND003", "2026-03-28T20:24:30Z", SESS3)
}

pub fn attachment_with(id: &str, client: &str, attached_at: &str, bind: Value) -> Value {
    compose::attachment(
        &AttachmentDraft {
            attachment_id: id.into(),
            attached_at: at(attached_at),
            profile: ProfileType::PodClient,
            serving_node: k1().node_id(),
            pod_user: None,
            client_instance_id: client.into(),
            models_local: Some(false),
            state: SessionState::Attached,
            export_capable: true,
            migration_allowed: true,
        },
        bind,
    )
}

/// Attachment `id` of `client` at `at`, bound by K2 on `session` at the same instant (bind id
/// named after the attachment).
pub fn attachment_on(id: &str, client: &str, at: &str, session: &str) -> Value {
    attachment_with(
        id,
        client,
        at,
        bind(&k2(), &format!("pb:{id}"), at, session),
    )
}

/// A1: the upstream attachment with B1.
pub fn a1() -> Value {
    attachment_with("attach:01JQCLIATT001", CLIENT, "2026-03-28T19:42:00Z", b1())
}

pub fn detachment_with(
    id: &str,
    attachment_id: &str,
    client: &str,
    reason: DetachReason,
    detached_at: &str,
    bind: Value,
) -> Value {
    compose::detachment(
        &DetachmentDraft {
            detachment_id: id.into(),
            detached_at: at(detached_at),
            attachment_id: attachment_id.into(),
            serving_node: k1().node_id(),
            client_instance_id: client.into(),
            reason,
            notes: None,
        },
        bind,
    )
}

/// D1: the upstream user-request detachment of A1, reusing B1.
pub fn d1() -> Value {
    detachment_with(
        "detach:01JQCLIDET001",
        "attach:01JQCLIATT001",
        CLIENT,
        DetachReason::UserRequest,
        "2026-03-28T20:05:00Z",
        b1(),
    )
}

pub fn recovery_with(
    id: &str,
    client: &str,
    mode: RecoveryMode,
    from: &str,
    recovered_at: &str,
    token: Option<&str>,
    bind: Value,
) -> Value {
    compose::recovery(
        &RecoveryDraft {
            recovery_id: id.into(),
            recovered_at: at(recovered_at),
            serving_node: k1().node_id(),
            client_instance_id: client.into(),
            mode,
            from_detachment_id: from.into(),
            token_ref: token.map(str::to_owned),
        },
        bind,
    )
}

/// R1-style recovery `id`: the client of D1 reattaches its device, bound by B3.
pub fn reattach_after_d1(id: &str) -> Value {
    recovery_with(
        id,
        CLIENT,
        RecoveryMode::ReattachExistingDevice,
        "detach:01JQCLIDET001",
        "2026-03-28T20:25:00Z",
        None,
        b3(),
    )
}

/// Replaces a bind's signature by `key`'s signature over its current content.
pub fn resign(mut bind: Value, key: &KeyPair) -> Value {
    let input = orbi_types::pod::bind_signing_input(&bind).unwrap();
    bind["proof/participant-signature"]["value"] = serde_json::json!(key.sign(&input));
    bind
}

pub fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// An engine for node K1 with policy `policy`, in-memory store, and SESS1 live.
pub fn engine_with(policy: HostPolicy) -> PodEngine<MemoryStore> {
    let mut engine = PodEngine::new(k1(), policy, MemoryStore::new()).unwrap();
    engine.open_session(SESS1, Session::default());
    engine
}

pub fn engine() -> PodEngine<MemoryStore> {
    engine_with(HostPolicy::default())
}

/// K1's SQLite read model at `path` (made on first use): default limits, full durability.
pub fn sqlite_store(path: &Path) -> SqliteStore {
    SqliteStore::open(
        path,
        &k1().node_id(),
        StoreLimits::default(),
        Durability::Full,
    )
    .unwrap()
}

/// An engine for node K1 over its SQLite read model at `path`, default policy, SESS1 live.
pub fn sqlite_engine(path: &Path) -> PodEngine<SqliteStore> {
    let mut engine = PodEngine::new(k1(), HostPolicy::default(), sqlite_store(path)).unwrap();
    engine.open_session(SESS1, Session::default());
    engine
}

/// Admits `value` on `session` at `now`.
pub fn admit<S: Store>(
    engine: &mut PodEngine<S>,
    value: &Value,
    session: &str,
    now: &str,
) -> Admission {
    engine.admit(&bytes(value), session, instant(now)).unwrap()
}

#[track_caller]
pub fn assert_admitted(admission: &Admission, state: LifecycleState) {
    assert_eq!(admission.verdict, Verdict::Admitted, "{admission:#?}");
    assert_eq!(admission.state, Some(state), "{admission:#?}");
}

#[track_caller]
pub fn assert_rejected(admission: &Admission, code: RejectionCode) {
    assert_eq!(admission.code(), Some(code), "{admission:#?}");
    assert_eq!(admission.state, None);
    assert!(admission.transitions.is_empty());
}

/// The state of `attachment_id` in `engine`'s read model (it must be there).
pub fn state_of<S: orbi_pod::Store>(
    engine: &PodEngine<S>,
    attachment_id: &str,
) -> orbi_pod::AttachmentState {
    engine
        .store()
        .attachment(attachment_id)
        .unwrap()
        .unwrap()
        .state
}
