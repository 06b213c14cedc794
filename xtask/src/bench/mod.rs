//! `cargo xtask bench <target>`: whole-process benchmarks, each figure a ratio against a
//! baseline measured in the same run.
//!
//! Every target lives in its own module beside this one (`validate`; `inac`, `archivist`, …
//! as they land) and shares the helpers here: a release build of `orbi`, a timer that runs a
//! command line several times and keeps the median.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

pub mod validate;

/// Builds the release `orbi` binary and returns its path.
pub fn release_orbi(root: &Path) -> Result<PathBuf, String> {
    println!("building orbi (release)");
    let status = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "orbi-cli",
            "--bin",
            "orbi",
        ])
        .current_dir(root)
        .status()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if !status.success() {
        return Err(format!("cargo build --release failed: {status}"));
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/orbi"))
}

/// One process of a benchmarked tool.
pub struct Invocation {
    /// The command, ready to spawn (stdout and stderr are captured).
    pub command: Command,
    /// Exit codes that mean "ran fine" (validators exit 1 on invalid input).
    pub expected_codes: &'static [i32],
}

impl Invocation {
    /// A validator: exit 0 (all valid) and 1 (some invalid) are both a completed run.
    pub fn validator(command: Command) -> Invocation {
        Invocation {
            command,
            expected_codes: &[0, 1],
        }
    }
}

/// Runs `invocations` in sequence, returning the wall-clock time of the whole sequence and
/// every process's output.
pub fn run_all(invocations: &mut [Invocation]) -> Result<(Duration, Vec<Output>), String> {
    let start = Instant::now();
    let mut outputs = Vec::with_capacity(invocations.len());
    for invocation in invocations.iter_mut() {
        let output = invocation
            .command
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("cannot run {:?}: {err}", invocation.command.get_program()))?;
        let code = output.status.code().unwrap_or(-1);
        if !invocation.expected_codes.contains(&code) {
            return Err(format!(
                "{:?} exited with {code}: {}",
                invocation.command.get_program(),
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        outputs.push(output);
    }
    Ok((start.elapsed(), outputs))
}

/// One warm-up run (not timed: it fills the page cache and Python's bytecode cache), then
/// `runs` timed runs; returns the median and the outputs of the last run.
pub fn measure(
    runs: usize,
    mut invocations: impl FnMut() -> Vec<Invocation>,
) -> Result<(Duration, Vec<Output>), String> {
    run_all(&mut invocations())?;
    let mut times = Vec::with_capacity(runs);
    let mut last = Vec::new();
    for _ in 0..runs.max(1) {
        let (elapsed, outputs) = run_all(&mut invocations())?;
        times.push(elapsed);
        last = outputs;
    }
    times.sort();
    Ok((times[times.len() / 2], last))
}

/// Seconds with three decimals.
pub fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}
