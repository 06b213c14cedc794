//! `offer` and the invitation flow (spec §3.5): an offer becomes a pending offer for the
//! operator; once accepted, the next matching offer is answered `accept` with an invitation
//! passport this node issues and signs.

use orbi_types::{NodeId, inac::Operation, inac::RefusalCode};

use super::{Exchange, Receiver};
use crate::{
    Descriptor, Frame, Refusal, Verdict,
    budget::BudgetSubject,
    ledger::{InvitationRecord, LedgerEntry, OfferRecord, OfferState},
    passport::{InvitationTerms, issue_invitation},
    verdict::Deferral,
};

impl Receiver {
    pub(super) fn handle_offer(&mut self, peer: &NodeId, frame: &Frame, now_ms: u64) -> Frame {
        let exchange = Exchange::of(peer, frame);
        let verdict = match self.offer_verdict(&exchange, frame, now_ms) {
            Ok(verdict) => verdict,
            Err(refusal) => Verdict::refusing(Operation::Offer, refusal),
        };
        self.conclude(&exchange, verdict, LedgerEntry::default(), now_ms)
    }

    fn offer_verdict(
        &mut self,
        exchange: &Exchange,
        frame: &Frame,
        now_ms: u64,
    ) -> Result<Verdict, Refusal> {
        let peer = &exchange.peer;
        let Some(descriptor) = &exchange.descriptor else {
            return Err(Refusal::new(
                RefusalCode::Malformed,
                "offer without artifact",
            ));
        };
        if !self.config.open_offer_intake && !self.config.allowed_peers.contains(peer) {
            return Err(Refusal::new(
                RefusalCode::NotAuthorized,
                "peer is not allowed to offer here",
            ));
        }
        // An offer may carry its bytes (the schema allows it; ours never do). Bytes that
        // contradict the descriptor are refused here, as a push's would be, rather than
        // become a pending offer the operator would accept for an artifact nobody holds.
        // (Text that does not decode never gets here: the frame itself is malformed.)
        if let Some(Err(refusal)) = frame.verified_inline() {
            return Err(refusal);
        }
        self.budgets.check(
            BudgetSubject {
                peer,
                operation: Operation::Offer,
                schema: &descriptor.schema,
                content_type: &descriptor.content_type,
                size_bytes: Some(descriptor.size_bytes),
            },
            now_ms,
        )?;
        if descriptor.size_bytes > self.config.max_artifact_size_bytes {
            return Err(Refusal::new(
                RefusalCode::PayloadTooLarge,
                format!(
                    "size/bytes {} exceeds this node's limit of {} bytes",
                    descriptor.size_bytes, self.config.max_artifact_size_bytes
                ),
            ));
        }
        self.kind_available(descriptor)?;
        if self.held_already(descriptor)? {
            return Ok(Verdict::AlreadyPresent);
        }
        let latest = self
            .ledger
            .latest_offer(peer, descriptor)
            .map_err(|e| Self::ledger_unavailable(&e))?;
        match latest {
            Some(offer) if offer.state == OfferState::Pending => Ok(self.awaiting_operator()),
            Some(offer) if offer.state == OfferState::Rejected => Err(Refusal::new(
                RefusalCode::PolicyDenied,
                "the operator rejected this offer",
            )),
            Some(offer) => match self.invitation_for(&offer, now_ms)? {
                Some(invitation) => Ok(Verdict::Accept {
                    invitation: Some(invitation.passport),
                }),
                // The invitation lapsed unused: the offer needs a new decision.
                None => self.new_pending(exchange, descriptor, now_ms),
            },
            None => self.new_pending(exchange, descriptor, now_ms),
        }
    }

    fn awaiting_operator(&self) -> Verdict {
        Verdict::Defer(Deferral {
            code: None,
            retry_after_ms: self.config.offer_retry_after_ms,
            message: "the offer awaits the operator's decision".into(),
        })
    }

    fn new_pending(
        &mut self,
        exchange: &Exchange,
        descriptor: &Descriptor,
        now_ms: u64,
    ) -> Result<Verdict, Refusal> {
        let count = |peer| {
            self.ledger
                .pending_offer_count(peer)
                .map_err(|e| Self::ledger_unavailable(&e))
        };
        let from_peer = count(Some(&exchange.peer))?;
        let full = if from_peer >= self.config.pending_offers_per_peer {
            Some(format!(
                "{from_peer} offers from this peer already await the operator"
            ))
        } else {
            let total = count(None)?;
            (total >= self.config.pending_offers_total)
                .then(|| format!("{total} offers already await the operator"))
        };
        if let Some(message) = full {
            return Err(Refusal::new(RefusalCode::QuotaExceeded, message)
                .retry_after_ms(self.config.offer_retry_after_ms));
        }
        let id = self
            .ledger
            .insert_offer(
                &exchange.peer,
                descriptor,
                exchange.correlation_id.as_deref(),
                now_ms,
            )
            .map_err(|e| Self::ledger_unavailable(&e))?;
        tracing::info!(offer = id, peer = %exchange.peer, schema = %descriptor.schema, "new pending offer");
        Ok(self.awaiting_operator())
    }

    /// The live invitation for an accepted offer, issuing it on first need. `None` when the
    /// issued one expired unused or was revoked: the offer goes back to the operator rather
    /// than carry a passport its push would meet as `invitation-revoked`.
    fn invitation_for(
        &mut self,
        offer: &OfferRecord,
        now_ms: u64,
    ) -> Result<Option<InvitationRecord>, Refusal> {
        if let Some(passport_id) = &offer.invitation_id {
            let unavailable = |e: crate::LedgerError| Self::ledger_unavailable(&e);
            // Revoked here or in the revocation view: what a push under it would meet.
            let in_view = self
                .revocations
                .as_ref()
                .is_some_and(|view| view.revoked.contains(passport_id));
            if in_view || self.ledger.is_revoked(passport_id).map_err(unavailable)? {
                return Ok(None);
            }
            let record = self.ledger.invitation(passport_id).map_err(unavailable)?;
            return Ok(record.filter(|r| r.consumed.is_some() || r.expires_at_ms > now_ms));
        }
        let issued_at = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let passport = issue_invitation(
            &self.identity,
            &InvitationTerms {
                peer: offer.peer.clone(),
                descriptor: offer.descriptor.clone(),
                issued_at,
                ttl_seconds: self.config.invitation_ttl_seconds,
                serial: offer.id,
            },
        )
        .map_err(|error| {
            tracing::error!(%error, "cannot issue an invitation");
            Refusal::handler_unavailable("the receiver cannot issue invitations now")
        })?;
        let issued_ms = (now_ms / 1000) * 1000;
        let record = InvitationRecord {
            passport_id: passport.passport_id().to_owned(),
            offer_id: offer.id,
            peer: offer.peer.clone(),
            passport,
            issued_at_ms: issued_ms,
            expires_at_ms: issued_ms
                .saturating_add(self.config.invitation_ttl_seconds.saturating_mul(1000)),
            consumed: None,
        };
        self.ledger
            .insert_invitation(&record)
            .map_err(|e| Self::ledger_unavailable(&e))?;
        tracing::info!(offer = offer.id, passport = %record.passport_id, "issued an invitation");
        Ok(Some(record))
    }
}
