//! [`SqliteLedger`]: the [`Ledger`] in one SQLite file (WAL; `synchronous=FULL` by default,
//! so that every decision survives power loss the moment it is answered).
//!
//! The tables a push writes (`transfers`, `idempotency`, `artifacts`, `objects`) are
//! append-only rowid tables without secondary indexes on random keys; their lookups go through
//! [`index`], maps from hashed keys to row ids that this connection keeps current. A group of
//! decisions then dirties the last leaf of each table instead of one random leaf per decision
//! and per index.

mod index;
mod migrate;

use std::{
    path::Path,
    str::FromStr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use orbi_types::{NodeId, Sha256Digest};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

pub(crate) use self::index::{Index, Lookup, Table};
use super::{
    ArtifactQuery, Consumption, HeldArtifact, IdempotencyRecord, InvitationRecord, Ledger,
    LedgerEntry, LedgerError, OfferRecord, OfferState, RecordedOutcome, SyncHandle, TransferRecord,
};
use crate::{Descriptor, passport::IssuedPassport, store::Durability};

/// 2: `idempotency`, `artifacts` and `objects` lost their unique indexes to [`index`]
/// (see [`migrate`]).
const SCHEMA_VERSION: i64 = 2;

/// Rows are never deleted, so plain `INTEGER PRIMARY KEY` ids only grow (no AUTOINCREMENT:
/// it costs a write to `sqlite_sequence` on every insert) and every row past a high-water mark
/// is new. `idempotency` keeps every recorded outcome (the newest per `(peer, key)` counts);
/// `artifacts` one row per `(schema, digest)` and `objects` one per digest, both enforced
/// through [`index`] under the write lock. `artifacts_by_kind` serves requests naming neither
/// id nor digest; its keys arrive in `seq` order within a kind, so it grows at a few leaves.
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
    id INTEGER PRIMARY KEY,
    peer TEXT NOT NULL,
    key TEXT NOT NULL,
    schema TEXT NOT NULL, content_type TEXT NOT NULL, artifact_id TEXT NOT NULL,
    digest TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    answer TEXT NOT NULL,
    refusal_code TEXT,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    seq INTEGER PRIMARY KEY,
    schema TEXT NOT NULL, content_type TEXT NOT NULL, artifact_id TEXT NOT NULL,
    digest TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    source_peer TEXT NOT NULL,
    kept INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_by_kind ON artifacts (schema, content_type);
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
    digest TEXT NOT NULL,
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
    durability: Durability,
    /// How many of the latest decisions `transfers` keeps ([`TRANSFER_LOG_ROWS`]).
    transfer_log_rows: u64,
}

/// How many decisions the transfer log keeps by default: every decision is written to it
/// (spec §6), and anyone who can reach the node can make it decide, so older decisions are
/// dropped. A typical decision takes about 300 bytes (75 MB for all of them); one whose peer
/// filled every text field (256 characters each, up to 4 bytes a character, and a
/// 1 024-character note) about 7 KB, under 2 GB for all. What a decision changed
/// (idempotency outcomes, held artifacts, offers, invitations, custody use) lives in other
/// tables and is kept. A ledger from before this limit loses its older rows in one delete,
/// inside the first group that reaches a multiple of 1 024 decisions.
pub const TRANSFER_LOG_ROWS: u64 = 250_000;

/// The ledger's connection and its lookup index, shared with a [`crate::store::HybridStore`]
/// whose small objects live in the same database (and so in the same transactions and group
/// commits).
pub(crate) type SharedConnection = Arc<Mutex<Db>>;

/// A connection and the index of its append-only tables.
pub(crate) struct Db {
    pub(crate) connection: Connection,
    pub(crate) index: Index,
    group: Group,
}

/// The state of a ledger group ([`Ledger::begin_group`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// Every write commits on its own.
    Closed,
    /// Writes join the group's transaction.
    Open,
    /// SQLite rolled back the group's whole transaction (on `SQLITE_FULL`, `SQLITE_IOERR` or
    /// `SQLITE_NOMEM` it may undo more than the failed statement): every decision of the group
    /// is gone, so writes fail until the group ends instead of committing on their own.
    Broken,
}

/// The error of a write into a group whose transaction SQLite rolled back.
fn group_lost() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some(
            "the group's transaction was rolled back by an earlier error; nothing is written \
             until the group ends"
                .into(),
        ),
    )
}

/// Locks a shared connection. A panic elsewhere leaves SQLite and the index consistent: a
/// [`Db::write`] that unwinds rolls back its transaction (or savepoint) and its index changes.
pub(crate) fn lock(connection: &SharedConnection) -> MutexGuard<'_, Db> {
    connection.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Statements that need no index run on the connection directly.
impl std::ops::Deref for Db {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.connection
    }
}

/// An unfinished [`Db::write`]: dropped before [`Unfinished::finished`] (on error or while
/// unwinding from a panic), it undoes the write in SQLite and in the index.
struct Unfinished<'a> {
    db: &'a mut Db,
    outermost: bool,
    mark: usize,
}

impl Unfinished<'_> {
    fn finished(self) {
        std::mem::forget(self);
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        let db = &mut *self.db;
        if !db.connection.is_autocommit() {
            let undo = if self.outermost {
                "ROLLBACK"
            } else {
                "ROLLBACK TO inac_write; RELEASE inac_write"
            };
            let _ = db.connection.execute_batch(undo);
        }
        if !self.outermost && db.connection.is_autocommit() {
            // SQLite ended the group's transaction, not just this savepoint: the index forgets
            // the whole group, and the group writes nothing more.
            db.index.roll_back_to(0);
            if db.group == Group::Open {
                db.group = Group::Broken;
            }
        } else {
            db.index.roll_back_to(self.mark);
        }
    }
}

impl Db {
    fn new(connection: Connection) -> Self {
        Db {
            connection,
            index: Index::new(),
            group: Group::Closed,
        }
    }

    /// Fails while the open group is broken, noticing a group transaction that SQLite rolled
    /// back under a statement run outside [`Db::write`].
    pub(crate) fn writable(&mut self) -> rusqlite::Result<()> {
        if self.group == Group::Open && self.connection.is_autocommit() {
            self.index.roll_back_to(0);
            self.group = Group::Broken;
        }
        if self.group == Group::Broken {
            return Err(group_lost());
        }
        Ok(())
    }

    /// Runs `write` atomically with the write lock held: in a transaction of its own (after
    /// reading in what other connections committed), or inside the one already open (a
    /// group) as a savepoint. On error, or if `write` panics, neither the database nor the
    /// index keeps any of it; if SQLite rolled back the group's whole transaction, the index
    /// forgets the whole group and later writes fail until the group ends.
    pub(crate) fn write<T, E: From<rusqlite::Error>>(
        &mut self,
        write: impl FnOnce(&Connection, &mut Index) -> Result<T, E>,
    ) -> Result<T, E> {
        self.writable()?;
        let outermost = self.connection.is_autocommit();
        let (begin, end) = if outermost {
            ("BEGIN IMMEDIATE", "COMMIT")
        } else {
            ("SAVEPOINT inac_write", "RELEASE inac_write")
        };
        let mark = self.index.mark();
        self.connection.prepare_cached(begin)?.execute([])?;
        let unfinished = Unfinished {
            db: self,
            outermost,
            mark,
        };
        let db = &mut *unfinished.db;
        if outermost {
            db.index.refresh(&db.connection)?;
        }
        let value = write(&db.connection, &mut db.index)?;
        db.connection.prepare_cached(end)?.execute([])?;
        if outermost {
            db.index.committed();
        }
        unfinished.finished();
        Ok(value)
    }

    /// Brings the index up to date before an indexed read outside this connection's
    /// transactions.
    pub(crate) fn fresh(&mut self) -> rusqlite::Result<()> {
        if self.connection.is_autocommit() {
            self.index.refresh(&self.connection)?;
        }
        Ok(())
    }
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

/// The reads of the push path and of requests: each a row-id search or an index search, never
/// a scan (a test checks their query plans).
#[cfg(test)]
const PLANNED_READS: [&str; 4] = [
    IDEMPOTENCY_BY_ID,
    ARTIFACT_BY_SEQ,
    LATEST_OF_KIND,
    crate::store::hybrid::OBJECT_BY_ID,
];

const IDEMPOTENCY_BY_ID: &str = "SELECT peer, key, schema, content_type, artifact_id, digest, \
     size_bytes, answer, refusal_code, message FROM idempotency WHERE id = ?1";

const ARTIFACT_BY_SEQ: &str = "SELECT schema, content_type, artifact_id, digest, size_bytes, \
     source_peer, kept, at_ms FROM artifacts WHERE seq = ?1";

const LATEST_OF_KIND: &str = "SELECT schema, content_type, artifact_id, digest, size_bytes, \
     source_peer, kept, at_ms FROM artifacts WHERE schema = ?1 AND content_type = ?2 \
     ORDER BY seq DESC LIMIT 1";

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

/// Appends a decision to the transfer log, and every so often drops what lies beyond its
/// latest `keep` (ids grow by one per row, so the cut is one range at the table's start).
fn insert_transfer(tx: &Connection, t: &TransferRecord, keep: u64) -> rusqlite::Result<()> {
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
    let id = u64::try_from(tx.last_insert_rowid()).unwrap_or(0);
    if id > keep && id % keep.clamp(1, 1024) == 0 {
        tx.prepare_cached("DELETE FROM transfers WHERE id <= ?1")?
            .execute(params![id - keep])?;
    }
    Ok(())
}

/// Appends the record under `(peer, key)`; it supersedes any earlier one.
fn insert_idempotency(
    tx: &Connection,
    index: &mut Index,
    peer: &str,
    key: &str,
    record: &IdempotencyRecord,
) -> rusqlite::Result<()> {
    index.load(tx, Table::Idempotency)?;
    let d = &record.descriptor;
    tx.prepare_cached(
        "INSERT INTO idempotency (peer, key, schema, content_type, artifact_id, digest, \
         size_bytes, answer, refusal_code, message) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        peer,
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
    let hash = index.hash_idempotency(peer, key);
    index.inserted(
        Table::Idempotency,
        tx.last_insert_rowid(),
        &[(Lookup::Idempotency, hash)],
    );
    Ok(())
}

/// Appends a held artifact (the caller checked that its `(schema, digest)` is new).
fn insert_artifact(
    tx: &Connection,
    index: &mut Index,
    held: &HeldArtifact,
) -> rusqlite::Result<()> {
    let d = &held.descriptor;
    index.load(tx, Table::Artifacts)?;
    tx.prepare_cached(
        "INSERT INTO artifacts (schema, content_type, artifact_id, digest, size_bytes, \
         source_peer, kept, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
    let keys = [
        (Lookup::Held, index.hash_held(&d.schema, d.digest.as_str())),
        (
            Lookup::ArtifactId,
            index.hash_artifact_id(&d.schema, &d.content_type, &d.artifact_id),
        ),
        (
            Lookup::OwnArtifactId,
            index.hash_own_artifact_id(
                &d.schema,
                &d.content_type,
                &d.artifact_id,
                held.source_peer.as_str(),
            ),
        ),
    ];
    index.inserted(Table::Artifacts, tx.last_insert_rowid(), &keys);
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// Artifact rows read on this thread (tests only).
    static ARTIFACT_ROWS_READ: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn artifact_row(connection: &Connection, seq: i64) -> rusqlite::Result<Option<HeldRow>> {
    #[cfg(test)]
    ARTIFACT_ROWS_READ.with(|read| read.set(read.get() + 1));
    connection
        .prepare_cached(ARTIFACT_BY_SEQ)?
        .query_row(params![seq], held_row)
        .optional()
}

/// The held artifact `(schema, digest)`, through the index.
fn held_row_of(
    connection: &Connection,
    index: &mut Index,
    schema: &str,
    digest: &str,
) -> rusqlite::Result<Option<HeldRow>> {
    let hash = index.hash_held(schema, digest);
    for &seq in index.candidates(connection, Lookup::Held, hash)? {
        if let Some(row) = artifact_row(connection, seq)?
            && row.0.0 == schema
            && row.0.3 == digest
        {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// `path` as SQLite must be given it to open that very file: the bundled SQLite reads names
/// starting with `file:` as URIs (it is built with `SQLITE_USE_URI`), so `file:x` would open
/// `x` and `file::memory:` a database in memory. A relative path is given from `./`.
fn plain_path(path: &Path) -> std::borrow::Cow<'_, Path> {
    if path.is_relative() && !path.as_os_str().is_empty() && path != Path::new(":memory:") {
        std::borrow::Cow::Owned(Path::new(".").join(path))
    } else {
        std::borrow::Cow::Borrowed(path)
    }
}

impl SqliteLedger {
    /// Opens (creating if needed) the ledger file at `path` with [`Durability::Full`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (creating if needed, migrating an older schema) the ledger file at `path`.
    /// A new file is readable by this user only (0600 on Unix): small artifacts live in it.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, LedgerError> {
        let path = path.as_ref();
        crate::store::create_private_file(path).map_err(|source| LedgerError::Create {
            path: path.to_owned(),
            source,
        })?;
        Self::init(
            Connection::open(plain_path(path))?,
            durability,
            Opening::Create,
        )
    }

    /// Opens the existing ledger file at `path`, for a tool beside the node that serves it:
    /// nothing is created and nothing migrated. A file of an older schema (or none, version 0)
    /// is [`LedgerError::Outdated`]: the serving node's [`SqliteLedger::open`] migrates it.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let flags = rusqlite::OpenFlags::default() - rusqlite::OpenFlags::SQLITE_OPEN_CREATE;
        Self::init(
            Connection::open_with_flags(plain_path(path.as_ref()), flags)?,
            Durability::Full,
            Opening::Existing,
        )
    }

    /// A ledger in memory (SQLite's `:memory:`), for tests of the SQL itself.
    pub fn open_in_memory() -> Result<Self, LedgerError> {
        Self::init(
            Connection::open_in_memory()?,
            Durability::Full,
            Opening::Create,
        )
    }

    fn init(
        connection: Connection,
        durability: Durability,
        opening: Opening,
    ) -> Result<Self, LedgerError> {
        connection.busy_timeout(Duration::from_secs(5))?;
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(LedgerError::Corrupt(format!(
                "ledger schema version {version} is newer than this build's {SCHEMA_VERSION}"
            )));
        }
        if opening == Opening::Existing && version < SCHEMA_VERSION {
            return Err(LedgerError::Outdated {
                found: version,
                current: SCHEMA_VERSION,
            });
        }
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
        if version == 1 {
            migrate::from_v1(&connection)?;
        } else if opening == Opening::Create {
            connection.execute_batch(SCHEMA)?;
            connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(SqliteLedger {
            connection: Arc::new(Mutex::new(Db::new(connection))),
            durability,
            transfer_log_rows: TRANSFER_LOG_ROWS,
        })
    }
}

/// How [`SqliteLedger::init`] treats a file that is not at [`SCHEMA_VERSION`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Create the schema or migrate to it.
    Create,
    /// Refuse anything but the current schema.
    Existing,
}

impl SqliteLedger {
    fn db(&self) -> MutexGuard<'_, Db> {
        lock(&self.connection)
    }

    /// The connection for a write outside [`Db::write`] (see [`Db::writable`]).
    fn writable(&self) -> Result<MutexGuard<'_, Db>, LedgerError> {
        let mut db = self.db();
        db.writable()?;
        Ok(db)
    }

    /// Keeps the latest `rows` decisions in the transfer log instead of
    /// [`TRANSFER_LOG_ROWS`] (at least one).
    pub fn with_transfer_log_rows(mut self, rows: u64) -> Self {
        self.transfer_log_rows = rows.max(1);
        self
    }

    /// Builds the lookup index now (a serving node does so at start, not at its first push).
    pub fn load_index(&self) -> Result<(), LedgerError> {
        let mut db = self.db();
        let Db {
            connection, index, ..
        } = &mut *db;
        for table in Table::ALL {
            index.load(connection, table)?;
        }
        Ok(())
    }

    /// The connection, for a store that keeps its small objects in this database.
    pub(crate) fn shared_connection(&self) -> SharedConnection {
        self.connection.clone()
    }
}

impl Ledger for SqliteLedger {
    fn begin_group(&mut self) -> Result<(), LedgerError> {
        let mut db = self.db();
        if db.group != Group::Closed {
            return Ok(());
        }
        // IMMEDIATE: take the write lock now (waiting up to the busy timeout for an operator
        // tool), so that no write in the group can fail on a lock upgrade, and nobody else
        // commits until the group does: the index is read in once here.
        db.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let Db {
            connection, index, ..
        } = &mut *db;
        if let Err(error) = index.refresh(connection) {
            let _ = connection.execute_batch("ROLLBACK");
            return Err(error.into());
        }
        db.group = Group::Open;
        Ok(())
    }

    fn commit_group(&mut self) -> Result<(), LedgerError> {
        let mut db = self.db();
        match std::mem::replace(&mut db.group, Group::Closed) {
            Group::Closed => return Ok(()),
            // Nothing of the group is left to commit; its answers must not report success.
            Group::Broken => return Err(group_lost().into()),
            Group::Open if db.is_autocommit() => {
                db.index.roll_back_to(0);
                return Err(group_lost().into());
            }
            Group::Open => {}
        }
        let committed = db
            .prepare_cached("COMMIT")
            .and_then(|mut statement| statement.execute([]));
        if let Err(error) = committed {
            if !db.is_autocommit() {
                let _ = db.execute_batch("ROLLBACK");
            }
            db.index.roll_back_to(0);
            return Err(error.into());
        }
        db.index.committed();
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
        let keep = self.transfer_log_rows;
        self.db().write(|tx, index| {
            if let Some(t) = &entry.transfer {
                insert_transfer(tx, t, keep)?;
                if let Some((key, record)) = &entry.idempotency {
                    insert_idempotency(tx, index, t.peer.as_str(), key, record)?;
                }
            }
            if let Some(held) = &entry.admitted {
                let d = &held.descriptor;
                // First admission wins: a second one of the same (schema, digest) adds nothing.
                if held_row_of(tx, index, &d.schema, d.digest.as_str())?.is_none() {
                    insert_artifact(tx, index, held)?;
                }
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
                    "INSERT OR IGNORE INTO custody (passport_id, schema, digest) \
                     VALUES (?1, ?2, ?3)",
                )?
                .execute(params![passport_id, schema, digest.as_str()])?;
            }
            Ok(())
        })
    }

    fn idempotency(
        &self,
        peer: &NodeId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, LedgerError> {
        let mut db = self.db();
        db.fresh()?;
        let Db {
            connection, index, ..
        } = &mut *db;
        let hash = index.hash_idempotency(peer.as_str(), key);
        // The newest row under the key is the record (a retryable outcome may be followed).
        for &id in index
            .candidates(connection, Lookup::Idempotency, hash)?
            .iter()
            .rev()
        {
            let row = connection
                .prepare_cached(IDEMPOTENCY_BY_ID)?
                .query_row(params![id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        descriptor_at(row, 2)?,
                        row.get::<_, String>(7)?,
                        row.get::<_, Option<String>>(8)?,
                        row.get::<_, String>(9)?,
                    ))
                })
                .optional()?;
            let Some((row_peer, row_key, descriptor, answer, code, message)) = row else {
                continue;
            };
            if row_peer != peer.as_str() || row_key != key {
                continue;
            }
            return Ok(Some(IdempotencyRecord {
                descriptor: descriptor_from(descriptor)?,
                outcome: RecordedOutcome {
                    answer: parse(&answer, "answer")?,
                    refusal_code: code.map(|c| parse(&c, "refusal code")).transpose()?,
                    message,
                },
            }));
        }
        Ok(None)
    }

    fn held(
        &self,
        schema: &str,
        digest: &Sha256Digest,
    ) -> Result<Option<HeldArtifact>, LedgerError> {
        let mut db = self.db();
        db.fresh()?;
        let Db {
            connection, index, ..
        } = &mut *db;
        held_row_of(connection, index, schema, digest.as_str())?
            .map(held_from)
            .transpose()
    }

    fn find_held(&self, query: &ArtifactQuery<'_>) -> Result<Option<HeldArtifact>, LedgerError> {
        let mut db = self.db();
        db.fresh()?;
        let Db {
            connection, index, ..
        } = &mut *db;
        let found = match (query.digest, query.artifact_id) {
            // One row per (schema, digest): it matches or nothing does.
            (Some(digest), _) => held_row_of(connection, index, query.schema, digest.as_str())?
                .map(held_from)
                .transpose()?
                .filter(|held| query.matches(held)),
            (None, Some(artifact_id)) => {
                // A peer's own artifacts are found among its own rows: another peer's rows
                // under the same id are never read.
                let (lookup, hash) = match query.delivered_by {
                    Some(peer) => (
                        Lookup::OwnArtifactId,
                        index.hash_own_artifact_id(
                            query.schema,
                            query.content_type,
                            artifact_id,
                            peer.as_str(),
                        ),
                    ),
                    None => (
                        Lookup::ArtifactId,
                        index.hash_artifact_id(query.schema, query.content_type, artifact_id),
                    ),
                };
                let mut found = None;
                for &seq in index.candidates(connection, lookup, hash)?.iter().rev() {
                    if let Some(held) = artifact_row(connection, seq)?.map(held_from).transpose()?
                        && query.matches(&held)
                    {
                        found = Some(held);
                        break;
                    }
                }
                found
            }
            (None, None) => connection
                .prepare_cached(LATEST_OF_KIND)?
                .query_row(params![query.schema, query.content_type], held_row)
                .optional()?
                .map(held_from)
                .transpose()?,
        };
        Ok(found)
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
        let db = self.writable()?;
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
        // Row ids are i64: a larger id names no offer (SQLite would refuse to bind it).
        let Ok(row_id) = i64::try_from(id) else {
            return Ok(None);
        };
        self.db()
            .prepare_cached(&format!("SELECT {OFFER_COLUMNS} FROM offers WHERE id = ?1"))?
            .query_row(params![row_id], offer_row)
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
        let Ok(row_id) = i64::try_from(id) else {
            return Err(LedgerError::UnknownOffer(id));
        };
        let wanted = OfferState::decided(accept);
        self.writable()?
            .prepare_cached(
                "UPDATE offers SET state = ?2, decided_at_ms = ?3 WHERE id = ?1 AND state = ?4",
            )?
            .execute(params![
                row_id,
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
        let mut db = self.writable()?;
        let tx = db.connection.savepoint()?;
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
        self.writable()?
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
    fn the_transfer_log_keeps_its_latest_decisions_only() {
        let mut ledger = SqliteLedger::open_in_memory()
            .unwrap()
            .with_transfer_log_rows(10);
        let peer = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        for at_ms in 1..=95 {
            ledger
                .record(&LedgerEntry {
                    transfer: Some(super::super::tests::transfer(&peer, at_ms)),
                    ..LedgerEntry::default()
                })
                .unwrap();
        }
        let kept: Vec<u64> = ledger
            .recent_transfers(1000)
            .unwrap()
            .iter()
            .map(|t| t.at_ms)
            .collect();
        // Cut every 10 rows: between 10 and 19 kept, the newest first.
        assert_eq!(kept.len(), 15, "{kept:?}");
        assert_eq!(kept.first(), Some(&95));
        assert_eq!(kept.last(), Some(&81));
    }

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

    fn sample(tag: &[u8], peer_seed: u8) -> (Descriptor, HeldArtifact) {
        let descriptor = Descriptor::of_bytes("vendor.x.v1", "text/plain", tag);
        let held = HeldArtifact {
            descriptor: descriptor.clone(),
            source_peer: orbi_types::KeyPair::from_seed(&[peer_seed; 32]).node_id(),
            kept: true,
            at_ms: u64::from(peer_seed),
        };
        (descriptor, held)
    }

    fn admitting(held: &HeldArtifact) -> LedgerEntry {
        LedgerEntry {
            admitted: Some(held.clone()),
            ..LedgerEntry::default()
        }
    }

    fn rows(ledger: &SqliteLedger, table: &str) -> i64 {
        ledger
            .db()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    }

    #[cfg(unix)]
    #[test]
    fn a_new_ledger_behind_a_dangling_symlink_is_private_and_memory_writes_no_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.sqlite");
        let link = dir.path().join("inac.sqlite");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        drop(SqliteLedger::open(&link).unwrap());
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", target.display());
        drop(SqliteLedger::open(":memory:").unwrap());
        assert!(
            !Path::new(":memory:").exists(),
            "an in-memory ledger wrote a file"
        );
    }

    #[test]
    fn a_peers_request_by_id_reads_only_its_own_rows() {
        let mut ledger = SqliteLedger::open_in_memory().unwrap();
        let (squatter, owner, stranger) = (
            orbi_types::KeyPair::from_seed(&[2; 32]).node_id(),
            orbi_types::KeyPair::from_seed(&[3; 32]).node_id(),
            orbi_types::KeyPair::from_seed(&[4; 32]).node_id(),
        );
        let held = |i: u32, peer: &NodeId| HeldArtifact {
            descriptor: Descriptor::of_bytes("vendor.x.v1", "text/plain", &i.to_be_bytes())
                .with_artifact_id("note:X"),
            source_peer: peer.clone(),
            kept: true,
            at_ms: u64::from(i),
        };
        let own = held(0, &owner);
        ledger.record(&admitting(&own)).unwrap();
        for i in 1..=500 {
            ledger.record(&admitting(&held(i, &squatter))).unwrap();
        }
        let query = |peer| ArtifactQuery {
            schema: "vendor.x.v1",
            content_type: "text/plain",
            artifact_id: Some("note:X"),
            digest: None,
            delivered_by: Some(peer),
        };
        let read = || ARTIFACT_ROWS_READ.with(std::cell::Cell::get);
        let before = read();
        assert_eq!(ledger.find_held(&query(&owner)).unwrap(), Some(own));
        assert_eq!(ledger.find_held(&query(&stranger)).unwrap(), None);
        assert_eq!(read() - before, 1, "one row read, the owner's");
        // Reopened, the lookup is rebuilt from the table the same way.
        ledger.db().index = Index::new();
        assert_eq!(ledger.find_held(&query(&stranger)).unwrap(), None);
    }

    #[test]
    fn keeps_the_ledger_contract_when_every_key_shares_one_hash() {
        let mut ledger = SqliteLedger::open_in_memory().unwrap();
        ledger.db().index = Index::colliding();
        super::super::tests::ledger_contract(&mut ledger);
        let (_, first) = sample(b"one", 1);
        let (_, second) = sample(b"two", 2);
        for held in [&first, &second, &first] {
            ledger.record(&admitting(held)).unwrap();
        }
        assert_eq!(
            rows(&ledger, "artifacts"),
            4,
            "the contract's two and these two"
        );
        for held in [&first, &second] {
            let d = &held.descriptor;
            assert_eq!(
                ledger.held(&d.schema, &d.digest).unwrap().as_ref(),
                Some(held)
            );
            let query = ArtifactQuery {
                schema: &d.schema,
                content_type: &d.content_type,
                artifact_id: Some(&d.artifact_id),
                digest: None,
                delivered_by: None,
            };
            assert_eq!(ledger.find_held(&query).unwrap().as_ref(), Some(held));
        }
    }

    #[test]
    fn a_failed_write_leaves_neither_rows_nor_index_entries() {
        let mut ledger = SqliteLedger::open_in_memory().unwrap();
        let (a, kept) = sample(b"a", 1);
        let (b, dropped) = sample(b"b", 2);
        let fail = |ledger: &SqliteLedger| {
            let failed: Result<(), LedgerError> = ledger.db().write(|tx, index| {
                insert_artifact(tx, index, &dropped)?;
                Err(LedgerError::Corrupt("stop".into()))
            });
            assert!(failed.is_err());
        };
        // Inside a group: the savepoint goes, the decision before it stays.
        ledger.begin_group().unwrap();
        ledger.record(&admitting(&kept)).unwrap();
        fail(&ledger);
        assert_eq!(ledger.held(&b.schema, &b.digest).unwrap(), None);
        ledger.commit_group().unwrap();
        // On its own: the whole transaction goes.
        fail(&ledger);
        assert_eq!(ledger.held(&b.schema, &b.digest).unwrap(), None);
        assert_eq!(ledger.held(&a.schema, &a.digest).unwrap(), Some(kept));
        assert_eq!(rows(&ledger, "artifacts"), 1);
        assert_eq!(
            ledger.db().index.entries(),
            3,
            "held, artifact id and own artifact id of the kept one"
        );
        ledger.record(&admitting(&dropped)).unwrap();
        assert_eq!(ledger.held(&b.schema, &b.digest).unwrap(), Some(dropped));
    }

    #[test]
    fn sees_what_other_connections_commit_and_keeps_keys_unique_across_them() {
        use crate::store::Committed;
        use crate::store::{FsStore, HybridStore, Store, stage_bytes};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        let mut ours = SqliteLedger::open(&path).unwrap();
        let mut theirs = SqliteLedger::open(&path).unwrap();
        let (d, held) = sample(b"shared", 1);
        let peer = held.source_peer.clone();
        let record = IdempotencyRecord {
            descriptor: d.clone(),
            outcome: RecordedOutcome::of(&crate::Verdict::Ingested),
        };
        // Our index is built (empty) before the other connection writes.
        assert_eq!(ours.held(&d.schema, &d.digest).unwrap(), None);
        assert_eq!(ours.idempotency(&peer, "k").unwrap(), None);
        theirs
            .record(&LedgerEntry {
                transfer: Some(super::super::tests::transfer(&peer, 1)),
                idempotency: Some(("k".into(), record.clone())),
                admitted: Some(held.clone()),
                ..LedgerEntry::default()
            })
            .unwrap();
        assert_eq!(ours.held(&d.schema, &d.digest).unwrap(), Some(held.clone()));
        assert_eq!(ours.idempotency(&peer, "k").unwrap(), Some(record));
        let (_, later) = sample(b"shared", 2);
        ours.begin_group().unwrap();
        ours.record(&admitting(&later)).unwrap();
        ours.commit_group().unwrap();
        assert_eq!(
            rows(&ours, "artifacts"),
            1,
            "the first admission stays the only one"
        );
        assert_eq!(theirs.held(&d.schema, &d.digest).unwrap(), Some(held));

        // One file store (it admits one writer); the two ledgers' connections share its objects.
        let files = FsStore::open(dir.path().join("store")).unwrap();
        let store = |ledger: &SqliteLedger| HybridStore::new(files.clone(), ledger, 1024);
        let (our_store, their_store) = (store(&ours), store(&theirs));
        let digest = Sha256Digest::of(b"{}");
        assert!(!our_store.contains(&digest).unwrap());
        let staged = stage_bytes(&their_store, b"{}").unwrap();
        assert_eq!(staged.commit(&digest).unwrap(), Committed::Stored);
        assert!(our_store.contains(&digest).unwrap());
        let again = stage_bytes(&our_store, b"{}").unwrap();
        assert_eq!(again.commit(&digest).unwrap(), Committed::AlreadyHeld);
        assert_eq!(rows(&ours, "objects"), 1);
    }

    /// The three tables as version 1 created them.
    const V1_TABLES: &str = "
        CREATE TABLE idempotency (peer TEXT NOT NULL, key TEXT NOT NULL,
            schema TEXT NOT NULL, content_type TEXT NOT NULL, artifact_id TEXT NOT NULL,
            digest TEXT NOT NULL, size_bytes INTEGER NOT NULL, answer TEXT NOT NULL,
            refusal_code TEXT, message TEXT NOT NULL, PRIMARY KEY (peer, key));
        CREATE TABLE artifacts (seq INTEGER PRIMARY KEY,
            schema TEXT NOT NULL, content_type TEXT NOT NULL, artifact_id TEXT NOT NULL,
            digest TEXT NOT NULL, size_bytes INTEGER NOT NULL, source_peer TEXT NOT NULL,
            kept INTEGER NOT NULL, at_ms INTEGER NOT NULL, UNIQUE (schema, digest));
        CREATE TABLE objects (id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE,
            bytes BLOB NOT NULL);
        PRAGMA user_version = 1;";

    #[test]
    fn migrates_a_version_1_ledger_keeping_every_row() {
        use crate::store::{Committed, FsStore, HybridStore, Store, stage_bytes};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        let (d, held) = sample(b"old", 1);
        let peer = held.source_peer.as_str().to_owned();
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(V1_TABLES).unwrap();
            for (key, answer) in [("k-1", "refused"), ("k-2", "ingested")] {
                old.execute(
                    "INSERT INTO idempotency VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        peer,
                        key,
                        d.schema,
                        d.content_type,
                        d.artifact_id,
                        d.digest.as_str(),
                        d.size_bytes,
                        answer,
                        Option::<String>::None,
                        "",
                    ],
                )
                .unwrap();
            }
            old.execute(
                "INSERT INTO artifacts VALUES (7, ?1, ?2, ?3, ?4, ?5, ?6, 1, 1)",
                params![
                    d.schema,
                    d.content_type,
                    d.artifact_id,
                    d.digest.as_str(),
                    d.size_bytes,
                    peer,
                ],
            )
            .unwrap();
            old.execute(
                "INSERT INTO objects VALUES (4, ?1, ?2)",
                params![Sha256Digest::of(b"{}").as_str(), b"{}".to_vec()],
            )
            .unwrap();
        }
        let mut ledger = SqliteLedger::open(&path).unwrap();
        let version: i64 = ledger
            .db()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let leftovers: i64 = ledger
            .db()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v1' OR (type = 'index' \
                 AND tbl_name IN ('idempotency', 'artifacts', 'objects') \
                 AND name <> 'artifacts_by_kind')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(leftovers, 0, "old tables and unique indexes are gone");
        let peer: NodeId = peer.parse().unwrap();
        let record = ledger.idempotency(&peer, "k-2").unwrap().unwrap();
        assert_eq!(record.outcome.answer, orbi_types::inac::Operation::Ingested);
        assert_eq!(record.descriptor, d);
        assert!(ledger.idempotency(&peer, "k-1").unwrap().is_some());
        assert_eq!(
            ledger.held(&d.schema, &d.digest).unwrap(),
            Some(held.clone())
        );
        ledger.record(&admitting(&held)).unwrap();
        assert_eq!(rows(&ledger, "artifacts"), 1);
        let store = HybridStore::new(
            FsStore::open(dir.path().join("store")).unwrap(),
            &ledger,
            64,
        );
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut store.open(&Sha256Digest::of(b"{}")).unwrap().unwrap(),
            &mut bytes,
        )
        .unwrap();
        assert_eq!(bytes, b"{}");
        let again = stage_bytes(&store, b"{}").unwrap();
        assert_eq!(
            again.commit(&Sha256Digest::of(b"{}")).unwrap(),
            Committed::AlreadyHeld
        );
        // A fresh row continues after the migrated ids.
        let (_, newer) = sample(b"new", 2);
        ledger.record(&admitting(&newer)).unwrap();
        let seqs: Vec<i64> = ledger
            .db()
            .prepare("SELECT seq FROM artifacts ORDER BY seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(seqs, vec![7, 8]);
    }

    /// Sets the connection's `max_page_count` (the pragma answers with the new value).
    fn limit_pages(ledger: &SqliteLedger, pages: i64) {
        let _: i64 = ledger
            .db()
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                row.get(0)
            })
            .unwrap();
    }

    #[test]
    fn a_group_that_sqlite_rolls_back_whole_writes_nothing_more_and_leaves_no_index_entries() {
        use crate::store::{FsStore, HybridStore, stage_bytes};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        let mut ledger = SqliteLedger::open(&path).unwrap();
        let store = HybridStore::new(
            FsStore::open(dir.path().join("store")).unwrap(),
            &ledger,
            1 << 20,
        );
        ledger.load_index().unwrap();
        let (_, first) = sample(b"first", 1);
        let (_, second) = sample(b"second", 2);
        ledger.begin_group().unwrap();
        ledger.record(&admitting(&first)).unwrap();
        ledger.record(&admitting(&second)).unwrap();
        // The database is full in the middle of the group: SQLite rolls back all of it.
        let pages: i64 = ledger
            .db()
            .pragma_query_value(None, "page_count", |row| row.get(0))
            .unwrap();
        limit_pages(&ledger, pages + 2);
        let big = vec![7u8; 200_000];
        let full = stage_bytes(&store, &big)
            .unwrap()
            .commit(&Sha256Digest::of(&big));
        assert!(full.is_err());
        assert!(
            ledger.db().is_autocommit(),
            "the whole group was rolled back"
        );
        limit_pages(&ledger, 1 << 30);
        // Nothing else of the group commits on its own.
        let (_, third) = sample(b"third", 3);
        assert!(ledger.record(&admitting(&third)).is_err());
        let small = stage_bytes(&store, b"{}").unwrap();
        assert!(small.commit(&Sha256Digest::of(b"{}")).is_err());
        assert!(ledger.revoke("passport:capability:x", 1).is_err());
        assert!(ledger.commit_group().is_err(), "the group's answers fail");
        for table in ["artifacts", "objects", "revocations"] {
            assert_eq!(rows(&ledger, table), 0, "{table}");
        }
        assert_eq!(ledger.db().index.entries(), 0);
        // Rows another connection commits under the ids the group had used are read in.
        let (_, theirs) = sample(b"theirs", 4);
        SqliteLedger::open(&path)
            .unwrap()
            .record(&admitting(&theirs))
            .unwrap();
        let d = &theirs.descriptor;
        assert_eq!(ledger.held(&d.schema, &d.digest).unwrap(), Some(theirs));
        // The next group works.
        ledger.begin_group().unwrap();
        ledger.record(&admitting(&third)).unwrap();
        ledger.commit_group().unwrap();
        assert_eq!(rows(&ledger, "artifacts"), 2);
        let d = &first.descriptor;
        assert_eq!(ledger.held(&d.schema, &d.digest).unwrap(), None);
    }

    #[test]
    fn a_high_water_mark_past_the_table_is_rebuilt_when_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        let ours = SqliteLedger::open(&path).unwrap();
        ours.load_index().unwrap();
        {
            // As a group whose rows SQLite dropped could leave it.
            let mut db = ours.db();
            db.index.inserted(Table::Artifacts, 1000, &[]);
            db.index.committed();
        }
        let (d, held) = sample(b"later", 1);
        SqliteLedger::open(&path)
            .unwrap()
            .record(&admitting(&held))
            .unwrap();
        assert_eq!(ours.held(&d.schema, &d.digest).unwrap(), Some(held));
        assert_eq!(ours.db().index.entries(), 3, "the one row's three keys");
    }

    #[test]
    fn a_failed_index_scan_leaves_the_table_unloaded_and_the_next_lookup_retries() {
        let mut ledger = SqliteLedger::open_in_memory().unwrap();
        let (_, first) = sample(b"first", 1);
        let (d, second) = sample(b"second", 2);
        ledger.record(&admitting(&first)).unwrap();
        ledger.record(&admitting(&second)).unwrap();
        // The second row's digest is no text: a scan of the table fails on it.
        ledger
            .db()
            .execute("UPDATE artifacts SET digest = X'00' WHERE seq = 2", [])
            .unwrap();
        ledger.db().index = Index::new();
        assert!(ledger.held(&d.schema, &d.digest).is_err());
        // Repaired on this connection, which does not move `data_version`.
        ledger
            .db()
            .execute(
                "UPDATE artifacts SET digest = ?1 WHERE seq = 2",
                [d.digest.as_str()],
            )
            .unwrap();
        assert_eq!(ledger.held(&d.schema, &d.digest).unwrap(), Some(second));
        assert_eq!(
            ledger.db().index.entries(),
            6,
            "each row once (three keys per artifact)"
        );
    }

    #[test]
    fn a_write_that_panics_is_rolled_back_and_later_writes_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        let mut ledger = SqliteLedger::open(&path).unwrap();
        let (d, held) = sample(b"panic", 1);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), LedgerError> = ledger.db().write(|tx, index| {
                insert_artifact(tx, index, &held)?;
                panic!("a bug in the middle of a write");
            });
        }));
        assert!(panicked.is_err());
        assert!(ledger.db().is_autocommit(), "no transaction left open");
        assert_eq!(ledger.db().index.entries(), 0);
        assert_eq!(ledger.held(&d.schema, &d.digest).unwrap(), None);
        ledger.record(&admitting(&held)).unwrap();
        let other = SqliteLedger::open(&path).unwrap();
        assert_eq!(other.held(&d.schema, &d.digest).unwrap(), Some(held));
    }

    fn v1_ledger(path: &Path, extra: &str) {
        let old = Connection::open(path).unwrap();
        old.execute_batch(V1_TABLES).unwrap();
        old.execute_batch(extra).unwrap();
    }

    fn kind_index_table(connection: &Connection) -> Option<String> {
        connection
            .query_row(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'index' \
                 AND name = 'artifacts_by_kind'",
                [],
                |row| row.get(0),
            )
            .optional()
            .unwrap()
    }

    #[test]
    fn a_migration_that_lost_the_race_to_another_process_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        v1_ledger(&path, "");
        let (d, held) = sample(b"kept", 1);
        let mut ledger = SqliteLedger::open(&path).unwrap();
        ledger.record(&admitting(&held)).unwrap();
        // A process that read version 1 before this one migrated.
        let late = Connection::open(&path).unwrap();
        migrate::from_v1(&late).unwrap();
        assert_eq!(kind_index_table(&late).as_deref(), Some("artifacts"));
        assert_eq!(
            SqliteLedger::open(&path)
                .unwrap()
                .held(&d.schema, &d.digest)
                .unwrap(),
            Some(held)
        );
    }

    #[test]
    fn a_migration_frees_the_names_of_the_old_tables_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inac.sqlite");
        v1_ledger(
            &path,
            "CREATE INDEX artifacts_by_kind ON artifacts (schema, content_type);",
        );
        let ledger = SqliteLedger::open(&path).unwrap();
        assert_eq!(kind_index_table(&ledger.db()).as_deref(), Some("artifacts"));
    }

    #[test]
    fn inspecting_an_old_ledger_refuses_and_changes_nothing() {
        use crate::{NodeState, state::StateError};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NodeState::LEDGER_FILE);
        v1_ledger(&path, "");
        let version = || -> i64 {
            Connection::open(&path)
                .unwrap()
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .unwrap()
        };
        assert!(matches!(
            NodeState::inspect(dir.path()),
            Err(StateError::Ledger {
                source: LedgerError::Outdated {
                    found: 1,
                    current: SCHEMA_VERSION
                },
                ..
            })
        ));
        assert_eq!(version(), 1);
        assert!(matches!(
            SqliteLedger::open_existing(dir.path().join("absent.sqlite")),
            Err(LedgerError::Database(_))
        ));
        assert!(!dir.path().join("absent.sqlite").exists());
        drop(NodeState::open(dir.path(), Durability::Full).unwrap());
        assert_eq!(version(), SCHEMA_VERSION);
        assert!(NodeState::inspect(dir.path()).is_ok());
    }

    #[test]
    fn reads_on_the_push_and_request_paths_search_and_never_scan() {
        let ledger = SqliteLedger::open_in_memory().unwrap();
        let db = ledger.db();
        for sql in PLANNED_READS {
            let mut explain = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Null; explain.parameter_count()];
            let plan: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(nulls), |row| row.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter().all(|step| step.starts_with("SEARCH")),
                "{sql}: {plan:?}"
            );
        }
    }
}
