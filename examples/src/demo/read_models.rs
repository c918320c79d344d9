//! The contrast the "minimum CQRS" orders draw for their read model (`order_read_models`):
//! an after-commit handler that fails leaves committed events without their read model,
//! while an inline projection that fails rolls the append back, so events and read model
//! never disagree.

use super::{session_tag, DemoError, Output};
use crate::order::{Order, OrderCommand, OrderEvent, OrderReadModel, OrderStatus};
use cqrs_core::async_trait;
use cqrs_core::{EventHandler, EventOf, HandlerError, Repository, RepositoryError, StoreError};
use cqrs_sqlite::rusqlite::{params, Connection, OptionalExtension};
use cqrs_sqlite::{ProjectedEvent, Projection, SqliteStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use uuid::Uuid;

/// A switch that makes a read model fail, standing in for a real outage.
#[derive(Clone, Default)]
pub struct Outage(Arc<AtomicBool>);

impl Outage {
    fn set(&self, down: bool) {
        self.0.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), HandlerError> {
        if self.0.load(Ordering::SeqCst) {
            Err("read model unavailable (simulated outage)".into())
        } else {
            Ok(())
        }
    }
}

/// The status column of `order_read_models` for an order event.
fn status_of(event: &OrderEvent) -> (&str, OrderStatus) {
    match event {
        OrderEvent::OrderPlaced { order_id, .. } => (order_id, OrderStatus::Placed),
        OrderEvent::OrderCompleted { order_id } => (order_id, OrderStatus::Completed),
        OrderEvent::OrderCancelled { order_id, .. } => (order_id, OrderStatus::Cancelled),
    }
}

/// `order_read_models(order_id, status)` in the event store's file, kept inline.
#[derive(Default)]
pub struct OrderReadModels {
    outage: Outage,
}

impl Projection for OrderReadModels {
    type Aggregate = Order;

    fn name(&self) -> &str {
        "order_read_models"
    }

    fn setup(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS order_read_models (
                 order_id TEXT PRIMARY KEY,
                 status   TEXT NOT NULL
             )",
        )?;
        Ok(())
    }

    fn apply(&self, conn: &Connection, event: &ProjectedEvent<Self>) -> Result<(), HandlerError> {
        self.outage.check()?;
        let (order_id, status) = status_of(&event.event);
        conn.execute(
            "INSERT INTO order_read_models (order_id, status) VALUES (?1, ?2)
             ON CONFLICT (order_id) DO UPDATE SET status = excluded.status",
            params![order_id, status.to_string()],
        )?;
        Ok(())
    }

    fn reset(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute("DELETE FROM order_read_models", [])?;
        Ok(())
    }
}

/// The same read model kept by an after-commit handler (in memory, for contrast).
pub struct OrderReadModelHandler {
    model: Arc<Mutex<OrderReadModel>>,
    outage: Outage,
}

#[async_trait]
impl EventHandler for OrderReadModelHandler {
    type Aggregate = Order;

    fn name(&self) -> &str {
        "order-read-model (after commit)"
    }

    async fn handle(&self, event: &EventOf<Self>) -> Result<(), HandlerError> {
        self.outage.check()?;
        self.model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .project(&event.event);
        Ok(())
    }
}

/// What the read-model demo observed, for the caller to check or show.
#[derive(Debug)]
pub struct ReadModelsDemo {
    /// The order handled by the after-commit handler.
    pub after_commit_order: String,
    /// The stream version `AfterCommit` reported (the events were committed).
    pub after_commit_version: u64,
    /// The order's status as the aggregate sees it after the failed handler.
    pub after_commit_state: OrderStatus,
    /// The status the handler's read model kept (behind the events).
    pub after_commit_model: Option<OrderStatus>,
    /// The order handled by the inline projection.
    pub inline_order: String,
    /// The order's stream version after the failed projection (the append was undone).
    pub inline_version_after_failure: u64,
    /// `order_read_models` after the failed projection.
    pub inline_model_after_failure: Option<String>,
    /// `order_read_models` once the outage is over and the command is retried.
    pub inline_model_after_retry: Option<String>,
}

/// A read model's status as printed: the status, or `missing`.
fn shown(status: Option<impl ToString>) -> String {
    status.map_or_else(|| "missing".to_owned(), |status| status.to_string())
}

async fn read_status(store: &SqliteStore, order_id: &str) -> Result<Option<String>, DemoError> {
    let order_id = order_id.to_owned();
    Ok(store
        .query(move |conn| {
            conn.query_row(
                "SELECT status FROM order_read_models WHERE order_id = ?1",
                [order_id],
                |row| row.get(0),
            )
            .optional()
        })
        .await?)
}

/// Runs the contrast on `store`, printing each step to `out`.
pub async fn run(store: SqliteStore, out: Output<'_>) -> Result<ReadModelsDemo, DemoError> {
    let tag = session_tag(Uuid::new_v4());
    let [after_commit_order, inline_order] = ["a", "b"].map(|n| format!("{tag}-{n}"));
    let place = |order_id: &str| OrderCommand::Place {
        order_id: order_id.to_owned(),
        customer_id: "customer-7".to_owned(),
        total_cents: 4200,
    };
    let complete = |order_id: &str| OrderCommand::Complete {
        order_id: order_id.to_owned(),
    };
    writeln!(
        out,
        "== Order read models: after-commit handler vs inline projection"
    )?;

    writeln!(
        out,
        "-- 1. after-commit handler: runs once the events are durable"
    )?;
    let outage = Outage::default();
    let model = Arc::new(Mutex::new(OrderReadModel::default()));
    let orders =
        Repository::<Order, _>::new(store.clone()).with_after_commit(OrderReadModelHandler {
            model: model.clone(),
            outage: outage.clone(),
        });
    let status_in_model = |order_id: &str| {
        model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .status(order_id)
    };
    orders
        .execute(&after_commit_order, place(&after_commit_order))
        .await?;
    writeln!(
        out,
        "> Order-{after_commit_order}: Place -> committed; read model: {}",
        shown(status_in_model(&after_commit_order))
    )?;
    outage.set(true);
    let after_commit_version = match orders
        .execute(&after_commit_order, complete(&after_commit_order))
        .await
    {
        Err(RepositoryError::AfterCommit {
            version, failures, ..
        }) => {
            writeln!(
                out,
                "> Order-{after_commit_order}: Complete while the read model is down -> events \
                 COMMITTED (version {version}), handler failed: {}",
                failures
                    .first()
                    .map_or(String::new(), |failure| failure.to_string())
            )?;
            version
        }
        other => return Err(format!("expected an after-commit failure, got {other:?}").into()),
    };
    outage.set(false);
    let after_commit_state = orders.load(&after_commit_order).await?.state.status();
    let after_commit_model = status_in_model(&after_commit_order);
    writeln!(
        out,
        "    the order is {after_commit_state}, its read model says {}: INCONSISTENT until \
         repaired (e.g. by rebuilding it from the log)",
        shown(after_commit_model)
    )?;

    writeln!(
        out,
        "-- 2. inline projection: runs inside the append's transaction"
    )?;
    store
        .add_projection(OrderReadModels {
            outage: outage.clone(),
        })
        .await?;
    let orders = Repository::<Order, _>::new(store.clone());
    orders.execute(&inline_order, place(&inline_order)).await?;
    writeln!(
        out,
        "> Order-{inline_order}: Place -> committed; order_read_models: {}",
        shown(read_status(&store, &inline_order).await?)
    )?;
    outage.set(true);
    match orders.execute(&inline_order, complete(&inline_order)).await {
        Err(RepositoryError::Store(failure @ StoreError::Projection { .. })) => writeln!(
            out,
            "> Order-{inline_order}: Complete while the read model is down -> ROLLED BACK: \
             {failure}"
        )?,
        other => return Err(format!("expected a projection failure, got {other:?}").into()),
    }
    outage.set(false);
    let inline_version_after_failure = orders.load(&inline_order).await?.version;
    let inline_model_after_failure = read_status(&store, &inline_order).await?;
    writeln!(
        out,
        "    the order is still at version {inline_version_after_failure}, its read model \
         says {}: CONSISTENT (neither happened)",
        shown(inline_model_after_failure.as_ref())
    )?;
    orders
        .execute(&inline_order, complete(&inline_order))
        .await?;
    let inline_model_after_retry = read_status(&store, &inline_order).await?;
    writeln!(
        out,
        "> Order-{inline_order}: Complete once it is back -> committed; order_read_models: \
         {}\n",
        shown(inline_model_after_retry.as_ref())
    )?;
    Ok(ReadModelsDemo {
        after_commit_order,
        after_commit_version,
        after_commit_state,
        after_commit_model,
        inline_order,
        inline_version_after_failure,
        inline_model_after_failure,
        inline_model_after_retry,
    })
}
