//! Semantic comparison of two JSON Schema documents.
//!
//! Two schemas are *semantically equal* when they validate the same way. Before comparing, each
//! side is normalized:
//!
//! 1. annotation keywords are dropped: [`IGNORED_ANNOTATIONS`] and every `x-…` keyword;
//! 2. local references (`#/$defs/…`, `#/definitions/…`, percent-encoded or not) are inlined
//!    and the definition containers dropped, so `$defs` naming does not matter (a difference
//!    inside an inlined definition is still reported at the definition's own pointer). A
//!    document with a reference this cannot follow (an `$anchor`, a `$dynamicRef`, an absolute
//!    reference into itself) keeps its definitions and compares them as they are;
//! 3. `additionalProperties: true` (and `{}`) is dropped: it is the same as absent, unless
//!    the document uses `unevaluatedProperties`, which it can change;
//! 4. `required`, `enum` and array-valued `type` are compared as sets; the members of `allOf`,
//!    `anyOf` and `oneOf` are compared as unordered collections.
//!
//! Every other keyword is compared exactly; values in data positions (`const`, `enum`,
//! `default`, …) are never normalized. Remote references (`participant-bind.v1.schema.json`)
//! are compared as text.

use std::{collections::BTreeMap, fmt};

use serde_json::{Map, Value};

/// Annotation keywords that never affect validation and are ignored by the comparison.
/// Keywords starting with `x-` are ignored too.
pub const IGNORED_ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "$comment",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Keywords whose value is one subschema.
const SINGLE_SCHEMA: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "items",
    "additionalItems",
    "additionalProperties",
    "propertyNames",
    "contains",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];
/// Keywords whose value maps names to subschemas.
const SCHEMA_MAP: &[&str] = &["properties", "patternProperties", "dependentSchemas"];
/// Keywords whose value is an array of subschemas, order irrelevant.
const SCHEMA_SET: &[&str] = &["allOf", "anyOf", "oneOf"];
/// Keywords whose value is an array of subschemas, order relevant.
const SCHEMA_LIST: &[&str] = &["prefixItems"];
/// Keywords whose value is a set of JSON values.
const VALUE_SET: &[&str] = &["required", "enum", "type"];
/// Definition containers, dropped after inlining.
const DEFINITIONS: &[&str] = &["$defs", "definitions"];

/// How deep local references may nest before the comparison gives up on a cycle.
const MAX_REF_DEPTH: usize = 32;

/// One difference between two schemas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// JSON pointer into the left document.
    pub left: String,
    /// JSON pointer into the right document.
    pub right: String,
    /// What differs, in words.
    pub what: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "left {:?} / right {:?}: {}",
            self.left, self.right, self.what
        )
    }
}

/// Compares two schema documents semantically; an empty result means they validate alike.
///
/// ```
/// use serde_json::json;
/// let left = json!({"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}});
/// let right = json!({"description": "ours", "properties": {"x": {"type": "string", "title": "X"}}});
/// assert!(orbi_schema::diff::semantic_diff(&left, &right).is_empty());
///
/// let stricter = json!({"properties": {"x": {"type": "string", "minLength": 1}}});
/// let diff = orbi_schema::diff::semantic_diff(&right, &stricter);
/// assert_eq!(diff.len(), 1);
/// assert_eq!(diff[0].right, "/properties/x/minLength");
/// ```
pub fn semantic_diff(left: &Value, right: &Value) -> Vec<Difference> {
    let left = Normalizer::new(left).node(left, String::new(), 0);
    let right = Normalizer::new(right).node(right, String::new(), 0);
    let mut differences = Vec::new();
    compare(&left, &right, &mut differences);
    differences
}

/// A normalized schema with the pointer it came from.
#[derive(Clone, Debug)]
struct Node {
    pointer: String,
    schema: Shape,
}

#[derive(Clone, Debug)]
enum Shape {
    Bool(bool),
    Object(BTreeMap<String, Keyword>),
    /// Not a schema where one was expected (kept so the difference is reported, not hidden).
    Invalid(Value),
}

#[derive(Clone, Debug)]
enum Keyword {
    Schema(Node),
    SchemaMap(BTreeMap<String, Node>),
    SchemaSet(Vec<Node>),
    SchemaList(Vec<Node>),
    ValueSet(Vec<Value>),
    Value(Value),
}

struct Normalizer<'a> {
    root: &'a Value,
    /// Whether definition containers are kept: some reference cannot be inlined.
    keep_definitions: bool,
    /// Whether the document uses `unevaluatedProperties` anywhere: then an
    /// `additionalProperties: true` (in an `allOf` member, a `$ref` target, …) can change
    /// what it sees, and is kept.
    uses_unevaluated: bool,
}

impl<'a> Normalizer<'a> {
    fn new(root: &'a Value) -> Self {
        let mut normalizer = Normalizer {
            root,
            keep_definitions: false,
            uses_unevaluated: uses_keyword(root, "unevaluatedProperties"),
        };
        normalizer.keep_definitions = normalizer.has_opaque_reference(root);
        normalizer
    }

    /// Whether `value` holds a reference into this document that [`Self::resolve_local`]
    /// cannot follow: its target would otherwise be dropped with the definitions.
    fn has_opaque_reference(&self, value: &Value) -> bool {
        any_member(value, &|key, child| match key {
            "$anchor" | "$dynamicAnchor" | "$dynamicRef" | "$recursiveRef" => true,
            "$ref" => child.as_str().is_some_and(|reference| {
                reference.contains('#') && self.resolve_local(child, 0).is_none()
            }),
            _ => false,
        })
    }

    fn node(&self, value: &Value, pointer: String, depth: usize) -> Node {
        let schema = match value {
            Value::Bool(b) => Shape::Bool(*b),
            Value::Object(map) => return self.object(map, pointer, depth),
            other => Shape::Invalid(other.clone()),
        };
        Node { pointer, schema }
    }

    fn object(&self, map: &Map<String, Value>, pointer: String, depth: usize) -> Node {
        let mut keywords = BTreeMap::new();
        for (key, value) in map {
            let at = format!("{pointer}/{}", escape(key));
            if key.starts_with("x-")
                || IGNORED_ANNOTATIONS.contains(&key.as_str())
                || (DEFINITIONS.contains(&key.as_str()) && !self.keep_definitions)
            {
                continue;
            }
            if key == "additionalProperties" && is_trivially_true(value) && !self.uses_unevaluated {
                continue;
            }

            let keyword = if key == "$ref" {
                match self.resolve_local(value, depth) {
                    Some((target, target_pointer)) => {
                        Keyword::Schema(self.node(target, target_pointer, depth + 1))
                    }
                    None => Keyword::Value(value.clone()),
                }
            } else if SINGLE_SCHEMA.contains(&key.as_str()) {
                Keyword::Schema(self.node(value, at, depth))
            } else if (SCHEMA_MAP.contains(&key.as_str()) || DEFINITIONS.contains(&key.as_str()))
                && value.is_object()
            {
                // Definitions reach here only when kept (see `keep_definitions`).
                let children = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, child)| {
                        let child_at = format!("{at}/{}", escape(name));
                        (name.clone(), self.node(child, child_at, depth))
                    })
                    .collect();
                Keyword::SchemaMap(children)
            } else if (SCHEMA_SET.contains(&key.as_str()) || SCHEMA_LIST.contains(&key.as_str()))
                && value.is_array()
            {
                let children: Vec<Node> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(index, child)| self.node(child, format!("{at}/{index}"), depth))
                    .collect();
                if SCHEMA_SET.contains(&key.as_str()) {
                    Keyword::SchemaSet(children)
                } else {
                    Keyword::SchemaList(children)
                }
            } else if VALUE_SET.contains(&key.as_str()) {
                Keyword::ValueSet(value_set(value))
            } else {
                Keyword::Value(value.clone())
            };
            keywords.insert(key.clone(), keyword);
        }
        // A node that is only a reference is the referenced schema.
        if keywords.len() == 1
            && let Some(Keyword::Schema(target)) = keywords.get("$ref")
            && map.get("$ref").is_some_and(|r| self.is_local_ref(r))
        {
            return target.clone();
        }
        Node {
            pointer,
            schema: Shape::Object(keywords),
        }
    }

    fn is_local_ref(&self, reference: &Value) -> bool {
        reference.as_str().is_some_and(|r| r.starts_with("#/"))
    }

    fn resolve_local(&self, reference: &Value, depth: usize) -> Option<(&'a Value, String)> {
        let text = reference.as_str()?;
        let pointer = percent_decode(text.strip_prefix('#')?)?;
        if depth >= MAX_REF_DEPTH || !pointer.starts_with('/') {
            return None;
        }
        self.root
            .pointer(&pointer)
            .map(|target| (target, pointer.clone()))
    }
}

/// Whether `keyword` appears as a member name anywhere in `value`.
fn uses_keyword(value: &Value, keyword: &str) -> bool {
    any_member(value, &|key, _| key == keyword)
}

/// Whether some member anywhere in `value` (at any depth, in arrays too) satisfies `found`.
fn any_member(value: &Value, found: &dyn Fn(&str, &Value) -> bool) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(key, child)| found(key, child) || any_member(child, found)),
        Value::Array(items) => items.iter().any(|item| any_member(item, found)),
        _ => false,
    }
}

/// A URI fragment with its `%XX` escapes decoded (RFC 3986); `None` if malformed.
fn percent_decode(fragment: &str) -> Option<String> {
    let bytes = fragment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = fragment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn is_trivially_true(value: &Value) -> bool {
    match value {
        Value::Bool(true) => true,
        Value::Object(map) => map
            .keys()
            .all(|key| key.starts_with("x-") || IGNORED_ANNOTATIONS.contains(&key.as_str())),
        _ => false,
    }
}

fn value_set(value: &Value) -> Vec<Value> {
    let mut items = match value {
        Value::Array(items) => items.clone(),
        single => vec![single.clone()],
    };
    items.sort_by_key(|item| item.to_string());
    items.dedup();
    items
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn compare(left: &Node, right: &Node, out: &mut Vec<Difference>) {
    match (&left.schema, &right.schema) {
        (Shape::Object(l), Shape::Object(r)) => {
            for (key, lk) in l {
                match r.get(key) {
                    Some(rk) => compare_keyword(key, lk, rk, left, right, out),
                    None => out.push(Difference {
                        left: format!("{}/{}", left.pointer, escape(key)),
                        right: right.pointer.clone(),
                        what: format!("keyword {key:?} only on the left"),
                    }),
                }
            }
            for key in r.keys().filter(|key| !l.contains_key(*key)) {
                out.push(Difference {
                    left: left.pointer.clone(),
                    right: format!("{}/{}", right.pointer, escape(key)),
                    what: format!("keyword {key:?} only on the right"),
                });
            }
        }
        (Shape::Bool(l), Shape::Bool(r)) if l == r => {}
        _ => out.push(Difference {
            left: left.pointer.clone(),
            right: right.pointer.clone(),
            what: format!(
                "schema {} differs from {}",
                describe(&left.schema),
                describe(&right.schema)
            ),
        }),
    }
}

fn describe(shape: &Shape) -> String {
    match shape {
        Shape::Bool(b) => b.to_string(),
        Shape::Object(_) => "object".into(),
        Shape::Invalid(value) => format!("non-schema {value}"),
    }
}

fn compare_keyword(
    key: &str,
    left: &Keyword,
    right: &Keyword,
    left_node: &Node,
    right_node: &Node,
    out: &mut Vec<Difference>,
) {
    let at = |node: &Node| format!("{}/{}", node.pointer, escape(key));
    match (left, right) {
        (Keyword::Schema(l), Keyword::Schema(r)) => compare(l, r, out),
        (Keyword::SchemaMap(l), Keyword::SchemaMap(r)) => {
            for (name, ln) in l {
                match r.get(name) {
                    Some(rn) => compare(ln, rn, out),
                    None => out.push(Difference {
                        left: ln.pointer.clone(),
                        right: at(right_node),
                        what: format!("{key} member {name:?} only on the left"),
                    }),
                }
            }
            for (name, rn) in r.iter().filter(|(name, _)| !l.contains_key(*name)) {
                out.push(Difference {
                    left: at(left_node),
                    right: rn.pointer.clone(),
                    what: format!("{key} member {name:?} only on the right"),
                });
            }
        }
        (Keyword::SchemaList(l), Keyword::SchemaList(r)) if l.len() == r.len() => {
            for (ln, rn) in l.iter().zip(r) {
                compare(ln, rn, out);
            }
        }
        (Keyword::SchemaSet(l), Keyword::SchemaSet(r)) => {
            compare_unordered(key, l, r, left_node, right_node, out)
        }
        (Keyword::ValueSet(l), Keyword::ValueSet(r)) if l == r => {}
        (Keyword::Value(l), Keyword::Value(r)) if l == r => {}
        _ => out.push(Difference {
            left: at(left_node),
            right: at(right_node),
            what: format!(
                "{key} is {} on the left, {} on the right",
                render(left),
                render(right)
            ),
        }),
    }
}

/// Pairs members of `allOf`/`anyOf`/`oneOf` that are equal; members left unpaired are compared
/// positionally so the report points at the closest candidates.
fn compare_unordered(
    key: &str,
    left: &[Node],
    right: &[Node],
    left_node: &Node,
    right_node: &Node,
    out: &mut Vec<Difference>,
) {
    let mut unmatched_right: Vec<&Node> = right.iter().collect();
    let mut unmatched_left = Vec::new();
    for ln in left {
        let position = unmatched_right.iter().position(|rn| {
            let mut scratch = Vec::new();
            compare(ln, rn, &mut scratch);
            scratch.is_empty()
        });
        match position {
            Some(index) => {
                unmatched_right.remove(index);
            }
            None => unmatched_left.push(ln),
        }
    }
    if unmatched_left.len() != unmatched_right.len() {
        out.push(Difference {
            left: format!("{}/{}", left_node.pointer, escape(key)),
            right: format!("{}/{}", right_node.pointer, escape(key)),
            what: format!(
                "{key} has {} members on the left, {} on the right",
                left.len(),
                right.len()
            ),
        });
    }
    for (ln, rn) in unmatched_left.into_iter().zip(unmatched_right) {
        compare(ln, rn, out);
    }
}

fn render(keyword: &Keyword) -> String {
    match keyword {
        Keyword::Value(value) => value.to_string(),
        Keyword::ValueSet(values) => Value::Array(values.clone()).to_string(),
        Keyword::Schema(_) => "a schema".into(),
        Keyword::SchemaMap(_) => "a map of schemas".into(),
        Keyword::SchemaSet(_) | Keyword::SchemaList(_) => "a list of schemas".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Whether the two schemas judge `instance` differently (the jsonschema crate decides).
    fn judged_apart(left: &Value, right: &Value, instance: &Value) -> bool {
        let compile = |schema: &Value| jsonschema::validator_for(schema).unwrap();
        compile(left).is_valid(instance) != compile(right).is_valid(instance)
    }

    #[test]
    fn pairs_that_validate_differently_are_never_reported_equal() {
        let string_or_integer = |reference: &str, root: Value| {
            let with = |kind: &str| {
                let mut schema = root.clone();
                schema["properties"] = json!({"s": {"$ref": reference}});
                let defs = schema["$defs"].as_object_mut().unwrap();
                let (_, target) = defs.iter_mut().next().unwrap();
                target["type"] = json!(kind);
                schema
            };
            (with("string"), with("integer"))
        };
        let pairs = [
            // `additionalProperties: true` evaluates extra members for unevaluatedProperties,
            // beside it or from an `allOf` member.
            (
                json!({"type": "object", "additionalProperties": true, "unevaluatedProperties": false}),
                json!({"type": "object", "unevaluatedProperties": false}),
                json!({"x": 1}),
            ),
            (
                json!({"allOf": [{"additionalProperties": true}], "unevaluatedProperties": false}),
                json!({"allOf": [{}], "unevaluatedProperties": false}),
                json!({"x": 1}),
            ),
            {
                let (l, r) = string_or_integer("#sig", json!({"$defs": {"a": {"$anchor": "sig"}}}));
                (l, r, json!({"s": "x"}))
            },
            {
                let (l, r) = string_or_integer("#/$defs/a%20b", json!({"$defs": {"a b": {}}}));
                (l, r, json!({"s": "x"}))
            },
            {
                let root = json!({"$id": "urn:t", "$defs": {"a": {}}});
                let (l, r) = string_or_integer("urn:t#/$defs/a", root);
                (l, r, json!({"s": "x"}))
            },
        ];
        for (left, right, instance) in pairs {
            assert!(
                judged_apart(&left, &right, &instance),
                "premise: {left} / {right}"
            );
            assert!(!semantic_diff(&left, &right).is_empty(), "{left} / {right}");
        }
    }

    #[test]
    fn a_percent_encoded_local_reference_is_inlined_like_any_other() {
        let encoded = json!({"properties": {"s": {"$ref": "#/$defs/a%20b"}}, "$defs": {"a b": {"type": "string"}}});
        let inline = json!({"properties": {"s": {"type": "string"}}});
        assert!(semantic_diff(&encoded, &inline).is_empty());
    }

    #[test]
    fn annotations_order_and_def_names_are_ignored() {
        let left = json!({
            "title": "A", "x-dia-status": "draft", "type": "object",
            "required": ["a", "b"], "additionalProperties": true,
            "properties": {"s": {"$ref": "#/$defs/signature", "description": "d"}},
            "$defs": {"signature": {"enum": ["x", "y"]}}
        });
        let right = json!({
            "type": "object", "required": ["b", "a"],
            "properties": {"s": {"$ref": "#/$defs/Sig"}},
            "$defs": {"Sig": {"enum": ["y", "x"], "title": "Sig"}}
        });
        assert_eq!(semantic_diff(&left, &right), vec![]);
    }

    #[test]
    fn every_validation_change_is_reported_with_pointers_on_both_sides() {
        let base = json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1}},
            "$defs": {"sig": {"type": "object", "additionalProperties": true}},
            "allOf": [{"if": {"required": ["a"]}, "then": {"required": ["b"]}}]
        });
        let mut changed = base.clone();
        changed["properties"]["n"]["minimum"] = json!(0);
        changed["allOf"][0]["then"]["required"] = json!(["c"]);
        let differences = semantic_diff(&base, &changed);
        assert_eq!(differences.len(), 2, "{differences:#?}");
        assert_eq!(differences[0].left, "/allOf/0/then/required");
        assert_eq!(differences[0].right, "/allOf/0/then/required");
        assert_eq!(differences[1].left, "/properties/n/minimum");
        assert!(
            differences[1]
                .what
                .contains("1 on the left, 0 on the right")
        );
    }

    #[test]
    fn inlined_definitions_report_their_own_pointer() {
        let left = json!({"properties": {"s": {"$ref": "#/$defs/signature"}},
            "$defs": {"signature": {"type": "object", "additionalProperties": true}}});
        let right = json!({"properties": {"s": {"$ref": "#/$defs/signature"}},
            "$defs": {"signature": {"type": "object", "additionalProperties": false}}});
        let differences = semantic_diff(&left, &right);
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0].left, "/$defs/signature");
        assert_eq!(
            differences[0].right,
            "/$defs/signature/additionalProperties"
        );
    }

    #[test]
    fn missing_and_extra_properties_and_remote_refs() {
        let left = json!({"properties": {"a": {"$ref": "other.json"}, "b": true}});
        let right = json!({"properties": {"a": {"$ref": "urn:other"}, "c": true}});
        let differences = semantic_diff(&left, &right);
        let whats: Vec<_> = differences.iter().map(|d| d.what.as_str()).collect();
        assert_eq!(
            whats,
            vec![
                r#"$ref is "other.json" on the left, "urn:other" on the right"#,
                r#"properties member "b" only on the left"#,
                r#"properties member "c" only on the right"#,
            ]
        );
    }

    #[test]
    fn unordered_combinators_and_data_positions() {
        let left =
            json!({"oneOf": [{"required": ["a"]}, {"required": ["b"]}], "const": {"title": 1}});
        let right =
            json!({"oneOf": [{"required": ["b"]}, {"required": ["a"]}], "const": {"title": 1}});
        assert!(semantic_diff(&left, &right).is_empty());
        // `title` inside `const` is data, not an annotation.
        let other =
            json!({"oneOf": [{"required": ["b"]}, {"required": ["a"]}], "const": {"title": 2}});
        assert_eq!(semantic_diff(&left, &other).len(), 1);
        let fewer = json!({"oneOf": [{"required": ["b"]}], "const": {"title": 1}});
        assert_eq!(
            semantic_diff(&left, &fewer)[0].what,
            "oneOf has 2 members on the left, 1 on the right"
        );
    }

    #[test]
    fn reference_cycles_terminate() {
        let cyclic = json!({"$defs": {"a": {"items": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"});
        assert!(semantic_diff(&cyclic, &cyclic).is_empty());
    }
}
