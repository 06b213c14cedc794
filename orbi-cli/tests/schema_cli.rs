//! `orbi schema list|validate|export`, driven through the real binary.

mod common;

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use orbi_schema::registry;
use serde_json::{Value, json};

fn orbi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(args)
        .output()
        .expect("the orbi binary runs")
}

fn orbi_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the orbi binary runs");
    // A child that refuses its arguments exits without reading: a broken pipe is fine then.
    if let Err(err) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
    }
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// One JSON object per line.
fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples")
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A valid bind from the fixtures.
const BIND: &str = include_str!("../../schemas/examples/valid/k2-signed.participant-bind.json");

#[test]
fn list_names_every_embedded_schema() {
    let output = orbi(&["schema", "list", "--format", "json"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let listed = json_lines(&output);
    assert_eq!(listed.len(), registry().all().len());
    for (entry, schema) in listed.iter().zip(registry().all()) {
        assert_eq!(entry["name"], schema.name);
        assert_eq!(entry["id"], schema.id.as_str());
        assert_eq!(entry["file"], schema.file_name);
    }
    let text = stdout(&orbi(&["schema", "list"]));
    for schema in registry().all() {
        assert!(
            text.lines()
                .any(|line| line.starts_with(schema.name) && line.contains(&schema.id)),
            "{text}"
        );
    }
}

/// Every fixture gets the verdict its directory names, and the exit code follows.
#[test]
fn fixture_directories_get_their_verdicts_and_exit_codes() {
    let valid = orbi(&[
        "schema",
        "validate",
        "--format",
        "json",
        arg(&examples().join("valid")),
    ]);
    assert_eq!(code(&valid), 0, "{}", stdout(&valid));
    let valid_lines = json_lines(&valid);
    assert!(valid_lines.iter().all(|line| line["valid"] == true));

    let invalid = orbi(&[
        "schema",
        "validate",
        "--format",
        "json",
        arg(&examples().join("invalid")),
    ]);
    assert_eq!(code(&invalid), 1);
    let invalid_lines = json_lines(&invalid);
    for line in &invalid_lines {
        assert_eq!(line["valid"], false, "{line}");
        assert!(!line["errors"].as_array().unwrap().is_empty(), "{line}");
    }

    // Both directories at once: one object per file, in order, and exit 1.
    let both = orbi(&["schema", "validate", "--format", "json", arg(&examples())]);
    assert_eq!(code(&both), 1);
    let count = |dir: &str| fs::read_dir(examples().join(dir)).unwrap().count();
    assert_eq!(json_lines(&both).len(), count("valid") + count("invalid"));
    assert_eq!(valid_lines.len(), count("valid"));
    assert_eq!(invalid_lines.len(), count("invalid"));
}

#[test]
fn json_output_has_the_fixed_shape_and_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three-problems.participant-bind.json");
    let mut document: Value = serde_json::from_str(BIND).unwrap();
    document["schema/v"] = json!(2);
    document["bound-at"] = json!("2026-03-28 19:20");
    document.as_object_mut().unwrap().remove("session/id");
    fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();

    let output = orbi(&["schema", "validate", "--format", "json", arg(&path)]);
    assert_eq!(code(&output), 1);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    let keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["path", "schema", "valid", "errors"]);
    assert_eq!(line["path"], arg(&path));
    assert_eq!(line["schema"], "participant-bind");
    assert_eq!(line["valid"], false);
    let errors = line["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{line}");
    for error in errors {
        let keys: Vec<&str> = error
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["instance", "keyword", "message"]);
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(|c: char| !c.is_uppercase()),
            "{message}"
        );
    }
    let by_instance = |pointer: &str| {
        errors
            .iter()
            .find(|e| e["instance"] == pointer)
            .unwrap_or_else(|| panic!("no error at {pointer}: {line}"))
    };
    assert_eq!(
        by_instance("/schema~1v")["keyword"],
        "/properties/schema~1v/const"
    );
    assert_eq!(by_instance("/schema~1v")["message"], "must be 1, found 2");
    assert_eq!(
        by_instance("/bound-at")["keyword"],
        "/properties/bound-at/format"
    );
    assert_eq!(
        by_instance("")["message"],
        "missing required property \"session/id\""
    );

    // The text format names the same places.
    let text = stdout(&orbi(&["schema", "validate", arg(&path)]));
    assert!(
        text.contains(": invalid participant-bind, 3 error(s)"),
        "{text}"
    );
    assert!(
        text.contains("  /schema~1v: must be 1, found 2 [/properties/schema~1v/const]"),
        "{text}"
    );
    assert!(
        text.ends_with("1 document(s): 0 valid, 1 invalid\n"),
        "{text}"
    );
}

#[test]
fn text_verdicts_cannot_drive_the_terminal() {
    // A file name and a quoted value that would set the window title and reverse the text.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x\u{1b}]0;owned\u{7}.inac-control.json");
    fs::write(
        &path,
        "{\"schema\": \"inac-control.v1\", \"operation\": \"\u{202e}\u{9b}2J\"}",
    )
    .unwrap();
    let output = orbi(&["schema", "validate", arg(&path)]);
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    assert!(
        text.contains("x\\u{1b}]0;owned\\u{7}.inac-control.json: invalid"),
        "{text}"
    );
    assert!(text.contains("\\u{202e}\\u{9b}2J"), "{text}");
    assert!(
        !text.contains(['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}']),
        "{text:?}"
    );
    // In JSON the same characters are \u escapes, and the values are intact.
    let output = orbi(&["schema", "validate", "--format", "json", arg(&path)]);
    let text = stdout(&output);
    assert!(
        text.contains(r"x\u001b]0;owned\u0007.inac-control.json"),
        "{text}"
    );
    assert!(
        !text.contains(['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}']),
        "{text:?}"
    );
    assert_eq!(json_lines(&output)[0]["path"], arg(&path));
}

#[test]
fn unparseable_json_is_invalid_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.inac-control.json");
    fs::write(
        &path,
        "{\n  \"schema\": \"inac-control.v1\",\n  \"operation\": }\n",
    )
    .unwrap();
    let output = orbi(&["schema", "validate", "--format", "json", arg(&path)]);
    assert_eq!(code(&output), 1);
    let line = &json_lines(&output)[0];
    assert_eq!(line["valid"], false);
    assert_eq!(line["errors"][0]["instance"], "");
    let message = line["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid json at line 3 column 16: "),
        "{message}"
    );

    fs::write(&path, r#"{"schema": "inac-control.v1", "schema": "x"}"#).unwrap();
    let output = orbi(&["schema", "validate", "--format", "json", arg(&path)]);
    assert_eq!(code(&output), 1);
    let message = json_lines(&output)[0]["errors"][0]["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains("duplicate key \"schema\""),
        "{message}"
    );
}

#[test]
fn the_schema_comes_from_the_suffix_or_from_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let anonymous = dir.path().join("bind.json");
    fs::write(&anonymous, BIND).unwrap();

    let output = orbi(&["schema", "validate", arg(&anonymous)]);
    assert_eq!(code(&output), 2);
    let message = stderr(&output);
    assert!(message.contains("cannot tell the schema of"), "{message}");
    assert!(message.contains(arg(&anonymous)), "{message}");
    assert!(
        stdout(&output).is_empty(),
        "nothing is validated after a usage error"
    );

    for schema in [
        "participant-bind",
        "urn:orbiplex:schema:participant-bind:v1",
        "participant-bind.v1.schema.json",
    ] {
        let output = orbi(&["schema", "validate", "--schema", schema, arg(&anonymous)]);
        assert_eq!(code(&output), 0, "{schema}: {}", stderr(&output));
    }
    // The flag overrides the suffix: a bind is not an inac-control frame.
    let named = dir.path().join("x.participant-bind.json");
    fs::write(&named, BIND).unwrap();
    let output = orbi(&[
        "schema",
        "validate",
        "--schema",
        "inac-control",
        arg(&named),
    ]);
    assert_eq!(code(&output), 1);

    let output = orbi(&["schema", "validate", "--schema", "nope", arg(&named)]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("unknown schema \"nope\""));
}

#[test]
fn stdin_needs_a_schema() {
    let output = orbi_with_stdin(&["schema", "validate", "-"], BIND.as_bytes());
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("needs --schema"),
        "{}",
        stderr(&output)
    );

    let args = [
        "schema",
        "validate",
        "--schema",
        "participant-bind",
        "--format",
        "json",
        "-",
    ];
    let output = orbi_with_stdin(&args, BIND.as_bytes());
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        json_lines(&output),
        [json!({"path": "-", "schema": "participant-bind", "valid": true, "errors": []})]
    );
    let output = orbi_with_stdin(&args, b"[1, 2");
    assert_eq!(code(&output), 1);
    // Stdin is bounded as a file is, to the byte: 4 MiB of padding is read, one more is not.
    let mut padded = BIND.as_bytes().to_vec();
    padded.resize(4 * 1024 * 1024, b' ');
    let output = orbi_with_stdin(&args, &padded);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    padded.push(b' ');
    let output = orbi_with_stdin(&args, &padded);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("cannot read stdin: larger than the 4194304-byte limit"),
        "{}",
        stderr(&output)
    );
    // One stdin, read once.
    let output = orbi_with_stdin(
        &[
            "schema",
            "validate",
            "--schema",
            "participant-bind",
            "-",
            "-",
        ],
        BIND.as_bytes(),
    );
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("stdin (-) can be named only once"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "");
}

#[test]
fn the_frozen_profile_closes_the_pod_shapes() {
    let open_shape = examples().join("valid/open-shape-unknown-fields.participant-bind.json");
    assert_eq!(code(&orbi(&["schema", "validate", arg(&open_shape)])), 0);
    let output = orbi(&[
        "schema",
        "validate",
        "--profile",
        "frozen",
        "--format",
        "json",
        arg(&open_shape),
    ]);
    assert_eq!(code(&output), 1);
    let errors = json_lines(&output)[0]["errors"].clone();
    assert!(
        errors.as_array().unwrap().iter().all(|e| e["keyword"]
            .as_str()
            .unwrap()
            .ends_with("additionalProperties")),
        "{errors}"
    );
    let output = orbi(&[
        "schema",
        "validate",
        "--profile",
        "closed",
        arg(&open_shape),
    ]);
    assert_eq!(code(&output), 2);
}

#[test]
fn directories_are_walked_recursively_by_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    fs::create_dir_all(&nested).unwrap();
    fs::write(nested.join("deep.participant-bind.json"), BIND).unwrap();
    fs::write(dir.path().join("top.participant-bind.json"), BIND).unwrap();
    fs::write(dir.path().join("notes.json"), "not even json").unwrap();
    fs::write(dir.path().join("readme.txt"), "ignored").unwrap();

    let output = orbi(&["schema", "validate", "--format", "json", arg(dir.path())]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let paths: Vec<String> = json_lines(&output)
        .iter()
        .map(|line| line["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths[0].ends_with("a/b/deep.participant-bind.json"));
    assert!(paths[1].ends_with("top.participant-bind.json"));

    // With --schema, only that schema's documents are picked.
    let output = orbi(&[
        "schema",
        "validate",
        "--schema",
        "inac-control",
        arg(dir.path()),
    ]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("files must be named *.inac-control.json"));

    // A link to a directory is not walked, nor judged as a document, whatever its name.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path(), nested.join("loop.participant-bind.json")).unwrap();
        let output = orbi(&["schema", "validate", "--format", "json", arg(dir.path())]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        assert_eq!(json_lines(&output).len(), 2, "{}", stdout(&output));
    }

    let empty = tempfile::tempdir().unwrap();
    let output = orbi(&["schema", "validate", arg(empty.path())]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("no documents in"));
}

#[test]
fn io_errors_exit_2_after_judging_the_rest() {
    let output = orbi(&["schema", "validate", "/nonexistent/x.inac-control.json"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("cannot read /nonexistent/x.inac-control.json"));

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.participant-bind.json"), BIND).unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("gone"),
        dir.path().join("b.participant-bind.json"),
    )
    .unwrap();
    let output = orbi(&["schema", "validate", "--format", "json", arg(dir.path())]);
    assert_eq!(code(&output), 2);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2, "one line per document");
    assert_eq!(lines[0]["valid"], true, "the readable document is judged");
    assert_eq!(lines[1]["valid"], Value::Null);
    assert!(
        lines[1]["path"]
            .as_str()
            .is_some_and(|path| path.ends_with("b.participant-bind.json")),
        "{}",
        lines[1]
    );
    assert!(
        lines[1]["unreadable"]
            .as_str()
            .is_some_and(|why| why.starts_with("cannot read ")),
        "{}",
        lines[1]
    );
    assert!(
        stderr(&output).contains("b.participant-bind.json"),
        "{}",
        stderr(&output)
    );
    // In text the summary counts the unread document apart from the judged ones.
    let output = orbi(&["schema", "validate", arg(dir.path())]);
    assert_eq!(code(&output), 2);
    assert!(
        stdout(&output).ends_with("1 document(s): 1 valid, 0 invalid, 1 unreadable\n"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("1 document(s) could not be read"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_name_that_is_not_utf8_is_judged_by_its_suffix() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("good.participant-bind.json"), BIND).unwrap();
    let bad = dir.path().join(std::ffi::OsStr::from_bytes(
        b"bad\xff.participant-bind.json",
    ));
    fs::write(&bad, b"not json").unwrap();
    let output = orbi(&["schema", "validate", arg(dir.path())]);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    assert!(
        stdout(&output).contains("2 document(s): 1 valid, 1 invalid"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn hostile_documents_cost_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // Over the document limit: refused unread.
    let big = dir.path().join("big.inac-control.json");
    fs::write(&big, vec![b' '; 4 * 1024 * 1024 + 1]).unwrap();
    let output = orbi(&["schema", "validate", arg(&big)]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("larger than"),
        "{}",
        stderr(&output)
    );
    // A million wrong items: one issue saying so, not a million built in memory.
    let many = dir.path().join("many.archivist-advertisement.json");
    let items = vec!["0"; 1_000_000].join(",");
    fs::write(&many, format!("{{\"accepted/scopes\":[{items}]}}")).unwrap();
    let output = orbi(&["schema", "validate", "--format", "json", arg(&many)]);
    assert_eq!(code(&output), 1);
    let lines = json_lines(&output);
    let errors = lines[0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", errors.len());
    assert!(
        errors[0].to_string().contains("too many to list"),
        "{}",
        errors[0]
    );
    // Fewer, each listed up to a hundred and the rest counted.
    let some = dir.path().join("some.archivist-advertisement.json");
    let items = vec!["0"; 1_000].join(",");
    fs::write(&some, format!("{{\"accepted/scopes\":[{items}]}}")).unwrap();
    let output = orbi(&["schema", "validate", "--format", "json", arg(&some)]);
    let lines = json_lines(&output);
    let errors = lines[0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 101, "{}", errors.len());
    assert!(
        errors[100].to_string().contains("more issues, not listed"),
        "{}",
        errors[100]
    );
}

#[test]
fn export_onto_a_file_says_it_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    fs::write(&file, b"keep").unwrap();
    let output = orbi(&["schema", "export", "--out", arg(&file)]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("exists and is not a directory"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fs::read(&file).unwrap(), b"keep");
}

#[test]
fn export_writes_the_canonical_files_byte_for_byte() {
    let out = tempfile::tempdir().unwrap();
    let output = orbi(&["schema", "export", "--out", arg(out.path())]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let canonical = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    for schema in registry().all() {
        let exported = fs::read(out.path().join(schema.file_name)).unwrap();
        assert_eq!(
            exported,
            fs::read(canonical.join(schema.file_name)).unwrap()
        );
    }
    assert_eq!(stdout(&output).lines().count(), registry().all().len());

    let frozen = tempfile::tempdir().unwrap();
    let args = [
        "schema",
        "export",
        "--profile",
        "frozen",
        "--resolve-refs",
        "--out",
    ];
    let output = orbi(&[&args[..], &[arg(frozen.path())]].concat());
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let read = |name: &str| -> Value {
        serde_json::from_slice(&fs::read(frozen.path().join(name)).unwrap()).unwrap()
    };
    let attachment = read("client-instance-attachment.v1.schema.json");
    assert_eq!(attachment["additionalProperties"], false);
    assert_eq!(
        attachment["properties"]["participant-bind"]["$ref"],
        "urn:orbiplex:schema:participant-bind:v1"
    );
    let bind = read("participant-bind.v1.schema.json");
    assert_eq!(bind["$defs"]["signature"]["additionalProperties"], false);
    // --resolve-refs applies to the seed profile too: the reference becomes its $id.
    let seed = tempfile::tempdir().unwrap();
    let output = orbi(&[
        "schema",
        "export",
        "--resolve-refs",
        "--out",
        arg(seed.path()),
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let seeded: Value = serde_json::from_slice(
        &fs::read(
            seed.path()
                .join("client-instance-attachment.v1.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        seeded["properties"]["participant-bind"]["$ref"],
        "urn:orbiplex:schema:participant-bind:v1"
    );
    // Schemas the freeze does not touch keep their shape.
    assert_eq!(
        read("inac-control.v1.schema.json"),
        registry().get("inac-control").unwrap().document
    );
}

/// Documents are judged on several threads; the verdicts still come out in path order, each
/// with its own verdict.
#[test]
fn many_documents_keep_their_order_and_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let broken = BIND.replace("\"schema/v\": 1", "\"schema/v\": 2");
    for index in 0..300 {
        let text = if index % 7 == 3 { &broken } else { BIND };
        fs::write(
            dir.path().join(format!("{index:03}.participant-bind.json")),
            text,
        )
        .unwrap();
    }
    let output = orbi(&["schema", "validate", "--format", "json", arg(dir.path())]);
    assert_eq!(code(&output), 1);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 300);
    for (index, line) in lines.iter().enumerate() {
        let expected = format!("{index:03}.participant-bind.json");
        assert!(
            line["path"].as_str().unwrap().ends_with(&expected),
            "{line}"
        );
        assert_eq!(line["valid"], index % 7 != 3, "{line}");
    }
}

/// An export whose files cannot be written whole (RLIMIT_FSIZE with `SIGXFSZ` at its default
/// action, as `prlimit --fsize` leaves it; a full disk alike) is an error naming the file, and
/// leaves each file as it was or whole, with no temporary file beside them.
#[cfg(unix)]
#[test]
fn an_export_cut_short_leaves_no_temporary_file() {
    let out = tempfile::tempdir().unwrap();
    let output = orbi(&["schema", "export", "--out", arg(out.path())]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let before: Vec<(String, Vec<u8>)> = registry()
        .all()
        .iter()
        .map(|schema| {
            let name = schema.file_name.to_owned();
            let bytes = fs::read(out.path().join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    // 3000 bytes: some schemas fit, most do not.
    let run = common::run_with(
        out.path(),
        &["schema", "export", "--profile", "frozen", "--out", "."],
        |command| common::limit_file_size(command, 3000),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot write"), "{}", run.stderr);
    let mut names: Vec<String> = fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = before.iter().map(|(name, _)| name.clone()).collect();
    expected.sort();
    assert_eq!(names, expected, "no temporary file stays");
    for (name, old) in &before {
        let now = fs::read(out.path().join(name)).unwrap();
        assert!(
            &now == old || serde_json::from_slice::<Value>(&now).is_ok(),
            "{name} is neither the old file nor a whole new one"
        );
    }
}
