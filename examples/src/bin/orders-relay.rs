//! `orders-relay place|relay|delete-stream`: the orders context's side of the NATS example. `place` places
//! (and cancels some) orders in an SQLite file; `relay` publishes that file's log to a
//! JetStream stream, the log being the outbox, until killed (or, with `--until-caught-up`,
//! until everything stored when it started is acknowledged).

use clap::{Args, Parser, Subcommand};
use cqrs_core::{EventStore, LogRead, Repository};
use cqrs_examples::order::{Order, OrderCommand};
use cqrs_nats::async_nats;
use cqrs_nats::{Relay, RelayConfig};
use cqrs_sqlite::SqliteStore;
use std::path::PathBuf;

/// The orders context of the NATS example: places orders, and relays its log to JetStream.
#[derive(Debug, Parser)]
#[command(name = "orders-relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Places orders `o<from>`..`o<from+orders-1>` in the orders file, cancelling every
    /// `cancel-every`th right after placing it
    Place {
        /// The orders context's SQLite file
        #[arg(long)]
        db: PathBuf,
        /// How many orders
        #[arg(long, default_value_t = 20)]
        orders: u64,
        /// The number of the first order
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Cancel every Nth order (0: none)
        #[arg(long, default_value_t = 4)]
        cancel_every: u64,
    },
    /// Publishes the orders file's log to JetStream (creating the stream if missing)
    Relay {
        /// The orders context's SQLite file
        #[arg(long)]
        db: PathBuf,
        #[command(flatten)]
        nats: NatsArgs,
        /// Exit once every event stored at start is acknowledged, printing `relayed=N`
        #[arg(long)]
        until_caught_up: bool,
    },
    /// Deletes the JetStream stream (the end of a demo run)
    DeleteStream {
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// Where the events go.
#[derive(Debug, Args)]
struct NatsArgs {
    /// The NATS server
    #[arg(long, default_value = "127.0.0.1:4222")]
    nats: String,
    /// The JetStream stream
    #[arg(long, default_value = "ORDERS")]
    stream: String,
    /// The subject prefix: events go to `<prefix>.<aggregate type>.<stream id>`
    #[arg(long, default_value = "orders")]
    prefix: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match Cli::parse().command {
        Command::Place {
            db,
            orders,
            from,
            cancel_every,
        } => {
            let repository = Repository::<Order, _>::new(SqliteStore::open(db).await?);
            for n in from..from + orders {
                let order_id = format!("o{n}");
                let place = OrderCommand::Place {
                    order_id: order_id.clone(),
                    customer_id: format!("c{}", n % 7),
                    total_cents: i64::try_from(n * 100)?,
                };
                repository.execute(&order_id, place).await?;
                if cancel_every > 0 && n % cancel_every == 0 {
                    let cancel = OrderCommand::Cancel {
                        order_id: order_id.clone(),
                        reason: "changed my mind".to_owned(),
                    };
                    repository.execute(&order_id, cancel).await?;
                }
            }
            println!("placed={orders}");
        }
        Command::Relay {
            db,
            nats,
            until_caught_up,
        } => {
            let store = SqliteStore::open(db).await?;
            let client = async_nats::connect(&nats.nats).await?;
            let jetstream = async_nats::jetstream::new(client);
            let config = RelayConfig::new("orders-relay", nats.stream, nats.prefix);
            let relay = Relay::new(store.clone(), jetstream, config);
            relay.ensure_stream().await?;
            let head = store
                .read_log(&LogRead::backward(u64::MAX, 1))
                .await?
                .first()
                .map_or(0, |event| event.position);
            let mut running = relay.start();
            if until_caught_up {
                running.wait_for(head).await?;
                running.stop().await?;
                println!("relayed={head}");
            } else {
                // Until killed, or until the relay stops on an error.
                running.wait_for(u64::MAX).await?;
            }
        }
        Command::DeleteStream { nats } => {
            let jetstream = async_nats::jetstream::new(async_nats::connect(&nats.nats).await?);
            jetstream.delete_stream(&nats.stream).await?;
            println!("deleted={}", nats.stream);
        }
    }
    Ok(())
}
