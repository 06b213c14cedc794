//! The fast path of [`Frame::decode_with`](super::Frame::decode_with) and
//! [`FrameBuilder::build`](super::FrameBuilder::build).
//!
//! The full path parses JSON into a `Value`, runs the canonical schema over it, captures the key
//! order and only then parses the typed frame: about three quarters of a 1 KiB push's 7.4 µs
//! decode. Most frames need none of that. This path parses the typed frame straight from the bytes,
//! checks the schema's rules on the typed members by hand ([`schema_rules_hold`]), and keeps the
//! frame only when serializing it again gives back exactly the bytes received. That byte identity
//! proves what a typed parse cannot see: no duplicate or ignored member, no whitespace, no escape,
//! no other number spelling, and declaration key order (which is what a frame with no recorded
//! order encodes to).
//!
//! The path only ever says "valid, and here is the same frame the full path would give" or "not
//! sure": any frame it does not take (an `authorization` member, an `artifact/href`, another key
//! order, a broken rule, more than 8 KiB) goes through the full path, which alone writes errors. So errors,
//! refusal codes and the frames themselves are the full path's; differential property tests
//! (this module's `tests`) hold the two paths equal. Like the full path, it takes nothing when
//! the schema validator is unavailable (fail closed).

use std::io;

use orbi_types::{
    InacControl,
    inac::{MAX_ARTIFACT_SIZE_BYTES, MAX_MESSAGE_CHARS, Operation},
};
use serde::Deserialize;
use serde_json::Value;

use super::{DecodeOptions, Frame, MAX_FRAME_BYTES, check_rules, is_token, validator};

/// The largest frame [`decode`] takes. Past it the re-serialization that proves byte identity
/// (serde scans the whole inline payload text for escapes) costs more than the schema run it
/// saves, since the full path's schema gate skips the payload text: a 64 KiB inline push
/// decoded at 6 500 frames/s on the fast path and 7 400 on the full one (`cargo bench -p
/// orbi-inac --bench core decode`); the two cross near 12 KB.
const MAX_FAST_DECODE_BYTES: usize = 8 * 1024;

/// `meta`: at most this many members (schema `maxProperties`).
const MAX_META_MEMBERS: usize = 16;
/// `meta`: member names of at most this many characters (schema `propertyNames.maxLength`).
const MAX_META_NAME_CHARS: usize = 64;
/// `meta`: member values of at most this many characters (schema `additionalProperties`).
const MAX_META_VALUE_CHARS: usize = 512;

/// Decodes `bytes` when they are exactly our own encoding of a frame that needs no schema run;
/// `None` means "use the full path".
pub(super) fn decode(bytes: &[u8], options: DecodeOptions) -> Option<Frame> {
    if bytes.len() > MAX_FAST_DECODE_BYTES || !applies(options) {
        return None;
    }
    // A frame with an `authorization` member is left to the full path before any parse (its
    // passport would be parsed twice); a member of that name at any depth (a `meta` entry)
    // only costs its frame the fast path.
    if memchr::memmem::find(bytes, b"\"authorization\":").is_some() {
        return None;
    }
    let control: InacControl = serde_json::from_slice(bytes).ok()?;
    if !schema_rules_hold(&control) || !encodes_to(&control, bytes) {
        return None;
    }
    let inline = check_rules(&control).ok()?;
    Some(Frame::new(control, None, inline))
}

/// Builds the frame a builder's members describe, when it needs no schema run; `None` means
/// "use the full path". The frame encodes in declaration order.
pub(super) fn build(value: &Value, options: DecodeOptions) -> Option<Frame> {
    if !applies(options) {
        return None;
    }
    // What a typed parse takes that the schema refuses: a null for a missing member, and the
    // frame itself as the array of its members (its object members are read from objects
    // only, `json::optional_object`; the frame's own `Deserialize` is serde's). No other
    // difference survives a `Value` (no duplicate keys, no number spellings).
    if !without_null_or_array(value) {
        return None;
    }
    let control = InacControl::deserialize(value).ok()?;
    if !schema_rules_hold(&control) {
        return None;
    }
    let inline = check_rules(&control).ok()?;
    let frame = Frame::new(control, None, inline);
    (frame.wire_json().len() <= MAX_FRAME_BYTES).then_some(frame)
}

/// Whether the fast path may answer for the full path under `options`: every option so far
/// concerns `authorization`, which the fast path never takes (a new option must be weighed
/// here: the destructuring stops the build until it is). Never when the schema validator is
/// unavailable, since the full path then refuses everything.
fn applies(options: DecodeOptions) -> bool {
    let DecodeOptions {
        strict_authorization_modes: _,
    } = options;
    validator().is_some()
}

/// The compact JSON of a frame without `authorization` and without a recorded key order: the
/// typed members serialized directly, in declaration order (no `Value` built). `None` when the
/// frame has either.
pub(super) fn encode(control: &InacControl, has_authorization: bool) -> Option<Vec<u8>> {
    if has_authorization || control.key_order.is_recorded() {
        return None;
    }
    serde_json::to_vec(control).ok()
}

fn without_null_or_array(value: &Value) -> bool {
    match value {
        Value::Null | Value::Array(_) => false,
        Value::Object(map) => map.values().all(without_null_or_array),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
    }
}

/// Whether `control` serializes to exactly `bytes`, compared as it is written (nothing
/// allocated; the first differing byte stops it).
fn encodes_to(control: &InacControl, bytes: &[u8]) -> bool {
    let mut rest = SameAs(bytes);
    serde_json::to_writer(&mut rest, control).is_ok() && rest.0.is_empty()
}

/// A writer that accepts only the bytes it was made with, in order.
struct SameAs<'a>(&'a [u8]);

impl io::Write for SameAs<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.strip_prefix(buf) {
            Some(rest) => {
                self.0 = rest;
                Ok(buf.len())
            }
            None => Err(io::ErrorKind::InvalidData.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a typed frame certainly satisfies the canonical `inac-control.v1` schema, checking
/// by hand the rules its types do not already carry. `false` means "not sure": frames with
/// `authorization` (its mode superset and open passport) or `artifact/href` (`format: uri`) are
/// left to the validator.
///
/// What the types carry: `schema` is the constant, `operation`, `transfer.mode`,
/// `response.status` and `response.refusal/code` are enums of exactly the schema's values,
/// digests match `^sha256:[A-Za-z0-9_-]+$`, `bytes/base64url` matches `^[A-Za-z0-9_-]+$`,
/// integers are unsigned, and no unknown member is accepted. A test (`the_types_carry_…`) pins
/// the enums to the schema.
pub(super) fn schema_rules_hold(control: &InacControl) -> bool {
    let non_empty = |text: &str| !text.is_empty();
    let tokens = [&control.correlation_id, &control.idempotency_key]
        .into_iter()
        .flatten()
        .all(|token| is_token(token));
    let required = match control.operation {
        Operation::Offer | Operation::Push => control.artifact.is_some(),
        Operation::Request => control.request.is_some(),
        _ => control.response.is_some(),
    };
    let artifact = control.artifact.as_ref().is_none_or(|artifact| {
        non_empty(&artifact.schema)
            && non_empty(&artifact.content_type)
            && non_empty(&artifact.artifact_id)
            && artifact.size_bytes <= MAX_ARTIFACT_SIZE_BYTES
            && artifact.artifact_ref.as_deref().is_none_or(non_empty)
            && artifact.artifact_href.is_none()
            && (control.operation != Operation::Offer || artifact.payload_location_count() == 1)
    });
    let request = control.request.as_ref().is_none_or(|request| {
        non_empty(&request.schema)
            && non_empty(&request.content_type)
            && request.artifact_id.as_deref().is_none_or(non_empty)
    });
    let transfer = control.transfer.as_ref().is_none_or(|transfer| {
        transfer.stream_id.as_deref().is_none_or(non_empty)
            && transfer.chunk_size_bytes.is_none_or(|size| size >= 1)
    });
    let response = control.response.as_ref().is_none_or(|response| {
        response
            .message
            .as_deref()
            .is_none_or(|message| message.chars().count() <= MAX_MESSAGE_CHARS)
    });
    let meta = control.meta.as_ref().is_none_or(|meta| {
        meta.len() <= MAX_META_MEMBERS
            && meta.iter().all(|(name, value)| {
                is_token(name)
                    && name.chars().count() <= MAX_META_NAME_CHARS
                    && value.chars().count() <= MAX_META_VALUE_CHARS
            })
    });
    control.authorization.is_none()
        && tokens
        && required
        && artifact
        && request
        && transfer
        && response
        && meta
}

#[cfg(test)]
mod tests {
    use orbi_schema::registry;
    use orbi_types::{
        Sha256Digest,
        inac::{RefusalCode, ResponseStatus, TransferMode},
        strategies,
    };
    use proptest::{option, prelude::*, sample::select};
    use serde_json::json;

    use super::*;
    use crate::frame::build::declaration_order;

    /// The full path alone, as `Frame::decode_with` runs it when the fast path says "not sure".
    fn full(bytes: &[u8]) -> Result<Frame, crate::DecodeError> {
        Frame::decode_full(bytes, DecodeOptions::default())
    }

    /// The fast path may only ever give what the full path gives.
    fn assert_sound(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Some(fast) = decode(bytes, DecodeOptions::default()) {
            let full = full(bytes);
            prop_assert!(
                full.is_ok(),
                "fast path took a frame the full path refuses: {full:?}"
            );
            let full = full.unwrap();
            prop_assert_eq!(&fast, &full);
            prop_assert_eq!(fast.encode(), full.encode());
            prop_assert_eq!(fast.encode(), bytes.to_vec());
            prop_assert_eq!(fast.inline_bytes(), full.inline_bytes());
        }
        Ok(())
    }

    /// Values at or just past every schema bound, and of every wrong type.
    fn edge_value() -> impl Strategy<Value = Value> {
        let texts = [
            String::new(),
            "x".into(),
            "a b".into(),
            "é".into(),
            "a\"b\\c\nd".into(),
            "e30=".into(),
            "e31".into(),
            "e30".into(),
            "sha256:ab".into(),
            "sha256:!!".into(),
            "md5:x".into(),
            Sha256Digest::of(b"{}").to_string(),
            "https://h/x".into(),
            "not a uri".into(),
            "inac-stream:".into(),
            "inac-stream:s1".into(),
            "inac-offer:x".into(),
            "bogus".into(),
            "é".repeat(MAX_META_NAME_CHARS),
            "a".repeat(MAX_META_NAME_CHARS + 1),
            "é".repeat(256),
            "a".repeat(257),
            "é".repeat(MAX_META_VALUE_CHARS),
            "a".repeat(MAX_META_VALUE_CHARS + 1),
            "é".repeat(MAX_MESSAGE_CHARS),
            "a".repeat(MAX_MESSAGE_CHARS + 1),
        ];
        let words = Operation::ALL
            .iter()
            .map(|v| v.as_str())
            .chain(TransferMode::ALL.iter().map(|v| v.as_str()))
            .chain(ResponseStatus::ALL.iter().map(|v| v.as_str()))
            .chain(RefusalCode::ALL.iter().map(|v| v.as_str()))
            .map(Value::from)
            .collect::<Vec<_>>();
        let mut shapes = vec![
            Value::Null,
            json!(true),
            json!(0),
            json!(1),
            json!(2),
            json!(-1),
            json!(1.5),
            json!(MAX_ARTIFACT_SIZE_BYTES),
            json!(MAX_ARTIFACT_SIZE_BYTES + 1),
            json!({}),
            json!([]),
            json!({"mode": "invitation-passport", "passport": {"schema": "capability-passport.v1"}}),
            json!({"mode": "custody-passport", "passport": {"schema": "capability-passport.v1"}}),
        ];
        shapes.extend(meta_edges());
        prop_oneof![
            select(texts.to_vec()).prop_map(Value::from),
            select(words),
            select(shapes),
            "[A-Za-z0-9:_./-]{1,8}".prop_map(Value::from),
        ]
    }

    /// Where a perturbation lands: `(object member, key)`, or a top-level key.
    const PLACES: &[(Option<&str>, &str)] = &[
        (None, "schema"),
        (None, "operation"),
        (None, "correlation/id"),
        (None, "idempotency/key"),
        (None, "artifact"),
        (None, "request"),
        (None, "transfer"),
        (None, "authorization"),
        (None, "response"),
        (None, "meta"),
        (None, "x-extra"),
        (Some("artifact"), "schema"),
        (Some("artifact"), "content/type"),
        (Some("artifact"), "artifact/id"),
        (Some("artifact"), "digest"),
        (Some("artifact"), "size/bytes"),
        (Some("artifact"), "bytes/base64url"),
        (Some("artifact"), "artifact/ref"),
        (Some("artifact"), "artifact/href"),
        (Some("artifact"), "x-extra"),
        (Some("request"), "schema"),
        (Some("request"), "content/type"),
        (Some("request"), "artifact/id"),
        (Some("request"), "digest"),
        (Some("transfer"), "mode"),
        (Some("transfer"), "stream/id"),
        (Some("transfer"), "chunk/size-bytes"),
        (Some("response"), "status"),
        (Some("response"), "refusal/code"),
        (Some("response"), "retryable"),
        (Some("response"), "retry/after-ms"),
        (Some("response"), "message"),
        (Some("meta"), "k"),
    ];

    /// `meta` objects at and just past each of its rules.
    fn meta_edges() -> Vec<Value> {
        let meta = |count: usize, name: &dyn Fn(usize) -> String, value: &str| -> Value {
            Value::Object((0..count).map(|n| (name(n), Value::from(value))).collect())
        };
        let long_name = "a".repeat(MAX_META_NAME_CHARS);
        vec![
            json!({}),
            meta(MAX_META_MEMBERS, &|n| format!("k{n}"), "v"),
            meta(MAX_META_MEMBERS + 1, &|n| format!("k{n}"), "v"),
            meta(1, &|_| long_name.clone(), &"é".repeat(MAX_META_VALUE_CHARS)),
            meta(1, &|_| "a".repeat(MAX_META_NAME_CHARS + 1), "v"),
            meta(1, &|_| "a b".into(), "v"),
            meta(1, &|_| "é".into(), "v"),
            meta(1, &|_| String::new(), "v"),
            meta(1, &|_| "k".into(), &"a".repeat(MAX_META_VALUE_CHARS + 1)),
            meta(1, &|_| "k".into(), &"é".repeat(MAX_META_VALUE_CHARS + 1)),
            json!({"k": 1}),
        ]
    }

    /// Values at and just past the rules of the member at `place`, so that one edit of a valid
    /// frame often lands exactly on a bound.
    fn focused(place: (Option<&str>, &str)) -> Vec<Value> {
        let words = |all: Vec<&str>| {
            all.into_iter()
                .chain(["bogus", ""])
                .map(Value::from)
                .collect::<Vec<_>>()
        };
        match place {
            (None, "correlation/id" | "idempotency/key") => vec![
                json!(""),
                json!("a b"),
                json!("é"),
                json!("k:1/._-"),
                json!("a".repeat(256)),
                json!("a".repeat(257)),
            ],
            (None, "operation") => words(Operation::ALL.iter().map(|v| v.as_str()).collect()),
            (None, "meta") => meta_edges(),
            (Some("meta"), _) => vec![
                json!(""),
                json!("é".repeat(MAX_META_VALUE_CHARS)),
                json!("a".repeat(MAX_META_VALUE_CHARS + 1)),
                json!("é".repeat(MAX_META_VALUE_CHARS + 1)),
                json!(1),
            ],
            (_, "digest") => vec![
                json!(""),
                json!("sha256:ab"),
                json!("sha256:!!"),
                json!("md5:x"),
                json!(Sha256Digest::of(b"other").to_string()),
            ],
            (_, "size/bytes") => vec![
                json!(0),
                json!(1),
                json!(MAX_ARTIFACT_SIZE_BYTES),
                json!(MAX_ARTIFACT_SIZE_BYTES + 1),
                json!(-1),
                json!(1.5),
            ],
            (_, "bytes/base64url") => {
                vec![
                    json!(""),
                    json!("e30="),
                    json!("e31"),
                    json!("e30"),
                    json!("+/"),
                ]
            }
            (_, "artifact/href") => vec![json!("https://h/x"), json!("not a uri"), json!("")],
            (_, "mode") => words(TransferMode::ALL.iter().map(|v| v.as_str()).collect()),
            (_, "status") => words(ResponseStatus::ALL.iter().map(|v| v.as_str()).collect()),
            (_, "refusal/code") => words(RefusalCode::ALL.iter().map(|v| v.as_str()).collect()),
            (_, "chunk/size-bytes" | "retry/after-ms") => {
                vec![json!(0), json!(1), json!(-1), json!(1.5)]
            }
            (_, "retryable") => vec![json!(true), Value::Null, json!("true")],
            (_, "message") => vec![
                json!(""),
                json!("é".repeat(MAX_MESSAGE_CHARS)),
                json!("a".repeat(MAX_MESSAGE_CHARS + 1)),
                json!("é".repeat(MAX_MESSAGE_CHARS + 1)),
            ],
            (None, _) => vec![
                json!({}),
                Value::Null,
                json!([]),
                json!({"mode": "invitation-passport", "passport": {"schema": "capability-passport.v1"}}),
            ],
            _ => vec![
                json!(""),
                json!("x"),
                json!("é"),
                json!("inac-stream:"),
                json!("inac-stream:7"),
                json!("inac-stream:s9"),
            ],
        }
    }

    /// Valid frames of every operation with up to two members set to an edge value or
    /// removed, in declaration order: what the fast path must take exactly when the full path
    /// does.
    fn edge_frame() -> impl Strategy<Value = Value> {
        // Frames that carry an artifact or a request have the most rules; weigh them up.
        let base = prop_oneof![
            1 => strategies::inac_control(),
            2 => strategies::inac_control().prop_filter("artifact or request", |frame| {
                frame.get("artifact").is_some() || frame.get("request").is_some()
            }),
        ];
        let with_edits = base.prop_flat_map(|frame| {
            // Edits land in the objects the frame has (or at the top), so that one edit of a
            // valid frame leaves the rest of it valid.
            let places: Vec<_> = PLACES
                .iter()
                .copied()
                .filter(|(object, _)| object.is_none_or(|object| frame.get(object).is_some()))
                .collect();
            let edit = select(places).prop_flat_map(|place| {
                let value = prop_oneof![3 => select(focused(place)), 1 => edge_value()];
                (Just(place), option::of(value))
            });
            (Just(frame), proptest::collection::vec(edit, 0..=2))
        });
        with_edits.prop_map(|(mut frame, edits)| {
            apply_edits(&mut frame, &edits);
            frame
        })
    }

    type Edit = ((Option<&'static str>, &'static str), Option<Value>);

    /// Sets or removes each member, then puts every object in declaration order.
    fn apply_edits(frame: &mut Value, edits: &[Edit]) {
        let Value::Object(top) = frame else {
            unreachable!("frames are objects")
        };
        for ((object, key), value) in edits {
            let target = match object {
                None => Some(&mut *top),
                Some(object) => match top.entry(*object).or_insert_with(|| json!({})) {
                    Value::Object(inner) => Some(inner),
                    _ => None,
                },
            };
            if let Some(target) = target {
                match value {
                    Some(value) => target.insert((*key).to_owned(), value.clone()),
                    None => target.shift_remove(*key),
                };
            }
        }
        declaration_order(top);
    }

    /// The fast paths (decode and build) take a declaration-order frame exactly when the full
    /// path accepts it and it has the fast shape, and give the same frame.
    fn check_exactly(value: &Value) -> Result<(), TestCaseError> {
        let bytes = serde_json::to_vec(value).unwrap();
        assert_sound(&bytes)?;
        let full = full(&bytes);
        let expected = full.as_ref().is_ok_and(fast_shape);
        prop_assert_eq!(
            decode(&bytes, DecodeOptions::default()).is_some(),
            expected,
            "{} {:?}",
            value,
            full.map(|_| ())
        );
        let built = build(value, DecodeOptions::default());
        prop_assert_eq!(built.is_some(), expected, "built {}", value);
        if let Some(built) = built {
            prop_assert_eq!(&built, &full.unwrap());
            prop_assert_eq!(built.encode(), bytes);
        }
        Ok(())
    }

    /// Whether a frame is one the fast path is meant to take when it is valid.
    fn fast_shape(frame: &Frame) -> bool {
        frame.authorization().is_none()
            && frame
                .artifact()
                .is_none_or(|artifact| artifact.artifact_href.is_none())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Sound and complete on the edge frames: the fast path takes a frame exactly when the
        /// full path accepts it (and it has the fast shape), and gives the same frame.
        #[test]
        fn the_fast_path_takes_exactly_the_valid_frames(value in edge_frame()) {
            check_exactly(&value)?;
        }

        /// On valid frames in any key order and their byte mutations, whatever the fast path
        /// takes is what the full path gives.
        #[test]
        fn whatever_the_fast_path_takes_the_full_path_gives_equal(
            bytes in strategies::inac_control().prop_flat_map(|value| prop_oneof![
                Just(serde_json::to_vec(&value).unwrap()),
                strategies::mutated(value),
            ])
        ) {
            assert_sound(&bytes)?;
            if let Ok(frame) = full(&bytes).map(|frame| (fast_shape(&frame), frame)) {
                // Declaration order, compact: the fast path's own form of every valid frame.
                let canonical = serde_json::to_vec(&frame.1.control).unwrap();
                prop_assert_eq!(decode(&canonical, DecodeOptions::default()).is_some(), frame.0);
            }
        }
    }

    /// Every single edit from [`focused`] (and every removal) of every place, on frames that
    /// carry each member: each bound is met at least once, whatever the random cases draw.
    #[test]
    fn every_single_edit_of_valid_frames_is_taken_exactly_when_valid() {
        let artifact = |location: Value| {
            let bytes = b"{}";
            let mut artifact = json!({"schema": "vendor.x.v1", "content/type": "text/plain",
                "artifact/id": "a:1", "digest": Sha256Digest::of(bytes).to_string(),
                "size/bytes": bytes.len()});
            artifact
                .as_object_mut()
                .unwrap()
                .extend(location.as_object().unwrap().clone());
            artifact
        };
        let meta = json!({"k0": "v", "k1": "é"});
        let bases = [
            json!({"schema": "inac-control.v1", "operation": "push", "correlation/id": "c-1",
                "idempotency/key": "k-1", "artifact": artifact(json!({"bytes/base64url": "e30"})),
                "transfer": {"mode": "inline", "chunk/size-bytes": 5}, "meta": meta}),
            json!({"schema": "inac-control.v1", "operation": "push", "correlation/id": "c-2",
                "artifact": artifact(json!({"artifact/ref": "inac-stream:s1"})),
                "transfer": {"mode": "stream", "stream/id": "s1"}}),
            json!({"schema": "inac-control.v1", "operation": "offer",
                "artifact": artifact(json!({"artifact/ref": "inac-offer:x"}))}),
            json!({"schema": "inac-control.v1", "operation": "request", "correlation/id": "c-3",
                "request": {"schema": "vendor.x.v1", "content/type": "text/plain",
                    "artifact/id": "a:1", "digest": Sha256Digest::of(b"x").to_string()},
                "meta": meta}),
            json!({"schema": "inac-control.v1", "operation": "refused", "correlation/id": "c-4",
                "response": {"status": "refused", "refusal/code": "malformed", "retryable": false,
                    "retry/after-ms": 10, "message": "é"}}),
            json!({"schema": "inac-control.v1", "operation": "defer",
                "response": {"status": "deferred", "retry/after-ms": 0}}),
        ];
        let mut taken = 0;
        for base in &bases {
            check_exactly(base).unwrap();
            for &place in PLACES {
                for value in focused(place).into_iter().map(Some).chain([None]) {
                    let mut frame = base.clone();
                    apply_edits(&mut frame, &[(place, value)]);
                    check_exactly(&frame).unwrap();
                    taken += usize::from(
                        decode(
                            &serde_json::to_vec(&frame).unwrap(),
                            DecodeOptions::default(),
                        )
                        .is_some(),
                    );
                }
            }
        }
        // Both outcomes occur: many edits keep the frame valid, many break a rule.
        assert!(taken > 200, "{taken}");
    }

    /// Spellings serde may read alike (from the review of the fast path): the fast path is
    /// sound on each, and a frame with a passport is left to the full path.
    #[test]
    fn odd_spellings_are_sound_and_passport_frames_go_to_the_full_path() {
        let digest = Sha256Digest::of(b"{}").to_string();
        let base = format!(
            r#"{{"schema":"inac-control.v1","operation":"push","artifact":{{"schema":"S","content/type":"t","artifact/id":"a","digest":"{digest}","size/bytes":2,"bytes/base64url":"e30"}}}}"#
        );
        let variants = [
            base.clone(),
            base.replace(r#""S""#, r#""a\/b""#),
            base.replace(r#""S""#, "\"a/b\""),
            base.replace(r#""S""#, r#""\u0000""#),
            base.replace(r#""S""#, "\"\u{7f}\u{2028}\""),
            base.replace(r#""S""#, r#""\ud800""#),
            base.replace(r#""S""#, r#""\ud83d\ude00""#),
            base.replace(r#""S""#, "\"\u{1F600}\""),
            base.replace(r#""S""#, "\"\\u0053\""),
            base.replace("\"size/bytes\":2", "\"size/bytes\":2.0"),
            base.replace("\"size/bytes\":2", "\"size/bytes\":-0"),
            base.replace("\"size/bytes\":2", "\"size/bytes\":2e0"),
            base.replace("\"size/bytes\":2", "\"size/bytes\":18446744073709551618"),
            format!("\u{feff}{base}"),
            format!("{base}\0"),
            base.replace("}}", r#"},"meta":{"a":"1","a":"1"}}"#),
            base.replace("}}", r#"},"meta":{"A":"1","a":"1"}}"#),
            base.replace("}}", r#"},"transfer":null}"#),
            base.replace("}}", r#"},"transfer":["inline"]}"#),
            base.replace(
                "}}",
                r#"},"transfer":{"mode":"inline","chunk/size-bytes":1}}"#,
            ),
        ];
        let mut taken = 0;
        for variant in &variants {
            assert_sound(variant.as_bytes()).unwrap();
            taken += usize::from(decode(variant.as_bytes(), DecodeOptions::default()).is_some());
        }
        // The base, raw `/`, `\u0000` (serde's own escape), raw U+007F and U+2028, the raw
        // emoji, the A/a meta, the transfer: exactly the spellings we encode to.
        assert_eq!(taken, 7);
        let mut bytes = b"\xff".to_vec();
        bytes.extend_from_slice(base.as_bytes());
        assert_sound(&bytes).unwrap();
        let passport = base.replace(
            "}}",
            r#"},"authorization":{"mode":"invitation-passport","passport":{"schema":"capability-passport.v1"}}}"#,
        );
        assert!(Frame::decode(passport.as_bytes()).is_ok());
        assert!(decode(passport.as_bytes(), DecodeOptions::default()).is_none());
    }

    /// Large frames decode faster on the full path; both give the same frame.
    #[test]
    fn frames_past_the_fast_decode_limit_take_the_full_path() {
        let frame_of = |size: usize| {
            let bytes = vec![b'x'; size];
            let descriptor = crate::Descriptor::of_bytes("vendor.x.v1", "text/plain", &bytes);
            Frame::push_inline(&descriptor, &bytes)
                .build()
                .unwrap()
                .encode()
        };
        let small = frame_of(4 * 1024);
        let large = frame_of(8 * 1024);
        assert!(small.len() <= MAX_FAST_DECODE_BYTES && large.len() > MAX_FAST_DECODE_BYTES);
        assert!(decode(&small, DecodeOptions::default()).is_some());
        assert!(decode(&large, DecodeOptions::default()).is_none());
        assert_eq!(Frame::decode(&large).unwrap().encode(), large);
    }

    #[test]
    fn whitespace_another_key_order_or_an_escape_leaves_the_frame_to_the_full_path() {
        let frame = Frame::answer(Some("c-1"), &crate::Verdict::Ingested);
        let compact = frame.encode();
        assert!(decode(&compact, DecodeOptions::default()).is_some());
        let text = String::from_utf8(compact).unwrap();
        for (other, valid) in [
            (text.replace(',', ", "), true),
            (
                text.replace(
                    r#""schema":"inac-control.v1","operation":"ingested""#,
                    r#""operation":"ingested","schema":"inac-control.v1""#,
                ),
                true,
            ),
            (text.replace("c-1", r"c\u002d1"), true),
            (format!("{text} "), true),
            (format!("{text}\n"), true),
            (
                text.replace(r#""c-1""#, r#""c-1","correlation/id":"c-1""#),
                false,
            ),
        ] {
            assert_ne!(other, text);
            assert!(
                decode(other.as_bytes(), DecodeOptions::default()).is_none(),
                "{other}"
            );
            assert_eq!(Frame::decode(other.as_bytes()).is_ok(), valid, "{other}");
        }
    }

    /// [`schema_rules_hold`] leaves enums and constants to the types: they must be exactly
    /// the schema's.
    #[test]
    fn the_types_carry_the_schema_enums_and_constant() {
        let schema = &registry().get("inac-control").unwrap().document;
        let listed = |pointer: &str| -> Vec<String> {
            serde_json::from_value(schema.pointer(pointer).unwrap().clone()).unwrap()
        };
        let names = |all: Vec<&str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            listed("/properties/operation/enum"),
            names(Operation::ALL.iter().map(|v| v.as_str()).collect())
        );
        assert_eq!(
            listed("/$defs/transfer/properties/mode/enum"),
            names(TransferMode::ALL.iter().map(|v| v.as_str()).collect())
        );
        assert_eq!(
            listed("/$defs/response/properties/status/enum"),
            names(ResponseStatus::ALL.iter().map(|v| v.as_str()).collect())
        );
        assert_eq!(
            listed("/$defs/response/properties/refusal~1code/enum"),
            names(RefusalCode::ALL.iter().map(|v| v.as_str()).collect())
        );
        assert_eq!(
            schema.pointer("/properties/schema/const"),
            Some(&json!("inac-control.v1"))
        );
    }
}
