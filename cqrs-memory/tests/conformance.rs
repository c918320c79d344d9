//! MemoryStore against the shared store contract and the reference model.

use cqrs_core::testing::model::{append_ops, check_against_model};
use cqrs_core::testing::properties::block_on;
use cqrs_memory::MemoryStore;
use proptest::prelude::*;
use std::sync::Arc;

cqrs_core::store_conformance_tests!(async { Arc::new(MemoryStore::new()) });
cqrs_core::snapshot_store_conformance_tests!(async { Arc::new(MemoryStore::new()) });
cqrs_core::checkpoint_store_conformance_tests!(async { Arc::new(MemoryStore::new()) });
cqrs_core::tracking_store_conformance_tests!(async { Arc::new(MemoryStore::new()) });
cqrs_core::parking_store_conformance_tests!(async { Arc::new(MemoryStore::new()) });
cqrs_core::gap_free_positions_conformance_tests!(async { Arc::new(MemoryStore::new()) });

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn agrees_with_the_reference_model(ops in append_ops(40)) {
        block_on(check_against_model(&MemoryStore::new(), &ops))?;
    }
}
