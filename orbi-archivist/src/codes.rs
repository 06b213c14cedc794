//! Compact sets of reason and note codes, and the pipeline stages they belong to.
//!
//! A decision keeps its codes as bit sets: no allocation on the hot path, and iteration yields
//! the codes in declaration order, which is pipeline order, so every list of reasons comes out
//! in the same stable order.

use std::fmt;

use orbi_types::archival::{NoteCode, ReasonCode};

/// The stages of spec archivist §4.1, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// 0: the advertisement passes its schema.
    AdValidity,
    /// 0b: the advertisement is its archivist's newest, not stale, not future-dated.
    AdFreshness,
    /// 1: the package facts satisfy the package contract.
    Package,
    /// 1b: `integrity/proof` has one of its two forms.
    Integrity,
    /// 1c: the package carries only a payload reference.
    InlinePayload,
    /// 2: export gates (curation, quorum, classification, scope ceiling).
    ExportGates,
    /// 3: the scope is accepted.
    Scope,
    /// 4: the artifact type is accepted.
    ArtifactType,
    /// 5: the timing profile is supported (and `live-mirror` authorized).
    Timing,
    /// 6: how well the retrieval mode fits the scope.
    ModeFit,
    /// 7: the requested duration against the default ceiling.
    Duration,
    /// 8: the requested idle TTL against the default ceiling.
    IdleTtl,
    /// 9: the copies against `replication/max-copies`.
    Replication,
    /// 10: settlement.
    Settlement,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 14] = [
        Stage::AdValidity,
        Stage::AdFreshness,
        Stage::Package,
        Stage::Integrity,
        Stage::InlinePayload,
        Stage::ExportGates,
        Stage::Scope,
        Stage::ArtifactType,
        Stage::Timing,
        Stage::ModeFit,
        Stage::Duration,
        Stage::IdleTtl,
        Stage::Replication,
        Stage::Settlement,
    ];

    /// The stage number as the spec writes it (`0`, `0b`, `1c`, `10`).
    pub const fn number(self) -> &'static str {
        match self {
            Stage::AdValidity => "0",
            Stage::AdFreshness => "0b",
            Stage::Package => "1",
            Stage::Integrity => "1b",
            Stage::InlinePayload => "1c",
            Stage::ExportGates => "2",
            Stage::Scope => "3",
            Stage::ArtifactType => "4",
            Stage::Timing => "5",
            Stage::ModeFit => "6",
            Stage::Duration => "7",
            Stage::IdleTtl => "8",
            Stage::Replication => "9",
            Stage::Settlement => "10",
        }
    }

    /// A short name in words.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::AdValidity => "advertisement validity",
            Stage::AdFreshness => "advertisement freshness",
            Stage::Package => "package validity",
            Stage::Integrity => "integrity proof",
            Stage::InlinePayload => "no inline payload",
            Stage::ExportGates => "export gates",
            Stage::Scope => "scope",
            Stage::ArtifactType => "artifact type",
            Stage::Timing => "timing profile",
            Stage::ModeFit => "retrieval mode fit",
            Stage::Duration => "duration",
            Stage::IdleTtl => "idle ttl",
            Stage::Replication => "replication",
            Stage::Settlement => "settlement",
        }
    }

    /// The stage a reason code is found at.
    pub const fn of(code: ReasonCode) -> Stage {
        use ReasonCode as R;
        match code {
            R::PackageInvalid | R::RequestPackageMismatch => Stage::Package,
            R::IntegrityProofInvalid => Stage::Integrity,
            R::InlinePayloadForbidden => Stage::InlinePayload,
            R::ArchivalBasisInsufficient
            | R::CurationMissing
            | R::CurationNotAccepted
            | R::CuratorQuorumNotMet
            | R::RedactionMismatch
            | R::ScopeCeilingExceeded
            | R::ClassificationMissing
            | R::ClassificationMismatch
            | R::DeclassificationRequired
            | R::DeclassificationScopeExpired
            | R::BoundSubjectsNotPublic
            | R::Quarantined
            | R::SourceTierImmutable => Stage::ExportGates,
            R::ScopeNotAccepted => Stage::Scope,
            R::ArtifactTypeNotAccepted => Stage::ArtifactType,
            R::TimingProfileUnsupported | R::LiveMirrorNotAuthorized => Stage::Timing,
            R::RetrievalModeNarrowerThanScope => Stage::ModeFit,
            R::RetentionExceedsDefault => Stage::Duration,
            R::IdleTtlExceedsDefault => Stage::IdleTtl,
            R::ReplicationExceedsMax => Stage::Replication,
            R::SettlementRequired | R::NoCommonSettlementRail => Stage::Settlement,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stage {} ({})", self.number(), self.name())
    }
}

/// A set of [`ReasonCode`]s, iterated in pipeline order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ReasonSet(u64);

// Every code must fit in the bit set.
const _: () = assert!(ReasonCode::ALL.len() <= 64);
const _: () = assert!(NoteCode::ALL.len() <= 8);

impl ReasonSet {
    /// The empty set.
    pub const EMPTY: ReasonSet = ReasonSet(0);

    /// Adds `code`.
    pub fn insert(&mut self, code: ReasonCode) {
        self.0 |= 1 << code as u8;
    }

    /// Whether `code` is in the set.
    pub fn contains(self, code: ReasonCode) -> bool {
        self.0 & (1 << code as u8) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many codes.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Both sets together.
    pub fn union(self, other: ReasonSet) -> ReasonSet {
        ReasonSet(self.0 | other.0)
    }

    /// The codes found at `stage`.
    pub fn at(self, stage: Stage) -> ReasonSet {
        self.iter()
            .filter(|code| Stage::of(*code) == stage)
            .collect()
    }

    /// The codes in pipeline order.
    pub fn iter(self) -> impl Iterator<Item = ReasonCode> {
        ReasonCode::ALL
            .iter()
            .copied()
            .filter(move |code| self.contains(*code))
    }
}

impl FromIterator<ReasonCode> for ReasonSet {
    fn from_iter<I: IntoIterator<Item = ReasonCode>>(codes: I) -> Self {
        let mut set = ReasonSet::EMPTY;
        codes.into_iter().for_each(|code| set.insert(code));
        set
    }
}

impl fmt::Debug for ReasonSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A set of [`NoteCode`]s, iterated in declaration order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NoteSet(u8);

impl NoteSet {
    /// Adds `note`.
    pub fn insert(&mut self, note: NoteCode) {
        self.0 |= 1 << note as u8;
    }

    /// Whether `note` is in the set.
    pub fn contains(self, note: NoteCode) -> bool {
        self.0 & (1 << note as u8) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The notes in declaration order.
    pub fn iter(self) -> impl Iterator<Item = NoteCode> {
        NoteCode::ALL
            .iter()
            .copied()
            .filter(move |note| self.contains(*note))
    }
}

impl fmt::Debug for NoteSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_iterate_in_pipeline_order_whatever_the_insertion_order() {
        let set: ReasonSet = [
            ReasonCode::NoCommonSettlementRail,
            ReasonCode::PackageInvalid,
            ReasonCode::ScopeNotAccepted,
            ReasonCode::PackageInvalid,
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 3);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![
                ReasonCode::PackageInvalid,
                ReasonCode::ScopeNotAccepted,
                ReasonCode::NoCommonSettlementRail
            ]
        );
        assert_eq!(set.at(Stage::Scope).len(), 1);
    }

    #[test]
    fn every_code_has_a_per_pair_stage_in_order() {
        let stages: Vec<Stage> = ReasonCode::ALL.iter().map(|c| Stage::of(*c)).collect();
        assert!(stages.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(stages.iter().all(|stage| *stage >= Stage::Package));
    }

    #[test]
    fn note_set_round_trips_every_note() {
        let mut notes = NoteSet::default();
        NoteCode::ALL.iter().for_each(|note| notes.insert(*note));
        assert_eq!(notes.iter().collect::<Vec<_>>(), NoteCode::ALL.to_vec());
    }
}
