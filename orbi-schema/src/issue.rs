//! One reason a document does not conform, in words a reader can act on.
//!
//! The validator library's own messages start with a capital, quote whole values (a 1 MiB string
//! becomes a 1 MiB message) and phrase combinator failures vaguely. [`Issue`] keeps the
//! library's two locations and writes its own lowercase message from the error's kind, quoting
//! at most [`MAX_QUOTED_CHARS`] characters of any value.

use std::{fmt, io};

use jsonschema::{
    ValidationError,
    error::{TypeKind, ValidationErrorKind},
};
use serde_json::Value;

/// The longest excerpt of an offending value quoted in a message, in characters.
pub const MAX_QUOTED_CHARS: usize = 64;

/// How many alternatives of a failed `oneOf`/`anyOf` are explained in its message.
const MAX_EXPLAINED_ALTERNATIVES: usize = 4;

/// One reason a document does not conform.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Issue {
    /// JSON pointer of the offending value in the document (`""` for the document itself).
    pub instance: String,
    /// JSON pointer of the failing keyword along the evaluation path, `$ref` hops included
    /// (the 2020-12 output format's `keywordLocation`), e.g. `/properties/schema~1v/const` or
    /// `/properties/participant-bind/$ref/required`.
    pub keyword: String,
    /// What is wrong, in lowercase words, naming the offending value.
    pub message: String,
}

impl Issue {
    /// Converts one error of the validator library.
    pub(crate) fn from_error(error: &ValidationError<'_>) -> Issue {
        Issue {
            instance: error.instance_path().to_string(),
            keyword: error.evaluation_path().to_string(),
            message: describe(error, true),
        }
    }

    /// An issue about the whole document that no schema keyword raised (unparseable bytes, a
    /// typed-deserialization failure): `keyword` is empty.
    pub fn document(instance: impl Into<String>, message: impl Into<String>) -> Issue {
        Issue {
            instance: instance.into(),
            keyword: String::new(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.instance.is_empty() {
            "(document)"
        } else {
            &self.instance
        };
        if self.keyword.is_empty() {
            write!(f, "{at}: {}", self.message)
        } else {
            write!(f, "{at}: {} [{}]", self.message, self.keyword)
        }
    }
}

/// The message for `error`; `explain` lists why the alternatives of a combinator failed (one
/// level deep, so messages stay bounded).
fn describe(error: &ValidationError<'_>, explain: bool) -> String {
    let instance: &Value = error.instance();
    let quoted = || quote(instance);
    match error.kind() {
        ValidationErrorKind::AdditionalItems { limit } => {
            format!("has items beyond the {limit} the schema allows")
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!("unexpected {}", properties(unexpected))
        }
        ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            format!("unevaluated {}", properties(unexpected))
        }
        ValidationErrorKind::UnevaluatedItems { unexpected } => {
            format!("unevaluated items {}", unexpected.join(", "))
        }
        ValidationErrorKind::AnyOf { context } => combinator(
            "matches none of the anyOf alternatives",
            error.instance_path().as_str(),
            context,
            explain,
        ),
        ValidationErrorKind::OneOfNotValid { context } => combinator(
            "matches none of the oneOf alternatives",
            error.instance_path().as_str(),
            context,
            explain,
        ),
        ValidationErrorKind::OneOfMultipleValid { context } => {
            let matching = context.iter().filter(|errors| errors.is_empty()).count();
            format!(
                "matches {matching} of the {} oneOf alternatives, exactly one is allowed",
                context.len()
            )
        }
        ValidationErrorKind::Not { schema } => format!("must not match {}", quote(schema)),
        ValidationErrorKind::BacktrackLimitExceeded { error } => {
            format!(
                "pattern could not be evaluated: {}",
                lowercase(&error.to_string())
            )
        }
        ValidationErrorKind::RegexEngineFailure { message } => {
            format!("pattern could not be evaluated: {}", lowercase(message))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("must be {}, found {}", quote(expected_value), quoted())
        }
        ValidationErrorKind::Contains => "no item matches the contains schema".into(),
        ValidationErrorKind::ContentEncoding { content_encoding } => {
            format!("{} is not valid {content_encoding}", quoted())
        }
        ValidationErrorKind::ContentMediaType { content_media_type } => {
            format!("{} is not valid {content_media_type}", quoted())
        }
        ValidationErrorKind::FromUtf8 { .. } => {
            format!("{} does not decode to utf-8", quoted())
        }
        ValidationErrorKind::Custom { message, .. } => lowercase(message),
        ValidationErrorKind::Enum { options } => {
            format!("{} is not one of {}", quoted(), choices(options))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            format!("{} is not below the exclusive maximum of {limit}", quoted())
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            format!("{} is not above the exclusive minimum of {limit}", quoted())
        }
        ValidationErrorKind::Maximum { limit } => {
            format!("{} is greater than the maximum of {limit}", quoted())
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("{} is less than the minimum of {limit}", quoted())
        }
        ValidationErrorKind::MultipleOf { multiple_of } => {
            format!("{} is not a multiple of {multiple_of}", quoted())
        }
        ValidationErrorKind::FalseSchema => format!("{} is not allowed here", quoted()),
        ValidationErrorKind::Format { format } => {
            format!("{} is not a valid {format}{}", quoted(), standard(format))
        }
        ValidationErrorKind::MaxItems { limit } => {
            format!(
                "has {}, more than the maximum of {limit}",
                counted(instance, "item", "items")
            )
        }
        ValidationErrorKind::MinItems { limit } => {
            format!(
                "has {}, fewer than the minimum of {limit}",
                counted(instance, "item", "items")
            )
        }
        ValidationErrorKind::MaxProperties { limit } => {
            format!(
                "has {}, more than the maximum of {limit}",
                counted(instance, "property", "properties")
            )
        }
        ValidationErrorKind::MinProperties { limit } => {
            format!(
                "has {}, fewer than the minimum of {limit}",
                counted(instance, "property", "properties")
            )
        }
        ValidationErrorKind::MaxLength { limit } => format!(
            "{} has {}, more than the maximum of {limit}",
            quoted(),
            counted(instance, "character", "characters")
        ),
        ValidationErrorKind::MinLength { limit } => format!(
            "{} has {}, fewer than the minimum of {limit}",
            quoted(),
            counted(instance, "character", "characters")
        ),
        ValidationErrorKind::Pattern { pattern } => {
            format!("{} does not match the pattern {pattern}", quoted())
        }
        ValidationErrorKind::PropertyNames { error } => {
            format!("property name {}", describe(error, false))
        }
        ValidationErrorKind::Required { property } => {
            format!("missing required property {property}")
        }
        ValidationErrorKind::Type { kind } => {
            let expected: Vec<&str> = match kind {
                TypeKind::Single(single) => vec![single.as_str()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
            };
            // `null` is its own type name and its only value: say it once.
            let found = if instance.is_null() {
                "null".to_owned()
            } else {
                format!("{} {}", type_name(instance), quoted())
            };
            format!("expected {}, found {found}", expected.join(" or "))
        }
        ValidationErrorKind::UniqueItems => "has duplicate items".into(),
        ValidationErrorKind::Referencing(error) => {
            format!("unresolvable reference: {}", lowercase(&error.to_string()))
        }
    }
}

/// `properties "a", "b"` or `property "a"`.
fn properties(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| quote_str(name)).collect();
    let noun = if names.len() == 1 {
        "property"
    } else {
        "properties"
    };
    format!("{noun} {}", quoted.join(", "))
}

/// The message of a failed combinator, followed (when `explain`) by the first reason each
/// alternative failed.
fn combinator(
    head: &str,
    parent: &str,
    context: &[Vec<ValidationError<'static>>],
    explain: bool,
) -> String {
    if !explain || context.is_empty() {
        return head.to_owned();
    }
    let reasons: Vec<String> = context
        .iter()
        .take(MAX_EXPLAINED_ALTERNATIVES)
        .enumerate()
        .map(|(index, errors)| match errors.first() {
            Some(first) if first.instance_path().as_str() == parent => {
                format!("#{index}: {}", describe(first, false))
            }
            Some(first) => format!(
                "#{index} at {}: {}",
                first.instance_path(),
                describe(first, false)
            ),
            None => format!("#{index}: matches"),
        })
        .collect();
    let more = context.len().saturating_sub(MAX_EXPLAINED_ALTERNATIVES);
    let tail = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!("{head} ({}{tail})", reasons.join("; "))
}

/// The standard a format check follows, for the message.
fn standard(format: &str) -> &'static str {
    match format {
        "date-time" | "date" | "time" => " (rfc 3339)",
        "uri" | "uri-reference" => " (rfc 3986)",
        _ => "",
    }
}

fn choices(options: &Value) -> String {
    match options {
        Value::Array(items) => {
            let quoted: Vec<String> = items.iter().map(quote).collect();
            truncate(&quoted.join(", "), MAX_QUOTED_CHARS * 4)
        }
        other => quote(other),
    }
}

/// `1 item`, `3 items`.
fn counted(value: &Value, one: &str, many: &str) -> String {
    match count(value) {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

fn count(value: &Value) -> usize {
    match value {
        Value::String(text) => text.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => 0,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Library messages that we pass through start with a capital; ours never do.
fn lowercase(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn quote_str(text: &str) -> String {
    quote(&Value::String(text.to_owned()))
}

/// `value` as JSON text, cut to [`MAX_QUOTED_CHARS`] characters with a trailing `…`.
///
/// Serialization stops as soon as the excerpt is long enough, so quoting a huge value costs
/// no more than quoting a small one.
pub(crate) fn quote(value: &Value) -> String {
    let mut excerpt = Excerpt {
        text: Vec::new(),
        limit: MAX_QUOTED_CHARS * 4 + 4,
    };
    // The writer fails on purpose once it has enough; whatever it holds by then is what we show.
    let _ = serde_json::to_writer(&mut excerpt, value);
    truncate(&String::from_utf8_lossy(&excerpt.text), MAX_QUOTED_CHARS)
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A writer that keeps at most `limit` bytes and then refuses more.
struct Excerpt {
    text: Vec<u8>,
    limit: usize,
}

impl io::Write for Excerpt {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.text.len());
        if room == 0 {
            return Err(io::Error::other("excerpt is long enough"));
        }
        let taken = buf.len().min(room);
        self.text.extend_from_slice(&buf[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_are_bounded_and_cut_on_character_boundaries() {
        assert_eq!(quote(&json!("abc")), "\"abc\"");
        assert_eq!(quote(&json!(1.5)), "1.5");
        let long = "é".repeat(1_000_000);
        let quoted = quote(&json!(long));
        assert_eq!(quoted.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(quoted.starts_with("\"éé") && quoted.ends_with('…'));
        let nested = json!({"a": [1, 2, {"b": "x".repeat(500)}]});
        assert!(quote(&nested).starts_with("{\"a\":[1,2,{\"b\":\"xxx"));
        // Control characters stay escaped, so a message is always one line.
        assert_eq!(quote(&json!("a\nb")), "\"a\\nb\"");
    }

    #[test]
    fn messages_are_lowercase_and_name_the_value() {
        let cases = [
            (
                json!({"type": "string"}),
                json!(12),
                "expected string, found integer 12",
            ),
            (
                json!({"type": ["string", "null"]}),
                json!(1.5),
                "expected null or string, found number 1.5",
            ),
            (
                json!({"type": "object"}),
                json!(null),
                "expected object, found null",
            ),
            (json!({"const": 1}), json!(2), "must be 1, found 2"),
            (
                json!({"enum": ["a", "b"]}),
                json!("c"),
                "\"c\" is not one of \"a\", \"b\"",
            ),
            (
                json!({"minLength": 2}),
                json!("é"),
                "\"é\" has 1 character, fewer than the minimum of 2",
            ),
            (
                json!({"pattern": "^a+$"}),
                json!("ab"),
                "\"ab\" does not match the pattern ^a+$",
            ),
            (
                json!({"format": "date-time"}),
                json!("2026-03-28 19:42"),
                "\"2026-03-28 19:42\" is not a valid date-time (rfc 3339)",
            ),
            (
                json!({"required": ["a/b"]}),
                json!({}),
                "missing required property \"a/b\"",
            ),
            (
                json!({"additionalProperties": false, "properties": {"a": true}}),
                json!({"a": 1, "b": 2, "c": 3}),
                "unexpected properties \"b\", \"c\"",
            ),
            (
                json!({"maximum": 3}),
                json!(4),
                "4 is greater than the maximum of 3",
            ),
            (
                json!({"maxProperties": 1}),
                json!({"a": 1, "b": 2}),
                "has 2 properties, more than the maximum of 1",
            ),
            (
                json!({"minItems": 1}),
                json!([]),
                "has 0 items, fewer than the minimum of 1",
            ),
            (
                json!({"propertyNames": {"maxLength": 1}}),
                json!({"ab": 1}),
                "property name \"ab\" has 2 characters, more than the maximum of 1",
            ),
            (
                json!({"not": {"type": "integer"}}),
                json!(1),
                "must not match {\"type\":\"integer\"}",
            ),
        ];
        for (schema, instance, expected) in cases {
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap();
            let issues: Vec<Issue> = validator
                .iter_errors(&instance)
                .map(|e| Issue::from_error(&e))
                .collect();
            assert_eq!(issues.len(), 1, "{schema}: {issues:?}");
            assert_eq!(issues[0].message, expected, "{schema}");
        }
    }

    #[test]
    fn combinators_explain_each_alternative() {
        let schema = json!({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]});
        let validator = jsonschema::validator_for(&schema).unwrap();
        let issue = Issue::from_error(&validator.iter_errors(&json!({})).next().unwrap());
        assert_eq!(
            issue.message,
            "matches none of the oneOf alternatives (#0: missing required property \"a\"; \
             #1: missing required property \"b\")"
        );
        let issue = Issue::from_error(
            &validator
                .iter_errors(&json!({"a": 1, "b": 2}))
                .next()
                .unwrap(),
        );
        assert_eq!(
            issue.message,
            "matches 2 of the 2 oneOf alternatives, exactly one is allowed"
        );
        assert_eq!(issue.keyword, "/oneOf");
    }

    /// At most four alternatives are explained; the others are counted.
    #[test]
    fn combinators_explain_at_most_four_alternatives() {
        let alternatives: Vec<Value> = (0..6)
            .map(|i| json!({"required": [format!("k{i}")]}))
            .collect();
        let validator = jsonschema::validator_for(&json!({"anyOf": alternatives})).unwrap();
        let issue = Issue::from_error(&validator.iter_errors(&json!({})).next().unwrap());
        assert_eq!(
            issue.message,
            "matches none of the anyOf alternatives (#0: missing required property \"k0\"; \
             #1: missing required property \"k1\"; #2: missing required property \"k2\"; \
             #3: missing required property \"k3\"; and 2 more)"
        );
    }

    #[test]
    fn display_names_the_place_and_the_keyword() {
        let issue = Issue {
            instance: "/a~1b".into(),
            keyword: "/properties/a~1b/minLength".into(),
            message: "\"\" has 0 characters, fewer than the minimum of 1".into(),
        };
        assert_eq!(
            issue.to_string(),
            "/a~1b: \"\" has 0 characters, fewer than the minimum of 1 \
             [/properties/a~1b/minLength]"
        );
        assert_eq!(
            Issue::document("", "invalid json at line 1 column 1: expected value").to_string(),
            "(document): invalid json at line 1 column 1: expected value"
        );
    }
}
