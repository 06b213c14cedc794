//! `orbi keys` through the real binary.

mod common;

use std::{path::Path, process::Command};

use serde_json::Value;

const K2_SEED: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";
const K2: &str = "z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn";
/// Unpadded base64url of 32 × 0x2a, the secret that must never be printed.
const K2_SECRET: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio";

fn orbi(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn generate_with_seed_is_k2_and_show_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let key = path(dir.path(), "k2.json");
    let (code, stdout, stderr) = orbi(&["keys", "generate", "--out", &key, "--seed", K2_SEED]);
    assert_eq!(code, 0, "{stderr}");
    let identity: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        stdout.ends_with("}\n"),
        "one JSON document and a line feed: {stdout:?}"
    );
    assert_eq!(identity["key/public"], K2);
    assert_eq!(identity["node/id"], format!("node:did:key:{K2}"));
    assert_eq!(
        identity["participant/id"],
        format!("participant:did:key:{K2}")
    );
    assert!(!stdout.contains(K2_SECRET) && !stderr.contains(K2_SECRET));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, shown, _) = orbi(&["keys", "show", &key]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&shown).unwrap(), identity);
    assert!(!shown.contains(K2_SECRET));
}

#[test]
fn generate_refuses_to_overwrite_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let key = path(dir.path(), "node.json");
    assert_eq!(
        orbi(&["keys", "generate", "--out", &key, "--seed", K2_SEED]).0,
        0
    );
    let (code, stdout, stderr) = orbi(&["keys", "generate", "--out", &key]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("already exists"), "{stderr}");
    let (_, shown, _) = orbi(&["keys", "show", &key]);
    assert!(shown.contains(K2), "the original key is intact");
    let (code, stdout, _) = orbi(&["keys", "generate", "--out", &key, "--force"]);
    assert_eq!(code, 0);
    assert!(!stdout.contains(K2));
}

#[test]
fn random_keys_differ() {
    let dir = tempfile::tempdir().unwrap();
    let (_, first, _) = orbi(&["keys", "generate", "--out", &path(dir.path(), "a.json")]);
    let (_, second, _) = orbi(&["keys", "generate", "--out", &path(dir.path(), "b.json")]);
    let first: Value = serde_json::from_str(&first).unwrap();
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_ne!(first["key/public"], second["key/public"]);
}

#[test]
fn bad_seeds_and_files_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = path(dir.path(), "k.json");
    for seed in ["2a", &"zz".repeat(32), &"2a".repeat(33)] {
        let (code, _, stderr) = orbi(&["keys", "generate", "--out", &key, "--seed", seed]);
        assert_eq!(code, 2, "{seed}");
        assert!(stderr.contains("64 hex"), "{stderr}");
    }
    assert!(
        !Path::new(&key).exists(),
        "nothing is written on a bad seed"
    );
    let (code, _, stderr) = orbi(&["keys", "show", &path(dir.path(), "missing.json")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.json"), "{stderr}");
    std::fs::write(&key, "{}").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (code, _, stderr) = orbi(&["keys", "show", &key]);
    assert_eq!(code, 2);
    assert!(stderr.contains("malformed"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = path(dir.path(), "k.json");
    orbi(&["keys", "generate", "--out", &key, "--seed", K2_SEED]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, stderr) = orbi(&["keys", "show", &key]);
    assert_eq!(code, 2);
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

/// A key file that cannot be written whole (RLIMIT_FSIZE, `SIGXFSZ` at its default action as
/// `prlimit --fsize` leaves it; a full disk alike) is an error naming the file: the existing
/// key is kept, and no partial key (part of a secret) is left beside it.
#[cfg(unix)]
#[test]
fn a_key_write_cut_short_leaves_no_partial_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = path(dir.path(), "k.json");
    let (code, _, stderr) = orbi(&["keys", "generate", "--out", &key, "--seed", K2_SEED]);
    assert_eq!(code, 0, "{stderr}");
    let old = std::fs::read(&key).unwrap();
    let names = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let fresh = path(dir.path(), "fresh.json");
    for args in [
        vec!["keys", "generate", "--out", key.as_str(), "--force"],
        vec!["keys", "generate", "--out", fresh.as_str()],
    ] {
        // 100 bytes: the write stops inside the secret.
        let run = common::run_with(dir.path(), &args, |command| {
            common::limit_file_size(command, 100)
        });
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(args[3]), "{}", run.stderr);
        assert_eq!(std::fs::read(&key).unwrap(), old, "the old key is kept");
        assert_eq!(names(), ["k.json"], "{args:?}");
    }
}
