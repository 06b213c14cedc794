//! [`Descriptor`]: what an artifact is, independent of where its bytes travel.

use orbi_types::{Sha256Digest, inac::ArtifactDescriptor};

/// The identity of an artifact as a frame describes it: schema, media type, domain id, digest
/// of the exact bytes, and size. Two transfers carry "the same artifact" exactly when their
/// descriptors are equal (the rule spec §3.4 uses for repeated idempotency keys).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Descriptor {
    /// The artifact's own schema, e.g. `memarium-blob.v1`.
    pub schema: String,
    /// Media type of the bytes.
    pub content_type: String,
    /// Domain id, or the digest when the artifact has none.
    pub artifact_id: String,
    /// `sha256:` digest of the exact bytes.
    pub digest: Sha256Digest,
    /// Exact byte count.
    pub size_bytes: u64,
}

impl Descriptor {
    /// The descriptor of `bytes`, with the digest as its artifact id.
    ///
    /// ```
    /// let descriptor = orbi_inac::Descriptor::of_bytes("vendor.note.v1", "text/plain", b"{}");
    /// assert_eq!(descriptor.digest.as_str(), "sha256:RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o");
    /// assert_eq!(descriptor.artifact_id, descriptor.digest.as_str());
    /// assert_eq!(descriptor.size_bytes, 2);
    /// ```
    pub fn of_bytes(schema: &str, content_type: &str, bytes: &[u8]) -> Self {
        let digest = Sha256Digest::of(bytes);
        Descriptor {
            schema: schema.to_owned(),
            content_type: content_type.to_owned(),
            artifact_id: digest.as_str().to_owned(),
            digest,
            size_bytes: bytes.len() as u64,
        }
    }

    /// The same descriptor with a domain artifact id.
    pub fn with_artifact_id(mut self, artifact_id: impl Into<String>) -> Self {
        self.artifact_id = artifact_id.into();
        self
    }

    /// The descriptor part of a frame's `artifact` object (payload locations dropped).
    pub fn from_wire(artifact: &ArtifactDescriptor) -> Self {
        Descriptor {
            schema: artifact.schema.clone(),
            content_type: artifact.content_type.clone(),
            artifact_id: artifact.artifact_id.clone(),
            digest: artifact.digest.clone(),
            size_bytes: artifact.size_bytes,
        }
    }
}
