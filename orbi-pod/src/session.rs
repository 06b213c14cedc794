//! The live node-to-node sessions the host tells the engine about.
//!
//! Sessions live in memory only: after a restart every session is dead, which is exactly what
//! the lifecycle needs (a replayed attachment of a dead session fails V6a).

use std::collections::BTreeMap;

use orbi_types::NodeId;
use time::OffsetDateTime;

/// What the host knows about one live session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// When the session was established, if known. Binds used for attachments and recoveries
    /// must not predate it by more than the clock skew (V8).
    pub established_at: Option<OffsetDateTime>,
    /// The peer node on the other end, if known (reported as `peer` in traces).
    pub peer: Option<NodeId>,
}

/// Live sessions by id.
#[derive(Clone, Debug, Default)]
pub struct SessionTable {
    live: BTreeMap<String, Session>,
}

impl SessionTable {
    /// Marks `id` live (or updates what is known about it).
    pub fn open(&mut self, id: impl Into<String>, session: Session) {
        self.live.insert(id.into(), session);
    }

    /// Forgets `id`; returns whether it was live.
    pub fn close(&mut self, id: &str) -> bool {
        self.live.remove(id).is_some()
    }

    /// The live session `id`.
    pub fn get(&self, id: &str) -> Option<&Session> {
        self.live.get(id)
    }

    /// Whether `id` is live.
    pub fn is_live(&self, id: &str) -> bool {
        self.live.contains_key(id)
    }

    /// The ids of every live session.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.live.keys().map(String::as_str)
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}
