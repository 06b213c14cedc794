//! Published artifacts: what a node serves on `request` without having received it by push.
//!
//! A node makes artifacts of its own — an archivist's advertisement, a record of an archival
//! decision — and peers fetch them with an ordinary v1 `request`. A [`Publisher`] set on the
//! receiver ([`crate::Receiver::set_publisher`]) answers those lookups; the receiver checks
//! what it returns and serves it as a `push` on the same exchange, logged like any serve.
//!
//! # Our extension of v1 exact-id requests
//!
//! v1 `request`s name an artifact exactly (`artifact/id` or `digest`), and that is how held
//! artifacts are served. Publications add one shape: a request with **neither** (only
//! `schema` and `content/type`) is a *well-known* request, "your current artifact of this
//! kind", e.g. "your archivist advertisement". Only the publisher answers those; without a
//! publication the answer stays `decline` + `operation-not-supported`, as before. Exact
//! requests ask the publisher first and fall back to the held artifacts.
//!
//! # Rules the receiver enforces
//!
//! - **Order.** Budgets first (a request is a request), then the publisher, then the held
//!   artifacts. A publication shadows a held artifact answering the same exact request.
//! - **Who.** The receiver applies no peer rule of its own to publications: every peer that
//!   gets a request decided at all (not barred by the transport, within its budgets) is put
//!   to the publisher, which gets the peer and decides (return `None` to say no). A `None`
//!   reads exactly like "nothing published": the fallback answer for held artifacts
//!   (`not-authorized`, the same for missing and forbidden) or `operation-not-supported` for
//!   a well-known request, so a refused peer learns nothing about what exists.
//! - **Integrity.** The returned descriptor must have the query's schema and content type,
//!   must answer its `artifact/id` (the domain id or the digest) and `digest` when asked, and
//!   the bytes must have its `size/bytes` and sha256. Anything else is a publisher bug: it is
//!   logged as an error and treated as `None`; mismatched bytes are never served.
//! - **Size.** Publications are served inline only, so they must be 1 to
//!   [`crate::ReceiverConfig::inline_max_bytes`] bytes; a larger (or empty) one is refused
//!   `handler-unavailable` (the publication exists but this node cannot serve it).

use std::sync::Arc;

use orbi_types::{NodeId, Sha256Digest};

use crate::Descriptor;

/// What a `request` asked for, as a [`Publisher`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishedQuery<'a> {
    /// The requested schema.
    pub schema: &'a str,
    /// The requested media type.
    pub content_type: &'a str,
    /// The exact artifact id, if asked (a domain id, or a digest text).
    pub artifact_id: Option<&'a str>,
    /// The exact digest, if asked.
    pub digest: Option<&'a Sha256Digest>,
}

impl PublishedQuery<'_> {
    /// Neither `artifact/id` nor `digest`: "the current artifact of this kind".
    pub fn is_well_known(&self) -> bool {
        self.artifact_id.is_none() && self.digest.is_none()
    }

    /// Whether `descriptor` answers this query: same schema and content type, the asked
    /// `artifact/id` equal to its domain id or its digest, the asked digest equal to its own.
    ///
    /// ```
    /// use orbi_inac::{Descriptor, PublishedQuery};
    ///
    /// let ad = Descriptor::of_bytes("archivist-advertisement.v1", "application/json", b"{}")
    ///     .with_artifact_id("ad:1");
    /// let mut query = PublishedQuery {
    ///     schema: "archivist-advertisement.v1",
    ///     content_type: "application/json",
    ///     artifact_id: None,
    ///     digest: None,
    /// };
    /// assert!(query.is_well_known() && query.matches(&ad));
    /// query.artifact_id = Some("ad:1");
    /// assert!(query.matches(&ad));
    /// query.artifact_id = Some(ad.digest.as_str());
    /// assert!(query.matches(&ad));
    /// query.artifact_id = Some("ad:2");
    /// assert!(!query.matches(&ad));
    /// ```
    pub fn matches(&self, descriptor: &Descriptor) -> bool {
        descriptor.schema == self.schema
            && descriptor.content_type == self.content_type
            && self
                .artifact_id
                .is_none_or(|id| descriptor.artifact_id == id || descriptor.digest.as_str() == id)
            && self
                .digest
                .is_none_or(|digest| descriptor.digest == *digest)
    }
}

/// An artifact a publisher serves: its descriptor (made with [`Descriptor::of_bytes`] so digest
/// and size match) and its exact bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Published {
    /// What is served.
    pub descriptor: Descriptor,
    /// The exact bytes, shared (a publication is typically served many times).
    pub bytes: Arc<[u8]>,
}

impl Published {
    /// A publication of `bytes` described by [`Descriptor::of_bytes`] with `artifact_id` as
    /// its domain id.
    ///
    /// ```
    /// let ad = orbi_inac::Published::new("archivist-advertisement.v1", "application/json", "ad:1", br#"{"a":1}"#.to_vec());
    /// assert_eq!(ad.descriptor.size_bytes, 7);
    /// assert!(ad.is_consistent());
    /// ```
    pub fn new(
        schema: &str,
        content_type: &str,
        artifact_id: &str,
        bytes: impl Into<Arc<[u8]>>,
    ) -> Published {
        let bytes = bytes.into();
        Published {
            descriptor: Descriptor::of_bytes(schema, content_type, &bytes)
                .with_artifact_id(artifact_id),
            bytes,
        }
    }

    /// Whether the bytes have the descriptor's size and sha256.
    pub fn is_consistent(&self) -> bool {
        self.bytes.len() as u64 == self.descriptor.size_bytes
            && Sha256Digest::of(&self.bytes) == self.descriptor.digest
    }
}

impl std::fmt::Debug for Published {
    /// The descriptor only: payload bytes never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("descriptor", &self.descriptor)
            .finish_non_exhaustive()
    }
}

/// Artifacts this node serves on `request` without having received them by push: its own
/// publications (an archivist's advertisement) and records it made (an archival decision).
/// Called on the receiver thread; must be quick (no I/O beyond memory, no locks held long).
///
/// The receiver puts every request it decides to the publisher, with the authenticated
/// `peer`; return `None` for "nothing for this peer" (see the module docs for what the peer
/// then reads).
pub trait Publisher: Send + Sync {
    /// The publication answering `query` for `peer`, if any.
    fn lookup(&self, peer: &NodeId, query: &PublishedQuery<'_>) -> Option<Published>;
}
