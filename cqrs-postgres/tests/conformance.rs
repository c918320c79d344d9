//! PostgresStore against the shared store contract and the reference model, each on a
//! schema of its own.

mod common;

use common::test_store;
use cqrs_core::testing::model::{append_ops, check_against_model};
use cqrs_core::testing::properties::block_on;
use cqrs_core::CheckpointStore;
use proptest::prelude::*;

cqrs_core::store_conformance_tests!(test_store());
cqrs_core::snapshot_store_conformance_tests!(test_store());
cqrs_core::checkpoint_store_conformance_tests!(test_store());
cqrs_core::tracking_store_conformance_tests!(test_store());
cqrs_core::parking_store_conformance_tests!(test_store());
// Positions are the log's last one plus one, drawn under the append lock: dense.
cqrs_core::gap_free_positions_conformance_tests!(test_store());

proptest! {
    // Each case creates and drops a schema: fewer cases than SQLite's files.
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn agrees_with_the_reference_model(ops in append_ops(40)) {
        block_on(async {
            let store = test_store().await;
            check_against_model(&*store, &ops).await
        })?;
    }
}

/// The listing an operator's tool shows: every checkpoint, by name in byte order (as the
/// other stores list them, whatever the database's collation).
#[tokio::test]
async fn checkpoints_are_listed_by_name() {
    let store = test_store().await;
    assert!(store.checkpoints().await.unwrap().is_empty());
    for (name, position) in [("b", 2), ("B", 7), ("a-1", 5), ("日本", 9)] {
        store.save_checkpoint(name, position).await.unwrap();
    }
    store.save_checkpoint("b", 3).await.unwrap();
    let listed = store.checkpoints().await.unwrap();
    let expected = [("B", 7), ("a-1", 5), ("b", 3), ("日本", 9)];
    assert_eq!(
        listed,
        expected.map(|(name, position)| (name.to_owned(), position))
    );
}
