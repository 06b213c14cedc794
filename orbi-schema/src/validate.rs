//! One call from bytes to a checked document: strict parse, schema validation, typed artifact.
//!
//! [`validate`] is the entry point for embedders: it parses the bytes (duplicate keys refused,
//! positions reported), validates the value against the artifact's canonical schema under a
//! [`Profile`], and only then deserializes the `orbi-types` artifact. Every failure is a
//! [`Report`] that says which of the three steps refused the document and lists every schema
//! issue, not just the first.

use std::fmt;

use orbi_types::{Artifact, ParseError, json};
use serde_json::Value;

use crate::{Issue, Profile, SchemaError, registry};

/// Why a document was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Report {
    /// The bytes are not JSON, or an object repeats a key; positions are 1-based.
    #[error("invalid json at line {line} column {column}: {message}")]
    Syntax {
        /// Line of the first offending byte.
        line: usize,
        /// Column of the first offending byte.
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// The document does not conform to the schema; every issue is listed.
    #[error("not a valid {schema} ({profile} profile): {}", Joined(issues))]
    Invalid {
        /// The schema's short name.
        schema: &'static str,
        /// The profile it was validated under.
        profile: Profile,
        /// Every reason, in the validator's order (never empty).
        issues: Vec<Issue>,
    },
    /// The document conforms to the schema but does not fit the typed artifact: an integer
    /// beyond 64 bits where the schema sets no maximum, or one written with a fraction
    /// (`3600.0`, a valid JSON Schema integer), which typed artifacts refuse so that they
    /// re-serialize to the text they were read from.
    #[error("conforms to {schema} but not to its typed artifact: field {pointer:?}: {message}")]
    Typed {
        /// The schema's short name.
        schema: &'static str,
        /// JSON pointer of the field that does not fit.
        pointer: String,
        /// What is wrong with it.
        message: String,
    },
    /// The schema is unknown or does not compile (a defect of the registry, not the document).
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl Report {
    /// The report as issues, whatever step refused the document: a syntax error is one issue
    /// at the document (its message carries line and column), a typed failure one issue at the
    /// offending field, both with an empty `keyword`.
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            Report::Invalid { issues, .. } => issues.clone(),
            Report::Typed {
                pointer, message, ..
            } => vec![Issue::document(
                pointer.clone(),
                format!("does not fit the typed artifact: {message}"),
            )],
            Report::Syntax { .. } | Report::Schema(_) => {
                vec![Issue::document("", self.to_string())]
            }
        }
    }
}

struct Joined<'a>(&'a [Issue]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, issue) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Parses `bytes` strictly: JSON per RFC 8259, no duplicate object keys, key order kept.
pub fn parse(bytes: &[u8]) -> Result<Value, Report> {
    json::from_slice_strict(bytes).map_err(|error| match error {
        ParseError::Syntax {
            line,
            column,
            message,
        } => Report::Syntax {
            line,
            column,
            message,
        },
        // from_slice_strict only reports syntax; a field error here would be a parser change.
        ParseError::Field { pointer, message } => Report::Syntax {
            line: 0,
            column: 0,
            message: format!("field {pointer:?}: {message}"),
        },
    })
}

/// Validates an already parsed `document` against `schema` (short name, `$id` or file name).
pub fn validate_value(schema: &str, document: &Value, profile: Profile) -> Result<(), Report> {
    registry().validator(schema, profile)?.check(document)
}

/// Parses `bytes` strictly and validates the value against `schema`; returns the value.
///
/// The caller keeps the bytes: the value is for reading, never for re-serializing signed data.
pub fn validate_bytes(schema: &str, bytes: &[u8], profile: Profile) -> Result<Value, Report> {
    registry().validator(schema, profile)?.check_bytes(bytes)
}

/// Parses, validates against `T`'s canonical schema, and deserializes into `T`.
///
/// ```
/// use orbi_schema::{Profile, Report, validate};
/// use orbi_types::InacControl;
///
/// let frame = br#"{"schema": "inac-control.v1", "operation": "request",
///     "request": {"schema": "memarium-blob.v1", "content/type": "text/plain"}}"#;
/// let control: InacControl = validate(frame, Profile::Seed)?;
///
/// let bad = br#"{"schema": "inac-control.v1", "operation": "request", "x": 1}"#;
/// let Err(Report::Invalid { issues, .. }) = validate::<InacControl>(bad, Profile::Seed) else {
///     panic!("two issues expected");
/// };
/// assert_eq!(issues.len(), 2); // the missing `request` and the unexpected `x`
/// # Ok::<(), Report>(())
/// ```
pub fn validate<T: Artifact>(bytes: &[u8], profile: Profile) -> Result<T, Report> {
    let document = validate_bytes(T::NAME, bytes, profile)?;
    T::from_value(&document).map_err(|error| match error {
        ParseError::Field { pointer, message } => Report::Typed {
            schema: T::NAME,
            pointer,
            message,
        },
        ParseError::Syntax { message, .. } => Report::Typed {
            schema: T::NAME,
            pointer: String::new(),
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbi_types::{ClientInstanceAttachment, InacControl, ParticipantBind};

    /// A valid bind from the fixtures.
    const BIND: &str = include_str!("../../schemas/examples/valid/k2-signed.participant-bind.json");

    #[test]
    fn a_valid_document_becomes_the_typed_artifact() {
        let bind: ParticipantBind = validate(BIND.as_bytes(), Profile::Frozen).unwrap();
        assert_eq!(bind.to_value(), parse(BIND.as_bytes()).unwrap());
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let report =
            validate::<ParticipantBind>(b"{\n  \"schema/v\": 1,\n  oops\n}", Profile::Seed)
                .unwrap_err();
        assert!(
            matches!(
                report,
                Report::Syntax {
                    line: 3,
                    column: 3,
                    ..
                }
            ),
            "{report:?}"
        );
        let issues = report.issues();
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0]
                .message
                .starts_with("invalid json at line 3 column 3: ")
        );
        // A repeated key is a syntax error too: two parsers could read two different values.
        let report =
            validate::<ParticipantBind>(br#"{"a": 1, "a": 2}"#, Profile::Seed).unwrap_err();
        assert!(
            report.to_string().contains("duplicate key \"a\""),
            "{report}"
        );
    }

    #[test]
    fn every_schema_issue_is_reported() {
        let mut document = parse(BIND.as_bytes()).unwrap();
        document["schema/v"] = 2.into();
        document["bound-at"] = "yesterday".into();
        document.as_object_mut().unwrap().remove("session/id");
        let bytes = serde_json::to_vec(&document).unwrap();
        let Err(Report::Invalid {
            schema,
            profile,
            issues,
        }) = validate::<ParticipantBind>(&bytes, Profile::Seed)
        else {
            panic!("invalid expected");
        };
        assert_eq!((schema, profile), ("participant-bind", Profile::Seed));
        let mut instances: Vec<&str> = issues.iter().map(|i| i.instance.as_str()).collect();
        instances.sort();
        assert_eq!(instances, ["", "/bound-at", "/schema~1v"]);
        assert!(issues.iter().all(|issue| !issue.keyword.is_empty()));
        let text = validate::<ParticipantBind>(&bytes, Profile::Seed)
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("not a valid participant-bind (seed profile): "),
            "{text}"
        );
        assert!(
            text.contains("missing required property \"session/id\""),
            "{text}"
        );
    }

    /// The report's text lists every issue, separated by `; `.
    #[test]
    fn an_invalid_report_joins_its_issues() {
        let report = validate_bytes(
            "inac-control",
            br#"{"schema": "inac-control.v1", "x": 1}"#,
            Profile::Seed,
        )
        .unwrap_err();
        assert_eq!(
            report.to_string(),
            "not a valid inac-control (seed profile): \
             (document): missing required property \"operation\" [/required]; \
             (document): unexpected property \"x\" [/additionalProperties]"
        );
    }

    #[test]
    fn the_profile_decides_open_or_closed() {
        let mut document = parse(BIND.as_bytes()).unwrap();
        document["unknown"] = true.into();
        let bytes = serde_json::to_vec(&document).unwrap();
        assert!(validate::<ParticipantBind>(&bytes, Profile::Seed).is_ok());
        let report = validate::<ParticipantBind>(&bytes, Profile::Frozen).unwrap_err();
        assert_eq!(
            report.issues()[0].message,
            "unexpected property \"unknown\""
        );
    }

    /// The schema puts no ceiling on `retry/after-ms`; the typed artifact holds a u64.
    #[test]
    fn schema_valid_but_untyped_is_a_typed_report() {
        let frame = br#"{"schema": "inac-control.v1", "operation": "refused",
            "response": {"status": "refused", "retry/after-ms": 1e30}}"#;
        assert!(validate_bytes("inac-control", frame, Profile::Seed).is_ok());
        let report = validate::<InacControl>(frame, Profile::Seed).unwrap_err();
        let Report::Typed {
            schema, pointer, ..
        } = &report
        else {
            panic!("typed report expected, got {report:?}");
        };
        assert_eq!(
            (*schema, pointer.as_str()),
            ("inac-control", "/response/retry~1after-ms")
        );
        assert_eq!(report.issues()[0].instance, "/response/retry~1after-ms");
    }

    #[test]
    fn the_relative_bind_reference_is_followed() {
        let attachment = format!(
            r#"{{"schema/v": 1, "attachment/id": "a", "attached-at": "2026-03-28T19:42:00Z",
            "profile/type": "pod-client",
            "serving-node/id": "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE",
            "client-instance/id": "c", "session/state": "attached",
            "export/capable?": true, "migration/allowed?": true, "participant-bind": {}}}"#,
            BIND.replace("\"sess:01JQPARTSESS001\"", "\"\"")
        );
        let report =
            validate::<ClientInstanceAttachment>(attachment.as_bytes(), Profile::Seed).unwrap_err();
        let issues = report.issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].instance, "/participant-bind/session~1id");
        assert_eq!(
            issues[0].keyword,
            "/properties/participant-bind/$ref/properties/session~1id/minLength"
        );
    }

    #[test]
    fn unknown_schemas_are_reported_not_panicked() {
        let report = validate_bytes("nope", b"{}", Profile::Seed).unwrap_err();
        assert_eq!(report, Report::Schema(SchemaError::Unknown("nope".into())));
        assert_eq!(report.issues()[0].message, "unknown schema \"nope\"");
    }
}
