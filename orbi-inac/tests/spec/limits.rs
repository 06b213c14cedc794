//! Spec §9.3: byte identity and size limits.

use orbi_inac::{Descriptor, Frame, FrameError, Handled, MAX_FRAME_BYTES};
use orbi_types::inac::{Operation, RefusalCode};
use serde_json::json;

use crate::common::*;

#[test]
fn a0_bytes_with_the_digest_of_an_empty_array_is_digest_mismatch() {
    let mut node = standard();
    let mut value = push_a0_value();
    value["artifact"]["digest"] = json!(EMPTY_ARRAY_DIGEST);
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::DigestMismatch);
    assert_eq!(node.stored_count(), 0);
}

/// The inline ceiling holds for the decoded bytes (§2 size limits), at step 4 of §6's order:
/// before the byte check, so a declared size under the ceiling does not turn it into
/// `digest-mismatch`.
#[test]
fn inline_bytes_over_the_ceiling_declared_under_it_are_payload_too_large() {
    let mut node = standard_with(|config| config.inline_max_bytes = 10);
    let mut value = inline_push(BLOB, &[b'x'; 11], None).to_value();
    value["artifact"]["size/bytes"] = json!(10);
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    assert!(
        message(&answer).contains("11 bytes"),
        "{}",
        message(&answer)
    );

    let mut node = standard();
    let mut value = inline_push(BLOB, &vec![b'a'; 65_537], None).to_value();
    value["artifact"]["size/bytes"] = json!(65_536);
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    assert_eq!(node.stored_count(), 0);
}

/// A length mismatch is found at the byte check (step 8), after the peer gate (step 2): a
/// stranger without a passport learns only that it may not push here.
#[test]
fn a_stranger_with_a_length_mismatch_is_not_authorized() {
    let mut node = standard();
    let mut value = push_a0_value();
    value["artifact"]["bytes/base64url"] = json!("e30K");
    let answer = node.send_value(&other_peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::NotAuthorized);
    assert_eq!(answer.correlation_id(), Some("inac-correlation:orbi-1"));
}

/// Bytes that hash to the digest but are not `size/bytes` long are refused too: the size is
/// part of the descriptor the receiver records.
#[test]
fn the_right_bytes_under_a_wrong_size_are_digest_mismatch() {
    let mut node = standard();
    let mut value = push_a0_value();
    value["artifact"]["size/bytes"] = json!(3);
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::DigestMismatch);
    assert!(
        message(&answer).contains("decodes to 2 bytes but size/bytes declares 3"),
        "{}",
        message(&answer)
    );
    assert_eq!(node.stored_count(), 0);
}

#[test]
fn three_bytes_declared_as_two_is_digest_mismatch() {
    let mut node = standard();
    let mut value = push_a0_value();
    value["artifact"]["bytes/base64url"] = json!("e30K");
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::DigestMismatch);
    assert_eq!(answer.correlation_id(), Some("inac-correlation:orbi-1"));
    assert_eq!(node.stored_count(), 0);
}

#[test]
fn inline_65536_bytes_pass_the_ceiling() {
    let mut node = standard();
    let bytes = vec![b'a'; 65_536];
    let frame = inline_push(BLOB, &bytes, None);
    assert_eq!(
        frame.artifact().unwrap().digest.as_str(),
        "sha256:v3GLb2U768GE4UefGTW42pdNcBuJOvz0nnAfPi-fnFo"
    );
    assert!(frame.encode().len() < orbi_inac::MAX_FRAME_BYTES);
    assert_answer(
        &node.send(&peer(), &frame, at(0)),
        Operation::Ingested,
        None,
    );
    assert!(node.holds(&bytes));
}

#[test]
fn inline_65537_bytes_are_payload_too_large() {
    let mut node = standard();
    let bytes = vec![b'a'; 65_537];
    let frame = inline_push(BLOB, &bytes, None);
    assert_eq!(
        frame.artifact().unwrap().digest.as_str(),
        "sha256:AI_8iNPJap8wdSTrNh5HxSIqiH_EX6DB-41CnFwjtDA"
    );
    let answer = node.send(&peer(), &frame, at(0));
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    assert_eq!(node.stored_count(), 0);
}

#[test]
fn the_same_65537_bytes_in_stream_mode_are_ingested() {
    let mut node = standard();
    let bytes = vec![b'a'; 65_537];
    ingest_stream(&mut node, &bytes);
    assert!(node.holds(&bytes));
}

fn header_of_size(size: u64) -> serde_json::Value {
    json!({"schema": "inac-control.v1", "operation": "push", "correlation/id": "c-big",
        "artifact": {"schema": BLOB, "content/type": "application/octet-stream",
            "artifact/id": "big", "digest": A0_DIGEST, "size/bytes": size,
            "artifact/ref": "inac-stream:4"},
        "transfer": {"mode": "stream", "stream/id": "4"}})
}

#[test]
fn one_gib_is_accepted_at_descriptor_level() {
    let mut node = standard();
    let bytes = serde_json::to_vec(&header_of_size(1_073_741_824)).unwrap();
    match node.receiver.handle_bytes(&peer().node_id(), &bytes, at(0)) {
        Handled::ReadBody(body) => {
            assert_eq!(body.remaining(), 1_073_741_824);
            assert_eq!(node.store.staged_count(), 1);
            drop(body);
            assert_eq!(
                node.store.staged_count(),
                0,
                "an abandoned body leaves nothing"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn one_gib_plus_one_is_payload_too_large() {
    let mut node = standard();
    let value = header_of_size(1_073_741_825);
    let error = Frame::decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert_eq!(error.refusal().code(), RefusalCode::PayloadTooLarge);
    let answer = node.send_value(&peer(), &value, at(0));
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    assert_eq!(answer.correlation_id(), Some("c-big"));
}

#[test]
fn a_configured_artifact_ceiling_refuses_the_header_before_the_body() {
    let mut node = standard_with(|c| c.max_artifact_size_bytes = 1000);
    let body = vec![0u8; 100_000];
    let header = Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, &body), "4")
        .build()
        .unwrap();
    // The answer comes from the header alone: no body stage, nothing staged.
    let answer = answer(node.receiver.handle(&peer().node_id(), &header, at(0)));
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    assert_eq!(node.store.staged_count(), 0);
}

#[test]
fn a_configured_inline_ceiling_applies() {
    let mut node = standard_with(|c| c.inline_max_bytes = 10);
    let answer = node.send(&peer(), &inline_push(BLOB, &[b'x'; 11], None), at(0));
    assert_refused(&answer, RefusalCode::PayloadTooLarge);
    let answer = node.send(&peer(), &inline_push(BLOB, &[b'x'; 10], None), at(0));
    assert_answer(&answer, Operation::Ingested, None);
}

#[test]
fn a_node_that_takes_no_stream_push_says_so_without_inviting_a_retry() {
    let mut node = standard_with(|c| c.stream_pushes_per_peer = 0);
    let body = vec![0u8; 100_000];
    let header = Frame::push_stream(&Descriptor::of_bytes(BLOB, JSON, &body), "4")
        .build()
        .unwrap();
    let answer = node.send(&peer(), &header, at(0));
    assert_refused(&answer, RefusalCode::PolicyDenied);
    assert!(answer.response().and_then(|r| r.retry_after_ms).is_none());
}

#[test]
fn a_refusal_logs_at_most_256_characters_of_each_descriptor_field() {
    let mut node = standard();
    let mut descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    descriptor.artifact_id = "é".repeat(100_000);
    let frame = Frame::push_inline(&descriptor, A0).build().unwrap();
    // A stranger: refused before anything else, and still logged.
    let answer = node.send(&other_peer(), &frame, at(0));
    assert_refused(&answer, RefusalCode::NotAuthorized);
    let logged = node.receiver.ledger().recent_transfers(1).unwrap();
    let logged = logged[0].descriptor.as_ref().unwrap();
    assert_eq!(logged.artifact_id, format!("{}…", "é".repeat(256)));
    assert_eq!(
        (logged.schema.as_str(), logged.digest.clone()),
        (BLOB, descriptor.digest)
    );
}

#[test]
fn one_gib_plus_one_with_a_big_passport_is_still_payload_too_large() {
    let mut value = header_of_size(1_073_741_825);
    value["authorization"] = json!({"mode": "invitation-passport", "passport":
        {"schema": "capability-passport.v1", "passport_id": "passport:capability:x",
         "x-extension": vec![0; 20_001]}});
    let mut small = value.clone();
    small["authorization"]["passport"]["x-extension"] = json!([0]);
    let code = |v: &serde_json::Value| {
        Frame::decode(&serde_json::to_vec(v).unwrap())
            .unwrap_err()
            .refusal()
            .code()
    };
    assert_eq!(code(&small), RefusalCode::PayloadTooLarge);
    assert_eq!(code(&value), RefusalCode::PayloadTooLarge);
}

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
