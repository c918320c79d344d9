//! The stores a run measures, each opened fresh per workload: SQLite under two
//! `synchronous` settings, and the in-memory store.

use crate::error::Res;
use cqrs_core::{EventStore, SnapshotStore};
use cqrs_memory::MemoryStore;
use cqrs_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use std::path::{Path, PathBuf};

/// A store configuration, named on the command line and in every output line by its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A SQLite file with the default options: WAL, synchronous=NORMAL
    SqliteNormal,
    /// A SQLite file, WAL, synchronous=FULL: every commit waits for the disk
    SqliteFull,
    /// The in-memory store
    Mem,
}

impl Backend {
    /// The name in flags and output lines.
    pub fn label(self) -> &'static str {
        match self {
            Backend::SqliteNormal => "sqlite-normal",
            Backend::SqliteFull => "sqlite-full",
            Backend::Mem => "mem",
        }
    }

    /// The options a SQLite backend opens its files with.
    pub fn sqlite_options(self) -> SqliteOptions {
        match self {
            Backend::SqliteFull => SqliteOptions::new().synchronous(Synchronous::Full),
            Backend::SqliteNormal | Backend::Mem => SqliteOptions::default(),
        }
    }

    /// Whether W3 and W4 run here: they are measured under NORMAL (and in memory) only,
    /// since reads do not depend on how commits are synced.
    pub fn runs_reads(self) -> bool {
        self != Backend::SqliteFull
    }
}

/// A store the benchmark can open fresh for each workload.
pub trait BenchStore: EventStore + SnapshotStore + Clone {
    /// An empty store; for SQLite the file `<backend>-<name>.db` in the data dir.
    async fn fresh(backend: Backend, dir: &Path, name: &str) -> Res<Self>;
}

impl BenchStore for SqliteStore {
    async fn fresh(backend: Backend, dir: &Path, name: &str) -> Res<Self> {
        remove_db(backend, dir, name)?;
        let path = db_path(backend, dir, name);
        SqliteStore::open_with(&path, backend.sqlite_options())
            .await
            .map_err(|e| format!("cannot open {}: {e}", path.display()).into())
    }
}

impl BenchStore for MemoryStore {
    async fn fresh(_: Backend, _: &Path, _: &str) -> Res<Self> {
        Ok(MemoryStore::new())
    }
}

fn db_path(backend: Backend, dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}-{name}.db", backend.label()))
}

/// Deletes a database and its WAL files, if present (nothing to do for the memory store).
pub fn remove_db(backend: Backend, dir: &Path, name: &str) -> Res<()> {
    let db = db_path(backend, dir, name);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        let path = PathBuf::from(path);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display()).into()),
        }
    }
    Ok(())
}
