//! Proptest strategies that generate schema-valid artifacts as JSON values.
//!
//! Each generated document satisfies its canonical (seed) schema: optional members appear or
//! not, open shapes carry unknown `x-…` members, and object keys come in random order, so the
//! round-trip and key-order guarantees are exercised. Identifiers use real ed25519 keys.
//! Enabled by the `strategies` feature (and in this crate's own tests).

use proptest::{collection, option, prelude::*, sample::select};
use serde_json::{Map, Value, json};

use crate::{
    Base64Url, KeyPair, Sha256Digest, Timestamp,
    archival::{DecisionStatus, NoteCode, ReasonCode, ReplicationCommitment},
    archivist::{ArtifactType, PublicationScope, RetrievalMode, TimingProfile},
    inac::{Operation, RefusalCode, TransferMode},
    pod::{DetachReason, ProfileType, RecoveryMode, SessionState},
};

/// An object built from `entries` in a random order, plus up to two unknown `x-…` members when
/// `open` is set.
fn object(entries: Vec<(&'static str, Value)>, open: bool) -> impl Strategy<Value = Value> {
    let extras = if open {
        collection::vec(("x-[a-z]{1,6}", leaf()), 0..=2).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (Just(entries), extras)
        .prop_flat_map(|(entries, extras)| {
            let mut all: Vec<(String, Value)> = entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            for (key, value) in extras {
                if !all.iter().any(|(k, _)| *k == key) {
                    all.push((key, value));
                }
            }
            Just(all).prop_shuffle()
        })
        .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()))
}

/// A small JSON leaf value.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ]
}

/// Any small JSON value (for open annotation objects).
fn annotation() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            collection::btree_map("[a-z_]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn annotations() -> impl Strategy<Value = Option<Value>> {
    option::of(
        collection::btree_map("[a-z_]{1,8}", annotation(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    )
}

fn opaque_id(prefix: &'static str) -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{1,26}".prop_map(move |tail| format!("{prefix}:{tail}"))
}

fn key_pair() -> impl Strategy<Value = KeyPair> {
    any::<[u8; 32]>().prop_map(|seed| KeyPair::from_seed(&seed))
}

/// An RFC 3339 timestamp: UTC seconds, sometimes with a fraction or an offset.
pub fn timestamp() -> impl Strategy<Value = String> {
    (0i64..4_102_444_800, 0u8..3, 0u32..1000, -12i32..=14).prop_map(
        |(seconds, style, millis, offset_hours)| {
            let utc = Timestamp::from_unix_seconds(seconds)
                .map(|t| t.as_str().to_owned())
                .unwrap_or_else(|| "2026-03-28T19:42:00Z".into());
            match style {
                0 => utc,
                1 => utc.replace('Z', &format!(".{millis:03}Z")),
                _ => {
                    let instant = Timestamp::parse(&utc).map(|t| t.instant()).ok();
                    let offset = time::UtcOffset::from_hms(offset_hours as i8, 0, 0).ok();
                    match (instant, offset) {
                        (Some(instant), Some(offset)) => instant
                            .to_offset(offset)
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or(utc),
                        _ => utc,
                    }
                }
            }
        },
    )
}

fn signature_object(open: bool) -> impl Strategy<Value = Value> {
    "[A-Za-z0-9_-]{1,86}".prop_flat_map(move |value| {
        object(
            vec![("alg", json!("ed25519")), ("value", json!(value))],
            open,
        )
    })
}

/// A schema-valid `participant-bind.v1`.
pub fn participant_bind() -> impl Strategy<Value = Value> {
    (
        key_pair(),
        key_pair(),
        opaque_id("pb"),
        timestamp(),
        opaque_id("sess"),
        signature_object(true),
        option::of(signature_object(true)),
        annotations(),
    )
        .prop_flat_map(
            |(participant, node, bind_id, bound_at, session, proof, attestation, notes)| {
                let mut entries = vec![
                    ("schema/v", json!(1)),
                    ("bind/id", json!(bind_id)),
                    ("bound-at", json!(bound_at)),
                    ("participant/id", json!(participant.participant_id())),
                    ("via/node-id", json!(node.node_id())),
                    ("session/id", json!(session)),
                    ("participant/key/alg", json!("ed25519")),
                    ("participant/key/public", json!(participant.did_key())),
                    ("proof/participant-signature", proof),
                ];
                push_some(&mut entries, "proof/node-attestation", attestation);
                push_some(&mut entries, "policy_annotations", notes);
                object(entries, true)
            },
        )
}

fn push_some(entries: &mut Vec<(&'static str, Value)>, key: &'static str, value: Option<Value>) {
    if let Some(value) = value {
        entries.push((key, value));
    }
}

/// A schema-valid `client-instance-attachment.v1`.
pub fn attachment() -> impl Strategy<Value = Value> {
    (
        (opaque_id("attach"), timestamp(), select(ProfileType::ALL)),
        (key_pair(), option::of(key_pair()), opaque_id("client")),
        (
            option::of(any::<bool>()),
            select(SessionState::ALL),
            any::<bool>(),
            any::<bool>(),
        ),
        (participant_bind(), annotations()),
    )
        .prop_flat_map(
            |((id, at, profile), (node, pod_user, client), flags, (bind, notes))| {
                let (models_local, state, export, migration) = flags;
                let mut entries = vec![
                    ("schema/v", json!(1)),
                    ("attachment/id", json!(id)),
                    ("attached-at", json!(at)),
                    ("profile/type", json!(profile)),
                    ("serving-node/id", json!(node.node_id())),
                    ("client-instance/id", json!(client)),
                    ("session/state", json!(state)),
                    ("export/capable?", json!(export)),
                    ("migration/allowed?", json!(migration)),
                    ("participant-bind", bind),
                ];
                push_some(
                    &mut entries,
                    "pod-user/id",
                    pod_user.map(|key| json!(format!("pod-user:did:key:{}", key.did_key()))),
                );
                push_some(&mut entries, "models/local?", models_local.map(Value::from));
                push_some(&mut entries, "policy_annotations", notes);
                object(entries, true)
            },
        )
}

/// A schema-valid `client-instance-detachment.v1`.
pub fn detachment() -> impl Strategy<Value = Value> {
    (
        (opaque_id("detach"), timestamp(), opaque_id("attach")),
        (key_pair(), opaque_id("client"), select(DetachReason::ALL)),
        (option::of("[ -~]{1,40}"), participant_bind()),
        (option::of(signature_object(true)), annotations()),
    )
        .prop_flat_map(
            |((id, at, attachment), (node, client, reason), (notes, bind), (proof, ann))| {
                let mut entries = vec![
                    ("schema/v", json!(1)),
                    ("detachment/id", json!(id)),
                    ("detached-at", json!(at)),
                    ("attachment/id", json!(attachment)),
                    ("serving-node/id", json!(node.node_id())),
                    ("client-instance/id", json!(client)),
                    ("detach/reason", json!(reason)),
                    ("participant-bind", bind),
                ];
                push_some(&mut entries, "detach/notes", notes.map(Value::from));
                push_some(&mut entries, "proof/node-attestation", proof);
                push_some(&mut entries, "policy_annotations", ann);
                object(entries, true)
            },
        )
}

/// A schema-valid `client-instance-recovery.v1`.
pub fn recovery() -> impl Strategy<Value = Value> {
    (
        (opaque_id("recover"), timestamp(), key_pair()),
        (
            opaque_id("client"),
            select(RecoveryMode::ALL),
            opaque_id("detach"),
        ),
        (option::of(opaque_id("migrate")), participant_bind()),
        (option::of(signature_object(true)), annotations()),
    )
        .prop_flat_map(
            |((id, at, node), (client, mode, from), (token, bind), (proof, ann))| {
                let mut entries = vec![
                    ("schema/v", json!(1)),
                    ("recovery/id", json!(id)),
                    ("recovered-at", json!(at)),
                    ("serving-node/id", json!(node.node_id())),
                    ("client-instance/id", json!(client)),
                    ("recovery/mode", json!(mode)),
                    ("recovery/from-detachment-id", json!(from)),
                    ("participant-bind", bind),
                ];
                push_some(&mut entries, "recovery/token-ref", token.map(Value::from));
                push_some(&mut entries, "proof/node-attestation", proof);
                push_some(&mut entries, "policy_annotations", ann);
                object(entries, true)
            },
        )
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9:_./-]{1,256}"
}

/// An artifact descriptor with exactly one payload location.
fn descriptor() -> impl Strategy<Value = Value> {
    (
        "[a-z][a-z.-]{0,20}\\.v[0-9]",
        select(vec![
            "application/json",
            "text/plain",
            "application/octet-stream",
        ]),
        collection::vec(any::<u8>(), 1..64),
        0u8..3,
        any::<bool>(),
    )
        .prop_flat_map(|(schema, content_type, bytes, location, id_is_digest)| {
            let digest = Sha256Digest::of(&bytes);
            let artifact_id = if id_is_digest {
                digest.to_string()
            } else {
                format!("{schema}:{}", bytes.len())
            };
            let mut entries = vec![
                ("schema", json!(schema)),
                ("content/type", json!(content_type)),
                ("artifact/id", json!(artifact_id)),
                ("digest", json!(digest)),
                ("size/bytes", json!(bytes.len())),
            ];
            entries.push(match location {
                0 => ("bytes/base64url", json!(Base64Url::encode(&bytes))),
                1 => ("artifact/ref", json!("inac-stream:7")),
                _ => ("artifact/href", json!("https://example.org/a/b?c=1")),
            });
            object(entries, false)
        })
}

fn meta() -> impl Strategy<Value = Value> {
    collection::btree_map("[A-Za-z0-9:_./-]{1,64}", "[ -~]{0,40}", 0..=16)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::from(v))).collect()))
}

fn response(operation: Operation) -> impl Strategy<Value = Value> {
    let status = operation
        .response_status()
        .map(|s| s.as_str())
        .unwrap_or("refused");
    (
        option::of(select(RefusalCode::ALL)),
        option::of(any::<bool>()),
        option::of(0u64..600_000),
        option::of("[ -~]{0,100}"),
    )
        .prop_flat_map(move |(code, retryable, after, message)| {
            let mut entries = vec![("status", json!(status))];
            push_some(&mut entries, "refusal/code", code.map(|c| json!(c)));
            push_some(&mut entries, "retryable", retryable.map(Value::from));
            push_some(&mut entries, "retry/after-ms", after.map(Value::from));
            push_some(&mut entries, "message", message.map(Value::from));
            object(entries, false)
        })
}

/// A schema-valid `inac-control.v1` frame of any operation.
pub fn inac_control() -> impl Strategy<Value = Value> {
    (
        select(Operation::ALL),
        option::of(token()),
        option::of(token()),
        option::of(meta()),
        option::of((option::of(select(TransferMode::ALL)), option::of(1u64..1 << 24))),
    )
        .prop_flat_map(|(operation, correlation, idempotency, meta, transfer)| {
            let body = match operation {
                Operation::Offer | Operation::Push => descriptor()
                    .prop_map(|d| vec![("artifact", d)])
                    .boxed(),
                Operation::Request => (option::of(Just(())), any::<bool>())
                    .prop_map(|(_, with_id)| {
                        let mut request = json!({"schema": "memarium-blob.v1", "content/type": "application/json"});
                        if with_id {
                            request["artifact/id"] = json!("sha256:RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o");
                        }
                        vec![("request", request)]
                    })
                    .boxed(),
                other => response(other).prop_map(|r| vec![("response", r)]).boxed(),
            };
            (Just((operation, correlation, idempotency, meta, transfer)), body)
        })
        .prop_flat_map(|((operation, correlation, idempotency, meta, transfer), body)| {
            let mut entries = vec![
                ("schema", json!("inac-control.v1")),
                ("operation", json!(operation)),
            ];
            entries.extend(body);
            push_some(&mut entries, "correlation/id", correlation.map(Value::from));
            push_some(&mut entries, "idempotency/key", idempotency.map(Value::from));
            push_some(&mut entries, "meta", meta);
            if let Some((mode, chunk)) = transfer {
                let mut t = Map::new();
                if let Some(mode) = mode {
                    t.insert("mode".into(), json!(mode));
                }
                if let Some(chunk) = chunk {
                    t.insert("chunk/size-bytes".into(), json!(chunk));
                }
                entries.push(("transfer", Value::Object(t)));
            }
            object(entries, false)
        })
}

/// A schema-valid `archivist-advertisement.v1`.
pub fn archivist_advertisement() -> impl Strategy<Value = Value> {
    (
        (
            opaque_id("archivist-advertisement"),
            timestamp(),
            "[a-z:-]{1,30}",
        ),
        (
            collection::vec(select(PublicationScope::ALL), 1..4),
            collection::vec(select(ArtifactType::ALL), 1..6),
            select(RetrievalMode::ALL),
        ),
        (
            option::of(1u64..1 << 40),
            option::of(1u64..1 << 40),
            option::of(1u64..10),
        ),
        (
            option::of(collection::vec(select(TimingProfile::ALL), 0..4)),
            any::<bool>(),
            option::of(collection::vec("[a-z-]{1,16}", 0..4)),
            annotations(),
        ),
    )
        .prop_flat_map(
            |((id, at, node), (scopes, types, mode), (duration, idle, copies), rest)| {
                let (timing, required, hints, notes) = rest;
                // The conditional: settlement/required true needs rail hints present.
                let hints = if required {
                    Some(hints.unwrap_or_default())
                } else {
                    hints
                };
                let mut entries = vec![
                    ("schema/v", json!(1)),
                    ("advertisement/id", json!(id)),
                    ("created-at", json!(at)),
                    ("archivist/node-id", json!(node)),
                    ("accepted/scopes", json!(scopes)),
                    ("accepted/artifact-types", json!(types)),
                    ("retrieval/mode", json!(mode)),
                    ("settlement/required", json!(required)),
                ];
                push_some(
                    &mut entries,
                    "retention/default-max-duration-sec",
                    duration.map(Value::from),
                );
                push_some(
                    &mut entries,
                    "retention/default-max-idle-ttl-sec",
                    idle.map(Value::from),
                );
                push_some(
                    &mut entries,
                    "replication/max-copies",
                    copies.map(Value::from),
                );
                push_some(
                    &mut entries,
                    "publication/timing-profiles",
                    timing.map(|t| json!(t)),
                );
                push_some(
                    &mut entries,
                    "settlement/rail-hints",
                    hints.map(|h| json!(h)),
                );
                push_some(&mut entries, "policy_annotations", notes);
                object(entries, true)
            },
        )
}

/// Settlement rail strings: the four known ones and free text.
fn rail() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "external-invoice",
            "host-ledger",
            "manual-transfer",
            "none"
        ])
        .prop_map(str::to_owned),
        "[a-z-]{1,16}",
    ]
}

/// A schema-valid `archival-storage-request.v1` (closed: no unknown members).
pub fn archival_storage_request() -> impl Strategy<Value = Value> {
    (
        (
            opaque_id("storage-request"),
            timestamp(),
            "node:[a-z0-9-]{1,20}",
            opaque_id("archival-package"),
        ),
        (
            select(PublicationScope::ALL),
            select(ArtifactType::ALL),
            option::of(select(TimingProfile::ALL)),
            select(TimingProfile::ALL),
        ),
        (
            option::of(1u64..1 << 40),
            option::of(1u64..1 << 40),
            option::of(1u64..6),
            option::of(select(ReplicationCommitment::ALL)),
        ),
        (
            option::of(any::<bool>()),
            option::of(collection::vec(rail(), 0..4)),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
        ),
        (option::of("node:[a-z0-9-]{1,20}"), annotations()),
    )
        .prop_flat_map(
            |(
                (id, at, requester, package),
                (scope, kind, timing, public_timing),
                (duration, idle, copies, commitment),
                (can_settle, rails, negotiation, shortfall),
                (target, notes),
            )| {
                // The conditional: public-vault names a timing profile.
                let timing = match scope {
                    PublicationScope::PublicVault => Some(timing.unwrap_or(public_timing)),
                    _ => timing,
                };
                let mut entries = vec![
                    ("schema/v", json!(1)),
                    ("request/id", json!(id)),
                    ("requested-at", json!(at)),
                    ("requester/node-id", json!(requester)),
                    ("package/id", json!(package)),
                    ("publication/scope", json!(scope)),
                    ("artifact/type", json!(kind)),
                ];
                for (key, value) in [
                    ("publication/timing-profile", timing.map(|t| json!(t))),
                    ("retention/max-duration-sec", duration.map(Value::from)),
                    ("retention/max-idle-ttl-sec", idle.map(Value::from)),
                    ("replication/copies", copies.map(Value::from)),
                    ("replication/commitment", commitment.map(|c| json!(c))),
                    ("settlement/can-settle", can_settle.map(Value::from)),
                    ("settlement/acceptable-rails", rails.map(|r| json!(r))),
                    ("negotiation/allowed", negotiation.map(Value::from)),
                    ("retention/allow-shortfall", shortfall.map(Value::from)),
                    ("target/archivist-node-id", target.map(Value::from)),
                    ("policy_annotations", notes),
                ] {
                    push_some(&mut entries, key, value);
                }
                object(entries, false)
            },
        )
}

/// A schema-valid `archival-storage-decision.v1` (closed: no unknown members).
pub fn archival_storage_decision() -> impl Strategy<Value = Value> {
    (
        (
            opaque_id("storage-decision"),
            opaque_id("storage-request"),
            opaque_id("archival-package"),
            "node:[a-z0-9-]{1,20}",
            opaque_id("archivist-advertisement"),
        ),
        (
            timestamp(),
            select(DecisionStatus::ALL),
            select(PublicationScope::ALL),
            option::of(timestamp()),
        ),
        (
            option::of(1u64..1 << 40),
            option::of(1u64..1 << 40),
            option::of(1u64..6),
            option::of(select(ReplicationCommitment::ALL)),
        ),
        (
            option::of(collection::vec(rail(), 0..3)),
            option::of(rail()),
            option::of(opaque_id("procurement-contract")),
            option::of(any::<bool>()),
        ),
        (
            collection::vec(select(ReasonCode::ALL), 1..4),
            option::of(collection::vec(select(NoteCode::ALL), 0..3)),
            annotations(),
        ),
    )
        .prop_flat_map(
            |(
                (id, request, package, archivist, advertisement),
                (at, status, scope, expires),
                (duration, idle, copies, commitment),
                (rails, chosen, contract, verified),
                (reasons, notes, annotations),
            )| {
                let mut entries = vec![
                    ("schema/v", json!(1)),
                    ("decision/id", json!(id)),
                    ("request/id", json!(request)),
                    ("package/id", json!(package)),
                    ("archivist/node-id", json!(archivist)),
                    ("advertisement/id", json!(advertisement)),
                    ("decided-at", json!(at)),
                    ("status", json!(status)),
                    ("publication/scope", json!(scope)),
                ];
                // The conditionals: an acceptance names its retrieval ref and hard expiry and
                // carries no reason; the other answers carry at least one.
                if status == DecisionStatus::Accepted {
                    entries.push(("retrieval/ref", json!(format!("vault:{id}"))));
                    entries.push(("retention/hard-expires-at", json!(expires)));
                    entries.push(("reason/codes", json!([])));
                } else {
                    push_some(
                        &mut entries,
                        "retention/hard-expires-at",
                        expires.map(Value::from),
                    );
                    entries.push(("reason/codes", json!(reasons)));
                }
                for (key, value) in [
                    (
                        "retention/effective-max-duration-sec",
                        duration.map(Value::from),
                    ),
                    (
                        "retention/effective-max-idle-ttl-sec",
                        idle.map(Value::from),
                    ),
                    ("replication/copies", copies.map(Value::from)),
                    ("replication/commitment", commitment.map(|c| json!(c))),
                    ("settlement/candidate-rails", rails.map(|r| json!(r))),
                    ("settlement/rail", chosen.map(Value::from)),
                    ("contract/ref", contract.map(Value::from)),
                    ("integrity/verified", verified.map(Value::from)),
                    ("reason/notes", notes.map(|n| json!(n))),
                    ("policy_annotations", annotations),
                ] {
                    push_some(&mut entries, key, value);
                }
                object(entries, false)
            },
        )
}

/// The bytes of `document` with one to five bytes flipped, inserted or deleted: near-valid
/// input for "never panics" properties.
pub fn mutated(document: Value) -> impl Strategy<Value = Vec<u8>> {
    let text = serde_json::to_vec(&document).unwrap();
    let len = text.len();
    collection::vec((0..len, any::<u8>(), 0u8..3), 1..6).prop_map(move |edits| {
        let mut bytes = text.clone();
        for (at, byte, kind) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match kind {
                0 if !bytes.is_empty() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        bytes
    })
}

/// `(schema name, strategy)` for every artifact, for tests that cover them all.
pub fn all() -> Vec<(&'static str, BoxedStrategy<Value>)> {
    vec![
        ("participant-bind", participant_bind().boxed()),
        ("client-instance-attachment", attachment().boxed()),
        ("client-instance-detachment", detachment().boxed()),
        ("client-instance-recovery", recovery().boxed()),
        ("inac-control", inac_control().boxed()),
        ("archivist-advertisement", archivist_advertisement().boxed()),
        (
            "archival-storage-request",
            archival_storage_request().boxed(),
        ),
        (
            "archival-storage-decision",
            archival_storage_decision().boxed(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ArchivalStorageDecision, ArchivalStorageRequest, ArchivistAdvertisement, Artifact,
        ClientInstanceAttachment, ClientInstanceDetachment, ClientInstanceRecovery, InacControl,
        ParticipantBind,
    };

    /// Parses the text of `value`, re-serializes it, and demands the same text back: the same
    /// JSON value, unknown members included, in the same key order.
    fn assert_round_trip<T: Artifact + PartialEq + std::fmt::Debug>(
        value: &Value,
    ) -> Result<(), TestCaseError> {
        let text = serde_json::to_vec(value).unwrap();
        let parsed = T::from_slice(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&parsed.to_value(), value);
        prop_assert_eq!(parsed.to_json_vec(), text);
        // A second parse of the output gives an equal typed value.
        let again = T::from_slice(&parsed.to_json_vec()).unwrap();
        prop_assert_eq!(again, parsed);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn bind_round_trips(v in participant_bind()) { assert_round_trip::<ParticipantBind>(&v)?; }
        #[test]
        fn attachment_round_trips(v in attachment()) { assert_round_trip::<ClientInstanceAttachment>(&v)?; }
        #[test]
        fn detachment_round_trips(v in detachment()) { assert_round_trip::<ClientInstanceDetachment>(&v)?; }
        #[test]
        fn recovery_round_trips(v in recovery()) { assert_round_trip::<ClientInstanceRecovery>(&v)?; }
        #[test]
        fn inac_round_trips(v in inac_control()) { assert_round_trip::<InacControl>(&v)?; }
        #[test]
        fn advertisement_round_trips(v in archivist_advertisement()) { assert_round_trip::<ArchivistAdvertisement>(&v)?; }
        #[test]
        fn storage_request_round_trips(v in archival_storage_request()) { assert_round_trip::<ArchivalStorageRequest>(&v)?; }
        #[test]
        fn storage_decision_round_trips(v in archival_storage_decision()) { assert_round_trip::<ArchivalStorageDecision>(&v)?; }

        #[test]
        fn mutations_never_panic(bytes in attachment().prop_flat_map(mutated)) {
            let _ = ClientInstanceAttachment::from_slice(&bytes);
            let _ = ParticipantBind::from_slice(&bytes);
        }
        #[test]
        fn inac_mutations_never_panic(bytes in inac_control().prop_flat_map(mutated)) {
            let _ = InacControl::from_slice(&bytes);
        }
        #[test]
        fn advertisement_mutations_never_panic(bytes in archivist_advertisement().prop_flat_map(mutated)) {
            let _ = ArchivistAdvertisement::from_slice(&bytes);
        }
        #[test]
        fn storage_mutations_never_panic(bytes in archival_storage_request().prop_flat_map(mutated)) {
            let _ = ArchivalStorageRequest::from_slice(&bytes);
            let _ = ArchivalStorageDecision::from_slice(&bytes);
        }
        #[test]
        fn arbitrary_bytes_never_panic(bytes in collection::vec(any::<u8>(), 0..256)) {
            let _ = InacControl::from_slice(&bytes);
            let _ = ClientInstanceRecovery::from_slice(&bytes);
            let _ = ClientInstanceDetachment::from_slice(&bytes);
        }
    }
}
