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

/// The drift between `derived` and the files in `dir`, one line per difference.
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

    /// Changing a rule on the file side is reported as drift.
    #[test]
    fn drift_on_the_file_side_is_reported() {
        let scratch = tempdir();
        for schema in derive_all() {
            fs::copy(
                root().join("schemas").join(schema.file_name),
                scratch.join(schema.file_name),
            )
            .unwrap();
        }
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

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("orbi-xtask-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
