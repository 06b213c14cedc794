//! `capability-passport.v1` as INAC uses it: parsing, signature verification, profile scopes,
//! and the invitation passports this node issues (spec §5.2).
//!
//! Signatures cover the RFC 8785 canonical form of the passport *as received* minus
//! `signature` and `issuer_delegation`, untagged ([`SigningInput::untagged`]), and verify
//! against the key in `issuer/participant_id`. Delegated passports (`issuer_delegation`) are
//! refused: their proof format is unpublished (spec §10.12), so we fail closed.

use orbi_types::{
    KeyPair, NodeId, ParseError, ParticipantId, Sha256Digest, SignatureError, SigningInput,
    Timestamp, json, signing,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::Descriptor;

/// `schema` of every passport.
pub const PASSPORT_SCHEMA: &str = "capability-passport.v1";
/// Every `passport_id` starts with this.
pub const PASSPORT_ID_PREFIX: &str = "passport:capability:";
/// `capability_id` of invitation passports.
pub const INVITATION_CAPABILITY: &str = "inac.invitation";
/// `capability_id` of custody passports.
pub const CUSTODY_CAPABILITY: &str = "memarium.custody";
/// The invitation profile.
pub const INVITATION_PROFILE: &str = "inac-invitation@v1";
/// The general push profile.
pub const PUSH_PROFILE: &str = "inac-push@v1";
/// The custody profile.
pub const CUSTODY_PROFILE: &str = "memarium-custody@v1";
/// The grant an invitation profile must carry (`grants: {"inac/push": [...]}`).
pub const PUSH_GRANT: &str = "inac/push";

/// Why a passport object cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassportError {
    /// A member is missing or has the wrong shape.
    #[error("passport {0}")]
    Shape(ParseError),
    /// `schema` is not `capability-passport.v1`.
    #[error("passport schema must be capability-passport.v1")]
    Schema,
    /// `passport_id` lacks the `passport:capability:` prefix.
    #[error("passport_id {0:?} must start with passport:capability:")]
    IdPrefix(String),
    /// `revocation_ref` is required (it may be null).
    #[error("passport lacks revocation_ref (it may be null, never absent)")]
    MissingRevocationRef,
    /// `account_namespaces` is only allowed on `network-ledger` passports.
    #[error("account_namespaces is only allowed when capability_id is network-ledger")]
    AccountNamespaces,
    /// A delegated signature (`issuer_delegation`), which we do not verify.
    #[error("delegated passports (issuer_delegation) are not accepted")]
    Delegated,
    /// The signature algorithm is not `ed25519`.
    #[error("passport signature alg {0:?} is not ed25519")]
    Algorithm(String),
    /// The issuer key is not a strict ed25519 did:key.
    #[error("passport issuer key {0} is not a valid ed25519 did:key")]
    IssuerKey(String),
    /// The signature does not verify.
    #[error("passport signature: {0}")]
    Signature(#[from] SignatureError),
    /// The passport cannot be canonicalized.
    #[error("passport cannot be canonicalized: {0}")]
    Canonical(String),
}

#[derive(Deserialize)]
struct Fields {
    schema: String,
    passport_id: String,
    node_id: NodeId,
    capability_id: String,
    #[serde(default)]
    capability_profile: Option<String>,
    scope: Map<String, Value>,
    issued_at: Timestamp,
    #[serde(default)]
    expires_at: Option<Timestamp>,
    #[serde(rename = "issuer/participant_id")]
    issuer_participant_id: ParticipantId,
    #[serde(rename = "issuer/node_id")]
    issuer_node_id: NodeId,
    #[serde(default)]
    revocation_ref: Option<String>,
    // An object, never the array of its members (serde's derive would read one).
    #[serde(deserialize_with = "orbi_types::json::object")]
    signature: SignatureFields,
    #[serde(default)]
    issuer_delegation: Option<Value>,
}

#[derive(Deserialize)]
struct SignatureFields {
    alg: String,
    value: String,
}

#[derive(Deserialize)]
struct Caller {
    subject_key: String,
    // Present means a string: `kind: null` would otherwise read as absent, the entry that
    // admits any kind of caller.
    #[serde(default, deserialize_with = "orbi_types::json::present")]
    kind: Option<String>,
}

/// The `allowed_callers[].kind` an INAC caller is: the remote node, bound by its key.
const NODE_CALLER_KIND: &str = "node";

/// A parsed passport, with the object it was parsed from.
#[derive(Clone, Debug)]
pub struct CapabilityPassport {
    received: Map<String, Value>,
    /// `passport_id`.
    pub passport_id: String,
    /// `node_id`: the node holding the capability (for INAC, the pushing node).
    pub node_id: NodeId,
    /// `capability_id`, e.g. `inac.invitation`. Dots are accepted (spec §10.3).
    pub capability_id: String,
    /// `capability_profile`, if set.
    pub capability_profile: Option<String>,
    /// `issued_at`.
    pub issued_at: Timestamp,
    /// `expires_at`; `None` means the local maximum TTL applies.
    pub expires_at: Option<Timestamp>,
    /// `issuer/participant_id`: whose key signs.
    pub issuer_participant_id: ParticipantId,
    /// `issuer/node_id`.
    pub issuer_node_id: NodeId,
    /// `revocation_ref`.
    pub revocation_ref: Option<String>,
    signature_alg: String,
    signature_value: String,
    delegated: bool,
    /// `scope.allowed_callers[].subject_key` of the entries a node may match (no `kind`, or
    /// `kind: "node"`), reduced to bare `z…` keys.
    allowed_caller_keys: Vec<String>,
    profiles: Vec<ProfileScope>,
}

/// One `scope.profiles[]` entry as INAC reads it. Unknown keys are ignored; an entry that
/// does not parse grants nothing.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ProfileScope {
    /// The profile name, e.g. `inac-push@v1`.
    pub profile: String,
    /// `grants` (invitations need `inac/push`).
    #[serde(default)]
    pub grants: Option<Map<String, Value>>,
    /// Nodes the profile is limited to.
    #[serde(default)]
    pub peer_node_ids: Option<Vec<String>>,
    /// Artifact schemas covered; absent or empty covers none.
    #[serde(default)]
    pub artifact_schemas: Option<Vec<String>>,
    /// Artifact ids covered (an entry may be the id or the digest).
    #[serde(default)]
    pub artifact_ids: Option<Vec<String>>,
    /// Media types covered.
    #[serde(default)]
    pub content_types: Option<Vec<String>>,
    /// Digests covered (our extension: invitations bind the offered bytes).
    #[serde(default)]
    pub digests: Option<Vec<String>>,
    /// Single use (invitations; default true).
    #[serde(default)]
    pub single_use: Option<bool>,
    /// Custody: largest artifact.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Custody: most distinct artifacts.
    #[serde(default)]
    pub max_records: Option<u64>,
    /// Tightest revocation-view age this profile accepts.
    #[serde(default)]
    pub max_revocation_staleness_seconds: Option<u64>,
}

fn listed(list: &Option<Vec<String>>, wanted: &[&str]) -> bool {
    list.as_ref()
        .is_some_and(|items| items.iter().any(|item| wanted.contains(&item.as_str())))
}

impl ProfileScope {
    /// Whether the profile's limits (peers, schemas, ids, media types, digests) cover `peer`
    /// pushing `descriptor`. Absent optional lists do not limit; an absent or empty
    /// `artifact_schemas` covers nothing (fail closed).
    pub fn covers(&self, peer: &NodeId, descriptor: &Descriptor) -> bool {
        let optional =
            |list: &Option<Vec<String>>, wanted: &[&str]| list.is_none() || listed(list, wanted);
        listed(&self.artifact_schemas, &[&descriptor.schema])
            && optional(&self.peer_node_ids, &[peer.as_str()])
            && optional(
                &self.artifact_ids,
                &[&descriptor.artifact_id, descriptor.digest.as_str()],
            )
            && optional(&self.content_types, &[&descriptor.content_type])
            && optional(&self.digests, &[descriptor.digest.as_str()])
    }

    /// Whether `grants` includes `inac/push`.
    pub fn grants_push(&self) -> bool {
        self.grants
            .as_ref()
            .is_some_and(|grants| grants.contains_key(PUSH_GRANT))
    }
}

/// The bare `z…` key of a `did:key:z…`, `<role>:did:key:z…` or `z…` subject.
fn bare_key(subject: &str) -> &str {
    subject
        .rfind("did:key:")
        .map_or(subject, |at| &subject[at + "did:key:".len()..])
}

impl CapabilityPassport {
    /// Parses a passport object (the `authorization.passport` of a frame).
    pub fn parse(object: &Map<String, Value>) -> Result<Self, PassportError> {
        let value = Value::Object(object.clone());
        let fields: Fields = json::from_value(&value).map_err(PassportError::Shape)?;
        if fields.schema != PASSPORT_SCHEMA {
            return Err(PassportError::Schema);
        }
        if !fields.passport_id.starts_with(PASSPORT_ID_PREFIX) {
            return Err(PassportError::IdPrefix(fields.passport_id));
        }
        if fields.capability_id.is_empty() {
            return Err(PassportError::Shape(ParseError::Field {
                pointer: "/capability_id".into(),
                message: "must not be empty".into(),
            }));
        }
        if !object.contains_key("revocation_ref") {
            return Err(PassportError::MissingRevocationRef);
        }
        let namespaces = object.contains_key("account_namespaces")
            || fields.scope.contains_key("account_namespaces");
        if namespaces && fields.capability_id != "network-ledger" {
            return Err(PassportError::AccountNamespaces);
        }
        let field = |pointer: &str, message: String| {
            PassportError::Shape(ParseError::Field {
                pointer: pointer.into(),
                message,
            })
        };
        let allowed_caller_keys = match fields.scope.get("allowed_callers") {
            None => Vec::new(),
            Some(callers) => {
                let callers: Vec<Value> = serde_json::from_value(callers.clone())
                    .map_err(|e| field("/scope/allowed_callers", e.to_string()))?;
                let callers = callers
                    .iter()
                    .enumerate()
                    .map(|(index, caller)| {
                        orbi_types::json::object_from_value::<Caller>(caller).map_err(|e| {
                            field(&format!("/scope/allowed_callers/{index}"), e.to_string())
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // Spec §5.2 step 4: the kind must match when present. An INAC caller is a node;
                // an entry for another kind of caller (a participant) never admits one, even
                // under the same key. (`label` names no property of the node binding, so it
                // is not matched.)
                callers
                    .into_iter()
                    .filter(|caller| {
                        caller
                            .kind
                            .as_deref()
                            .is_none_or(|kind| kind == NODE_CALLER_KIND)
                    })
                    .map(|caller| bare_key(&caller.subject_key).to_owned())
                    .collect()
            }
        };
        let profiles = match fields.scope.get("profiles") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| orbi_types::json::object_from_value::<ProfileScope>(item).ok())
                .collect(),
            Some(_) => return Err(field("/scope/profiles", "must be an array".into())),
        };
        Ok(CapabilityPassport {
            received: object.clone(),
            passport_id: fields.passport_id,
            node_id: fields.node_id,
            capability_id: fields.capability_id,
            capability_profile: fields.capability_profile,
            issued_at: fields.issued_at,
            expires_at: fields.expires_at,
            issuer_participant_id: fields.issuer_participant_id,
            issuer_node_id: fields.issuer_node_id,
            revocation_ref: fields.revocation_ref,
            signature_alg: fields.signature.alg,
            signature_value: fields.signature.value,
            delegated: fields.issuer_delegation.is_some(),
            allowed_caller_keys,
            profiles,
        })
    }

    /// The exact bytes the signature covers: JCS of the received object without `signature`
    /// and `issuer_delegation`.
    pub fn signing_input(&self) -> Result<SigningInput, PassportError> {
        signing_input(&self.received)
    }

    /// Verifies the direct ed25519 signature against `issuer/participant_id`.
    pub fn verify_signature(&self) -> Result<(), PassportError> {
        if self.delegated {
            return Err(PassportError::Delegated);
        }
        if self.signature_alg != "ed25519" {
            return Err(PassportError::Algorithm(self.signature_alg.clone()));
        }
        let key = self
            .issuer_participant_id
            .verifying_key()
            .map_err(|_| PassportError::IssuerKey(self.issuer_participant_id.to_string()))?;
        signing::verify(&key, &self.signing_input()?, &self.signature_value)?;
        Ok(())
    }

    /// When the passport stops being valid, in Unix seconds: `expires_at`, or `issued_at` plus
    /// `max_ttl_seconds` when it has none.
    pub fn expires_at_unix(&self, max_ttl_seconds: u64) -> i64 {
        match &self.expires_at {
            Some(expires) => expires.unix_seconds(),
            None => self
                .issued_at
                .unix_seconds()
                .saturating_add(i64::try_from(max_ttl_seconds).unwrap_or(i64::MAX)),
        }
    }

    /// Whether `scope.allowed_callers` names `peer`'s key in an entry a node may match (its
    /// `kind` absent or `node`).
    pub fn allows_caller(&self, peer: &NodeId) -> bool {
        let key = peer.did_key();
        self.allowed_caller_keys
            .iter()
            .any(|caller| caller == key.as_str())
    }

    /// The recognized entries of `scope.profiles` named `profile`.
    pub fn profiles_named<'a>(
        &'a self,
        profile: &'a str,
    ) -> impl Iterator<Item = &'a ProfileScope> {
        self.profiles.iter().filter(move |p| p.profile == profile)
    }

    /// The passport object as received.
    pub fn as_object(&self) -> &Map<String, Value> {
        &self.received
    }
}

fn signing_input(object: &Map<String, Value>) -> Result<SigningInput, PassportError> {
    let mut unsigned = object.clone();
    unsigned.remove("signature");
    unsigned.remove("issuer_delegation");
    SigningInput::untagged(&Value::Object(unsigned))
        .map_err(|e| PassportError::Canonical(e.to_string()))
}

/// A passport this node issued and signed, exactly as it goes on the wire.
#[derive(Clone, PartialEq)]
pub struct IssuedPassport {
    object: Map<String, Value>,
    passport_id: String,
}

impl std::fmt::Debug for IssuedPassport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuedPassport({})", self.passport_id)
    }
}

impl IssuedPassport {
    /// Wraps a stored passport object (from the ledger). `None` if it has no `passport_id`.
    pub fn from_object(object: Map<String, Value>) -> Option<Self> {
        let passport_id = object.get("passport_id")?.as_str()?.to_owned();
        Some(IssuedPassport {
            object,
            passport_id,
        })
    }

    /// The passport object.
    pub fn as_object(&self) -> &Map<String, Value> {
        &self.object
    }

    /// `passport_id`.
    pub fn passport_id(&self) -> &str {
        &self.passport_id
    }

    /// Compact JSON text.
    pub fn to_json(&self) -> String {
        Value::Object(self.object.clone()).to_string()
    }
}

/// What an invitation passport grants: one artifact from one peer, before a deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitationTerms {
    /// The invited pusher.
    pub peer: NodeId,
    /// The artifact it may push.
    pub descriptor: Descriptor,
    /// Issue time, Unix seconds.
    pub issued_at: i64,
    /// Lifetime in seconds.
    pub ttl_seconds: u64,
    /// A number unique to this invitation at this node (the offer id).
    pub serial: u64,
}

/// Issues and signs an `inac.invitation` passport (the recommended layout of spec §5.2, plus our
/// `digests` key binding the offered bytes). Single use, short-lived, directed at one peer.
pub fn issue_invitation(
    issuer: &KeyPair,
    terms: &InvitationTerms,
) -> Result<IssuedPassport, PassportError> {
    let time = |seconds: i64| {
        Timestamp::from_unix_seconds(seconds)
            .map(|t| t.as_str().to_owned())
            .ok_or_else(|| PassportError::Canonical(format!("time {seconds} out of range")))
    };
    let expires = terms
        .issued_at
        .saturating_add(i64::try_from(terms.ttl_seconds).unwrap_or(i64::MAX));
    let id_material = format!(
        "orbi-inac-invitation\0{}\0{}\0{}\0{}",
        issuer.node_id(),
        terms.peer,
        terms.serial,
        terms.issued_at
    );
    let id_digest = Sha256Digest::of(id_material.as_bytes());
    let passport_id = format!(
        "{PASSPORT_ID_PREFIX}inac-invitation:{}",
        &id_digest.as_str()["sha256:".len()..][..22]
    );
    let descriptor = &terms.descriptor;
    let mut artifact_ids = vec![descriptor.artifact_id.clone()];
    if descriptor.artifact_id != descriptor.digest.as_str() {
        artifact_ids.push(descriptor.digest.as_str().to_owned());
    }
    let value = json!({
        "schema": PASSPORT_SCHEMA,
        "passport_id": passport_id,
        "node_id": terms.peer.as_str(),
        "capability_id": INVITATION_CAPABILITY,
        "capability_profile": INVITATION_PROFILE,
        "scope": {
            "allowed_callers": [{"kind": "node", "subject_key": format!("did:key:{}", terms.peer.did_key())}],
            "profiles": [{
                "profile": INVITATION_PROFILE,
                "grants": {PUSH_GRANT: ["*"]},
                "peer_node_ids": [terms.peer.as_str()],
                "artifact_schemas": [descriptor.schema],
                "artifact_ids": artifact_ids,
                "content_types": [descriptor.content_type],
                "digests": [descriptor.digest.as_str()],
                "single_use": true,
            }],
        },
        "issued_at": time(terms.issued_at)?,
        "expires_at": time(expires)?,
        "issuer/participant_id": issuer.participant_id().as_str(),
        "issuer/node_id": issuer.node_id().as_str(),
        "revocation_ref": null,
    });
    let Value::Object(mut object) = value else {
        return Err(PassportError::Schema);
    };
    let signature = issuer.sign(&signing_input(&object)?);
    object.insert(
        "signature".into(),
        json!({"alg": "ed25519", "value": signature}),
    );
    Ok(IssuedPassport {
        object,
        passport_id,
    })
}

/// Signs `object` as `issuer` (replacing any `signature`); for tests and for operators issuing
/// general or custody passports with their own tooling.
pub fn sign_passport(
    issuer: &KeyPair,
    object: &mut Map<String, Value>,
) -> Result<(), PassportError> {
    object.remove("signature");
    let value = issuer.sign(&signing_input(object)?);
    object.insert(
        "signature".into(),
        json!({"alg": "ed25519", "value": value}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(peer: &KeyPair) -> InvitationTerms {
        InvitationTerms {
            peer: peer.node_id(),
            descriptor: Descriptor::of_bytes("memarium-blob.v1", "application/json", b"{}"),
            issued_at: 1_774_726_920,
            ttl_seconds: 3600,
            serial: 1,
        }
    }

    #[test]
    fn issued_invitation_parses_and_verifies() {
        let receiver = KeyPair::from_seed(&[1; 32]);
        let pusher = KeyPair::from_seed(&[2; 32]);
        let issued = issue_invitation(&receiver, &terms(&pusher)).unwrap();
        let passport = CapabilityPassport::parse(issued.as_object()).unwrap();
        passport.verify_signature().unwrap();
        assert_eq!(passport.capability_id, INVITATION_CAPABILITY);
        assert_eq!(passport.issuer_node_id, receiver.node_id());
        assert_eq!(passport.expires_at_unix(0), 1_774_726_920 + 3600);
        assert!(passport.allows_caller(&pusher.node_id()));
        assert!(!passport.allows_caller(&receiver.node_id()));
        let profile = passport.profiles_named(INVITATION_PROFILE).next().unwrap();
        assert!(profile.grants_push());
        assert!(profile.covers(&pusher.node_id(), &terms(&pusher).descriptor));
        let other = Descriptor::of_bytes("memarium-blob.v1", "application/json", b"[]");
        assert!(!profile.covers(&pusher.node_id(), &other));
        assert!(
            issued
                .passport_id()
                .starts_with("passport:capability:inac-invitation:")
        );
    }

    #[test]
    fn any_change_breaks_the_signature_but_key_order_does_not() {
        let receiver = KeyPair::from_seed(&[1; 32]);
        let issued = issue_invitation(&receiver, &terms(&KeyPair::from_seed(&[2; 32]))).unwrap();
        let mut tampered = issued.as_object().clone();
        tampered["expires_at"] = json!("2099-01-01T00:00:00Z");
        let error = CapabilityPassport::parse(&tampered)
            .unwrap()
            .verify_signature()
            .unwrap_err();
        assert!(matches!(error, PassportError::Signature(_)), "{error}");
        let reversed: Map<String, Value> = issued
            .as_object()
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        CapabilityPassport::parse(&reversed)
            .unwrap()
            .verify_signature()
            .unwrap();
    }

    #[test]
    fn shape_rules() {
        let receiver = KeyPair::from_seed(&[1; 32]);
        let issued = issue_invitation(&receiver, &terms(&KeyPair::from_seed(&[2; 32]))).unwrap();
        let with = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut object = issued.as_object().clone();
            edit(&mut object);
            CapabilityPassport::parse(&object)
        };
        // Objects are read from objects only, not from the array of their members (the
        // signature is outside the signed bytes: anyone could reshape it).
        let as_members =
            |object: &Value| Value::Array(object.as_object().unwrap().values().cloned().collect());
        assert!(matches!(
            with(&|o| {
                let signature = as_members(&o["signature"]);
                o.insert("signature".into(), signature);
            }),
            Err(PassportError::Shape(ParseError::Field { ref pointer, .. })) if pointer == "/signature"
        ));
        let with_scope_item = |list: &'static str| {
            move |o: &mut Map<String, Value>| {
                let scope = o["scope"].as_object_mut().unwrap();
                let item = as_members(&scope[list][0]);
                scope[list][0] = item;
            }
        };
        assert!(matches!(
            with(&with_scope_item("allowed_callers")),
            Err(PassportError::Shape(ParseError::Field { ref pointer, .. }))
                if pointer == "/scope/allowed_callers/0"
        ));
        // A caller's kind, when present, is a string: `null` is not the absent kind that
        // admits every caller.
        assert!(matches!(
            with(&|o| {
                o["scope"]["allowed_callers"][0]["kind"] = Value::Null;
            }),
            Err(PassportError::Shape(ParseError::Field { ref pointer, .. }))
                if pointer == "/scope/allowed_callers/0"
        ));
        let any_kind = with(&|o| {
            o["scope"]["allowed_callers"][0]
                .as_object_mut()
                .unwrap()
                .remove("kind");
        })
        .unwrap();
        assert_eq!(any_kind.allowed_caller_keys.len(), 1);
        // A profile entry that does not parse grants nothing: the passport reads, without it.
        let parsed = with(&with_scope_item("profiles")).unwrap();
        assert_eq!(parsed.profiles.len(), 0);
        assert!(matches!(
            with(&|o| {
                o.remove("revocation_ref");
            }),
            Err(PassportError::MissingRevocationRef)
        ));
        assert!(matches!(
            with(&|o| {
                o.insert("passport_id".into(), json!("inv-1"));
            }),
            Err(PassportError::IdPrefix(_))
        ));
        assert!(matches!(
            with(&|o| {
                o.insert("account_namespaces".into(), json!(["a"]));
            }),
            Err(PassportError::AccountNamespaces)
        ));
        assert!(matches!(
            with(&|o| {
                o.remove("issued_at");
            }),
            Err(PassportError::Shape(_))
        ));
        let delegated = with(&|o| {
            o.insert("issuer_delegation".into(), json!({"proxy_key": "z6Mk"}));
        })
        .unwrap();
        assert_eq!(delegated.verify_signature(), Err(PassportError::Delegated));
        let placeholder = with(&|o| {
            o.insert(
                "signature".into(),
                json!({"alg": "ed25519", "value": "base64url:sig"}),
            );
        })
        .unwrap();
        assert!(matches!(
            placeholder.verify_signature(),
            Err(PassportError::Signature(SignatureError::Encoding { .. }))
        ));
    }

    #[test]
    fn subjects_in_every_spelling_match() {
        assert_eq!(bare_key("did:key:z6Mkx"), "z6Mkx");
        assert_eq!(bare_key("node:did:key:z6Mkx"), "z6Mkx");
        assert_eq!(bare_key("z6Mkx"), "z6Mkx");
    }
}
