//! Stage 0: admitting an advertisement (schema, typed parse, lints) into the compact form the
//! engine matches against.

use std::fmt;

use orbi_schema::{Profile, registry};
use orbi_types::{
    ArchivistAdvertisement, Artifact, Timestamp,
    archival::ExclusionCode,
    archivist::{ArtifactType, PublicationScope, RetrievalMode, TimingProfile},
    json,
};
use serde_json::Value;

use crate::lint::{Lint, lint};

/// The advertisement's integer fields, as JSON pointers (the schema gives none a maximum).
const INTEGER_FIELDS: [&str; 4] = [
    "/schema~1v",
    "/retention~1default-max-duration-sec",
    "/retention~1default-max-idle-ttl-sec",
    "/replication~1max-copies",
];

/// Whether `value` is a whole number too large for a `u64` (JSON parsers hold it as a float).
fn above_u64(value: &Value) -> bool {
    // 2^64, exactly representable as an f64.
    const TWO_TO_64: f64 = 18_446_744_073_709_551_616.0;
    value.is_f64()
        && value
            .as_f64()
            .is_some_and(|n| n >= TWO_TO_64 && n.fract() == 0.0)
}

/// An issue for each of `fields` (JSON pointers into `value`) holding an integer that no `u64`
/// holds: the schema sets no maximum, the typed parse would only name a float.
pub(crate) fn integers_above_u64(value: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .filter(|pointer| value.pointer(pointer).is_some_and(above_u64))
        .map(|pointer| {
            format!(
                "{pointer:?}: the value is 2^64 or more, above {}, the largest value supported",
                u64::MAX
            )
        })
        .collect()
}

/// Rails the spec names; unknown rail strings are kept but never ranked first.
pub const KNOWN_RAILS: [&str; 4] = ["external-invoice", "host-ledger", "manual-transfer", "none"];

/// The bit of a known rail in a [`RailMask`], `None` for a rail nobody knows.
pub fn known_rail_bit(rail: &str) -> Option<u8> {
    KNOWN_RAILS
        .iter()
        .position(|known| *known == rail)
        .map(|index| 1 << index)
}

/// The known rails of a rail list as bits, plus whether it holds any unknown rail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RailMask {
    /// One bit per [`KNOWN_RAILS`] entry.
    pub known: u8,
    /// Whether some rail is not in [`KNOWN_RAILS`].
    pub has_unknown: bool,
}

impl RailMask {
    /// The mask of `rails`.
    pub fn of<'a>(rails: impl IntoIterator<Item = &'a str>) -> Self {
        rails.into_iter().fold(RailMask::default(), |mask, rail| {
            match known_rail_bit(rail) {
                Some(bit) => RailMask {
                    known: mask.known | bit,
                    ..mask
                },
                None => RailMask {
                    has_unknown: true,
                    ..mask
                },
            }
        })
    }
}

/// What the engine reads on every decision, kept together (one or two cache lines) so that
/// matching many advertisements does not wander through their full documents.
#[derive(Clone, Copy, Debug)]
struct HotFields {
    created_nanos: i128,
    default_max_duration_sec: Option<u64>,
    default_max_idle_ttl_sec: Option<u64>,
    max_copies: u64,
    scopes: u8,
    artifact_types: u8,
    timing_profiles: u8,
    rails: RailMask,
    retrieval_mode: RetrievalMode,
    settlement_required: bool,
}

/// An advertisement that passed stage 0, with its vocabularies as bit sets.
#[derive(Clone, Debug)]
pub struct Advertisement {
    profile: HotFields,
    // Copies of the two identifiers selection and ranking compare, kept out of the boxed
    // document so that grouping by archivist does not pull whole documents into cache.
    id: Box<str>,
    archivist: Box<str>,
    rails: Vec<String>,
    // Boxed: the full document is read rarely, and a small entry keeps a slice of many
    // advertisements dense in cache while matching.
    typed: Box<ArchivistAdvertisement>,
    lints: Box<[Lint]>,
}

/// An advertisement that fails stage 0, with every issue found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidAdvertisement {
    /// Its `advertisement/id`, when readable.
    pub advertisement_id: Option<String>,
    /// Its `archivist/node-id`, when readable.
    pub archivist: Option<String>,
    /// Every problem, each naming the offending field.
    pub issues: Vec<String>,
}

impl InvalidAdvertisement {
    /// The exclusion code it earns (stage 0).
    pub const fn code(&self) -> ExclusionCode {
        ExclusionCode::AdvertisementInvalid
    }
}

impl fmt::Display for InvalidAdvertisement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "advertisement {} is invalid: {}",
            self.advertisement_id.as_deref().unwrap_or("(no id)"),
            self.issues.join("; ")
        )
    }
}

impl std::error::Error for InvalidAdvertisement {}

impl Advertisement {
    /// Admits JSON bytes: strict parse (duplicate keys refused), then [`Advertisement::admit`].
    pub fn admit_slice(bytes: &[u8]) -> Result<Advertisement, InvalidAdvertisement> {
        match json::from_slice_strict(bytes) {
            Ok(value) => Advertisement::admit(&value),
            Err(error) => Err(InvalidAdvertisement {
                advertisement_id: None,
                archivist: None,
                issues: vec![error.to_string()],
            }),
        }
    }

    /// Stage 0: `value` must pass the canonical schema and the typed parse.
    ///
    /// The typed parse is stricter than the schema in two documented places: integers must be
    /// written as integers (`1.0` is a valid JSON Schema integer but is refused here), so an
    /// admitted advertisement always re-serializes to the same text; and they must fit in a
    /// `u64` (the schema sets no maximum): a larger one, such as
    /// `retention/default-max-duration-sec: 18446744073709551616`, is refused with an issue
    /// naming the field and the limit, never silently saturated.
    pub fn admit(value: &Value) -> Result<Advertisement, InvalidAdvertisement> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let invalid = |issues: Vec<String>| InvalidAdvertisement {
            advertisement_id: text("advertisement/id"),
            archivist: text("archivist/node-id"),
            issues,
        };
        let validator = registry()
            .validator(ArchivistAdvertisement::NAME, Profile::Seed)
            .map_err(|error| invalid(vec![format!("schema unavailable: {error}")]))?;
        // Shown to the operator; validity is whether there are any.
        let issues: Vec<String> = validator
            .issues_to_show(value)
            .into_iter()
            .map(|issue| match issue.instance.as_str() {
                "" => issue.message,
                pointer => format!("{pointer:?}: {}", issue.message),
            })
            .collect();
        if !issues.is_empty() {
            return Err(invalid(issues));
        }
        let too_large = integers_above_u64(value, &INTEGER_FIELDS);
        if !too_large.is_empty() {
            return Err(invalid(too_large));
        }
        let typed = ArchivistAdvertisement::from_value(value)
            .map_err(|error| invalid(vec![error.to_string()]))?;
        Ok(Advertisement::from_typed(typed))
    }

    /// Builds the compact form of an advertisement already known to be schema-valid.
    fn from_typed(typed: ArchivistAdvertisement) -> Advertisement {
        // First occurrence of each, in order; the set keeps a long hint list linear.
        let mut seen = std::collections::HashSet::new();
        let mut rails: Vec<String> = Vec::new();
        for rail in typed.rail_hints.iter().flatten() {
            if seen.insert(rail.as_str()) {
                rails.push(rail.clone());
            }
        }
        // Archivist order, but a rail nobody knows never comes first.
        rails.sort_by_key(|rail| !KNOWN_RAILS.contains(&rail.as_str()));
        Advertisement {
            profile: HotFields {
                created_nanos: typed.created_at.instant().unix_timestamp_nanos(),
                default_max_duration_sec: typed.default_max_duration_sec,
                default_max_idle_ttl_sec: typed.default_max_idle_ttl_sec,
                max_copies: typed.max_copies.unwrap_or(1),
                scopes: mask(typed.accepted_scopes.iter().map(|s| *s as u8)),
                artifact_types: mask(typed.accepted_artifact_types.iter().map(|t| *t as u8)),
                timing_profiles: mask(typed.timing_profiles.iter().flatten().map(|t| *t as u8)),
                rails: RailMask::of(rails.iter().map(String::as_str)),
                retrieval_mode: typed.retrieval_mode,
                settlement_required: typed.settlement_required,
            },
            id: typed.advertisement_id.as_str().into(),
            archivist: typed.archivist_node_id.as_str().into(),
            rails,
            lints: lint(&typed).into_boxed_slice(),
            typed: Box::new(typed),
        }
    }

    /// The typed advertisement, as received.
    pub fn typed(&self) -> &ArchivistAdvertisement {
        &self.typed
    }

    /// `advertisement/id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `archivist/node-id`.
    pub fn archivist(&self) -> &str {
        &self.archivist
    }

    /// `created-at`.
    pub fn created_at(&self) -> &Timestamp {
        &self.typed.created_at
    }

    /// `created-at` in nanoseconds since the Unix epoch (for ordering).
    pub fn created_nanos(&self) -> i128 {
        self.profile.created_nanos
    }

    /// `retrieval/mode`.
    pub fn retrieval_mode(&self) -> RetrievalMode {
        self.profile.retrieval_mode
    }

    /// Whether `scope` is in `accepted/scopes`.
    pub fn accepts_scope(&self, scope: PublicationScope) -> bool {
        self.profile.scopes & (1 << scope as u8) != 0
    }

    /// Whether `kind` is in `accepted/artifact-types`.
    pub fn accepts_type(&self, kind: ArtifactType) -> bool {
        self.profile.artifact_types & (1 << kind as u8) != 0
    }

    /// Whether `profile` is in `publication/timing-profiles` (an absent list supports none).
    pub fn supports_timing(&self, profile: TimingProfile) -> bool {
        self.profile.timing_profiles & (1 << profile as u8) != 0
    }

    /// `retention/default-max-duration-sec`.
    pub fn default_max_duration_sec(&self) -> Option<u64> {
        self.profile.default_max_duration_sec
    }

    /// `retention/default-max-idle-ttl-sec`.
    pub fn default_max_idle_ttl_sec(&self) -> Option<u64> {
        self.profile.default_max_idle_ttl_sec
    }

    /// `replication/max-copies`, 1 when absent.
    pub fn max_copies(&self) -> u64 {
        self.profile.max_copies
    }

    /// `settlement/required`.
    pub fn settlement_required(&self) -> bool {
        self.profile.settlement_required
    }

    /// The rail hints without duplicates, in the archivist's order with unknown rails last.
    pub fn rails(&self) -> &[String] {
        &self.rails
    }

    /// The rails as a mask (for a quick intersection test).
    pub fn rail_mask(&self) -> RailMask {
        self.profile.rails
    }

    /// The lints found at admission.
    pub fn lints(&self) -> &[Lint] {
        &self.lints
    }
}

fn mask(bits: impl Iterator<Item = u8>) -> u8 {
    bits.fold(0, |mask, bit| mask | 1 << bit)
}
