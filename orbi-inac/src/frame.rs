//! The `inac-control.v1` codec: strict decoding, typed access, builders and answers.
//!
//! [`Frame::decode`] applies, in order: the 256 KiB control-frame ceiling, strict JSON
//! (duplicate keys rejected), the canonical schema gate, the typed parse, and the semantic rules
//! of spec §2 that the schema cannot express. A [`Frame`] therefore always satisfies the whole
//! contract, and [`Frame::encode`] gives back the same JSON value with the same key order.
//!
//! A frame of up to 8 KiB whose bytes are exactly our own compact encoding (declaration key
//! order, no `authorization`, no `artifact/href`) takes a fast path to the same result: one typed pass
//! with the schema's rules checked on the typed members (see `frame/fast.rs`). Every error still
//! comes from the full path above.

mod build;
mod fast;

use std::sync::{Arc, OnceLock};

use orbi_schema::{Issue, Profile, SchemaValidator, registry};
use orbi_types::{
    Artifact, Base64Url, InacControl, KeyOrder, ParseError, Sha256Digest,
    inac::{
        ArtifactDescriptor, ArtifactRequest, MAX_TOKEN_CHARS, Meta, Operation, RefusalCode,
        Response, Transfer, TransferMode,
    },
    json,
};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use build::FrameBuilder;

use crate::{Descriptor, Refusal};

/// Largest control frame, in bytes of UTF-8 JSON (spec §8.4): room for a 64 KiB inline payload
/// in base64url plus a passport.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// The `artifact/ref` prefix of a body that follows the push header on the same stream.
pub const STREAM_REF_PREFIX: &str = "inac-stream:";

/// The `artifact/ref` prefix our offers use: an offer names the artifact, never its bytes.
pub const OFFER_REF_PREFIX: &str = "inac-offer:";

/// `authorization.mode`. The published contract has only `invitation-passport`; the upstream
/// implementation also sends the other two (spec §10.2). Which passport checks run is decided by
/// the passport's own `capability_id`, never by this mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthorizationMode {
    /// `invitation-passport` (published).
    InvitationPassport,
    /// `capability-passport` (upstream superset).
    CapabilityPassport,
    /// `custody-passport` (upstream superset).
    CustodyPassport,
}

impl AuthorizationMode {
    /// Every mode, the published one first.
    pub const ALL: [AuthorizationMode; 3] = [
        AuthorizationMode::InvitationPassport,
        AuthorizationMode::CapabilityPassport,
        AuthorizationMode::CustodyPassport,
    ];

    /// The wire text.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthorizationMode::InvitationPassport => "invitation-passport",
            AuthorizationMode::CapabilityPassport => "capability-passport",
            AuthorizationMode::CustodyPassport => "custody-passport",
        }
    }

    /// The mode named by `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }
}

/// How strictly [`Frame::decode_with`] reads a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Accept only the published `authorization.mode` (`invitation-passport`). Off by default:
    /// we accept the three-value superset upstream nodes send (spec §10.2).
    pub strict_authorization_modes: bool,
}

/// `authorization`: the mode and the passport object exactly as received.
#[derive(Clone, PartialEq)]
pub struct FrameAuthorization {
    /// The declared mode.
    pub mode: AuthorizationMode,
    /// The `capability-passport.v1` object as received (its `schema` member included). Signature
    /// checks canonicalize this value, never a re-serialized copy.
    pub passport: Map<String, Value>,
}

impl std::fmt::Debug for FrameAuthorization {
    // Passport bodies stay out of logs; the id is enough to find it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.passport.get("passport_id").and_then(Value::as_str);
        write!(f, "FrameAuthorization({}, {:?})", self.mode.as_str(), id)
    }
}

/// One valid `inac-control.v1` frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Everything but `authorization` (kept apart so that superset modes parse).
    control: InacControl,
    authorization: Option<FrameAuthorization>,
    /// The inline payload, decoded and hashed once when the frame was checked.
    inline: Derived<Option<Arc<InlineBytes>>>,
    /// The compact JSON, kept from [`FrameBuilder::build`] or made by the first
    /// [`Frame::encode`].
    wire: Derived<OnceLock<Arc<[u8]>>>,
}

/// The decoded `bytes/base64url` of a frame and their digest.
#[derive(Clone)]
struct InlineBytes {
    bytes: Vec<u8>,
    digest: Sha256Digest,
}

/// What a frame derives from its members: equal whenever the members are, and kept out of
/// `Debug` (payload bytes stay out of logs).
#[derive(Clone, Default)]
struct Derived<T>(T);

impl<T> PartialEq for Derived<T> {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl<T> std::fmt::Debug for Derived<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

/// Where a pushed or offered artifact's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// `bytes/base64url`: in the frame itself.
    Inline(&'a Base64Url),
    /// `artifact/ref: inac-stream:<id>`: the raw body follows the header on the same stream.
    Stream {
        /// The `<id>` of the ref.
        stream_id: &'a str,
    },
    /// Any other `artifact/ref` (sender-local resolvers, `inac-offer:` names).
    Reference(&'a str),
    /// `artifact/href`: fetched out of band.
    Href(&'a str),
}

/// Why bytes are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Longer than [`MAX_FRAME_BYTES`].
    #[error("control frame of {len} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLong {
        /// The frame's length.
        len: usize,
    },
    /// Not JSON, or a duplicate key.
    #[error("control frame is not strict json: {0}")]
    Json(ParseError),
    /// A member has the wrong shape for the typed frame.
    #[error("control frame member does not fit: {0}")]
    Shape(ParseError),
    /// The canonical schema refuses it.
    #[error("control frame breaks the inac-control.v1 schema: {}", describe_issues(.0))]
    Schema(Vec<Issue>),
    /// A rule of spec §2 the schema cannot express.
    #[error("control frame breaks a contract rule: {0}")]
    Rule(#[from] RuleViolation),
    /// `size/bytes` is over the contract's 1 GiB ceiling (the only schema issue).
    #[error("artifact size/bytes {declared} exceeds the contract ceiling of 1073741824 bytes")]
    ArtifactTooLarge {
        /// The declared size, as written.
        declared: String,
    },
}

/// A semantic rule of the contract that a schema-valid frame breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    /// A `push` must name exactly one payload location.
    #[error(
        "a push must carry exactly one of bytes/base64url, artifact/ref, artifact/href; found {count}"
    )]
    PushPayloadLocations {
        /// How many it carries.
        count: usize,
    },
    /// A response operation and its `response.status` do not pair up.
    #[error("operation {operation} must carry response status {expected}, not {found}")]
    StatusMismatch {
        /// The frame's operation.
        operation: Operation,
        /// The status it requires.
        expected: &'static str,
        /// The status it carries.
        found: &'static str,
    },
    /// An initiating frame carries `response`.
    #[error("initiating operation {0} must not carry response")]
    ResponseOnInitiating(Operation),
    /// A response frame carries `bytes/base64url`.
    #[error("response operation {0} must not carry bytes/base64url")]
    BytesOnResponse(Operation),
    /// A digest that is not `sha256:` plus 43 base64url characters of 32 bytes.
    #[error("{field} must be sha256: followed by 43 unpadded base64url characters")]
    DigestForm {
        /// JSON pointer of the digest.
        field: &'static str,
    },
    /// `bytes/base64url` is not canonical unpadded base64url.
    #[error("bytes/base64url of {length} characters is not canonical unpadded base64url")]
    Base64 {
        /// Its length in characters.
        length: usize,
    },
    /// `transfer.mode` contradicts the payload location of a push.
    #[error("transfer.mode {mode} contradicts the push's {location}")]
    TransferModeConflict {
        /// The declared mode.
        mode: &'static str,
        /// The payload location present.
        location: &'static str,
    },
    /// The stream ref and `transfer.stream/id` disagree, or the ref names no stream.
    #[error("artifact/ref {reference:?} does not match transfer.stream/id {stream_id:?}")]
    StreamIdMismatch {
        /// The `artifact/ref`.
        reference: String,
        /// `transfer.stream/id`, if any.
        stream_id: Option<String>,
    },
    /// A stream-mode push names another stream than the one it arrived on (spec §8.5: the
    /// decimal QUIC stream id).
    #[error("push names stream {named:?} but arrived on stream {arrived}")]
    WrongStream {
        /// The `<n>` of `artifact/ref: inac-stream:<n>`.
        named: String,
        /// The stream it arrived on.
        arrived: u64,
    },
}

/// A frame that could not be decoded, with what could be read of it so the answer can still
/// echo `correlation/id` and use the right operation (`decline` for offers and requests).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DecodeError {
    /// What is wrong.
    pub reason: FrameError,
    /// The frame's `correlation/id`, when it is a valid token.
    pub correlation_id: Option<String>,
    /// The frame's `operation`, when it names one.
    pub operation: Option<Operation>,
}

impl DecodeError {
    fn bare(reason: FrameError) -> Self {
        DecodeError {
            reason,
            correlation_id: None,
            operation: None,
        }
    }

    /// The refusal this failure earns: `payload-too-large` for a size over the contract's
    /// ceiling, `malformed` otherwise. (Inline bytes of another length than `size/bytes` decode:
    /// the receiver refuses them at its byte check, after the peer gate and the size limits,
    /// through [`Frame::verified_inline`].)
    pub fn refusal(&self) -> Refusal {
        let code = match self.reason {
            FrameError::ArtifactTooLarge { .. } => RefusalCode::PayloadTooLarge,
            _ => RefusalCode::Malformed,
        };
        Refusal::new(code, self.reason.to_string())
    }
}

fn describe_issues(issues: &[Issue]) -> String {
    // Pointers and keywords only: validator messages quote values, which may be payload bytes.
    let mut parts: Vec<String> = issues
        .iter()
        .take(5)
        .map(|issue| {
            let keyword = issue.keyword.rsplit('/').next().unwrap_or_default();
            let at = if issue.instance.is_empty() {
                "frame"
            } else {
                issue.instance.as_str()
            };
            format!("{at} fails {keyword}")
        })
        .collect();
    if issues.len() > 5 {
        parts.push(format!("and {} more", issues.len() - 5));
    }
    parts.join("; ")
}

fn validator() -> Option<&'static Arc<SchemaValidator>> {
    static VALIDATOR: OnceLock<Option<Arc<SchemaValidator>>> = OnceLock::new();
    VALIDATOR
        .get_or_init(
            || match registry().validator("inac-control", Profile::Seed) {
                Ok(validator) => Some(validator),
                Err(error) => {
                    // A build defect; every frame is then refused (fail closed).
                    tracing::error!(%error, "inac-control schema unavailable");
                    None
                }
            },
        )
        .as_ref()
}

/// Whether `text` is a valid `correlation/id` / `idempotency/key`: 1 to 256 characters of
/// `A-Z a-z 0-9 : _ . / -`.
///
/// ```
/// assert!(orbi_inac::is_token("inac-correlation:01J0000000000000000000000"));
/// assert!(!orbi_inac::is_token("two words"));
/// assert!(!orbi_inac::is_token(""));
/// ```
pub fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.chars().count() <= MAX_TOKEN_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_./-".contains(&b))
}

impl Frame {
    /// Decodes one control frame with the default [`DecodeOptions`].
    ///
    /// ```
    /// let frame = orbi_inac::Frame::decode(br#"{"schema":"inac-control.v1","operation":"request",
    ///     "request":{"schema":"vendor.x.v1","content/type":"text/plain"}}"#)?;
    /// assert_eq!(frame.operation(), orbi_types::inac::Operation::Request);
    /// let twice = orbi_inac::Frame::decode(br#"{"schema":"inac-control.v1","schema":"x"}"#);
    /// assert!(twice.unwrap_err().to_string().contains("duplicate key"));
    /// # Ok::<(), orbi_inac::DecodeError>(())
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
        Self::decode_with(bytes, DecodeOptions::default())
    }

    /// Decodes one control frame.
    pub fn decode_with(bytes: &[u8], options: DecodeOptions) -> Result<Frame, DecodeError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(DecodeError::bare(FrameError::TooLong { len: bytes.len() }));
        }
        if let Some(frame) = fast::decode(bytes, options) {
            return Ok(frame);
        }
        Self::decode_full(bytes, options)
    }

    /// [`Frame::decode_with`] without its fast path: the one that writes every error.
    fn decode_full(bytes: &[u8], options: DecodeOptions) -> Result<Frame, DecodeError> {
        let value =
            json::from_slice_strict(bytes).map_err(|e| DecodeError::bare(FrameError::Json(e)))?;
        Self::from_value_with(value, options)
    }

    /// Validates an already parsed JSON value as a frame (the same checks as [`Frame::decode`]
    /// after the JSON step; duplicate keys cannot be seen in a `Value`).
    pub fn from_value_with(value: Value, options: DecodeOptions) -> Result<Frame, DecodeError> {
        let correlation_id = value
            .get("correlation/id")
            .and_then(Value::as_str)
            .filter(|text| is_token(text))
            .map(str::to_owned);
        let operation = value
            .get("operation")
            .and_then(Value::as_str)
            .and_then(|text| text.parse().ok());
        let fail = |reason: FrameError| DecodeError {
            reason,
            correlation_id: correlation_id.clone(),
            operation,
        };
        let mut value = value;
        schema_gate(&mut value, options).map_err(fail)?;
        let order = KeyOrder::capture(&value);
        let Value::Object(mut map) = value else {
            // The schema gate demands an object.
            return Err(fail(FrameError::Schema(Vec::new())));
        };
        let authorization = match map.remove("authorization") {
            Some(authorization) => Some(parse_authorization(authorization).map_err(fail)?),
            None => None,
        };
        let value = Value::Object(map);
        // The plain parse is the same as `Artifact::from_value`'s without tracking the path
        // (or capturing the key order a second time); only a failure is parsed again for the
        // pointer of the member that does not fit.
        let mut control = match InacControl::deserialize(&value) {
            Ok(control) => control,
            Err(_) => {
                InacControl::from_value(&value).map_err(|error| fail(FrameError::Shape(error)))?
            }
        };
        control.key_order = order;
        let inline = check_rules(&control).map_err(fail)?;
        Ok(Frame::new(control, authorization, inline))
    }

    fn new(
        control: InacControl,
        authorization: Option<FrameAuthorization>,
        inline: Option<Vec<u8>>,
    ) -> Frame {
        Frame {
            control,
            authorization,
            inline: Derived(inline.map(|bytes| {
                let digest = Sha256Digest::of(&bytes);
                Arc::new(InlineBytes { bytes, digest })
            })),
            wire: Derived::default(),
        }
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        self.control.operation
    }

    /// `correlation/id`, if set.
    pub fn correlation_id(&self) -> Option<&str> {
        self.control.correlation_id.as_deref()
    }

    /// `idempotency/key`, if set.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.control.idempotency_key.as_deref()
    }

    /// The `artifact` object (offer, push), payload locations included.
    pub fn artifact(&self) -> Option<&ArtifactDescriptor> {
        self.control.artifact.as_ref()
    }

    /// The artifact's identity, without its payload location.
    pub fn descriptor(&self) -> Option<Descriptor> {
        self.artifact().map(Descriptor::from_wire)
    }

    /// Where the artifact's bytes are (the first location present; a push has exactly one).
    pub fn payload(&self) -> Option<Payload<'_>> {
        let artifact = self.artifact()?;
        if let Some(bytes) = &artifact.bytes_base64url {
            return Some(Payload::Inline(bytes));
        }
        if let Some(reference) = &artifact.artifact_ref {
            return Some(match reference.strip_prefix(STREAM_REF_PREFIX) {
                Some(stream_id) if !stream_id.is_empty() => Payload::Stream { stream_id },
                _ => Payload::Reference(reference),
            });
        }
        artifact.artifact_href.as_deref().map(Payload::Href)
    }

    /// Checks that a stream-mode push names `arrived`, the transport stream it came on (spec
    /// §8.5); any other frame passes. A push naming another stream is
    /// [`RuleViolation::WrongStream`], refused `malformed` like any frame that breaks the
    /// contract.
    pub fn check_stream(&self, arrived: u64) -> Result<(), DecodeError> {
        let named = match self.payload() {
            Some(Payload::Stream { stream_id }) if stream_id != arrived.to_string() => {
                stream_id.to_owned()
            }
            _ => return Ok(()),
        };
        Err(DecodeError {
            reason: RuleViolation::WrongStream { named, arrived }.into(),
            correlation_id: self.correlation_id().map(str::to_owned),
            operation: Some(self.operation()),
        })
    }

    /// The `request` object (request).
    pub fn request(&self) -> Option<&ArtifactRequest> {
        self.control.request.as_ref()
    }

    /// The `transfer` object.
    pub fn transfer(&self) -> Option<&Transfer> {
        self.control.transfer.as_ref()
    }

    /// `authorization`, with the passport as received.
    pub fn authorization(&self) -> Option<&FrameAuthorization> {
        self.authorization.as_ref()
    }

    /// The `response` object (response operations).
    pub fn response(&self) -> Option<&Response> {
        self.control.response.as_ref()
    }

    /// `meta`. Receivers never echo it.
    pub fn meta(&self) -> Option<&Meta> {
        self.control.meta.as_ref()
    }

    /// Whether this answer says the receiver holds the artifact: `ingested`, `already-present`,
    /// or a `refused` whose code is `already-present`, which spec §3.2 says to treat as
    /// idempotent success.
    pub fn is_delivered(&self) -> bool {
        match self.operation() {
            Operation::Ingested | Operation::AlreadyPresent => true,
            Operation::Refused => self
                .response()
                .is_some_and(|r| r.refusal_code == Some(RefusalCode::AlreadyPresent)),
            _ => false,
        }
    }

    /// Whether this is a push whose body follows on the stream.
    pub fn is_stream_push(&self) -> bool {
        self.operation() == Operation::Push
            && matches!(self.payload(), Some(Payload::Stream { .. }))
    }

    /// The frame as a JSON value, in the key order it was decoded with (declaration order for
    /// built frames).
    pub fn to_value(&self) -> Value {
        let mut value = self.control.to_value();
        if let (Some(authorization), Value::Object(map)) = (&self.authorization, &mut value) {
            let mut object = Map::new();
            object.insert("mode".into(), Value::from(authorization.mode.as_str()));
            object.insert(
                "passport".into(),
                Value::Object(authorization.passport.clone()),
            );
            map.insert("authorization".into(), Value::Object(object));
            if self.control.key_order.is_recorded() {
                self.control.key_order.apply(&mut value);
            } else {
                // An answer carrying an invitation: `authorization` goes where it is declared,
                // not after `response`.
                build::declaration_order(map);
            }
        }
        value
    }

    /// The frame as compact UTF-8 JSON, ready for the wire.
    pub fn encode(&self) -> Vec<u8> {
        self.wire_json().to_vec()
    }

    /// [`Frame::encode`]'s bytes, made once per frame.
    pub(crate) fn wire_json(&self) -> &[u8] {
        self.wire.0.get_or_init(|| {
            fast::encode(&self.control, self.authorization.is_some())
                // A `Value` with string keys always serializes.
                .unwrap_or_else(|| serde_json::to_vec(&self.to_value()).unwrap_or_default())
                .into()
        })
    }

    /// The decoded inline payload (`bytes/base64url`) and the sha256 of those bytes (to be
    /// compared with the declared digest), computed once when the frame was checked. Its
    /// length may differ from `size/bytes`: [`Frame::verified_inline`] checks both.
    pub fn inline_bytes(&self) -> Option<(&[u8], &Sha256Digest)> {
        self.inline
            .0
            .as_deref()
            .map(|inline| (inline.bytes.as_slice(), &inline.digest))
    }

    /// The inline payload checked against the frame's own descriptor (spec §4, step 8 of §6):
    /// `digest-mismatch` unless it is `size/bytes` long and hashes to `digest`. `None` when
    /// the frame carries no inline bytes.
    pub fn verified_inline(&self) -> Option<Result<&[u8], Refusal>> {
        let (bytes, digest) = self.inline_bytes()?;
        let artifact = self.artifact()?;
        Some(if bytes.len() as u64 != artifact.size_bytes {
            Err(Refusal::new(
                RefusalCode::DigestMismatch,
                format!(
                    "bytes/base64url decodes to {} bytes but size/bytes declares {}",
                    bytes.len(),
                    artifact.size_bytes
                ),
            ))
        } else if *digest != artifact.digest {
            Err(Refusal::new(
                RefusalCode::DigestMismatch,
                format!(
                    "bytes hash to {digest}, not the declared {}",
                    artifact.digest
                ),
            ))
        } else {
            Ok(bytes)
        })
    }
}

/// Where the inline payload text sits in a frame.
const PAYLOAD_POINTER: &str = "/artifact/bytes~1base64url";

/// Runs the canonical schema over `value`.
///
/// The inline payload text (up to ~87 000 characters) is the one member whose only schema
/// rule, `pattern: ^[A-Za-z0-9_-]+$`, a regex engine makes expensive: it is checked here by a
/// byte scan and stands in the document as a one-character placeholder while the validator
/// runs, then goes back. A unit test pins the schema rule this relies on.
fn schema_gate(value: &mut Value, options: DecodeOptions) -> Result<(), FrameError> {
    let payload = value
        .pointer_mut(PAYLOAD_POINTER)
        .filter(|text| text.is_string())
        .map(|text| std::mem::replace(text, Value::from("A")));
    let result = validate(value, options);
    let payload_ok = payload
        .as_ref()
        .and_then(Value::as_str)
        .is_none_or(orbi_types::b64::is_base64url_alphabet);
    if let (Some(payload), Some(slot)) = (payload, value.pointer_mut(PAYLOAD_POINTER)) {
        *slot = payload;
    }
    match (result, payload_ok) {
        (result, true) => result,
        (Err(FrameError::Schema(mut issues)), false) => {
            issues.push(payload_pattern_issue());
            Err(FrameError::Schema(issues))
        }
        (_, false) => Err(FrameError::Schema(vec![payload_pattern_issue()])),
    }
}

fn payload_pattern_issue() -> Issue {
    Issue {
        instance: PAYLOAD_POINTER.into(),
        keyword: "/$defs/artifact/properties/bytes~1base64url/pattern".into(),
        message: "bytes/base64url must match ^[A-Za-z0-9_-]+$".into(),
    }
}

fn validate(value: &Value, options: DecodeOptions) -> Result<(), FrameError> {
    let Some(validator) = validator() else {
        return Err(FrameError::Schema(Vec::new()));
    };
    if validator.is_valid(value) {
        return Ok(());
    }
    let superset_mode = !options.strict_authorization_modes
        && value
            .pointer("/authorization/mode")
            .and_then(Value::as_str)
            .and_then(AuthorizationMode::parse)
            .is_some();
    let issues: Vec<Issue> = validator
        .issues(value)
        .into_iter()
        .filter(|issue| !(superset_mode && issue.instance == "/authorization/mode"))
        .collect();
    if issues.is_empty() {
        return Ok(());
    }
    let size_only = issues.iter().all(|issue| {
        issue.instance == "/artifact/size~1bytes" && issue.keyword.ends_with("maximum")
    });
    if size_only {
        let declared = value
            .pointer("/artifact/size~1bytes")
            .map(Value::to_string)
            .unwrap_or_default();
        return Err(FrameError::ArtifactTooLarge { declared });
    }
    Err(FrameError::Schema(issues))
}

fn parse_authorization(value: Value) -> Result<FrameAuthorization, FrameError> {
    // The schema gate has checked the shape: an object with `mode` and an object `passport`.
    let shape = || FrameError::Schema(Vec::new());
    let Value::Object(mut map) = value else {
        return Err(shape());
    };
    let mode = map
        .get("mode")
        .and_then(Value::as_str)
        .and_then(AuthorizationMode::parse)
        .ok_or_else(shape)?;
    let Some(Value::Object(passport)) = map.remove("passport") else {
        return Err(shape());
    };
    Ok(FrameAuthorization { mode, passport })
}

/// The rules of spec §2 the schema cannot express; returns the decoded inline payload.
fn check_rules(control: &InacControl) -> Result<Option<Vec<u8>>, FrameError> {
    let operation = control.operation;
    match (operation.response_status(), &control.response) {
        (Some(expected), Some(response)) if response.status != expected => {
            return Err(RuleViolation::StatusMismatch {
                operation,
                expected: expected.as_str(),
                found: response.status.as_str(),
            }
            .into());
        }
        (None, Some(_)) => return Err(RuleViolation::ResponseOnInitiating(operation).into()),
        _ => {}
    }
    if let Some(request) = &control.request
        && let Some(digest) = &request.digest
        && digest.bytes().is_err()
    {
        return Err(RuleViolation::DigestForm {
            field: "/request/digest",
        }
        .into());
    }
    let Some(artifact) = &control.artifact else {
        return Ok(None);
    };
    if artifact.digest.bytes().is_err() {
        return Err(RuleViolation::DigestForm {
            field: "/artifact/digest",
        }
        .into());
    }
    let mut inline = None;
    if let Some(bytes) = &artifact.bytes_base64url {
        if !operation.is_initiating() {
            return Err(RuleViolation::BytesOnResponse(operation).into());
        }
        // The exact length is known without decoding; a non-canonical length fails decode.
        let decoded = bytes
            .decoded_len()
            .and_then(|_| bytes.decode().ok())
            .ok_or_else(|| RuleViolation::Base64 {
                length: bytes.as_str().len(),
            })?;
        // Its length is checked against `size/bytes` with its digest (`verified_inline`), so
        // that a stranger learns nothing of it before the peer gate (spec §6, steps 2 and 8).
        inline = Some(decoded);
    }
    if operation == Operation::Push {
        check_push_location(artifact, control.transfer.as_ref())?;
    }
    Ok(inline)
}

fn check_push_location(
    artifact: &ArtifactDescriptor,
    transfer: Option<&Transfer>,
) -> Result<(), RuleViolation> {
    let count = artifact.payload_location_count();
    if count != 1 {
        return Err(RuleViolation::PushPayloadLocations { count });
    }
    let mode = transfer.and_then(|t| t.mode);
    let conflict = |mode: TransferMode, location| RuleViolation::TransferModeConflict {
        mode: mode.as_str(),
        location,
    };
    if artifact.bytes_base64url.is_some() {
        if let Some(mode) = mode.filter(|m| *m != TransferMode::Inline) {
            return Err(conflict(mode, "bytes/base64url"));
        }
    } else if artifact.artifact_href.is_some() {
        // An href is fetched out of band (spec §2 payload location): no frame or stream of
        // this exchange carries it.
        if let Some(mode) = mode.filter(|m| *m != TransferMode::OutOfBand) {
            return Err(conflict(mode, "artifact/href"));
        }
    } else if let Some(reference) = &artifact.artifact_ref
        && !reference.starts_with(STREAM_REF_PREFIX)
    {
        // Any other ref names a sender-local resolver: out of band too.
        if let Some(mode) = mode.filter(|m| *m != TransferMode::OutOfBand) {
            return Err(conflict(mode, "artifact/ref"));
        }
    } else if let Some(reference) = &artifact.artifact_ref
        && let Some(stream_id) = reference.strip_prefix(STREAM_REF_PREFIX)
    {
        if let Some(mode) = mode.filter(|m| *m != TransferMode::Stream) {
            return Err(conflict(mode, "inac-stream ref"));
        }
        let declared = transfer.and_then(|t| t.stream_id.as_deref());
        if stream_id.is_empty() || declared.is_some_and(|declared| declared != stream_id) {
            return Err(RuleViolation::StreamIdMismatch {
                reference: reference.clone(),
                stream_id: declared.map(str::to_owned),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_answers_include_a_refusal_coded_already_present() {
        let refusal = |code| crate::Verdict::Refuse(crate::Refusal::new(code, "x"));
        let delivered = |verdict: &crate::Verdict| Frame::answer(Some("c"), verdict).is_delivered();
        assert!(delivered(&crate::Verdict::Ingested));
        assert!(delivered(&crate::Verdict::AlreadyPresent));
        assert!(delivered(&refusal(RefusalCode::AlreadyPresent)));
        assert!(!delivered(&refusal(RefusalCode::Malformed)));
    }

    /// [`schema_gate`] checks the payload text itself; that is only equivalent while the
    /// canonical schema's whole rule for it is this pattern.
    #[test]
    fn the_payload_rule_the_gate_replicates_is_the_schema_rule() {
        let schema = registry().get("inac-control").unwrap();
        let mut rule = schema
            .document
            .pointer("/$defs/artifact/properties/bytes~1base64url")
            .unwrap()
            .clone();
        rule.as_object_mut().unwrap().remove("description");
        assert_eq!(
            rule,
            serde_json::json!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$"})
        );
    }

    #[test]
    fn a_bad_payload_text_is_reported_with_other_issues_and_restored() {
        let mut value = serde_json::json!({"schema": "inac-control.v1", "operation": "push",
            "artifact": {"schema": "x", "content/type": "y", "artifact/id": "z",
                "digest": "sha256:RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o",
                "size/bytes": 2, "bytes/base64url": "e30="}, "extra": 1});
        let Err(FrameError::Schema(issues)) = schema_gate(&mut value, DecodeOptions::default())
        else {
            panic!("two issues expected")
        };
        let at: Vec<&str> = issues.iter().map(|i| i.instance.as_str()).collect();
        assert!(at.contains(&PAYLOAD_POINTER) && at.contains(&""), "{at:?}");
        assert_eq!(value.pointer(PAYLOAD_POINTER), Some(&Value::from("e30=")));
        value.as_object_mut().unwrap().remove("extra");
        let Err(FrameError::Schema(issues)) = schema_gate(&mut value, DecodeOptions::default())
        else {
            panic!("one issue expected")
        };
        assert_eq!(issues, vec![payload_pattern_issue()]);
        value["artifact"]["bytes/base64url"] = Value::from("e30");
        assert!(schema_gate(&mut value, DecodeOptions::default()).is_ok());
        assert_eq!(value.pointer(PAYLOAD_POINTER), Some(&Value::from("e30")));
    }
}
