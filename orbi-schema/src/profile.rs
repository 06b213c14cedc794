//! Shape profiles and compiled, cached validators.
//!
//! - [`Profile::Frozen`] (default): the later upstream freeze (spec pod §3.6). Derived in code from the
//!   canonical files, never a second copy: the bind, attachment, detachment and recovery get a
//!   closed top level (`additionalProperties: false`) and their `$defs/signature` is closed too.
//!   `policy_annotations` stays open. Every other schema is unchanged. It is the default
//!   because it fails closed (an unknown member is refused, not carried), as upstream HEAD
//!   and spec pod §3.6 [R] have it.
//! - [`Profile::Seed`]: the canonical v1 files exactly as committed. The pod artifacts and the
//!   bind are open (the draft seeds); chosen explicitly, never by default.

use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{Arc, Mutex, OnceLock},
};

use serde_json::Value;

use crate::Report;
pub use crate::issue::Issue;
use crate::registry::{CanonicalSchema, Registry, SchemaError};

/// Which shape of the contracts to validate against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// The canonical v1 files as given (open pod shapes).
    Seed,
    /// The upstream freeze: pod shapes and their signature objects closed (the default).
    #[default]
    Frozen,
}

/// The schemas the freeze closes.
pub const FROZEN_SCHEMAS: &[&str] = &[
    "participant-bind",
    "client-instance-attachment",
    "client-instance-detachment",
    "client-instance-recovery",
];

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 2] = [Profile::Seed, Profile::Frozen];

    /// The profile's name, `seed` or `frozen`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Seed => "seed",
            Profile::Frozen => "frozen",
        }
    }

    /// The document this profile validates `schema` against.
    pub fn document(self, schema: &CanonicalSchema) -> Value {
        let mut document = schema.document.clone();
        if self == Profile::Frozen && FROZEN_SCHEMAS.contains(&schema.name) {
            close(&mut document);
            if let Some(signature) = document.pointer_mut("/$defs/signature") {
                close(signature);
            }
        }
        document
    }
}

fn close(schema: &mut Value) {
    if let Some(map) = schema.as_object_mut() {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile name that is neither `seed` nor `frozen`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?}: expected seed or frozen")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(text: &str) -> Result<Self, UnknownProfile> {
        match text {
            "seed" => Ok(Profile::Seed),
            "frozen" => Ok(Profile::Frozen),
            other => Err(UnknownProfile(other.to_owned())),
        }
    }
}

/// A compiled canonical schema under one profile.
pub struct SchemaValidator {
    name: &'static str,
    profile: Profile,
    inner: jsonschema::Validator,
}

impl fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchemaValidator({}, {})", self.name, self.profile)
    }
}

/// The most issues [`SchemaValidator::issues`] lists one by one for a document.
pub const MAX_ISSUES: usize = 100;

/// The most JSON values (objects, arrays and scalars, nested ones included) a document may hold
/// for [`SchemaValidator::issues`] to list its issues. The validator builds every issue in
/// memory before it returns the first (about a kilobyte each), so a document of millions of
/// bad items would cost gigabytes; every artifact of ours holds a few hundred values at most.
pub const MAX_VALUES_FOR_ISSUES: usize = 20_000;

/// Whether `value` holds more than `limit` JSON values (it stops counting there).
fn values_over(value: &Value, limit: usize) -> bool {
    let mut pending = vec![value];
    let mut seen = 0usize;
    while let Some(value) = pending.pop() {
        seen += 1;
        if seen > limit {
            return true;
        }
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(members) => pending.extend(members.values()),
            _ => {}
        }
    }
    false
}

impl SchemaValidator {
    /// The schema's short name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The profile it was compiled under.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Whether `document` conforms.
    pub fn is_valid(&self, document: &Value) -> bool {
        self.inner.is_valid(document)
    }

    /// `Ok` when `document` conforms, otherwise a [`Report::Invalid`] with every issue.
    pub fn check(&self, document: &Value) -> Result<(), Report> {
        if self.inner.is_valid(document) {
            return Ok(());
        }
        // The report is for showing; nothing decides on its particular issues.
        let mut issues = self.issues_to_show(document);
        if issues.is_empty() {
            // Fail closed should the library ever judge without saying why.
            issues.push(Issue::document("", "does not conform to the schema"));
        }
        Err(Report::Invalid {
            schema: self.name,
            profile: self.profile,
            issues,
        })
    }

    /// Parses `bytes` strictly (see [`crate::parse`]) and checks the value; returns the value.
    pub fn check_bytes(&self, bytes: &[u8]) -> Result<Value, Report> {
        let document = crate::parse(bytes)?;
        self.check(&document)?;
        Ok(document)
    }

    /// The reasons `document` does not conform (empty when it does): every one up to
    /// [`MAX_ISSUES`], then one more issue at the document that counts the rest. Callers that
    /// decide on particular issues (a tolerated member, a specific code) use this.
    pub fn issues(&self, document: &Value) -> Vec<Issue> {
        let (mut issues, total) = self.issues_counted(document);
        let more = total - issues.len();
        if more > 0 {
            issues.push(Issue::document(
                "",
                format!("and {more} more issues, not listed"),
            ));
        }
        issues
    }

    /// [`SchemaValidator::issues`] for showing to a person: an invalid document of more than
    /// [`MAX_VALUES_FOR_ISSUES`] values gets one issue saying so instead, because the validator
    /// would build every one of its issues in memory (a kilobyte each) before returning any.
    /// Validity itself is decided by [`SchemaValidator::is_valid`], which builds none.
    pub fn issues_to_show(&self, document: &Value) -> Vec<Issue> {
        if !values_over(document, MAX_VALUES_FOR_ISSUES) {
            return self.issues(document);
        }
        if self.inner.is_valid(document) {
            return Vec::new();
        }
        vec![Issue::document(
            "",
            format!(
                "does not conform; it holds more than {MAX_VALUES_FOR_ISSUES} JSON values, too \
                 many to list its issues"
            ),
        )]
    }

    /// The first [`MAX_ISSUES`] reasons `document` does not conform, and how many there are.
    /// Every issue is built in memory first (the validator collects them before returning
    /// one): callers that only show issues use [`SchemaValidator::issues_to_show`].
    pub fn issues_counted(&self, document: &Value) -> (Vec<Issue>, usize) {
        let mut errors = self.inner.iter_errors(document);
        let issues: Vec<Issue> = errors
            .by_ref()
            .take(MAX_ISSUES)
            .map(|error| Issue::from_error(&error))
            .collect();
        let total = issues.len() + errors.count();
        (issues, total)
    }
}

impl Registry {
    /// The compiled validator for `name` (short name, `$id` or file name) under `profile`.
    ///
    /// Compiled once per (schema, profile) and shared afterwards.
    pub fn validator(
        &self,
        name: &str,
        profile: Profile,
    ) -> Result<Arc<SchemaValidator>, SchemaError> {
        type Cache = Mutex<HashMap<(&'static str, Profile), Arc<SchemaValidator>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let schema = self.get(name)?;
        let cache = CACHE.get_or_init(Cache::default);
        if let Some(found) = lock(cache).get(&(schema.name, profile)) {
            return Ok(Arc::clone(found));
        }
        let inner = self.compile_with(schema.name, &profile.document(schema), |other| {
            self.resolve_file_refs(&profile.document(other))
        })?;
        let compiled = Arc::new(SchemaValidator {
            name: schema.name,
            profile,
            inner,
        });
        lock(cache).insert((schema.name, profile), Arc::clone(&compiled));
        Ok(compiled)
    }
}

/// A poisoned cache only means another thread panicked mid-insert; the map is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use serde_json::json;

    /// A valid bind from the fixtures.
    fn bind() -> Value {
        serde_json::from_str(include_str!(
            "../../schemas/examples/valid/k2-signed.participant-bind.json"
        ))
        .unwrap()
    }

    fn attachment(bind: Value) -> Value {
        json!({
            "schema/v": 1, "attachment/id": "a", "attached-at": "2026-03-28T19:42:00Z",
            "profile/type": "pod-client",
            "serving-node/id": "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE",
            "client-instance/id": "c", "session/state": "attached",
            "export/capable?": true, "migration/allowed?": true, "participant-bind": bind,
            "policy_annotations": {"anything": {"goes": [1]}}
        })
    }

    /// Spec pod §3.6: an attachment with `pod/id`, an unknown bind key and a signature `kid`
    /// is valid in the seed shape and fails three times once frozen.
    #[test]
    fn frozen_closes_top_level_bind_and_signature() {
        let mut bind = bind();
        bind["extra"] = json!(1);
        bind["proof/participant-signature"]["kid"] = json!("x");
        let mut document = attachment(bind);
        document["pod/id"] = json!("pod:pl-wro-node-7f3c:user-42");
        let registry = registry();
        let seed = registry
            .validator("client-instance-attachment", Profile::Seed)
            .unwrap();
        assert!(seed.issues(&document).is_empty());
        let frozen = registry
            .validator("client-instance-attachment", Profile::Frozen)
            .unwrap();
        let issues = frozen.issues(&document);
        let instances: Vec<&str> = issues.iter().map(|i| i.instance.as_str()).collect();
        assert_eq!(issues.len(), 3, "{issues:#?}");
        assert!(instances.contains(&""));
        assert!(instances.contains(&"/participant-bind"));
        assert!(instances.contains(&"/participant-bind/proof~1participant-signature"));
        // policy_annotations stays open under the freeze.
        assert!(frozen.is_valid(&attachment(super::tests::bind())));
    }

    /// Spec pod §3.6 [R]: a caller who names no profile gets the closed one.
    #[test]
    fn the_default_profile_refuses_unknown_members() {
        let mut document = attachment(bind());
        document["pod/id"] = json!("pod:pl-wro-node-7f3c:user-42");
        let validator = registry()
            .validator("client-instance-attachment", Profile::default())
            .unwrap();
        let issues = validator.issues(&document);
        assert_eq!(issues.len(), 1, "{issues:#?}");
        assert_eq!(issues[0].instance, "");
    }

    /// Spec pod §3.6 and §8.2 N17: the freeze closes the detachment and the recovery as well
    /// (top level and `$defs/signature`), not only the bind and the attachment.
    #[test]
    fn frozen_closes_the_detachment_and_the_recovery_too() {
        let registry = registry();
        let cases = [
            (
                "client-instance-detachment",
                include_str!(
                    "../../schemas/examples/valid/operator-action-attested.client-instance-detachment.json"
                ),
            ),
            (
                "client-instance-recovery",
                include_str!(
                    "../../schemas/examples/valid/attested-with-annotations.client-instance-recovery.json"
                ),
            ),
        ];
        for (name, text) in cases {
            let mut document: Value = serde_json::from_str(text).unwrap();
            document["proof/node-attestation"]["by"] = json!("node:x");
            document["pod/id"] = json!("pod:1");
            let seed = registry.validator(name, Profile::Seed).unwrap();
            assert_eq!(seed.issues(&document), vec![], "{name}");
            let frozen = registry.validator(name, Profile::Frozen).unwrap();
            let mut found: Vec<(String, String)> = frozen
                .issues(&document)
                .into_iter()
                .map(|issue| (issue.instance, issue.message))
                .collect();
            found.sort();
            assert_eq!(
                found,
                [
                    (String::new(), "unexpected property \"pod/id\"".to_owned()),
                    (
                        "/proof~1node-attestation".to_owned(),
                        "unexpected property \"by\"".to_owned()
                    ),
                ],
                "{name}"
            );
            // N17: `{alg, value}` stays valid under the freeze.
            let mut closed: Value = serde_json::from_str(text).unwrap();
            closed["proof/node-attestation"]
                .as_object_mut()
                .unwrap()
                .shift_remove("by");
            assert!(frozen.is_valid(&closed), "{name}");
        }
    }

    /// A document of exactly [`MAX_VALUES_FOR_ISSUES`] values still has its issues listed;
    /// one more value and it gets the single "too many" issue.
    #[test]
    fn the_value_limit_is_inclusive() {
        let validator = registry()
            .validator("archivist-advertisement", Profile::Seed)
            .unwrap();
        // The object and the array are two values, the items the rest.
        let at_limit = json!({ "accepted/scopes": vec![0; MAX_VALUES_FOR_ISSUES - 2] });
        assert_eq!(validator.issues_to_show(&at_limit).len(), MAX_ISSUES + 1);
        let over = json!({ "accepted/scopes": vec![0; MAX_VALUES_FOR_ISSUES - 1] });
        let issues = validator.issues_to_show(&over);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].message.contains("too many to list"),
            "{}",
            issues[0]
        );
    }

    #[test]
    fn frozen_leaves_other_schemas_alone_and_caches() {
        let registry = registry();
        let inac = registry.get("inac-control").unwrap();
        assert_eq!(Profile::Frozen.document(inac), inac.document);
        let first = registry.validator("inac-control", Profile::Frozen).unwrap();
        let second = registry
            .validator("urn:orbiplex:schema:inac-control:v1", Profile::Frozen)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!("frozen".parse::<Profile>(), Ok(Profile::Frozen));
        assert!("closed".parse::<Profile>().is_err());
    }

    #[test]
    fn issues_are_listed_up_to_the_cap_then_counted() {
        let validator = registry()
            .validator("archivist-advertisement", Profile::Seed)
            .unwrap();
        let document = json!({ "accepted/scopes": vec![0; 1000] });
        let issues = validator.issues(&document);
        assert_eq!(issues.len(), MAX_ISSUES + 1);
        let last = issues.last().unwrap();
        let counted: usize = last
            .message
            .strip_prefix("and ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{last}"));
        assert!(counted >= 1000 - MAX_ISSUES, "{last}");
        assert_eq!(
            MAX_ISSUES + counted,
            validator.inner.iter_errors(&document).count()
        );
        // Over the value limit: one issue, and the validator builds none; a valid document of
        // that size has none.
        let huge = json!({ "accepted/scopes": vec![0; MAX_VALUES_FOR_ISSUES + 1] });
        let issues = validator.issues_to_show(&huge);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].message.contains("too many to list"),
            "{}",
            issues[0]
        );
        // Deciding callers still get the issues themselves.
        assert_eq!(validator.issues(&huge).len(), MAX_ISSUES + 1);
        let open = registry()
            .validator("participant-bind", Profile::Seed)
            .unwrap();
        let mut big_bind = bind();
        big_bind["extra"] = json!(vec![0; MAX_VALUES_FOR_ISSUES + 1]);
        assert!(
            open.is_valid(&big_bind),
            "the seed shape takes unknown members"
        );
        assert!(open.issues_to_show(&big_bind).is_empty());
        // A document with few issues lists them all, with nothing counted.
        let (listed, total) = validator.issues_counted(&document);
        assert_eq!((listed.len(), total), (MAX_ISSUES, MAX_ISSUES + counted));
        let few = validator.issues(&json!({}));
        assert!(few.len() < MAX_ISSUES);
        assert!(
            few.iter()
                .all(|issue| !issue.message.ends_with("not listed"))
        );
    }

    #[test]
    fn issues_carry_instance_and_keyword_pointers() {
        let validator = registry()
            .validator("participant-bind", Profile::Seed)
            .unwrap();
        let mut document = bind();
        document["schema/v"] = json!(2);
        document["session/id"] = json!("");
        let issues = validator.issues(&document);
        assert_eq!(issues.len(), 2, "{issues:#?}");
        assert!(
            issues
                .iter()
                .any(|i| i.instance == "/schema~1v" && i.keyword.ends_with("/const"))
        );
        assert!(
            issues
                .iter()
                .any(|i| i.instance == "/session~1id" && i.keyword.ends_with("/minLength"))
        );
    }
}
