//! The SQLite read model (rusqlite, bundled SQLite, WAL journal).

use std::{fmt, path::Path, str::FromStr, time::Duration};

use orbi_types::{NodeId, Sha256Digest, Timestamp, pod::DetachReason};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior,
    config::DbConfig, params, types::Type,
};
use time::OffsetDateTime;

use super::{
    AttachmentRec, Change, ClientHistory, ClientStanding, Commit, Counts, DetachmentRec, Found,
    Probe, RecoveryRec, Store, StoreError, StoreLimits, Trace, TraceEvent,
};
use crate::{
    session::SessionTable,
    state::{AttachmentState, needs_recovery},
};

/// How hard a commit insists on reaching the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit is on disk when it returns, even across power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL` (WAL): commits stay atomic and survive a crash of the process; the
    /// last few acknowledged ones may be lost on power loss or an OS crash. Most lost facts
    /// fail closed (a lost attachment or recovery is simply unknown), but a lost detachment
    /// does not: its attachment comes back as an orphan, is host-detached as
    /// `session-expired`, and a `device-loss` or `policy` exit that required a recovery no
    /// longer does. That is why `Full` is the default (with group commits it costs one flush
    /// per group); opt in knowingly, for hosts whose disks survive power loss.
    Normal,
}

/// The version of the table layout below.
const LAYOUT_VERSION: &str = "5";

/// How a read model of an earlier layout becomes the next one, in one transaction with its
/// layout row. Layout 3 records when the host cleared a sanction; a detachment of layout 2
/// comes over with none cleared, so a `policy` or `operator-action` end stays in force until
/// the host clears it (fail closed: layout 2 admitted their recoveries without asking).
/// Layout 4 records whether a detachment ended a suspended attachment; one of layout 3 comes
/// over as not (layout 3 did not record the state a detachment ended). Layout 5 records the
/// session of a recovery's bind (an open grant holds a place in its peer node's share), read
/// from the recovery as admitted; one whose bind cannot be read comes over with none.
const MIGRATIONS: [(&str, &str, &str); 3] = [
    (
        "2",
        "3",
        "ALTER TABLE detachments ADD COLUMN sanction_cleared_at INTEGER;",
    ),
    (
        "3",
        "4",
        "ALTER TABLE detachments ADD COLUMN under_suspension INTEGER NOT NULL DEFAULT 0;",
    ),
    (
        "4",
        "5",
        "ALTER TABLE recoveries ADD COLUMN bind_session TEXT NOT NULL DEFAULT '';
         UPDATE recoveries SET bind_session = COALESCE(
             json_extract(CAST(artifact AS TEXT), '$.\"participant-bind\".\"session/id\"'), '')
         WHERE json_valid(CAST(artifact AS TEXT));",
    ),
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS attachments (
    seq INTEGER PRIMARY KEY,
    attachment_id TEXT NOT NULL UNIQUE,
    serving_node_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    pod_user_id TEXT,
    profile TEXT NOT NULL,
    export_capable INTEGER NOT NULL,
    migration_allowed INTEGER NOT NULL,
    models_local INTEGER,
    bind_id TEXT NOT NULL,
    bind_session TEXT NOT NULL,
    bound_at TEXT NOT NULL,
    bind_digest BLOB NOT NULL,
    attached_at TEXT NOT NULL,
    admitted_at INTEGER NOT NULL,
    state TEXT NOT NULL
        -- OR chains, not IN lists: SQLite builds an ephemeral index for a constant IN list
        -- on every insert.
        CHECK (state = 'attaching' OR state = 'attached' OR state = 'degraded'
            OR state = 'suspended' OR state = 'detached'),
    state_since INTEGER NOT NULL,
    artifact BLOB NOT NULL
);
-- One live attachment per (serving node, client instance), enforced by the database.
CREATE UNIQUE INDEX IF NOT EXISTS attachments_one_live
    ON attachments (serving_node_id, client_id) WHERE state <> 'detached';
-- The binds attachments carry: the bind cache for them (I3), and the live attachments of a
-- session that closes.
CREATE INDEX IF NOT EXISTS attachments_by_bind ON attachments (bind_session, bind_id);
CREATE INDEX IF NOT EXISTS attachments_due
    ON attachments (state, state_since) WHERE state IN ('attaching', 'degraded');
CREATE INDEX IF NOT EXISTS attachments_by_client ON attachments (client_id, seq);

CREATE TABLE IF NOT EXISTS detachments (
    seq INTEGER PRIMARY KEY,
    detachment_id TEXT NOT NULL UNIQUE,
    attachment_id TEXT NOT NULL UNIQUE REFERENCES attachments (attachment_id),
    client_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    detached_at TEXT NOT NULL,
    admitted_at INTEGER NOT NULL,
    origin TEXT NOT NULL CHECK (origin = 'admitted' OR origin = 'host'),
    artifact BLOB NOT NULL,
    -- When the host cleared the sanction (policy, operator-action, or a suspension the
    -- detachment carried over); NULL while it is in force.
    sanction_cleared_at INTEGER,
    -- 1 when the detachment ended a suspended attachment: the suspension holds the client.
    under_suspension INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS detachments_by_client ON detachments (client_id, seq);

CREATE TABLE IF NOT EXISTS recoveries (
    seq INTEGER PRIMARY KEY,
    recovery_id TEXT NOT NULL UNIQUE,
    from_detachment_id TEXT NOT NULL REFERENCES detachments (detachment_id),
    client_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    recovered_at TEXT NOT NULL,
    token_ref TEXT,
    admitted_at INTEGER NOT NULL,
    grant_state TEXT NOT NULL
        CHECK (grant_state = 'open' OR grant_state = 'consumed' OR grant_state = 'expired'),
    grant_expires_at INTEGER NOT NULL,
    consumed_by TEXT,
    artifact BLOB NOT NULL,
    -- The session of the recovery's bind: an open grant holds a place in its peer's share.
    bind_session TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS recoveries_open_by_session
    ON recoveries (bind_session) WHERE grant_state = 'open';
-- One open recovery grant per client instance.
CREATE UNIQUE INDEX IF NOT EXISTS recoveries_one_open_grant
    ON recoveries (client_id) WHERE grant_state = 'open';
CREATE INDEX IF NOT EXISTS recoveries_by_detachment ON recoveries (from_detachment_id);
CREATE INDEX IF NOT EXISTS recoveries_due
    ON recoveries (grant_expires_at) WHERE grant_state = 'open';

CREATE TABLE IF NOT EXISTS binds (
    seq INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    bind_id TEXT NOT NULL,
    digest BLOB NOT NULL,
    UNIQUE (session_id, bind_id)
);

CREATE TABLE IF NOT EXISTS tombstones (
    seq INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS traces (
    seq INTEGER PRIMARY KEY,
    event_type TEXT NOT NULL,
    ts INTEGER NOT NULL,
    -- NULL when it is this database's node (every trace the engine writes).
    node_self TEXT,
    peer TEXT,
    detail TEXT NOT NULL
);

-- Row counts and the next trace sequence number, in one row that every commit updates once
-- (no triggers: a trigger makes every insert a multi-row write that needs a statement
-- journal). `next_trace` never goes back, so trace ids are never reused.
CREATE TABLE IF NOT EXISTS counters (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    records INTEGER NOT NULL,
    binds INTEGER NOT NULL,
    tombstones INTEGER NOT NULL,
    traces INTEGER NOT NULL,
    next_trace INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (id, records, binds, tombstones, traces, next_trace)
    VALUES (1, 0, 0, 0, 0, 1);
";

// Column lists as macros, so that every statement below is one constant string: the
// statement cache finds it without building it first.
macro_rules! attachment_columns {
    () => {
        "attachment_id, serving_node_id, client_id, participant_id, pod_user_id, profile, \
         export_capable, migration_allowed, models_local, bind_id, bind_session, bound_at, \
         bind_digest, attached_at, admitted_at, state, state_since, artifact"
    };
}
macro_rules! detachment_columns {
    () => {
        "detachment_id, attachment_id, client_id, participant_id, reason, detached_at, \
         admitted_at, origin, artifact, sanction_cleared_at, under_suspension"
    };
}
/// The SQL list of the reasons [`crate::state::is_sanction`] names (a test holds the two
/// equal).
macro_rules! sanction_reasons {
    () => {
        "('policy', 'operator-action')"
    };
}
macro_rules! recovery_columns {
    () => {
        "recovery_id, from_detachment_id, client_id, participant_id, mode, recovered_at, \
         token_ref, admitted_at, grant_state, grant_expires_at, consumed_by, artifact, \
         bind_session"
    };
}

/// `SELECT <every column> FROM <table> <tail>`.
macro_rules! select_from {
    (attachments $tail:literal) => {
        concat!(
            "SELECT ",
            attachment_columns!(),
            " FROM attachments ",
            $tail
        )
    };
    (detachments $tail:literal) => {
        concat!(
            "SELECT ",
            detachment_columns!(),
            " FROM detachments ",
            $tail
        )
    };
    (recoveries $tail:literal) => {
        concat!("SELECT ", recovery_columns!(), " FROM recoveries ", $tail)
    };
}

const ATTACHMENT_COLUMNS: &str = attachment_columns!();
const DETACHMENT_COLUMNS: &str = detachment_columns!();
const RECOVERY_COLUMNS: &str = recovery_columns!();

const ATTACHMENT_BY_ID: &str = select_from!(attachments "WHERE attachment_id = ?1");
const ATTACHMENT_BY_SEQ: &str = select_from!(attachments "WHERE seq = ?1");
const LIVE_ATTACHMENT: &str = select_from!(attachments
    "WHERE serving_node_id = ?1 AND client_id = ?2 AND state <> 'detached'");
const LIVE_ATTACHMENTS_ON: &str =
    select_from!(attachments "WHERE bind_session = ?1 AND state <> 'detached' ORDER BY seq");
const COUNT_LIVE_ATTACHMENTS_ON: &str =
    "SELECT COUNT(*) FROM attachments WHERE bind_session = ?1 AND state <> 'detached'";
const COUNT_OPEN_GRANTS_ON: &str = "SELECT COUNT(*) FROM recoveries \
    WHERE bind_session = ?1 AND grant_state = 'open' AND grant_expires_at > ?2";
const DETACHMENT_BY_ID: &str = select_from!(detachments "WHERE detachment_id = ?1");
const DETACHMENT_BY_SEQ: &str = select_from!(detachments "WHERE seq = ?1");
const DETACHMENT_OF: &str = select_from!(detachments "WHERE attachment_id = ?1");
const LATEST_DETACHMENT: &str =
    select_from!(detachments "WHERE client_id = ?1 ORDER BY seq DESC LIMIT 1");
const TOMBSTONE: &str = "SELECT reason FROM tombstones WHERE client_id = ?1";
const RECOVERY_BY_ID: &str = select_from!(recoveries "WHERE recovery_id = ?1");
const RECOVERY_BY_SEQ: &str = select_from!(recoveries "WHERE seq = ?1");
const OPEN_GRANT: &str = select_from!(recoveries "WHERE client_id = ?1 AND grant_state = 'open'");
/// A bind-cache entry, else the bind an attachment carries.
const BIND_DIGEST: &str = "SELECT COALESCE(\
    (SELECT digest FROM binds WHERE session_id = ?1 AND bind_id = ?2), \
    (SELECT bind_digest FROM attachments WHERE bind_session = ?1 AND bind_id = ?2 LIMIT 1))";
/// Every lookup of a [`Probe`], as row numbers (and the two small values): one statement, and
/// for an admission of new facts one miss per index. A NULL key (a lookup not asked for)
/// matches nothing and costs no seek.
const PROBE: &str = "SELECT \
    (SELECT seq FROM attachments WHERE attachment_id = ?1), \
    (SELECT seq FROM detachments WHERE detachment_id = ?2), \
    (SELECT seq FROM recoveries WHERE recovery_id = ?3), \
    COALESCE((SELECT digest FROM binds WHERE session_id = ?4 AND bind_id = ?5), \
        (SELECT bind_digest FROM attachments WHERE bind_session = ?4 AND bind_id = ?5 LIMIT 1)), \
    (SELECT seq FROM attachments \
        WHERE serving_node_id = ?6 AND client_id = ?7 AND state <> 'detached'), \
    (SELECT seq FROM detachments WHERE client_id = ?7 ORDER BY seq DESC LIMIT 1), \
    (SELECT reason FROM tombstones WHERE client_id = ?7), \
    (SELECT seq FROM recoveries WHERE client_id = ?7 AND grant_state = 'open')";
const SET_ATTACHMENT_STATE: &str =
    "UPDATE attachments SET state = ?1, state_since = ?2 WHERE attachment_id = ?3";
/// Clears a sanction once: a detachment of another reason, or one cleared before, is no row.
const CLEAR_SANCTION: &str = concat!(
    "UPDATE detachments SET sanction_cleared_at = ?1 \
     WHERE detachment_id = ?2 AND sanction_cleared_at IS NULL \
     AND (under_suspension = 1 OR reason IN ",
    sanction_reasons!(),
    ")"
);
const SET_GRANT: &str =
    "UPDATE recoveries SET grant_state = ?1, consumed_by = ?2 WHERE recovery_id = ?3";
const INSERT_BIND: &str = "INSERT INTO binds (session_id, bind_id, digest) VALUES (?1, ?2, ?3)";
const INSERT_TRACE: &str = "INSERT INTO traces (seq, event_type, ts, node_self, peer, detail) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const COUNTERS: &str =
    "SELECT records, binds, tombstones, traces, next_trace FROM counters WHERE id = 1";
const STORE_COUNTERS: &str = "UPDATE counters SET records = ?1, binds = ?2, tombstones = ?3, \
    traces = ?4, next_trace = ?5 WHERE id = 1";
const INSERT_ATTACHMENT: &str = concat!(
    "INSERT INTO attachments (",
    attachment_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
);
const INSERT_DETACHMENT: &str = concat!(
    "INSERT INTO detachments (",
    detachment_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
);
const INSERT_RECOVERY: &str = concat!(
    "INSERT INTO recoveries (",
    recovery_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
);

/// The read model in a SQLite database file.
///
/// One database belongs to one node: its id is recorded on first use and a different node
/// is refused. Several processes may share the file (SQLite locking, 5 s busy timeout); a
/// commit that loses a race to another writer fails with [`StoreError::Constraint`] and the
/// engine re-runs the admission against the winner's state.
///
/// The table layout is versioned (`meta` row `layout`, now 5). A read model of layout 2, 3
/// or 4 is brought to 5 in place when it is opened, one transaction per step (the `policy`
/// and `operator-action` detachments of layout 2 come over as sanctions in force; no
/// detachment of layout 3 comes over as one under suspension, which layout 3 did not record;
/// a recovery of layout 4 gets its bind's session from its artifact); any other layout is
/// refused untouched, and an older build refuses layout 5 the same way.
pub struct SqliteStore {
    conn: Connection,
    path: String,
    limits: StoreLimits,
    /// The node this database belongs to, once known: traces of this node are stored without
    /// repeating its id.
    node: Option<NodeId>,
    /// The group commit in progress (an open `BEGIN IMMEDIATE`), if one is.
    group: Option<Group>,
}

/// A group commit in progress.
#[derive(Default)]
struct Group {
    /// Its commits so far: a commit that fails inside a group is undone by rolling the group
    /// back and applying these again, which keeps each commit atomic without a savepoint
    /// (whose sub-journal copies every page a commit touches).
    done: Vec<Commit>,
    /// The counters row as the group's commits left it (the group holds the write lock, so
    /// nobody else moves it); stored once, when the group finishes.
    counters: Counters,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqliteStore({})", self.path)
    }
}

/// Creates the empty file `path` with mode 0600 (Unix) unless it exists, following a dangling
/// symlink; SQLite opens an empty file as a new database (and gives its `-wal` and `-shm` files
/// the same mode). `:memory:` and the empty path are SQLite's in-memory names. The INAC ledger
/// does the same (`orbi_inac::store::create_private_file`; the two crates share no I/O crate).
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    let mut options = std::fs::File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let dangling = std::fs::symlink_metadata(path)
                .is_ok_and(|m| m.file_type().is_symlink())
                && !path.exists();
            if dangling {
                options.create_new(false).create(true).open(path).map(drop)
            } else {
                Ok(())
            }
        }
        made => made.map(drop),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the read model of `node` at `path`. A new file is readable
    /// by this user only (0600 on Unix), as SQLite's `-wal` and `-shm` files then are.
    pub fn open(
        path: &Path,
        node: &NodeId,
        limits: StoreLimits,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        create_private_file(path).map_err(|err| StoreError::Open {
            path: path.display().to_string(),
            message: err.to_string(),
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut store = Self::connect(path, flags, limits, durability)?;
        match store.node.take() {
            Some(stored) if stored != *node => {
                return Err(StoreError::WrongNode {
                    path: store.path.clone(),
                    stored: stored.to_string(),
                    given: node.to_string(),
                });
            }
            Some(_) => {}
            None => {
                store
                    .conn
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('node/id', ?1)",
                        [node.as_str()],
                    )
                    .map_err(backend)?;
            }
        }
        store.node = Some(node.clone());
        Ok(store)
    }

    /// Opens an existing read model without knowing its node (for status reports).
    pub fn open_existing(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::connect(path, flags, limits, Durability::Full)
    }

    /// An in-memory SQLite read model (for tests of the SQL itself).
    pub fn open_in_memory(node: &NodeId, limits: StoreLimits) -> Result<Self, StoreError> {
        Self::open(Path::new(":memory:"), node, limits, Durability::Full)
    }

    fn connect(
        path: &Path,
        flags: OpenFlags,
        limits: StoreLimits,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let open_error = |err: rusqlite::Error| StoreError::Open {
            path: shown.clone(),
            message: err.to_string(),
        };
        // The bundled SQLite reads names starting with `file:` as URIs (`SQLITE_USE_URI`): a
        // relative path is given from `./`, so that it opens that very file.
        let plain = if path.is_relative() && path != Path::new(":memory:") {
            Path::new(".").join(path)
        } else {
            path.to_owned()
        };
        let mut conn = Connection::open_with_flags(plain, flags).map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_error)?;
        // Plans that do not depend on bound values: without this the bundled SQLite (built
        // with STAT4) re-prepares some cached statements on every use.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(open_error)?;
        // Nothing is written before the file is known to be ours: a read model of this layout,
        // or (when creating) a database with no tables yet. Another program's database, or an
        // INAC ledger, is refused untouched.
        let not_ours = |why: &str| StoreError::Open {
            path: shown.clone(),
            message: format!("not a pod read model ({why}); nothing was changed"),
        };
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .map_err(open_error)?;
        let layout: Option<String> = if tables == 0 {
            None
        } else {
            conn.query_row("SELECT value FROM meta WHERE key = 'layout'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|_| not_ours("it holds other tables"))?
        };
        match layout.as_deref() {
            Some(LAYOUT_VERSION) => {}
            Some(earlier) if migrates(earlier) => {}
            Some(other) => {
                return Err(StoreError::Open {
                    path: shown,
                    message: format!(
                        "unsupported read model layout {other:?} (expected {LAYOUT_VERSION})"
                    ),
                });
            }
            // Tables but no layout row: someone else's database. (A read model is made with its
            // layout row in one transaction; one an older build left half made holds no records
            // and can be removed.)
            None if tables > 0 => return Err(not_ours("it holds other tables")),
            None if !flags.contains(OpenFlags::SQLITE_OPEN_CREATE) => {
                return Err(not_ours("it is empty"));
            }
            None => {}
        }
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
             PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;"
        ))
        .map_err(open_error)?;
        if layout.is_none() {
            // The tables and the layout row in one transaction: a read model interrupted while
            // it was being made must not look like another program's database afterwards.
            let made = conn.unchecked_transaction().map_err(open_error)?;
            made.execute_batch(SCHEMA).map_err(open_error)?;
            made.execute(
                "INSERT INTO meta (key, value) VALUES ('layout', ?1)",
                [LAYOUT_VERSION],
            )
            .map_err(open_error)?;
            made.commit().map_err(open_error)?;
        } else {
            if layout.as_deref() != Some(LAYOUT_VERSION) {
                migrate(&mut conn).map_err(open_error)?;
            }
            conn.execute_batch(SCHEMA).map_err(open_error)?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = SqliteStore {
            conn,
            path: shown,
            limits,
            node: None,
            group: None,
        };
        store.node = store.node_id()?;
        Ok(store)
    }

    /// The node this database belongs to, once one has used it.
    pub fn node_id(&self) -> Result<Option<NodeId>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'node/id'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(backend)?;
        text.map(|text| parse_column("meta node/id", &text))
            .transpose()
    }

    fn query<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(backend)?;
        let rows = statement.query_map(params, map).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<T>>>().map_err(backend)
    }

    fn query_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(backend)?;
        statement.query_row(params, map).optional().map_err(backend)
    }

    /// The row `seq` found by `sql`, if there is a `seq`.
    fn by_seq<T>(
        &self,
        sql: &str,
        seq: Option<i64>,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        match seq {
            Some(seq) => self.query_one(sql, [seq], map),
            None => Ok(None),
        }
    }

    fn attachments_where(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<AttachmentRec>, StoreError> {
        self.query(
            &format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE {condition} ORDER BY seq"),
            params,
            attachment_row,
        )
    }

    fn detachments_where(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<DetachmentRec>, StoreError> {
        self.query(
            &format!("SELECT {DETACHMENT_COLUMNS} FROM detachments WHERE {condition} ORDER BY seq"),
            params,
            detachment_row,
        )
    }

    fn recoveries_where(
        &self,
        condition: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<RecoveryRec>, StoreError> {
        self.query(
            &format!("SELECT {RECOVERY_COLUMNS} FROM recoveries WHERE {condition} ORDER BY seq"),
            params,
            recovery_row,
        )
    }

    /// Undoes the commit that just failed inside the group: rolls the group back and applies
    /// its earlier commits again. If that fails too, the group is lost and an error says so.
    fn restart_group(&mut self, live: &SessionTable) -> Result<(), StoreError> {
        let done = self.group.take().unwrap_or_default().done;
        let again = run(&self.conn, "ROLLBACK")
            .and_then(|()| run(&self.conn, "BEGIN IMMEDIATE"))
            .and_then(|()| counters(&self.conn))
            .and_then(|mut counters| {
                for commit in &done {
                    let store = (&self.limits, self.node.as_ref());
                    apply_all(&self.conn, commit, store, live, &mut counters)?;
                }
                Ok(counters)
            });
        match again {
            Ok(counters) => {
                self.group = Some(Group { done, counters });
                Ok(())
            }
            Err(err) => {
                let _ = run(&self.conn, "ROLLBACK");
                Err(StoreError::Backend(format!(
                    "group commit lost while undoing a failed commit: {err}"
                )))
            }
        }
    }
}

/// Whether a read model of `layout` can be brought to [`LAYOUT_VERSION`].
fn migrates(layout: &str) -> bool {
    let mut at = layout;
    while at != LAYOUT_VERSION {
        match MIGRATIONS.iter().find(|(from, _, _)| *from == at) {
            Some((_, to, _)) => at = to,
            None => return false,
        }
    }
    true
}

/// Brings the read model to [`LAYOUT_VERSION`], each step in one transaction with its layout
/// row. The layout is read again under the write lock: another process opening the same
/// file may have migrated it first.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let step = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let layout: String =
            step.query_row("SELECT value FROM meta WHERE key = 'layout'", [], |row| {
                row.get(0)
            })?;
        let Some((_, to, sql)) = MIGRATIONS.iter().find(|(from, _, _)| *from == layout) else {
            // Already current (or a layout `migrates` refused before: nothing is changed).
            return step.commit();
        };
        step.execute_batch(sql)?;
        step.execute("UPDATE meta SET value = ?1 WHERE key = 'layout'", [to])?;
        step.commit()?;
    }
}

/// The counters row: row counts and the next trace sequence number (or, as a change, how
/// much each moves).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    records: i64,
    binds: i64,
    tombstones: i64,
    traces: i64,
    next_trace: i64,
}

impl Counters {
    fn count(value: i64) -> usize {
        usize::try_from(value).unwrap_or(0)
    }

    fn add(&mut self, change: &Counters) {
        self.records += change.records;
        self.binds += change.binds;
        self.tombstones += change.tombstones;
        self.traces += change.traces;
        self.next_trace += change.next_trace;
    }

    fn over(&self, limits: &StoreLimits) -> bool {
        Self::count(self.records) > limits.max_records
            || Self::count(self.binds) > limits.max_binds
            || Self::count(self.tombstones) > limits.max_tombstones
            || Self::count(self.traces) > limits.max_traces
    }
}

fn counters_row(row: &Row<'_>) -> rusqlite::Result<Counters> {
    Ok(Counters {
        records: row.get(0)?,
        binds: row.get(1)?,
        tombstones: row.get(2)?,
        traces: row.get(3)?,
        next_trace: row.get(4)?,
    })
}

fn counters(conn: &Connection) -> Result<Counters, StoreError> {
    conn.prepare_cached(COUNTERS)
        .and_then(|mut statement| statement.query_row([], counters_row))
        .map_err(backend)
}

/// Writes the counters row (inside the transaction that read it).
fn store_counters(conn: &Connection, counters: &Counters) -> Result<(), StoreError> {
    conn.prepare_cached(STORE_COUNTERS)
        .and_then(|mut statement| {
            statement.execute(params![
                counters.records,
                counters.binds,
                counters.tombstones,
                counters.traces,
                counters.next_trace
            ])
        })
        .map(drop)
        .map_err(backend)
}

/// Runs a parameterless statement through the statement cache.
fn run(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(backend)
}

/// Maps a SQLite failure: constraint violations become [`StoreError::Constraint`], undecodable
/// columns [`StoreError::Corrupt`].
fn backend(err: rusqlite::Error) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == ErrorCode::ConstraintViolation =>
        {
            StoreError::Constraint(err.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(column, _, source) => StoreError::Corrupt {
            what: format!("column {column}"),
            message: source.to_string(),
        },
        _ => StoreError::Backend(err.to_string()),
    }
}

fn parse_column<T: FromStr>(what: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: fmt::Display,
{
    text.parse().map_err(|err: T::Err| StoreError::Corrupt {
        what: what.to_owned(),
        message: err.to_string(),
    })
}

/// Reads column `index` as text and parses it with `parse`.
fn parsed<T, E: std::error::Error + Send + Sync + 'static>(
    row: &Row<'_>,
    index: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text)
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, err.into()))
}

fn text_of<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    parsed(row, index, str::parse)
}

fn optional_text_of<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<String> = row.get(index)?;
    text.map(|text| {
        text.parse().map_err(|err: T::Err| {
            rusqlite::Error::FromSqlConversionFailure(index, Type::Text, err.into())
        })
    })
    .transpose()
}

/// Digests are stored as their 32 bytes.
fn digest_bytes(digest: &Sha256Digest) -> Result<[u8; 32], StoreError> {
    digest
        .bytes()
        .map_err(|err| StoreError::Constraint(format!("digest {digest} is not storable: {err}")))
}

fn digest_of(row: &Row<'_>, index: usize) -> rusqlite::Result<Sha256Digest> {
    row.get(index).map(Sha256Digest::from_bytes)
}

fn timestamp_of(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    parsed(row, index, Timestamp::parse)
}

/// Host instants are stored as Unix nanoseconds: from 1677 to 2262, and an instant outside
/// that range is stored as the nearest end of it (a clock that far off is broken anyway).
fn instant_of(row: &Row<'_>, index: usize) -> rusqlite::Result<OffsetDateTime> {
    let nanos: i64 = row.get(index)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Integer, err.into()))
}

fn optional_instant_of(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    match row.get::<_, Option<i64>>(index)? {
        Some(_) => instant_of(row, index).map(Some),
        None => Ok(None),
    }
}

fn nanos(instant: OffsetDateTime) -> i64 {
    let nanos = instant.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

fn attachment_row(row: &Row<'_>) -> rusqlite::Result<AttachmentRec> {
    Ok(AttachmentRec {
        attachment_id: row.get(0)?,
        serving_node_id: text_of(row, 1)?,
        client_instance_id: row.get(2)?,
        participant_id: text_of(row, 3)?,
        pod_user_id: optional_text_of(row, 4)?,
        profile: text_of(row, 5)?,
        export_capable: row.get(6)?,
        migration_allowed: row.get(7)?,
        models_local: row.get(8)?,
        bind_id: row.get(9)?,
        bind_session: row.get(10)?,
        bound_at: timestamp_of(row, 11)?,
        bind_digest: digest_of(row, 12)?,
        attached_at: timestamp_of(row, 13)?,
        admitted_at: instant_of(row, 14)?,
        state: text_of(row, 15)?,
        state_since: instant_of(row, 16)?,
        artifact: row.get(17)?,
    })
}

fn detachment_row(row: &Row<'_>) -> rusqlite::Result<DetachmentRec> {
    Ok(DetachmentRec {
        detachment_id: row.get(0)?,
        attachment_id: row.get(1)?,
        client_instance_id: row.get(2)?,
        participant_id: text_of(row, 3)?,
        reason: text_of(row, 4)?,
        detached_at: timestamp_of(row, 5)?,
        admitted_at: instant_of(row, 6)?,
        origin: text_of(row, 7)?,
        artifact: row.get(8)?,
        sanction_cleared_at: optional_instant_of(row, 9)?,
        under_suspension: row.get(10)?,
    })
}

fn recovery_row(row: &Row<'_>) -> rusqlite::Result<RecoveryRec> {
    Ok(RecoveryRec {
        recovery_id: row.get(0)?,
        from_detachment_id: row.get(1)?,
        client_instance_id: row.get(2)?,
        participant_id: text_of(row, 3)?,
        mode: text_of(row, 4)?,
        recovered_at: timestamp_of(row, 5)?,
        token_ref: row.get(6)?,
        admitted_at: instant_of(row, 7)?,
        grant: text_of(row, 8)?,
        grant_expires_at: instant_of(row, 9)?,
        consumed_by: row.get(10)?,
        artifact: row.get(11)?,
        bind_session: row.get(12)?,
    })
}

fn trace_row(row: &Row<'_>) -> rusqlite::Result<Trace> {
    let seq: i64 = row.get(0)?;
    Ok(Trace {
        trace_id: format!("trace:{seq}"),
        event: TraceEvent {
            kind: text_of(row, 1)?,
            ts: instant_of(row, 2)?,
            node: text_of(row, 3)?,
            peer: optional_text_of(row, 4)?,
            detail: parsed(row, 5, |text| serde_json::from_str(text))?,
        },
    })
}

fn apply(conn: &Connection, change: &Change) -> Result<(), StoreError> {
    let changed = match change {
        Change::InsertAttachment(rec) => {
            let bind_digest = digest_bytes(&rec.bind_digest)?;
            conn.prepare_cached(INSERT_ATTACHMENT)
                .and_then(|mut statement| {
                    statement.execute(params![
                        rec.attachment_id,
                        rec.serving_node_id.as_str(),
                        rec.client_instance_id,
                        rec.participant_id.as_str(),
                        rec.pod_user_id.as_ref().map(|id| id.as_str()),
                        rec.profile.as_str(),
                        rec.export_capable,
                        rec.migration_allowed,
                        rec.models_local,
                        rec.bind_id,
                        rec.bind_session,
                        rec.bound_at.as_str(),
                        bind_digest,
                        rec.attached_at.as_str(),
                        nanos(rec.admitted_at),
                        rec.state.as_str(),
                        nanos(rec.state_since),
                        rec.artifact,
                    ])
                })
        }
        Change::SetAttachmentState {
            attachment_id,
            state,
            since,
        } => conn
            .prepare_cached(SET_ATTACHMENT_STATE)
            .and_then(|mut statement| {
                statement.execute(params![state.as_str(), nanos(*since), attachment_id])
            }),
        Change::InsertDetachment(rec) => {
            conn.prepare_cached(INSERT_DETACHMENT)
                .and_then(|mut statement| {
                    statement.execute(params![
                        rec.detachment_id,
                        rec.attachment_id,
                        rec.client_instance_id,
                        rec.participant_id.as_str(),
                        rec.reason.as_str(),
                        rec.detached_at.as_str(),
                        nanos(rec.admitted_at),
                        rec.origin.as_str(),
                        rec.artifact,
                        rec.sanction_cleared_at.map(nanos),
                        rec.under_suspension,
                    ])
                })
        }
        Change::InsertRecovery(rec) => {
            conn.prepare_cached(INSERT_RECOVERY)
                .and_then(|mut statement| {
                    statement.execute(params![
                        rec.recovery_id,
                        rec.from_detachment_id,
                        rec.client_instance_id,
                        rec.participant_id.as_str(),
                        rec.mode.as_str(),
                        rec.recovered_at.as_str(),
                        rec.token_ref,
                        nanos(rec.admitted_at),
                        rec.grant.as_str(),
                        nanos(rec.grant_expires_at),
                        rec.consumed_by,
                        rec.artifact,
                        rec.bind_session,
                    ])
                })
        }
        Change::ClearSanction { detachment_id, at } => conn
            .prepare_cached(CLEAR_SANCTION)
            .and_then(|mut statement| statement.execute(params![nanos(*at), detachment_id])),
        Change::SetGrant {
            recovery_id,
            grant,
            consumed_by,
        } => conn.prepare_cached(SET_GRANT).and_then(|mut statement| {
            statement.execute(params![grant.as_str(), consumed_by, recovery_id])
        }),
        Change::CacheBind {
            session_id,
            bind_id,
            digest,
        } => {
            let digest = digest_bytes(digest)?;
            conn.prepare_cached(INSERT_BIND)
                .and_then(|mut statement| statement.execute(params![session_id, bind_id, digest]))
        }
    }
    .map_err(backend)?;
    if changed == 0 {
        return Err(StoreError::Constraint(format!(
            "{change:?} names no record",
            change = change_target(change)
        )));
    }
    Ok(())
}

fn change_target(change: &Change) -> String {
    match change {
        Change::SetAttachmentState { attachment_id, .. } => format!("attachment {attachment_id}"),
        Change::SetGrant { recovery_id, .. } => format!("recovery {recovery_id}"),
        Change::ClearSanction { detachment_id, .. } => {
            format!("detachment {detachment_id} with a sanction in force")
        }
        other => format!("{other:?}"),
    }
}

/// Stores `event` as trace `seq`; `node_self` is left NULL when it is `this_node`.
fn insert_trace(
    conn: &Connection,
    seq: i64,
    event: &TraceEvent,
    this_node: Option<&NodeId>,
) -> Result<(), StoreError> {
    let node_self = (this_node != Some(&event.node)).then(|| event.node.as_str());
    let detail = serde_json::to_string(&event.detail)
        .map_err(|err| StoreError::Backend(format!("trace detail: {err}")))?;
    conn.prepare_cached(INSERT_TRACE)
        .and_then(|mut statement| {
            statement.execute(params![
                seq,
                event.kind.as_str(),
                nanos(event.ts),
                node_self,
                event.peer.as_ref().map(NodeId::as_str),
                detail,
            ])
        })
        .map_err(backend)?;
    Ok(())
}

/// The oldest lineage that may go (no grant on it is open, and it is not kept: the SQL form of
/// [`DetachmentRec::kept_from_eviction`]): one whose session is dead, else (see the module
/// docs) the oldest on a live session. A client's lineages go oldest first: evicting a newer
/// one while an older stays would make the older detachment the client's latest again, and
/// recoverable around the newer one's reason.
fn evictable(conn: &Connection, live: &SessionTable) -> Result<Option<String>, StoreError> {
    let mut statement = conn
        .prepare_cached(concat!(
            "SELECT d.detachment_id, a.bind_session, d.client_id, EXISTS (SELECT 1 \
                 FROM recoveries r \
                 WHERE r.from_detachment_id = d.detachment_id AND r.grant_state = 'open') \
                 OR (d.sanction_cleared_at IS NULL AND (d.under_suspension = 1 \
                     OR (d.origin = 'host' AND d.reason IN ",
            sanction_reasons!(),
            "))) FROM detachments d JOIN attachments a ON a.attachment_id = d.attachment_id \
             ORDER BY d.seq",
        ))
        .map_err(backend)?;
    let mut rows = statement.query([]).map_err(backend)?;
    let mut oldest_on_live = None;
    let mut passed_over = std::collections::HashSet::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let client: String = row.get(2).map_err(backend)?;
        if passed_over.contains(&client) {
            continue;
        }
        let held: bool = row.get(3).map_err(backend)?;
        let session: String = row.get(1).map_err(backend)?;
        if !held && !live.is_live(&session) {
            return row.get(0).map(Some).map_err(backend);
        }
        if !held && oldest_on_live.is_none() {
            oldest_on_live = Some(row.get(0).map_err(backend)?);
        }
        passed_over.insert(client);
    }
    Ok(oldest_on_live)
}

/// Evicts the lineage of `detachment_id`; returns how the counters move.
fn evict_lineage(conn: &Connection, detachment_id: &str) -> Result<Counters, StoreError> {
    let lineage: Option<(String, String, String, i64)> = conn
        .prepare_cached(
            "SELECT d.attachment_id, d.client_id, d.reason, a.seq FROM detachments d \
             JOIN attachments a ON a.attachment_id = d.attachment_id WHERE d.detachment_id = ?1",
        )
        .and_then(|mut statement| {
            statement
                .query_row([detachment_id], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .optional()
        })
        .map_err(backend)?;
    let Some((attachment_id, client, reason, attachment_seq)) = lineage else {
        return Ok(Counters::default());
    };
    let reason: DetachReason = parse_column("detachment reason", &reason)?;
    let delete = |sql: &str, key: &str| -> Result<i64, StoreError> {
        let deleted = conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute([key]))
            .map_err(backend)?;
        Ok(i64::try_from(deleted).unwrap_or(i64::MAX))
    };
    let mut change = Counters {
        records: -delete(
            "DELETE FROM recoveries WHERE from_detachment_id = ?1",
            detachment_id,
        )?,
        ..Counters::default()
    };
    delete(
        "DELETE FROM detachments WHERE detachment_id = ?1",
        detachment_id,
    )?;
    change.records -= delete(
        "DELETE FROM attachments WHERE attachment_id = ?1",
        &attachment_id,
    )?;
    let newer: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM attachments WHERE client_id = ?1 AND seq > ?2)",
        )
        .and_then(|mut statement| {
            statement.query_row(params![client, attachment_seq], |row| row.get(0))
        })
        .map_err(backend)?;
    if needs_recovery(reason) && !newer {
        change.tombstones -= delete("DELETE FROM tombstones WHERE client_id = ?1", &client)?;
        conn.prepare_cached("INSERT INTO tombstones (client_id, reason) VALUES (?1, ?2)")
            .and_then(|mut statement| statement.execute(params![client, reason.as_str()]))
            .map_err(backend)?;
        change.tombstones += 1;
    }
    Ok(change)
}

/// Deletes the oldest rows of `table` beyond `max` of its `count`; returns how many.
fn evict_oldest(conn: &Connection, table: &str, count: i64, max: usize) -> Result<i64, StoreError> {
    let excess = Counters::count(count).saturating_sub(max);
    if excess == 0 {
        return Ok(0);
    }
    let deleted = conn
        .execute(
            &format!(
                "DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} ORDER BY seq LIMIT ?1)"
            ),
            [i64::try_from(excess).unwrap_or(i64::MAX)],
        )
        .map_err(backend)?;
    Ok(i64::try_from(deleted).unwrap_or(i64::MAX))
}

/// Evicts down to the limits, keeping `now` (the counters) up to date.
fn evict(
    conn: &Connection,
    limits: &StoreLimits,
    live: &SessionTable,
    grows: bool,
    now: &mut Counters,
) -> Result<(), StoreError> {
    if !now.over(limits) {
        return Ok(());
    }
    while Counters::count(now.records) > limits.max_records {
        match evictable(conn, live)? {
            Some(detachment_id) => now.add(&evict_lineage(conn, &detachment_id)?),
            None if grows => {
                return Err(StoreError::Full {
                    records: limits.max_records,
                });
            }
            None => break,
        }
    }
    now.tombstones -= evict_oldest(conn, "tombstones", now.tombstones, limits.max_tombstones)?;
    now.binds -= evict_oldest(conn, "binds", now.binds, limits.max_binds)?;
    now.traces -= evict_oldest(conn, "traces", now.traces, limits.max_traces)?;
    Ok(())
}

/// Applies `commit` (its changes, its traces, eviction) inside the open write transaction
/// whose counters row `now` holds; `now` follows, and the caller stores it before the
/// transaction commits (once per group).
fn apply_all(
    conn: &Connection,
    commit: &Commit,
    store: (&StoreLimits, Option<&NodeId>),
    live: &SessionTable,
    now: &mut Counters,
) -> Result<(), StoreError> {
    let (limits, this_node) = store;
    for each in &commit.changes {
        apply(conn, each)?;
        match each {
            Change::InsertAttachment(_) | Change::InsertRecovery(_) => now.records += 1,
            Change::CacheBind { .. } => now.binds += 1,
            _ => {}
        }
    }
    for event in &commit.traces {
        insert_trace(conn, now.next_trace, event, this_node)?;
        now.next_trace += 1;
        now.traces += 1;
    }
    evict(conn, limits, live, commit.grows(), now)
}

impl Store for SqliteStore {
    fn attachment(&self, attachment_id: &str) -> Result<Option<AttachmentRec>, StoreError> {
        self.query_one(ATTACHMENT_BY_ID, [attachment_id], attachment_row)
    }

    fn live_attachment(
        &self,
        node: &NodeId,
        client: &str,
    ) -> Result<Option<AttachmentRec>, StoreError> {
        self.query_one(
            LIVE_ATTACHMENT,
            params![node.as_str(), client],
            attachment_row,
        )
    }

    fn live_attachments(&self) -> Result<Vec<AttachmentRec>, StoreError> {
        self.attachments_where("state <> 'detached'", [])
    }

    fn live_attachments_on(&self, session: &str) -> Result<Vec<AttachmentRec>, StoreError> {
        self.query(LIVE_ATTACHMENTS_ON, [session], attachment_row)
    }

    fn count_live_attachments_on(&self, session: &str) -> Result<usize, StoreError> {
        let count: i64 = self
            .conn
            .prepare_cached(COUNT_LIVE_ATTACHMENTS_ON)
            .and_then(|mut statement| statement.query_row([session], |row| row.get(0)))
            .map_err(backend)?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    fn count_open_grants_on(
        &self,
        session: &str,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let count: i64 = self
            .conn
            .prepare_cached(COUNT_OPEN_GRANTS_ON)
            .and_then(|mut statement| {
                statement.query_row(params![session, nanos(now)], |row| row.get(0))
            })
            .map_err(backend)?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    fn attachments_due(
        &self,
        state: AttachmentState,
        not_after: OffsetDateTime,
    ) -> Result<Vec<AttachmentRec>, StoreError> {
        self.attachments_where(
            "state = ?1 AND state_since <= ?2",
            params![state.as_str(), nanos(not_after)],
        )
    }

    fn detachment(&self, detachment_id: &str) -> Result<Option<DetachmentRec>, StoreError> {
        self.query_one(DETACHMENT_BY_ID, [detachment_id], detachment_row)
    }

    fn detachment_of(&self, attachment_id: &str) -> Result<Option<DetachmentRec>, StoreError> {
        self.query_one(DETACHMENT_OF, [attachment_id], detachment_row)
    }

    fn latest_detachment(&self, client: &str) -> Result<Option<DetachmentRec>, StoreError> {
        self.query_one(LATEST_DETACHMENT, [client], detachment_row)
    }

    fn tombstone(&self, client: &str) -> Result<Option<DetachReason>, StoreError> {
        self.query_one(TOMBSTONE, [client], |row| text_of(row, 0))
    }

    fn recovery(&self, recovery_id: &str) -> Result<Option<RecoveryRec>, StoreError> {
        self.query_one(RECOVERY_BY_ID, [recovery_id], recovery_row)
    }

    fn recoveries_from(&self, detachment_id: &str) -> Result<Vec<RecoveryRec>, StoreError> {
        self.recoveries_where("from_detachment_id = ?1", [detachment_id])
    }

    fn open_grant(&self, client: &str) -> Result<Option<RecoveryRec>, StoreError> {
        self.query_one(OPEN_GRANT, [client], recovery_row)
    }

    fn grants_due(&self, not_after: OffsetDateTime) -> Result<Vec<RecoveryRec>, StoreError> {
        self.recoveries_where(
            "grant_state = 'open' AND grant_expires_at <= ?1",
            [nanos(not_after)],
        )
    }

    fn bind_digest(
        &self,
        session: &str,
        bind_id: &str,
    ) -> Result<Option<Sha256Digest>, StoreError> {
        // One row, NULL when neither holds the bind.
        let digest: Option<Option<[u8; 32]>> =
            self.query_one(BIND_DIGEST, [session, bind_id], |row| row.get(0))?;
        Ok(digest.flatten().map(Sha256Digest::from_bytes))
    }

    fn client_standing(&self, node: &NodeId, client: &str) -> Result<ClientStanding, StoreError> {
        let probe = Probe {
            client: Some((node, client)),
            ..Probe::default()
        };
        Ok(self.probe(&probe)?.standing)
    }

    fn probe(&self, probe: &Probe<'_>) -> Result<Found, StoreError> {
        struct Seqs {
            attachment: Option<i64>,
            detachment: Option<i64>,
            recovery: Option<i64>,
            bind_digest: Option<[u8; 32]>,
            live: Option<i64>,
            latest: Option<i64>,
            tombstone: Option<String>,
            grant: Option<i64>,
        }
        let (session, bind_id) = probe.bind.unzip();
        let (node, client) = probe.client.unzip();
        let seqs = self
            .conn
            .prepare_cached(PROBE)
            .and_then(|mut statement| {
                statement.query_row(
                    params![
                        probe.attachment_id,
                        probe.detachment_id,
                        probe.recovery_id,
                        session,
                        bind_id,
                        node.map(NodeId::as_str),
                        client
                    ],
                    |row| {
                        Ok(Seqs {
                            attachment: row.get(0)?,
                            detachment: row.get(1)?,
                            recovery: row.get(2)?,
                            bind_digest: row.get(3)?,
                            live: row.get(4)?,
                            latest: row.get(5)?,
                            tombstone: row.get(6)?,
                            grant: row.get(7)?,
                        })
                    },
                )
            })
            .map_err(backend)?;
        Ok(Found {
            attachment: self.by_seq(ATTACHMENT_BY_SEQ, seqs.attachment, attachment_row)?,
            detachment: self.by_seq(DETACHMENT_BY_SEQ, seqs.detachment, detachment_row)?,
            recovery: self.by_seq(RECOVERY_BY_SEQ, seqs.recovery, recovery_row)?,
            bind_digest: seqs.bind_digest.map(Sha256Digest::from_bytes),
            standing: ClientStanding {
                live: self.by_seq(ATTACHMENT_BY_SEQ, seqs.live, attachment_row)?,
                latest_detachment: self.by_seq(DETACHMENT_BY_SEQ, seqs.latest, detachment_row)?,
                tombstone: seqs
                    .tombstone
                    .map(|reason| parse_column("tombstone reason", &reason))
                    .transpose()?,
                open_grant: self.by_seq(RECOVERY_BY_SEQ, seqs.grant, recovery_row)?,
            },
        })
    }

    fn client_history(&self, client: &str) -> Result<ClientHistory, StoreError> {
        Ok(ClientHistory {
            attachments: self.attachments_where("client_id = ?1", [client])?,
            detachments: self.detachments_where("client_id = ?1", [client])?,
            recoveries: self.recoveries_where("client_id = ?1", [client])?,
            tombstone: self.tombstone(client)?,
        })
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let count = |sql: &str| -> Result<usize, StoreError> {
            let value: i64 = self
                .conn
                .query_row(sql, [], |row| row.get(0))
                .map_err(backend)?;
            Ok(usize::try_from(value).unwrap_or(0))
        };
        let stored = counters(&self.conn)?;
        Ok(Counts {
            attachments: count("SELECT COUNT(*) FROM attachments")?,
            live: count("SELECT COUNT(*) FROM attachments WHERE state <> 'detached'")?,
            detachments: count("SELECT COUNT(*) FROM detachments")?,
            recoveries: count("SELECT COUNT(*) FROM recoveries")?,
            open_grants: count("SELECT COUNT(*) FROM recoveries WHERE grant_state = 'open'")?,
            binds: Counters::count(stored.binds),
            tombstones: Counters::count(stored.tombstones),
            traces: Counters::count(stored.traces),
        })
    }

    fn recent_traces(&self, limit: usize) -> Result<Vec<Trace>, StoreError> {
        let mut traces = self.query(
            "SELECT seq, event_type, ts, \
             COALESCE(node_self, (SELECT value FROM meta WHERE key = 'node/id')), peer, detail \
             FROM traces ORDER BY seq DESC LIMIT ?1",
            [i64::try_from(limit).unwrap_or(i64::MAX)],
            trace_row,
        )?;
        traces.reverse();
        Ok(traces)
    }

    fn commit(&mut self, commit: Commit, live: &SessionTable) -> Result<(), StoreError> {
        if self.group.is_none() {
            // Dropping the transaction without committing it (on any error) rolls it back.
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let mut now = counters(&tx)?;
            apply_all(
                &tx,
                &commit,
                (&self.limits, self.node.as_ref()),
                live,
                &mut now,
            )?;
            store_counters(&tx, &now)?;
            return tx.commit().map_err(backend);
        }
        let mut now = self
            .group
            .as_ref()
            .map(|group| group.counters)
            .unwrap_or_default();
        let store = (&self.limits, self.node.as_ref());
        match apply_all(&self.conn, &commit, store, live, &mut now) {
            Ok(()) => {
                if let Some(group) = &mut self.group {
                    group.counters = now;
                    group.done.push(commit);
                }
                Ok(())
            }
            Err(err) => {
                // Undo this commit only; the group goes on.
                self.restart_group(live)?;
                Err(err)
            }
        }
    }

    fn begin_group(&mut self) -> Result<(), StoreError> {
        if self.group.is_some() {
            return Err(StoreError::Backend("a group commit is already open".into()));
        }
        run(&self.conn, "BEGIN IMMEDIATE")?;
        match counters(&self.conn) {
            Ok(counters) => {
                self.group = Some(Group {
                    done: Vec::new(),
                    counters,
                });
                Ok(())
            }
            Err(err) => {
                let _ = run(&self.conn, "ROLLBACK");
                Err(err)
            }
        }
    }

    fn finish_group(&mut self) -> Result<(), StoreError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let finished =
            store_counters(&self.conn, &group.counters).and_then(|()| run(&self.conn, "COMMIT"));
        match finished {
            Ok(()) => {
                self.group = None;
                Ok(())
            }
            Err(err) => {
                self.abandon_group();
                Err(err)
            }
        }
    }

    fn abandon_group(&mut self) {
        if self.group.take().is_some() {
            // A failed rollback leaves nothing to undo: SQLite rolls back on its own then.
            let _ = run(&self.conn, "ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_sanction_reasons_are_the_ones_is_sanction_names() {
        let named: Vec<String> = orbi_types::pod::DetachReason::ALL
            .iter()
            .filter(|reason| crate::state::is_sanction(**reason))
            .map(|reason| format!("'{}'", reason.as_str()))
            .collect();
        assert_eq!(sanction_reasons!(), format!("({})", named.join(", ")));
    }

    /// Every statement an admission runs, and what each must find its rows by.
    const ADMISSION_PATH: [&str; 21] = [
        ATTACHMENT_BY_ID,
        ATTACHMENT_BY_SEQ,
        LIVE_ATTACHMENT,
        DETACHMENT_BY_ID,
        DETACHMENT_BY_SEQ,
        DETACHMENT_OF,
        LATEST_DETACHMENT,
        TOMBSTONE,
        RECOVERY_BY_ID,
        RECOVERY_BY_SEQ,
        OPEN_GRANT,
        BIND_DIGEST,
        PROBE,
        LIVE_ATTACHMENTS_ON,
        COUNTERS,
        STORE_COUNTERS,
        SET_ATTACHMENT_STATE,
        SET_GRANT,
        INSERT_ATTACHMENT,
        INSERT_BIND,
        INSERT_TRACE,
    ];

    #[cfg(unix)]
    #[test]
    fn a_new_read_model_file_is_readable_by_its_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pod.sqlite");
        let node = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        let store =
            SqliteStore::open(&path, &node, StoreLimits::default(), Durability::Full).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        let wal = dir.path().join("pod.sqlite-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600);
        }
        drop(store);
        // Reopening finds the node it was made for.
        SqliteStore::open(&path, &node, StoreLimits::default(), Durability::Full).unwrap();
    }

    #[test]
    fn a_database_with_tables_of_our_names_but_not_ours_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let node = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        for (name, sql) in [
            ("meta.db", "CREATE TABLE meta (key TEXT, value TEXT);"),
            ("binds.db", "CREATE TABLE binds (name TEXT);"),
            ("other-meta.db", "CREATE TABLE meta (name TEXT, data BLOB);"),
            ("ours-unfinished.db", SCHEMA),
        ] {
            let path = dir.path().join(name);
            Connection::open(&path).unwrap().execute_batch(sql).unwrap();
            let before = std::fs::read(&path).unwrap();
            let error = SqliteStore::open(&path, &node, StoreLimits::default(), Durability::Full)
                .unwrap_err();
            assert!(
                error.to_string().contains("not a pod read model"),
                "{name}: {error}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), before, "{name} was changed");
            let journal: String = Connection::open(&path)
                .unwrap()
                .query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .unwrap();
            assert_eq!(journal, "delete", "{name}: its journal mode was changed");
        }
    }

    #[test]
    fn instants_outside_the_stored_range_keep_their_side() {
        let at = |text: &str| Timestamp::parse(text).unwrap().instant();
        let far_past = at("1600-01-01T00:00:00Z");
        let far_future = at("9999-12-31T23:59:59Z");
        assert_eq!(nanos(far_past), i64::MIN);
        assert_eq!(nanos(far_future), i64::MAX);
        let now = at("2026-11-22T02:00:00Z");
        assert_eq!(
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos(now))).unwrap(),
            now
        );
    }

    #[test]
    fn another_database_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let node = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        let foreign = dir.path().join("other.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE precious (x); INSERT INTO precious VALUES (1);")
            .unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let before = |path: &Path| std::fs::read(path).unwrap();
        let (foreign_bytes, empty_bytes) = (before(&foreign), before(&empty));
        for path in [&foreign, &empty] {
            let error = SqliteStore::open_existing(path, StoreLimits::default()).unwrap_err();
            assert!(
                error.to_string().contains("not a pod read model"),
                "{error}"
            );
        }
        let error = SqliteStore::open(&foreign, &node, StoreLimits::default(), Durability::Full)
            .unwrap_err();
        assert!(
            error.to_string().contains("it holds other tables"),
            "{error}"
        );
        assert_eq!(before(&foreign), foreign_bytes);
        assert_eq!(before(&empty), empty_bytes);
        for leftover in ["other.db-wal", "other.db-shm", "empty.db-wal"] {
            let wal = dir.path().join(leftover);
            assert!(
                !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
                "{leftover} written"
            );
        }
        // A read model of ours opens either way, and an empty file becomes one on `open`.
        SqliteStore::open(&empty, &node, StoreLimits::default(), Durability::Full).unwrap();
        SqliteStore::open_existing(&empty, StoreLimits::default()).unwrap();
    }

    #[test]
    fn an_in_memory_read_model_writes_no_file() {
        let stray = Path::new(":memory:");
        let node = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        let _store = SqliteStore::open_in_memory(&node, StoreLimits::default()).unwrap();
        assert!(
            !stray.exists(),
            "{} was created",
            std::env::current_dir().unwrap().join(stray).display()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_new_read_model_behind_a_dangling_symlink_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.sqlite");
        let link = dir.path().join("pod.sqlite");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let node = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        let _store =
            SqliteStore::open(&link, &node, StoreLimits::default(), Durability::Full).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", target.display());
    }

    #[test]
    fn no_statement_on_the_admission_path_builds_a_temporary_table() {
        let node = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        let store = SqliteStore::open_in_memory(&node, StoreLimits::default()).unwrap();
        for sql in ADMISSION_PATH {
            let mut statement = store.conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let mut rows = statement.raw_query();
            while let Some(row) = rows.next().unwrap() {
                let opcode: String = row.get(1).unwrap();
                // An ephemeral table costs a page cache per execution (a CHECK with an IN
                // list did that on every insert).
                assert_ne!(opcode, "OpenEphemeral", "{sql}");
            }
        }
    }

    #[test]
    fn no_statement_on_the_admission_path_scans_a_table() {
        let node = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
        let store = SqliteStore::open_in_memory(&node, StoreLimits::default()).unwrap();
        for sql in ADMISSION_PATH {
            let mut statement = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            // Unbound parameters are NULL, which is all a plan needs.
            let mut rows = statement.raw_query();
            let mut plan = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                plan.push(row.get::<_, String>(3).unwrap());
            }
            assert!(
                plan.iter()
                    .all(|step| !step.starts_with("SCAN") || step == "SCAN CONSTANT ROW"),
                "{sql}\n{plan:#?}"
            );
            if !sql.starts_with("INSERT") {
                assert!(
                    plan.iter().any(|step| step.starts_with("SEARCH")),
                    "{sql}\n{plan:#?}"
                );
            }
        }
    }
}
