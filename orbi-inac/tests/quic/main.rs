//! INAC over real QUIC on loopback, with real files and real SQLite: identity and session,
//! exchanges, stream bodies, concurrency, limits and shutdown.

mod apps;
mod common;
mod exchanges;
mod hostile;
mod identity;
mod lifecycle;
mod streams;
