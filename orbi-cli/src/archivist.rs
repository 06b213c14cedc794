//! `orbi archivist`: advertisement lints, storage matching and the expiry clock.
//!
//! - `lint FILE...`: schema validity and lints per advertisement. Exit 1 if any is invalid
//!   (with `--strict`, also if any has a lint).
//! - `match --request FILE ADVERTISEMENT...`: ranked decisions with every reason, the excluded
//!   advertisements with theirs, and the replication set. Exit 0 if the replication set places
//!   every requested copy with archivists that accept or can negotiate, 1 otherwise (a
//!   decision may refuse the whole count while the set splits it, TV-13). Without
//!   `--gates-passed`, a `federation-vault` or `public-vault` request is refused
//!   `curation-missing` (stage 2 fails closed, as the archivist node decides).
//! - `expiry --accepted-at T ...`: hard, idle and effective expiry. Exit 1 if expired at
//!   `--now`.
//!
//! An advertisement file holds one advertisement or a JSON array of them (a cache dump).
//! `--format json` prints one JSON document; the default text explains each decision stage by
//! stage. Unreadable files and malformed arguments exit 2.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use clap::{Subcommand, ValueEnum};
use orbi_archivist::{
    Access, Advertisement, Decision, ExpiryClock, ExpiryStatus, InvalidAdvertisement, Lint,
    MatchReport, Policy, PreparedRequest, Recorded, RetrievalStatus, explain, match_request,
};
use orbi_types::{
    ArchivalStorageRequest, Timestamp, archival::ExclusionCode, json::from_slice_strict,
};
use serde_json::{Value, json};

use crate::{CliError, Outcome};

/// The largest input file read (over ten thousand compact advertisements of the upstream
/// example's size, as many as one command reads); larger ones are refused unread. A parsed
/// file can take some 40 times its text in memory, so this bounds one file's cost.
const MAX_INPUT_BYTES: u64 = 8 * 1024 * 1024;

/// The most advertisements one command reads, over all its files: a file of a million empty
/// objects must not become a million reports.
const MAX_ADVERTISEMENTS: usize = 10_000;

/// The most issues kept for one invalid advertisement (then a count of the rest), so that
/// ten thousand invalid ones cost megabytes, not a gigabyte.
const MAX_ISSUES_KEPT: usize = 20;

/// Arguments of `orbi archivist`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Push a storage request to an archivist node over INAC and print its decision.
    ///
    /// Exit 0 when accepted (`ingested`), 1 when refused (`policy-denied` with the decision's
    /// reason codes, or bytes it already held for another requester), 2 on a usage, I/O or
    /// connection error (also when the push was answered but its decision could not be had:
    /// the connection failed, the archivist served something else, or did not serve the
    /// decision of a request it just stored; the outcome is unknown, and the printed answer
    /// says how far it got).
    Submit(crate::node::client::SubmitArgs),
    /// Fetch archivists' advertisements over INAC, ranked for a request when one is given
    /// (advertisements left out by stage 0b follow, with status `excluded` and their code).
    Discover(crate::node::client::DiscoverArgs),
    /// Check advertisements: schema validity and lints. Exits 1 when one is invalid (or,
    /// with --strict, has a lint). Reads at most 10 000 advertisements, 8 MiB a file.
    Lint {
        /// Advertisement files (one advertisement or an array each).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Count lints as failures.
        #[arg(long)]
        strict: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Match a storage request against advertisements: ranked decisions with every reason.
    /// Exits 0 when the replication plan places every copy the request asks for, else 1.
    Match(MatchArgs),
    /// Compute the expiry of a stored package. Exits 0 while it is live, 1 once expired.
    Expiry(ExpiryArgs),
}

#[derive(clap::Args)]
struct MatchArgs {
    /// The archival-storage-request.v1 file.
    #[arg(long)]
    request: PathBuf,
    /// The archival-package.v1 file the request references (checks stages 1b and 1c and that
    /// the request copies it faithfully).
    #[arg(long)]
    package: Option<PathBuf>,
    /// The evaluation instant (RFC 3339); default: the system clock.
    #[arg(long)]
    now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exclude advertisements older than this many seconds (default: no age limit).
    #[arg(long)]
    max_age_sec: Option<u64>,
    /// Exclude advertisements dated further ahead than this many seconds.
    #[arg(long, default_value_t = Policy::default().max_future_skew_sec)]
    max_skew_sec: u64,
    /// Refuse, instead of noting, a retrieval mode narrower than the scope.
    #[arg(long)]
    strict_mode_fit: bool,
    /// Use at least this many distinct archivists for a replicated package (2 for high value).
    #[arg(long, default_value_t = 1)]
    min_distinct_archivists: u64,
    /// Consider only this archivist (`archivist/node-id`); repeatable. Without it, every
    /// archivist not denied is considered.
    #[arg(long = "allow-archivist")]
    allow_archivists: Vec<String>,
    /// Never consider this archivist; repeatable.
    #[arg(long = "deny-archivist")]
    deny_archivists: Vec<String>,
    /// The room showed onward transmission before a live-mirror started (P008).
    #[arg(long)]
    live_mirror_authorized: bool,
    /// The export gates (stage 2: curation, curator quorum, classification, scope ceiling)
    /// were judged elsewhere and passed. Without it a federation-vault or public-vault request
    /// is refused curation-missing (fail closed); orbi does not evaluate the gates itself.
    #[arg(long)]
    gates_passed: bool,
    /// Advertisement files (one advertisement or an array each).
    #[arg(required = true)]
    advertisements: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct ExpiryArgs {
    /// When storage was accepted (`decided-at`), RFC 3339.
    #[arg(long)]
    accepted_at: String,
    /// Effective duration in seconds, at least 1 (absent: unbounded).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_duration_sec: Option<u64>,
    /// Effective idle TTL in seconds, at least 1 (absent: unbounded).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_idle_ttl_sec: Option<u64>,
    /// A successful (`found`) retrieval at this instant; repeatable.
    #[arg(long = "access")]
    accesses: Vec<String>,
    /// The instant to judge at (RFC 3339); default: the system clock.
    #[arg(long)]
    now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Runs `orbi archivist`.
pub fn run(args: Args) -> Result<Outcome, CliError> {
    match args.command {
        Command::Lint {
            files,
            strict,
            format,
        } => lint(&files, strict, format),
        Command::Match(args) => run_match(args),
        Command::Expiry(args) => expiry(args),
        Command::Submit(args) => crate::node::client::submit(args),
        Command::Discover(args) => crate::node::client::discover(args),
    }
}

/// Reads a file of at most [`MAX_INPUT_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, CliError> {
    crate::files::read_file(path, MAX_INPUT_BYTES)
}

/// One advertisement read from a file, admitted or not.
struct Loaded {
    source: String,
    admitted: Result<Advertisement, InvalidAdvertisement>,
}

/// Reads every advertisement of every file; a file holding an array yields one per element.
fn load_advertisements(files: &[PathBuf]) -> Result<Vec<Loaded>, CliError> {
    let mut loaded = Vec::new();
    let too_many = || {
        CliError::new(format!(
            "more than {MAX_ADVERTISEMENTS} advertisements; split them over several runs"
        ))
    };
    for path in files {
        let bytes = read_bounded(path)?;
        let source = path.display().to_string();
        match from_slice_strict(&bytes) {
            Ok(Value::Array(items)) => {
                if items.len() > MAX_ADVERTISEMENTS.saturating_sub(loaded.len()) {
                    return Err(too_many());
                }
                for (index, item) in items.iter().enumerate() {
                    loaded.push(Loaded {
                        source: format!("{source}#{index}"),
                        admitted: admit_kept(item),
                    });
                }
            }
            Ok(value) => {
                if loaded.len() >= MAX_ADVERTISEMENTS {
                    return Err(too_many());
                }
                loaded.push(Loaded {
                    source,
                    admitted: admit_kept(&value),
                });
            }
            Err(error) => loaded.push(Loaded {
                source,
                admitted: Err(InvalidAdvertisement {
                    advertisement_id: None,
                    archivist: None,
                    issues: vec![error.to_string()],
                }),
            }),
        }
    }
    Ok(loaded)
}

/// [`Advertisement::admit`], keeping at most [`MAX_ISSUES_KEPT`] issues of an invalid one.
fn admit_kept(value: &Value) -> Result<Advertisement, InvalidAdvertisement> {
    Advertisement::admit(value).map_err(|mut invalid| {
        if invalid.issues.len() > MAX_ISSUES_KEPT {
            let more = invalid.issues.len() - MAX_ISSUES_KEPT;
            invalid.issues.truncate(MAX_ISSUES_KEPT);
            invalid
                .issues
                .push(format!("and {more} more issues, not listed"));
        }
        invalid
    })
}

fn timestamp(text: &str, what: &str) -> Result<Timestamp, CliError> {
    Timestamp::parse(text).map_err(|err| CliError::new(format!("{what}: {err}")))
}

/// `--now`, or the system clock (the only clock read, and it is here, in the I/O layer).
fn now_or_clock(now: Option<&str>) -> Result<Timestamp, CliError> {
    match now {
        Some(text) => timestamp(text, "--now"),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|elapsed| i64::try_from(elapsed.as_secs()).ok())
            .and_then(Timestamp::from_unix_seconds)
            .ok_or_else(|| CliError::new("the system clock is not usable; pass --now")),
    }
}

/// Writes text to stdout; what it quotes (advertisement fields from a peer, file names)
/// cannot drive the terminal.
fn emit(text: &str) -> Result<(), CliError> {
    write_stdout(&crate::exit::terminal_safe(text))
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::new(format!("cannot write to stdout: {err}")))
        }
        _ => Ok(()),
    }
}

fn emit_json(value: &Value) -> Result<(), CliError> {
    // A Value always serializes.
    write_stdout(&(crate::json_out::to_string_pretty(value) + "\n"))
}

fn lint_json(lints: &[Lint]) -> Value {
    lints
        .iter()
        .map(|lint| json!({"code": lint.code, "pointer": lint.pointer, "message": lint.message}))
        .collect()
}

fn lint(files: &[PathBuf], strict: bool, format: Format) -> Result<Outcome, CliError> {
    let loaded = load_advertisements(files)?;
    let mut failed = false;
    let mut reports = Vec::new();
    let mut text = String::new();
    for entry in &loaded {
        match &entry.admitted {
            Ok(ad) => {
                failed |= strict && !ad.lints().is_empty();
                reports.push(json!({
                    "source": entry.source, "valid": true,
                    "advertisement/id": ad.id(), "archivist/node-id": ad.archivist(),
                    "issues": [], "lints": lint_json(ad.lints()),
                }));
                let _ = writeln!(
                    text,
                    "{}: valid ({}, {}), {} lint(s)",
                    entry.source,
                    ad.id(),
                    ad.archivist(),
                    ad.lints().len()
                );
                for lint in ad.lints() {
                    let _ = writeln!(text, "  lint {lint}");
                }
            }
            Err(invalid) => {
                failed = true;
                reports.push(json!({
                    "source": entry.source, "valid": false,
                    "advertisement/id": invalid.advertisement_id,
                    "archivist/node-id": invalid.archivist,
                    "issues": invalid.issues, "lints": [],
                }));
                let _ = writeln!(text, "{}: invalid", entry.source);
                for issue in &invalid.issues {
                    let _ = writeln!(text, "  {issue}");
                }
            }
        }
    }
    if loaded.is_empty() {
        // Only empty arrays were given: say so rather than print nothing.
        text.push_str("no advertisements: every file is an empty array\n");
    }
    match format {
        Format::Json => emit_json(&Value::Array(reports))?,
        Format::Text => emit(&text)?,
    }
    Ok(if failed {
        Outcome::Refused
    } else {
        Outcome::Success
    })
}

fn read_request(path: &Path) -> Result<ArchivalStorageRequest, CliError> {
    orbi_archivist::parse_request(&read_bounded(path)?)
        .map_err(|err| CliError::new(format!("request {}: {err}", path.display())))
}

fn run_match(args: MatchArgs) -> Result<Outcome, CliError> {
    let request = read_request(&args.request)?;
    let mut prepared =
        PreparedRequest::new(&request).with_live_mirror_authorized(args.live_mirror_authorized);
    if let Some(path) = &args.package {
        let package = from_slice_strict(&read_bounded(path)?)
            .map_err(|err| CliError::new(format!("package {}: {err}", path.display())))?;
        prepared = prepared.with_package(&package);
    }
    if args.gates_passed {
        prepared = prepared
            .with_gate_findings([])
            .map_err(|err| CliError::new(err.to_string()))?;
    }
    let now = now_or_clock(args.now.as_deref())?;
    let policy = Policy {
        strict_mode_fit: args.strict_mode_fit,
        max_advertisement_age_sec: args.max_age_sec,
        max_future_skew_sec: args.max_skew_sec,
        min_distinct_archivists: args.min_distinct_archivists,
        allowed_archivists: (!args.allow_archivists.is_empty())
            .then(|| args.allow_archivists.iter().cloned().collect()),
        denied_archivists: args.deny_archivists.iter().cloned().collect(),
    };
    let loaded = load_advertisements(&args.advertisements)?;
    // Admitted advertisements go to the engine; `sources[i]` remembers where each came from.
    let mut ads = Vec::new();
    let mut sources = Vec::new();
    let mut invalid = Vec::new();
    for entry in loaded {
        match entry.admitted {
            Ok(ad) => {
                ads.push(ad);
                sources.push(entry.source);
            }
            Err(error) => invalid.push((entry.source, error)),
        }
    }
    let report = match_request(&prepared, &ads, &policy, &now);
    let view = MatchView {
        request: &prepared,
        ads: &ads,
        sources: &sources,
        invalid: &invalid,
        report: &report,
        now: &now,
    };
    match args.format {
        Format::Json => emit_json(&view.json())?,
        Format::Text => emit(&view.text())?,
    }
    // The plan, not the ranking, says whether the request can be stored as asked.
    let placed = report.replication.missing == 0 && !report.replication.assignments.is_empty();
    Ok(if placed {
        Outcome::Success
    } else {
        Outcome::Refused
    })
}

/// What `match` prints, in either format.
struct MatchView<'a> {
    request: &'a PreparedRequest,
    ads: &'a [Advertisement],
    sources: &'a [String],
    invalid: &'a [(String, InvalidAdvertisement)],
    report: &'a MatchReport,
    now: &'a Timestamp,
}

fn seconds_json(value: Option<u64>) -> Value {
    value.map_or(Value::Null, Value::from)
}

fn seconds_text(value: Option<u64>) -> String {
    value.map_or_else(|| "unbounded".into(), |s| format!("{s} s"))
}

fn terms_json(decision: &Decision) -> Value {
    let terms = &decision.terms;
    json!({
        "retention/effective-max-duration-sec": seconds_json(terms.max_duration_sec),
        "retention/effective-max-idle-ttl-sec": seconds_json(terms.max_idle_ttl_sec),
        "replication/copies": terms.copies,
        "replication/commitment": terms.commitment,
        "replication/confirmed-copies": orbi_archivist::confirmed_copies(terms),
        "settlement/required": terms.settlement_required,
        "settlement/candidate-rails": terms.candidate_rails,
        "retrieval/mode-fit": terms.mode_fit,
    })
}

fn negotiation_json(decision: &Decision) -> Value {
    let items = decision.negotiation;
    let shortfall = |item: Option<orbi_archivist::Shortfall>| {
        item.map_or(
            Value::Null,
            |s| json!({"wanted": s.wanted, "offered": s.offered}),
        )
    };
    json!({
        "retention": shortfall(items.retention),
        "idle-ttl": shortfall(items.idle_ttl),
        "settlement": items.settlement,
    })
}

/// One excluded advertisement, for printing.
struct ExcludedRow {
    source: String,
    advertisement_id: Option<String>,
    archivist: Option<String>,
    code: ExclusionCode,
    details: Vec<String>,
}

impl MatchView<'_> {
    /// Invalid advertisements first (stage 0), then stage 0b exclusions.
    fn exclusions(&self) -> Vec<ExcludedRow> {
        let mut rows: Vec<ExcludedRow> = self
            .invalid
            .iter()
            .map(|(source, error)| ExcludedRow {
                source: source.clone(),
                advertisement_id: error.advertisement_id.clone(),
                archivist: error.archivist.clone(),
                code: error.code(),
                details: error.issues.clone(),
            })
            .collect();
        rows.extend(self.report.selection.excluded.iter().map(|exclusion| {
            let ad = &self.ads[exclusion.index];
            ExcludedRow {
                source: self.sources[exclusion.index].clone(),
                advertisement_id: Some(ad.id().to_owned()),
                archivist: Some(ad.archivist().to_owned()),
                code: exclusion.code,
                details: vec![exclusion.detail.clone()],
            }
        }));
        rows
    }

    fn json(&self) -> Value {
        let decisions: Vec<Value> = self
            .report
            .ranked
            .iter()
            .enumerate()
            .map(|(rank, entry)| {
                let ad = &self.ads[entry.index];
                let decision = &entry.decision;
                let stages: Vec<Value> = explain(self.request, ad, decision)
                    .into_iter()
                    .map(|stage| {
                        json!({
                            "stage": stage.stage.number(), "name": stage.stage.name(),
                            "outcome": stage.outcome.as_str(), "detail": stage.text,
                        })
                    })
                    .collect();
                json!({
                    "rank": rank + 1,
                    "source": self.sources[entry.index],
                    "advertisement/id": ad.id(),
                    "archivist/node-id": ad.archivist(),
                    "status": decision.status(),
                    "reason/codes": decision.reason_codes().iter().collect::<Vec<_>>(),
                    "notes": decision.notes.iter().collect::<Vec<_>>(),
                    "negotiation": negotiation_json(decision),
                    "terms": terms_json(decision),
                    "lints": lint_json(ad.lints()),
                    "stages": stages,
                })
            })
            .collect();
        let excluded: Vec<Value> = self
            .exclusions()
            .into_iter()
            .map(|row| {
                json!({
                    "source": row.source, "advertisement/id": row.advertisement_id,
                    "archivist/node-id": row.archivist, "reason/code": row.code,
                    "details": row.details,
                })
            })
            .collect();
        let plan = &self.report.replication;
        let assignments: Vec<Value> = plan
            .assignments
            .iter()
            .map(|assignment| {
                let ad = &self.ads[assignment.index];
                json!({
                    "advertisement/id": ad.id(), "archivist/node-id": ad.archivist(),
                    "copies": assignment.copies, "status": assignment.decision.status(),
                })
            })
            .collect();
        json!({
            "request/id": self.request.request().request_id,
            "now": self.now,
            "decisions": decisions,
            "excluded": excluded,
            "replication": {
                "copies": plan.copies, "commitment": plan.commitment,
                "assignments": assignments, "missing": plan.missing,
            },
        })
    }

    fn text(&self) -> String {
        let request = self.request;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "request {} for package {}: {} {}, {} cop{} ({}), judged at {}",
            request.request().request_id,
            request.request().package_id,
            request.scope(),
            request.artifact_type(),
            request.copies(),
            if request.copies() == 1 { "y" } else { "ies" },
            request.commitment(),
            self.now
        );
        if self.report.ranked.is_empty() {
            let _ = writeln!(out, "\nno advertisement left to match");
        }
        for (rank, entry) in self.report.ranked.iter().enumerate() {
            let ad = &self.ads[entry.index];
            let decision = &entry.decision;
            let codes: Vec<&str> = decision.reason_codes().iter().map(|c| c.as_str()).collect();
            let _ = writeln!(
                out,
                "\n{}. {} via {} ({}): {}{}",
                rank + 1,
                ad.archivist(),
                ad.id(),
                self.sources[entry.index],
                decision.status(),
                if codes.is_empty() {
                    String::new()
                } else {
                    format!(" because {}", codes.join(", "))
                }
            );
            let terms = &decision.terms;
            let rails = if terms.candidate_rails.is_empty() {
                String::new()
            } else {
                format!(", candidate rails {}", terms.candidate_rails.join(", "))
            };
            // Under `guarantee` one archivist answers for one copy whatever the request asks;
            // say so beside the copies asked for, or the plan below would seem to contradict.
            let confirmed = orbi_archivist::confirmed_copies(terms);
            let copies = if confirmed == terms.copies {
                format!(
                    "{} cop{}",
                    terms.copies,
                    if terms.copies == 1 { "y" } else { "ies" }
                )
            } else {
                format!(
                    "{confirmed} of {} copies ({}: one copy per archivist)",
                    terms.copies, terms.commitment
                )
            };
            let _ = writeln!(
                out,
                "   {} terms: duration {}, idle ttl {}, {}{}",
                if decision.is_candidate()
                    && !matches!(decision.verdict, orbi_archivist::Verdict::Accept)
                {
                    "provisional"
                } else if decision.is_candidate() {
                    "effective"
                } else {
                    "would-be"
                },
                seconds_text(terms.max_duration_sec),
                seconds_text(terms.max_idle_ttl_sec),
                copies,
                rails
            );
            let notes: Vec<&str> = decision.notes.iter().map(|n| n.as_str()).collect();
            if !notes.is_empty() {
                let _ = writeln!(out, "   notes: {}", notes.join(", "));
            }
            for stage in explain(request, ad, decision) {
                let _ = writeln!(
                    out,
                    "   stage {:<2} {:<23} {:<10} {}",
                    stage.stage.number(),
                    stage.stage.name(),
                    stage.outcome.as_str(),
                    stage.text
                );
            }
        }
        let exclusions = self.exclusions();
        if !exclusions.is_empty() {
            let _ = writeln!(out, "\nexcluded:");
            for row in exclusions {
                let _ = writeln!(
                    out,
                    "   {}: {} ({}): {}: {}",
                    row.source,
                    row.advertisement_id.as_deref().unwrap_or("(no id)"),
                    row.archivist.as_deref().unwrap_or("(no archivist)"),
                    row.code,
                    row.details.join("; ")
                );
            }
        }
        let plan = &self.report.replication;
        let placed: Vec<String> = plan
            .assignments
            .iter()
            .map(|a| format!("{} ×{}", self.ads[a.index].archivist(), a.copies))
            .collect();
        let _ = writeln!(
            out,
            "\nreplication ({}): {} of {} cop{} placed{}{}",
            plan.commitment,
            plan.copies - plan.missing,
            plan.copies,
            if plan.copies == 1 { "y" } else { "ies" },
            if placed.is_empty() {
                String::new()
            } else {
                format!(": {}", placed.join(", "))
            },
            if plan.missing > 0 {
                format!("; {} without an archivist", plan.missing)
            } else {
                String::new()
            }
        );
        out
    }
}

fn expiry(args: ExpiryArgs) -> Result<Outcome, CliError> {
    let accepted = timestamp(&args.accepted_at, "--accepted-at")?;
    let mut clock = ExpiryClock::new(&accepted, args.max_duration_sec, args.max_idle_ttl_sec);
    let mut accesses = args
        .accesses
        .iter()
        .map(|access| timestamp(access, "--access"))
        .collect::<Result<Vec<_>, _>>()?;
    let now = now_or_clock(args.now.as_deref())?;
    // An instant judged before the acceptance, or an access outside [acceptance, now], is a
    // mistake in the input, not history.
    if now.instant() < accepted.instant() {
        return Err(CliError::new(format!(
            "--accepted-at {accepted} is after the instant judged at ({now})"
        )));
    }
    for access in &accesses {
        if access.instant() < accepted.instant() {
            return Err(CliError::new(format!(
                "--access {access} is before --accepted-at {accepted}"
            )));
        }
        if access.instant() > now.instant() {
            return Err(CliError::new(format!(
                "--access {access} is after the instant judged at ({now})"
            )));
        }
    }
    // The clock judges each access against those before it: give them in time order, whatever
    // order the command line had.
    accesses.sort_by_key(Timestamp::instant);
    let mut after_expiry = Vec::new();
    for access in &accesses {
        if let Recorded::AfterExpiry { .. } =
            clock.record(Access::Retrieval(RetrievalStatus::Found), access)
        {
            after_expiry.push(access);
        }
    }
    let expiry = clock.expiry();
    let status = clock.status_at(&now);
    let expired = matches!(status, ExpiryStatus::Expired { .. });
    // Instants and deadlines print alike (UTC, with any fraction); an instant is a deadline
    // that comes.
    let deadline =
        |d: orbi_archivist::Deadline| d.timestamp().map_or(Value::Null, |t| json!(t.as_str()));
    let stamp = |instant| deadline(orbi_archivist::Deadline::At(instant));
    match args.format {
        Format::Json => emit_json(&json!({
            "accepted-at": stamp(clock.accepted_at()),
            "retention/max-duration-sec": args.max_duration_sec,
            "retention/max-idle-ttl-sec": args.max_idle_ttl_sec,
            "last-access": stamp(clock.last_access()),
            "accesses-after-expiry": after_expiry,
            "hard-expires-at": deadline(clock.hard_expires_at()),
            "idle-expires-at": deadline(clock.idle_expires_at()),
            "expires-at": deadline(expiry.at),
            "cause": expiry.cause,
            "now": now,
            "status": if expired { "expired" } else { "live" },
            "reason/code": status.retrieval_reason(),
        }))?,
        Format::Text => {
            let when = orbi_archivist::Deadline::At;
            let mut out = String::new();
            let _ = writeln!(out, "accepted at      {}", when(clock.accepted_at()));
            let _ = writeln!(out, "last access      {}", when(clock.last_access()));
            for access in &after_expiry {
                let _ = writeln!(
                    out,
                    "ignored access   {access} (after expiry: expiry is final)"
                );
            }
            let _ = writeln!(out, "hard expiry      {}", clock.hard_expires_at());
            let _ = writeln!(out, "idle expiry      {}", clock.idle_expires_at());
            let _ = writeln!(
                out,
                "expires at       {}{}",
                expiry.at,
                expiry.cause.map_or_else(String::new, |c| format!(" ({c})"))
            );
            let _ = match status.retrieval_reason() {
                Some(reason) => writeln!(
                    out,
                    "at {now}: expired; retrievals answer tombstoned with reason/code {reason}"
                ),
                None => writeln!(out, "at {now}: live"),
            };
            emit(&out)?;
        }
    }
    Ok(if expired {
        Outcome::Refused
    } else {
        Outcome::Success
    })
}
