//! `cargo xtask bench inac`: INAC over QUIC against raw quinn on the same loopback, TLS
//! identity and transport settings, every process separate (release builds).
//!
//! - **P1**: one 1 GiB stream push, `orbi inac push` → `orbi inac serve` (verified, stored,
//!   `Durability::Full`), against a raw quinn stream of the same file whose receiver does the
//!   same durable work (sha256, write, fsync) and against one that discards the bytes. Times
//!   are whole sender processes (start, connect, send, answer); peak RSS (`VmHWM`) of sender
//!   and receiver is sampled from `/proc` every 10 ms.
//! - **P2**: 1 KiB inline pushes, 32 in flight on one connection, into `orbi inac serve`
//!   (`--durability full`, and `relaxed` as a second figure), against raw quinn request/response
//!   pairs of the same sizes. Times are measured inside the load generator. A third contender,
//!   the same INAC server over an in-memory store and ledger (`memory_ratio`), bounds what any
//!   storage work could gain.
//!
//! Each round runs every contender once; each figure is the median of the rounds. The 1 GiB
//! file and every data directory are deleted at the end.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use orbi_types::Sha256Hasher;
use serde_json::Value;

use super::release_orbi;

/// Options of `cargo xtask bench inac`.
pub struct Options {
    /// P1 artifact size in bytes (default 1 GiB).
    pub p1_bytes: u64,
    /// P2 pushes per round.
    pub p2_count: usize,
    /// Rounds (median reported).
    pub rounds: usize,
    /// Working directory.
    pub work: PathBuf,
    /// Run only this figure (`p1` or `p2`).
    pub only: Option<String>,
}

const SERVER_SEED: &str = "4141414141414141414141414141414141414141414141414141414141414141";
/// The same seed as the helper's sender, so that `serve --allow` names it.
const SENDER_SEED: &str = "5252525252525252525252525252525252525252525252525252525252525252";

struct Tools {
    orbi: PathBuf,
    helper: PathBuf,
    work: PathBuf,
}

/// Runs the benchmark; `Ok(true)` when every run completed.
pub fn run(root: &Path, options: &Options) -> Result<bool, String> {
    let orbi = release_orbi(root)?;
    let helper = release_helper(root)?;
    fs::create_dir_all(&options.work).map_err(|e| format!("{}: {e}", options.work.display()))?;
    let tools = Tools {
        orbi,
        helper,
        work: options.work.clone(),
    };
    let server_key = tools.key("r.json", SERVER_SEED)?;
    let sender_key = tools.key("s.json", SENDER_SEED)?;
    let wanted = |figure: &str| options.only.as_deref().is_none_or(|only| only == figure);
    let mut lines = Vec::new();
    if wanted("p1") {
        let file = options.work.join("p1.bin");
        println!("writing {} bytes to {}", options.p1_bytes, file.display());
        let digest = write_p1_file(&file, options.p1_bytes);
        let line =
            digest.and_then(|digest| p1(&tools, &server_key, &sender_key, &file, &digest, options));
        let _ = fs::remove_file(&file);
        lines.push(line?);
    }
    if wanted("p2") {
        lines.push(p2(&tools, &server_key, &sender_key, options)?);
    }
    for line in lines {
        println!("{line}");
    }
    Ok(true)
}

fn release_helper(root: &Path) -> Result<PathBuf, String> {
    println!("building the inac_bench helper (release)");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "orbi-inac",
            "--example",
            "inac_bench",
        ])
        .current_dir(root)
        .status()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if !status.success() {
        return Err(format!("building inac_bench failed: {status}"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/examples/inac_bench"))
}

/// A key file and its node id.
struct Key {
    path: PathBuf,
    node_id: String,
}

impl Tools {
    fn key(&self, name: &str, seed: &str) -> Result<Key, String> {
        let path = self.work.join(name);
        let output = Command::new(&self.orbi)
            .args(["keys", "generate", "--force", "--seed", seed, "--out"])
            .arg(&path)
            .output()
            .map_err(|e| format!("orbi keys: {e}"))?;
        let identity: Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("orbi keys generate printed no identity: {e}"))?;
        Ok(Key {
            path,
            node_id: identity["node/id"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// `orbi inac serve` on a fresh data dir; returns the process and `NODE@ADDR`.
    fn serve(&self, key: &Key, data: &Path, extra: &[&str]) -> Result<Listener, String> {
        let _ = fs::remove_dir_all(data);
        let mut command = Command::new(&self.orbi);
        command
            .args(["inac", "serve", "--listen", "127.0.0.1:0", "--key"])
            .arg(&key.path)
            .arg("--data-dir")
            .arg(data)
            .args(extra);
        Listener::start(command, true)
    }

    fn helper(&self) -> Command {
        Command::new(&self.helper)
    }
}

/// A listening process, its `NODE@ADDR`, and its peak-RSS sampler.
struct Listener {
    child: Child,
    to: String,
    rss: Sampler,
    graceful: bool,
}

impl Listener {
    fn start(mut command: Command, graceful: bool) -> Result<Listener, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
        let mut first = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout)
                .read_line(&mut first)
                .map_err(|e| format!("listener output: {e}"))?;
        }
        let line: Value = serde_json::from_str(&first)
            .map_err(|_| format!("listener printed {first:?} instead of its address"))?;
        let to = format!(
            "{}@{}",
            line["node/id"].as_str().unwrap_or_default(),
            line["listen"].as_str().unwrap_or_default()
        );
        let rss = Sampler::start(child.id());
        Ok(Listener {
            child,
            to,
            rss,
            graceful,
        })
    }

    /// Stops the listener (SIGTERM for `orbi inac serve`, which drains) and returns its peak
    /// RSS in MiB.
    fn stop(mut self) -> f64 {
        let peak = self.rss.peak_mib();
        if self.graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.rss.stop();
        peak
    }
}

/// Samples `/proc/<pid>/status` `VmHWM` (the kernel's own peak) every 10 ms.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<std::sync::atomic::AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (flag, peak) = (stop.clone(), peak_kib.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match vm_hwm_kib(pid) {
                    Some(kib) => {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    None => break,
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler {
            stop,
            peak_kib,
            thread: Some(thread),
        }
    }

    fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client process run to completion: wall time, peak RSS, stdout.
struct Finished {
    wall: Duration,
    rss_mib: f64,
    stdout: String,
}

/// Flushes every dirty page system-wide, so that no contender pays for another's writes.
fn settle_disk() {
    let _ = Command::new("sync").status();
}

fn run_client(mut command: Command) -> Result<Finished, String> {
    settle_disk();
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    let mut sampler = Sampler::start(child.id());
    let output = child
        .wait_with_output()
        .map_err(|e| format!("client: {e}"))?;
    let wall = started.elapsed();
    sampler.stop();
    if !output.status.success() {
        return Err(format!(
            "{:?} exited with {}: {}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(Finished {
        wall,
        rss_mib: sampler.peak_mib(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

fn write_p1_file(path: &Path, size: u64) -> Result<String, String> {
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::io::BufWriter::new(fs::File::create(path).map_err(io)?);
    let mut hasher = Sha256Hasher::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut state = 0x243f_6a88_85a3_08d3u64;
    let mut written = 0u64;
    while written < size {
        for word in chunk.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let n = usize::try_from(size - written).map_or(chunk.len(), |r| r.min(chunk.len()));
        hasher.update(&chunk[..n]);
        file.write_all(&chunk[..n]).map_err(io)?;
        written += n as u64;
    }
    file.flush().map_err(io)?;
    Ok(hasher.finish().as_str().to_owned())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn p1(
    tools: &Tools,
    server_key: &Key,
    sender_key: &Key,
    file: &Path,
    digest: &str,
    options: &Options,
) -> Result<String, String> {
    let data = tools.work.join("p1-data");
    let raw = tools.work.join("p1-raw");
    fs::create_dir_all(&raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    let mb = options.p1_bytes as f64 / 1e6;
    let (mut ours, mut same, mut discard) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sender_rss, mut receiver_rss) = (Vec::new(), Vec::new());
    let (mut raw_sender_rss, mut raw_receiver_rss) = (Vec::new(), Vec::new());
    for round in 0..options.rounds.max(1) {
        println!("P1 round {}", round + 1);
        // Each round starts with another contender, so none always follows the same one.
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => {
                    // INAC: orbi inac push → orbi inac serve.
                    let listener = tools.serve(
                        server_key,
                        &data,
                        &["--allow", &sender_key.node_id, "--accept", "bench.p1.v1"],
                    )?;
                    let mut push = Command::new(&tools.orbi);
                    push.args(["inac", "push", "--key"])
                        .arg(&sender_key.path)
                        .args(["--to", &listener.to, "--schema", "bench.p1.v1"])
                        .args(["--content-type", "application/octet-stream"])
                        .args(["--transfer", "stream", "--digest", digest])
                        .arg(file);
                    let run = run_client(push);
                    let receiver_peak = listener.stop();
                    let run = run?;
                    let answer: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
                    if answer["operation"] != "ingested" {
                        return Err(format!("P1 push answered {}", run.stdout.trim()));
                    }
                    let held = stored_size(&data, digest);
                    let _ = fs::remove_dir_all(&data);
                    if held != Some(options.p1_bytes) {
                        return Err(format!("P1: the store does not hold {digest} ({held:?})"));
                    }
                    ours.push(mb / run.wall.as_secs_f64());
                    sender_rss.push(run.rss_mib);
                    receiver_rss.push(receiver_peak);
                }
                other => {
                    let (mode, rates) = if other == 1 {
                        ("same-work", &mut same)
                    } else {
                        ("discard", &mut discard)
                    };
                    let mut recv = tools.helper();
                    recv.args(["raw-recv", &format!("mode={mode}")])
                        .arg(format!("dir={}", raw.display()));
                    let listener = Listener::start(recv, false)?;
                    let mut send = tools.helper();
                    send.args(["raw-send", &format!("to={}", listener.to)])
                        .arg(format!("file={}", file.display()));
                    let run = run_client(send);
                    let peak = listener.stop();
                    let run = run?;
                    rates.push(mb / run.wall.as_secs_f64());
                    if mode == "same-work" {
                        raw_sender_rss.push(run.rss_mib);
                        raw_receiver_rss.push(peak);
                    }
                }
            }
        }
    }
    let _ = fs::remove_dir_all(&raw);
    let (ours, same, discard) = (median(ours), median(same), median(discard));
    Ok(format!(
        "P1 ratio={:.3} sender_rss_mib={:.1} receiver_rss_mib={:.1} discard_ratio={:.3} \
         ours_mb_s={ours:.0} same_work_mb_s={same:.0} discard_mb_s={discard:.0} \
         raw_sender_rss_mib={:.1} raw_receiver_rss_mib={:.1} bytes={} rounds={}",
        ours / same,
        max(&sender_rss),
        max(&receiver_rss),
        ours / discard,
        max(&raw_sender_rss),
        max(&raw_receiver_rss),
        options.p1_bytes,
        options.rounds.max(1),
    ))
}

/// The size of the object stored under `digest`, if any.
fn stored_size(data: &Path, digest: &str) -> Option<u64> {
    let digest: orbi_types::Sha256Digest = digest.parse().ok()?;
    let bytes = digest.bytes().ok()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let path = data.join("store/objects").join(&hex[..2]).join(&hex[2..]);
    fs::metadata(path).ok().map(|m| m.len())
}

fn p2_rate(finished: &Finished) -> Result<f64, String> {
    let line: Value = serde_json::from_str(finished.stdout.trim())
        .map_err(|_| format!("load generator printed {:?}", finished.stdout))?;
    let elapsed = line["elapsed_s"].as_f64().unwrap_or(f64::INFINITY);
    let count = line["count"].as_f64().unwrap_or(0.0);
    Ok(count / elapsed)
}

fn p2(
    tools: &Tools,
    server_key: &Key,
    sender_key: &Key,
    options: &Options,
) -> Result<String, String> {
    let data = tools.work.join("p2-data");
    let count = options.p2_count.to_string();
    let load = |to: &str, mode: &str| {
        let mut command = tools.helper();
        command
            .args([mode, &format!("to={to}"), &format!("count={count}")])
            .args(["in-flight=32", "size=1024", "schema=bench.p2.v1"]);
        command
    };
    let (mut full, mut relaxed, mut memory, mut echo) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..options.rounds.max(1) {
        println!("P2 round {}", round + 1);
        for (durability, rates) in [("full", &mut full), ("relaxed", &mut relaxed)] {
            let listener = tools.serve(
                server_key,
                &data,
                &[
                    "--allow",
                    &sender_key.node_id,
                    "--accept",
                    "bench.p2.v1",
                    "--durability",
                    durability,
                ],
            )?;
            let run = run_client(load(&listener.to, "p2-push"));
            listener.stop();
            let _ = fs::remove_dir_all(&data);
            rates.push(p2_rate(&run?)?);
        }
        // The same pipeline with nothing stored: how much of the gap storage can close.
        let mut server = tools.helper();
        server.args(["memory-server", "accept=bench.p2.v1"]);
        let listener = Listener::start(server, false)?;
        let run = run_client(load(&listener.to, "p2-push"));
        listener.stop();
        memory.push(p2_rate(&run?)?);
        let mut server = tools.helper();
        server.arg("echo-server");
        let listener = Listener::start(server, false)?;
        let run = run_client(load(&listener.to, "echo-client"));
        listener.stop();
        echo.push(p2_rate(&run?)?);
    }
    let (full, relaxed, memory, echo) =
        (median(full), median(relaxed), median(memory), median(echo));
    Ok(format!(
        "P2 ratio={:.3} durability=full ours_per_s={full:.0} echo_per_s={echo:.0} \
         relaxed_ratio={:.3} relaxed_per_s={relaxed:.0} memory_ratio={:.3} memory_per_s={memory:.0} \
         in_flight=32 size=1024 count={count} rounds={}",
        full / echo,
        relaxed / echo,
        memory / echo,
        options.rounds.max(1),
    ))
}
