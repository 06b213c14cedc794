//! RFC 8785 JSON Canonicalization Scheme (JCS), the byte form that Orbiplex signatures cover.
//!
//! A thin wrapper over `serde_json_canonicalizer`, so every crate canonicalizes the same way.
//! Canonicalize the `Value` that was received, never a re-serialized typed struct.

use serde_json::Value;

/// The value could not be canonicalized (only possible for non-finite numbers, which JSON
/// text cannot carry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot canonicalize json: {0}")]
pub struct CanonicalError(String);

/// The RFC 8785 canonical bytes of `value`: keys sorted by UTF-16 code units at every depth,
/// arrays kept in order, no insignificant whitespace, ECMAScript number formatting, no Unicode
/// normalization.
pub fn to_canonical_bytes(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    serde_json_canonicalizer::to_vec(value).map_err(|err| CanonicalError(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sha256Digest;

    #[test]
    fn spec_vector_p069() {
        let value: Value =
            serde_json::from_str(r#"{"z":[3,2,1],"a":{"b":true,"a":"ą"},"n":1}"#).unwrap();
        let bytes = to_canonical_bytes(&value).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"a":{"a":"ą","b":true},"n":1,"z":[3,2,1]}"#
        );
        assert_eq!(
            Sha256Digest::of(&bytes).as_str(),
            "sha256:r2bAYdhk5FfM2FDmWq2HlGY4jDKM2Dcg6SG84tw7g7o"
        );
    }

    #[test]
    fn rfc8785_number_and_escape_rules() {
        let value: Value =
            serde_json::from_str(r#"{"\u20ac":1.0,"\r":"\u0007\u00e9","1":1e30,"10":-0.0}"#)
                .unwrap();
        let bytes = to_canonical_bytes(&value).unwrap();
        // Keys sort by UTF-16 code units: "\r" < "1" < "10" < "€".
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "{\"\\r\":\"\\u0007é\",\"1\":1e+30,\"10\":0,\"€\":1}"
        );
    }
}
