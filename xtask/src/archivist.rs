//! The archivist engine on upstream's own advertisements (`cargo xtask conformance`, with
//! `../shared` present): the "done when" run on the real files.
//!
//! - `bounded-retention.archivist-advertisement.json` (AD-A) with a request for 7776000 s /
//!   2592000 s and `host-ledger` is `negotiation-required` with candidate rail `host-ledger`;
//!   the same advertisement with `settlement/required: false` is `accepted`.
//! - Every upstream advertisement example is admitted exactly when its directory says valid.

use std::{fs, path::Path};

use orbi_archivist::{Advertisement, Policy, PreparedRequest, Verdict, match_request};
use orbi_types::{ArchivalStorageRequest, Artifact, Timestamp};
use serde_json::{Value, json};

/// One check: `Ok` with what passed, or `Err` with what failed.
pub type Check = Result<String, String>;

const AD_A: &str = "valid/bounded-retention.archivist-advertisement.json";

fn request() -> Result<PreparedRequest, String> {
    let value = json!({
        "schema/v": 1, "request/id": "storage-request:conformance",
        "requested-at": "2026-03-22T22:21:13Z", "requester/node-id": "node:conformance",
        "package/id": "archival-package:01JNZ94NQ90KJ0H2VTW6J8Q0DA",
        "publication/scope": "federation-vault", "artifact/type": "transcript-bundle",
        "publication/timing-profile": "curator-gated",
        "retention/max-duration-sec": 7776000, "retention/max-idle-ttl-sec": 2592000,
        "settlement/can-settle": true, "settlement/acceptable-rails": ["host-ledger"]
    });
    // The spec's default request (§6) has CD-A as gate evidence: the export gates pass.
    let request = ArchivalStorageRequest::from_value(&value)
        .map_err(|err| format!("conformance request: {err}"))?;
    PreparedRequest::new(&request)
        .with_gate_findings([])
        .map_err(|err| format!("conformance request: {err}"))
}

fn read(path: &Path) -> Result<Value, String> {
    let bytes = fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|err| format!("{} is not json: {err}", path.display()))
}

/// Runs the checks against `conformance` (upstream's example directory).
pub fn check_upstream(conformance: &Path) -> Result<Vec<Check>, String> {
    let mut checks = Vec::new();
    let request = request()?;
    let now = Timestamp::parse("2026-11-21T00:00:00Z").map_err(|err| err.to_string())?;
    let ad_a = read(&conformance.join(AD_A))?;
    let mut free = ad_a.clone();
    free["settlement/required"] = json!(false);
    for (label, value, want_settlement) in [("AD-A", &ad_a, true), ("AD-A free copy", &free, false)]
    {
        let check = match Advertisement::admit(value) {
            Err(err) => Err(format!("archivist {label}: {err}")),
            Ok(ad) => {
                let report = match_request(&request, &[ad], &Policy::default(), &now);
                match report.ranked.first().map(|entry| &entry.decision) {
                    Some(decision) if want_settlement => match decision.verdict {
                        Verdict::Negotiate(items)
                            if items.settlement_only()
                                && decision.terms.candidate_rails == ["host-ledger"] =>
                        {
                            Ok(format!(
                                "archivist {label}: negotiation-required on host-ledger"
                            ))
                        }
                        _ => Err(format!(
                            "archivist {label}: got {} {:?}",
                            decision.status(),
                            decision.reason_codes()
                        )),
                    },
                    Some(decision) if decision.verdict == Verdict::Accept => {
                        Ok(format!("archivist {label}: accepted"))
                    }
                    other => Err(format!("archivist {label}: got {other:?}")),
                }
            }
        };
        checks.push(check);
    }
    for (valid, dir) in [(true, "valid"), (false, "invalid")] {
        let entries = fs::read_dir(conformance.join(dir))
            .map_err(|err| format!("cannot list {}/{dir}: {err}", conformance.display()))?;
        let mut paths: Vec<_> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.to_string_lossy()
                    .ends_with(".archivist-advertisement.json")
            })
            .collect();
        paths.sort();
        for path in paths {
            let admitted = Advertisement::admit(&read(&path)?).is_ok();
            checks.push(if admitted == valid {
                Ok(format!("archivist admission: {}", path.display()))
            } else {
                Err(format!(
                    "archivist admission: {} expected {}",
                    path.display(),
                    if valid { "admitted" } else { "excluded" }
                ))
            });
        }
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{scratch, workspace_root};

    fn fixture(relative: &str) -> Value {
        read(&workspace_root().join("schemas/examples").join(relative)).unwrap()
    }

    /// A directory shaped like upstream's, from our own fixtures: `ad` as AD-A and one
    /// excluded advertisement under `invalid/`.
    fn examples(dir: &Path, ad: &Value) -> (std::path::PathBuf, std::path::PathBuf) {
        for sub in ["valid", "invalid"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let (valid, invalid) = (
            dir.join(AD_A),
            dir.join("invalid/scope-unknown.archivist-advertisement.json"),
        );
        fs::write(&valid, ad.to_string()).unwrap();
        let excluded = fixture("invalid/scope-unknown.archivist-advertisement.json");
        fs::write(&invalid, excluded.to_string()).unwrap();
        (valid, invalid)
    }

    /// Our host-ledger advertisement, offering the request's timing profile.
    fn ad_a() -> Value {
        let mut ad = fixture("valid/federation-host-ledger.archivist-advertisement.json");
        ad["publication/timing-profiles"] = json!(["curator-gated"]);
        ad
    }

    #[test]
    fn archivist_checks_pass_on_an_ad_a_like_advertisement() {
        let dir = scratch("archivist-pass");
        let (valid, invalid) = examples(&dir, &ad_a());
        assert_eq!(
            check_upstream(&dir).unwrap(),
            [
                Ok("archivist AD-A: negotiation-required on host-ledger".to_owned()),
                Ok("archivist AD-A free copy: accepted".to_owned()),
                Ok(format!("archivist admission: {}", valid.display())),
                Ok(format!("archivist admission: {}", invalid.display())),
            ]
        );
        fs::remove_dir_all(dir).unwrap();
    }

    /// Neither decision passes when the advertisement does not fit the request, and an
    /// excluded advertisement under `valid/` fails its admission check.
    #[test]
    fn archivist_checks_fail_on_the_wrong_advertisements() {
        let dir = scratch("archivist-fail");
        let unfit = fixture("valid/federation-host-ledger.archivist-advertisement.json");
        let (_, invalid) = examples(&dir, &unfit);
        let misplaced = dir.join("valid/zz-scope-unknown.archivist-advertisement.json");
        fs::copy(&invalid, &misplaced).unwrap();
        let checks = check_upstream(&dir).unwrap();
        assert_eq!(checks.len(), 5, "{checks:#?}");
        assert_eq!(
            checks[0],
            Err("archivist AD-A: got refused [TimingProfileUnsupported]".to_owned())
        );
        let free = checks[1].as_ref().unwrap_err();
        assert!(
            free.starts_with(
                "archivist AD-A free copy: got Some(Decision { verdict: \
                 Refuse([TimingProfileUnsupported])"
            ),
            "{free}"
        );
        assert_eq!(
            checks[3],
            Err(format!(
                "archivist admission: {} expected admitted",
                misplaced.display()
            ))
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
