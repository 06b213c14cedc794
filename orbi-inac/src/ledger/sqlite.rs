//! [`SqliteLedger`]: the [`Ledger`] in one SQLite file (WAL; `synchronous=FULL` by default,
//! so that every decision survives power loss the moment it is answered).

use std::{
    path::Path,
    str::FromStr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use orbi_types::{NodeId, Sha256Digest};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use super::{
    ArtifactQuery, Consumption, HeldArtifact, IdempotencyRecord, InvitationRecord, Ledger,
    LedgerEntry, LedgerError, OfferRecord, OfferState, RecordedOutcome, SyncHandle, TransferRecord,
};
use crate::{Descriptor, passport::IssuedPassport, store::Durability};

const SCHEMA_VERSION: i64 = 1;

/// Rows are never deleted, so plain `INTEGER PRIMARY KEY` ids only grow (no AUTOINCREMENT:
/// it costs a write to `sqlite_sequence` on every insert).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS transfers (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    peer TEXT NOT NULL,
    operation TEXT,
    correlation_id TEXT,
    idempotency_key TEXT,
    schema TEXT, content_type TEXT, artifact_id TEXT, digest TEXT, size_bytes INTEGER,
    admission_id TEXT,
    answer TEXT NOT NULL,
    refusal_code TEXT,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    peer TEXT NOT NULL,
    key TEXT NOT NULL,
    schema TEXT NOT NULL, content_type TEXT NOT NULL, artifact_id TEXT NOT NULL,
    digest TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    answer TEXT NOT NULL,
    refusal_code TEXT,
    message TEXT NOT NULL,
    PRIMARY KEY (peer, key)
);
CREATE TABLE IF NOT EXISTS artifacts (
    seq INTEGER PRIMARY KEY,
    schema TEXT NOT NULL, content_type TEXT NOT NULL, artifact_id TEXT NOT NULL,
    digest TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    source_peer TEXT NOT NULL,
    kept INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    UNIQUE (schema, digest)
);
CREATE TABLE IF NOT EXISTS offers (
    id INTEGER PRIMARY KEY,
    peer TEXT NOT NULL,
    schema TEXT NOT NULL, content_type TEXT NOT NULL, artifact_id TEXT NOT NULL,
    digest TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    correlation_id TEXT,
    created_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    decided_at_ms INTEGER,
    invitation_id TEXT
);
CREATE INDEX IF NOT EXISTS offers_by_peer ON offers (peer, state);
CREATE TABLE IF NOT EXISTS invitations (
    passport_id TEXT PRIMARY KEY,
    offer_id INTEGER NOT NULL REFERENCES offers (id),
    peer TEXT NOT NULL,
    passport TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    consumed_peer TEXT, consumed_key TEXT, consumed_digest TEXT, consumed_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS revocations (
    passport_id TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    bytes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS custody (
    passport_id TEXT NOT NULL,
    schema TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (passport_id, schema, digest)
);
";

/// A ledger in a SQLite file. Several processes may open the same file (the operator's
/// `offers accept` runs beside a serving node); writers wait up to five seconds for each other.
pub struct SqliteLedger {
    connection: SharedConnection,
    in_group: bool,
    durability: Durability,
}

/// The ledger's connection, shared with a [`crate::store::HybridStore`] whose small objects
/// live in the same database (and so in the same transactions and group commits).
pub(crate) type SharedConnection = Arc<Mutex<Connection>>;

/// Locks a shared connection (a panic elsewhere leaves SQLite consistent: use it anyway).
pub(crate) fn lock(connection: &SharedConnection) -> MutexGuard<'_, Connection> {
    connection.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteLedger")
    }
}

fn parse<T: FromStr>(text: &str, what: &str) -> Result<T, LedgerError> {
    text.parse()
        .map_err(|_| LedgerError::Corrupt(format!("{what} {text:?}")))
}

fn unsigned(value: i64, what: &str) -> Result<u64, LedgerError> {
    u64::try_from(value).map_err(|_| LedgerError::Corrupt(format!("{what} {value}")))
}

/// The five descriptor columns as read.
type DescriptorRow = (String, String, String, String, i64);

fn descriptor_at(row: &Row<'_>, first: usize) -> rusqlite::Result<DescriptorRow> {
    Ok((
        row.get(first)?,
        row.get(first + 1)?,
        row.get(first + 2)?,
        row.get(first + 3)?,
        row.get(first + 4)?,
    ))
}

fn descriptor_from(row: DescriptorRow) -> Result<Descriptor, LedgerError> {
    Ok(Descriptor {
        schema: row.0,
        content_type: row.1,
        artifact_id: row.2,
        digest: parse(&row.3, "digest")?,
        size_bytes: unsigned(row.4, "size")?,
    })
}

struct OfferRow {
    id: i64,
    peer: String,
    descriptor: DescriptorRow,
    correlation_id: Option<String>,
    created_at_ms: i64,
    state: String,
    decided_at_ms: Option<i64>,
    invitation_id: Option<String>,
}

const OFFER_COLUMNS: &str = "id, peer, schema, content_type, artifact_id, digest, size_bytes, \
     correlation_id, created_at_ms, state, decided_at_ms, invitation_id";

fn offer_row(row: &Row<'_>) -> rusqlite::Result<OfferRow> {
    Ok(OfferRow {
        id: row.get(0)?,
        peer: row.get(1)?,
        descriptor: descriptor_at(row, 2)?,
        correlation_id: row.get(7)?,
        created_at_ms: row.get(8)?,
        state: row.get(9)?,
        decided_at_ms: row.get(10)?,
        invitation_id: row.get(11)?,
    })
}

impl OfferRow {
    fn into_record(self) -> Result<OfferRecord, LedgerError> {
        Ok(OfferRecord {
            id: unsigned(self.id, "offer id")?,
            peer: parse(&self.peer, "peer")?,
            descriptor: descriptor_from(self.descriptor)?,
            correlation_id: self.correlation_id,
            created_at_ms: unsigned(self.created_at_ms, "time")?,
            state: OfferState::parse(&self.state)
                .ok_or_else(|| LedgerError::Corrupt(format!("offer state {:?}", self.state)))?,
            decided_at_ms: self
                .decided_at_ms
                .map(|at| unsigned(at, "time"))
                .transpose()?,
            invitation_id: self.invitation_id,
        })
    }
}

const HELD_COLUMNS: &str =
    "schema, content_type, artifact_id, digest, size_bytes, source_peer, kept, at_ms";

type HeldRow = (DescriptorRow, String, bool, i64);

fn held_row(row: &Row<'_>) -> rusqlite::Result<HeldRow> {
    Ok((
        descriptor_at(row, 0)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn held_from(row: HeldRow) -> Result<HeldArtifact, LedgerError> {
    Ok(HeldArtifact {
        descriptor: descriptor_from(row.0)?,
        source_peer: parse(&row.1, "peer")?,
        kept: row.2,
        at_ms: unsigned(row.3, "time")?,
    })
}

impl SqliteLedger {
    /// Opens (creating if needed) the ledger file at `path` with [`Durability::Full`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (creating if needed) the ledger file at `path`.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, LedgerError> {
        Self::init(Connection::open(path)?, durability)
    }

    /// A ledger in memory (SQLite's `:memory:`), for tests of the SQL itself.
    pub fn open_in_memory() -> Result<Self, LedgerError> {
        Self::init(Connection::open_in_memory()?, Durability::Full)
    }

    fn init(connection: Connection, durability: Durability) -> Result<Self, LedgerError> {
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.set_prepared_statement_cache_capacity(32);
        connection.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Relaxed => "NORMAL",
        };
        connection.pragma_update(None, "synchronous", synchronous)?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        // Savepoints inside a group journal to memory, not to a temp file.
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        // 16 MiB of page cache (the default 2 MiB made most inserts read index pages back).
        connection.pragma_update(None, "cache_size", -16 * 1024)?;
        // Checkpoint every ~16 MiB of WAL instead of ~4 MiB: fewer, larger checkpoints, each
        // run by the commit that crosses the mark.
        connection.pragma_update(None, "wal_autocheckpoint", 4096)?;
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(LedgerError::Corrupt(format!(
                "ledger schema version {version} is newer than this build's {SCHEMA_VERSION}"
            )));
        }
        connection.execute_batch(SCHEMA)?;
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(SqliteLedger {
            connection: Arc::new(Mutex::new(connection)),
            in_group: false,
            durability,
        })
    }
}

impl SqliteLedger {
    fn db(&self) -> MutexGuard<'_, Connection> {
        lock(&self.connection)
    }

    /// The connection, for a store that keeps its small objects in this database.
    pub(crate) fn shared_connection(&self) -> SharedConnection {
        self.connection.clone()
    }
}

impl Ledger for SqliteLedger {
    fn begin_group(&mut self) -> Result<(), LedgerError> {
        if !self.in_group {
            // IMMEDIATE: take the write lock now (waiting up to the busy timeout for an operator
            // tool), so that no write in the group can fail on a lock upgrade.
            self.db().prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            self.in_group = true;
        }
        Ok(())
    }

    fn commit_group(&mut self) -> Result<(), LedgerError> {
        if !self.in_group {
            return Ok(());
        }
        self.in_group = false;
        let db = self.db();
        let committed = db.prepare_cached("COMMIT")?.execute([]);
        if let Err(error) = committed {
            if !db.is_autocommit() {
                let _ = db.execute_batch("ROLLBACK");
            }
            return Err(error.into());
        }
        Ok(())
    }

    /// With [`Durability::Full`]: commits stop syncing (`synchronous=NORMAL`; in WAL mode a
    /// commit then only appends to the WAL, and checkpoints still sync) and the handle
    /// `fdatasync`s the WAL file, which is what `synchronous=FULL` does inside every commit.
    /// A transaction already checkpointed is in the synced database file. A file in memory
    /// or a relaxed ledger has nothing to sync.
    fn defer_sync(&mut self) -> Result<Option<SyncHandle>, LedgerError> {
        if self.durability != Durability::Full {
            return Ok(None);
        }
        let db = self.db();
        let Some(path) = db.path().filter(|path| !path.is_empty()).map(str::to_owned) else {
            return Ok(None);
        };
        let journal: String = db.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        // The WAL exists once the schema was written at open; opening it changes nothing.
        let wal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("{path}-wal"))
            .map_err(|error| {
                LedgerError::Corrupt(format!("cannot open the wal of {path}: {error}"))
            })?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Some(SyncHandle::new(move || wal.sync_data())))
    }

    fn record(&mut self, entry: &LedgerEntry) -> Result<(), LedgerError> {
        // A savepoint: its own transaction alone, one atomic part of a group inside one.
        let mut db = self.db();
        let tx = db.savepoint()?;
        if let Some(t) = &entry.transfer {
            let d = t.descriptor.as_ref();
            tx.prepare_cached(
                "INSERT INTO transfers (at_ms, peer, operation, correlation_id, idempotency_key, \
                 schema, content_type, artifact_id, digest, size_bytes, admission_id, answer, \
                 refusal_code, note) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                t.at_ms,
                t.peer.as_str(),
                t.operation.map(|op| op.as_str()),
                t.correlation_id,
                t.idempotency_key,
                d.map(|d| d.schema.as_str()),
                d.map(|d| d.content_type.as_str()),
                d.map(|d| d.artifact_id.as_str()),
                d.map(|d| d.digest.as_str()),
                d.map(|d| d.size_bytes),
                t.admission_id.as_ref().map(Sha256Digest::as_str),
                t.answer.as_str(),
                t.refusal_code.map(|code| code.as_str()),
                t.note,
            ])?;
            if let Some((key, record)) = &entry.idempotency {
                let d = &record.descriptor;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO idempotency (peer, key, schema, content_type, \
                     artifact_id, digest, size_bytes, answer, refusal_code, message) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    t.peer.as_str(),
                    key,
                    d.schema,
                    d.content_type,
                    d.artifact_id,
                    d.digest.as_str(),
                    d.size_bytes,
                    record.outcome.answer.as_str(),
                    record.outcome.refusal_code.map(|code| code.as_str()),
                    record.outcome.message,
                ])?;
            }
        }
        if let Some(held) = &entry.admitted {
            let d = &held.descriptor;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO artifacts (schema, content_type, artifact_id, digest, \
                 size_bytes, source_peer, kept, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                d.schema,
                d.content_type,
                d.artifact_id,
                d.digest.as_str(),
                d.size_bytes,
                held.source_peer.as_str(),
                held.kept,
                held.at_ms,
            ])?;
        }
        if let Some((passport_id, used)) = &entry.consumed_invitation {
            tx.prepare_cached(
                "UPDATE invitations SET consumed_peer = ?2, consumed_key = ?3, \
                 consumed_digest = ?4, consumed_at_ms = ?5 \
                 WHERE passport_id = ?1 AND consumed_at_ms IS NULL",
            )?
            .execute(params![
                passport_id,
                used.peer.as_str(),
                used.idempotency_key,
                used.digest.as_str(),
                used.at_ms,
            ])?;
        }
        if let Some((passport_id, schema, digest)) = &entry.custody_use {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO custody (passport_id, schema, digest) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![passport_id, schema, digest.as_str()])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn idempotency(
        &self,
        peer: &NodeId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, LedgerError> {
        let row = self
            .db()
            .prepare_cached(
                "SELECT schema, content_type, artifact_id, digest, size_bytes, answer, \
                 refusal_code, message FROM idempotency WHERE peer = ?1 AND key = ?2",
            )?
            .query_row(params![peer.as_str(), key], |row| {
                Ok((
                    descriptor_at(row, 0)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, String>(7)?,
                ))
            })
            .optional()?;
        row.map(|(descriptor, answer, code, message)| {
            Ok(IdempotencyRecord {
                descriptor: descriptor_from(descriptor)?,
                outcome: RecordedOutcome {
                    answer: parse(&answer, "answer")?,
                    refusal_code: code.map(|c| parse(&c, "refusal code")).transpose()?,
                    message,
                },
            })
        })
        .transpose()
    }

    fn held(
        &self,
        schema: &str,
        digest: &Sha256Digest,
    ) -> Result<Option<HeldArtifact>, LedgerError> {
        self.db()
            .prepare_cached(&format!(
                "SELECT {HELD_COLUMNS} FROM artifacts WHERE schema = ?1 AND digest = ?2"
            ))?
            .query_row(params![schema, digest.as_str()], held_row)
            .optional()?
            .map(held_from)
            .transpose()
    }

    fn find_held(&self, query: &ArtifactQuery<'_>) -> Result<Option<HeldArtifact>, LedgerError> {
        self.db()
            .prepare_cached(&format!(
                "SELECT {HELD_COLUMNS} FROM artifacts WHERE schema = ?1 AND content_type = ?2 \
                     AND (?3 IS NULL OR artifact_id = ?3) AND (?4 IS NULL OR digest = ?4) \
                     ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row(
                params![
                    query.schema,
                    query.content_type,
                    query.artifact_id,
                    query.digest.map(Sha256Digest::as_str),
                ],
                held_row,
            )
            .optional()?
            .map(held_from)
            .transpose()
    }

    fn held_artifacts(&self) -> Result<Vec<HeldArtifact>, LedgerError> {
        let db = self.db();
        let mut statement = db.prepare_cached(&format!(
            "SELECT {HELD_COLUMNS} FROM artifacts ORDER BY seq"
        ))?;
        let rows = statement
            .query_map([], held_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(held_from).collect()
    }

    fn recent_transfers(&self, limit: usize) -> Result<Vec<TransferRecord>, LedgerError> {
        let db = self.db();
        let mut statement = db.prepare_cached(
            "SELECT at_ms, peer, operation, correlation_id, idempotency_key, schema, \
             content_type, artifact_id, digest, size_bytes, answer, refusal_code, note, \
             admission_id FROM transfers ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = statement
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                let descriptor: Option<String> = row.get(5)?;
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    descriptor.map(|_| descriptor_at(row, 5)).transpose()?,
                    row.get::<_, String>(10)?,
                    row.get::<_, Option<String>>(11)?,
                    row.get::<_, String>(12)?,
                    row.get::<_, Option<String>>(13)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(at, peer, op, correlation, key, descriptor, answer, code, note, admission)| {
                    Ok(TransferRecord {
                        at_ms: unsigned(at, "time")?,
                        peer: parse(&peer, "peer")?,
                        operation: op.map(|op| parse(&op, "operation")).transpose()?,
                        correlation_id: correlation,
                        idempotency_key: key,
                        descriptor: descriptor.map(descriptor_from).transpose()?,
                        admission_id: admission.map(|a| parse(&a, "admission id")).transpose()?,
                        answer: parse(&answer, "answer")?,
                        refusal_code: code.map(|c| parse(&c, "refusal code")).transpose()?,
                        note,
                    })
                },
            )
            .collect()
    }

    fn insert_offer(
        &mut self,
        peer: &NodeId,
        descriptor: &Descriptor,
        correlation_id: Option<&str>,
        at_ms: u64,
    ) -> Result<u64, LedgerError> {
        let db = self.db();
        db.prepare_cached(
            "INSERT INTO offers (peer, schema, content_type, artifact_id, digest, size_bytes, \
             correlation_id, created_at_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            peer.as_str(),
            descriptor.schema,
            descriptor.content_type,
            descriptor.artifact_id,
            descriptor.digest.as_str(),
            descriptor.size_bytes,
            correlation_id,
            at_ms,
            OfferState::Pending.as_str(),
        ])?;
        unsigned(db.last_insert_rowid(), "offer id")
    }

    fn latest_offer(
        &self,
        peer: &NodeId,
        descriptor: &Descriptor,
    ) -> Result<Option<OfferRecord>, LedgerError> {
        self.db()
            .prepare_cached(&format!(
                "SELECT {OFFER_COLUMNS} FROM offers WHERE peer = ?1 AND schema = ?2 \
                     AND content_type = ?3 AND artifact_id = ?4 AND digest = ?5 \
                     AND size_bytes = ?6 ORDER BY id DESC LIMIT 1"
            ))?
            .query_row(
                params![
                    peer.as_str(),
                    descriptor.schema,
                    descriptor.content_type,
                    descriptor.artifact_id,
                    descriptor.digest.as_str(),
                    descriptor.size_bytes,
                ],
                offer_row,
            )
            .optional()?
            .map(OfferRow::into_record)
            .transpose()
    }

    fn pending_offer_count(&self, peer: Option<&NodeId>) -> Result<u64, LedgerError> {
        let count: i64 = self
            .db()
            .prepare_cached(
                "SELECT COUNT(*) FROM offers WHERE (?1 IS NULL OR peer = ?1) AND state = ?2",
            )?
            .query_row(
                params![peer.map(NodeId::as_str), OfferState::Pending.as_str()],
                |row| row.get(0),
            )?;
        unsigned(count, "count")
    }

    fn offer(&self, id: u64) -> Result<Option<OfferRecord>, LedgerError> {
        self.db()
            .prepare_cached(&format!("SELECT {OFFER_COLUMNS} FROM offers WHERE id = ?1"))?
            .query_row(params![id], offer_row)
            .optional()?
            .map(OfferRow::into_record)
            .transpose()
    }

    fn offers(&self) -> Result<Vec<OfferRecord>, LedgerError> {
        let db = self.db();
        let mut statement =
            db.prepare_cached(&format!("SELECT {OFFER_COLUMNS} FROM offers ORDER BY id"))?;
        let rows = statement
            .query_map([], offer_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(OfferRow::into_record).collect()
    }

    fn decide_offer(
        &mut self,
        id: u64,
        accept: bool,
        at_ms: u64,
    ) -> Result<OfferRecord, LedgerError> {
        let wanted = OfferState::decided(accept);
        self.db()
            .prepare_cached(
                "UPDATE offers SET state = ?2, decided_at_ms = ?3 WHERE id = ?1 AND state = ?4",
            )?
            .execute(params![
                id,
                wanted.as_str(),
                at_ms,
                OfferState::Pending.as_str()
            ])?;
        let offer = self.offer(id)?.ok_or(LedgerError::UnknownOffer(id))?;
        if offer.state != wanted {
            return Err(LedgerError::OfferDecided {
                id,
                state: offer.state,
            });
        }
        Ok(offer)
    }

    fn insert_invitation(&mut self, invitation: &InvitationRecord) -> Result<(), LedgerError> {
        let mut db = self.db();
        let tx = db.savepoint()?;
        let linked = tx
            .prepare_cached("UPDATE offers SET invitation_id = ?2 WHERE id = ?1")?
            .execute(params![invitation.offer_id, invitation.passport_id])?;
        if linked == 0 {
            return Err(LedgerError::UnknownOffer(invitation.offer_id));
        }
        let used = invitation.consumed.as_ref();
        tx.prepare_cached(
            "INSERT INTO invitations (passport_id, offer_id, peer, passport, issued_at_ms, \
             expires_at_ms, consumed_peer, consumed_key, consumed_digest, consumed_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            invitation.passport_id,
            invitation.offer_id,
            invitation.peer.as_str(),
            invitation.passport.to_json(),
            invitation.issued_at_ms,
            invitation.expires_at_ms,
            used.map(|u| u.peer.as_str()),
            used.and_then(|u| u.idempotency_key.as_deref()),
            used.map(|u| u.digest.as_str()),
            used.map(|u| u.at_ms),
        ])?;
        tx.commit()?;
        Ok(())
    }

    fn invitation(&self, passport_id: &str) -> Result<Option<InvitationRecord>, LedgerError> {
        type InvitationRow = (
            i64,
            String,
            String,
            i64,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<InvitationRow> = self
            .db()
            .prepare_cached(
                "SELECT offer_id, peer, passport, issued_at_ms, expires_at_ms, consumed_peer, \
                 consumed_key, consumed_digest, consumed_at_ms FROM invitations \
                 WHERE passport_id = ?1",
            )?
            .query_row(params![passport_id], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                ))
            })
            .optional()?;
        let Some((offer_id, peer, passport, issued, expires, c_peer, c_key, c_digest, c_at)) = row
        else {
            return Ok(None);
        };
        let passport = match serde_json::from_str(&passport) {
            Ok(Value::Object(object)) => IssuedPassport::from_object(object),
            _ => None,
        }
        .ok_or_else(|| LedgerError::Corrupt(format!("stored passport {passport_id}")))?;
        let consumed = match (c_peer, c_digest, c_at) {
            (Some(peer), Some(digest), Some(at)) => Some(Consumption {
                peer: parse(&peer, "peer")?,
                idempotency_key: c_key,
                digest: parse(&digest, "digest")?,
                at_ms: unsigned(at, "time")?,
            }),
            _ => None,
        };
        Ok(Some(InvitationRecord {
            passport_id: passport_id.to_owned(),
            offer_id: unsigned(offer_id, "offer id")?,
            peer: parse(&peer, "peer")?,
            passport,
            issued_at_ms: unsigned(issued, "time")?,
            expires_at_ms: unsigned(expires, "time")?,
            consumed,
        }))
    }

    fn revoke(&mut self, passport_id: &str, at_ms: u64) -> Result<(), LedgerError> {
        self.db()
            .prepare_cached(
                "INSERT OR IGNORE INTO revocations (passport_id, at_ms) VALUES (?1, ?2)",
            )?
            .execute(params![passport_id, at_ms])?;
        Ok(())
    }

    fn is_revoked(&self, passport_id: &str) -> Result<bool, LedgerError> {
        Ok(self
            .db()
            .prepare_cached("SELECT 1 FROM revocations WHERE passport_id = ?1")?
            .query_row(params![passport_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn custody_usage(
        &self,
        passport_id: &str,
        schema: &str,
        digest: &Sha256Digest,
    ) -> Result<(u64, bool), LedgerError> {
        let (count, holds): (i64, i64) = self
            .db()
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(schema = ?2 AND digest = ?3), 0) FROM custody \
             WHERE passport_id = ?1",
            )?
            .query_row(params![passport_id, schema, digest.as_str()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        Ok((unsigned(count, "count")?, holds > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_ledger_contract_in_memory() {
        super::super::tests::ledger_contract(&mut SqliteLedger::open_in_memory().unwrap());
    }

    #[test]
    fn keeps_the_ledger_contract_on_disk_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        let mut ledger = SqliteLedger::open(&path).unwrap();
        super::super::tests::ledger_contract(&mut ledger);
        let before = (
            ledger.recent_transfers(100).unwrap(),
            ledger.offers().unwrap(),
            ledger.held_artifacts().unwrap(),
        );
        drop(ledger);
        let reopened = SqliteLedger::open(&path).unwrap();
        let after = (
            reopened.recent_transfers(100).unwrap(),
            reopened.offers().unwrap(),
            reopened.held_artifacts().unwrap(),
        );
        assert_eq!(before, after);
        assert!(reopened.is_revoked("passport:capability:x").unwrap());
    }

    #[test]
    fn keeps_the_ledger_contract_relaxed() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger =
            SqliteLedger::open_with(dir.path().join("inac.sqlite"), Durability::Relaxed).unwrap();
        super::super::tests::ledger_contract(&mut ledger);
        let synchronous: i64 = ledger
            .db()
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!(synchronous, 1, "NORMAL");
    }

    #[test]
    fn deferred_sync_stops_syncing_in_commits_and_syncs_the_wal_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let mut relaxed =
            SqliteLedger::open_with(dir.path().join("relaxed.sqlite"), Durability::Relaxed)
                .unwrap();
        assert!(relaxed.defer_sync().unwrap().is_none(), "nothing to defer");
        assert!(
            SqliteLedger::open_in_memory()
                .unwrap()
                .defer_sync()
                .unwrap()
                .is_none()
        );
        let mut ledger = SqliteLedger::open(dir.path().join("inac.sqlite")).unwrap();
        let synchronous = |ledger: &SqliteLedger| -> i64 {
            ledger
                .db()
                .pragma_query_value(None, "synchronous", |row| row.get(0))
                .unwrap()
        };
        assert_eq!(synchronous(&ledger), 2, "FULL");
        let handle = ledger.defer_sync().unwrap().expect("a full ledger defers");
        assert_eq!(synchronous(&ledger), 1, "NORMAL");
        ledger.begin_group().unwrap();
        ledger.revoke("passport:capability:x", 1).unwrap();
        ledger.commit_group().unwrap();
        handle.sync().unwrap();
        drop(ledger);
        let reopened = SqliteLedger::open(dir.path().join("inac.sqlite")).unwrap();
        assert!(reopened.is_revoked("passport:capability:x").unwrap());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        drop(SqliteLedger::open(&path).unwrap());
        let connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        drop(connection);
        assert!(matches!(
            SqliteLedger::open(&path),
            Err(LedgerError::Corrupt(message)) if message.contains("99")
        ));
    }
}
