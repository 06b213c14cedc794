//! Our two contracts and the engine agree with the committed fixtures: the typed parse (plus
//! the one conditional the engine reports as a reason) accepts exactly what the schema accepts,
//! every invalid fixture breaks exactly one rule, and advertisements are admitted exactly when
//! their fixture says valid.

use std::{fs, path::PathBuf};

use orbi_archivist::Advertisement;
use orbi_schema::{Profile, registry};
use orbi_types::{ArchivalStorageDecision, ArchivalStorageRequest, Artifact};
use serde_json::Value;

/// `(valid?, file name, document)` of every fixture of `schema`.
fn fixtures(schema: &str) -> Vec<(bool, String, Value)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples");
    let mut found = Vec::new();
    for (valid, dir) in [(true, "valid"), (false, "invalid")] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(&format!(".{schema}.json")) {
                let document = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
                found.push((valid, name, document));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}

fn check_counts(schema: &str, fixtures: &[(bool, String, Value)]) {
    let valid = fixtures.iter().filter(|f| f.0).count();
    assert!(valid >= 5, "{schema}: {valid} valid fixtures");
    assert!(
        fixtures.len() - valid >= 10,
        "{schema}: too few invalid fixtures"
    );
}

#[test]
fn request_typed_parse_plus_timing_rule_equals_schema_validity() {
    let schema = registry()
        .validator(ArchivalStorageRequest::NAME, Profile::Seed)
        .unwrap();
    let fixtures = fixtures(ArchivalStorageRequest::NAME);
    check_counts(ArchivalStorageRequest::NAME, &fixtures);
    for (valid, name, document) in fixtures {
        let issues = schema.issues(&document);
        assert_eq!(issues.is_empty(), valid, "{name}: {issues:?}");
        if !valid {
            assert_eq!(
                issues.len(),
                1,
                "{name} breaks more than one rule: {issues:?}"
            );
        }
        let typed_ok = ArchivalStorageRequest::from_value(&document)
            .map(|request| request.timing_rule_holds())
            .unwrap_or(false);
        assert_eq!(typed_ok, valid, "{name}");
    }
}

#[test]
fn decision_fixtures_break_one_rule_and_valid_ones_round_trip() {
    let schema = registry()
        .validator(ArchivalStorageDecision::NAME, Profile::Seed)
        .unwrap();
    let fixtures = fixtures(ArchivalStorageDecision::NAME);
    check_counts(ArchivalStorageDecision::NAME, &fixtures);
    for (valid, name, document) in fixtures {
        let issues = schema.issues(&document);
        assert_eq!(issues.is_empty(), valid, "{name}: {issues:?}");
        if valid {
            let typed = ArchivalStorageDecision::from_value(&document).unwrap();
            assert_eq!(typed.to_value(), document, "{name}");
        } else {
            assert_eq!(
                issues.len(),
                1,
                "{name} breaks more than one rule: {issues:?}"
            );
        }
    }
}

#[test]
fn advertisements_are_admitted_exactly_when_valid() {
    let fixtures = fixtures("archivist-advertisement");
    assert!(!fixtures.is_empty());
    for (valid, name, document) in fixtures {
        let admitted = Advertisement::admit(&document);
        assert_eq!(admitted.is_ok(), valid, "{name}: {admitted:?}");
    }
}
