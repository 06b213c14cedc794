//! P4: pod admissions per second against raw ed25519 verifications per second, same run.
//!
//! ```sh
//! cargo run --release -p orbi-pod --example pod_bench -- [--n 2000] [--rounds 3] [--group 64]
//! ```
//!
//! An admission is the whole path a serving node runs for one attachment arriving on a live
//! session: strict JSON parse, kind detection, the schema gate, typed parse, strict did:key
//! decoding, the signature check (one `verify_strict`), clock and order checks, the store probe
//! (idempotency, bind cache, where the client stands), the state guards, and the SQLite commit
//! of the record (which also keeps its bind-cache entry) and two trace events in one
//! transaction. Every attachment is distinct (own client, own bind), signed ahead of time. The baseline verifies the same signatures over the same
//! signing inputs with `verify_strict` and nothing else. Each figure is the median of
//! `--rounds` rounds, rounds interleaved with the baseline; the ratio is admissions/s over
//! verifies/s.
//!
//! Variants: SQLite files with `synchronous=FULL` or `NORMAL`, one commit per admission or
//! group commits of `--group` admissions (`PodEngine::admit_group`, one flush per group);
//! SQLite in memory; and the engine over a read model that remembers nothing (every check and
//! the signature, no storage), which bounds what any store could reach.

use std::time::Instant;

use ed25519_dalek::{Signature, VerifyingKey};
use orbi_pod::{
    AttachmentState, Durability, HostPolicy, PodEngine, Session, SessionTable, SqliteStore, Store,
    StoreError, StoreLimits, Verdict,
    compose::{self, AttachmentDraft, BindDraft},
    store::{AttachmentRec, ClientHistory, Commit, Counts, DetachmentRec, RecoveryRec, Trace},
};
use orbi_types::{
    KeyPair, NodeId, Sha256Digest, Timestamp,
    pod::{DetachReason, ProfileType, SessionState, bind_signing_input},
    signing::decode_signature_value,
};
use serde_json::Value;
use time::OffsetDateTime;

const SESSION: &str = "sess:bench";

struct Workload {
    artifacts: Vec<Vec<u8>>,
    inputs: Vec<Vec<u8>>,
    signatures: Vec<Signature>,
    key: VerifyingKey,
}

fn workload(n: usize) -> Workload {
    let node = KeyPair::from_seed(&[0x29; 32]);
    let participant = KeyPair::from_seed(&[0x2a; 32]);
    let at = |text: &str| Timestamp::parse(text).expect("fixed timestamp");
    let mut artifacts = Vec::with_capacity(n);
    let mut inputs = Vec::with_capacity(n);
    let mut signatures = Vec::with_capacity(n);
    for i in 0..n {
        let bind = compose::sign_bind(
            &participant,
            &BindDraft {
                bind_id: format!("pb:{i:08}"),
                bound_at: at("2026-03-28T19:20:00Z"),
                via: node.node_id(),
                session_id: SESSION.into(),
                policy_annotations: None,
            },
        )
        .expect("bind signs");
        let input = bind_signing_input(&bind).expect("bind is an object");
        let value = bind["proof/participant-signature"]["value"]
            .as_str()
            .expect("signature value");
        signatures.push(Signature::from_bytes(
            &decode_signature_value(value).expect("our own signature decodes"),
        ));
        inputs.push(input.as_bytes().to_vec());
        let attachment: Value = compose::attachment(
            &AttachmentDraft {
                attachment_id: format!("attach:{i:08}"),
                attached_at: at("2026-03-28T19:42:00Z"),
                profile: ProfileType::PodClient,
                serving_node: node.node_id(),
                pod_user: None,
                client_instance_id: format!("client:{i:08}"),
                models_local: Some(false),
                state: SessionState::Attached,
                export_capable: true,
                migration_allowed: true,
            },
            bind,
        );
        artifacts.push(serde_json::to_vec(&attachment).expect("json"));
    }
    Workload {
        artifacts,
        inputs,
        signatures,
        key: participant.verifying_key(),
    }
}

fn verifies_per_s(work: &Workload) -> f64 {
    let start = Instant::now();
    for (input, signature) in work.inputs.iter().zip(&work.signatures) {
        work.key
            .verify_strict(input, signature)
            .expect("benchmark signatures verify");
    }
    work.inputs.len() as f64 / start.elapsed().as_secs_f64()
}

/// Admits the whole workload, one commit per admission (`group` = 1) or in group commits of
/// `group` admissions.
fn admissions_per_s<S: Store>(work: &Workload, store: S, group: usize) -> f64 {
    let node = KeyPair::from_seed(&[0x29; 32]);
    let mut engine = PodEngine::new(node, HostPolicy::default(), store).expect("engine");
    engine.open_session(SESSION, Session::default());
    let now = Timestamp::parse("2026-03-28T19:42:05Z")
        .expect("fixed timestamp")
        .instant();
    let start = Instant::now();
    for chunk in work.artifacts.chunks(group) {
        let admissions = if group == 1 {
            vec![engine.admit(&chunk[0], SESSION, now).expect("store works")]
        } else {
            engine
                .admit_group(chunk.iter().map(|a| (&a[..], SESSION)), now)
                .expect("store works")
        };
        for admission in admissions {
            assert_eq!(admission.verdict, Verdict::Admitted, "{admission:?}");
        }
    }
    work.artifacts.len() as f64 / start.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1))
        .cloned()
}

fn number(name: &str, default: usize) -> usize {
    arg(name)
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A read model that holds nothing: the engine's own cost, without storage.
struct NoStore;

impl Store for NoStore {
    fn attachment(&self, _: &str) -> Result<Option<AttachmentRec>, StoreError> {
        Ok(None)
    }
    fn live_attachment(&self, _: &NodeId, _: &str) -> Result<Option<AttachmentRec>, StoreError> {
        Ok(None)
    }
    fn live_attachments(&self) -> Result<Vec<AttachmentRec>, StoreError> {
        Ok(Vec::new())
    }
    fn live_attachments_on(&self, _: &str) -> Result<Vec<AttachmentRec>, StoreError> {
        Ok(Vec::new())
    }
    fn count_live_attachments_on(&self, _: &str) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn count_open_grants_on(&self, _: &str, _: OffsetDateTime) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn attachments_due(
        &self,
        _: AttachmentState,
        _: OffsetDateTime,
    ) -> Result<Vec<AttachmentRec>, StoreError> {
        Ok(Vec::new())
    }
    fn detachment(&self, _: &str) -> Result<Option<DetachmentRec>, StoreError> {
        Ok(None)
    }
    fn detachment_of(&self, _: &str) -> Result<Option<DetachmentRec>, StoreError> {
        Ok(None)
    }
    fn latest_detachment(&self, _: &str) -> Result<Option<DetachmentRec>, StoreError> {
        Ok(None)
    }
    fn tombstone(&self, _: &str) -> Result<Option<DetachReason>, StoreError> {
        Ok(None)
    }
    fn recovery(&self, _: &str) -> Result<Option<RecoveryRec>, StoreError> {
        Ok(None)
    }
    fn recoveries_from(&self, _: &str) -> Result<Vec<RecoveryRec>, StoreError> {
        Ok(Vec::new())
    }
    fn open_grant(&self, _: &str) -> Result<Option<RecoveryRec>, StoreError> {
        Ok(None)
    }
    fn grants_due(&self, _: OffsetDateTime) -> Result<Vec<RecoveryRec>, StoreError> {
        Ok(Vec::new())
    }
    fn bind_digest(&self, _: &str, _: &str) -> Result<Option<Sha256Digest>, StoreError> {
        Ok(None)
    }
    fn client_history(&self, _: &str) -> Result<ClientHistory, StoreError> {
        Ok(ClientHistory::default())
    }
    fn counts(&self) -> Result<Counts, StoreError> {
        Ok(Counts::default())
    }
    fn recent_traces(&self, _: usize) -> Result<Vec<Trace>, StoreError> {
        Ok(Vec::new())
    }
    fn commit(&mut self, commit: Commit, _: &SessionTable) -> Result<(), StoreError> {
        std::hint::black_box(commit);
        Ok(())
    }
    fn begin_group(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn finish_group(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn abandon_group(&mut self) {}
}

#[derive(Clone, Copy)]
enum Variant {
    File(Durability, usize),
    Memory,
    Nothing,
}

impl Variant {
    fn label(self) -> String {
        match self {
            Variant::File(durability, group) => format!(
                "store=sqlite-file durability={} group={group}",
                match durability {
                    Durability::Full => "full",
                    Durability::Normal => "normal",
                }
            ),
            Variant::Memory => "store=sqlite-memory group=1".into(),
            Variant::Nothing => "store=none (engine only)".into(),
        }
    }

    fn run(self, work: &Workload, dir: &std::path::Path, round: usize) -> f64 {
        let node = KeyPair::from_seed(&[0x29; 32]).node_id();
        let limits = StoreLimits::default();
        match self {
            Variant::File(durability, group) => {
                let path = dir.join(format!("{}-{round}.sqlite", self.label().replace(' ', "_")));
                let store = SqliteStore::open(&path, &node, limits, durability).expect("open");
                admissions_per_s(work, store, group)
            }
            Variant::Memory => {
                let store = SqliteStore::open_in_memory(&node, limits).expect("open");
                admissions_per_s(work, store, 1)
            }
            Variant::Nothing => admissions_per_s(work, NoStore, 1),
        }
    }
}

fn main() {
    let n = number("--n", 2000);
    let rounds = number("--rounds", 3).max(1);
    let group = number("--group", 64).max(1);
    // `--only TEXT` keeps the variants whose label contains TEXT (for profiling one of them).
    let only = arg("--only").unwrap_or_default();
    let work = workload(n);
    let dir = tempfile::tempdir().expect("temporary directory");
    let variants: Vec<Variant> = [
        Variant::File(Durability::Full, group),
        Variant::File(Durability::Full, 1),
        Variant::File(Durability::Normal, group),
        Variant::File(Durability::Normal, 1),
        Variant::Memory,
        Variant::Nothing,
    ]
    .into_iter()
    .filter(|variant| variant.label().contains(&only))
    .collect();
    let mut verifies = Vec::new();
    let mut admissions: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (index, variant) in variants.iter().enumerate() {
            verifies.push(verifies_per_s(&work));
            admissions[index].push(variant.run(&work, dir.path(), round));
        }
        verifies.push(verifies_per_s(&work));
    }
    let verifies = median(verifies);
    println!("# n={n} rounds={rounds}; medians; ratio = admissions/s over verifies/s");
    for (index, variant) in variants.iter().enumerate() {
        let rate = median(admissions[index].clone());
        println!(
            "P4 ratio={:.3} admissions_per_s={:.0} verifies_per_s={:.0} {}",
            rate / verifies,
            rate,
            verifies,
            variant.label()
        );
    }
}
