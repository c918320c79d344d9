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
//! A batch is made of units, each committed whole or refused whole: a plain append is a
//! unit of one append; a [`TrackingStore`](cqrs_core::TrackingStore) batch is a unit of
//! several appends and a subscription's checkpoint. A batch is checked and written in two
//! round trips, each a pipeline of statements: the locks and everything the checks need
//! (stream versions, the last position, which of the batch's event ids are taken, the
//! tracked checkpoints, read `FOR UPDATE`), then, once every unit was checked on its own
//! (in order, each seeing those before it), one insert of all accepted events, the
//! checkpoints and the commit. Under the locks no other transaction can store an event, so
//! a check made there still holds at the insert: the insert cannot fail on a constraint,
//! and a unit refused by its check leaves the others untouched, without a savepoint.
//!
//! A unit may also remove a subscription's parked event (a retried reaction,
//! `TrackingStore::append_batch_unparking`): its entry is read `FOR UPDATE` with the rest,
//! so that a plain `unpark` waits for the batch, the unit is refused with
//! `StoreError::NotParked` when the entry is gone (or a unit before it in the batch took
//! it), and the entry is deleted in the commit pipeline with the events.
//!
//! With inline projections, each accepted unit is inserted and projected in a savepoint of
//! its own, one after the other: a projection failing refuses that unit only (rolled back
//! to its savepoint), and the units after it are checked and given positions as if it had
//! never been, so positions stay dense and versions 1..n.

use crate::error::{store_error, PostgresError};
use crate::projection::AnyProjection;
use crate::sql::{locks, Names};
use chrono::{DateTime, Utc};
use cqrs_core::parking::not_parked;
use cqrs_core::tracking::{check_passed, Tracking};
use cqrs_core::{Appended, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use deadpool_postgres::ClientWrapper;
use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// One append of a unit.
#[derive(Debug)]
pub(crate) struct Request {
    /// The stream appended to (already validated).
    pub(crate) stream_id: String,
    /// The condition it is made under.
    pub(crate) expected: ExpectedVersion,
    /// The events, checked storable.
    pub(crate) events: Vec<NewEvent>,
}

/// Appends committed together or not at all, with the checkpoint they record, if any.
#[derive(Debug)]
pub(crate) struct Unit {
    /// The appends, made in this order.
    pub(crate) appends: Vec<Request>,
    /// The checkpoint committed with them (its position checked not 0).
    pub(crate) tracking: Option<Tracking>,
    /// The parked event (subscription, position) removed with them: the unit is refused
    /// if it is not parked (its position checked to fit a `bigint`).
    pub(crate) unpark: Option<(String, u64)>,
}

impl Unit {
    /// What the unit's errors name: its first stream, else its subscription.
    pub(crate) fn label(&self) -> String {
        match (self.appends.first(), &self.tracking) {
            (Some(append), _) => append.stream_id.clone(),
            (None, Some(tracking)) => format!("(checkpoint of `{}`)", tracking.subscription),
            (None, None) => match &self.unpark {
                Some((subscription, position)) => {
                    format!("(event parked by `{subscription}` at {position})")
                }
                None => String::new(),
            },
        }
    }

    /// How many events the unit appends.
    pub(crate) fn events(&self) -> usize {
        self.appends.iter().map(|a| a.events.len()).sum()
    }
}

/// The outcome of one unit: each append's outcome, or the unit's refusal.
pub(crate) type Outcome = Result<Vec<Appended>, StoreError>;

/// The statements of an append transaction, written for one store's schema.
#[derive(Debug)]
pub(crate) struct AppendSql {
    lock_streams: String,
    stream_versions: String,
    lock_log: String,
    head: String,
    taken_ids: String,
    checkpoints: String,
    parked: String,
    insert: String,
    save_checkpoints: String,
    unpark: String,
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
            checkpoints: format!(
                "SELECT subscription, position FROM {s}.checkpoints \
                 WHERE subscription = ANY($1) FOR UPDATE"
            ),
            // A superset of the entries asked for (each name with each position), locked.
            parked: format!(
                "SELECT subscription, position FROM {s}.parked \
                 WHERE subscription = ANY($1) AND position = ANY($2) FOR UPDATE"
            ),
            insert: format!(
                "INSERT INTO {s}.events (position, stream_id, version, event_id, event_type, \
                 schema_version, payload, metadata, recorded_at) \
                 SELECT u.*, $9::timestamptz FROM unnest($1::int8[], $2::text[], $3::int8[], \
                 $4::uuid[], $5::text[], $6::int8[], $7::text[], $8::text[]) AS u"
            ),
            save_checkpoints: format!(
                "INSERT INTO {s}.checkpoints (subscription, position, updated_at) \
                 SELECT u.*, clock_timestamp() FROM unnest($1::text[], $2::int8[]) AS u \
                 ON CONFLICT (subscription) DO UPDATE SET \
                 position = excluded.position, updated_at = excluded.updated_at"
            ),
            unpark: format!(
                "DELETE FROM {s}.parked AS p USING unnest($1::text[], $2::int8[]) AS u(s, n) \
                 WHERE p.subscription = u.s AND p.position = u.n"
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

/// The columns of an insert.
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

impl Rows {
    /// Moves `other`'s rows to the end of these.
    fn take(&mut self, other: &mut Rows) {
        self.positions.append(&mut other.positions);
        self.streams.append(&mut other.streams);
        self.versions.append(&mut other.versions);
        self.ids.append(&mut other.ids);
        self.types.append(&mut other.types);
        self.schema_versions.append(&mut other.schema_versions);
        self.payloads.append(&mut other.payloads);
        self.metadata.append(&mut other.metadata);
    }
}

/// The log as the checks see it: as stored, plus the units of the batch accepted so far.
struct Log {
    versions: HashMap<String, u64>,
    taken: HashSet<Uuid>,
    checkpoints: HashMap<String, u64>,
    /// The parked events the batch's units remove that are (still) parked.
    parked: HashSet<(String, u64)>,
    position: u64,
}

/// An accepted unit: its rows, and what it changes in the [`Log`].
struct Plan {
    rows: Rows,
    /// Each stream's version after the unit.
    versions: Vec<(String, u64)>,
    /// Each append's version after it.
    appended: Vec<u64>,
    ids: Vec<Uuid>,
    checkpoint: Option<(String, u64)>,
    unparked: Option<(String, u64)>,
    position: u64,
}

impl Log {
    /// Checks `unit` against the log (its appends in order, each seeing those before it)
    /// and lays out its rows, changing nothing.
    fn plan(&self, unit: &Unit) -> Result<Plan, StoreError> {
        if let Some((subscription, position)) = &unit.unpark {
            if !self.parked.contains(&(subscription.clone(), *position)) {
                return Err(not_parked(subscription, *position));
            }
        }
        let checkpoint = match &unit.tracking {
            Some(tracking) => {
                let stored = self.checkpoints.get(&tracking.subscription);
                check_passed(tracking, stored.copied().unwrap_or(0))?;
                Some((tracking.subscription.clone(), tracking.position))
            }
            None => None,
        };
        let mut versions: HashMap<&str, u64> = HashMap::new();
        let mut own: HashSet<Uuid> = HashSet::new();
        let mut appended = Vec::with_capacity(unit.appends.len());
        for append in &unit.appends {
            let stream = append.stream_id.as_str();
            let current = versions
                .get(stream)
                .or_else(|| self.versions.get(stream))
                .copied();
            append.expected.check(stream, current)?;
            for event in &append.events {
                let id = event.event_id;
                if !own.insert(id) || self.taken.contains(&id) {
                    return Err(StoreError::DuplicateEventId {
                        stream_id: stream.to_owned(),
                        event_id: id,
                    });
                }
            }
            let version = current.unwrap_or(0) + append.events.len() as u64;
            if !append.events.is_empty() {
                versions.insert(stream, version);
            }
            appended.push(version);
        }
        let mut rows = Rows::default();
        let mut position = self.position;
        for (append, version) in unit.appends.iter().zip(&appended) {
            let first = version - append.events.len() as u64;
            for (version, event) in (first + 1..).zip(&append.events) {
                position += 1;
                rows.positions.push(bigint("a position", position)?);
                rows.streams.push(append.stream_id.clone());
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
        }
        Ok(Plan {
            rows,
            versions: versions
                .into_iter()
                .map(|(stream, version)| (stream.to_owned(), version))
                .collect(),
            appended,
            ids: own.into_iter().collect(),
            checkpoint,
            unparked: unit.unpark.clone(),
            position,
        })
    }

    /// Takes an accepted unit's changes in.
    fn accept(&mut self, plan: &mut Plan) {
        self.versions.extend(plan.versions.drain(..));
        self.taken.extend(plan.ids.drain(..));
        if let Some((subscription, position)) = plan.checkpoint.clone() {
            self.checkpoints.insert(subscription, position);
        }
        if let Some(key) = &plan.unparked {
            self.parked.remove(key);
        }
        self.position = plan.position;
    }
}

/// What the batch commits besides the events: the accepted units' checkpoints, or the
/// parked events they remove (the same columns).
#[derive(Default)]
struct Checkpoints {
    subscriptions: Vec<String>,
    positions: Vec<i64>,
}

/// Commits each unit of the batch or refuses it, in one transaction, running the inline
/// `projections` on every event appended; returns one outcome per unit (in order), and the
/// last position stored, if any.
pub(crate) async fn append_batch(
    client: &ClientWrapper,
    sql: &AppendSql,
    notify: bool,
    projections: &[Arc<dyn AnyProjection>],
    units: Vec<Unit>,
) -> Result<(Vec<Outcome>, Option<u64>), BatchFailure> {
    let known = read_under_locks(client, sql, &units).await;
    let (mut log, recorded_at) = match known {
        Ok(known) => known,
        Err(error) => {
            rollback(client).await;
            return Err(BatchFailure::NotStored(error));
        }
    };
    let head = log.position;
    let mut rows = Rows::default();
    let mut tracked = Checkpoints::default();
    let mut unparked = Checkpoints::default();
    let mut outcomes = Vec::with_capacity(units.len());
    for unit in units {
        let mut plan = match log.plan(&unit) {
            Ok(plan) => plan,
            Err(error) => {
                outcomes.push(Err(error));
                continue;
            }
        };
        let appended = recorded(unit, &plan, log.position, recorded_at);
        if !projections.is_empty() {
            match project(client, sql, projections, &plan.rows, &appended, recorded_at).await {
                Ok(Ok(())) => {}
                Ok(Err(refusal)) => {
                    outcomes.push(Err(refusal));
                    continue;
                }
                Err(failure) => {
                    rollback(client).await;
                    return Err(BatchFailure::NotStored(failure));
                }
            }
        } else {
            rows.take(&mut plan.rows);
        }
        if let Some((subscription, position)) = &plan.checkpoint {
            tracked.record(subscription, *position);
        }
        if let Some((subscription, position)) = &plan.unparked {
            // Once per entry: the log forgets it once a unit takes it.
            unparked.push(subscription, *position);
        }
        log.accept(&mut plan);
        outcomes.push(Ok(appended));
    }
    let last = (log.position > head).then_some(log.position);
    if last.is_none() && tracked.subscriptions.is_empty() && unparked.subscriptions.is_empty() {
        rollback(client).await;
    } else {
        let written = Written {
            rows: &rows,
            checkpoints: &tracked,
            unparked: &unparked,
        };
        write_and_commit(client, sql, notify, written, recorded_at, last).await?;
    }
    Ok((outcomes, last))
}

impl Checkpoints {
    /// Adds the parked event of `subscription` at `position` (checked to fit a `bigint`).
    fn push(&mut self, subscription: &str, position: u64) {
        self.subscriptions.push(subscription.to_owned());
        self.positions
            .push(i64::try_from(position).unwrap_or(i64::MAX));
    }

    /// Records `subscription`'s new checkpoint; a later unit's replaces an earlier one's (one
    /// upsert cannot change a row twice).
    fn record(&mut self, subscription: &str, position: u64) {
        // Checked not past `i64::MAX` before the batch was queued.
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        match self.subscriptions.iter().position(|s| s == subscription) {
            Some(index) => self.positions[index] = position,
            None => {
                self.subscriptions.push(subscription.to_owned());
                self.positions.push(position);
            }
        }
    }
}

/// The outcome of an accepted unit: its events as stored.
fn recorded(
    unit: Unit,
    plan: &Plan,
    mut position: u64,
    recorded_at: DateTime<Utc>,
) -> Vec<Appended> {
    unit.appends
        .into_iter()
        .zip(&plan.appended)
        .map(|(append, &version)| {
            let first = version - append.events.len() as u64;
            let events = (first + 1..)
                .zip(append.events)
                .map(|(version, event)| {
                    position += 1;
                    event.into_recorded(&append.stream_id, version, position, recorded_at)
                })
                .collect();
            Appended { version, events }
        })
        .collect()
}

/// Inserts an accepted unit's rows and runs the inline projections on its events, in a
/// savepoint: `Ok(Err(refusal))` when a projection failed (the savepoint rolled back, the
/// rest of the batch intact), `Err` when the transaction itself failed.
async fn project(
    client: &ClientWrapper,
    sql: &AppendSql,
    projections: &[Arc<dyn AnyProjection>],
    rows: &Rows,
    appended: &[Appended],
    recorded_at: DateTime<Utc>,
) -> Result<Result<(), StoreError>, StoreError> {
    client
        .batch_execute("SAVEPOINT unit")
        .await
        .map_err(store_error)?;
    if !rows.positions.is_empty() {
        insert(client, sql, rows, recorded_at)
            .await
            .map_err(store_error)?;
    }
    let events = appended.iter().flat_map(|a| a.events.iter());
    let projected = run_projections(client, projections, events).await;
    let end = if projected.is_ok() {
        "RELEASE SAVEPOINT unit"
    } else {
        "ROLLBACK TO SAVEPOINT unit"
    };
    client.batch_execute(end).await.map_err(store_error)?;
    Ok(projected)
}

/// Runs every projection on each of `events`, in order; stops at the first failure.
pub(crate) async fn run_projections<P>(
    client: &tokio_postgres::Client,
    projections: &[P],
    events: impl Iterator<Item = &RecordedEvent> + Send,
) -> Result<(), StoreError>
where
    P: Deref<Target = dyn AnyProjection> + Sync,
{
    for event in events {
        for projection in projections {
            projection.project(client, event).await?;
        }
    }
    Ok(())
}

/// The one parameter of a statement.
type Param<'a> = [&'a (dyn ToSql + Sync); 1];

/// Takes the locks (streams, then the log) and reads what the checks need: each stream's
/// version, the log's last position and the time to record at, the taken event ids and the
/// tracked subscriptions' checkpoints (locked until the commit).
async fn read_under_locks(
    client: &ClientWrapper,
    sql: &AppendSql,
    units: &[Unit],
) -> Result<(Log, DateTime<Utc>), StoreError> {
    let (lock_streams, stream_versions, lock_log, head, taken_ids, checkpoints, parked) =
        futures_util::try_join!(
            client.prepare_cached(&sql.lock_streams),
            client.prepare_cached(&sql.stream_versions),
            client.prepare_cached(&sql.lock_log),
            client.prepare_cached(&sql.head),
            client.prepare_cached(&sql.taken_ids),
            client.prepare_cached(&sql.checkpoints),
            client.prepare_cached(&sql.parked),
        )
        .map_err(store_error)?;
    let appends = || units.iter().flat_map(|u| u.appends.iter());
    let mut keys: Vec<i64> = appends()
        .map(|r| locks::stream_key(&sql.schema, &r.stream_id))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let streams: Vec<&str> = appends()
        .map(|r| r.stream_id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<Uuid> = appends()
        .flat_map(|r| r.events.iter().map(|e| e.event_id))
        .collect();
    let subscriptions: Vec<&str> = units
        .iter()
        .filter_map(|u| u.tracking.as_ref())
        .map(|t| t.subscription.as_str())
        .collect();
    let unparks = || units.iter().filter_map(|u| u.unpark.as_ref());
    let unpark_names: Vec<&str> = unparks().map(|(name, _)| name.as_str()).collect();
    let unpark_positions: Vec<i64> = unparks()
        .map(|(_, position)| i64::try_from(*position).unwrap_or(i64::MAX))
        .collect();
    let unpark_keys: [&(dyn ToSql + Sync); 2] = [&unpark_names, &unpark_positions];
    // One pipeline: the server runs each statement after the one before it, so every read
    // is made once the locks before it are held.
    let (keys, streams, key, ids, subscriptions): (Param, Param, Param, Param, Param) = (
        [&keys],
        [&streams],
        [&sql.append_key],
        [&ids],
        [&subscriptions],
    );
    let tracked = async {
        if units.iter().any(|u| u.tracking.is_some()) {
            client.query(&checkpoints, &subscriptions).await
        } else {
            Ok(Vec::new())
        }
    };
    let still_parked = async {
        if unpark_names.is_empty() {
            Ok(Vec::new())
        } else {
            client.query(&parked, &unpark_keys).await
        }
    };
    let (_, _, versions, _, head, taken, tracked, still_parked) = futures_util::try_join!(
        client.batch_execute("BEGIN"),
        client.execute(&lock_streams, &keys),
        client.query(&stream_versions, &streams),
        client.execute(&lock_log, &key),
        client.query_one(&head, &[]),
        client.query(&taken_ids, &ids),
        tracked,
        still_parked,
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
    let mut checkpoints = HashMap::new();
    for row in &tracked {
        let subscription: String = row.try_get(0).map_err(store_error)?;
        let position: i64 = row.try_get(1).map_err(store_error)?;
        let position = u64::try_from(position).map_err(|_| StoreError::Corrupt {
            stream_id: String::new(),
            version: 0,
            position: None,
            reason: format!("the checkpoint of subscription `{subscription}` is {position}"),
        })?;
        checkpoints.insert(subscription, position);
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
    let mut parked = HashSet::new();
    for row in &still_parked {
        let subscription: String = row.try_get(0).map_err(store_error)?;
        let position: i64 = row.try_get(1).map_err(store_error)?;
        // A position out of range is no entry a unit asked for (they are checked positive).
        if let Ok(position) = u64::try_from(position) {
            parked.insert((subscription, position));
        }
    }
    let log = Log {
        versions: by_stream,
        taken,
        checkpoints,
        parked,
        position: last,
    };
    Ok((log, recorded_at))
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

/// Inserts `rows`.
async fn insert(
    client: &ClientWrapper,
    sql: &AppendSql,
    rows: &Rows,
    recorded_at: DateTime<Utc>,
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(&sql.insert).await?;
    client
        .execute(
            &statement,
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
}

/// What a batch's commit writes.
struct Written<'a> {
    /// The accepted events (none if the projections' savepoints inserted them).
    rows: &'a Rows,
    /// The tracked checkpoints.
    checkpoints: &'a Checkpoints,
    /// The parked events removed.
    unparked: &'a Checkpoints,
}

/// Inserts the rows (unless the projections' savepoints did), records the checkpoints,
/// removes the parked events retried, notifies, and commits, in one pipeline.
async fn write_and_commit(
    client: &ClientWrapper,
    sql: &AppendSql,
    notify: bool,
    written: Written<'_>,
    recorded_at: DateTime<Utc>,
    last: Option<u64>,
) -> Result<(), BatchFailure> {
    let Written {
        rows,
        checkpoints,
        unparked,
    } = written;
    let prepared = futures_util::try_join!(
        client.prepare_cached(&sql.insert),
        client.prepare_cached(&sql.save_checkpoints),
        client.prepare_cached(&sql.unpark),
        client.prepare_cached(&sql.notify),
    );
    let (insert, save_checkpoints, unpark, notify_statement) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            rollback(client).await;
            return Err(BatchFailure::NotStored(store_error(error)));
        }
    };
    let written = async {
        if !rows.positions.is_empty() {
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
                .await?;
        }
        Ok::<_, tokio_postgres::Error>(())
    };
    let tracked = async {
        if !checkpoints.subscriptions.is_empty() {
            client
                .execute(
                    &save_checkpoints,
                    &[&checkpoints.subscriptions, &checkpoints.positions],
                )
                .await?;
        }
        Ok::<_, tokio_postgres::Error>(())
    };
    let removed = async {
        if !unparked.subscriptions.is_empty() {
            client
                .execute(&unpark, &[&unparked.subscriptions, &unparked.positions])
                .await?;
        }
        Ok::<_, tokio_postgres::Error>(())
    };
    let notified = async {
        if let (true, Some(last)) = (notify, last) {
            client
                .execute(&notify_statement, &[&sql.channel, &last.to_string()])
                .await?;
        }
        Ok::<_, tokio_postgres::Error>(())
    };
    let (written, tracked, removed, notified, committed) = futures_util::join!(
        written,
        tracked,
        removed,
        notified,
        client.batch_execute("COMMIT")
    );
    match settle([written, tracked, removed, notified], committed) {
        Settled::Committed => Ok(()),
        Settled::NotStored(error) => {
            rollback(client).await;
            Err(BatchFailure::NotStored(store_error(error)))
        }
        Settled::Unknown(error) => Err(BatchFailure::Unknown(error.to_string())),
    }
}

/// What the statements of a commit pipeline tell of it.
enum Settled {
    Committed,
    NotStored(tokio_postgres::Error),
    Unknown(tokio_postgres::Error),
}

/// Reads the outcome of a commit pipeline from its statements' results, in the order the
/// server ran them. The first failure decides: the server's refusal of a statement before
/// the `COMMIT` (even a fatal one, as when the backend is terminated) means the `COMMIT`
/// never ran or ran as a rollback; so does a plain error of the `COMMIT` itself (the
/// transaction failed to commit). A fatal error answering the `COMMIT`, or a connection
/// that broke without the server's answer, leaves it unknown whether the commit happened.
fn settle(
    before: [Result<(), tokio_postgres::Error>; 4],
    commit: Result<(), tokio_postgres::Error>,
) -> Settled {
    for result in before {
        match result {
            Ok(()) => {}
            Err(error) if error.as_db_error().is_some() => return Settled::NotStored(error),
            Err(error) => return Settled::Unknown(error),
        }
    }
    match commit {
        Ok(()) => Settled::Committed,
        Err(error) => match error.as_db_error() {
            Some(db) if !crate::error::is_fatal(db) => Settled::NotStored(error),
            _ => Settled::Unknown(error),
        },
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
        StoreError::Backend(inner) => match inner.downcast_ref::<PostgresError>() {
            Some(PostgresError::ConnectionLost { reason }) => PostgresError::ConnectionLost {
                reason: reason.clone(),
            }
            .into(),
            _ => StoreError::Backend(inner.to_string().into()),
        },
        other => StoreError::Backend(other.to_string().into()),
    }
}
