//! Host-originated lifecycle events (spec pod §4): setup, keepalive, suspension, sessions
//! closing, timeouts, the detachments the host builds itself, and clearing the sanction of a
//! `policy` or `operator-action` detachment.

use orbi_types::{Sha256Digest, json, pod::DetachReason};
use serde_json::json;
use time::OffsetDateTime;
use ulid::Ulid;

use crate::{
    compose::{self, DetachmentDraft},
    engine::{EngineError, PodEngine, Transition, emit_time},
    state::{ArtifactKind, AttachmentState, LifecycleState, Rule, TraceKind, is_host_reason},
    store::{
        AttachmentRec, Change, Commit, DetachmentOrigin, DetachmentRec, Store, StoreError,
        TraceEvent,
    },
};

/// What one run of the timers did ([`PodEngine::tick_report`]).
#[derive(Debug, Default)]
pub struct TickReport {
    /// Transitions made, in order.
    pub transitions: Vec<Transition>,
    /// Timers that came due but could not fire; each is tried again on the next tick.
    pub failures: Vec<TimerFailure>,
}

/// A timer that came due but could not fire: the others ran regardless.
#[derive(Debug)]
pub struct TimerFailure {
    /// The rule that was due (T4, T7).
    pub rule: Rule,
    /// The attachment it was due for.
    pub subject: String,
    /// Why it could not fire.
    pub error: EngineError,
}

/// What [`PodEngine::clear_sanction`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SanctionCleared {
    /// The detachment whose sanction is cleared.
    pub detachment_id: String,
    /// The attachment it ended.
    pub attachment_id: String,
    /// The client instance it sanctioned.
    pub client_instance_id: String,
    /// `policy` or `operator-action`.
    pub reason: DetachReason,
    /// When the sanction was cleared (host clock): this call's `now`, or the earlier clearing's
    /// instant if it was cleared before.
    pub cleared_at: OffsetDateTime,
    /// Whether this call cleared it; `false` when it was cleared before and nothing changed.
    pub newly_cleared: bool,
}

/// A detachment the host built, ready to commit.
pub(crate) struct HostDetachment {
    pub(crate) changes: Vec<Change>,
    pub(crate) traces: Vec<TraceEvent>,
    pub(crate) transition: Transition,
}

fn egress(message: impl Into<String>) -> EngineError {
    EngineError::Egress {
        what: "detachment".into(),
        message: message.into(),
    }
}

impl<S: Store> PodEngine<S> {
    /// Builds the detachment of `attachment` for a host-originated `reason`: the attachment's
    /// bind copied verbatim as context (as upstream's example does), `detached-at` = now (never
    /// before `attached-at`), and this node's `proof/node-attestation`. The artifact passes the
    /// same schema gate as anything admitted before it is committed.
    pub(crate) fn host_detachment(
        &self,
        attachment: &AttachmentRec,
        reason: DetachReason,
        notes: Option<String>,
        now: OffsetDateTime,
        rule: Rule,
    ) -> Result<HostDetachment, EngineError> {
        let corrupt = |message: String| {
            EngineError::Store(StoreError::Corrupt {
                what: format!("attachment {}", attachment.attachment_id),
                message,
            })
        };
        let received = json::from_slice_strict(&attachment.artifact)
            .map_err(|err| corrupt(err.to_string()))?;
        let bind = received
            .get("participant-bind")
            .cloned()
            .ok_or_else(|| corrupt("no participant-bind".into()))?;
        let detached_at = emit_time(now.max(attachment.attached_at.instant()))
            .ok_or_else(|| egress("the host clock is outside years 0-9999"))?;
        let detachment_id = host_detachment_id(attachment, reason, now);
        let mut value = compose::detachment(
            &DetachmentDraft {
                detachment_id: detachment_id.clone(),
                detached_at: detached_at.clone(),
                attachment_id: attachment.attachment_id.clone(),
                serving_node: self.node_id.clone(),
                client_instance_id: attachment.client_instance_id.clone(),
                reason,
                notes,
            },
            bind,
        );
        compose::attest_detachment(&self.node_key, &mut value)
            .map_err(|err| egress(err.to_string()))?;
        compose::check_egress(ArtifactKind::Detachment, self.policy.profile, &value)
            .map_err(|err| egress(err.message))?;
        let artifact = serde_json::to_vec(&value).map_err(|err| egress(err.to_string()))?;
        let changes = vec![
            Change::InsertDetachment(DetachmentRec {
                detachment_id: detachment_id.clone(),
                attachment_id: attachment.attachment_id.clone(),
                client_instance_id: attachment.client_instance_id.clone(),
                participant_id: attachment.participant_id.clone(),
                reason,
                detached_at,
                admitted_at: now,
                origin: DetachmentOrigin::Host,
                artifact: artifact.clone(),
                sanction_cleared_at: None,
                under_suspension: attachment.state == AttachmentState::Suspended,
            }),
            Change::SetAttachmentState {
                attachment_id: attachment.attachment_id.clone(),
                state: AttachmentState::Detached,
                since: now,
            },
        ];
        let traces = vec![self.trace(
            TraceKind::Detached,
            now,
            &attachment.bind_session,
            json!({
                "detachment/id": detachment_id,
                "attachment/id": attachment.attachment_id,
                "client-instance/id": attachment.client_instance_id,
                "detach/reason": reason.as_str(),
                "origin": DetachmentOrigin::Host.as_str(),
                "rule": rule.as_str(),
            }),
        )];
        Ok(HostDetachment {
            changes,
            traces,
            transition: Transition {
                rule,
                subject: attachment.attachment_id.clone(),
                client_instance_id: attachment.client_instance_id.clone(),
                from: Some(attachment.state.into()),
                to: LifecycleState::Detached,
                artifact: Some(artifact),
            },
        })
    }

    fn commit_host_detachment(
        &mut self,
        attachment: &AttachmentRec,
        reason: DetachReason,
        notes: Option<String>,
        now: OffsetDateTime,
        rule: Rule,
    ) -> Result<Transition, EngineError> {
        let host = self.host_detachment(attachment, reason, notes, now, rule)?;
        self.store.commit(
            Commit {
                changes: host.changes,
                traces: host.traces,
            },
            &self.sessions,
        )?;
        self.sessions.freed(&attachment.bind_session);
        Ok(host.transition)
    }

    fn set_state(
        &mut self,
        attachment: &AttachmentRec,
        to: AttachmentState,
        rule: Rule,
        now: OffsetDateTime,
    ) -> Result<Transition, EngineError> {
        let trace = self.trace(
            TraceKind::StateChanged,
            now,
            &attachment.bind_session,
            json!({
                "attachment/id": attachment.attachment_id,
                "client-instance/id": attachment.client_instance_id,
                "from": attachment.state.as_str(),
                "to": to.as_str(),
                "rule": rule.as_str(),
            }),
        );
        self.store.commit(
            Commit {
                changes: vec![Change::SetAttachmentState {
                    attachment_id: attachment.attachment_id.clone(),
                    state: to,
                    since: now,
                }],
                traces: vec![trace],
            },
            &self.sessions,
        )?;
        Ok(Transition {
            rule,
            subject: attachment.attachment_id.clone(),
            client_instance_id: attachment.client_instance_id.clone(),
            from: Some(attachment.state.into()),
            to: to.into(),
            artifact: None,
        })
    }

    fn on_record(&self, attachment_id: &str) -> Result<AttachmentRec, EngineError> {
        self.store
            .attachment(attachment_id)?
            .ok_or_else(|| EngineError::UnknownAttachment(attachment_id.to_owned()))
    }

    fn expect_state(
        attachment: &AttachmentRec,
        allowed: &[AttachmentState],
        event: &'static str,
    ) -> Result<(), EngineError> {
        if allowed.contains(&attachment.state) {
            Ok(())
        } else {
            Err(EngineError::Transition {
                attachment_id: attachment.attachment_id.clone(),
                state: attachment.state,
                event,
            })
        }
    }

    /// The session closed for good: its attaching, attached and degraded attachments are
    /// detached with `session-expired` (T7). Suspended ones stay suspended.
    pub fn close_session(
        &mut self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, EngineError> {
        self.sessions.close(id);
        let mut transitions = Vec::new();
        for attachment in self.store.live_attachments_on(id)? {
            if attachment.state != AttachmentState::Suspended {
                transitions.push(self.commit_host_detachment(
                    &attachment,
                    DetachReason::SessionExpired,
                    None,
                    now,
                    Rule::T7,
                )?);
            }
        }
        Ok(transitions)
    }

    /// Keepalive was lost on session `id`: its attached attachments become degraded (T5).
    pub fn keepalive_lost(
        &mut self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, EngineError> {
        let mut transitions = Vec::new();
        for attachment in self.store.live_attachments_on(id)? {
            if attachment.state == AttachmentState::Attached {
                transitions.push(self.set_state(
                    &attachment,
                    AttachmentState::Degraded,
                    Rule::T5,
                    now,
                )?);
            }
        }
        Ok(transitions)
    }

    /// Keepalive came back on the live session `id`: its degraded attachments are attached
    /// again (T6).
    pub fn keepalive_restored(
        &mut self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Transition>, EngineError> {
        let mut transitions = Vec::new();
        if !self.sessions.is_live(id) {
            return Ok(transitions);
        }
        for attachment in self.store.live_attachments_on(id)? {
            if attachment.state == AttachmentState::Degraded {
                transitions.push(self.set_state(
                    &attachment,
                    AttachmentState::Attached,
                    Rule::T6,
                    now,
                )?);
            }
        }
        Ok(transitions)
    }

    /// The host finished setting up an attaching attachment (T4).
    pub fn finish_setup(
        &mut self,
        attachment_id: &str,
        now: OffsetDateTime,
    ) -> Result<Transition, EngineError> {
        let attachment = self.on_record(attachment_id)?;
        Self::expect_state(&attachment, &[AttachmentState::Attaching], "finish setup")?;
        self.set_state(&attachment, AttachmentState::Attached, Rule::T4, now)
    }

    /// Host policy or the operator suspends a live attachment (T8).
    pub fn suspend(
        &mut self,
        attachment_id: &str,
        now: OffsetDateTime,
    ) -> Result<Transition, EngineError> {
        let attachment = self.on_record(attachment_id)?;
        Self::expect_state(
            &attachment,
            &[
                AttachmentState::Attaching,
                AttachmentState::Attached,
                AttachmentState::Degraded,
            ],
            "suspend",
        )?;
        self.set_state(&attachment, AttachmentState::Suspended, Rule::T8, now)
    }

    /// The host lifts a suspension: attached if the session is live, else degraded (T9).
    pub fn lift(
        &mut self,
        attachment_id: &str,
        now: OffsetDateTime,
    ) -> Result<Transition, EngineError> {
        let attachment = self.on_record(attachment_id)?;
        Self::expect_state(
            &attachment,
            &[AttachmentState::Suspended],
            "lift a suspension",
        )?;
        let to = if self.sessions.is_live(&attachment.bind_session) {
            AttachmentState::Attached
        } else {
            AttachmentState::Degraded
        };
        self.set_state(&attachment, to, Rule::T9, now)
    }

    /// The host detaches a live attachment itself (T11) for `session-expired`, `policy`,
    /// `operator-action`, or `device-loss` reported by the operator for the user; the built
    /// artifact is in the transition.
    pub fn detach(
        &mut self,
        attachment_id: &str,
        reason: DetachReason,
        notes: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Transition, EngineError> {
        if !is_host_reason(reason) && reason != DetachReason::DeviceLoss {
            return Err(EngineError::NotHostReason(reason));
        }
        let attachment = self.on_record(attachment_id)?;
        if !attachment.state.is_live() {
            return Err(EngineError::Transition {
                attachment_id: attachment.attachment_id,
                state: attachment.state,
                event: "detach",
            });
        }
        self.commit_host_detachment(&attachment, reason, notes, now, Rule::T11)
    }

    /// The host clears the sanction of a `policy` or `operator-action` detachment: from now on
    /// the recovery modes allowed after it are admitted (and the grant they open is used) as
    /// after any other detachment. Until then such a recovery is `E_POD_STATE`; nothing else
    /// about the client changes here (it stays detached; a plain attachment still needs a
    /// recovery first, T15).
    ///
    /// Idempotent: clearing a cleared sanction changes nothing and reports the first clearing
    /// (`newly_cleared` false), so an operator's retry is safe. The clearing is stored with its
    /// `client-instance/sanction-cleared` trace event, atomically. An unknown (or evicted)
    /// detachment is [`EngineError::UnknownDetachment`]; one of another reason is
    /// [`EngineError::NotSanction`].
    pub fn clear_sanction(
        &mut self,
        detachment_id: &str,
        now: OffsetDateTime,
    ) -> Result<SanctionCleared, EngineError> {
        match self.clear_sanction_once(detachment_id, now) {
            // Another writer of a shared database cleared it between our read and our write:
            // read again, which finds it cleared.
            Err(EngineError::Store(StoreError::Constraint(_))) => {
                self.clear_sanction_once(detachment_id, now)
            }
            other => other,
        }
    }

    fn clear_sanction_once(
        &mut self,
        detachment_id: &str,
        now: OffsetDateTime,
    ) -> Result<SanctionCleared, EngineError> {
        let detachment = self
            .store
            .detachment(detachment_id)?
            .ok_or_else(|| EngineError::UnknownDetachment(detachment_id.to_owned()))?;
        if !detachment.holds_sanction() {
            return Err(EngineError::NotSanction {
                detachment_id: detachment.detachment_id,
                reason: detachment.reason,
            });
        }
        let cleared = SanctionCleared {
            detachment_id: detachment.detachment_id,
            attachment_id: detachment.attachment_id,
            client_instance_id: detachment.client_instance_id,
            reason: detachment.reason,
            cleared_at: detachment.sanction_cleared_at.unwrap_or(now),
            newly_cleared: detachment.sanction_cleared_at.is_none(),
        };
        if !cleared.newly_cleared {
            return Ok(cleared);
        }
        let trace = TraceEvent {
            kind: TraceKind::SanctionCleared,
            ts: now,
            node: self.node_id.clone(),
            peer: None,
            detail: json!({
                "detachment/id": cleared.detachment_id,
                "attachment/id": cleared.attachment_id,
                "client-instance/id": cleared.client_instance_id,
                "detach/reason": cleared.reason.as_str(),
            }),
        };
        self.store.commit(
            Commit {
                changes: vec![Change::ClearSanction {
                    detachment_id: cleared.detachment_id.clone(),
                    at: now,
                }],
                traces: vec![trace],
            },
            &self.sessions,
        )?;
        Ok(cleared)
    }

    /// Runs the timers (see [`PodEngine::tick_report`]) and returns the transitions made; a
    /// timer that could not fire is logged (its attachment id and the error) and tried again
    /// on the next tick.
    pub fn tick(&mut self, now: OffsetDateTime) -> Result<Vec<Transition>, EngineError> {
        let report = self.tick_report(now)?;
        for failure in &report.failures {
            tracing::warn!(
                rule = failure.rule.as_str(),
                attachment = %failure.subject,
                error = %failure.error,
                "a due timer could not fire"
            );
        }
        Ok(report.transitions)
    }

    /// Runs the timers: attachments still attaching after the setup timeout (T4) and degraded
    /// ones past their grace (T7) are detached with `session-expired`; recovery grants past
    /// their window expire (T18).
    ///
    /// One attachment the host cannot detach (say, its bind no longer passes the egress gate
    /// of a profile the operator has since changed) is reported in
    /// [`TickReport::failures`] and does not hold up the others. A failing read model fails
    /// the whole tick: nothing else could be committed either.
    pub fn tick_report(&mut self, now: OffsetDateTime) -> Result<TickReport, EngineError> {
        let timings = self.policy.timings;
        let mut report = TickReport::default();
        for (state, wait, rule) in [
            (AttachmentState::Attaching, timings.setup_timeout, Rule::T4),
            (AttachmentState::Degraded, timings.degraded_grace, Rule::T7),
        ] {
            for attachment in self
                .store
                .attachments_due(state, now.saturating_sub(wait))?
            {
                match self.commit_host_detachment(
                    &attachment,
                    DetachReason::SessionExpired,
                    None,
                    now,
                    rule,
                ) {
                    Ok(transition) => report.transitions.push(transition),
                    Err(error @ EngineError::Store(_)) => return Err(error),
                    Err(error) => report.failures.push(TimerFailure {
                        rule,
                        subject: attachment.attachment_id,
                        error,
                    }),
                }
            }
        }
        // Closed sessions count for their peer while they hold places (live attachments,
        // open grants); the detachments above may have ended the last of them.
        for session in self.sessions.lost() {
            let places = self.places_on(&session, now)?;
            self.sessions.set_attached(&session, places);
        }
        self.sessions
            .prune_refused(now, crate::engine::RECOUNT_BACKOFF);
        for grant in self.store.grants_due(now)? {
            let mut commit = Commit::default();
            self.expire_grant(&grant, now, &mut commit);
            self.store.commit(commit, &self.sessions)?;
            // Its place is free: the node may be recounted at once.
            self.sessions.freed(&grant.bind_session);
            report.transitions.push(Transition {
                rule: Rule::T18,
                subject: grant.recovery_id,
                client_instance_id: grant.client_instance_id,
                from: Some(LifecycleState::RecoveryGranted),
                to: LifecycleState::Detached,
                artifact: None,
            });
        }
        Ok(report)
    }

    /// After a restart no session is live: every attached attachment whose session the host
    /// has not reopened becomes degraded (T5), so the grace timer can end it (T7).
    pub fn degrade_orphans(&mut self, now: OffsetDateTime) -> Result<Vec<Transition>, EngineError> {
        let mut transitions = Vec::new();
        for attachment in self.store.live_attachments()? {
            if attachment.state == AttachmentState::Attached
                && !self.sessions.is_live(&attachment.bind_session)
            {
                transitions.push(self.set_state(
                    &attachment,
                    AttachmentState::Degraded,
                    Rule::T5,
                    now,
                )?);
            }
        }
        Ok(transitions)
    }
}

/// `detach:` + a ULID whose time is `now` and whose randomness is derived from the attachment,
/// the reason and the instant: deterministic for a given input (the engine has no randomness
/// source), unique because an attachment is detached once.
fn host_detachment_id(
    attachment: &AttachmentRec,
    reason: DetachReason,
    now: OffsetDateTime,
) -> String {
    let mut seed = attachment.attachment_id.as_bytes().to_vec();
    seed.push(0);
    seed.extend_from_slice(reason.as_str().as_bytes());
    seed.extend_from_slice(&now.unix_timestamp_nanos().to_be_bytes());
    let hash = Sha256Digest::of(&seed).bytes().unwrap_or_default();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&hash[..10]);
    let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    format!(
        "detach:{}",
        Ulid::from_parts(millis, u128::from_be_bytes(random))
    )
}
