//! Ed25519 keys and the Orbiplex signing profiles, in one place for every crate.
//!
//! Two profiles exist upstream and both are built from [`SigningInput`]:
//!
//! - **tagged** (registry/JSON family): `tag ‖ 0x00 ‖ JCS(payload)`, e.g. the
//!   `participant-bind.v1` profile;
//! - **untagged** (legacy): `JCS(payload)`, e.g. `capability-passport.v1`.
//!
//! Signature values are unpadded base64url of the 64 signature bytes (86 characters).
//! Verification uses `verify_strict` (rejects small-order keys and non-canonical signatures).

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::{
    b64,
    canonical::{CanonicalError, to_canonical_bytes},
    ids::{DidKey, NodeId, ParticipantId},
};

/// An ed25519 signing key. One key may serve as both node and participant identity: the roles
/// stay distinct, the key material is shared.
///
/// The secret never appears in `Debug` output; it is zeroized on drop.
#[derive(Clone)]
pub struct KeyPair(SigningKey);

impl KeyPair {
    /// The key pair for a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        KeyPair(SigningKey::from_bytes(seed))
    }

    /// The 32-byte secret seed, for writing a key file. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The public key as a bare `z…` did:key.
    pub fn did_key(&self) -> DidKey {
        DidKey::from_verifying_key(&self.verifying_key())
    }

    /// This key in the node role.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_verifying_key(&self.verifying_key())
    }

    /// This key in the participant role.
    pub fn participant_id(&self) -> ParticipantId {
        ParticipantId::from_verifying_key(&self.verifying_key())
    }

    /// Signs `input`, returning the unpadded base64url signature value.
    pub fn sign(&self, input: &SigningInput) -> String {
        b64::encode(&self.0.sign(&input.0).to_bytes())
    }

    /// Signs raw bytes (for transport-level proofs that are not JSON).
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.did_key())
    }
}

/// The exact bytes a signature covers.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningInput(Vec<u8>);

impl SigningInput {
    /// `tag ‖ 0x00 ‖ JCS(payload)`.
    pub fn tagged(tag: &str, payload: &Value) -> Result<Self, CanonicalError> {
        let canonical = to_canonical_bytes(payload)?;
        let mut bytes = Vec::with_capacity(tag.len() + 1 + canonical.len());
        bytes.extend_from_slice(tag.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&canonical);
        Ok(SigningInput(bytes))
    }

    /// `JCS(payload)`, with no domain tag.
    pub fn untagged(payload: &Value) -> Result<Self, CanonicalError> {
        to_canonical_bytes(payload).map(SigningInput)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningInput(<{} bytes>)", self.0.len())
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The value is not 86 unpadded base64url characters decoding to 64 bytes.
    #[error("signature value {value:?} is not 86 unpadded base64url characters (64 bytes)")]
    Encoding {
        /// The offending value, cut to 100 characters.
        value: String,
    },
    /// The signature does not verify for this key and input.
    #[error("signature does not verify for key {key}")]
    Mismatch {
        /// The key it was checked against.
        key: DidKey,
    },
}

/// Decodes a signature value strictly.
pub fn decode_signature_value(value: &str) -> Result<[u8; 64], SignatureError> {
    let wrong = || SignatureError::Encoding {
        value: value.chars().take(100).collect(),
    };
    if value.len() != 86 {
        return Err(wrong());
    }
    let text = b64::Base64Url::parse(value).map_err(|_| wrong())?;
    let bytes = text.decode().map_err(|_| wrong())?;
    bytes.try_into().map_err(|_| wrong())
}

/// Verifies a base64url signature value over `input` with `verify_strict`.
pub fn verify(key: &VerifyingKey, input: &SigningInput, value: &str) -> Result<(), SignatureError> {
    verify_bytes(key, input.as_bytes(), &decode_signature_value(value)?)
}

/// Verifies raw signature bytes over raw message bytes with `verify_strict`.
pub fn verify_bytes(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| SignatureError::Mismatch {
            key: DidKey::from_verifying_key(key),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k2_key_pair_matches_spec() {
        let pair = KeyPair::from_seed(&[0x2a; 32]);
        assert_eq!(
            pair.did_key().as_str(),
            "z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn"
        );
        let k1 = KeyPair::from_seed(&[0x29; 32]);
        assert_eq!(
            k1.node_id().as_str(),
            "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE"
        );
        assert!(!format!("{pair:?}").contains("2a2a"));
    }

    #[test]
    fn tagged_round_trip_and_tag_matters() {
        let pair = KeyPair::from_seed(&[7; 32]);
        let payload = serde_json::json!({"b": 1, "a": "x"});
        let input = SigningInput::tagged("demo.v1", &payload).unwrap();
        assert_eq!(input.as_bytes(), b"demo.v1\0{\"a\":\"x\",\"b\":1}");
        let value = pair.sign(&input);
        assert_eq!(value.len(), 86);
        verify(&pair.verifying_key(), &input, &value).unwrap();
        let other = SigningInput::tagged("demo.v2", &payload).unwrap();
        assert!(matches!(
            verify(&pair.verifying_key(), &other, &value),
            Err(SignatureError::Mismatch { .. })
        ));
        let untagged = SigningInput::untagged(&payload).unwrap();
        assert!(verify(&pair.verifying_key(), &untagged, &value).is_err());
    }

    #[test]
    fn encoding_is_strict() {
        let pair = KeyPair::from_seed(&[7; 32]);
        let input = SigningInput::untagged(&serde_json::json!({})).unwrap();
        let value = pair.sign(&input);
        for bad in [
            format!("{value}=="),
            value[..85].to_owned(),
            "base64url:participant-bind-signature".to_owned(),
            value.replace('-', "+").replace('_', "/"),
        ] {
            if bad == value {
                continue;
            }
            assert!(
                matches!(
                    verify(&pair.verifying_key(), &input, &bad),
                    Err(SignatureError::Encoding { .. })
                ),
                "{bad}"
            );
        }
    }

    /// Spec pod §2.3: verify with `verify_strict`. The identity point is a small-order key;
    /// with R the identity and S = 0 the plain ed25519 equation holds for every message, so
    /// only the strict check refuses it.
    #[test]
    fn small_order_keys_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let key = VerifyingKey::from_bytes(&identity).unwrap();
        let mut signature = [0u8; 64];
        signature[0] = 1;
        for message in [&b""[..], b"participant-bind.v1\0{}"] {
            assert_eq!(
                verify_bytes(&key, message, &signature),
                Err(SignatureError::Mismatch {
                    key: DidKey::from_verifying_key(&key)
                })
            );
        }
        let input = SigningInput::untagged(&serde_json::json!({})).unwrap();
        assert!(matches!(
            verify(&key, &input, &b64::encode(&signature)),
            Err(SignatureError::Mismatch { .. })
        ));
    }

    /// The offending value is quoted in the error, cut to its first 100 characters.
    #[test]
    fn an_encoding_error_quotes_at_most_100_characters() {
        let pair = KeyPair::from_seed(&[7; 32]);
        let input = SigningInput::untagged(&serde_json::json!({})).unwrap();
        assert_eq!(
            verify(&pair.verifying_key(), &input, &"A".repeat(150)),
            Err(SignatureError::Encoding {
                value: "A".repeat(100)
            })
        );
        assert_eq!(
            verify(&pair.verifying_key(), &input, "é"),
            Err(SignatureError::Encoding { value: "é".into() })
        );
    }
}
