//! [`IncomingBody`]: the body of an admitted stream-mode push, hashed as it is staged.

use orbi_types::{NodeId, Sha256Hasher, inac::RefusalCode};

use super::push::Ticket;
use crate::{
    Descriptor, Refusal,
    store::{StagedBody, StagingWriter},
};

/// Stream-mode pushes in their body stage, per peer (the per-peer cap of spec §8.3).
pub(super) type BodySlots = crate::slots::PeerSlots;

/// One body's claim on [`BodySlots`]; released when the body (incoming or completed) is
/// finished or dropped.
pub(super) type BodySlot = crate::slots::PeerSlot;

/// How the body's stream ended, as the transport saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// The sender finished the stream (FIN) or the caller stopped after a write error.
    Finished,
    /// The sender reset the stream or the connection was lost: nothing can be answered.
    Interrupted,
    /// No body progress for too long (spec §8.5: 15 minutes); the transport resets the stream.
    Stalled,
}

/// What the peer hears when its body cannot be staged or made durable here: the cause (a
/// path, an OS error) stays in the log.
const CANNOT_STAGE: &str = "the receiver cannot stage the body now";

/// Why [`IncomingBody::write`] refused bytes. After an error the body is failed: further
/// writes are refused and the finished push answers the failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More bytes than `size/bytes` arrived.
    #[error("body is longer than its declared size/bytes of {expected}")]
    Overrun {
        /// The declared size.
        expected: u64,
    },
    /// The staged file could not be written.
    #[error("cannot stage body: {0}")]
    Storage(String),
    /// The body already failed.
    #[error("body already failed")]
    Failed,
}

/// The body stage of an admitted stream-mode push.
///
/// Feed it the raw body with [`IncomingBody::write`] in whatever chunks arrive (the caller
/// keeps its own buffers bounded), then end it with [`IncomingBody::complete`] and hand the
/// result to [`crate::Receiver::finish_push`]. The bytes
/// are hashed incrementally and staged in the store; dropping the body at any point (a task
/// cancelled, a connection lost) removes what was staged, and no acceptor ever sees a body
/// that did not match.
pub struct IncomingBody {
    pub(super) ticket: Ticket,
    hasher: Sha256Hasher,
    received: u64,
    writer: Option<Box<dyn StagingWriter>>,
    failure: Option<BodyError>,
    slot: BodySlot,
}

impl std::fmt::Debug for IncomingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingBody")
            .field("peer", &self.ticket.exchange.peer)
            .field("digest", &self.ticket.descriptor.digest)
            .field("received", &self.received)
            .field("expected", &self.ticket.descriptor.size_bytes)
            .field("failure", &self.failure)
            .finish()
    }
}

/// How the body stage ended, for the receiver.
pub(super) enum BodyOutcome {
    /// Exactly `size/bytes` bytes with the declared digest, durably staged.
    Verified(Box<dyn StagedBody>),
    /// The bytes do not match the digest: an outcome of the artifact, recorded under the
    /// idempotency key.
    Mismatch(Refusal),
    /// The body never arrived properly (short, long, interrupted, unstageable): the transfer
    /// did not happen, so a retry is evaluated afresh.
    Failed(Refusal),
}

impl IncomingBody {
    pub(super) fn new(ticket: Ticket, writer: Box<dyn StagingWriter>, slot: BodySlot) -> Self {
        IncomingBody {
            ticket,
            hasher: Sha256Hasher::new(),
            received: 0,
            writer: Some(writer),
            failure: None,
            slot,
        }
    }

    /// The pushing node.
    pub fn peer(&self) -> &NodeId {
        &self.ticket.exchange.peer
    }

    /// What is being pushed.
    pub fn descriptor(&self) -> &Descriptor {
        &self.ticket.descriptor
    }

    /// The push's `correlation/id`.
    pub fn correlation_id(&self) -> Option<&str> {
        self.ticket.exchange.correlation_id.as_deref()
    }

    /// Bytes expected in total (`size/bytes`).
    pub fn expected_len(&self) -> u64 {
        self.ticket.descriptor.size_bytes
    }

    /// Bytes accepted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.expected_len().saturating_sub(self.received)
    }

    /// Whether a write has failed (the caller should stop reading and finish).
    pub fn is_failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Appends the next bytes of the body. A chunk that would exceed `size/bytes` is refused
    /// whole and fails the body (`malformed`).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        if self.failure.is_some() {
            return Err(BodyError::Failed);
        }
        if chunk.len() as u64 > self.remaining() {
            return Err(self.fail(BodyError::Overrun {
                expected: self.expected_len(),
            }));
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(BodyError::Failed);
        };
        if let Err(error) = writer.write(chunk) {
            return Err(self.fail(BodyError::Storage(error.to_string())));
        }
        self.hasher.update(chunk);
        self.received += chunk.len() as u64;
        Ok(())
    }

    fn fail(&mut self, error: BodyError) -> BodyError {
        // Dropping the writer removes the staged bytes at once.
        self.writer = None;
        self.failure = Some(error.clone());
        error
    }

    /// Ends the body stage: checks length and digest and makes matching bytes durable
    /// (fsync). It needs no receiver, so run it outside any lock around one: for a large body
    /// the fsync takes a while. Bytes that do not match are removed here.
    pub fn complete(self, end: BodyEnd) -> CompletedBody {
        let IncomingBody {
            ticket,
            hasher,
            received,
            writer,
            failure,
            slot,
        } = self;
        let expected = ticket.descriptor.size_bytes;
        let failed =
            |message: String| BodyOutcome::Failed(Refusal::new(RefusalCode::Malformed, message));
        let outcome = match (failure, end, writer) {
            (Some(BodyError::Storage(message)), _, _) => {
                // The detail names local paths and errors: logged here, never sent.
                tracing::error!(error = %message, "cannot write a staged body");
                BodyOutcome::Failed(Refusal::handler_unavailable(CANNOT_STAGE))
            }
            (Some(_), _, _) => failed(format!("body is longer than size/bytes {expected}")),
            (None, BodyEnd::Interrupted, _) => failed(format!(
                "body interrupted after {received} of {expected} bytes"
            )),
            (None, BodyEnd::Stalled, _) => {
                failed(format!("body stalled after {received} of {expected} bytes"))
            }
            (None, BodyEnd::Finished, _) if received < expected => {
                failed(format!("body ended after {received} of {expected} bytes"))
            }
            (None, BodyEnd::Finished, None) => failed("body has no staging".into()),
            (None, BodyEnd::Finished, Some(writer)) => {
                let digest = hasher.finish();
                if digest != ticket.descriptor.digest {
                    BodyOutcome::Mismatch(Refusal::new(
                        RefusalCode::DigestMismatch,
                        format!(
                            "body hashes to {digest}, not the declared {}",
                            ticket.descriptor.digest
                        ),
                    ))
                } else {
                    match writer.finish() {
                        Ok(staged) => BodyOutcome::Verified(staged),
                        Err(error) => {
                            tracing::error!(%error, "cannot finish a staged body");
                            BodyOutcome::Failed(Refusal::handler_unavailable(CANNOT_STAGE))
                        }
                    }
                }
            }
        };
        CompletedBody {
            ticket,
            outcome,
            _slot: slot,
        }
    }
}

/// A body stage that has ended, ready for [`crate::Receiver::finish_push`].
pub struct CompletedBody {
    pub(super) ticket: Ticket,
    pub(super) outcome: BodyOutcome,
    /// Held until [`crate::Receiver::finish_push`] has run.
    pub(super) _slot: BodySlot,
}

impl std::fmt::Debug for CompletedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletedBody")
            .field("peer", &self.ticket.exchange.peer)
            .field("digest", &self.ticket.descriptor.digest)
            .field("verified", &self.is_verified())
            .finish()
    }
}

impl CompletedBody {
    /// What was pushed.
    pub fn descriptor(&self) -> &Descriptor {
        &self.ticket.descriptor
    }

    /// Whether the body matched its size and digest (the acceptor will see it).
    pub fn is_verified(&self) -> bool {
        matches!(self.outcome, BodyOutcome::Verified(_))
    }
}
