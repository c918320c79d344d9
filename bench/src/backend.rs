//! The stores a run measures, each opened fresh per workload: SQLite under two
//! `synchronous` settings, the in-memory store, and PostgreSQL (opt-in: a schema of its own
//! per database of the run, on the server `BENCH_PG_URL` or `DATABASE_URL` names, by default
//! the local one; dropped once its workloads ran).

use crate::error::Res;
use cqrs_core::{EventStore, SnapshotStore};
use cqrs_memory::MemoryStore;
use cqrs_postgres::tokio_postgres;
use cqrs_postgres::{PostgresOptions, PostgresStore};
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
    /// PostgreSQL (not run by default): BENCH_PG_URL or DATABASE_URL, by default
    /// postgres://postgres@127.0.0.1:5432/postgres; a schema of its own per database
    Postgres,
}

impl Backend {
    /// The name in flags and output lines.
    pub fn label(self) -> &'static str {
        match self {
            Backend::SqliteNormal => "sqlite-normal",
            Backend::SqliteFull => "sqlite-full",
            Backend::Mem => "mem",
            Backend::Postgres => "postgres",
        }
    }

    /// The options a SQLite backend opens its files with.
    pub fn sqlite_options(self) -> SqliteOptions {
        match self {
            Backend::SqliteFull => SqliteOptions::new().synchronous(Synchronous::Full),
            Backend::SqliteNormal | Backend::Mem | Backend::Postgres => SqliteOptions::default(),
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

    /// Deletes the database `fresh` made under `name`, if it is there.
    async fn remove(backend: Backend, dir: &Path, name: &str) -> Res<()> {
        remove_db(backend, dir, name)
    }
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

impl BenchStore for PostgresStore {
    async fn fresh(_: Backend, _: &Path, name: &str) -> Res<Self> {
        let schema = pg_schema(name);
        drop_schema(&schema).await?;
        PostgresStore::connect_with(PostgresOptions::new(pg_url()).schema(&schema))
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL (schema {schema}): {e}").into())
    }

    async fn remove(_: Backend, _: &Path, name: &str) -> Res<()> {
        drop_schema(&pg_schema(name)).await
    }
}

/// The server the postgres backend runs on.
pub fn pg_url() -> String {
    std::env::var("BENCH_PG_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The schema of database `name`: named after this process too, so that two runs on one
/// server never share one.
fn pg_schema(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("cqrs_bench_{}_{name}", std::process::id())
}

async fn drop_schema(schema: &str) -> Res<()> {
    let (client, connection) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL to drop schema {schema}: {e}"))?;
    let driver = tokio::spawn(connection);
    let dropped = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .map_err(|e| format!("cannot drop schema {schema}: {e}").into());
    drop(client);
    let _ = driver.await;
    dropped
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
