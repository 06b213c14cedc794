//! The dialer: connects to a node it names by id, and runs exchanges on the session.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use orbi_types::{
    KeyPair, NodeId, Sha256Hasher,
    inac::{Operation, RefusalCode},
};
use quinn::{Connection, RecvStream, SendStream, WriteError};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{
    ConnectionCode, PeerAddr, SessionId, StreamCode, TransportConfig, TransportError,
    config::{client_config_for_alpn, endpoint},
    identity::peer_node_id,
    wire::{
        BodyClock, FrameWrite, Late, ReadFrameError, read_frame, write_frame_moving,
        write_frame_within,
    },
};
use crate::{DecodeError, Descriptor, Frame, FrameBuilder, Payload, Refusal, Verdict};

/// Why an exchange did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The connection failed or was closed.
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// No answer within [`TransportConfig::response_timeout`] (the exchange was reset `0x4`).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The peer made no progress for this long while we waited to open the exchange, to send
    /// a frame or body bytes (it gave no stream or flow-control credit) or to receive a served
    /// body; the exchange was reset (`0x4` for a frame, `0x6` for a body).
    #[error("peer made no progress for {after:?} while {waiting}")]
    Stalled {
        /// What we were waiting to do.
        waiting: Stall,
        /// How long we waited.
        after: Duration,
    },
    /// A stream body (sent or served) moved slower than
    /// [`TransportConfig::min_body_rate`] on average and missed its deadline; the exchange
    /// was reset `0x6`.
    #[error("peer kept the body under {min_rate} bytes/s on average while {waiting}")]
    TooSlow {
        /// What we were doing.
        waiting: Stall,
        /// The minimum average rate, bytes per second.
        min_rate: u64,
    },
    /// The peer reset or stopped the exchange without an answer.
    #[error("peer ended the exchange with code {0:#x}")]
    Reset(u64),
    /// The answer is not a valid frame.
    #[error("peer answered with an invalid frame: {0}")]
    Frame(#[from] DecodeError),
    /// The answer is a frame, but not a legal answer to what was sent.
    #[error("peer answered {answer} to {initiating}, which is not a legal answer")]
    UnexpectedAnswer {
        /// What was sent.
        initiating: Operation,
        /// What came back.
        answer: Operation,
    },
    /// The answer carries another `correlation/id` than the frame it answers (spec §2: a
    /// receiver echoes it), so it cannot be taken as this exchange's answer.
    #[error("peer answered with correlation/id {answered:?} to {sent:?}")]
    CorrelationMismatch {
        /// What was sent.
        sent: String,
        /// What came back.
        answered: Option<String>,
    },
    /// The answer could not be read.
    #[error("cannot read the answer: {0}")]
    Read(ReadFrameError),
    /// The frame to send could not be built.
    #[error("cannot build the frame: {0}")]
    Build(DecodeError),
    /// The body source failed.
    #[error("cannot read the body: {0}")]
    Body(std::io::Error),
    /// The body source ended before `size/bytes`.
    #[error("body ended after {sent} of {expected} bytes")]
    ShortBody {
        /// Bytes sent.
        sent: u64,
        /// `size/bytes`.
        expected: u64,
    },
    /// A received artifact could not be written out.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The target file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl From<ReadFrameError> for ExchangeError {
    fn from(error: ReadFrameError) -> Self {
        match error {
            ReadFrameError::Connection(lost) => ExchangeError::Connection(lost),
            ReadFrameError::Reset(code) => ExchangeError::Reset(code),
            ReadFrameError::Timeout(after) => ExchangeError::Timeout(after),
            other => ExchangeError::Read(other),
        }
    }
}

/// What a sender was waiting to do when the peer stopped letting anything through
/// ([`ExchangeError::Stalled`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Opening the exchange: the peer granted no stream within
    /// [`TransportConfig::frame_timeout`].
    Open,
    /// Sending a control frame: none of it let through within
    /// [`TransportConfig::frame_timeout`], or not all of it by its deadline (the frame timeout
    /// plus its length at [`TransportConfig::min_body_rate`]).
    Frame,
    /// Sending body bytes: no progress within [`TransportConfig::stall_timeout`].
    Body,
    /// Receiving a served body: no bytes within [`TransportConfig::stall_timeout`].
    Served,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stall::Open => "opening the exchange",
            Stall::Frame => "sending a frame",
            Stall::Body => "sending the body",
            Stall::Served => "receiving the served body",
        })
    }
}

/// The error of a body step that did not finish in time.
fn late(late: Late, waiting: Stall, config: &TransportConfig) -> ExchangeError {
    match late {
        Late::Stalled(after) => ExchangeError::Stalled { waiting, after },
        Late::TooSlow => ExchangeError::TooSlow {
            waiting,
            min_rate: config.min_body_rate,
        },
    }
}

fn write_error(error: WriteError) -> ExchangeError {
    match error {
        WriteError::ConnectionLost(lost) => ExchangeError::Connection(lost),
        WriteError::Stopped(code) => ExchangeError::Reset(code.into_inner()),
        other => ExchangeError::Read(ReadFrameError::Stream(other.to_string())),
    }
}

/// A local endpoint that dials INAC listeners as the node `identity`.
pub struct Client {
    endpoint: quinn::Endpoint,
    identity: KeyPair,
    config: Arc<TransportConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("node_id", &self.identity.node_id())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Binds a local UDP socket (e.g. `0.0.0.0:0`) for dialling. Must be called inside a
    /// tokio runtime.
    pub fn bind(
        local: SocketAddr,
        identity: KeyPair,
        config: TransportConfig,
    ) -> Result<Client, TransportError> {
        Ok(Client {
            endpoint: endpoint(local, None, &config)?,
            identity,
            config: Arc::new(config),
        })
    }

    /// A client on an ephemeral port of the family of `peer`'s address.
    pub fn for_peer(
        peer: &PeerAddr,
        identity: KeyPair,
        config: TransportConfig,
    ) -> Result<Client, TransportError> {
        let local: SocketAddr = if peer.addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        Self::bind(local, identity, config)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// Connects to `peer` for INAC; fails unless the listener proves `peer.node`'s key. The
    /// same as [`Client::connect_protocol`] with [`super::ALPN`].
    pub async fn connect(&self, peer: &PeerAddr) -> Result<Session, TransportError> {
        self.connect_protocol(peer, super::ALPN).await
    }

    /// Connects to `peer` offering the protocol id `alpn` only: INAC's ([`super::ALPN`]) or an
    /// [`super::AppProtocol`] the listener serves (the handshake fails if it serves none by
    /// that id). Identity checks and the [`SessionId`] are those of INAC; on an application
    /// protocol use [`Session::connection`] (the INAC exchange methods speak INAC).
    pub async fn connect_protocol(
        &self,
        peer: &PeerAddr,
        alpn: &[u8],
    ) -> Result<Session, TransportError> {
        let config = client_config_for_alpn(Some(&self.identity), &peer.node, &self.config, alpn)?;
        let connecting = self
            .endpoint
            .connect_with(config, peer.addr, SERVER_NAME)
            .map_err(|error| TransportError::Connect {
                addr: peer.addr,
                reason: error.to_string(),
            })?;
        let connection = connecting.await.map_err(|source| match &source {
            // Raised here by our verifier (ExpectedNode), not sent by the listener: a TLS
            // certificate alert as a QUIC crypto error.
            quinn::ConnectionError::TransportError(error)
                if CERTIFICATE_ALERTS
                    .iter()
                    .any(|alert| error.code == quinn::TransportErrorCode::crypto(*alert)) =>
            {
                TransportError::NotProven {
                    addr: peer.addr,
                    expected: peer.node.clone(),
                }
            }
            _ => TransportError::Connection {
                addr: peer.addr,
                source,
            },
        })?;
        // The verifier already compared the key; this reads the same proof back.
        let proven = peer_node_id(&connection)?;
        if proven != peer.node {
            connection.close(ConnectionCode::AuthFailed.varint(), b"unexpected node");
            return Err(super::identity::IdentityError::Unexpected {
                expected: peer.node.clone(),
                proven,
            }
            .into());
        }
        let id = SessionId::of(&connection)?;
        Ok(Session {
            connection,
            peer: proven,
            id,
            config: self.config.clone(),
        })
    }

    /// Closes every connection (`0x0`) and waits briefly until the peers know.
    pub async fn close(&self) {
        self.endpoint.close(ConnectionCode::Done.varint(), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

/// The TLS server name sent when dialling; raw public keys make it meaningless and SNI is off.
const SERVER_NAME: &str = "orbiplex-inac";

/// An authenticated connection to one peer.
#[derive(Clone)]
pub struct Session {
    connection: Connection,
    peer: NodeId,
    id: SessionId,
    config: Arc<TransportConfig>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// How a `request` ended.
#[derive(Debug)]
pub enum RequestOutcome {
    /// The peer answered without the artifact (`decline`, `partial`, `refused`).
    Answered(Box<Frame>),
    /// The artifact arrived, was verified and written; `answer` is what this side replied.
    Received {
        /// The peer's `push`.
        push: Box<Frame>,
        /// Our answer (`ingested`, or `refused` when the bytes did not match).
        answer: Box<Frame>,
    },
}

/// What [`Session::request_to_file_up_to`] does about a file already at its `out` path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingFile {
    /// Keep it: the request is not sent ([`ExchangeError::Output`], `AlreadyExists`). A file
    /// that appears at `out` during the transfer is kept too: the verified artifact is then
    /// not written, and the peer is answered a retryable `handler-unavailable`.
    Keep,
    /// Replace it, whole, once the artifact is verified (as `curl -o` does).
    Replace,
}

/// How a `request` for an inline artifact ended ([`Session::request_inline`]).
#[derive(Debug)]
pub enum InlineOutcome {
    /// The peer answered without the artifact (`decline`, `partial`, `refused`).
    Answered(Box<Frame>),
    /// The artifact arrived inline and is the one asked for; this side answered `ingested`.
    Received {
        /// The peer's `push`.
        push: Box<Frame>,
        /// The artifact's exact bytes.
        bytes: Vec<u8>,
    },
    /// The peer served something else (another kind, id or digest, bytes that do not hash to
    /// their digest, or a stream body); this side answered `refused` with `refusal`.
    Refused {
        /// The peer's `push`.
        push: Box<Frame>,
        /// Why it was refused.
        refusal: Refusal,
    },
}

impl Session {
    /// The node the handshake proved.
    pub fn peer(&self) -> &NodeId {
        &self.peer
    }

    /// This connection's session id (both ends compute the same).
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The underlying quinn connection.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Sends one frame (`offer`, an inline `push`) and returns the answer.
    pub async fn exchange(&self, frame: &Frame) -> Result<Frame, ExchangeError> {
        let (mut send, mut recv) = self.open().await?;
        self.send_frame(&mut send, frame).await?;
        let _ = send.finish();
        self.answer(&mut send, &mut recv, frame).await
    }

    /// Pushes `descriptor` in stream mode: the header (built from
    /// [`Frame::push_stream`] with this stream's id, then `decorate`d with correlation id,
    /// idempotency key, authorization…), then exactly `size/bytes` bytes read from `body`.
    /// `progress` gets the running byte count. A receiver that refuses the header stops the
    /// body at once; its answer is returned either way.
    pub async fn push_stream<R: AsyncRead + Unpin>(
        &self,
        descriptor: &Descriptor,
        decorate: impl FnOnce(FrameBuilder) -> FrameBuilder,
        mut body: R,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Frame, ExchangeError> {
        let (mut send, mut recv) = self.open().await?;
        let stream_id = super::wire::stream_number(send.id()).to_string();
        let header = decorate(Frame::push_stream(descriptor, &stream_id))
            .build()
            .map_err(ExchangeError::Build)?;
        let mut stopped = match self.send_frame(&mut send, &header).await {
            Ok(()) => false,
            Err(stalled @ ExchangeError::Stalled { .. }) => return Err(stalled),
            // The receiver refused before the header was all in: its answer follows.
            Err(_) => true,
        };
        let size = descriptor.size_bytes;
        let mut buffer = vec![0u8; self.config.body_buffer_bytes.max(4096)];
        let mut sent = 0u64;
        let clock = BodyClock::start(&self.config, size);
        while !stopped && sent < size {
            let want = usize::try_from(size - sent).map_or(buffer.len(), |r| r.min(buffer.len()));
            let n = match body.read(&mut buffer[..want]).await {
                Ok(n) => n,
                Err(error) => {
                    let _ = send.reset(StreamCode::SenderAbort.varint());
                    return Err(ExchangeError::Body(error));
                }
            };
            if n == 0 {
                let _ = send.reset(StreamCode::SenderAbort.varint());
                return Err(ExchangeError::ShortBody {
                    sent,
                    expected: size,
                });
            }
            match clock.step(send.write_all(&buffer[..n])).await {
                Ok(Ok(())) => {
                    sent += n as u64;
                    progress(sent);
                }
                // The receiver decided before taking the rest: its answer follows.
                Ok(Err(WriteError::Stopped(_))) => stopped = true,
                Ok(Err(error)) => return Err(write_error(error)),
                Err(missed) => {
                    let _ = send.reset(StreamCode::Stale.varint());
                    return Err(late(missed, Stall::Body, &self.config));
                }
            }
        }
        if !stopped {
            let _ = send.finish();
        }
        let wait = answer_wait_after_body(&self.config, size);
        // An early `ingested` is legitimate: a retry under the same idempotency key is
        // answered with the recorded outcome, body unread (spec §3.4).
        self.answer_within(&mut send, &mut recv, &header, wait)
            .await
    }

    /// Sends a `request` and, if the peer serves it, verifies the artifact and writes it to
    /// `out` (temp file beside it, fsync, rename), then answers `ingested`. Bytes that do not
    /// match their descriptor are answered `refused` and never written. A transfer that
    /// breaks off (the peer resets it, the connection fails, no body byte within the stall
    /// timeout) is an error: nothing is written or answered, and the exchange is reset.
    /// `progress` gets the bytes received so far and the served artifact's size.
    /// A file already at `out` is kept ([`ExistingFile::Keep`]).
    pub async fn request_to_file(
        &self,
        request: &Frame,
        out: &Path,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<RequestOutcome, ExchangeError> {
        self.request_to_file_up_to(request, out, u64::MAX, ExistingFile::Keep, progress)
            .await
    }

    /// [`Session::request_to_file`] for an artifact of at most `max_bytes`: a larger one is
    /// refused `payload-too-large` from its descriptor, before any byte of it is read or
    /// anything is written. `existing` says whether a file already at `out` may be replaced.
    pub async fn request_to_file_up_to(
        &self,
        request: &Frame,
        out: &Path,
        max_bytes: u64,
        existing: ExistingFile,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<RequestOutcome, ExchangeError> {
        // Found out before anything is asked of the peer (a symlink counts as a file).
        if existing == ExistingFile::Keep && std::fs::symlink_metadata(out).is_ok() {
            return Err(ExchangeError::Output {
                path: out.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file is already there (it is kept)",
                ),
            });
        }
        let Served {
            mut send,
            mut recv,
            push: answer,
            descriptor,
        } = match self.send_request(request).await? {
            Ok(served) => served,
            Err(answer) => return Ok(RequestOutcome::Answered(answer)),
        };
        let within = |()| {
            if descriptor.size_bytes > max_bytes {
                return Err(Refusal::new(
                    RefusalCode::PayloadTooLarge,
                    format!(
                        "{} bytes is over this requester's limit of {max_bytes}",
                        descriptor.size_bytes
                    ),
                ));
            }
            Ok(())
        };
        let received = match (
            served_as_asked(request, &answer, &descriptor, &recv).and_then(within),
            answer.payload(),
        ) {
            (Err(refusal), _) => Err(NotReceived::Refused(refusal)),
            (Ok(()), Some(Payload::Inline(_))) => match answer.verified_inline() {
                Some(Ok(bytes)) => {
                    progress(bytes.len() as u64, descriptor.size_bytes);
                    write_verified(out, existing, &descriptor, Source::Memory(bytes)).await
                }
                Some(Err(refusal)) => Err(NotReceived::Refused(refusal)),
                None => Err(NotReceived::Refused(Refusal::new(
                    RefusalCode::Malformed,
                    "bytes/base64url does not decode",
                ))),
            },
            (Ok(()), Some(Payload::Stream { .. })) => {
                let size = descriptor.size_bytes;
                let source = Source::Stream {
                    recv: &mut recv,
                    clock: BodyClock::start(&self.config, size),
                    config: &self.config,
                    progress: &mut |received| progress(received, size),
                };
                write_verified(out, existing, &descriptor, source).await
            }
            (Ok(()), _) => Err(NotReceived::Refused(Refusal::new(
                RefusalCode::OperationNotSupported,
                "a served artifact must come inline or on the stream",
            ))),
        };
        let (verdict, result) = match received {
            Ok(()) => (Verdict::Ingested, Ok(())),
            // The transfer broke off: nothing was judged, and there is no one to answer.
            Err(NotReceived::Aborted { error, code }) => {
                let _ = recv.stop(code.varint());
                let _ = send.reset(code.varint());
                return Err(error);
            }
            Err(NotReceived::Refused(refusal))
                if refusal.code() == RefusalCode::HandlerUnavailable =>
            {
                (Verdict::Refuse(refusal.clone()), Err(refusal))
            }
            Err(NotReceived::Refused(refusal)) => (Verdict::Refuse(refusal), Ok(())),
        };
        let ours = self
            .answer_served(&mut send, &mut recv, &answer, &verdict)
            .await;
        match result {
            Ok(()) => Ok(RequestOutcome::Received {
                push: Box::new(answer),
                answer: Box::new(ours),
            }),
            Err(refusal) => Err(ExchangeError::Output {
                path: out.to_owned(),
                source: std::io::Error::other(refusal.message().to_owned()),
            }),
        }
    }

    /// Opens an exchange; a peer that grants no stream within
    /// [`TransportConfig::frame_timeout`] (every exchange it holds open stays past its own
    /// timeouts) is given up on.
    async fn open(&self) -> Result<(SendStream, RecvStream), ExchangeError> {
        let limit = self.config.frame_timeout;
        match tokio::time::timeout(limit, self.connection.open_bi()).await {
            Ok(opened) => Ok(opened?),
            Err(_) => Err(ExchangeError::Stalled {
                waiting: Stall::Open,
                after: limit,
            }),
        }
    }

    /// Writes `frame`; a peer that lets none of it through for
    /// [`TransportConfig::frame_timeout`], or trickles it past its deadline, gets the exchange
    /// reset with `0x4`.
    async fn send_frame(&self, send: &mut SendStream, frame: &Frame) -> Result<(), ExchangeError> {
        let idle = self.config.frame_timeout;
        match write_frame_moving(send, frame, &self.config).await {
            FrameWrite::Written => Ok(()),
            FrameWrite::Failed(error) => Err(write_error(error)),
            FrameWrite::Stalled => Err(ExchangeError::Stalled {
                waiting: Stall::Frame,
                after: idle,
            }),
        }
    }

    /// Sends a `request` for a small artifact the peer serves inline (a published
    /// advertisement, a decision) and checks what it serves as [`Session::request_to_file`]
    /// does: the kind, id and digest asked for, and bytes that hash to the declared digest.
    /// The peer gets this side's answer (`ingested` or `refused`) either way; a stream body
    /// is refused unread.
    pub async fn request_inline(&self, request: &Frame) -> Result<InlineOutcome, ExchangeError> {
        let Served {
            mut send,
            mut recv,
            push,
            descriptor,
        } = match self.send_request(request).await? {
            Ok(served) => served,
            Err(answer) => return Ok(InlineOutcome::Answered(answer)),
        };
        let asked = served_as_asked(request, &push, &descriptor, &recv);
        let checked = asked.and_then(|()| match push.verified_inline() {
            Some(verified) => verified.map(<[u8]>::to_vec),
            None => Err(Refusal::new(
                RefusalCode::OperationNotSupported,
                "this request takes the artifact inline only",
            )),
        });
        let verdict = match &checked {
            Ok(_) => Verdict::Ingested,
            Err(refusal) => Verdict::Refuse(refusal.clone()),
        };
        self.answer_served(&mut send, &mut recv, &push, &verdict)
            .await;
        let push = Box::new(push);
        Ok(match checked {
            Ok(bytes) => InlineOutcome::Received { push, bytes },
            Err(refusal) => InlineOutcome::Refused { push, refusal },
        })
    }

    /// Opens an exchange for `request` and reads the answer: the served push with its
    /// descriptor and the exchange's halves, or (`Err`) an answer without the artifact.
    async fn send_request(
        &self,
        request: &Frame,
    ) -> Result<Result<Served, Box<Frame>>, ExchangeError> {
        let (mut send, mut recv) = self.open().await?;
        self.send_frame(&mut send, request).await?;
        let push = self.answer(&mut send, &mut recv, request).await?;
        if push.operation() != Operation::Push {
            return Ok(Err(Box::new(push)));
        }
        let Some(descriptor) = push.descriptor() else {
            return Err(ExchangeError::UnexpectedAnswer {
                initiating: Operation::Request,
                answer: Operation::Push,
            });
        };
        Ok(Ok(Served {
            send,
            recv,
            push,
            descriptor,
        }))
    }

    /// Ends a served exchange with this side's `verdict`: stops what is left of the body
    /// (spec §8.7 code), answers, and waits (bounded) until the peer has the answer.
    /// Returns the answer.
    async fn answer_served(
        &self,
        send: &mut SendStream,
        recv: &mut RecvStream,
        push: &Frame,
        verdict: &Verdict,
    ) -> Frame {
        let ours = Frame::answer(push.correlation_id(), verdict);
        let _ = recv.stop(StreamCode::after(verdict.operation(), verdict.refusal_code()).varint());
        if write_frame_within(send, &ours, &self.config).await {
            let _ = send.finish();
            let _ = tokio::time::timeout(self.config.response_timeout, send.stopped()).await;
        }
        ours
    }

    /// Reads the answer to `initiating` within the response timeout; on timeout the exchange
    /// is reset with `0x4`.
    async fn answer(
        &self,
        send: &mut SendStream,
        recv: &mut RecvStream,
        asked: &Frame,
    ) -> Result<Frame, ExchangeError> {
        self.answer_within(send, recv, asked, self.config.response_timeout)
            .await
    }

    /// [`Session::answer`] with another timeout.
    async fn answer_within(
        &self,
        send: &mut SendStream,
        recv: &mut RecvStream,
        asked: &Frame,
        timeout: Duration,
    ) -> Result<Frame, ExchangeError> {
        let initiating = asked.operation();
        let bytes = match read_frame(recv, timeout).await {
            Ok(bytes) => bytes,
            Err(ReadFrameError::Timeout(after)) => {
                let _ = recv.stop(StreamCode::ResponseTimeout.varint());
                let _ = send.reset(StreamCode::ResponseTimeout.varint());
                return Err(ExchangeError::Timeout(after));
            }
            Err(error) => return Err(error.into()),
        };
        let frame = Frame::decode(&bytes)?;
        if !is_legal_answer(initiating, frame.operation()) {
            return Err(ExchangeError::UnexpectedAnswer {
                initiating,
                answer: frame.operation(),
            });
        }
        // A served push is checked with the rest of what it says, and answered (`not_asked`).
        // A refusal without any id is taken: a receiver that could not read our frame (too
        // large, undecodable) cannot echo what it did not read.
        let unechoed_refusal =
            frame.correlation_id().is_none() && frame.operation() == Operation::Refused;
        if let Some(sent) = asked.correlation_id()
            && frame.correlation_id() != Some(sent)
            && frame.operation() != Operation::Push
            && !unechoed_refusal
        {
            return Err(ExchangeError::CorrelationMismatch {
                sent: sent.to_owned(),
                answered: frame.correlation_id().map(str::to_owned),
            });
        }
        Ok(frame)
    }

    /// Closes this connection (`0x0`).
    pub fn close(&self) {
        self.connection
            .close(ConnectionCode::Done.varint(), b"done");
    }
}

/// TLS `bad_certificate` (42) and `certificate_unknown` (46): the alerts rustls raises when our
/// server verifier refuses a listener's key (another node, or no usable ed25519 key).
const CERTIFICATE_ALERTS: [u8; 2] = [42, 46];

/// The slowest a receiver's disk is assumed to sync a stream body: the answer to a stream push
/// comes after the receiver has made the whole body durable.
const SLOWEST_SYNC_BYTES_PER_SECOND: u64 = 32 * 1024 * 1024;

/// How long a sender waits for the answer once a stream body of `size` bytes is sent: the
/// response timeout, plus the time the receiver's fsync of the body may take on a slow disk
/// (a 1 GiB body may take 30 s there; timing out sooner would report a transfer that
/// succeeded as failed).
fn answer_wait_after_body(config: &TransportConfig, size: u64) -> Duration {
    config
        .response_timeout
        .saturating_add(Duration::from_secs(size / SLOWEST_SYNC_BYTES_PER_SECOND))
}

/// Spec §3.1 (with `refused` tolerated as the answer to anything, §3.2).
fn is_legal_answer(initiating: Operation, answer: Operation) -> bool {
    use Operation::*;
    answer == Refused
        || match initiating {
            Offer => matches!(answer, Accept | Decline | Defer | AlreadyPresent),
            Push => matches!(answer, Ingested | AlreadyPresent),
            Request => matches!(answer, Push | Decline | Partial),
            _ => false,
        }
}

enum Source<'a> {
    Memory(&'a [u8]),
    Stream {
        recv: &'a mut RecvStream,
        clock: BodyClock,
        config: &'a TransportConfig,
        progress: &'a mut (dyn FnMut(u64) + Send),
    },
}

/// Whether the artifact a peer serves is the one `request` asked for: its kind, and its id and
/// digest where the request named them, on the exchange the request opened. The bytes are
/// checked against the served descriptor later; this checks the descriptor itself, so that a
/// peer cannot answer with another artifact that merely verifies against its own descriptor.
/// A stream-mode push must name the stream it came on, `recv` (spec §8.5).
fn served_as_asked(
    request: &Frame,
    push: &Frame,
    served: &Descriptor,
    recv: &RecvStream,
) -> Result<(), Refusal> {
    let not_asked = |what: String| {
        Err(Refusal::new(
            RefusalCode::Malformed,
            format!("the served artifact is not the one requested: {what}"),
        ))
    };
    if let Some(asked) = request.request() {
        if served.schema != asked.schema || served.content_type != asked.content_type {
            return not_asked(format!(
                "{} {} instead of {} {}",
                served.schema, served.content_type, asked.schema, asked.content_type
            ));
        }
        if let Some(id) = &asked.artifact_id
            && *id != served.artifact_id
        {
            return not_asked(format!("artifact/id {:?}", served.artifact_id));
        }
        if let Some(digest) = &asked.digest
            && *digest != served.digest
        {
            return not_asked(format!("digest {}", served.digest));
        }
    }
    if let Some(correlation) = request.correlation_id()
        && push.correlation_id() != Some(correlation)
    {
        return not_asked(format!("correlation/id {:?}", push.correlation_id()));
    }
    push.check_stream(super::wire::stream_number(recv.id()))
        .map_err(|error| error.refusal())
}

/// A `push` a peer served for a request, and the exchange it came on.
struct Served {
    send: SendStream,
    recv: RecvStream,
    push: Frame,
    descriptor: Descriptor,
}

/// Why a served artifact was not written out.
enum NotReceived {
    /// Judged and refused (wrong size or digest, cannot store): answered with the refusal.
    Refused(Refusal),
    /// The transfer broke off (the peer reset it, the connection failed, no body progress):
    /// the exchange is reset with `code`, nothing is answered.
    Aborted {
        /// What the caller is told.
        error: ExchangeError,
        /// The stream code both halves of the exchange are ended with.
        code: StreamCode,
    },
}

impl From<Refusal> for NotReceived {
    fn from(refusal: Refusal) -> Self {
        NotReceived::Refused(refusal)
    }
}

/// Writes the artifact to a temp file beside `out`, checking size and digest, and renames it
/// into place only when both match (over a file already there only if `existing` says so).
async fn write_verified(
    out: &Path,
    existing: ExistingFile,
    descriptor: &Descriptor,
    source: Source<'_>,
) -> Result<(), NotReceived> {
    // The message goes to the peer too: only the kind of failure, never a local path (the
    // caller's error names the path).
    let unavailable = |error: std::io::Error| {
        Refusal::handler_unavailable(format!("cannot store it: {}", error.kind()))
    };
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let (file, name) = stage(&parent).map_err(unavailable)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut hasher = Sha256Hasher::new();
    let mut received = 0u64;
    let expected = descriptor.size_bytes;
    let malformed = |message: String| Refusal::new(RefusalCode::Malformed, message);
    use tokio::io::AsyncWriteExt;
    match source {
        Source::Memory(bytes) => {
            hasher.update(bytes);
            received = bytes.len() as u64;
            file.write_all(bytes).await.map_err(unavailable)?;
        }
        Source::Stream {
            recv,
            clock,
            config,
            progress,
        } => {
            let mut buffer = vec![0u8; 1024 * 1024];
            loop {
                let read = clock.step(recv.read(&mut buffer)).await;
                let n = match read {
                    Ok(Ok(Some(n))) => n,
                    Ok(Ok(None)) => break,
                    Ok(Err(error)) => {
                        return Err(NotReceived::Aborted {
                            error: ExchangeError::from(ReadFrameError::from(error)),
                            code: StreamCode::Done,
                        });
                    }
                    Err(missed) => {
                        return Err(NotReceived::Aborted {
                            error: late(missed, Stall::Served, config),
                            code: StreamCode::Stale,
                        });
                    }
                };
                received += n as u64;
                if received > expected {
                    return Err(malformed(format!(
                        "body is longer than its declared size/bytes of {expected}"
                    ))
                    .into());
                }
                hasher.update(&buffer[..n]);
                file.write_all(&buffer[..n]).await.map_err(unavailable)?;
                progress(received);
            }
        }
    }
    if received != expected {
        return Err(malformed(format!("body ended after {received} of {expected} bytes")).into());
    }
    let digest = hasher.finish();
    if digest != descriptor.digest {
        return Err(Refusal::new(
            RefusalCode::DigestMismatch,
            format!(
                "body hashes to {digest}, not the declared {}",
                descriptor.digest
            ),
        )
        .into());
    }
    file.flush().await.map_err(unavailable)?;
    file.sync_all().await.map_err(unavailable)?;
    let file = file.into_std().await;
    // The name and the rename happen here, within this poll, so that a caller who stops
    // waiting (Ctrl-C) either finds the file renamed or never renamed; only the directory
    // sync, which changes nothing a reader sees, runs on.
    publish(&file, name, &parent, out, existing).map_err(unavailable)?;
    tokio::task::spawn_blocking(move || sync_parent(&parent))
        .await
        .map_err(|_| unavailable(std::io::Error::other("the directory sync task failed")))?
        .map_err(unavailable)?;
    Ok(())
}

/// The prefix of the temporary name a received artifact has beside `--out`.
const STAGING_PREFIX: &str = ".inac-request-";

/// A file in `dir` for an artifact while it arrives, and its temporary name if it has one.
///
/// On Linux it has none (`O_TMPFILE`) until it is verified, so a requester killed outright
/// (`kill -9`, power loss) leaves nothing behind; [`publish`] names it. Where there are no
/// unnamed files (another platform, a filesystem without them, no `/proc` to name one by), it
/// is a named temp file `.inac-request-XXXXXX`, removed on every failure but such a kill.
/// Either way it gets the mode a plain create would give it (the umask's), not 0600.
fn stage(dir: &Path) -> std::io::Result<(std::fs::File, Option<tempfile::TempPath>)> {
    #[cfg(target_os = "linux")]
    if Path::new("/proc/self/fd").is_dir() {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        if let Ok(fd) = rustix::fs::open(dir, flags, Mode::from_raw_mode(0o666)) {
            return Ok((std::fs::File::from(fd), None));
        }
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(STAGING_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let (file, name) = builder.tempfile_in(dir)?.into_parts();
    Ok((file, Some(name)))
}

/// Renames the verified `file` to `out`, naming it in `dir` first if [`stage`] left it
/// unnamed (a link under a fresh temporary name: the rename replaces an existing `out` whole,
/// or, to keep one, fails without touching it).
fn publish(
    file: &std::fs::File,
    name: Option<tempfile::TempPath>,
    dir: &Path,
    out: &Path,
    existing: ExistingFile,
) -> std::io::Result<()> {
    let name = match name {
        Some(name) => name,
        None => name_unnamed(file, dir)?,
    };
    match existing {
        ExistingFile::Replace => name.persist(out),
        ExistingFile::Keep => name.persist_noclobber(out),
    }
    .map_err(|error| error.error)
}

/// Links the unnamed `file` into `dir` under a fresh temporary name.
#[cfg(target_os = "linux")]
fn name_unnamed(file: &std::fs::File, dir: &Path) -> std::io::Result<tempfile::TempPath> {
    use std::os::unix::io::AsRawFd;
    let source = format!("/proc/self/fd/{}", file.as_raw_fd());
    let linked = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .make_in(dir, |path| {
            rustix::fs::linkat(
                rustix::fs::CWD,
                source.as_str(),
                rustix::fs::CWD,
                path,
                rustix::fs::AtFlags::SYMLINK_FOLLOW,
            )
            .map_err(std::io::Error::from)
        })?;
    Ok(linked.into_temp_path())
}

/// Only Linux stages unnamed files.
#[cfg(not(target_os = "linux"))]
fn name_unnamed(_file: &std::fs::File, _dir: &Path) -> std::io::Result<tempfile::TempPath> {
    Err(std::io::Error::other("no unnamed file to name"))
}

/// Directory syncs made (tests only; one test in this crate receives artifacts).
#[cfg(test)]
static DIR_SYNCS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Syncs `dir`, the directory a received artifact was renamed into, so that its name
/// survives a crash too before the peer is told `ingested`.
fn sync_parent(dir: &Path) -> std::io::Result<()> {
    #[cfg(test)]
    DIR_SYNCS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    crate::store::sync_directory(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_artifact_is_written_renamed_and_its_directory_synced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        let descriptor = Descriptor::of_bytes("vendor.blob.v1", "application/octet-stream", b"x");
        let syncs = || DIR_SYNCS.load(std::sync::atomic::Ordering::SeqCst);
        let before = syncs();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(write_verified(
                &out,
                ExistingFile::Keep,
                &descriptor,
                Source::Memory(b"x"),
            ))
            .map_err(|_| "refused")
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"x");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file"
        );
        assert_eq!(
            syncs(),
            before + 1,
            "the directory was synced before the answer"
        );
    }

    /// The names in `dir`.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The mode bits a plain create in `dir` gets (the umask's).
    #[cfg(unix)]
    fn plain_mode(dir: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        let probe = dir.join("plain");
        std::fs::write(&probe, b"").unwrap();
        let mode = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
        std::fs::remove_file(probe).unwrap();
        mode
    }

    /// While an artifact arrives it has no name beside `--out`, so a requester killed outright
    /// leaves nothing behind; once verified it replaces `out` whole, with a plain create's mode.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_arriving_artifact_has_no_name_until_it_is_published() {
        use std::{io::Write, os::unix::fs::PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        std::fs::write(&out, b"the old file").unwrap();
        let mode = plain_mode(dir.path());
        let (mut file, name) = stage(dir.path()).unwrap();
        assert!(name.is_none(), "staged under a name");
        file.write_all(b"the new file").unwrap();
        assert_eq!(
            names(dir.path()),
            ["out.bin"],
            "nothing named while it arrives"
        );

        publish(&file, name, dir.path(), &out, ExistingFile::Replace).unwrap();

        assert_eq!(std::fs::read(&out).unwrap(), b"the new file");
        assert_eq!(names(dir.path()), ["out.bin"]);
        let published = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(published, mode);
    }

    /// A file that appeared at `out` while the artifact arrived is kept, unless replacing was
    /// asked for: the verified artifact is not written, the peer hears `handler-unavailable`,
    /// and no temporary name is left behind.
    #[test]
    fn a_file_that_appears_at_out_meanwhile_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        std::fs::write(&out, b"appeared meanwhile").unwrap();
        let descriptor = Descriptor::of_bytes("vendor.blob.v1", "application/octet-stream", b"x");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let kept = runtime.block_on(write_verified(
            &out,
            ExistingFile::Keep,
            &descriptor,
            Source::Memory(b"x"),
        ));
        let Err(NotReceived::Refused(refusal)) = kept else {
            panic!("the artifact was written over the file");
        };
        assert_eq!(refusal.code(), RefusalCode::HandlerUnavailable);
        assert_eq!(refusal.message(), "cannot store it: entity already exists");
        assert_eq!(std::fs::read(&out).unwrap(), b"appeared meanwhile");
        assert_eq!(names(dir.path()), ["out.bin"]);
        runtime
            .block_on(write_verified(
                &out,
                ExistingFile::Replace,
                &descriptor,
                Source::Memory(b"x"),
            ))
            .map_err(|_| "refused")
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"x");
        assert_eq!(names(dir.path()), ["out.bin"]);
    }

    /// An artifact that fails its checks leaves nothing: no temp file, and `out` as it was.
    #[test]
    fn a_refused_artifact_leaves_the_directory_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        std::fs::write(&out, b"the old file").unwrap();
        let descriptor = Descriptor::of_bytes("vendor.blob.v1", "application/octet-stream", b"x");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let refused = runtime.block_on(write_verified(
            &out,
            ExistingFile::Replace,
            &descriptor,
            Source::Memory(b"y"),
        ));
        let Err(NotReceived::Refused(refusal)) = refused else {
            panic!("a wrong digest was not refused");
        };
        assert_eq!(refusal.code(), RefusalCode::DigestMismatch);
        assert_eq!(names(dir.path()), ["out.bin"]);
        assert_eq!(std::fs::read(&out).unwrap(), b"the old file");
    }

    #[test]
    fn the_wait_for_a_stream_answer_grows_with_the_body_it_must_sync() {
        let config = TransportConfig::default();
        assert_eq!(answer_wait_after_body(&config, 0), config.response_timeout);
        assert_eq!(
            answer_wait_after_body(&config, 1 << 30),
            config.response_timeout + Duration::from_secs(32)
        );
    }
}
