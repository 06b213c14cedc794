//! `cargo xtask schemas check` as CI runs it: the exit status is the gate (0 no drift, 1 drift,
//! 2 an error), and the default directory is the committed `schemas/`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A scratch copy of the committed canonical schemas (never `../shared`).
fn canonical_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orbi-xtask-cli-{name}-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    for entry in fs::read_dir(root().join("schemas")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".schema.json") {
            fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

#[test]
fn schemas_check_passes_on_the_committed_schemas() {
    let output = xtask(&["schemas", "check"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        stdout(&output).ends_with(&format!(
            "derived schemas match {}\n",
            root().join("schemas").display()
        )),
        "{}",
        stdout(&output)
    );
}

#[test]
fn schemas_check_exits_1_on_drift() {
    let dir = canonical_copy("drift");
    let path = dir.join("participant-bind.v1.schema.json");
    let mut document: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    document["maxProperties"] = 1.into();
    fs::write(&path, document.to_string()).unwrap();
    let output = xtask(&["schemas", "check", "--dir", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stdout(&output)
            .ends_with("schemas check: 1 difference(s): orbi-types and schemas/ have drifted\n"),
        "{}",
        stdout(&output)
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn schemas_check_exits_2_when_a_file_is_missing() {
    let dir = canonical_copy("missing");
    let path = dir.join("inac-control.v1.schema.json");
    fs::remove_file(&path).unwrap();
    let output = xtask(&["schemas", "check", "--dir", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!("error: cannot read {}: ", path.display())),
        "{stderr}"
    );
    fs::remove_dir_all(dir).unwrap();
}
