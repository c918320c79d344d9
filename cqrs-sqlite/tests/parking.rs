//! Parked events in the SQLite file: a projection's poison event is parked durably (it is
//! still listed after the store is reopened), and a retry applies it once, removing it from
//! the list in the same transaction.

mod common;

use common::db_path;
use cqrs_core::testing::toy::{Tally, TallyCommand, TallyEvent};
use cqrs_core::{
    CheckpointStore, HandlerError, OnFailure, ParkingStore, Repository, RetryPolicy, Subscription,
    SubscriptionError,
};
use cqrs_sqlite::{ProjectedEvent, Projection, SqliteStore};
use rusqlite::{params, Connection};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `sums(tally, total)` and `applied(position, times)`; refuses 13 until `cured`.
struct Sums {
    cured: Arc<AtomicBool>,
}

impl Projection for Sums {
    type Aggregate = Tally;
    fn name(&self) -> &str {
        "sums"
    }
    fn setup(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS sums (tally TEXT PRIMARY KEY, total INTEGER);
             CREATE TABLE IF NOT EXISTS applied (position INTEGER PRIMARY KEY, times INTEGER);",
        )?;
        Ok(())
    }
    fn apply(&self, conn: &Connection, event: &ProjectedEvent<Self>) -> Result<(), HandlerError> {
        let TallyEvent::Added { n } = event.event;
        conn.execute(
            "INSERT INTO applied VALUES (?1, 1)
             ON CONFLICT (position) DO UPDATE SET times = times + 1",
            [i64::try_from(event.position)?],
        )?;
        if n == 13 && !self.cured.load(Ordering::SeqCst) {
            return Err("13 is unlucky".into());
        }
        conn.execute(
            "INSERT INTO sums VALUES (?1, ?2)
             ON CONFLICT (tally) DO UPDATE SET total = total + excluded.total",
            params![event.stream_id, n],
        )?;
        Ok(())
    }
    fn reset(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute_batch("DELETE FROM sums; DELETE FROM applied;")?;
        Ok(())
    }
}

/// The tally's total, and how many times each position was applied, in position order.
async fn read_model(store: &SqliteStore) -> (i64, Vec<(i64, i64)>) {
    store
        .query(|conn| {
            let total = conn.query_row("SELECT total FROM sums", [], |row| row.get(0))?;
            let mut statement = conn.prepare("SELECT position, times FROM applied ORDER BY 1")?;
            let applied = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok((total, applied))
        })
        .await
        .unwrap()
}

async fn subscription(store: &SqliteStore, cured: bool) -> Subscription<SqliteStore> {
    let consumer = store
        .projection_consumer(Sums {
            cured: Arc::new(AtomicBool::new(cured)),
        })
        .await
        .unwrap();
    Subscription::new("sums", store.clone(), consumer)
        .with_retry(RetryPolicy {
            attempts: 2,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        })
        .on_failure(OnFailure::Park)
}

#[tokio::test]
async fn a_parked_event_survives_reopening_and_its_retry_applies_it_once_with_its_removal() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    let tallies = Repository::<Tally, _>::new(store.clone());
    for n in [1, 13, 2] {
        tallies.execute("t", TallyCommand::Add(n)).await.unwrap();
    }
    let first = subscription(&store, false).await;
    assert_eq!(first.catch_up().await.unwrap(), 3);
    // Each failed attempt was rolled back whole: nothing of event 2 is in the read model.
    assert_eq!(read_model(&store).await, (3, vec![(1, 1), (3, 1)]));
    let parked = store.parked("sums").await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].position, parked[0].attempts), (2, 2));
    assert!(parked[0].error.contains("13 is unlucky"), "{parked:?}");
    drop((first, tallies, store));

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.parked("sums").await.unwrap(),
        parked,
        "lost on reopening"
    );
    let cured = subscription(&store, true).await;
    cured.retry_parked(2).await.unwrap();
    assert_eq!(read_model(&store).await, (16, vec![(1, 1), (2, 1), (3, 1)]));
    assert!(store.parked("sums").await.unwrap().is_empty());
    assert_eq!(store.load_checkpoint("sums").await.unwrap(), 3);
    assert!(matches!(
        cured.retry_parked(2).await,
        Err(SubscriptionError::NotParked { position: 2, .. })
    ));
    assert_eq!(cured.catch_up().await.unwrap(), 3);
    assert_eq!(read_model(&store).await.0, 16, "applied twice");
}
