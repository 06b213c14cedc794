//! Building pod artifacts: signed participant binds, the lifecycle artifacts that carry them,
//! and the serving node's attestation over a detachment it builds itself.
//!
//! Members come out in the order of the upstream examples. A bind passed in is embedded as the
//! JSON value it is, never re-serialized from a typed struct, so its signature keeps covering
//! exactly what it covered.

use orbi_types::{
    KeyPair, NodeId, PodUserId, SigningInput, Timestamp,
    canonical::CanonicalError,
    common::Object,
    pod::{
        DetachReason, PARTICIPANT_BIND_TAG, ProfileType, RecoveryMode, SessionState,
        bind_signing_input,
    },
    signing::{self, SignatureError},
};
use serde_json::{Map, Value, json};

/// Why a built artifact may not leave: it fails the closed (frozen) shape or the opaque-id
/// rules that an admitting node applies first (spec pod §5: egress is gated too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the built {kind} would be rejected: {message}")]
pub struct EgressError {
    /// What was built.
    pub kind: crate::ArtifactKind,
    /// The first problem found, naming the member.
    pub message: String,
}

/// Checks a built artifact the way a serving node's V1 does before it is printed or sent: the
/// schema under `profile` (the node's shape; `Frozen`, the default a node runs, is accepted
/// under both), then the opaque-id bounds.
pub fn check_egress(
    kind: crate::ArtifactKind,
    profile: orbi_schema::Profile,
    value: &Value,
) -> Result<(), EgressError> {
    let fail = |message: String| EgressError { kind, message };
    let validator = orbi_schema::registry()
        .validator(kind.as_str(), profile)
        .map_err(|err| fail(err.to_string()))?;
    if let Some(issue) = validator.issues(value).first() {
        return Err(fail(issue.to_string()));
    }
    let typed =
        crate::checks::Typed::parse(kind, value).map_err(|rejection| fail(rejection.message))?;
    crate::checks::opaque_ids(&typed).map_err(|rejection| fail(rejection.message))
}

/// The domain tag of the serving node's attestation over a detachment (spec pod §6.2, "later"):
/// `client-instance-detachment.v1 ‖ 0x00 ‖ JCS(detachment minus proof/node-attestation)`.
pub const DETACHMENT_ATTESTATION_TAG: &str = "client-instance-detachment.v1";

/// The member that carries a node attestation.
pub const NODE_ATTESTATION: &str = "proof/node-attestation";

/// The unsigned content of a participant bind.
#[derive(Clone, Debug, PartialEq)]
pub struct BindDraft {
    /// `bind/id`.
    pub bind_id: String,
    /// `bound-at`.
    pub bound_at: Timestamp,
    /// `via/node-id`: the serving node the participant speaks through.
    pub via: NodeId,
    /// `session/id`: the live node-to-node session.
    pub session_id: String,
    /// `policy_annotations`, signed with the rest when present.
    pub policy_annotations: Option<Object>,
}

/// Signs a bind with the participant key `key` (spec pod §6.2): the participant id and key
/// come from `key`, the signature covers `participant-bind.v1 ‖ 0x00 ‖ JCS(bind minus proofs)`.
pub fn sign_bind(key: &KeyPair, draft: &BindDraft) -> Result<Value, CanonicalError> {
    let did_key = key.did_key();
    let mut bind = object([
        ("schema/v", json!(1)),
        ("bind/id", json!(draft.bind_id)),
        ("bound-at", json!(draft.bound_at.as_str())),
        ("participant/id", json!(key.participant_id().as_str())),
        ("via/node-id", json!(draft.via.as_str())),
        ("session/id", json!(draft.session_id)),
        ("participant/key/alg", json!("ed25519")),
        ("participant/key/public", json!(did_key.as_str())),
    ]);
    if let Some(annotations) = &draft.policy_annotations {
        bind.insert(
            "policy_annotations".into(),
            Value::Object(annotations.clone()),
        );
    }
    let input = SigningInput::tagged(PARTICIPANT_BIND_TAG, &Value::Object(bind.clone()))?;
    bind.insert(
        "proof/participant-signature".into(),
        json!({"alg": "ed25519", "value": key.sign(&input)}),
    );
    Ok(Value::Object(bind))
}

/// Verifies a bind's participant signature under the §6.2 profile, with the key its
/// `participant/key/public` names (strictly decoded). For tooling; admission does more (§5).
pub fn verify_bind(bind: &Value) -> Result<(), BindProofError> {
    let key_text = bind
        .get("participant/key/public")
        .and_then(Value::as_str)
        .ok_or(BindProofError::Missing("participant/key/public"))?;
    let value = bind
        .pointer("/proof~1participant-signature/value")
        .and_then(Value::as_str)
        .ok_or(BindProofError::Missing("proof/participant-signature"))?;
    let key = orbi_types::DidKey::parse(key_text)
        .map_err(|err| BindProofError::Key(err.to_string()))?
        .verifying_key()
        .map_err(|err| BindProofError::Key(err.to_string()))?;
    let input = bind_signing_input(bind).ok_or(BindProofError::Missing("a json object"))?;
    signing::verify(&key, &input, value).map_err(BindProofError::Signature)
}

/// Why [`verify_bind`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindProofError {
    /// A member the check needs is missing or not a string.
    #[error("bind has no {0}")]
    Missing(&'static str),
    /// The key does not decode strictly.
    #[error("bind key: {0}")]
    Key(String),
    /// The signature does not verify.
    #[error(transparent)]
    Signature(SignatureError),
}

/// The outer fields of an attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentDraft {
    /// `attachment/id`.
    pub attachment_id: String,
    /// `attached-at`.
    pub attached_at: Timestamp,
    /// `profile/type`.
    pub profile: ProfileType,
    /// `serving-node/id`.
    pub serving_node: NodeId,
    /// `pod-user/id`.
    pub pod_user: Option<PodUserId>,
    /// `client-instance/id`.
    pub client_instance_id: String,
    /// `models/local?`.
    pub models_local: Option<bool>,
    /// `session/state`.
    pub state: SessionState,
    /// `export/capable?`.
    pub export_capable: bool,
    /// `migration/allowed?`.
    pub migration_allowed: bool,
}

/// An attachment around `bind` (embedded as is).
pub fn attachment(draft: &AttachmentDraft, bind: Value) -> Value {
    let mut out = object([
        ("schema/v", json!(1)),
        ("attachment/id", json!(draft.attachment_id)),
        ("attached-at", json!(draft.attached_at.as_str())),
        ("profile/type", json!(draft.profile.as_str())),
        ("serving-node/id", json!(draft.serving_node.as_str())),
    ]);
    if let Some(pod_user) = &draft.pod_user {
        out.insert("pod-user/id".into(), json!(pod_user.as_str()));
    }
    out.insert("client-instance/id".into(), json!(draft.client_instance_id));
    if let Some(local) = draft.models_local {
        out.insert("models/local?".into(), json!(local));
    }
    out.insert("session/state".into(), json!(draft.state.as_str()));
    out.insert("export/capable?".into(), json!(draft.export_capable));
    out.insert("migration/allowed?".into(), json!(draft.migration_allowed));
    out.insert("participant-bind".into(), bind);
    Value::Object(out)
}

/// The outer fields of a detachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachmentDraft {
    /// `detachment/id`.
    pub detachment_id: String,
    /// `detached-at`.
    pub detached_at: Timestamp,
    /// `attachment/id`.
    pub attachment_id: String,
    /// `serving-node/id`.
    pub serving_node: NodeId,
    /// `client-instance/id`.
    pub client_instance_id: String,
    /// `detach/reason`.
    pub reason: DetachReason,
    /// `detach/notes`.
    pub notes: Option<String>,
}

/// A detachment around `bind` (embedded as is).
pub fn detachment(draft: &DetachmentDraft, bind: Value) -> Value {
    let mut out = object([
        ("schema/v", json!(1)),
        ("detachment/id", json!(draft.detachment_id)),
        ("detached-at", json!(draft.detached_at.as_str())),
        ("attachment/id", json!(draft.attachment_id)),
        ("serving-node/id", json!(draft.serving_node.as_str())),
        ("client-instance/id", json!(draft.client_instance_id)),
        ("detach/reason", json!(draft.reason.as_str())),
    ]);
    if let Some(notes) = &draft.notes {
        out.insert("detach/notes".into(), json!(notes));
    }
    out.insert("participant-bind".into(), bind);
    Value::Object(out)
}

/// The outer fields of a recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryDraft {
    /// `recovery/id`.
    pub recovery_id: String,
    /// `recovered-at`.
    pub recovered_at: Timestamp,
    /// `serving-node/id`.
    pub serving_node: NodeId,
    /// `client-instance/id`.
    pub client_instance_id: String,
    /// `recovery/mode`.
    pub mode: RecoveryMode,
    /// `recovery/from-detachment-id`.
    pub from_detachment_id: String,
    /// `recovery/token-ref`.
    pub token_ref: Option<String>,
}

/// A recovery around `bind` (embedded as is).
pub fn recovery(draft: &RecoveryDraft, bind: Value) -> Value {
    let mut out = object([
        ("schema/v", json!(1)),
        ("recovery/id", json!(draft.recovery_id)),
        ("recovered-at", json!(draft.recovered_at.as_str())),
        ("serving-node/id", json!(draft.serving_node.as_str())),
        ("client-instance/id", json!(draft.client_instance_id)),
        ("recovery/mode", json!(draft.mode.as_str())),
        (
            "recovery/from-detachment-id",
            json!(draft.from_detachment_id),
        ),
    ]);
    if let Some(token) = &draft.token_ref {
        out.insert("recovery/token-ref".into(), json!(token));
    }
    out.insert("participant-bind".into(), bind);
    Value::Object(out)
}

/// Adds the serving node's `proof/node-attestation` to a detachment: `node_key` signs
/// `client-instance-detachment.v1 ‖ 0x00 ‖ JCS(detachment minus proof/node-attestation)`, a
/// payload that includes the embedded bind and its participant signature. It never replaces
/// the participant proof.
pub fn attest_detachment(node_key: &KeyPair, detachment: &mut Value) -> Result<(), CanonicalError> {
    let input = detachment_attestation_input(detachment)?;
    if let Some(members) = detachment.as_object_mut() {
        members.insert(
            NODE_ATTESTATION.into(),
            json!({"alg": "ed25519", "value": node_key.sign(&input)}),
        );
    }
    Ok(())
}

/// Verifies a detachment's `proof/node-attestation` against the key of `node`.
pub fn verify_detachment_attestation(
    node: &NodeId,
    detachment: &Value,
) -> Result<(), BindProofError> {
    let value = detachment
        .pointer("/proof~1node-attestation/value")
        .and_then(Value::as_str)
        .ok_or(BindProofError::Missing(NODE_ATTESTATION))?;
    let key = node
        .verifying_key()
        .map_err(|err| BindProofError::Key(err.to_string()))?;
    let input = detachment_attestation_input(detachment)
        .map_err(|err| BindProofError::Key(err.to_string()))?;
    signing::verify(&key, &input, value).map_err(BindProofError::Signature)
}

fn detachment_attestation_input(detachment: &Value) -> Result<SigningInput, CanonicalError> {
    let mut payload = detachment.clone();
    if let Some(members) = payload.as_object_mut() {
        members.shift_remove(NODE_ATTESTATION);
    }
    SigningInput::tagged(DETACHMENT_ATTESTATION_TAG, &payload)
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_artifact_with_an_empty_or_spaced_client_id_does_not_leave() {
        let key = KeyPair::from_seed(&[2; 32]);
        let node = KeyPair::from_seed(&[1; 32]).node_id();
        let at = Timestamp::parse("2026-03-28T19:42:00Z").unwrap();
        let bind = sign_bind(
            &key,
            &BindDraft {
                bind_id: "pb:egress".into(),
                bound_at: at.clone(),
                via: node.clone(),
                session_id: "sess:egress".into(),
                policy_annotations: None,
            },
        )
        .unwrap();
        let built = |client: &str| {
            attachment(
                &AttachmentDraft {
                    attachment_id: "attach:egress".into(),
                    attached_at: at.clone(),
                    profile: ProfileType::PodClient,
                    serving_node: node.clone(),
                    pod_user: None,
                    client_instance_id: client.into(),
                    models_local: None,
                    state: SessionState::Attached,
                    export_capable: true,
                    migration_allowed: true,
                },
                bind.clone(),
            )
        };
        let kind = crate::ArtifactKind::Attachment;
        let frozen = orbi_schema::Profile::Frozen;
        assert_eq!(check_egress(kind, frozen, &built("client:phone-1")), Ok(()));
        assert_eq!(
            check_egress(crate::ArtifactKind::ParticipantBind, frozen, &bind),
            Ok(())
        );
        for bad in ["", "client:with space"] {
            let error = check_egress(kind, frozen, &built(bad)).unwrap_err();
            assert!(error.message.contains("client-instance"), "{error}");
        }
    }

    const B1_SIGNATURE: &str =
        "dGH7YsIiguOgGyw-2JYesHmuVNL_T1zGSC6c9FuS_O83nPT1egFZQQKeT6OXnVBo1xKznNUn3CSZFgimmTXkDQ";
    const B1_WITH_ANNOTATION: &str =
        "xXwDIDv9f02C89We9yJGNTvPpeDlt2jsvYxSi-AL4On6fVWROQ6HJ2lK-Jf5Xt9UoKjURvfeu3e5hucfRVHODA";

    fn b1_draft() -> BindDraft {
        BindDraft {
            bind_id: "pb:01JQPARTBIND001".into(),
            bound_at: Timestamp::parse("2026-03-28T19:20:00Z").unwrap(),
            via: KeyPair::from_seed(&[0x29; 32]).node_id(),
            session_id: "sess:01JQPARTSESS001".into(),
            policy_annotations: None,
        }
    }

    #[test]
    fn sign_bind_reproduces_b1_in_upstream_member_order() {
        let bind = sign_bind(&KeyPair::from_seed(&[0x2a; 32]), &b1_draft()).unwrap();
        assert_eq!(bind["proof/participant-signature"]["value"], B1_SIGNATURE);
        let keys: Vec<&str> = bind
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "schema/v",
                "bind/id",
                "bound-at",
                "participant/id",
                "via/node-id",
                "session/id",
                "participant/key/alg",
                "participant/key/public",
                "proof/participant-signature"
            ]
        );
        verify_bind(&bind).unwrap();
        let mut changed = bind.clone();
        changed["session/id"] = json!("sess:01JQPARTSESS002");
        assert!(matches!(
            verify_bind(&changed),
            Err(BindProofError::Signature(SignatureError::Mismatch { .. }))
        ));
    }

    #[test]
    fn annotations_are_signed() {
        let mut draft = b1_draft();
        draft.policy_annotations = json!({"note": "x"}).as_object().cloned();
        let bind = sign_bind(&KeyPair::from_seed(&[0x2a; 32]), &draft).unwrap();
        assert_eq!(
            bind["proof/participant-signature"]["value"],
            B1_WITH_ANNOTATION
        );
    }

    #[test]
    fn detachment_attestation_covers_the_embedded_bind() {
        let node = KeyPair::from_seed(&[0x29; 32]);
        let bind = sign_bind(&KeyPair::from_seed(&[0x2a; 32]), &b1_draft()).unwrap();
        let mut value = detachment(
            &DetachmentDraft {
                detachment_id: "detach:1".into(),
                detached_at: Timestamp::parse("2026-03-28T20:05:00Z").unwrap(),
                attachment_id: "attach:1".into(),
                serving_node: node.node_id(),
                client_instance_id: "client:1".into(),
                reason: DetachReason::SessionExpired,
                notes: None,
            },
            bind,
        );
        attest_detachment(&node, &mut value).unwrap();
        verify_detachment_attestation(&node.node_id(), &value).unwrap();
        let other = KeyPair::from_seed(&[7; 32]).node_id();
        assert!(verify_detachment_attestation(&other, &value).is_err());
        value["participant-bind"]["bind/id"] = json!("pb:other");
        assert!(verify_detachment_attestation(&node.node_id(), &value).is_err());
    }
}
