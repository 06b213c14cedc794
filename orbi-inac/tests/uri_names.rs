//! A ledger path is a file path, never one of SQLite's URI names (`file:…`), which the bundled
//! SQLite would otherwise read (it is built with `SQLITE_USE_URI`). Its own test binary: it
//! changes the working directory.

use std::path::Path;

use orbi_inac::SqliteLedger;

#[test]
fn a_relative_path_starting_with_file_colon_is_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    drop(SqliteLedger::open("file:x.sqlite").unwrap());
    let made = Path::new("file:x.sqlite").metadata().unwrap();
    assert!(made.len() > 0, "the ledger is in the file named so");
    assert!(!Path::new("x.sqlite").exists());
    drop(SqliteLedger::open_existing("file:x.sqlite").unwrap());
    assert!(!Path::new("x.sqlite").exists());
}
