//! The stateless admission checks: kind detection, version, typed parse, opaque ids, strict
//! keys (V3), key binding (V4), addressing (V5), the signature (V7) and clock skew (V8).

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use orbi_types::{
    Artifact, ClientInstanceAttachment, ClientInstanceDetachment, ClientInstanceRecovery, DidKey,
    DidKeyError, NodeId, ParseError, ParticipantBind, Sha256Digest, Sha256Hasher, SigningInput,
    Timestamp,
    canonical::to_canonical_bytes,
    pod::{BIND_PROOF_FIELDS, PARTICIPANT_BIND_TAG},
    signing::{self, SignatureError},
};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    code::{Check, Rejection, RejectionCode},
    policy::MAX_ID_BYTES,
    state::ArtifactKind,
};

/// A typed artifact (after the schema gate).
pub(crate) enum Typed {
    Bind(Box<ParticipantBind>),
    Attachment(Box<ClientInstanceAttachment>),
    Detachment(Box<ClientInstanceDetachment>),
    Recovery(Box<ClientInstanceRecovery>),
}

/// The typed parse of `value`: the type's own `Deserialize` impl, which is what
/// [`Artifact::from_value`] runs too. Only when it fails does `from_value` run again, for its
/// error with the JSON pointer of the bad field. The key order `from_value` records is not
/// captured: the engine keeps received bytes and never re-serializes a received artifact.
fn typed<T: Artifact>(value: &Value) -> Result<T, ParseError> {
    T::deserialize(value).or_else(|_| T::from_value(value))
}

impl Typed {
    pub(crate) fn parse(kind: ArtifactKind, value: &Value) -> Result<Typed, Rejection> {
        let typed = match kind {
            ArtifactKind::ParticipantBind => typed(value).map(|a| Typed::Bind(Box::new(a))),
            ArtifactKind::Attachment => typed(value).map(|a| Typed::Attachment(Box::new(a))),
            ArtifactKind::Detachment => typed(value).map(|a| Typed::Detachment(Box::new(a))),
            ArtifactKind::Recovery => typed(value).map(|a| Typed::Recovery(Box::new(a))),
        };
        typed.map_err(|err| invalid(Check::V1, err.to_string()))
    }

    pub(crate) fn bind(&self) -> &ParticipantBind {
        match self {
            Typed::Bind(bind) => bind,
            Typed::Attachment(a) => &a.participant_bind,
            Typed::Detachment(d) => &d.participant_bind,
            Typed::Recovery(r) => &r.participant_bind,
        }
    }

    pub(crate) fn serving_node(&self) -> Option<&NodeId> {
        match self {
            Typed::Bind(_) => None,
            Typed::Attachment(a) => Some(&a.serving_node_id),
            Typed::Detachment(d) => Some(&d.serving_node_id),
            Typed::Recovery(r) => Some(&r.serving_node_id),
        }
    }

    /// The artifact's own `*-at`, with its member name.
    pub(crate) fn own_time(&self) -> Option<(&'static str, &Timestamp)> {
        match self {
            Typed::Bind(_) => None,
            Typed::Attachment(a) => Some(("attached-at", &a.attached_at)),
            Typed::Detachment(d) => Some(("detached-at", &d.detached_at)),
            Typed::Recovery(r) => Some(("recovered-at", &r.recovered_at)),
        }
    }

    /// Every opaque id, with its member name.
    fn opaque_ids(&self) -> Vec<(&'static str, &str)> {
        let bind = self.bind();
        let mut ids = vec![
            ("bind/id", bind.bind_id.as_str()),
            ("session/id", bind.session_id.as_str()),
        ];
        match self {
            Typed::Bind(_) => {}
            Typed::Attachment(a) => {
                ids.push(("attachment/id", &a.attachment_id));
                ids.push(("client-instance/id", &a.client_instance_id));
            }
            Typed::Detachment(d) => {
                ids.push(("detachment/id", &d.detachment_id));
                ids.push(("attachment/id", &d.attachment_id));
                ids.push(("client-instance/id", &d.client_instance_id));
            }
            Typed::Recovery(r) => {
                ids.push(("recovery/id", &r.recovery_id));
                ids.push(("client-instance/id", &r.client_instance_id));
                ids.push(("recovery/from-detachment-id", &r.from_detachment_id));
                if let Some(token) = &r.token_ref {
                    ids.push(("recovery/token-ref", token));
                }
            }
        }
        ids
    }
}

pub(crate) fn invalid(check: Check, message: impl Into<String>) -> Rejection {
    Rejection::new(RejectionCode::ProtoInvalid, check, message)
}

/// Text cut to `max` characters, for messages that quote input.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// Which artifact a document is, from the member holding its own id. A detachment also
/// carries `attachment/id`, so `detachment/id` and `recovery/id` are looked at first.
pub(crate) fn detect(value: &Value) -> Result<ArtifactKind, Rejection> {
    let members = value
        .as_object()
        .ok_or_else(|| invalid(Check::V1, "an artifact must be a json object"))?;
    let has = |field: &str| members.contains_key(field);
    match (has("detachment/id"), has("recovery/id")) {
        (true, true) => Err(invalid(
            Check::V1,
            "ambiguous artifact: both detachment/id and recovery/id are present",
        )),
        (true, false) => Ok(ArtifactKind::Detachment),
        (false, true) => Ok(ArtifactKind::Recovery),
        (false, false) if has("attachment/id") => Ok(ArtifactKind::Attachment),
        (false, false) if has("bind/id") => Ok(ArtifactKind::ParticipantBind),
        (false, false) => Err(invalid(
            Check::V1,
            "not a pod artifact: expected one of detachment/id, recovery/id, attachment/id or \
             bind/id",
        )),
    }
}

/// V2: a numeric `schema/v` (top level or in the embedded bind) other than 1.
pub(crate) fn wrong_version(value: &Value) -> Option<Rejection> {
    let candidates = [
        ("schema/v", value.get("schema/v")),
        (
            "participant-bind/schema/v",
            value
                .get("participant-bind")
                .and_then(|b| b.get("schema/v")),
        ),
    ];
    candidates.into_iter().find_map(|(field, version)| {
        let version = version.filter(|v| v.is_number() && v.as_f64() != Some(1.0))?;
        Some(Rejection::new(
            RejectionCode::ProtoVersion,
            Check::V2,
            format!("{field} is {version}; this node speaks version 1"),
        ))
    })
}

/// V1 [R]: opaque ids are at most 256 bytes and free of whitespace and control characters.
pub(crate) fn opaque_ids(typed: &Typed) -> Result<(), Rejection> {
    for (field, id) in typed.opaque_ids() {
        if id.len() > MAX_ID_BYTES {
            return Err(invalid(
                Check::V1,
                format!(
                    "{field} is {} bytes; ids are at most {MAX_ID_BYTES}",
                    id.len()
                ),
            ));
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                Check::V1,
                format!(
                    "{field} {:?} contains whitespace or control characters",
                    clip(id, 64)
                ),
            ));
        }
    }
    Ok(())
}

/// Strictly decoded `did:key`s, by text. Decoding (base58, point decompression, canonical
/// re-encoding) costs more than a signature check, and the same few keys (this node, the
/// hosted participants) arrive again and again. Only successful decodings are kept; the map is
/// bounded by starting over when full.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: HashMap<String, VerifyingKey>,
}

impl KeyCache {
    const CAPACITY: usize = 4096;

    /// The strict decoding of `key` (see [`DidKey::verifying_key`]).
    pub(crate) fn decode(&mut self, key: &DidKey) -> Result<VerifyingKey, DidKeyError> {
        if let Some(found) = self.keys.get(key.as_str()) {
            return Ok(*found);
        }
        let decoded = key.verifying_key()?;
        if self.keys.len() >= Self::CAPACITY {
            self.keys.clear();
        }
        self.keys.insert(key.as_str().to_owned(), decoded);
        Ok(decoded)
    }
}

/// V3: every `did:key` decodes strictly; returns the participant's verifying key.
pub(crate) fn strict_keys(typed: &Typed, cache: &mut KeyCache) -> Result<VerifyingKey, Rejection> {
    let mut decode = |field: &str, key: DidKey| {
        cache.decode(&key).map_err(|err| {
            Rejection::new(
                RejectionCode::SigUnknownSigner,
                Check::V3,
                format!("{field}: {err}"),
            )
        })
    };
    if let Some(node) = typed.serving_node() {
        decode("serving-node/id", node.did_key())?;
    }
    if let Typed::Attachment(a) = typed
        && let Some(pod_user) = &a.pod_user_id
    {
        decode("pod-user/id", pod_user.did_key())?;
    }
    let bind = typed.bind();
    decode("participant/id", bind.participant_id.did_key())?;
    decode("via/node-id", bind.via_node_id.did_key())?;
    decode(
        "participant/key/public",
        bind.participant_key_public.clone(),
    )
}

/// V4: the participant id names the bind's key, and the proof is ed25519.
pub(crate) fn key_binding(bind: &ParticipantBind) -> Result<(), Rejection> {
    let named = bind.participant_id.did_key();
    if named != bind.participant_key_public {
        return Err(Rejection::new(
            RejectionCode::KeyMismatch,
            Check::V4,
            format!(
                "participant/id names key {named} but participant/key/public is {}",
                bind.participant_key_public
            ),
        ));
    }
    let alg = &bind.participant_signature.alg;
    if alg != "ed25519" {
        return Err(Rejection::new(
            RejectionCode::SigInvalid,
            Check::V4,
            format!(
                "proof/participant-signature alg is {:?}; only ed25519 is accepted",
                clip(alg, 32)
            ),
        ));
    }
    Ok(())
}

/// V5: addressed to `node`, and the bind speaks through the serving node.
pub(crate) fn addressing(typed: &Typed, node: &NodeId) -> Result<(), Rejection> {
    let wrong = |message: String| Rejection::new(RejectionCode::WrongNode, Check::V5, message);
    let serving = match typed.serving_node() {
        Some(serving) if serving != node => {
            return Err(wrong(format!(
                "serving-node/id {serving} is not this node ({node})"
            )));
        }
        Some(serving) => serving,
        None => node,
    };
    let via = &typed.bind().via_node_id;
    if via != serving {
        return Err(wrong(format!(
            "participant-bind via/node-id {via} is not the serving node {serving}"
        )));
    }
    Ok(())
}

/// The bind's §6.2 signing input (for V7) and its identity (for I3 and the records), from one
/// canonicalization of the bind as received.
///
/// The signing input is [`bind_signing_input`]'s: `participant-bind.v1 ‖ 0x00 ‖ JCS(bind minus
/// the two proof members)`. It is computed by taking the proof members out of the received
/// object (not by copying the rest of it) and putting them back in place afterwards, so `bind`
/// is unchanged when this returns.
///
/// The identity is SHA-256 over the signing input's length (8 bytes, big-endian), the signing
/// input and the JCS of an object holding just the proof members that are present. That
/// encoding is injective, so two binds get the same identity exactly when their JCS forms,
/// proofs included, are byte-equal: the I3 rule ("same `bind/id`, different digest →
/// conflict") is unchanged, unknown members and proof members included, without a second
/// canonicalization of the whole bind.
pub(crate) fn bind_identity(bind: &mut Value) -> Result<(SigningInput, Sha256Digest), Rejection> {
    let members = bind
        .as_object_mut()
        .ok_or_else(|| invalid(Check::V1, "participant-bind must be a json object"))?;
    let mut positions = Vec::with_capacity(BIND_PROOF_FIELDS.len());
    let mut proofs = serde_json::Map::new();
    for field in BIND_PROOF_FIELDS {
        if let Some(position) = members.keys().position(|key| key == field)
            && let Some((name, value)) = members.shift_remove_entry(field)
        {
            positions.push(position);
            proofs.insert(name, value);
        }
    }
    let input = SigningInput::tagged(PARTICIPANT_BIND_TAG, bind);
    let proofs = Value::Object(proofs);
    let canonical_proofs = to_canonical_bytes(&proofs);
    // Back in place, last taken first, so that every position is as it was.
    if let (Some(members), Value::Object(proofs)) = (bind.as_object_mut(), proofs) {
        for (position, (name, value)) in positions.into_iter().zip(proofs).rev() {
            members.shift_insert(position, name, value);
        }
    }
    let canonical =
        |err: orbi_types::canonical::CanonicalError| invalid(Check::V1, err.to_string());
    let (input, proofs) = (
        input.map_err(canonical)?,
        canonical_proofs.map_err(canonical)?,
    );
    let mut hasher = Sha256Hasher::new();
    hasher.update(&(input.as_bytes().len() as u64).to_be_bytes());
    hasher.update(input.as_bytes());
    hasher.update(&proofs);
    Ok((input, hasher.finish()))
}

/// V7: the participant signature verifies over the §6.2 input of the bind as received.
pub(crate) fn signature(
    input: &SigningInput,
    bind: &ParticipantBind,
    key: &VerifyingKey,
) -> Result<(), Rejection> {
    let sig_invalid =
        |message: String| Rejection::new(RejectionCode::SigInvalid, Check::V7, message);
    signing::verify(key, input, &bind.participant_signature.value).map_err(|err| match err {
        SignatureError::Encoding { .. } => sig_invalid(
            "proof/participant-signature value is not 86 unpadded base64url characters \
             (64 bytes)"
                .into(),
        ),
        SignatureError::Mismatch { .. } => sig_invalid(format!(
            "participant signature does not verify over the participant-bind.v1 signing input \
             for key {}",
            bind.participant_key_public
        )),
    })
}

/// V8 (skew): no timestamp more than `skew` ahead of `now`.
pub(crate) fn not_ahead(
    typed: &Typed,
    now: OffsetDateTime,
    skew: time::Duration,
) -> Result<(), Rejection> {
    // Saturating: a clock near the end of year 9999 must not panic.
    let limit = now.saturating_add(skew);
    let times = std::iter::once(("bound-at", &typed.bind().bound_at)).chain(typed.own_time());
    for (field, at) in times {
        if at.instant() > limit {
            return Err(Rejection::new(
                RejectionCode::Clock,
                Check::V8,
                format!(
                    "{field} {at} is more than {} s ahead of the node clock",
                    skew.whole_seconds()
                ),
            ));
        }
    }
    Ok(())
}

/// V8 (order): `earlier` must not be after `later`.
pub(crate) fn in_order(
    earlier: (&str, &Timestamp),
    later: (&str, &Timestamp),
) -> Result<(), Rejection> {
    if earlier.1.instant() > later.1.instant() {
        return Err(Rejection::new(
            RejectionCode::TimeOrder,
            Check::V8,
            format!(
                "{} {} is after {} {}",
                earlier.0, earlier.1, later.0, later.1
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use orbi_types::pod::bind_signing_input;
    use proptest::prelude::*;

    use super::*;

    fn jcs_digest(value: &Value) -> Sha256Digest {
        Sha256Digest::of(&to_canonical_bytes(value).unwrap())
    }

    /// Leaves drawn from a small set, so that generated pairs are often equal.
    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0..3i64).prop_map(Value::from),
            prop::sample::select(vec!["", "a", "ed25519", "\u{e9}"]).prop_map(Value::from),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(vec!["a", "b", "alg"]), inner), 0..3)
                    .prop_map(|members| Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect()
                    )),
            ]
        })
    }

    /// A bind-like object: members named like a bind's, proofs among them, in any order.
    fn bind_like() -> impl Strategy<Value = Value> {
        let names = prop::sample::select(vec![
            "bind/id",
            "session/id",
            "x",
            "proof/participant-signature",
            "proof/node-attestation",
        ]);
        prop::collection::vec((names, json()), 0..6).prop_map(|members| {
            Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            )
        })
    }

    /// `a`, and either an unrelated object or `a` with one member set to another value.
    fn bind_pair() -> impl Strategy<Value = (Value, Value)> {
        (
            bind_like(),
            bind_like(),
            any::<prop::sample::Index>(),
            json(),
            any::<bool>(),
        )
            .prop_map(|(a, other, index, replacement, related)| {
                let members = a.as_object().unwrap();
                if !related || members.is_empty() {
                    return (a, other);
                }
                let mut b = members.clone();
                let key = b.keys().nth(index.index(b.len())).unwrap().clone();
                b.insert(key, replacement);
                (a, Value::Object(b))
            })
    }

    proptest! {
        /// The I3 identity tells two binds apart exactly when their JCS forms differ.
        #[test]
        fn bind_identity_is_equal_exactly_when_jcs_is((a, b) in bind_pair()) {
            let (mut a_in, mut b_in) = (a.clone(), b.clone());
            let (input_a, id_a) = bind_identity(&mut a_in).unwrap();
            let (_, id_b) = bind_identity(&mut b_in).unwrap();
            prop_assert_eq!(id_a == id_b, jcs_digest(&a) == jcs_digest(&b));
            // The signing input is the shared definition's, and the bind is left as it was,
            // member order included.
            prop_assert_eq!(Some(input_a), bind_signing_input(&a));
            prop_assert_eq!(serde_json::to_string(&a_in).unwrap(), serde_json::to_string(&a).unwrap());
            // Member order never matters.
            let reversed: serde_json::Map<String, Value> = a
                .as_object()
                .unwrap()
                .iter()
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(bind_identity(&mut Value::Object(reversed)).unwrap().1, id_a);
        }
    }

    #[test]
    fn typed_parse_errors_name_the_field_like_from_value() {
        let node = orbi_types::KeyPair::from_seed(&[0x29; 32]);
        let good = serde_json::json!({
            "schema/v": 1,
            "bind/id": "pb:1",
            "bound-at": "2026-03-28T19:20:00Z",
            "participant/id": node.participant_id().as_str(),
            "via/node-id": node.node_id().as_str(),
            "session/id": "sess:1",
            "participant/key/alg": "ed25519",
            "participant/key/public": node.did_key().as_str(),
            "proof/participant-signature": {"alg": "ed25519", "value": "x"},
        });
        let parsed = Typed::parse(ArtifactKind::ParticipantBind, &good).unwrap();
        assert_eq!(parsed.bind(), &ParticipantBind::from_value(&good).unwrap());
        for (pointer, bad) in [
            ("/bound-at", serde_json::json!("yesterday")),
            ("/participant~1key~1alg", serde_json::json!("rsa")),
            ("/via~1node-id", serde_json::json!(7)),
        ] {
            let mut value = good.clone();
            *value.pointer_mut(pointer).unwrap() = bad;
            let err = Typed::parse(ArtifactKind::ParticipantBind, &value)
                .err()
                .unwrap();
            let expected = ParticipantBind::from_value(&value).unwrap_err().to_string();
            assert_eq!(err.message, expected);
            assert!(err.message.contains(pointer), "{}", err.message);
        }
    }

    #[test]
    fn key_cache_keeps_only_valid_keys_and_stays_bounded() {
        let mut cache = KeyCache::default();
        let k3 = DidKey::parse("z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK").unwrap();
        let k4 = DidKey::parse("z6MkrLQkJr2YQ6L8eYw6Qk8f9P8GmJm7a3x6P1v1Q2w3E4r5").unwrap();
        let first = cache.decode(&k3).unwrap();
        assert_eq!(cache.decode(&k3).unwrap(), first);
        assert_eq!(first, k3.verifying_key().unwrap());
        // A key that does not decode is refused every time, and never remembered.
        for _ in 0..2 {
            assert!(matches!(
                cache.decode(&k4),
                Err(DidKeyError::NotCurvePoint { .. })
            ));
        }
        assert_eq!(cache.keys.len(), 1);
        for seed in 0..=KeyCache::CAPACITY {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(seed as u64).to_le_bytes());
            cache
                .decode(&orbi_types::KeyPair::from_seed(&bytes).did_key())
                .unwrap();
            assert!(cache.keys.len() <= KeyCache::CAPACITY);
        }
    }
}
