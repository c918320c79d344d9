//! Opening a file: refusing, byte for byte untouched, files that are not this framework's,
//! are newer, or are not intact databases; and opening a current file without waiting for
//! another writer.

mod common;

use common::{db_path, raw};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{CheckpointStore, EventStore, ExpectedVersion, StoreError};
use cqrs_sqlite::{SqliteError, SqliteStore, SCHEMA_VERSION};
use std::path::Path;
use std::time::{Duration, Instant};

/// The schema versions 1 to 3 of this crate wrote, as released (see the file).
const RELEASED: &str = include_str!("fixtures/schema-v3.sql");

/// The file's bytes and the names of every file in its directory.
fn state_of(path: &Path) -> (Vec<u8>, Vec<String>) {
    let dir = path.parent().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    (std::fs::read(path).unwrap(), names)
}

/// Opens `path`, which must be refused, and checks that the file and its directory are
/// exactly as they were (no -wal or -shm left behind). Returns the refusal.
async fn refused(path: &Path) -> SqliteError {
    let before = state_of(path);
    let error = SqliteStore::open(path)
        .await
        .expect_err("the file must be refused");
    assert_eq!(state_of(path), before, "a refused file was changed");
    match error {
        StoreError::Backend(source) => match source.downcast::<SqliteError>() {
            Ok(error) => *error,
            Err(other) => panic!("expected a SqliteError, got {other:?}"),
        },
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_newer_file_of_this_framework_is_refused_untouched() {
    for wal in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        drop(SqliteStore::open(&path).await.unwrap());
        let conn = raw(&path);
        if !wal {
            conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        match refused(&path).await {
            SqliteError::SchemaTooNew { found, supported } => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn another_applications_file_is_refused_untouched() {
    let ours_at_3 = format!("{RELEASED}; PRAGMA user_version = 3;");
    let foreign = [
        (
            "its own events table",
            "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT);".to_owned(),
        ),
        (
            "an events table and a user_version of ours",
            "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT); PRAGMA user_version = 3;"
                .to_owned(),
        ),
        (
            "our schema but another application id",
            format!("{ours_at_3} PRAGMA application_id = 305419896;"),
        ),
        (
            "our schema with a trigger taken out",
            format!("{ours_at_3} DROP TRIGGER events_refuse_delete;"),
        ),
        (
            "no table, but a version",
            "PRAGMA user_version = 2;".to_owned(),
        ),
        (
            "a current version without our application id",
            format!("CREATE TABLE t (x); PRAGMA user_version = {SCHEMA_VERSION};"),
        ),
    ];
    for (what, sql) in foreign {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        raw(&path).execute_batch(&sql).unwrap();
        match refused(&path).await {
            SqliteError::ForeignFile { reason } => assert!(!reason.is_empty()),
            other => panic!("{what}: expected ForeignFile, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_file_that_is_not_an_intact_database_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "not a database, only some text that is long enough\n".repeat(50),
    )
    .unwrap();
    assert!(matches!(
        refused(&text).await,
        SqliteError::Malformed { .. }
    ));

    // A store's file cut in half, as a copy interrupted or a disk filled up might leave it.
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    for i in 0..50 {
        let events = (0..20).map(|j| tagged_event(&format!("{i}-{j}-{}", "x".repeat(200))));
        store
            .append(
                &format!("s-{i}"),
                ExpectedVersion::NoStream,
                events.collect(),
            )
            .await
            .unwrap();
    }
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 100_000, "the events reached the file");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    match refused(&path).await {
        SqliteError::Malformed { reason } => assert!(reason.contains("malformed"), "{reason}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_current_file_opens_while_another_connection_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .append("s", ExpectedVersion::NoStream, vec![tagged_event("a")])
        .await
        .unwrap();
    drop(store);
    let writer = raw(&path);
    writer
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO checkpoints VALUES ('held', 1, 0);")
        .unwrap();
    // The default busy timeout is 5 s: an open that waited for the lock would take that.
    let started = Instant::now();
    let store = tokio::time::timeout(Duration::from_secs(2), SqliteStore::open(&path))
        .await
        .expect("opening waited for the other writer")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(store.read_stream("s", 1, 10).await.unwrap().len(), 1);
    writer.execute_batch("COMMIT").unwrap();
    assert_eq!(store.load_checkpoint("held").await.unwrap(), 1);
}
