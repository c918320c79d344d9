//! What the SQLite integration tests share: where a test's file lives, and a connection to
//! it that bypasses the store (to damage, inspect or age it as a person or a fault could).

// Each test file uses the part it needs; the rest would warn as unused there.
#![allow(dead_code)]

use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// The store file of a test, in its own temporary directory.
pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("events.db")
}

/// A plain rusqlite connection to the file, outside the store.
pub fn raw(path: &Path) -> Connection {
    Connection::open(path).expect("open the file directly")
}
