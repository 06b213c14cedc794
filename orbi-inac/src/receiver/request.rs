//! `request` (spec §3.1): exact-id pulls of artifacts held in the store, answered with a
//! `push`, and publications ([`crate::publish`]: asked first, and the only answer to a
//! well-known request). Filtered requests and `partial` answers are not part of v1 here.

use std::io::Read;

use orbi_types::{NodeId, inac::Operation, inac::RefusalCode};

use super::{Exchange, Handled, Receiver};
use crate::{
    DecodeError, Descriptor, Frame, Published, PublishedQuery, Refusal, Verdict,
    budget::BudgetSubject,
    ledger::{ArtifactQuery, LedgerEntry},
};

/// A granted request: the artifact to send back as a `push` on the same exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct ServeArtifact {
    descriptor: Descriptor,
    correlation_id: Option<String>,
    inline: Option<Vec<u8>>,
    published: bool,
    /// A stream serve's place under [`crate::ReceiverConfig::stream_serves_per_peer`].
    slot: ServeSlot,
}

/// Holds a stream serve's per-peer place until the last clone of its [`ServeArtifact`] is
/// dropped; not part of what the serve is (always equal).
#[derive(Clone, Default)]
struct ServeSlot {
    _held: Option<std::sync::Arc<crate::slots::PeerSlot>>,
}

impl PartialEq for ServeSlot {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for ServeSlot {}

impl std::fmt::Debug for ServeArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArtifact")
            .field("descriptor", &self.descriptor)
            .field("inline", &self.inline.is_some())
            .field("published", &self.published)
            .finish()
    }
}

impl ServeArtifact {
    /// What is served.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// Whether the push frame carries the bytes (otherwise send `size/bytes` body bytes from
    /// the store after it).
    pub fn is_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// Whether this is a publication ([`crate::Publisher`]) rather than a held artifact.
    pub fn is_published(&self) -> bool {
        self.published
    }

    /// The `push` answering the request, echoing its `correlation/id`: inline when the
    /// artifact fits the inline ceiling, else a stream header naming `stream_id`.
    pub fn push_frame(&self, stream_id: &str) -> Result<Frame, DecodeError> {
        let builder = match &self.inline {
            Some(bytes) => Frame::push_inline(&self.descriptor, bytes),
            None => Frame::push_stream(&self.descriptor, stream_id),
        };
        match &self.correlation_id {
            Some(id) => builder.correlation_id(id).build(),
            None => builder.build(),
        }
    }
}

impl Receiver {
    pub(super) fn handle_request(&mut self, peer: &NodeId, frame: &Frame, now_ms: u64) -> Handled {
        let exchange = Exchange::of(peer, frame);
        match self.serve(&exchange, frame, now_ms) {
            Ok(serve) => {
                let mut exchange = exchange;
                exchange.descriptor = Some(serve.descriptor.clone());
                // Logged as answered by a push; the requester's ingest answer is its own.
                self.conclude_serve(&exchange, serve.published, now_ms);
                Handled::Serve(serve)
            }
            Err(refusal) => {
                let verdict = Verdict::refusing(Operation::Request, refusal);
                Handled::Answer(self.conclude(&exchange, verdict, LedgerEntry::default(), now_ms))
            }
        }
    }

    fn serve(
        &mut self,
        exchange: &Exchange,
        frame: &Frame,
        now_ms: u64,
    ) -> Result<ServeArtifact, Refusal> {
        let Some(request) = frame.request() else {
            return Err(Refusal::new(
                RefusalCode::Malformed,
                "request without request",
            ));
        };
        self.budgets.check(
            BudgetSubject {
                peer: &exchange.peer,
                operation: Operation::Request,
                schema: &request.schema,
                content_type: &request.content_type,
                size_bytes: None,
            },
            now_ms,
        )?;
        // A peer that may fetch only what it delivered looks among its own artifacts, so that
        // another peer's bytes under the same id cannot hide them.
        let may_fetch_any = self.config.request_peers.contains(&exchange.peer);
        let query = ArtifactQuery {
            schema: &request.schema,
            content_type: &request.content_type,
            artifact_id: request.artifact_id.as_deref(),
            digest: request.digest.as_ref(),
            delivered_by: (!may_fetch_any).then_some(&exchange.peer),
        };
        if let Some(published) = self.published(&exchange.peer, &query) {
            return self.serve_published(exchange, published);
        }
        if request.artifact_id.is_none() && request.digest.is_none() {
            return Err(Refusal::new(
                RefusalCode::OperationNotSupported,
                "only exact requests (artifact/id or digest) are served",
            ));
        }
        let held = self
            .ledger
            .find_held(&query)
            .map_err(|e| Self::ledger_unavailable(&e))?;
        // One answer for "not held" and "not yours": a request never learns what exists.
        let unavailable = || {
            Refusal::new(
                RefusalCode::NotAuthorized,
                "no such artifact is available to this peer",
            )
        };
        let held = held
            .filter(|held| held.kept)
            .filter(|held| held.source_peer == exchange.peer || may_fetch_any)
            .ok_or_else(unavailable)?;
        let descriptor = held.descriptor;
        let inline = if descriptor.size_bytes > 0
            && descriptor.size_bytes <= self.config.inline_max_bytes
        {
            let reader = self
                .store
                .open(&descriptor.digest)
                .ok()
                .flatten()
                .ok_or_else(unavailable)?;
            let mut bytes = Vec::with_capacity(descriptor.size_bytes as usize);
            reader
                .take(descriptor.size_bytes + 1)
                .read_to_end(&mut bytes)
                .map_err(|_| Refusal::handler_unavailable("the store cannot be read now"))?;
            if bytes.len() as u64 != descriptor.size_bytes {
                tracing::error!(digest = %descriptor.digest, "stored object has the wrong length");
                return Err(unavailable());
            }
            Some(bytes)
        } else {
            // A cut-short object (relaxed durability, then a power loss) is not served.
            let whole = self.store.intact(&descriptor.digest, descriptor.size_bytes);
            if !whole.unwrap_or(false) {
                return Err(unavailable());
            }
            None
        };
        let slot = match inline {
            Some(_) => ServeSlot::default(),
            None => {
                let slot = self.serves.claim_or_refuse(
                    &exchange.peer,
                    self.config.stream_serves_per_peer,
                    (
                        "this node serves no artifact in stream mode",
                        "artifacts are already being streamed to this peer",
                    ),
                    self.config.stream_push_retry_after_ms,
                )?;
                ServeSlot {
                    _held: Some(std::sync::Arc::new(slot)),
                }
            }
        };
        Ok(ServeArtifact {
            descriptor,
            correlation_id: exchange.correlation_id.clone(),
            inline,
            published: false,
            slot,
        })
    }

    /// The publisher's answer to `query`, if it is one that may be served: anything that does
    /// not answer the query or whose bytes do not match its descriptor is logged and dropped.
    fn published(&self, peer: &NodeId, query: &ArtifactQuery<'_>) -> Option<Published> {
        let publisher = self.publisher.as_ref()?;
        let query = PublishedQuery {
            schema: query.schema,
            content_type: query.content_type,
            artifact_id: query.artifact_id,
            digest: query.digest,
        };
        let published = publisher.lookup(peer, &query)?;
        if !query.matches(&published.descriptor) {
            tracing::error!(
                %peer,
                schema = query.schema,
                published = ?published.descriptor,
                "the publisher answered a request with another artifact; not served"
            );
            return None;
        }
        if !published.is_consistent() {
            tracing::error!(
                %peer,
                published = ?published.descriptor,
                actual_size = published.bytes.len(),
                "published bytes do not match their descriptor; not served"
            );
            return None;
        }
        Some(published)
    }

    fn serve_published(
        &self,
        exchange: &Exchange,
        published: Published,
    ) -> Result<ServeArtifact, Refusal> {
        let size = published.descriptor.size_bytes;
        if size == 0 || size > self.config.inline_max_bytes {
            tracing::warn!(
                peer = %exchange.peer,
                published = ?published.descriptor,
                "a publication outside the inline range was requested"
            );
            return Err(Refusal::handler_unavailable(format!(
                "published artifacts are served inline only (1 to {} bytes); this one has {size}",
                self.config.inline_max_bytes
            )));
        }
        Ok(ServeArtifact {
            descriptor: published.descriptor,
            correlation_id: exchange.correlation_id.clone(),
            inline: Some(published.bytes.to_vec()),
            published: true,
            slot: ServeSlot::default(),
        })
    }

    fn conclude_serve(&mut self, exchange: &Exchange, published: bool, now_ms: u64) {
        let entry = LedgerEntry {
            transfer: Some(crate::ledger::TransferRecord {
                at_ms: now_ms,
                peer: exchange.peer.clone(),
                operation: Some(Operation::Request),
                correlation_id: exchange.correlation_id.clone(),
                idempotency_key: exchange.idempotency_key.clone(),
                descriptor: exchange.descriptor.clone(),
                admission_id: None,
                answer: Operation::Push,
                refusal_code: None,
                note: if published {
                    "served publication"
                } else {
                    "served"
                }
                .into(),
            }),
            ..LedgerEntry::default()
        };
        if let Err(error) = self.ledger.record(&entry) {
            tracing::error!(%error, "ledger write failed");
        }
        self.stats.frames += 1;
    }
}
