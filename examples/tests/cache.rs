//! The aggregate cache under other writers: repositories with caches sharing one store
//! decide exactly as a live fold would, whatever the interleaving, and writers on two
//! `SqliteStore`s of one file (as two processes would be) lose no update.

mod strategies;

use cqrs_core::stream_id;
use cqrs_core::testing::properties::block_on;
use cqrs_core::testing::proptest::prelude::*;
use cqrs_core::{Aggregate, EventStore, Repository, RepositoryError};
use cqrs_examples::cart::{Cart, CartCommand, Line};
use cqrs_memory::MemoryStore;
use cqrs_sqlite::SqliteStore;
use strategies::cart_command;

/// Carts the generated commands spread over: more than a cache of 4 holds, so entries are
/// evicted and reloaded as well as caught up.
const CARTS: usize = 6;

/// Entries per repository cache in the property.
const CACHE_ENTRIES: usize = 4;

/// One generated step: the cart, the repository (0 or 1) that runs it, and the command.
type Step = (usize, usize, CartCommand);

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0..CARTS, 0usize..2, cart_command()), 0..60)
}

fn cart_id(cart: usize) -> String {
    format!("cached-{cart}")
}

/// Runs `steps` alternating between two cached repositories on `store` as generated, and
/// checks every decision, every committed version and the final states and event counts
/// against a live fold of `handle` and `apply` per cart.
async fn check_split<S: EventStore + Clone>(
    store: S,
    steps: Vec<Step>,
) -> Result<(), TestCaseError> {
    let repositories = [
        Repository::<Cart, S>::new(store.clone()).with_cache(CACHE_ENTRIES),
        Repository::<Cart, S>::new(store.clone()).with_cache(CACHE_ENTRIES),
    ];
    let mut live = vec![Cart::default(); CARTS];
    let mut counts = [0u64; CARTS];
    for (step, (cart, which, command)) in steps.into_iter().enumerate() {
        let expected = live[cart].handle(command.clone());
        let actual = repositories[which]
            .execute(&cart_id(cart), command.clone())
            .await;
        match (expected, actual) {
            (Ok(decided), Ok(committed)) => {
                let stored: Vec<_> = committed.events.iter().map(|e| &e.event).collect();
                prop_assert_eq!(
                    decided.iter().collect::<Vec<_>>(),
                    stored,
                    "step {} on repository {}: {:?}",
                    step,
                    which,
                    command
                );
                for event in &decided {
                    live[cart].apply(event);
                }
                counts[cart] += decided.len() as u64;
                prop_assert_eq!(committed.version, counts[cart], "step {}", step);
            }
            (Err(expected), Err(RepositoryError::Domain(actual))) => {
                prop_assert_eq!(expected, actual, "step {} on repository {}", step, which);
            }
            (expected, actual) => {
                return Err(TestCaseError::fail(format!(
                    "step {step} on repository {which} ({command:?}): live decided \
                     {expected:?}, repository {actual:?}"
                )));
            }
        }
    }
    let reader = Repository::<Cart, S>::new(store.clone());
    for (cart, state) in live.iter().enumerate() {
        let loaded = reader
            .load(&cart_id(cart))
            .await
            .map_err(|e| TestCaseError::fail(format!("load: {e}")))?;
        prop_assert_eq!(&loaded.state, state, "cart {}", cart);
        prop_assert_eq!(loaded.version, counts[cart], "cart {}", cart);
    }
    let all = store
        .read_all(1, usize::MAX)
        .await
        .map_err(|e| TestCaseError::fail(format!("read_all: {e}")))?;
    prop_assert_eq!(all.len() as u64, counts.iter().sum::<u64>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn two_cached_repositories_decide_as_the_live_fold_on_memory(steps in steps()) {
        block_on(check_split(MemoryStore::new(), steps))?;
    }

    #[test]
    fn two_cached_repositories_decide_as_the_live_fold_on_sqlite(steps in steps()) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        block_on(async {
            let store = SqliteStore::open(dir.path().join("events.db"))
                .await
                .map_err(|e| TestCaseError::fail(format!("open: {e}")))?;
            check_split(store, steps).await
        })?;
    }
}

fn add_x(cart: &str) -> CartCommand {
    CartCommand::AddItem {
        cart_id: cart.to_owned(),
        item_id: "x".to_owned(),
        quantity: 1,
        price: 100,
    }
}

#[tokio::test]
async fn a_cached_cart_sees_what_another_store_on_the_same_file_wrote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("carts.db");
    let here =
        Repository::<Cart, _>::new(SqliteStore::open(&path).await.expect("open")).with_cache(16);
    let elsewhere = Repository::<Cart, _>::new(SqliteStore::open(&path).await.expect("open"));

    here.execute("shared", add_x("shared"))
        .await
        .expect("cached here");
    elsewhere
        .execute(
            "shared",
            CartCommand::RemoveItem {
                cart_id: "shared".into(),
                item_id: "x".into(),
            },
        )
        .await
        .expect("removed elsewhere");
    // The cached state still holds `x`; deciding on it would accept this update.
    let refused = here
        .execute(
            "shared",
            CartCommand::UpdateQuantity {
                cart_id: "shared".into(),
                item_id: "x".into(),
                new_quantity: 5,
            },
        )
        .await
        .expect_err("x was removed by the other store");
    assert!(
        matches!(refused, RepositoryError::Domain(ref e) if e.to_string().contains("`x` is not in the cart")),
        "{refused:?}"
    );
    let committed = here
        .execute("shared", add_x("shared"))
        .await
        .expect("added again");
    assert_eq!(committed.version, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_cached_writers_on_two_stores_of_one_file_lose_no_update() {
    const TASKS: usize = 4;
    const ADDS_PER_TASK: u64 = 25;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("carts.db");
    let first = SqliteStore::open(&path).await.expect("first store");
    let second = SqliteStore::open(&path).await.expect("second store");
    let repository = |store: &SqliteStore| {
        Repository::<Cart, _>::new(store.clone())
            .with_cache(16)
            .with_conflict_retries(10_000)
    };
    let repositories = [
        repository(&first),
        repository(&first),
        repository(&second),
        repository(&second),
    ];
    assert_eq!(repositories.len(), TASKS);

    let tasks: Vec<_> = repositories
        .into_iter()
        .map(|repository| {
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for _ in 0..ADDS_PER_TASK {
                    let committed = repository
                        .execute("hot", add_x("hot"))
                        .await
                        .expect("every add commits, after retries if it must");
                    assert_eq!(committed.events.len(), 1);
                    versions.push(committed.version);
                }
                versions
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.extend(task.await.expect("task"));
    }
    versions.sort_unstable();
    let total = TASKS as u64 * ADDS_PER_TASK;
    assert_eq!(
        versions,
        (1..=total).collect::<Vec<_>>(),
        "each add committed exactly one version, none twice"
    );

    // Read back through a third store, as a process started afterwards would.
    let third = SqliteStore::open(&path).await.expect("third store");
    let loaded = Repository::<Cart, _>::new(third.clone())
        .load("hot")
        .await
        .expect("load");
    assert_eq!(
        loaded.state.lines().get("x"),
        Some(&Line {
            quantity: u32::try_from(total).expect("a small count"),
            price: 100
        })
    );
    assert_eq!(loaded.version, total);
    assert_eq!(
        third
            .stream_version(&stream_id::<Cart>("hot"))
            .await
            .expect("stream version"),
        Some(total)
    );
}
