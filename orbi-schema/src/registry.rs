//! The canonical schemas, embedded at compile time from `schemas/`.
//!
//! The lifecycle schemas embed the bind with `"$ref": "participant-bind.v1.schema.json"`. Their
//! own `$id` is a URN, against which a relative reference cannot be resolved (RFC 3986), so a
//! validator refuses it. The registry fixes this when it compiles a schema: every `$ref` that
//! names a registered file is rewritten to that file's `$id`, and every schema is registered
//! under its `$id`. The canonical text itself is never changed.

use std::sync::OnceLock;

use serde_json::Value;

/// One canonical schema file.
#[derive(Clone, Debug)]
pub struct CanonicalSchema {
    /// Short name, e.g. `inac-control`.
    pub name: &'static str,
    /// The `$id`, e.g. `urn:orbiplex:schema:inac-control:v1`.
    pub id: String,
    /// The file name, e.g. `inac-control.v1.schema.json`.
    pub file_name: &'static str,
    /// The file's text, as committed.
    pub text: &'static str,
    /// The parsed document.
    pub document: Value,
}

/// Why a schema could not be found or compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// No schema has this name, `$id` or file name.
    #[error("unknown schema {0:?}")]
    Unknown(String),
    /// The validator library refused the schema (a bug in the canonical files).
    #[error("schema {name:?} does not compile: {message}")]
    Compile {
        /// The schema's short name.
        name: String,
        /// What the validator library said.
        message: String,
    },
}

macro_rules! embed {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../schemas/", $name, ".v1.schema.json")))),+]
    };
}

/// `(name, text)` of every canonical file, in a stable order.
const EMBEDDED: &[(&str, &str)] = embed!(
    "participant-bind",
    "client-instance-attachment",
    "client-instance-detachment",
    "client-instance-recovery",
    "inac-control",
    "archivist-advertisement",
);

/// The set of canonical schemas.
#[derive(Debug)]
pub struct Registry {
    schemas: Vec<CanonicalSchema>,
}

/// The registry of the embedded canonical schemas.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::from_texts(EMBEDDED))
}

impl Registry {
    /// Builds a registry from `(name, text)` pairs. The embedded files are checked by the test
    /// suite, so a text that is not a JSON object here is a build defect and yields `Null`.
    fn from_texts(texts: &[(&'static str, &'static str)]) -> Registry {
        let schemas = texts
            .iter()
            .map(|(name, text)| {
                let document: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                let id = document
                    .get("$id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let file_name: &'static str = Box::leak(format!("{name}.v1.schema.json").into());
                CanonicalSchema {
                    name,
                    id,
                    file_name,
                    text,
                    document,
                }
            })
            .collect();
        Registry { schemas }
    }

    /// Every schema, in a stable order.
    pub fn all(&self) -> &[CanonicalSchema] {
        &self.schemas
    }

    /// Looks a schema up by short name (`inac-control`), `$id` or file name.
    pub fn get(&self, key: &str) -> Result<&CanonicalSchema, SchemaError> {
        self.schemas
            .iter()
            .find(|schema| schema.name == key || schema.id == key || schema.file_name == key)
            .ok_or_else(|| SchemaError::Unknown(key.to_owned()))
    }

    /// `document` with every `$ref` that names a registered file rewritten to its `$id`.
    pub fn resolve_file_refs(&self, document: &Value) -> Value {
        let mut rewritten = document.clone();
        self.rewrite(&mut rewritten);
        rewritten
    }

    fn rewrite(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    if key == "$ref" {
                        if let Some(target) = child
                            .as_str()
                            .and_then(|reference| self.get(reference).ok())
                            .filter(|schema| schema.file_name == child.as_str().unwrap_or(""))
                        {
                            *child = Value::String(target.id.clone());
                        }
                    } else {
                        self.rewrite(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.rewrite(item)),
            _ => {}
        }
    }

    /// Compiles `document` (one of ours, or a variant of one) with every canonical schema
    /// available by `$id`, format assertion on, draft 2020-12, and no retrieval of anything
    /// else (an unknown reference is a compile error, never a network or file access).
    pub fn compile(
        &self,
        name: &str,
        document: &Value,
    ) -> Result<jsonschema::Validator, SchemaError> {
        self.compile_with(name, document, |other| {
            self.resolve_file_refs(&other.document)
        })
    }

    /// Like [`Registry::compile`], with `resources` deciding the document registered for each
    /// canonical schema (profiles use this to register their variants).
    pub fn compile_with(
        &self,
        name: &str,
        document: &Value,
        resources: impl Fn(&CanonicalSchema) -> Value,
    ) -> Result<jsonschema::Validator, SchemaError> {
        let compile_error = |message: String| SchemaError::Compile {
            name: name.to_owned(),
            message,
        };
        let resources: Vec<(String, Value)> = self
            .schemas
            .iter()
            .map(|schema| (schema.id.clone(), resources(schema)))
            .collect();
        let registry = jsonschema::Registry::new()
            .extend(resources.iter().map(|(id, doc)| {
                (
                    id.as_str(),
                    jsonschema::Resource::from_contents(doc.clone()),
                )
            }))
            .and_then(|builder| builder.prepare())
            .map_err(|err| compile_error(err.to_string()))?;
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .with_registry(&registry)
            .build(&self.resolve_file_refs(document))
            .map_err(|err| compile_error(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_by_name_id_and_file_name() {
        let registry = registry();
        for key in [
            "inac-control",
            "urn:orbiplex:schema:inac-control:v1",
            "inac-control.v1.schema.json",
        ] {
            assert_eq!(registry.get(key).unwrap().name, "inac-control");
        }
        assert!(matches!(registry.get("nope"), Err(SchemaError::Unknown(_))));
        for schema in registry.all() {
            assert!(
                schema.document.is_object(),
                "{} is not an object",
                schema.name
            );
            assert_eq!(schema.id, format!("urn:orbiplex:schema:{}:v1", schema.name));
        }
    }

    #[test]
    fn relative_bind_ref_is_rewritten_and_resolves() {
        let registry = registry();
        let attachment = registry.get("client-instance-attachment").unwrap();
        // The canonical text keeps the relative reference.
        assert_eq!(
            attachment.document["properties"]["participant-bind"]["$ref"],
            "participant-bind.v1.schema.json"
        );
        let rewritten = registry.resolve_file_refs(&attachment.document);
        assert_eq!(
            rewritten["properties"]["participant-bind"]["$ref"],
            "urn:orbiplex:schema:participant-bind:v1"
        );
        // Without the fix the validator library refuses the schema.
        assert!(
            jsonschema::draft202012::options()
                .build(&attachment.document)
                .is_err()
        );
        let validator = registry
            .compile(attachment.name, &attachment.document)
            .unwrap();
        // An attachment whose bind lacks via/node-id fails inside the referenced schema.
        let mut bad = json!({
            "schema/v": 1, "attachment/id": "a", "attached-at": "2026-03-28T19:42:00Z",
            "profile/type": "pod-client",
            "serving-node/id": "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE",
            "client-instance/id": "c", "session/state": "attached",
            "export/capable?": true, "migration/allowed?": true,
            "participant-bind": {}
        });
        let errors: Vec<String> = validator
            .iter_errors(&bad)
            .map(|e| e.instance_path().to_string())
            .collect();
        assert!(
            errors.iter().all(|path| path == "/participant-bind"),
            "{errors:?}"
        );
        assert!(!errors.is_empty());
        bad["participant-bind"] = json!("not an object");
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn format_assertion_is_on_and_nothing_is_retrieved() {
        let registry = registry();
        let schema = json!({"$ref": "https://example.com/remote.json"});
        assert!(matches!(
            registry.compile("remote", &schema),
            Err(SchemaError::Compile { .. })
        ));
        let dates = registry
            .compile("dates", &json!({"format": "date-time"}))
            .unwrap();
        assert!(dates.is_valid(&json!("2026-03-28T19:42:00Z")));
        assert!(!dates.is_valid(&json!("2026-03-28 19:42")));
    }
}
