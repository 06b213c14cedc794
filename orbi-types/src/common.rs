//! Parts shared by several artifacts.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Open annotation objects (`policy_annotations`) and unknown fields of open shapes.
pub type Object = Map<String, Value>;

/// The constant `"schema/v": 1` every v1 artifact carries.
///
/// Only the integer `1` is accepted (a schema validator would also accept `1.0`; we refuse the
/// fractional spelling at the type level so that a typed artifact always re-serializes to the
/// same text).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchemaV1;

impl Serialize for SchemaV1 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(1)
    }
}

impl<'de> Deserialize<'de> for SchemaV1 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.as_u64() == Some(1) {
            Ok(SchemaV1)
        } else {
            Err(serde::de::Error::custom(format_args!(
                "unsupported schema/v {value}: expected 1"
            )))
        }
    }
}

impl JsonSchema for SchemaV1 {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "SchemaV1".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"const": 1})
    }
}

/// Defines a unit type that serializes as one constant string (`"schema": "inac-control.v1"`).
macro_rules! const_str {
    ($(#[$doc:meta])* $name:ident = $value:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl $name {
            /// The constant text.
            pub const VALUE: &'static str = $value;
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($value)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
                if text == $value {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format_args!(
                        "unsupported schema {text:?}: expected {:?}", $value
                    )))
                }
            }
        }

        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"const": $value})
            }
        }
    };
}
pub(crate) use const_str;

/// A proof object `{"alg", "value", …}` (`$defs/signature`).
///
/// Open in the seed contracts: unknown members are kept (and ignored by verification).
/// `alg` and `value` are only required to be non-empty here; the signing profile demands
/// `ed25519` and an 86-character base64url value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "signature")]
pub struct SignatureObject {
    /// Signature algorithm.
    #[schemars(length(min = 1))]
    pub alg: String,
    /// Encoded signature value.
    #[schemars(length(min = 1))]
    pub value: String,
    /// Members other than `alg` and `value`.
    #[serde(flatten)]
    pub extra: Object,
}

impl SignatureObject {
    /// An `ed25519` proof with the given base64url value.
    pub fn ed25519(value: String) -> Self {
        SignatureObject {
            alg: "ed25519".into(),
            value,
            extra: Object::new(),
        }
    }
}

/// An unknown value for a closed vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}: expected one of {expected}")]
pub struct UnknownVariant {
    /// Which vocabulary (`detach reason`, `refusal code`, ...).
    pub kind: &'static str,
    /// The offending text.
    pub value: String,
    /// The accepted values, comma separated.
    pub expected: &'static str,
}

/// Defines a closed vocabulary of stable strings: the enum, `ALL` (in declaration order),
/// `as_str`, `Display` and `FromStr` (whose error, [`UnknownVariant`], names the offending text
/// and every accepted value). For codes, states and kinds that never travel as schema'd JSON;
/// wire vocabularies use the crate-private `wire_enum!`, which adds serde and schemars.
///
/// ```
/// orbi_types::vocabulary! {
///     /// How a demo ends.
///     pub enum Ending: "ending" {
///         /// Well.
///         Happy = "happy",
///         /// Not well.
///         Sad = "sad",
///     }
/// }
/// assert_eq!("sad".parse::<Ending>(), Ok(Ending::Sad));
/// assert_eq!(Ending::ALL, &[Ending::Happy, Ending::Sad]);
/// let error = "meh".parse::<Ending>().unwrap_err();
/// assert_eq!(error.to_string(), "unknown ending \"meh\": expected one of happy sad ");
/// ```
#[macro_export]
macro_rules! vocabulary {
    (
        $(#[$doc:meta])*
        $vis:vis enum $name:ident : $kind:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vdoc])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownVariant;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($wire => Ok($name::$variant),)+
                    _ => Err($crate::UnknownVariant {
                        kind: $kind,
                        value: text.to_owned(),
                        expected: concat!($($wire, " "),+),
                    }),
                }
            }
        }
    };
}

/// A [`vocabulary!`] that also travels as JSON: serde as the wire string and an inline
/// `{"type": "string", "enum": [...]}` schema.
macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $vis:vis enum $name:ident : $kind:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $crate::vocabulary! {
            $(#[$doc])*
            $vis enum $name : $kind {
                $( $(#[$vdoc])* $variant = $wire ),+
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "enum": [$($wire),+]})
            }
        }
    };
}
pub(crate) use wire_enum;
