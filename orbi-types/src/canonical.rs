//! RFC 8785 JSON Canonicalization Scheme (JCS), the byte form that Orbiplex signatures cover.
//!
//! A direct encoder over [`serde_json::Value`]: object members sorted by the UTF-16 code units of
//! their names at every depth, arrays in order, no insignificant whitespace, strings escaped as
//! ECMAScript's `JSON.stringify` does, numbers as ECMAScript's `Number.prototype.toString` of
//! their IEEE-754 double (via `ryu-js`), no Unicode normalization. That double must be the
//! one the text denotes, so the workspace builds serde_json with `float_roundtrip` (without
//! it, parsing is off by one unit in the last place for some large exponents, and another
//! implementation would canonicalize, hash and verify different bytes).
//!
//! Why not a crate: `serde_json_canonicalizer` is correct but re-parses every member name and
//! allocates per write, which made canonicalization the largest cost of a pod admission after
//! the signature itself. It remains our oracle: a property test demands byte equality with it
//! on arbitrary values.
//!
//! Canonicalize the `Value` that was received, never a re-serialized typed struct.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// The value could not be canonicalized. A `serde_json::Value` holds only finite numbers, so
/// this is unreachable for parsed input; it exists so callers need not trust that.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot canonicalize json: {0}")]
pub struct CanonicalError(String);

/// The RFC 8785 canonical bytes of `value`.
///
/// ```
/// let value = serde_json::json!({"z": [3, 2, 1], "a": {"b": true, "a": "ą"}, "n": 1.0});
/// let bytes = orbi_types::canonical::to_canonical_bytes(&value)?;
/// assert_eq!(bytes, r#"{"a":{"a":"ą","b":true},"n":1,"z":[3,2,1]}"#.as_bytes());
/// # Ok::<(), orbi_types::canonical::CanonicalError>(())
/// ```
pub fn to_canonical_bytes(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(number, out)?,
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out)?,
    }
    Ok(())
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_unstable_by(|(a, _), (b, _)| utf16_order(a, b));
    out.push(b'{');
    for (index, (name, member)) in members.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(name, out);
        out.push(b':');
        write_value(member, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// Orders names by UTF-16 code units, as RFC 8785 §3.2.3 requires. UTF-8 byte order agrees
/// with it except where a supplementary character meets one in U+E000..U+FFFF.
fn utf16_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Integers up to 2^53 in magnitude print as themselves in ECMAScript; everything else goes
/// through the double, as RFC 8785 §3.2.2.3 prescribes.
const EXACT_INTEGER_LIMIT: u64 = 1 << 53;

fn write_number(number: &Number, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    if let Some(unsigned) = number.as_u64().filter(|n| *n <= EXACT_INTEGER_LIMIT) {
        out.extend_from_slice(unsigned.to_string().as_bytes());
        return Ok(());
    }
    if let Some(signed) = number
        .as_i64()
        .filter(|n| n.unsigned_abs() <= EXACT_INTEGER_LIMIT)
    {
        out.extend_from_slice(signed.to_string().as_bytes());
        return Ok(());
    }
    let double = number
        .as_f64()
        .filter(|d| d.is_finite())
        .ok_or_else(|| CanonicalError(format!("number {number} is not a finite double")))?;
    out.extend_from_slice(ryu_js::Buffer::new().format_finite(double).as_bytes());
    Ok(())
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sha256Digest;
    use proptest::prelude::*;

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

    /// RFC 8785 §3.2.3: "\u{10000}" (UTF-16 D800 DC00) sorts before "\u{E000}" although its
    /// UTF-8 bytes sort after.
    #[test]
    fn supplementary_characters_sort_by_utf16() {
        let value = serde_json::json!({"\u{e000}": 1, "\u{10000}": 2});
        assert_eq!(
            String::from_utf8(to_canonical_bytes(&value).unwrap()).unwrap(),
            "{\"\u{10000}\":2,\"\u{e000}\":1}"
        );
    }

    /// RFC 8785 §3.2.2.2 escapes only `"`, `\` and U+0000..U+001F: DEL (U+007F), the
    /// C1 controls, U+2028/U+2029 and non-characters pass as their UTF-8 bytes. (The property
    /// test below draws no control character outside U+0000..U+001F.)
    #[test]
    fn only_c0_controls_quote_and_backslash_are_escaped() {
        let text = "\u{7f}\u{80}\u{9f}\u{2028}\u{2029}\u{fffe}/";
        let bytes = to_canonical_bytes(&Value::from(text)).unwrap();
        assert_eq!(bytes, format!("\"{text}\"").into_bytes());
        assert_eq!(
            bytes,
            serde_json_canonicalizer::to_vec(&Value::from(text)).unwrap()
        );
        let controls = "\u{0}\u{b}\u{e}\u{1a}\u{1f}\u{8}\u{c}";
        assert_eq!(
            String::from_utf8(to_canonical_bytes(&Value::from(controls)).unwrap()).unwrap(),
            r#""\u0000\u000b\u000e\u001a\u001f\b\f""#
        );
    }

    /// The number examples of RFC 8785 Appendix B (those a serde_json value can hold).
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let cases = [
            ("0", "0"),
            ("-0.0", "0"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("9007199254740992", "9007199254740992"),
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("295147905179352830000", "295147905179352830000"),
            ("1e21", "1e+21"),
            ("333333333.3333333", "333333333.3333333"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
        ];
        for (input, expected) in cases {
            let value: Value = serde_json::from_str(input).unwrap();
            let bytes = to_canonical_bytes(&value).unwrap();
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), expected, "{input}");
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |d| d.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            "[\\x00-\\x1f\"\\\\]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec(("\\PC{0,6}", inner), 0..5)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Byte equality with the reference implementation on arbitrary values.
        #[test]
        fn agrees_with_the_reference_implementation(value in any_json()) {
            let ours = to_canonical_bytes(&value).unwrap();
            let reference = serde_json_canonicalizer::to_vec(&value).unwrap();
            prop_assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&reference)
            );
        }
    }
}
