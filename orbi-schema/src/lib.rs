//! The canonical schema registry, offline validation and the semantic schema diff.
//!
//! ```
//! use orbi_schema::{Profile, registry};
//!
//! let validator = registry().validator("participant-bind", Profile::Seed)?;
//! let issues = validator.issues(&serde_json::json!({"schema/v": 1}));
//! assert!(issues.iter().any(|issue| issue.message.contains("\"bind/id\" is a required property")));
//! # Ok::<(), orbi_schema::SchemaError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod diff;
pub mod profile;
pub mod registry;

pub use diff::{Difference, semantic_diff};
pub use profile::{Issue, Profile, SchemaValidator};
pub use registry::{CanonicalSchema, Registry, SchemaError, registry};
