//! P1: a new subscription catching up over a store's log, timed, with a consumer that
//! counts each cart's events; checked to count every event of the log exactly once.
//!
//! On SQLite and PostgreSQL the consumer is a `Projection` counting events per cart in a
//! table, committed page by page with its checkpoint; in memory, a `HandlerConsumer`
//! counting them.

use crate::error::Res;
use crate::report::report;
use crate::timing::per_second;
use cqrs_core::{EventHandler, EventOf, HandlerConsumer, HandlerError, Subscription};
use cqrs_examples::cart::Cart;
use cqrs_memory::MemoryStore;
use cqrs_postgres::tokio_postgres::Client;
use cqrs_postgres::PostgresStore;
use cqrs_sqlite::rusqlite::Connection;
use cqrs_sqlite::{ProjectedEvent, Projection, SqliteStore};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A store P1 can run on: it knows which consumer fits it and how to read its count back.
pub trait CatchUp {
    /// Runs a new subscription's catch-up over the whole log, timed; returns how many cart
    /// events its consumer counted and how long the catch-up took.
    async fn catch_up_counting(&self) -> Res<(u64, Duration)>;
}

/// Runs P1 on `store`, whose log holds `events` events (every one written by the run), and
/// checks that each was counted once; reports the catch-up's events per second.
pub async fn p1<S: CatchUp>(store: &S, label: &str, events: u64) -> Res<()> {
    let (counted, elapsed) = store.catch_up_counting().await?;
    if counted != events {
        return Err(format!(
            "P1 {label}: the consumer counted {counted} events, the log holds {events}"
        )
        .into());
    }
    eprintln!(
        "bench: P1 {label}: a subscription caught up over {events} events in {:.3} s, each \
         counted once: ok",
        elapsed.as_secs_f64()
    );
    report(
        "P1",
        label,
        "events_per_s",
        per_second(events, elapsed),
        "events/s",
    );
    Ok(())
}

/// P1's SQLite read model: `p1_cart_events(stream_id, events)`.
struct CartEventCounts;

impl Projection for CartEventCounts {
    type Aggregate = Cart;

    fn name(&self) -> &str {
        "p1_cart_events"
    }

    fn setup(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS p1_cart_events (stream_id TEXT PRIMARY KEY, events INTEGER)",
        )?;
        Ok(())
    }

    fn apply(&self, conn: &Connection, event: &ProjectedEvent<Self>) -> Result<(), HandlerError> {
        conn.prepare_cached(
            "INSERT INTO p1_cart_events VALUES (?1, 1)
             ON CONFLICT (stream_id) DO UPDATE SET events = events + 1",
        )?
        .execute([&event.stream_id])?;
        Ok(())
    }

    fn reset(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute("DELETE FROM p1_cart_events", [])?;
        Ok(())
    }
}

impl CatchUp for PostgresStore {
    async fn catch_up_counting(&self) -> Res<(u64, Duration)> {
        let table = format!("\"{}\".p1_cart_events", self.schema());
        let consumer = self
            .projection_consumer(PgCartEventCounts {
                table: table.clone(),
            })
            .await?;
        let started = Instant::now();
        Subscription::new("p1", self.clone(), consumer)
            .catch_up()
            .await?;
        let elapsed = started.elapsed();
        let (client, connection) = cqrs_postgres::tokio_postgres::connect(
            &crate::backend::pg_url(),
            cqrs_postgres::tokio_postgres::NoTls,
        )
        .await?;
        let driver = tokio::spawn(connection);
        let counted: i64 = client
            .query_one(
                &format!("SELECT coalesce(sum(events), 0)::bigint FROM {table}"),
                &[],
            )
            .await?
            .get(0);
        drop(client);
        let _ = driver.await;
        Ok((u64::try_from(counted)?, elapsed))
    }
}

/// P1's PostgreSQL read model: `p1_cart_events(stream_id, events)` in the store's schema.
struct PgCartEventCounts {
    table: String,
}

#[cqrs_core::async_trait]
impl cqrs_postgres::Projection for PgCartEventCounts {
    type Aggregate = Cart;

    fn name(&self) -> &str {
        "p1_cart_events"
    }

    async fn setup(&self, client: &Client) -> Result<(), HandlerError> {
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} (stream_id text PRIMARY KEY, events bigint)",
                self.table
            ))
            .await?;
        Ok(())
    }

    async fn apply(
        &self,
        client: &Client,
        event: &cqrs_postgres::ProjectedEvent<Self>,
    ) -> Result<(), HandlerError> {
        let statement = client
            .prepare(&format!(
                "INSERT INTO {} VALUES ($1, 1) ON CONFLICT (stream_id) DO UPDATE \
                 SET events = {}.events + 1",
                self.table,
                self.table.rsplit('.').next().unwrap_or("p1_cart_events")
            ))
            .await?;
        client.execute(&statement, &[&event.stream_id]).await?;
        Ok(())
    }

    async fn reset(&self, client: &Client) -> Result<(), HandlerError> {
        client
            .batch_execute(&format!("DELETE FROM {}", self.table))
            .await?;
        Ok(())
    }
}

/// P1's in-memory handler: counts the cart events it is given.
#[derive(Clone, Default)]
struct CountCartEvents(Arc<AtomicU64>);

#[cqrs_core::async_trait]
impl EventHandler for CountCartEvents {
    type Aggregate = Cart;

    fn name(&self) -> &str {
        "p1-count"
    }

    async fn handle(&self, _: &EventOf<Self>) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl CatchUp for SqliteStore {
    async fn catch_up_counting(&self) -> Res<(u64, Duration)> {
        let consumer = self.projection_consumer(CartEventCounts).await?;
        let started = Instant::now();
        Subscription::new("p1", self.clone(), consumer)
            .catch_up()
            .await?;
        let elapsed = started.elapsed();
        let counted: i64 = self
            .query(|conn| {
                conn.query_row(
                    "SELECT coalesce(sum(events), 0) FROM p1_cart_events",
                    [],
                    |row| row.get(0),
                )
            })
            .await?;
        Ok((u64::try_from(counted)?, elapsed))
    }
}

impl CatchUp for MemoryStore {
    async fn catch_up_counting(&self) -> Res<(u64, Duration)> {
        let counter = CountCartEvents::default();
        let consumer = HandlerConsumer::new(counter.clone(), self.clone());
        let started = Instant::now();
        Subscription::new("p1", self.clone(), consumer)
            .catch_up()
            .await?;
        Ok((counter.0.load(Ordering::Relaxed), started.elapsed()))
    }
}
