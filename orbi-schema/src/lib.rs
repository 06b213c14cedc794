//! The canonical schema registry, offline validation and the semantic schema diff.
//!
//! ```
//! let registry = orbi_schema::registry();
//! let bind = registry.get("participant-bind")?;
//! let validator = registry.compile(bind.name, &bind.document)?;
//! assert!(!validator.is_valid(&serde_json::json!({"schema/v": 1})));
//! # Ok::<(), orbi_schema::SchemaError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod diff;
pub mod registry;

pub use diff::{Difference, semantic_diff};
pub use registry::{CanonicalSchema, Registry, SchemaError, registry};
