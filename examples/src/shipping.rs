//! The shipping context: another bounded context, in another process with its own SQLite
//! file, that hears the orders context's events through NATS JetStream. It never shares the
//! orders' Rust types: [`OrderFact`] is its own reading of the events it cares about, decoded
//! by event type name. Each placed order schedules a [`Shipment`]; each cancelled order
//! cancels it; the `shipments` read model follows inline. The [`ShippingDesk`] is the
//! inbound reactor whose commands commit exactly once with the JetStream sequence.

use cqrs_core::{async_trait, Aggregate, DomainEvent, EventEnvelope, HandlerError, Reaction};
use cqrs_core::{Repository, RepositoryError};
use cqrs_nats::InboundReactor;
use cqrs_sqlite::rusqlite::{params, Connection};
use cqrs_sqlite::{ProjectedEvent, Projection, SqliteStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The orders context's events as shipping reads them: only what it needs (fields it does
/// not name, like the customer, are ignored by the weak schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum OrderFact {
    /// An order was placed: something to ship.
    OrderPlaced {
        /// The order.
        order_id: String,
        /// Its value, declared on the parcel.
        total_cents: i64,
    },
    /// An order was called off: its shipment too.
    OrderCancelled {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
}

/// What happened to a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum ShipmentEvent {
    /// A parcel is to go out for the order.
    ShipmentScheduled {
        /// The order shipped.
        order_id: String,
        /// The declared value.
        total_cents: i64,
    },
    /// The parcel will not go out.
    ShipmentCancelled {
        /// Why (the order's reason).
        reason: String,
    },
}

/// What can be asked of a shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentCommand {
    /// Schedule the parcel of an order.
    Schedule {
        /// The order.
        order_id: String,
        /// The declared value.
        total_cents: i64,
    },
    /// Call it off.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// Why a shipment refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShipmentError {
    /// A shipment is scheduled once.
    #[error("the shipment is already scheduled")]
    AlreadyScheduled,
    /// Only a scheduled shipment can be cancelled, once.
    #[error("the shipment is not scheduled (or cancelled already)")]
    NotScheduled,
}

/// Where a shipment stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShipmentStatus {
    /// Nothing yet.
    #[default]
    None,
    /// To go out.
    Scheduled,
    /// Called off.
    Cancelled,
}

/// One order's parcel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shipment {
    status: ShipmentStatus,
}

impl Shipment {
    /// Where it stands.
    pub fn status(&self) -> ShipmentStatus {
        self.status
    }
}

impl Aggregate for Shipment {
    const TYPE: &'static str = "Shipment";
    type Command = ShipmentCommand;
    type Event = ShipmentEvent;
    type Error = ShipmentError;

    fn handle(&self, command: ShipmentCommand) -> Result<Vec<ShipmentEvent>, ShipmentError> {
        match command {
            ShipmentCommand::Schedule {
                order_id,
                total_cents,
            } => match self.status {
                ShipmentStatus::None => Ok(vec![ShipmentEvent::ShipmentScheduled {
                    order_id,
                    total_cents,
                }]),
                _ => Err(ShipmentError::AlreadyScheduled),
            },
            ShipmentCommand::Cancel { reason } => match self.status {
                ShipmentStatus::Scheduled => Ok(vec![ShipmentEvent::ShipmentCancelled { reason }]),
                _ => Err(ShipmentError::NotScheduled),
            },
        }
    }

    fn apply(&mut self, event: &ShipmentEvent) {
        self.status = match event {
            ShipmentEvent::ShipmentScheduled { .. } => ShipmentStatus::Scheduled,
            ShipmentEvent::ShipmentCancelled { .. } => ShipmentStatus::Cancelled,
        };
    }
}

/// Turns the orders context's events into shipment commands.
pub struct ShippingDesk {
    shipments: Repository<Shipment, SqliteStore>,
}

impl ShippingDesk {
    /// A desk committing to `store` (the shipping context's own file).
    pub fn new(store: SqliteStore) -> Self {
        Self {
            shipments: Repository::new(store),
        }
    }
}

#[async_trait]
impl InboundReactor for ShippingDesk {
    type Event = OrderFact;

    fn name(&self) -> &str {
        "shipping-desk"
    }

    fn event_types(&self) -> BTreeSet<String> {
        ["OrderPlaced", "OrderCancelled"].map(String::from).into()
    }

    async fn react(
        &self,
        event: &EventEnvelope<OrderFact>,
        reaction: &mut Reaction,
    ) -> Result<(), HandlerError> {
        let (order_id, command) = match &event.event {
            OrderFact::OrderPlaced {
                order_id,
                total_cents,
            } => (
                order_id,
                ShipmentCommand::Schedule {
                    order_id: order_id.clone(),
                    total_cents: *total_cents,
                },
            ),
            OrderFact::OrderCancelled { order_id, reason } => (
                order_id,
                ShipmentCommand::Cancel {
                    reason: reason.clone(),
                },
            ),
        };
        match reaction.execute(&self.shipments, order_id, command).await {
            Ok(_) => Ok(()),
            Err(RepositoryError::Domain(refusal)) => Err(format!(
                "order `{order_id}` (stream `{}` version {}): {refusal}",
                event.stream_id, event.version
            )
            .into()),
            Err(other) => Err(other.into()),
        }
    }
}

/// `shipments(order_id, status, total_cents)`: the shipping read model, kept inline (in the
/// transaction that commits the shipment's events and the inbound's checkpoint).
pub struct ShipmentBoard;

impl Projection for ShipmentBoard {
    type Aggregate = Shipment;

    fn name(&self) -> &str {
        "shipments"
    }

    fn setup(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS shipments (
                 order_id    TEXT PRIMARY KEY,
                 status      TEXT NOT NULL,
                 total_cents INTEGER NOT NULL
             )",
        )?;
        Ok(())
    }

    fn apply(&self, conn: &Connection, event: &ProjectedEvent<Self>) -> Result<(), HandlerError> {
        match &event.event {
            ShipmentEvent::ShipmentScheduled {
                order_id,
                total_cents,
            } => conn.execute(
                "INSERT INTO shipments (order_id, status, total_cents) VALUES (?1, 'scheduled', ?2)",
                params![order_id, total_cents],
            )?,
            ShipmentEvent::ShipmentCancelled { .. } => conn.execute(
                "UPDATE shipments SET status = 'cancelled' WHERE order_id = ?1",
                [cqrs_core::aggregate_id::<Shipment>(&event.stream_id).unwrap_or_default()],
            )?,
        };
        Ok(())
    }

    fn reset(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute("DELETE FROM shipments", [])?;
        Ok(())
    }
}

/// The read model's rows, by order id: (status, declared value).
pub async fn shipments(
    store: &SqliteStore,
) -> Result<Vec<(String, String, i64)>, cqrs_core::StoreError> {
    store
        .query(|conn| {
            let mut rows = conn
                .prepare("SELECT order_id, status, total_cents FROM shipments ORDER BY order_id")?;
            let rows = rows.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })
        .await
}
