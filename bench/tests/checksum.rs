//! The per-cart script's checksum: 1,000 carts through the repository, reloaded and summed,
//! must give the published checksum, and SQLite must agree with memory.

use cqrs_bench::script::{script, script_cart_id, W1_CHECKSUM_1000};
use cqrs_core::{EventStore, Repository};
use cqrs_examples::cart::Cart;
use cqrs_memory::MemoryStore;
use cqrs_sqlite::SqliteStore;
use std::ops::Range;

/// Runs the script of carts `range` (prefix `w1`) through `Repository::execute`, then reloads
/// every cart from the store in a fresh repository and sums `total_price()`.
async fn run_and_sum<S: EventStore + Clone>(store: S, range: Range<u32>) -> i64 {
    let repository = Repository::<Cart, S>::new(store.clone());
    for n in range.clone() {
        let cart_id = script_cart_id("w1", n);
        for command in script("w1", n) {
            let committed = repository
                .execute(&cart_id, command)
                .await
                .expect("every script command is accepted");
            assert_eq!(committed.events.len(), 1, "each command records one event");
        }
    }
    let reader = Repository::<Cart, S>::new(store);
    let mut sum = 0;
    for n in range {
        let loaded = reader.load(&script_cart_id("w1", n)).await.expect("load");
        assert_eq!(loaded.version, 20, "cart {n}");
        sum += loaded.state.total_price();
    }
    sum
}

#[tokio::test]
async fn the_checksum_of_1000_carts_on_memory_is_the_published_one() {
    assert_eq!(
        run_and_sum(MemoryStore::new(), 0..1000).await,
        W1_CHECKSUM_1000
    );
}

#[tokio::test]
async fn sqlite_agrees_with_memory_on_100_carts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteStore::open(dir.path().join("w1.db"))
        .await
        .expect("open sqlite");
    let on_sqlite = run_and_sum(sqlite, 0..100).await;
    let on_memory = run_and_sum(MemoryStore::new(), 0..100).await;
    assert_eq!(on_sqlite, on_memory);
    // A wrong sum of zero or of untouched carts would agree too; make sure work was done.
    assert!(on_memory > 100 * 250, "{on_memory}");
}
