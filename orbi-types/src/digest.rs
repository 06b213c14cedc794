//! `sha256:` digests over raw bytes, as INAC and the stores use them.

use std::{borrow::Cow, fmt, str::FromStr};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::b64::is_base64url_alphabet;

const PREFIX: &str = "sha256:";

/// A digest in the wire form `sha256:` + unpadded base64url of the 32 hash bytes.
///
/// Parsing is lenient (the schema pattern `^sha256:[A-Za-z0-9_-]+$`); [`Sha256Digest::bytes`]
/// is the strict check (exactly 43 characters that decode canonically to 32 bytes).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(String);

/// A digest that does not have the strict form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The text does not match `^sha256:[A-Za-z0-9_-]+$`.
    #[error("{0:?} is not a digest: expected sha256: followed by base64url characters")]
    Pattern(String),
    /// The body is not 43 base64url characters decoding to 32 bytes.
    #[error("digest {0:?} must be sha256: followed by 43 unpadded base64url characters (32 bytes)")]
    NotSha256(String),
}

impl Sha256Digest {
    /// Lenient parse (the schema pattern).
    pub fn parse(text: &str) -> Result<Self, DigestError> {
        match text.strip_prefix(PREFIX) {
            Some(body) if is_base64url_alphabet(body) => Ok(Sha256Digest(text.to_owned())),
            _ => Err(DigestError::Pattern(text.to_owned())),
        }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_bytes(Sha256::digest(data).into())
    }

    /// Wraps 32 hash bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Sha256Digest(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Strict decode of the 32 hash bytes.
    pub fn bytes(&self) -> Result<[u8; 32], DigestError> {
        let body = &self.0[PREFIX.len()..];
        let wrong = || DigestError::NotSha256(self.0.clone());
        if body.len() != 43 {
            return Err(wrong());
        }
        let decoded = URL_SAFE_NO_PAD.decode(body).map_err(|_| wrong())?;
        decoded.try_into().map_err(|_| wrong())
    }

    /// The text, `sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Incremental SHA-256 that yields a [`Sha256Digest`]; for streamed bodies.
#[derive(Clone, Default)]
pub struct Sha256Hasher(Sha256);

impl Sha256Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Finishes and returns the digest.
    pub fn finish(self) -> Sha256Digest {
        Sha256Digest::from_bytes(self.0.finalize().into())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.0)
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestError;
    fn from_str(text: &str) -> Result<Self, DigestError> {
        Sha256Digest::parse(text)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Sha256Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Sha256Digest {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Sha256Digest".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^sha256:[A-Za-z0-9_-]+$"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (b"{}", "sha256:RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o"),
            (b"", "sha256:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"),
            (b"[]", "sha256:T1PNoYwrqgwDVLtfmj7L5e0Sq02OEbqHPC8RFhICuUU"),
            (
                b"{}\n",
                "sha256:yj0WO6sFU4GCciYUBWjzvvfqrBh869doeOC2Pp5EI1Y",
            ),
            (
                &[0xff, 0xfe, 0xfd],
                "sha256:jKn4wmnApLHYvw78Z9l9-K1eDqk2MP2QmYYNNsD-deo",
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(Sha256Digest::of(data).as_str(), *expected);
        }
        assert_eq!(
            Sha256Digest::of(&[b'a'; 65536]).as_str(),
            "sha256:v3GLb2U768GE4UefGTW42pdNcBuJOvz0nnAfPi-fnFo"
        );
        let mut zeros = vec![0u8; 100_000];
        assert_eq!(
            Sha256Digest::of(&zeros).as_str(),
            "sha256:kZLCW3NPy62-MtrcKAicYNsOOfkMwgzi5XM_VyYazAw"
        );
        zeros[50_000] = 1;
        let mut hasher = Sha256Hasher::new();
        for chunk in zeros.chunks(7777) {
            hasher.update(chunk);
        }
        assert_eq!(
            hasher.finish().as_str(),
            "sha256:_vD-DcJI_0y9r2Pki9wQbjuUMlOA36zuF41YN5GQjjg"
        );
    }

    #[test]
    fn lenient_and_strict_forms() {
        let hex = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let digest = Sha256Digest::parse(hex).unwrap();
        assert_eq!(digest.bytes(), Err(DigestError::NotSha256(hex.into())));
        // The lenient parse fails with `Pattern`; `NotSha256` is the strict check's.
        for bad in [
            "sha512:abc",
            "sha256:",
            "sha256:ab+c",
            "sha256:ab=",
            "SHA256:abc",
        ] {
            assert_eq!(
                Sha256Digest::parse(bad),
                Err(DigestError::Pattern(bad.into()))
            );
            let error = serde_json::from_str::<Sha256Digest>(&format!("{bad:?}")).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("{bad:?} is not a digest")),
                "{error}"
            );
        }
        let good = Sha256Digest::of(b"{}");
        assert_eq!(good.bytes().unwrap(), {
            let d: [u8; 32] = Sha256::digest(b"{}").into();
            d
        });
    }
}
