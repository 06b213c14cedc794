//! [`FsStore`]: objects at `objects/<2 hex>/<62 hex>` under a root directory; staged bodies in
//! `staging/`, written, fsynced, then renamed into place without replacing an existing object.

use std::{
    fs::{self, File},
    io::{self, BufWriter, Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use orbi_types::Sha256Digest;
use tempfile::TempPath;

use super::{Committed, Durability, StagedBody, StagingWriter, Store, StoreError, StoredObject};

const OBJECTS: &str = "objects";
const STAGING: &str = "staging";
const WRITE_BUFFER: usize = 256 * 1024;

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A content-addressed store in a directory.
///
/// Paths use the hex form of the digest so that they are safe on case-insensitive
/// filesystems. Opening the store creates the 256 shard directories (so that a commit never
/// creates a directory) and removes staged files orphaned by a crash.
#[derive(Clone, Debug)]
pub struct FsStore {
    root: Arc<PathBuf>,
    durability: Durability,
    orphans_removed: usize,
    /// The exclusive lock on `LOCK` of a store opened for writing, held while any clone lives.
    _lock: Option<Arc<File>>,
    /// Another lock held as long as the store ([`FsStore::holding`]).
    _held: Option<Arc<File>>,
}

/// The lock file of a store opened for writing ([`FsStore::open_with`]).
pub const LOCK_FILE: &str = "LOCK";

impl FsStore {
    /// Opens (creating if needed) the store at `root` with [`Durability::Full`].
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(root, Durability::Full)
    }

    /// Opens (creating if needed) the store at `root` and removes orphaned staged files.
    ///
    /// The store is locked (an exclusive advisory lock on `root/LOCK`, released when the last
    /// clone is dropped or the process ends): a second writer would take the first one's
    /// staged bodies for orphans and remove them. [`StoreError::InUse`] if it is held.
    pub fn open_with(root: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let root = root.as_ref().to_owned();
        let made_root = !root.is_dir();
        create_private_dir_all(&root).map_err(io_error("create", &root))?;
        let lock_path = root.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::InUse(root)),
            Err(fs::TryLockError::Error(source)) => {
                return Err(io_error("lock", &lock_path)(source));
            }
        }
        let objects = root.join(OBJECTS);
        for dir in [objects.clone(), root.join(STAGING)] {
            create_private_dir_all(&dir).map_err(io_error("create", &dir))?;
        }
        for shard in 0..=255u8 {
            let dir = objects.join(format!("{shard:02x}"));
            create_private_dir_all(&dir).map_err(io_error("create", &dir))?;
        }
        // The entries just made (shards, `objects/` and `staging/`, the root itself) must
        // survive a crash as well as the objects later renamed into them.
        sync_dir(&objects)?;
        sync_dir(&root)?;
        // The root's own entry, when this open made it. A parent this user may enter but not
        // list cannot be opened to sync: the store still opens (as it did before this sync).
        if made_root {
            sync_new_entry(&root)?;
        }
        let staging = root.join(STAGING);
        let mut orphans_removed = 0;
        for entry in fs::read_dir(&staging).map_err(io_error("list", &staging))? {
            let path = entry.map_err(io_error("list", &staging))?.path();
            fs::remove_file(&path).map_err(io_error("remove orphan", &path))?;
            orphans_removed += 1;
        }
        if orphans_removed > 0 {
            tracing::info!(orphans_removed, "removed orphaned staged bodies");
        }
        Ok(FsStore {
            root: Arc::new(root),
            durability,
            orphans_removed,
            _lock: Some(Arc::new(lock)),
            _held: None,
        })
    }

    /// Keeps `lock` (an open file holding an advisory lock) for as long as any clone of this
    /// store lives, e.g. the lock of the directory the store is part of.
    pub(crate) fn holding(mut self, lock: File) -> Self {
        self._held = Some(Arc::new(lock));
        self
    }

    /// Opens an existing store for reading without touching it: no directory is created and
    /// no staged file is removed (a serving node may be writing one). For operator tools that
    /// run beside a serving node.
    pub fn inspect(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = root.as_ref().to_owned();
        let objects = root.join(OBJECTS);
        fs::metadata(&objects).map_err(io_error("open", &objects))?;
        Ok(FsStore {
            root: Arc::new(root),
            durability: Durability::Full,
            orphans_removed: 0,
            _lock: None,
            _held: None,
        })
    }

    /// How many orphaned staged files [`FsStore::open`] removed.
    pub fn orphans_removed(&self) -> usize {
        self.orphans_removed
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The staging directory (empty whenever no transfer is in flight).
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join(STAGING)
    }

    /// Where the object with `digest` lives.
    pub fn object_path(&self, digest: &Sha256Digest) -> Result<PathBuf, StoreError> {
        let bytes = digest
            .bytes()
            .map_err(|_| StoreError::Digest(digest.clone()))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(self.root.join(OBJECTS).join(&hex[..2]).join(&hex[2..]))
    }

    /// The length of the object with `digest`, `None` when it is not held.
    fn object_len(&self, digest: &Sha256Digest) -> Result<Option<u64>, StoreError> {
        let path = self.object_path(digest)?;
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file().then_some(meta.len())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("inspect", &path)(error)),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Directory syncs made on this thread (tests only).
    static DIR_SYNCS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Creates `dir` and any missing parents readable by this user only (mode 0700 on Unix): a
/// node's state holds other nodes' artifacts. Existing directories keep their mode, which is
/// the operator's choice.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|error| {
        // "File exists" would puzzle: what exists is not a directory.
        if error.kind() == io::ErrorKind::AlreadyExists && !dir.is_dir() {
            io::Error::new(
                io::ErrorKind::NotADirectory,
                "exists and is not a directory",
            )
        } else {
            error
        }
    })
}

/// Creates the empty file `path` readable by this user only (0600 on Unix) unless it exists
/// (an existing file keeps its mode): SQLite then opens it as a new database and gives its
/// `-wal` and `-shm` files the same mode. A dangling symlink's target is created so too;
/// SQLite's in-memory names (`:memory:`, the empty path) are left to SQLite.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    let private = |create_new: bool| {
        let mut options = File::options();
        options.write(true);
        if create_new {
            options.create_new(true);
        } else {
            options.create(true);
        }
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map(drop)
    };
    match private(true) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            let dangling = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
                && !path.exists();
            if dangling { private(false) } else { Ok(()) }
        }
        made => made,
    }
}

/// Syncs the directory holding `made`, a directory this process just created, so that its
/// entry survives a crash too. A parent this user may enter but not list cannot be opened to
/// sync; that is tolerated (nothing worked there before this sync either).
pub(crate) fn sync_new_entry(made: &Path) -> Result<(), StoreError> {
    let Some(parent) = made.parent() else {
        return Ok(());
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    match sync_dir(parent) {
        Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => {
            tracing::debug!(parent = %parent.display(), "cannot sync a new directory's parent");
            Ok(())
        }
        synced => synced,
    }
}

/// Directory syncs made on this thread (tests only).
#[cfg(test)]
pub(crate) fn dir_syncs() -> usize {
    DIR_SYNCS.with(std::cell::Cell::get)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    sync_directory(dir).map_err(io_error("sync", dir))
}

/// Syncs `dir`, so that the names renamed or made in it survive a crash. Only unix can open
/// a directory to sync it.
pub(crate) fn sync_directory(dir: &Path) -> io::Result<()> {
    #[cfg(test)]
    DIR_SYNCS.with(|syncs| syncs.set(syncs.get() + 1));
    if cfg!(unix) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn digest_of_path(path: &Path) -> Option<Sha256Digest> {
    let low = path.file_name()?.to_str()?;
    let high = path.parent()?.file_name()?.to_str()?;
    let hex = format!("{high}{low}");
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Sha256Digest::from_bytes(bytes))
}

impl Store for FsStore {
    fn stage(&self) -> Result<Box<dyn StagingWriter>, StoreError> {
        let staging = self.staging_dir();
        let temp = tempfile::Builder::new()
            .prefix("body-")
            .suffix(".part")
            .tempfile_in(&staging)
            .map_err(io_error("create staged body in", &staging))?;
        let (file, path) = temp.into_parts();
        Ok(Box::new(FsStaging {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            path,
            len: 0,
            store: self.clone(),
        }))
    }

    fn contains(&self, digest: &Sha256Digest) -> Result<bool, StoreError> {
        Ok(self.object_len(digest)?.is_some())
    }

    fn intact(&self, digest: &Sha256Digest, size_bytes: u64) -> Result<bool, StoreError> {
        Ok(self.object_len(digest)? == Some(size_bytes))
    }

    fn open(&self, digest: &Sha256Digest) -> Result<Option<Box<dyn Read + Send>>, StoreError> {
        let path = self.object_path(digest)?;
        match File::open(&path) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("open", &path)(error)),
        }
    }

    fn list(&self) -> Result<Vec<StoredObject>, StoreError> {
        let objects = self.root.join(OBJECTS);
        let mut found = Vec::new();
        for shard in fs::read_dir(&objects).map_err(io_error("list", &objects))? {
            let shard = shard.map_err(io_error("list", &objects))?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard).map_err(io_error("list", &shard))? {
                let entry = entry.map_err(io_error("list", &shard))?;
                let path = entry.path();
                let meta = entry.metadata().map_err(io_error("inspect", &path))?;
                if let (true, Some(digest)) = (meta.is_file(), digest_of_path(&path)) {
                    found.push(StoredObject {
                        digest,
                        size_bytes: meta.len(),
                    });
                }
            }
        }
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(found)
    }
}

struct FsStaging {
    file: BufWriter<File>,
    path: TempPath,
    len: u64,
    store: FsStore,
}

impl StagingWriter for FsStaging {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(bytes)
            .map_err(io_error("write", &self.path))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Box<dyn StagedBody>, StoreError> {
        let FsStaging {
            file,
            path,
            len,
            store,
        } = *self;
        let file = file
            .into_inner()
            .map_err(|error| io_error("write", &path)(error.into_error()))?;
        if store.durability == Durability::Full {
            file.sync_all().map_err(io_error("sync", &path))?;
        }
        Ok(Box::new(FsStaged { path, len, store }))
    }
}

struct FsStaged {
    path: TempPath,
    len: u64,
    store: FsStore,
}

impl StagedBody for FsStaged {
    fn len(&self) -> u64 {
        self.len
    }

    fn open(&self) -> Result<Box<dyn Read + '_>, StoreError> {
        let file = File::open(&self.path).map_err(io_error("open", &self.path))?;
        Ok(Box::new(io::BufReader::new(file)))
    }

    fn commit(self: Box<Self>, digest: &Sha256Digest) -> Result<Committed, StoreError> {
        let target = self.store.object_path(digest)?;
        let shard = target
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| self.store.root.join(OBJECTS));
        let sync_shard = || match self.store.durability {
            Durability::Full => sync_dir(&shard),
            Durability::Relaxed => Ok(()),
        };
        // A held object's entry may come from a commit whose directory sync failed (its push
        // was refused and may be retried): it is only reported held once synced.
        let held = || sync_shard().map(|()| Committed::AlreadyHeld);
        match fs::metadata(&target) {
            Ok(meta) if meta.is_file() && meta.len() == self.len => return held(),
            // Cut short (a power loss after a relaxed commit leaves a new name's data behind):
            // these bytes, verified against the digest, replace it.
            Ok(meta) if meta.is_file() => {
                self.path.persist(&target).map_err(|error| StoreError::Io {
                    action: "replace",
                    path: target.clone(),
                    source: error.error,
                })?;
                sync_shard()?;
                return Ok(Committed::Stored);
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error("inspect", &target)(error)),
        }
        match self.path.persist_noclobber(&target) {
            Ok(()) => {
                sync_shard()?;
                Ok(Committed::Stored)
            }
            // A concurrent commit of the same bytes won the race; ours is dropped (deleted).
            Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => {
                drop(error);
                held()
            }
            Err(error) => Err(StoreError::Io {
                action: "rename into",
                path: target,
                source: error.error,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_at_a_time_and_readers_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = FsStore::open(dir.path()).unwrap();
        // A staged body of the first writer survives a second one trying to open.
        let mut staging = first.stage().unwrap();
        staging.write(b"in flight").unwrap();
        match FsStore::open(dir.path()) {
            Err(StoreError::InUse(path)) => assert_eq!(path, dir.path()),
            other => panic!("expected InUse, got {other:?}"),
        }
        assert_eq!(fs::read_dir(first.staging_dir()).unwrap().count(), 1);
        assert!(FsStore::inspect(dir.path()).is_ok(), "readers need no lock");
        // The lock lives as long as any clone of the writer.
        let clone = first.clone();
        drop(first);
        assert!(matches!(
            FsStore::open(dir.path()),
            Err(StoreError::InUse(_))
        ));
        drop((staging, clone));
        assert!(
            FsStore::open(dir.path()).is_ok(),
            "free once the writer is gone"
        );
    }

    #[test]
    fn keeps_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        super::super::tests::store_contract(&store);
        assert_eq!(fs::read_dir(store.staging_dir()).unwrap().count(), 0);
        let digest = Sha256Digest::of(b"{}");
        let path = store.object_path(&digest).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        assert!(
            path.ends_with("44/136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        );
    }

    #[test]
    fn keeps_the_store_contract_relaxed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open_with(dir.path(), Durability::Relaxed).unwrap();
        super::super::tests::store_contract(&store);
        assert_eq!(fs::read_dir(dir.path().join(OBJECTS)).unwrap().count(), 256);
    }

    #[test]
    fn open_removes_orphans_and_keeps_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let staged = super::super::stage_bytes(&store, b"{}").unwrap();
        staged.commit(&Sha256Digest::of(b"{}")).unwrap();
        // A crash mid-transfer leaves staged files behind (and releases the lock).
        fs::write(store.staging_dir().join(".tmp-partial"), b"partial").unwrap();
        fs::write(store.staging_dir().join("stray.part"), b"x").unwrap();
        drop(store);
        let reopened = FsStore::open(dir.path()).unwrap();
        assert_eq!(reopened.orphans_removed(), 2);
        assert_eq!(fs::read_dir(reopened.staging_dir()).unwrap().count(), 0);
        assert!(reopened.contains(&Sha256Digest::of(b"{}")).unwrap());
    }

    #[test]
    fn inspecting_leaves_staged_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FsStore::inspect(dir.path()).is_err(), "no store there yet");
        let store = FsStore::open(dir.path()).unwrap();
        let mut writer = store.stage().unwrap();
        writer.write(b"in flight").unwrap();
        super::super::stage_bytes(&store, b"{}")
            .unwrap()
            .commit(&Sha256Digest::of(b"{}"))
            .unwrap();
        let inspected = FsStore::inspect(dir.path()).unwrap();
        assert_eq!(inspected.list().unwrap().len(), 1);
        assert_eq!(fs::read_dir(store.staging_dir()).unwrap().count(), 1);
        drop(writer);
    }

    fn commit(store: &FsStore, bytes: &[u8]) -> Committed {
        super::super::stage_bytes(store, bytes)
            .unwrap()
            .commit(&Sha256Digest::of(bytes))
            .unwrap()
    }

    #[test]
    fn an_object_cut_short_is_replaced_by_verified_bytes() {
        // What a power loss can leave after a relaxed commit: the name, without the data.
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open_with(dir.path(), Durability::Relaxed).unwrap();
        let bytes = b"the whole artifact";
        assert_eq!(commit(&store, bytes), Committed::Stored);
        let path = store.object_path(&Sha256Digest::of(bytes)).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(commit(&store, bytes), Committed::Stored);
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(commit(&store, bytes), Committed::AlreadyHeld, "whole now");
        assert_eq!(fs::read_dir(store.staging_dir()).unwrap().count(), 0);
    }

    #[test]
    fn intact_means_held_at_its_full_length() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open_with(dir.path(), Durability::Relaxed).unwrap();
        let bytes = b"the whole artifact";
        let (digest, len) = (Sha256Digest::of(bytes), bytes.len() as u64);
        assert!(!store.intact(&digest, len).unwrap(), "not held");
        commit(&store, bytes);
        assert!(store.intact(&digest, len).unwrap());
        let path = store.object_path(&digest).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        assert!(store.contains(&digest).unwrap());
        assert!(!store.intact(&digest, len).unwrap(), "cut short");
    }

    #[test]
    fn an_object_reported_held_has_its_directory_entry_synced() {
        // The entry may be from a commit whose directory sync failed and whose push is now
        // retried: held is only said once the entry is durable.
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        commit(&store, b"{}");
        let before = DIR_SYNCS.with(std::cell::Cell::get);
        assert_eq!(commit(&store, b"{}"), Committed::AlreadyHeld);
        assert_eq!(DIR_SYNCS.with(std::cell::Cell::get), before + 1);
        // Relaxed never syncs.
        let relaxed = tempfile::tempdir().unwrap();
        let store = FsStore::open_with(relaxed.path(), Durability::Relaxed).unwrap();
        let before = DIR_SYNCS.with(std::cell::Cell::get);
        commit(&store, b"{}");
        assert_eq!(commit(&store, b"{}"), Committed::AlreadyHeld);
        assert_eq!(DIR_SYNCS.with(std::cell::Cell::get), before);
    }

    #[test]
    fn opening_syncs_the_directories_it_may_have_made() {
        let dir = tempfile::tempdir().unwrap();
        let before = DIR_SYNCS.with(std::cell::Cell::get);
        let store = FsStore::open(dir.path().join("store")).unwrap();
        // objects/ (the shards), the root (objects/, staging/), its parent (the root).
        assert_eq!(DIR_SYNCS.with(std::cell::Cell::get), before + 3);
        drop(store);
        // Reopened, the root's entry is not new: its parent is left alone.
        let before = DIR_SYNCS.with(std::cell::Cell::get);
        let _store = FsStore::open(dir.path().join("store")).unwrap();
        assert_eq!(DIR_SYNCS.with(std::cell::Cell::get), before + 2);
    }

    #[test]
    fn lax_digests_have_no_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let lax = Sha256Digest::parse("sha256:abc").unwrap();
        assert!(matches!(store.contains(&lax), Err(StoreError::Digest(_))));
    }
}
