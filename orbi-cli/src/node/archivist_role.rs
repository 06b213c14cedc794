//! The archivist role over INAC.
//!
//! - **Discovery.** The node publishes its `archivist-advertisement.v1`: an INAC `request`
//!   for that schema, with no id (or the advertisement's own id or digest), is answered with
//!   the advertisement's exact bytes.
//! - **Submission.** A pushed `archival-storage-request.v1` is judged by `orbi-archivist`
//!   against the advertisement. The decision is recorded as an
//!   `archival-storage-decision.v1` under `archivist/decisions/` in the data directory
//!   (`ID.json`, the exact bytes served, beside `ID.peer`, the submitter's node id, with `:`
//!   in the id written as `_`; both written atomically and kept across restarts) and
//!   answered: `ingested` when accepted (the
//!   request is kept in the store), else `refused` with `policy-denied` and a message naming
//!   the decision id, its status and its reason codes. The submitter, and only it, may then
//!   `request` the decision by its id. An `accepted` decision admits the request, nothing
//!   more: the role never receives or verifies the package (stages 1b/1c are skipped and
//!   `integrity/verified` is absent), so it is not a storage confirmation of verified bytes.
//!   Under `guarantee` it confirms one copy (N guaranteed copies need N distinct archivists,
//!   spec §4.6); under `hint`, the k copies requested.
//! - **Export gates (stage 2).** A storage request carries no curation evidence and the role
//!   fetches none, so, as the engine does without evidence, `federation-vault` and
//!   `public-vault` requests fail closed with `curation-missing` (spec §5: those scopes need
//!   an accepting `curation-decision.v1`); `private-retained` is exempt from curation and its
//!   other gates are reported as not evaluated.
//! - **Direct submissions.** A request whose `target/archivist-node-id` names another
//!   archivist is refused `policy-denied` (`archivist-not-targeted`) and not decided.
//! - **Identity.** A request's `requester/node-id` must be the node that pushed it
//!   (`not-authorized` otherwise, checked before anything recorded is looked at): the
//!   authenticated session is the only proof of who asks.
//! - **Idempotency.** The decision id is derived from the request's digest, and a request
//!   already decided gets its recorded decision back, so a retried push answers the same. A
//!   decision's `retrieval/ref` is derived from its id, never from the requester's
//!   `request/id`.
//! - **Bounds.** Requests have at most 16 KiB, refused with the header (the body is never
//!   received); at most 100 000 decisions are kept, 1 000 per requester (`rate-limited`
//!   beyond). Decisions are kept for good (they are what a retry is answered from), so a
//!   requester at its bound stays there until the operator removes decision files (`ID.json`
//!   with its `ID.peer`) and restarts the node.
//! - **Where the work runs.** The acceptor runs on the INAC receiver thread: a new decision
//!   costs its two atomic file writes there (about 0.9 ms of fsyncs on the reference disk,
//!   during which the node decides nothing else). A decision is written before the INAC group
//!   commits; if that commit fails the answer is withdrawn and the recorded decision is what a
//!   retry gets. The fsyncs stay here on purpose: the same group records the push in the INAC
//!   ledger (`ingested` and the held request, or the refusal), and a retry is answered from
//!   that record without asking the acceptor again, so the decision must be durable before
//!   the ledger can say it was made. Moving them off this thread needs the receiver to record
//!   an acceptor's outcome only after the acceptor's own sync (a two-phase admission).

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use orbi_archivist::{Advertisement, Policy, PreparedRequest, RecordContext, decide, record};
use orbi_inac::{
    Acceptance, Acceptor, Delivery, Descriptor, Published, PublishedQuery, Publisher, Refusal,
};
use orbi_types::{NodeId, Sha256Digest, archival::DecisionStatus, inac::RefusalCode};

use crate::{
    CliError,
    files::{read_file, write_atomically},
};

/// The advertisement's artifact schema.
pub const ADVERTISEMENT_SCHEMA: &str = "archivist-advertisement.v1";
/// The storage request's artifact schema.
pub const REQUEST_SCHEMA: &str = "archival-storage-request.v1";
/// The decision's artifact schema.
pub const DECISION_SCHEMA: &str = "archival-storage-decision.v1";
/// The media type of all three.
pub const JSON: &str = "application/json";
/// The most bytes a storage request may have: its decision (which repeats its ids) then
/// stays well inside what a publication may have (64 KiB, served inline).
pub const MAX_REQUEST_BYTES: u64 = 16 * 1024;
/// The most bytes an advertisement or a recorded decision file may have.
const MAX_DOCUMENT_BYTES: u64 = 64 * 1024;
/// The most decisions kept, and kept for one requester; further requests are refused
/// `rate-limited` (decisions are kept for good, so they must be bounded).
const MAX_DECISIONS: usize = 100_000;
/// See [`MAX_DECISIONS`].
const MAX_DECISIONS_PER_PEER: usize = 1_000;

/// The advertisement `orbi node init --archivist` and `orbi demo` publish for `node`: free
/// storage of transcripts, knowledge artifacts and corpus entries in `private-retained` (the
/// one scope the role can accept: the others need curation evidence a storage request does
/// not carry), 90 days by default, 30 days idle, up to three copies.
pub fn default_advertisement(node: &NodeId) -> serde_json::Value {
    serde_json::json!({
        "schema/v": 1,
        "advertisement/id": crate::pod::fresh_id("archivist-advertisement"),
        "created-at": crate::pod::now_timestamp().map_or_else(|_| "2026-01-01T00:00:00Z".to_owned(), |at| at.as_str().to_owned()),
        "archivist/node-id": node.as_str(),
        "accepted/scopes": ["private-retained"],
        "accepted/artifact-types": ["transcript-bundle", "knowledge-artifact", "corpus-entry"],
        "retrieval/mode": "federation-discovery",
        "retention/default-max-duration-sec": 7776000,
        "retention/default-max-idle-ttl-sec": 2592000,
        "replication/max-copies": 3,
        "publication/timing-profiles": ["delayed-bundle", "curator-gated"],
        "settlement/required": false,
    })
}

/// A recorded decision and who may read it.
struct Recorded {
    submitter: NodeId,
    status: DecisionStatus,
    reasons: Vec<String>,
    published: Published,
}

/// The recorded decisions by id, and how many each submitter has (so the per-requester bound
/// costs no scan of every decision on each push).
#[derive(Default)]
struct Decisions {
    by_id: BTreeMap<String, Recorded>,
    per_submitter: std::collections::HashMap<NodeId, usize>,
}

impl Decisions {
    fn get(&self, id: &str) -> Option<&Recorded> {
        self.by_id.get(id)
    }

    fn len(&self) -> usize {
        self.by_id.len()
    }

    fn count_of(&self, peer: &NodeId) -> usize {
        self.per_submitter.get(peer).copied().unwrap_or(0)
    }

    fn insert(&mut self, id: String, recorded: Recorded) {
        let submitter = recorded.submitter.clone();
        match self.by_id.insert(id, recorded) {
            // The same id again (it is derived from the request's bytes): counted once.
            Some(replaced) if replaced.submitter == submitter => {}
            Some(replaced) => {
                self.forget_one(&replaced.submitter);
                *self.per_submitter.entry(submitter).or_insert(0) += 1;
            }
            None => *self.per_submitter.entry(submitter).or_insert(0) += 1,
        }
    }

    fn forget_one(&mut self, peer: &NodeId) {
        if let Some(count) = self.per_submitter.get_mut(peer) {
            *count -= 1;
            if *count == 0 {
                self.per_submitter.remove(peer);
            }
        }
    }
}

/// The archivist role: publisher of the advertisement and the decisions, acceptor of storage
/// requests.
pub struct ArchivistRole {
    advertisement: Advertisement,
    published: Published,
    policy: Policy,
    decisions_dir: PathBuf,
    decisions: Mutex<Decisions>,
    /// [`MAX_DECISIONS`] and [`MAX_DECISIONS_PER_PEER`] (smaller in tests).
    limits: (usize, usize),
}

/// The advertisement file at `path` for the node `node`, read (bounded) and checked as
/// `node run` checks it.
pub fn read_advertisement(path: &Path, node: &NodeId) -> Result<Vec<u8>, CliError> {
    let bytes = read_file(path, MAX_DOCUMENT_BYTES)?;
    admit_advertisement(path, &bytes, node)?;
    Ok(bytes)
}

/// `bytes` admitted as an advertisement that names `node` as its archivist: serving another
/// node's advertisement would judge requests in that archivist's name (its target checks,
/// its decisions) and hand clients a document they refuse.
fn admit_advertisement(
    path: &Path,
    bytes: &[u8],
    node: &NodeId,
) -> Result<Advertisement, CliError> {
    let admitted = Advertisement::admit_slice(bytes).map_err(|err| {
        CliError::new(format!(
            "{} is not a valid advertisement: {err}",
            path.display()
        ))
    })?;
    if admitted.archivist() != node.as_str() {
        return Err(CliError::new(format!(
            "{}: archivist/node-id names {}, not this node {node}",
            path.display(),
            bounded(admitted.archivist())
        )));
    }
    Ok(admitted)
}

impl ArchivistRole {
    /// Loads the advertisement file, which must name `node` as its archivist, and the decisions
    /// recorded under `data_dir`.
    pub fn open(
        advertisement: &Path,
        node: &NodeId,
        data_dir: &Path,
        policy: Policy,
    ) -> Result<ArchivistRole, CliError> {
        let bytes = read_file(advertisement, MAX_DOCUMENT_BYTES)?;
        let admitted = admit_advertisement(advertisement, &bytes, node)?;
        let descriptor = Descriptor::of_bytes(ADVERTISEMENT_SCHEMA, JSON, &bytes)
            .with_artifact_id(admitted.id());
        let decisions_dir = data_dir.join("archivist").join("decisions");
        orbi_inac::store::create_private_dir_all(&decisions_dir).map_err(|err| {
            CliError::new(format!("cannot create {}: {err}", decisions_dir.display()))
        })?;
        let role = ArchivistRole {
            advertisement: admitted,
            published: Published {
                descriptor,
                bytes: bytes.into(),
            },
            policy,
            decisions_dir,
            decisions: Mutex::default(),
            limits: (MAX_DECISIONS, MAX_DECISIONS_PER_PEER),
        };
        role.load_decisions()?;
        Ok(role)
    }

    /// The advertisement this node publishes.
    pub fn advertisement(&self) -> &Advertisement {
        &self.advertisement
    }

    /// How many decisions are recorded.
    pub fn decision_count(&self) -> usize {
        self.decisions.lock().map_or(0, |decisions| decisions.len())
    }

    fn load_decisions(&self) -> Result<(), CliError> {
        let entries = std::fs::read_dir(&self.decisions_dir).map_err(|err| {
            CliError::new(format!(
                "cannot list {}: {err}",
                self.decisions_dir.display()
            ))
        })?;
        let mut decisions = self
            .decisions
            .lock()
            .map_err(|_| CliError::new("the decision table is poisoned"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let loaded = read_file(&path, MAX_DOCUMENT_BYTES)
                .and_then(|bytes| Ok((bytes, read_file(&path.with_extension("peer"), 1024)?)))
                .map_err(|err| err.to_string())
                .and_then(|(bytes, peer)| parse_record(&bytes, &peer));
            match loaded {
                Ok((id, recorded)) => {
                    decisions.insert(id, recorded);
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "decision file skipped")
                }
            }
        }
        Ok(())
    }

    /// Judges one storage request from `peer`; returns the decision id, status and reasons.
    fn judge(
        &self,
        peer: &NodeId,
        bytes: &[u8],
        digest: &Sha256Digest,
    ) -> Result<Acceptance, Refusal> {
        let decision_id = decision_id(digest);
        let unavailable = || Refusal::handler_unavailable("the archivist cannot decide now");
        // Who asks is checked before anything recorded is revealed: the same bytes pushed by
        // another node learn nothing about the first submitter's decision.
        let request = orbi_archivist::parse_request(bytes)
            .map_err(|err| Refusal::new(RefusalCode::Malformed, err.to_string()))?;
        if request.requester_node_id.as_str() != peer.as_str() {
            return Err(Refusal::new(
                RefusalCode::NotAuthorized,
                "requester/node-id names another node than the one pushing",
            ));
        }
        // A direct submission to another archivist is not ours to decide.
        if let Some(target) = &request.target_archivist
            && target.as_str() != self.advertisement.archivist()
        {
            return Err(Refusal::new(
                RefusalCode::PolicyDenied,
                format!(
                    "target/archivist-node-id names {} (archivist-not-targeted)",
                    bounded(target.as_str())
                ),
            ));
        }
        {
            let decisions = self.decisions.lock().map_err(|_| unavailable())?;
            if let Some(recorded) = decisions.get(&decision_id) {
                return Ok(answer(&decision_id, recorded));
            }
            let from_peer = decisions.count_of(peer);
            if decisions.len() >= self.limits.0 || from_peer >= self.limits.1 {
                return Err(Refusal::new(
                    RefusalCode::RateLimited,
                    "this archivist keeps no more decisions for this node",
                ));
            }
        }
        // No gate evidence: the engine fails stage 2 closed for the vault scopes.
        let prepared = PreparedRequest::new(&request);
        let decision = decide(&prepared, &self.advertisement, &self.policy);
        let status = decision.status();
        let context = RecordContext {
            decision_id: decision_id.clone(),
            decided_at: crate::pod::now_timestamp()
                .map_err(|err| Refusal::handler_unavailable(err.to_string()))?,
            // Ours, not the requester's `request/id`: two requesters may pick the same id.
            retrieval_ref: (status == DecisionStatus::Accepted)
                .then(|| format!("retrieval:{}", digest_suffix(digest))),
            integrity_verified: None,
        };
        let artifact =
            record(&prepared, &self.advertisement, &decision, context).map_err(cannot_record)?;
        let bytes = serde_json::to_vec(&artifact).map_err(cannot_record)?;
        // The submitter first: a decision file without its sidecar is skipped at load.
        let stem = self.decisions_dir.join(file_stem(&decision_id));
        write_atomically(&stem.with_extension("peer"), peer.as_str().as_bytes())
            .and_then(|()| write_atomically(&stem.with_extension("json"), &bytes))
            .map_err(cannot_record)?;
        let recorded = Recorded {
            submitter: peer.clone(),
            status,
            reasons: decision
                .reason_codes()
                .iter()
                .map(|code| code.as_str().to_owned())
                .collect(),
            published: Published {
                descriptor: Descriptor::of_bytes(DECISION_SCHEMA, JSON, &bytes)
                    .with_artifact_id(&decision_id),
                bytes: bytes.into(),
            },
        };
        let reply = answer(&decision_id, &recorded);
        self.decisions
            .lock()
            .map_err(|_| Refusal::handler_unavailable("the archivist cannot decide now"))?
            .insert(decision_id, recorded);
        Ok(reply)
    }
}

/// The id of the decision on the storage request whose bytes have `digest`: stable, so a
/// retried push finds its decision, and known to the submitter before it asks for it.
pub fn decision_id(digest: &Sha256Digest) -> String {
    format!("archival-decision:{}", digest_suffix(digest))
}

fn digest_suffix(digest: &Sha256Digest) -> &str {
    digest.as_str().trim_start_matches("sha256:")
}

/// The INAC answer for a recorded decision.
fn answer(decision_id: &str, recorded: &Recorded) -> Acceptance {
    match recorded.status {
        DecisionStatus::Accepted => Acceptance::Keep,
        status => Acceptance::Refuse(Refusal::new(
            RefusalCode::PolicyDenied,
            format!(
                "decision {decision_id}: {}: {}",
                status.as_str(),
                recorded.reasons.join(", ")
            ),
        )),
    }
}

/// Reads a decision file back (its id, status and reasons) with its submitter's sidecar.
fn parse_record(bytes: &[u8], peer: &[u8]) -> Result<(String, Recorded), String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
    let text = |key: &str| {
        value[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{key} is missing"))
    };
    let id = text("decision/id")?;
    let submitter: NodeId = std::str::from_utf8(peer)
        .map_err(|err| err.to_string())?
        .trim()
        .parse()
        .map_err(|err| format!("submitter: {err}"))?;
    let status: DecisionStatus = text("status")?
        .parse()
        .map_err(|_| "status is unknown".to_owned())?;
    let reasons = value["reason/codes"]
        .as_array()
        .map(|codes| {
            codes
                .iter()
                .filter_map(|code| code.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let descriptor = Descriptor::of_bytes(DECISION_SCHEMA, JSON, bytes).with_artifact_id(&id);
    Ok((
        id,
        Recorded {
            submitter,
            status,
            reasons,
            published: Published {
                descriptor,
                bytes: bytes.into(),
            },
        },
    ))
}

impl Acceptor for ArchivistRole {
    /// Refused with the header: a larger body is never received.
    fn max_size_bytes(&self) -> Option<u64> {
        Some(MAX_REQUEST_BYTES)
    }

    fn accept(&self, delivery: &Delivery<'_>) -> Acceptance {
        if delivery.descriptor().size_bytes > MAX_REQUEST_BYTES {
            return Acceptance::Refuse(Refusal::new(
                RefusalCode::PayloadTooLarge,
                format!("a storage request has at most {MAX_REQUEST_BYTES} bytes"),
            ));
        }
        let mut bytes = Vec::new();
        let read = delivery
            .open()
            .map_err(|err| err.to_string())
            .and_then(|reader| {
                reader
                    .take(MAX_REQUEST_BYTES)
                    .read_to_end(&mut bytes)
                    .map_err(|err| err.to_string())
            });
        if let Err(error) = read {
            // The store's error may name local paths: logged, never sent.
            tracing::error!(%error, "cannot read an archival request from the store");
            return Acceptance::Refuse(Refusal::handler_unavailable(
                "the archivist cannot read the request now",
            ));
        }
        match self.judge(delivery.peer(), &bytes, &delivery.descriptor().digest) {
            Ok(acceptance) => acceptance,
            Err(refusal) => Acceptance::Refuse(refusal),
        }
    }
}

impl Publisher for ArchivistRole {
    fn lookup(&self, peer: &NodeId, query: &PublishedQuery<'_>) -> Option<Published> {
        if query.content_type != JSON {
            return None;
        }
        match query.schema {
            ADVERTISEMENT_SCHEMA => {
                let descriptor = &self.published.descriptor;
                let id_ok = query
                    .artifact_id
                    .is_none_or(|id| id == descriptor.artifact_id);
                let digest_ok = query
                    .digest
                    .is_none_or(|digest| *digest == descriptor.digest);
                (id_ok && digest_ok).then(|| self.published.clone())
            }
            DECISION_SCHEMA => {
                let id = query.artifact_id?;
                let decisions = self.decisions.lock().ok()?;
                let recorded = decisions.get(id)?;
                (recorded.submitter == *peer).then(|| recorded.published.clone())
            }
            _ => None,
        }
    }
}

/// A shared role, registered as both acceptor and publisher.
#[derive(Clone)]
pub struct SharedRole(pub Arc<ArchivistRole>);

impl Acceptor for SharedRole {
    fn accept(&self, delivery: &Delivery<'_>) -> Acceptance {
        self.0.accept(delivery)
    }

    fn max_size_bytes(&self) -> Option<u64> {
        self.0.max_size_bytes()
    }
}

impl Publisher for SharedRole {
    fn lookup(&self, peer: &NodeId, query: &PublishedQuery<'_>) -> Option<Published> {
        self.0.lookup(peer, query)
    }
}

/// A decision id as a file name: every byte outside `[A-Za-z0-9._-]` becomes `_`.
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// At most 128 characters of peer-chosen text, for a refusal message.
fn bounded(text: &str) -> String {
    text.chars().take(128).collect()
}

/// The refusal when a decision cannot be recorded: the cause (a path, an OS error) is
/// logged, never sent to the requester.
fn cannot_record(error: impl std::fmt::Display) -> Refusal {
    tracing::error!(%error, "cannot record an archival decision");
    Refusal::handler_unavailable("the archivist cannot record its decision now")
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbi_types::KeyPair;
    use serde_json::json;

    fn request(requester: &NodeId, id: &str, scope: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schema/v": 1, "request/id": id, "requested-at": "2026-03-23T08:00:00Z",
            "requester/node-id": requester.as_str(), "package/id": "archival-package:t",
            "publication/scope": scope, "artifact/type": "transcript-bundle",
        }))
        .unwrap()
    }

    fn role(dir: &Path, node: &NodeId) -> ArchivistRole {
        role_accepting(dir, node, &["private-retained"])
    }

    /// A role whose advertisement accepts `scopes`.
    fn role_accepting(dir: &Path, node: &NodeId, scopes: &[&str]) -> ArchivistRole {
        let mut advertisement = default_advertisement(node);
        advertisement["accepted/scopes"] = json!(scopes);
        let ad = dir.join("ad.json");
        std::fs::write(&ad, serde_json::to_vec(&advertisement).unwrap()).unwrap();
        ArchivistRole::open(&ad, node, dir, Policy::default()).unwrap()
    }

    fn judge(role: &ArchivistRole, peer: &NodeId, bytes: &[u8]) -> Result<Acceptance, Refusal> {
        let digest = orbi_types::Sha256Digest::of(bytes);
        role.judge(peer, bytes, &digest)
    }

    fn decision_query(id: &str) -> PublishedQuery<'_> {
        PublishedQuery {
            schema: DECISION_SCHEMA,
            content_type: JSON,
            artifact_id: Some(id),
            digest: None,
        }
    }

    #[test]
    fn an_advertisement_naming_another_archivist_is_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let (this, other) = (
            KeyPair::from_seed(&[1; 32]).node_id(),
            KeyPair::from_seed(&[2; 32]).node_id(),
        );
        let ad = dir.path().join("ad.json");
        std::fs::write(
            &ad,
            serde_json::to_vec(&default_advertisement(&other)).unwrap(),
        )
        .unwrap();
        let data = dir.path().join("data");
        let Err(error) = ArchivistRole::open(&ad, &this, &data, Policy::default()) else {
            panic!("a foreign advertisement was opened");
        };
        let message = error.to_string();
        assert!(message.contains(other.as_str()), "{message}");
        assert!(message.contains(this.as_str()), "{message}");
        assert!(!data.exists());
        // The same file opens for the node it names.
        assert!(ArchivistRole::open(&ad, &other, &data, Policy::default()).is_ok());
    }

    #[test]
    fn decisions_survive_a_restart_and_are_served_to_their_submitter_only() {
        let dir = tempfile::tempdir().unwrap();
        let (archivist, alice, bob) = (
            KeyPair::from_seed(&[1; 32]).node_id(),
            KeyPair::from_seed(&[2; 32]).node_id(),
            KeyPair::from_seed(&[3; 32]).node_id(),
        );
        let bytes = request(&alice, "storage-request:1", "private-retained");
        let first = role(dir.path(), &archivist);
        assert_eq!(judge(&first, &alice, &bytes), Ok(Acceptance::Keep));
        let id = format!(
            "archival-decision:{}",
            orbi_types::Sha256Digest::of(&bytes)
                .as_str()
                .trim_start_matches("sha256:")
        );
        let served = first.lookup(&alice, &decision_query(&id)).unwrap();
        drop(first);
        let again = role(dir.path(), &archivist);
        assert_eq!(again.decision_count(), 1);
        let reloaded = again.lookup(&alice, &decision_query(&id)).unwrap();
        assert_eq!(
            reloaded.bytes, served.bytes,
            "served byte for byte after a restart"
        );
        assert!(again.lookup(&bob, &decision_query(&id)).is_none());
        // Bob pushing Alice's bytes learns nothing of her decision.
        let refused = judge(&again, &bob, &bytes).unwrap_err();
        assert_eq!(refused.code(), RefusalCode::NotAuthorized);
        let decision: serde_json::Value = serde_json::from_slice(&reloaded.bytes).unwrap();
        assert!(
            decision["retrieval/ref"]
                .as_str()
                .unwrap()
                .ends_with(id.trim_start_matches("archival-decision:"))
        );
    }

    /// A decision that cannot be written is refused retryable, and the requester hears no
    /// local path or system error (they go to the log).
    #[test]
    fn a_decision_that_cannot_be_recorded_is_refused_without_local_detail() {
        let dir = tempfile::tempdir().unwrap();
        let (archivist, alice) = (
            KeyPair::from_seed(&[1; 32]).node_id(),
            KeyPair::from_seed(&[2; 32]).node_id(),
        );
        let role = role(dir.path(), &archivist);
        // The decisions directory is gone, a file in its place.
        std::fs::remove_dir_all(&role.decisions_dir).unwrap();
        std::fs::write(&role.decisions_dir, b"").unwrap();
        let bytes = request(&alice, "storage-request:1", "private-retained");
        let refused = judge(&role, &alice, &bytes).unwrap_err();
        assert_eq!(refused.code(), RefusalCode::HandlerUnavailable);
        assert_eq!(
            refused.message(),
            "the archivist cannot record its decision now"
        );
        assert_eq!(role.decision_count(), 0);
    }

    #[test]
    fn a_request_the_schema_refuses_is_malformed_even_when_the_typed_parse_would_take_it() {
        let dir = tempfile::tempdir().unwrap();
        let (archivist, alice) = (
            KeyPair::from_seed(&[1; 32]).node_id(),
            KeyPair::from_seed(&[2; 32]).node_id(),
        );
        let role = role(dir.path(), &archivist);
        for (member, null) in [
            ("replication/copies", json!(null)),
            ("policy_annotations", json!(null)),
        ] {
            let mut value: serde_json::Value =
                serde_json::from_slice(&request(&alice, "r:null", "private-retained")).unwrap();
            value[member] = null;
            let bytes = serde_json::to_vec(&value).unwrap();
            assert!(
                <orbi_types::ArchivalStorageRequest as orbi_types::Artifact>::from_slice(&bytes)
                    .is_ok(),
                "the typed parse alone takes {member}: null"
            );

            let refused = judge(&role, &alice, &bytes).unwrap_err();

            assert_eq!(refused.code(), RefusalCode::Malformed);
            let pointer = format!("/{}", member.replace('/', "~1"));
            assert!(refused.message().contains(&pointer), "{refused:?}");
        }
        assert_eq!(role.decision_count(), 0);
    }

    #[test]
    fn refusals_name_their_reasons_and_decisions_are_bounded_per_requester() {
        let dir = tempfile::tempdir().unwrap();
        let archivist = KeyPair::from_seed(&[1; 32]).node_id();
        let alice = KeyPair::from_seed(&[2; 32]).node_id();
        let mut role = role(dir.path(), &archivist);
        role.limits = (10, 2);
        let refused = judge(&role, &alice, &request(&alice, "r:1", "public-vault"));
        match refused {
            Ok(Acceptance::Refuse(refusal)) => {
                assert_eq!(refusal.code(), RefusalCode::PolicyDenied);
                for reason in ["curation-missing", "scope-not-accepted"] {
                    assert!(refusal.message().contains(reason), "{refusal:?}");
                }
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            judge(&role, &alice, &request(&alice, "r:2", "private-retained")),
            Ok(Acceptance::Keep)
        );
        let over = judge(&role, &alice, &request(&alice, "r:3", "private-retained")).unwrap_err();
        assert_eq!(over.code(), RefusalCode::RateLimited);
        // A decided request is still answered the same once the cap is reached.
        assert_eq!(
            judge(&role, &alice, &request(&alice, "r:2", "private-retained")),
            Ok(Acceptance::Keep)
        );
    }

    #[test]
    fn decisions_are_bounded_in_all_and_a_refusal_has_no_retrieval_ref() {
        let dir = tempfile::tempdir().unwrap();
        let archivist = KeyPair::from_seed(&[1; 32]).node_id();
        let (alice, bob, carol) = (
            KeyPair::from_seed(&[2; 32]).node_id(),
            KeyPair::from_seed(&[3; 32]).node_id(),
            KeyPair::from_seed(&[4; 32]).node_id(),
        );
        let mut role = role(dir.path(), &archivist);
        role.limits = (2, 10);
        let refused = request(&alice, "r:1", "public-vault");
        assert!(matches!(
            judge(&role, &alice, &refused),
            Ok(Acceptance::Refuse(_))
        ));
        let decision = recorded(&role, &alice, &refused);
        assert_eq!(decision["status"], "refused", "{decision}");
        assert_eq!(
            decision["retrieval/ref"],
            serde_json::Value::Null,
            "{decision}"
        );
        let accepted = request(&bob, "r:1", "private-retained");
        assert_eq!(judge(&role, &bob, &accepted), Ok(Acceptance::Keep));
        assert!(
            recorded(&role, &bob, &accepted)["retrieval/ref"]
                .as_str()
                .unwrap()
                .starts_with("retrieval:")
        );
        // Two decisions in all: a third requester, under its own bound, is refused.
        let over = judge(&role, &carol, &request(&carol, "r:1", "private-retained")).unwrap_err();
        assert_eq!(over.code(), RefusalCode::RateLimited);
        assert_eq!(role.decision_count(), 2);
        // Each decision is on disk as ID.json beside ID.peer, `:` written as `_`.
        let id = decision_id(&orbi_types::Sha256Digest::of(&accepted));
        let stem = dir
            .path()
            .join("archivist")
            .join("decisions")
            .join(id.replace(':', "_"));
        assert_eq!(
            std::fs::read(stem.with_extension("peer")).unwrap(),
            bob.as_str().as_bytes()
        );
        assert!(stem.with_extension("json").is_file());
        // A storage request's body is bounded from its header.
        assert_eq!(role.max_size_bytes(), Some(MAX_REQUEST_BYTES));
    }

    #[test]
    fn the_advertisement_is_served_only_as_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let archivist = KeyPair::from_seed(&[1; 32]).node_id();
        let anyone = KeyPair::from_seed(&[2; 32]).node_id();
        let role = role(dir.path(), &archivist);
        let descriptor = role.published.descriptor.clone();
        let other_digest = orbi_types::Sha256Digest::of(b"another");
        let query = |content_type, id: Option<&str>, digest: Option<&Sha256Digest>| {
            role.lookup(
                &anyone,
                &PublishedQuery {
                    schema: ADVERTISEMENT_SCHEMA,
                    content_type,
                    artifact_id: id,
                    digest,
                },
            )
            .map(|published| published.bytes)
        };
        let own = Some(role.published.bytes.clone());
        assert_eq!(query(JSON, None, None), own);
        assert_eq!(
            query(
                JSON,
                Some(&descriptor.artifact_id),
                Some(&descriptor.digest)
            ),
            own
        );
        assert_eq!(query("text/plain", None, None), None);
        assert_eq!(
            query(JSON, Some("archivist-advertisement:other"), None),
            None
        );
        assert_eq!(query(JSON, None, Some(&other_digest)), None);
    }

    #[test]
    fn decisions_are_counted_per_submitter_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let archivist = KeyPair::from_seed(&[1; 32]).node_id();
        let (alice, bob) = (
            KeyPair::from_seed(&[2; 32]).node_id(),
            KeyPair::from_seed(&[3; 32]).node_id(),
        );
        let role = role(dir.path(), &archivist);
        for (who, id) in [
            (&alice, "r:1"),
            (&alice, "r:2"),
            (&alice, "r:1"),
            (&bob, "r:1"),
        ] {
            let _ = judge(&role, who, &request(who, id, "private-retained"));
        }
        let counts = |role: &ArchivistRole| {
            let decisions = role.decisions.lock().unwrap();
            (decisions.count_of(&alice), decisions.count_of(&bob))
        };
        assert_eq!(
            counts(&role),
            (2, 1),
            "a retried request is not counted again"
        );
        drop(role);
        let reloaded = super::tests::role(dir.path(), &archivist);
        assert_eq!(counts(&reloaded), (2, 1), "counted again from the files");
    }

    #[test]
    fn scopes_that_need_curation_fail_closed_and_other_archivists_requests_are_not_decided() {
        let dir = tempfile::tempdir().unwrap();
        let archivist = KeyPair::from_seed(&[1; 32]).node_id();
        let alice = KeyPair::from_seed(&[2; 32]).node_id();
        let role = role_accepting(
            dir.path(),
            &archivist,
            &["private-retained", "federation-vault"],
        );
        // The advertisement accepts federation-vault, but nothing shows a curator accepted it.
        match judge(&role, &alice, &request(&alice, "r:1", "federation-vault")) {
            Ok(Acceptance::Refuse(refusal)) => {
                assert_eq!(refusal.code(), RefusalCode::PolicyDenied);
                assert!(
                    refusal.message().contains("curation-missing"),
                    "{refusal:?}"
                );
                assert!(!refusal.message().contains("scope-not-accepted"));
            }
            other => panic!("{other:?}"),
        }
        // A direct submission to another archivist: refused, and no decision recorded.
        let other = KeyPair::from_seed(&[9; 32]).node_id();
        let mut targeted: serde_json::Value =
            serde_json::from_slice(&request(&alice, "r:2", "private-retained")).unwrap();
        targeted["target/archivist-node-id"] = serde_json::json!(other.as_str());
        let refusal = judge(&role, &alice, &serde_json::to_vec(&targeted).unwrap()).unwrap_err();
        assert_eq!(refusal.code(), RefusalCode::PolicyDenied);
        assert!(refusal.message().contains("archivist-not-targeted"));
        assert_eq!(
            role.decision_count(),
            1,
            "only the federation-vault refusal"
        );
        // Addressed to this archivist, it is decided.
        targeted["target/archivist-node-id"] = serde_json::json!(archivist.as_str());
        assert_eq!(
            judge(&role, &alice, &serde_json::to_vec(&targeted).unwrap()),
            Ok(Acceptance::Keep)
        );
    }

    /// The recorded decision of `bytes`, as the submitter fetches it.
    fn recorded(role: &ArchivistRole, peer: &NodeId, bytes: &[u8]) -> serde_json::Value {
        let id = decision_id(&orbi_types::Sha256Digest::of(bytes));
        let served = role.lookup(peer, &decision_query(&id)).unwrap();
        serde_json::from_slice(&served.bytes).unwrap()
    }

    #[test]
    fn discover_and_match_predict_the_archivists_decision_for_every_scope() {
        let dir = tempfile::tempdir().unwrap();
        let archivist = KeyPair::from_seed(&[1; 32]).node_id();
        let alice = KeyPair::from_seed(&[2; 32]).node_id();
        let scopes = ["private-retained", "federation-vault", "public-vault"];
        let role = role_accepting(dir.path(), &archivist, &scopes);
        let now = crate::pod::now_timestamp().unwrap();
        // What `orbi archivist discover --request` and `match` show (no gate evidence), then
        // what the role records for the same bytes.
        let compare = |id: &str, edit: &dyn Fn(&mut serde_json::Value), scope: &str| {
            let mut value: serde_json::Value =
                serde_json::from_slice(&request(&alice, id, scope)).unwrap();
            edit(&mut value);
            let bytes = serde_json::to_vec(&value).unwrap();
            let typed = orbi_archivist::parse_request(&bytes).unwrap();
            let report = orbi_archivist::match_request(
                &PreparedRequest::new(&typed),
                std::slice::from_ref(role.advertisement()),
                &Policy::default(),
                &now,
            );
            let predicted = &report.ranked[0].decision;
            let _ = judge(&role, &alice, &bytes);
            let decided = recorded(&role, &alice, &bytes);
            assert_eq!(decided["status"], predicted.status().as_str(), "{id}");
            assert_eq!(
                decided["reason/codes"],
                json!(predicted.reason_codes().iter().collect::<Vec<_>>()),
                "{id}"
            );
        };
        for (n, scope) in scopes.into_iter().enumerate() {
            let timed = |value: &mut serde_json::Value| {
                value["publication/timing-profile"] = json!("curator-gated");
            };
            compare(&format!("r:{n}"), &timed, scope);
        }
        // Copies up to the advertisement's max-copies (3) and beyond, under both commitments.
        for (copies, commitment) in [(2, "guarantee"), (5, "guarantee"), (5, "hint")] {
            let replicated = |value: &mut serde_json::Value| {
                value["replication/copies"] = json!(copies);
                value["replication/commitment"] = json!(commitment);
            };
            let id = format!("r:{copies}-{commitment}");
            compare(&id, &replicated, "private-retained");
        }
    }

    #[test]
    fn an_accepted_decision_confirms_one_guaranteed_copy_or_the_hinted_copies() {
        let dir = tempfile::tempdir().unwrap();
        let archivist = KeyPair::from_seed(&[1; 32]).node_id();
        let alice = KeyPair::from_seed(&[2; 32]).node_id();
        let role = role(dir.path(), &archivist);
        for (n, commitment, confirmed) in [(1, "guarantee", 1), (2, "hint", 3)] {
            let mut value: serde_json::Value =
                serde_json::from_slice(&request(&alice, &format!("r:{n}"), "private-retained"))
                    .unwrap();
            value["replication/copies"] = json!(3);
            value["replication/commitment"] = json!(commitment);
            let bytes = serde_json::to_vec(&value).unwrap();
            assert_eq!(judge(&role, &alice, &bytes), Ok(Acceptance::Keep));
            let decision = recorded(&role, &alice, &bytes);
            assert_eq!(decision["status"], "accepted", "{decision}");
            assert_eq!(decision["replication/commitment"], commitment);
            assert_eq!(decision["replication/copies"], confirmed, "{decision}");
        }
    }
}
