//! Parked events (see `cqrs_core::parking`): one row per subscription and position in table
//! `parked`; and the listing of the checkpoints beside them, for operators' tools.
//!
//! A retried reaction's removal of its entry is no statement of this module: it commits in
//! the append transaction (see `sql::append`).

use crate::error::store_error;
use crate::sql::state::{storable_text, storable_u64};
use crate::sql::Names;
use chrono::{DateTime, Utc};
use cqrs_core::{ParkedEvent, StoreError};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;
use uuid::Uuid;

/// The statements of parked events and of the checkpoints' listing, for one store's schema.
#[derive(Debug)]
pub(crate) struct ParkedSql {
    park: String,
    list: String,
    remove: String,
    checkpoints: String,
}

impl ParkedSql {
    pub(crate) fn new(names: &Names) -> Self {
        let s = &names.schema;
        Self {
            park: format!(
                "INSERT INTO {s}.parked (subscription, position, event_id, stream_id, version, \
                 event_type, error, attempts, parked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (subscription, position) DO UPDATE SET \
                 event_id = excluded.event_id, stream_id = excluded.stream_id, \
                 version = excluded.version, event_type = excluded.event_type, \
                 error = excluded.error, attempts = excluded.attempts, \
                 parked_at = excluded.parked_at"
            ),
            list: format!(
                "SELECT position, event_id, stream_id, version, event_type, error, attempts, \
                 parked_at FROM {s}.parked WHERE subscription = $1 ORDER BY position"
            ),
            remove: format!("DELETE FROM {s}.parked WHERE subscription = $1 AND position = $2"),
            // Byte order, as the other stores list them, whatever the database's collation.
            checkpoints: format!(
                "SELECT subscription, position FROM {s}.checkpoints \
                 ORDER BY subscription COLLATE \"C\""
            ),
        }
    }
}

/// Records `parked`, replacing the row of the same subscription and position.
pub(crate) async fn park(
    client: &ClientWrapper,
    sql: &ParkedSql,
    parked: &ParkedEvent,
) -> Result<(), StoreError> {
    let what = || format!("parked event of `{}`", parked.subscription);
    storable_text(
        "parked",
        || format!("the subscription of a {}", what()),
        &parked.subscription,
    )?;
    storable_text(
        "parked",
        || format!("the stream of a {}", what()),
        &parked.stream_id,
    )?;
    storable_text(
        "parked",
        || format!("the event type of a {}", what()),
        &parked.event_type,
    )?;
    storable_text(
        "parked",
        || format!("the error of a {}", what()),
        &parked.error,
    )?;
    let position = storable_u64("parked", parked.position)?;
    let version = storable_u64("parked", parked.version)?;
    let statement = client
        .prepare_cached(&sql.park)
        .await
        .map_err(store_error)?;
    client
        .execute(
            &statement,
            &[
                &parked.subscription,
                &position,
                &parked.event_id,
                &parked.stream_id,
                &version,
                &parked.event_type,
                &parked.error,
                &i64::from(parked.attempts),
                &parked.parked_at,
            ],
        )
        .await
        .map_err(store_error)?;
    Ok(())
}

/// The events `subscription` parked, in position order; a damaged row is
/// [`StoreError::Corrupt`], naming it.
pub(crate) async fn list(
    client: &ClientWrapper,
    sql: &ParkedSql,
    subscription: &str,
) -> Result<Vec<ParkedEvent>, StoreError> {
    storable_text(
        "subscription",
        || format!("name {subscription:?}"),
        subscription,
    )?;
    let statement = client
        .prepare_cached(&sql.list)
        .await
        .map_err(store_error)?;
    let rows = client
        .query(&statement, &[&subscription])
        .await
        .map_err(store_error)?;
    rows.iter().map(|row| read(row, subscription)).collect()
}

/// Removes the row of `subscription` at `position`; returns whether there was one.
pub(crate) async fn remove(
    client: &ClientWrapper,
    sql: &ParkedSql,
    subscription: &str,
    position: u64,
) -> Result<bool, StoreError> {
    storable_text(
        "subscription",
        || format!("name {subscription:?}"),
        subscription,
    )?;
    let Ok(position) = i64::try_from(position) else {
        return Ok(false); // past any position PostgreSQL holds: never parked
    };
    let statement = client
        .prepare_cached(&sql.remove)
        .await
        .map_err(store_error)?;
    let removed = client
        .execute(&statement, &[&subscription, &position])
        .await
        .map_err(store_error)?;
    Ok(removed > 0)
}

/// Every stored checkpoint as `(subscription, position)`, by name.
pub(crate) async fn checkpoints(
    client: &ClientWrapper,
    sql: &ParkedSql,
) -> Result<Vec<(String, u64)>, StoreError> {
    let statement = client
        .prepare_cached(&sql.checkpoints)
        .await
        .map_err(store_error)?;
    let rows = client.query(&statement, &[]).await.map_err(store_error)?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get(0).map_err(store_error)?;
            let position: i64 = row.try_get(1).map_err(store_error)?;
            let position = u64::try_from(position).map_err(|_| StoreError::Corrupt {
                stream_id: String::new(),
                version: 0,
                position: None,
                reason: format!("the checkpoint of subscription `{name}` is {position}"),
            })?;
            Ok((name, position))
        })
        .collect()
}

/// One row of `parked`, each column checked.
fn read(row: &Row, subscription: &str) -> Result<ParkedEvent, StoreError> {
    let damaged = |reason: String| StoreError::Corrupt {
        stream_id: String::new(),
        version: 0,
        position: None,
        reason: format!("a parked event of subscription `{subscription}` {reason}"),
    };
    let position: i64 = row.try_get(0).map_err(|e| damaged(e.to_string()))?;
    let at = |reason: String| damaged(format!("at position {position}: {reason}"));
    let unsigned = |value: i64, name: &str| {
        u64::try_from(value).map_err(|_| at(format!("{name} {value} is out of range")))
    };
    let version: i64 = row.try_get(3).map_err(|e| at(e.to_string()))?;
    let attempts: i64 = row.try_get(6).map_err(|e| at(e.to_string()))?;
    Ok(ParkedEvent {
        subscription: subscription.to_owned(),
        position: unsigned(position, "position")?,
        event_id: row.try_get::<_, Uuid>(1).map_err(|e| at(e.to_string()))?,
        stream_id: row.try_get(2).map_err(|e| at(e.to_string()))?,
        version: unsigned(version, "version")?,
        event_type: row.try_get(4).map_err(|e| at(e.to_string()))?,
        error: row.try_get(5).map_err(|e| at(e.to_string()))?,
        attempts: u32::try_from(attempts)
            .map_err(|_| at(format!("attempts {attempts} is out of range")))?,
        parked_at: row
            .try_get::<_, DateTime<Utc>>(7)
            .map_err(|e| at(e.to_string()))?,
    })
}
