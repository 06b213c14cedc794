//! The canonical schema registry, offline validation and the semantic schema diff.
//!
//! - [`registry()`]: every `schemas/*.schema.json`, embedded at compile time, looked up by short
//!   name (`inac-control`), `$id` (`urn:orbiplex:schema:inac-control:v1`), file name
//!   (`inac-control.v1.schema.json`) or a document's file name (`x.inac-control.json`).
//! - [`Registry::validator`]: a cached, compiled validator per schema and [`Profile`]: JSON
//!   Schema draft 2020-12, format assertion on (`date-time`, `uri`), no network or file access
//!   ever. The relative `$ref` to `participant-bind.v1.schema.json` inside URN-identified
//!   schemas is solved in the registry, the canonical files stay as committed.
//! - [`validate()`]: bytes → strict parse → schema → typed `orbi-types` artifact, with a
//!   [`Report`] that names every problem ([`Issue`]: instance pointer, keyword pointer, a
//!   lowercase message).
//! - [`semantic_diff`]: do two schemas validate alike? (`cargo xtask schemas check`).
//!
//! ```
//! use orbi_schema::{Profile, Report, registry, validate_bytes};
//!
//! let validator = registry().validator("participant-bind", Profile::Seed)?;
//! let issues = validator.issues(&serde_json::json!({"schema/v": 1}));
//! assert!(issues.iter().any(|issue| issue.message == "missing required property \"bind/id\""));
//!
//! // From a document's file name to its verdict.
//! let schema = registry().for_file_name("push.inac-control.json").unwrap();
//! let verdict = validate_bytes(schema.name, br#"{"schema": "inac-control.v1"}"#, Profile::Seed);
//! let Err(Report::Invalid { issues, .. }) = verdict else { panic!() };
//! assert_eq!(issues[0].to_string(), "(document): missing required property \"operation\" [/required]");
//! # Ok::<(), orbi_schema::SchemaError>(())
//! ```
//!
//! # Agreement with reference validators
//!
//! `cargo xtask conformance` runs orbi and two reference validators, python-jsonschema
//! (draft 2020-12, `FORMAT_CHECKER` with rfc3339-validator and rfc3987) and the
//! check-jsonschema command line, over the fixtures, the upstream examples and about five
//! thousand seeded mutants of them (every `date-time` and `uri` member swapped for each of ~100
//! edge values, random removals, insertions, type swaps and string edits, both profiles). The
//! references read the canonical files as committed. Every disagreement is one of the
//! references' documented deviations below, where orbi follows the standard
//! (`tests/standards.rs` pins each case); anything else fails the check.
//!
//! | Document | orbi | python-jsonschema | check-jsonschema | Standard |
//! |---|---|---|---|---|
//! | `"1990-12-31T23:59:60Z"` (leap second) | valid | invalid | invalid | RFC 3339 §5.6–5.8 allow second 60 (at 23:59 UTC); §5.8 has this very example |
//! | `"0000-01-01T00:00:00Z"` | valid | invalid | valid | RFC 3339 `date-fullyear = 4DIGIT` |
//! | `"2026-03-28T19:42:00,5Z"` | invalid | invalid | valid | RFC 3339 `time-secfrac = "." 1*DIGIT` |
//! | a `date-time` or `uri` ending in `"\n"` | invalid | valid | valid | no newline in RFC 3339 or RFC 3986; Python's `$` matches before a final newline |
//! | a `pattern` string ending in `"\n"` (`^…$`) | invalid | valid | invalid | ECMA-262 `$` (the 2020-12 dialect) matches only at the end |
//! | a repeated object key | invalid (syntax) | last value wins | last value wins | RFC 8259 §4 SHOULD be unique, RFC 7493 MUST; two parsers could read two documents |
//! | `NaN`, `Infinity` | invalid (syntax) | read | read | not JSON numbers (RFC 8259 §6) |
//! | a lone surrogate escape `"\ud800"` | invalid (syntax) | read | read | no Unicode text (RFC 8259 §8.2) |
//! | `1e400` | invalid (syntax) | read as infinity | read as infinity | RFC 8259 §6 lets a parser limit the range (IEEE 754 double) |
//! | a leading UTF-8 byte order mark | invalid (syntax) | invalid | skipped | RFC 8259 §8.1: a sender MUST NOT add one; artifacts travel byte for byte |
//!
//! Numbers compare by value (`1.0` is the integer `1`), string lengths count code points, and
//! `uri` agrees with rfc3987 on every edge tried. Parsing is stricter than the references on
//! purpose (the JSON-text rows): the artifacts are signed, and orbi's byte-identity rule needs one
//! reading of every document.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod diff;
pub mod issue;
pub mod profile;
pub mod registry;
pub mod validate;

pub use diff::{Difference, semantic_diff};
pub use issue::Issue;
pub use profile::{MAX_ISSUES, MAX_VALUES_FOR_ISSUES, Profile, SchemaValidator};
pub use registry::{CanonicalSchema, Registry, SchemaError, registry};
pub use validate::{Report, parse, validate, validate_bytes, validate_value};
