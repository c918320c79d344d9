//! The single writer: one connection on its own thread, committing appends in groups.
//!
//! Appends queue on a channel. The thread takes every append waiting when it becomes free
//! and commits them in one transaction, each inside its own savepoint: each is checked
//! against its own expected version, a refused one is rolled back alone, and the group pays
//! for one commit (one fsync under `synchronous = FULL`).

use crate::error::{is_busy, is_duplicate_event_id, store_error, SqliteError};
use chrono::{DateTime, Utc};
use cqrs_core::envelope::recorded_now;
use cqrs_core::{Appended, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use rusqlite::{params, Connection, TransactionBehavior};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Appends committed together at most; bounds the latency one group adds to its last member.
const MAX_GROUP: usize = 256;

/// One append waiting for the writer.
pub(crate) struct AppendRequest {
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The sending side of the writer thread; dropping every clone stops the thread.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<AppendRequest>,
}

impl Writer {
    /// Moves the connection onto a new thread that serves appends until the store is dropped.
    pub fn start(conn: Connection) -> Result<Self, StoreError> {
        let (queue, requests) = mpsc::channel();
        std::thread::Builder::new()
            .name("cqrs-sqlite-writer".to_owned())
            .spawn(move || serve(conn, requests))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self { queue })
    }

    /// Queues an append and waits for its result without blocking the runtime.
    pub async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        let (reply, result) = oneshot::channel();
        let request = AppendRequest {
            stream_id: stream_id.to_owned(),
            expected,
            events,
            reply,
        };
        self.queue
            .send(request)
            .map_err(|_| SqliteError::WriterStopped)?;
        result.await.map_err(|_| SqliteError::WriterStopped)?
    }
}

fn serve(mut conn: Connection, requests: mpsc::Receiver<AppendRequest>) {
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let results = commit_group(&mut conn, &mut group);
        for (request, result) in group.into_iter().zip(results) {
            // The caller may have given up waiting; its append is committed all the same.
            let _ = request.reply.send(result);
        }
    }
}

/// The same failure for every member of a group (rusqlite errors cannot be cloned).
fn group_failure(error: &rusqlite::Error) -> StoreError {
    if is_busy(error) {
        StoreError::Busy {
            reason: error.to_string(),
        }
    } else {
        StoreError::Backend(format!("commit failed: {error}").into())
    }
}

fn commit_group(
    conn: &mut Connection,
    group: &mut [AppendRequest],
) -> Vec<Result<Appended, StoreError>> {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return group.iter().map(|_| Err(group_failure(&error))).collect(),
    };
    let recorded_at = recorded_now();
    let mut results = Vec::with_capacity(group.len());
    for request in group.iter_mut() {
        let events = std::mem::take(&mut request.events);
        let result = tx.savepoint().map_err(store_error).and_then(|savepoint| {
            let appended = insert(
                &savepoint,
                &request.stream_id,
                request.expected,
                events,
                recorded_at,
            )?;
            // Dropping an uncommitted savepoint rolls this append back alone.
            savepoint.commit().map_err(store_error)?;
            Ok(appended)
        });
        results.push(result);
    }
    if results.iter().all(Result::is_err) {
        return results;
    }
    if let Err(error) = tx.commit() {
        return results
            .into_iter()
            .map(|result| result.and(Err(group_failure(&error))))
            .collect();
    }
    results
}

/// Checks the expected version and inserts the events, inside the caller's savepoint.
fn insert(
    conn: &Connection,
    stream_id: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    recorded_at: DateTime<Utc>,
) -> Result<Appended, StoreError> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT MAX(version) FROM events WHERE stream_id = ?1")
        .and_then(|mut stmt| stmt.query_row([stream_id], |row| row.get(0)))
        .map_err(store_error)?;
    let current = current.map(|v| v as u64);
    expected.check(stream_id, current)?;
    let version = current.unwrap_or(0);
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, \
             payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(store_error)?;
    let mut recorded = Vec::with_capacity(events.len());
    for (offset, event) in events.into_iter().enumerate() {
        let event_version = version + offset as u64 + 1;
        let metadata =
            serde_json::to_string(&event.metadata).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let inserted = statement.execute(params![
            stream_id,
            event_version as i64,
            event.event_id.as_bytes(),
            event.event_type,
            event.schema_version,
            event.payload,
            metadata,
            recorded_at.timestamp_micros(),
        ]);
        match inserted {
            Ok(_) => {}
            Err(error) if is_duplicate_event_id(&error) => {
                return Err(StoreError::DuplicateEventId {
                    stream_id: stream_id.to_owned(),
                    event_id: event.event_id,
                })
            }
            Err(error) => return Err(store_error(error)),
        }
        recorded.push(RecordedEvent {
            stream_id: stream_id.to_owned(),
            version: event_version,
            position: conn.last_insert_rowid() as u64,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: event.payload,
            metadata: event.metadata,
            recorded_at,
        });
    }
    Ok(Appended {
        version: version + recorded.len() as u64,
        events: recorded,
    })
}
