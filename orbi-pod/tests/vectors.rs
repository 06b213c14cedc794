//! Spec pod §8.2 and §8.3 through the engine: the cryptographic and semantic vectors S1–S10,
//! the schema mutations, and the order of the V checks.

mod common;

use common::*;
use orbi_pod::{
    Check, HostPolicy, LifecycleState, Offer, PolicyWarning, RejectionCode, Session, Verdict,
};
use orbi_schema::Profile;
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: &str = "2026-03-28T19:42:05Z";

fn admit_now(value: &Value) -> orbi_pod::Admission {
    admit(&mut engine(), value, SESS1, NOW)
}

#[test]
fn s1_b1_is_accepted_alone_and_in_an_attachment() {
    let b1 = b1();
    assert_eq!(b1["proof/participant-signature"]["value"], B1_SIGNATURE);
    let mut engine = engine();
    let bound = admit(&mut engine, &b1, SESS1, NOW);
    assert_admitted(&bound, LifecycleState::Bound);
    assert_eq!(bound.id.as_deref(), Some("pb:01JQPARTBIND001"));
    // The bind is cached for its session: sending it again is a replay.
    assert_eq!(
        admit(&mut engine, &b1, SESS1, NOW).verdict,
        Verdict::Replayed
    );
    let attached = admit(&mut engine, &a1(), SESS1, NOW);
    assert_admitted(&attached, LifecycleState::Attached);
}

#[test]
fn s2_session_changed_after_signing() {
    let mut bind = b1();
    bind["session/id"] = json!(SESS2);
    let mut engine = engine();
    engine.open_session(SESS2, Session::default());
    let admission = admit(&mut engine, &bind, SESS2, NOW);
    assert_rejected(&admission, RejectionCode::SigInvalid);
    assert_eq!(admission.rejection().unwrap().check, Check::V7);
}

#[test]
fn s3_swapped_key_is_a_key_mismatch_before_the_signature() {
    let mut bind = b1();
    bind["participant/key/public"] = json!(K3);
    let admission = admit_now(&attachment_with(
        "attach:s3",
        CLIENT,
        "2026-03-28T19:42:00Z",
        bind,
    ));
    assert_rejected(&admission, RejectionCode::KeyMismatch);
    assert_eq!(admission.rejection().unwrap().check, Check::V4);
}

#[test]
fn s4_bind_through_another_node() {
    let other_node = format!("node:did:key:{K3}");
    let mut bind = b1();
    bind["via/node-id"] = json!(other_node);
    // Re-sign so that only the addressing is wrong.
    let bind = resign(bind, &k2());
    assert_rejected(&admit_now(&bind), RejectionCode::WrongNode);
    let attachment = attachment_with("attach:s4", CLIENT, "2026-03-28T19:42:00Z", bind);
    assert_rejected(&admit_now(&attachment), RejectionCode::WrongNode);
    // An attachment addressed to another serving node.
    let mut elsewhere = a1();
    elsewhere["serving-node/id"] = json!(other_node);
    let admission = admit_now(&elsewhere);
    assert_rejected(&admission, RejectionCode::WrongNode);
    assert_eq!(admission.rejection().unwrap().check, Check::V5);
}

#[test]
fn s5_b1_on_another_session() {
    let mut engine = engine();
    engine.open_session(SESS2, Session::default());
    let admission = admit(&mut engine, &a1(), SESS2, NOW);
    assert_rejected(&admission, RejectionCode::SessionMismatch);
    assert_eq!(admission.rejection().unwrap().check, Check::V6a);
    // And on a session that is not live at all.
    assert_rejected(
        &admit(&mut engine, &a1(), "sess:never-opened", NOW),
        RejectionCode::SessionMismatch,
    );
}

#[test]
fn s6_badly_encoded_signature_values() {
    for value in [
        "base64url:participant-bind-signature".to_owned(),
        format!("{B1_SIGNATURE}=="),
        B1_SIGNATURE[..85].to_owned(),
        B1_SIGNATURE.replace('-', "+"),
    ] {
        let mut bind = b1();
        bind["proof/participant-signature"]["value"] = json!(value);
        let admission = admit_now(&bind);
        assert_rejected(&admission, RejectionCode::SigInvalid);
        assert!(admission.rejection().unwrap().message.contains("86"));
    }
}

#[test]
fn s7_annotations_added_after_signing() {
    let mut bind = b1();
    bind["policy_annotations"] = json!({"note": "x"});
    assert_rejected(&admit_now(&bind), RejectionCode::SigInvalid);
}

#[test]
fn s8_untagged_signature() {
    let mut bind = b1();
    bind["proof/participant-signature"]["value"] = json!(B1_UNTAGGED);
    assert_rejected(&admit_now(&bind), RejectionCode::SigInvalid);
}

#[test]
fn s9_attached_before_bound() {
    let attachment = attachment_with("attach:s9", CLIENT, "2026-03-28T19:10:00Z", b1());
    let admission = admit_now(&attachment);
    assert_rejected(&admission, RejectionCode::TimeOrder);
    assert_eq!(admission.rejection().unwrap().check, Check::V8);
}

#[test]
fn s10_attached_an_hour_ahead() {
    let attachment = attachment_with("attach:s10", CLIENT, "2026-03-28T20:42:05Z", b1());
    assert_rejected(&admit_now(&attachment), RejectionCode::Clock);
    // 30 s of skew is tolerated, 31 s is not.
    let within = attachment_with("attach:skew", CLIENT, "2026-03-28T19:42:35Z", b1());
    assert_admitted(&admit_now(&within), LifecycleState::Attached);
    let beyond = attachment_with("attach:skew", CLIENT, "2026-03-28T19:42:36Z", b1());
    assert_rejected(&admit_now(&beyond), RejectionCode::Clock);
}

#[test]
fn bind_older_than_its_session_is_refused() {
    let mut engine = engine();
    engine.open_session(
        SESS1,
        Session {
            established_at: Some(instant("2026-03-28T19:30:00Z")),
            peer: None,
        },
    );
    assert_rejected(
        &admit(&mut engine, &a1(), SESS1, NOW),
        RejectionCode::TimeOrder,
    );
    engine.open_session(
        SESS1,
        Session {
            established_at: Some(instant("2026-03-28T19:20:30Z")),
            peer: None,
        },
    );
    assert_admitted(
        &admit(&mut engine, &a1(), SESS1, NOW),
        LifecycleState::Attached,
    );
}

#[test]
fn k4_is_an_unknown_signer_before_the_placeholder_signature() {
    let mut bind = b1();
    bind["participant/id"] = json!(format!("participant:did:key:{K4}"));
    bind["participant/key/public"] = json!(K4);
    bind["proof/participant-signature"]["value"] = json!("base64url:participant-bind-signature");
    let admission = admit_now(&bind);
    assert_rejected(&admission, RejectionCode::SigUnknownSigner);
    assert_eq!(admission.rejection().unwrap().check, Check::V3);
    assert!(
        admission
            .rejection()
            .unwrap()
            .message
            .contains("curve point")
    );
}

#[test]
fn version_other_than_1_is_reported_as_such() {
    let mut attachment = a1();
    attachment["schema/v"] = json!(2);
    let admission = admit_now(&attachment);
    assert_rejected(&admission, RejectionCode::ProtoVersion);
    assert_eq!(admission.rejection().unwrap().check, Check::V2);
    let mut inner = a1();
    inner["participant-bind"]["schema/v"] = json!(7);
    assert_rejected(&admit_now(&inner), RejectionCode::ProtoVersion);
    // Any other number, negative or fractional, is a version too.
    for other in [json!(-1), json!(2.5)] {
        let mut odd = a1();
        odd["schema/v"] = other;
        let admission = admit_now(&odd);
        assert_rejected(&admission, RejectionCode::ProtoVersion);
        assert_eq!(admission.rejection().unwrap().check, Check::V2);
    }
    // A version that is not a number is simply invalid.
    let mut text = a1();
    text["schema/v"] = json!("1");
    assert_rejected(&admit_now(&text), RejectionCode::ProtoInvalid);
    // The fractional spelling passes the schema but not the typed parse.
    let mut fractional = a1();
    fractional["schema/v"] = json!(1.0);
    assert_rejected(&admit_now(&fractional), RejectionCode::ProtoInvalid);
}

#[test]
fn oversized_unparseable_and_unknown_documents() {
    let mut big = a1();
    big["policy_annotations"] = json!({"pad": "x".repeat(64 * 1024)});
    let admission = admit_now(&big);
    assert_rejected(&admission, RejectionCode::ProtoInvalid);
    assert_eq!(admission.rejection().unwrap().check, Check::V0);
    let mut engine = engine();
    for junk in [
        &b"not json"[..],
        br#"{"attachment/id":"a","attachment/id":"b"}"#,
        b"[]",
        br#"{"hello":1}"#,
        br#"{"detachment/id":"d","recovery/id":"r"}"#,
        b"",
    ] {
        let admission = engine.admit(junk, SESS1, instant(NOW)).unwrap();
        assert_rejected(&admission, RejectionCode::ProtoInvalid);
        assert_eq!(admission.rejection().unwrap().check, Check::V1);
    }
    // Both ids at once is refused as ambiguous before any schema is chosen.
    let ambiguous = engine
        .admit(
            br#"{"detachment/id":"d","recovery/id":"r"}"#,
            SESS1,
            instant(NOW),
        )
        .unwrap();
    assert_eq!(
        ambiguous.rejection().unwrap().message,
        "ambiguous artifact: both detachment/id and recovery/id are present"
    );
    let counts = orbi_pod::Store::counts(engine.store()).unwrap();
    assert_eq!(counts.traces, 0, "rejections are not stored");
}

#[test]
fn schema_mutations_under_both_profiles() {
    let frozen = HostPolicy::default();
    let seed = HostPolicy::default().with_profile(Profile::Seed);
    let run = |policy: &HostPolicy, value: &Value| {
        admit(&mut engine_with(policy.clone()), value, SESS1, NOW)
    };
    // N1: unknown top-level member.
    let mut n1 = a1();
    n1["pod/id"] = json!("pod:pl-wro-node-7f3c:user-42");
    assert_rejected(&run(&frozen, &n1), RejectionCode::ProtoInvalid);
    assert_admitted(&run(&seed, &n1), LifecycleState::Attached);
    // N5: unknown bind member added after signing: invalid when frozen, unsigned when open.
    let mut n5 = a1();
    n5["participant-bind"]["extra"] = json!(1);
    assert_rejected(&run(&frozen, &n5), RejectionCode::ProtoInvalid);
    assert_rejected(&run(&seed, &n5), RejectionCode::SigInvalid);
    // ... and signed with it, valid in the open shape.
    let mut with_extra = b1();
    with_extra["extra"] = json!(1);
    let signed = attachment_with(
        "attach:n5",
        CLIENT,
        "2026-03-28T19:42:00Z",
        resign(with_extra, &k2()),
    );
    assert_rejected(&run(&frozen, &signed), RejectionCode::ProtoInvalid);
    assert_admitted(&run(&seed, &signed), LifecycleState::Attached);
    // N6: unknown member in the signature object: ignored in the open shape.
    let mut n6 = a1();
    n6["participant-bind"]["proof/participant-signature"]["kid"] = json!("x");
    assert_rejected(&run(&frozen, &n6), RejectionCode::ProtoInvalid);
    assert_admitted(&run(&seed, &n6), LifecycleState::Attached);
    // N7: schema-valid algorithm name that is not ed25519.
    let mut n7 = a1();
    n7["participant-bind"]["proof/participant-signature"]["alg"] = json!("rsa");
    for policy in [&frozen, &seed] {
        let admission = run(policy, &n7);
        assert_rejected(&admission, RejectionCode::SigInvalid);
        assert_eq!(admission.rejection().unwrap().check, Check::V4);
    }
    // N14: top-level attestation on an attachment.
    let mut n14 = a1();
    n14["proof/node-attestation"] = json!({"alg": "ed25519", "value": "x"});
    assert_rejected(&run(&frozen, &n14), RejectionCode::ProtoInvalid);
    assert_admitted(&run(&seed, &n14), LifecycleState::Attached);
    // N19: annotations are open in both.
    let mut n19 = a1();
    n19["policy_annotations"] = json!({"deep": {"nested": [1, {"x": null}]}});
    assert_admitted(&run(&frozen, &n19), LifecycleState::Attached);
    // Invalid in both shapes.
    for (pointer, bad) in [
        ("/serving-node~1id", json!("node:pl-wro-7f3c")),
        ("/profile~1type", json!("full-node")),
        ("/session~1state", json!("detached")),
        (
            "/participant-bind/participant~1key~1alg",
            json!("secp256k1"),
        ),
        (
            "/participant-bind/participant~1id",
            json!("participant:did:key:z0OIl"),
        ),
        (
            "/participant-bind/participant~1id",
            json!(format!("did:key:{K3}")),
        ),
        ("/attached-at", json!("2026-03-28 19:42")),
        ("/client-instance~1id", json!("")),
    ] {
        let mut value = a1();
        *value.pointer_mut(pointer).unwrap() = bad.clone();
        for policy in [&frozen, &seed] {
            let admission = run(policy, &value);
            assert_rejected(&admission, RejectionCode::ProtoInvalid);
            assert_eq!(
                admission.rejection().unwrap().check,
                Check::V1,
                "{pointer} {bad}"
            );
        }
    }
}

/// §8.2 N16–N18: the detachment and recovery mutations, under both shapes.
#[test]
fn n16_n17_n18_detachment_and_recovery_mutations() {
    const DETACH_AT: &str = "2026-03-28T20:05:10Z";
    const RECOVER_AT: &str = "2026-03-28T20:25:10Z";
    let frozen = HostPolicy::default();
    let seed = HostPolicy::default().with_profile(Profile::Seed);
    let attached = |policy: &HostPolicy| {
        let mut engine = engine_with(policy.clone());
        assert_admitted(
            &admit(&mut engine, &a1(), SESS1, NOW),
            LifecycleState::Attached,
        );
        engine
    };
    let detach =
        |policy: &HostPolicy, value: &Value| admit(&mut attached(policy), value, SESS1, DETACH_AT);
    let d1_with = |pointer: &str, value: Value| {
        let mut detachment = d1();
        detachment[pointer] = value;
        detachment
    };
    // N16: an unknown reason and empty notes are invalid in both shapes.
    for bad in [
        d1_with("detach/reason", json!("stolen")),
        d1_with("detach/notes", json!("")),
    ] {
        for policy in [&frozen, &seed] {
            let admission = detach(policy, &bad);
            assert_rejected(&admission, RejectionCode::ProtoInvalid);
            assert_eq!(admission.rejection().unwrap().check, Check::V1);
        }
    }
    // N17: an attestation with an extra `by` only fits the open shape; `{alg, value}` both.
    let with_by = d1_with(
        "proof/node-attestation",
        json!({"alg": "ed25519", "value": "x", "by": "y"}),
    );
    assert_rejected(&detach(&frozen, &with_by), RejectionCode::ProtoInvalid);
    assert_admitted(&detach(&seed, &with_by), LifecycleState::Detached);
    let plain = d1_with(
        "proof/node-attestation",
        json!({"alg": "ed25519", "value": "x"}),
    );
    for policy in [&frozen, &seed] {
        assert_admitted(&detach(policy, &plain), LifecycleState::Detached);
    }
    // N18: an unknown mode and an empty token-ref are invalid; no token-ref is valid.
    for policy in [&frozen, &seed] {
        let mut engine = attached(policy);
        assert_admitted(
            &admit(&mut engine, &d1(), SESS1, DETACH_AT),
            LifecycleState::Detached,
        );
        engine.open_session(SESS3, Session::default());
        let recovery_with = |pointer: &str, value: Value| {
            let mut recovery = reattach_after_d1("recover:n18");
            recovery[pointer] = value;
            recovery
        };
        for bad in [
            recovery_with("recovery/mode", json!("restore")),
            recovery_with("recovery/token-ref", json!("")),
        ] {
            assert_rejected(
                &admit(&mut engine, &bad, SESS3, RECOVER_AT),
                RejectionCode::ProtoInvalid,
            );
        }
        let without_token = reattach_after_d1("recover:n18");
        assert!(without_token.get("recovery/token-ref").is_none());
        assert_admitted(
            &admit(&mut engine, &without_token, SESS3, RECOVER_AT),
            LifecycleState::RecoveryGranted,
        );
    }
}

#[test]
fn n11_pod_user_pattern_and_n15_required_flag() {
    // N11 and N15 on members A1 does not carry or must carry.
    let mut value = a1();
    value["pod-user/id"] = json!("pod-user:42");
    assert_rejected(&admit_now(&value), RejectionCode::ProtoInvalid);
    let mut no_migration = a1();
    no_migration
        .as_object_mut()
        .unwrap()
        .remove("migration/allowed?");
    assert_rejected(&admit_now(&no_migration), RejectionCode::ProtoInvalid);
}

#[test]
fn opaque_ids_are_bounded_and_printable() {
    for bad in ["client:with space", "client:tab\there", &"c".repeat(257)] {
        let attachment = attachment_with("attach:ids", bad, "2026-03-28T19:42:00Z", b1());
        let admission = admit_now(&attachment);
        assert_rejected(&admission, RejectionCode::ProtoInvalid);
        assert!(
            admission
                .rejection()
                .unwrap()
                .message
                .contains("client-instance/id")
        );
    }
    let longest = "c".repeat(256);
    let attachment = attachment_with("attach:ids", &longest, "2026-03-28T19:42:00Z", b1());
    assert_admitted(&admit_now(&attachment), LifecycleState::Attached);
}

#[test]
fn tenancy_of_pod_user_ids() {
    let hosted = format!("pod-user:did:key:{K3}");
    let with_pod_user = |pod_user: &str| {
        let mut value = a1();
        value["pod-user/id"] = json!(pod_user);
        value
    };
    // Early deployments reuse the participant role.
    let same = with_pod_user(k2().participant_id().as_str());
    assert_admitted(&admit_now(&same), LifecycleState::Attached);
    let other = with_pod_user(&format!("participant:did:key:{K3}"));
    assert_rejected(&admit_now(&other), RejectionCode::TenancyUnknown);
    // An empty tenancy table refuses every pod-user id.
    assert_rejected(
        &admit_now(&with_pod_user(&hosted)),
        RejectionCode::TenancyUnknown,
    );
    let mut policy = HostPolicy::default();
    policy
        .tenancy
        .insert(hosted.parse().unwrap(), k2().participant_id());
    let admission = admit(
        &mut engine_with(policy),
        &with_pod_user(&hosted),
        SESS1,
        NOW,
    );
    assert_admitted(&admission, LifecycleState::Attached);
    // A pod-user id that is not a curve point is an unknown signer (V3).
    let bad = with_pod_user(&format!("pod-user:did:key:{K4}"));
    assert_rejected(&admit_now(&bad), RejectionCode::SigUnknownSigner);
}

#[test]
fn flags_must_match_what_the_host_offers() {
    let mut no_export = a1();
    no_export["export/capable?"] = json!(false);
    let admission = admit_now(&no_export);
    assert_rejected(&admission, RejectionCode::PolicyMismatch);
    assert_eq!(admission.rejection().unwrap().check, Check::V10);
    let policy = HostPolicy {
        pod_client: Offer {
            export_capable: false,
            migration_allowed: true,
        },
        ..HostPolicy::default()
    };
    let admission = admit(&mut engine_with(policy), &no_export, SESS1, NOW);
    assert_admitted(&admission, LifecycleState::Attached);
    assert_eq!(admission.warnings, [PolicyWarning::ExportNotOffered]);
    let mut local = a1();
    local["models/local?"] = json!(true);
    let admission = admit_now(&local);
    assert_admitted(&admission, LifecycleState::Attached);
    assert_eq!(
        admission.warnings,
        [PolicyWarning::PodClientWithLocalModels]
    );
    // Hybrid uses its own offer.
    let mut hybrid = a1();
    hybrid["profile/type"] = json!("hybrid");
    hybrid["models/local?"] = json!(true);
    let admission = admit_now(&hybrid);
    assert_admitted(&admission, LifecycleState::Attached);
    assert!(admission.warnings.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any single-byte change to a signed bind is refused, whatever check catches it.
    #[test]
    fn any_single_byte_change_to_a_signed_bind_is_refused(
        index in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let original = bytes(&b1());
        let at = index.index(original.len());
        prop_assume!(original[at] != replacement);
        let mut changed = original.clone();
        changed[at] = replacement;
        let mut engine = engine();
        let admission = engine.admit(&changed, SESS1, instant(NOW)).unwrap();
        prop_assert!(
            matches!(admission.verdict, Verdict::Rejected(_)),
            "byte {} -> {:?} was {:?}", at, replacement as char, admission.verdict
        );
        // The original still verifies on the same engine.
        let admission = engine.admit(&original, SESS1, instant(NOW)).unwrap();
        prop_assert_eq!(admission.verdict, Verdict::Admitted);
    }

    /// Any change to one character of a signed member is a signature failure.
    #[test]
    fn any_changed_signed_string_fails_verification(
        field in prop::sample::select(vec!["bind/id", "bound-at", "session/id"]),
        index in any::<prop::sample::Index>(),
        replacement in "[a-z0-9:]",
    ) {
        let original = b1();
        let text = original[field].as_str().unwrap().to_owned();
        let at = index.index(text.len());
        let mut changed_text = text.clone();
        changed_text.replace_range(at..at + 1, &replacement);
        prop_assume!(changed_text != text);
        let mut changed = original.clone();
        changed[field] = json!(changed_text);
        let input = orbi_types::pod::bind_signing_input(&changed).unwrap();
        prop_assert!(orbi_types::signing::verify(&k2().verifying_key(), &input, B1_SIGNATURE).is_err());
    }
}
