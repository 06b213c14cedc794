//! Semantic comparison of two JSON Schema documents.
//!
//! Two schemas are *semantically equal* when they validate the same way. Before comparing, each
//! side is normalized:
//!
//! 1. annotation keywords are dropped: [`IGNORED_ANNOTATIONS`] and every `x-…` keyword;
//! 2. local references (`#/$defs/…`, `#/definitions/…`, percent-encoded or not) are followed
//!    and the definition containers dropped, so `$defs` naming does not matter (a difference
//!    inside a referenced definition is reported once, at the definition's own pointer). Each
//!    pair of targets is compared once, and a pair met again while it is being compared is
//!    taken as equal (a recursive schema is equal to another when no expansion finds a
//!    difference), so the work grows with the number of definitions, not with the depth of
//!    their expansion. A document with a reference this cannot follow (an `$anchor`, a
//!    `$dynamicRef`, an absolute reference into itself) keeps its definitions and compares
//!    them as they are. A document with an `$id` (draft-04: `id`) below its root (a local reference inside it
//!    means that resource's definitions, not the document's) follows no reference at all: its
//!    references are compared as text and its definitions as they are;
//! 3. `additionalProperties: true` (and `{}`) is dropped: it is the same as absent, unless
//!    the document uses `unevaluatedProperties`, which it can change;
//! 4. `required`, `enum` and array-valued `type` are compared as sets; the members of `allOf`,
//!    `anyOf` and `oneOf` are compared as unordered collections.
//!
//! Every other keyword is compared exactly; values in data positions (`const`, `enum`,
//! `default`, …) are never normalized. Remote references (`participant-bind.v1.schema.json`)
//! are compared as text.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

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
/// Keywords whose value is an array of subschemas, order relevant (`items` too when it is an
/// array: draft-07's tuple form).
const SCHEMA_LIST: &[&str] = &["prefixItems"];
/// Keywords whose value maps names to a subschema or (draft-07 `dependencies`) to an array of
/// member names.
const SCHEMA_OR_NAMES_MAP: &[&str] = &["dependencies"];
/// Keywords whose value is a set of JSON values.
const VALUE_SET: &[&str] = &["required", "enum", "type"];
/// Definition containers, dropped after inlining.
const DEFINITIONS: &[&str] = &["$defs", "definitions"];

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
    diff_counting(left, right).0
}

/// [`semantic_diff`] and the number of node pairs it compared (the work done).
fn diff_counting(left: &Value, right: &Value) -> (Vec<Difference>, usize) {
    let left = Normalized::of(left);
    let right = Normalized::of(right);
    let mut comparison = Comparison {
        left: &left.targets,
        right: &right.targets,
        pairs: HashMap::new(),
        out: Vec::new(),
        trial: false,
        compared: 0,
    };
    comparison.compare(&left.root, &right.root);
    (comparison.out, comparison.compared)
}

/// One document, normalized: its root and every local reference target it reaches, each
/// normalized once and keyed by its JSON pointer.
struct Normalized {
    root: Node,
    targets: HashMap<String, Node>,
}

impl Normalized {
    fn of(document: &Value) -> Normalized {
        let normalizer = Normalizer::new(document);
        let root = normalizer.node(document, String::new());
        let mut targets = HashMap::new();
        let mut waiting = Vec::new();
        collect_refs(&root, &mut waiting);
        while let Some(pointer) = waiting.pop() {
            if targets.contains_key(&pointer) {
                continue;
            }
            // `Ref` pointers come from `resolve_local`, so the target exists.
            let Some(target) = document.pointer(&pointer) else {
                continue;
            };
            let node = normalizer.node(target, pointer.clone());
            collect_refs(&node, &mut waiting);
            targets.insert(pointer, node);
        }
        Normalized { root, targets }
    }
}

/// Pushes the pointer of every local reference in `node` (not into their targets).
fn collect_refs(node: &Node, out: &mut Vec<String>) {
    let mut children = |keyword: &Keyword| match keyword {
        Keyword::Schema(child) => collect_refs(child, out),
        Keyword::SchemaMap(map) => map.values().for_each(|child| collect_refs(child, out)),
        Keyword::SchemaSet(list) | Keyword::SchemaList(list) => {
            list.iter().for_each(|child| collect_refs(child, out))
        }
        Keyword::ValueSet(_) | Keyword::Value(_) => {}
    };
    match &node.schema {
        Shape::Ref(pointer) => out.push(pointer.clone()),
        Shape::Object(keywords) => keywords.values().for_each(&mut children),
        Shape::Bool(_) | Shape::Invalid(_) => {}
    }
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
    /// A local reference: the schema at this pointer of the same document.
    Ref(String),
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
    /// Whether local references are followed: not when a resource below the root has its
    /// own `$id` (its `#/…` references are relative to it).
    follows_refs: bool,
}

impl<'a> Normalizer<'a> {
    fn new(root: &'a Value) -> Self {
        // `$id`, or draft-04's `id` (a string there; a property named `id` is an object).
        // Data that merely looks like one only costs definitions compared by name.
        let is_id = |key: &str, value: &Value| key == "$id" || (key == "id" && value.is_string());
        let nested_id = match root {
            Value::Object(map) => map
                .values()
                .any(|child| any_member(child, &|key, value| is_id(key, value))),
            _ => false,
        };
        let mut normalizer = Normalizer {
            root,
            keep_definitions: nested_id,
            uses_unevaluated: uses_keyword(root, "unevaluatedProperties"),
            follows_refs: !nested_id,
        };
        normalizer.keep_definitions |= normalizer.has_opaque_reference(root);
        normalizer
    }

    /// Whether `value` holds a reference into this document that [`Self::resolve_local`]
    /// cannot follow: its target would otherwise be dropped with the definitions.
    fn has_opaque_reference(&self, value: &Value) -> bool {
        any_member(value, &|key, child| match key {
            "$anchor" | "$dynamicAnchor" | "$dynamicRef" | "$recursiveRef" => true,
            "$ref" => child.as_str().is_some_and(|reference| {
                reference.contains('#') && self.resolve_local(child).is_none()
            }),
            _ => false,
        })
    }

    fn node(&self, value: &Value, pointer: String) -> Node {
        let schema = match value {
            Value::Bool(b) => Shape::Bool(*b),
            Value::Object(map) => return self.object(map, pointer),
            other => Shape::Invalid(other.clone()),
        };
        Node { pointer, schema }
    }

    fn object(&self, map: &Map<String, Value>, pointer: String) -> Node {
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
                match self.resolve_local(value).filter(|_| self.follows_refs) {
                    Some(target) => Keyword::Schema(Node {
                        pointer: at,
                        schema: Shape::Ref(target),
                    }),
                    None => Keyword::Value(value.clone()),
                }
            } else if (SCHEMA_SET.contains(&key.as_str())
                || SCHEMA_LIST.contains(&key.as_str())
                || key == "items")
                && value.is_array()
            {
                let children: Vec<Node> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(index, child)| self.node(child, format!("{at}/{index}")))
                    .collect();
                if SCHEMA_SET.contains(&key.as_str()) {
                    Keyword::SchemaSet(children)
                } else {
                    Keyword::SchemaList(children)
                }
            } else if SINGLE_SCHEMA.contains(&key.as_str()) {
                Keyword::Schema(self.node(value, at))
            } else if (SCHEMA_MAP.contains(&key.as_str())
                || SCHEMA_OR_NAMES_MAP.contains(&key.as_str())
                || DEFINITIONS.contains(&key.as_str()))
                && value.is_object()
            {
                // Definitions reach here only when kept (see `keep_definitions`).
                let children = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, child)| {
                        let child_at = format!("{at}/{}", escape(name));
                        (name.clone(), self.node(child, child_at))
                    })
                    .collect();
                Keyword::SchemaMap(children)
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
            && matches!(target.schema, Shape::Ref(_))
        {
            return target.clone();
        }
        Node {
            pointer,
            schema: Shape::Object(keywords),
        }
    }

    /// The JSON pointer of the target of a local reference, if it exists in this document.
    fn resolve_local(&self, reference: &Value) -> Option<String> {
        let text = reference.as_str()?;
        let pointer = percent_decode(text.strip_prefix('#')?)?;
        if !pointer.starts_with('/') {
            return None;
        }
        self.root.pointer(&pointer).map(|_| pointer)
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

/// How a pair of reference targets has been compared so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PairState {
    /// Being compared: met again inside itself, it is taken as equal.
    Open,
    /// Compared: equal or not.
    Done { equal: bool },
}

/// A comparison of two normalized documents, collecting differences.
struct Comparison<'n> {
    left: &'n HashMap<String, Node>,
    right: &'n HashMap<String, Node>,
    /// Pairs of reference targets (by pointer) already compared or being compared.
    pairs: HashMap<(String, String), PairState>,
    out: Vec<Difference>,
    /// Whether this is a trial (see [`Comparison::equal_on_trial`]).
    trial: bool,
    /// Node pairs compared, trials included.
    compared: usize,
}

impl<'n> Comparison<'n> {
    /// The schema `node` stands for: itself, or the target its reference chain ends at
    /// (`None` for a chain that only loops through references).
    fn resolve<'a>(node: &'a Node, targets: &'a HashMap<String, Node>) -> Option<&'a Node> {
        let mut current = node;
        for _ in 0..=targets.len() {
            match &current.schema {
                Shape::Ref(pointer) => current = targets.get(pointer)?,
                _ => return Some(current),
            }
        }
        None
    }

    fn compare(&mut self, left: &Node, right: &Node) {
        self.compared += 1;
        let through_ref =
            matches!(left.schema, Shape::Ref(_)) || matches!(right.schema, Shape::Ref(_));
        let (left, right) = match (
            Self::resolve(left, self.left),
            Self::resolve(right, self.right),
        ) {
            (Some(left), Some(right)) => (left, right),
            // Both only loop through references: alike (no validator can use either).
            (None, None) => return,
            _ => {
                return self.out.push(Difference {
                    left: left.pointer.clone(),
                    right: right.pointer.clone(),
                    what: "a reference that only leads to references on one side".into(),
                });
            }
        };
        if !through_ref {
            return self.compare_resolved(left, right);
        }
        let key = (left.pointer.clone(), right.pointer.clone());
        match self.pairs.get(&key) {
            Some(PairState::Open) | Some(PairState::Done { equal: true }) => return,
            // Reported once, when it was compared; a trial still needs to see it.
            Some(PairState::Done { equal: false }) => {
                if self.trial {
                    self.out.push(Difference {
                        left: left.pointer.clone(),
                        right: right.pointer.clone(),
                        what: "referenced schemas differ".into(),
                    });
                }
                return;
            }
            None => {}
        }
        self.pairs.insert(key.clone(), PairState::Open);
        let before = self.out.len();
        self.compare_resolved(left, right);
        let equal = self.out.len() == before;
        self.pairs.insert(key, PairState::Done { equal });
    }

    fn compare_resolved(&mut self, left: &Node, right: &Node) {
        match (&left.schema, &right.schema) {
            (Shape::Object(l), Shape::Object(r)) => {
                for (key, lk) in l {
                    match r.get(key) {
                        Some(rk) => self.compare_keyword(key, lk, rk, left, right),
                        None => self.out.push(Difference {
                            left: format!("{}/{}", left.pointer, escape(key)),
                            right: right.pointer.clone(),
                            what: format!("keyword {key:?} only on the left"),
                        }),
                    }
                }
                for key in r.keys().filter(|key| !l.contains_key(*key)) {
                    self.out.push(Difference {
                        left: left.pointer.clone(),
                        right: format!("{}/{}", right.pointer, escape(key)),
                        what: format!("keyword {key:?} only on the right"),
                    });
                }
            }
            (Shape::Bool(l), Shape::Bool(r)) if l == r => {}
            // Data where a schema may stand (the member names of a `dependencies` entry):
            // equal text is equal, unless it holds a reference that was not followed.
            (Shape::Invalid(l), Shape::Invalid(r)) if l == r && !uses_keyword(l, "$ref") => {}
            _ => self.out.push(Difference {
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

    fn compare_keyword(
        &mut self,
        key: &str,
        left: &Keyword,
        right: &Keyword,
        left_node: &Node,
        right_node: &Node,
    ) {
        let at = |node: &Node| format!("{}/{}", node.pointer, escape(key));
        match (left, right) {
            (Keyword::Schema(l), Keyword::Schema(r)) => self.compare(l, r),
            (Keyword::SchemaMap(l), Keyword::SchemaMap(r)) => {
                for (name, ln) in l {
                    match r.get(name) {
                        Some(rn) => self.compare(ln, rn),
                        None => self.out.push(Difference {
                            left: ln.pointer.clone(),
                            right: at(right_node),
                            what: format!("{key} member {name:?} only on the left"),
                        }),
                    }
                }
                for (name, rn) in r.iter().filter(|(name, _)| !l.contains_key(*name)) {
                    self.out.push(Difference {
                        left: at(left_node),
                        right: rn.pointer.clone(),
                        what: format!("{key} member {name:?} only on the right"),
                    });
                }
            }
            (Keyword::SchemaList(l), Keyword::SchemaList(r)) if l.len() == r.len() => {
                for (ln, rn) in l.iter().zip(r) {
                    self.compare(ln, rn);
                }
            }
            (Keyword::SchemaSet(l), Keyword::SchemaSet(r)) => {
                self.compare_unordered(key, l, r, left_node, right_node)
            }
            (Keyword::ValueSet(l), Keyword::ValueSet(r)) if l == r => {}
            (Keyword::Value(l), Keyword::Value(r)) if l == r => {}
            _ => self.out.push(Difference {
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

    /// Whether `left` and `right` compare equal, without reporting anything or remembering
    /// the pairs compared on the way (they were compared under a trial's assumptions).
    fn equal_on_trial(&mut self, left: &Node, right: &Node) -> bool {
        let mut trial = Comparison {
            left: self.left,
            right: self.right,
            pairs: self.pairs.clone(),
            out: Vec::new(),
            trial: true,
            compared: 0,
        };
        trial.compare(left, right);
        self.compared += trial.compared;
        trial.out.is_empty()
    }

    /// Pairs members of `allOf`/`anyOf`/`oneOf` that are equal; members left unpaired are
    /// compared positionally so the report points at the closest candidates.
    fn compare_unordered(
        &mut self,
        key: &str,
        left: &[Node],
        right: &[Node],
        left_node: &Node,
        right_node: &Node,
    ) {
        let mut unmatched_right: Vec<&Node> = right.iter().collect();
        let mut unmatched_left = Vec::new();
        for ln in left {
            match unmatched_right
                .iter()
                .position(|rn| self.equal_on_trial(ln, rn))
            {
                Some(index) => {
                    unmatched_right.remove(index);
                }
                None => unmatched_left.push(ln),
            }
        }
        if unmatched_left.len() != unmatched_right.len() {
            self.out.push(Difference {
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
            self.compare(ln, rn);
        }
    }
}

fn describe(shape: &Shape) -> String {
    match shape {
        Shape::Bool(b) => b.to_string(),
        Shape::Object(_) => "object".into(),
        Shape::Ref(pointer) => format!("reference to {pointer}"),
        Shape::Invalid(value) => format!("non-schema {value}"),
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
            // Tuples of different lengths.
            (
                json!({"prefixItems": [{"type": "string"}]}),
                json!({"prefixItems": [{"type": "string"}, {"type": "integer"}]}),
                json!(["s", "t"]),
            ),
            // A `$dynamicRef` reaches its `$dynamicAnchor` in the definitions.
            {
                let dynamic = |kind: &str| {
                    json!({"$defs": {"a": {"$dynamicAnchor": "sig", "type": kind}},
                           "properties": {"s": {"$dynamicRef": "#sig"}}})
                };
                (dynamic("string"), dynamic("integer"), json!({"s": "x"}))
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

    /// Every keyword of [`IGNORED_ANNOTATIONS`], an `additionalProperties` that holds only
    /// annotations, and a repeated `required` name change nothing.
    #[test]
    fn every_annotation_and_redundant_spelling_is_ignored() {
        let left = json!({
            "type": "object", "required": ["a", "a"],
            "title": "t", "description": "d", "$comment": "c", "examples": [{"a": 1}],
            "default": {"a": 1}, "deprecated": true, "readOnly": true, "writeOnly": false,
            "additionalProperties": {"description": "anything", "x-note": 1}
        });
        let right = json!({"type": "object", "required": ["a"]});
        assert_eq!(semantic_diff(&left, &right), vec![]);
        assert_eq!(semantic_diff(&right, &left), vec![]);
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

    /// Non-schema data where a schema stands is compared as text, unless it holds a
    /// reference: its target (a dropped definition) may differ.
    #[test]
    fn equal_non_schema_text_holding_a_reference_is_not_trusted() {
        let with =
            |kind: &str| json!({"$defs": {"a": {"type": kind}}, "not": [{"$ref": "#/$defs/a"}]});
        let differences = semantic_diff(&with("string"), &with("integer"));
        assert_eq!(differences.len(), 1, "{differences:#?}");
        assert_eq!(differences[0].left, "/not");
        let names = json!({"not": ["a", "b"]});
        assert_eq!(semantic_diff(&names, &names), vec![]);
    }

    #[test]
    fn a_keyword_on_one_side_is_named_with_its_side() {
        let plain = json!({"type": "string"});
        let stricter = json!({"type": "string", "minLength": 1});
        let difference = |left: &Value, right: &Value| {
            let found = semantic_diff(left, right);
            assert_eq!(found.len(), 1, "{found:#?}");
            let Difference { left, right, what } = found[0].clone();
            (left, right, what)
        };
        assert_eq!(
            difference(&plain, &stricter),
            (
                String::new(),
                "/minLength".to_owned(),
                "keyword \"minLength\" only on the right".to_owned()
            )
        );
        assert_eq!(
            difference(&stricter, &plain),
            (
                "/minLength".to_owned(),
                String::new(),
                "keyword \"minLength\" only on the left".to_owned()
            )
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

    /// `n` definitions, each referring to the next twice, the last one `last`: expanded in
    /// place this is 2^n copies of `last`.
    fn doubling_chain(n: usize, last: Value) -> Value {
        let mut defs = Map::new();
        for i in 0..n {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(
                format!("d{i}"),
                json!({"properties": {"a": {"$ref": next}, "b": {"$ref": next}}}),
            );
        }
        defs.insert(format!("d{n}"), last);
        json!({"$defs": defs, "$ref": "#/$defs/d0"})
    }

    #[test]
    fn each_pair_of_definitions_is_compared_once() {
        let string = doubling_chain(16, json!({"type": "string"}));
        let (differences, compared) = diff_counting(&string, &string);
        assert!(differences.is_empty());
        // Per definition: the pair of it and its two references (not 2^16 expansions).
        assert!(compared <= 4 * 17, "{compared} pairs compared");

        let integer = doubling_chain(16, json!({"type": "integer"}));
        let (differences, compared) = diff_counting(&string, &integer);
        assert!(compared <= 4 * 17, "{compared} pairs compared");
        assert_eq!(differences.len(), 1, "{differences:#?}");
        assert_eq!(differences[0].left, "/$defs/d16/type");
        assert_eq!(differences[0].right, "/$defs/d16/type");
    }

    #[test]
    fn recursive_schemas_compare_by_what_they_accept() {
        let tree = |name: &str, node: Value| json!({"$defs": {name: node}, "$ref": format!("#/$defs/{name}")});
        let node = |name: &str| {
            let child = json!({"$ref": format!("#/$defs/{name}")});
            json!({"type": "object", "properties": {"l": child, "r": child}})
        };
        assert!(semantic_diff(&tree("node", node("node")), &tree("Tree", node("Tree"))).is_empty());

        let mut stricter = node("node");
        stricter["minProperties"] = json!(1);
        let differences = semantic_diff(&tree("node", node("node")), &tree("node", stricter));
        assert_eq!(differences.len(), 1, "{differences:#?}");
        assert_eq!(differences[0].right, "/$defs/node/minProperties");

        // Inside an unordered combinator, a recursive member pairs with its equal.
        let either = |first: &str, second: &str| {
            json!({"$defs": {
                "a": {"anyOf": [{"$ref": format!("#/$defs/{first}")}, {"$ref": format!("#/$defs/{second}")}]},
                "b": {"type": "string"}
            }, "$ref": "#/$defs/a"})
        };
        assert!(semantic_diff(&either("a", "b"), &either("b", "a")).is_empty());
    }

    #[test]
    fn a_nested_id_keeps_references_as_written() {
        // Inside `urn:inner`, `#/$defs/b` is the inner `b`, not the document's.
        let nested = |kind: &str| {
            json!({
                "$defs": {
                    "b": {"type": "string"},
                    "a": {"$id": "urn:inner", "$defs": {"b": {"type": kind}}, "$ref": "#/$defs/b"}
                },
                "properties": {"x": {"$ref": "#/$defs/a"}}
            })
        };
        let (left, right) = (nested("string"), nested("integer"));
        assert!(judged_apart(&left, &right, &json!({"x": "s"})), "premise");
        let differences = semantic_diff(&left, &right);
        assert_eq!(differences.len(), 1, "{differences:#?}");
        assert_eq!(differences[0].left, "/$defs/a/$defs/b/type");
        assert!(semantic_diff(&left, &left).is_empty());
    }

    #[test]
    fn a_draft4_nested_id_keeps_references_as_written() {
        let nested = |kind: &str| {
            json!({
                "$schema": "http://json-schema.org/draft-04/schema#",
                "definitions": {
                    "b": {"type": "string"},
                    "a": {"id": "urn:inner", "definitions": {"b": {"type": kind}},
                          "properties": {"v": {"$ref": "#/definitions/b"}}}
                },
                "properties": {"x": {"$ref": "#/definitions/a"}}
            })
        };
        let (left, right) = (nested("string"), nested("integer"));
        assert!(
            judged_apart(&left, &right, &json!({"x": {"v": "s"}})),
            "premise"
        );
        assert_eq!(semantic_diff(&left, &right).len(), 1);
        // A property named `id` is no resource: references are still followed.
        let property = |kind: &str| {
            json!({"$defs": {"b": {"type": kind}},
                   "properties": {"id": {"$ref": "#/$defs/b"}}})
        };
        let renamed = json!({"$defs": {"c": {"type": "string"}},
                             "properties": {"id": {"$ref": "#/$defs/c"}}});
        assert!(semantic_diff(&property("string"), &renamed).is_empty());
    }

    #[test]
    fn draft7_dependencies_and_tuple_items_are_schemas() {
        let draft7 = |kind: &str, at: &str| {
            let mut schema = json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "definitions": {"a": {"properties": {"y": {"type": kind}}}},
                "dependencies": {"z": ["y"]}
            });
            schema[at] = if at == "items" {
                json!([{"$ref": "#/definitions/a"}, {"type": "string"}])
            } else {
                json!({"x": {"$ref": "#/definitions/a"}, "z": ["y"]})
            };
            schema
        };
        for (at, instance) in [
            ("dependencies", json!({"x": 1, "y": "s"})),
            ("items", json!([{"y": "s"}])),
        ] {
            let (left, right) = (draft7("string", at), draft7("integer", at));
            assert!(judged_apart(&left, &right, &instance), "premise: {at}");
            let differences = semantic_diff(&left, &right);
            assert_eq!(differences.len(), 1, "{at}: {differences:#?}");
            assert_eq!(differences[0].left, "/definitions/a/properties/y/type");
            // The same schema is equal to itself (the names list and the tuple included).
            assert_eq!(semantic_diff(&left, &left), vec![], "{at}");
        }
        let names = |list: Value| json!({"dependencies": {"z": list}});
        assert_eq!(
            semantic_diff(&names(json!(["y"])), &names(json!(["w"]))).len(),
            1
        );
    }

    #[test]
    fn reference_cycles_terminate() {
        let cyclic = json!({"$defs": {"a": {"items": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"});
        assert!(semantic_diff(&cyclic, &cyclic).is_empty());
        let only_references = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
        assert!(semantic_diff(&only_references, &only_references).is_empty());
        let differences = semantic_diff(&only_references, &cyclic);
        assert_eq!(differences.len(), 1, "{differences:#?}");
    }
}
