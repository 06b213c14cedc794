//! Unpadded base64url text, the encoding Orbiplex uses for bytes inside JSON.

use std::{borrow::Cow, fmt};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Membership of every byte in the base64url alphabet; a table lookup per byte keeps the check
/// of a 64 KiB inline payload cheap.
const BASE64URL_ALPHABET: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        byte += 1;
    }
    table
};

/// Whether `text` is non-empty and uses only the base64url alphabet (no padding).
pub fn is_base64url_alphabet(text: &str) -> bool {
    // A fold rather than `all`: branch-free, so it vectorizes over long inline payloads.
    !text.is_empty()
        && text
            .bytes()
            .fold(true, |ok, b| ok & BASE64URL_ALPHABET[usize::from(b)])
}

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Text that matches `^[A-Za-z0-9_-]+$`, as `bytes/base64url` requires.
///
/// Parsing checks only the alphabet; [`Base64Url::decode`] is strict (canonical, unpadded).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Base64Url(String);

/// Text that is not canonical unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// Empty, or a character outside `A-Z a-z 0-9 - _`.
    #[error("not base64url text: expected one or more of A-Z a-z 0-9 - _ (no padding)")]
    Alphabet,
    /// The characters are right but the length or trailing bits are not canonical.
    #[error("base64url text of {length} characters is not canonical unpadded base64url")]
    NotCanonical {
        /// Length of the offending text.
        length: usize,
    },
}

impl Base64Url {
    /// Lenient parse: the alphabet only.
    pub fn parse(text: &str) -> Result<Self, Base64Error> {
        if is_base64url_alphabet(text) {
            Ok(Base64Url(text.to_owned()))
        } else {
            Err(Base64Error::Alphabet)
        }
    }

    /// Encodes `bytes` (which must not be empty for the result to satisfy the schema).
    pub fn encode(bytes: &[u8]) -> Self {
        Base64Url(encode(bytes))
    }

    /// The number of bytes this text decodes to, computed without decoding, or `None` if the
    /// length cannot be canonical unpadded base64url (a remainder of one character).
    pub fn decoded_len(&self) -> Option<usize> {
        let full = self.0.len() / 4 * 3;
        match self.0.len() % 4 {
            0 => Some(full),
            2 => Some(full + 1),
            3 => Some(full + 2),
            _ => None,
        }
    }

    /// Strict decode: unpadded, canonical trailing bits.
    pub fn decode(&self) -> Result<Vec<u8>, Base64Error> {
        URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| Base64Error::NotCanonical {
                length: self.0.len(),
            })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Base64Url {
    // Payload bytes never reach logs: only the length is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64Url(<{} chars>)", self.0.len())
    }
}

impl Serialize for Base64Url {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Base64Url {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Base64Url::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Base64Url {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Base64Url".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decode_rejects_padding_standard_alphabet_and_bad_tails() {
        assert_eq!(Base64Url::parse("e30").unwrap().decode().unwrap(), b"{}");
        assert_eq!(
            Base64Url::parse("__79").unwrap().decode().unwrap(),
            [0xff, 0xfe, 0xfd]
        );
        assert_eq!(Base64Url::parse("e30="), Err(Base64Error::Alphabet));
        assert_eq!(Base64Url::parse("//79"), Err(Base64Error::Alphabet));
        assert_eq!(Base64Url::parse(""), Err(Base64Error::Alphabet));
        // "e31" has non-zero trailing bits: not the canonical encoding of "{}".
        assert!(Base64Url::parse("e31").unwrap().decode().is_err());
        assert!(Base64Url::parse("e").unwrap().decode().is_err());
    }

    #[test]
    fn alphabet_table_matches_the_definition() {
        for byte in 0..=255u8 {
            let expected = byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_';
            let text = [byte];
            let as_text = std::str::from_utf8(&text).unwrap_or("\u{fffd}");
            assert_eq!(
                is_base64url_alphabet(as_text),
                expected && byte < 128,
                "{byte}"
            );
        }
    }

    #[test]
    fn decoded_len_matches_decode() {
        for n in 1..40usize {
            let data: Vec<u8> = (0..n as u8).collect();
            let text = Base64Url::encode(&data);
            assert_eq!(text.decoded_len(), Some(n));
        }
        assert_eq!(Base64Url::parse("abcde").unwrap().decoded_len(), None);
    }
}
