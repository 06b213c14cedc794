//! Our two storage contracts (spec archivist §3.7): `archival-storage-request.v1`, what a
//! preserving node asks an archivist to keep, and `archival-storage-decision.v1`, the
//! archivist's answer (with `status: accepted` it is the storage confirmation).
//!
//! Upstream has no schema for either, so these are **ours** (`$id`
//! `urn:orbi:schema:<name>:v1`). Both are **closed** (`additionalProperties: false`):
//! a misspelt optional key (`replication/copy`) would otherwise be silently ignored and change
//! the meaning of a request. `policy_annotations` is the extension point, as upstream.
//!
//! Typed parsing enforces the rules of the request schema except its one conditional
//! (`publication/scope: public-vault` needs `publication/timing-profile`, copied from
//! `archival-package.v1`); [`ArchivalStorageRequest::timing_rule_holds`] checks that one, so a
//! policy engine can report it as a reason instead of failing to read the request. Like every
//! [`crate::Artifact`], it reads an explicit `null` in an optional member as absent, which the
//! schema refuses: gate input with the schema first (`orbi_archivist::parse_request` does).

use std::{borrow::Cow, fmt, num::NonZeroU64, ops::Deref};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    archivist::{ArtifactType, PublicationScope, TimingProfile},
    artifact::impl_artifact,
    common::{Object, SchemaV1, wire_enum},
    order::KeyOrder,
    timestamp::Timestamp,
};

/// A string with at least one character (`{"type": "string", "minLength": 1}`).
///
/// Empty text is refused at parse time, so a typed artifact never holds an empty identifier.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonEmptyString(String);

impl NonEmptyString {
    /// `Some` unless `text` is empty.
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        (!text.is_empty()).then_some(NonEmptyString(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for NonEmptyString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NonEmptyString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NonEmptyString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for NonEmptyString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NonEmptyString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NonEmptyString::new(text)
            .ok_or_else(|| serde::de::Error::custom("empty string: expected at least 1 character"))
    }
}

impl JsonSchema for NonEmptyString {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "NonEmptyString".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "minLength": 1})
    }
}

wire_enum! {
    /// Whether the requested copies are a guarantee or a hint (`replication/commitment`).
    pub enum ReplicationCommitment: "replication commitment" {
        /// Every copy is a separately verifiable copy on a distinct archivist.
        Guarantee = "guarantee",
        /// Best effort: one archivist may coordinate several copies.
        Hint = "hint",
    }
}

wire_enum! {
    /// The archivist's answer (`status`).
    pub enum DecisionStatus: "decision status" {
        /// Stored on the stated terms; the decision is the storage confirmation.
        Accepted = "accepted",
        /// Storable once the listed items are negotiated.
        NegotiationRequired = "negotiation-required",
        /// Not storable with this archivist; `reason/codes` says every reason.
        Refused = "refused",
    }
}

wire_enum! {
    /// Why a request is not simply accepted (`reason/codes`), in pipeline order (spec
    /// archivist §4.1, §4.7). On a refusal these are the hard reasons; on a
    /// negotiation they name the negotiable items. The classification codes of P047 keep
    /// their upstream snake_case spelling.
    pub enum ReasonCode: "reason code" {
        /// Stage 1: the package (or the package facts the request copies) breaks its contract.
        PackageInvalid = "package-invalid",
        /// Stage 1: the request's copied fields differ from the referenced package.
        RequestPackageMismatch = "request-package-mismatch",
        /// Stage 1b: `integrity/proof` satisfies neither of its forms.
        IntegrityProofInvalid = "integrity-proof-invalid",
        /// Stage 1c: the package carries payload bytes instead of only `payload/ref`.
        InlinePayloadForbidden = "inline-payload-forbidden",
        /// Stage 2: the archival basis is ambiguous or too weak.
        ArchivalBasisInsufficient = "archival-basis-insufficient",
        /// Stage 2: no accepting curation decision.
        CurationMissing = "curation-missing",
        /// Stage 2: the curation decision does not accept the subject.
        CurationNotAccepted = "curation-not-accepted",
        /// Stage 2: fewer accepting curators than the quorum needs.
        CuratorQuorumNotMet = "curator-quorum-not-met",
        /// Stage 2: package and curation decision disagree on redaction.
        RedactionMismatch = "redaction-mismatch",
        /// Stage 2: the scope is wider than the source allows.
        ScopeCeilingExceeded = "scope-ceiling-exceeded",
        /// Stage 2 (P047): no classification.
        ClassificationMissing = "classification_missing",
        /// Stage 2 (P047): the classification does not fit the scope.
        ClassificationMismatch = "classification_mismatch",
        /// Stage 2 (P047): declassification is needed first.
        DeclassificationRequired = "declassification_required",
        /// Stage 2 (P047): the declassification has expired.
        DeclassificationScopeExpired = "declassification_scope_expired",
        /// Stage 2 (P047): bound subjects are not a public projection.
        BoundSubjectsNotPublic = "bound_subjects_not_public",
        /// Stage 2 (P047): the material is quarantined.
        Quarantined = "quarantined",
        /// Stage 2 (P047): the source tier was changed.
        SourceTierImmutable = "source_tier_immutable",
        /// Stage 3: the archivist does not take this publication scope.
        ScopeNotAccepted = "scope-not-accepted",
        /// Stage 4: the archivist does not take this artifact type.
        ArtifactTypeNotAccepted = "artifact-type-not-accepted",
        /// Stage 5: the archivist does not support the requested timing profile.
        TimingProfileUnsupported = "timing-profile-unsupported",
        /// Stage 5: `live-mirror` outside a private scope without onward-transmission evidence.
        LiveMirrorNotAuthorized = "live-mirror-not-authorized",
        /// Stage 6, under a strict policy only: the retrieval mode is narrower than the scope.
        RetrievalModeNarrowerThanScope = "retrieval-mode-narrower-than-scope",
        /// Stage 7: the requested duration exceeds the archivist's default ceiling.
        RetentionExceedsDefault = "retention-exceeds-default",
        /// Stage 8: the requested idle TTL exceeds the archivist's default ceiling.
        IdleTtlExceedsDefault = "idle-ttl-exceeds-default",
        /// Stage 9: more copies than the archivist coordinates.
        ReplicationExceedsMax = "replication-exceeds-max",
        /// Stage 10: the archivist needs settlement first.
        SettlementRequired = "settlement-required",
        /// Stage 10: no rail both sides accept.
        NoCommonSettlementRail = "no-common-settlement-rail",
    }
}

wire_enum! {
    /// Soft notes on a decision (`reason/notes`): facts worth knowing that change nothing.
    pub enum NoteCode: "note code" {
        /// The archivist's retrieval mode is narrower than the scope would allow.
        RetrievalModeNarrowerThanScope = "retrieval-mode-narrower-than-scope",
        /// The requester allowed a shortfall and got the archivist's shorter ceiling.
        RetentionShortened = "retention-shortened",
        /// The request left a retention term open and the archivist's default applies.
        RetentionDefaultedByArchivist = "retention-defaulted-by-archivist",
        /// Neither side bounds the duration: storage never hard-expires.
        RetentionUnbounded = "retention-unbounded",
        /// The idle TTL was clamped to the (shorter) effective duration.
        IdleTtlClamped = "idle-ttl-clamped",
    }
}

wire_enum! {
    /// Why an advertisement is not considered at all (spec archivist §4.1 stages 0 and 0b).
    pub enum ExclusionCode: "exclusion code" {
        /// Stage 0: it does not pass its schema (or cannot be read).
        AdvertisementInvalid = "advertisement-invalid",
        /// Stage 0b: its `created-at` lies further in the future than the allowed clock skew.
        AdvertisementFutureDated = "advertisement-future-dated",
        /// Stage 0b: the same archivist published a newer one.
        AdvertisementSuperseded = "advertisement-superseded",
        /// Stage 0b: the archivist's newest `advertisement/id` and `created-at` come with
        /// different terms in different documents, so which one holds cannot be known: none
        /// is used (fail closed; identical copies are not a conflict).
        AdvertisementConflicting = "advertisement-conflicting",
        /// Stage 0b: older than the configured maximum age.
        AdvertisementStale = "advertisement-stale",
        /// The request is a direct submission to another archivist.
        ArchivistNotTargeted = "archivist-not-targeted",
        /// Local federation policy does not allow this archivist (deny list, or not on a
        /// configured allow list).
        ArchivistNotAllowed = "archivist-not-allowed",
    }
}

wire_enum! {
    /// Advertisement lints (spec archivist §4.7): schema-valid, but suspicious.
    pub enum LintCode: "lint code" {
        /// `settlement/required: true` with `settlement/rail-hints: []`: nothing can settle.
        SettlementRailsEmpty = "settlement-rails-empty",
        /// `none` offered as a rail while settlement is required.
        SettlementRailNoneWhileRequired = "settlement-rail-none-while-required",
        /// The default idle TTL exceeds the default duration.
        IdleTtlExceedsDuration = "idle-ttl-exceeds-duration",
        /// Accepts `public-vault` but does not offer public discovery.
        PublicVaultWithoutPublicDiscovery = "public-vault-without-public-discovery",
        /// A scope, artifact type or timing profile is listed twice.
        DuplicateEnumItems = "duplicate-enum-items",
        /// A rail hint is listed twice.
        DuplicateRailHints = "duplicate-rail-hints",
    }
}

wire_enum! {
    /// Why a stored package ended (the tombstone's cause, spec archivist §4.4).
    pub enum ExpiryCause: "expiry cause" {
        /// The effective duration ran out.
        MaxDuration = "max-duration",
        /// No successful retrieval within the idle TTL.
        IdleTtl = "idle-ttl",
        /// An operator removed it.
        Operator = "operator",
        /// A public forget request removed it.
        Forget = "forget",
    }
}

impl ExpiryCause {
    /// The retrieval `reason/code` a `tombstoned` answer carries when the expiry clock ended
    /// the storage; `None` for removals the clock did not decide (operator, forget).
    pub const fn retrieval_reason(self) -> Option<RetrievalReason> {
        match self {
            ExpiryCause::MaxDuration => Some(RetrievalReason::RetentionExpired),
            ExpiryCause::IdleTtl => Some(RetrievalReason::IdleTtlExpired),
            ExpiryCause::Operator | ExpiryCause::Forget => None,
        }
    }
}

wire_enum! {
    /// The `reason/code` of a retrieval response that is not `found` (spec archivist §4.7).
    pub enum RetrievalReason: "retrieval reason" {
        /// The caller is not authorized (whether or not the package exists).
        NotAuthorized = "not-authorized",
        /// No such package (authorized callers only).
        UnknownPackage = "unknown-package",
        /// The requested scope differs from the stored one.
        ScopeMismatch = "scope-mismatch",
        /// The retrieval request breaks its schema.
        RequestInvalid = "request-invalid",
        /// Training use without training eligibility.
        TrainingNotEligible = "training-not-eligible",
        /// The retention period has ended.
        RetentionExpired = "retention-expired",
        /// The idle TTL has ended.
        IdleTtlExpired = "idle-ttl-expired",
    }
}

/// `retention/hard-expires-at`: an RFC 3339 instant, or `null` when storage is unbounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HardExpiry {
    /// Storage ends at this instant.
    At(Timestamp),
    /// No duration bound (`null`).
    Never,
}

impl Serialize for HardExpiry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            HardExpiry::At(at) => at.serialize(serializer),
            HardExpiry::Never => serializer.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for HardExpiry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<Timestamp>::deserialize(deserializer)? {
            Some(at) => HardExpiry::At(at),
            None => HardExpiry::Never,
        })
    }
}

impl JsonSchema for HardExpiry {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "HardExpiry".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["string", "null"], "format": "date-time"})
    }
}

/// `publication/scope: public-vault` requires `publication/timing-profile` (the package rule).
fn request_conditional(schema: &mut Schema) {
    schema.insert(
        "allOf".into(),
        serde_json::json!([{
            "if": {
                "properties": {"publication/scope": {"const": "public-vault"}},
                "required": ["publication/scope"]
            },
            "then": {"required": ["publication/timing-profile"]}
        }]),
    );
}

/// `archival-storage-request.v1`: a request to store one archival package.
///
/// Scope, type, timing profile and retention are copied from the referenced
/// `archival-package.v1`. Absent optional fields take the defaults their descriptions name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "ArchivalStorageRequest v1",
    extend("$id" = "urn:orbi:schema:archival-storage-request:v1"),
    transform = request_conditional
)]
pub struct ArchivalStorageRequest {
    /// Contract version, always 1.
    #[serde(rename = "schema/v")]
    pub schema_v: SchemaV1,
    /// Identifier of this request, e.g. `storage-request:<ULID>`.
    #[serde(rename = "request/id")]
    pub request_id: NonEmptyString,
    /// When it was made.
    #[serde(rename = "requested-at")]
    pub requested_at: Timestamp,
    /// The preserving node asking.
    #[serde(rename = "requester/node-id")]
    pub requester_node_id: NonEmptyString,
    /// The `archival-package.v1` to store.
    #[serde(rename = "package/id")]
    pub package_id: NonEmptyString,
    /// The package's publication scope.
    #[serde(rename = "publication/scope")]
    pub publication_scope: PublicationScope,
    /// The package's artifact type.
    #[serde(rename = "artifact/type")]
    pub artifact_type: ArtifactType,
    /// The package's timing profile (required for `public-vault`).
    #[serde(
        rename = "publication/timing-profile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "TimingProfile")]
    pub timing_profile: Option<TimingProfile>,
    /// The longest storage wanted, in seconds; absent means no bound from this side.
    #[serde(
        rename = "retention/max-duration-sec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonZeroU64")]
    pub max_duration_sec: Option<NonZeroU64>,
    /// The longest time without retrieval before the package may expire, in seconds.
    #[serde(
        rename = "retention/max-idle-ttl-sec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonZeroU64")]
    pub max_idle_ttl_sec: Option<NonZeroU64>,
    /// How many copies are wanted (default 1).
    #[serde(
        rename = "replication/copies",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonZeroU64")]
    pub copies: Option<NonZeroU64>,
    /// Whether the copies are a guarantee (default) or a hint.
    #[serde(
        rename = "replication/commitment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "ReplicationCommitment")]
    pub commitment: Option<ReplicationCommitment>,
    /// Whether the requester can settle storage costs (default false).
    #[serde(
        rename = "settlement/can-settle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "bool")]
    pub can_settle: Option<bool>,
    /// Settlement rails the requester accepts, compared exactly with the archivist's hints.
    #[serde(
        rename = "settlement/acceptable-rails",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Vec<NonEmptyString>")]
    pub acceptable_rails: Option<Vec<NonEmptyString>>,
    /// Whether terms above the archivist's defaults may be negotiated (default true).
    #[serde(
        rename = "negotiation/allowed",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "bool")]
    pub negotiation_allowed: Option<bool>,
    /// Whether a shorter ceiling than requested is acceptable as is (default false).
    #[serde(
        rename = "retention/allow-shortfall",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "bool")]
    pub allow_shortfall: Option<bool>,
    /// Direct submission: the one archivist this request is for.
    #[serde(
        rename = "target/archivist-node-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonEmptyString")]
    pub target_archivist: Option<NonEmptyString>,
    /// Implementation-local annotations with no bearing on the request's meaning.
    #[serde(
        rename = "policy_annotations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Object")]
    pub policy_annotations: Option<Object>,
    /// Key order seen at parse time.
    #[serde(skip)]
    pub key_order: KeyOrder,
}
impl_artifact!(
    ArchivalStorageRequest,
    "archival-storage-request",
    "urn:orbi:schema:"
);

impl ArchivalStorageRequest {
    /// Copies wanted (default 1).
    pub fn copies(&self) -> NonZeroU64 {
        self.copies.unwrap_or(NonZeroU64::MIN)
    }

    /// Replication commitment (default `guarantee`: each copy on a distinct archivist).
    pub fn commitment(&self) -> ReplicationCommitment {
        self.commitment.unwrap_or(ReplicationCommitment::Guarantee)
    }

    /// Whether the requester can settle (default false).
    pub fn can_settle(&self) -> bool {
        self.can_settle.unwrap_or(false)
    }

    /// Whether negotiation is allowed (default true).
    pub fn negotiation_allowed(&self) -> bool {
        self.negotiation_allowed.unwrap_or(true)
    }

    /// Whether a shortfall is acceptable (default false).
    pub fn allow_shortfall(&self) -> bool {
        self.allow_shortfall.unwrap_or(false)
    }

    /// The acceptable rails (empty when absent).
    pub fn acceptable_rails(&self) -> &[NonEmptyString] {
        self.acceptable_rails.as_deref().unwrap_or(&[])
    }

    /// The schema's conditional: `public-vault` names a timing profile.
    pub fn timing_rule_holds(&self) -> bool {
        self.publication_scope != PublicationScope::PublicVault || self.timing_profile.is_some()
    }
}

/// `accepted` needs `retrieval/ref` and `retention/hard-expires-at` and carries no reason;
/// `negotiation-required` and `refused` carry at least one reason.
fn decision_conditionals(schema: &mut Schema) {
    let status = |value: serde_json::Value| serde_json::json!({"properties": {"status": value}, "required": ["status"]});
    schema.insert(
        "allOf".into(),
        serde_json::json!([
            {
                "if": status(serde_json::json!({"const": "accepted"})),
                "then": {
                    "required": ["retrieval/ref", "retention/hard-expires-at"],
                    "properties": {"reason/codes": {"maxItems": 0}}
                }
            },
            {
                "if": status(serde_json::json!({"enum": ["negotiation-required", "refused"]})),
                "then": {"properties": {"reason/codes": {"minItems": 1}}}
            }
        ]),
    );
}

/// `archival-storage-decision.v1`: an archivist's answer to one storage request.
///
/// With `status: accepted` it is the storage confirmation: it names the stable
/// `retrieval/ref` and the effective terms, and `retention/hard-expires-at` anchors the expiry
/// clock at `decided-at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "ArchivalStorageDecision v1",
    extend("$id" = "urn:orbi:schema:archival-storage-decision:v1"),
    transform = decision_conditionals
)]
pub struct ArchivalStorageDecision {
    /// Contract version, always 1.
    #[serde(rename = "schema/v")]
    pub schema_v: SchemaV1,
    /// Identifier of this decision.
    #[serde(rename = "decision/id")]
    pub decision_id: NonEmptyString,
    /// The request answered.
    #[serde(rename = "request/id")]
    pub request_id: NonEmptyString,
    /// The package concerned.
    #[serde(rename = "package/id")]
    pub package_id: NonEmptyString,
    /// The archivist deciding.
    #[serde(rename = "archivist/node-id")]
    pub archivist_node_id: NonEmptyString,
    /// The advertisement whose defaults applied.
    #[serde(rename = "advertisement/id")]
    pub advertisement_id: NonEmptyString,
    /// When it was decided; for an acceptance, the anchor of the expiry clock.
    #[serde(rename = "decided-at")]
    pub decided_at: Timestamp,
    /// The answer.
    pub status: DecisionStatus,
    /// The publication scope the package is stored under.
    #[serde(rename = "publication/scope")]
    pub publication_scope: PublicationScope,
    /// Stable retrieval id of the stored package (required when accepted).
    #[serde(
        rename = "retrieval/ref",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonEmptyString")]
    pub retrieval_ref: Option<NonEmptyString>,
    /// Effective storage ceiling in seconds; absent when unbounded.
    #[serde(
        rename = "retention/effective-max-duration-sec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonZeroU64")]
    pub effective_max_duration_sec: Option<NonZeroU64>,
    /// Effective idle TTL in seconds; absent when unbounded.
    #[serde(
        rename = "retention/effective-max-idle-ttl-sec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonZeroU64")]
    pub effective_max_idle_ttl_sec: Option<NonZeroU64>,
    /// `decided-at` plus the effective duration, or `null` when unbounded.
    #[serde(
        rename = "retention/hard-expires-at",
        default,
        // Present, even `null`, is `Some`: `HardExpiry::Never` survives a round trip.
        deserialize_with = "crate::json::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "HardExpiry")]
    pub hard_expires_at: Option<HardExpiry>,
    /// Copies this archivist keeps or coordinates.
    #[serde(
        rename = "replication/copies",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonZeroU64")]
    pub copies: Option<NonZeroU64>,
    /// Guarantee or hint.
    #[serde(
        rename = "replication/commitment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "ReplicationCommitment")]
    pub commitment: Option<ReplicationCommitment>,
    /// Rails both sides accept, in the archivist's order.
    #[serde(
        rename = "settlement/candidate-rails",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Vec<NonEmptyString>")]
    pub candidate_rails: Option<Vec<NonEmptyString>>,
    /// The rail chosen once settlement is agreed.
    #[serde(
        rename = "settlement/rail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonEmptyString")]
    pub rail: Option<NonEmptyString>,
    /// The negotiated contract (e.g. a `procurement-contract.v1` id) overriding the defaults.
    #[serde(
        rename = "contract/ref",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "NonEmptyString")]
    pub contract_ref: Option<NonEmptyString>,
    /// Whether the archivist verified the package's hash and signature.
    #[serde(
        rename = "integrity/verified",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "bool")]
    pub integrity_verified: Option<bool>,
    /// Every reason the request is not simply accepted, in pipeline order.
    #[serde(rename = "reason/codes")]
    pub reason_codes: Vec<ReasonCode>,
    /// Soft notes.
    #[serde(
        rename = "reason/notes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Vec<NoteCode>")]
    pub reason_notes: Option<Vec<NoteCode>>,
    /// Implementation-local annotations with no bearing on the decision's meaning.
    #[serde(
        rename = "policy_annotations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Object")]
    pub policy_annotations: Option<Object>,
    /// Key order seen at parse time.
    #[serde(skip)]
    pub key_order: KeyOrder,
}
impl_artifact!(
    ArchivalStorageDecision,
    "archival-storage-decision",
    "urn:orbi:schema:"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Artifact;
    use serde_json::json;

    fn request() -> serde_json::Value {
        json!({
            "schema/v": 1, "request/id": "storage-request:1", "requested-at": "2026-03-22T22:21:13Z",
            "requester/node-id": "node:pl-wro-1", "package/id": "archival-package:1",
            "publication/scope": "federation-vault", "artifact/type": "transcript-bundle"
        })
    }

    #[test]
    fn request_defaults_apply_when_fields_are_absent() {
        let parsed = ArchivalStorageRequest::from_value(&request()).unwrap();
        assert_eq!(parsed.copies().get(), 1);
        assert_eq!(parsed.commitment(), ReplicationCommitment::Guarantee);
        assert!(!parsed.can_settle());
        assert!(parsed.negotiation_allowed());
        assert!(!parsed.allow_shortfall());
        assert!(parsed.acceptable_rails().is_empty());
        assert!(parsed.timing_rule_holds());
    }

    /// The accessors return the members when present.
    #[test]
    fn request_accessors_return_present_members() {
        let mut value = request();
        value["settlement/acceptable-rails"] = json!(["ledger:a", "ledger:b"]);
        value["replication/copies"] = json!(3);
        value["replication/commitment"] = json!("hint");
        value["settlement/can-settle"] = json!(true);
        value["negotiation/allowed"] = json!(false);
        value["retention/allow-shortfall"] = json!(true);
        let parsed = ArchivalStorageRequest::from_value(&value).unwrap();
        let rails: Vec<&str> = parsed
            .acceptable_rails()
            .iter()
            .map(|r| r.as_str())
            .collect();
        assert_eq!(rails, ["ledger:a", "ledger:b"]);
        assert_eq!(parsed.copies().get(), 3);
        assert_eq!(parsed.commitment(), ReplicationCommitment::Hint);
        assert!(parsed.can_settle());
        assert!(!parsed.negotiation_allowed());
        assert!(parsed.allow_shortfall());
    }

    /// `schema/v` is the integer 1: `1.0` (valid to a schema), `2` and `"1"` are refused.
    #[test]
    fn schema_v_is_the_integer_one() {
        for (version, shown) in [(json!(1.0), "1.0"), (json!(2), "2"), (json!("1"), "\"1\"")] {
            let mut value = request();
            value["schema/v"] = version;
            assert_eq!(
                ArchivalStorageRequest::from_value(&value),
                Err(crate::ParseError::Field {
                    pointer: "/schema~1v".into(),
                    message: format!("unsupported schema/v {shown}: expected 1"),
                })
            );
        }
        let parsed = ArchivalStorageRequest::from_value(&request()).unwrap();
        assert_eq!(parsed.to_value()["schema/v"], json!(1));
    }

    #[test]
    fn request_is_closed_and_refuses_empty_text_and_zero() {
        let mut extra = request();
        extra["replication/copy"] = json!(2);
        let err = ArchivalStorageRequest::from_value(&extra).unwrap_err();
        assert!(err.to_string().contains("replication/copy"), "{err}");

        let mut empty = request();
        empty["package/id"] = json!("");
        let err = ArchivalStorageRequest::from_value(&empty).unwrap_err();
        assert!(err.to_string().contains("package~1id"), "{err}");

        let mut zero = request();
        zero["replication/copies"] = json!(0);
        assert!(ArchivalStorageRequest::from_value(&zero).is_err());
    }

    /// Both contracts are closed objects with no struct member and no flatten, so serde's
    /// derive would read each from an array of its members in declaration order.
    #[test]
    fn requests_and_decisions_are_read_from_objects_only() {
        let members: Vec<_> = request().as_object().unwrap().values().cloned().collect();
        let error = ArchivalStorageRequest::from_value(&json!(members)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field \"\": invalid type: sequence, expected struct ArchivalStorageRequest"
        );
        let decision = json!([
            1,
            "d:1",
            "r:1",
            "p:1",
            "node:a",
            "ad:1",
            "2026-03-22T22:21:13Z",
            "refused",
            "public-vault",
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            ["scope-not-accepted"]
        ]);
        assert!(ArchivalStorageDecision::from_value(&decision).is_err());
        assert!(ArchivalStorageDecision::from_slice(decision.to_string().as_bytes()).is_err());
    }

    #[test]
    fn public_vault_without_timing_parses_but_breaks_the_rule() {
        let mut value = request();
        value["publication/scope"] = json!("public-vault");
        let parsed = ArchivalStorageRequest::from_value(&value).unwrap();
        assert!(!parsed.timing_rule_holds());
    }

    #[test]
    fn hard_expiry_null_survives_a_round_trip() {
        let value = json!({
            "schema/v": 1, "decision/id": "d:1", "request/id": "r:1", "package/id": "p:1",
            "archivist/node-id": "node:a", "advertisement/id": "ad:1",
            "decided-at": "2026-03-22T22:21:13Z", "status": "accepted",
            "publication/scope": "public-vault", "retrieval/ref": "vault:1",
            "retention/hard-expires-at": null, "reason/codes": [],
            "reason/notes": ["retention-unbounded"]
        });
        let parsed = ArchivalStorageDecision::from_value(&value).unwrap();
        assert_eq!(parsed.hard_expires_at, Some(HardExpiry::Never));
        assert_eq!(parsed.to_value(), value);

        let mut at = value.clone();
        at["retention/hard-expires-at"] = json!("2026-06-20T22:21:13Z");
        let parsed = ArchivalStorageDecision::from_value(&at).unwrap();
        assert!(matches!(parsed.hard_expires_at, Some(HardExpiry::At(_))));
        assert_eq!(parsed.to_value(), at);
    }

    #[test]
    fn reason_codes_keep_upstream_spelling() {
        assert_eq!(
            "declassification_required".parse::<ReasonCode>(),
            Ok(ReasonCode::DeclassificationRequired)
        );
        assert_eq!(
            ReasonCode::NoCommonSettlementRail.as_str(),
            "no-common-settlement-rail"
        );
        // Pipeline order is the declaration order.
        assert!(ReasonCode::PackageInvalid < ReasonCode::ScopeNotAccepted);
        assert!(ReasonCode::ScopeNotAccepted < ReasonCode::NoCommonSettlementRail);
    }
}
