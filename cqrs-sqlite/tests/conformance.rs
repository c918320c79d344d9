//! SqliteStore against the shared store contract and the reference model, each on a fresh file.

use cqrs_core::testing::model::{append_ops, check_against_model};
use cqrs_core::testing::properties::block_on;
use cqrs_sqlite::SqliteStore;
use proptest::prelude::*;
use std::ops::Deref;
use tempfile::TempDir;

/// A store on a file in a directory that lives as long as the store.
struct TempStore {
    store: SqliteStore,
    _dir: TempDir,
}

impl Deref for TempStore {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

async fn temp_store() -> TempStore {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("events.db"))
        .await
        .expect("open a new store");
    TempStore { store, _dir: dir }
}

cqrs_core::store_conformance_tests!(temp_store());
cqrs_core::snapshot_store_conformance_tests!(temp_store());
cqrs_core::checkpoint_store_conformance_tests!(temp_store());
cqrs_core::tracking_store_conformance_tests!(temp_store());
cqrs_core::parking_store_conformance_tests!(temp_store());
cqrs_core::gap_free_positions_conformance_tests!(temp_store());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn agrees_with_the_reference_model(ops in append_ops(40)) {
        block_on(async {
            let store = temp_store().await;
            check_against_model(&*store, &ops).await
        })?;
    }
}
