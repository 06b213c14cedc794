//! JSON Schemas derived from the types, for the drift check against `schemas/`.
//!
//! The derivation uses schemars' draft 2020-12 settings with one adjustment: schemars annotates
//! Rust integer widths with `format` values such as `uint64`, which are not part of any contract
//! (and would be an unknown format to a validator), so they are removed.

use schemars::{
    JsonSchema, Schema,
    generate::SchemaSettings,
    transform::{RecursiveTransform, Transform},
};
use serde_json::Value;

use crate::{
    ArchivalStorageDecision, ArchivalStorageRequest, ArchivistAdvertisement, Artifact,
    ClientInstanceAttachment, ClientInstanceDetachment, ClientInstanceRecovery, InacControl,
    ParticipantBind,
};

/// A schema derived from an artifact type.
#[derive(Clone, Debug)]
pub struct DerivedSchema {
    /// Short name, e.g. `inac-control`.
    pub name: &'static str,
    /// The `$id`.
    pub id: &'static str,
    /// Canonical file name, e.g. `inac-control.v1.schema.json`.
    pub file_name: &'static str,
    /// The schema document.
    pub schema: Value,
}

/// Formats schemars adds for Rust number widths.
const RUST_WIDTH_FORMATS: &[&str] = &[
    "int8", "int16", "int32", "int64", "int128", "uint", "uint8", "uint16", "uint32", "uint64",
    "uint128", "float", "double",
];

fn drop_rust_width_formats(schema: &mut Schema) {
    let is_width = schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| RUST_WIDTH_FORMATS.contains(&format));
    if is_width {
        schema.remove("format");
    }
}

/// Derives the root schema of one artifact type.
pub fn derive<T: Artifact + JsonSchema>() -> DerivedSchema {
    let generator = SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(drop_rust_width_formats))
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    // Transforms run on subschemas as they are generated; run once more over the root.
    RecursiveTransform(drop_rust_width_formats).transform(&mut schema);
    DerivedSchema {
        name: T::NAME,
        id: T::SCHEMA_ID,
        file_name: T::FILE_NAME,
        schema: schema.to_value(),
    }
}

/// Every artifact schema this crate defines, in a stable order.
pub fn derive_all() -> Vec<DerivedSchema> {
    vec![
        derive::<ParticipantBind>(),
        derive::<ClientInstanceAttachment>(),
        derive::<ClientInstanceDetachment>(),
        derive::<ClientInstanceRecovery>(),
        derive::<InacControl>(),
        derive::<ArchivistAdvertisement>(),
        derive::<ArchivalStorageRequest>(),
        derive::<ArchivalStorageDecision>(),
    ]
}
