//! Snapshot storage: one row per stream in table `snapshots`, written through the writer.

use crate::error::store_error;
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::DateTime;
use cqrs_core::{Snapshot, SnapshotStore, StoreError};
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl SnapshotStore for SqliteStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.writer()
            .run(move |conn| {
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
                        i64::try_from(snapshot.version).unwrap_or(i64::MAX),
                        snapshot.state_version,
                        snapshot.state,
                        snapshot.taken_at.timestamp_micros(),
                    ])
                })
                .map(drop)
                .map_err(store_error)
            })
            .await
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let stream_id = stream_id.to_owned();
        // One row by primary key: read on the caller's thread (see `Readers::inline`).
        self.readers().inline(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT version, state_version, state, taken_at FROM snapshots \
                         WHERE stream_id = ?1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([&stream_id], |row| {
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
                    stream_id,
                    version: u64::try_from(version).ok()?,
                    state_version,
                    state,
                    taken_at: DateTime::from_timestamp_micros(taken_at)?,
                })
            }))
        })
    }
}
