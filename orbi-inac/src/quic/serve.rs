//! Answering a granted `request` (spec §8.3): the `push` frame on the same stream, the body
//! after it in stream mode, then the requester's own answer (`ingested`, …), which is logged.

use std::io::Read;

use orbi_types::NodeId;
use quinn::{RecvStream, SendStream};

use super::{
    StreamCode, TransportConfig,
    server::ServedBody,
    wire::{BodyClock, read_frame, write_frame_within},
};
use crate::{Frame, ServeArtifact};

pub(super) async fn serve_request(
    peer: &NodeId,
    send: &mut SendStream,
    recv: &mut RecvStream,
    serve: ServeArtifact,
    body: ServedBody,
    config: &TransportConfig,
) {
    let stream_id = super::wire::stream_number(send.id()).to_string();
    let push = match serve.push_frame(&stream_id) {
        Ok(push) => push,
        Err(error) => {
            tracing::error!(%error, "cannot build the push answering a request");
            let _ = send.reset(StreamCode::Malformed.varint());
            return;
        }
    };
    if !write_frame_within(send, &push, config).await {
        return;
    }
    if !serve.is_inline() {
        let Some(body) = body else {
            tracing::error!(digest = %serve.descriptor().digest, "served artifact vanished from the store");
            let _ = send.reset(StreamCode::SenderAbort.varint());
            return;
        };
        if !send_body(send, body, serve.descriptor().size_bytes, config).await {
            let _ = send.reset(StreamCode::SenderAbort.varint());
            return;
        }
    }
    let _ = send.finish();
    // The requester answers after verifying what it received.
    match read_frame(recv, config.response_timeout.saturating_mul(2)).await {
        Ok(bytes) => match Frame::decode(&bytes) {
            Ok(answer) => {
                tracing::debug!(%peer, answer = %answer.operation(), "requester answered")
            }
            Err(error) => tracing::debug!(%peer, %error, "requester answered with a bad frame"),
        },
        Err(error) => tracing::debug!(%peer, %error, "requester did not answer"),
    }
}

/// Streams exactly `size` bytes from `body`, one buffer
/// ([`TransportConfig::body_buffer_bytes`], 1 MiB) read ahead on a blocking thread while the
/// previous one is sent. A blocking thread is held only while a buffer is read, never while
/// the requester is slow: the pool is shared by every peer's transfers. A requester that does
/// not take a whole buffer within [`TransportConfig::stall_timeout`] (15 min) is given up on.
async fn send_body(
    send: &mut SendStream,
    body: Box<dyn Read + Send>,
    size: u64,
    config: &TransportConfig,
) -> bool {
    let chunk = config.body_buffer_bytes.max(4096);
    let read_ahead = |mut body: std::io::Take<Box<dyn Read + Send>>| {
        tokio::task::spawn_blocking(move || {
            let mut buffer = vec![0u8; chunk];
            let read = body.read(&mut buffer).map(|n| {
                buffer.truncate(n);
                buffer
            });
            (body, read)
        })
    };
    let mut next = read_ahead(body.take(size));
    let mut sent = 0u64;
    let clock = BodyClock::start(config, size);
    loop {
        let Ok((body, Ok(buffer))) = next.await else {
            break;
        };
        if buffer.is_empty() {
            break;
        }
        next = read_ahead(body);
        match clock.step(send.write_all(&buffer)).await {
            Ok(Ok(())) => sent += buffer.len() as u64,
            Ok(Err(_)) => break,
            Err(late) => {
                tracing::debug!(?late, "requester too slow; serving abandoned");
                let _ = send.reset(StreamCode::Stale.varint());
                break;
            }
        }
    }
    sent == size
}
