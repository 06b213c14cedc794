//! The spec's test fixtures (spec archivist §6), built in code: `cargo test` cannot read
//! `../shared`, so AD-A carries the upstream example's values verbatim.

#![allow(dead_code)] // each test binary uses a different part

use orbi_archivist::{Advertisement, Policy, PreparedRequest};
use orbi_types::{ArchivalStorageRequest, Artifact, Timestamp};
use serde_json::{Value, json};

/// AD-A: `bounded-retention.archivist-advertisement.json`, as upstream publishes it.
pub fn ad_a() -> Value {
    json!({
        "schema/v": 1,
        "advertisement/id": "archivist-advertisement:01JP0Q6F9B4R47AK9A8R8Q2HKS",
        "created-at": "2026-03-22T22:22:33Z",
        "archivist/node-id": "node:pl-wro-archivist-1",
        "accepted/scopes": ["private-retained", "federation-vault"],
        "accepted/artifact-types": ["transcript-bundle", "knowledge-artifact", "corpus-entry"],
        "retrieval/mode": "federation-discovery",
        "retention/default-max-duration-sec": 7776000,
        "retention/default-max-idle-ttl-sec": 2592000,
        "replication/max-copies": 3,
        "publication/timing-profiles": ["delayed-bundle", "curator-gated"],
        "settlement/required": true,
        "settlement/rail-hints": ["external-invoice", "host-ledger"]
    })
}

/// AD-X: `invalid/settlement-required-without-rails.archivist-advertisement.json`.
pub fn ad_x() -> Value {
    json!({
        "schema/v": 1,
        "advertisement/id": "archivist-advertisement:01JP0TDKXH0K7J4JZWK65F0JVT",
        "created-at": "2026-03-22T22:28:04Z",
        "archivist/node-id": "node:pl-wro-archivist-2",
        "accepted/scopes": ["federation-vault"],
        "accepted/artifact-types": ["transcript-bundle"],
        "retrieval/mode": "federation-discovery",
        "settlement/required": true
    })
}

/// AD-F: AD-A with `settlement/required: false` and no hints (its own archivist, so it can
/// be ranked next to AD-A).
pub fn ad_f() -> Value {
    let mut ad = ad_a();
    ad["settlement/required"] = json!(false);
    ad.as_object_mut().unwrap().remove("settlement/rail-hints");
    ad["advertisement/id"] = json!("archivist-advertisement:F");
    ad["archivist/node-id"] = json!("node:archivist-f");
    ad
}

/// AD-D: AD-F with `retrieval/mode: direct-only`.
pub fn ad_d() -> Value {
    let mut ad = ad_f();
    ad["retrieval/mode"] = json!("direct-only");
    ad["advertisement/id"] = json!("archivist-advertisement:D");
    ad["archivist/node-id"] = json!("node:archivist-d");
    ad
}

/// AD-P: public vault, no retention fields, no max-copies, free.
pub fn ad_p() -> Value {
    json!({
        "schema/v": 1,
        "advertisement/id": "archivist-advertisement:P",
        "created-at": "2026-03-22T22:22:33Z",
        "archivist/node-id": "node:archivist-p",
        "accepted/scopes": ["public-vault"],
        "accepted/artifact-types": ["transcript-bundle", "corpus-entry"],
        "retrieval/mode": "public-discovery",
        "publication/timing-profiles": ["curator-gated", "delayed-bundle"],
        "settlement/required": false
    })
}

/// PKG-F: `federation-accepted.archival-package.json` as spec §6 describes it.
pub fn pkg_f() -> Value {
    json!({
        "schema/v": 1,
        "package/id": "archival-package:01JNZ94NQ90KJ0H2VTW6J8Q0DA",
        "artifact/id": "bundle:01JNZ94NQ90KJ0H2VTW6J8Q0D9",
        "artifact/type": "transcript-bundle",
        "source/question-id": "question:01JNZ94NQ90KJ0H2VTW6J8Q0D8",
        "created-at": "2026-03-22T22:20:00Z",
        "publication/scope": "federation-vault",
        "publication/timing-profile": "curator-gated",
        "archival/basis": "federation-policy",
        "redaction/status": "partial",
        "retention/max-duration-sec": 7776000,
        "retention/max-idle-ttl-sec": 2592000,
        "payload/ref": "memarium:blob:01JNZ94NQ90KJ0H2VTW6J8Q0D7",
        "provenance/refs": ["transcript:01JNZ94NQ90KJ0H2VTW6J8Q0D6"],
        "classification": {"source_tier": "Community", "effective_tier": "Community"},
        "integrity/proof": {
            "alg": "ed25519",
            "manifest_hash": "sha256:8b1a9953c4611296a827abf8c47804d7",
            "signer": "node:pl-wro-archivist-1",
            "signature": "sig"
        }
    })
}

/// The default request derived from PKG-F: copies 1, rails [host-ledger], can settle,
/// negotiation allowed, no shortfall.
pub fn request_f() -> Value {
    json!({
        "schema/v": 1,
        "request/id": "storage-request:01JQORBISR0001",
        "requested-at": "2026-03-22T22:21:13Z",
        "requester/node-id": "node:pl-wro-preserver-1",
        "package/id": "archival-package:01JNZ94NQ90KJ0H2VTW6J8Q0DA",
        "publication/scope": "federation-vault",
        "artifact/type": "transcript-bundle",
        "publication/timing-profile": "curator-gated",
        "retention/max-duration-sec": 7776000,
        "retention/max-idle-ttl-sec": 2592000,
        "replication/copies": 1,
        "settlement/can-settle": true,
        "settlement/acceptable-rails": ["host-ledger"],
        "negotiation/allowed": true,
        "retention/allow-shortfall": false
    })
}

/// Admits an advertisement that must be valid.
pub fn admit(value: Value) -> Advertisement {
    Advertisement::admit(&value).unwrap_or_else(|err| panic!("{err}"))
}

/// Prepares a request document that must parse, as the spec's default request (§6): with
/// CD-A as gate evidence, so the export gates (stage 2) pass.
pub fn prepare(value: Value) -> PreparedRequest {
    prepare_without_gate_evidence(value)
        .with_gate_findings([])
        .unwrap_or_else(|err| panic!("{err}"))
}

/// Prepares a request document that must parse, with no gate evidence (stage 2 fails closed
/// for the vault scopes).
pub fn prepare_without_gate_evidence(value: Value) -> PreparedRequest {
    PreparedRequest::new(&typed(value))
}

/// Parses a request document that must parse.
pub fn typed(value: Value) -> ArchivalStorageRequest {
    ArchivalStorageRequest::from_value(&value).unwrap_or_else(|err| panic!("{err}"))
}

/// `request_f()` with `changes` applied (`null` removes a key).
pub fn request_with(changes: Value) -> Value {
    with(request_f(), changes)
}

/// `value` with the members of `changes` set (`null` removes a member).
pub fn with(mut value: Value, changes: Value) -> Value {
    for (key, change) in changes.as_object().unwrap() {
        if change.is_null() {
            value.as_object_mut().unwrap().remove(key);
        } else {
            value[key] = change.clone();
        }
    }
    value
}

/// A timestamp that must parse.
pub fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// The default policy.
pub fn policy() -> Policy {
    Policy::default()
}
