//! `cargo xtask schemas check|write`.

use std::{fs, path::Path};

use orbi_schema::semantic_diff;
use orbi_types::schemas::{DerivedSchema, derive_all};
use serde_json::{Map, Value};

/// Compares every derived schema with its canonical file; prints each difference.
pub fn check(dir: &Path) -> Result<bool, String> {
    let differences = drift(dir, &derive_all())?;
    if differences.is_empty() {
        println!(
            "schemas check: {} derived schemas match {}",
            derive_all().len(),
            dir.display()
        );
        return Ok(true);
    }
    for line in &differences {
        println!("{line}");
    }
    println!(
        "schemas check: {} difference(s): orbi-types and schemas/ have drifted",
        differences.len()
    );
    Ok(false)
}

/// The drift between `derived` and the files in `dir`, one line per difference; a
/// `*.schema.json` in `dir` that no derived schema names is a difference too.
pub fn drift(dir: &Path, derived: &[DerivedSchema]) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for schema in derived {
        let path = dir.join(schema.file_name);
        let text = fs::read_to_string(&path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let canonical: Value = serde_json::from_str(&text)
            .map_err(|err| format!("{} is not json: {err}", path.display()))?;
        for difference in semantic_diff(&schema.schema, &canonical) {
            lines.push(format!(
                "{}: derived {:?} vs {} {:?}: {}",
                schema.name, difference.left, schema.file_name, difference.right, difference.what
            ));
        }
    }
    let entries =
        fs::read_dir(dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
    let mut underived: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.ends_with(".schema.json")
                && !derived
                    .iter()
                    .any(|schema| schema.file_name == name.as_str())
        })
        .collect();
    underived.sort();
    lines.extend(
        underived
            .into_iter()
            .map(|name| format!("{name}: no type in orbi-types derives it")),
    );
    Ok(lines)
}

/// Writes every derived schema, keys in a readable order, to `out`.
pub fn write(out: &Path) -> Result<bool, String> {
    fs::create_dir_all(out).map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    for schema in derive_all() {
        let path = out.join(schema.file_name);
        let mut text = serde_json::to_string_pretty(&readable_order(&schema.schema))
            .map_err(|err| err.to_string())?;
        text.push('\n');
        fs::write(&path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(true)
}

/// The order in which keywords read best; unlisted keys follow in their current order.
const KEY_ORDER: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxProperties",
    "propertyNames",
    "items",
    "additionalProperties",
    "required",
    "properties",
    "if",
    "then",
    "oneOf",
    "anyOf",
    "not",
    "allOf",
    "$defs",
];

/// Reorders schema keywords for reading; property maps keep their own order.
fn readable_order(value: &Value) -> Value {
    readable(value, false)
}

fn readable(value: &Value, is_name_map: bool) -> Value {
    match value {
        Value::Object(map) if is_name_map => Value::Object(
            map.iter()
                .map(|(key, child)| (key.clone(), readable(child, false)))
                .collect(),
        ),
        Value::Object(map) => {
            let mut ordered = Map::new();
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|key| {
                KEY_ORDER
                    .iter()
                    .position(|k| k == key)
                    .unwrap_or(KEY_ORDER.len())
            });
            for key in keys {
                let names = matches!(key.as_str(), "properties" | "$defs" | "patternProperties");
                let child = if matches!(key.as_str(), "const" | "enum") {
                    map[key].clone()
                } else {
                    readable(&map[key], names)
                };
                ordered.insert(key.clone(), child);
            }
            Value::Object(ordered)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| readable(item, false)).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        crate::workspace_root()
    }

    #[test]
    fn committed_schemas_match_the_types() {
        let lines = drift(&root().join("schemas"), &derive_all()).unwrap();
        assert!(lines.is_empty(), "{lines:#?}");
    }

    /// Changing a rule on the type side is reported as drift.
    #[test]
    fn drift_on_the_type_side_is_reported() {
        let mut derived = derive_all();
        let bind = derived
            .iter_mut()
            .find(|schema| schema.name == "participant-bind")
            .unwrap();
        bind.schema["properties"]["session/id"]["minLength"] = 2.into();
        let lines = drift(&root().join("schemas"), &derived).unwrap();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("/properties/session~1id/minLength"),
            "{}",
            lines[0]
        );
    }

    /// A scratch copy of `schemas/*.schema.json`.
    fn canonical_copy(name: &str) -> std::path::PathBuf {
        let scratch = crate::scratch(name);
        for schema in derive_all() {
            fs::copy(
                root().join("schemas").join(schema.file_name),
                scratch.join(schema.file_name),
            )
            .unwrap();
        }
        scratch
    }

    /// Changing a rule on the file side is reported as drift.
    #[test]
    fn drift_on_the_file_side_is_reported() {
        let scratch = canonical_copy("drift-file-side");
        let path = scratch.join("inac-control.v1.schema.json");
        let mut document: Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        document["$defs"]["response"]["properties"]["refusal/code"]["enum"]
            .as_array_mut()
            .unwrap()
            .pop();
        fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
        let lines = drift(&scratch, &derive_all()).unwrap();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("/$defs/response/properties/refusal~1code/enum"),
            "{}",
            lines[0]
        );
        fs::remove_dir_all(scratch).unwrap();
    }

    /// The gate's verdict: `check` passes on an exact copy and fails on a drifted one.
    #[test]
    fn check_fails_exactly_when_there_is_drift() {
        let scratch = canonical_copy("check-verdict");
        assert_eq!(check(&scratch), Ok(true));
        let path = scratch.join("participant-bind.v1.schema.json");
        let mut document: Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        document["maxProperties"] = 1.into();
        fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
        assert_eq!(check(&scratch), Ok(false));
        fs::remove_dir_all(scratch).unwrap();
    }

    /// Every derived schema is compared with its own file: drift in any one file is one
    /// difference, named after that file.
    #[test]
    fn every_file_is_compared() {
        let scratch = canonical_copy("every-file");
        for schema in derive_all() {
            let path = scratch.join(schema.file_name);
            let original = fs::read(&path).unwrap();
            let mut document: Value = serde_json::from_slice(&original).unwrap();
            document["maxProperties"] = 1.into();
            fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
            let lines = drift(&scratch, &derive_all()).unwrap();
            assert_eq!(lines.len(), 1, "{}: {lines:#?}", schema.file_name);
            assert!(
                lines[0].starts_with(&format!("{}: derived ", schema.name))
                    && lines[0].contains(&format!(" vs {} ", schema.file_name))
                    && lines[0].contains("/maxProperties"),
                "{}",
                lines[0]
            );
            fs::write(&path, original).unwrap();
        }
        assert_eq!(drift(&scratch, &derive_all()), Ok(Vec::new()));
        fs::remove_dir_all(scratch).unwrap();
    }

    /// A canonical file that is missing or not JSON is an error (exit 2), never skipped.
    #[test]
    fn a_missing_or_broken_file_is_an_error() {
        let scratch = canonical_copy("missing-file");
        let path = scratch.join("inac-control.v1.schema.json");
        fs::write(&path, "{").unwrap();
        let err = drift(&scratch, &derive_all()).unwrap_err();
        assert!(
            err.starts_with(&format!("{} is not json: ", path.display())),
            "{err}"
        );
        fs::remove_file(&path).unwrap();
        let err = check(&scratch).unwrap_err();
        assert!(
            err.starts_with(&format!("cannot read {}: ", path.display())),
            "{err}"
        );
        fs::remove_dir_all(scratch).unwrap();
    }

    /// A canonical file no type derives (a contract orbi-types lacks) is drift.
    #[test]
    fn a_file_no_type_derives_is_drift() {
        let scratch = canonical_copy("extra-file");
        fs::copy(
            scratch.join("inac-control.v1.schema.json"),
            scratch.join("inac-control.v2.schema.json"),
        )
        .unwrap();
        fs::write(scratch.join("notes.json"), "{}").unwrap();
        let lines = drift(&scratch, &derive_all()).unwrap();
        assert_eq!(
            lines,
            ["inac-control.v2.schema.json: no type in orbi-types derives it"]
        );
        assert_eq!(check(&scratch), Ok(false));
        fs::remove_dir_all(scratch).unwrap();
    }

    /// `schemas write` writes one file per derived schema, and what it writes passes the check.
    #[test]
    fn written_schemas_pass_the_check() {
        let scratch = crate::scratch("write");
        assert_eq!(write(&scratch), Ok(true));
        let mut written: Vec<String> = fs::read_dir(&scratch)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        let mut wanted: Vec<String> = derive_all()
            .iter()
            .map(|schema| schema.file_name.to_owned())
            .collect();
        wanted.sort();
        assert_eq!(written, wanted);
        assert_eq!(drift(&scratch, &derive_all()), Ok(Vec::new()));
        fs::remove_dir_all(scratch).unwrap();
    }
}
