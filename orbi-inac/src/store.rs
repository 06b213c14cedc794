//! Content-addressed artifact storage behind the [`Store`] trait: [`FsStore`] on the
//! filesystem, [`HybridStore`] (small objects in the ledger's SQLite database, large ones in an
//! [`FsStore`]), [`MemoryStore`] for deterministic tests.
//!
//! A body is first *staged* ([`Store::stage`]): written, hashed by the caller, made durable
//! ([`StagingWriter::finish`]) and only then *committed* under its digest
//! ([`StagedBody::commit`]). Dropping a writer or a staged body at any point removes what was
//! staged, so a failed, refused or interrupted transfer leaves nothing behind.

mod fs;
pub(crate) mod hybrid;
mod memory;

use std::{io, io::Read, path::PathBuf};

use orbi_types::Sha256Digest;

pub use fs::FsStore;
#[cfg(test)]
pub(crate) use fs::dir_syncs;
#[cfg(feature = "quic")]
pub(crate) use fs::sync_directory;
pub(crate) use fs::sync_new_entry;
pub use fs::{create_private_dir_all, create_private_file};
pub use hybrid::HybridStore;
pub use memory::MemoryStore;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `write`, `sync`, `rename`, ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The digest is not a strict sha256 digest, so it has no path.
    #[error("digest {0} is not a strict sha256 digest")]
    Digest(Sha256Digest),
    /// The database holding small objects failed.
    #[error("object database: {0}")]
    Database(String),
    /// Another process (or another open store in this one) holds the store's lock: two
    /// writers would remove each other's staged bodies.
    #[error("{} is in use: another open store holds its LOCK", .0.display())]
    InUse(PathBuf),
}

/// How hard persistent state is pushed to the disk before a decision is answered.
///
/// Both levels survive a crash of the process: nothing half-written is ever visible
/// (temporary files, renames, SQLite transactions). They differ on power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// fsync every stored object, its directory and every ledger transaction before
    /// answering: an answered `ingested` survives power loss. The default.
    #[default]
    Full,
    /// Leave flushing to the operating system (no fsync; SQLite `synchronous=NORMAL` in WAL
    /// mode): the last answered decisions may be lost on power loss, and an object file may
    /// be left cut short. Such an object is not served, and the next push of it is taken
    /// again and repairs it ([`Store::intact`]); a retry under the same `idempotency/key` is
    /// answered from its record instead (spec §3.4), so the repair needs another key or none. For nodes whose disks make per-decision
    /// fsync the bottleneck, and for benchmarks.
    Relaxed,
}

/// Whether a commit added the bytes or found them already held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// Newly stored.
    Stored,
    /// An identical object was already held (content-addressed dedup); the staged copy is gone.
    AlreadyHeld,
}

/// One held object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Its digest (its address).
    pub digest: Sha256Digest,
    /// Its length in bytes.
    pub size_bytes: u64,
}

/// Content-addressed bytes: one object per digest, written atomically.
pub trait Store: Send + Sync {
    /// Starts staging a new body.
    fn stage(&self) -> Result<Box<dyn StagingWriter>, StoreError>;

    /// Whether an object with `digest` is held.
    fn contains(&self, digest: &Sha256Digest) -> Result<bool, StoreError>;

    /// Whether the object with `digest` is held whole, `size_bytes` long. A store that can
    /// lose the tail of an object (files written without a sync, [`Durability::Relaxed`],
    /// then a power loss) says so here, so that the receiver takes the bytes again instead of
    /// answering `already-present` for an object it can no longer serve.
    fn intact(&self, digest: &Sha256Digest, size_bytes: u64) -> Result<bool, StoreError> {
        let _ = size_bytes;
        self.contains(digest)
    }

    /// Reads the object with `digest`, if held.
    fn open(&self, digest: &Sha256Digest) -> Result<Option<Box<dyn Read + Send>>, StoreError>;

    /// Every held object, in digest order.
    fn list(&self) -> Result<Vec<StoredObject>, StoreError>;
}

/// A body being written. Dropping it discards what was written.
pub trait StagingWriter: Send {
    /// Appends bytes.
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;

    /// Makes the written bytes durable and returns them, ready to verify and commit.
    fn finish(self: Box<Self>) -> Result<Box<dyn StagedBody>, StoreError>;
}

/// A complete, durable body not yet in the store. Dropping it discards it.
pub trait StagedBody: Send {
    /// Its length in bytes.
    fn len(&self) -> u64;

    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads it (acceptors inspect the bytes through this).
    fn open(&self) -> Result<Box<dyn Read + '_>, StoreError>;

    /// Moves it into the store under `digest` (which the caller has verified).
    fn commit(self: Box<Self>, digest: &Sha256Digest) -> Result<Committed, StoreError>;
}

/// Stages `bytes` in one go (inline payloads).
pub fn stage_bytes(store: &dyn Store, bytes: &[u8]) -> Result<Box<dyn StagedBody>, StoreError> {
    let mut writer = store.stage()?;
    writer.write(bytes)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract every store keeps; run against both implementations.
    pub(crate) fn store_contract(store: &dyn Store) {
        let digest = Sha256Digest::of(b"{}");
        assert!(!store.contains(&digest).unwrap());
        assert!(store.open(&digest).unwrap().is_none());
        let staged = stage_bytes(store, b"{}").unwrap();
        assert_eq!(staged.len(), 2);
        let mut read = Vec::new();
        staged.open().unwrap().read_to_end(&mut read).unwrap();
        assert_eq!(read, b"{}");
        assert!(!store.contains(&digest).unwrap(), "staged is not held");
        assert_eq!(staged.commit(&digest).unwrap(), Committed::Stored);
        assert!(store.contains(&digest).unwrap());
        let again = stage_bytes(store, b"{}").unwrap();
        assert_eq!(again.commit(&digest).unwrap(), Committed::AlreadyHeld);
        let mut held = Vec::new();
        store
            .open(&digest)
            .unwrap()
            .unwrap()
            .read_to_end(&mut held)
            .unwrap();
        assert_eq!(held, b"{}");
        // A dropped writer and a dropped staged body leave nothing.
        let mut writer = store.stage().unwrap();
        writer.write(b"half").unwrap();
        drop(writer);
        drop(stage_bytes(store, b"never committed").unwrap());
        assert_eq!(
            store.list().unwrap(),
            vec![StoredObject {
                digest,
                size_bytes: 2
            }]
        );
    }
}
