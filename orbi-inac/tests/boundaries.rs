//! Boundaries and check orders that a hand mutation audit found unpinned: each test fails
//! on one small mutation of the receiver, the codec or the QUIC layer and passes on main.

#[path = "spec/common.rs"]
mod common;

use std::collections::BTreeSet;

use common::*;
use orbi_inac::{
    AuthorizationMode, BodyEnd, Descriptor, Frame, FrameError, Handled, KindRegistry,
    MAX_FRAME_BYTES, MemoryLedger, MemoryStore, Receiver, ReceiverConfig, RevocationView,
    StoreError,
    passport::sign_passport,
    store::{StagedBody, StagingWriter, Store, StoredObject},
};
use orbi_types::{
    KeyPair, NodeId, Sha256Digest, Timestamp,
    inac::{Operation, RefusalCode},
};
use serde_json::{Value, json};

/// `push-inline` (A0) padded with insignificant whitespace to exactly `len` bytes.
fn padded_push(len: usize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&push_a0_value()).unwrap();
    bytes.resize(len, b' ');
    bytes
}

// Spec §8.4: a control frame of up to 256 KiB is a frame; one byte more is not.
#[test]
fn a_frame_of_exactly_256_kib_decodes_and_one_byte_more_does_not() {
    let frame = Frame::decode(&padded_push(MAX_FRAME_BYTES)).unwrap();
    assert_eq!(frame.operation(), Operation::Push);
    let error = Frame::decode(&padded_push(MAX_FRAME_BYTES + 1)).unwrap_err();
    assert_eq!(
        error.reason,
        FrameError::TooLong {
            len: MAX_FRAME_BYTES + 1
        }
    );
}

// Spec §2/§6: a schema violation is `malformed`; `payload-too-large` is only for a size over
// the 1 GiB ceiling that is the frame's sole defect.
#[test]
fn a_size_over_the_ceiling_beside_another_schema_defect_is_malformed() {
    let mut node = standard();
    let mut push = push_a0_value();
    push["artifact"]["size/bytes"] = json!(1_073_741_825_u64);
    let alone = node.send_value(&peer(), &push, at(1));
    assert_refused(&alone, RefusalCode::PayloadTooLarge);
    push["x-extra"] = json!(1);
    let with_extra = node.send_value(&peer(), &push, at(1));
    assert_refused(&with_extra, RefusalCode::Malformed);
}

// Spec §6 processing order: the peer gate (2) answers before the size limits (4).
#[test]
fn the_peer_gate_answers_before_the_configured_size_limit() {
    let mut node = Setup::new()
        .keep(BLOB, None)
        .allow(&peer().node_id())
        .config(|c| c.max_artifact_size_bytes = 1000)
        .build();
    let big = Descriptor::of_bytes(BLOB, JSON, &[b'x'; 2000]);
    let header = Frame::push_stream(&big, "4").build().unwrap();
    let stranger = node.send(&other_peer(), &header, at(1));
    assert_refused(&stranger, RefusalCode::NotAuthorized);
    let allowed = node.send(&peer(), &header, at(1));
    assert_refused(&allowed, RefusalCode::PayloadTooLarge);
}

/// The issuer general passports come from in these tests.
fn authority() -> KeyPair {
    KeyPair::from_seed(&[9; 32])
}

fn time(offset: i64) -> String {
    Timestamp::from_unix_seconds(T0 as i64 + offset)
        .unwrap()
        .as_str()
        .to_owned()
}

/// An `inac.push` passport from `authority()` for `holder`, issued at `T0 + issued`, with
/// `profiles`.
fn general_passport(holder: &NodeId, issued: i64, profiles: Value, capability: &str) -> Passport {
    let Value::Object(mut object) = json!({
        "schema": "capability-passport.v1",
        "passport_id": format!("passport:capability:{capability}:1"),
        "node_id": holder.as_str(),
        "capability_id": capability,
        "scope": {
            "allowed_callers": [{"kind": "node", "subject_key": format!("did:key:{}", holder.did_key())}],
            "profiles": profiles,
        },
        "issued_at": time(issued),
        "expires_at": time(issued + 3600),
        "issuer/participant_id": authority().participant_id().as_str(),
        "issuer/node_id": authority().node_id().as_str(),
        "revocation_ref": null,
    }) else {
        unreachable!()
    };
    sign_passport(&authority(), &mut object).unwrap();
    object
}

/// R trusting `authority()`, with a fresh revocation view; P is not allowlisted.
fn passport_node() -> Node {
    let mut node = Setup::new()
        .keep(BLOB, None)
        .config(|c| {
            c.trusted_issuers.insert(authority().participant_id());
        })
        .build();
    node.receiver.set_revocation_view(Some(RevocationView {
        as_of: at(0),
        revoked: BTreeSet::new(),
    }));
    node
}

fn push_profiles() -> Value {
    json!([{"profile": "inac-push@v1", "artifact_schemas": [BLOB]}])
}

fn under(passport: &Passport, bytes: &[u8], key: Option<&str>) -> Frame {
    let builder = Frame::push_inline(&Descriptor::of_bytes(BLOB, JSON, bytes), bytes)
        .authorization(AuthorizationMode::CapabilityPassport, passport);
    match key {
        Some(key) => builder.idempotency_key(key).build().unwrap(),
        None => builder.build().unwrap(),
    }
}

// Spec §5.1/§5.2: a peer off the allowlist gets the replay of its delivered push only on a
// passport whose signature verifies; a tampered one is `not-authorized`.
#[test]
fn a_tampered_passport_gets_no_replay_of_a_delivered_push() {
    let mut node = passport_node();
    let pass = general_passport(&peer().node_id(), 0, push_profiles(), "inac.push");
    let first = node.send(&peer(), &under(&pass, A0, Some("k-1")), at(1));
    assert_answer(&first, Operation::Ingested, None);
    let mut tampered = pass.clone();
    tampered.insert("expires_at".into(), json!(time(999_999)));
    let retry = node.send(&peer(), &under(&tampered, A0, Some("k-1")), at(2));
    assert_refused(&retry, RefusalCode::NotAuthorized);
}

// Spec §5.2: `issued_at` is checked with the tolerated clock skew (300 s by default).
#[test]
fn a_passport_issued_within_the_clock_skew_is_honoured_and_beyond_it_is_not() {
    let mut node = passport_node();
    let soon = general_passport(&peer().node_id(), 200, push_profiles(), "inac.push");
    let answer = node.send(&peer(), &under(&soon, A0, None), at(1));
    assert_answer(&answer, Operation::Ingested, None);
    let later = general_passport(&peer().node_id(), 400, push_profiles(), "inac.push");
    let answer = node.send(&peer(), &under(&later, b"[]", None), at(1));
    assert_refused(&answer, RefusalCode::NotAuthorized);
}

// Spec §5.2: custody profiles compose by OR; the record limit of the most generous profile
// that allowed the header holds when a streamed body lands.
#[test]
fn the_most_generous_custody_profile_limits_a_body_admitted_side_by_side() {
    let profiles = json!([
        {"profile": "memarium-custody@v1", "artifact_schemas": [BLOB], "max_records": 1},
        {"profile": "memarium-custody@v1", "artifact_schemas": [BLOB], "max_records": 3},
    ]);
    let pass = general_passport(&peer().node_id(), 0, profiles, "memarium.custody");
    let mut node = passport_node();
    let header = |bytes: &[u8], stream: &str| {
        Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, bytes), stream)
            .authorization(AuthorizationMode::CustodyPassport, &pass)
            .build()
            .unwrap()
    };
    let mut first = node.begin(&peer(), &header(A0, "4"), at(1));
    let mut second = node.begin(&peer(), &header(b"[]", "8"), at(1));
    first.write(A0).unwrap();
    second.write(b"[]").unwrap();
    let first = node
        .receiver
        .finish_push(first.complete(BodyEnd::Finished), at(2));
    assert_answer(&first, Operation::Ingested, None);
    let second = node
        .receiver
        .finish_push(second.complete(BodyEnd::Finished), at(2));
    assert_answer(&second, Operation::Ingested, None);
}

fn invitation_push(invitation: &Passport, bytes: &[u8], key: &str) -> Frame {
    push_under(bytes, BLOB, key, invitation)
}

// Spec §5.2: a single-use invitation is consumed only by `ingested` / `already-present`.
#[test]
fn a_refused_push_does_not_use_up_a_single_use_invitation() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    // A0's descriptor with the two bytes of `[]`: digest-mismatch at the byte check.
    let mut wrong = invitation_push(&invitation, A0, "k-bad").to_value();
    wrong["artifact"]["bytes/base64url"] = json!("W10");
    let answer = node.send_value(&peer(), &wrong, at(1));
    assert_refused(&answer, RefusalCode::DigestMismatch);
    let answer = node.send(&peer(), &invitation_push(&invitation, A0, "k-good"), at(2));
    assert_answer(&answer, Operation::Ingested, None);
}

// Spec §5.2: a single-use invitation consumed by another transfer while a body was in
// flight is `invitation-revoked` when that body lands.
#[test]
fn a_single_use_invitation_used_while_a_body_was_in_flight_is_revoked() {
    let mut node = invitation_node();
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    let invitation = invite(&mut node, &peer(), &descriptor, 0);
    let header = |key: &str, stream: &str| {
        Frame::push_stream(&descriptor, stream)
            .correlation_id("c-offer")
            .idempotency_key(key)
            .authorization(AuthorizationMode::InvitationPassport, &invitation)
            .build()
            .unwrap()
    };
    let mut first = node.begin(&peer(), &header("k-1", "4"), at(1));
    let mut second = node.begin(&peer(), &header("k-2", "8"), at(1));
    first.write(A0).unwrap();
    second.write(A0).unwrap();
    let first = node
        .receiver
        .finish_push(first.complete(BodyEnd::Finished), at(2));
    assert_answer(&first, Operation::Ingested, None);
    let second = node
        .receiver
        .finish_push(second.complete(BodyEnd::Finished), at(2));
    assert_refused(&second, RefusalCode::InvitationRevoked);
}

/// `invitation` with `edit` applied, signed again with R's own key.
fn reissued(invitation: &Passport, edit: impl FnOnce(&mut Passport)) -> Passport {
    let mut changed = invitation.clone();
    edit(&mut changed);
    sign_passport(&receiver_key(), &mut changed).unwrap();
    changed
}

// Spec §5.2 table: `issuer/node_id` other than this node is `invitation-unknown`, even under
// this node's signature.
#[test]
fn an_invitation_naming_another_issuer_node_is_unknown() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    let moved = reissued(&invitation, |p| {
        p.insert(
            "issuer/node_id".into(),
            json!(other_peer().node_id().as_str()),
        );
    });
    let answer = node.send(&peer(), &invitation_push(&moved, A0, "k-1"), at(1));
    assert_refused(&answer, RefusalCode::InvitationUnknown);
}

// Spec §5.2 table: an invitation profile must list the pusher in `peer_node_ids`; one that
// leaves it out, or has no such list (fail closed), is out of scope.
#[test]
fn an_invitation_whose_peer_node_ids_leave_out_the_pusher_is_out_of_scope() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    let narrowed = reissued(&invitation, |p| {
        p["scope"]["profiles"][0]["peer_node_ids"] = json!([other_peer().node_id().as_str()]);
    });
    let answer = node.send(&peer(), &invitation_push(&narrowed, A0, "k-1"), at(1));
    assert_refused(&answer, RefusalCode::InvitationScopeMismatch);
    let unlisted = reissued(&invitation, |p| {
        let profile = p["scope"]["profiles"][0].as_object_mut().unwrap();
        profile.remove("peer_node_ids");
    });
    let answer = node.send(&peer(), &invitation_push(&unlisted, A0, "k-1"), at(1));
    assert_refused(&answer, RefusalCode::InvitationScopeMismatch);
}

// Spec §5.2: `single_use` defaults to true when the invitation profile omits it.
#[test]
fn an_invitation_profile_without_single_use_is_single_use() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    let silent = reissued(&invitation, |p| {
        let profile = p["scope"]["profiles"][0].as_object_mut().unwrap();
        profile.remove("single_use");
    });
    let first = node.send(&peer(), &invitation_push(&silent, A0, "k-1"), at(1));
    assert_answer(&first, Operation::Ingested, None);
    let second = node.send(&peer(), &invitation_push(&silent, A0, "k-2"), at(2));
    assert_refused(&second, RefusalCode::InvitationRevoked);
}

/// A store whose staged bodies cannot be written (a full disk).
#[derive(Clone)]
struct FullDisk(MemoryStore);

struct RefusingWriter;

impl StagingWriter for RefusingWriter {
    fn write(&mut self, _bytes: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::Database("disk full".into()))
    }

    fn finish(self: Box<Self>) -> Result<Box<dyn StagedBody>, StoreError> {
        Err(StoreError::Database("disk full".into()))
    }
}

impl Store for FullDisk {
    fn stage(&self) -> Result<Box<dyn StagingWriter>, StoreError> {
        Ok(Box::new(RefusingWriter))
    }

    fn contains(&self, digest: &Sha256Digest) -> Result<bool, StoreError> {
        self.0.contains(digest)
    }

    fn open(
        &self,
        digest: &Sha256Digest,
    ) -> Result<Option<Box<dyn std::io::Read + Send>>, StoreError> {
        self.0.open(digest)
    }

    fn list(&self) -> Result<Vec<StoredObject>, StoreError> {
        self.0.list()
    }
}

// Spec §6: a body the receiver cannot stage is its own temporary failure,
// `handler-unavailable` (retryable), never the sender's `malformed`.
#[test]
fn a_body_that_cannot_be_staged_is_handler_unavailable() {
    let mut config = ReceiverConfig::default();
    config.allowed_peers.insert(peer().node_id());
    let mut receiver = Receiver::new(
        receiver_key(),
        config,
        KindRegistry::builder().keep(BLOB, None).build().unwrap(),
        FullDisk(MemoryStore::new()),
        MemoryLedger::new(),
    );
    let header = Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, A0), "4")
        .build()
        .unwrap();
    let Handled::ReadBody(mut body) = receiver.handle(&peer().node_id(), &header, at(1)) else {
        panic!("the header is admitted")
    };
    assert!(body.write(A0).is_err());
    let answer = receiver.finish_push(body.complete(BodyEnd::Finished), at(1));
    assert_refused(&answer, RefusalCode::HandlerUnavailable);
    assert_eq!(answer.response().unwrap().retryable, Some(true));
}

#[cfg(feature = "quic")]
#[path = "quic/common.rs"]
mod quic_common;

#[cfg(feature = "quic")]
mod over_quic {
    use std::time::Duration;

    use orbi_inac::{
        Frame, MAX_FRAME_BYTES,
        quic::{StreamCode, wire::encode_frame},
    };
    use orbi_types::inac::Operation;

    use crate::quic_common::*;

    // Spec §8.4: a control frame of exactly 256 KiB is read and answered, not reset 0x5.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_frame_of_exactly_256_kib_is_answered() {
        let node = Setup::new().start();
        let (_client, session) = node.connect(&peer_key()).await;
        let mut json = inline_push(b"{}", "k-1").encode();
        json.resize(MAX_FRAME_BYTES, b' ');
        let (mut send, mut recv) = session.connection().open_bi().await.unwrap();
        let mut framed = u32::try_from(json.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&json);
        send.write_all(&framed).await.unwrap();
        let _ = send.finish();
        let answer = orbi_inac::quic::wire::read_frame(&mut recv, Duration::from_secs(10))
            .await
            .unwrap();
        assert_answer(&Frame::decode(&answer).unwrap(), Operation::Ingested, None);
    }

    // quic module docs (session id): `sess:` + base64url of 32 bytes exported under
    // `EXPORTER-orbiplex-inac-session-v1` with an empty context, the same at both ends.
    #[tokio::test]
    async fn the_session_id_is_the_documented_export_of_the_tls_session() {
        let node = Setup::new().start();
        let (_client, session) = node.connect(&peer_key()).await;
        let mut exported = [0u8; 32];
        session
            .connection()
            .export_keying_material(&mut exported, b"EXPORTER-orbiplex-inac-session-v1", b"")
            .unwrap();
        let expected = format!("sess:{}", orbi_types::b64::encode(&exported));
        assert_eq!(session.id().as_str(), expected);
    }

    // Spec §8.5/§8.7: a body with no progress for the stall timeout is stopped with 0x6.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_body_is_stopped_with_0x6() {
        let node = Setup::new()
            .transport(|t| t.stall_timeout = Duration::from_millis(400))
            .start();
        let (_client, session) = node.connect(&peer_key()).await;
        let body = pattern(100_000, 3);
        let (mut send, _recv) = session.connection().open_bi().await.unwrap();
        let id = quinn::VarInt::from(send.id()).into_inner().to_string();
        let header = Frame::push_stream(&descriptor(&body), &id).build().unwrap();
        send.write_all(&encode_frame(&header)).await.unwrap();
        send.write_all(&body[..1000]).await.unwrap();
        let stopped = tokio::time::timeout(Duration::from_secs(10), send.stopped())
            .await
            .expect("the listener stops the stalled body");
        assert_eq!(stopped.ok().flatten(), Some(StreamCode::Stale.varint()));
    }
}
