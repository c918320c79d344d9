//! Snapshots: the latest one per stream, in table `snapshots`.

use crate::error::store_error;
use crate::integer::{argument, convert};
use chrono::DateTime;
use cqrs_core::{Snapshot, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

/// Stores `snapshot` unless the stream already has one at the same or a later version.
pub(crate) fn save(conn: &Connection, snapshot: &Snapshot) -> Result<(), StoreError> {
    let version = argument(snapshot.version, "snapshot", "its version")?;
    conn.prepare_cached(
        "INSERT INTO snapshots (stream_id, version, state_version, state, taken_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (stream_id) DO UPDATE SET
             version = excluded.version, state_version = excluded.state_version,
             state = excluded.state, taken_at = excluded.taken_at
         WHERE excluded.version > snapshots.version",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            snapshot.stream_id,
            version,
            snapshot.state_version,
            snapshot.state,
            snapshot.taken_at.timestamp_micros(),
        ])
    })
    .map(drop)
    .map_err(store_error)
}

/// The stream's snapshot, if it has one that reads back whole.
pub(crate) fn load(conn: &Connection, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT version, state_version, state, taken_at FROM snapshots WHERE stream_id = ?1",
        )
        .and_then(|mut statement| {
            statement
                .query_row([stream_id], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()
        })
        .map_err(store_error)?;
    Ok(row.and_then(|(version, state_version, state, taken_at)| {
        // A damaged snapshot is no snapshot: loads replay the stream instead.
        Some(Snapshot {
            stream_id: stream_id.to_owned(),
            version: convert(version, "snapshot version").ok()?,
            state_version,
            state,
            taken_at: DateTime::from_timestamp_micros(taken_at)?,
        })
    }))
}
