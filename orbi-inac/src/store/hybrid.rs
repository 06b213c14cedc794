//! [`HybridStore`]: small objects as rows of the ledger's SQLite database, larger ones as files
//! of an [`FsStore`].
//!
//! A small object is written by the same connection, in the same transaction, as the decision
//! that admits it: inside a ledger group ([`crate::Ledger::begin_group`]) every object and
//! every ledger row of the group become durable with one commit. One file per small artifact
//! (create, fsync, rename, directory fsync) would cost more than everything else a push does.

use std::io::{Cursor, Read};

use orbi_types::Sha256Digest;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Committed, FsStore, StagedBody, StagingWriter, Store, StoreError, StoredObject};
use crate::ledger::{
    SqliteLedger,
    sqlite::{Db, Index, Lookup, SharedConnection, Table, lock},
};

/// Objects up to `small_max` bytes in SQLite, larger ones in files.
#[derive(Clone)]
pub struct HybridStore {
    files: FsStore,
    db: SharedConnection,
    small_max: usize,
}

impl std::fmt::Debug for HybridStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridStore")
            .field("files", &self.files.root())
            .field("small_max", &self.small_max)
            .finish()
    }
}

fn database(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

impl HybridStore {
    /// Objects over `small_max` bytes go to `files`, smaller ones into `ledger`'s database.
    pub fn new(files: FsStore, ledger: &SqliteLedger, small_max: usize) -> Self {
        HybridStore {
            files,
            db: ledger.shared_connection(),
            small_max,
        }
    }

    /// The file store holding the large objects.
    pub fn files(&self) -> &FsStore {
        &self.files
    }

    /// The largest object kept in the database.
    pub fn small_max(&self) -> usize {
        self.small_max
    }

    /// Runs an indexed read of `digest` under one lock, with the index brought up to date.
    fn read_small<T>(
        &self,
        digest: &Sha256Digest,
        read: impl FnOnce(&Connection, &mut Index, &str) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut db = lock(&self.db);
        db.fresh().map_err(database)?;
        let Db {
            connection, index, ..
        } = &mut *db;
        read(connection, index, digest.as_str()).map_err(database)
    }

    /// The id of the object row holding `digest`, if any.
    fn small_id(&self, digest: &Sha256Digest) -> Result<Option<i64>, StoreError> {
        self.read_small(digest, object_id)
    }

    /// The bytes of the object row holding `digest`, found and read under one lock.
    fn small(&self, digest: &Sha256Digest) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_small(digest, object_bytes)
    }
}

impl Store for HybridStore {
    fn stage(&self) -> Result<Box<dyn StagingWriter>, StoreError> {
        Ok(Box::new(HybridStaging {
            buffer: Vec::new(),
            spill: None,
            store: self.clone(),
        }))
    }

    fn contains(&self, digest: &Sha256Digest) -> Result<bool, StoreError> {
        Ok(self.small_id(digest)?.is_some() || self.files.contains(digest)?)
    }

    fn intact(&self, digest: &Sha256Digest, size_bytes: u64) -> Result<bool, StoreError> {
        // A small object commits in the ledger's own transactions: never cut short.
        if size_bytes <= self.small_max as u64 && self.small_id(digest)?.is_some() {
            return Ok(true);
        }
        self.files.intact(digest, size_bytes)
    }

    fn open(&self, digest: &Sha256Digest) -> Result<Option<Box<dyn Read + Send>>, StoreError> {
        match self.small(digest)? {
            Some(bytes) => Ok(Some(Box::new(Cursor::new(bytes)))),
            None => self.files.open(digest),
        }
    }

    fn list(&self) -> Result<Vec<StoredObject>, StoreError> {
        let mut objects = {
            let db = lock(&self.db);
            let mut statement = db
                .prepare_cached("SELECT digest, length(bytes) FROM objects")
                .map_err(database)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(database)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(database)?;
            rows.into_iter()
                .map(|(digest, len)| {
                    Ok(StoredObject {
                        digest: digest
                            .parse()
                            .map_err(|_| StoreError::Database(format!("bad digest {digest:?}")))?,
                        size_bytes: u64::try_from(len).unwrap_or(0),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?
        };
        objects.extend(self.files.list()?);
        objects.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(objects)
    }
}

/// A body in memory until it outgrows `small_max`, then in a staged file.
struct HybridStaging {
    buffer: Vec<u8>,
    spill: Option<Box<dyn StagingWriter>>,
    store: HybridStore,
}

impl StagingWriter for HybridStaging {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if let Some(spill) = &mut self.spill {
            return spill.write(bytes);
        }
        if self.buffer.len() + bytes.len() <= self.store.small_max {
            self.buffer.extend_from_slice(bytes);
            return Ok(());
        }
        let mut spill = self.store.files.stage()?;
        spill.write(&self.buffer)?;
        spill.write(bytes)?;
        self.buffer = Vec::new();
        self.spill = Some(spill);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Box<dyn StagedBody>, StoreError> {
        match self.spill {
            Some(spill) => spill.finish(),
            None => Ok(Box::new(SmallStaged {
                bytes: self.buffer,
                store: self.store,
            })),
        }
    }
}

/// One object row: its digest, then its bytes (a blob in overflow pages is only read when its
/// column is).
pub(crate) const OBJECT_BY_ID: &str = "SELECT digest, bytes FROM objects WHERE id = ?1";

/// The object row holding `digest`, through the index (which this loads if needed).
fn object_id(
    connection: &Connection,
    index: &mut Index,
    digest: &str,
) -> rusqlite::Result<Option<i64>> {
    let hash = index.hash_object(digest);
    for &id in index.candidates(connection, Lookup::Object, hash)? {
        let stored: Option<String> = connection
            .prepare_cached(OBJECT_BY_ID)?
            .query_row(params![id], |row| row.get(0))
            .optional()?;
        if stored.as_deref() == Some(digest) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The bytes of the object row holding `digest`, through the index; each candidate's digest
/// is compared before its bytes are read.
fn object_bytes(
    connection: &Connection,
    index: &mut Index,
    digest: &str,
) -> rusqlite::Result<Option<Vec<u8>>> {
    let hash = index.hash_object(digest);
    for &id in index.candidates(connection, Lookup::Object, hash)? {
        let bytes = connection
            .prepare_cached(OBJECT_BY_ID)?
            .query_row(params![id], |row| {
                if row.get_ref(0)?.as_str()? == digest {
                    row.get(1).map(Some)
                } else {
                    Ok(None)
                }
            })
            .optional()?
            .flatten();
        if bytes.is_some() {
            return Ok(bytes);
        }
    }
    Ok(None)
}

struct SmallStaged {
    bytes: Vec<u8>,
    store: HybridStore,
}

impl StagedBody for SmallStaged {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn open(&self) -> Result<Box<dyn Read + '_>, StoreError> {
        Ok(Box::new(self.bytes.as_slice()))
    }

    fn commit(self: Box<Self>, digest: &Sha256Digest) -> Result<Committed, StoreError> {
        // No look at the files: bytes of this size are never filed under this threshold (a
        // node that lowered its threshold may hold a second, identical copy; both read alike).
        let digest = digest.as_str();
        lock(&self.store.db)
            .write(|tx, index| {
                if object_id(tx, index, digest)?.is_some() {
                    return Ok(Committed::AlreadyHeld);
                }
                tx.prepare_cached("INSERT INTO objects (digest, bytes) VALUES (?1, ?2)")?
                    .execute(params![digest, self.bytes])?;
                let hash = index.hash_object(digest);
                index.inserted(
                    Table::Objects,
                    tx.last_insert_rowid(),
                    &[(Lookup::Object, hash)],
                );
                Ok(Committed::Stored)
            })
            .map_err(database)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ledger, store::stage_bytes};

    fn hybrid(dir: &std::path::Path, small_max: usize) -> (HybridStore, SqliteLedger) {
        let ledger = SqliteLedger::open(dir.join("inac.sqlite")).unwrap();
        let files = FsStore::open(dir.join("store")).unwrap();
        (HybridStore::new(files, &ledger, small_max), ledger)
    }

    #[test]
    fn keeps_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _ledger) = hybrid(dir.path(), 64);
        super::super::tests::store_contract(&store);
        assert_eq!(store.files().list().unwrap(), vec![], "{{}} is small");
    }

    #[test]
    fn keeps_the_store_contract_when_every_digest_shares_one_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ledger) = hybrid(dir.path(), 64);
        lock(&ledger.shared_connection()).index = Index::colliding();
        super::super::tests::store_contract(&store);
        let objects: Vec<&[u8]> = vec![b"one", b"two", b"three"];
        for bytes in &objects {
            let staged = stage_bytes(&store, bytes).unwrap();
            assert_eq!(
                staged.commit(&Sha256Digest::of(bytes)).unwrap(),
                Committed::Stored
            );
        }
        for bytes in &objects {
            let mut read = Vec::new();
            let digest = Sha256Digest::of(bytes);
            store
                .open(&digest)
                .unwrap()
                .unwrap()
                .read_to_end(&mut read)
                .unwrap();
            assert_eq!(&read, bytes);
            let again = stage_bytes(&store, bytes).unwrap();
            assert_eq!(again.commit(&digest).unwrap(), Committed::AlreadyHeld);
        }
        assert_eq!(store.list().unwrap().len(), 4);
    }

    #[test]
    fn large_objects_spill_to_files_and_small_ones_stay_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _ledger) = hybrid(dir.path(), 16);
        let small = b"sixteen bytes!!!";
        let large = b"seventeen bytes!!";
        for bytes in [&small[..], &large[..]] {
            let mut writer = store.stage().unwrap();
            for chunk in bytes.chunks(5) {
                writer.write(chunk).unwrap();
            }
            let staged = writer.finish().unwrap();
            assert_eq!(
                staged.commit(&Sha256Digest::of(bytes)).unwrap(),
                Committed::Stored
            );
        }
        assert_eq!(store.files().list().unwrap().len(), 1);
        assert_eq!(store.list().unwrap().len(), 2);
        for bytes in [&small[..], &large[..]] {
            let mut read = Vec::new();
            store
                .open(&Sha256Digest::of(bytes))
                .unwrap()
                .unwrap()
                .read_to_end(&mut read)
                .unwrap();
            assert_eq!(read, bytes);
        }
    }

    #[test]
    fn small_objects_commit_with_the_ledger_group() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut ledger) = hybrid(dir.path(), 1024);
        let digest = Sha256Digest::of(b"{}");
        // Another connection, as an operator tool beside the node has.
        let other = SqliteLedger::open(dir.path().join("inac.sqlite")).unwrap();
        let files = FsStore::inspect(dir.path().join("store")).unwrap();
        let outside = HybridStore::new(files, &other, 1024);
        ledger.begin_group().unwrap();
        stage_bytes(&store, b"{}").unwrap().commit(&digest).unwrap();
        assert!(store.contains(&digest).unwrap(), "visible inside the group");
        assert!(
            !outside.contains(&digest).unwrap(),
            "invisible outside before the commit"
        );
        ledger.commit_group().unwrap();
        assert!(outside.contains(&digest).unwrap());
    }
}
