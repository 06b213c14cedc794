//! `inac-control.v1`: the Inter-Node Artifact Channel control frame.
//!
//! The frame is **closed** (`additionalProperties: false`) at the top level and in every
//! sub-object except `meta` (a bounded string map) and `authorization.passport` (open). The
//! typed structs reject unknown fields accordingly. Semantic rules the schema cannot express
//! (exactly one payload location on `push`, operation/status pairing, digest form, ...) belong
//! to the INAC codec in `orbi-inac`.

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, json_schema};
use serde::{Deserialize, Serialize};

use crate::{
    artifact::impl_artifact,
    b64::Base64Url,
    common::{Object, const_str, wire_enum},
    digest::Sha256Digest,
    json,
    order::KeyOrder,
};

/// Largest `size/bytes` the contract allows (1 GiB).
pub const MAX_ARTIFACT_SIZE_BYTES: u64 = 1_073_741_824;
/// Longest `correlation/id` or `idempotency/key`.
pub const MAX_TOKEN_CHARS: usize = 256;
/// Most `meta` entries.
pub const MAX_META_ENTRIES: usize = 16;
/// Longest `meta` key.
pub const MAX_META_KEY_CHARS: usize = 64;
/// Longest `meta` value.
pub const MAX_META_VALUE_CHARS: usize = 512;
/// Longest `response.message`.
pub const MAX_MESSAGE_CHARS: usize = 1024;

const TOKEN_PATTERN: &str = "^[A-Za-z0-9:_./-]+$";

const_str! {
    /// The constant `"schema": "inac-control.v1"`.
    InacControlTag = "inac-control.v1"
}

const_str! {
    /// The constant `"schema": "capability-passport.v1"` of a carried passport.
    CapabilityPassportTag = "capability-passport.v1"
}

wire_enum! {
    /// The ten frame operations: three initiating, seven answering.
    pub enum Operation: "operation" {
        /// "I hold this artifact; do you want it?"
        Offer = "offer",
        /// "Send me this artifact."
        Request = "request",
        /// "Here is the artifact, with my authority."
        Push = "push",
        /// The offer is accepted.
        Accept = "accept",
        /// The offer or request is declined.
        Decline = "decline",
        /// Try again later.
        Defer = "defer",
        /// The pushed artifact is now stored.
        Ingested = "ingested",
        /// The artifact was already held (success).
        AlreadyPresent = "already-present",
        /// The push (or any operation) is refused.
        Refused = "refused",
        /// A truncated answer (reserved in v1).
        Partial = "partial",
    }
}

impl Operation {
    /// Whether this is an initiating operation (`offer`, `request`, `push`).
    pub const fn is_initiating(self) -> bool {
        matches!(
            self,
            Operation::Offer | Operation::Request | Operation::Push
        )
    }

    /// The `response.status` a response operation must carry, `None` for initiating ones.
    pub const fn response_status(self) -> Option<ResponseStatus> {
        Some(match self {
            Operation::Offer | Operation::Request | Operation::Push => return None,
            Operation::Accept => ResponseStatus::Accepted,
            Operation::Decline => ResponseStatus::Declined,
            Operation::Defer => ResponseStatus::Deferred,
            Operation::Ingested => ResponseStatus::Ingested,
            Operation::AlreadyPresent => ResponseStatus::AlreadyPresent,
            Operation::Refused => ResponseStatus::Refused,
            Operation::Partial => ResponseStatus::Partial,
        })
    }
}

wire_enum! {
    /// `response.status`.
    pub enum ResponseStatus: "response status" {
        /// Answer to `accept`.
        Accepted = "accepted",
        /// Answer to `decline`.
        Declined = "declined",
        /// Answer to `defer`.
        Deferred = "deferred",
        /// Answer to `ingested`.
        Ingested = "ingested",
        /// Answer to `already-present`.
        AlreadyPresent = "already-present",
        /// Answer to `refused`.
        Refused = "refused",
        /// Answer to `partial`.
        Partial = "partial",
    }
}

wire_enum! {
    /// The 17 typed refusal codes of `response.refusal/code`.
    pub enum RefusalCode: "refusal code" {
        /// No acceptor for the artifact's kind.
        KindNotSupported = "kind-not-supported",
        /// The kind's registration is conflicted, or the declared kind disagrees with the bytes.
        KindConflict = "kind-conflict",
        /// Not allowlisted and no valid passport.
        NotAuthorized = "not-authorized",
        /// The invitation passport is not one this node issued.
        InvitationUnknown = "invitation-unknown",
        /// The invitation passport has expired.
        InvitationExpired = "invitation-expired",
        /// The invitation passport was revoked or already used.
        InvitationRevoked = "invitation-revoked",
        /// The invitation does not cover this peer or artifact.
        InvitationScopeMismatch = "invitation-scope-mismatch",
        /// Over a size limit.
        PayloadTooLarge = "payload-too-large",
        /// The bytes do not match the declared size or digest.
        DigestMismatch = "digest-mismatch",
        /// The frame breaks the contract.
        Malformed = "malformed",
        /// The acceptor exists but is unavailable now.
        HandlerUnavailable = "handler-unavailable",
        /// Already held (idempotent success).
        AlreadyPresent = "already-present",
        /// Not implemented here.
        OperationNotSupported = "operation-not-supported",
        /// Local policy refuses.
        PolicyDenied = "policy-denied",
        /// No live session to the peer (sender-local).
        TransportUnavailable = "transport-unavailable",
        /// Per-minute budget exceeded.
        RateLimited = "rate-limited",
        /// A count or volume budget is exhausted.
        QuotaExceeded = "quota-exceeded",
    }
}

wire_enum! {
    /// `transfer.mode`.
    pub enum TransferMode: "transfer mode" {
        /// The bytes ride in the frame as `bytes/base64url`.
        Inline = "inline",
        /// The bytes follow the frame on the same stream.
        Stream = "stream",
        /// The bytes are fetched elsewhere.
        OutOfBand = "out-of-band",
    }
}

wire_enum! {
    /// `authorization.mode`; the published contract has one value.
    pub enum AuthorizationMode: "authorization mode" {
        /// A `capability-passport.v1` carried inline.
        InvitationPassport = "invitation-passport",
    }
}

/// A `correlation/id` or `idempotency/key`: 1 to 256 characters of `A-Z a-z 0-9 : _ . / -`.
///
/// The typed parse checks only that it is a string; the schema gate checks the pattern and the
/// length, so the INAC codec can answer `malformed` with the exact rule.
pub type ControlToken = String;

fn token_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TOKEN_CHARS,
        "pattern": TOKEN_PATTERN,
    })
}

fn meta_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": MAX_META_ENTRIES,
        "propertyNames": {
            "minLength": 1,
            "maxLength": MAX_META_KEY_CHARS,
            "pattern": TOKEN_PATTERN,
        },
        "additionalProperties": {"type": "string", "maxLength": MAX_META_VALUE_CHARS},
    })
}

/// The three payload locations that may appear on an artifact descriptor.
pub const PAYLOAD_LOCATIONS: [&str; 3] = ["bytes/base64url", "artifact/ref", "artifact/href"];

/// The `allOf` of `if`/`then` rules that tie operations to required members, with the offer's
/// exactly-one-payload-location rule.
fn frame_conditionals(schema: &mut Schema) {
    let exactly_one = |wanted: &str| {
        let others: Vec<_> = PAYLOAD_LOCATIONS
            .iter()
            .filter(|location| **location != wanted)
            .map(|location| json_schema!({"required": [location]}))
            .collect();
        json_schema!({"required": [wanted], "not": {"anyOf": others}})
    };
    let when = |operation: serde_json::Value| json_schema!({"properties": {"operation": operation}, "required": ["operation"]});
    let responses: Vec<_> = Operation::ALL
        .iter()
        .filter(|op| !op.is_initiating())
        .map(|op| op.as_str())
        .collect();
    schema.insert(
        "allOf".into(),
        serde_json::json!([
            {
                "if": when(serde_json::json!({"const": "offer"})),
                "then": {
                    "required": ["artifact"],
                    "properties": {"artifact": {"oneOf": PAYLOAD_LOCATIONS.map(exactly_one)}}
                }
            },
            {"if": when(serde_json::json!({"const": "push"})), "then": {"required": ["artifact"]}},
            {"if": when(serde_json::json!({"const": "request"})), "then": {"required": ["request"]}},
            {"if": when(serde_json::json!({"enum": responses})), "then": {"required": ["response"]}},
        ]),
    );
}

/// One `inac-control.v1` frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "INAC control frame",
    extend("$id" = "urn:orbiplex:schema:inac-control:v1"),
    transform = frame_conditionals
)]
pub struct InacControl {
    /// Always `inac-control.v1`.
    pub schema: InacControlTag,
    /// What this frame does.
    pub operation: Operation,
    /// Names the exchange; responses echo it.
    #[serde(
        rename = "correlation/id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "token_schema")]
    pub correlation_id: Option<ControlToken>,
    /// Lets the receiver recognize a retried transfer.
    #[serde(
        rename = "idempotency/key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "token_schema")]
    pub idempotency_key: Option<ControlToken>,
    /// The artifact descriptor (offer, push).
    #[serde(
        default,
        deserialize_with = "json::optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "ArtifactDescriptor")]
    pub artifact: Option<ArtifactDescriptor>,
    /// What is requested (request).
    #[serde(
        default,
        deserialize_with = "json::optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "ArtifactRequest")]
    pub request: Option<ArtifactRequest>,
    /// How the bytes travel.
    #[serde(
        default,
        deserialize_with = "json::optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Transfer")]
    pub transfer: Option<Transfer>,
    /// Authority for the operation.
    #[serde(
        default,
        deserialize_with = "json::optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Authorization")]
    pub authorization: Option<Authorization>,
    /// The answer (response operations).
    #[serde(
        default,
        deserialize_with = "json::optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Response")]
    pub response: Option<Response>,
    /// Small string hints; never echoed in responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "meta_schema")]
    pub meta: Option<Meta>,
    /// Key order seen at parse time.
    #[serde(skip)]
    pub key_order: KeyOrder,
}
impl_artifact!(InacControl, "inac-control");

/// `meta`: up to 16 string entries (limits enforced by the schema gate).
pub type Meta = IndexMap<String, String>;

/// Describes an artifact (`$defs/artifact`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "artifact")]
pub struct ArtifactDescriptor {
    /// The artifact's own schema, e.g. `memarium-blob.v1`.
    #[schemars(length(min = 1))]
    pub schema: String,
    /// Media type of the bytes.
    #[serde(rename = "content/type")]
    #[schemars(length(min = 1))]
    pub content_type: String,
    /// Domain id of the artifact, or its digest.
    #[serde(rename = "artifact/id")]
    #[schemars(length(min = 1))]
    pub artifact_id: String,
    /// `sha256:` digest of the exact bytes.
    pub digest: Sha256Digest,
    /// Exact byte count.
    #[serde(rename = "size/bytes")]
    #[schemars(range(min = 0, max = MAX_ARTIFACT_SIZE_BYTES))]
    pub size_bytes: u64,
    /// Inline bytes, unpadded base64url.
    #[serde(
        rename = "bytes/base64url",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Base64Url")]
    pub bytes_base64url: Option<Base64Url>,
    /// A reference to the bytes (e.g. `inac-stream:<id>`).
    #[serde(
        rename = "artifact/ref",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "String", length(min = 1))]
    pub artifact_ref: Option<String>,
    /// A URI to fetch the bytes from.
    #[serde(
        rename = "artifact/href",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "String", extend("format" = "uri"))]
    pub artifact_href: Option<String>,
}

impl ArtifactDescriptor {
    /// How many payload locations are present (the contract wants exactly one on offer/push).
    pub fn payload_location_count(&self) -> usize {
        usize::from(self.bytes_base64url.is_some())
            + usize::from(self.artifact_ref.is_some())
            + usize::from(self.artifact_href.is_some())
    }
}

/// What a `request` asks for (`$defs/request`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "request")]
pub struct ArtifactRequest {
    /// The artifact schema.
    #[schemars(length(min = 1))]
    pub schema: String,
    /// The media type.
    #[serde(rename = "content/type")]
    #[schemars(length(min = 1))]
    pub content_type: String,
    /// The exact artifact id, when asking for one.
    #[serde(
        rename = "artifact/id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "String", length(min = 1))]
    pub artifact_id: Option<String>,
    /// The exact digest, when asking for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Sha256Digest")]
    pub digest: Option<Sha256Digest>,
}

/// How the bytes travel (`$defs/transfer`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "transfer")]
pub struct Transfer {
    /// Inline, stream or out-of-band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "TransferMode")]
    pub mode: Option<TransferMode>,
    /// The stream carrying the body (stream mode).
    #[serde(rename = "stream/id", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(min = 1))]
    pub stream_id: Option<String>,
    /// Advisory chunk size.
    #[serde(
        rename = "chunk/size-bytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "u64", range(min = 1))]
    pub chunk_size_bytes: Option<u64>,
}

/// Authority carried with a frame (`$defs/authorization`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "authorization")]
pub struct Authorization {
    /// The authorization mode.
    pub mode: AuthorizationMode,
    /// The passport itself.
    pub passport: Passport,
}

/// A `capability-passport.v1` as carried in a frame: the schema tag is checked, the rest is
/// kept as received (the passport's own contract is verified by the INAC passport gate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(inline)]
pub struct Passport {
    /// Always `capability-passport.v1`.
    pub schema: CapabilityPassportTag,
    /// Every other member, as received.
    #[serde(flatten)]
    pub body: Object,
}

/// The answer in a response frame (`$defs/response`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "response")]
pub struct Response {
    /// Must pair with the frame's operation.
    pub status: ResponseStatus,
    /// Why, when refusing or declining.
    #[serde(
        rename = "refusal/code",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "RefusalCode")]
    pub refusal_code: Option<RefusalCode>,
    /// Whether retrying may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub retryable: Option<bool>,
    /// How long to wait before retrying.
    #[serde(
        rename = "retry/after-ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "u64", range(min = 0))]
    pub retry_after_ms: Option<u64>,
    /// For humans; never secrets or payload bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(max = MAX_MESSAGE_CHARS))]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::{Artifact, json::ParseError};

    /// A frame with every struct member the contract has (the typed parse does not pair
    /// members with operations; the schema and the codec do).
    fn every_member() -> Value {
        json!({
            "schema": "inac-control.v1", "operation": "push",
            "artifact": {
                "schema": "memarium-blob.v1", "content/type": "text/plain", "artifact/id": "a",
                "digest": "sha256:abc", "size/bytes": 1, "artifact/ref": "inac-stream:1"
            },
            "request": {"schema": "memarium-blob.v1", "content/type": "text/plain"},
            "transfer": {"mode": "stream", "stream/id": "s1"},
            "authorization": {
                "mode": "invitation-passport",
                "passport": {"schema": "capability-passport.v1", "passport_id": "p:1"}
            },
            "response": {"status": "accepted", "retryable": false},
            "meta": {"k": "v"}
        })
    }

    /// The frame, each of its struct members and `meta` are JSON objects in the contract. An
    /// array is refused there, whether it lists the members in declaration order (which
    /// serde's derive reads as the struct) or is empty (which it reads as a struct of absent
    /// optional members), and the error points at the member.
    #[test]
    fn struct_members_are_read_from_objects_only() {
        let frame = every_member();
        assert_eq!(InacControl::from_value(&frame).unwrap().to_value(), frame);
        for pointer in [
            "",
            "/artifact",
            "/request",
            "/transfer",
            "/authorization",
            "/authorization/passport",
            "/response",
            "/meta",
        ] {
            let members: Vec<Value> = match frame.pointer(pointer) {
                Some(Value::Object(map)) => map.values().cloned().collect(),
                other => panic!("{pointer}: {other:?}"),
            };
            for array in [Value::Array(members), json!([])] {
                let mut changed = frame.clone();
                *changed.pointer_mut(pointer).unwrap() = array.clone();
                match InacControl::from_value(&changed) {
                    Err(ParseError::Field {
                        pointer: at,
                        message,
                    }) => {
                        assert_eq!(at, pointer, "{array}: {message}");
                        assert!(message.starts_with("invalid type: sequence"), "{message}");
                    }
                    other => panic!("{pointer} := {array}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn payload_locations_are_counted() {
        let mut artifact: ArtifactDescriptor =
            serde_json::from_value(every_member()["artifact"].clone()).unwrap();
        assert_eq!(artifact.payload_location_count(), 1);
        artifact.artifact_href = Some("https://example.org/a".into());
        assert_eq!(artifact.payload_location_count(), 2);
        artifact.bytes_base64url = Some(Base64Url::encode(b"x"));
        assert_eq!(artifact.payload_location_count(), 3);
        artifact.artifact_ref = None;
        artifact.bytes_base64url = None;
        assert_eq!(artifact.payload_location_count(), 1);
        artifact.artifact_href = None;
        assert_eq!(artifact.payload_location_count(), 0);
    }

    /// The frame's `schema` and the passport's are constants: any other text is refused.
    #[test]
    fn schema_tags_are_constants() {
        for (pointer, wrong, expected) in [
            ("/schema", "inac-control.v2", "inac-control.v1"),
            ("/schema", "", "inac-control.v1"),
            (
                "/authorization/passport/schema",
                "capability-passport.v2",
                "capability-passport.v1",
            ),
        ] {
            let mut frame = every_member();
            *frame.pointer_mut(pointer).unwrap() = json!(wrong);
            let error = InacControl::from_value(&frame).unwrap_err();
            assert!(
                error.to_string().contains(&format!(
                    "unsupported schema {wrong:?}: expected {expected:?}"
                )),
                "{error}"
            );
        }
    }

    /// The same from bytes. For a member it is the type's own `Deserialize` that refuses, so
    /// a plain `serde_json::from_slice` (the INAC fast decode's) refuses too; the frame itself
    /// as an array is refused by [`Artifact::from_slice`].
    #[test]
    fn arrays_in_frame_bytes_are_refused() {
        for text in [
            r#"{"schema":"inac-control.v1","operation":"request","request":["memarium-blob.v1","text/plain"]}"#,
            r#"{"schema":"inac-control.v1","operation":"push","transfer":[]}"#,
            r#"{"schema":"inac-control.v1","operation":"accept","response":["accepted"]}"#,
        ] {
            assert!(InacControl::from_slice(text.as_bytes()).is_err(), "{text}");
            assert!(serde_json::from_str::<InacControl>(text).is_err(), "{text}");
        }
        let error = InacControl::from_slice(br#"["inac-control.v1","request"]"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field \"\": invalid type: sequence, expected struct InacControl"
        );
    }
}
