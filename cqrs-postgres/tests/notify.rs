//! The append signal for writes of other stores (other processes, as PostgreSQL sees
//! them): `NOTIFY` wakes at once; with it off, polling reports them; after the listening
//! connection is cut, the store reconnects and polls at once, so a notification lost
//! meanwhile is not waited for until the next poll. Waits are bounded, never timed.

mod common;

use common::{database_url, raw_client, test_store, TestStore};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{EventStore, ExpectedVersion, PositionWatch};
use cqrs_postgres::{PostgresOptions, PostgresStore};
use std::time::Duration;

/// Long enough to pass on a loaded machine; the waits end as soon as the signal moves.
const BOUND: Duration = Duration::from_secs(60);
/// A poll interval no test waits for.
const NEVER: Duration = Duration::from_secs(3_600);

async fn signalled(mut signal: PositionWatch, position: u64) {
    tokio::time::timeout(BOUND, signal.wait_for(|latest| *latest >= position))
        .await
        .expect("the signal did not reach the position in time")
        .expect("the store is gone");
}

/// A store following `writer`'s schema, its connections named so that
/// [`listener_pid`] finds its listener (the writer has one too).
async fn follower(
    writer: &TestStore,
    options: impl Fn(PostgresOptions) -> PostgresOptions,
) -> PostgresStore {
    let url = database_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let named = format!("{url}{separator}application_name={}", writer.guard.schema);
    let options = options(PostgresOptions::new(named).schema(&writer.guard.schema));
    PostgresStore::connect_with(options).await.unwrap()
}

/// Waits until the follower of `writer` listens; returns its listener's process id.
async fn listener_pid(writer: &TestStore) -> i32 {
    let client = raw_client().await;
    let name = &writer.guard.schema;
    tokio::time::timeout(BOUND, async {
        loop {
            let rows = client
                .query(
                    "SELECT pid FROM pg_stat_activity \
                     WHERE application_name = $1 AND query LIKE 'LISTEN %'",
                    &[name],
                )
                .await
                .unwrap();
            if let Some(row) = rows.first() {
                return row.get(0);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no listener appeared")
}

async fn append_one(store: &PostgresStore) -> u64 {
    let appended = store
        .append("s-1", ExpectedVersion::Any, vec![tagged_event("n")])
        .await
        .unwrap();
    appended.events[0].position
}

#[tokio::test]
async fn notify_wakes_another_store_without_waiting_for_a_poll() {
    let writer = test_store().await;
    let follower = follower(&writer, |options| options.poll_interval(NEVER)).await;
    listener_pid(&writer).await;
    let signal = follower.appends().unwrap();
    let position = append_one(&writer).await;
    signalled(signal, position).await;
}

#[tokio::test]
async fn with_notify_off_polling_reports_other_stores_appends() {
    let writer = test_store().await;
    let quiet = PostgresStore::connect_with(writer.guard.options().notify(false))
        .await
        .unwrap();
    let follower = follower(&writer, |options| {
        options
            .notify(false)
            .poll_interval(Duration::from_millis(20))
    })
    .await;
    let signal = follower.appends().unwrap();
    let position = append_one(&quiet).await;
    signalled(signal, position).await;
}

#[tokio::test]
async fn after_the_listening_connection_is_cut_the_store_polls_at_once() {
    let writer = test_store().await;
    let quiet = PostgresStore::connect_with(writer.guard.options().notify(false))
        .await
        .unwrap();
    let follower = follower(&writer, |options| options.poll_interval(NEVER)).await;
    let pid = listener_pid(&writer).await;
    let signal = follower.appends().unwrap();
    // Sent without NOTIFY: the follower can learn of it only by a poll.
    let position = append_one(&quiet).await;
    let terminated: bool = raw_client()
        .await
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(terminated);
    signalled(signal, position).await;
    // And it listens again.
    let again = listener_pid(&writer).await;
    assert_ne!(again, pid);
}
