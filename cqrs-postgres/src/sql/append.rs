//! One append transaction for a batch of appends, and the order it keeps.
//!
//! The global order: every append transaction takes its streams' advisory locks (in
//! ascending key order), then the store's append lock, *last*, and holds all of them until
//! it commits. Positions are the log's last position plus one, two, ..., read under the
//! append lock; `recorded_at` is the server's `clock_timestamp()` read under it too (never
//! before the last event's). PostgreSQL releases a transaction's locks only after its commit
//! is visible, so the next holder sees every earlier commit: positions grow in commit order,
//! every snapshot of the log is a prefix of it, and a reader paging by position never skips
//! an event that commits late. Positions are dense: a rolled-back transaction's positions
//! were never visible and are given again.
//!
//! A batch is checked and written in two round trips, each a pipeline of statements: the
//! locks and everything the checks need (stream versions, the last position, which of the
//! batch's event ids are taken), then, once every append of the batch was checked on its
//! own (in order, each seeing those before it), one insert of all accepted events and the
//! commit. Under the locks no other transaction can store an event, so a check made there
//! still holds at the insert: the insert cannot fail on a constraint, and an append refused
//! by its check leaves the others untouched, without a savepoint.

use crate::error::{store_error, PostgresError};
use crate::sql::{locks, Names};
use chrono::{DateTime, Utc};
use cqrs_core::{Appended, ExpectedVersion, NewEvent, StoreError};
use deadpool_postgres::ClientWrapper;
use std::collections::{HashMap, HashSet};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// One append of a batch.
#[derive(Debug)]
pub(crate) struct Request {
    /// The stream appended to (already validated).
    pub(crate) stream_id: String,
    /// The condition it is made under.
    pub(crate) expected: ExpectedVersion,
    /// The events, checked storable.
    pub(crate) events: Vec<NewEvent>,
}

/// The statements of an append transaction, written for one store's schema.
#[derive(Debug)]
pub(crate) struct AppendSql {
    lock_streams: String,
    stream_versions: String,
    lock_log: String,
    head: String,
    taken_ids: String,
    insert: String,
    notify: String,
    append_key: i64,
    schema: String,
    channel: String,
}

impl AppendSql {
    pub(crate) fn new(names: &Names) -> Self {
        let s = &names.schema;
        Self {
            lock_streams: "SELECT pg_advisory_xact_lock(key) FROM unnest($1::int8[]) AS u(key)"
                .to_owned(),
            stream_versions: format!(
                "SELECT stream_id, max(version) FROM {s}.events \
                 WHERE stream_id = ANY($1) GROUP BY stream_id"
            ),
            lock_log: "SELECT pg_advisory_xact_lock($1)".to_owned(),
            head: format!(
                "SELECT last.position, greatest(last.recorded_at, clock_timestamp()) \
                 FROM (SELECT NULL) AS one LEFT JOIN (SELECT position, recorded_at \
                 FROM {s}.events ORDER BY position DESC LIMIT 1) AS last ON true"
            ),
            taken_ids: format!("SELECT event_id FROM {s}.events WHERE event_id = ANY($1)"),
            insert: format!(
                "INSERT INTO {s}.events (position, stream_id, version, event_id, event_type, \
                 schema_version, payload, metadata, recorded_at) \
                 SELECT u.*, $9::timestamptz FROM unnest($1::int8[], $2::text[], $3::int8[], \
                 $4::uuid[], $5::text[], $6::int8[], $7::text[], $8::text[]) AS u"
            ),
            notify: "SELECT pg_notify($1, $2)".to_owned(),
            append_key: locks::append_key(&names.schema_name),
            schema: names.schema_name.clone(),
            channel: names.channel().to_owned(),
        }
    }
}

/// What a batch that failed as a whole did: nothing was stored, or nobody can tell.
#[derive(Debug)]
pub(crate) enum BatchFailure {
    /// The transaction did not commit.
    NotStored(StoreError),
    /// The connection broke while the commit was on its way.
    Unknown(String),
}

/// What the checks decided for one append.
enum Decision {
    Refused(StoreError),
    /// Accepted, taking the stream to this version.
    Accepted {
        version: u64,
    },
}

/// The columns of the batch's one insert.
#[derive(Default)]
struct Rows {
    positions: Vec<i64>,
    streams: Vec<String>,
    versions: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<String>,
    schema_versions: Vec<i64>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

/// Appends each request of the batch or refuses it, in one transaction; returns one
/// outcome per request (in order), and the last position stored, if any.
pub(crate) async fn append_batch(
    client: &ClientWrapper,
    sql: &AppendSql,
    notify: bool,
    requests: Vec<Request>,
) -> Result<(Vec<Result<Appended, StoreError>>, Option<u64>), BatchFailure> {
    let known = read_under_locks(client, sql, &requests).await;
    let (versions, head, recorded_at, taken) = match known {
        Ok(known) => known,
        Err(error) => {
            rollback(client).await;
            return Err(BatchFailure::NotStored(error));
        }
    };
    let mut rows = Rows::default();
    let decisions = decide(&requests, versions, head, &taken, &mut rows);
    let decisions = match decisions {
        Ok(decisions) => decisions,
        Err(error) => {
            rollback(client).await;
            return Err(BatchFailure::NotStored(error));
        }
    };
    let last = rows.positions.last().copied();
    match last {
        None => rollback(client).await,
        Some(last) => write_and_commit(client, sql, notify, &rows, recorded_at, last).await?,
    }
    let mut next = head;
    let outcomes = requests
        .into_iter()
        .zip(decisions)
        .map(|(request, decision)| match decision {
            Decision::Refused(error) => Err(error),
            Decision::Accepted { version } => {
                let first = version - request.events.len() as u64;
                let events = (first + 1..)
                    .zip(request.events)
                    .map(|(version, event)| {
                        next += 1;
                        event.into_recorded(&request.stream_id, version, next, recorded_at)
                    })
                    .collect();
                Ok(Appended { version, events })
            }
        })
        .collect();
    let last = last.and_then(|last| u64::try_from(last).ok());
    Ok((outcomes, last))
}

/// The one parameter of a statement.
type Param<'a> = [&'a (dyn ToSql + Sync); 1];

type Known = (HashMap<String, u64>, u64, DateTime<Utc>, HashSet<Uuid>);

/// Takes the locks (streams, then the log) and reads what the checks need: each stream's
/// version, the log's last position and the time to record at, and the taken event ids.
async fn read_under_locks(
    client: &ClientWrapper,
    sql: &AppendSql,
    requests: &[Request],
) -> Result<Known, StoreError> {
    let (lock_streams, stream_versions, lock_log, head, taken_ids) = futures_util::try_join!(
        client.prepare_cached(&sql.lock_streams),
        client.prepare_cached(&sql.stream_versions),
        client.prepare_cached(&sql.lock_log),
        client.prepare_cached(&sql.head),
        client.prepare_cached(&sql.taken_ids),
    )
    .map_err(store_error)?;
    let mut keys: Vec<i64> = requests
        .iter()
        .map(|r| locks::stream_key(&sql.schema, &r.stream_id))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let streams: Vec<&str> = requests
        .iter()
        .map(|r| r.stream_id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id))
        .collect();
    // One pipeline: the server runs each statement after the one before it, so every read
    // is made once the locks before it are held.
    let (keys, streams, key, ids): (Param, Param, Param, Param) =
        ([&keys], [&streams], [&sql.append_key], [&ids]);
    let (_, _, versions, _, head, taken) = futures_util::try_join!(
        client.batch_execute("BEGIN"),
        client.execute(&lock_streams, &keys),
        client.query(&stream_versions, &streams),
        client.execute(&lock_log, &key),
        client.query_one(&head, &[]),
        client.query(&taken_ids, &ids),
    )
    .map_err(store_error)?;
    let mut by_stream = HashMap::new();
    for row in &versions {
        let stream: String = row.try_get(0).map_err(store_error)?;
        let version: i64 = row.try_get(1).map_err(store_error)?;
        let version = u64::try_from(version).map_err(|_| StoreError::Corrupt {
            stream_id: stream.clone(),
            version: 0,
            position: None,
            reason: format!("its highest version {version} is not a version"),
        })?;
        by_stream.insert(stream, version);
    }
    let last: Option<i64> = head.try_get(0).map_err(store_error)?;
    let last = u64::try_from(last.unwrap_or(0)).map_err(|_| StoreError::Corrupt {
        stream_id: String::new(),
        version: 0,
        position: None,
        reason: "the log's last position is not a position".to_owned(),
    })?;
    let recorded_at: DateTime<Utc> = head.try_get(1).map_err(store_error)?;
    let taken = taken
        .iter()
        .map(|row| row.try_get::<_, Uuid>(0))
        .collect::<Result<_, _>>()
        .map_err(store_error)?;
    Ok((by_stream, last, recorded_at, taken))
}

/// Checks each request in order against the versions and ids as the requests before it
/// left them, and lays out the accepted events' rows.
fn decide(
    requests: &[Request],
    mut versions: HashMap<String, u64>,
    head: u64,
    taken: &HashSet<Uuid>,
    rows: &mut Rows,
) -> Result<Vec<Decision>, StoreError> {
    let mut position = head;
    let mut added: HashSet<Uuid> = HashSet::new();
    let mut decisions = Vec::with_capacity(requests.len());
    for request in requests {
        let stream = &request.stream_id;
        let current = versions.get(stream).copied();
        if let Err(error) = request.expected.check(stream, current) {
            decisions.push(Decision::Refused(error));
            continue;
        }
        let mut own = HashSet::new();
        let duplicate = request
            .events
            .iter()
            .map(|e| e.event_id)
            .find(|id| !own.insert(*id) || taken.contains(id) || added.contains(id));
        if let Some(event_id) = duplicate {
            decisions.push(Decision::Refused(StoreError::DuplicateEventId {
                stream_id: stream.clone(),
                event_id,
            }));
            continue;
        }
        let mut version = current.unwrap_or(0);
        for event in &request.events {
            version += 1;
            position += 1;
            rows.positions.push(bigint("a position", position)?);
            rows.streams.push(stream.clone());
            rows.versions.push(bigint("a version", version)?);
            rows.ids.push(event.event_id);
            rows.types.push(event.event_type.clone());
            rows.schema_versions.push(i64::from(event.schema_version));
            rows.payloads.push(event.payload.clone());
            rows.metadata
                .push(serde_json::to_string(&event.metadata).map_err(|error| {
                    PostgresError::Unstorable {
                        what: format!("the metadata of event {}", event.event_id),
                        reason: error.to_string(),
                    }
                })?);
        }
        added.extend(own);
        if !request.events.is_empty() {
            versions.insert(stream.clone(), version);
        }
        decisions.push(Decision::Accepted { version });
    }
    Ok(decisions)
}

fn bigint(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        PostgresError::Unstorable {
            what: what.to_owned(),
            reason: format!("{value} is larger than PostgreSQL's bigint holds"),
        }
        .into()
    })
}

/// Inserts the rows, notifies, and commits, in one pipeline.
async fn write_and_commit(
    client: &ClientWrapper,
    sql: &AppendSql,
    notify: bool,
    rows: &Rows,
    recorded_at: DateTime<Utc>,
    last: i64,
) -> Result<(), BatchFailure> {
    let prepared = futures_util::try_join!(
        client.prepare_cached(&sql.insert),
        client.prepare_cached(&sql.notify),
    );
    let (insert, notify_statement) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            rollback(client).await;
            return Err(BatchFailure::NotStored(store_error(error)));
        }
    };
    let last = last.to_string();
    let written = async {
        client
            .execute(
                &insert,
                &[
                    &rows.positions,
                    &rows.streams,
                    &rows.versions,
                    &rows.ids,
                    &rows.types,
                    &rows.schema_versions,
                    &rows.payloads,
                    &rows.metadata,
                    &recorded_at,
                ],
            )
            .await
    };
    let notified = async {
        if notify {
            client
                .execute(&notify_statement, &[&sql.channel, &last])
                .await?;
        }
        Ok(())
    };
    let result = futures_util::try_join!(written, notified, client.batch_execute("COMMIT"));
    match result {
        Ok(_) => Ok(()),
        Err(error) if error.as_db_error().is_some() => {
            // The server refused a statement: the transaction is aborted (its COMMIT, if it
            // ran, rolled back), or the commit itself failed. Nothing was stored.
            rollback(client).await;
            Err(BatchFailure::NotStored(store_error(error)))
        }
        Err(error) => Err(BatchFailure::Unknown(error.to_string())),
    }
}

/// Ends the transaction without storing anything; if that fails the connection is broken,
/// and the pool drops it.
async fn rollback(client: &ClientWrapper) {
    if let Err(error) = client.batch_execute("ROLLBACK").await {
        tracing::warn!(%error, "rolling back an append transaction failed");
    }
}

impl BatchFailure {
    /// The error each append of the failed batch reports, given their streams: the first
    /// gets the error itself, the others copies.
    pub(crate) fn into_errors<'a>(
        self,
        streams: impl IntoIterator<Item = &'a str>,
    ) -> Vec<StoreError> {
        let mut original = None;
        let mut errors: Vec<StoreError> = streams
            .into_iter()
            .map(|stream_id| match &self {
                BatchFailure::NotStored(error) => copy_error(error),
                BatchFailure::Unknown(reason) => PostgresError::OutcomeUnknown {
                    stream_id: stream_id.to_owned(),
                    reason: reason.clone(),
                }
                .into(),
            })
            .collect();
        if let BatchFailure::NotStored(error) = self {
            original = Some(error);
        }
        if let (Some(first), Some(error)) = (errors.first_mut(), original) {
            *first = error;
        }
        errors
    }
}

/// A copy of a batch's error for each of its appends (`StoreError` is not `Clone`: the
/// kinds callers match on are kept, a backend error becomes its message).
fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Busy { reason } => StoreError::Busy {
            reason: reason.clone(),
        },
        StoreError::Corrupt {
            stream_id,
            version,
            position,
            reason,
        } => StoreError::Corrupt {
            stream_id: stream_id.clone(),
            version: *version,
            position: *position,
            reason: reason.clone(),
        },
        StoreError::Backend(inner) => StoreError::Backend(inner.to_string().into()),
        other => StoreError::Backend(other.to_string().into()),
    }
}
