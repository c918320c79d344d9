//! The demos that `cargo run -p cqrs-examples` prints, run on MemoryStore and on SQLite, and
//! checked on what they report rather than on their output alone.

use cqrs_core::{EventStore, RecordedEvent, RepositoryError};
use cqrs_examples::cart::{CartError, CartEvent, Line};
use cqrs_examples::demo::{self, USER_KEY};
use cqrs_examples::order::{OrderError, OrderStatus};
use cqrs_memory::MemoryStore;
use cqrs_sqlite::SqliteStore;
use uuid::Uuid;

fn assert_metadata(stored: &[RecordedEvent], correlation_id: Uuid, user: &str) {
    assert!(!stored.is_empty());
    for event in stored {
        assert_eq!(
            event.metadata.correlation_id,
            Some(correlation_id),
            "{event:?}"
        );
        assert_eq!(
            event.metadata.get(USER_KEY).and_then(|v| v.as_str()),
            Some(user),
            "{event:?}"
        );
    }
}

async fn check_cart_demo<S: EventStore + Clone>(store: S) {
    let mut out = Vec::new();
    let report = demo::cart::run(store, &mut out).await.expect("cart demo");

    let types: Vec<_> = report
        .committed
        .iter()
        .map(|e| cqrs_core::DomainEvent::event_type(&e.event))
        .collect();
    assert_eq!(
        types,
        [
            "ItemAdded",
            "ItemAdded",
            "ItemQuantityUpdated",
            "CouponApplied",
            "ItemRemoved"
        ]
    );
    let versions: Vec<_> = report.committed.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    assert!(report
        .committed
        .windows(2)
        .all(|pair| pair[0].position < pair[1].position));

    assert_eq!(
        report.refused,
        [
            CartError::ZeroQuantity {
                item_id: "mug".into()
            },
            CartError::CouponAlreadyApplied {
                applied: "WELCOME".into(),
                refused: "SPRING".into()
            },
            CartError::ItemNotInCart {
                item_id: "pen".into()
            },
        ]
    );

    // book x1 at 12.50, minus the 3.00 coupon; the pen was removed.
    assert_eq!(report.state.total_price(), 950);
    assert_eq!(report.state.coupon(), Some("WELCOME"));
    assert_eq!(report.state.campaign(), Some("newsletter"));
    assert_eq!(report.reloaded.state, report.state);
    assert_eq!(
        report.reloaded.version, 5,
        "refused commands appended nothing"
    );

    assert_eq!(report.stored.len(), 5);
    let schemas: Vec<_> = report.stored.iter().map(|e| e.schema_version).collect();
    assert_eq!(schemas, [3, 3, 1, 1, 1], "ItemAdded is written at schema 3");
    assert_eq!(
        report.stored[3].payload,
        format!(
            r#"{{"cart_id":"{}","coupon_code":"WELCOME","discount_amount":300,"campaign":"newsletter"}}"#,
            report.cart_id
        )
    );
    assert_metadata(&report.stored, report.correlation_id, demo::cart::USER);
    assert!(report
        .committed
        .iter()
        .all(|e| e.metadata.correlation_id == Some(report.correlation_id)));

    let legacy = &report.legacy;
    let old_types: Vec<_> = legacy
        .stored
        .iter()
        .map(|e| (e.event_type.as_str(), e.schema_version))
        .collect();
    assert_eq!(
        old_types,
        [
            ("ProductAdded", 1),
            ("ProductAdded", 2),
            ("ItemQuantityUpdated", 1),
            ("CouponApplied", 1)
        ]
    );
    assert_eq!(
        legacy.upcast,
        [
            CartEvent::ItemAdded {
                cart_id: legacy.cart_id.clone(),
                item_id: "sku-42".into(),
                quantity: 2,
                price: 1900,
            },
            CartEvent::ItemAdded {
                cart_id: legacy.cart_id.clone(),
                item_id: "sku-7".into(),
                quantity: 1,
                price: 450,
            },
            CartEvent::ItemQuantityUpdated {
                cart_id: legacy.cart_id.clone(),
                item_id: "sku-42".into(),
                new_quantity: 3,
            },
            CartEvent::CouponApplied {
                cart_id: legacy.cart_id.clone(),
                coupon_code: "LOYAL".into(),
                discount_amount: 500,
                campaign: None,
            },
        ]
    );
    assert_eq!(legacy.loaded.version, 4);
    assert_eq!(
        legacy.loaded.state.lines().get("sku-42"),
        Some(&Line {
            quantity: 3,
            price: 1900
        })
    );
    assert_eq!(legacy.loaded.state.total_price(), 3 * 1900 + 450 - 500);
    assert_eq!(legacy.loaded.state.coupon(), Some("LOYAL"));
    assert_eq!(legacy.loaded.state.campaign(), None);
    match &legacy.without_upcasters {
        RepositoryError::Decode(error) => {
            assert_eq!(error.event_type, "ProductAdded");
            assert_eq!(error.schema_version, 1);
            assert_eq!(error.version, 1);
            assert_eq!(error.stream_id, format!("Cart-{}", legacy.cart_id));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    let printed = String::from_utf8(out).expect("utf-8");
    assert!(
        printed.contains("refused: CouponAlreadyApplied"),
        "{printed}"
    );
    assert!(printed.contains("same as before: true"), "{printed}");
}

async fn check_orders_demo<S: EventStore + Clone>(store: S) {
    let mut out = Vec::new();
    let report = demo::orders::run(store, &mut out)
        .await
        .expect("orders demo");
    let [completed, cancelled, open] = &report.order_ids[..] else {
        panic!("three orders expected, got {:?}", report.order_ids);
    };

    let expected = [
        (completed, OrderStatus::Completed, 2),
        (cancelled, OrderStatus::Cancelled, 2),
        (open, OrderStatus::Placed, 1),
    ];
    for (order_id, status, version) in expected {
        let reloaded = &report.reloaded[order_id];
        assert_eq!(reloaded.state.status(), status, "{order_id}");
        assert_eq!(reloaded.version, version, "{order_id}");
        assert_eq!(&reloaded.state, &report.states[order_id], "{order_id}");
        assert_eq!(
            report.read_model.status(order_id),
            Some(status),
            "{order_id}"
        );
    }
    assert_eq!(
        report.reloaded[cancelled].state.cancellation_reason(),
        Some("customer changed their mind")
    );
    assert_eq!(report.reloaded[completed].state.total_cents(), 4200);

    let refusals: Vec<_> = report
        .refused
        .iter()
        .map(|(id, error)| (id.as_str(), error.clone()))
        .collect();
    assert_eq!(refusals.len(), 4);
    assert_eq!(
        refusals[0],
        (cancelled.as_str(), OrderError::AlreadyCancelled)
    );
    assert_eq!(
        refusals[1],
        (completed.as_str(), OrderError::AlreadyCompleted)
    );
    assert_eq!(refusals[2], (open.as_str(), OrderError::AlreadyPlaced));
    assert_eq!(refusals[3].1, OrderError::NotPlaced);
    assert_eq!(
        report.read_model.status(refusals[3].0),
        None,
        "a refused command projects nothing"
    );

    assert_eq!(report.committed.len(), 5);
    assert_eq!(report.stored.len(), 5);
    assert_metadata(&report.stored, report.correlation_id, demo::orders::USER);
}

#[tokio::test]
async fn cart_demo_on_memory() {
    check_cart_demo(MemoryStore::new()).await;
}

#[tokio::test]
async fn cart_demo_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("carts.db"))
        .await
        .expect("open");
    check_cart_demo(store).await;
}

#[tokio::test]
async fn orders_demo_on_memory() {
    check_orders_demo(MemoryStore::new()).await;
}

#[tokio::test]
async fn orders_demo_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("orders.db"))
        .await
        .expect("open");
    check_orders_demo(store).await;
}

#[tokio::test]
async fn demos_can_run_twice_on_the_same_store() {
    let store = MemoryStore::new();
    check_cart_demo(store.clone()).await;
    check_cart_demo(store.clone()).await;
    check_orders_demo(store.clone()).await;
    check_orders_demo(store).await;
}
