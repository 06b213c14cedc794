//! `orbi schema list|validate|export`: the canonical schemas, offline.
//!
//! `validate` answers one question per document, "does it conform to the schema?", exactly as a
//! JSON Schema 2020-12 validator with format assertion would (deeper checks such as curve
//! points, signatures and digests belong to the domain commands). Exit `0` when every document
//! is valid, `1` when at least one is not (unparseable JSON included), `2` on a usage or I/O
//! error.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
};

use clap::{Subcommand, ValueEnum};
use orbi_schema::{CanonicalSchema, Issue, Profile, SchemaValidator, registry};
use serde_json::{Value, json};

use crate::{
    CliError, Outcome,
    files::{read_bounded, write_atomically},
};

/// The largest document read, from a file or stdin: 16 times the largest control frame, and
/// artifacts are kilobytes. A parsed document can take some 40 times its text in memory (a
/// file of `[0,0,…]`), and each worker thread holds one, so this bounds what one hostile
/// input can claim to some 200 MiB a thread.
pub const MAX_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024;

/// Arguments of `orbi schema`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// List the embedded canonical schemas: name, $id, title.
    List {
        /// Output format: `text` (aligned columns) or `json` (one object per line).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Validate documents against the canonical schemas (structure only).
    ///
    /// PATH is a file, a directory (every *.SCHEMA-NAME.json below it; with --schema, only
    /// that schema's), or `-` for stdin (needs --schema). Without --schema a file's schema
    /// comes from its name: `x.inac-control.json` is an inac-control. Exit 0: all valid;
    /// 1: at least one invalid; 2: usage or I/O error.
    Validate {
        /// Validate every document against this schema (short name, $id or file name).
        #[arg(long)]
        schema: Option<String>,
        /// `seed`: the canonical v1 files as given; `frozen`: pod shapes and signature objects
        /// closed (the upstream freeze).
        #[arg(long, default_value_t = Profile::Seed)]
        profile: Profile,
        /// Output format: `text`, or `json` (one object per document and line:
        /// {"path", "schema", "valid", "errors": [{"instance", "keyword", "message"}]};
        /// a document that could not be read has `"valid": null` and `"unreadable": why`).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Files, directories, or `-` for stdin.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Write the canonical schemas as files `<name>.v1.schema.json`.
    ///
    /// With the seed profile and no --resolve-refs the files are byte for byte the embedded
    /// canonical text; otherwise they are the derived documents, pretty-printed.
    Export {
        /// Directory to write into (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Which shape to write: `seed` (as committed) or `frozen` (derived).
        #[arg(long, default_value_t = Profile::Seed)]
        profile: Profile,
        /// Rewrite references to other schema files into their `$id`, for validators that
        /// cannot resolve a relative reference against a URN (ajv, for one).
        #[arg(long)]
        resolve_refs: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Runs `orbi schema`.
pub fn run(args: Args) -> Result<Outcome, CliError> {
    match args.command {
        SchemaCommand::List { format } => list(format),
        SchemaCommand::Validate {
            schema,
            profile,
            format,
            paths,
        } => validate(schema.as_deref(), profile, format, &paths),
        SchemaCommand::Export {
            out,
            profile,
            resolve_refs,
        } => export(&out, profile, resolve_refs),
    }
}

fn list(format: Format) -> Result<Outcome, CliError> {
    let mut out = Output::new();
    let schemas = registry().all();
    let name_width = schemas.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let id_width = schemas.iter().map(|s| s.id.len()).max().unwrap_or(0);
    for schema in schemas {
        let title = schema
            .document
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match format {
            Format::Text => out.line(format_args!(
                "{:name_width$}  {:id_width$}  {title}",
                schema.name, schema.id
            ))?,
            Format::Json => out.json(&json!({
                "name": schema.name,
                "id": schema.id,
                "file": schema.file_name,
                "title": title,
            }))?,
        }
    }
    out.finish()?;
    Ok(Outcome::Success)
}

/// Where a document comes from.
#[derive(Debug)]
enum Source {
    File(PathBuf),
    Stdin,
}

/// One document to validate and the schema it is held to.
#[derive(Debug)]
struct Job {
    source: Source,
    schema: &'static CanonicalSchema,
}

impl Job {
    fn display(&self) -> String {
        match &self.source {
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "-".into(),
        }
    }

    /// Reads the document into `buffer` (replacing its contents).
    fn read(&self, buffer: &mut Vec<u8>) -> Result<(), String> {
        buffer.clear();
        match &self.source {
            // No size query first: the buffer is reused, so after the first few documents its
            // capacity already fits one and a read costs two system calls, not three.
            Source::File(path) => crate::files::open_regular(path)
                .and_then(|file| read_bounded(file, MAX_DOCUMENT_BYTES, buffer))
                .map_err(|err| format!("cannot read {}: {err}", path.display())),
            Source::Stdin => read_bounded(io::stdin().lock(), MAX_DOCUMENT_BYTES, buffer)
                .map_err(|err| format!("cannot read stdin: {err}")),
        }
    }
}

fn validate(
    schema: Option<&str>,
    profile: Profile,
    format: Format,
    paths: &[PathBuf],
) -> Result<Outcome, CliError> {
    let forced = match schema {
        Some(name) => Some(registry().get(name).map_err(|err| {
            CliError::new(format!("{err}; `orbi schema list` shows the known schemas"))
        })?),
        None => None,
    };
    let jobs = plan(forced, paths)?;
    // Compile every schema in use up front: a defect there is ours, not the documents'.
    let mut validators: HashMap<&str, Arc<SchemaValidator>> = HashMap::new();
    for job in &jobs {
        if !validators.contains_key(job.schema.name) {
            let validator = registry()
                .validator(job.schema.name, profile)
                .map_err(|err| CliError::new(err.to_string()))?;
            validators.insert(job.schema.name, validator);
        }
    }

    let mut out = Output::new();
    let (mut valid, mut invalid, mut unread) = (0usize, 0usize, 0usize);
    judge_all(&jobs, &validators, |job, verdict| {
        let issues: &[Issue] = match verdict {
            Verdict::Unreadable(message) => {
                // Keep going: one unreadable file should not hide the verdicts on the rest.
                // In JSON every document gets its line, so a script sees which ones went unjudged.
                unread += 1;
                if format == Format::Json {
                    out.unreadable(&job.display(), job.schema.name, message)?;
                }
                out.flush()?;
                crate::exit::say(message);
                return Ok(());
            }
            Verdict::Valid => {
                valid += 1;
                &[]
            }
            Verdict::Invalid(issues) => {
                invalid += 1;
                issues
            }
        };
        out.verdict(format, &job.display(), job.schema.name, issues)
    })?;
    if format == Format::Text {
        out.line(format_args!(
            "{} document(s): {valid} valid, {invalid} invalid{}",
            valid + invalid,
            if unread > 0 {
                format!(", {unread} unreadable")
            } else {
                String::new()
            }
        ))?;
    }
    out.finish()?;
    if unread > 0 {
        return Err(CliError::new(format!(
            "{unread} document(s) could not be read"
        )));
    }
    Ok(if invalid == 0 {
        Outcome::Success
    } else {
        Outcome::Refused
    })
}

/// The verdict on one document.
enum Verdict {
    /// It conforms.
    Valid,
    /// It does not (unparseable included); every reason, never empty.
    Invalid(Vec<Issue>),
    /// It could not be read: why.
    Unreadable(String),
}

/// Jobs a worker claims at a time: large enough to keep the shared counter cold, small enough
/// to balance the workers.
const CHUNK: usize = 32;

/// Judges every job on a few worker threads and hands the verdicts to `report` in job order.
///
/// Reading and parsing dominate, and both parallelize; the output stays in command-line order.
/// When `report` fails (stdout closed) the workers stop at their next verdict.
fn judge_all(
    jobs: &[Job],
    validators: &HashMap<&str, Arc<SchemaValidator>>,
    mut report: impl FnMut(&Job, &Verdict) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
        .min(jobs.len().div_ceil(CHUNK))
        .max(1);
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        // Verdicts travel a chunk at a time: one wake-up of the printer per chunk, not per file.
        let (sender, receiver) = mpsc::sync_channel::<(usize, Vec<Verdict>)>(4 * workers);
        for _ in 0..workers {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || {
                let mut buffer = Vec::new();
                loop {
                    let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if start >= jobs.len() {
                        return;
                    }
                    let verdicts = jobs[start..(start + CHUNK).min(jobs.len())]
                        .iter()
                        .map(|job| match validators.get(job.schema.name) {
                            Some(validator) => judge(job, validator, &mut buffer),
                            None => {
                                Verdict::Unreadable(format!("no validator for {}", job.schema.name))
                            }
                        })
                        .collect();
                    if sender.send((start, verdicts)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        let mut waiting: BTreeMap<usize, Vec<Verdict>> = BTreeMap::new();
        let mut due = 0;
        for (start, verdicts) in receiver {
            waiting.insert(start, verdicts);
            while let Some(verdicts) = waiting.remove(&due) {
                for (offset, verdict) in verdicts.iter().enumerate() {
                    report(&jobs[due + offset], verdict)?;
                }
                due += verdicts.len();
            }
        }
        Ok(())
    })
}

/// The most worker threads `validate` starts.
const MAX_WORKERS: usize = 8;

fn judge(job: &Job, validator: &SchemaValidator, buffer: &mut Vec<u8>) -> Verdict {
    if let Err(message) = job.read(buffer) {
        return Verdict::Unreadable(message);
    }
    match validator.check_bytes(buffer) {
        Ok(_) => Verdict::Valid,
        Err(report) => Verdict::Invalid(report.issues()),
    }
}

/// Turns the command line into jobs, or a usage error naming the offending path. Nothing is
/// validated until every path is understood.
fn plan(forced: Option<&'static CanonicalSchema>, paths: &[PathBuf]) -> Result<Vec<Job>, CliError> {
    let mut jobs = Vec::new();
    let mut stdin_seen = false;
    for path in paths {
        if path.as_os_str() == "-" {
            let schema = forced.ok_or_else(|| {
                CliError::new("reading a document from stdin (-) needs --schema NAME")
            })?;
            if std::mem::replace(&mut stdin_seen, true) {
                return Err(CliError::new("stdin (-) can be named only once"));
            }
            jobs.push(Job {
                source: Source::Stdin,
                schema,
            });
            continue;
        }
        let metadata = fs::metadata(path)
            .map_err(|err| CliError::new(format!("cannot read {}: {err}", path.display())))?;
        if metadata.is_dir() {
            let before = jobs.len();
            walk(path, forced, &mut jobs)?;
            if jobs.len() == before {
                let wanted = forced.map_or("<schema-name>", |schema| schema.name);
                return Err(CliError::new(format!(
                    "no documents in {}: files must be named *.{wanted}.json",
                    path.display()
                )));
            }
        } else {
            let schema = match forced {
                Some(schema) => schema,
                None => schema_of(path).ok_or_else(|| {
                    CliError::new(format!(
                        "cannot tell the schema of {}: name it *.<schema-name>.json or pass \
                         --schema",
                        path.display()
                    ))
                })?,
            };
            jobs.push(Job {
                source: Source::File(path.clone()),
                schema,
            });
        }
    }
    Ok(jobs)
}

/// The schema a file's name ends with. The suffix is ASCII, so a name that is not UTF-8
/// before it still names its schema (it must not be skipped as if it named none).
fn schema_of(path: &Path) -> Option<&'static CanonicalSchema> {
    registry().for_file_name(&path.file_name()?.to_string_lossy())
}

/// Every document below `dir` whose name tells its schema (only `forced`'s, when given), in
/// name order. Links to files are followed; links to directories are not, so a link cycle
/// cannot loop.
fn walk(
    dir: &Path,
    forced: Option<&'static CanonicalSchema>,
    jobs: &mut Vec<Job>,
) -> Result<(), CliError> {
    let io_error = |err: io::Error| CliError::new(format!("cannot list {}: {err}", dir.display()));
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(io_error)?
        .collect::<Result<_, _>>()
        .map_err(io_error)?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_error)?;
        if file_type.is_dir() {
            walk(&path, forced, jobs)?;
            continue;
        }
        // A link to a directory is skipped; any other link is a document to read, so a
        // dangling one is reported rather than silently left out.
        if file_type.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let Some(schema) = schema_of(&path) else {
            continue;
        };
        if forced.is_some_and(|forced| forced.name != schema.name) {
            continue;
        }
        jobs.push(Job {
            source: Source::File(path),
            schema,
        });
    }
    Ok(())
}

fn export(out_dir: &Path, profile: Profile, resolve_refs: bool) -> Result<Outcome, CliError> {
    fs::create_dir_all(out_dir).map_err(|err| {
        let why = if out_dir.exists() && !out_dir.is_dir() {
            "it exists and is not a directory".to_owned()
        } else {
            err.to_string()
        };
        CliError::new(format!("cannot create {}: {why}", out_dir.display()))
    })?;
    let mut out = Output::new();
    for schema in registry().all() {
        let text = if profile == Profile::Seed && !resolve_refs {
            schema.text.to_owned()
        } else {
            let mut document = profile.document(schema);
            if resolve_refs {
                document = registry().resolve_file_refs(&document);
            }
            let mut text = serde_json::to_string_pretty(&document)
                .map_err(|err| CliError::new(format!("cannot render {}: {err}", schema.name)))?;
            text.push('\n');
            text
        };
        let path = out_dir.join(schema.file_name);
        write_atomically(&path, text.as_bytes())
            .map_err(|err| CliError::new(format!("cannot write {}: {err}", path.display())))?;
        out.line(format_args!("wrote {}", path.display()))?;
    }
    out.finish()?;
    Ok(Outcome::Success)
}

/// Buffered stdout; a failed write (a closed pipe, a full disk) is an I/O error of the command.
struct Output {
    writer: BufWriter<io::StdoutLock<'static>>,
    /// The line being written, reused.
    line: String,
}

impl Output {
    fn new() -> Self {
        Output {
            writer: BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
            line: String::new(),
        }
    }

    /// Writes one text line; file names and quoted values in it cannot drive the terminal.
    fn line(&mut self, text: std::fmt::Arguments<'_>) -> Result<(), CliError> {
        use std::fmt::Write as _;
        self.line.clear();
        let _ = self.line.write_fmt(text);
        let safe = crate::exit::terminal_safe(&self.line);
        writeln!(self.writer, "{safe}").map_err(write_error)
    }

    fn json(&mut self, value: &Value) -> Result<(), CliError> {
        crate::json_out::write(&mut self.writer, value, false)
            .map_err(|err| write_error(err.into()))?;
        self.writer.write_all(b"\n").map_err(write_error)
    }

    fn verdict(
        &mut self,
        format: Format,
        path: &str,
        schema: &str,
        issues: &[Issue],
    ) -> Result<(), CliError> {
        match format {
            Format::Json => {
                let errors: Vec<Value> = issues
                    .iter()
                    .map(|issue| {
                        json!({
                            "instance": issue.instance,
                            "keyword": issue.keyword,
                            "message": issue.message,
                        })
                    })
                    .collect();
                self.json(&json!({
                    "path": path,
                    "schema": schema,
                    "valid": issues.is_empty(),
                    "errors": errors,
                }))
            }
            Format::Text if issues.is_empty() => self.line(format_args!("{path}: valid")),
            Format::Text => {
                self.line(format_args!(
                    "{path}: invalid {schema}, {} error(s)",
                    issues.len()
                ))?;
                for issue in issues {
                    self.line(format_args!("  {issue}"))?;
                }
                Ok(())
            }
        }
    }

    /// The JSON line of a document that could not be read: not judged, so `valid` is null.
    fn unreadable(&mut self, path: &str, schema: &str, message: &str) -> Result<(), CliError> {
        self.json(&json!({
            "path": path,
            "schema": schema,
            "valid": null,
            "errors": [],
            "unreadable": message,
        }))
    }

    fn flush(&mut self) -> Result<(), CliError> {
        self.writer.flush().map_err(write_error)
    }

    fn finish(mut self) -> Result<(), CliError> {
        self.flush()
    }
}

fn write_error(err: io::Error) -> CliError {
    CliError::new(format!("cannot write to stdout: {err}"))
}
