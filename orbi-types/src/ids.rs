//! `did:key` identifiers: the bare key form and the role-prefixed ids.
//!
//! Two levels of checking, on purpose:
//!
//! - **Lenient** (what the schemas accept): parsing, `Deserialize` and `FromStr` check only the
//!   role prefix and the base58btc alphabet, exactly like the schema regexes. Upstream's own
//!   examples carry a participant key that is not a curve point and must still pass a schema
//!   validator.
//! - **Strict** (what admission needs): [`DidKey::verifying_key`] and the `verifying_key`
//!   methods of the role ids decode base58btc, require 34 bytes, the ed25519-pub multicodec
//!   prefix `0xed 0x01`, a valid and canonically encoded Edwards point, and a canonical
//!   re-encoding.

use std::{borrow::Cow, fmt, str::FromStr};

use ed25519_dalek::VerifyingKey;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The multicodec varint for an ed25519 public key (`ed25519-pub`, 0xed).
pub const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];

/// The base58btc alphabet (Bitcoin's) as a regex character class, as the schemas spell it.
const BASE58_CLASS: &str = "[1-9A-HJ-NP-Za-km-z]";

fn is_base58btc(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'))
}

/// A lenient parse failed: the text does not have the shape the schema requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}: expected {expected}")]
pub struct IdError {
    /// What was being parsed (`node id`, `did:key`, ...).
    pub kind: &'static str,
    /// The offending text.
    pub value: String,
    /// The shape that was expected.
    pub expected: &'static str,
}

/// A strict `did:key` check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidKeyError {
    /// The multibase body is not base58btc.
    #[error("did:key {key:?} is not base58btc")]
    NotBase58 {
        /// The offending `z…` text.
        key: String,
    },
    /// The multibase body is longer than any 34-byte value's encoding (checked before
    /// decoding, which takes time quadratic in the length). Only its start is kept.
    #[error(
        "did:key {key:?}… has {chars} base58btc characters, at most {MAX_DID_KEY_BODY_CHARS} encode an ed25519 key"
    )]
    TooLong {
        /// The first characters of the offending `z…` text.
        key: String,
        /// How many characters follow the `z`.
        chars: usize,
    },
    /// The decoded body is not multicodec prefix plus 32 key bytes.
    #[error("did:key {key:?} decodes to {length} bytes, expected 34")]
    Length {
        /// The offending `z…` text.
        key: String,
        /// The decoded length.
        length: usize,
    },
    /// The multicodec prefix is not `ed25519-pub`.
    #[error("did:key {key:?} has multicodec prefix {prefix:02x?}, expected ed25519-pub [ed, 01]")]
    Multicodec {
        /// The offending `z…` text.
        key: String,
        /// The two prefix bytes found.
        prefix: [u8; 2],
    },
    /// The 32 key bytes do not decode to a point on the ed25519 curve.
    #[error("did:key {key:?} is not a valid ed25519 curve point")]
    NotCurvePoint {
        /// The offending `z…` text.
        key: String,
    },
    /// The text or the point encoding is not the canonical one for these key bytes.
    #[error("did:key {key:?} is not canonically encoded")]
    NonCanonical {
        /// The offending `z…` text.
        key: String,
    },
}

/// The most base58btc characters a 34-byte value (multicodec prefix and ed25519 key) encodes
/// to: ⌈34 · log 256 / log 58⌉.
pub const MAX_DID_KEY_BODY_CHARS: usize = 47;

/// A bare multibase `did:key` body, `z` + base58btc, as in `participant/key/public`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DidKey(String);

impl DidKey {
    /// Lenient parse: `z` followed by base58btc characters (the schema pattern).
    pub fn parse(text: &str) -> Result<Self, IdError> {
        match text.strip_prefix('z') {
            Some(body) if is_base58btc(body) => Ok(DidKey(text.to_owned())),
            _ => Err(IdError {
                kind: "did:key",
                value: text.to_owned(),
                expected: "z followed by base58btc characters",
            }),
        }
    }

    /// Encodes an ed25519 public key (`z` + base58btc(`0xed01` ‖ key)).
    pub fn from_verifying_key(key: &VerifyingKey) -> Self {
        let mut bytes = Vec::with_capacity(34);
        bytes.extend_from_slice(&ED25519_MULTICODEC);
        bytes.extend_from_slice(key.as_bytes());
        DidKey(format!("z{}", bs58::encode(bytes).into_string()))
    }

    /// The text, `z…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Strict decode to an ed25519 verifying key (see the module docs for every check).
    pub fn verifying_key(&self) -> Result<VerifyingKey, DidKeyError> {
        let key = || self.0.clone();
        let body = &self.0[1..];
        if body.len() > MAX_DID_KEY_BODY_CHARS {
            return Err(DidKeyError::TooLong {
                key: self.0.chars().take(MAX_DID_KEY_BODY_CHARS + 1).collect(),
                chars: body.len(),
            });
        }
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|_| DidKeyError::NotBase58 { key: key() })?;
        if bytes.len() != 34 {
            return Err(DidKeyError::Length {
                key: key(),
                length: bytes.len(),
            });
        }
        if bytes[..2] != ED25519_MULTICODEC {
            return Err(DidKeyError::Multicodec {
                key: key(),
                prefix: [bytes[0], bytes[1]],
            });
        }
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&bytes[2..]);
        let verifying = VerifyingKey::from_bytes(&raw)
            .map_err(|_| DidKeyError::NotCurvePoint { key: key() })?;
        // `VerifyingKey` keeps the bytes it was given; recompressing the point exposes a
        // non-canonical y coordinate (y >= p).
        let recompressed = verifying.to_edwards().compress().to_bytes();
        if recompressed != raw || bs58::encode(&bytes).into_string() != body {
            return Err(DidKeyError::NonCanonical { key: key() });
        }
        Ok(verifying)
    }
}

impl fmt::Display for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DidKey({})", self.0)
    }
}

impl FromStr for DidKey {
    type Err = IdError;
    fn from_str(text: &str) -> Result<Self, IdError> {
        DidKey::parse(text)
    }
}

impl Serialize for DidKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DidKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        DidKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for DidKey {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "DidKey".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": format!("^z{BASE58_CLASS}+$")})
    }
}

/// Defines a role-prefixed `did:key` id type (`<role>:did:key:z…`).
macro_rules! role_id {
    (
        $(#[$doc:meta])*
        $name:ident, kind = $kind:literal, prefixes = [$($prefix:literal),+], pattern = $pattern:expr
    ) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The role prefixes this id accepts, each followed by `did:key:`.
            pub const PREFIXES: &'static [&'static str] = &[$($prefix),+];

            /// Lenient parse: a role prefix, `did:key:`, then a lenient [`DidKey`]
            /// (exactly the schema pattern).
            pub fn parse(text: &str) -> Result<Self, IdError> {
                let key_text = Self::PREFIXES.iter().find_map(|prefix| {
                    text.strip_prefix(prefix).and_then(|rest| rest.strip_prefix(":did:key:"))
                });
                match key_text {
                    Some(key) if DidKey::parse(key).is_ok() => Ok($name(text.to_owned())),
                    _ => Err(IdError {
                        kind: $kind,
                        value: text.to_owned(),
                        expected: concat!("one of ", $("`", $prefix, ":did:key:z…` "),+),
                    }),
                }
            }

            /// Builds the id of an ed25519 key under this type's first role prefix.
            pub fn from_verifying_key(key: &VerifyingKey) -> Self {
                $name(format!("{}:did:key:{}", Self::PREFIXES[0], DidKey::from_verifying_key(key)))
            }

            /// The full text, `<role>:did:key:z…`.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The role prefix in use (`node`, `participant`, `pod-user`).
            pub fn role(&self) -> &str {
                self.0.split(':').next().unwrap_or_default()
            }

            /// The bare `z…` key part.
            pub fn did_key(&self) -> DidKey {
                let at = self.0.find("did:key:").map_or(0, |at| at + "did:key:".len());
                DidKey(self.0[at..].to_owned())
            }

            /// Strict decode of the key (see [`DidKey::verifying_key`]).
            pub fn verifying_key(&self) -> Result<VerifyingKey, DidKeyError> {
                self.did_key().verifying_key()
            }

            /// Strict parse: [`Self::parse`], and a key that decodes
            /// ([`Self::verifying_key`]), as an id a peer can prove must be.
            pub fn parse_strict(text: &str) -> Result<Self, IdError> {
                let id = Self::parse(text)?;
                match id.verifying_key() {
                    Ok(_) => Ok(id),
                    Err(_) => Err(IdError {
                        kind: $kind,
                        value: text.to_owned(),
                        expected: "a did:key of an ed25519 public key",
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                $name::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<str>::deserialize(deserializer)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({"type": "string", "pattern": $pattern})
            }
        }
    };
}

role_id!(
    /// A node identity, `node:did:key:z…`.
    NodeId, kind = "node id", prefixes = ["node"],
    pattern = format!("^node:did:key:z{BASE58_CLASS}+$")
);

role_id!(
    /// A participant identity, `participant:did:key:z…`.
    ParticipantId, kind = "participant id", prefixes = ["participant"],
    pattern = format!("^participant:did:key:z{BASE58_CLASS}+$")
);

role_id!(
    /// A hosted-user identity, `pod-user:did:key:z…`; early deployments may use a
    /// `participant:did:key:z…` id in its place, which the schema allows.
    PodUserId, kind = "pod-user id", prefixes = ["pod-user", "participant"],
    pattern = format!("^(pod-user|participant):did:key:z{BASE58_CLASS}+$")
);

impl ParticipantId {
    /// The same key under the participant role.
    pub fn from_node(node: &NodeId) -> Self {
        ParticipantId(format!("participant:did:key:{}", node.did_key()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1_HEX: &str = "fa4834147f6e690c3693eff61336046403cd8ae2a14f31b3c407358569239565";
    const K1: &str = "z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE";
    const K3: &str = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    const K4_NOT_A_POINT: &str = "z6MkrLQkJr2YQ6L8eYw6Qk8f9P8GmJm7a3x6P1v1Q2w3E4r5";

    fn hex32(text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn k1_encodes_and_decodes() {
        let key = VerifyingKey::from_bytes(&hex32(K1_HEX)).unwrap();
        assert_eq!(DidKey::from_verifying_key(&key).as_str(), K1);
        assert_eq!(DidKey::parse(K1).unwrap().verifying_key().unwrap(), key);
        let node = NodeId::from_verifying_key(&key);
        assert_eq!(node.as_str(), format!("node:did:key:{K1}"));
        assert_eq!(node.verifying_key().unwrap(), key);
        assert_eq!(node.role(), "node");
        assert_eq!(
            ParticipantId::from_node(&node).as_str(),
            format!("participant:did:key:{K1}")
        );
    }

    #[test]
    fn k3_is_valid() {
        let key = DidKey::parse(K3).unwrap().verifying_key().unwrap();
        assert_eq!(
            key.as_bytes()[..4],
            [0x2e, 0x6f, 0xcc, 0xe3],
            "public key starts 2e6fcce3"
        );
    }

    #[test]
    fn k4_is_lenient_valid_but_strictly_not_a_point() {
        let text = format!("participant:did:key:{K4_NOT_A_POINT}");
        assert!(ParticipantId::parse_strict(&text).is_err());
        assert!(NodeId::parse_strict(&format!("node:did:key:{K1}")).is_ok());
        let id = ParticipantId::parse(&text).unwrap();
        assert_eq!(
            id.verifying_key(),
            Err(DidKeyError::NotCurvePoint {
                key: K4_NOT_A_POINT.into()
            })
        );
    }

    #[test]
    fn lenient_parse_follows_the_schema_patterns() {
        assert!(NodeId::parse("node:pl-wro-7f3c").is_err());
        assert!(NodeId::parse(&format!("participant:did:key:{K1}")).is_err());
        assert!(ParticipantId::parse("participant:did:key:z0OIl").is_err());
        assert!(ParticipantId::parse(&format!("did:key:{K1}")).is_err());
        assert!(PodUserId::parse("pod-user:42").is_err());
        assert!(PodUserId::parse(&format!("pod-user:did:key:{K3}")).is_ok());
        assert!(PodUserId::parse(&format!("participant:did:key:{K3}")).is_ok());
        assert!(NodeId::parse("node:did:key:z").is_err());
        // Lenient accepts any base58 body, even one that is not a key.
        assert!(NodeId::parse("node:did:key:z1").is_ok());
    }

    /// Each of the four characters base58btc leaves out (`0`, `O`, `I`, `l`) and any
    /// non-alphanumeric one is refused by the lenient parse, for the bare key, every role id
    /// and their `Deserialize`, as the schema pattern refuses them.
    #[test]
    fn lenient_parse_refuses_each_character_outside_base58btc() {
        for bad in ['0', 'O', 'I', 'l', '+', '=', '_', '-', '/', ' '] {
            let key = format!("z6Mk{bad}");
            assert_eq!(
                DidKey::parse(&key),
                Err(IdError {
                    kind: "did:key",
                    value: key.clone(),
                    expected: "z followed by base58btc characters",
                })
            );
            let error = serde_json::from_str::<DidKey>(&format!("{key:?}")).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("{key:?} is not a valid did:key")),
                "{error}"
            );
            let node = format!("node:did:key:{key}");
            assert_eq!(NodeId::parse(&node).unwrap_err().value, node);
            let participant = format!("participant:did:key:{key}");
            assert_eq!(
                ParticipantId::parse(&participant).unwrap_err().kind,
                "participant id"
            );
            assert_eq!(
                PodUserId::parse(&format!("pod-user:did:key:{key}"))
                    .unwrap_err()
                    .kind,
                "pod-user id"
            );
        }
        // Every other ASCII alphanumeric is base58btc.
        let alphabet: String = ('0'..='9')
            .chain('A'..='Z')
            .chain('a'..='z')
            .filter(|c| !matches!(c, '0' | 'O' | 'I' | 'l'))
            .collect();
        assert_eq!(alphabet.len(), 58);
        assert_eq!(
            DidKey::parse(&format!("z{alphabet}")).unwrap().as_str(),
            format!("z{alphabet}")
        );
    }

    /// A body of 35 leading `1`s is short enough to decode and decodes to 35 zero bytes: the
    /// length is refused before the prefix is looked at, and 34 zero bytes are the wrong codec.
    #[test]
    fn strict_refuses_a_decoded_length_above_34_as_a_length() {
        let long = DidKey::parse(&format!("z{}", "1".repeat(35))).unwrap();
        assert_eq!(
            long.verifying_key(),
            Err(DidKeyError::Length {
                key: long.as_str().to_owned(),
                length: 35,
            })
        );
        let zeros = DidKey::parse(&format!("z{}", "1".repeat(34))).unwrap();
        assert_eq!(
            zeros.verifying_key(),
            Err(DidKeyError::Multicodec {
                key: zeros.as_str().to_owned(),
                prefix: [0, 0],
            })
        );
    }

    /// `role` is the prefix the text carries, not the type's first one: a `PodUserId` may be
    /// written with the participant role (spec pod V9 tells the two apart by it).
    #[test]
    fn role_is_the_prefix_in_use() {
        let as_participant = PodUserId::parse(&format!("participant:did:key:{K3}")).unwrap();
        assert_eq!(as_participant.role(), "participant");
        assert_eq!(as_participant.did_key().as_str(), K3);
        let as_pod_user = PodUserId::parse(&format!("pod-user:did:key:{K3}")).unwrap();
        assert_eq!(as_pod_user.role(), "pod-user");
        assert_eq!(as_pod_user.did_key().as_str(), K3);
        assert_eq!(
            ParticipantId::parse(&format!("participant:did:key:{K1}"))
                .unwrap()
                .role(),
            "participant"
        );
    }

    #[test]
    fn strict_rejects_wrong_length_and_codec() {
        let short = DidKey::parse("z1").unwrap();
        assert!(matches!(
            short.verifying_key(),
            Err(DidKeyError::Length { length: 1, .. })
        ));
        let mut bytes = vec![0x12, 0x00];
        bytes.extend_from_slice(&hex32(K1_HEX));
        let wrong_codec =
            DidKey::parse(&format!("z{}", bs58::encode(bytes).into_string())).unwrap();
        assert!(matches!(
            wrong_codec.verifying_key(),
            Err(DidKeyError::Multicodec {
                prefix: [0x12, 0x00],
                ..
            })
        ));
    }

    #[test]
    fn strict_rejects_an_overlong_body_before_decoding_it() {
        // Decoding 60 000 base58 characters takes most of a second; the length alone says no
        // (only this check yields TooLong).
        let long = DidKey::parse(&format!("z{}", "2".repeat(60_000))).unwrap();
        let error = long.verifying_key().unwrap_err();
        assert!(
            matches!(&error, DidKeyError::TooLong { chars: 60_000, key } if key.len() == 48),
            "{error:?}"
        );
        assert!(
            error.to_string().len() < 200,
            "the message quotes only the start"
        );
        // Every ed25519 key encodes to exactly the maximum.
        assert_eq!(K1.len(), MAX_DID_KEY_BODY_CHARS + 1);
        let one_more = DidKey::parse(&format!("{K1}1")).unwrap();
        assert!(matches!(
            one_more.verifying_key(),
            Err(DidKeyError::TooLong { chars: 48, .. })
        ));
    }

    #[test]
    fn strict_rejects_non_canonical_point_encoding() {
        // y = p (2^255 - 19) is the non-canonical encoding of y = 0.
        let mut raw = [0xffu8; 32];
        raw[0] = 0xed;
        raw[31] = 0x7f;
        let mut bytes = ED25519_MULTICODEC.to_vec();
        bytes.extend_from_slice(&raw);
        let key = DidKey::parse(&format!("z{}", bs58::encode(bytes).into_string())).unwrap();
        assert!(matches!(
            key.verifying_key(),
            Err(DidKeyError::NonCanonical { .. })
        ));
    }

    #[test]
    fn serde_round_trip_and_error_names_the_value() {
        let id: NodeId = serde_json::from_str(&format!("\"node:did:key:{K1}\"")).unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"node:did:key:{K1}\"")
        );
        let err = serde_json::from_str::<NodeId>("\"node:x\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"node:x\" is not a valid node id")
        );
    }
}
