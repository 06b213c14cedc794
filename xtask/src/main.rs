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

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};

mod bench;
mod conformance;
mod differential;
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
    /// validator installed, the differential verdict check.
    Conformance,
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
        Command::Conformance => conformance::run(&root),
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
