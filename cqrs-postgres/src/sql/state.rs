//! Snapshots and checkpoints: the two tables beside the log that hold the latest value per
//! key (a stream's snapshot, a subscription's position), written by upsert.

use crate::error::store_error;
use crate::sql::Names;
use chrono::{DateTime, Utc};
use cqrs_core::{Snapshot, StoreError};
use deadpool_postgres::ClientWrapper;

/// The statements of snapshots and checkpoints, written for one store's schema.
#[derive(Debug)]
pub(crate) struct StateSql {
    save_snapshot: String,
    load_snapshot: String,
    save_checkpoint: String,
    load_checkpoint: String,
}

impl StateSql {
    pub(crate) fn new(names: &Names) -> Self {
        let s = &names.schema;
        Self {
            // A snapshot replaces the stream's kept one unless that one is newer.
            save_snapshot: format!(
                "INSERT INTO {s}.snapshots (stream_id, version, state_version, state, taken_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_id) DO UPDATE SET \
                 version = excluded.version, state_version = excluded.state_version, \
                 state = excluded.state, taken_at = excluded.taken_at \
                 WHERE {s}.snapshots.version <= excluded.version"
            ),
            load_snapshot: format!(
                "SELECT version, state_version, state, taken_at FROM {s}.snapshots \
                 WHERE stream_id = $1"
            ),
            save_checkpoint: format!(
                "INSERT INTO {s}.checkpoints (subscription, position, updated_at) \
                 VALUES ($1, $2, clock_timestamp()) ON CONFLICT (subscription) DO UPDATE SET \
                 position = excluded.position, updated_at = excluded.updated_at"
            ),
            load_checkpoint: format!(
                "SELECT position FROM {s}.checkpoints WHERE subscription = $1"
            ),
        }
    }
}

/// Refuses text PostgreSQL cannot hold (a NUL character) as an invalid `argument`,
/// naming what it is.
pub(crate) fn storable_text(
    argument: &'static str,
    what: impl Fn() -> String,
    text: &str,
) -> Result<(), StoreError> {
    if text.contains('\0') {
        return Err(StoreError::InvalidArgument {
            argument,
            reason: format!(
                "{} contains a NUL character, which PostgreSQL text cannot hold",
                what()
            ),
        });
    }
    Ok(())
}

/// A `u64` that must fit PostgreSQL's `bigint`, or an invalid `argument` (never clamped).
pub(crate) fn storable_u64(argument: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidArgument {
        argument,
        reason: format!("{value} is larger than PostgreSQL's bigint holds"),
    })
}

pub(crate) async fn save_snapshot(
    client: &ClientWrapper,
    sql: &StateSql,
    snapshot: &Snapshot,
) -> Result<(), StoreError> {
    let stream = &snapshot.stream_id;
    storable_text(
        "snapshot",
        || format!("the snapshot state of stream `{stream}`"),
        &snapshot.state,
    )?;
    let version = storable_u64("snapshot", snapshot.version)?;
    let statement = client
        .prepare_cached(&sql.save_snapshot)
        .await
        .map_err(store_error)?;
    client
        .execute(
            &statement,
            &[
                stream,
                &version,
                &i64::from(snapshot.state_version),
                &snapshot.state,
                &snapshot.taken_at,
            ],
        )
        .await
        .map_err(store_error)?;
    Ok(())
}

pub(crate) async fn load_snapshot(
    client: &ClientWrapper,
    sql: &StateSql,
    stream_id: &str,
) -> Result<Option<Snapshot>, StoreError> {
    let statement = client
        .prepare_cached(&sql.load_snapshot)
        .await
        .map_err(store_error)?;
    let Some(row) = client
        .query_opt(&statement, &[&stream_id])
        .await
        .map_err(store_error)?
    else {
        return Ok(None);
    };
    let damaged = |reason: String| StoreError::Corrupt {
        stream_id: stream_id.to_owned(),
        version: 0,
        position: None,
        reason: format!("its snapshot {reason}"),
    };
    let version: i64 = row.try_get(0).map_err(|e| damaged(e.to_string()))?;
    let state_version: i64 = row.try_get(1).map_err(|e| damaged(e.to_string()))?;
    let state: String = row.try_get(2).map_err(|e| damaged(e.to_string()))?;
    let taken_at: DateTime<Utc> = row.try_get(3).map_err(|e| damaged(e.to_string()))?;
    // A snapshot is a cache: one that cannot be read is reported, and a caller may drop it.
    Ok(Some(Snapshot {
        stream_id: stream_id.to_owned(),
        version: u64::try_from(version)
            .map_err(|_| damaged(format!("version {version} is out of range")))?,
        state_version: u32::try_from(state_version)
            .map_err(|_| damaged(format!("state version {state_version} is out of range")))?,
        state,
        taken_at,
    }))
}

pub(crate) async fn save_checkpoint(
    client: &ClientWrapper,
    sql: &StateSql,
    subscription: &str,
    position: u64,
) -> Result<(), StoreError> {
    storable_text(
        "subscription",
        || format!("name {subscription:?}"),
        subscription,
    )?;
    let position = storable_u64("position", position)?;
    let statement = client
        .prepare_cached(&sql.save_checkpoint)
        .await
        .map_err(store_error)?;
    client
        .execute(&statement, &[&subscription, &position])
        .await
        .map_err(store_error)?;
    Ok(())
}

pub(crate) async fn load_checkpoint(
    client: &ClientWrapper,
    sql: &StateSql,
    subscription: &str,
) -> Result<u64, StoreError> {
    storable_text(
        "subscription",
        || format!("name {subscription:?}"),
        subscription,
    )?;
    let statement = client
        .prepare_cached(&sql.load_checkpoint)
        .await
        .map_err(store_error)?;
    let row = client
        .query_opt(&statement, &[&subscription])
        .await
        .map_err(store_error)?;
    let Some(row) = row else { return Ok(0) };
    let position: i64 = row.try_get(0).map_err(|e| StoreError::Corrupt {
        stream_id: String::new(),
        version: 0,
        position: None,
        reason: format!("the checkpoint of subscription `{subscription}` cannot be read: {e}"),
    })?;
    u64::try_from(position).map_err(|_| StoreError::Corrupt {
        stream_id: String::new(),
        version: 0,
        position: None,
        reason: format!("the checkpoint of subscription `{subscription}` is {position}"),
    })
}
