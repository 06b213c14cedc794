//! `orbi demo` runs the whole system end to end and every step gets what it expected.

mod common;

use std::{
    io::BufRead,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

#[test]
fn demo_runs_every_step_as_expected_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(["demo", "--format", "json", "--dir"])
        .arg(&work)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let steps: Vec<&Value> = lines
        .iter()
        .filter(|line| line.get("step").is_some())
        .collect();
    let names: Vec<&str> = steps
        .iter()
        .map(|step| step["step"].as_str().unwrap())
        .collect();
    for expected in [
        "nodes",
        "pod session",
        "pod attach",
        "inac push inline",
        "inac push stream 10 MB",
        "inac push again",
        "inac push unknown kind",
        "archivist discover",
        "archivist submit",
        "archivist submit refused",
        "pod detach",
        "schemas",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(steps.iter().all(|step| step["ok"] == true), "{stdout}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["unexpected"], 0);
    assert_eq!(summary["steps"].as_u64(), Some(steps.len() as u64));
    // The refused submission names its reasons.
    let refused = steps
        .iter()
        .find(|step| step["step"] == "archivist submit refused")
        .unwrap();
    assert_eq!(refused["detail"]["refusal/code"], "policy-denied");
    assert!(
        refused["detail"]["message"]
            .as_str()
            .unwrap()
            .contains("scope-not-accepted")
    );
    // With --dir the state stays: two node directories with real configs, SQLite read models,
    // INAC ledgers and recorded decisions.
    for node in ["serving", "client"] {
        assert!(work.join(node).join("node.toml").is_file());
        assert!(work.join(node).join("data/pod.sqlite").is_file());
        assert!(work.join(node).join("data/inac/inac.sqlite").is_file());
    }
    let decisions = std::fs::read_dir(work.join("serving/data/archivist/decisions")).unwrap();
    assert_eq!(
        decisions
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
            .count(),
        2
    );
}

#[test]
fn demo_without_dir_leaves_no_scratch_directory() {
    let child = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The scratch directory is named after the demo's process id.
    let prefix = format!("orbi-demo-{}-", child.id());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Text by default: a line per step, none failed, and a summary that counts them.
    let steps = stdout
        .lines()
        .filter(|line| line.starts_with("ok "))
        .count();
    assert!(
        !stdout.lines().any(|line| line.starts_with("FAIL")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{steps} of {steps} steps as expected")),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The scratch directory holds the nodes' and the participant's private keys: a demo stopped
/// half-way (Ctrl-C, SIGTERM) must remove it as a finished one does, not leave it in the
/// system's temporary directory.
#[test]
fn demo_stopped_half_way_leaves_no_scratch_directory() {
    for signal in ["-INT", "-TERM"] {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_orbi"))
            .arg("demo")
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The first step's line: the scratch directory and both nodes exist.
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "the demo printed nothing");
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = common::wait_within(&mut child, Duration::from_secs(60), ["demo", signal]);
        assert_eq!(
            status.code(),
            Some(2),
            "{signal}: a graceful stop, not the signal's"
        );
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.file_name())
            .collect();
        assert!(left.is_empty(), "{signal}: left behind: {left:?}");
    }
}

/// A reader that went away is not a failure of `orbi`: with stdout or stderr a closed pipe,
/// the exit code is the command's own (no panic, no 101).
#[test]
fn closed_output_pipes_do_not_panic() {
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(["schema", "validate", "/nonexistent/x.inac-control.json"])
        .stderr(closed())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(["demo"])
        .stdout(closed())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "every step behaved, unread");
}

/// `--dir` must be new or empty: a directory holding anything is refused before any node
/// starts, and what it holds is left alone.
#[test]
fn demo_refuses_a_directory_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), b"mine").unwrap();
    let work = dir.path().to_str().unwrap();
    let run = common::run_within(
        dir.path(),
        &["demo", "--dir", work],
        &[],
        Duration::from_secs(60),
    );
    run.assert_usage_error(&[&format!("{work} is not empty")]);
    assert_eq!(run.stdout, "");
    assert_eq!(std::fs::read(dir.path().join("keep.txt")).unwrap(), b"mine");
}

/// `--keep` keeps the scratch directory and says where it is.
#[test]
fn demo_keep_keeps_the_scratch_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::run_within(
        tmp.path(),
        &["demo", "--keep", "--format", "json"],
        &[("TMPDIR", tmp.path())],
        Duration::from_secs(120),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let summary: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    let kept = std::path::PathBuf::from(summary["directory"].as_str().unwrap());
    assert!(kept.starts_with(tmp.path()), "{kept:?}");
    assert!(kept.join("serving/node.toml").is_file(), "{kept:?}");
}
