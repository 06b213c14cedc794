//! Stages 1, 1b and 1c on an `archival-package.v1` document, when the caller has it.
//!
//! The canonical package schema is not part of this repository yet, so this checks the subset
//! of spec archivist §3.1 the engine relies on, field by field: required members and their
//! vocabularies, `public-vault` ⇒ `publication/timing-profile`, the two forms of
//! `integrity/proof`, references-only payloads, and that the request copied the package's
//! scope, type, timing profile and retention faithfully. Classification is only required to
//! be an object here; judging it is the export gates' work (stage 2).

use std::str::FromStr;

use orbi_types::{
    ArchivalStorageRequest, Timestamp,
    archival::ReasonCode,
    archivist::{ArtifactType, PublicationScope, TimingProfile},
    json::escape_pointer_token,
};
use serde_json::{Map, Value};

use crate::request::Finding;

/// `archival/basis` values (upstream, closed).
pub const ARCHIVAL_BASES: [&str; 6] = [
    "not-required",
    "operator-consultation",
    "explicit-consent",
    "federation-policy",
    "public-scope",
    "emergency-exception",
];

/// `redaction/status` values (upstream, closed).
pub const REDACTION_STATUSES: [&str; 3] = ["none", "partial", "full-derived"];

/// Every finding of stages 1–1c for `package` against the `request` that references it, in
/// pipeline order.
pub fn check_package(package: &Value, request: &ArchivalStorageRequest) -> Vec<Finding> {
    let Some(fields) = package.as_object() else {
        return vec![invalid("", "the package is not a json object".into())];
    };
    let mut findings = Vec::new();
    require(
        &mut findings,
        fields.get("schema/v").and_then(Value::as_u64) == Some(1),
        "schema/v",
        "schema/v must be the integer 1".into(),
    );
    for key in [
        "package/id",
        "artifact/id",
        "source/question-id",
        "payload/ref",
    ] {
        require(
            &mut findings,
            non_empty_text(fields, key).is_some(),
            key,
            format!("{key} must be a non-empty string"),
        );
    }
    require(
        &mut findings,
        text(fields, "created-at").is_some_and(|t| Timestamp::parse(t).is_ok()),
        "created-at",
        "created-at must be an rfc 3339 date-time".into(),
    );
    let scope = vocabulary::<PublicationScope>(fields, "publication/scope");
    let kind = vocabulary::<ArtifactType>(fields, "artifact/type");
    let timing = fields
        .get("publication/timing-profile")
        .map(|value| value.as_str().and_then(|t| TimingProfile::from_str(t).ok()));
    require(
        &mut findings,
        scope.is_some(),
        "publication/scope",
        missing_or_unknown("publication/scope"),
    );
    require(
        &mut findings,
        kind.is_some(),
        "artifact/type",
        missing_or_unknown("artifact/type"),
    );
    require(
        &mut findings,
        text(fields, "archival/basis").is_some_and(|b| ARCHIVAL_BASES.contains(&b)),
        "archival/basis",
        format!(
            "archival/basis must be one of {}",
            ARCHIVAL_BASES.join(", ")
        ),
    );
    require(
        &mut findings,
        text(fields, "redaction/status").is_some_and(|r| REDACTION_STATUSES.contains(&r)),
        "redaction/status",
        format!(
            "redaction/status must be one of {}",
            REDACTION_STATUSES.join(", ")
        ),
    );
    require(
        &mut findings,
        fields
            .get("provenance/refs")
            .and_then(Value::as_array)
            .is_some_and(|refs| !refs.is_empty()),
        "provenance/refs",
        "provenance/refs must be a non-empty array".into(),
    );
    require(
        &mut findings,
        fields.get("classification").is_some_and(Value::is_object),
        "classification",
        "classification must be an object".into(),
    );
    require(
        &mut findings,
        !matches!(timing, Some(None)),
        "publication/timing-profile",
        missing_or_unknown("publication/timing-profile"),
    );
    if scope == Some(PublicationScope::PublicVault) && timing.is_none() {
        findings.push(public_vault_without_timing());
    }
    let duration = positive(fields, "retention/max-duration-sec");
    let idle = positive(fields, "retention/max-idle-ttl-sec");
    require(
        &mut findings,
        !matches!(duration, Some(None)),
        "retention/max-duration-sec",
        "retention/max-duration-sec must be an integer of at least 1".into(),
    );
    require(
        &mut findings,
        !matches!(idle, Some(None)),
        "retention/max-idle-ttl-sec",
        "retention/max-idle-ttl-sec must be an integer of at least 1".into(),
    );
    match fields.get("integrity/proof") {
        None => findings.push(invalid(
            "integrity/proof",
            "integrity/proof is missing".into(),
        )),
        Some(proof) => {
            if let Some(message) = integrity_problem(proof) {
                findings.push(Finding::new(
                    ReasonCode::IntegrityProofInvalid,
                    format!("/integrity~1proof: {message}"),
                ));
            }
        }
    }
    for key in fields.keys().filter(|key| is_inline_payload(key)) {
        findings.push(Finding::new(
            ReasonCode::InlinePayloadForbidden,
            format!(
                "/{}: payload content must travel by payload/ref only",
                escape_pointer_token(key)
            ),
        ));
    }
    let copied: [(&str, bool); 6] = [
        (
            "package/id",
            text(fields, "package/id") == Some(request.package_id.as_str()),
        ),
        (
            "publication/scope",
            scope == Some(request.publication_scope),
        ),
        ("artifact/type", kind == Some(request.artifact_type)),
        (
            "publication/timing-profile",
            timing.flatten() == request.timing_profile,
        ),
        (
            "retention/max-duration-sec",
            duration.flatten() == request.max_duration_sec.map(|d| d.get()),
        ),
        (
            "retention/max-idle-ttl-sec",
            idle.flatten() == request.max_idle_ttl_sec.map(|i| i.get()),
        ),
    ];
    for (key, same) in copied {
        if !same {
            findings.push(Finding::new(
                ReasonCode::RequestPackageMismatch,
                format!(
                    "/{}: the request's {key} differs from the package's",
                    escape_pointer_token(key)
                ),
            ));
        }
    }
    findings.sort_by_key(|finding| finding.code);
    findings
}

/// Keys that would carry payload content inline: `payload` and any `payload/…` but
/// `payload/ref`. Upstream bans inline payloads (P012) without naming keys yet.
fn is_inline_payload(key: &str) -> bool {
    key == "payload" || (key.starts_with("payload/") && key != "payload/ref")
}

/// `alg` plus either `{manifest_hash, signer, signature}` or `verification_ref`.
fn integrity_problem(proof: &Value) -> Option<&'static str> {
    let Some(proof) = proof.as_object() else {
        return Some("not an object");
    };
    if non_empty_text(proof, "alg").is_none() {
        return Some("alg must be a non-empty string");
    }
    // Each member of a branch must say something: `null` or "" satisfies no check.
    let signed = ["manifest_hash", "signer", "signature"]
        .iter()
        .all(|key| non_empty_text(proof, key).is_some());
    let referenced = non_empty_text(proof, "verification_ref").is_some();
    (!signed && !referenced).then_some(
        "needs manifest_hash, signer and signature, or verification_ref, as non-empty strings",
    )
}

/// The package rule `public-vault` ⇒ `publication/timing-profile` is broken.
pub(crate) fn public_vault_without_timing() -> Finding {
    invalid(
        "publication/timing-profile",
        "a public-vault package must name publication/timing-profile".into(),
    )
}

fn require(findings: &mut Vec<Finding>, ok: bool, key: &str, message: String) {
    if !ok {
        findings.push(invalid(key, message));
    }
}

fn invalid(key: &str, message: String) -> Finding {
    let pointer = if key.is_empty() {
        String::new()
    } else {
        format!("/{}", escape_pointer_token(key))
    };
    Finding::new(ReasonCode::PackageInvalid, format!("{pointer}: {message}"))
}

fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    fields.get(key).and_then(Value::as_str)
}

fn non_empty_text<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    text(fields, key).filter(|t| !t.is_empty())
}

fn vocabulary<T: FromStr>(fields: &Map<String, Value>, key: &str) -> Option<T> {
    text(fields, key).and_then(|t| t.parse().ok())
}

fn missing_or_unknown(key: &str) -> String {
    format!("{key} is missing or not one of its values")
}

/// `None` when absent, `Some(None)` when present but not a positive integer.
fn positive(fields: &Map<String, Value>, key: &str) -> Option<Option<u64>> {
    fields
        .get(key)
        .map(|value| value.as_u64().filter(|n| *n >= 1))
}
