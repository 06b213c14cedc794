//! `cargo xtask bench <target>`: whole-process benchmarks, each figure a ratio against a
//! baseline measured in the same run.
//!
//! Every target lives in its own module beside this one (`validate`; `inac`, `archivist`, …
//! as they land) and shares the helpers here: a release build of `orbi`, a timer that runs
//! every contender once per round, several rounds, and keeps each one's median.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

pub mod inac;
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

/// A contender: makes the processes of one timed run.
pub type Contender<'a> = Box<dyn FnMut() -> Vec<Invocation> + 'a>;

/// One warm-up run of each contender (not timed: it fills the page cache and Python's bytecode
/// cache), then `runs` rounds in which every contender runs once, so that all of them meet
/// the same machine load; returns each contender's median and the outputs of its last run.
pub fn measure_interleaved(
    runs: usize,
    contenders: &mut [Contender<'_>],
) -> Result<Vec<(Duration, Vec<Output>)>, String> {
    for contender in contenders.iter_mut() {
        run_all(&mut contender())?;
    }
    let mut times = vec![Vec::with_capacity(runs); contenders.len()];
    let mut last = vec![Vec::new(); contenders.len()];
    for _ in 0..runs.max(1) {
        for (index, contender) in contenders.iter_mut().enumerate() {
            let (elapsed, outputs) = run_all(&mut contender())?;
            times[index].push(elapsed);
            last[index] = outputs;
        }
    }
    Ok(times
        .into_iter()
        .zip(last)
        .map(|(mut times, outputs)| {
            times.sort();
            (times[times.len() / 2], outputs)
        })
        .collect())
}

/// Seconds with three decimals.
pub fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}
