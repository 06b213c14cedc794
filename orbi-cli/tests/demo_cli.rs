//! `orbi demo` runs the whole system end to end and every step gets what it expected.

use std::process::Command;

use serde_json::Value;

#[test]
fn demo_runs_every_step_as_expected_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(["demo", "--dir"])
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
        "session",
        "pod attach",
        "pod recover",
        "inac stream push",
        "archivist free storage",
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
    // With --dir the state stays: the pod read model and the INAC ledger are real files.
    assert!(work.join("pod.sqlite").is_file());
    assert!(work.join("inac/inac.sqlite").is_file());
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
    assert!(String::from_utf8_lossy(&output.stdout).contains(r#""unexpected":0"#));
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
