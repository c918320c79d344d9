//! The reporting context's read model: sales per customer, built from the orders context's
//! events as they arrive over HTTP (see the `reporting` binary). It adds as it goes (a
//! count, a sum), so an event applied twice would show: the follower's exactly-once check.

use crate::order::{Order, OrderEvent};
use cqrs_core::HandlerError;
use cqrs_sqlite::rusqlite::{params, Connection, OptionalExtension};
use cqrs_sqlite::{ProjectedEvent, Projection};
use std::collections::BTreeMap;

/// One customer's sales, as the read model holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerSales {
    /// Orders placed.
    pub orders: i64,
    /// Their totals, in cents.
    pub placed_cents: i64,
    /// Orders completed.
    pub completed: i64,
    /// Orders cancelled.
    pub cancelled: i64,
}

/// Keeps `sales_by_customer` (and `sales_orders`, which customer placed which order) in the
/// reporting process's own SQLite file.
#[derive(Debug, Clone, Copy, Default)]
pub struct SalesProjection;

impl Projection for SalesProjection {
    type Aggregate = Order;

    fn name(&self) -> &str {
        "sales"
    }

    fn setup(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS sales_by_customer (
                 customer_id TEXT PRIMARY KEY,
                 orders INTEGER NOT NULL DEFAULT 0,
                 placed_cents INTEGER NOT NULL DEFAULT 0,
                 completed INTEGER NOT NULL DEFAULT 0,
                 cancelled INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS sales_orders (
                 order_id TEXT PRIMARY KEY,
                 customer_id TEXT NOT NULL);",
        )?;
        Ok(())
    }

    fn apply(&self, conn: &Connection, event: &ProjectedEvent<Self>) -> Result<(), HandlerError> {
        let (order_id, column) = match &event.event {
            OrderEvent::OrderPlaced {
                order_id,
                customer_id,
                total_cents,
            } => {
                conn.execute(
                    "INSERT INTO sales_orders (order_id, customer_id) VALUES (?1, ?2)",
                    params![order_id, customer_id],
                )?;
                conn.execute(
                    "INSERT INTO sales_by_customer (customer_id, orders, placed_cents)
                     VALUES (?1, 1, ?2)
                     ON CONFLICT (customer_id) DO UPDATE SET
                         orders = orders + 1, placed_cents = placed_cents + ?2",
                    params![customer_id, total_cents],
                )?;
                return Ok(());
            }
            OrderEvent::OrderCompleted { order_id } => (order_id, "completed"),
            OrderEvent::OrderCancelled { order_id, .. } => (order_id, "cancelled"),
        };
        let customer: Option<String> = conn
            .query_row(
                "SELECT customer_id FROM sales_orders WHERE order_id = ?1",
                [order_id],
                |row| row.get(0),
            )
            .optional()?;
        let customer = customer.ok_or_else(|| {
            format!(
                "order {order_id} was never placed in this feed (position {})",
                event.position
            )
        })?;
        conn.execute(
            &format!("UPDATE sales_by_customer SET {column} = {column} + 1 WHERE customer_id = ?1"),
            [customer],
        )?;
        Ok(())
    }

    fn reset(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute_batch("DELETE FROM sales_by_customer; DELETE FROM sales_orders;")?;
        Ok(())
    }
}

/// The read model, customer by customer.
pub fn read_sales(conn: &Connection) -> Result<BTreeMap<String, CustomerSales>, HandlerError> {
    let mut statement = conn.prepare(
        "SELECT customer_id, orders, placed_cents, completed, cancelled FROM sales_by_customer",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            CustomerSales {
                orders: row.get(1)?,
                placed_cents: row.get(2)?,
                completed: row.get(3)?,
                cancelled: row.get(4)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
