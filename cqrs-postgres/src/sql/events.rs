//! The event log's reads: statements, and rows checked and turned into events. A row that
//! cannot be read, and a stream whose versions are not 1..n, is `StoreError::Corrupt`,
//! naming stream, version and position as far as they can be read.

use crate::error::store_error;
use crate::sql::Names;
use chrono::{DateTime, Duration, Timelike, Utc};
use cqrs_core::backend::decode_metadata;
use cqrs_core::{Direction, EventFilter, EventRef, LogRead, RecordedEvent, StoreError, Visitor};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

/// The columns every read of events selects, in the order [`decode`] reads them.
const COLUMNS: &str =
    "position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at";

/// [`COLUMNS`] with a NULL for the metadata, which a visit does not hand over.
const VISIT_COLUMNS: &str =
    "position, stream_id, version, event_id, event_type, schema_version, payload, NULL::text, recorded_at";

/// The statements reading events, written for one store's schema.
#[derive(Debug)]
pub(crate) struct EventReads {
    stream_forward: String,
    stream_visit: String,
    log_visit: String,
    stream_backward: String,
    stream_version: String,
    log: [String; 6],
    by_id: String,
    position_at: String,
    head: String,
}

impl EventReads {
    pub(crate) fn new(names: &Names) -> Self {
        let s = &names.schema;
        let log = |direction: Direction, by: Option<&str>| {
            let (compare, order) = match direction {
                Direction::Forward => (">=", "ASC"),
                Direction::Backward => ("<=", "DESC"),
            };
            match by {
                None => format!(
                    "SELECT {COLUMNS} FROM {s}.events WHERE position {compare} $1 \
                     ORDER BY position {order} LIMIT $2"
                ),
                // One index range per type or category, in log order, merged: each read
                // stops after `limit` rows, however many other events lie between.
                Some(column) => {
                    let types = if column == "category" {
                        " AND ($4::text[] IS NULL OR event_type = ANY($4))"
                    } else {
                        ""
                    };
                    format!(
                        "SELECT e.* FROM unnest($3::text[]) AS wanted(key) CROSS JOIN LATERAL (\
                         SELECT {COLUMNS} FROM {s}.events \
                         WHERE {column} = wanted.key AND position {compare} $1{types} \
                         ORDER BY position {order} LIMIT $2) e \
                         ORDER BY e.position {order} LIMIT $2"
                    )
                }
            }
        };
        use Direction::{Backward, Forward};
        Self {
            stream_forward: format!(
                "SELECT {COLUMNS} FROM {s}.events WHERE stream_id = $1 AND version >= $2 \
                 ORDER BY version LIMIT $3"
            ),
            stream_visit: format!(
                "SELECT {VISIT_COLUMNS} FROM {s}.events WHERE stream_id = $1 AND version >= $2 \
                 ORDER BY version LIMIT $3"
            ),
            log_visit: format!(
                "SELECT {VISIT_COLUMNS} FROM {s}.events WHERE position >= $1 \
                 ORDER BY position LIMIT $2"
            ),
            stream_backward: format!(
                "SELECT {COLUMNS} FROM {s}.events WHERE stream_id = $1 AND version <= $2 \
                 ORDER BY version DESC LIMIT $3"
            ),
            stream_version: format!("SELECT max(version) FROM {s}.events WHERE stream_id = $1"),
            log: [
                log(Forward, None),
                log(Forward, Some("event_type")),
                log(Forward, Some("category")),
                log(Backward, None),
                log(Backward, Some("event_type")),
                log(Backward, Some("category")),
            ],
            by_id: format!(
                "SELECT {COLUMNS} FROM {s}.events WHERE event_id = ANY($1) ORDER BY position"
            ),
            position_at: format!(
                "SELECT position FROM {s}.events WHERE recorded_at >= $1 \
                 ORDER BY recorded_at, position LIMIT 1"
            ),
            head: format!("SELECT max(position) FROM {s}.events"),
        }
    }
}

/// A `u64` argument as PostgreSQL's `bigint`, clamped: no stored position or version is
/// larger, so a read from past `i64::MAX` reads what a read from `i64::MAX` reads.
pub(crate) fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A read limit as `bigint` (`usize::MAX`: everything).
fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

async fn query(
    client: &ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(store_error)?;
    client.query(&statement, params).await.map_err(store_error)
}

/// Up to `count` events of a stream from `from_version` on, checked to be versions in a
/// row (the first the one asked for).
pub(crate) async fn read_stream(
    client: &ClientWrapper,
    reads: &EventReads,
    stream_id: &str,
    from_version: u64,
    count: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let from = from_version.max(1);
    let rows = query(
        client,
        &reads.stream_forward,
        &[&stream_id, &clamp(from), &limit(count)],
    )
    .await?;
    let events = decode_all(&rows)?;
    check_versions(stream_id, &events, from, Direction::Forward)?;
    Ok(events)
}

/// Up to `count` events of a stream from `from_version` down, newest first, checked like
/// [`read_stream`]; the first is the one asked for unless the stream ends below it.
pub(crate) async fn read_stream_backward(
    client: &ClientWrapper,
    reads: &EventReads,
    stream_id: &str,
    from_version: u64,
    count: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = query(
        client,
        &reads.stream_backward,
        &[&stream_id, &clamp(from_version), &limit(count)],
    )
    .await?;
    let events = decode_all(&rows)?;
    let Some(first) = events.first() else {
        return Ok(events);
    };
    let mut top = first.version;
    if top < from_version {
        // Either the stream ends at `top`, or the versions above it are missing.
        let end = stream_version(client, reads, stream_id).await?.unwrap_or(0);
        top = end.min(from_version);
    }
    check_versions(stream_id, &events, top, Direction::Backward)?;
    if events.len() < count && events.last().is_some_and(|last| last.version != 1) {
        return Err(missing(stream_id, 1));
    }
    Ok(events)
}

/// The stream's highest version (`None`: never written).
pub(crate) async fn stream_version(
    client: &ClientWrapper,
    reads: &EventReads,
    stream_id: &str,
) -> Result<Option<u64>, StoreError> {
    let rows = query(client, &reads.stream_version, &[&stream_id]).await?;
    let version: Option<i64> = rows
        .first()
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(|error| corrupt_stream(stream_id, 0, format!("its version: {error}")))?
        .flatten();
    version
        .map(|version| {
            u64::try_from(version).map_err(|_| {
                corrupt_stream(stream_id, 0, format!("version {version} is not a version"))
            })
        })
        .transpose()
}

/// The events of the log `read` asks for (checked by the caller).
pub(crate) async fn read_log(
    client: &ClientWrapper,
    reads: &EventReads,
    read: &LogRead,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let from = match read.direction {
        Direction::Forward if i64::try_from(read.from).is_err() => return Ok(Vec::new()),
        _ => clamp(read.from),
    };
    let count = limit(read.limit);
    let base = match read.direction {
        Direction::Forward => 0,
        Direction::Backward => 3,
    };
    let filter: &EventFilter = &read.filter;
    let types: Option<Vec<&str>> = filter
        .event_types()
        .map(|types| types.iter().map(String::as_str).collect());
    let categories: Option<Vec<&str>> = filter
        .categories()
        .map(|categories| categories.iter().map(String::as_str).collect());
    let rows = match (&types, &categories) {
        (None, None) => query(client, &reads.log[base], &[&from, &count]).await?,
        (Some(types), None) => query(client, &reads.log[base + 1], &[&from, &count, types]).await?,
        (_, Some(categories)) => {
            let params: [&(dyn ToSql + Sync); 4] = [&from, &count, categories, &types];
            query(client, &reads.log[base + 2], &params).await?
        }
    };
    decode_all(&rows)
}

/// The stored events with these ids, in log order.
pub(crate) async fn read_by_id(
    client: &ClientWrapper,
    reads: &EventReads,
    ids: &[Uuid],
) -> Result<Vec<RecordedEvent>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = query(client, &reads.by_id, &[&ids]).await?;
    decode_all(&rows)
}

/// The first position recorded at or after `at`.
pub(crate) async fn position_at(
    client: &ClientWrapper,
    reads: &EventReads,
    at: DateTime<Utc>,
) -> Result<Option<u64>, StoreError> {
    let rows = query(client, &reads.position_at, &[&storable_instant(at)]).await?;
    rows.first()
        .map(|row| {
            let position: i64 = row.try_get(0).map_err(|error| StoreError::Corrupt {
                stream_id: String::new(),
                version: 0,
                position: None,
                reason: format!("a position cannot be read: {error}"),
            })?;
            u64::try_from(position).map_err(|_| StoreError::Corrupt {
                stream_id: String::new(),
                version: 0,
                position: None,
                reason: format!("position {position} is not a position"),
            })
        })
        .transpose()
}

/// The position of the last event of the log (0: none).
pub(crate) async fn head(client: &ClientWrapper, reads: &EventReads) -> Result<u64, StoreError> {
    let rows = query(client, &reads.head, &[]).await?;
    let head: Option<i64> = rows.first().and_then(|row| row.try_get(0).ok()).flatten();
    Ok(head.and_then(|head| u64::try_from(head).ok()).unwrap_or(0))
}

/// `at` as an instant PostgreSQL can hold, compared alike with stored times: rounded up to
/// the microsecond (stored times are whole microseconds, so `>= at` and `>= the round-up`
/// agree), and kept within years 1 to 9999 (every stored time lies within them).
fn storable_instant(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap_or(at);
    let ceiling = DateTime::<Utc>::from_timestamp(253_402_300_799, 0).unwrap_or(at);
    let at = at.clamp(floor, ceiling);
    let below = at.nanosecond() % 1_000;
    if below == 0 {
        at
    } else {
        at - Duration::nanoseconds(i64::from(below)) + Duration::microseconds(1)
    }
}

fn decode_all(rows: &[Row]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter().map(decode).collect()
}

/// Reads one row of [`COLUMNS`] as an owned event: [`decode_ref`] and the metadata.
pub(crate) fn decode(row: &Row) -> Result<RecordedEvent, StoreError> {
    let event = decode_ref(row)?;
    let metadata = row
        .try_get::<_, Option<&str>>(7)
        .map_err(|error| corrupt_at(&event, format!("its metadata cannot be read: {error}")))?
        .ok_or_else(|| corrupt_at(&event, "its metadata is NULL".to_owned()))?;
    let metadata = decode_metadata(metadata.as_bytes())
        .map_err(|error| corrupt_at(&event, format!("its metadata is not valid: {error}")))?;
    Ok(event.to_recorded(metadata))
}

fn corrupt_at(event: &EventRef<'_>, reason: String) -> StoreError {
    StoreError::Corrupt {
        stream_id: event.stream_id.to_owned(),
        version: event.version,
        position: Some(event.position),
        reason,
    }
}

/// Reads one row of [`COLUMNS`] (or [`VISIT_COLUMNS`]) borrowed, all but the metadata.
/// The position, stream and version are read first, so that any damage after them is
/// reported with them.
fn decode_ref(row: &Row) -> Result<EventRef<'_>, StoreError> {
    let position = row
        .try_get::<_, Option<i64>>(0)
        .ok()
        .flatten()
        .and_then(|position| u64::try_from(position).ok().filter(|p| *p > 0));
    let stream_id = row.try_get::<_, Option<&str>>(1).ok().flatten();
    let version = row
        .try_get::<_, Option<i64>>(2)
        .ok()
        .flatten()
        .and_then(|version| u64::try_from(version).ok().filter(|v| *v > 0));
    let corrupt = |reason: String| StoreError::Corrupt {
        stream_id: stream_id.unwrap_or_default().to_owned(),
        version: version.unwrap_or(0),
        position,
        reason,
    };
    let (Some(stream_id), Some(version), Some(position)) = (stream_id, version, position) else {
        let what = [
            (position.is_none(), "position"),
            (stream_id.is_none(), "stream id"),
            (version.is_none(), "version"),
        ]
        .iter()
        .filter(|(bad, _)| *bad)
        .map(|(_, what)| *what)
        .collect::<Vec<_>>()
        .join(", ");
        return Err(corrupt(format!("its {what} cannot be read as one")));
    };
    let column = |index: usize, name: &str| -> Result<&str, StoreError> {
        row.try_get::<_, Option<&str>>(index)
            .map_err(|error| corrupt(format!("its {name} cannot be read: {error}")))?
            .ok_or_else(|| corrupt(format!("its {name} is NULL")))
    };
    let event_id = row
        .try_get::<_, Option<Uuid>>(3)
        .map_err(|error| corrupt(format!("its event id cannot be read: {error}")))?
        .ok_or_else(|| corrupt("its event id is NULL".to_owned()))?;
    let event_type = column(4, "event type")?;
    let schema_version = row
        .try_get::<_, Option<i64>>(5)
        .map_err(|error| corrupt(format!("its schema version cannot be read: {error}")))?
        .ok_or_else(|| corrupt("its schema version is NULL".to_owned()))?;
    let schema_version = u32::try_from(schema_version)
        .map_err(|_| corrupt(format!("schema version {schema_version} is out of range")))?;
    let payload = column(6, "payload")?;
    let recorded_at = row
        .try_get::<_, Option<DateTime<Utc>>>(8)
        .map_err(|error| corrupt(format!("its recording time cannot be read: {error}")))?
        .ok_or_else(|| corrupt("its recording time is NULL".to_owned()))?;
    Ok(EventRef {
        stream_id,
        version,
        position,
        event_id,
        event_type,
        schema_version,
        payload,
        recorded_at,
    })
}

/// Visits up to `count` events of a stream from `from_version` on, decoded in place from
/// the rows (no owned event, no metadata), checked like [`read_stream`] as they go; how
/// many were visited.
pub(crate) async fn visit_stream(
    client: &ClientWrapper,
    reads: &EventReads,
    stream_id: &str,
    from_version: u64,
    count: usize,
    visit: &mut Visitor<'_>,
) -> Result<usize, StoreError> {
    let from = from_version.max(1);
    let rows = query(
        client,
        &reads.stream_visit,
        &[&stream_id, &clamp(from), &limit(count)],
    )
    .await?;
    let (mut visited, mut expected) = (0, from);
    for row in &rows {
        let event = decode_ref(row)?;
        if event.version != expected {
            return Err(missing(stream_id, expected));
        }
        // Saturating: a read from `u64::MAX` has no row, but the count must not overflow.
        expected = expected.saturating_add(1);
        visited += 1;
        if visit(event).is_break() {
            break;
        }
    }
    Ok(visited)
}

/// Visits the events of a forward read of the whole log (`read.filter` takes all), decoded
/// in place; `None` for any other read, which the caller makes as a plain read.
pub(crate) async fn visit_log(
    client: &ClientWrapper,
    reads: &EventReads,
    read: &LogRead,
    visit: &mut Visitor<'_>,
) -> Result<Option<usize>, StoreError> {
    if read.direction != Direction::Forward || !read.filter.is_all() {
        return Ok(None);
    }
    let Ok(from) = i64::try_from(read.from) else {
        return Ok(Some(0));
    };
    let rows = query(client, &reads.log_visit, &[&from, &limit(read.limit)]).await?;
    let mut visited = 0;
    for row in &rows {
        visited += 1;
        if visit(decode_ref(row)?).is_break() {
            break;
        }
    }
    Ok(Some(visited))
}

/// Checks that a stream read holds versions in a row from `first` (up, or down).
fn check_versions(
    stream_id: &str,
    events: &[RecordedEvent],
    first: u64,
    direction: Direction,
) -> Result<(), StoreError> {
    let mut expected = first;
    for event in events {
        if event.version != expected {
            return Err(missing(stream_id, expected));
        }
        expected = match direction {
            Direction::Forward => expected + 1,
            Direction::Backward => expected.saturating_sub(1),
        };
    }
    Ok(())
}

/// The `Corrupt` error of a version a stream lacks.
fn missing(stream_id: &str, version: u64) -> StoreError {
    corrupt_stream(
        stream_id,
        version,
        format!("version {version} is missing: the stream's stored versions are not 1..n"),
    )
}

fn corrupt_stream(stream_id: &str, version: u64, reason: String) -> StoreError {
    StoreError::Corrupt {
        stream_id: stream_id.to_owned(),
        version,
        position: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_up_to_the_microsecond_within_range() {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        assert_eq!(storable_instant(at), at);
        let above = at + Duration::nanoseconds(1);
        assert_eq!(storable_instant(above), at + Duration::microseconds(1));
        let below = at - Duration::nanoseconds(1);
        assert_eq!(storable_instant(below), at);
        assert_eq!(
            storable_instant(DateTime::<Utc>::MIN_UTC).timestamp(),
            -62_135_596_800
        );
        assert_eq!(
            storable_instant(DateTime::<Utc>::MAX_UTC).timestamp(),
            253_402_300_799
        );
    }
}
