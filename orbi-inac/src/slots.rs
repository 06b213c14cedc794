//! [`Slots`]: how many of something each holder (a peer node, an address) has at once (stream
//! bodies in the receiver, connections in the QUIC server), with a claim that gives its slot
//! back when dropped, so no path can forget to.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
};

use orbi_types::{NodeId, inac::RefusalCode};

use crate::Refusal;

/// Counts of claimed slots per holder.
#[derive(Debug)]
pub struct Slots<K: Eq + Hash>(Arc<Mutex<HashMap<K, usize>>>);

impl<K: Eq + Hash> Clone for Slots<K> {
    fn clone(&self) -> Self {
        Slots(self.0.clone())
    }
}

impl<K: Eq + Hash> Default for Slots<K> {
    fn default() -> Self {
        Slots(Arc::default())
    }
}

/// Slots per peer node.
pub type PeerSlots = Slots<NodeId>;

/// A claimed slot of a peer node.
pub type PeerSlot = Slot<NodeId>;

impl<K: Eq + Hash + Clone> Slots<K> {
    /// A slot for one more from `holder`, unless `limit` are already claimed.
    pub fn claim(&self, holder: &K, limit: usize) -> Option<Slot<K>> {
        let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = table.entry(holder.clone()).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                table.remove(holder);
            }
            return None;
        }
        *count += 1;
        Some(Slot {
            holder: holder.clone(),
            slots: self.clone(),
        })
    }

    /// How many slots `holder` holds.
    pub fn count(&self, holder: &K) -> usize {
        let table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        table.get(holder).copied().unwrap_or(0)
    }
}

impl PeerSlots {
    /// [`PeerSlots::claim`], or the refusal a peer gets at the limit: `rate-limited` with
    /// `retry/after-ms` and the message "LIMIT `busy`" while `limit` are in progress, or
    /// `policy-denied` with the message `none` and no retry invited when the limit is 0 (this
    /// node does none of it at all).
    pub fn claim_or_refuse(
        &self,
        peer: &NodeId,
        limit: usize,
        (none, busy): (&str, &str),
        retry_after_ms: u64,
    ) -> Result<PeerSlot, Refusal> {
        self.claim(peer, limit).ok_or_else(|| match limit {
            0 => Refusal::new(RefusalCode::PolicyDenied, none),
            _ => Refusal::new(RefusalCode::RateLimited, format!("{limit} {busy}"))
                .retry_after_ms(retry_after_ms),
        })
    }
}

/// One claimed slot; given back when dropped.
#[derive(Debug)]
pub struct Slot<K: Eq + Hash> {
    holder: K,
    slots: Slots<K>,
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut table = self.slots.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = table.get_mut(&self.holder) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                table.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use orbi_types::KeyPair;

    use super::*;

    #[test]
    fn claims_stop_at_the_limit_and_come_back_when_dropped() {
        let slots = PeerSlots::default();
        let (a, b) = (
            KeyPair::from_seed(&[1; 32]).node_id(),
            KeyPair::from_seed(&[2; 32]).node_id(),
        );
        let first = slots.claim(&a, 2).unwrap();
        let second = slots.claim(&a, 2).unwrap();
        assert!(slots.claim(&a, 2).is_none(), "a is at its limit");
        assert!(slots.claim(&b, 2).is_some(), "b is not");
        assert!(slots.claim(&b, 0).is_none(), "a zero limit admits nobody");
        assert_eq!(slots.count(&a), 2);
        drop(first);
        assert_eq!(slots.count(&a), 1);
        drop(second);
        assert_eq!(slots.count(&a), 0);
        assert!(
            slots.0.lock().unwrap().is_empty(),
            "no entry is left behind"
        );
    }
}
