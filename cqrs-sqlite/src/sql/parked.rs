//! Parked events (see `cqrs_core::parking`): one row per subscription and position in table
//! `parked`.

use crate::error::{store_error, SqliteError};
use crate::integer::{argument, convert};
use chrono::DateTime;
use cqrs_core::{ParkedEvent, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};
use uuid::Uuid;

/// Records `parked`, replacing the row of the same subscription and position.
pub(crate) fn park(conn: &Connection, parked: &ParkedEvent) -> Result<(), StoreError> {
    let position = argument(parked.position, "parked", "position")?;
    let version = argument(parked.version, "parked", "version")?;
    conn.prepare_cached(
        "INSERT INTO parked (subscription, position, event_id, stream_id, version, event_type,
                             error, attempts, parked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (subscription, position) DO UPDATE SET
             event_id = excluded.event_id, stream_id = excluded.stream_id,
             version = excluded.version, event_type = excluded.event_type,
             error = excluded.error, attempts = excluded.attempts,
             parked_at = excluded.parked_at",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            parked.subscription,
            position,
            parked.event_id.as_bytes().as_slice(),
            parked.stream_id,
            version,
            parked.event_type,
            parked.error,
            parked.attempts,
            parked.parked_at.timestamp_micros(),
        ])
    })
    .map(drop)
    .map_err(store_error)
}

/// The events `subscription` parked, in position order; a damaged row is
/// [`SqliteError::ParkedUnreadable`], naming it.
pub(crate) fn list(conn: &Connection, subscription: &str) -> Result<Vec<ParkedEvent>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT position, event_id, stream_id, version, event_type, error, attempts,
                    parked_at
             FROM parked WHERE subscription = ?1 ORDER BY position",
        )
        .map_err(store_error)?;
    let mut rows = statement.query([subscription]).map_err(store_error)?;
    let mut parked = Vec::new();
    while let Some(row) = rows.next().map_err(store_error)? {
        parked.push(read(row, subscription)?);
    }
    Ok(parked)
}

/// Removes the row of `subscription` at `position`; returns whether there was one.
pub(crate) fn remove(
    conn: &Connection,
    subscription: &str,
    position: u64,
) -> Result<bool, StoreError> {
    let Ok(position) = i64::try_from(position) else {
        return Ok(false); // past any position SQLite holds: never parked
    };
    let removed = conn
        .prepare_cached("DELETE FROM parked WHERE subscription = ?1 AND position = ?2")
        .and_then(|mut statement| statement.execute(params![subscription, position]))
        .map_err(store_error)?;
    Ok(removed > 0)
}

/// One row of `parked`, each column checked.
fn read(row: &Row<'_>, subscription: &str) -> Result<ParkedEvent, StoreError> {
    let raw_position = row.get_ref(0).map_err(store_error)?;
    let damaged = |reason: String| -> StoreError {
        SqliteError::ParkedUnreadable {
            subscription: subscription.to_owned(),
            position: match raw_position {
                ValueRef::Integer(n) => n.to_string(),
                other => kind(other).to_owned(),
            },
            reason,
        }
        .into()
    };
    let value = |index: usize| row.get_ref(index).map_err(store_error);
    let integer = |index: usize, name: &str| match value(index)? {
        ValueRef::Integer(n) => Ok(n),
        other => Err(damaged(format!(
            "{name} is {}, not an integer",
            kind(other)
        ))),
    };
    let text = |index: usize, name: &str| match value(index)? {
        ValueRef::Text(bytes) => {
            String::from_utf8(bytes.to_vec()).map_err(|_| damaged(format!("{name} is not UTF-8")))
        }
        other => Err(damaged(format!("{name} is {}, not text", kind(other)))),
    };
    let unsigned = |index: usize, name: &'static str| {
        convert(integer(index, name)?, name).map_err(|e| damaged(e.to_string()))
    };
    let event_id = match value(1)? {
        ValueRef::Blob(bytes) => Uuid::from_slice(bytes)
            .map_err(|_| damaged(format!("event_id is {} bytes, not 16", bytes.len())))?,
        other => return Err(damaged(format!("event_id is {}, not a blob", kind(other)))),
    };
    let micros = integer(7, "parked_at")?;
    Ok(ParkedEvent {
        subscription: subscription.to_owned(),
        position: unsigned(0, "position")?,
        event_id,
        stream_id: text(2, "stream_id")?,
        version: unsigned(3, "version")?,
        event_type: text(4, "event_type")?,
        error: text(5, "error")?,
        attempts: convert(integer(6, "attempts")?, "attempts")
            .map_err(|e| damaged(e.to_string()))?,
        parked_at: DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| damaged(format!("parked_at {micros} is out of range")))?,
    })
}

/// What kind of value a column holds, for errors.
fn kind(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}
