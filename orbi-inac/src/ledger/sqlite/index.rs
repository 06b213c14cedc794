//! The in-memory lookup indexes over the ledger's append-only tables.
//!
//! A unique SQL index on a digest or on a sender-chosen key puts every insert on a random
//! B-tree leaf, so each group commit rewrote one 4 KiB page per decision and per index into the
//! WAL (and again at the checkpoint): three random leaves per admitted push, most of the
//! ledger's write volume. The hot tables (`idempotency`, `artifacts`, `objects`) are therefore
//! plain append-only rowid tables, and their lookups go through maps kept here, from a keyed
//! 64-bit hash of the lookup key to the row ids having it. Appends to rowid tables touch only
//! the last leaf, shared by every row of a group.
//!
//! - **Never trusted.** A hash only names candidate rows: every hit is read back and its key
//!   compared, and rows whose keys share a hash are all kept. The hash key is random per
//!   process, so nobody can aim collisions at it.
//! - **Current.** Each table's map is built lazily, by scanning the table's key columns once,
//!   then kept current: this connection's inserts are added as they happen, and when another
//!   connection has committed (`PRAGMA data_version` moved) the rows past each table's
//!   high-water mark are read in. Writers hold SQLite's write lock while they look up and
//!   insert, so two processes on one database stay exact.
//! - **Transactional.** Every change is journaled until the outermost transaction commits; a
//!   rollback (of the transaction, or of the savepoint of one failed decision) undoes them.
//!   When SQLite ends a group's whole transaction itself (it may, on a full disk, an I/O error
//!   or out of memory), the whole group's changes are undone and the group writes nothing
//!   more (`Db::write` in the parent module). As a second line, a high-water mark found past
//!   its table's largest row id makes the table be read in afresh, and a scan that fails
//!   leaves its table unloaded for the next lookup to retry.
//! - **Cost.** One map entry per row of each indexed table (about 25–35 bytes: hashbrown slot
//!   of two `u64`s at its load factor); an admitted keyed push adds five (its idempotency key,
//!   the artifact's digest, id and own id, and its object).

use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState},
};

use rusqlite::{Connection, params};

/// A map from a 64-bit hash to the ids of the rows whose key has it, in insertion order
/// (ascending ids). Almost every hash names one row; the rare others move to `shared`.
#[derive(Default)]
struct KeyMap {
    single: HashMap<u64, i64, BuildHasherDefault<Prehashed>>,
    shared: HashMap<u64, Vec<i64>, BuildHasherDefault<Prehashed>>,
}

impl KeyMap {
    fn candidates(&self, hash: u64) -> &[i64] {
        match self.single.get(&hash) {
            Some(id) => std::slice::from_ref(id),
            None => self.shared.get(&hash).map_or(&[], Vec::as_slice),
        }
    }

    fn add(&mut self, hash: u64, id: i64) {
        if let Some(ids) = self.shared.get_mut(&hash) {
            ids.push(id);
        } else if let Some(first) = self.single.remove(&hash) {
            self.shared.insert(hash, vec![first, id]);
        } else {
            self.single.insert(hash, id);
        }
    }

    /// Undoes the last [`KeyMap::add`] of `hash`.
    fn remove_last(&mut self, hash: u64) {
        if self.single.remove(&hash).is_some() {
            return;
        }
        if let Some(ids) = self.shared.get_mut(&hash) {
            ids.pop();
            if ids.len() == 1 {
                let last = ids[0];
                self.shared.remove(&hash);
                self.single.insert(hash, last);
            }
        }
    }

    fn len(&self) -> usize {
        self.single.len() + self.shared.values().map(Vec::len).sum::<usize>()
    }
}

/// The keys are hashes already: hashing them again would only cost time.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this; fold anything else in anyway.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// An append-only table with indexed keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Idempotency,
    Artifacts,
    Objects,
}

impl Table {
    pub(crate) const ALL: [Table; 3] = [Table::Idempotency, Table::Artifacts, Table::Objects];

    fn slot(self) -> usize {
        self as usize
    }

    /// The rows past a high-water mark, with their key columns.
    fn scan(self) -> &'static str {
        match self {
            Table::Idempotency => "SELECT id, peer, key FROM idempotency WHERE id > ?1 ORDER BY id",
            Table::Artifacts => {
                "SELECT seq, schema, digest, content_type, artifact_id, source_peer \
                 FROM artifacts WHERE seq > ?1 ORDER BY seq"
            }
            Table::Objects => "SELECT id, digest FROM objects WHERE id > ?1 ORDER BY id",
        }
    }

    /// The largest row id (0 when empty): a search of the rowid B-tree's right edge.
    fn largest_id(self) -> &'static str {
        match self {
            Table::Idempotency => "SELECT COALESCE(max(id), 0) FROM idempotency",
            Table::Artifacts => "SELECT COALESCE(max(seq), 0) FROM artifacts",
            Table::Objects => "SELECT COALESCE(max(id), 0) FROM objects",
        }
    }
}

/// A lookup key, hashed with the index's random key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// `(peer, key)` → `idempotency.id` (the newest row is the record).
    Idempotency,
    /// `(schema, digest)` → `artifacts.seq` (one row: the first admission).
    Held,
    /// `(schema, content_type, artifact_id)` → `artifacts.seq` (the newest row matches best).
    ArtifactId,
    /// `digest` → `objects.id` (one row).
    Object,
    /// `(schema, content_type, artifact_id, source_peer)` → `artifacts.seq`: a peer's own
    /// artifacts under an id, without reading every other peer's under it.
    OwnArtifactId,
}

impl Lookup {
    const ALL: [Lookup; 5] = [
        Lookup::Idempotency,
        Lookup::Held,
        Lookup::ArtifactId,
        Lookup::Object,
        Lookup::OwnArtifactId,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

/// One change, undone on rollback.
enum Undo {
    Added(Lookup, u64),
    HighWater(Table, i64),
}

/// The maps of one connection, its high-water marks and its journal.
pub(crate) struct Index {
    keys: RandomState,
    /// Tests: every key hashes alike, so every lookup goes through the collision path.
    #[cfg(test)]
    colliding: bool,
    maps: [KeyMap; 5],
    /// Per table: the highest row id reflected in the maps, once loaded.
    high_water: [Option<i64>; 3],
    /// The `PRAGMA data_version` last seen.
    data_version: Option<i64>,
    journal: Vec<Undo>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("entries", &self.maps.iter().map(KeyMap::len).sum::<usize>())
            .field("high_water", &self.high_water)
            .finish_non_exhaustive()
    }
}

impl Index {
    pub(crate) fn new() -> Self {
        Index {
            keys: RandomState::new(),
            #[cfg(test)]
            colliding: false,
            maps: Default::default(),
            high_water: [None; 3],
            data_version: None,
            journal: Vec::new(),
        }
    }

    /// An index whose keys all share one hash (tests of the collision path).
    #[cfg(test)]
    pub(crate) fn colliding() -> Self {
        Index {
            colliding: true,
            ..Index::new()
        }
    }

    fn hash(&self, key: impl std::hash::Hash) -> u64 {
        #[cfg(test)]
        if self.colliding {
            return 0;
        }
        self.keys.hash_one(key)
    }

    pub(crate) fn hash_idempotency(&self, peer: &str, key: &str) -> u64 {
        self.hash((0u8, peer, key))
    }

    pub(crate) fn hash_held(&self, schema: &str, digest: &str) -> u64 {
        self.hash((1u8, schema, digest))
    }

    pub(crate) fn hash_artifact_id(&self, schema: &str, content_type: &str, id: &str) -> u64 {
        self.hash((2u8, schema, content_type, id))
    }

    pub(crate) fn hash_object(&self, digest: &str) -> u64 {
        self.hash((3u8, digest))
    }

    pub(crate) fn hash_own_artifact_id(
        &self,
        schema: &str,
        content_type: &str,
        id: &str,
        source_peer: &str,
    ) -> u64 {
        self.hash((4u8, schema, content_type, id, source_peer))
    }

    /// The candidate row ids of `hash`, oldest first. Loads `lookup`'s table first.
    pub(crate) fn candidates(
        &mut self,
        connection: &Connection,
        lookup: Lookup,
        hash: u64,
    ) -> rusqlite::Result<&[i64]> {
        self.load(connection, table_of(lookup))?;
        Ok(self.maps[lookup.slot()].candidates(hash))
    }

    /// Records that this connection inserted row `id` of `table` with these keys (the table
    /// must be loaded: look it up first).
    pub(crate) fn inserted(&mut self, table: Table, id: i64, keys: &[(Lookup, u64)]) {
        for &(lookup, hash) in keys {
            debug_assert_eq!(table_of(lookup), table);
            self.maps[lookup.slot()].add(hash, id);
            self.journal.push(Undo::Added(lookup, hash));
        }
        if let Some(mark) = self.high_water[table.slot()]
            && id > mark
        {
            self.journal.push(Undo::HighWater(table, mark));
            self.high_water[table.slot()] = Some(id);
        }
    }

    /// Reads in what other connections committed since this one last looked. Call it with no
    /// transaction open, or right after taking the write lock. A table whose high-water mark
    /// lies past its largest row id (rows this connection saw were rolled back) is read in
    /// afresh, so that rows committed later under those ids are not skipped. On error the
    /// next call tries again.
    pub(crate) fn refresh(&mut self, connection: &Connection) -> rusqlite::Result<()> {
        let version: i64 = connection
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        if self.data_version == Some(version) {
            return Ok(());
        }
        for table in Table::ALL {
            let Some(mark) = self.high_water[table.slot()] else {
                continue;
            };
            let largest: i64 = connection
                .prepare_cached(table.largest_id())?
                .query_row([], |row| row.get(0))?;
            if mark > largest {
                tracing::warn!(
                    ?table,
                    mark,
                    largest,
                    "lookup index ahead of its table; rebuilt"
                );
                self.unload(table);
                self.load(connection, table)?;
            } else {
                self.catch_up(connection, table, mark)?;
            }
        }
        self.data_version = Some(version);
        Ok(())
    }

    /// Builds `table`'s maps if they are not built yet.
    pub(crate) fn load(&mut self, connection: &Connection, table: Table) -> rusqlite::Result<()> {
        if self.high_water[table.slot()].is_none() {
            if self.data_version.is_none() {
                self.data_version = Some(
                    connection
                        .prepare_cached("PRAGMA data_version")?
                        .query_row([], |row| row.get(0))?,
                );
            }
            self.catch_up(connection, table, 0)?;
        }
        Ok(())
    }

    /// Adds the rows of `table` past `from` and moves its high-water mark to the last of
    /// them. On error the table is unloaded (its next lookup reads it in again) rather than
    /// left with part of the rows under a mark that would skip the rest.
    fn catch_up(
        &mut self,
        connection: &Connection,
        table: Table,
        from: i64,
    ) -> rusqlite::Result<()> {
        match self.scan(connection, table, from) {
            Ok(last) => {
                self.high_water[table.slot()] = Some(last);
                Ok(())
            }
            Err(error) => {
                self.unload(table);
                Err(error)
            }
        }
    }

    /// Adds the rows of `table` past `from` to its maps; returns the last id read.
    fn scan(&mut self, connection: &Connection, table: Table, from: i64) -> rusqlite::Result<i64> {
        let mut statement = connection.prepare_cached(table.scan())?;
        let mut rows = statement.query(params![from])?;
        let mut last = from;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            match table {
                Table::Idempotency => {
                    let hash =
                        self.hash_idempotency(row.get_ref(1)?.as_str()?, row.get_ref(2)?.as_str()?);
                    self.maps[Lookup::Idempotency.slot()].add(hash, id);
                }
                Table::Artifacts => {
                    let schema = row.get_ref(1)?.as_str()?;
                    let (content_type, artifact_id) =
                        (row.get_ref(3)?.as_str()?, row.get_ref(4)?.as_str()?);
                    let held = self.hash_held(schema, row.get_ref(2)?.as_str()?);
                    let named = self.hash_artifact_id(schema, content_type, artifact_id);
                    let own = self.hash_own_artifact_id(
                        schema,
                        content_type,
                        artifact_id,
                        row.get_ref(5)?.as_str()?,
                    );
                    self.maps[Lookup::Held.slot()].add(held, id);
                    self.maps[Lookup::ArtifactId.slot()].add(named, id);
                    self.maps[Lookup::OwnArtifactId.slot()].add(own, id);
                }
                Table::Objects => {
                    let hash = self.hash_object(row.get_ref(1)?.as_str()?);
                    self.maps[Lookup::Object.slot()].add(hash, id);
                }
            }
            last = id;
        }
        Ok(last)
    }

    /// Forgets `table`'s maps (and their journal entries): its next lookup reads it in again.
    fn unload(&mut self, table: Table) {
        for lookup in Lookup::ALL {
            if table_of(lookup) == table {
                self.maps[lookup.slot()] = KeyMap::default();
            }
        }
        self.high_water[table.slot()] = None;
        self.journal.retain(|undo| match *undo {
            Undo::Added(lookup, _) => table_of(lookup) != table,
            Undo::HighWater(of, _) => of != table,
        });
    }

    /// A savepoint of the journal: what [`Index::roll_back_to`] returns to.
    pub(crate) fn mark(&self) -> usize {
        self.journal.len()
    }

    /// Undoes every change since `mark`.
    pub(crate) fn roll_back_to(&mut self, mark: usize) {
        while self.journal.len() > mark {
            match self.journal.pop() {
                Some(Undo::Added(lookup, hash)) => self.maps[lookup.slot()].remove_last(hash),
                Some(Undo::HighWater(table, mark)) => self.high_water[table.slot()] = Some(mark),
                None => break,
            }
        }
    }

    /// The outermost transaction committed: its changes stay.
    pub(crate) fn committed(&mut self) {
        self.journal.clear();
    }

    /// Map entries held.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.maps.iter().map(KeyMap::len).sum()
    }
}

fn table_of(lookup: Lookup) -> Table {
    match lookup {
        Lookup::Idempotency => Table::Idempotency,
        Lookup::Held | Lookup::ArtifactId | Lookup::OwnArtifactId => Table::Artifacts,
        Lookup::Object => Table::Objects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_map_keeps_every_row_of_a_shared_hash_and_undoes_in_order() {
        let mut map = KeyMap::default();
        map.add(7, 1);
        assert_eq!(map.candidates(7), &[1]);
        map.add(7, 5);
        map.add(7, 9);
        map.add(8, 2);
        assert_eq!(map.candidates(7), &[1, 5, 9]);
        assert_eq!(map.len(), 4);
        map.remove_last(7);
        assert_eq!(map.candidates(7), &[1, 5]);
        map.remove_last(7);
        assert_eq!(map.candidates(7), &[1]);
        map.remove_last(7);
        assert_eq!(map.candidates(7), &[] as &[i64]);
        assert_eq!(map.candidates(8), &[2]);
    }
}
