//! `cargo xtask conformance`.
//!
//! Always: every fixture under `schemas/examples/{valid,invalid}` gets the verdict its directory
//! names. With the reference data in `../shared` (or `$ORBI_SHARED`), also: our canonical
//! schemas are semantically equal to upstream's on every validation keyword, upstream's
//! example artifacts get the verdicts their directories name, and the archivist engine decides
//! upstream's example advertisement as the spec says (`archivist.rs`).

use std::{
    fs,
    path::{Path, PathBuf},
};

use orbi_schema::{registry, semantic_diff};
use serde_json::Value;

/// Runs every section; `Ok(false)` if any check failed.
pub fn run(root: &Path) -> Result<bool, String> {
    let mut report = Report::default();
    verdicts(&root.join("schemas/examples"), "fixtures", &mut report)?;
    match shared_dir(root) {
        Some(shared) => {
            println!("reference data: {}", shared.display());
            upstream_schemas(&shared.join("canonical"), &mut report)?;
            verdicts(
                &shared.join("conformance"),
                "upstream examples",
                &mut report,
            )?;
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
        None => println!("reference data: ../shared not present; upstream checks skipped"),
    }
    println!(
        "conformance: {} checks, {} failed",
        report.checks, report.failures
    );
    Ok(report.failures == 0)
}

#[derive(Default)]
struct Report {
    checks: usize,
    failures: usize,
}

impl Report {
    fn pass(&mut self) {
        self.checks += 1;
    }
    fn fail(&mut self, line: String) {
        self.checks += 1;
        self.failures += 1;
        println!("FAIL {line}");
    }
}

fn shared_dir(root: &Path) -> Option<PathBuf> {
    let dir = std::env::var_os("ORBI_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"));
    dir.join("canonical").is_dir().then_some(dir)
}

/// Our schemas against upstream's, keyword by keyword.
fn upstream_schemas(dir: &Path, report: &mut Report) -> Result<(), String> {
    for ours in registry().all() {
        let path = dir.join(ours.file_name);
        if !path.exists() {
            // Our own contracts (urn:orbi:…) have no upstream counterpart.
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
fn verdicts(dir: &Path, label: &str, report: &mut Report) -> Result<(), String> {
    let mut counted = 0;
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
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(schema) = registry()
                .all()
                .iter()
                .find(|schema| file_name.ends_with(&format!(".{}.json", schema.name)))
            else {
                report.fail(format!("{}: no schema for this file name", path.display()));
                continue;
            };
            let validator = registry()
                .compile(schema.name, &schema.document)
                .map_err(|err| err.to_string())?;
            let instance = read_json(&path)?;
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|err| format!("{} {}", err.instance_path(), err))
                .collect();
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
        }
    }
    println!("{label}: {counted} files checked in {}", dir.display());
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| format!("{} is not json: {err}", path.display()))
}
