//! Builders for the initiating operations, and answer frames from verdicts.

use orbi_types::{
    InacControl, KeyOrder, Sha256Digest, b64,
    inac::{InacControlTag, Operation, Response},
};
use serde_json::{Map, Value};

use super::{
    AuthorizationMode, DecodeError, DecodeOptions, Frame, FrameAuthorization, OFFER_REF_PREFIX,
    STREAM_REF_PREFIX, is_token,
};
use crate::{Descriptor, Verdict, verdict::bounded_message};

/// Builds an initiating frame. [`FrameBuilder::build`] runs the same checks as
/// [`Frame::decode`], so a built frame is always valid.
///
/// ```
/// use orbi_inac::{Descriptor, Frame};
///
/// let bytes = b"{}";
/// let descriptor = Descriptor::of_bytes("vendor.note.v1", "application/json", bytes);
/// let push = Frame::push_inline(&descriptor, bytes)
///     .correlation_id("c-1")
///     .idempotency_key("k-1")
///     .build()?;
/// assert_eq!(Frame::decode(&push.encode())?, push);
/// # Ok::<(), orbi_inac::DecodeError>(())
/// ```
#[derive(Clone)]
pub struct FrameBuilder {
    map: Map<String, Value>,
    options: DecodeOptions,
}

impl std::fmt::Debug for FrameBuilder {
    // Member names only: values carry payload bytes and passports, which stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameBuilder")
            .field("members", &self.map.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish()
    }
}

fn descriptor_object(descriptor: &Descriptor) -> Map<String, Value> {
    let mut artifact = Map::new();
    artifact.insert("schema".into(), descriptor.schema.clone().into());
    artifact.insert(
        "content/type".into(),
        descriptor.content_type.clone().into(),
    );
    artifact.insert("artifact/id".into(), descriptor.artifact_id.clone().into());
    artifact.insert("digest".into(), descriptor.digest.as_str().into());
    artifact.insert("size/bytes".into(), descriptor.size_bytes.into());
    artifact
}

impl Frame {
    /// An `offer` naming the artifact by `artifact/ref: inac-offer:<digest>`; offers never carry
    /// bytes (spec §10.4).
    pub fn offer(descriptor: &Descriptor) -> FrameBuilder {
        let mut artifact = descriptor_object(descriptor);
        artifact.insert(
            "artifact/ref".into(),
            format!("{OFFER_REF_PREFIX}{}", descriptor.digest).into(),
        );
        FrameBuilder::new(Operation::Offer).member("artifact", Value::Object(artifact))
    }

    /// A `push` carrying `bytes` inline (`transfer.mode: inline`). The contract cannot carry an
    /// empty inline payload; push empty artifacts in stream mode.
    pub fn push_inline(descriptor: &Descriptor, bytes: &[u8]) -> FrameBuilder {
        let mut artifact = descriptor_object(descriptor);
        artifact.insert("bytes/base64url".into(), b64::encode(bytes).into());
        FrameBuilder::new(Operation::Push)
            .member("artifact", Value::Object(artifact))
            .transfer("mode", "inline".into())
    }

    /// A stream-mode `push` header: exactly `size/bytes` raw body bytes follow it on the stream
    /// named `stream_id` (`artifact/ref: inac-stream:<stream_id>`, `transfer.mode: stream`).
    pub fn push_stream(descriptor: &Descriptor, stream_id: &str) -> FrameBuilder {
        let mut artifact = descriptor_object(descriptor);
        artifact.insert(
            "artifact/ref".into(),
            format!("{STREAM_REF_PREFIX}{stream_id}").into(),
        );
        FrameBuilder::new(Operation::Push)
            .member("artifact", Value::Object(artifact))
            .transfer("mode", "stream".into())
            .transfer("stream/id", stream_id.into())
    }

    /// A `request` for artifacts of `schema` and `content_type`; name the artifact with
    /// [`FrameBuilder::artifact_id`] or [`FrameBuilder::digest`] (v1 receivers serve exact ids
    /// only).
    pub fn request_for(schema: &str, content_type: &str) -> FrameBuilder {
        let mut request = Map::new();
        request.insert("schema".into(), schema.into());
        request.insert("content/type".into(), content_type.into());
        FrameBuilder::new(Operation::Request).member("request", Value::Object(request))
    }

    /// The response frame for `verdict`, echoing `correlation_id` and nothing else of the
    /// initiating frame (never its `meta`).
    ///
    /// ```
    /// use orbi_inac::{Frame, Refusal, Verdict};
    /// use orbi_types::inac::RefusalCode;
    ///
    /// let refusal = Refusal::new(RefusalCode::RateLimited, "too many pushes").retry_after_ms(750);
    /// let frame = Frame::answer(Some("c-1"), &Verdict::Refuse(refusal));
    /// let response = frame.response().unwrap();
    /// assert_eq!(response.retryable, Some(true));
    /// assert_eq!(response.retry_after_ms, Some(750));
    /// assert_eq!(frame.correlation_id(), Some("c-1"));
    /// ```
    pub fn answer(correlation_id: Option<&str>, verdict: &Verdict) -> Frame {
        let operation = verdict.operation();
        let mut response = Response {
            // Every verdict maps to a response operation, which always has a status.
            status: operation
                .response_status()
                .unwrap_or(orbi_types::inac::ResponseStatus::Refused),
            refusal_code: None,
            retryable: None,
            retry_after_ms: None,
            message: None,
        };
        let non_empty = |text: &str| (!text.is_empty()).then(|| bounded_message(text));
        match verdict {
            Verdict::Decline(refusal) | Verdict::Refuse(refusal) => {
                response.refusal_code = Some(refusal.code());
                response.retryable = Some(refusal.retryable());
                response.retry_after_ms = refusal.retry_after();
                response.message = non_empty(refusal.message());
            }
            Verdict::Defer(deferral) => {
                response.refusal_code = deferral.code;
                response.retryable = Some(true);
                response.retry_after_ms = Some(deferral.retry_after_ms);
                response.message = non_empty(&deferral.message);
            }
            Verdict::Accept { .. } | Verdict::Ingested | Verdict::AlreadyPresent => {}
        }
        let authorization = match verdict {
            Verdict::Accept {
                invitation: Some(invitation),
            } => Some(FrameAuthorization {
                mode: AuthorizationMode::InvitationPassport,
                passport: invitation.as_object().clone(),
            }),
            _ => None,
        };
        Frame::new(
            InacControl {
                schema: InacControlTag,
                operation,
                correlation_id: correlation_id.filter(|id| is_token(id)).map(str::to_owned),
                idempotency_key: None,
                artifact: None,
                request: None,
                transfer: None,
                authorization: None,
                response: Some(response),
                meta: None,
                key_order: KeyOrder::default(),
            },
            authorization,
            None,
        )
    }
}

impl Frame {
    /// A `partial` answer (reserved in v1: a truncated multi-artifact answer with a reason).
    /// This node never sends one; the builder exists for completeness and tests.
    pub fn partial(correlation_id: Option<&str>, message: &str) -> Frame {
        let mut frame = Frame::answer(correlation_id, &Verdict::Ingested);
        frame.control.operation = Operation::Partial;
        frame.control.response = Some(Response {
            status: orbi_types::inac::ResponseStatus::Partial,
            refusal_code: None,
            retryable: None,
            retry_after_ms: None,
            message: (!message.is_empty()).then(|| bounded_message(message)),
        });
        frame
    }
}

impl FrameBuilder {
    fn new(operation: Operation) -> Self {
        let mut map = Map::new();
        map.insert("schema".into(), "inac-control.v1".into());
        map.insert("operation".into(), operation.as_str().into());
        FrameBuilder {
            map,
            options: DecodeOptions::default(),
        }
    }

    fn member(mut self, key: &str, value: Value) -> Self {
        self.map.insert(key.into(), value);
        self
    }

    fn object_member(mut self, object: &str, key: &str, value: Value) -> Self {
        let entry = self
            .map
            .entry(object)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(key.into(), value);
        }
        self
    }

    fn transfer(self, key: &str, value: Value) -> Self {
        self.object_member("transfer", key, value)
    }

    /// Sets `correlation/id` (responses echo it; a push after an accepted offer reuses the
    /// offer's).
    pub fn correlation_id(self, id: &str) -> Self {
        self.member("correlation/id", id.into())
    }

    /// Sets `idempotency/key` (a retry of the same transfer reuses it).
    pub fn idempotency_key(self, key: &str) -> Self {
        self.member("idempotency/key", key.into())
    }

    /// Names the exact artifact a `request` asks for.
    pub fn artifact_id(self, artifact_id: &str) -> Self {
        self.object_member("request", "artifact/id", artifact_id.into())
    }

    /// Names the exact digest a `request` asks for.
    pub fn digest(self, digest: &Sha256Digest) -> Self {
        self.object_member("request", "digest", digest.as_str().into())
    }

    /// Sets `transfer.chunk/size-bytes` (advisory).
    pub fn chunk_size(self, bytes: u64) -> Self {
        self.transfer("chunk/size-bytes", bytes.into())
    }

    /// Adds a `meta` entry (never echoed by receivers).
    pub fn meta(self, key: &str, value: &str) -> Self {
        self.object_member("meta", key, value.into())
    }

    /// Carries `passport` (a `capability-passport.v1` object) under `authorization`.
    pub fn authorization(self, mode: AuthorizationMode, passport: &Map<String, Value>) -> Self {
        let mut object = Map::new();
        object.insert("mode".into(), mode.as_str().into());
        object.insert("passport".into(), Value::Object(passport.clone()));
        self.member("authorization", Value::Object(object))
    }

    /// Validates with `options` instead of the defaults (e.g. strict authorization modes).
    pub fn options(mut self, options: DecodeOptions) -> Self {
        self.options = options;
        self
    }

    /// The frame, or why it breaks the contract (e.g. a token with a space, an empty inline
    /// payload, a frame over 256 KiB). Whatever the order of the builder's calls, the frame
    /// encodes its members in the order the contract's types declare them (the order receivers
    /// decode fastest).
    pub fn build(self) -> Result<Frame, DecodeError> {
        let mut value = Value::Object(self.map);
        // The fast path serializes the typed frame, which is in declaration order already.
        if let Some(frame) = super::fast::build(&value, self.options) {
            return Ok(frame);
        }
        if let Value::Object(map) = &mut value {
            declaration_order(map);
        }
        // Exactly what `encode` gives for the built frame (same members, same order): kept.
        let json = serde_json::to_vec(&value).unwrap_or_default();
        if json.len() > super::MAX_FRAME_BYTES {
            return Err(DecodeError {
                reason: super::FrameError::TooLong { len: json.len() },
                correlation_id: None,
                operation: None,
            });
        }
        let frame = Frame::from_value_with(value, self.options)?;
        let _ = frame.wire.0.set(json.into());
        Ok(frame)
    }
}

/// The members of a frame in the order `InacControl` declares them, `authorization` included.
pub(super) const FRAME_MEMBERS: &[&str] = &[
    "schema",
    "operation",
    "correlation/id",
    "idempotency/key",
    "artifact",
    "request",
    "transfer",
    "authorization",
    "response",
    "meta",
];

/// The members of each object in a frame, in declaration order (`meta` keeps its own order;
/// `authorization` and its passport are kept as given).
pub(super) fn object_members(object: &str) -> &'static [&'static str] {
    match object {
        "artifact" => &[
            "schema",
            "content/type",
            "artifact/id",
            "digest",
            "size/bytes",
            "bytes/base64url",
            "artifact/ref",
            "artifact/href",
        ],
        "request" => &["schema", "content/type", "artifact/id", "digest"],
        "transfer" => &["mode", "stream/id", "chunk/size-bytes"],
        "response" => &[
            "status",
            "refusal/code",
            "retryable",
            "retry/after-ms",
            "message",
        ],
        _ => &[],
    }
}

/// Puts a frame's members, and those of its declared objects, in declaration order; members
/// the contract does not know follow in their own order (the schema then refuses them).
pub(super) fn declaration_order(frame: &mut Map<String, Value>) {
    reorder(frame, FRAME_MEMBERS);
    for (name, member) in frame.iter_mut() {
        if let Value::Object(object) = member {
            reorder(object, object_members(name));
        }
    }
}

fn reorder(map: &mut Map<String, Value>, order: &[&str]) {
    if order.is_empty() {
        return;
    }
    let mut rest = std::mem::take(map);
    for key in order {
        if let Some(value) = rest.shift_remove(*key) {
            map.insert((*key).to_owned(), value);
        }
    }
    map.extend(rest);
}

#[cfg(test)]
mod tests {
    use orbi_types::inac::{
        ArtifactDescriptor, ArtifactRequest, Authorization, Passport, Transfer, TransferMode,
    };

    use super::*;

    /// Every member of every object set, typed: its serialization is the declaration order.
    #[test]
    fn the_member_lists_are_the_types_declaration_order() {
        let digest = Sha256Digest::of(b"x");
        let passport: Passport =
            serde_json::from_value(serde_json::json!({"schema": "capability-passport.v1"}))
                .unwrap();
        let control = InacControl {
            schema: InacControlTag,
            operation: Operation::Push,
            correlation_id: Some("c".into()),
            idempotency_key: Some("k".into()),
            artifact: Some(ArtifactDescriptor {
                schema: "s".into(),
                content_type: "t".into(),
                artifact_id: "a".into(),
                digest: digest.clone(),
                size_bytes: 1,
                bytes_base64url: Some(orbi_types::Base64Url::encode(b"x")),
                artifact_ref: Some("r".into()),
                artifact_href: Some("https://h/".into()),
            }),
            request: Some(ArtifactRequest {
                schema: "s".into(),
                content_type: "t".into(),
                artifact_id: Some("a".into()),
                digest: Some(digest),
            }),
            transfer: Some(Transfer {
                mode: Some(TransferMode::Inline),
                stream_id: Some("s".into()),
                chunk_size_bytes: Some(1),
            }),
            authorization: Some(Authorization {
                mode: orbi_types::inac::AuthorizationMode::InvitationPassport,
                passport,
            }),
            response: Some(Response {
                status: orbi_types::inac::ResponseStatus::Ingested,
                refusal_code: Some(orbi_types::inac::RefusalCode::Malformed),
                retryable: Some(true),
                retry_after_ms: Some(1),
                message: Some("m".into()),
            }),
            meta: Some([("k".to_owned(), "v".to_owned())].into_iter().collect()),
            key_order: KeyOrder::default(),
        };
        let Value::Object(frame) = serde_json::to_value(&control).unwrap() else {
            panic!("a frame is an object")
        };
        let keys = |map: &Map<String, Value>| map.keys().cloned().collect::<Vec<_>>();
        let names = |list: &[&str]| list.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(keys(&frame), names(FRAME_MEMBERS));
        for object in ["artifact", "request", "transfer", "response"] {
            let Some(Value::Object(members)) = frame.get(object) else {
                panic!("{object} is an object")
            };
            assert_eq!(keys(members), names(object_members(object)), "{object}");
        }
    }

    /// The lists are complete: every member the canonical schema (derived from the types, and
    /// checked against them by `cargo xtask schemas check`) gives a frame and each of its
    /// objects, in its order. A member added to the types fails this test until it is listed.
    #[test]
    fn the_member_lists_are_the_schemas_properties() {
        let schema = &orbi_schema::registry()
            .get("inac-control")
            .unwrap()
            .document;
        let keys = |pointer: &str| -> Vec<String> {
            schema
                .pointer(pointer)
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        let names = |list: &[&str]| list.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(keys("/properties"), names(FRAME_MEMBERS));
        for member in FRAME_MEMBERS {
            let reference = schema
                .pointer(&format!("/properties/{}", member.replace('/', "~1")))
                .and_then(|p| p.get("$ref"))
                .and_then(Value::as_str);
            let Some(definition) = reference.and_then(|r| r.strip_prefix('#')) else {
                assert!(object_members(member).is_empty(), "{member}");
                continue;
            };
            let expected = match *member {
                // Its passport is kept as given; `mode` and `passport` are written in order.
                "authorization" => Vec::new(),
                _ => keys(&format!("{definition}/properties")),
            };
            assert_eq!(names(object_members(member)), expected, "{member}");
        }
    }

    /// Passports stay exactly as given (keys named like frame members, nested objects in
    /// reverse order, odd numbers), and built frames of every shape satisfy the schema, decode
    /// back equal and encode to the same bytes, whatever the call order (from the review of
    /// the fast path).
    #[test]
    fn passports_and_every_builder_shape_survive_building_and_decoding() {
        let passport: Map<String, Value> = serde_json::from_str(
            r#"{"z":1,"schema":"capability-passport.v1","meta":{"b":"1","a":"2"},
            "artifact":{"size/bytes":1,"schema":"x"},"transfer":{"chunk/size-bytes":2,"mode":"inline"},
            "request":{"digest":"d","schema":"s"},"n":1.5,"e":-0,"big":12345678901234567890,
            "arr":[{"y":1,"x":2}],"a":"é\u2028"}"#,
        )
        .unwrap();
        let passport_json = serde_json::to_string(&passport).unwrap();
        let bytes = b"{}";
        let d = Descriptor::of_bytes("vendor.note.v1", "application/json", bytes);
        let digest = Sha256Digest::of(b"x");
        let validator = super::super::validator().unwrap();
        for mode in AuthorizationMode::ALL {
            let shapes: Vec<FrameBuilder> = vec![
                Frame::offer(&d)
                    .authorization(mode, &passport)
                    .meta("b", "1")
                    .meta("a", "2")
                    .correlation_id("c"),
                Frame::push_inline(&d, bytes)
                    .authorization(mode, &passport)
                    .chunk_size(3)
                    .idempotency_key("k")
                    .meta("z", "1"),
                Frame::push_stream(&d, "s1")
                    .meta("m", "v")
                    .chunk_size(7)
                    .authorization(mode, &passport)
                    .correlation_id("c"),
                Frame::request_for("vendor.note.v1", "application/json")
                    .digest(&digest)
                    .authorization(mode, &passport)
                    .artifact_id("a:1")
                    .meta("x", "y"),
                Frame::push_stream(&d, "s1").chunk_size(7).meta("m", "v"),
                Frame::request_for("vendor.note.v1", "application/json")
                    .digest(&digest)
                    .meta("authorization", "y")
                    .artifact_id("a:1"),
            ];
            for builder in shapes {
                let built = builder.clone().build().unwrap();
                let wire = built.encode();
                let text = String::from_utf8(wire.clone()).unwrap();
                let value: Value = serde_json::from_slice(&wire).unwrap();
                if mode == AuthorizationMode::InvitationPassport || built.authorization().is_none()
                {
                    assert!(validator.is_valid(&value), "{text}");
                }
                assert_eq!(builder.clone().build().unwrap().encode(), wire);
                let decoded = Frame::decode(&wire).unwrap();
                assert_eq!(decoded, built);
                assert_eq!(decoded.encode(), wire, "{text}");
                assert_eq!(serde_json::to_vec(&built.to_value()).unwrap(), wire);
                if let Some(authorization) = built.authorization() {
                    let decoded = decoded.authorization().unwrap();
                    assert_eq!(
                        serde_json::to_string(&authorization.passport).unwrap(),
                        passport_json
                    );
                    assert_eq!(
                        serde_json::to_string(&decoded.passport).unwrap(),
                        passport_json
                    );
                    assert!(text.contains(&passport_json), "{text}");
                }
                let mut ordered = value.as_object().unwrap().clone();
                declaration_order(&mut ordered);
                assert_eq!(serde_json::to_vec(&Value::Object(ordered)).unwrap(), wire);
                let strict = builder
                    .options(DecodeOptions {
                        strict_authorization_modes: true,
                    })
                    .build();
                let published = built
                    .authorization()
                    .is_none_or(|a| a.mode == AuthorizationMode::InvitationPassport);
                assert_eq!(strict.is_ok(), published);
            }
        }
    }

    /// An `accept` answer carrying an invitation writes `authorization` where it is declared,
    /// before `response`, as built frames do; its passport is the invitation as given.
    #[test]
    fn an_answer_with_an_invitation_is_in_declaration_order() {
        let mut passport = Map::new();
        passport.insert("schema".into(), "capability-passport.v1".into());
        passport.insert("b".into(), 1.into());
        passport.insert("a".into(), 2.into());
        let mut answer = Frame::answer(Some("c"), &Verdict::Accept { invitation: None });
        answer.authorization = Some(FrameAuthorization {
            mode: AuthorizationMode::InvitationPassport,
            passport,
        });
        let text = String::from_utf8(answer.encode()).unwrap();
        let at = |member: &str| text.find(&format!("\"{member}\":")).unwrap();
        assert!(at("correlation/id") < at("authorization"), "{text}");
        assert!(at("authorization") < at("response"), "{text}");
        assert!(at("b") < at("a"), "{text}");
        assert_eq!(Frame::decode(text.as_bytes()).unwrap(), answer);
    }

    #[test]
    fn a_builder_debug_shows_member_names_only() {
        let bytes = b"secret payload";
        let d = Descriptor::of_bytes("vendor.note.v1", "application/json", bytes);
        let builder = Frame::push_inline(&d, bytes).correlation_id("c-1");
        let shown = format!("{builder:?}");
        assert!(
            shown.contains("artifact") && shown.contains("correlation/id"),
            "{shown}"
        );
        assert!(
            !shown.contains(&b64::encode(bytes)) && !shown.contains("c-1"),
            "{shown}"
        );
    }

    /// The order of the builder's calls does not reach the wire, with or without a passport
    /// (with one, the frame takes the full path).
    #[test]
    fn built_frames_encode_in_declaration_order_whatever_the_call_order() {
        let bytes = b"{}";
        let descriptor = Descriptor::of_bytes("vendor.note.v1", "application/json", bytes);
        let mut passport = Map::new();
        passport.insert("schema".into(), "capability-passport.v1".into());
        let early = Frame::push_inline(&descriptor, bytes)
            .meta("m", "1")
            .chunk_size(9)
            .idempotency_key("k-1")
            .correlation_id("c-1")
            .authorization(AuthorizationMode::InvitationPassport, &passport);
        let late = Frame::push_inline(&descriptor, bytes)
            .authorization(AuthorizationMode::InvitationPassport, &passport)
            .correlation_id("c-1")
            .idempotency_key("k-1")
            .chunk_size(9)
            .meta("m", "1");
        for builder in [early.clone(), late.clone()] {
            let full = builder.build().unwrap().encode();
            let text = String::from_utf8(full).unwrap();
            let at = |member: &str| text.find(&format!("\"{member}\":")).unwrap();
            let order = [
                "operation",
                "correlation/id",
                "idempotency/key",
                "artifact",
                "transfer",
                "authorization",
                "meta",
            ];
            assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
            assert!(at("mode") < at("chunk/size-bytes"), "{text}");
        }
        let without = |builder: FrameBuilder| {
            let mut builder = builder;
            builder.map.shift_remove("authorization");
            builder.build().unwrap().encode()
        };
        let fast = without(early.clone());
        assert_eq!(fast, without(late.clone()));
        // The fast path's bytes are the full path's for the same members.
        let mut value = early.map.clone();
        value.shift_remove("authorization");
        declaration_order(&mut value);
        assert_eq!(fast, serde_json::to_vec(&Value::Object(value)).unwrap());
        assert_eq!(
            Frame::decode(&early.build().unwrap().encode()).unwrap(),
            late.build().unwrap()
        );
    }
}
