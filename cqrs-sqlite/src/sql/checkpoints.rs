//! Subscription checkpoints: one row per subscription in table `checkpoints`.

use crate::error::store_error;
use crate::integer::{argument, convert};
use cqrs_core::backend::recorded_now;
use cqrs_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// Records `position` as the checkpoint of `subscription`, inside the caller's transaction
/// (so a projection's changes and its checkpoint commit together).
pub(crate) fn write(
    conn: &Connection,
    subscription: &str,
    position: u64,
) -> Result<(), StoreError> {
    // Stored as given or not at all: a clamped checkpoint would read back as another one.
    let position = argument(position, "position", "checkpoint")?;
    conn.prepare_cached(
        "INSERT INTO checkpoints (subscription, position, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (subscription) DO UPDATE SET
             position = excluded.position, updated_at = excluded.updated_at",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            subscription,
            position,
            recorded_now().timestamp_micros()
        ])
    })
    .map(drop)
    .map_err(store_error)
}

/// The checkpoint of `subscription`: 0 for one never saved.
pub(crate) fn read(conn: &Connection, subscription: &str) -> Result<u64, StoreError> {
    let position: Option<i64> = conn
        .prepare_cached("SELECT position FROM checkpoints WHERE subscription = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([subscription], |row| row.get(0))
                .optional()
        })
        .map_err(store_error)?;
    match position {
        None => Ok(0),
        Some(position) => Ok(convert(position, "checkpoint position")?),
    }
}

/// Every checkpoint, by subscription name.
pub(crate) fn list(conn: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = conn
        .prepare_cached("SELECT subscription, position FROM checkpoints ORDER BY subscription")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .and_then(Iterator::collect)
        })
        .map_err(store_error)?;
    rows.into_iter()
        .map(|(name, position)| Ok((name, convert(position, "checkpoint position")?)))
        .collect()
}
