//! The typed parse (`orbi_types::Artifact`) against the schema gate (`Profile::Seed`).
//!
//! Every member of every valid fixture is replaced by boundary values, by an array of its own
//! members (what serde's derive would read as a struct) and removed. For each such document the
//! typed parse and the schema must agree, except where the `Artifact` docs declare that the
//! typed parse leaves a rule to the schema gate ([`declared_schema_only`]) or refuses a spelling
//! the schema takes ([`declared_typed_only`]). Where both accept, `to_value` gives the document
//! back. A divergence nobody declared is a contract the types do not carry: it fails here.

use std::path::Path;

use orbi_schema::{Issue, Profile, registry};
use orbi_types::{
    ArchivalStorageDecision, ArchivalStorageRequest, ArchivistAdvertisement, Artifact,
    ClientInstanceAttachment, ClientInstanceDetachment, ClientInstanceRecovery, InacControl,
    ParticipantBind, Timestamp,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The typed parse of `document` as the artifact `schema` names, and what it writes back.
fn typed(schema: &str, document: &Value) -> Result<Value, String> {
    fn parse<T: Artifact>(document: &Value) -> Result<Value, String> {
        T::from_value(document)
            .map(|artifact| artifact.to_value())
            .map_err(|error| error.to_string())
    }
    match schema {
        "participant-bind" => parse::<ParticipantBind>(document),
        "client-instance-attachment" => parse::<ClientInstanceAttachment>(document),
        "client-instance-detachment" => parse::<ClientInstanceDetachment>(document),
        "client-instance-recovery" => parse::<ClientInstanceRecovery>(document),
        "inac-control" => parse::<InacControl>(document),
        "archivist-advertisement" => parse::<ArchivistAdvertisement>(document),
        "archival-storage-request" => parse::<ArchivalStorageRequest>(document),
        "archival-storage-decision" => parse::<ArchivalStorageDecision>(document),
        other => panic!("no typed artifact for the fixture schema {other}"),
    }
}

/// Why the schema may refuse a document the typed parse accepts: the rules the `Artifact` docs
/// leave to the schema gate that these mutations reach, one clause each. (A rule no mutation
/// reaches is not listed: a new fixture that reaches one fails here until it is declared.)
fn declared_schema_only(issue: &Issue, document: &Value) -> bool {
    let keyword = issue.keyword.as_str();
    let at = issue.instance.as_str();
    let ends = |suffix: &str| keyword.ends_with(suffix);
    // The conditionals (`allOf` of `if`/`then`: operation and members, public-vault and timing
    // profile, accepted and retrieval ref, ...) are the schema's and the codecs'.
    keyword.starts_with("/allOf/")
        // Lengths and ranges: the schema gate reports them with the exact limit.
        || ["/minLength", "/maxLength", "/minItems", "/minimum", "/maximum"]
            .into_iter()
            .any(ends)
        // Control tokens are plain strings to the types, so the INAC codec can answer
        // `malformed` with the rule.
        || (ends("/pattern")
            && (at.ends_with("/correlation~1id") || at.ends_with("/idempotency~1key")))
        // An explicit `null` in an optional member reads as absent (and `to_value` leaves it
        // out); the schema refuses it by type or enum.
        || ((ends("/type") || ends("/enum")) && document.pointer(at) == Some(&Value::Null))
}

/// Why the typed parse may refuse a document the schema accepts: integers must be written as
/// integers (`1.0`, `1e2` and numbers past u64 arrive as floats), so that a typed artifact
/// always re-serializes to the same text.
fn declared_typed_only(replacement: &Value) -> bool {
    replacement.is_f64()
}

/// Boundary values for one member whose fixture value is `original`.
fn replacements(original: &Value) -> Vec<Value> {
    let number = |text: &str| serde_json::from_str::<Value>(text).expect("a json number");
    let mut out = vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(1),
        json!(-1),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        number("1.0"),
        number("1e2"),
        number("18446744073709551615"),
        number("18446744073709551616"),
        // `size/bytes` ends at 1 GiB.
        number("1073741824"),
        number("1073741825"),
    ];
    match original {
        // The members in order: the array serde's derive reads as the struct.
        Value::Object(members) => out.push(Value::Array(members.values().cloned().collect())),
        Value::String(text) => {
            out.extend(
                [
                    "2026-03-28t19:42:00z",
                    "2026-03-28T19:42:00.1234567890123Z",
                    "2026-03-28T19:42:00.Z",
                    "2016-12-31T23:59:60Z",
                    "2016-12-31T23:59:60.5Z",
                    "2016-12-31T22:59:60-01:00",
                    "2017-01-01T00:59:60+01:00",
                    "2016-12-31T23:59:60+01:00",
                    "2026-03-28T12:00:60Z",
                    "2026-03-28T19:42:00+23:59",
                    "2026-03-28T19:42:00-23:59",
                    "2026-03-28T19:42:00+24:00",
                    "2026-03-28T19:42:00+00:60",
                    "2026-03-28T19:42:00-00:00",
                    "2026-03-28 19:42:00Z",
                    "2026-03-28_19:42:00Z",
                    "0000-01-01T00:00:00Z",
                    "2100-02-29T00:00:00Z",
                    "2000-02-29T00:00:00Z",
                    "2026-03-28T19:42:00Z\n",
                    "2026-03-28T19:42:00+0200",
                    "2026-03-28T19:42Z",
                    "9999-12-31T23:59:60Z",
                    "9999-12-31T23:59:59-23:59",
                    "0000-01-01T00:00:00+23:59",
                ]
                .map(Value::from),
            );
            let mut shorter = text.clone();
            shorter.pop();
            out.extend(
                [
                    shorter,
                    format!("{text}\n"),
                    format!(" {text}"),
                    text.to_uppercase(),
                    // `0`, `O`, `I` and `l` are not base58btc.
                    format!("{text}0"),
                    format!("{text}="),
                    format!("{text}é"),
                    "a".repeat(256),
                    "a".repeat(257),
                    "a".repeat(1024),
                    "a".repeat(1025),
                    "é".repeat(1024),
                    "é".repeat(1025),
                ]
                .map(Value::from),
            );
        }
        _ => {}
    }
    out
}

/// Every member's pointer, at any depth.
fn member_pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(members) => members
            .iter()
            .map(|(key, child)| (key.replace('~', "~0").replace('/', "~1"), child))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, child)| (index.to_string(), child))
            .collect(),
        _ => Vec::new(),
    };
    for (token, child) in children {
        let pointer = format!("{at}/{token}");
        out.push(pointer.clone());
        member_pointers(child, &pointer, out);
    }
}

/// `document` with the member at `pointer` replaced (`Some`) or removed (`None`).
fn edited(document: &Value, pointer: &str, replacement: Option<&Value>) -> Value {
    let mut out = document.clone();
    let (parent, token) = pointer.rsplit_once('/').expect("a member pointer");
    let token = token.replace("~1", "/").replace("~0", "~");
    match (out.pointer_mut(parent), replacement) {
        (Some(Value::Object(members)), Some(value)) => {
            members.insert(token, value.clone());
        }
        (Some(Value::Object(members)), None) => {
            members.shift_remove(&token);
        }
        (Some(Value::Array(items)), replacement) => {
            let index: usize = token.parse().expect("an array index");
            match replacement {
                Some(value) => items[index] = value.clone(),
                None => {
                    items.remove(index);
                }
            }
        }
        _ => unreachable!("{pointer} is a member of the document"),
    }
    out
}

/// The committed valid fixtures, `(file, schema name, document)`, in file order.
fn fixtures() -> Vec<(String, &'static str, Value)> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples/valid");
    let mut out: Vec<_> = std::fs::read_dir(directory)
        .expect("schemas/examples/valid")
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let schema = registry()
                .for_file_name(&file)
                .unwrap_or_else(|| panic!("{file} names no schema"))
                .name;
            let document = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            (file, schema, document)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "<removed>".into();
    };
    // Both ends: a mutation is often one character appended to a long identifier.
    let chars: Vec<char> = value.to_string().chars().collect();
    if chars.len() <= 48 {
        return chars.into_iter().collect();
    }
    let head: String = chars[..24].iter().collect();
    let tail: String = chars[chars.len() - 20..].iter().collect();
    format!("{head}…{tail}")
}

#[test]
fn typed_parse_and_schema_disagree_only_where_declared() {
    let mut undeclared = std::collections::BTreeSet::new();
    let mut tried = 0usize;
    let fixtures = fixtures();
    let artifacts: std::collections::BTreeSet<_> = fixtures.iter().map(|f| f.1).collect();
    assert_eq!(
        artifacts.len(),
        8,
        "every typed artifact has fixtures: {artifacts:?}"
    );
    for (file, schema, fixture) in fixtures {
        let validator = registry().validator(schema, Profile::Seed).unwrap();
        assert!(validator.is_valid(&fixture), "{file}");
        assert_eq!(typed(schema, &fixture).as_ref(), Ok(&fixture), "{file}");
        // The document itself is an object too.
        let members = Value::Array(fixture.as_object().unwrap().values().cloned().collect());
        for document in [members, json!([])] {
            assert!(!validator.is_valid(&document), "{file}");
            assert!(typed(schema, &document).is_err(), "{schema} := {document}");
        }
        let mut pointers = Vec::new();
        member_pointers(&fixture, "", &mut pointers);
        for pointer in &pointers {
            let original = fixture.pointer(pointer).unwrap();
            let candidates = replacements(original);
            for replacement in candidates.iter().map(Some).chain([None]) {
                let document = edited(&fixture, pointer, replacement);
                tried += 1;
                let schema_valid = validator.is_valid(&document);
                let typed = typed(schema, &document);
                let verdict = match (&typed, schema_valid) {
                    (Ok(written), true) if written == &document => continue,
                    (Ok(_), true) => "both accept, to_value differs".to_owned(),
                    (Err(_), false) => continue,
                    (Err(_), true) if replacement.is_some_and(declared_typed_only) => continue,
                    (Err(error), true) => format!("schema accepts, typed refuses: {error}"),
                    (Ok(_), false) => {
                        let issues = validator.issues(&document);
                        if issues
                            .iter()
                            .all(|issue| declared_schema_only(issue, &document))
                        {
                            continue;
                        }
                        let keywords: Vec<_> = issues.iter().map(|i| i.keyword.as_str()).collect();
                        format!("typed accepts, schema refuses ({})", keywords.join(", "))
                    }
                };
                undeclared.insert(format!(
                    "{schema} {pointer} := {}: {verdict}",
                    shown(replacement)
                ));
            }
        }
    }
    assert!(tried > 30_000, "{tried} documents");
    assert!(
        undeclared.is_empty(),
        "{} undeclared disagreements in {tried} documents:\n{}",
        undeclared.len(),
        undeclared.into_iter().collect::<Vec<_>>().join("\n")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]
    /// `Timestamp::parse` and the schema's `date-time` accept the same RFC 3339-shaped text:
    /// any separator byte, `Z` or `z` or an offset (hours to 24, minutes to 60), any day and
    /// clock (second 60 included), with or without a fraction.
    #[test]
    fn timestamp_parse_matches_the_schema_date_time(
        year in prop_oneof![Just(0u32), Just(9999), 0u32..=9999],
        month in 0u32..=13,
        day in 0u32..=32,
        clock in prop_oneof![Just((23u32, 59u32, 60u32)), (0u32..=24, 0u32..=60, 0u32..=61)],
        fraction in prop_oneof![Just(String::new()), Just(".".to_owned()), "\\.[0-9]{1,12}"],
        separator in prop_oneof![Just('T'), Just('t'), proptest::char::range('\0', '\x7f')],
        zone in prop_oneof![
            Just("Z".to_owned()),
            Just("z".to_owned()),
            (prop_oneof![Just('+'), Just('-')], 0u32..=24, 0u32..=60)
                .prop_map(|(sign, hours, minutes)| format!("{sign}{hours:02}:{minutes:02}")),
        ],
    ) {
        let (hour, minute, second) = clock;
        let text = format!(
            "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
        );
        let validator = registry().validator("participant-bind", Profile::Seed).unwrap();
        let mut bind: Value = serde_json::from_str(include_str!(
            "../../schemas/examples/valid/k2-signed.participant-bind.json"
        ))
        .unwrap();
        bind["bound-at"] = json!(text);
        prop_assert_eq!(
            Timestamp::parse(&text).is_ok(),
            validator.is_valid(&bind),
            "{:?}",
            text
        );
    }
}
