//! The passport gate (spec §5.2): invitation passports this node issued, general push
//! passports (`inac-push@v1`) and custody passports (`memarium-custody@v1`). The passport's
//! `capability_id` decides which checks run; `authorization.mode` never does.

use orbi_types::{NodeId, inac::RefusalCode};

use super::{Receiver, unix_ms};
use crate::{
    Descriptor, FrameAuthorization, Refusal,
    ledger::Consumption,
    passport::{
        CUSTODY_CAPABILITY, CUSTODY_PROFILE, CapabilityPassport, INVITATION_CAPABILITY,
        INVITATION_PROFILE, PUSH_PROFILE, ProfileScope,
    },
};

/// On whose authority a push proceeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Authority {
    /// The peer is in `allowed_peers` and presented no passport.
    Allowlisted,
    /// An invitation this node issued.
    Invitation {
        passport_id: String,
        single_use: bool,
    },
    /// A general push passport.
    Passport,
    /// A custody passport, whose record quota the admission consumes.
    Custody {
        /// The passport.
        passport_id: String,
        /// The largest `max_records` of the profiles that allowed the push (`None`: one of them
        /// has no record limit).
        max_records: Option<u64>,
    },
}

fn refuse(code: RefusalCode, message: impl Into<String>) -> Refusal {
    Refusal::new(code, message)
}

fn not_authorized(message: impl Into<String>) -> Refusal {
    refuse(RefusalCode::NotAuthorized, message)
}

/// What the push asks a passport to cover.
pub(crate) struct PushClaim<'a> {
    pub peer: &'a NodeId,
    pub descriptor: &'a Descriptor,
    pub idempotency_key: Option<&'a str>,
    pub now_ms: u64,
}

impl PushClaim<'_> {
    fn now_s(&self) -> i64 {
        i64::try_from(self.now_ms / 1000).unwrap_or(i64::MAX)
    }

    pub fn consumption(&self) -> Consumption {
        Consumption {
            peer: self.peer.clone(),
            idempotency_key: self.idempotency_key.map(str::to_owned),
            digest: self.descriptor.digest.clone(),
            at_ms: self.now_ms,
        }
    }
}

impl Receiver {
    /// Checks the passport under `authorization` for `claim`.
    pub(super) fn authorize_push(
        &self,
        claim: &PushClaim<'_>,
        authorization: &FrameAuthorization,
    ) -> Result<Authority, Refusal> {
        let passport = CapabilityPassport::parse(&authorization.passport)
            .map_err(|error| not_authorized(error.to_string()))?;
        match passport.capability_id.as_str() {
            INVITATION_CAPABILITY => self.authorize_invitation(claim, &passport),
            CUSTODY_CAPABILITY => self.authorize_custody(claim, &passport),
            _ => self.authorize_general(claim, &passport),
        }
    }

    fn authorize_invitation(
        &self,
        claim: &PushClaim<'_>,
        passport: &CapabilityPassport,
    ) -> Result<Authority, Refusal> {
        let unknown = || {
            refuse(
                RefusalCode::InvitationUnknown,
                format!(
                    "invitation {} was not issued by this node",
                    passport.passport_id
                ),
            )
        };
        if passport.issuer_node_id != self.identity.node_id()
            || !self.is_own_issuer(&passport.issuer_participant_id)
        {
            return Err(unknown());
        }
        let record = self
            .ledger
            .invitation(&passport.passport_id)
            .map_err(|e| Self::ledger_unavailable(&e))?
            .ok_or_else(unknown)?;
        // Only this node signs under its key, so a valid signature means these are the terms
        // it issued.
        passport
            .verify_signature()
            .map_err(|error| not_authorized(error.to_string()))?;
        self.check_times(claim, passport, RefusalCode::InvitationExpired)?;
        let revoked = self
            .ledger
            .is_revoked(&passport.passport_id)
            .map_err(|e| Self::ledger_unavailable(&e))?
            || self
                .revocations
                .as_ref()
                .is_some_and(|view| view.revoked.contains(&passport.passport_id));
        if revoked {
            return Err(refuse(
                RefusalCode::InvitationRevoked,
                format!("invitation {} is revoked", passport.passport_id),
            ));
        }
        // Single use unless every invitation profile says otherwise (fail closed).
        let mut profiles = passport.profiles_named(INVITATION_PROFILE).peekable();
        let single_use =
            profiles.peek().is_none() || profiles.any(|p| p.single_use.unwrap_or(true));
        if single_use
            && let Some(used) = &record.consumed
            && !used.same_transfer(&claim.consumption())
        {
            return Err(refuse(
                RefusalCode::InvitationRevoked,
                format!(
                    "single-use invitation {} was already used by another transfer",
                    passport.passport_id
                ),
            ));
        }
        let in_scope = passport.node_id == *claim.peer
            && passport.allows_caller(claim.peer)
            && passport.profiles_named(INVITATION_PROFILE).any(|profile| {
                profile.grants_push()
                    && profile
                        .peer_node_ids
                        .as_ref()
                        .is_some_and(|peers| peers.iter().any(|p| p == claim.peer.as_str()))
                    && profile.covers(claim.peer, claim.descriptor)
            });
        if !in_scope {
            return Err(refuse(
                RefusalCode::InvitationScopeMismatch,
                format!(
                    "invitation {} does not cover this peer and artifact",
                    passport.passport_id
                ),
            ));
        }
        Ok(Authority::Invitation {
            passport_id: passport.passport_id.clone(),
            single_use,
        })
    }

    /// Signature, issuer trust, validity window, caller binding: the steps general and custody
    /// passports share. Every failure is `not-authorized`.
    fn check_foreign_passport(
        &self,
        claim: &PushClaim<'_>,
        passport: &CapabilityPassport,
    ) -> Result<(), Refusal> {
        let issuer = &passport.issuer_participant_id;
        if !self.trusts_issuer(issuer) {
            return Err(not_authorized(format!(
                "passport issuer {issuer} is not trusted here"
            )));
        }
        passport
            .verify_signature()
            .map_err(|error| not_authorized(error.to_string()))?;
        self.check_times(claim, passport, RefusalCode::NotAuthorized)?;
        if passport.node_id != *claim.peer || !passport.allows_caller(claim.peer) {
            return Err(not_authorized(format!(
                "passport {} is not held by the pushing node",
                passport.passport_id
            )));
        }
        Ok(())
    }

    fn check_times(
        &self,
        claim: &PushClaim<'_>,
        passport: &CapabilityPassport,
        expired: RefusalCode,
    ) -> Result<(), Refusal> {
        let now = claim.now_s();
        let skew = i64::try_from(self.config.clock_skew_seconds).unwrap_or(i64::MAX);
        if passport.issued_at.unix_seconds() > now.saturating_add(skew) {
            return Err(not_authorized(format!(
                "passport {} is issued in the future",
                passport.passport_id
            )));
        }
        if passport.expires_at_unix(self.config.passport_max_ttl_seconds) <= now {
            return Err(refuse(
                expired,
                format!("passport {} has expired", passport.passport_id),
            ));
        }
        Ok(())
    }

    /// Revocation for a passport this node did not issue needs a fresh view (fail closed);
    /// for its own passports the ledger is the view.
    fn check_revocation(
        &self,
        claim: &PushClaim<'_>,
        passport: &CapabilityPassport,
        profile: &ProfileScope,
    ) -> Result<(), Refusal> {
        let id = &passport.passport_id;
        let locally_revoked = self
            .ledger
            .is_revoked(id)
            .map_err(|e| Self::ledger_unavailable(&e))?;
        if locally_revoked {
            return Err(not_authorized(format!("passport {id} is revoked")));
        }
        if self.is_own_issuer(&passport.issuer_participant_id) {
            return Ok(());
        }
        let Some(view) = &self.revocations else {
            return Err(not_authorized(format!(
                "no revocation view to check passport {id} against"
            )));
        };
        let limit_s = profile
            .max_revocation_staleness_seconds
            .unwrap_or(u64::MAX)
            .min(self.config.revocation_max_staleness_seconds);
        let age_ms = claim.now_ms.saturating_sub(unix_ms(view.as_of));
        if age_ms > limit_s.saturating_mul(1000) {
            return Err(not_authorized(format!(
                "revocation view is {} s old, more than the {limit_s} s allowed",
                age_ms / 1000
            )));
        }
        if view.revoked.contains(id) {
            return Err(not_authorized(format!("passport {id} is revoked")));
        }
        Ok(())
    }

    fn authorize_general(
        &self,
        claim: &PushClaim<'_>,
        passport: &CapabilityPassport,
    ) -> Result<Authority, Refusal> {
        self.check_foreign_passport(claim, passport)?;
        let profile = passport
            .profiles_named(PUSH_PROFILE)
            .find(|profile| profile.covers(claim.peer, claim.descriptor))
            .ok_or_else(|| {
                not_authorized(format!(
                    "no inac-push@v1 profile of passport {} covers this artifact",
                    passport.passport_id
                ))
            })?;
        self.check_revocation(claim, passport, profile)?;
        Ok(Authority::Passport)
    }

    fn authorize_custody(
        &self,
        claim: &PushClaim<'_>,
        passport: &CapabilityPassport,
    ) -> Result<Authority, Refusal> {
        self.check_foreign_passport(claim, passport)?;
        let covering: Vec<&ProfileScope> = passport
            .profiles_named(CUSTODY_PROFILE)
            .filter(|profile| profile.covers(claim.peer, claim.descriptor))
            .collect();
        let Some(first) = covering.first() else {
            return Err(not_authorized(format!(
                "no memarium-custody@v1 profile of passport {} covers this artifact",
                passport.passport_id
            )));
        };
        self.check_revocation(claim, passport, first)?;
        let (records, holds) = self
            .ledger
            .custody_usage(
                &passport.passport_id,
                &claim.descriptor.schema,
                &claim.descriptor.digest,
            )
            .map_err(|e| Self::ledger_unavailable(&e))?;
        // Profiles compose by OR: one must allow the push by itself. The record limit kept for
        // the body-time re-check is the most generous of every profile that allows it.
        let mut first_failure = None;
        let mut allowed: Option<Option<u64>> = None;
        for profile in covering {
            let failure = match (profile.max_bytes, profile.max_records) {
                (Some(max), _) if claim.descriptor.size_bytes > max => Some(refuse(
                    RefusalCode::PayloadTooLarge,
                    format!(
                        "size {} exceeds the custody limit of {max} bytes",
                        claim.descriptor.size_bytes
                    ),
                )),
                (_, Some(max)) if records >= max && !holds => Some(refuse(
                    RefusalCode::QuotaExceeded,
                    format!("custody passport already holds its {max} records"),
                )),
                _ => None,
            };
            match failure {
                None => {
                    allowed = Some(match (allowed, profile.max_records) {
                        (None, limit) => limit,
                        (Some(Some(kept)), Some(limit)) => Some(kept.max(limit)),
                        // No record limit in one allowing profile: none at all.
                        (Some(_), _) => None,
                    });
                }
                Some(refusal) => {
                    first_failure.get_or_insert(refusal);
                }
            }
        }
        match allowed {
            Some(max_records) => Ok(Authority::Custody {
                passport_id: passport.passport_id.clone(),
                max_records,
            }),
            None => {
                Err(first_failure
                    .unwrap_or_else(|| not_authorized("custody passport grants nothing")))
            }
        }
    }
}
