//! `shipping --db FILE`: the shipping context of the NATS example, in its own process with
//! its own SQLite file. Hears the orders context's `OrderPlaced` / `OrderCancelled` from
//! JetStream and keeps shipments (and the `shipments` read model) exactly once, until killed
//! (or, with `--until-caught-up`, until every message in the stream at start is handled).

use clap::Parser;
use cqrs_examples::shipping::{self, ShipmentBoard, ShippingDesk};
use cqrs_nats::async_nats;
use cqrs_nats::{Inbound, InboundConfig};
use cqrs_sqlite::SqliteStore;
use std::path::PathBuf;

/// The shipping context: schedules a shipment per placed order, cancels it with the order.
#[derive(Debug, Parser)]
#[command(name = "shipping")]
struct Cli {
    /// The shipping context's SQLite file
    #[arg(long)]
    db: PathBuf,
    /// The NATS server
    #[arg(long, default_value = "127.0.0.1:4222")]
    nats: String,
    /// The orders context's JetStream stream
    #[arg(long, default_value = "ORDERS")]
    stream: String,
    /// The orders context's subject prefix
    #[arg(long, default_value = "orders")]
    prefix: String,
    /// Exit once every message in the stream at start is handled, printing the read model
    #[arg(long)]
    until_caught_up: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    let store = SqliteStore::open(&cli.db).await?;
    store.add_projection(ShipmentBoard).await?;
    let client = async_nats::connect(&cli.nats).await?;
    let jetstream = async_nats::jetstream::new(client);
    let last = jetstream
        .get_stream(&cli.stream)
        .await?
        .get_info()
        .await?
        .state
        .last_sequence;
    let config = InboundConfig::new("shipping", cli.stream, format!("{}.Order.>", cli.prefix));
    let inbound = Inbound::new(
        ShippingDesk::new(store.clone()),
        store.clone(),
        jetstream,
        config,
    );
    let mut running = inbound.start();
    if cli.until_caught_up {
        running.wait_for(last).await?;
        running.stop().await?;
        for (order_id, status, total_cents) in shipping::shipments(&store).await? {
            println!("{order_id} {status} {total_cents}");
        }
        println!("handled={last}");
    } else {
        // Until killed, or until the inbound stops on an error.
        running.wait_for(u64::MAX).await?;
    }
    Ok(())
}
