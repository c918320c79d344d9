//! Read models in the store's database: inline projections (committed with the append or
//! rolled back with it) and subscriptions whose checkpoint commits with the read model,
//! including a subscription process killed mid-way and restarted. The same tests, by the
//! same names, as `cqrs-sqlite`'s; each on a schema of its own, the read model's tables in it.

mod common;

use async_trait::async_trait;
use common::{raw_client, test_store, TestStore};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::testing::toy::{Tally, TallyCommand, TallyEvent};
use cqrs_core::tracking::{AppendBatch, TrackingStore};
use cqrs_core::{
    Aggregate, CheckpointStore, Consumer, EventEnvelope, EventFilter, EventStore, ExpectedVersion,
    HandlerError, Metadata, NewEvent, Repository, RepositoryError, RetryPolicy, Sources,
    StoreError, Subscription, SubscriptionError,
};
use cqrs_postgres::tokio_postgres::Client;
use cqrs_postgres::{MultiProjection, PostgresOptions, PostgresStore, ProjectedEvent, Projection};
use std::time::Duration;

/// One command adding each of `amounts`, as one append.
fn add(amounts: Vec<i64>) -> TallyCommand {
    TallyCommand::AddMany(amounts)
}

/// `totals(tally, total, events)`, plus `applied(position, times)` that counts how often
/// each event was applied, in `schema`. Refuses 13 and panics on 666; sleeps `delay` per
/// event.
struct Totals {
    schema: String,
    delay: Duration,
}

fn quick(store: &TestStore) -> Totals {
    Totals {
        schema: store.guard.schema.clone(),
        delay: Duration::ZERO,
    }
}

#[async_trait]
impl Projection for Totals {
    type Aggregate = Tally;
    fn name(&self) -> &str {
        "totals"
    }
    async fn setup(&self, client: &Client) -> Result<(), HandlerError> {
        let s = &self.schema;
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS \"{s}\".totals (tally text PRIMARY KEY, total bigint, events bigint);
                 CREATE TABLE IF NOT EXISTS \"{s}\".applied (position bigint PRIMARY KEY, times bigint);"
            ))
            .await?;
        Ok(())
    }
    async fn apply(
        &self,
        client: &Client,
        event: &ProjectedEvent<Self>,
    ) -> Result<(), HandlerError> {
        let TallyEvent::Added { n } = event.event;
        tokio::time::sleep(self.delay).await;
        let s = &self.schema;
        client
            .execute(
                &format!(
                    "INSERT INTO \"{s}\".totals VALUES ($1, $2, 1) ON CONFLICT (tally) DO UPDATE
                     SET total = totals.total + excluded.total, events = totals.events + 1"
                ),
                &[&event.stream_id, &n],
            )
            .await?;
        client
            .execute(
                &format!(
                    "INSERT INTO \"{s}\".applied VALUES ($1, 1) ON CONFLICT (position) DO UPDATE
                     SET times = applied.times + 1"
                ),
                &[&i64::try_from(event.position)?],
            )
            .await?;
        match n {
            13 => Err("13 is unlucky".into()),
            666 => panic!("the projection met the beast"),
            _ => Ok(()),
        }
    }
    async fn reset(&self, client: &Client) -> Result<(), HandlerError> {
        let s = &self.schema;
        client
            .batch_execute(&format!(
                "DELETE FROM \"{s}\".totals; DELETE FROM \"{s}\".applied;"
            ))
            .await?;
        Ok(())
    }
}

async fn totals(schema: &str, tally: &str) -> Option<(i64, i64)> {
    raw_client()
        .await
        .query_opt(
            &format!("SELECT total, events FROM \"{schema}\".totals WHERE tally = $1"),
            &[&format!("Tally-{tally}")],
        )
        .await
        .unwrap()
        .map(|row| (row.get(0), row.get(1)))
}

/// `(rows, rows applied more than once)` of the `applied` table.
async fn applied(schema: &str) -> (i64, i64) {
    let row = raw_client()
        .await
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE times <> 1) FROM \"{schema}\".applied"
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Appends one event per amount to `Tally-{tally}` through the store directly, as another
/// writer would.
async fn append_amounts(store: &PostgresStore, tally: &str, amounts: &[i64]) {
    let metadata = Metadata::new();
    let events: Vec<NewEvent> = amounts
        .iter()
        .map(|&n| cqrs_core::codec::encode(&TallyEvent::Added { n }, &metadata).unwrap())
        .collect();
    store
        .append(&format!("Tally-{tally}"), ExpectedVersion::Any, events)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_inline_projection_commits_with_the_events() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    store.add_projection(quick(&store)).await.unwrap();
    let tallies = Repository::<Tally, _>::new(store.store.clone());
    tallies.execute("c", add(vec![5])).await.unwrap();
    assert_eq!(totals(&schema, "c").await, Some((5, 1)));
    tallies.execute("c", add(vec![1, 2])).await.unwrap();
    assert_eq!(totals(&schema, "c").await, Some((8, 3)));
    // Clones made before or after registration share the projection.
    append_amounts(&store.store.clone(), "c", &[4]).await;
    assert_eq!(totals(&schema, "c").await, Some((12, 4)));
}

#[tokio::test]
async fn a_failing_inline_projection_rolls_the_whole_append_back() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    store.add_projection(quick(&store)).await.unwrap();
    let tallies = Repository::<Tally, _>::new(store.store.clone());
    tallies.execute("c", add(vec![5])).await.unwrap();
    // The second event of the batch fails: the first one's rows go too.
    let outcome = tallies.execute("c", add(vec![1, 13])).await;
    let Err(RepositoryError::Store(StoreError::Projection {
        projection,
        stream_id,
        version,
        source,
    })) = outcome
    else {
        panic!("expected a projection failure, got {outcome:?}");
    };
    assert_eq!(
        (projection.as_str(), stream_id.as_str(), version),
        ("totals", "Tally-c", 3)
    );
    assert_eq!(source.to_string(), "13 is unlucky");
    assert_eq!(store.stream_version("Tally-c").await.unwrap(), Some(1));
    assert_eq!(store.read_all(1, 10).await.unwrap().len(), 1);
    assert_eq!(totals(&schema, "c").await, Some((5, 1)));
    assert_eq!(applied(&schema).await, (1, 0));

    // A panicking projection is a typed failure too, and the store keeps working.
    let outcome = tallies.execute("c", add(vec![666])).await;
    assert!(
        matches!(&outcome, Err(RepositoryError::Store(StoreError::Projection { source, .. }))
            if source.to_string().contains("panicked")),
        "{outcome:?}"
    );
    tallies.execute("c", add(vec![2])).await.unwrap();
    assert_eq!(totals(&schema, "c").await, Some((7, 2)));
    assert_eq!(store.stream_version("Tally-c").await.unwrap(), Some(2));
    // The positions of the refused appends were given again: the log stays dense.
    let positions: Vec<u64> = store
        .read_all(1, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_projection_fails_only_its_own_append_in_a_group_commit() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    store.add_projection(quick(&store)).await.unwrap();
    let appends = (0..16).map(|i| {
        let tallies = Repository::<Tally, _>::new(store.store.clone());
        tokio::spawn(async move {
            let amount = if i == 7 { 13 } else { 1 };
            tallies.execute(&format!("c{i}"), add(vec![amount])).await
        })
    });
    for (i, append) in appends.enumerate() {
        let outcome = append.await.unwrap();
        assert_eq!(outcome.is_ok(), i != 7, "tally {i}: {outcome:?}");
    }
    for i in 0..16 {
        let expected = (i != 7).then_some((1, 1));
        assert_eq!(
            totals(&schema, &format!("c{i}")).await,
            expected,
            "tally {i}"
        );
    }
    let log = store.read_all(1, 100).await.unwrap();
    assert_eq!(log.len(), 15);
    assert!(
        log.iter().zip(1..).all(|(e, p)| e.position == p),
        "positions stay dense"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_unit_leaves_later_appends_to_its_stream_consistent() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    store.add_projection(quick(&store)).await.unwrap();
    append_amounts(&store, "s", &[1]).await;
    // Many appends to one stream at once, each under `Any`: they share transactions, and
    // the failing one must not leave a hole in the stream's versions.
    let appends = (0..12).map(|i| {
        let store = store.store.clone();
        tokio::spawn(async move {
            let n = if i % 4 == 1 { 13 } else { 1 };
            let metadata = Metadata::new();
            let event = cqrs_core::codec::encode(&TallyEvent::Added { n }, &metadata).unwrap();
            store
                .append("Tally-s", ExpectedVersion::Any, vec![event])
                .await
        })
    });
    let mut committed = 1;
    for append in appends {
        if append.await.unwrap().is_ok() {
            committed += 1;
        }
    }
    assert_eq!(committed, 1 + 9);
    let stream = store.read_stream("Tally-s", 1, 100).await.unwrap();
    let versions: Vec<u64> = stream.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=committed).collect::<Vec<_>>());
    assert_eq!(totals(&schema, "s").await, Some((10, 10)));
}

#[tokio::test]
async fn a_failing_inline_projection_refuses_a_tracking_batch_whole() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    store.add_projection(quick(&store)).await.unwrap();
    let encode =
        |n: i64| cqrs_core::codec::encode(&TallyEvent::Added { n }, &Metadata::new()).unwrap();
    let batch = |last: i64, position: u64| {
        AppendBatch::new()
            .append("Tally-a", ExpectedVersion::NoStream, vec![encode(1)])
            .append("Tally-b", ExpectedVersion::NoStream, vec![encode(last)])
            .tracking("reactor", position)
    };
    let outcome = store.append_batch(batch(13, 7)).await;
    assert!(
        matches!(&outcome, Err(StoreError::Projection { stream_id, .. }) if stream_id == "Tally-b"),
        "{outcome:?}"
    );
    assert_eq!(store.read_all(1, 10).await.unwrap().len(), 0);
    assert_eq!(store.load_checkpoint("reactor").await.unwrap(), 0);
    assert_eq!(
        totals(&schema, "a").await,
        None,
        "the first append's rows went too"
    );
    let appended = store.append_batch(batch(2, 7)).await.unwrap();
    assert_eq!(appended.len(), 2);
    assert_eq!(store.load_checkpoint("reactor").await.unwrap(), 7);
    assert_eq!(totals(&schema, "b").await, Some((2, 1)));
}

#[tokio::test]
async fn a_subscription_commits_its_checkpoint_with_the_read_model_and_can_rebuild() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    let tallies = Repository::<Tally, _>::new(store.store.clone());
    tallies.execute("a", add(vec![1, 2])).await.unwrap();
    tallies.execute("b", add(vec![10])).await.unwrap();
    // Another aggregate's event, last in the log: the subscription never reads it, so its
    // checkpoint stays at the last tally event.
    let other = cqrs_core::codec::encode(&TallyEvent::Added { n: 1 }, &Default::default());
    store
        .append("Other-1", ExpectedVersion::Any, vec![other.unwrap()])
        .await
        .unwrap();
    let consumer = store.projection_consumer(quick(&store)).await.unwrap();
    assert_eq!(
        consumer.filter(),
        EventFilter::all().with_categories([Tally::TYPE]),
        "a projection reads its aggregate's events"
    );
    let subscription = Subscription::new("totals", store.store.clone(), consumer);
    assert_eq!(subscription.catch_up().await.unwrap(), 3);
    assert_eq!(totals(&schema, "a").await, Some((3, 2)));
    assert_eq!(totals(&schema, "b").await, Some((10, 1)));
    assert_eq!(store.load_checkpoint("totals").await.unwrap(), 3);

    assert_eq!(subscription.rebuild().await.unwrap(), 3);
    assert_eq!(
        totals(&schema, "a").await,
        Some((3, 2)),
        "rebuilt, not doubled"
    );
    assert_eq!(applied(&schema).await, (3, 0));
}

#[tokio::test]
async fn a_failing_event_leaves_read_model_and_checkpoint_before_it() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    let tallies = Repository::<Tally, _>::new(store.store.clone());
    for amounts in [vec![1], vec![13], vec![2]] {
        tallies.execute("a", add(amounts)).await.unwrap();
    }
    let subscription = Subscription::new(
        "totals",
        store.store.clone(),
        store.projection_consumer(quick(&store)).await.unwrap(),
    )
    .with_retry(RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    });
    let error = subscription.catch_up().await.unwrap_err();
    assert!(
        matches!(&error, SubscriptionError::EventFailed { stream_id, version: 2, position: 2, attempts: 2, .. } if stream_id == "Tally-a"),
        "{error:?}"
    );
    assert_eq!(store.load_checkpoint("totals").await.unwrap(), 1);
    assert_eq!(totals(&schema, "a").await, Some((1, 1)));
    assert_eq!(
        applied(&schema).await,
        (1, 0),
        "the failed attempts left nothing behind"
    );
}

#[tokio::test]
async fn two_consumers_of_one_subscription_apply_each_event_once() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    append_amounts(&store, "a", &[1, 2, 3]).await;
    let first = store.projection_consumer(quick(&store)).await.unwrap();
    let second = store.projection_consumer(quick(&store)).await.unwrap();
    let log = store.read_all(1, 10).await.unwrap();
    // Two processes running the same subscription, each with the page it read before the
    // other committed: the second skips what the first applied.
    first.consume_page("totals", &log[..2]).await.unwrap();
    second.consume_page("totals", &log).await.unwrap();
    first.consume_page("totals", &log[..2]).await.unwrap();
    assert_eq!(applied(&schema).await, (3, 0));
    assert_eq!(totals(&schema, "a").await, Some((6, 3)));
    assert_eq!(store.load_checkpoint("totals").await.unwrap(), 3);
}

#[tokio::test]
async fn a_live_subscription_wakes_on_appends_and_polls_for_other_processes() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    let mut running = Subscription::new(
        "totals",
        store.store.clone(),
        store.projection_consumer(quick(&store)).await.unwrap(),
    )
    .with_poll_interval(Duration::from_secs(3600))
    .start();
    let tallies = Repository::<Tally, _>::new(store.store.clone());
    let appended = tallies.execute("a", add(vec![1])).await.unwrap();
    let within = Duration::from_secs(10);
    tokio::time::timeout(within, running.wait_for(appended.events[0].position))
        .await
        .expect("woken by the append, not by the hour-long poll")
        .unwrap();
    assert_eq!(totals(&schema, "a").await, Some((1, 1)));

    // Writes through another store on the schema (another process) reach it too.
    let elsewhere = PostgresStore::connect_with(store.guard.options())
        .await
        .unwrap();
    append_amounts(&elsewhere, "a", &[2]).await;
    tokio::time::timeout(within, running.wait_for(2))
        .await
        .expect("seen through NOTIFY or the store's poll")
        .unwrap();
    assert_eq!(totals(&schema, "a").await, Some((3, 2)));
    running.stop().await.unwrap();
}

const CHILD_SCHEMA: &str = "CQRS_PROJECTION_CHILD_SCHEMA";
/// Several of the subscription's 512-event pages, so the kill lands between two of them.
const EVENTS: i64 = 2000;

/// Run by the parent test as a separate process: follows the log with a slow projection
/// until it is killed.
#[tokio::test]
#[ignore = "run as a child process by a_killed_subscription_resumes_without_loss_or_double_apply"]
async fn child_subscriber() {
    let schema = std::env::var(CHILD_SCHEMA).expect("run by the parent test");
    let options = PostgresOptions::new(common::database_url()).schema(&schema);
    let store = PostgresStore::connect_with(options).await.unwrap();
    let consumer = store
        .projection_consumer(Totals {
            schema,
            delay: Duration::from_millis(1),
        })
        .await
        .unwrap();
    Subscription::new("totals", store.clone(), consumer)
        .catch_up()
        .await
        .unwrap();
    unreachable!("the parent kills this process before it catches up");
}

#[tokio::test]
async fn a_killed_subscription_resumes_without_loss_or_double_apply() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    // Amounts from 1001 up: none is one the projection refuses. 100 events per append.
    let amounts: Vec<i64> = (1..=EVENTS).map(|n| 1000 + n).collect();
    for (index, chunk) in amounts.chunks(100).enumerate() {
        append_amounts(&store, &format!("c{}", index % 7), chunk).await;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "child_subscriber",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_SCHEMA, &schema)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it get part of the way, then kill it (SIGKILL: no chance to clean up).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.load_checkpoint("totals").await.unwrap() < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the child made no progress"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = store.load_checkpoint("totals").await.unwrap();
    assert!(
        (20..u64::try_from(EVENTS).unwrap()).contains(&at_kill),
        "killed mid-way: {at_kill}"
    );
    // The read model holds exactly the events up to the checkpoint, each once (the
    // killed transaction was rolled back by the server when its connection closed).
    assert_eq!(applied(&schema).await, (i64::try_from(at_kill).unwrap(), 0));

    let consumer = store.projection_consumer(quick(&store)).await.unwrap();
    let resumed = Subscription::new("totals", store.store.clone(), consumer);
    assert_eq!(
        resumed.catch_up().await.unwrap(),
        u64::try_from(EVENTS).unwrap()
    );
    assert_eq!(
        applied(&schema).await,
        (EVENTS, 0),
        "no event lost, none applied twice"
    );
    let sum: i64 = raw_client()
        .await
        .query_one(
            &format!("SELECT sum(total)::bigint FROM \"{schema}\".totals"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 1000 * EVENTS + EVENTS * (EVENTS + 1) / 2);
}

/// A second aggregate type with the tally's events and rules, in streams `Ledger-*`.
#[derive(Debug, Default)]
struct Ledger(Tally);
impl Aggregate for Ledger {
    const TYPE: &'static str = "Ledger";
    type Command = TallyCommand;
    type Event = TallyEvent;
    type Error = <Tally as Aggregate>::Error;
    fn handle(&self, command: TallyCommand) -> Result<Vec<TallyEvent>, Self::Error> {
        self.0.handle(command)
    }
    fn apply(&mut self, event: &TallyEvent) {
        self.0.apply(event);
    }
}

/// The events of both aggregates, each typed by its source.
enum Booked {
    Tally(TallyEvent),
    Ledger(TallyEvent),
}

/// `booked(position, source, n)`: one row per event of either aggregate.
struct Bookings {
    schema: String,
}

#[async_trait]
impl MultiProjection for Bookings {
    type Event = Booked;
    fn name(&self) -> &str {
        "bookings"
    }
    fn sources(&self) -> Sources<Booked> {
        Sources::new()
            .with::<Tally>(Booked::Tally)
            .with::<Ledger>(Booked::Ledger)
    }
    async fn setup(&self, client: &Client) -> Result<(), HandlerError> {
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS \"{}\".booked (position bigint PRIMARY KEY, source text, n bigint);",
                self.schema
            ))
            .await?;
        Ok(())
    }
    async fn apply(
        &self,
        client: &Client,
        event: &EventEnvelope<Booked>,
    ) -> Result<(), HandlerError> {
        let (source, TallyEvent::Added { n }) = match &event.event {
            Booked::Tally(added) => ("tally", added),
            Booked::Ledger(added) => ("ledger", added),
        };
        client
            .execute(
                &format!("INSERT INTO \"{}\".booked VALUES ($1, $2, $3)", self.schema),
                &[&i64::try_from(event.position)?, &source, n],
            )
            .await?;
        Ok(())
    }
    async fn reset(&self, client: &Client) -> Result<(), HandlerError> {
        client
            .batch_execute(&format!("DELETE FROM \"{}\".booked;", self.schema))
            .await?;
        Ok(())
    }
}

async fn bookings(schema: &str) -> Vec<(i64, String, i64)> {
    raw_client()
        .await
        .query(
            &format!("SELECT position, source, n FROM \"{schema}\".booked ORDER BY position"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

#[tokio::test]
async fn a_projection_of_several_aggregates_takes_each_typed_in_global_order() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    let tallies = Repository::<Tally, _>::new(store.store.clone());
    let ledgers = Repository::<Ledger, _>::new(store.store.clone());
    tallies.execute("a", add(vec![1])).await.unwrap();
    ledgers.execute("a", add(vec![2, 3])).await.unwrap();
    store
        .append("Other-1", ExpectedVersion::Any, vec![tagged_event("x")])
        .await
        .unwrap();
    tallies.execute("b", add(vec![4])).await.unwrap();

    // Fed by a subscription: one filtered read, the checkpoint in the same transaction.
    let bookings_of = || Bookings {
        schema: schema.clone(),
    };
    let consumer = store.projection_consumer(bookings_of()).await.unwrap();
    assert_eq!(
        consumer.filter(),
        EventFilter::all().with_categories(["Tally", "Ledger"])
    );
    let subscription = Subscription::new("bookings", store.store.clone(), consumer);
    assert_eq!(subscription.catch_up().await.unwrap(), 5);
    let expected = |rows: &[(i64, &str, i64)]| -> Vec<(i64, String, i64)> {
        rows.iter()
            .map(|(p, s, n)| (*p, (*s).to_owned(), *n))
            .collect()
    };
    assert_eq!(
        bookings(&schema).await,
        expected(&[
            (1, "tally", 1),
            (2, "ledger", 2),
            (3, "ledger", 3),
            (5, "tally", 4)
        ])
    );
    assert_eq!(store.load_checkpoint("bookings").await.unwrap(), 5);
    assert_eq!(subscription.rebuild().await.unwrap(), 5);
    assert_eq!(
        bookings(&schema).await.len(),
        4,
        "rebuilt from the start, once"
    );

    // Inline: committed with each append of either aggregate.
    store.add_projection(bookings_of()).await.unwrap();
    ledgers.execute("b", add(vec![6])).await.unwrap();
    assert_eq!(
        bookings(&schema).await.last(),
        Some(&(6, "ledger".to_owned(), 6))
    );
}
