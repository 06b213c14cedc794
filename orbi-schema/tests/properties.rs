//! Properties of the registry lookups, the reports and the typed entry point.

use orbi_schema::{Profile, Report, issue::MAX_QUOTED_CHARS, registry, validate_bytes};
use orbi_types::strategies;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn schema_names() -> Vec<&'static str> {
    registry().all().iter().map(|schema| schema.name).collect()
}

proptest! {
    /// `<anything>.<schema>.json` names that schema; a name without the `.json` suffix, or
    /// without the dot before the schema name, names none.
    #[test]
    fn file_names_tell_their_schema(prefix in "[a-z0-9._-]{0,12}", index in 0usize..64) {
        let names = schema_names();
        let name = names[index % names.len()];
        let named = format!("{prefix}.{name}.json");
        let wrong_extension = format!("{prefix}.{name}.jsonx");
        let no_dot = format!("{prefix}{name}.json");
        let found = registry().for_file_name(&named).map(|schema| schema.name);
        prop_assert_eq!(found, Some(name));
        prop_assert!(registry().for_file_name(&wrong_extension).is_none());
        let undotted = registry().for_file_name(&no_dot).map(|schema| schema.name);
        // Without the dot the name only matches when the prefix supplies one (or another
        // schema's name is a dotted suffix of it, which no two names are).
        prop_assert!(undotted.is_none() || prefix.ends_with('.'), "{no_dot}: {undotted:?}");
    }

    /// Whatever a document holds, every message is one bounded line that never starts with a
    /// capital letter.
    #[test]
    fn messages_are_bounded_lines(text in "\\PC{0,300}", number in any::<f64>(), index in 0usize..64) {
        let names = schema_names();
        let name = names[index % names.len()];
        let mut document = serde_json::json!({"schema/v": text, "schema": number});
        document[text.as_str()] = Value::String(text.repeat(20));
        let bytes = serde_json::to_vec(&document).unwrap();
        if let Err(report) = validate_bytes(name, &bytes, Profile::Seed) {
            for issue in report.issues() {
                prop_assert!(!issue.message.contains('\n'), "{}", issue.message);
                prop_assert!(!issue.message.starts_with(char::is_uppercase), "{}", issue.message);
                // A quoted value is cut to MAX_QUOTED_CHARS; the words around it are few.
                prop_assert!(issue.message.chars().count() < 8 * MAX_QUOTED_CHARS, "{}", issue.message);
            }
        }
    }

    /// Arbitrary bytes never panic the entry points; a syntax report carries a position.
    #[test]
    fn arbitrary_bytes_are_judged_not_panicked(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        match validate_bytes("inac-control", &bytes, Profile::Frozen) {
            Ok(_) | Err(Report::Invalid { .. }) => {}
            Err(Report::Syntax { line, column, .. }) => prop_assert!(line >= 1 && column <= bytes.len() + 1),
            Err(other) => prop_assert!(false, "unexpected report {other:?}"),
        }
    }
}

#[test]
fn profiles_round_trip_through_their_names() {
    for profile in Profile::ALL {
        assert_eq!(profile.as_str().parse::<Profile>(), Ok(profile));
        assert_eq!(profile.to_string(), profile.as_str());
    }
}

/// Removing any required member of a generated valid artifact is reported at the member's
/// object as exactly that missing member.
#[test]
fn a_removed_required_member_is_named() {
    for (name, strategy) in strategies::all() {
        let schema = registry().get(name).unwrap();
        let required: Vec<String> = schema.document["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|key| key.as_str().map(str::to_owned))
            .collect();
        let mut runner = TestRunner::new(Config::with_cases(32));
        runner
            .run(&(strategy, 0usize..64), |(document, pick)| {
                let bytes = serde_json::to_vec(&document).unwrap();
                prop_assert!(validate_bytes(name, &bytes, Profile::Seed).is_ok());
                let missing = &required[pick % required.len()];
                let mut broken = document.clone();
                broken.as_object_mut().unwrap().shift_remove(missing);
                let bytes = serde_json::to_vec(&broken).unwrap();
                let report = validate_bytes(name, &bytes, Profile::Seed).unwrap_err();
                let expected = format!("missing required property \"{missing}\"");
                prop_assert!(
                    report
                        .issues()
                        .iter()
                        .any(|i| i.instance.is_empty() && i.message == expected),
                    "{name}: {report}"
                );
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{name}: {failure}"));
    }
}
