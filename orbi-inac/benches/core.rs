//! `cargo bench -p orbi-inac --bench core`: the INAC core against baselines doing the same
//! unavoidable work, measured in the same run. Each line prints `ratio = baseline time / our
//! time` (1.0 = no overhead; higher is better), then the absolute figures.
//!
//! - `decode`: a 64 KiB inline push frame through [`Frame::decode`] (strict JSON, schema gate,
//!   typed parse, semantic rules, base64url check) vs `serde_json` parsing it into a `Value`.
//! - `inline-memory`: 1 KiB inline pushes through the whole receiver on in-memory state vs
//!   decoding the frame and hashing the payload.
//! - `inline-durable`: 1 KiB inline pushes through the receiver on [`FsStore`] and
//!   [`SqliteLedger`] vs the same durable work done directly (object file written, fsynced,
//!   renamed, directory fsynced; one SQLite row committed with `synchronous=FULL`).
//! - `inline-relaxed`: the same with [`Durability::Relaxed`] on both sides (no fsync, SQLite
//!   `synchronous=NORMAL`).
//! - `inline-ledger`: 1 KiB inline pushes taken by an acceptor (no object file) with a relaxed
//!   [`SqliteLedger`] vs decoding, hashing and committing one SQLite row (`synchronous=NORMAL`):
//!   the receiver's bookkeeping without the per-object file.
//! - `stream-body`: a 256 MiB stream body fed in 1 MiB chunks through [`IncomingBody`] into
//!   [`FsStore`] and admitted vs sha256 over the same chunks written to a file and fsynced.

use std::{
    fs::{self, File},
    hint::black_box,
    io::Write,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use orbi_inac::{
    BodyEnd, Descriptor, Durability, Frame, FsStore, Handled, KindRegistry, MemoryLedger,
    MemoryStore, Receiver, ReceiverConfig, SqliteLedger, Store,
};
use orbi_types::{KeyPair, NodeId, Sha256Digest, Sha256Hasher, inac::Operation};

const ROUNDS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs `ours` and `baseline` `ROUNDS` times each, alternating which goes first (so neither
/// always inherits the other's page-cache write-back), and returns the medians.
fn compare(
    mut ours: impl FnMut() -> Duration,
    mut baseline: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            a.push(ours());
            b.push(baseline());
        } else {
            b.push(baseline());
            a.push(ours());
        }
    }
    (median(a), median(b))
}

fn report(name: &str, ours: Duration, baseline: Duration, unit: &str, per: f64) {
    let ratio = baseline.as_secs_f64() / ours.as_secs_f64();
    println!(
        "{name} ratio={ratio:.2} ours={:.1}{unit} baseline={:.1}{unit}",
        per / ours.as_secs_f64(),
        per / baseline.as_secs_f64(),
    );
}

fn node_ids() -> (KeyPair, NodeId) {
    (
        KeyPair::from_seed(&[1; 32]),
        KeyPair::from_seed(&[2; 32]).node_id(),
    )
}

fn config(peer: &NodeId) -> ReceiverConfig {
    let mut config = ReceiverConfig::default();
    config.allowed_peers.insert(peer.clone());
    config
}

fn kinds() -> KindRegistry {
    KindRegistry::builder()
        .keep("vendor.blob.v1", None)
        .build()
        .expect("one registration")
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_774_726_920)
}

/// Distinct 1 KiB payloads and their push frames.
fn inline_pushes(count: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..count)
        .map(|n| {
            let mut bytes = vec![b'x'; 1024];
            bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
            let descriptor =
                Descriptor::of_bytes("vendor.blob.v1", "application/octet-stream", &bytes);
            let frame = Frame::push_inline(&descriptor, &bytes)
                .correlation_id(&format!("c-{n}"))
                .idempotency_key(&format!("k-{n}"))
                .build()
                .expect("valid push");
            (bytes, frame.encode())
        })
        .collect()
}

/// Times `pushes` through `receiver`, each answered `ingested`.
fn push_all(receiver: &mut Receiver, peer: &NodeId, pushes: &[(Vec<u8>, Vec<u8>)]) -> Duration {
    let start = Instant::now();
    for (_, frame) in pushes {
        let Handled::Answer(answer) = receiver.handle_bytes(peer, frame, now()) else {
            panic!("inline pushes are answered")
        };
        assert_eq!(answer.operation(), Operation::Ingested);
    }
    start.elapsed()
}

fn bench_decode() {
    let bytes = vec![b'a'; 65_536];
    let descriptor = Descriptor::of_bytes("vendor.blob.v1", "application/octet-stream", &bytes);
    let frame = Frame::push_inline(&descriptor, &bytes)
        .build()
        .expect("valid push")
        .encode();
    let iterations = 300;
    let (ours, baseline) = compare(
        || {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(Frame::decode(black_box(&frame)).expect("valid"));
            }
            start.elapsed()
        },
        || {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(
                    serde_json::from_slice::<serde_json::Value>(black_box(&frame)).expect("json"),
                );
            }
            start.elapsed()
        },
    );
    report("decode", ours, baseline, " frames/s", iterations as f64);
}

fn bench_inline_memory() {
    let (key, peer) = node_ids();
    let pushes = inline_pushes(2000);
    let (ours, baseline) = compare(
        || {
            let mut receiver = Receiver::new(
                key.clone(),
                config(&peer),
                kinds(),
                MemoryStore::new(),
                MemoryLedger::new(),
            );
            push_all(&mut receiver, &peer, &pushes)
        },
        || {
            let start = Instant::now();
            for (bytes, frame) in &pushes {
                let decoded = Frame::decode(frame).expect("valid");
                black_box(Sha256Digest::of(bytes));
                black_box(decoded);
            }
            start.elapsed()
        },
    );
    report(
        "inline-memory",
        ours,
        baseline,
        " pushes/s",
        pushes.len() as f64,
    );
}

fn bench_inline_ledger() {
    let (key, peer) = node_ids();
    let pushes = inline_pushes(5000);
    let taken = KindRegistry::builder()
        .accept("vendor.blob.v1", None, |_: &orbi_inac::Delivery<'_>| {
            orbi_inac::Acceptance::Taken
        })
        .build()
        .expect("one registration");
    let (ours, baseline) = compare(
        || {
            let dir = tempfile::tempdir().expect("tempdir");
            let ledger =
                SqliteLedger::open_with(dir.path().join("inac.sqlite"), Durability::Relaxed)
                    .expect("ledger");
            let mut receiver = Receiver::new(
                key.clone(),
                config(&peer),
                taken.clone(),
                MemoryStore::new(),
                ledger,
            );
            push_all(&mut receiver, &peer, &pushes)
        },
        || {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = rusqlite::Connection::open(dir.path().join("raw.sqlite")).expect("db");
            db.pragma_update(None, "journal_mode", "WAL").expect("wal");
            db.pragma_update(None, "synchronous", "NORMAL")
                .expect("normal");
            db.execute_batch("CREATE TABLE t (digest TEXT PRIMARY KEY, size INTEGER)")
                .expect("table");
            let start = Instant::now();
            for (bytes, frame) in &pushes {
                black_box(Frame::decode(frame).expect("valid"));
                let digest = Sha256Digest::of(bytes);
                db.execute(
                    "INSERT INTO t VALUES (?1, ?2)",
                    rusqlite::params![digest.as_str(), bytes.len() as i64],
                )
                .expect("insert");
            }
            start.elapsed()
        },
    );
    report(
        "inline-ledger",
        ours,
        baseline,
        " pushes/s",
        pushes.len() as f64,
    );
}

fn sync_dir(dir: &Path) {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .expect("sync dir");
}

fn bench_inline_durable(durability: Durability) {
    let (key, peer) = node_ids();
    let full = durability == Durability::Full;
    let pushes = inline_pushes(if full { 200 } else { 2000 });
    let (ours, baseline) = compare(
        || {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = FsStore::open_with(dir.path().join("store"), durability).expect("store");
            let ledger = SqliteLedger::open_with(dir.path().join("inac.sqlite"), durability)
                .expect("ledger");
            let mut receiver = Receiver::new(key.clone(), config(&peer), kinds(), store, ledger);
            push_all(&mut receiver, &peer, &pushes)
        },
        || {
            let dir = tempfile::tempdir().expect("tempdir");
            let objects = dir.path().join("objects");
            fs::create_dir(&objects).expect("objects");
            let db = rusqlite::Connection::open(dir.path().join("raw.sqlite")).expect("db");
            db.pragma_update(None, "journal_mode", "WAL").expect("wal");
            let synchronous = if full { "FULL" } else { "NORMAL" };
            db.pragma_update(None, "synchronous", synchronous)
                .expect("synchronous");
            db.execute_batch("CREATE TABLE t (digest TEXT PRIMARY KEY, size INTEGER)")
                .expect("table");
            let start = Instant::now();
            for (bytes, frame) in &pushes {
                black_box(Frame::decode(frame).expect("valid"));
                let digest = Sha256Digest::of(bytes);
                let path = objects.join(&digest.as_str()[7..]);
                let temp = objects.join("temp.part");
                let mut file = File::create(&temp).expect("create");
                file.write_all(bytes).expect("write");
                if full {
                    file.sync_all().expect("sync");
                }
                fs::rename(&temp, &path).expect("rename");
                if full {
                    sync_dir(&objects);
                }
                db.execute(
                    "INSERT INTO t VALUES (?1, ?2)",
                    rusqlite::params![digest.as_str(), bytes.len() as i64],
                )
                .expect("insert");
            }
            start.elapsed()
        },
    );
    let name = if full {
        "inline-durable"
    } else {
        "inline-relaxed"
    };
    report(name, ours, baseline, " pushes/s", pushes.len() as f64);
}

fn bench_stream_body() {
    const SIZE: usize = 256 << 20;
    const CHUNK: usize = 1 << 20;
    let (key, peer) = node_ids();
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    let mut hasher = Sha256Hasher::new();
    for _ in 0..SIZE / CHUNK {
        hasher.update(&chunk);
    }
    let digest = hasher.finish();
    let descriptor = Descriptor {
        schema: "vendor.blob.v1".into(),
        content_type: "application/octet-stream".into(),
        artifact_id: digest.as_str().into(),
        digest: digest.clone(),
        size_bytes: SIZE as u64,
    };
    let header = Frame::push_stream(&descriptor, "4")
        .build()
        .expect("valid header");
    let (ours, baseline) = compare(
        || {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = FsStore::open(dir.path().join("store")).expect("store");
            let mut receiver = Receiver::new(
                key.clone(),
                config(&peer),
                kinds(),
                store.clone(),
                MemoryLedger::new(),
            );
            let start = Instant::now();
            let Handled::ReadBody(mut body) = receiver.handle(&peer, &header, now()) else {
                panic!("header admitted")
            };
            for _ in 0..SIZE / CHUNK {
                body.write(&chunk).expect("write");
            }
            let answer = receiver.finish_push(body.complete(BodyEnd::Finished), now());
            let elapsed = start.elapsed();
            assert_eq!(answer.operation(), Operation::Ingested);
            assert!(store.contains(&digest).expect("store"));
            elapsed
        },
        || {
            let dir = tempfile::tempdir().expect("tempdir");
            let start = Instant::now();
            let mut file = File::create(dir.path().join("raw")).expect("create");
            let mut hasher = Sha256Hasher::new();
            for _ in 0..SIZE / CHUNK {
                hasher.update(&chunk);
                file.write_all(&chunk).expect("write");
            }
            file.sync_all().expect("sync");
            assert_eq!(hasher.finish(), digest);
            start.elapsed()
        },
    );
    report("stream-body", ours, baseline, " MB/s", SIZE as f64 / 1e6);
}

fn main() {
    let only = std::env::args().nth(1).filter(|arg| !arg.starts_with('-'));
    let benches: [(&str, fn()); 6] = [
        ("decode", bench_decode),
        ("inline-memory", bench_inline_memory),
        ("inline-durable", || bench_inline_durable(Durability::Full)),
        ("inline-relaxed", || {
            bench_inline_durable(Durability::Relaxed)
        }),
        ("inline-ledger", bench_inline_ledger),
        ("stream-body", bench_stream_body),
    ];
    for (name, bench) in benches {
        if only.as_deref().is_none_or(|only| name.contains(only)) {
            bench();
        }
    }
}
