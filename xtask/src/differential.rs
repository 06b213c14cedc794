//! Differential verdicts: orbi against python-jsonschema (2020-12, format assertion on) on the
//! fixtures, the upstream examples, thousands of seeded mutants of them, and a few raw texts.
//!
//! The reference reads the canonical files from `schemas/` as committed (it registers each
//! under its `$id` and its file name, so the relative bind `$ref` resolves as written); the
//! frozen variants come from orbi's own derivation. A disagreement passes only when it is one
//! of the reference's documented deviations from the standards (see [`Quirk`]); every other
//! disagreement fails the check.

use std::{
    collections::BTreeMap,
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use orbi_schema::{CanonicalSchema, Profile, Report, registry, validate_bytes};
use serde_json::{Map, Value, json};

use crate::{conformance::Tally, pointer, rng::Rng};

/// Mutants per valid base document (override with `ORBI_DIFFERENTIAL_MUTANTS`).
const DEFAULT_MUTANTS_PER_BASE: usize = 60;
/// Fixed so that a failure reproduces.
const SEED: u64 = 0x0b1_5c4e_3a00_0003;

/// The python side, run as `python -c DRIVER <schemas dir>`.
const DRIVER: &str = include_str!("differential_driver.py");

/// A reference validator's documented deviation from the standards orbi follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quirk {
    /// Python's `$` also matches before a final newline, in `pattern` (`re.search`) and in the
    /// regular expressions of rfc3339-validator and rfc3987. ECMA-262 (the 2020-12 pattern
    /// dialect), RFC 3339 and RFC 3986 allow no newline: `"abc\n"` is not `^[a-z]+$`.
    DollarBeforeNewline,
    /// rfc3339-validator rejects every leap second. RFC 3339 §5.6 allows second 60 and §5.8
    /// gives `1990-12-31T23:59:60Z` as an example; orbi accepts 60 at 23:59 UTC.
    LeapSecond,
    /// rfc3339-validator rejects year 0000; RFC 3339 `date-fullyear = 4DIGIT` allows it.
    YearZero,
    /// check-jsonschema skips a leading UTF-8 byte order mark. RFC 8259 §8.1 lets a parser
    /// ignore one, but a sender MUST NOT add it to a networked text, and artifacts travel
    /// between nodes byte for byte: orbi refuses it.
    ByteOrderMark,
    /// check-jsonschema's `date-time` takes a comma before the fraction (`00:00:00,5Z`), which
    /// ISO 8601 allows but RFC 3339 (`time-secfrac = "." 1*DIGIT`) does not.
    CommaFraction,
    /// Python keeps the last of two equal keys; orbi refuses the text (RFC 8259 §4: names
    /// SHOULD be unique, RFC 7493 I-JSON: MUST; two parsers could read two documents).
    DuplicateKey,
    /// Python reads `NaN`/`Infinity`, which RFC 8259 §6 does not allow.
    NonJsonNumber,
    /// Python reads a lone surrogate escape (`"\ud800"`), which is no Unicode text (RFC 8259
    /// §8.2); serde_json refuses it.
    LoneSurrogate,
    /// Python reads `1e400` as infinity; RFC 8259 §6 lets a parser limit the range, and
    /// serde_json refuses numbers beyond f64.
    NumberOutOfRange,
}

impl Quirk {
    fn label(self) -> &'static str {
        match self {
            Quirk::DollarBeforeNewline => "python `$` matches before a final newline",
            Quirk::LeapSecond => "the reference rejects leap seconds",
            Quirk::YearZero => "rfc3339-validator rejects year 0000",
            Quirk::CommaFraction => "check-jsonschema takes a comma before the fraction",
            Quirk::ByteOrderMark => "check-jsonschema skips a byte order mark",
            Quirk::DuplicateKey => "python keeps the last duplicate key",
            Quirk::NonJsonNumber => "python reads NaN/Infinity",
            Quirk::LoneSurrogate => "python reads lone surrogates",
            Quirk::NumberOutOfRange => "python reads 1e400 as infinity",
        }
    }
}

/// One document, the schema and profile it is checked against.
struct Case {
    label: String,
    schema: &'static CanonicalSchema,
    profile: Profile,
    text: String,
}

/// What the reference said about one case.
struct Verdict {
    valid: bool,
    parse_error: Option<String>,
    errors: Vec<ReferenceError>,
}

struct ReferenceError {
    path: String,
    keyword: String,
    value: Option<String>,
}

impl Verdict {
    /// Reads one line of the driver's output.
    fn from_json(value: &Value) -> Option<Verdict> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let errors = value["errors"]
            .as_array()?
            .iter()
            .map(|error| {
                Some(ReferenceError {
                    path: text(&error["path"])?,
                    keyword: text(&error["keyword"])?,
                    value: text(&error["value"]),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Verdict {
            valid: value["valid"].as_bool()?,
            parse_error: text(&value["parse_error"]),
            errors,
        })
    }
}

/// A reference validator the differential can run.
pub enum Reference {
    /// python-jsonschema driven by `differential_driver.py`, with this interpreter.
    PythonJsonschema(PathBuf),
    /// The `check-jsonschema` command line, this executable.
    CheckJsonschema(PathBuf),
}

impl Reference {
    fn name(&self) -> String {
        match self {
            Reference::PythonJsonschema(python) => {
                format!("python-jsonschema ({})", python.display())
            }
            Reference::CheckJsonschema(exe) => format!("check-jsonschema ({})", exe.display()),
        }
    }

    /// The deviations this reference is known for; any other disagreement fails.
    fn allows(&self, quirk: Quirk) -> bool {
        match self {
            // check-jsonschema matches `pattern` with regress (ECMA-262) and accepts year 0000.
            Reference::CheckJsonschema(_) => quirk != Quirk::YearZero,
            // rfc3339-validator takes no comma fraction; json.loads refuses a BOM.
            Reference::PythonJsonschema(_) => {
                !matches!(quirk, Quirk::CommaFraction | Quirk::ByteOrderMark)
            }
        }
    }

    fn verdicts(&self, root: &Path, cases: &[Case]) -> Result<Vec<Verdict>, String> {
        match self {
            Reference::PythonJsonschema(python) => {
                python_verdicts(python, &root.join("schemas"), cases)
            }
            Reference::CheckJsonschema(exe) => check_jsonschema_verdicts(exe, root, cases),
        }
    }
}

/// Mutants per valid base document: `ORBI_DIFFERENTIAL_MUTANTS` when set (a count; anything
/// else is an error, not a silent default), else [`DEFAULT_MUTANTS_PER_BASE`].
fn mutants_per_base(setting: Option<&str>) -> Result<usize, String> {
    match setting {
        None => Ok(DEFAULT_MUTANTS_PER_BASE),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("ORBI_DIFFERENTIAL_MUTANTS={text:?} is not a count of mutants")),
    }
}

/// Runs the differential against every reference found; fixtures from `roots` (each with
/// `valid/` and `invalid/`).
pub fn run(
    references: &[Reference],
    root: &Path,
    roots: &[PathBuf],
    tally: &mut Tally,
) -> Result<(), String> {
    let mutants = mutants_per_base(std::env::var("ORBI_DIFFERENTIAL_MUTANTS").ok().as_deref())?;
    let cases = corpus(roots, mutants)?;
    let ours: Vec<Result<Value, Report>> = cases
        .iter()
        .map(|case| validate_bytes(case.schema.name, case.text.as_bytes(), case.profile))
        .collect();
    for reference in references {
        let verdicts = reference.verdicts(root, &cases)?;
        let mut agree = 0usize;
        let mut quirks: BTreeMap<Quirk, usize> = BTreeMap::new();
        for ((case, ours), verdict) in cases.iter().zip(&ours).zip(&verdicts) {
            match explain(ours, verdict, &case.text) {
                Ok(None) => {
                    agree += 1;
                    tally.pass();
                }
                Ok(Some(quirk)) if reference.allows(quirk) => {
                    *quirks.entry(quirk).or_default() += 1;
                    tally.pass();
                }
                outcome => tally.fail(format!(
                    "differential vs {} on {} ({} {}): {}\n  document: {}",
                    reference.name(),
                    case.label,
                    case.schema.name,
                    case.profile,
                    match outcome {
                        Ok(Some(quirk)) => format!("unexpected deviation: {}", quirk.label()),
                        Err(why) => why,
                        Ok(None) => unreachable!("handled above"),
                    },
                    excerpt(&case.text)
                )),
            }
        }
        println!(
            "differential vs {}: {} documents, {agree} same verdict, {} known reference \
             deviations",
            reference.name(),
            cases.len(),
            quirks.values().sum::<usize>()
        );
        for (quirk, count) in quirks {
            println!("  {count:5}  {}", quirk.label());
        }
    }
    Ok(())
}

/// `Ok(None)`: same verdict. `Ok(Some(quirk))`: different, and the reference deviates from the
/// standard in a documented way. `Err`: an unexplained disagreement.
fn explain(
    ours: &Result<Value, Report>,
    theirs: &Verdict,
    text: &str,
) -> Result<Option<Quirk>, String> {
    match (ours, theirs.valid) {
        (Ok(_), true) | (Err(_), false) => Ok(None),
        (Err(Report::Syntax { message, .. }), true) => parse_quirk(message, text)
            .map(Some)
            .ok_or_else(|| format!("orbi cannot parse it ({message}), the reference says valid")),
        (Err(report @ Report::Invalid { .. }), true) => {
            let document: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let quirks: Vec<Option<Quirk>> = report
                .issues()
                .iter()
                .map(|issue| {
                    let value = document.pointer(&issue.instance);
                    let format = issue.keyword.ends_with("/format");
                    if (format || issue.keyword.ends_with("/pattern"))
                        && ends_with_newline(value, &issue.keyword)
                    {
                        Some(Quirk::DollarBeforeNewline)
                    } else if format && value.and_then(Value::as_str).is_some_and(is_comma_fraction)
                    {
                        Some(Quirk::CommaFraction)
                    } else {
                        None
                    }
                })
                .collect();
            match quirks.first() {
                Some(Some(first)) if quirks.iter().all(|q| q == &Some(*first)) => Ok(Some(*first)),
                _ => Err(format!(
                    "orbi says invalid ({report}), the reference says valid"
                )),
            }
        }
        (Err(report), true) => Err(format!(
            "orbi refused it ({report}), the reference says valid"
        )),
        (Ok(_), false) => {
            if let Some(parse_error) = &theirs.parse_error {
                return Err(format!(
                    "the reference cannot parse it ({parse_error}), orbi says valid"
                ));
            }
            let quirks: Vec<Option<Quirk>> = theirs
                .errors
                .iter()
                .map(|error| match (error.keyword.as_str(), &error.value) {
                    ("format", Some(value)) if is_leap_second(value) => Some(Quirk::LeapSecond),
                    ("format", Some(value)) if value.starts_with("0000-") => Some(Quirk::YearZero),
                    _ => None,
                })
                .collect();
            match quirks.first() {
                Some(Some(first)) if quirks.iter().all(Option::is_some) => Ok(Some(*first)),
                _ => {
                    let errors: Vec<String> = theirs
                        .errors
                        .iter()
                        .map(|e| format!("{} {} {:?}", e.path, e.keyword, e.value))
                        .collect();
                    Err(format!(
                        "orbi says valid, the reference says invalid: {}",
                        errors.join("; ")
                    ))
                }
            }
        }
    }
}

/// A string value (or, under `propertyNames`, a member name) that ends in a newline.
fn ends_with_newline(value: Option<&Value>, keyword: &str) -> bool {
    match value {
        Some(Value::String(text)) => text.ends_with('\n'),
        Some(Value::Object(map)) if keyword.contains("/propertyNames/") => {
            map.keys().any(|key| key.ends_with('\n'))
        }
        _ => false,
    }
}

fn parse_quirk(message: &str, text: &str) -> Option<Quirk> {
    if text.starts_with('\u{feff}') {
        Some(Quirk::ByteOrderMark)
    } else if message.contains("duplicate key") {
        Some(Quirk::DuplicateKey)
    } else if has_surrogate_escape(text)
        && ["surrogate", "unicode code point", "hex escape"]
            .iter()
            .any(|word| message.contains(word))
    {
        Some(Quirk::LoneSurrogate)
    } else if message.contains("out of range") {
        Some(Quirk::NumberOutOfRange)
    } else if ["NaN", "Infinity"].iter().any(|word| text.contains(word)) {
        Some(Quirk::NonJsonNumber)
    } else {
        None
    }
}

/// Whether `text` holds a `\uD800`–`\uDFFF` escape.
fn has_surrogate_escape(text: &str) -> bool {
    text.to_ascii_lowercase()
        .match_indices("\\ud")
        .any(|(at, _)| {
            text.as_bytes()
                .get(at + 3)
                .is_some_and(|b| b"89abcdefABCDEF".contains(b))
        })
}

/// `…THH:MM:SS,…`: a fraction after a comma.
fn is_comma_fraction(value: &str) -> bool {
    value.get(19..20) == Some(",")
}

/// `YYYY-MM-DDTHH:MM:60…`: a leap second, whatever the hour.
fn is_leap_second(value: &str) -> bool {
    value.len() > 19
        && value
            .get(10..11)
            .is_some_and(|t| t.eq_ignore_ascii_case("t"))
        && value.get(17..19) == Some("60")
}

fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(400) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Runs the python driver over every case, in order.
fn python_verdicts(python: &Path, schemas: &Path, cases: &[Case]) -> Result<Vec<Verdict>, String> {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(DRIVER)
        .arg(schemas)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| format!("cannot run {}: {err}", python.display()))?;
    let frozen: Map<String, Value> = registry()
        .all()
        .iter()
        .map(|schema| {
            (
                schema.file_name.to_owned(),
                Profile::Frozen.document(schema),
            )
        })
        .collect();
    let mut requests =
        serde_json::to_string(&json!({"frozen": frozen})).map_err(|e| e.to_string())?;
    requests.push('\n');
    for case in cases {
        let request = json!({
            "profile": case.profile.as_str(),
            "file": case.schema.file_name,
            "text": case.text,
        });
        requests.push_str(&request.to_string());
        requests.push('\n');
    }
    let mut stdin = child.stdin.take().ok_or("no stdin for the reference")?;
    // Write from a thread: the driver answers while we are still sending.
    let writer = std::thread::spawn(move || stdin.write_all(requests.as_bytes()));
    let stdout = child.stdout.take().ok_or("no stdout from the reference")?;
    let mut verdicts = Vec::with_capacity(cases.len());
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|err| format!("reading the reference: {err}"))?;
        let verdict = serde_json::from_str(&line)
            .ok()
            .as_ref()
            .and_then(Verdict::from_json)
            .ok_or_else(|| format!("unexpected reference output {line:?}"))?;
        verdicts.push(verdict);
    }
    writer
        .join()
        .map_err(|_| "the writer thread panicked")?
        .map_err(|err| format!("writing to the reference: {err}"))?;
    let status = child.wait().map_err(|err| err.to_string())?;
    if !status.success() || verdicts.len() != cases.len() {
        return Err(format!(
            "the reference driver failed ({status}) after {} of {} documents",
            verdicts.len(),
            cases.len()
        ));
    }
    Ok(verdicts)
}

/// Runs the `check-jsonschema` command line over every case: one process per schema and
/// profile, the canonical files as committed for `seed` (the relative bind `$ref` resolves
/// against the working directory), orbi's derivation for `frozen`.
fn check_jsonschema_verdicts(
    exe: &Path,
    root: &Path,
    cases: &[Case],
) -> Result<Vec<Verdict>, String> {
    let scratch = root.join("target/differential");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)
            .map_err(|err| format!("cannot clear {}: {err}", scratch.display()))?;
    }
    let (documents, frozen) = (scratch.join("documents"), scratch.join("frozen"));
    for dir in [&documents, &frozen] {
        fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    }
    for schema in registry().all() {
        let text = serde_json::to_string_pretty(&Profile::Frozen.document(schema))
            .map_err(|err| err.to_string())?;
        fs::write(frozen.join(schema.file_name), text).map_err(|err| err.to_string())?;
    }
    let mut groups: BTreeMap<(Profile, &str), Vec<usize>> = BTreeMap::new();
    for (index, case) in cases.iter().enumerate() {
        let path = documents.join(format!("{index:05}.json"));
        fs::write(&path, &case.text)
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        groups
            .entry((case.profile, case.schema.file_name))
            .or_default()
            .push(index);
    }
    let mut verdicts: Vec<Verdict> = cases
        .iter()
        .map(|_| Verdict {
            valid: true,
            parse_error: None,
            errors: Vec::new(),
        })
        .collect();
    for ((profile, file_name), indices) in groups {
        let schemas = match profile {
            Profile::Seed => root.join("schemas"),
            Profile::Frozen => frozen.clone(),
        };
        let output = Command::new(exe)
            .current_dir(&schemas)
            .args(["--output-format", "json", "--schemafile", file_name])
            .args(
                indices
                    .iter()
                    .map(|index| documents.join(format!("{index:05}.json"))),
            )
            .output()
            .map_err(|err| format!("cannot run {}: {err}", exe.display()))?;
        if !matches!(output.status.code(), Some(0 | 1)) {
            return Err(format!(
                "check-jsonschema failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let report: Value = serde_json::from_slice(&output.stdout)
            .map_err(|err| format!("check-jsonschema output: {err}"))?;
        let index_of = |error: &Value| -> Option<usize> {
            let name = Path::new(error["filename"].as_str()?)
                .file_stem()?
                .to_str()?;
            name.parse().ok()
        };
        for error in report["errors"].as_array().into_iter().flatten() {
            let Some(index) = index_of(error) else {
                continue;
            };
            let message = error["message"].as_str().unwrap_or_default();
            let (keyword, value) = format_failure(message)
                .map(|(format_value, _)| ("format".to_owned(), Some(format_value)))
                .unwrap_or_else(|| ("?".to_owned(), None));
            verdicts[index].valid = false;
            verdicts[index].errors.push(ReferenceError {
                path: error["path"].as_str().unwrap_or_default().to_owned(),
                keyword,
                value,
            });
        }
        for error in report["parse_errors"].as_array().into_iter().flatten() {
            let Some(index) = index_of(error) else {
                continue;
            };
            verdicts[index].valid = false;
            verdicts[index].parse_error =
                Some(error["message"].as_str().unwrap_or_default().into());
        }
    }
    Ok(verdicts)
}

/// `'<value>' is not a '<format>'` → (value, format). Python quotes with `'`; values that need
/// escapes are never the ones a quirk is about, so they are left as printed.
fn format_failure(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix('\'')?;
    let (value, format) = rest.rsplit_once("' is not a '")?;
    Some((value.to_owned(), format.strip_suffix('\'')?.to_owned()))
}

/// Fixtures (both profiles), seeded mutants of every valid fixture, and the raw texts.
fn corpus(roots: &[PathBuf], mutants_per_base: usize) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut bases = Vec::new();
    for dir in roots {
        for sub in ["valid", "invalid"] {
            let mut files: Vec<PathBuf> = fs::read_dir(dir.join(sub))
                .map_err(|err| format!("cannot list {}/{sub}: {err}", dir.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect();
            files.sort();
            for path in files {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let Some(schema) = registry().for_file_name(name) else {
                    continue;
                };
                let text = fs::read_to_string(&path)
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                for profile in Profile::ALL {
                    cases.push(Case {
                        label: path.display().to_string(),
                        schema,
                        profile,
                        text: text.clone(),
                    });
                }
                if sub == "valid"
                    && let Ok(document) = serde_json::from_str::<Value>(&text)
                {
                    bases.push((name.to_owned(), schema, document));
                }
            }
        }
    }
    let pool = Pool::new();
    let mut rng = Rng::new(SEED);
    // Every format-bearing member of every base, with every edge value of its format: the
    // format checkers are where validators differ most.
    for (name, schema, document) in &bases {
        let pointers = pointer::all(document);
        for pointer in pointers {
            let Some(Value::String(current)) = document.pointer(&pointer) else {
                continue;
            };
            let edges = if looks_like_date_time(current) {
                DATE_TIMES
            } else if current.contains("://") {
                URIS
            } else {
                continue;
            };
            for (index, edge) in edges.iter().enumerate() {
                let mut variant = document.clone();
                if let Some(slot) = variant.pointer_mut(&pointer) {
                    *slot = Value::from(*edge);
                }
                cases.push(Case {
                    label: format!("{name} with {pointer} = edge {index}"),
                    schema,
                    profile: Profile::Seed,
                    text: variant.to_string(),
                });
            }
        }
    }
    for (name, schema, document) in &bases {
        for index in 0..mutants_per_base {
            let mut mutant = document.clone();
            for _ in 0..1 + rng.below(2) {
                pool.mutate(&mut mutant, &mut rng);
            }
            cases.push(Case {
                label: format!("mutant {index} of {name}"),
                schema,
                profile: *rng.pick(&Profile::ALL),
                text: mutant.to_string(),
            });
        }
    }
    let bind = bases
        .iter()
        .find(|(_, schema, _)| schema.name == "participant-bind")
        .ok_or("no valid participant-bind fixture to build raw cases from")?;
    for (label, text) in raw_texts(&bind.2) {
        cases.push(Case {
            label: label.to_owned(),
            schema: bind.1,
            profile: Profile::Seed,
            text,
        });
    }
    Ok(cases)
}

/// Texts no serializer produces: the parse-level differences.
fn raw_texts(bind: &Value) -> Vec<(&'static str, String)> {
    let text = bind.to_string();
    let body = text.strip_suffix('}').unwrap_or(&text);
    let with = |extra: &str| format!("{body},{extra}}}");
    vec![
        ("duplicate key, same value", with(r#""schema/v": 1"#)),
        ("duplicate key, other value", with(r#""schema/v": 2"#)),
        (
            "NaN in an open member",
            with(r#""policy_annotations": {"x": NaN}"#),
        ),
        (
            "Infinity in an open member",
            with(r#""policy_annotations": {"x": -Infinity}"#),
        ),
        (
            "lone surrogate",
            with(r#""policy_annotations": {"x": "\ud800"}"#),
        ),
        (
            "number out of range",
            with(r#""policy_annotations": {"x": 1e400}"#),
        ),
        (
            "escaped pair",
            with(r#""policy_annotations": {"x": "\ud83d\ude00"}"#),
        ),
        (
            "huge integer",
            with(r#""policy_annotations": {"x": 123456789012345678901234567890}"#),
        ),
        ("trailing comma", with(r#""policy_annotations": {"x": 1,}"#)),
        ("byte order mark", format!("\u{feff}{text}")),
        ("trailing garbage", format!("{text} x")),
        ("empty", String::new()),
    ]
}

/// `date-time` edges: leap seconds, case, fractions, offsets, calendars, stray characters.
const DATE_TIMES: &[&str] = &[
    "2026-03-28T19:42:00Z",
    "2026-03-28t19:42:00z",
    "2026-03-28T19:42:00.123456789Z",
    "2026-03-28T19:42:00,5Z",
    "1990-12-31T23:59:60Z",
    "1990-12-31T15:59:60-08:00",
    "1990-12-31T23:59:60+00:00",
    "2026-03-28T19:42:60Z",
    "2026-03-28T22:59:60Z",
    "2026-03-28T23:59:61Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2024-02-29T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-03-28T19:42:00Z\n",
    "2026-03-28T19:42:00+24:00",
    "2026-03-28T19:42:00-00:00",
    "2026-03-28T19:42:00+01:00",
    "2026-03-28T19:42:00+0100",
    "2026-03-28T19:42:00+01",
    "2026-03-28T19:42Z",
    "2026-03-28 19:42:00Z",
    "2026-03-28T19:42:00",
    "2026-03-28",
    "2026-03-28T19:42:00.Z",
    "2026-13-01T00:00:00Z",
    "2026-00-01T00:00:00Z",
    "2026-03-00T00:00:00Z",
    "2026-03-28T24:00:00Z",
    "2026-03-28T19:60:00Z",
    "\u{ff12}026-03-28T19:42:00Z",
    "2026-03-28T19:42:00Z ",
    " 2026-03-28T19:42:00Z",
    "+2026-03-28T19:42:00Z",
    "20260328T194200Z",
    "2026-03-28T19:42:00.1234567890123456789Z",
    "2026-3-28T19:42:00Z",
    "2026-03-28T19:42:00ZZ",
    "2026-03-28TT19:42:00Z",
    "2026-03-28T19:42:00\u{0}Z",
];

/// `uri` edges: schemes, authorities, IP literals, percent-encoding, stray characters.
const URIS: &[&str] = &[
    "https://example.org/a/b?c=1",
    "https://example.com:8080/a%20b",
    "urn:isbn:0451450523",
    "mailto:a@b.c",
    "a:b",
    "x:",
    "/relative/path",
    "//host/path",
    "relative",
    "#frag",
    "http://[::1]:80/",
    "http://[v1.x]/",
    "http://[::1/",
    "http://[1:2:3:4:5:6:7:8:9]/",
    "http://[::ffff:1.2.3.4]/",
    "http://example.com/é",
    "http://exämple.com/",
    "http://exa mple.com/",
    "https://example.com/a%2",
    "https://example.com/a%zz",
    "http://x/\n",
    "http://x/{a}",
    "http://x/|",
    "http://x/\\",
    "http://x/^",
    "http://x/`",
    "http://x/[a]",
    "http://x?[a]",
    "http://x#a#b",
    "http://1.2.3.256/",
    "http://host:99999/",
    "http://host:port/",
    "http://host:/",
    "http://@host/",
    "http://user:pw@host/",
    "HTTP://EXAMPLE.COM/",
    "1http://x",
    "h+t-t.p://x",
    "-x://y",
    "http://[fe80::1%25eth0]/",
    "tag:example.com,2005:foo",
    "data:text/plain;base64,SGVsbG8=",
    "http://host/a\u{0}b",
    "http://host/%00",
    "file:///etc/passwd",
    "http://h_o_s_t/",
    "http://ho~st/",
    "http://%41.com/",
    "http://x/a b",
    "http://x/\u{7f}",
    "http:",
    ":",
    "",
];

fn looks_like_date_time(text: &str) -> bool {
    text.len() >= 20
        && text.as_bytes().get(4) == Some(&b'-')
        && text.as_bytes().get(10) == Some(&b'T')
}

/// Replacement values and names that sit on the edges of the contracts' keywords.
struct Pool {
    values: Vec<Value>,
    keys: Vec<String>,
}

impl Pool {
    fn new() -> Pool {
        let mut values: Vec<Value> = DATE_TIMES
            .iter()
            .chain(URIS)
            .map(|text| Value::from(*text))
            .collect();
        values.extend(
            [
                "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE",
                "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE\n",
                "node:did:key:z0OIl",
                "participant:did:key:z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn",
                "pod-user:did:key:z6Mk",
                "did:key:z6Mk",
                "z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn",
                "z6Mk\n",
                "sha256:abc",
                "sha256:ab=",
                "sha256:",
                "sha512:abc",
                "e30",
                "e30=",
                "e30\n",
                "a:b/c.d_e-f",
                "a b",
                "é",
                "",
                " ",
                "\n",
                "x".repeat(257).as_str(),
                "x".repeat(1025).as_str(),
                "inac-control.v1",
                "capability-passport.v1",
                "ed25519",
            ]
            .into_iter()
            .map(Value::from),
        );
        values.extend([
            json!(0),
            json!(1),
            json!(-1),
            json!(2),
            json!(1.0),
            json!(1.5),
            json!(-0.0),
            json!(1e2),
            json!(1073741824),
            json!(1073741825),
            json!(1073741824.0),
            json!(1e30),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(true),
            json!(false),
            json!(null),
            json!([]),
            json!({}),
            json!(["private-retained"]),
            json!([1, 1]),
            json!({"alg": "ed25519", "value": "v"}),
            json!({"alg": "ed25519"}),
            json!({"schema": "capability-passport.v1"}),
        ]);
        // Every vocabulary word of every contract, so enums and consts are hit on both sides.
        let mut keys = vec!["extra".to_owned(), "pod/id".to_owned(), "kid".to_owned()];
        for schema in registry().all() {
            collect_words(&schema.document, &mut values, &mut keys);
        }
        keys.sort();
        keys.dedup();
        Pool { values, keys }
    }

    fn mutate(&self, document: &mut Value, rng: &mut Rng) {
        let pointers = pointer::all(document);
        let Some(target) = rng.pick_opt(&pointers).cloned() else {
            return;
        };
        match rng.below(5) {
            0 | 1 => {
                if let Some(slot) = document.pointer_mut(&target) {
                    *slot = rng.pick(&self.values).clone();
                }
            }
            2 => {
                let (parent, key) = pointer::split(&target);
                if let Some(Value::Object(map)) = document.pointer_mut(&parent) {
                    map.shift_remove(&key);
                }
            }
            3 => {
                let root = String::new();
                let objects: Vec<&String> = pointers
                    .iter()
                    .chain(std::iter::once(&root))
                    .filter(|p| document.pointer(p).is_some_and(Value::is_object))
                    .collect();
                let at = rng.pick(&objects).to_string();
                let key = rng.pick(&self.keys).clone();
                let value = rng.pick(&self.values).clone();
                if let Some(Value::Object(map)) = document.pointer_mut(&at) {
                    map.insert(key, value);
                }
            }
            _ => {
                if let Some(Value::String(text)) = document.pointer_mut(&target) {
                    *text = edit_string(text, rng);
                } else if let Some(slot) = document.pointer_mut(&target) {
                    *slot = rng.pick(&self.values).clone();
                }
            }
        }
    }
}

/// Small edits where format and pattern checks are sharpest.
fn edit_string(text: &str, rng: &mut Rng) -> String {
    const INSERTS: &[&str] = &[
        "\n", " ", "é", "0", ":", "/", "%", "[", "Z", "z", "t", ",", ".", "60", "\u{0}", "I",
    ];
    let chars: Vec<char> = text.chars().collect();
    let at = if chars.is_empty() {
        0
    } else {
        rng.below(chars.len() + 1)
    };
    let (head, tail) = chars.split_at(at);
    let head: String = head.iter().collect();
    let tail: String = tail.iter().collect();
    match rng.below(6) {
        0 => format!("{text}\n"),
        1 => text.to_uppercase(),
        2 => text.to_lowercase(),
        3 => format!("{head}{}", tail.chars().skip(1).collect::<String>()),
        _ => format!("{head}{}{tail}", rng.pick(INSERTS)),
    }
}

fn collect_words(schema: &Value, values: &mut Vec<Value>, keys: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (keyword, child) in map {
                match keyword.as_str() {
                    "enum" => values.extend(child.as_array().into_iter().flatten().cloned()),
                    "const" => values.push(child.clone()),
                    "properties" => keys.extend(
                        child
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, _)| k.clone()),
                    ),
                    _ => {}
                }
                collect_words(child, values, keys);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_words(item, values, keys)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mutant_count_is_the_setting_or_the_default_and_nothing_else() {
        assert_eq!(mutants_per_base(None), Ok(DEFAULT_MUTANTS_PER_BASE));
        assert_eq!(mutants_per_base(Some("7")), Ok(7));
        assert_eq!(mutants_per_base(Some(" 0 ")), Ok(0));
        assert_eq!(
            mutants_per_base(Some("many")),
            Err("ORBI_DIFFERENTIAL_MUTANTS=\"many\" is not a count of mutants".to_owned())
        );
        assert!(mutants_per_base(Some("-1")).is_err());
    }

    #[test]
    fn check_jsonschema_format_messages() {
        assert_eq!(
            format_failure("'1990-12-31T23:59:60Z' is not a 'date-time'"),
            Some(("1990-12-31T23:59:60Z".into(), "date-time".into()))
        );
        assert_eq!(format_failure("'x' is a required property"), None);
        assert!(is_comma_fraction("2026-03-28T19:42:00,5Z"));
        assert!(!is_comma_fraction("2026-03-28T19:42:00.5Z"));
    }

    #[test]
    fn leap_seconds() {
        assert!(is_leap_second("1990-12-31T23:59:60Z"));
        assert!(is_leap_second("2026-03-28t19:42:60z"));
        assert!(!is_leap_second("2026-03-28T19:42:06Z"));
    }

    /// A disagreement the quirk list does not cover fails the check.
    #[test]
    fn only_documented_deviations_pass() {
        let theirs_valid = Verdict {
            valid: true,
            parse_error: None,
            errors: vec![],
        };
        let bind = registry().get("participant-bind").unwrap();
        let newline = r#"{"schema/v": 1, "session/id": "x\n"}"#;
        let ours = validate_bytes("participant-bind", newline.as_bytes(), Profile::Seed);
        // Missing required members are not a newline quirk.
        assert!(explain(&ours, &theirs_valid, newline).is_err());
        let duplicate = r#"{"a": 1, "a": 1}"#;
        let ours = validate_bytes(bind.name, duplicate.as_bytes(), Profile::Seed);
        assert_eq!(
            explain(&ours, &theirs_valid, duplicate),
            Ok(Some(Quirk::DuplicateKey))
        );
        let invalid_by = |keyword: &str, value: &str| Verdict {
            valid: false,
            parse_error: None,
            errors: vec![ReferenceError {
                path: "/x".into(),
                keyword: keyword.into(),
                value: Some(value.into()),
            }],
        };
        let ok: Result<Value, Report> = Ok(json!({}));
        let leap = explain(&ok, &invalid_by("format", "1990-12-31T23:59:60Z"), "{}");
        assert_eq!(leap, Ok(Some(Quirk::LeapSecond)));
        assert!(explain(&ok, &invalid_by("minLength", ""), "{}").is_err());
        // Each reference is allowed only its own deviations.
        let python = Reference::PythonJsonschema(PathBuf::from("python3"));
        let check = Reference::CheckJsonschema(PathBuf::from("check-jsonschema"));
        assert!(python.allows(Quirk::YearZero) && !check.allows(Quirk::YearZero));
        assert!(check.allows(Quirk::CommaFraction) && !python.allows(Quirk::CommaFraction));
    }

    fn valid() -> Verdict {
        Verdict {
            valid: true,
            parse_error: None,
            errors: vec![],
        }
    }

    /// The bind fixture with `change` applied, as text.
    fn bind_with(change: impl FnOnce(&mut Value)) -> String {
        let path =
            crate::workspace_root().join("schemas/examples/valid/k2-signed.participant-bind.json");
        let mut bind: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        change(&mut bind);
        bind.to_string()
    }

    /// A disagreement passes as a quirk only when every issue (or reference error) is one: a
    /// documented deviation next to an undocumented one is a failure.
    #[test]
    fn a_quirk_excuses_only_a_disagreement_made_entirely_of_it() {
        let explain_text = |text: &str| {
            let ours = validate_bytes("participant-bind", text.as_bytes(), Profile::Seed);
            explain(&ours, &valid(), text)
        };
        let newline = bind_with(|bind| bind["bound-at"] = json!("2026-03-28T19:20:00Z\n"));
        assert_eq!(explain_text(&newline), Ok(Some(Quirk::DollarBeforeNewline)));
        // The newline issue comes first, the enum issue after it.
        let newline_and_enum = bind_with(|bind| {
            bind["bound-at"] = json!("2026-03-28T19:20:00Z\n");
            bind["participant/key/alg"] = json!("rsa");
        });
        let err = explain_text(&newline_and_enum).unwrap_err();
        assert!(err.starts_with("orbi says invalid ("), "{err}");
        // A syntax error that is no documented parse difference.
        let garbage = bind_with(|_| {}) + " x";
        let err = explain_text(&garbage).unwrap_err();
        assert!(err.starts_with("orbi cannot parse it ("), "{err}");
        let error = |keyword: &str, value: &str| ReferenceError {
            path: "/x".into(),
            keyword: keyword.into(),
            value: Some(value.into()),
        };
        let leap_and_length = Verdict {
            valid: false,
            parse_error: None,
            errors: vec![
                error("format", "1990-12-31T23:59:60Z"),
                error("minLength", ""),
            ],
        };
        let ok: Result<Value, Report> = Ok(json!({}));
        assert_eq!(
            explain(&ok, &leap_and_length, "{}"),
            Err("orbi says valid, the reference says invalid: /x format \
                 Some(\"1990-12-31T23:59:60Z\"); /x minLength Some(\"\")"
                .into())
        );
    }

    /// A stand-in for the reference: skips the frozen schemas line, then answers "valid" to
    /// the first `answers` requests (all of them when `None`).
    #[cfg(unix)]
    fn fake_reference(name: &str, answers: Option<usize>) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::scratch(name);
        let limit = answers.map_or(String::new(), |n| format!("[ $n -ge {n} ] && break; "));
        let script = format!(
            "#!/bin/sh\nread -r frozen\nn=0\nwhile read -r request; do {limit}n=$((n+1)); \
             echo '{{\"valid\": true, \"parse_error\": null, \"errors\": []}}'; done\n\
             cat >/dev/null\n"
        );
        let path = dir.join("python");
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    }

    /// A reference that answers fewer documents than it was sent is an error, not a shorter
    /// comparison.
    #[cfg(unix)]
    #[test]
    fn a_reference_that_stops_early_is_an_error() {
        let (dir, python) = fake_reference("differential-short", Some(1));
        let schema = registry().get("participant-bind").unwrap();
        let case = |text: &str| Case {
            label: text.into(),
            schema,
            profile: Profile::Seed,
            text: text.into(),
        };
        let cases = [case("{}"), case("[]")];
        let err = python_verdicts(&python, &dir, &cases)
            .map(|verdicts| verdicts.len())
            .unwrap_err();
        assert!(err.ends_with("after 1 of 2 documents"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    /// A reference that calls everything valid disagrees with orbi on every invalid document
    /// that is no documented quirk: each is a failed check, every document is checked.
    #[cfg(unix)]
    #[test]
    fn disagreements_fail_the_differential() {
        let (dir, python) = fake_reference("differential-all-valid", None);
        let fixtures = dir.join("fixtures");
        for sub in ["valid", "invalid"] {
            fs::create_dir_all(fixtures.join(sub)).unwrap();
        }
        fs::write(
            fixtures.join("valid/bind.participant-bind.json"),
            bind_with(|_| {}),
        )
        .unwrap();
        fs::write(
            fixtures.join("invalid/bind.participant-bind.json"),
            bind_with(|bind| bind["schema/v"] = json!(2)),
        )
        .unwrap();
        let roots = [fixtures];
        let documents = corpus(&roots, DEFAULT_MUTANTS_PER_BASE).unwrap().len();
        let mut tally = Tally::default();
        run(
            &[Reference::PythonJsonschema(python)],
            &dir,
            &roots,
            &mut tally,
        )
        .unwrap();
        assert_eq!(tally.checks, documents);
        assert!(!tally.passed());
        // The invalid fixture, in both profiles, is among the failures.
        assert!(tally.failures >= 2, "{}", tally.failures);
        fs::remove_dir_all(dir).unwrap();
    }
}
