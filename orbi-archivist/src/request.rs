//! A storage request prepared for matching: defaults resolved, rails deduplicated, and the
//! findings that do not depend on the advertisement (stages 1–2) computed once.

use std::fmt;

use orbi_types::{
    ArchivalStorageRequest, Artifact,
    archival::{ReasonCode, ReplicationCommitment},
    archivist::{ArtifactType, PublicationScope, TimingProfile},
};
use serde_json::Value;

use crate::{
    advertisement::{RailMask, known_rail_bit},
    codes::{ReasonSet, Stage},
    package::{check_package, public_vault_without_timing},
};

/// One reason with the detail that explains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The reason.
    pub code: ReasonCode,
    /// Which field and what is wrong, in words.
    pub detail: String,
}

impl Finding {
    /// A finding with a detail.
    pub fn new(code: ReasonCode, detail: impl Into<String>) -> Self {
        Finding {
            code,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// A gate finding whose code is not an export-gate code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("reason code {0} is not an export-gate code (stage 2)")]
pub struct NotAGateCode(pub ReasonCode);

/// Bytes that are not a valid `archival-storage-request.v1`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an archival-storage-request.v1: {0}")]
pub struct InvalidRequest(pub String);

/// The request's integer members, as JSON pointers (the schema gives none a maximum).
const REQUEST_INTEGERS: [&str; 3] = [
    "/retention~1max-duration-sec",
    "/retention~1max-idle-ttl-sec",
    "/replication~1copies",
];

/// Parses a storage request the way every input should be: strict JSON, then the canonical
/// schema, then the typed parse. The typed parse alone reads an explicit `null` in an optional
/// member as absent, which the schema refuses (e.g. `"replication/copies": null`). The
/// schema's one conditional (its `allOf`: `public-vault` needs `publication/timing-profile`)
/// is left to the pipeline, which reports it as a stage 1 reason
/// ([`ArchivalStorageRequest::timing_rule_holds`]) instead of refusing to read the request.
pub fn parse_request(bytes: &[u8]) -> Result<ArchivalStorageRequest, InvalidRequest> {
    let value = orbi_types::json::from_slice_strict(bytes)
        .map_err(|error| InvalidRequest(error.to_string()))?;
    let validator = orbi_schema::registry()
        .validator(ArchivalStorageRequest::NAME, orbi_schema::Profile::Seed)
        .map_err(|error| InvalidRequest(format!("schema unavailable: {error}")))?;
    let issues = validator.issues(&value).into_iter();
    if let Some(issue) = issues
        .into_iter()
        .find(|issue| !issue.keyword.starts_with("/allOf/"))
    {
        return Err(InvalidRequest(match issue.instance.as_str() {
            "" => issue.message,
            pointer => format!("{pointer:?}: {}", issue.message),
        }));
    }
    let too_large = crate::advertisement::integers_above_u64(&value, &REQUEST_INTEGERS);
    if let Some(issue) = too_large.into_iter().next() {
        return Err(InvalidRequest(issue));
    }
    ArchivalStorageRequest::from_value(&value).map_err(|error| InvalidRequest(error.to_string()))
}

/// A storage request ready for matching against many advertisements.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    request: ArchivalStorageRequest,
    rails: Vec<String>,
    rail_mask: RailMask,
    copies: u64,
    findings: Vec<Finding>,
    finding_set: ReasonSet,
    package_checked: bool,
    gates_evaluated: bool,
    live_mirror_authorized: bool,
}

impl PreparedRequest {
    /// Prepares `request`. Its copied package facts are checked against the package rule
    /// (`public-vault` ⇒ timing profile, stage 1); `live-mirror` counts as not authorized
    /// until [`PreparedRequest::with_live_mirror_authorized`] says otherwise.
    ///
    /// Until [`PreparedRequest::with_gate_findings`] records gate evidence, stage 2 fails
    /// closed (spec §5): a `federation-vault` or `public-vault` request carries the finding
    /// `curation-missing` (those scopes need an accepting `curation-decision.v1`), and for
    /// `private-retained`, exempt from curation, the stage is reported as not evaluated.
    pub fn new(request: &ArchivalStorageRequest) -> Self {
        let mut rails: Vec<String> = Vec::new();
        for rail in request.acceptable_rails() {
            if !rails.iter().any(|known| known == rail.as_str()) {
                rails.push(rail.to_string());
            }
        }
        let mut prepared = PreparedRequest {
            request: request.clone(),
            rail_mask: RailMask::of(rails.iter().map(String::as_str)),
            rails,
            copies: request.copies().get(),
            findings: Vec::new(),
            finding_set: ReasonSet::EMPTY,
            package_checked: false,
            gates_evaluated: false,
            live_mirror_authorized: false,
        };
        if !request.timing_rule_holds() {
            prepared.add(public_vault_without_timing());
        }
        if needs_curation(request.publication_scope) {
            prepared.add(Finding::new(
                ReasonCode::CurationMissing,
                format!(
                    "{} needs an accepting curation-decision.v1, and no gate evidence was given",
                    request.publication_scope
                ),
            ));
        }
        prepared
    }

    /// Adds the stage 1–1c findings of the referenced `archival-package.v1` document.
    pub fn with_package(mut self, package: &Value) -> Self {
        for finding in check_package(package, &self.request) {
            // The request's own timing-rule finding is the same fact; report it once.
            if !self.findings.contains(&finding) {
                self.add(finding);
            }
        }
        self.package_checked = true;
        self
    }

    /// Records the outcome of the export gates (stage 2): an empty list means every gate
    /// passed. The evidence replaces the fail-closed `curation-missing` that
    /// [`PreparedRequest::new`] assumes for the vault scopes. Only stage 2 codes are accepted.
    pub fn with_gate_findings(
        mut self,
        findings: impl IntoIterator<Item = Finding>,
    ) -> Result<Self, NotAGateCode> {
        let findings: Vec<Finding> = findings.into_iter().collect();
        if let Some(finding) = findings
            .iter()
            .find(|finding| Stage::of(finding.code) != Stage::ExportGates)
        {
            return Err(NotAGateCode(finding.code));
        }
        if !self.gates_evaluated {
            // Only the assumed absence can be at stage 2 before the first evidence.
            self.findings
                .retain(|finding| Stage::of(finding.code) != Stage::ExportGates);
            self.finding_set = self.findings.iter().map(|finding| finding.code).collect();
        }
        for finding in findings {
            self.add(finding);
        }
        self.gates_evaluated = true;
        Ok(self)
    }

    /// Whether the room showed onward transmission before a `live-mirror` started (P008):
    /// the evidence stage 5 needs for `live-mirror` outside `private-retained`.
    pub fn with_live_mirror_authorized(mut self, authorized: bool) -> Self {
        self.live_mirror_authorized = authorized;
        self
    }

    /// The same request asking for `copies` copies (the replication planner splits this way).
    pub fn with_copies(&self, copies: u64) -> Self {
        let mut split = self.clone();
        split.copies = copies.max(1);
        split
    }

    fn add(&mut self, finding: Finding) {
        self.finding_set.insert(finding.code);
        let at = self.findings.partition_point(|f| f.code <= finding.code);
        self.findings.insert(at, finding);
    }

    /// The typed request, as received.
    pub fn request(&self) -> &ArchivalStorageRequest {
        &self.request
    }

    /// `publication/scope`.
    pub fn scope(&self) -> PublicationScope {
        self.request.publication_scope
    }

    /// `artifact/type`.
    pub fn artifact_type(&self) -> ArtifactType {
        self.request.artifact_type
    }

    /// `publication/timing-profile`.
    pub fn timing_profile(&self) -> Option<TimingProfile> {
        self.request.timing_profile
    }

    /// `retention/max-duration-sec`.
    pub fn max_duration_sec(&self) -> Option<u64> {
        self.request.max_duration_sec.map(|d| d.get())
    }

    /// `retention/max-idle-ttl-sec`.
    pub fn max_idle_ttl_sec(&self) -> Option<u64> {
        self.request.max_idle_ttl_sec.map(|i| i.get())
    }

    /// Copies asked of one archivist.
    pub fn copies(&self) -> u64 {
        self.copies
    }

    /// `replication/commitment` (default guarantee).
    pub fn commitment(&self) -> ReplicationCommitment {
        self.request.commitment()
    }

    /// `settlement/can-settle` (default false).
    pub fn can_settle(&self) -> bool {
        self.request.can_settle()
    }

    /// `settlement/acceptable-rails` without duplicates.
    pub fn rails(&self) -> &[String] {
        &self.rails
    }

    /// Whether `rail` is acceptable to the requester (exact comparison).
    pub fn accepts_rail(&self, rail: &str) -> bool {
        match known_rail_bit(rail) {
            Some(bit) => self.rail_mask.known & bit != 0,
            None => self.rails.iter().any(|mine| mine == rail),
        }
    }

    /// Whether some rail of `ad` is acceptable, without allocating.
    pub fn shares_a_rail_with(&self, ad: &RailMask, ad_rails: &[String]) -> bool {
        self.rail_mask.known & ad.known != 0
            || (self.rail_mask.has_unknown
                && ad.has_unknown
                && ad_rails.iter().any(|rail| self.accepts_rail(rail)))
    }

    /// `negotiation/allowed` (default true).
    pub fn negotiation_allowed(&self) -> bool {
        self.request.negotiation_allowed()
    }

    /// `retention/allow-shortfall` (default false).
    pub fn allow_shortfall(&self) -> bool {
        self.request.allow_shortfall()
    }

    /// `target/archivist-node-id`.
    pub fn target(&self) -> Option<&str> {
        self.request.target_archivist.as_deref()
    }

    /// The advertisement-independent findings (stages 1–2), in pipeline order.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The codes of [`PreparedRequest::findings`].
    pub fn finding_set(&self) -> ReasonSet {
        self.finding_set
    }

    /// Whether a package document was checked (stages 1–1c beyond the request's own facts).
    pub fn package_checked(&self) -> bool {
        self.package_checked
    }

    /// Whether export-gate evidence was recorded (stage 2).
    pub fn gates_evaluated(&self) -> bool {
        self.gates_evaluated
    }

    /// Whether `live-mirror` is authorized.
    pub fn live_mirror_authorized(&self) -> bool {
        self.live_mirror_authorized
    }
}

/// Whether `scope` needs an accepting `curation-decision.v1` before export (spec §5 \[R\]:
/// `federation-vault` and `public-vault`; `private-retained` is exempt).
pub const fn needs_curation(scope: PublicationScope) -> bool {
    !matches!(scope, PublicationScope::PrivateRetained)
}
