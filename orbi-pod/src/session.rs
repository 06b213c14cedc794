//! The live node-to-node sessions the host tells the engine about.
//!
//! Sessions live in memory only: after a restart every session is dead, which is exactly what
//! the lifecycle needs (a replayed attachment of a dead session fails V6a).

use std::collections::BTreeMap;

use orbi_types::NodeId;
use time::{Duration, OffsetDateTime};

/// What the host knows about one live session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// When the session was established, if known. Binds used for attachments and recoveries
    /// must not predate it by more than the clock skew (V8).
    pub established_at: Option<OffsetDateTime>,
    /// The peer node on the other end, if known (reported as `peer` in traces).
    pub peer: Option<NodeId>,
}

/// Whose share of the read model a session's attachments count against: its peer node, or
/// the session alone when the host did not say which node it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Holder {
    Peer(NodeId),
    Session(String),
}

impl Holder {
    fn of(id: &str, session: &Session) -> Holder {
        match &session.peer {
            Some(peer) => Holder::Peer(peer.clone()),
            None => Holder::Session(id.to_owned()),
        }
    }
}

/// Live sessions by id.
///
/// It also keeps, per session and per holder (its peer node, or the session alone when the
/// host did not name one), an upper bound of the live attachments bound to it: counted up on
/// every admitted attachment and set exactly when the engine recounts from the read model
/// (detachments are not counted down, so a recount is needed only when the bound reaches a
/// limit). A peer's session that closes with attachments still counts for the peer (they
/// wait, degraded or suspended, for their client to come back) until a recount finds none
/// left on it.
///
/// The counts live in this process only: after a restart they start from zero (the sessions
/// of before are gone, and their attachments are not counted for anyone until they end), and
/// attachments another process commits to a shared read model are not counted.
#[derive(Clone, Debug, Default)]
pub struct SessionTable {
    live: BTreeMap<String, Session>,
    counts: Counts,
}

/// The count fields of a [`SessionTable`], which a failed group commit puts back.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    /// Closed sessions of a peer node that may still have live attachments.
    lost: BTreeMap<String, Holder>,
    attached: BTreeMap<String, usize>,
    held: BTreeMap<Holder, usize>,
    /// Holders a recount found at their limit, and when.
    refused: BTreeMap<Holder, OffsetDateTime>,
}

impl SessionTable {
    /// Marks `id` live (or updates what is known about it).
    pub fn open(&mut self, id: impl Into<String>, session: Session) {
        let id = id.into();
        // A session that is told again keeps its count, under its (possibly new) holder.
        let carried = self.forget_attached(&id);
        self.counts.lost.remove(&id);
        let holder = Holder::of(&id, &session);
        self.live.insert(id.clone(), session);
        if carried > 0 {
            self.counts.attached.insert(id, carried);
            *self.counts.held.entry(holder).or_insert(0) += carried;
        }
    }

    /// Forgets `id`; returns whether it was live.
    pub fn close(&mut self, id: &str) -> bool {
        let Some(session) = self.live.remove(id) else {
            return false;
        };
        match Holder::of(id, &session) {
            Holder::Peer(peer) if self.counts.attached.contains_key(id) => {
                self.counts.lost.insert(id.to_owned(), Holder::Peer(peer));
            }
            holder => {
                // Nobody else shares a session's own share.
                if let Some(count) = self.counts.attached.remove(id) {
                    self.release(&holder, count);
                }
                if matches!(holder, Holder::Session(_)) {
                    self.counts.refused.remove(&holder);
                }
            }
        }
        true
    }

    /// Whose share session `id` (live or lost) counts against.
    fn holder(&self, id: &str) -> Option<Holder> {
        match self.live.get(id) {
            Some(session) => Some(Holder::of(id, session)),
            None => self.counts.lost.get(id).cloned(),
        }
    }

    fn release(&mut self, holder: &Holder, count: usize) {
        if let Some(held) = self.counts.held.get_mut(holder) {
            *held = held.saturating_sub(count);
            if *held == 0 {
                self.counts.held.remove(holder);
            }
        }
    }

    /// Removes `id`'s count from its holder's; returns it.
    fn forget_attached(&mut self, id: &str) -> usize {
        let Some(holder) = self.holder(id) else {
            return 0;
        };
        let Some(count) = self.counts.attached.remove(id) else {
            return 0;
        };
        self.release(&holder, count);
        count
    }

    /// At least the live attachments that the holder of the live session `id` (its peer
    /// node, or the session itself) holds over its live and lost sessions.
    pub(crate) fn held_at_most(&self, id: &str) -> usize {
        self.live
            .get(id)
            .and_then(|session| self.counts.held.get(&Holder::of(id, session)))
            .copied()
            .unwrap_or(0)
    }

    /// The sessions, live and lost, that count against the holder of session `id`.
    pub(crate) fn same_holder(&self, id: &str) -> Vec<String> {
        let Some(holder) = self.holder(id) else {
            return Vec::new();
        };
        let live = self
            .live
            .iter()
            .filter(|(other, session)| Holder::of(other, session) == holder)
            .map(|(other, _)| other.clone());
        let lost = self
            .counts
            .lost
            .iter()
            .filter(|(_, of)| **of == holder)
            .map(|(other, _)| other.clone());
        live.chain(lost).collect()
    }

    /// The closed sessions still counted for their peer.
    pub(crate) fn lost(&self) -> Vec<String> {
        self.counts.lost.keys().cloned().collect()
    }

    /// How many closed sessions still count for their peer node: they had live attachments
    /// (degraded or suspended, waiting for their clients) when last counted.
    pub fn lost_counted(&self) -> usize {
        self.counts.lost.len()
    }

    /// Whether sessions `a` and `b` (live or lost) count against the same holder.
    pub(crate) fn same_holder_as(&self, a: &str, b: &str) -> bool {
        match (self.holder(a), self.holder(b)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// Whether the holder of session `id` may be recounted at `now`: no recount has found it
    /// at its limit within `backoff` before (a clock that stepped back does not extend that).
    pub(crate) fn may_recount(&mut self, id: &str, now: OffsetDateTime, backoff: Duration) -> bool {
        let Some(holder) = self.holder(id) else {
            return true;
        };
        match self.counts.refused.get(&holder) {
            Some(at) if *at <= now && now < at.saturating_add(backoff) => false,
            Some(_) => {
                self.counts.refused.remove(&holder);
                true
            }
            None => true,
        }
    }

    /// A recount found the holder of session `id` at its limit at `now`.
    pub(crate) fn refused_after_recount(&mut self, id: &str, now: OffsetDateTime) {
        if let Some(holder) = self.holder(id) {
            self.counts.refused.insert(holder, now);
        }
    }

    /// An attachment bound to session `id` ended: its holder may be recounted at once.
    pub(crate) fn freed(&mut self, id: &str) {
        if let Some(holder) = self.holder(id) {
            self.counts.refused.remove(&holder);
        }
    }

    /// Forgets refusals older than `backoff` (or from a clock that has since stepped back).
    pub(crate) fn prune_refused(&mut self, now: OffsetDateTime, backoff: Duration) {
        self.counts
            .refused
            .retain(|_, at| *at <= now && now < at.saturating_add(backoff));
    }

    /// Whether session `old` has counted attachments for the holder of session `id`.
    pub(crate) fn counted_for_holder_of(&self, id: &str, old: &str) -> bool {
        self.same_holder_as(id, old) && self.counts.attached.get(old).is_some_and(|n| *n > 0)
    }

    /// One counted attachment of session `old` was replaced by one on the live session `id`
    /// of the same holder: the holder's count stays.
    pub(crate) fn move_attached(&mut self, old: &str, id: &str) {
        if !self.counted_for_holder_of(id, old) {
            return self.count_attached(id);
        }
        if let Some(count) = self.counts.attached.get_mut(old) {
            *count -= 1;
            if *count == 0 {
                self.counts.attached.remove(old);
                self.counts.lost.remove(old);
            }
        }
        match self.counts.attached.get_mut(id) {
            Some(count) => *count += 1,
            None => {
                self.counts.attached.insert(id.to_owned(), 1);
            }
        }
    }

    /// The count fields, to put back with [`SessionTable::restore_counts`].
    pub(crate) fn counts(&self) -> Counts {
        self.counts.clone()
    }

    /// Puts back counts taken with [`SessionTable::counts`].
    pub(crate) fn restore_counts(&mut self, counts: Counts) {
        self.counts = counts;
    }

    /// One more live attachment on the live session `id`.
    pub(crate) fn count_attached(&mut self, id: &str) {
        let Some(session) = self.live.get(id) else {
            return;
        };
        // Admissions are hot: insert owned session ids only when new.
        let holder = Holder::of(id, session);
        match self.counts.held.get_mut(&holder) {
            Some(held) => *held += 1,
            None => {
                self.counts.held.insert(holder, 1);
            }
        }
        match self.counts.attached.get_mut(id) {
            Some(count) => *count += 1,
            None => {
                self.counts.attached.insert(id.to_owned(), 1);
            }
        }
    }

    /// Session `id` (live or lost) has exactly `count` live attachments, recounted from the
    /// read model. A lost session with none is forgotten.
    pub(crate) fn set_attached(&mut self, id: &str, count: usize) {
        let Some(holder) = self.holder(id) else {
            return;
        };
        self.forget_attached(id);
        if count > 0 {
            *self.counts.held.entry(holder).or_insert(0) += count;
            self.counts.attached.insert(id.to_owned(), count);
        } else {
            self.counts.lost.remove(id);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn of(seed: u8) -> Session {
        Session {
            peer: Some(orbi_types::KeyPair::from_seed(&[seed; 32]).node_id()),
            ..Session::default()
        }
    }

    #[test]
    fn counts_add_up_per_peer_node_and_follow_lost_sessions_until_recounted() {
        let mut table = SessionTable::default();
        table.open("a", of(1));
        table.open("b", of(1));
        table.open("c", of(2));
        for id in ["a", "a", "b", "c"] {
            table.count_attached(id);
        }
        assert_eq!((table.held_at_most("a"), table.held_at_most("c")), (3, 1));
        assert_eq!(table.same_holder("b"), ["a", "b"]);
        // Told again about a session: its count stays.
        table.open("a", of(1));
        assert_eq!(table.held_at_most("b"), 3);
        // A closed session with attachments still counts for its node ...
        assert!(table.close("a"));
        assert_eq!(table.held_at_most("b"), 3);
        assert_eq!(table.same_holder("b"), ["b", "a"]);
        assert_eq!(table.lost(), ["a"]);
        // ... until a recount finds none on it.
        table.set_attached("a", 0);
        assert_eq!(table.held_at_most("b"), 1);
        assert!(table.lost().is_empty());
        // A session whose peer nobody named is its own holder and is forgotten on close.
        table.open("d", Session::default());
        table.count_attached("d");
        assert_eq!(table.held_at_most("d"), 1);
        assert!(table.close("d"));
        assert!(table.lost().is_empty());
        assert!(
            table
                .counts
                .held
                .keys()
                .all(|holder| matches!(holder, Holder::Peer(_)))
        );
        // A recount sets the exact figure either way.
        table.set_attached("b", 7);
        assert_eq!(table.held_at_most("b"), 7);
    }
}
