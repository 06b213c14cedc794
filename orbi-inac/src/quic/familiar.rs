//! The addresses the peers a listener knows have connected from: handshakes from them do not
//! compete with strangers' handshakes for places
//! ([`super::TransportConfig::max_unfamiliar_handshakes`]). A listener remembers the latest
//! [`super::config::FAMILIAR_ADDRESSES`].
//!
//! Only a known peer's finished handshake makes an address familiar, and the QUIC Retry has
//! proven that the dialer receives at it, so a stranger cannot make its own addresses familiar
//! or evict a known peer's, whatever it sends.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Mutex, PoisonError},
};

/// Address blocks (see `address_block` in the server) known peers connected from, most
/// recently seen kept.
#[derive(Debug)]
pub(crate) struct FamiliarAddresses {
    capacity: usize,
    inner: Mutex<Recency>,
}

/// A bounded recency list: `seen` holds each block's latest tick, `order` every tick in the
/// order given (entries for blocks seen again later are stale and skipped).
#[derive(Debug, Default)]
struct Recency {
    seen: HashMap<IpAddr, u64>,
    order: VecDeque<(IpAddr, u64)>,
    tick: u64,
}

impl FamiliarAddresses {
    /// An empty set that keeps at most `capacity` blocks.
    pub(crate) fn new(capacity: usize) -> Self {
        FamiliarAddresses {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// Whether a known peer has connected from `block` (and it is not forgotten yet).
    pub(crate) fn contains(&self, block: &IpAddr) -> bool {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.seen.contains_key(block)
    }

    /// Records that a known peer has just connected from `block`.
    pub(crate) fn remember(&self, block: IpAddr) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        inner.seen.insert(block, tick);
        inner.order.push_back((block, tick));
        while inner.seen.len() > self.capacity {
            let Some((oldest, at)) = inner.order.pop_front() else {
                break;
            };
            if inner.seen.get(&oldest) == Some(&at) {
                inner.seen.remove(&oldest);
            }
        }
        // Blocks seen again leave stale entries behind; drop them before they outnumber the
        // live ones, so the list stays within twice the capacity.
        if inner.order.len() > 2 * self.capacity {
            let Recency { seen, order, .. } = &mut *inner;
            order.retain(|(block, at)| seen.get(block) == Some(at));
        }
    }

    /// How many entries the recency list holds, stale ones included (for tests).
    #[cfg(test)]
    fn entries(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn remembers_blocks_and_forgets_the_one_seen_longest_ago() {
        let familiar = FamiliarAddresses::new(2);
        assert!(!familiar.contains(&ip(1)), "nothing is familiar at first");
        familiar.remember(ip(1));
        familiar.remember(ip(2));
        // Seeing 1 again makes 2 the one seen longest ago.
        familiar.remember(ip(1));
        familiar.remember(ip(3));
        assert!(familiar.contains(&ip(1)));
        assert!(!familiar.contains(&ip(2)), "the oldest is forgotten");
        assert!(familiar.contains(&ip(3)));
    }

    #[test]
    fn the_recency_list_stays_bounded_when_the_same_blocks_come_back() {
        let familiar = FamiliarAddresses::new(3);
        for round in 0..1000u32 {
            familiar.remember(ip((round % 3) as u8));
        }
        assert!(familiar.entries() <= 6, "{} entries", familiar.entries());
        assert!((0..3).all(|n| familiar.contains(&ip(n))));
    }

    #[test]
    fn a_capacity_of_zero_remembers_nothing() {
        let familiar = FamiliarAddresses::new(0);
        familiar.remember(ip(1));
        assert!(!familiar.contains(&ip(1)));
    }
}
