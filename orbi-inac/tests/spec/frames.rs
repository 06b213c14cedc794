//! Spec §9.1 (the repository's copies of the upstream examples) and §9.2 (frame validation):
//! each row is one test. A malformed initiating frame is answered `refused` (push) or
//! `decline` (offer, request) with `malformed`, echoing a valid `correlation/id`; a malformed
//! response frame is dropped without an answer.

use orbi_inac::{DecodeOptions, Frame, Handled, Payload};
use orbi_types::inac::{Operation, RefusalCode};
use serde_json::{Value, json};

use crate::common::*;

#[track_caller]
fn assert_malformed(value: &Value) {
    let bytes = serde_json::to_vec(value).unwrap();
    let error = Frame::decode(&bytes).expect_err("the codec must refuse this frame");
    assert_eq!(error.refusal().code(), RefusalCode::Malformed, "{error}");
    let mut node = standard();
    let operation: Option<Operation> = value
        .get("operation")
        .and_then(Value::as_str)
        .and_then(|op| op.parse().ok());
    match node.receiver.handle_bytes(&peer().node_id(), &bytes, at(0)) {
        Handled::NoAnswer => {
            assert!(
                operation.is_some_and(|op| !op.is_initiating()),
                "only responses go unanswered"
            );
        }
        Handled::Answer(frame) => {
            let expected = match operation {
                Some(Operation::Offer | Operation::Request) => Operation::Decline,
                _ => Operation::Refused,
            };
            assert_answer(&frame, expected, Some(RefusalCode::Malformed));
            let echoed = value
                .get("correlation/id")
                .and_then(Value::as_str)
                .filter(|id| id.len() <= 256 && !id.contains(' '));
            assert_eq!(frame.correlation_id(), echoed);
            assert!(frame.meta().is_none());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(node.stored_count(), 0);
}

#[track_caller]
fn assert_accepted(value: &Value) -> Frame {
    let bytes = serde_json::to_vec(value).unwrap();
    let frame = Frame::decode(&bytes).unwrap_or_else(|e| panic!("refused: {e}"));
    assert_eq!(frame.to_value(), *value);
    assert_eq!(frame.encode(), bytes, "re-encodes to the same text");
    frame
}

fn edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut value = push_a0_value();
    edit(&mut value);
    value
}

fn offer_with(locations: &[(&str, &str)]) -> Value {
    let mut value = json!({
        "schema": "inac-control.v1", "operation": "offer", "correlation/id": "c-offer",
        "artifact": {"schema": BLOB, "content/type": JSON, "artifact/id": A0_DIGEST,
                     "digest": A0_DIGEST, "size/bytes": 2}
    });
    for (key, text) in locations {
        value["artifact"][*key] = json!(text);
    }
    value
}

fn accept_with(response: Value) -> Value {
    json!({"schema": "inac-control.v1", "operation": "accept", "correlation/id": "c", "response": response})
}

// §9.1

#[test]
fn upstream_push_inline_is_valid_and_ingested_by_a_wildcard_acceptor() {
    let value = push_a0_value();
    let frame = assert_accepted(&value);
    assert!(matches!(frame.payload(), Some(Payload::Inline(_))));
    let mut node = standard();
    let answer = node.send_value(&peer(), &value, at(0));
    assert_answer(&answer, Operation::Ingested, None);
    assert!(node.holds(A0));
}

#[test]
fn upstream_refused_parses_to_kind_not_supported_and_round_trips() {
    let value: Value = serde_json::from_str(include_str!(
        "../../../schemas/examples/valid/refused-kind-not-supported.inac-control.json"
    ))
    .unwrap();
    let frame = assert_accepted(&value);
    let response = frame.response().unwrap();
    assert_eq!(frame.operation(), Operation::Refused);
    assert_eq!(response.refusal_code, Some(RefusalCode::KindNotSupported));
    assert_eq!(response.retryable, Some(false));
}

#[test]
fn upstream_push_missing_artifact_is_malformed() {
    assert_malformed(&edited(|v| {
        v.as_object_mut().unwrap().remove("artifact");
    }));
}

// §9.2: each row is malformed.

#[test]
fn push_without_payload_location() {
    assert_malformed(&edited(|v| {
        v["artifact"]
            .as_object_mut()
            .unwrap()
            .remove("bytes/base64url");
    }));
}

#[test]
fn push_with_bytes_and_ref() {
    assert_malformed(&edited(|v| {
        v["artifact"]["artifact/ref"] = json!("inac-stream:4")
    }));
}

#[test]
fn bytes_padded() {
    assert_malformed(&edited(|v| {
        v["artifact"]["bytes/base64url"] = json!("e30=")
    }));
}

#[test]
fn bytes_standard_alphabet() {
    assert_malformed(&edited(|v| {
        v["artifact"]["bytes/base64url"] = json!("//79")
    }));
}

#[test]
fn bytes_empty() {
    assert_malformed(&edited(|v| v["artifact"]["bytes/base64url"] = json!("")));
}

#[test]
fn bytes_with_non_canonical_trailing_bits() {
    // "e31" has the right alphabet and length but is not the canonical encoding of 2 bytes.
    assert_malformed(&edited(|v| v["artifact"]["bytes/base64url"] = json!("e31")));
}

#[test]
fn size_negative() {
    assert_malformed(&edited(|v| v["artifact"]["size/bytes"] = json!(-1)));
}

#[test]
fn digest_with_hex_body() {
    assert_malformed(&edited(|v| {
        v["artifact"]["digest"] =
            json!("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
    }));
}

#[test]
fn digest_sha512() {
    assert_malformed(&edited(|v| v["artifact"]["digest"] = json!("sha512:abc")));
}

#[test]
fn missing_content_type() {
    assert_malformed(&edited(|v| {
        v["artifact"]
            .as_object_mut()
            .unwrap()
            .remove("content/type");
    }));
}

#[test]
fn extra_field_in_artifact() {
    assert_malformed(&edited(|v| v["artifact"]["x-extra"] = json!(1)));
}

#[test]
fn extra_field_at_top_level() {
    assert_malformed(&edited(|v| v["x-extra"] = json!(1)));
}

#[test]
fn correlation_id_of_257_chars() {
    assert_malformed(&edited(|v| v["correlation/id"] = json!("c".repeat(257))));
}

#[test]
fn correlation_id_with_a_space() {
    assert_malformed(&edited(|v| v["correlation/id"] = json!("inac correlation")));
}

#[test]
fn idempotency_key_empty() {
    assert_malformed(&edited(|v| v["idempotency/key"] = json!("")));
}

#[test]
fn meta_with_17_entries() {
    let meta: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_malformed(&edited(|v| v["meta"] = Value::Object(meta)));
}

#[test]
fn meta_value_of_513_chars() {
    assert_malformed(&edited(|v| v["meta"] = json!({"k": "v".repeat(513)})));
}

#[test]
fn meta_key_of_65_chars() {
    assert_malformed(&edited(|v| v["meta"] = json!({"k".repeat(65): "v"})));
}

#[test]
fn meta_value_not_a_string() {
    assert_malformed(&edited(|v| v["meta"] = json!({"k": 1})));
}

#[test]
fn schema_v2() {
    assert_malformed(&edited(|v| v["schema"] = json!("inac-control.v2")));
}

#[test]
fn schema_missing() {
    assert_malformed(&edited(|v| {
        v.as_object_mut().unwrap().remove("schema");
    }));
}

#[test]
fn operation_abort() {
    assert_malformed(&edited(|v| v["operation"] = json!("abort")));
}

#[test]
fn accept_without_response() {
    assert_malformed(&json!({"schema": "inac-control.v1", "operation": "accept"}));
}

#[test]
fn accept_with_status_refused() {
    let value = accept_with(json!({"status": "refused"}));
    assert_malformed(&value);
    let error = Frame::decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("must carry response status accepted"),
        "{error}"
    );
}

#[test]
fn refusal_code_not_in_contract() {
    assert_malformed(&json!({"schema": "inac-control.v1", "operation": "refused",
        "response": {"status": "refused", "refusal/code": "content-hash-mismatch"}}));
}

#[test]
fn retry_after_negative() {
    assert_malformed(&json!({"schema": "inac-control.v1", "operation": "defer",
        "response": {"status": "deferred", "retry/after-ms": -1}}));
}

#[test]
fn message_of_1025_chars() {
    assert_malformed(&json!({"schema": "inac-control.v1", "operation": "refused",
        "response": {"status": "refused", "message": "m".repeat(1025)}}));
}

#[test]
fn transfer_mode_chunked() {
    assert_malformed(&edited(|v| v["transfer"] = json!({"mode": "chunked"})));
}

#[test]
fn chunk_size_zero() {
    assert_malformed(&edited(|v| v["transfer"]["chunk/size-bytes"] = json!(0)));
}

#[test]
fn authorization_without_passport() {
    assert_malformed(&edited(|v| {
        v["authorization"] = json!({"mode": "invitation-passport"})
    }));
}

#[test]
fn offer_with_bytes_and_ref() {
    assert_malformed(&offer_with(&[
        ("bytes/base64url", "e30"),
        ("artifact/ref", "inac-offer:x"),
    ]));
}

#[test]
fn offer_with_no_location() {
    assert_malformed(&offer_with(&[]));
}

#[test]
fn response_on_an_initiating_frame() {
    assert_malformed(&edited(|v| v["response"] = json!({"status": "ingested"})));
}

#[test]
fn bytes_on_a_response_frame() {
    assert_malformed(
        &json!({"schema": "inac-control.v1", "operation": "ingested",
        "artifact": {"schema": BLOB, "content/type": JSON, "artifact/id": A0_DIGEST,
                     "digest": A0_DIGEST, "size/bytes": 2, "bytes/base64url": "e30"},
        "response": {"status": "ingested"}}),
    );
}

#[test]
fn inline_bytes_contradicting_stream_mode() {
    assert_malformed(&edited(|v| v["transfer"] = json!({"mode": "stream"})));
}

#[test]
fn an_href_contradicting_its_transfer_mode() {
    for (location, target) in [
        ("artifact/href", "https://example.org/a0"),
        ("artifact/ref", "artifact-store:a0"),
    ] {
        for mode in ["inline", "stream"] {
            let value = edited(|v| {
                let artifact = v["artifact"].as_object_mut().unwrap();
                artifact.remove("bytes/base64url");
                artifact.insert(location.into(), json!(target));
                v["transfer"] = json!({"mode": mode});
            });
            assert_malformed(&value);
        }
    }
    // Out of band is what an href is: decoded, then refused as not supported here.
    let value = edited(|v| {
        let artifact = v["artifact"].as_object_mut().unwrap();
        artifact.remove("bytes/base64url");
        artifact.insert("artifact/href".into(), json!("https://example.org/a0"));
        v["transfer"] = json!({"mode": "out-of-band"});
    });
    let frame = assert_accepted(&value);
    let mut node = standard();
    let answer = node.send(&peer(), &frame, at(0));
    assert_refused(&answer, RefusalCode::OperationNotSupported);
}

#[test]
fn stream_ref_contradicting_its_stream_id() {
    let mut value = edited(|v| {
        let artifact = v["artifact"].as_object_mut().unwrap();
        artifact.remove("bytes/base64url");
        artifact.insert("artifact/ref".into(), json!("inac-stream:4"));
        v["transfer"] = json!({"mode": "stream", "stream/id": "8"});
    });
    assert_malformed(&value);
    value["transfer"]["stream/id"] = json!("4");
    assert_accepted(&value);
}

#[test]
fn duplicate_keys_and_oversized_frames() {
    let mut node = standard();
    let duplicate = br#"{"schema":"inac-control.v1","operation":"push","operation":"offer"}"#;
    let frame = answer(
        node.receiver
            .handle_bytes(&peer().node_id(), duplicate, at(0)),
    );
    assert_refused(&frame, RefusalCode::Malformed);
    let huge = vec![b' '; orbi_inac::MAX_FRAME_BYTES + 1];
    let error = Frame::decode(&huge).unwrap_err();
    assert!(
        error.to_string().contains("exceeds the 262144-byte limit"),
        "{error}"
    );
    let frame = answer(node.receiver.handle_bytes(&peer().node_id(), &huge, at(0)));
    assert_refused(&frame, RefusalCode::Malformed);
}

// §9.2: accepted at parse level.

#[test]
fn correlation_id_of_exactly_256_chars() {
    let value = edited(|v| v["correlation/id"] = json!("c".repeat(256)));
    assert_accepted(&value);
    let mut node = standard();
    let answer = node.send_value(&peer(), &value, at(0));
    assert_eq!(answer.correlation_id(), Some("c".repeat(256).as_str()));
}

#[test]
fn meta_with_exactly_16_entries() {
    let meta: serde_json::Map<String, Value> = (0..16)
        .map(|i| (format!("k{i}"), json!("v".repeat(512))))
        .collect();
    assert_accepted(&edited(|v| v["meta"] = Value::Object(meta)));
}

#[test]
fn request_with_schema_and_content_type_alone() {
    assert_accepted(&json!({"schema": "inac-control.v1", "operation": "request",
        "request": {"schema": BLOB, "content/type": JSON}}));
}

#[test]
fn offer_with_ref_only() {
    assert_accepted(&offer_with(&[("artifact/ref", "inac-offer:x")]));
}

#[test]
fn offer_with_bytes_only() {
    assert_accepted(&offer_with(&[("bytes/base64url", "e30")]));
}

#[test]
fn capability_passport_mode_behind_the_strict_flag() {
    let passport =
        json!({"schema": "capability-passport.v1", "passport_id": "passport:capability:x"});
    for mode in ["capability-passport", "custody-passport"] {
        let value = edited(|v| v["authorization"] = json!({"mode": mode, "passport": passport}));
        let bytes = serde_json::to_vec(&value).unwrap();
        let frame = assert_accepted(&value);
        assert_eq!(frame.authorization().unwrap().mode.as_str(), mode);
        let strict = DecodeOptions {
            strict_authorization_modes: true,
        };
        let error = Frame::decode_with(&bytes, strict).unwrap_err();
        assert_eq!(error.refusal().code(), RefusalCode::Malformed);
    }
    let unknown =
        edited(|v| v["authorization"] = json!({"mode": "own-artifact", "passport": passport}));
    assert_malformed(&unknown);
}

#[test]
fn every_operation_has_a_builder_whose_frames_decode() {
    use orbi_inac::{Deferral, Descriptor, Refusal, Verdict};
    let descriptor = Descriptor::of_bytes(BLOB, JSON, A0);
    let refusal = Refusal::new(RefusalCode::PolicyDenied, "no");
    let frames = [
        Frame::offer(&descriptor).build().unwrap(),
        Frame::request_for(BLOB, JSON)
            .artifact_id(A0_DIGEST)
            .build()
            .unwrap(),
        Frame::push_inline(&descriptor, A0).build().unwrap(),
        Frame::push_stream(&descriptor, "4").build().unwrap(),
        Frame::answer(Some("c"), &Verdict::Accept { invitation: None }),
        Frame::answer(Some("c"), &Verdict::Decline(refusal.clone())),
        Frame::answer(
            Some("c"),
            &Verdict::Defer(Deferral {
                code: None,
                retry_after_ms: 5,
                message: String::new(),
            }),
        ),
        Frame::answer(Some("c"), &Verdict::Ingested),
        Frame::answer(Some("c"), &Verdict::AlreadyPresent),
        Frame::answer(Some("c"), &Verdict::Refuse(refusal)),
        Frame::partial(Some("c"), "truncated"),
    ];
    let mut operations: Vec<Operation> = frames.iter().map(Frame::operation).collect();
    operations.dedup();
    assert_eq!(operations, Operation::ALL);
    for frame in &frames {
        assert_eq!(&Frame::decode(&frame.encode()).unwrap(), frame);
    }
}

#[test]
fn a_superset_mode_with_a_big_open_passport_is_still_accepted() {
    // The passport is an open object: 20 001 values in one member fit well inside 256 KiB.
    let passport = json!({"schema": "capability-passport.v1", "passport_id": "passport:capability:x",
        "x-extension": vec![0; 20_001]});
    let value = edited(|v| {
        v["authorization"] = json!({"mode": "capability-passport", "passport": passport})
    });
    let bytes = serde_json::to_vec(&value).unwrap();
    assert!(bytes.len() < orbi_inac::MAX_FRAME_BYTES);
    // The same frame with the published mode is accepted ...
    let mut published = value.clone();
    published["authorization"]["mode"] = json!("invitation-passport");
    Frame::decode(&serde_json::to_vec(&published).unwrap()).expect("published mode accepted");
    // ... and so must the upstream superset mode be (non-strict default).
    Frame::decode(&bytes).unwrap_or_else(|e| panic!("superset mode refused: {e}"));
}
