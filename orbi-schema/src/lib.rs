//! The canonical schema registry, offline validation and the semantic schema diff.
//!
//! - [`registry()`]: every `schemas/*.schema.json`, embedded at compile time, looked up by short
//!   name (`inac-control`), `$id` (`urn:orbiplex:schema:inac-control:v1`), file name
//!   (`inac-control.v1.schema.json`) or a document's file name (`x.inac-control.json`).
//! - [`Registry::validator`]: a cached, compiled validator per schema and [`Profile`]: JSON
//!   Schema draft 2020-12, format assertion on (`date-time`, `uri`), no network or file access
//!   ever. The relative `$ref` to `participant-bind.v1.schema.json` inside URN-identified
//!   schemas is solved in the registry, the canonical files stay as committed.
//! - [`validate`]: bytes → strict parse → schema → typed `orbi-types` artifact, with a
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

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod diff;
pub mod issue;
pub mod profile;
pub mod registry;
pub mod validate;

pub use diff::{Difference, semantic_diff};
pub use issue::Issue;
pub use profile::{Profile, SchemaValidator};
pub use registry::{CanonicalSchema, Registry, SchemaError, registry};
pub use validate::{Report, parse, validate, validate_bytes, validate_value};
