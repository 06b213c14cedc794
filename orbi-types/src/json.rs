//! Strict JSON parsing and typed errors that name the offending field.
//!
//! `serde_json` silently keeps the last of two duplicate keys. For signed artifacts that is a
//! parser-differential hazard (two parsers may read different values from one document), so
//! every entry point here rejects duplicate keys instead.

use std::fmt;

use serde::{
    Deserialize,
    de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Number, Value};

/// Why a document could not be read into a value or a typed artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not JSON (or contain a duplicate key); positions are 1-based.
    #[error("invalid json at line {line} column {column}: {message}")]
    Syntax {
        /// Line of the first offending byte.
        line: usize,
        /// Column of the first offending byte.
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// The JSON is well formed but a field has the wrong shape for the typed artifact.
    #[error("field {pointer:?}: {message}")]
    Field {
        /// JSON pointer of the offending field (`""` for the document itself).
        pointer: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Parses `bytes` as JSON, rejecting duplicate object keys anywhere in the document.
///
/// Object key order is kept (serde_json's `preserve_order`).
///
/// ```
/// assert!(orbi_types::json::from_slice_strict(br#"{"a":1}"#).is_ok());
/// let err = orbi_types::json::from_slice_strict(br#"{"a":1,"a":2}"#).unwrap_err();
/// assert!(err.to_string().contains("duplicate key \"a\""));
/// ```
pub fn from_slice_strict(bytes: &[u8]) -> Result<Value, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = deserializer
        .deserialize_any(StrictVisitor)
        .map_err(syntax_error)?;
    deserializer.end().map_err(syntax_error)?;
    Ok(value)
}

/// Deserializes a typed value from an already parsed JSON value, reporting the JSON pointer of
/// the first field that does not fit.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let pointer = pointer_of(err.path());
        ParseError::Field {
            pointer,
            message: err.into_inner().to_string(),
        }
    })
}

/// [`from_value`] for a type the contracts describe as a JSON object (every artifact): an array
/// is refused, as [`object`] refuses it for a member.
pub fn object_from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ParseError> {
    from_value::<Members<T>>(value).map(|Members(inner)| inner)
}

/// Reads a struct only from a JSON object (`deserialize_with` of a struct-typed member).
///
/// serde's derived `Deserialize` also reads a struct from an array of its members in
/// declaration order (`"request": ["memarium-blob.v1", "text/plain"]`, `"transfer": []`), which
/// no contract allows and which `to_value` would then write as an object that was never
/// received. The wrapper refuses the array; an object goes through exactly the derived code
/// (one more inlined call, no buffering). Structs with a `#[serde(flatten)]` member need no
/// wrapper: their derived code asks for a map and serde_json refuses an array there.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    T::deserialize(ObjectOnly(deserializer))
}

/// Reads a member that is present as `Some`, `null` included (`deserialize_with` of an
/// `Option` member with `#[serde(default)]`): `null` is then the member's own value (or, for a
/// `T` that does not read `null`, an error), never the same as absent.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// [`object`] for an optional member: `null` still reads as absent.
pub(crate) fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<Members<T>>::deserialize(deserializer).map(|found| found.map(|Members(inner)| inner))
}

/// A `T` read through [`object`].
struct Members<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Members<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object(deserializer).map(Members)
    }
}

/// A deserializer that hands its visitor maps only: a sequence reaches [`NoSequence`], whose
/// default `visit_seq` is the usual "invalid type: sequence, expected struct …" error.
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(NoSequence(visitor))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(NoSequence(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, NoSequence(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier ignored_any
    }
}

/// Forwards a map to the wrapped visitor and refuses everything else.
struct NoSequence<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for NoSequence<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(formatter)
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(access)
    }
}

fn syntax_error(err: serde_json::Error) -> ParseError {
    ParseError::Syntax {
        line: err.line(),
        column: err.column(),
        message: strip_position(&err.to_string()),
    }
}

/// serde_json appends " at line L column C" to its messages; we report those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&escape_pointer_token(key));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    pointer
}

/// Escapes one reference token of a JSON pointer (RFC 6901).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

struct StrictVisitor;

struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            // One hash lookup per key: the entry decides both the duplicate check and the insert.
            match map.entry(key) {
                serde_json::map::Entry::Occupied(entry) => {
                    return Err(de::Error::custom(format_args!(
                        "duplicate key {:?}",
                        entry.key()
                    )));
                }
                serde_json::map::Entry::Vacant(entry) => {
                    let StrictValue(value) = access.next_value()?;
                    entry.insert(value);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth_with_position() {
        let err = from_slice_strict(b"{\"a\":{\"b\":1,\n\"b\":2}}").unwrap_err();
        match err {
            ParseError::Syntax { line, message, .. } => {
                assert_eq!(line, 2);
                assert_eq!(message, "duplicate key \"b\"");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        assert!(matches!(
            from_slice_strict(b"{} x"),
            Err(ParseError::Syntax { .. })
        ));
    }

    #[test]
    fn key_order_and_numbers_survive() {
        let value = from_slice_strict(br#"{"z":1,"a":-2,"m":1.5,"n":null}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"z":1,"a":-2,"m":1.5,"n":null}"#
        );
    }

    /// RFC 6901 §3: `~` is written `~0` and `/` `~1`, `~` first (so `~1` in a name is
    /// `~01`, not `/`).
    #[test]
    fn pointer_tokens_escape_tilde_then_slash() {
        assert_eq!(escape_pointer_token("a~b/c"), "a~0b~1c");
        assert_eq!(escape_pointer_token("~1"), "~01");
        assert_eq!(escape_pointer_token("plain"), "plain");
    }

    #[test]
    fn field_errors_carry_a_json_pointer() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            #[serde(rename = "a/b")]
            inner: Vec<Inner>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            n: u8,
        }
        let value = serde_json::json!({"a/b": [{"n": 1}, {"n": "x"}]});
        let err = from_value::<Outer>(&value).unwrap_err();
        assert!(
            matches!(&err, ParseError::Field { pointer, .. } if pointer == "/a~1b/1/n"),
            "{err:?}"
        );
    }
}
