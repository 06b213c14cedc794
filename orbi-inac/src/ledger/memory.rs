//! [`MemoryLedger`]: the [`Ledger`] contract in memory, for deterministic tests.

use std::collections::{BTreeMap, BTreeSet};

use orbi_types::{NodeId, Sha256Digest};

use super::{
    ArtifactQuery, HeldArtifact, IdempotencyRecord, InvitationRecord, Ledger, LedgerEntry,
    LedgerError, OfferRecord, OfferState, TransferRecord,
};
use crate::Descriptor;

/// An in-memory ledger.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    transfers: Vec<TransferRecord>,
    idempotency: BTreeMap<(NodeId, String), IdempotencyRecord>,
    held: Vec<HeldArtifact>,
    /// `(schema, digest)` → position in `held`.
    held_index: BTreeMap<(String, Sha256Digest), usize>,
    offers: Vec<OfferRecord>,
    invitations: BTreeMap<String, InvitationRecord>,
    revoked: BTreeSet<String>,
    custody: BTreeSet<(String, String, Sha256Digest)>,
    /// Tests: what [`Ledger::defer_sync`] hands out.
    #[cfg(test)]
    pub(crate) deferred: Option<super::SyncHandle>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn offer_mut(&mut self, id: u64) -> Result<&mut OfferRecord, LedgerError> {
        self.offers
            .iter_mut()
            .find(|offer| offer.id == id)
            .ok_or(LedgerError::UnknownOffer(id))
    }
}

impl Ledger for MemoryLedger {
    #[cfg(test)]
    fn defer_sync(&mut self) -> Result<Option<super::SyncHandle>, LedgerError> {
        Ok(self.deferred.clone())
    }

    fn record(&mut self, entry: &LedgerEntry) -> Result<(), LedgerError> {
        if let Some(transfer) = &entry.transfer {
            self.transfers.push(transfer.clone());
            if let Some((key, record)) = &entry.idempotency {
                self.idempotency
                    .insert((transfer.peer.clone(), key.clone()), record.clone());
            }
        }
        if let Some(admitted) = &entry.admitted {
            let d = &admitted.descriptor;
            let key = (d.schema.clone(), d.digest.clone());
            if !self.held_index.contains_key(&key) {
                self.held_index.insert(key, self.held.len());
                self.held.push(admitted.clone());
            }
        }
        if let Some((passport_id, consumption)) = &entry.consumed_invitation
            && let Some(invitation) = self.invitations.get_mut(passport_id)
            && invitation.consumed.is_none()
        {
            invitation.consumed = Some(consumption.clone());
        }
        if let Some(usage) = &entry.custody_use {
            self.custody.insert(usage.clone());
        }
        Ok(())
    }

    fn idempotency(
        &self,
        peer: &NodeId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, LedgerError> {
        Ok(self
            .idempotency
            .get(&(peer.clone(), key.to_owned()))
            .cloned())
    }

    fn held(
        &self,
        schema: &str,
        digest: &Sha256Digest,
    ) -> Result<Option<HeldArtifact>, LedgerError> {
        let key = (schema.to_owned(), digest.clone());
        Ok(self.held_index.get(&key).map(|&at| self.held[at].clone()))
    }

    fn find_held(&self, query: &ArtifactQuery<'_>) -> Result<Option<HeldArtifact>, LedgerError> {
        Ok(self
            .held
            .iter()
            .rev()
            .find(|held| query.matches(held))
            .cloned())
    }

    fn held_artifacts(&self) -> Result<Vec<HeldArtifact>, LedgerError> {
        Ok(self.held.clone())
    }

    fn recent_transfers(&self, limit: usize) -> Result<Vec<TransferRecord>, LedgerError> {
        Ok(self.transfers.iter().rev().take(limit).cloned().collect())
    }

    fn insert_offer(
        &mut self,
        peer: &NodeId,
        descriptor: &Descriptor,
        correlation_id: Option<&str>,
        at_ms: u64,
    ) -> Result<u64, LedgerError> {
        let id = self.offers.last().map_or(1, |last| last.id + 1);
        self.offers.push(OfferRecord {
            id,
            peer: peer.clone(),
            descriptor: descriptor.clone(),
            correlation_id: correlation_id.map(str::to_owned),
            created_at_ms: at_ms,
            state: OfferState::Pending,
            decided_at_ms: None,
            invitation_id: None,
        });
        Ok(id)
    }

    fn latest_offer(
        &self,
        peer: &NodeId,
        descriptor: &Descriptor,
    ) -> Result<Option<OfferRecord>, LedgerError> {
        Ok(self
            .offers
            .iter()
            .rev()
            .find(|offer| offer.peer == *peer && offer.descriptor == *descriptor)
            .cloned())
    }

    fn pending_offer_count(&self, peer: Option<&NodeId>) -> Result<u64, LedgerError> {
        Ok(self
            .offers
            .iter()
            .filter(|offer| peer.is_none_or(|peer| offer.peer == *peer))
            .filter(|offer| offer.state == OfferState::Pending)
            .count() as u64)
    }

    fn offer(&self, id: u64) -> Result<Option<OfferRecord>, LedgerError> {
        Ok(self.offers.iter().find(|offer| offer.id == id).cloned())
    }

    fn offers(&self) -> Result<Vec<OfferRecord>, LedgerError> {
        Ok(self.offers.clone())
    }

    fn decide_offer(
        &mut self,
        id: u64,
        accept: bool,
        at_ms: u64,
    ) -> Result<OfferRecord, LedgerError> {
        let wanted = OfferState::decided(accept);
        let offer = self.offer_mut(id)?;
        match offer.state {
            OfferState::Pending => {
                offer.state = wanted;
                offer.decided_at_ms = Some(at_ms);
            }
            state if state == wanted => {}
            state => return Err(LedgerError::OfferDecided { id, state }),
        }
        Ok(offer.clone())
    }

    fn insert_invitation(&mut self, invitation: &InvitationRecord) -> Result<(), LedgerError> {
        self.offer_mut(invitation.offer_id)?.invitation_id = Some(invitation.passport_id.clone());
        self.invitations
            .insert(invitation.passport_id.clone(), invitation.clone());
        Ok(())
    }

    fn invitation(&self, passport_id: &str) -> Result<Option<InvitationRecord>, LedgerError> {
        Ok(self.invitations.get(passport_id).cloned())
    }

    fn revoke(&mut self, passport_id: &str, _at_ms: u64) -> Result<(), LedgerError> {
        self.revoked.insert(passport_id.to_owned());
        Ok(())
    }

    fn is_revoked(&self, passport_id: &str) -> Result<bool, LedgerError> {
        Ok(self.revoked.contains(passport_id))
    }

    fn custody_usage(
        &self,
        passport_id: &str,
        schema: &str,
        digest: &Sha256Digest,
    ) -> Result<(u64, bool), LedgerError> {
        let mut count = 0;
        let mut holds = false;
        for (id, held_schema, held_digest) in &self.custody {
            if id == passport_id {
                count += 1;
                holds |= held_schema == schema && held_digest == digest;
            }
        }
        Ok((count, holds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_ledger_contract() {
        super::super::tests::ledger_contract(&mut MemoryLedger::new());
    }
}
