//! Rows damaged by hand or by a disk fault, one column at a time, in a real file: every
//! read of the damaged stream, the global log and a subscription report a typed `Corrupt`
//! naming stream, version and position (as far as they can be read), and never skip the
//! row or read it as something else; other streams read and append as before.

mod common;

use async_trait::async_trait;
use common::raw;
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{
    Consumer, EventStore, ExpectedVersion, HandlerError, LogRead, Metadata, NewEvent,
    RecordedEvent, RetryPolicy, StoreError, Subscription, SubscriptionError,
};
use cqrs_sqlite::SqliteStore;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// The damaged stream: versions 1, 2 and 3 at positions 1, 2 and 3.
const DAMAGED: &str = "s";
/// A stream that must not notice: versions 1 and 2 at positions 4 and 5.
const OTHER: &str = "other";

/// The kit's raw event, with a correlation id to lose if metadata is damaged.
fn new_event(tag: &str) -> NewEvent {
    NewEvent {
        metadata: Metadata::new().with_correlation_id(Uuid::new_v4()),
        ..tagged_event(tag)
    }
}

/// A file holding [`DAMAGED`] and [`OTHER`], closed.
async fn file(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    for (stream, events) in [(DAMAGED, 3), (OTHER, 2)] {
        let batch = (0..events).map(|i| new_event(&format!("{i}"))).collect();
        store
            .append(stream, ExpectedVersion::NoStream, batch)
            .await
            .unwrap();
    }
    path
}

/// Sets `column` of the event at `version` of [`DAMAGED`] to the SQL `value`, as someone
/// with the sqlite3 shell or a disk fault could: the immutability trigger dropped and put
/// back, the table's CHECKs ignored, and for a NULL the table's NOT NULLs taken out of its
/// schema (`writable_schema`).
fn damage(path: &Path, version: u64, column: &str, value: &str) {
    if value == "NULL" {
        raw(path)
            .execute_batch(
                "PRAGMA writable_schema = ON;
                 UPDATE sqlite_schema SET sql = replace(sql, 'NOT NULL', '') WHERE name = 'events';
                 PRAGMA writable_schema = OFF;",
            )
            .unwrap();
    }
    let conn = raw(path);
    conn.execute_batch("DROP TRIGGER events_refuse_update; PRAGMA ignore_check_constraints = ON;")
        .unwrap();
    let changed = conn
        .execute(
            &format!("UPDATE events SET {column} = {value} WHERE stream_id = ?1 AND version = ?2"),
            rusqlite::params![DAMAGED, i64::try_from(version).unwrap()],
        )
        .unwrap();
    assert_eq!(changed, 1, "{column} = {value}");
    conn.execute_batch(
        "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
         BEGIN SELECT RAISE(ABORT, 'stored events are immutable: UPDATE refused'); END;",
    )
    .unwrap();
}

/// The `Corrupt` error a read must return.
#[derive(Debug, Clone, Copy)]
struct Expect {
    stream_id: &'static str,
    version: u64,
    position: Option<u64>,
    /// A part of the reason.
    reason: &'static str,
}

const fn expect(
    stream_id: &'static str,
    version: u64,
    position: Option<u64>,
    reason: &'static str,
) -> Expect {
    Expect {
        stream_id,
        version,
        position,
        reason,
    }
}

/// One damaged column of one row, and what each read reports.
struct Case {
    /// The damaged event's version in [`DAMAGED`] (its position is the same number).
    row: u64,
    column: &'static str,
    /// SQL for the new value.
    value: &'static str,
    /// What `read_stream` of the damaged stream returns, and `read_stream_backward` too
    /// unless `backward` says otherwise.
    stream: Expect,
    backward: Option<Expect>,
    /// What `read_all` and a subscription return; `None`: the row reads as stored (its
    /// columns are each valid; only its stream sees it does not fit).
    log: Option<Expect>,
}

/// A column damaged in a way that both kinds of read see on the row itself.
const fn on_row(row: u64, column: &'static str, value: &'static str, reason: &'static str) -> Case {
    let found = expect(DAMAGED, row, Some(row), reason);
    Case {
        row,
        column,
        value,
        stream: found,
        backward: None,
        log: Some(found),
    }
}

/// A version that cannot be read: both kinds of read name the row with version 0.
const fn version(row: u64, value: &'static str, reason: &'static str) -> Case {
    let found = expect(DAMAGED, 0, Some(row), reason);
    Case {
        row,
        column: "version",
        value,
        stream: found,
        backward: None,
        log: Some(found),
    }
}

/// A stream id that no longer matches the stream: its reads find the version missing;
/// the log reads the row and says what is wrong with it.
const fn stream_id(
    row: u64,
    value: &'static str,
    shown: &'static str,
    reason: &'static str,
) -> Case {
    Case {
        row,
        column: "stream_id",
        value,
        stream: expect(DAMAGED, row, None, "is missing"),
        backward: None,
        log: Some(expect(shown, row, Some(row), reason)),
    }
}

/// A position before the first: the row is named without one.
const fn position(value: &'static str, reason: &'static str) -> Case {
    let found = expect(DAMAGED, 2, None, reason);
    Case {
        row: 2,
        column: "position",
        value,
        stream: found,
        backward: None,
        log: Some(found),
    }
}

fn cases() -> Vec<Case> {
    let blob_id = "stream_id is stored as a blob";
    vec![
        position("0", "position 0 is out of range"),
        position("-5", "position -5 is out of range"),
        // The same text as a blob: the stream's reads find the row by it.
        Case {
            stream: expect(DAMAGED, 2, Some(2), blob_id),
            ..stream_id(2, "CAST(stream_id AS BLOB)", DAMAGED, blob_id)
        },
        Case {
            stream: expect(DAMAGED, 3, Some(3), blob_id),
            ..stream_id(3, "CAST(stream_id AS BLOB)", DAMAGED, blob_id)
        },
        stream_id(2, "NULL", "", "stream_id is NULL"),
        stream_id(1, "NULL", "", "stream_id is NULL"),
        stream_id(2, "x'ff'", "\u{fffd}", blob_id),
        version(2, "NULL", "version is NULL"),
        version(3, "NULL", "version is NULL"),
        version(2, "-1", "version -1 is out of range"),
        version(3, "0", "version 0 is out of range"),
        version(2, "'two'", "version is the text \"two\""),
        version(3, "'three'", "version is the text \"three\""),
        version(2, "x'02'", "version is a blob of 1 bytes"),
        version(2, "2.5", "version is the real number 2.5"),
        // A valid number, but not the stream's next: only the stream's reads can tell.
        Case {
            row: 2,
            column: "version",
            value: "7",
            stream: expect(DAMAGED, 2, None, "version 2 is missing"),
            backward: Some(expect(DAMAGED, 6, None, "version 6 is missing")),
            log: None,
        },
        on_row(2, "event_id", "NULL", "event_id is NULL"),
        on_row(
            2,
            "event_id",
            "x'0102'",
            "event_id is a blob of 2 bytes, not a 16-byte UUID",
        ),
        on_row(
            2,
            "event_id",
            "randomblob(17)",
            "event_id is a blob of 17 bytes",
        ),
        on_row(
            2,
            "event_id",
            "'67e55044-10b1-426f-9247-bb680e5fe0c8'",
            "event_id is the text",
        ),
        on_row(2, "event_id", "42", "event_id is the integer 42"),
        on_row(2, "event_type", "NULL", "event_type is NULL"),
        on_row(2, "event_type", "x'41'", "event_type is a blob"),
        on_row(2, "event_type", "x'ff'", "event_type is a blob"),
        on_row(
            2,
            "event_type",
            "CAST(x'ff' AS TEXT)",
            "event_type is not UTF-8",
        ),
        on_row(2, "schema_version", "NULL", "schema_version is NULL"),
        on_row(
            2,
            "schema_version",
            "-1",
            "schema_version -1 is out of range",
        ),
        on_row(
            2,
            "schema_version",
            "4294967296",
            "schema_version 4294967296 is out of range",
        ),
        on_row(
            2,
            "schema_version",
            "'one'",
            "schema_version is the text \"one\"",
        ),
        on_row(
            2,
            "schema_version",
            "1.5",
            "schema_version is the real number 1.5",
        ),
        on_row(2, "payload", "NULL", "payload is NULL"),
        on_row(2, "payload", "x'7b7d'", "payload is a blob"),
        on_row(2, "metadata", "NULL", "metadata is NULL"),
        on_row(2, "metadata", "'[]'", "not a JSON object"),
        on_row(
            2,
            "metadata",
            "'[\"5f3f8d1e-0000-4000-8000-000000000000\"]'",
            "not a JSON object",
        ),
        on_row(2, "metadata", "'not json'", "metadata is not valid"),
        on_row(
            2,
            "metadata",
            "'{\"correlation_id\":5}'",
            "metadata is not valid",
        ),
        on_row(2, "metadata", "x'7b7d'", "metadata is a blob"),
        on_row(2, "recorded_at", "NULL", "recorded_at is NULL"),
        on_row(2, "recorded_at", "'yesterday'", "recorded_at is the text"),
        on_row(
            2,
            "recorded_at",
            "1.5",
            "recorded_at is the real number 1.5",
        ),
        on_row(
            2,
            "recorded_at",
            "9223372036854775807",
            "recorded_at 9223372036854775807 is out of range",
        ),
        on_row(2, "recorded_at", "-9223372036854775808", "is out of range"),
    ]
}

fn check(
    what: &str,
    case: &Case,
    expected: Expect,
    result: Result<Vec<RecordedEvent>, StoreError>,
) {
    let label = format!(
        "{} = {} on version {}, {what}",
        case.column, case.value, case.row
    );
    match result {
        Err(StoreError::Corrupt {
            stream_id,
            version,
            position,
            reason,
        }) => {
            assert_eq!(
                (stream_id.as_str(), version, position),
                (expected.stream_id, expected.version, expected.position),
                "{label}: {reason}"
            );
            assert!(reason.contains(expected.reason), "{label}: {reason}");
        }
        other => panic!("{label}: expected Corrupt, got {other:?}"),
    }
}

/// What a visit of the stream hands over, owned (a visit reads no metadata).
async fn visited(
    store: &SqliteStore,
    stream_id: &str,
    from: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut seen = Vec::new();
    store
        .visit_stream(stream_id, from, limit, &mut |event| {
            seen.push(event.to_recorded(Metadata::new()));
            ControlFlow::Continue(())
        })
        .await?;
    Ok(seen)
}

/// What a visit of the whole log hands over, owned.
async fn visited_log(store: &SqliteStore) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut seen = Vec::new();
    store
        .visit_log(&LogRead::forward(1, 100), &mut |event| {
            seen.push(event.to_recorded(Metadata::new()));
            ControlFlow::Continue(())
        })
        .await?;
    Ok(seen)
}

/// A consumer that keeps what it was given, and its checkpoint, in memory.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<u64>>>);

#[async_trait]
impl Consumer for Recorder {
    async fn checkpoint(&self, _: &str) -> Result<u64, HandlerError> {
        Ok(self.0.lock().unwrap().last().copied().unwrap_or(0))
    }
    async fn consume(&self, _: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(event.position);
        Ok(())
    }
    async fn reset(&self, _: &str) -> Result<(), HandlerError> {
        self.0.lock().unwrap().clear();
        Ok(())
    }
}

/// A subscription stops at the damaged row with the log's error, having consumed nothing
/// at or past it.
async fn check_subscription(store: &SqliteStore, case: &Case, expected: Expect) {
    let recorder = Recorder::default();
    let subscription =
        Subscription::new("damage", store.clone(), recorder.clone()).with_retry(RetryPolicy {
            attempts: 1,
            first_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        });
    let result = match subscription.catch_up().await {
        Err(SubscriptionError::Unavailable { source, .. }) => match source.downcast::<StoreError>()
        {
            Ok(store_error) => Err(*store_error),
            Err(other) => panic!("a subscription stopped with {other}"),
        },
        Err(other) => panic!("a subscription stopped with {other}"),
        Ok(checkpoint) => panic!("a subscription caught up to {checkpoint} over a damaged row"),
    };
    check("subscription", case, expected, result);
    let consumed = recorder.0.lock().unwrap().clone();
    assert!(
        consumed.iter().all(|&position| position < case.row),
        "the subscription went past the damaged row: {consumed:?}"
    );
}

/// Other streams read, count and append as if nothing happened.
async fn check_other_stream(store: &SqliteStore) {
    let forward = store.read_stream(OTHER, 1, 100).await.unwrap();
    assert_eq!(
        forward.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2]
    );
    let backward = store
        .read_stream_backward(OTHER, u64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(
        backward.iter().map(|e| e.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(store.stream_version(OTHER).await.unwrap(), Some(2));
    let appended = store
        .append(OTHER, ExpectedVersion::Exact(2), vec![new_event("after")])
        .await
        .unwrap();
    assert_eq!(appended.version, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damaged_column_is_a_corrupt_error_and_other_streams_read_on() {
    for case in cases() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir).await;
        damage(&path, case.row, case.column, case.value);
        let store = SqliteStore::open(&path).await.unwrap();

        check(
            "read_stream",
            &case,
            case.stream,
            store.read_stream(DAMAGED, 1, 100).await,
        );
        let backward = store.read_stream_backward(DAMAGED, u64::MAX, 100).await;
        check(
            "read_stream_backward",
            &case,
            case.backward.unwrap_or(case.stream),
            backward,
        );
        // A visit reads every column but the metadata, with the same checks.
        let visit = visited(&store, DAMAGED, 1, 100).await;
        let visit_log = visited_log(&store).await;
        if case.column == "metadata" {
            assert_eq!(visit.unwrap().len(), 3, "{}: visit_stream", case.value);
            assert_eq!(visit_log.unwrap().len(), 5, "{}: visit_log", case.value);
        } else {
            check("visit_stream", &case, case.stream, visit);
            match case.log {
                Some(log) => check("visit_log", &case, log, visit_log),
                None => assert_eq!(visit_log.unwrap().len(), 5),
            }
        }
        match case.log {
            Some(log) => {
                check("read_all", &case, log, store.read_all(1, 100).await);
                check_subscription(&store, &case, log).await;
            }
            None => assert_eq!(store.read_all(1, 100).await.unwrap().len(), 5),
        }
        check_other_stream(&store).await;
    }
}

/// A read longer than one SQL query (rows read inline, the rest on other threads, in two
/// halves) still sees a version missing where two of its parts meet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_version_is_found_however_a_long_read_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    for batch in 0..30 {
        let events = (0..100)
            .map(|i| new_event(&format!("{batch}-{i}")))
            .collect();
        store
            .append(DAMAGED, ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
    drop(store);
    // Version 2000: past the rows read inline, inside the second half of a long page.
    damage(&path, 2000, "stream_id", "NULL");
    let store = SqliteStore::open(&path).await.unwrap();
    let missing = |result: Result<Vec<RecordedEvent>, StoreError>| match result {
        Err(StoreError::Corrupt {
            stream_id,
            version: 2000,
            position: None,
            ..
        }) if stream_id == DAMAGED => {}
        other => panic!("expected version 2000 missing, got {other:?}"),
    };
    missing(store.read_stream(DAMAGED, 1, 4096).await);
    missing(store.read_stream(DAMAGED, 1500, 1000).await);
    missing(store.read_stream(DAMAGED, 2000, 10).await);
    missing(store.read_stream_backward(DAMAGED, u64::MAX, 4096).await);
    missing(store.read_stream_backward(DAMAGED, 2000, 10).await);
    missing(visited(&store, DAMAGED, 1, 4096).await);
    missing(visited(&store, DAMAGED, 1500, 1000).await);
    missing(visited(&store, DAMAGED, 2000, 10).await);
    // Reads that stop short of it are whole.
    assert_eq!(
        store.read_stream(DAMAGED, 1, 1999).await.unwrap().len(),
        1999
    );
    assert_eq!(
        store.read_stream(DAMAGED, 2001, 4096).await.unwrap().len(),
        1000
    );
    assert_eq!(visited(&store, DAMAGED, 1, 1999).await.unwrap().len(), 1999);
}

/// A read that starts past a damaged version still refuses it: the version it stands for
/// could be any, in the range read too.
#[tokio::test]
async fn a_read_from_a_later_version_still_refuses_a_damaged_one() {
    for (row, value) in [(1, "NULL"), (1, "-1"), (3, "'three'"), (2, "x'02'")] {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir).await;
        damage(&path, row, "version", value);
        let store = SqliteStore::open(&path).await.unwrap();
        for (from, result) in [
            (2, store.read_stream(DAMAGED, 2, 100).await),
            (3, store.read_stream(DAMAGED, 3, 100).await),
            (1, store.read_stream_backward(DAMAGED, 1, 100).await),
        ] {
            match result {
                Err(StoreError::Corrupt {
                    stream_id,
                    version: 0,
                    position,
                    ..
                }) if stream_id == DAMAGED => assert_eq!(position, Some(row)),
                other => {
                    panic!("{value} at {row}, read from {from}: expected Corrupt, got {other:?}")
                }
            }
        }
        check_other_stream(&store).await;
    }
}

/// The stream's current version, which appends are checked against, is `Corrupt` when the
/// highest stored version is not one (text and blobs sort after every number), so appends
/// fail too. (A NULL or negative version sorts first: reads report it.)
#[tokio::test]
async fn a_damaged_highest_version_is_corrupt_for_stream_version_and_appends() {
    for value in ["'three'", "x'03'"] {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir).await;
        damage(&path, 3, "version", value);
        let store = SqliteStore::open(&path).await.unwrap();
        let version = store.stream_version(DAMAGED).await;
        let append = store
            .append(DAMAGED, ExpectedVersion::Any, vec![new_event("more")])
            .await;
        for result in [version.map(drop), append.map(drop)] {
            match result {
                Err(StoreError::Corrupt {
                    stream_id,
                    version: 0,
                    position: Some(3),
                    reason,
                }) if stream_id == DAMAGED => assert!(reason.contains("version is"), "{reason}"),
                other => panic!("{value}: expected Corrupt, got {other:?}"),
            }
        }
        assert_eq!(store.read_all(1, 2).await.unwrap().len(), 2);
        check_other_stream(&store).await;
    }
}

/// The table checks each column's type and range on write, so the sqlite3 shell cannot
/// store such rows without setting the checks aside first (as [`damage`] does).
#[tokio::test]
async fn the_table_refuses_damaged_values_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir).await;
    let conn = raw(&path);
    conn.execute_batch("DROP TRIGGER events_refuse_update;")
        .unwrap();
    for (column, value) in [
        ("position", "0"),
        ("stream_id", "CAST(stream_id AS BLOB)"),
        ("version", "-1"),
        ("version", "'two'"),
        ("event_id", "x'0102'"),
        ("event_id", "'67e55044-10b1-426f-9247-bb680e5fe0c8'"),
        ("event_type", "x'41'"),
        ("schema_version", "4294967296"),
        ("payload", "x'7b7d'"),
        ("metadata", "x'7b7d'"),
        ("recorded_at", "'yesterday'"),
    ] {
        let error = conn
            .execute(
                &format!("UPDATE events SET {column} = {value} WHERE position = 2"),
                [],
            )
            .expect_err(column)
            .to_string();
        assert!(
            error.contains("CHECK constraint failed"),
            "{column}: {error}"
        );
    }
}

/// A row whose stream id or type is no longer text falls out of the category and type
/// indexes: a filtered read (and so a filtered subscription) that covers its position is
/// `Corrupt` naming it, never a page that passes over it; one that ends before it, or starts
/// after it, reads as before.
#[tokio::test]
async fn filtered_reads_stop_at_a_row_they_could_not_match() {
    let by_category = || cqrs_core::EventFilter::all().with_categories([DAMAGED]);
    let by_type = || cqrs_core::EventFilter::all().with_event_types(["Tagged"]);
    for (column, value) in [
        ("stream_id", "CAST('s' AS BLOB)"),
        ("stream_id", "NULL"),
        ("event_type", "CAST('Tagged' AS BLOB)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir).await;
        damage(&path, 2, column, value);
        let store = SqliteStore::open(&path).await.unwrap();
        for filter in [by_category(), by_type()] {
            let what = format!("{column} = {value}, {filter:?}");
            let reads = [
                cqrs_core::LogRead::forward(1, 100),
                cqrs_core::LogRead::backward(u64::MAX, 100),
                cqrs_core::LogRead::forward(1, 2),
            ];
            for read in reads {
                match store.read_log(&read.matching(filter.clone())).await {
                    Err(StoreError::Corrupt { position, .. }) => {
                        assert_eq!(position, Some(2), "{what}");
                    }
                    other => panic!("{what}: a filtered read over the row gave {other:?}"),
                }
            }
            let before = cqrs_core::LogRead::forward(1, 1).matching(filter.clone());
            let page = store.read_log(&before).await.unwrap();
            assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), [1]);
            let after = cqrs_core::LogRead::forward(3, 100).matching(filter.clone());
            assert!(store.read_log(&after).await.is_ok(), "{what}");
        }
    }
}
