//! Files of an earlier schema version migrated on open, keeping every event and position,
//! and positions never given twice, not even those of rows removed by hand.

mod common;

use common::{db_path, raw};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{
    CheckpointStore, EventFilter, EventStore, ExpectedVersion, LogRead, ParkedEvent, ParkingStore,
    Snapshot, SnapshotStore,
};
use cqrs_sqlite::{SqliteStore, APPLICATION_ID, SCHEMA_VERSION};
use std::path::Path;
use uuid::Uuid;

/// The schema versions 1 to 3 of this crate wrote, as released (see the file).
const RELEASED: &str = include_str!("fixtures/schema-v3.sql");

/// One event as stored: position, stream id, version, event id, payload, metadata and
/// timestamp.
type StoredRow = (i64, String, i64, Vec<u8>, String, String, i64);

/// A file as version `version` (1 to 3) of this crate left it, with events at positions
/// 1 to 5 and 9 (a gap, as a hand-made file may have), and a projection's table.
fn old_file(path: &Path, version: usize) {
    let conn = raw(path);
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    for part in RELEASED.split("\n-- version ").skip(1).take(version) {
        let (_number, sql) = part.split_once('\n').unwrap();
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", i64::try_from(version).unwrap())
        .unwrap();
    conn.execute_batch("CREATE TABLE totals (tally TEXT PRIMARY KEY, total INTEGER);")
        .unwrap();
    for (position, stream, version) in [
        (1, "a", 1),
        (2, "b", 1),
        (3, "a", 2),
        (4, "a", 3),
        (5, "b", 2),
        (9, "c", 1),
    ] {
        conn.execute(
            "INSERT INTO events (position, stream_id, version, event_id, event_type, \
             schema_version, payload, metadata, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, 'Tagged', 1, ?5, ?6, ?7)",
            rusqlite::params![
                position,
                stream,
                version,
                Uuid::new_v4().as_bytes().as_slice(),
                format!("{{\"n\":{position}}}"),
                format!("{{\"correlation_id\":\"{}\"}}", Uuid::new_v4()),
                1_700_000_000_000_000_i64 + position,
            ],
        )
        .unwrap();
    }
    if version >= 3 {
        conn.execute_batch("INSERT INTO checkpoints VALUES ('sub', 4, 0);")
            .unwrap();
    }
}

/// What a raw read of the old file returns, event by event, to compare after migrating.
fn raw_events(path: &Path) -> Vec<StoredRow> {
    let conn = raw(path);
    let mut statement = conn
        .prepare(
            "SELECT position, stream_id, version, event_id, payload, metadata, recorded_at \
             FROM events ORDER BY position",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Removes the event at `position` as a disk fault or the sqlite3 shell could.
fn delete_by_hand(path: &Path, position: u64) {
    let conn = raw(path);
    conn.execute_batch("DROP TRIGGER events_refuse_delete;")
        .unwrap();
    let deleted = conn
        .execute(
            "DELETE FROM events WHERE position = ?1",
            [i64::try_from(position).unwrap()],
        )
        .unwrap();
    assert_eq!(deleted, 1);
    conn.execute_batch(
        "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
         BEGIN SELECT RAISE(ABORT, 'stored events are immutable: DELETE refused'); END;",
    )
    .unwrap();
}

#[tokio::test]
async fn a_file_of_an_earlier_version_is_migrated_keeping_every_event_and_position() {
    for version in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        old_file(&path, version);
        let before = raw_events(&path);

        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(raw_events(&path), before, "version {version}: rows changed");
        let conn = raw(&path);
        let stamped: (i32, u32, String) = conn
            .query_row(
                "SELECT (SELECT application_id FROM pragma_application_id), \
                 (SELECT user_version FROM pragma_user_version), \
                 (SELECT sql FROM sqlite_schema WHERE name = 'events')",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!((stamped.0, stamped.1), (APPLICATION_ID, SCHEMA_VERSION));
        assert!(stamped.2.contains("AUTOINCREMENT"), "{}", stamped.2);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('totals', 'events_v4')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1, "the projection's table stays, the copy is gone");

        let log = store.read_all(1, 100).await.unwrap();
        let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5, 9], "version {version}");
        let a = store.read_stream("a", 1, 100).await.unwrap();
        assert_eq!(a.iter().map(|e| e.position).collect::<Vec<_>>(), [1, 3, 4]);
        // Schema 6 indexed the migrated events: a filtered read finds them through it.
        let indexed: i64 = conn
            .query_row("SELECT up_to FROM log_indexed", [], |row| row.get(0))
            .unwrap();
        assert_eq!(indexed, 9, "version {version}");
        let of_a = LogRead {
            filter: EventFilter::all().with_categories(["a"]),
            ..LogRead::forward(1, 100)
        };
        let found = store.read_log(&of_a).await.unwrap();
        assert_eq!(found, a, "version {version}");
        assert_eq!(a[2].payload, "{\"n\":4}");
        assert!(a[2].metadata.correlation_id.is_some());
        let expected_checkpoint = if version >= 3 { 4 } else { 0 };
        assert_eq!(
            store.load_checkpoint("sub").await.unwrap(),
            expected_checkpoint
        );

        // Positions go on after the highest ever given, even once it is gone.
        let appended = store
            .append("a", ExpectedVersion::Exact(3), vec![tagged_event("new")])
            .await
            .unwrap();
        assert_eq!(appended.events[0].position, 10);
        delete_by_hand(&path, 10);
        let appended = store
            .append("a", ExpectedVersion::Exact(3), vec![tagged_event("again")])
            .await
            .unwrap();
        assert_eq!(
            appended.events[0].position, 11,
            "position 10 was given again"
        );

        let snapshot = Snapshot {
            stream_id: "a".into(),
            version: 4,
            state_version: 1,
            state: "{}".into(),
            taken_at: cqrs_core::backend::recorded_now(),
        };
        store.save_snapshot(snapshot.clone()).await.unwrap();
        assert_eq!(store.load_snapshot("a").await.unwrap(), Some(snapshot));
        drop(store);
        // Opening it again migrates nothing more.
        let again = SqliteStore::open(&path).await.unwrap();
        assert_eq!(again.read_all(1, 100).await.unwrap().len(), 7);
    }
}

#[tokio::test]
async fn a_new_file_never_gives_a_position_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    let events = vec![tagged_event("a"), tagged_event("b"), tagged_event("c")];
    store
        .append("s", ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    delete_by_hand(&path, 3);
    let appended = store
        .append("t", ExpectedVersion::NoStream, vec![tagged_event("d")])
        .await
        .unwrap();
    assert_eq!(appended.events[0].position, 4);
}

#[tokio::test]
async fn a_file_of_schema_6_gains_the_parked_events_table_keeping_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .append("s", ExpectedVersion::NoStream, vec![tagged_event("a")])
        .await
        .unwrap();
    drop(store);
    // What schema 6 wrote: everything but the table of migration 7.
    raw(&path)
        .execute_batch("DROP TABLE parked; PRAGMA user_version = 6;")
        .unwrap();
    let before = raw_events(&path);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(raw_events(&path), before);
    let version: u32 = raw(&path)
        .query_row("SELECT user_version FROM pragma_user_version", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let event = store.read_all(1, 10).await.unwrap().remove(0);
    let parked = ParkedEvent {
        subscription: "sub".into(),
        position: event.position,
        event_id: event.event_id,
        stream_id: event.stream_id,
        version: event.version,
        event_type: event.event_type,
        error: "boom".into(),
        attempts: 3,
        parked_at: cqrs_core::backend::recorded_now(),
    };
    store.park(parked.clone()).await.unwrap();
    assert_eq!(store.parked("sub").await.unwrap(), [parked]);
}
