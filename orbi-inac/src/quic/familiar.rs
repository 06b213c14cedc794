//! The addresses the peers a listener knows have connected from: handshakes from them do not
//! compete with strangers' handshakes for places
//! ([`super::TransportConfig::max_unfamiliar_handshakes`]).
//!
//! Only a known peer's finished handshake makes an address familiar, and the QUIC Retry has
//! proven that the dialer receives at it, so a stranger cannot make its own addresses
//! familiar. Each known peer keeps its latest [`super::config::FAMILIAR_ADDRESSES_PER_PEER`]
//! addresses and moving on forgets only its own oldest, so not even a known peer can push
//! another's addresses out; the known peers are the listener's configured lists, so the whole
//! set is bounded by its configuration.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Mutex, PoisonError},
};

use orbi_types::NodeId;

/// Address blocks (see `address_block` in the server) known peers connected from.
#[derive(Debug)]
pub(crate) struct FamiliarAddresses {
    per_peer: usize,
    inner: Mutex<Familiar>,
}

#[derive(Debug, Default)]
struct Familiar {
    /// Each peer's latest blocks, oldest first.
    by_peer: HashMap<NodeId, VecDeque<IpAddr>>,
    /// How many peers list each block.
    blocks: HashMap<IpAddr, usize>,
}

impl FamiliarAddresses {
    /// An empty set that keeps the latest `per_peer` blocks of each peer.
    pub(crate) fn new(per_peer: usize) -> Self {
        FamiliarAddresses {
            per_peer,
            inner: Mutex::default(),
        }
    }

    /// Whether a known peer has connected from `block` (and has not moved on since).
    pub(crate) fn contains(&self, block: &IpAddr) -> bool {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.blocks.contains_key(block)
    }

    /// Records that the known peer `peer` has just connected from `block`.
    pub(crate) fn remember(&self, peer: &NodeId, block: IpAddr) {
        if self.per_peer == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Familiar { by_peer, blocks } = &mut *inner;
        let latest = by_peer.entry(peer.clone()).or_default();
        if let Some(at) = latest.iter().position(|seen| *seen == block) {
            // Seen again: it becomes the latest.
            latest.remove(at);
            latest.push_back(block);
            return;
        }
        latest.push_back(block);
        *blocks.entry(block).or_insert(0) += 1;
        while latest.len() > self.per_peer {
            let Some(oldest) = latest.pop_front() else {
                break;
            };
            if let Some(count) = blocks.get_mut(&oldest) {
                *count -= 1;
                if *count == 0 {
                    blocks.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use orbi_types::KeyPair;

    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn node(n: u8) -> NodeId {
        KeyPair::from_seed(&[n; 32]).node_id()
    }

    #[test]
    fn each_peer_keeps_its_latest_blocks() {
        let familiar = FamiliarAddresses::new(2);
        assert!(!familiar.contains(&ip(1)), "nothing is familiar at first");
        familiar.remember(&node(1), ip(1));
        familiar.remember(&node(1), ip(2));
        // Seeing 1 again makes 2 the oldest.
        familiar.remember(&node(1), ip(1));
        familiar.remember(&node(1), ip(3));
        assert!(familiar.contains(&ip(1)));
        assert!(!familiar.contains(&ip(2)), "its oldest is forgotten");
        assert!(familiar.contains(&ip(3)));
    }

    #[test]
    fn a_peer_moving_on_never_forgets_another_peers_blocks() {
        let familiar = FamiliarAddresses::new(2);
        familiar.remember(&node(1), ip(1));
        familiar.remember(&node(2), ip(1));
        familiar.remember(&node(2), ip(2));
        for n in 10..200 {
            familiar.remember(&node(3), ip(n));
        }
        assert!(familiar.contains(&ip(1)) && familiar.contains(&ip(2)));
        // A block two peers share stays while either still lists it.
        familiar.remember(&node(2), ip(3));
        familiar.remember(&node(2), ip(4));
        assert!(familiar.contains(&ip(1)), "peer 1 still lists it");
        assert!(!familiar.contains(&ip(2)));
        let inner = familiar.inner.lock().unwrap();
        assert_eq!(inner.blocks.len(), 5, "2 + 2 + peer 1's one");
        assert!(inner.by_peer.values().all(|latest| latest.len() <= 2));
    }

    #[test]
    fn a_limit_of_zero_remembers_nothing() {
        let familiar = FamiliarAddresses::new(0);
        familiar.remember(&node(1), ip(1));
        assert!(!familiar.contains(&ip(1)));
    }
}
