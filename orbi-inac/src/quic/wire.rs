//! Control frames on a QUIC stream (spec §8.4): a `u32` big-endian length, then that many
//! bytes of UTF-8 JSON, at most [`MAX_FRAME_BYTES`]. And the application error codes (§8.7).

use std::time::Duration;

use orbi_types::inac::{Operation, RefusalCode};
use quinn::{RecvStream, SendStream, VarInt};

use super::TransportConfig;
use crate::{Frame, MAX_FRAME_BYTES};

/// Application error codes on a stream (`STOP_SENDING` / `RESET_STREAM`), spec §8.7.
///
/// A side that has judged an exchange stops whatever may still arrive on it with
/// [`StreamCode::after`]: the same code whether the judgement came at a stream push's header
/// (before any body byte) or after its body, and on the listener and the requester alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamCode {
    /// `0x0`: the exchange is over (e.g. a header answered `already-present`).
    Done,
    /// `0x1`: refused; the answer frame says why.
    Refused,
    /// `0x2`: the frame or body broke the protocol.
    Malformed,
    /// `0x3`: the sender abandoned the transfer.
    SenderAbort,
    /// `0x4`: no answer within the response timeout.
    ResponseTimeout,
    /// `0x5`: a control frame over 256 KiB.
    FrameTooLarge,
    /// `0x6`: no body progress for the stall timeout.
    Stale,
}

impl StreamCode {
    /// Every code, by value.
    pub const ALL: [StreamCode; 7] = [
        StreamCode::Done,
        StreamCode::Refused,
        StreamCode::Malformed,
        StreamCode::SenderAbort,
        StreamCode::ResponseTimeout,
        StreamCode::FrameTooLarge,
        StreamCode::Stale,
    ];

    /// The code's value.
    pub const fn value(self) -> u32 {
        match self {
            StreamCode::Done => 0x0,
            StreamCode::Refused => 0x1,
            StreamCode::Malformed => 0x2,
            StreamCode::SenderAbort => 0x3,
            StreamCode::ResponseTimeout => 0x4,
            StreamCode::FrameTooLarge => 0x5,
            StreamCode::Stale => 0x6,
        }
    }

    /// As a QUIC varint.
    pub fn varint(self) -> VarInt {
        VarInt::from_u32(self.value())
    }

    /// The code that stops the rest of an exchange answered with `answer` (and `code`):
    /// [`StreamCode::Malformed`] for a `malformed` refusal (the frame or body broke the
    /// protocol: §8.7's "malformed frame"), [`StreamCode::Refused`] for any other refusal,
    /// decline or deferral (the answer says why), [`StreamCode::Done`] for the rest
    /// (`ingested`, `already-present`, `accept`). A frame over 256 KiB is stopped
    /// [`StreamCode::FrameTooLarge`] instead, from its length alone.
    pub fn after(answer: Operation, code: Option<RefusalCode>) -> Self {
        match (answer, code) {
            (_, Some(RefusalCode::Malformed)) => StreamCode::Malformed,
            (Operation::Refused | Operation::Decline | Operation::Defer, _) | (_, Some(_)) => {
                StreamCode::Refused
            }
            _ => StreamCode::Done,
        }
    }

    /// [`StreamCode::after`] for an answer frame.
    pub fn after_answer(answer: &Frame) -> Self {
        Self::after(
            answer.operation(),
            answer.response().and_then(|response| response.refusal_code),
        )
    }

    /// The code with `value`, if it is one of ours.
    pub fn from_value(value: u64) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|code| u64::from(code.value()) == value)
    }
}

/// Application error codes closing a connection, spec §8.7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionCode {
    /// `0x0`: closed normally (the dialer is done, or the listener shut down gracefully).
    Done,
    /// `0x100`: the peer's proof could not be used. With raw public keys in the handshake a
    /// failed proof ends the handshake with a TLS alert instead (QUIC `CRYPTO_ERROR`); this
    /// code is for proofs that only fail after it.
    AuthFailed,
    /// `0x101`: the peer is barred by policy.
    PeerNotAllowed,
    /// `0x102`: the peer broke the protocol.
    ProtocolViolation,
    /// `0x103` (ours; the spec defines `0x100`–`0x102`): the peer already has
    /// [`super::TransportConfig::max_connections_per_peer`] connections open, or it is a
    /// stranger and strangers hold [`super::TransportConfig::max_guest_connections`].
    TooManyConnections,
}

impl ConnectionCode {
    /// The code's value.
    pub const fn value(self) -> u32 {
        match self {
            ConnectionCode::Done => 0x0,
            ConnectionCode::AuthFailed => 0x100,
            ConnectionCode::PeerNotAllowed => 0x101,
            ConnectionCode::ProtocolViolation => 0x102,
            ConnectionCode::TooManyConnections => 0x103,
        }
    }

    /// As a QUIC varint.
    pub fn varint(self) -> VarInt {
        VarInt::from_u32(self.value())
    }
}

/// Why a control frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    /// The length prefix announces more than the reader's limit ([`MAX_FRAME_BYTES`] for
    /// control frames).
    #[error("frame of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// The announced length.
        len: u32,
        /// The limit it exceeds.
        limit: usize,
    },
    /// The stream ended before the frame did.
    #[error("stream ended inside a control frame")]
    Truncated,
    /// The peer reset the stream.
    #[error("peer reset the stream with code {0}")]
    Reset(u64),
    /// Nothing arrived in time.
    #[error("no control frame within {0:?}")]
    Timeout(Duration),
    /// The connection is gone.
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Another stream failure.
    #[error("stream failed: {0}")]
    Stream(String),
}

impl From<quinn::ReadError> for ReadFrameError {
    fn from(error: quinn::ReadError) -> Self {
        match error {
            quinn::ReadError::Reset(code) => ReadFrameError::Reset(code.into_inner()),
            quinn::ReadError::ConnectionLost(lost) => ReadFrameError::Connection(lost),
            other => ReadFrameError::Stream(other.to_string()),
        }
    }
}

impl From<quinn::ReadExactError> for ReadFrameError {
    fn from(error: quinn::ReadExactError) -> Self {
        match error {
            quinn::ReadExactError::FinishedEarly(_) => ReadFrameError::Truncated,
            quinn::ReadExactError::ReadError(error) => error.into(),
        }
    }
}

/// What a frame read reserves before its bytes arrive (most frames fit).
const FIRST_ALLOCATION: usize = 16 * 1024;

/// Reads one length-prefixed control frame within `timeout`. The length is checked before any
/// frame byte is read, so an oversized frame costs four bytes, and memory grows with the bytes
/// that actually arrive, never with the length a peer merely declares.
pub async fn read_frame(
    recv: &mut RecvStream,
    timeout: Duration,
) -> Result<Vec<u8>, ReadFrameError> {
    read_frame_within(recv, timeout, MAX_FRAME_BYTES).await
}

/// [`read_frame`] with another size limit, for application protocols on the same framing
/// (the pod protocol reads artifacts of at most 64 KiB).
pub async fn read_frame_within(
    recv: &mut RecvStream,
    timeout: Duration,
    limit: usize,
) -> Result<Vec<u8>, ReadFrameError> {
    let read = async {
        let mut prefix = [0u8; 4];
        recv.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix);
        if len as usize > limit {
            return Err(ReadFrameError::TooLarge { len, limit });
        }
        let len = len as usize;
        let mut bytes = Vec::with_capacity(len.min(FIRST_ALLOCATION));
        while bytes.len() < len {
            match recv.read_chunk(len - bytes.len(), true).await? {
                Some(chunk) => bytes.extend_from_slice(&chunk.bytes),
                None => return Err(ReadFrameError::Truncated),
            }
        }
        Ok(bytes)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ReadFrameError::Timeout(timeout))?
}

/// The number a stream-mode push header names its stream by (`transfer.stream/id`, spec §8.5):
/// the QUIC stream id, written in decimal. Senders name it and receivers check it with this.
pub fn stream_number(id: quinn::StreamId) -> u64 {
    VarInt::from(id).into_inner()
}

/// The length-prefixed encoding of `frame`.
pub fn encode_frame(frame: &Frame) -> Vec<u8> {
    let json = frame.wire_json();
    let mut bytes = Vec::with_capacity(json.len() + 4);
    // Frames this crate builds or accepted are never over MAX_FRAME_BYTES.
    bytes.extend_from_slice(&(json.len() as u32).to_be_bytes());
    bytes.extend_from_slice(json);
    bytes
}

/// Writes `frame` with its length prefix.
pub async fn write_frame(send: &mut SendStream, frame: &Frame) -> Result<(), quinn::WriteError> {
    send.write_all(&encode_frame(frame)).await
}

/// How a frame write ended ([`write_frame_moving`]).
#[derive(Debug)]
pub(crate) enum FrameWrite {
    /// Every byte went out.
    Written,
    /// No byte went out for the frame timeout, or the frame missed its deadline; the stream
    /// was reset `0x4`.
    Stalled,
    /// The stream or connection failed.
    Failed(quinn::WriteError),
}

/// Writes `frame` under the limits of a body of its length, with
/// [`TransportConfig::frame_timeout`] as the time a step may take: an honest peer's frame may
/// wait behind other streams' bodies for connection credit a while (the connection keeps
/// moving), while a peer that grants no credit, or a byte of it at a time, is left by the
/// frame's deadline (frame timeout + length at [`TransportConfig::min_body_rate`]).
pub(crate) async fn write_frame_moving(
    send: &mut SendStream,
    frame: &Frame,
    config: &TransportConfig,
) -> FrameWrite {
    let bytes = encode_frame(frame);
    let clock = BodyClock::new(
        config.frame_timeout,
        config.min_body_rate,
        bytes.len() as u64,
    );
    let mut sent = 0;
    while sent < bytes.len() {
        match clock.step(send.write(&bytes[sent..])).await {
            Ok(Ok(n)) => sent += n,
            Ok(Err(error)) => return FrameWrite::Failed(error),
            Err(_) => {
                let _ = send.reset(StreamCode::ResponseTimeout.varint());
                return FrameWrite::Stalled;
            }
        }
    }
    FrameWrite::Written
}

/// [`write_frame_moving`] for a frame whose failure needs no reason (an answer, a served
/// push): whether it went out.
pub(crate) async fn write_frame_within(
    send: &mut SendStream,
    frame: &Frame,
    config: &TransportConfig,
) -> bool {
    matches!(
        write_frame_moving(send, frame, config).await,
        FrameWrite::Written
    )
}

/// The time limits of one stream body, sent or received: each step (a read, a write) must
/// make progress within [`TransportConfig::stall_timeout`], and the whole body must be done by
/// its deadline (the stall timeout plus `size` at [`TransportConfig::min_body_rate`]).
pub(crate) struct BodyClock {
    stall: Duration,
    deadline: tokio::time::Instant,
}

/// Why a body step did not finish in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Late {
    /// No progress within the stall timeout.
    Stalled(Duration),
    /// The body's deadline passed: it moved slower than the minimum rate on average.
    TooSlow,
}

impl BodyClock {
    /// The clock of a body of `size` bytes starting now.
    pub(crate) fn start(config: &TransportConfig, size: u64) -> Self {
        Self::new(config.stall_timeout, config.min_body_rate, size)
    }

    /// A clock whose steps may take `stall` each, and whose `size` bytes must be done within
    /// `stall` plus their time at `min_rate` bytes per second.
    pub(crate) fn new(stall: Duration, min_rate: u64, size: u64) -> Self {
        let at_min_rate = Duration::from_millis(size.saturating_mul(1000) / min_rate.max(1));
        let allowed = stall.saturating_add(at_min_rate);
        let now = tokio::time::Instant::now();
        // Beyond what an Instant can hold, a century is as good as forever.
        let deadline = now
            .checked_add(allowed)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        BodyClock { stall, deadline }
    }

    /// Runs one step of the body within both limits.
    pub(crate) async fn step<F: Future>(&self, step: F) -> Result<F::Output, Late> {
        let left = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        if left < self.stall {
            tokio::time::timeout(left, step)
                .await
                .map_err(|_| Late::TooSlow)
        } else {
            tokio::time::timeout(self.stall, step)
                .await
                .map_err(|_| Late::Stalled(self.stall))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §8.7: `0x2` for whatever broke the protocol, `0x1` for every other refusal the
    /// answer explains, `0x0` when nothing was refused.
    #[test]
    fn an_answer_stops_the_rest_of_its_exchange_with_the_code_of_its_outcome() {
        use Operation::*;
        let malformed = Some(RefusalCode::Malformed);
        let cases = [
            (Refused, malformed, StreamCode::Malformed),
            (Decline, malformed, StreamCode::Malformed),
            (
                Refused,
                Some(RefusalCode::NotAuthorized),
                StreamCode::Refused,
            ),
            (
                Refused,
                Some(RefusalCode::DigestMismatch),
                StreamCode::Refused,
            ),
            (Refused, None, StreamCode::Refused),
            (
                Decline,
                Some(RefusalCode::KindNotSupported),
                StreamCode::Refused,
            ),
            (Defer, Some(RefusalCode::QuotaExceeded), StreamCode::Refused),
            (Defer, None, StreamCode::Refused),
            (Ingested, None, StreamCode::Done),
            (AlreadyPresent, None, StreamCode::Done),
            (Accept, None, StreamCode::Done),
        ];
        for (answer, code, expected) in cases {
            assert_eq!(
                StreamCode::after(answer, code),
                expected,
                "{answer} {code:?}"
            );
        }
        let frame = Frame::answer(
            Some("c"),
            &crate::Verdict::Refuse(crate::Refusal::new(RefusalCode::Malformed, "bad")),
        );
        assert_eq!(StreamCode::after_answer(&frame), StreamCode::Malformed);
    }
}
