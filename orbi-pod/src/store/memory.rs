//! The in-memory read model.

use std::collections::{BTreeMap, VecDeque};

use orbi_types::{NodeId, Sha256Digest, pod::DetachReason};
use time::OffsetDateTime;

use super::{
    AttachmentRec, Change, ClientHistory, Commit, Counts, DetachmentRec, RecoveryRec, Store,
    StoreError, StoreLimits, Trace,
};
use crate::{
    session::SessionTable,
    state::{AttachmentState, GrantState, needs_recovery},
};

/// A read model in memory, with the same rules as [`super::SqliteStore`].
///
/// A commit is applied to a copy of the tables that replaces them only when every change
/// fits, so commits are atomic by construction; the copy makes a commit cost O(records),
/// which suits tests and small ephemeral hosts.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    limits: StoreLimits,
    tables: Tables,
    /// The tables as they were when a group began.
    group: Option<Tables>,
}

#[derive(Clone, Debug, Default)]
struct Tables {
    next_seq: u64,
    next_trace: u64,
    attachments: BTreeMap<String, (u64, AttachmentRec)>,
    /// (node, client) → attachment id of the live attachment: the "unique index".
    live: BTreeMap<(String, String), String>,
    detachments: BTreeMap<String, (u64, DetachmentRec)>,
    recoveries: BTreeMap<String, (u64, RecoveryRec)>,
    binds: BTreeMap<(String, String), (u64, Sha256Digest)>,
    tombstones: BTreeMap<String, (u64, DetachReason)>,
    traces: VecDeque<Trace>,
}

impl MemoryStore {
    /// An empty store with default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with these limits.
    pub fn with_limits(limits: StoreLimits) -> Self {
        MemoryStore {
            limits,
            tables: Tables::default(),
            group: None,
        }
    }
}

fn constraint(message: String) -> StoreError {
    StoreError::Constraint(message)
}

impl Tables {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn records(&self) -> usize {
        self.attachments.len() + self.recoveries.len()
    }

    fn apply(&mut self, change: Change) -> Result<(), StoreError> {
        match change {
            Change::InsertAttachment(rec) => {
                if self.attachments.contains_key(&rec.attachment_id) {
                    return Err(constraint(format!(
                        "attachment {:?} exists",
                        rec.attachment_id
                    )));
                }
                if rec.state.is_live() {
                    self.claim_live(&rec)?;
                }
                let seq = self.seq();
                self.attachments
                    .insert(rec.attachment_id.clone(), (seq, rec));
            }
            Change::SetAttachmentState {
                attachment_id,
                state,
                since,
            } => {
                let Some((_, mut rec)) = self.attachments.get(&attachment_id).cloned() else {
                    return Err(constraint(format!("no attachment {attachment_id:?}")));
                };
                if rec.state.is_live() && !state.is_live() {
                    self.live.remove(&live_key(&rec));
                } else if !rec.state.is_live() && state.is_live() {
                    self.claim_live(&rec)?;
                }
                rec.state = state;
                rec.state_since = since;
                if let Some(entry) = self.attachments.get_mut(&attachment_id) {
                    entry.1 = rec;
                }
            }
            Change::InsertDetachment(rec) => {
                if self.detachments.contains_key(&rec.detachment_id) {
                    return Err(constraint(format!(
                        "detachment {:?} exists",
                        rec.detachment_id
                    )));
                }
                if !self.attachments.contains_key(&rec.attachment_id) {
                    return Err(constraint(format!(
                        "detachment cites unknown attachment {:?}",
                        rec.attachment_id
                    )));
                }
                if self
                    .detachments
                    .values()
                    .any(|(_, d)| d.attachment_id == rec.attachment_id)
                {
                    return Err(constraint(format!(
                        "attachment {:?} already has a detachment",
                        rec.attachment_id
                    )));
                }
                let seq = self.seq();
                self.detachments
                    .insert(rec.detachment_id.clone(), (seq, rec));
            }
            Change::InsertRecovery(rec) => {
                if self.recoveries.contains_key(&rec.recovery_id) {
                    return Err(constraint(format!("recovery {:?} exists", rec.recovery_id)));
                }
                if !self.detachments.contains_key(&rec.from_detachment_id) {
                    return Err(constraint(format!(
                        "recovery cites unknown detachment {:?}",
                        rec.from_detachment_id
                    )));
                }
                if rec.grant == GrantState::Open
                    && self.open_grant(&rec.client_instance_id).is_some()
                {
                    return Err(constraint(format!(
                        "client {:?} already has an open grant",
                        rec.client_instance_id
                    )));
                }
                let seq = self.seq();
                self.recoveries.insert(rec.recovery_id.clone(), (seq, rec));
            }
            Change::SetGrant {
                recovery_id,
                grant,
                consumed_by,
            } => {
                let Some((_, rec)) = self.recoveries.get_mut(&recovery_id) else {
                    return Err(constraint(format!("no recovery {recovery_id:?}")));
                };
                rec.grant = grant;
                rec.consumed_by = consumed_by;
            }
            Change::ClearSanction { detachment_id, at } => {
                let Some((_, rec)) = self.detachments.get_mut(&detachment_id) else {
                    return Err(constraint(format!("no detachment {detachment_id:?}")));
                };
                if !rec.holds_sanction() || rec.sanction_cleared_at.is_some() {
                    return Err(constraint(format!(
                        "detachment {detachment_id:?} holds no sanction to clear"
                    )));
                }
                rec.sanction_cleared_at = Some(at);
            }
            Change::CacheBind {
                session_id,
                bind_id,
                digest,
            } => {
                let key = (session_id, bind_id);
                if self.binds.contains_key(&key) {
                    return Err(constraint(format!("bind {:?} is cached", key.1)));
                }
                let seq = self.seq();
                self.binds.insert(key, (seq, digest));
            }
        }
        Ok(())
    }

    fn claim_live(&mut self, rec: &AttachmentRec) -> Result<(), StoreError> {
        let key = live_key(rec);
        if self.live.contains_key(&key) {
            return Err(constraint(format!(
                "client {:?} already has a live attachment",
                rec.client_instance_id
            )));
        }
        self.live.insert(key, rec.attachment_id.clone());
        Ok(())
    }

    fn open_grant(&self, client: &str) -> Option<&RecoveryRec> {
        self.recoveries
            .values()
            .map(|(_, rec)| rec)
            .find(|rec| rec.client_instance_id == client && rec.grant == GrantState::Open)
    }

    /// As the SQLite store's: the oldest lineage with no open grant, not kept
    /// ([`DetachmentRec::kept_from_eviction`]), whose session is dead, else the oldest on a
    /// live session; never a client's lineage while an older one of the same client stays.
    fn evictable(&self, live: &SessionTable) -> Option<String> {
        let mut detachments: Vec<&(u64, DetachmentRec)> = self.detachments.values().collect();
        detachments.sort_by_key(|(seq, _)| *seq);
        let mut oldest_on_live = None;
        let mut passed_over = std::collections::HashSet::new();
        for (_, detachment) in detachments {
            let client = detachment.client_instance_id.as_str();
            let Some((_, attachment)) = self.attachments.get(&detachment.attachment_id) else {
                continue;
            };
            if passed_over.contains(client) {
                continue;
            }
            let held = detachment.kept_from_eviction()
                || self.recoveries.values().any(|(_, rec)| {
                    rec.from_detachment_id == detachment.detachment_id
                        && rec.grant == GrantState::Open
                });
            if !held && !live.is_live(&attachment.bind_session) {
                return Some(detachment.detachment_id.clone());
            }
            if !held {
                oldest_on_live.get_or_insert_with(|| detachment.detachment_id.clone());
            }
            passed_over.insert(client);
        }
        oldest_on_live
    }

    fn evict_lineage(&mut self, detachment_id: &str) {
        let Some((_, detachment)) = self.detachments.remove(detachment_id) else {
            return;
        };
        self.recoveries
            .retain(|_, (_, rec)| rec.from_detachment_id != detachment_id);
        let Some((attachment_seq, attachment)) = self.attachments.remove(&detachment.attachment_id)
        else {
            return;
        };
        let newer = self.attachments.values().any(|(seq, rec)| {
            rec.client_instance_id == attachment.client_instance_id && *seq > attachment_seq
        });
        if needs_recovery(detachment.reason) && !newer {
            let seq = self.seq();
            self.tombstones
                .insert(attachment.client_instance_id, (seq, detachment.reason));
        }
    }

    fn evict(
        &mut self,
        limits: &StoreLimits,
        live: &SessionTable,
        grows: bool,
    ) -> Result<(), StoreError> {
        while self.records() > limits.max_records {
            match self.evictable(live) {
                Some(detachment_id) => self.evict_lineage(&detachment_id),
                None if grows => {
                    return Err(StoreError::Full {
                        records: limits.max_records,
                    });
                }
                None => break,
            }
        }
        evict_oldest(&mut self.tombstones, limits.max_tombstones);
        evict_oldest(&mut self.binds, limits.max_binds);
        while self.traces.len() > limits.max_traces {
            self.traces.pop_front();
        }
        Ok(())
    }
}

fn evict_oldest<K: Ord + Clone, V>(map: &mut BTreeMap<K, (u64, V)>, max: usize) {
    if map.len() <= max {
        return;
    }
    let mut by_age: Vec<(u64, K)> = map.iter().map(|(k, (seq, _))| (*seq, k.clone())).collect();
    by_age.sort_by_key(|(seq, _)| *seq);
    let excess = map.len() - max;
    for (_, key) in by_age.into_iter().take(excess) {
        map.remove(&key);
    }
}

fn live_key(rec: &AttachmentRec) -> (String, String) {
    (
        rec.serving_node_id.as_str().to_owned(),
        rec.client_instance_id.clone(),
    )
}

fn by_seq<T: Clone>(mut rows: Vec<&(u64, T)>) -> Vec<T> {
    rows.sort_by_key(|(seq, _)| *seq);
    rows.into_iter().map(|(_, rec)| rec.clone()).collect()
}

impl Store for MemoryStore {
    fn attachment(&self, attachment_id: &str) -> Result<Option<AttachmentRec>, StoreError> {
        Ok(self
            .tables
            .attachments
            .get(attachment_id)
            .map(|(_, rec)| rec.clone()))
    }

    fn live_attachment(
        &self,
        node: &NodeId,
        client: &str,
    ) -> Result<Option<AttachmentRec>, StoreError> {
        let key = (node.as_str().to_owned(), client.to_owned());
        match self.tables.live.get(&key) {
            Some(id) => self.attachment(id),
            None => Ok(None),
        }
    }

    fn live_attachments(&self) -> Result<Vec<AttachmentRec>, StoreError> {
        Ok(by_seq(
            self.tables
                .attachments
                .values()
                .filter(|(_, rec)| rec.state.is_live())
                .collect(),
        ))
    }

    fn live_attachments_on(&self, session: &str) -> Result<Vec<AttachmentRec>, StoreError> {
        Ok(by_seq(
            self.tables
                .attachments
                .values()
                .filter(|(_, rec)| rec.state.is_live() && rec.bind_session == session)
                .collect(),
        ))
    }

    fn count_live_attachments_on(&self, session: &str) -> Result<usize, StoreError> {
        Ok(self
            .tables
            .attachments
            .values()
            .filter(|(_, rec)| rec.state.is_live() && rec.bind_session == session)
            .count())
    }

    fn count_open_grants_on(
        &self,
        session: &str,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        Ok(self
            .tables
            .recoveries
            .values()
            .filter(|(_, rec)| {
                rec.grant == GrantState::Open
                    && rec.grant_expires_at > now
                    && rec.bind_session == session
            })
            .count())
    }

    fn attachments_due(
        &self,
        state: AttachmentState,
        not_after: OffsetDateTime,
    ) -> Result<Vec<AttachmentRec>, StoreError> {
        Ok(by_seq(
            self.tables
                .attachments
                .values()
                .filter(|(_, rec)| rec.state == state && rec.state_since <= not_after)
                .collect(),
        ))
    }

    fn detachment(&self, detachment_id: &str) -> Result<Option<DetachmentRec>, StoreError> {
        Ok(self
            .tables
            .detachments
            .get(detachment_id)
            .map(|(_, rec)| rec.clone()))
    }

    fn detachment_of(&self, attachment_id: &str) -> Result<Option<DetachmentRec>, StoreError> {
        Ok(self
            .tables
            .detachments
            .values()
            .find(|(_, rec)| rec.attachment_id == attachment_id)
            .map(|(_, rec)| rec.clone()))
    }

    fn latest_detachment(&self, client: &str) -> Result<Option<DetachmentRec>, StoreError> {
        Ok(self
            .tables
            .detachments
            .values()
            .filter(|(_, rec)| rec.client_instance_id == client)
            .max_by_key(|(seq, _)| *seq)
            .map(|(_, rec)| rec.clone()))
    }

    fn tombstone(&self, client: &str) -> Result<Option<DetachReason>, StoreError> {
        Ok(self
            .tables
            .tombstones
            .get(client)
            .map(|(_, reason)| *reason))
    }

    fn recovery(&self, recovery_id: &str) -> Result<Option<RecoveryRec>, StoreError> {
        Ok(self
            .tables
            .recoveries
            .get(recovery_id)
            .map(|(_, rec)| rec.clone()))
    }

    fn recoveries_from(&self, detachment_id: &str) -> Result<Vec<RecoveryRec>, StoreError> {
        Ok(by_seq(
            self.tables
                .recoveries
                .values()
                .filter(|(_, rec)| rec.from_detachment_id == detachment_id)
                .collect(),
        ))
    }

    fn open_grant(&self, client: &str) -> Result<Option<RecoveryRec>, StoreError> {
        Ok(self.tables.open_grant(client).cloned())
    }

    fn grants_due(&self, not_after: OffsetDateTime) -> Result<Vec<RecoveryRec>, StoreError> {
        Ok(by_seq(
            self.tables
                .recoveries
                .values()
                .filter(|(_, rec)| {
                    rec.grant == GrantState::Open && rec.grant_expires_at <= not_after
                })
                .collect(),
        ))
    }

    fn bind_digest(
        &self,
        session: &str,
        bind_id: &str,
    ) -> Result<Option<Sha256Digest>, StoreError> {
        let entry = self
            .tables
            .binds
            .get(&(session.to_owned(), bind_id.to_owned()))
            .map(|(_, digest)| digest);
        // Like the commits of this store, a scan: it serves tests and small hosts.
        let carried = || {
            self.tables
                .attachments
                .values()
                .map(|(_, rec)| rec)
                .find(|rec| rec.bind_session == session && rec.bind_id == bind_id)
                .map(|rec| &rec.bind_digest)
        };
        Ok(entry.or_else(carried).cloned())
    }

    fn client_history(&self, client: &str) -> Result<ClientHistory, StoreError> {
        let tables = &self.tables;
        Ok(ClientHistory {
            attachments: by_seq(
                tables
                    .attachments
                    .values()
                    .filter(|(_, rec)| rec.client_instance_id == client)
                    .collect(),
            ),
            detachments: by_seq(
                tables
                    .detachments
                    .values()
                    .filter(|(_, rec)| rec.client_instance_id == client)
                    .collect(),
            ),
            recoveries: by_seq(
                tables
                    .recoveries
                    .values()
                    .filter(|(_, rec)| rec.client_instance_id == client)
                    .collect(),
            ),
            tombstone: self.tombstone(client)?,
        })
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let tables = &self.tables;
        Ok(Counts {
            attachments: tables.attachments.len(),
            live: tables.live.len(),
            detachments: tables.detachments.len(),
            recoveries: tables.recoveries.len(),
            open_grants: tables
                .recoveries
                .values()
                .filter(|(_, rec)| rec.grant == GrantState::Open)
                .count(),
            binds: tables.binds.len(),
            tombstones: tables.tombstones.len(),
            traces: tables.traces.len(),
        })
    }

    fn recent_traces(&self, limit: usize) -> Result<Vec<Trace>, StoreError> {
        let skip = self.tables.traces.len().saturating_sub(limit);
        Ok(self.tables.traces.iter().skip(skip).cloned().collect())
    }

    fn commit(&mut self, commit: Commit, live: &SessionTable) -> Result<(), StoreError> {
        let grows = commit.grows();
        let mut next = self.tables.clone();
        for change in commit.changes {
            next.apply(change)?;
        }
        for event in commit.traces {
            next.next_trace += 1;
            next.traces.push_back(Trace {
                trace_id: format!("trace:{}", next.next_trace),
                event,
            });
        }
        next.evict(&self.limits, live, grows)?;
        self.tables = next;
        Ok(())
    }

    fn begin_group(&mut self) -> Result<(), StoreError> {
        if self.group.is_some() {
            return Err(StoreError::Backend("a group commit is already open".into()));
        }
        self.group = Some(self.tables.clone());
        Ok(())
    }

    fn finish_group(&mut self) -> Result<(), StoreError> {
        self.group = None;
        Ok(())
    }

    fn abandon_group(&mut self) {
        if let Some(before) = self.group.take() {
            self.tables = before;
        }
    }
}
