//! [`NodeState`]: a node's durable state in one data directory, laid out the same way for the
//! serving node and for the operator tools that read it beside the node.
//!
//! ```text
//! <dir>/inac.sqlite   the ledger, and objects up to NodeState::SMALL_OBJECT_MAX bytes
//! <dir>/store/        larger objects (objects/<2 hex>/<62 hex>) and staged bodies (staging/)
//! ```

use std::path::{Path, PathBuf};

use crate::{
    Durability, FsStore, HybridStore, SqliteLedger, ledger::LedgerError, store::StoreError,
};

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// Another node holds the directory (its `LOCK`).
    #[error("{} is in use: another node holds its LOCK", .0.display())]
    InUse(PathBuf),
    /// There is no node state in the directory.
    #[error("{} holds no inac node state (inac.sqlite)", .0.display())]
    Missing(PathBuf),
    /// The store failed to open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger failed to open.
    #[error("ledger {}: {source}", path.display())]
    Ledger {
        /// The ledger file.
        path: PathBuf,
        /// What failed.
        source: LedgerError,
    },
}

/// The store and the ledger of one node, sharing one SQLite database.
#[derive(Debug)]
pub struct NodeState {
    /// Objects: small ones in the ledger's database, large ones in files.
    pub store: HybridStore,
    /// Decisions, keys, offers, invitations.
    pub ledger: SqliteLedger,
}

impl NodeState {
    /// The ledger file's name.
    pub const LEDGER_FILE: &'static str = "inac.sqlite";
    /// The lock file a serving node holds in the directory.
    pub const LOCK_FILE: &'static str = "LOCK";
    /// The file store's directory name.
    pub const STORE_DIR: &'static str = "store";
    /// The largest object kept in the database (the spec's inline ceiling).
    pub const SMALL_OBJECT_MAX: usize = 64 * 1024;

    /// Opens (creating if needed) the state in `dir` for a serving node; staged bodies left by
    /// a crash are removed.
    pub fn open(dir: &Path, durability: Durability) -> Result<NodeState, StateError> {
        let made = !dir.is_dir();
        crate::store::create_private_dir_all(dir).map_err(|source| StateError::Create {
            path: dir.to_owned(),
            source,
        })?;
        // The new directory's own entry: without it a crash could lose the whole state,
        // answered decisions included.
        if made && durability == Durability::Full {
            crate::store::sync_new_entry(dir)?;
        }
        // The locks first: a second node on this directory is refused before it touches
        // (or migrates) the running node's ledger.
        let lock = lock_dir(dir)?;
        // Held in the directory itself, so that removing `store/` (and the store's own lock)
        // lets no second node in; the store keeps it for as long as any clone of it lives.
        let files = FsStore::open_with(dir.join(Self::STORE_DIR), durability)?.holding(lock);
        let path = dir.join(Self::LEDGER_FILE);
        let named = |source| StateError::Ledger {
            path: path.clone(),
            source,
        };
        let ledger = SqliteLedger::open_with(&path, durability).map_err(named)?;
        // Built now rather than by the first push, which would wait for it.
        ledger.load_index().map_err(named)?;
        Ok(NodeState {
            store: HybridStore::new(files, &ledger, Self::SMALL_OBJECT_MAX),
            ledger,
        })
    }

    /// Opens existing state for an operator tool beside a serving node: nothing is created,
    /// nothing migrated and no staged body is touched. A ledger of an older schema is
    /// [`LedgerError::Outdated`] until the node's [`NodeState::open`] migrates it.
    pub fn inspect(dir: &Path) -> Result<NodeState, StateError> {
        let path = dir.join(Self::LEDGER_FILE);
        if !path.is_file() {
            return Err(StateError::Missing(dir.to_owned()));
        }
        let ledger = SqliteLedger::open_existing(&path).map_err(|source| StateError::Ledger {
            path: path.clone(),
            source,
        })?;
        let files = FsStore::inspect(dir.join(Self::STORE_DIR))?;
        Ok(NodeState {
            store: HybridStore::new(files, &ledger, Self::SMALL_OBJECT_MAX),
            ledger,
        })
    }
}

/// Takes the exclusive advisory lock on `dir/LOCK` (released when the state is dropped or the
/// process ends).
fn lock_dir(dir: &Path) -> Result<std::fs::File, StateError> {
    let path = dir.join(NodeState::LOCK_FILE);
    let failed = |source| StateError::Create {
        path: path.clone(),
        source,
    };
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(failed)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::InUse(dir.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(failed(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_new_state_is_readable_by_its_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("node");
        let state = NodeState::open(&dir, Durability::Full).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let store = dir.join(NodeState::STORE_DIR);
        for private_dir in [
            &dir,
            &store,
            &store.join("objects"),
            &store.join("objects/ab"),
        ] {
            assert_eq!(mode(private_dir), 0o700, "{}", private_dir.display());
        }
        let ledger = dir.join(NodeState::LEDGER_FILE);
        let wal = dir.join(format!("{}-wal", NodeState::LEDGER_FILE));
        assert!(wal.exists(), "the ledger runs in WAL mode");
        for file in [&ledger, &wal] {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        drop(state);
        // An existing directory and database keep the mode the operator gave them.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::set_permissions(&ledger, std::fs::Permissions::from_mode(0o640)).unwrap();
        let _state = NodeState::open(&dir, Durability::Full).unwrap();
        assert_eq!(mode(&dir), 0o750);
        assert_eq!(mode(&ledger), 0o640);
    }

    #[test]
    fn a_state_directory_that_is_a_file_is_named_as_such() {
        let parent = tempfile::tempdir().unwrap();
        let file = parent.path().join("node");
        std::fs::write(&file, b"").unwrap();
        let error = NodeState::open(&file, Durability::Full)
            .unwrap_err()
            .to_string();
        assert!(error.contains("exists and is not a directory"), "{error}");
    }

    #[test]
    fn a_new_state_directory_has_its_entry_synced_once() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("node");
        let before = crate::store::dir_syncs();
        let state = NodeState::open(&dir, Durability::Full).unwrap();
        // The node directory's entry, then the store's (objects/, the store root, its entry).
        assert_eq!(crate::store::dir_syncs(), before + 4);
        drop(state);
        let before = crate::store::dir_syncs();
        let _state = NodeState::open(&dir, Durability::Full).unwrap();
        assert_eq!(crate::store::dir_syncs(), before + 2, "nothing new to sync");
    }

    /// A ledger another process holds locked (an exclusive transaction of a stray tool) stops
    /// the open with an error naming the file; nothing in it is changed.
    #[test]
    fn a_locked_ledger_is_named() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("node");
        drop(NodeState::open(&dir, Durability::Full).unwrap());
        let ledger = dir.join(NodeState::LEDGER_FILE);
        let holder = rusqlite::Connection::open(&ledger).unwrap();
        holder
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
            .unwrap();
        let error = NodeState::open(&dir, Durability::Full)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("inac.sqlite") && error.contains("locked"),
            "{error}"
        );
        drop(holder);
        let error = NodeState::inspect(&dir).err().map(|e| e.to_string());
        assert_eq!(error, None, "free again once the holder is gone");
    }
}
