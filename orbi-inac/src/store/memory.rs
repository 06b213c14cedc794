//! [`MemoryStore`]: the [`Store`] contract in memory, for deterministic tests.

use std::{
    collections::BTreeMap,
    io::{Cursor, Read},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
};

use orbi_types::Sha256Digest;

use super::{Committed, StagedBody, StagingWriter, Store, StoreError, StoredObject};

#[derive(Debug, Default)]
struct Shared {
    objects: Mutex<BTreeMap<Sha256Digest, Arc<Vec<u8>>>>,
    /// Writers and staged bodies alive right now.
    staged: AtomicUsize,
}

/// An in-memory store. Clones share the same objects.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many staged bodies (writers or finished, uncommitted bodies) exist now; zero
    /// whenever no transfer is in flight.
    pub fn staged_count(&self) -> usize {
        self.shared.staged.load(Ordering::SeqCst)
    }

    fn objects(&self) -> MutexGuard<'_, BTreeMap<Sha256Digest, Arc<Vec<u8>>>> {
        self.shared
            .objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn stage(&self) -> Result<Box<dyn StagingWriter>, StoreError> {
        self.shared.staged.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(MemoryStaged {
            bytes: Vec::new(),
            store: self.clone(),
        }))
    }

    fn contains(&self, digest: &Sha256Digest) -> Result<bool, StoreError> {
        Ok(self.objects().contains_key(digest))
    }

    fn open(&self, digest: &Sha256Digest) -> Result<Option<Box<dyn Read + Send>>, StoreError> {
        Ok(self
            .objects()
            .get(digest)
            .map(|bytes| Box::new(Cursor::new(bytes.as_ref().clone())) as Box<dyn Read + Send>))
    }

    fn list(&self) -> Result<Vec<StoredObject>, StoreError> {
        Ok(self
            .objects()
            .iter()
            .map(|(digest, bytes)| StoredObject {
                digest: digest.clone(),
                size_bytes: bytes.len() as u64,
            })
            .collect())
    }
}

/// Serves as both the writer and the finished body.
struct MemoryStaged {
    bytes: Vec<u8>,
    store: MemoryStore,
}

impl Drop for MemoryStaged {
    fn drop(&mut self) {
        self.store.shared.staged.fetch_sub(1, Ordering::SeqCst);
    }
}

impl StagingWriter for MemoryStaged {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Box<dyn StagedBody>, StoreError> {
        Ok(self)
    }
}

impl StagedBody for MemoryStaged {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn open(&self) -> Result<Box<dyn Read + '_>, StoreError> {
        Ok(Box::new(self.bytes.as_slice()))
    }

    fn commit(mut self: Box<Self>, digest: &Sha256Digest) -> Result<Committed, StoreError> {
        let bytes = std::mem::take(&mut self.bytes);
        let mut objects = self.store.objects();
        if objects.contains_key(digest) {
            return Ok(Committed::AlreadyHeld);
        }
        objects.insert(digest.clone(), Arc::new(bytes));
        Ok(Committed::Stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_store_contract() {
        let store = MemoryStore::new();
        super::super::tests::store_contract(&store);
        assert_eq!(store.staged_count(), 0);
    }
}
