//! Spec §9.6: the peer gate, invitation passports, general and custody passports.

use std::collections::BTreeSet;

use orbi_inac::{
    AuthorizationMode, BodyEnd, Descriptor, Frame, FrameBuilder, Handled, RevocationView,
    passport::{InvitationTerms, issue_invitation, sign_passport},
};
use orbi_types::{
    KeyPair, NodeId, Timestamp,
    inac::{Operation, RefusalCode},
};
use serde_json::{Value, json};

use crate::common::*;

fn time(offset: i64) -> String {
    Timestamp::from_unix_seconds(T0 as i64 + offset)
        .unwrap()
        .as_str()
        .to_owned()
}

fn authority() -> KeyPair {
    KeyPair::from_seed(&[9; 32])
}

/// A passport issued and signed by `issuer` for `holder` with one profile.
fn passport(issuer: &KeyPair, holder: &NodeId, capability: &str, profile: Value) -> Passport {
    passport_issued(issuer, holder, capability, 0, json!([profile]))
}

/// A passport signed by `issuer` for `holder`, issued at `T0 + issued` for an hour, with
/// `profiles`.
fn passport_issued(
    issuer: &KeyPair,
    holder: &NodeId,
    capability: &str,
    issued: i64,
    profiles: Value,
) -> Passport {
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
        "issuer/participant_id": issuer.participant_id().as_str(),
        "issuer/node_id": issuer.node_id().as_str(),
        "revocation_ref": null,
    }) else {
        unreachable!()
    };
    sign_passport(issuer, &mut object).unwrap();
    object
}

fn push_profile() -> Value {
    json!({"profile": "inac-push@v1", "artifact_schemas": [BLOB]})
}

/// R trusting `authority()`, with a fresh revocation view.
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

const CAPABILITY: AuthorizationMode = AuthorizationMode::CapabilityPassport;

fn push_with(passport: &Passport, bytes: &[u8], mode: AuthorizationMode) -> Frame {
    push_builder(passport, bytes, mode).build().unwrap()
}

fn push_builder(passport: &Passport, bytes: &[u8], mode: AuthorizationMode) -> FrameBuilder {
    Frame::push_inline(&Descriptor::of_bytes(BLOB, JSON, bytes), bytes)
        .authorization(mode, passport)
}

// The coarse peer gate.

#[test]
fn an_empty_allowlist_denies_offers_and_passportless_pushes() {
    let mut node = Setup::new().keep(BLOB, None).build();
    let offer = Frame::offer(&Descriptor::of_bytes(BLOB, JSON, A0))
        .build()
        .unwrap();
    assert_answer(
        &node.send(&peer(), &offer, at(0)),
        Operation::Decline,
        Some(RefusalCode::NotAuthorized),
    );
    let answer = node.send_value(&peer(), &push_a0_value(), at(0));
    assert_refused(&answer, RefusalCode::NotAuthorized);
    assert_eq!(node.stored_count(), 0);
    assert!(node.receiver.offers().unwrap().is_empty());
}

#[test]
fn an_allowlisted_peer_pushes_without_a_passport() {
    let mut node = standard();
    assert_answer(
        &node.send_value(&peer(), &push_a0_value(), at(0)),
        Operation::Ingested,
        None,
    );
    // Allowlisting one peer says nothing about another.
    let answer = node.send_value(&other_peer(), &push_a0_value(), at(0));
    assert_refused(&answer, RefusalCode::NotAuthorized);
}

// Invitations.

#[test]
fn an_invitation_push_is_ingested_and_its_replay_consumes_nothing_more() {
    let mut node = invitation_node();
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    let invitation = invite(&mut node, &peer(), &descriptor, 0);
    assert_eq!(
        invitation["capability_id"],
        json!("inac.invitation"),
        "dotted ids are accepted"
    );
    let push = push_under(A0, BLOB, "k-1", &invitation);
    assert_answer(
        &node.send(&peer(), &push, at(10)),
        Operation::Ingested,
        None,
    );
    let id = invitation["passport_id"].as_str().unwrap();
    let consumed = node
        .receiver
        .ledger()
        .invitation(id)
        .unwrap()
        .unwrap()
        .consumed
        .unwrap();
    assert_eq!(consumed.idempotency_key.as_deref(), Some("k-1"));
    assert_eq!(consumed.at_ms, (T0 + 10) * 1000);
    // The same transfer again: the recorded outcome, no second use.
    assert_answer(
        &node.send(&peer(), &push, at(20)),
        Operation::Ingested,
        None,
    );
    let again = node
        .receiver
        .ledger()
        .invitation(id)
        .unwrap()
        .unwrap()
        .consumed
        .unwrap();
    assert_eq!(again, consumed);
    assert_eq!(node.stored_count(), 1);
}

/// What the invitation `id` records as its use.
fn consumption(node: &Node, id: &str) -> Option<orbi_inac::ledger::Consumption> {
    node.receiver
        .ledger()
        .invitation(id)
        .unwrap()
        .unwrap()
        .consumed
}

/// Spec §3.4 (a): a retry of a delivered push gets the recorded outcome whatever became of
/// the invitation it was delivered under since: expired, revoked, or used by another
/// transfer. Nothing is consumed again, and a stream-mode retry is answered at its header.
#[test]
fn a_retry_of_a_delivered_invitation_push_is_replayed_whatever_the_invitation_became() {
    type Since = fn(&mut Node, &Passport) -> u64;
    let expired: Since = |_, _| 7200;
    let revoked: Since = |node, invitation| {
        let id = invitation["passport_id"].as_str().unwrap();
        node.receiver.revoke_passport(id, at(2)).unwrap();
        3
    };
    let revoked_in_the_view: Since = |node, invitation| {
        let id = invitation["passport_id"].as_str().unwrap().to_owned();
        node.receiver.set_revocation_view(Some(RevocationView {
            as_of: at(2),
            revoked: BTreeSet::from([id]),
        }));
        3
    };
    for (case, since) in [
        ("expired", expired),
        ("revoked", revoked),
        ("in the revocation view", revoked_in_the_view),
    ] {
        let mut node = invitation_node();
        let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
        let invitation = invite(&mut node, &peer(), &descriptor, 0);
        let id = invitation["passport_id"].as_str().unwrap().to_owned();
        let push = push_under(A0, BLOB, "k-1", &invitation);
        assert_answer(&node.send(&peer(), &push, at(1)), Operation::Ingested, None);
        let used = consumption(&node, &id);
        let when = since(&mut node, &invitation);
        // Without the record the invitation would be refused now.
        let fresh = push_under(A0, BLOB, "k-fresh", &invitation);
        assert!(
            !node.send(&peer(), &fresh, at(when)).is_delivered(),
            "{case}"
        );

        let retry = node.send(&peer(), &push, at(when));

        assert_answer(&retry, Operation::Ingested, None);
        assert_eq!(retry.correlation_id(), Some("c-offer"), "{case}");
        let streamed = Frame::push_stream(&descriptor, "4")
            .idempotency_key("k-1")
            .authorization(AuthorizationMode::InvitationPassport, &invitation)
            .build()
            .unwrap();
        match node.receiver.handle(&peer().node_id(), &streamed, at(when)) {
            Handled::Answer(answer) => assert_answer(&answer, Operation::Ingested, None),
            other => panic!("{case}: the replay needs no body: {other:?}"),
        }
        assert_eq!(consumption(&node, &id), used, "{case}: consumed once");
        assert_eq!(node.stored_count(), 1);
    }
}

/// The retry may carry an invitation already used by another transfer (here one of the same
/// artifact under another key): the key's delivered outcome is still what it gets.
#[test]
fn a_retry_of_a_delivered_push_is_replayed_under_an_invitation_used_by_another_transfer() {
    let mut node = Setup::new()
        .allow(&peer().node_id())
        .keep(BLOB, None)
        .build();
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    let invitation = invite(&mut node, &peer(), &descriptor, 0);
    let id = invitation["passport_id"].as_str().unwrap().to_owned();
    let other_use = push_under(A0, BLOB, "k-2", &invitation);
    assert_answer(
        &node.send(&peer(), &other_use, at(1)),
        Operation::Ingested,
        None,
    );
    let used = consumption(&node, &id);
    // k-1 delivered without a passport (P is allowlisted): already held.
    let plain = inline_push(BLOB, A0, Some("k-1"));
    assert_answer(
        &node.send(&peer(), &plain, at(2)),
        Operation::AlreadyPresent,
        None,
    );

    let retry = node.send(&peer(), &push_under(A0, BLOB, "k-1", &invitation), at(3));

    assert_answer(&retry, Operation::AlreadyPresent, None);
    assert_eq!(consumption(&node, &id), used);
}

/// The early replay is for the same peer, key and descriptor only: another artifact under
/// the key, or another peer under the same key, goes the whole way and is refused by the
/// lapsed invitation; it is not told the recorded outcome.
#[test]
fn after_its_invitation_lapsed_only_the_same_transfer_is_replayed() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    let push = push_under(A0, BLOB, "k-1", &invitation);
    assert_answer(&node.send(&peer(), &push, at(1)), Operation::Ingested, None);

    let other_artifact = node.send(
        &peer(),
        &push_under(b"[]", BLOB, "k-1", &invitation),
        at(7200),
    );
    let other_peer_same_key = node.send(&other_peer(), &push, at(7200));

    assert_refused(&other_artifact, RefusalCode::InvitationExpired);
    assert_refused(&other_peer_same_key, RefusalCode::InvitationExpired);
    assert_eq!(node.stored_count(), 1);
}

#[test]
fn a_different_artifact_under_a_used_invitation_is_invitation_revoked() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    assert_answer(
        &node.send(&peer(), &push_under(A0, BLOB, "k-1", &invitation), at(1)),
        Operation::Ingested,
        None,
    );
    let answer = node.send(&peer(), &push_under(b"[]", BLOB, "k-2", &invitation), at(2));
    assert_refused(&answer, RefusalCode::InvitationRevoked);
    // The same artifact under a new key is a second use too.
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-3", &invitation), at(3));
    assert_refused(&answer, RefusalCode::InvitationRevoked);
}

#[test]
fn a_different_artifact_under_an_unused_invitation_is_out_of_scope() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    let answer = node.send(&peer(), &push_under(b"[]", BLOB, "k-1", &invitation), at(1));
    assert_refused(&answer, RefusalCode::InvitationScopeMismatch);
}

#[test]
fn an_expired_invitation_is_invitation_expired() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    assert_eq!(
        invitation["expires_at"],
        json!(time(3600)),
        "default ttl 3600 s"
    );
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &invitation), at(3600));
    assert_refused(&answer, RefusalCode::InvitationExpired);
    assert_eq!(node.stored_count(), 0);
}

#[test]
fn a_revoked_invitation_is_invitation_revoked() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    let id = invitation["passport_id"].as_str().unwrap().to_owned();
    node.receiver.revoke_passport(&id, at(1)).unwrap();
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &invitation), at(2));
    assert_refused(&answer, RefusalCode::InvitationRevoked);
}

/// After the operator revokes an invitation, the next offer of the artifact goes back to the
/// operator instead of being accepted with the dead passport.
#[test]
fn an_offer_after_its_invitation_was_revoked_awaits_the_operator_again() {
    let mut node = invitation_node();
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    let invitation = invite(&mut node, &peer(), &descriptor, 0);
    let id = invitation["passport_id"].as_str().unwrap().to_owned();
    node.receiver.revoke_passport(&id, at(1)).unwrap();
    let offer = Frame::offer(&descriptor)
        .correlation_id("c-again")
        .build()
        .unwrap();

    let again = node.send(&peer(), &offer, at(2));

    assert_answer(&again, Operation::Defer, None);
    assert!(again.authorization().is_none());
    // The same through the revocation view.
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &descriptor, 0);
    let id = invitation["passport_id"].as_str().unwrap().to_owned();
    node.receiver.set_revocation_view(Some(RevocationView {
        as_of: at(1),
        revoked: BTreeSet::from([id]),
    }));
    let again = node.send(&peer(), &offer, at(2));
    assert_answer(&again, Operation::Defer, None);
}

#[test]
fn an_invitation_in_the_revocation_view_is_invitation_revoked() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    let id = invitation["passport_id"].as_str().unwrap().to_owned();
    node.receiver.set_revocation_view(Some(RevocationView {
        as_of: at(1),
        revoked: BTreeSet::from([id]),
    }));
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &invitation), at(2));
    assert_refused(&answer, RefusalCode::InvitationRevoked);
}

#[test]
fn an_invitation_issued_by_another_node_is_invitation_unknown() {
    let mut node = invitation_node();
    let terms = InvitationTerms {
        peer: peer().node_id(),
        descriptor: Descriptor::of_bytes(BLOB, JSON, A0),
        issued_at: T0 as i64,
        ttl_seconds: 3600,
        serial: 1,
    };
    let foreign = issue_invitation(&other_peer(), &terms).unwrap();
    let answer = node.send(
        &peer(),
        &push_under(A0, BLOB, "k-1", foreign.as_object()),
        at(1),
    );
    assert_refused(&answer, RefusalCode::InvitationUnknown);
    // Signed with R's key but never issued through R's ledger: unknown as well.
    let unrecorded = issue_invitation(&receiver_key(), &terms).unwrap();
    let answer = node.send(
        &peer(),
        &push_under(A0, BLOB, "k-1", unrecorded.as_object()),
        at(1),
    );
    assert_refused(&answer, RefusalCode::InvitationUnknown);
}

#[test]
fn an_invitation_for_q_presented_by_p_is_out_of_scope() {
    let mut node = invitation_node();
    let for_q = invite(
        &mut node,
        &other_peer(),
        &Descriptor::of_bytes(BLOB, JSON, A0),
        0,
    );
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &for_q), at(1));
    assert_refused(&answer, RefusalCode::InvitationScopeMismatch);
}

#[test]
fn an_invitation_for_agora_records_used_for_a_blob_is_out_of_scope() {
    let mut node = invitation_node();
    let for_records = invite(
        &mut node,
        &peer(),
        &Descriptor::of_bytes("agora-record.v1", JSON, A0),
        0,
    );
    let profile = &for_records["scope"]["profiles"][0];
    assert_eq!(profile["artifact_schemas"], json!(["agora-record.v1"]));
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &for_records), at(1));
    assert_refused(&answer, RefusalCode::InvitationScopeMismatch);
    assert_eq!(node.stored_count(), 0);
}

#[test]
fn a_tampered_invitation_is_not_authorized() {
    let mut node = invitation_node();
    let mut invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    invitation.insert("expires_at".into(), json!(time(999_999)));
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &invitation), at(1));
    assert_refused(&answer, RefusalCode::NotAuthorized);
}

// General push passports.

/// An `inac.push` passport from `issuer` for `holder`, covering blobs.
fn push_passport(issuer: &KeyPair, holder: &NodeId) -> Passport {
    passport(issuer, holder, "inac.push", push_profile())
}

/// P pushes `bytes` under `pass` at second `when`.
fn push_under_passport(node: &mut Node, pass: &Passport, bytes: &[u8], when: u64) -> Frame {
    let push = push_with(pass, bytes, AuthorizationMode::InvitationPassport);
    node.send(&peer(), &push, at(when))
}

#[track_caller]
fn assert_not_authorized(node: &mut Node, pass: &Passport, when: u64) {
    let answer = push_under_passport(node, pass, A0, when);
    assert_refused(&answer, RefusalCode::NotAuthorized);
}

#[test]
fn a_general_push_passport_from_a_trusted_issuer_is_honoured() {
    let mut node = passport_node();
    let pass = push_passport(&authority(), &peer().node_id());
    for mode in AuthorizationMode::ALL {
        let bytes = format!("[\"{}\"]", mode.as_str());
        let answer = node.send(&peer(), &push_with(&pass, bytes.as_bytes(), mode), at(1));
        assert_answer(&answer, Operation::Ingested, None);
    }
}

#[test]
fn without_a_revocation_view_a_foreign_passport_is_not_authorized() {
    let mut node = passport_node();
    node.receiver.set_revocation_view(None);
    assert_not_authorized(
        &mut node,
        &push_passport(&authority(), &peer().node_id()),
        1,
    );
}

#[test]
fn a_stale_revocation_view_is_not_authorized() {
    let mut node = passport_node();
    let pass = push_passport(&authority(), &peer().node_id());
    // Local T_max is 300 s.
    assert_not_authorized(&mut node, &pass, 301);
    let fresh = push_under_passport(&mut node, &pass, A0, 300);
    assert_answer(&fresh, Operation::Ingested, None);
    // A profile may demand a fresher view than the local maximum.
    let tight = json!({"profile": "inac-push@v1", "artifact_schemas": [BLOB],
        "max_revocation_staleness_seconds": 10});
    let pass = passport(&authority(), &peer().node_id(), "inac.push", tight);
    let answer = push_under_passport(&mut node, &pass, b"[]", 11);
    assert_refused(&answer, RefusalCode::NotAuthorized);
}

#[test]
fn a_passport_in_the_revocation_view_is_not_authorized() {
    let mut node = passport_node();
    let pass = push_passport(&authority(), &peer().node_id());
    node.receiver.set_revocation_view(Some(RevocationView {
        as_of: at(0),
        revoked: BTreeSet::from([pass["passport_id"].as_str().unwrap().to_owned()]),
    }));
    assert_not_authorized(&mut node, &pass, 1);
}

#[test]
fn an_untrusted_issuer_is_not_authorized() {
    let mut node = passport_node();
    assert_not_authorized(
        &mut node,
        &push_passport(&other_peer(), &peer().node_id()),
        1,
    );
}

#[test]
fn passports_that_grant_no_inac_push_are_not_authorized() {
    let mut node = passport_node();
    let holder = peer().node_id();
    let with_profile =
        |capability: &str, profile: Value| passport(&authority(), &holder, capability, profile);
    // A profile for another purpose (like the upstream *-present examples).
    let other_purpose = with_profile(
        "memarium-space-access",
        json!({"profile": "memarium-space-access@v1", "artifact_schemas": [BLOB]}),
    );
    // An inac-push profile for other schemas, and one with an empty schema list.
    let other_schema = with_profile(
        "inac.push",
        json!({"profile": "inac-push@v1", "artifact_schemas": ["agora-record.v1"]}),
    );
    let no_schema = with_profile(
        "inac.push",
        json!({"profile": "inac-push@v1", "artifact_schemas": []}),
    );
    // A placeholder signature.
    let mut placeholder = push_passport(&authority(), &holder);
    placeholder.insert(
        "signature".into(),
        json!({"alg": "ed25519", "value": "base64url:signature"}),
    );
    // account_namespaces on a non-ledger passport.
    let mut namespaces = push_passport(&authority(), &holder);
    namespaces.insert("account_namespaces".into(), json!(["ns"]));
    sign_passport(&authority(), &mut namespaces).unwrap();
    // Held by another node.
    let foreign_holder = push_passport(&authority(), &other_peer().node_id());
    // Delegated.
    let mut delegated = push_passport(&authority(), &holder);
    delegated.insert("issuer_delegation".into(), json!({"proxy_key": "z6Mk"}));
    // The holder's key, but as another kind of caller (spec §5.2 step 4: kind when present).
    let mut participant_caller = push_passport(&authority(), &holder);
    participant_caller["scope"]["allowed_callers"][0]["kind"] = json!("participant");
    sign_passport(&authority(), &mut participant_caller).unwrap();
    // Issued at a leap second whose UTC form is past the year 9999 (it once panicked the
    // receiver).
    let mut out_of_range = push_passport(&authority(), &holder);
    out_of_range.insert("issued_at".into(), json!("9999-12-31T23:59:60-23:59"));
    sign_passport(&authority(), &mut out_of_range).unwrap();
    for pass in [
        other_purpose,
        other_schema,
        no_schema,
        placeholder,
        namespaces,
        foreign_holder,
        delegated,
        participant_caller,
        out_of_range,
    ] {
        assert_not_authorized(&mut node, &pass, 1);
    }
    assert_eq!(node.stored_count(), 0);

    // An entry without a kind may name a node.
    let mut any_kind = push_passport(&authority(), &holder);
    let callers = any_kind["scope"]["allowed_callers"][0]
        .as_object_mut()
        .unwrap();
    callers.remove("kind");
    sign_passport(&authority(), &mut any_kind).unwrap();
    let answer = push_under_passport(&mut node, &any_kind, A0, 1);
    assert_answer(&answer, Operation::Ingested, None);
}

/// A general passport (no single use) lets another artifact reach the idempotency check:
/// under a used key it is `malformed`. Once the passport lapsed, the delivered push is still
/// replayed and another artifact under its key is refused by the passport, as any push.
#[test]
fn a_key_delivered_under_a_general_passport_is_replayed_after_expiry_and_holds_its_artifact() {
    let mut node = passport_node();
    let pass = push_passport(&authority(), &peer().node_id());
    let keyed = |bytes: &[u8]| {
        Frame::push_inline(&Descriptor::of_bytes(BLOB, JSON, bytes), bytes)
            .idempotency_key("k-1")
            .authorization(AuthorizationMode::CapabilityPassport, &pass)
            .build()
            .unwrap()
    };
    assert_answer(
        &node.send(&peer(), &keyed(A0), at(1)),
        Operation::Ingested,
        None,
    );
    assert_refused(
        &node.send(&peer(), &keyed(b"[]"), at(2)),
        RefusalCode::Malformed,
    );
    node.receiver.set_revocation_view(Some(RevocationView {
        as_of: at(7200),
        revoked: BTreeSet::new(),
    }));

    let retry = node.send(&peer(), &keyed(A0), at(7200));
    let other_artifact = node.send(&peer(), &keyed(b"[]"), at(7200));

    assert_answer(&retry, Operation::Ingested, None);
    assert_refused(&other_artifact, RefusalCode::NotAuthorized);
    assert_eq!(node.stored_count(), 1);
}

#[test]
fn an_expired_general_passport_is_not_authorized() {
    let mut node = passport_node();
    node.receiver.set_revocation_view(Some(RevocationView {
        as_of: at(3600),
        revoked: BTreeSet::new(),
    }));
    assert_not_authorized(
        &mut node,
        &push_passport(&authority(), &peer().node_id()),
        3600,
    );
}

// Custody passports.

/// A stream push header of `bytes` on `stream` under the custody passport `pass`.
fn custody_stream_header(pass: &Passport, bytes: &[u8], stream: &str) -> Frame {
    Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, bytes), stream)
        .authorization(AuthorizationMode::CustodyPassport, pass)
        .build()
        .unwrap()
}

fn custody(limits: Value) -> Passport {
    let mut profile = json!({"profile": "memarium-custody@v1", "artifact_schemas": [BLOB]});
    for (key, value) in limits.as_object().unwrap() {
        profile[key] = value.clone();
    }
    passport(&authority(), &peer().node_id(), "memarium.custody", profile)
}

#[test]
fn custody_max_bytes_is_payload_too_large() {
    let mut node = passport_node();
    let pass = custody(json!({"max_bytes": 10}));
    let answer = node.send(
        &peer(),
        &push_with(&pass, &[b'x'; 100], AuthorizationMode::CustodyPassport),
        at(1),
    );
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    let answer = node.send(
        &peer(),
        &push_with(&pass, &[b'x'; 10], AuthorizationMode::CustodyPassport),
        at(1),
    );
    assert_answer(&answer, Operation::Ingested, None);
}

#[test]
fn custody_max_records_holds_for_stream_pushes_admitted_side_by_side() {
    // One record at most; and the same beside a profile with no record limit (profiles
    // compose by OR, so that passport allows both).
    let one = custody(json!({"max_records": 1}));
    let mut or_unlimited = one.clone();
    or_unlimited["scope"]["profiles"]
        .as_array_mut()
        .unwrap()
        .push(json!({"profile": "memarium-custody@v1", "artifact_schemas": [BLOB]}));
    sign_passport(&authority(), &mut or_unlimited).unwrap();
    for (pass, second_answer) in [
        (one, Some(RefusalCode::QuotaExceeded)),
        (or_unlimited, None),
    ] {
        let mut node = passport_node();
        let header = |bytes: &[u8], stream: &str| custody_stream_header(&pass, bytes, stream);
        // Both headers pass while the passport holds nothing yet.
        let mut first = node.begin(&peer(), &header(A0, "4"), at(1));
        let mut second = node.begin(&peer(), &header(b"[]", "8"), at(1));
        first.write(A0).unwrap();
        second.write(b"[]").unwrap();
        let finish = |node: &mut Node, body: orbi_inac::IncomingBody| {
            node.receiver
                .finish_push(body.complete(orbi_inac::BodyEnd::Finished), at(2))
        };
        assert_answer(&finish(&mut node, first), Operation::Ingested, None);
        // The first used the one record while the second was in flight.
        match second_answer {
            Some(code) => assert_refused(&finish(&mut node, second), code),
            None => assert_answer(&finish(&mut node, second), Operation::Ingested, None),
        }
        assert_eq!(node.holds(b"[]"), second_answer.is_none());
    }
}

#[test]
fn custody_max_records_is_quota_exceeded_for_a_second_distinct_artifact() {
    let mut node = passport_node();
    let pass = custody(json!({"max_records": 1}));
    let first = push_with(&pass, A0, AuthorizationMode::CustodyPassport);
    assert_answer(
        &node.send(&peer(), &first, at(1)),
        Operation::Ingested,
        None,
    );
    let second = push_with(&pass, b"[]", AuthorizationMode::CustodyPassport);
    let answer = node.send(&peer(), &second, at(2));
    assert_refused(&answer, RefusalCode::QuotaExceeded);
    // The record already held under the passport does not count twice.
    assert_answer(
        &node.send(&peer(), &first, at(3)),
        Operation::AlreadyPresent,
        None,
    );
}

/// A retry is replayed before the passport's time and use checks, never before the peer gate:
/// a peer taken off the allowlist gets its delivered answer back only with a passport that is
/// genuinely its own from a trusted issuer, not with one it signed itself.
#[test]
fn a_peer_off_the_allowlist_gets_no_replay_on_a_passport_of_its_own_making() {
    use orbi_inac::{FsStore, KindRegistry, Receiver, ReceiverConfig, SqliteLedger};
    let dir = tempfile::tempdir().unwrap();
    let open = |allow: bool| {
        let mut config = ReceiverConfig::default();
        if allow {
            config.allowed_peers.insert(peer().node_id());
        }
        config.trusted_issuers.insert(authority().participant_id());
        Receiver::new(
            receiver_key(),
            config,
            KindRegistry::builder().keep(BLOB, None).build().unwrap(),
            FsStore::open(dir.path().join("store")).unwrap(),
            SqliteLedger::open(dir.path().join("inac.sqlite")).unwrap(),
        )
    };
    let plain = inline_push(BLOB, A0, Some("k-1"));
    {
        let mut receiver = open(true);
        let first = answer(receiver.handle(&peer().node_id(), &plain, at(1)));
        assert_answer(&first, Operation::Ingested, None);
    }
    let mut receiver = open(false);
    let without = answer(receiver.handle(&peer().node_id(), &plain, at(2)));
    assert_refused(&without, RefusalCode::NotAuthorized);
    let keyed = |passport: &Passport| {
        Frame::push_inline(&Descriptor::of_bytes(BLOB, JSON, A0), A0)
            .idempotency_key("k-1")
            .authorization(AuthorizationMode::CapabilityPassport, passport)
            .build()
            .unwrap()
    };
    let self_made = push_passport(&peer(), &peer().node_id());
    let retry = answer(receiver.handle(&peer().node_id(), &keyed(&self_made), at(2)));
    assert_refused(&retry, RefusalCode::NotAuthorized);
    // Another node's passport from the trusted authority binds nobody else.
    let foreign = push_passport(&authority(), &other_peer().node_id());
    let retry = answer(receiver.handle(&peer().node_id(), &keyed(&foreign), at(2)));
    assert_refused(&retry, RefusalCode::NotAuthorized);
    // Its own passport from the trusted authority, even lapsed, gets the delivered answer.
    let lapsed = push_passport(&authority(), &peer().node_id());
    let retry = answer(receiver.handle(&peer().node_id(), &keyed(&lapsed), at(7200)));
    assert_answer(&retry, Operation::Ingested, None);
}

// Spec §5.1/§5.2: a peer off the allowlist gets the replay of its delivered push only on a
// passport whose signature verifies; a tampered one is `not-authorized`.
#[test]
fn a_tampered_passport_gets_no_replay_of_a_delivered_push() {
    let mut node = passport_node();
    let pass = passport_issued(
        &authority(),
        &peer().node_id(),
        "inac.push",
        0,
        json!([push_profile()]),
    );
    let first = node.send(
        &peer(),
        &push_builder(&pass, A0, CAPABILITY)
            .idempotency_key("k-1")
            .build()
            .unwrap(),
        at(1),
    );
    assert_answer(&first, Operation::Ingested, None);
    let mut tampered = pass.clone();
    tampered.insert("expires_at".into(), json!(time(999_999)));
    let retry = node.send(
        &peer(),
        &push_builder(&tampered, A0, CAPABILITY)
            .idempotency_key("k-1")
            .build()
            .unwrap(),
        at(2),
    );
    assert_refused(&retry, RefusalCode::NotAuthorized);
}

// Spec §5.2: `issued_at` is checked with the tolerated clock skew (300 s by default).
#[test]
fn a_passport_issued_within_the_clock_skew_is_honoured_and_beyond_it_is_not() {
    let mut node = passport_node();
    let soon = passport_issued(
        &authority(),
        &peer().node_id(),
        "inac.push",
        200,
        json!([push_profile()]),
    );
    let answer = node.send(&peer(), &push_with(&soon, A0, CAPABILITY), at(1));
    assert_answer(&answer, Operation::Ingested, None);
    let later = passport_issued(
        &authority(),
        &peer().node_id(),
        "inac.push",
        400,
        json!([push_profile()]),
    );
    let answer = node.send(&peer(), &push_with(&later, b"[]", CAPABILITY), at(1));
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
    let pass = passport_issued(
        &authority(),
        &peer().node_id(),
        "memarium.custody",
        0,
        profiles,
    );
    let mut node = passport_node();
    let header = |bytes: &[u8], stream: &str| custody_stream_header(&pass, bytes, stream);
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

// Spec §5.2: a single-use invitation is consumed only by `ingested` / `already-present`.
#[test]
fn a_refused_push_does_not_use_up_a_single_use_invitation() {
    let mut node = invitation_node();
    let invitation = invite(&mut node, &peer(), &Descriptor::of_bytes(BLOB, JSON, A0), 0);
    // A0's descriptor with the two bytes of `[]`: digest-mismatch at the byte check.
    let mut wrong = push_under(A0, BLOB, "k-bad", &invitation).to_value();
    wrong["artifact"]["bytes/base64url"] = json!("W10");
    let answer = node.send_value(&peer(), &wrong, at(1));
    assert_refused(&answer, RefusalCode::DigestMismatch);
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-good", &invitation), at(2));
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
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &moved), at(1));
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
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &narrowed), at(1));
    assert_refused(&answer, RefusalCode::InvitationScopeMismatch);
    let unlisted = reissued(&invitation, |p| {
        let profile = p["scope"]["profiles"][0].as_object_mut().unwrap();
        profile.remove("peer_node_ids");
    });
    let answer = node.send(&peer(), &push_under(A0, BLOB, "k-1", &unlisted), at(1));
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
    let first = node.send(&peer(), &push_under(A0, BLOB, "k-1", &silent), at(1));
    assert_answer(&first, Operation::Ingested, None);
    let second = node.send(&peer(), &push_under(A0, BLOB, "k-2", &silent), at(2));
    assert_refused(&second, RefusalCode::InvitationRevoked);
}
