//! `cargo xtask conformance`.
//!
//! Always: every fixture under `schemas/examples/{valid,invalid}` gets the verdict its directory
//! names, and every invalid one the issues recorded for it in `invalid-issues.json`. With the
//! reference data in `../shared` (or `$ORBI_SHARED`), also: our canonical schemas are
//! semantically equal to upstream's on every validation keyword, and upstream's
//! example artifacts get the verdicts their directories name. With a reference validator
//! installed (python-jsonschema with its format checkers, see [`crate::reference`]), also: orbi
//! and the reference give the same verdict on the fixtures, the upstream examples and thousands
//! of mutants of them, up to the reference's documented deviations from the standards.
//! The archivist engine decides upstream's example advertisement as the spec says
//! (`archivist.rs`).

use std::{
    fs,
    path::{Path, PathBuf},
};

use orbi_schema::{Profile, registry, semantic_diff, validate_bytes};
use serde_json::Value;

use crate::{differential, reference};

/// The issues each of our invalid fixtures must be refused with, by file name: an invalid
/// fixture refused for another reason (or not parsed at all) no longer tests its rule.
const EXPECTED_ISSUES: &str = "schemas/examples/invalid-issues.json";

/// Runs every section; `Ok(false)` if any check failed. With `record_issues`, the issues of
/// our invalid fixtures are written to [`EXPECTED_ISSUES`] instead of checked against it.
pub fn run(root: &Path, record_issues: bool) -> Result<bool, String> {
    let mut report = Tally::default();
    let mut fixture_roots = vec![root.join("schemas/examples")];
    let refused = verdicts(&fixture_roots[0], "fixtures", &mut report)?;
    every_schema_has_a_valid_fixture(&fixture_roots[0], &mut report)?;
    let expected_path = root.join(EXPECTED_ISSUES);
    if record_issues {
        let text = serde_json::to_string_pretty(&refused).map_err(|err| err.to_string())? + "\n";
        // Beside it, synced, then renamed over it: a committed file is never left half written.
        let temp = expected_path.with_extension("json.tmp");
        fs::File::create(&temp)
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, text.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| fs::rename(&temp, &expected_path))
            .map_err(|err| format!("cannot write {}: {err}", expected_path.display()))?;
        println!("recorded the issues of {} invalid fixtures", refused.len());
    } else {
        let expected: std::collections::BTreeMap<String, Vec<String>> =
            serde_json::from_value(read_json(&expected_path)?)
                .map_err(|err| format!("{}: {err}", expected_path.display()))?;
        compare_issues(&expected, &refused, &mut report);
    }
    match shared_dir(root, std::env::var_os("ORBI_SHARED").map(PathBuf::from))? {
        Some(shared) => {
            println!("reference data: {}", shared.display());
            upstream_schemas(&shared.join("canonical"), &mut report)?;
            verdicts(
                &shared.join("conformance"),
                "upstream examples",
                &mut report,
            )?;
            fixture_roots.push(shared.join("conformance"));
            report.add(crate::pod_conformance::run(&shared.join("conformance"))?);
            report.add(crate::inac_conformance::run(&shared.join("conformance"))?);
            let checks = crate::archivist::check_upstream(&shared.join("conformance"))?;
            println!(
                "archivist engine: {} checks on upstream advertisements",
                checks.len()
            );
            for check in checks {
                match check {
                    Ok(_) => report.pass(),
                    Err(line) => report.fail(line),
                }
            }
        }
        None if requires_shared(std::env::var_os("ORBI_REQUIRE_SHARED").as_deref()) => {
            return Err(
                "reference data: ../shared not present, and ORBI_REQUIRE_SHARED requires it".into(),
            );
        }
        None => println!("reference data: ../shared not present; upstream checks skipped"),
    }
    let mut references = Vec::new();
    match reference::find_python(root) {
        Some(python) => references.push(differential::Reference::PythonJsonschema(python)),
        None => println!(
            "differential: no python with jsonschema, rfc3339-validator and rfc3987 found (set \
             ORBI_REFERENCE_PYTHON, or run `cargo xtask bench validate` once to install one \
             under target/reference-tools)"
        ),
    }
    match reference::find_check_jsonschema(root) {
        Some(exe) => references.push(differential::Reference::CheckJsonschema(exe)),
        None => println!("differential: no check-jsonschema found (set ORBI_CHECK_JSONSCHEMA)"),
    }
    if references.is_empty() {
        println!("differential: skipped, no reference validator installed");
    } else {
        differential::run(&references, root, &fixture_roots, &mut report)?;
    }
    println!(
        "conformance: {} checks, {} failed",
        report.checks, report.failures
    );
    Ok(report.passed())
}

/// Counts checks and prints each failure.
#[derive(Default)]
pub struct Tally {
    pub(crate) checks: usize,
    pub(crate) failures: usize,
}

impl Tally {
    /// One check passed.
    pub fn pass(&mut self) {
        self.checks += 1;
    }
    /// One check failed; `line` says which and why.
    pub fn fail(&mut self, line: String) {
        self.checks += 1;
        self.failures += 1;
        println!("FAIL {line}");
    }
    /// A section's `(checks, failures)`, counted and printed by the section itself.
    pub fn add(&mut self, (checks, failures): (usize, usize)) {
        self.checks += checks;
        self.failures += failures;
    }
    /// No check failed.
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

/// Whether `ORBI_REQUIRE_SHARED` asks for the reference data: any value but empty or `0`
/// (`1`, `true`, `yes`…).
fn requires_shared(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// The reference data: `named` (`$ORBI_SHARED`), which must then hold it, or `../shared` when
/// present. A `../shared` without its `canonical/` directory is an error, not a silent skip.
fn shared_dir(root: &Path, named: Option<PathBuf>) -> Result<Option<PathBuf>, String> {
    let (dir, named) = match named {
        Some(dir) => (dir, true),
        None => (root.join("../shared"), false),
    };
    if dir.join("canonical").is_dir() {
        Ok(Some(dir))
    } else if named || dir.exists() {
        Err(format!(
            "reference data: {} has no canonical/ directory{}",
            dir.display(),
            if named { " (ORBI_SHARED)" } else { "" }
        ))
    } else {
        Ok(None)
    }
}

/// Each invalid fixture's issues against the recorded ones.
fn compare_issues(
    expected: &std::collections::BTreeMap<String, Vec<String>>,
    refused: &std::collections::BTreeMap<String, Vec<String>>,
    report: &mut Tally,
) {
    for (name, issues) in refused {
        match expected.get(name) {
            Some(wanted) if wanted == issues => report.pass(),
            Some(wanted) => report.fail(format!(
                "{name}: refused with [{}], recorded [{}] in {EXPECTED_ISSUES} (if the change \
                 is deliberate: cargo xtask conformance --record-issues)",
                issues.join("; "),
                wanted.join("; ")
            )),
            None => report.fail(format!(
                "{name}: no issues recorded in {EXPECTED_ISSUES} (cargo xtask conformance \
                 --record-issues)"
            )),
        }
    }
    for name in expected.keys().filter(|name| !refused.contains_key(*name)) {
        report.fail(format!(
            "{name}: recorded in {EXPECTED_ISSUES} but no such invalid fixture"
        ));
    }
}

/// Our schemas against upstream's, keyword by keyword.
fn upstream_schemas(dir: &Path, report: &mut Tally) -> Result<(), String> {
    for ours in registry().all() {
        let path = dir.join(ours.file_name);
        if !path.exists() {
            // Our own contracts (urn:orbi:…) have no upstream counterpart; upstream's must.
            if ours.document["$id"]
                .as_str()
                .is_some_and(|id| id.starts_with("urn:orbiplex:"))
            {
                report.fail(format!(
                    "schemas/{}: upstream's counterpart {} is missing",
                    ours.file_name,
                    path.display()
                ));
            }
            continue;
        }
        let upstream = read_json(&path)?;
        let differences = semantic_diff(&ours.document, &upstream);
        if differences.is_empty() {
            report.pass();
        }
        for difference in differences {
            report.fail(format!(
                "schemas/{} vs upstream {}: {difference}",
                ours.file_name,
                path.display()
            ));
        }
    }
    Ok(())
}

/// Every `*.<schema>.json` under `dir/valid` must validate and under `dir/invalid` must not.
/// Returns each invalid file's issues by file name (a syntax error is one issue).
/// One check per schema in the registry: our `valid/` fixtures hold at least one document of
/// it, so that losing them cannot pass as "0 files checked" (the invalid ones are pinned by
/// [`EXPECTED_ISSUES`]).
fn every_schema_has_a_valid_fixture(dir: &Path, report: &mut Tally) -> Result<(), String> {
    let valid = dir.join("valid");
    let covered: std::collections::BTreeSet<&str> = fs::read_dir(&valid)
        .map_err(|err| format!("cannot list {}: {err}", valid.display()))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| registry().for_file_name(&entry.file_name().to_string_lossy()))
        .map(|schema| schema.name)
        .collect();
    for schema in registry().all() {
        if covered.contains(schema.name) {
            report.pass();
        } else {
            report.fail(format!(
                "{}: no valid fixture of {}",
                valid.display(),
                schema.name
            ));
        }
    }
    Ok(())
}

fn verdicts(
    dir: &Path,
    label: &str,
    report: &mut Tally,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, String> {
    let mut counted = 0;
    let mut refused = std::collections::BTreeMap::new();
    for (expect_valid, sub) in [(true, "valid"), (false, "invalid")] {
        let mut files: Vec<PathBuf> = fs::read_dir(dir.join(sub))
            .map_err(|err| format!("cannot list {}/{sub}: {err}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        for path in files {
            counted += 1;
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let Some(schema) = registry().for_file_name(&file_name) else {
                report.fail(format!("{}: no schema for this file name", path.display()));
                continue;
            };
            let bytes =
                fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            // The same call `orbi schema validate` makes: strict parse, then the schema.
            let errors: Vec<String> = match validate_bytes(schema.name, &bytes, Profile::Seed) {
                Ok(_) => Vec::new(),
                Err(refusal) => refusal.issues().iter().map(ToString::to_string).collect(),
            };
            match (expect_valid, errors.is_empty()) {
                (true, true) | (false, false) => report.pass(),
                (true, false) => report.fail(format!(
                    "{}: expected valid, got {}",
                    path.display(),
                    errors.join("; ")
                )),
                (false, true) => {
                    report.fail(format!("{}: expected invalid, got valid", path.display()))
                }
            }
            if !expect_valid {
                refused.insert(file_name.into_owned(), errors);
            }
        }
    }
    println!("{label}: {counted} files checked in {}", dir.display());
    Ok(refused)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| format!("{} is not json: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{scratch, workspace_root};

    fn fixture(relative: &str) -> Vec<u8> {
        fs::read(workspace_root().join("schemas/examples").join(relative)).unwrap()
    }

    /// File name → issues.
    type Issues<'a> = &'a [(&'a str, &'a [&'a str])];

    fn issues(pairs: Issues) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(name, issues)| {
                let issues = issues.iter().map(|issue| issue.to_string()).collect();
                (name.to_string(), issues)
            })
            .collect()
    }

    /// Each file gets the verdict its directory names: an invalid document under `valid/`, a
    /// valid one under `invalid/` and a name no schema claims each fail one check; files that
    /// are not `.json` are not read. Every invalid file's issues are returned, by name.
    #[test]
    fn fixture_verdicts_follow_their_directory() {
        let dir = scratch("verdicts");
        for sub in ["valid", "invalid"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let push = fixture("valid/push-inline-a0.inac-control.json");
        let missing = fixture("invalid/push-missing-artifact.inac-control.json");
        fs::write(dir.join("valid/a.inac-control.json"), &push).unwrap();
        fs::write(dir.join("valid/b.inac-control.json"), &missing).unwrap();
        fs::write(dir.join("valid/c.no-such-schema.json"), &push).unwrap();
        fs::write(dir.join("valid/notes.txt"), "not json").unwrap();
        fs::write(dir.join("invalid/d.inac-control.json"), &missing).unwrap();
        fs::write(dir.join("invalid/e.inac-control.json"), &push).unwrap();
        let mut tally = Tally::default();
        let refused = verdicts(&dir, "scratch", &mut tally).unwrap();
        assert_eq!((tally.checks, tally.failures), (5, 3));
        assert!(!tally.passed());
        let recorded: BTreeMap<String, Vec<String>> =
            serde_json::from_value(read_json(&workspace_root().join(EXPECTED_ISSUES)).unwrap())
                .unwrap();
        assert_eq!(
            refused,
            BTreeMap::from([
                (
                    "d.inac-control.json".to_owned(),
                    recorded["push-missing-artifact.inac-control.json"].clone()
                ),
                ("e.inac-control.json".to_owned(), Vec::new()),
            ])
        );
        fs::remove_dir_all(dir).unwrap();
    }

    /// Every schema needs a valid fixture of its own: an empty `valid/` fails once per schema,
    /// one fixture covers its schema only.
    #[test]
    fn every_schema_needs_a_valid_fixture() {
        let dir = scratch("coverage");
        fs::create_dir_all(dir.join("valid")).unwrap();
        let schemas = registry().all().len();
        let run = |dir: &Path| {
            let mut tally = Tally::default();
            every_schema_has_a_valid_fixture(dir, &mut tally).unwrap();
            (tally.checks, tally.failures)
        };
        assert_eq!(run(&dir), (schemas, schemas));
        fs::write(
            dir.join("valid/a.inac-control.json"),
            fixture("valid/push-inline-a0.inac-control.json"),
        )
        .unwrap();
        assert_eq!(run(&dir), (schemas, schemas - 1));
        let committed = workspace_root().join("schemas/examples");
        assert_eq!(run(&committed), (schemas, 0), "ours cover every schema");
        fs::remove_dir_all(dir).unwrap();
    }

    /// Recorded issues must match exactly: changed, unrecorded and stale entries each fail.
    #[test]
    fn recorded_issues_must_match_exactly() {
        let cases: [(Issues, Issues, usize); 4] = [
            (&[("a", &["x"])], &[("a", &["x"])], 0),
            (&[("a", &["x"])], &[("a", &["w"])], 1),
            (&[], &[("a", &["x"])], 1),
            (&[("a", &["x"])], &[], 1),
        ];
        for (expected, refused, failures) in cases {
            let mut tally = Tally::default();
            compare_issues(&issues(expected), &issues(refused), &mut tally);
            assert_eq!(
                (tally.checks, tally.failures),
                (1, failures),
                "{expected:?} vs {refused:?}"
            );
        }
    }

    /// The exit status follows the failures, not the checks.
    #[test]
    fn tally_passes_until_one_check_fails() {
        let mut tally = Tally::default();
        assert!(tally.passed());
        tally.pass();
        assert!(tally.passed());
        tally.add((2, 0));
        assert!(tally.passed());
        tally.add((3, 1));
        assert_eq!((tally.checks, tally.failures), (6, 1));
        assert!(!tally.passed());
        tally.fail("one".into());
        tally.pass();
        assert_eq!((tally.checks, tally.failures), (8, 2));
    }

    /// No `../shared`: skipped. A `../shared` or an `ORBI_SHARED` without `canonical/`: an
    /// error that says which.
    #[test]
    fn reference_data_is_found_skipped_or_refused() {
        let base = scratch("shared-dir");
        let root = base.join("repo");
        fs::create_dir_all(&root).unwrap();
        assert_eq!(shared_dir(&root, None), Ok(None));
        let sibling = root.join("../shared");
        fs::create_dir_all(&sibling).unwrap();
        assert_eq!(
            shared_dir(&root, None),
            Err(format!(
                "reference data: {} has no canonical/ directory",
                sibling.display()
            ))
        );
        fs::create_dir_all(sibling.join("canonical")).unwrap();
        assert_eq!(shared_dir(&root, None), Ok(Some(sibling)));
        let named = base.join("elsewhere");
        assert_eq!(
            shared_dir(&root, Some(named.clone())),
            Err(format!(
                "reference data: {} has no canonical/ directory (ORBI_SHARED)",
                named.display()
            ))
        );
        fs::create_dir_all(named.join("canonical")).unwrap();
        assert_eq!(shared_dir(&root, Some(named.clone())), Ok(Some(named)));
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn require_shared_is_any_value_but_empty_or_zero() {
        let asks = |value: Option<&str>| requires_shared(value.map(std::ffi::OsStr::new));
        assert!(!asks(None) && !asks(Some("")) && !asks(Some("0")));
        assert!(asks(Some("1")) && asks(Some("yes")));
    }

    /// Our schemas against an upstream directory: equal files pass, a drifted one and a
    /// missing upstream (`urn:orbiplex:`) counterpart fail; our own contracts need none.
    #[test]
    fn upstream_schemas_compare_every_counterpart() {
        let dir = scratch("upstream-schemas");
        let run = |dir: &Path| {
            let mut tally = Tally::default();
            upstream_schemas(dir, &mut tally).unwrap();
            (tally.checks, tally.failures)
        };
        for schema in registry().all() {
            fs::write(dir.join(schema.file_name), schema.text).unwrap();
        }
        assert_eq!(run(&dir), (8, 0));
        fs::remove_file(dir.join("archival-storage-decision.v1.schema.json")).unwrap();
        assert_eq!(run(&dir), (7, 0));
        fs::remove_file(dir.join("participant-bind.v1.schema.json")).unwrap();
        assert_eq!(run(&dir), (7, 1));
        let path = dir.join("inac-control.v1.schema.json");
        let mut document = read_json(&path).unwrap();
        document["maxProperties"] = 1.into();
        fs::write(&path, document.to_string()).unwrap();
        assert_eq!(run(&dir), (7, 2));
        fs::remove_dir_all(dir).unwrap();
    }
}
