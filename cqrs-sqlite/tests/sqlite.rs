//! What only the SQLite backend promises: the file, its schema, locking, and damaged rows.

mod common;

use common::{db_path, raw};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::testing::toy::{Tally, TallyCommand};
use cqrs_core::{EventStore, ExpectedVersion, Repository, RepositoryError, StoreError};
use cqrs_sqlite::{
    SqliteError, SqliteOptions, SqliteStore, Synchronous, APPLICATION_ID, SCHEMA_VERSION,
};
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn a_reopened_file_rebuilds_the_same_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    let tallies = Repository::<Tally, _>::new(store.clone());
    for command in [
        TallyCommand::Add(5),
        TallyCommand::AddMany(vec![-7, i64::MAX]),
        TallyCommand::Add(i64::MIN),
    ] {
        tallies.execute("t-1", command).await.unwrap();
    }
    let before = tallies.load("t-1").await.unwrap();
    // Text beyond ASCII survives the file byte for byte.
    let text = store
        .append(
            "text-1",
            ExpectedVersion::NoStream,
            vec![
                tagged_event("first"),
                tagged_event("日本語 ✓"),
                tagged_event("third"),
            ],
        )
        .await
        .unwrap();
    drop(tallies);
    drop(store);

    let reopened = SqliteStore::open(db_path(&dir)).await.unwrap();
    let after = Repository::<Tally, _>::new(reopened.clone())
        .load("t-1")
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(after.version, 4);
    assert_eq!((after.state.total, after.state.count), (-3, 4));
    let text_after = reopened.read_stream("text-1", 1, 10).await.unwrap();
    assert_eq!(text_after, text.events);
    let payloads: Vec<&str> = text_after.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(
        payloads,
        [
            r#"{"tag":"first"}"#,
            r#"{"tag":"日本語 ✓"}"#,
            r#"{"tag":"third"}"#
        ]
    );
}

#[tokio::test]
async fn stored_events_refuse_update_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    store
        .append("s-1", ExpectedVersion::Any, vec![tagged_event("kept")])
        .await
        .unwrap();
    let conn = raw(&db_path(&dir));
    let update = conn.execute("UPDATE events SET payload = '{}'", []);
    let delete = conn.execute("DELETE FROM events", []);
    for (attempt, message) in [(update, "UPDATE refused"), (delete, "DELETE refused")] {
        let error = attempt.expect_err("the trigger must abort").to_string();
        assert!(error.contains(message), "{error}");
    }
    let stored = store.read_stream("s-1", 1, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, r#"{"tag":"kept"}"#);
}

#[tokio::test]
async fn the_schema_is_versioned_and_a_newer_file_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(db_path(&dir)).await.unwrap());
    let version: u32 = raw(&db_path(&dir))
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = raw(&db_path(&dir))
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Opening again migrates nothing and keeps working.
    let again = SqliteStore::open(db_path(&dir)).await.unwrap();
    again
        .append("s", ExpectedVersion::NoStream, vec![tagged_event("a")])
        .await
        .unwrap();

    let application_id: i32 = raw(&db_path(&dir))
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(application_id, APPLICATION_ID);

    let newer = dir.path().join("newer.db");
    raw(&newer)
        .execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 99;"
        ))
        .unwrap();
    let refused = SqliteStore::open(&newer).await.expect_err("a newer schema");
    match refused {
        StoreError::Backend(source) => match source.downcast_ref::<SqliteError>() {
            Some(SqliteError::SchemaTooNew { found, supported }) => {
                assert_eq!((*found, *supported), (99, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        },
        other => panic!("expected a backend error, got {other:?}"),
    }
    let tables: i64 = raw(&newer)
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0, "a refused file must not be migrated");
}

#[tokio::test]
async fn full_synchronous_stores_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions::new().synchronous(Synchronous::Full);
    let store = SqliteStore::open_with(db_path(&dir), options)
        .await
        .unwrap();
    let appended = store
        .append(
            "s",
            ExpectedVersion::NoStream,
            vec![tagged_event("a"), tagged_event("b")],
        )
        .await
        .unwrap();
    assert_eq!(
        store.read_stream("s", 1, 10).await.unwrap(),
        appended.events
    );
}

#[tokio::test]
async fn a_writer_held_up_past_the_busy_timeout_gets_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions::new().busy_timeout(Duration::from_millis(200));
    let store = SqliteStore::open_with(db_path(&dir), options)
        .await
        .unwrap();
    let other_process = raw(&db_path(&dir));
    other_process.execute_batch("BEGIN IMMEDIATE").unwrap();
    let blocked = store
        .append("s", ExpectedVersion::Any, vec![tagged_event("a")])
        .await;
    assert!(
        matches!(blocked, Err(StoreError::Busy { .. })),
        "expected Busy, got {blocked:?}"
    );
    other_process.execute_batch("COMMIT").unwrap();
    let appended = store
        .append("s", ExpectedVersion::NoStream, vec![tagged_event("b")])
        .await
        .expect("the blocked append changed nothing, so NoStream still holds");
    assert_eq!(appended.version, 1);
}

/// Edits a stored row by hand, as someone with the sqlite3 shell might.
fn edit_by_hand(path: &Path, sql: &str) {
    raw(path)
        .execute_batch(&format!(
            "DROP TRIGGER events_refuse_update; {sql};
             CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
             BEGIN SELECT RAISE(ABORT, 'stored events are immutable: UPDATE refused'); END;"
        ))
        .unwrap();
}

#[tokio::test]
async fn a_damaged_payload_names_stream_version_and_type_and_spares_other_streams() {
    let dir = tempfile::tempdir().unwrap();
    let tallies = Repository::<Tally, _>::new(SqliteStore::open(db_path(&dir)).await.unwrap());
    for id in ["damaged", "intact"] {
        tallies.execute(id, TallyCommand::Add(1)).await.unwrap();
        tallies.execute(id, TallyCommand::Add(2)).await.unwrap();
    }
    edit_by_hand(
        &db_path(&dir),
        "UPDATE events SET payload = '{\"n\": 12' WHERE stream_id = 'Tally-damaged' AND version = 2",
    );
    match tallies.load("damaged").await {
        Err(RepositoryError::Decode(error)) => {
            assert_eq!(error.stream_id, "Tally-damaged");
            assert_eq!(error.version, 2);
            assert_eq!(error.event_type, "Added");
            assert!(error
                .to_string()
                .contains("stream `Tally-damaged` version 2"));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let intact = tallies.load("intact").await.unwrap();
    assert_eq!((intact.state.total, intact.state.count), (3, 2));
}

#[tokio::test]
async fn a_damaged_envelope_is_a_corrupt_error_naming_stream_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    store
        .append(
            "s",
            ExpectedVersion::Any,
            vec![tagged_event("a"), tagged_event("b")],
        )
        .await
        .unwrap();
    edit_by_hand(
        &db_path(&dir),
        "UPDATE events SET metadata = 'not json' WHERE version = 2",
    );
    match store.read_stream("s", 1, 10).await {
        Err(StoreError::Corrupt {
            stream_id,
            version,
            position,
            reason,
        }) => {
            assert_eq!((stream_id.as_str(), version, position), ("s", 2, Some(2)));
            assert!(reason.contains("metadata"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(store.read_stream("s", 1, 1).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_committed_in_one_group_are_checked_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let contested = store
                .append(
                    "contested",
                    ExpectedVersion::NoStream,
                    vec![tagged_event("c")],
                )
                .await;
            let own = store
                .append(
                    &format!("own-{i}"),
                    ExpectedVersion::NoStream,
                    vec![tagged_event("o")],
                )
                .await;
            (contested.is_ok(), own.map(|a| a.version))
        }));
    }
    let mut winners = 0;
    for task in tasks {
        let (won, own) = task.await.unwrap();
        winners += usize::from(won);
        assert_eq!(own.expect("an uncontested append must succeed"), 1);
    }
    assert_eq!(winners, 1, "exactly one NoStream append may win");
    let log = store.read_all(1, usize::MAX).await.unwrap();
    assert_eq!(log.len(), 65);
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=65).collect::<Vec<_>>(),
        "no gap from refused appends"
    );
}

const CHILD_DB: &str = "CQRS_SQLITE_CHILD_DB";
const CHILD_NAME: &str = "CQRS_SQLITE_CHILD_NAME";
const CHILD_APPENDS: u64 = 100;

/// The body of each child process of `two_processes_write_one_file`.
#[tokio::test]
#[ignore = "run as a child process by two_processes_write_one_file"]
async fn child_writer() {
    let path = std::env::var(CHILD_DB).expect("run by the parent test");
    let name = std::env::var(CHILD_NAME).expect("run by the parent test");
    let store = SqliteStore::open(&path).await.unwrap();
    for i in 0..CHILD_APPENDS {
        store
            .append(
                &format!("own-{name}"),
                ExpectedVersion::Exact(i),
                vec![tagged_event(&name)],
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: own stream refused: {e}"));
        loop {
            let version = store.stream_version("shared").await.unwrap().unwrap_or(0);
            match store
                .append(
                    "shared",
                    ExpectedVersion::Exact(version),
                    vec![tagged_event(&name)],
                )
                .await
            {
                Ok(_) => break,
                Err(StoreError::WrongExpectedVersion { .. }) => continue,
                Err(other) => panic!("{name}: only a typed conflict may refuse: {other}"),
            }
        }
    }
}

#[tokio::test]
async fn two_processes_write_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    drop(SqliteStore::open(&path).await.unwrap());
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            std::process::Command::new(&exe)
                .args(["child_writer", "--exact", "--ignored", "--test-threads=1"])
                .env(CHILD_DB, &path)
                .env(CHILD_NAME, name)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn the test binary")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let shared = store.read_stream("shared", 1, usize::MAX).await.unwrap();
    let versions: Vec<u64> = shared.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=2 * CHILD_APPENDS).collect::<Vec<_>>());
    for name in ["a", "b"] {
        let own = format!("own-{name}");
        assert_eq!(
            store.stream_version(&own).await.unwrap(),
            Some(CHILD_APPENDS)
        );
        let from_child = shared
            .iter()
            .filter(|e| e.payload.contains(&format!("\"{name}\"")))
            .count();
        assert_eq!(
            u64::try_from(from_child).unwrap(),
            CHILD_APPENDS,
            "child {name} lost or doubled events"
        );
    }
}

/// `recorded_at` never goes back along positions, even when the clock reads earlier than
/// the latest stored event (here: one stored an hour ahead, as by a clock later stepped
/// back, or by another process whose clock runs ahead).
#[tokio::test]
async fn appends_are_never_recorded_before_the_latest_stored_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    let ahead = cqrs_core::backend::recorded_now() + chrono::Duration::hours(1);
    raw(&db_path(&dir))
        .execute(
            "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, \
             payload, metadata, recorded_at) VALUES ('ahead', 1, ?1, 'Tagged', 1, '{}', '{}', ?2)",
            rusqlite::params![
                Uuid::new_v4().as_bytes().as_slice(),
                ahead.timestamp_micros()
            ],
        )
        .unwrap();
    let appended = store
        .append(
            "s",
            ExpectedVersion::Any,
            vec![tagged_event("a"), tagged_event("b")],
        )
        .await
        .unwrap();
    for event in &appended.events {
        assert_eq!(
            event.recorded_at, ahead,
            "recorded with the latest stored time"
        );
    }
    let read = store.read_stream("s", 1, 10).await.unwrap();
    assert_eq!(read, appended.events);
    assert_eq!(store.position_at(ahead).await.unwrap(), Some(1));
}

/// The first position at an instant, found by a search over positions, also where positions
/// have gaps and several events share a time.
#[tokio::test]
async fn position_at_searches_positions_with_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    let conn = raw(&db_path(&dir));
    // (position, recorded_at in microseconds): gaps, and a time shared by two events.
    let rows = [(1, 10), (5, 20), (6, 20), (20, 30), (100, 40)];
    for (version, (position, micros)) in (1..).zip(rows) {
        conn.execute(
            "INSERT INTO events (position, stream_id, version, event_id, event_type, \
             schema_version, payload, metadata, recorded_at) \
             VALUES (?1, 's', ?2, ?3, 'Tagged', 1, '{}', '{}', ?4)",
            rusqlite::params![
                position,
                version,
                Uuid::new_v4().as_bytes().as_slice(),
                micros
            ],
        )
        .unwrap();
    }
    let at = |micros| chrono::DateTime::from_timestamp_micros(micros).unwrap();
    let expected = [
        (0, Some(1)),
        (10, Some(1)),
        (11, Some(5)),
        (20, Some(5)),
        (21, Some(20)),
        (30, Some(20)),
        (31, Some(100)),
        (40, Some(100)),
        (41, None),
    ];
    for (micros, position) in expected {
        assert_eq!(
            store.position_at(at(micros)).await.unwrap(),
            position,
            "at {micros}"
        );
    }
}
