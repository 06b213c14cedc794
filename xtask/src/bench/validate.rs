//! `cargo xtask bench validate`: `orbi schema validate` against ajv-cli and check-jsonschema on
//! a generated corpus, whole process, in the same run.
//!
//! The corpus: `--files` artifacts (default 10,000) drawn round-robin from every artifact
//! strategy of `orbi-types` with a fixed seed, about `--invalid-percent` (default 20) of them
//! broken by one mutation that orbi confirms makes them invalid. Each tool validates the corpus
//! the same way: one process per schema, that schema's files on the command line (ajv takes a
//! glob), every error collected (`--all-errors` for ajv), output captured. orbi is timed both
//! ways: as one process over the whole directory (its natural use: it reads each file's schema
//! from its name, which the references cannot) and like the references, one process per
//! schema. Each figure is the median of `--runs` rounds after one warm-up run; every round runs
//! each tool once, so all of them meet the same machine load. The ratios are the
//! reference's time over orbi's: `P3 ajv_ratio=<x> check_jsonschema_ratio=<y>` against the
//! one-process run, then the same-shape ratios. The tools' verdicts are compared file by file.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use orbi_schema::{Profile, registry, validate_value};
use orbi_types::strategies;
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::TestRunner,
};
use serde_json::{Value, json};

use super::{Contender, Invocation, measure_interleaved, release_orbi, seconds};
use crate::{
    pointer,
    reference::{self, AJV_PACKAGES, CHECK_JSONSCHEMA},
    rng::Rng,
};

/// What to generate and how often to run.
pub struct Options {
    /// Documents in the corpus.
    pub files: usize,
    /// Share of invalid documents, in percent.
    pub invalid_percent: usize,
    /// Timed runs per tool (after one warm-up run).
    pub runs: usize,
    /// Working directory for the corpus and the exported schemas.
    pub work: PathBuf,
    /// Where the reference tools are (or get) installed.
    pub tools: PathBuf,
}

/// One generated document.
struct Document {
    path: PathBuf,
    schema: &'static str,
    valid: bool,
}

/// Runs the benchmark; `Ok(false)` when the tools disagree on a verdict.
pub fn run(root: &Path, options: &Options) -> Result<bool, String> {
    let orbi = release_orbi(root)?;
    let tools = reference::install_tools(&options.tools)?;
    let corpus_dir = options.work.join("corpus");
    let canonical = options.work.join("schemas");
    let resolved = options.work.join("schemas-resolved");
    for dir in [&corpus_dir, &canonical, &resolved] {
        if dir.exists() {
            fs::remove_dir_all(dir)
                .map_err(|err| format!("cannot clear {}: {err}", dir.display()))?;
        }
    }
    export(&orbi, &canonical, false)?;
    export(&orbi, &resolved, true)?;
    let documents = generate(&corpus_dir, options.files, options.invalid_percent)?;
    let by_schema = group(&documents);
    let invalid = documents.iter().filter(|d| !d.valid).count();
    println!(
        "corpus: {} files ({} valid, {invalid} invalid) over {} schemas in {}",
        documents.len(),
        documents.len() - invalid,
        by_schema.len(),
        corpus_dir.display()
    );
    let expected: BTreeSet<String> = documents
        .iter()
        .filter(|d| !d.valid)
        .map(|d| file_name(&d.path))
        .collect();

    let mut contenders: Vec<Contender<'_>> = vec![
        // orbi's natural use: one process, the schema of each file from its name.
        Box::new(|| {
            let mut command = Command::new(&orbi);
            command
                .args(["schema", "validate", "--format", "json"])
                .arg(&corpus_dir);
            vec![Invocation::validator(command)]
        }),
        // orbi the references' way: one process per schema.
        Box::new(|| {
            one_per_schema(&by_schema, |schema, paths| {
                let mut command = Command::new(&orbi);
                command.args(["schema", "validate", "--format", "json", "--schema", schema]);
                command.args(paths);
                command
            })
        }),
        Box::new(|| {
            one_per_schema(&by_schema, |schema, _| {
                let mut command = Command::new(&tools.ajv);
                command.args([
                    "validate",
                    "--spec=draft2020",
                    "-c",
                    "ajv-formats",
                    "--all-errors",
                ]);
                let file = |name: &str| resolved.join(format!("{name}.v1.schema.json"));
                command.arg("-s").arg(file(schema));
                for other in references_of(schema) {
                    command.arg("-r").arg(file(other));
                }
                // ajv-cli expands the glob itself.
                command
                    .arg("-d")
                    .arg(corpus_dir.join(format!("*.{schema}.json")));
                command
            })
        }),
        Box::new(|| {
            one_per_schema(&by_schema, |schema, paths| {
                let mut command = Command::new(&tools.check_jsonschema);
                // The canonical files as committed: the relative bind `$ref` resolves against
                // the working directory.
                command.current_dir(&canonical);
                command.args(["--output-format", "json", "--schemafile"]);
                command.arg(format!("{schema}.v1.schema.json"));
                command.args(paths);
                command
            })
        }),
    ];
    let mut measured = measure_interleaved(options.runs, &mut contenders)?.into_iter();
    let mut next = || measured.next().ok_or("a contender was not measured");
    let (orbi_whole_time, outputs) = next()?;
    let orbi_whole_invalid = orbi_verdicts(&outputs)?;
    let (orbi_time, outputs) = next()?;
    let orbi_invalid = orbi_verdicts(&outputs)?;
    let (ajv_time, outputs) = next()?;
    let ajv_invalid = ajv_verdicts(&outputs);
    let (check_time, outputs) = next()?;
    let check_invalid = check_jsonschema_verdicts(&outputs)?;

    let processes = by_schema.len();
    println!(
        "median of {} interleaved rounds after a warm-up, whole processes, output captured:",
        options.runs
    );
    let rows = [
        (
            "orbi schema validate, 1 process over the corpus".to_owned(),
            orbi_whole_time,
            &orbi_whole_invalid,
        ),
        (
            format!("orbi schema validate, {processes} processes"),
            orbi_time,
            &orbi_invalid,
        ),
        (
            format!(
                "ajv-cli ({}), {processes} processes",
                AJV_PACKAGES.join(" + ")
            ),
            ajv_time,
            &ajv_invalid,
        ),
        (
            format!(
                "check-jsonschema ({}), {processes} processes",
                CHECK_JSONSCHEMA.join(" + ")
            ),
            check_time,
            &check_invalid,
        ),
    ];
    for (label, time, invalid) in &rows {
        println!(
            "  {label:<78} {:>9}  {:>7.1} µs/file  invalid {}",
            seconds(*time),
            time.as_secs_f64() * 1e6 / documents.len() as f64,
            invalid.len()
        );
    }
    let mut agree = true;
    for (tool, verdicts) in [
        ("orbi (one process)", &orbi_whole_invalid),
        ("orbi (per schema)", &orbi_invalid),
        ("ajv-cli", &ajv_invalid),
        ("check-jsonschema", &check_invalid),
    ] {
        let missed: Vec<&String> = expected.difference(verdicts).collect();
        let extra: Vec<&String> = verdicts.difference(&expected).collect();
        if missed.is_empty() && extra.is_empty() {
            println!("  verdicts: {tool} agrees on all {} files", documents.len());
        } else {
            agree = false;
            println!(
                "  verdicts: {tool} DISAGREES: valid for it but not for orbi's library {:?}; \
                 invalid for it only {:?}",
                &missed[..missed.len().min(10)],
                &extra[..extra.len().min(10)]
            );
        }
    }
    let ratio = |reference: std::time::Duration, ours: std::time::Duration| {
        reference.as_secs_f64() / ours.as_secs_f64()
    };
    // The task as a user meets it: orbi validates a mixed corpus in one process (it reads the
    // schema from each file name); the references need one process per schema.
    println!(
        "P3 ajv_ratio={:.1} check_jsonschema_ratio={:.1}",
        ratio(ajv_time, orbi_whole_time),
        ratio(check_time, orbi_whole_time)
    );
    // Like for like: orbi run the references' way, one process per schema.
    println!(
        "same shape ({processes} processes each): ajv_ratio={:.1} check_jsonschema_ratio={:.1}",
        ratio(ajv_time, orbi_time),
        ratio(check_time, orbi_time)
    );
    Ok(agree)
}

fn export(orbi: &Path, out: &Path, resolve_refs: bool) -> Result<(), String> {
    let mut command = Command::new(orbi);
    command.args(["schema", "export", "--out"]).arg(out);
    if resolve_refs {
        command.arg("--resolve-refs");
    }
    let output = command
        .output()
        .map_err(|err| format!("cannot run orbi: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "orbi schema export failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The other schemas `schema` references (ajv needs them passed with `-r`).
fn references_of(schema: &str) -> Vec<&'static str> {
    let Ok(own) = registry().get(schema) else {
        return Vec::new();
    };
    let text = registry().resolve_file_refs(&own.document).to_string();
    registry()
        .all()
        .iter()
        .filter(|other| {
            other.name != own.name && text.contains(&format!("\"$ref\":\"{}", other.id))
        })
        .map(|other| other.name)
        .collect()
}

/// Writes the corpus; every document's verdict is orbi's library verdict.
fn generate(dir: &Path, files: usize, invalid_percent: usize) -> Result<Vec<Document>, String> {
    fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let strategies: Vec<_> = strategies::all()
        .into_iter()
        .filter(|(name, _)| registry().get(name).is_ok())
        .collect();
    if strategies.is_empty() {
        return Err("no artifact strategies".into());
    }
    let mut runner = TestRunner::deterministic();
    let mut rng = Rng::new(0x0b1_be4c_0003);
    let mut documents = Vec::with_capacity(files);
    for index in 0..files {
        let (schema, strategy) = &strategies[index % strategies.len()];
        let mut document = strategy
            .new_tree(&mut runner)
            .map_err(|err| format!("{schema}: {err}"))?
            .current();
        let valid = if rng.below(100) < invalid_percent {
            document = invalidate(schema, &document, &mut rng);
            false
        } else {
            true
        };
        let confirmed = validate_value(schema, &document, Profile::Seed).is_ok();
        if confirmed != valid {
            return Err(format!(
                "{schema} #{index}: generated verdict {valid}, orbi says {confirmed}"
            ));
        }
        let path = dir.join(format!("{index:05}.{schema}.json"));
        let mut text = serde_json::to_vec_pretty(&document).map_err(|err| err.to_string())?;
        text.push(b'\n');
        fs::write(&path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        documents.push(Document {
            path,
            schema,
            valid,
        });
    }
    Ok(documents)
}

/// One mutation that the schema rejects: a member removed, a value of the wrong type, an empty
/// or malformed string, an unexpected member. No edge values on which validators are known to
/// differ (those belong to `cargo xtask conformance`), so every tool should agree.
fn invalidate(schema: &str, original: &Value, rng: &mut Rng) -> Value {
    for _ in 0..1000 {
        let mut document = original.clone();
        let pointers = pointer::all(&document);
        let Some(target) = rng.pick_opt(&pointers).cloned() else {
            break;
        };
        match rng.below(4) {
            0 => {
                let (parent, key) = pointer::split(&target);
                if let Some(Value::Object(map)) = document.pointer_mut(&parent) {
                    map.shift_remove(&key);
                }
            }
            1 => {
                if let Some(slot) = document.pointer_mut(&target) {
                    *slot = match slot {
                        Value::String(_) => json!(12345),
                        Value::Number(_) => json!("12345"),
                        Value::Bool(_) => json!("true"),
                        Value::Object(_) => json!([]),
                        _ => json!({}),
                    };
                }
            }
            2 => {
                if let Some(slot @ Value::String(_)) = document.pointer_mut(&target) {
                    *slot = json!(*rng.pick(&[
                        "",
                        "not valid",
                        "2026-13-01T00:00:00Z",
                        "no-such-word"
                    ]));
                }
            }
            _ => {
                if let Some(map) = document.as_object_mut() {
                    map.insert("unexpected/member".into(), json!(true));
                }
            }
        }
        if validate_value(schema, &document, Profile::Seed).is_err() {
            return document;
        }
    }
    // Every contract requires its version member; without it nothing validates.
    let mut document = original.clone();
    if let Some(map) = document.as_object_mut() {
        map.clear();
    }
    document
}

/// One validator process per schema, made by `command(schema, that schema's files)`.
fn one_per_schema(
    groups: &BTreeMap<&'static str, Vec<PathBuf>>,
    command: impl Fn(&str, &[PathBuf]) -> Command,
) -> Vec<Invocation> {
    groups
        .iter()
        .map(|(schema, paths)| Invocation::validator(command(schema, paths)))
        .collect()
}

fn group(documents: &[Document]) -> BTreeMap<&'static str, Vec<PathBuf>> {
    let mut groups: BTreeMap<&'static str, Vec<PathBuf>> = BTreeMap::new();
    for document in documents {
        groups
            .entry(document.schema)
            .or_default()
            .push(document.path.clone());
    }
    groups
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Files orbi called invalid, from its JSON lines.
fn orbi_verdicts(outputs: &[Output]) -> Result<BTreeSet<String>, String> {
    let mut invalid = BTreeSet::new();
    for output in outputs {
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let verdict: Value =
                serde_json::from_str(line).map_err(|err| format!("orbi output {line:?}: {err}"))?;
            if verdict["valid"] == false {
                invalid.insert(file_name(Path::new(
                    verdict["path"].as_str().unwrap_or_default(),
                )));
            }
        }
    }
    Ok(invalid)
}

/// Files ajv called invalid: it prints `<path> invalid` on stderr.
fn ajv_verdicts(outputs: &[Output]) -> BTreeSet<String> {
    outputs
        .iter()
        .flat_map(|output| {
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .filter_map(|line| {
                    line.strip_suffix(" invalid")
                        .map(|path| file_name(Path::new(path)))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Files check-jsonschema called invalid or could not parse, from its JSON report.
fn check_jsonschema_verdicts(outputs: &[Output]) -> Result<BTreeSet<String>, String> {
    let mut invalid = BTreeSet::new();
    for output in outputs {
        let report: Value = serde_json::from_slice(&output.stdout)
            .map_err(|err| format!("check-jsonschema output: {err}"))?;
        for key in ["errors", "parse_errors"] {
            for error in report[key].as_array().into_iter().flatten() {
                invalid.insert(file_name(Path::new(
                    error["filename"].as_str().unwrap_or_default(),
                )));
            }
        }
    }
    Ok(invalid)
}
