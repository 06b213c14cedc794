//! Application protocols served beside INAC on the same UDP endpoint, chosen by ALPN in the
//! handshake ([`AppProtocol`], [`super::Server::bind_with`], [`super::Client::connect_protocol`]).
//!
//! Every protocol gets the same identity rules as INAC: TLS 1.3 with raw ed25519 keys both
//! ways, the dialer's node id proven in the handshake, [`super::TransportConfig::barred_peers`]
//! closed (`0x101`) before any handler runs, and the [`SessionId`] exported exactly as for
//! INAC. The transport parameters are the endpoint's (they are fixed before the protocol is
//! known): the dialer may open up to [`super::TransportConfig::max_concurrent_exchanges`]
//! bidirectional streams, the listener none towards the dialer, and no unidirectional ones.
//! So an application protocol is "the dialer asks on a bidirectional stream, the handler
//! answers on it", which is what INAC itself does.

use std::{future::Future, pin::Pin, sync::Arc};

use orbi_types::NodeId;

use super::{ALPN, SessionId};

/// One authenticated connection of an application protocol.
#[derive(Debug)]
pub struct AppConnection {
    /// The dialer, as its handshake proved it.
    pub peer: NodeId,
    /// The session id; the dialer's [`super::Session::id`] reports the same.
    pub session: SessionId,
    /// The connection; the handler owns it (accept streams with `accept_bi`).
    pub connection: quinn::Connection,
}

type Handler =
    dyn Fn(AppConnection) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> + Send + Sync;

/// A protocol served beside INAC, chosen by ALPN in the handshake.
///
/// ```
/// use orbi_inac::quic::AppProtocol;
///
/// let echo = AppProtocol::new(b"example-echo/1", |app| async move {
///     while let Ok((mut send, mut recv)) = app.connection.accept_bi().await {
///         // One task per stream, each bounded in bytes and time: a slow or silent peer
///         // holds nothing for long and delays no other stream.
///         let limit = std::time::Duration::from_secs(10);
///         tokio::spawn(tokio::time::timeout(limit, async move {
///             if let Ok(bytes) = recv.read_to_end(64 * 1024).await {
///                 let _ = send.write_all(&bytes).await;
///                 let _ = send.finish();
///             }
///         }));
///     }
/// });
/// assert_eq!(echo.alpn(), b"example-echo/1");
/// ```
#[derive(Clone)]
pub struct AppProtocol {
    alpn: Arc<[u8]>,
    handler: Arc<Handler>,
}

impl std::fmt::Debug for AppProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppProtocol")
            .field("alpn", &String::from_utf8_lossy(&self.alpn))
            .finish_non_exhaustive()
    }
}

impl AppProtocol {
    /// `alpn` must differ from [`ALPN`] (checked by [`super::Server::bind_with`], with every
    /// other rule of [`AlpnError`]); `handler` runs once per connection in its own task and
    /// owns the connection until it returns.
    pub fn new<F, Fut>(alpn: &[u8], handler: F) -> AppProtocol
    where
        F: Fn(AppConnection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        AppProtocol {
            alpn: Arc::from(alpn),
            handler: Arc::new(move |connection| Box::pin(handler(connection))),
        }
    }

    /// The protocol id this protocol is negotiated by.
    pub fn alpn(&self) -> &[u8] {
        &self.alpn
    }

    /// Starts the handler on `connection`.
    pub(super) fn handle(
        &self,
        connection: AppConnection,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        (self.handler)(connection)
    }
}

/// The protocol id the handshake of `connection` settled on ([`ALPN`] or an app's; rustls
/// refuses a QUIC handshake without one, so `None` only for a connection still in it).
pub fn negotiated_alpn(connection: &quinn::Connection) -> Option<Vec<u8>> {
    connection
        .handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// Why a set of application protocols cannot be served (see [`super::TransportError::Alpn`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlpnError {
    /// The protocol claims INAC's own id.
    #[error("application protocol {0:?} is the inac alpn, which is reserved")]
    Reserved(String),
    /// Two protocols share an id.
    #[error("application protocol {0:?} is given twice")]
    Duplicate(String),
    /// TLS allows protocol ids of 1 to 255 bytes.
    #[error("application protocol id {0:?} must be 1 to 255 bytes")]
    Length(String),
}

/// Checks `apps` against each other and INAC, returning every ALPN the listener offers (INAC
/// first).
pub(super) fn offered_alpns(apps: &[AppProtocol]) -> Result<Vec<Vec<u8>>, AlpnError> {
    let mut offered = vec![ALPN.to_vec()];
    for app in apps {
        let name = || String::from_utf8_lossy(&app.alpn).into_owned();
        check_length(&app.alpn)?;
        if *app.alpn == *ALPN {
            return Err(AlpnError::Reserved(name()));
        }
        if offered.iter().any(|alpn| **alpn == *app.alpn) {
            return Err(AlpnError::Duplicate(name()));
        }
        offered.push(app.alpn.to_vec());
    }
    Ok(offered)
}

/// TLS protocol ids are 1 to 255 bytes (RFC 7301 §3.1).
pub(super) fn check_length(alpn: &[u8]) -> Result<(), AlpnError> {
    if alpn.is_empty() || alpn.len() > 255 {
        return Err(AlpnError::Length(
            String::from_utf8_lossy(alpn).into_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(alpn: &[u8]) -> AppProtocol {
        AppProtocol::new(alpn, |_| async {})
    }

    #[test]
    fn alpns_are_checked_and_listed_inac_first() {
        assert_eq!(
            offered_alpns(&[app(b"a/1"), app(b"b/1")]).unwrap(),
            [ALPN.to_vec(), b"a/1".to_vec(), b"b/1".to_vec()]
        );
        assert_eq!(offered_alpns(&[]).unwrap(), [ALPN.to_vec()]);
        assert_eq!(
            offered_alpns(&[app(b"a/1"), app(ALPN)]),
            Err(AlpnError::Reserved("orbiplex-inac/1".into()))
        );
        assert_eq!(
            offered_alpns(&[app(b"a/1"), app(b"b/1"), app(b"a/1")]),
            Err(AlpnError::Duplicate("a/1".into()))
        );
        assert_eq!(
            offered_alpns(&[app(b"")]),
            Err(AlpnError::Length(String::new()))
        );
        assert!(matches!(
            offered_alpns(&[app(&[b'x'; 256])]),
            Err(AlpnError::Length(_))
        ));
        assert!(offered_alpns(&[app(&[b'x'; 255])]).is_ok());
    }
}
