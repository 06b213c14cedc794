//! Ledger schema migrations, each in one transaction.

use rusqlite::Connection;

use super::{SCHEMA, SCHEMA_VERSION};

/// The tables version 2 rebuilt (without their unique indexes), with the columns copied.
const REBUILT: [(&str, &str); 3] = [
    (
        "idempotency",
        "peer, key, schema, content_type, artifact_id, digest, size_bytes, answer, \
         refusal_code, message",
    ),
    (
        "artifacts",
        "seq, schema, content_type, artifact_id, digest, size_bytes, source_peer, kept, at_ms",
    ),
    ("objects", "id, digest, bytes"),
];

/// Version 1 → 2: `idempotency` (primary key `(peer, key)`), `artifacts` (unique
/// `(schema, digest)`) and `objects` (unique `digest`) become plain rowid tables; their rows
/// and ids are kept (`idempotency` rows get ids in their old rowid order). The keys stay unique
/// because every writer checks them through the index under the write lock.
///
/// The version is read again under the write lock: another process opening the same file may
/// have migrated it since the caller looked, and then nothing is left to do.
pub(super) fn from_v1(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let migrated = rebuild_v1(connection).and_then(|()| connection.execute_batch("COMMIT"));
    if migrated.is_err() && !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    migrated
}

fn rebuild_v1(connection: &Connection) -> rusqlite::Result<()> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version != 1 {
        return Ok(());
    }
    let mut script = String::new();
    for (table, _) in REBUILT {
        script.push_str(&format!("ALTER TABLE {table} RENAME TO {table}_v1;\n"));
    }
    // A renamed table keeps its indexes under their names, which the new tables' indexes need
    // (`CREATE INDEX IF NOT EXISTS` would see the old one and skip, and the old table's drop
    // would take it along). Indexes SQLite made for constraints have no SQL and go with their
    // tables.
    let named: Vec<String> = connection
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ('idempotency', 'artifacts', 'objects')",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for index in named {
        script.push_str(&format!("DROP INDEX \"{}\";\n", index.replace('"', "\"\"")));
    }
    script.push_str(SCHEMA);
    for (table, columns) in REBUILT {
        script.push_str(&format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_v1 ORDER BY rowid;\n\
             DROP TABLE {table}_v1;\n"
        ));
    }
    script.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION};\n"));
    connection.execute_batch(&script)
}
