//! Subscription checkpoints: one row per subscription in table `checkpoints`.

use crate::error::store_error;
use crate::reader::sql_int;
use crate::store::SqliteStore;
use async_trait::async_trait;
use cqrs_core::backend::recorded_now;
use cqrs_core::{CheckpointStore, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

/// Records `position` as the checkpoint of `subscription`, inside the caller's transaction
/// (so a projection's changes and its checkpoint commit together).
pub(crate) fn write_checkpoint(
    conn: &Connection,
    subscription: &str,
    position: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (subscription, position, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (subscription) DO UPDATE SET
             position = excluded.position, updated_at = excluded.updated_at",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            subscription,
            sql_int(position),
            recorded_now().timestamp_micros()
        ])
    })
    .map(drop)
    .map_err(store_error)
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn load_checkpoint(&self, subscription: &str) -> Result<u64, StoreError> {
        let subscription = subscription.to_owned();
        self.readers()
            .run(move |conn| {
                let position: Option<i64> = conn
                    .prepare_cached("SELECT position FROM checkpoints WHERE subscription = ?1")
                    .and_then(|mut statement| {
                        statement
                            .query_row([&subscription], |row| row.get(0))
                            .optional()
                    })
                    .map_err(store_error)?;
                match position.map(u64::try_from) {
                    None => Ok(0),
                    Some(Ok(position)) => Ok(position),
                    Some(Err(_)) => Err(StoreError::Backend(
                        format!("checkpoint of subscription `{subscription}` is negative").into(),
                    )),
                }
            })
            .await
    }

    async fn save_checkpoint(&self, subscription: &str, position: u64) -> Result<(), StoreError> {
        let subscription = subscription.to_owned();
        self.writer()
            .run(move |conn| write_checkpoint(conn, &subscription, position))
            .await
    }
}
