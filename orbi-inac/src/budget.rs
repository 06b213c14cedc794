//! Inbound budgets (`inac_peer_transport.inbound_budgets`, spec §6): per peer, operation,
//! schema and media type, a size ceiling and a per-minute rate. They run after the peer gate and
//! before anything is stored or any notification is created.

use std::collections::{HashMap, VecDeque};

use orbi_types::{NodeId, inac::Operation, inac::RefusalCode};

use crate::Refusal;

const WINDOW_MS: u64 = 60_000;
const SWEEP_EVERY: u64 = 1024;

/// One budget rule. Each list limits which frames the rule applies to; an **empty list matches
/// everything**. A rule with `max_per_minute: Some(0)` is an explicit deny (`policy-denied`).
/// Rates count per remote node, never per participant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BudgetRule {
    /// Remote nodes the rule applies to.
    pub remote_node_ids: Vec<NodeId>,
    /// Operations the rule applies to.
    pub operations: Vec<Operation>,
    /// Artifact schemas the rule applies to.
    pub artifact_schemas: Vec<String>,
    /// Media types the rule applies to.
    pub content_types: Vec<String>,
    /// Largest `size/bytes` allowed (`payload-too-large` above).
    pub max_size_bytes: Option<u64>,
    /// Most matching frames per peer per sliding minute (`rate-limited` above; 0 denies).
    pub max_per_minute: Option<u32>,
}

/// What a frame asks of the budgets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BudgetSubject<'a> {
    pub peer: &'a NodeId,
    pub operation: Operation,
    pub schema: &'a str,
    pub content_type: &'a str,
    pub size_bytes: Option<u64>,
}

impl BudgetRule {
    fn matches(&self, subject: &BudgetSubject<'_>) -> bool {
        fn any<T: PartialEq<U>, U: ?Sized>(list: &[T], value: &U) -> bool {
            list.is_empty() || list.iter().any(|item| item == value)
        }
        any(&self.remote_node_ids, subject.peer)
            && any(&self.operations, &subject.operation)
            && any(&self.artifact_schemas, subject.schema)
            && any(&self.content_types, subject.content_type)
    }
}

/// The rules and their sliding windows (ephemeral: a restart forgets the counts).
#[derive(Debug, Default)]
pub(crate) struct Budgets {
    rules: Vec<BudgetRule>,
    windows: HashMap<(usize, NodeId), VecDeque<u64>>,
    checks: u64,
}

impl Budgets {
    pub fn new(rules: Vec<BudgetRule>) -> Self {
        Budgets {
            rules,
            ..Budgets::default()
        }
    }

    /// Checks `subject` against every matching rule and, when it passes, counts it.
    pub fn check(&mut self, subject: BudgetSubject<'_>, now_ms: u64) -> Result<(), Refusal> {
        self.checks += 1;
        if self.checks.is_multiple_of(SWEEP_EVERY) {
            self.sweep(now_ms);
        }
        let matching: Vec<usize> = (0..self.rules.len())
            .filter(|&index| self.rules[index].matches(&subject))
            .collect();
        if let Some(&index) = matching
            .iter()
            .find(|&&index| self.rules[index].max_per_minute == Some(0))
        {
            return Err(Refusal::new(
                RefusalCode::PolicyDenied,
                format!(
                    "inbound budget rule {index} denies {} from this peer",
                    subject.operation
                ),
            ));
        }
        if let Some(size) = subject.size_bytes {
            for &index in &matching {
                if let Some(max) = self.rules[index].max_size_bytes.filter(|max| size > *max) {
                    return Err(Refusal::new(
                        RefusalCode::PayloadTooLarge,
                        format!("size {size} exceeds budget rule {index} limit of {max} bytes"),
                    ));
                }
            }
        }
        let mut wait_ms = 0;
        for &index in &matching {
            let Some(limit) = self.rules[index].max_per_minute else {
                continue;
            };
            let window = self.window(index, subject.peer, now_ms);
            if window.len() >= limit as usize {
                let oldest = window.front().copied().unwrap_or(now_ms);
                wait_ms = wait_ms.max((oldest + WINDOW_MS).saturating_sub(now_ms).max(1));
            }
        }
        if wait_ms > 0 {
            return Err(Refusal::new(
                RefusalCode::RateLimited,
                format!("per-minute budget for {} exhausted", subject.operation),
            )
            .retry_after_ms(wait_ms));
        }
        for &index in &matching {
            if self.rules[index].max_per_minute.is_some() {
                self.window(index, subject.peer, now_ms).push_back(now_ms);
            }
        }
        Ok(())
    }

    fn window(&mut self, index: usize, peer: &NodeId, now_ms: u64) -> &mut VecDeque<u64> {
        let window = self.windows.entry((index, peer.clone())).or_default();
        while window.front().is_some_and(|&at| at + WINDOW_MS <= now_ms) {
            window.pop_front();
        }
        window
    }

    /// Drops windows with no event in the last minute, so idle peers cost no memory.
    fn sweep(&mut self, now_ms: u64) {
        self.windows
            .retain(|_, window| window.back().is_some_and(|&at| at + WINDOW_MS > now_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbi_types::KeyPair;

    fn subject(peer: &NodeId) -> BudgetSubject<'_> {
        BudgetSubject {
            peer,
            operation: Operation::Push,
            schema: "vendor.x.v1",
            content_type: "text/plain",
            size_bytes: Some(5),
        }
    }

    #[test]
    fn window_slides_and_reports_the_wait() {
        let peer = KeyPair::from_seed(&[1; 32]).node_id();
        let mut budgets = Budgets::new(vec![BudgetRule {
            max_per_minute: Some(2),
            ..BudgetRule::default()
        }]);
        budgets.check(subject(&peer), 1_000).unwrap();
        budgets.check(subject(&peer), 21_000).unwrap();
        let refusal = budgets.check(subject(&peer), 31_000).unwrap_err();
        assert_eq!(refusal.code(), RefusalCode::RateLimited);
        assert_eq!(refusal.retry_after(), Some(30_000));
        // The first event leaves the window at 61 000 ms.
        budgets.check(subject(&peer), 61_000).unwrap();
        // Other peers have their own windows.
        let other = KeyPair::from_seed(&[2; 32]).node_id();
        budgets.check(subject(&other), 61_000).unwrap();
    }

    #[test]
    fn sweep_forgets_idle_peers() {
        let mut budgets = Budgets::new(vec![BudgetRule {
            max_per_minute: Some(5),
            ..BudgetRule::default()
        }]);
        for seed in 0..=255u8 {
            let peer = KeyPair::from_seed(&[seed; 32]).node_id();
            budgets.check(subject(&peer), 0).unwrap();
        }
        assert_eq!(budgets.windows.len(), 256);
        budgets.sweep(WINDOW_MS);
        assert!(budgets.windows.is_empty());
    }

    #[test]
    fn lists_narrow_the_rule() {
        let peer = KeyPair::from_seed(&[1; 32]).node_id();
        let mut budgets = Budgets::new(vec![BudgetRule {
            operations: vec![Operation::Offer],
            max_per_minute: Some(0),
            ..BudgetRule::default()
        }]);
        budgets.check(subject(&peer), 0).unwrap();
        let offer = BudgetSubject {
            operation: Operation::Offer,
            ..subject(&peer)
        };
        assert_eq!(
            budgets.check(offer, 0).unwrap_err().code(),
            RefusalCode::PolicyDenied
        );
    }
}
