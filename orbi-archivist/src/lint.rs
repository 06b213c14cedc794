//! Advertisement lints (spec archivist §4.7): schema-valid advertisements that will surprise
//! someone. Lints never exclude an advertisement; they are reported next to the verdict.

use std::{collections::HashSet, fmt, hash::Hash};

use orbi_types::{
    ArchivistAdvertisement,
    archival::LintCode,
    archivist::{PublicationScope, RetrievalMode},
};

/// One lint finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lint {
    /// What kind of finding.
    pub code: LintCode,
    /// JSON pointer of the field concerned.
    pub pointer: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:?}: {}", self.code, self.pointer, self.message)
    }
}

/// The rail string that means "no settlement".
pub const RAIL_NONE: &str = "none";

/// Every lint of `ad`, in [`LintCode`] order.
pub fn lint(ad: &ArchivistAdvertisement) -> Vec<Lint> {
    let mut lints = Vec::new();
    let hints = ad.rail_hints.as_deref();
    if ad.settlement_required && hints.is_some_and(<[String]>::is_empty) {
        lints.push(Lint {
            code: LintCode::SettlementRailsEmpty,
            pointer: "/settlement~1rail-hints",
            message: "settlement is required but no rail is hinted, so no request can settle"
                .into(),
        });
    }
    if ad.settlement_required && hints.is_some_and(|h| h.iter().any(|rail| rail == RAIL_NONE)) {
        lints.push(Lint {
            code: LintCode::SettlementRailNoneWhileRequired,
            pointer: "/settlement~1rail-hints",
            message: "rail \"none\" is hinted while settlement is required".into(),
        });
    }
    if let (Some(duration), Some(idle)) = (ad.default_max_duration_sec, ad.default_max_idle_ttl_sec)
        && idle > duration
    {
        lints.push(Lint {
            code: LintCode::IdleTtlExceedsDuration,
            pointer: "/retention~1default-max-idle-ttl-sec",
            message: format!(
                "default idle ttl {idle} s exceeds default duration {duration} s; it is clamped to the duration"
            ),
        });
    }
    if ad.accepted_scopes.contains(&PublicationScope::PublicVault)
        && ad.retrieval_mode != RetrievalMode::PublicDiscovery
    {
        lints.push(Lint {
            code: LintCode::PublicVaultWithoutPublicDiscovery,
            pointer: "/retrieval~1mode",
            message: format!(
                "accepts public-vault but offers {} instead of public-discovery",
                ad.retrieval_mode
            ),
        });
    }
    let timing = ad.timing_profiles.as_deref().unwrap_or(&[]);
    for (pointer, duplicated) in [
        (
            "/accepted~1scopes",
            first_duplicate(&ad.accepted_scopes).map(|d| d.to_string()),
        ),
        (
            "/accepted~1artifact-types",
            first_duplicate(&ad.accepted_artifact_types).map(|d| d.to_string()),
        ),
        (
            "/publication~1timing-profiles",
            first_duplicate(timing).map(|d| d.to_string()),
        ),
    ] {
        if let Some(item) = duplicated {
            lints.push(Lint {
                code: LintCode::DuplicateEnumItems,
                pointer,
                message: format!("{item:?} is listed more than once; duplicates are ignored"),
            });
        }
    }
    if let Some(rail) = hints.and_then(first_duplicate) {
        lints.push(Lint {
            code: LintCode::DuplicateRailHints,
            pointer: "/settlement~1rail-hints",
            message: format!("rail {rail:?} is hinted more than once; duplicates are ignored"),
        });
    }
    lints
}

fn first_duplicate<T: Eq + Hash>(items: &[T]) -> Option<&T> {
    let mut seen = HashSet::with_capacity(items.len());
    items.iter().find(|item| !seen.insert(*item))
}
