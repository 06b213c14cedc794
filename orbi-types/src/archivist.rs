//! `archivist-advertisement.v1`: what an archivist accepts and on which terms.

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use crate::{
    artifact::impl_artifact,
    common::{Object, SchemaV1, wire_enum},
    order::KeyOrder,
    timestamp::Timestamp,
};

wire_enum! {
    /// Publication scopes (`accepted/scopes`, `publication/scope`).
    pub enum PublicationScope: "publication scope" {
        /// Kept for the owner; direct retrieval only.
        PrivateRetained = "private-retained",
        /// Discoverable inside the federation.
        FederationVault = "federation-vault",
        /// Publicly discoverable.
        PublicVault = "public-vault",
    }
}

wire_enum! {
    /// Artifact classes an archivist may keep (`accepted/artifact-types`, `artifact/type`).
    pub enum ArtifactType: "artifact type" {
        /// A room transcript bundle.
        TranscriptBundle = "transcript-bundle",
        /// A room summary.
        RoomSummary = "room-summary",
        /// A response envelope.
        ResponseEnvelope = "response-envelope",
        /// A promoted knowledge artifact.
        KnowledgeArtifact = "knowledge-artifact",
        /// A corpus entry.
        CorpusEntry = "corpus-entry",
    }
}

wire_enum! {
    /// The discovery and retrieval surface an archivist exposes (`retrieval/mode`).
    pub enum RetrievalMode: "retrieval mode" {
        /// Direct retrieval only.
        DirectOnly = "direct-only",
        /// Discovery inside the federation.
        FederationDiscovery = "federation-discovery",
        /// Public discovery.
        PublicDiscovery = "public-discovery",
    }
}

wire_enum! {
    /// Publication timing profiles (`publication/timing-profiles`).
    pub enum TimingProfile: "timing profile" {
        /// Mirrored as it happens.
        LiveMirror = "live-mirror",
        /// Published as a bundle after a delay.
        DelayedBundle = "delayed-bundle",
        /// Published once a curator approves.
        CuratorGated = "curator-gated",
    }
}

/// `settlement/required: true` requires `settlement/rail-hints` to be present.
fn settlement_conditional(schema: &mut Schema) {
    schema.insert(
        "allOf".into(),
        serde_json::json!([{
            "if": {
                "properties": {"settlement/required": {"const": true}},
                "required": ["settlement/required"]
            },
            "then": {"required": ["settlement/rail-hints"]}
        }]),
    );
}

/// `archivist-advertisement.v1`: the scopes, artifact classes, retention, replication and
/// settlement posture an archivist offers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "ArchivistAdvertisement v1",
    extend("$id" = "urn:orbiplex:schema:archivist-advertisement:v1"),
    transform = settlement_conditional
)]
pub struct ArchivistAdvertisement {
    /// Contract version, always 1.
    #[serde(rename = "schema/v")]
    pub schema_v: SchemaV1,
    /// Identifier of this advertisement.
    #[serde(rename = "advertisement/id")]
    #[schemars(length(min = 1))]
    pub advertisement_id: String,
    /// When it was published.
    #[serde(rename = "created-at")]
    pub created_at: Timestamp,
    /// The archivist node or storage actor (not necessarily a did:key id).
    #[serde(rename = "archivist/node-id")]
    #[schemars(length(min = 1))]
    pub archivist_node_id: String,
    /// Scopes it will take.
    #[serde(rename = "accepted/scopes")]
    #[schemars(length(min = 1))]
    pub accepted_scopes: Vec<PublicationScope>,
    /// Artifact classes it will take.
    #[serde(rename = "accepted/artifact-types")]
    #[schemars(length(min = 1))]
    pub accepted_artifact_types: Vec<ArtifactType>,
    /// Its main discovery and retrieval surface.
    #[serde(rename = "retrieval/mode")]
    pub retrieval_mode: RetrievalMode,
    /// Default storage ceiling in seconds, unless a contract overrides it.
    #[serde(
        rename = "retention/default-max-duration-sec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "u64", range(min = 1))]
    pub default_max_duration_sec: Option<u64>,
    /// Default idle ceiling in seconds (time without retrieval), unless a contract overrides it.
    #[serde(
        rename = "retention/default-max-idle-ttl-sec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "u64", range(min = 1))]
    pub default_max_idle_ttl_sec: Option<u64>,
    /// Most copies it will coordinate (a hint).
    #[serde(
        rename = "replication/max-copies",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "u64", range(min = 1))]
    pub max_copies: Option<u64>,
    /// Timing profiles it supports.
    #[serde(
        rename = "publication/timing-profiles",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Vec<TimingProfile>")]
    pub timing_profiles: Option<Vec<TimingProfile>>,
    /// Whether storage needs negotiated settlement first.
    #[serde(rename = "settlement/required")]
    pub settlement_required: bool,
    /// Acceptable settlement rails, as hints.
    #[serde(
        rename = "settlement/rail-hints",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Vec<RailHint>")]
    pub rail_hints: Option<Vec<String>>,
    /// Implementation-local annotations with no bearing on the advertisement's meaning.
    #[serde(
        rename = "policy_annotations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Object")]
    pub policy_annotations: Option<Object>,
    /// Fields the contract does not name (the seed shape is open).
    #[serde(flatten)]
    pub extra: Object,
    /// Key order seen at parse time.
    #[serde(skip)]
    pub key_order: KeyOrder,
}
impl_artifact!(ArchivistAdvertisement, "archivist-advertisement");

/// Schema of one `settlement/rail-hints` item: free text, not empty.
#[derive(JsonSchema)]
#[schemars(inline)]
#[allow(dead_code)] // exists only to describe the item schema
struct RailHint(#[schemars(length(min = 1))] String);
