//! Generated schema-valid artifacts must validate against the canonical schemas, and the typed
//! parse must accept them: the types and the files describe the same contract.

use orbi_schema::registry;
use orbi_types::strategies;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn generated_artifacts_validate_against_canonical_schemas() {
    for (name, strategy) in strategies::all() {
        let schema = registry().get(name).unwrap();
        let validator = registry().compile(name, &schema.document).unwrap();
        let mut runner = TestRunner::new(Config::with_cases(96));
        runner
            .run(&strategy, |document| {
                let errors: Vec<String> = validator
                    .iter_errors(&document)
                    .map(|e| format!("{} {e}", e.instance_path()))
                    .collect();
                prop_assert!(errors.is_empty(), "{name}: {errors:?}\n{document:#}");
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{name}: {failure}"));
    }
}
