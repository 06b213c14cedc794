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
pub(super) fn from_v1(connection: &Connection) -> rusqlite::Result<()> {
    let mut script = String::from("BEGIN IMMEDIATE;\n");
    for (table, _) in REBUILT {
        script.push_str(&format!("ALTER TABLE {table} RENAME TO {table}_v1;\n"));
    }
    script.push_str(SCHEMA);
    for (table, columns) in REBUILT {
        script.push_str(&format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_v1 ORDER BY rowid;\n\
             DROP TABLE {table}_v1;\n"
        ));
    }
    script.push_str(&format!(
        "PRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;\n"
    ));
    let migrated = connection.execute_batch(&script);
    if migrated.is_err() && !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    migrated
}
