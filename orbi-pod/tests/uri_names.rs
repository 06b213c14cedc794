//! A read model's path is a file path, never one of SQLite's URI names (`file:…`), which the
//! bundled SQLite would otherwise read (it is built with `SQLITE_USE_URI`). Its own test
//! binary: it changes the working directory.

use std::path::Path;

use orbi_pod::{Durability, SqliteStore, StoreLimits};

#[test]
fn a_relative_path_starting_with_file_colon_is_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let node = orbi_types::KeyPair::from_seed(&[1; 32]).node_id();
    let path = Path::new("file:p.sqlite");
    drop(SqliteStore::open(path, &node, StoreLimits::default(), Durability::Full).unwrap());
    assert!(
        path.metadata().unwrap().len() > 0,
        "the read model is in the file named so"
    );
    assert!(!Path::new("p.sqlite").exists());
    drop(SqliteStore::open_existing(path, StoreLimits::default()).unwrap());
}
