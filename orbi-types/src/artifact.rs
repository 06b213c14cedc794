//! The [`Artifact`] trait: one parse and one serialize path for every top-level artifact.

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    json::{self, ParseError},
    order::KeyOrder,
};

/// A top-level artifact with a canonical schema.
///
/// [`Artifact::from_slice`] rejects duplicate keys, reports the JSON pointer of a bad field and
/// remembers the key order; [`Artifact::to_value`] reproduces the parsed document (the same
/// JSON value with the same key order, unknown fields of open shapes included).
///
/// Typed parsing is *structural*: types, required fields, enums, constants, the patterns of
/// the identifier newtypes and `date-time`. Wherever a contract has an object (the artifact
/// itself, every struct member) only a JSON object is read, never the array of members in
/// order that serde's derive would also take. Length limits, formats other than `date-time`
/// and the conditional rules belong to the schema gate (`orbi-schema`), and so does refusing
/// an explicit `null` in an optional member (typed parsing reads it as absent, and `to_value`
/// then leaves it out); integers must be written as integers (`1.0`, valid to the schema, is
/// refused). Every input path gates with the schema before the typed parse.
///
/// Never re-serialize a received artifact to verify or forward it: keep the received bytes.
pub trait Artifact: Serialize + DeserializeOwned + JsonSchema + Sized {
    /// The short schema name, e.g. `participant-bind`.
    const NAME: &'static str;
    /// The schema `$id`, e.g. `urn:orbiplex:schema:participant-bind:v1`.
    const SCHEMA_ID: &'static str;
    /// The canonical schema file name, e.g. `participant-bind.v1.schema.json`.
    const FILE_NAME: &'static str;

    /// The key order recorded at parse time.
    fn key_order(&self) -> &KeyOrder;

    /// Mutable access to the recorded key order.
    fn key_order_mut(&mut self) -> &mut KeyOrder;

    /// Parses JSON bytes strictly (duplicate keys rejected) into the typed artifact.
    fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        Self::from_value(&json::from_slice_strict(bytes)?)
    }

    /// Converts a parsed JSON value into the typed artifact, keeping its key order.
    fn from_value(value: &Value) -> Result<Self, ParseError> {
        let mut artifact: Self = json::object_from_value(value)?;
        *artifact.key_order_mut() = KeyOrder::capture(value);
        Ok(artifact)
    }

    /// The artifact as a JSON value, in the recorded key order (declaration order for fields
    /// that were not recorded).
    fn to_value(&self) -> Value {
        // Our types hold only string-keyed maps, so serialization cannot fail.
        let mut value = serde_json::to_value(self).expect("artifact types serialize infallibly");
        self.key_order().apply(&mut value);
        value
    }

    /// The artifact as compact JSON bytes, in the recorded key order.
    fn to_json_vec(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_value()).expect("json values serialize infallibly")
    }
}

/// Implements [`Artifact`] for a struct with a `key_order` field.
/// The `$id` prefix defaults to upstream's `urn:orbiplex:schema:`; contracts of our own pass
/// `urn:orbi:schema:`.
macro_rules! impl_artifact {
    ($type:ty, $name:literal) => {
        $crate::artifact::impl_artifact!($type, $name, "urn:orbiplex:schema:");
    };
    ($type:ty, $name:literal, $id_prefix:literal) => {
        impl $crate::artifact::Artifact for $type {
            const NAME: &'static str = $name;
            const SCHEMA_ID: &'static str = concat!($id_prefix, $name, ":v1");
            const FILE_NAME: &'static str = concat!($name, ".v1.schema.json");

            fn key_order(&self) -> &$crate::order::KeyOrder {
                &self.key_order
            }

            fn key_order_mut(&mut self) -> &mut $crate::order::KeyOrder {
                &mut self.key_order
            }
        }
    };
}
pub(crate) use impl_artifact;
