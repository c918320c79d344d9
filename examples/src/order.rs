//! The order of the "minimum CQRS" story: placed, then completed or cancelled, plus the read
//! model (`order_id -> status`) that a projection keeps from the order events.

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What happened to an order; each variant is one fact with complete data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum OrderEvent {
    /// A customer placed the order for a total.
    OrderPlaced {
        /// The order.
        order_id: String,
        /// Who placed it.
        customer_id: String,
        /// What it costs, in cents.
        total_cents: i64,
    },
    /// The order was fulfilled.
    OrderCompleted {
        /// The order.
        order_id: String,
    },
    /// The order was called off before completion.
    OrderCancelled {
        /// The order.
        order_id: String,
        /// Why, as told by whoever cancelled it.
        reason: String,
    },
}

/// What can be asked of an order; each accepted command records exactly one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place a new order.
    Place {
        /// The order.
        order_id: String,
        /// The customer placing it.
        customer_id: String,
        /// Its total in cents, not negative.
        total_cents: i64,
    },
    /// Mark a placed order as fulfilled.
    Complete {
        /// The order.
        order_id: String,
    },
    /// Call off a placed order.
    Cancel {
        /// The order.
        order_id: String,
        /// Why, not empty, so support can answer the customer.
        reason: String,
    },
}

/// Why an order refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Only a placed order can be completed or cancelled.
    #[error("the order has not been placed")]
    NotPlaced,
    /// An order is placed once.
    #[error("the order is already placed")]
    AlreadyPlaced,
    /// A completed order is final.
    #[error("the order is already completed")]
    AlreadyCompleted,
    /// A cancelled order is final.
    #[error("the order is cancelled")]
    AlreadyCancelled,
    /// A total is what the customer pays.
    #[error("an order total must not be negative, got {0}")]
    NegativeTotal(i64),
    /// Cancellations must be explainable.
    #[error("a cancellation needs a reason")]
    MissingReason,
}

/// Where an order stands in its life; the read model shows the same value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// No event yet.
    #[default]
    New,
    /// Placed and open.
    Placed,
    /// Fulfilled; final.
    Completed,
    /// Called off; final.
    Cancelled,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrderStatus::New => "new",
            OrderStatus::Placed => "placed",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
        })
    }
}

/// An order as its events made it; serializable so that it can be snapshotted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    status: OrderStatus,
    customer_id: String,
    total_cents: i64,
    cancellation_reason: Option<String>,
}

impl Order {
    /// Where the order stands, which decides the commands it accepts.
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// Who placed it (empty before it is placed).
    pub fn customer_id(&self) -> &str {
        &self.customer_id
    }

    /// Its total in cents (0 before it is placed).
    pub fn total_cents(&self) -> i64 {
        self.total_cents
    }

    /// Why it was cancelled, if it was.
    pub fn cancellation_reason(&self) -> Option<&str> {
        self.cancellation_reason.as_deref()
    }

    fn require_open(&self) -> Result<(), OrderError> {
        match self.status {
            OrderStatus::New => Err(OrderError::NotPlaced),
            OrderStatus::Placed => Ok(()),
            OrderStatus::Completed => Err(OrderError::AlreadyCompleted),
            OrderStatus::Cancelled => Err(OrderError::AlreadyCancelled),
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status={}", self.status)?;
        if self.status != OrderStatus::New {
            write!(
                f,
                " customer={} total_cents={}",
                self.customer_id, self.total_cents
            )?;
        }
        if let Some(reason) = &self.cancellation_reason {
            write!(f, " reason={reason:?}")?;
        }
        Ok(())
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn handle(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        let event = match command {
            OrderCommand::Place {
                order_id,
                customer_id,
                total_cents,
            } => {
                if total_cents < 0 {
                    return Err(OrderError::NegativeTotal(total_cents));
                }
                if self.status != OrderStatus::New {
                    return Err(OrderError::AlreadyPlaced);
                }
                OrderEvent::OrderPlaced {
                    order_id,
                    customer_id,
                    total_cents,
                }
            }
            OrderCommand::Complete { order_id } => {
                self.require_open()?;
                OrderEvent::OrderCompleted { order_id }
            }
            OrderCommand::Cancel { order_id, reason } => {
                if reason.trim().is_empty() {
                    return Err(OrderError::MissingReason);
                }
                self.require_open()?;
                OrderEvent::OrderCancelled { order_id, reason }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPlaced {
                customer_id,
                total_cents,
                ..
            } => {
                self.status = OrderStatus::Placed;
                self.customer_id = customer_id.clone();
                self.total_cents = *total_cents;
            }
            OrderEvent::OrderCompleted { .. } => self.status = OrderStatus::Completed,
            OrderEvent::OrderCancelled { reason, .. } => {
                self.status = OrderStatus::Cancelled;
                self.cancellation_reason = Some(reason.clone());
            }
        }
    }
}

/// The query side of minimum CQRS: each order's status, kept by folding order events in
/// global order, so a list of orders is one map lookup instead of one replay per order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderReadModel {
    statuses: BTreeMap<String, OrderStatus>,
}

impl OrderReadModel {
    /// Upserts the row of the event's order; like `apply`, it needs nothing but the event.
    pub fn project(&mut self, event: &OrderEvent) {
        let (order_id, status) = match event {
            OrderEvent::OrderPlaced { order_id, .. } => (order_id, OrderStatus::Placed),
            OrderEvent::OrderCompleted { order_id } => (order_id, OrderStatus::Completed),
            OrderEvent::OrderCancelled { order_id, .. } => (order_id, OrderStatus::Cancelled),
        };
        self.statuses.insert(order_id.clone(), status);
    }

    /// One order's status, or `None` for an order the projection has not seen.
    pub fn status(&self, order_id: &str) -> Option<OrderStatus> {
        self.statuses.get(order_id).copied()
    }

    /// Every row, by order id, to list orders.
    pub fn rows(&self) -> &BTreeMap<String, OrderStatus> {
        &self.statuses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_records_lifecycle_and_data() {
        let mut order = Order::default();
        order.apply(&OrderEvent::OrderPlaced {
            order_id: "o".into(),
            customer_id: "c".into(),
            total_cents: 1200,
        });
        assert_eq!(order.status(), OrderStatus::Placed);
        assert_eq!((order.customer_id(), order.total_cents()), ("c", 1200));
        order.apply(&OrderEvent::OrderCancelled {
            order_id: "o".into(),
            reason: "late".into(),
        });
        assert_eq!(order.status(), OrderStatus::Cancelled);
        assert_eq!(order.cancellation_reason(), Some("late"));
        assert_eq!(
            order.to_string(),
            "status=cancelled customer=c total_cents=1200 reason=\"late\""
        );
    }

    #[test]
    fn read_model_keeps_the_latest_status_per_order() {
        let mut view = OrderReadModel::default();
        for event in [
            OrderEvent::OrderPlaced {
                order_id: "a".into(),
                customer_id: "c".into(),
                total_cents: 1,
            },
            OrderEvent::OrderPlaced {
                order_id: "b".into(),
                customer_id: "c".into(),
                total_cents: 2,
            },
            OrderEvent::OrderCompleted {
                order_id: "a".into(),
            },
        ] {
            view.project(&event);
        }
        assert_eq!(view.status("a"), Some(OrderStatus::Completed));
        assert_eq!(view.status("b"), Some(OrderStatus::Placed));
        assert_eq!(view.status("z"), None);
        assert_eq!(view.rows().len(), 2);
    }
}
