//! orbi's build tool, run as `cargo xtask <command>`.
//!
//! - `schemas check`: the schemas derived from `orbi-types` must be semantically equal to the
//!   canonical files in `schemas/` (exit 1 with every difference otherwise).
//! - `schemas write [--out DIR]`: writes the derived schemas for inspection.
//! - `conformance`: our fixtures validate as their directory says; with `../shared` present,
//!   also our schemas against the upstream canonical files and the upstream examples; with a
//!   reference validator installed, the differential verdict check (`differential`).
//! - `bench validate`: `orbi schema validate` against ajv-cli and check-jsonschema, whole
//!   process, on a generated corpus (`bench::validate`); prints the `P3 …` ratios.
//! - `bench inac`: INAC over QUIC against raw quinn, separate processes (`bench::inac`);
//!   prints the `P1 …` and `P2 …` ratios.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};

mod archivist;
mod bench;
mod conformance;
mod differential;
mod inac_conformance;
mod pod_conformance;
mod pointer;
mod reference;
mod rng;
mod schemas;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "orbi's build tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Schema drift check and export.
    Schemas {
        #[command(subcommand)]
        action: SchemasAction,
    },
    /// Fixtures, and (with ../shared present) upstream schemas and examples; with a reference
    /// validator installed, the differential verdict check. `ORBI_REQUIRE_SHARED=1` makes
    /// missing reference data a failure instead of a skip.
    Conformance {
        /// Rewrite `schemas/examples/invalid-issues.json` from the present verdicts (after a
        /// deliberate change to a fixture or to an issue's wording), instead of checking it.
        #[arg(long)]
        record_issues: bool,
    },
    /// Whole-process benchmarks against reference tools (installed into a scratch directory).
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Subcommand)]
enum BenchTarget {
    /// `orbi schema validate` against ajv-cli and check-jsonschema on a generated corpus.
    Validate {
        /// Documents in the corpus.
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        /// Share of invalid documents, in percent.
        #[arg(long, default_value_t = 20)]
        invalid_percent: usize,
        /// Timed runs per tool, after one warm-up run; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Working directory for the corpus (default: target/bench-validate).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Where the reference tools are installed (default: $ORBI_REFERENCE_TOOLS or
        /// target/reference-tools).
        #[arg(long)]
        tools: Option<PathBuf>,
    },
    /// INAC over QUIC against raw quinn: P1 (1 GiB stream push) and P2 (1 KiB inline pushes,
    /// 32 in flight).
    Inac {
        /// P1 artifact size in bytes.
        #[arg(long, default_value_t = 1 << 30)]
        p1_bytes: u64,
        /// P2 pushes per round.
        #[arg(long, default_value_t = 10_000)]
        p2_count: usize,
        /// Rounds; each figure is the median.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Working directory (default: target/bench-inac).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Run only one figure.
        #[arg(long, value_parser = ["p1", "p2"])]
        only: Option<String>,
    },
}

#[derive(Subcommand)]
enum SchemasAction {
    /// Compare the schemas derived from orbi-types with schemas/*.schema.json.
    Check {
        /// Directory holding the canonical files (default: schemas/).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write the derived schemas to a directory.
    Write {
        /// Output directory (default: target/derived-schemas).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Schemas {
            action: SchemasAction::Check { dir },
        } => schemas::check(&dir.unwrap_or_else(|| root.join("schemas"))),
        Command::Schemas {
            action: SchemasAction::Write { out },
        } => schemas::write(&out.unwrap_or_else(|| root.join("target/derived-schemas"))),
        Command::Conformance { record_issues } => conformance::run(&root, record_issues),
        Command::Bench {
            target:
                BenchTarget::Validate {
                    files,
                    invalid_percent,
                    runs,
                    work,
                    tools,
                },
        } => bench::validate::run(
            &root,
            &bench::validate::Options {
                files,
                invalid_percent,
                runs,
                work: work.unwrap_or_else(|| root.join("target/bench-validate")),
                tools: tools.unwrap_or_else(|| reference::tools_dir(&root)),
            },
        ),
        Command::Bench {
            target:
                BenchTarget::Inac {
                    p1_bytes,
                    p2_count,
                    rounds,
                    work,
                    only,
                },
        } => bench::inac::run(
            &root,
            &bench::inac::Options {
                p1_bytes,
                p2_count,
                rounds,
                work: work.unwrap_or_else(|| root.join("target/bench-inac")),
                only,
            },
        ),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The repository root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A fresh, empty scratch directory for one test (`name` keeps parallel tests apart); the
/// test removes it when done. Tests build their inputs here and never read `../shared`.
#[cfg(test)]
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orbi-xtask-{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::workspace_root;

    /// CI must run the test command README.md gives a newcomer, as README gives it: its
    /// second command line, the one marked "the tests".
    #[test]
    fn ci_runs_the_readme_test_command() {
        let root = workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let command = readme
            .lines()
            .find(|line| line.ends_with("# the tests"))
            .and_then(|line| line.split('#').next())
            .map(str::trim)
            .expect("README.md marks its test command with `# the tests`");
        assert!(command.starts_with("cargo test"), "{command}");
        let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
        assert!(
            ci.lines().any(|line| line.trim() == command),
            ".ci/run does not run README's test command {command:?}"
        );
    }
}
