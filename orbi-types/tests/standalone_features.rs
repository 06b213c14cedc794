//! JCS (RFC 8785) serializes the double a number's text denotes, so parsing must round
//! correctly: serde_json's `float_roundtrip`. Tests cannot see a missing feature, because a
//! dev-dependency turns it on for them; the dependency tree of `orbi-types` alone, as an
//! embedder builds it, is checked instead.

use std::process::Command;

#[test]
fn orbi_types_alone_parses_numbers_with_correct_rounding() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--manifest-path", manifest, "-p", "orbi-types"])
        .args([
            "-e",
            "normal,features",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        tree.lines()
            .any(|line| line.starts_with("serde_json feature \"float_roundtrip\"")),
        "serde_json without float_roundtrip in orbi-types' own dependencies:\n{tree}"
    );
}
