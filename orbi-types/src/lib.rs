//! Typed Orbiplex artifacts for orbi: serde types that round-trip byte-faithfully, schemars
//! derives that express the canonical contracts, strict identifiers, and the one signing
//! profile implementation every crate shares.
//!
//! This crate never does I/O and never starts a runtime; it is safe to embed anywhere.
//!
//! ```
//! use orbi_types::{Artifact, ParticipantBind};
//!
//! let text = br#"{
//!   "schema/v": 1, "bind/id": "pb:1", "bound-at": "2026-03-28T19:20:00Z",
//!   "participant/id": "participant:did:key:z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn",
//!   "via/node-id": "node:did:key:z6MkwJFpvJVFe15ygGgYLTYuiPwfhkkDRkMG4eKQFT8g65yE",
//!   "session/id": "sess:1", "participant/key/alg": "ed25519",
//!   "participant/key/public": "z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn",
//!   "proof/participant-signature": {"alg": "ed25519", "value": "x", "kid": "kept"},
//!   "x-unknown": [1, 2]
//! }"#;
//! let bind = ParticipantBind::from_slice(text)?;
//! assert_eq!(bind.session_id, "sess:1");
//! // Strict checks are explicit: this key is a valid ed25519 point.
//! assert!(bind.participant_id.verifying_key().is_ok());
//! // Unknown fields survive, in their original order.
//! let again: serde_json::Value = serde_json::from_slice(text)?;
//! assert_eq!(bind.to_value(), again);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod artifact;
pub mod b64;
pub mod canonical;
pub mod common;
pub mod digest;
pub mod ids;
pub mod json;
pub mod order;
pub mod schemas;
pub mod signing;
pub mod timestamp;

pub mod archival;
pub mod archivist;
pub mod inac;
pub mod pod;

#[cfg(any(test, feature = "strategies"))]
pub mod strategies;

pub use archival::{ArchivalStorageDecision, ArchivalStorageRequest};
pub use archivist::ArchivistAdvertisement;
pub use artifact::Artifact;
pub use b64::Base64Url;
pub use common::{Object, SchemaV1, SignatureObject, UnknownVariant};
pub use digest::{Sha256Digest, Sha256Hasher};
pub use ids::{DidKey, DidKeyError, IdError, NodeId, ParticipantId, PodUserId};
pub use inac::InacControl;
pub use json::ParseError;
pub use order::KeyOrder;
pub use pod::{
    ClientInstanceAttachment, ClientInstanceDetachment, ClientInstanceRecovery, ParticipantBind,
};
pub use signing::{KeyPair, SignatureError, SigningInput};
pub use timestamp::Timestamp;
