//! `reporting --feed URL [--data-dir DIR] [--until POSITION] [--long-poll]`: the reporting
//! context, another process: follows the orders context's feed over HTTP into a sales read
//! model in its own SQLite file (`reporting.db`), each page committed with its checkpoint.

use clap::Parser;
use cqrs_examples::demo::{DataDirArg, DemoError};
use cqrs_examples::sales::{read_sales, SalesProjection};
use cqrs_http::client::{FeedFollower, LiveMode};
use cqrs_sqlite::SqliteStore;

/// Follows an orders feed into a sales read model in `reporting.db`, exactly once.
#[derive(Debug, Parser)]
#[command(name = "reporting")]
struct Cli {
    /// The feed's base URL, e.g. http://127.0.0.1:8080 (as printed by `serve`)
    #[arg(long)]
    feed: String,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Stop once the order event at this position (the last one wanted) is in the read
    /// model, and print it [default: follow until killed]
    #[arg(long, value_name = "POSITION")]
    until: Option<u64>,
    /// Follow by long-polling instead of Server-Sent Events
    #[arg(long)]
    long_poll: bool,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let cli = Cli::parse();
    let data_dir = cli.data_dir.open()?;
    let db = data_dir.path().join("reporting.db");
    let store = SqliteStore::open(&db).await?;
    let consumer = store.projection_consumer(SalesProjection).await?;
    let live = if cli.long_poll {
        LiveMode::LongPoll
    } else {
        LiveMode::Sse
    };
    println!("following {} into {}", cli.feed, db.display());
    let mut running = FeedFollower::new(cli.feed, "reporting-sales", consumer)
        .with_live(live)
        .start();
    loop {
        let target = cli.until.unwrap_or(running.checkpoint() + 1);
        running.wait_for(target).await?;
        println!("checkpoint {}", running.checkpoint());
        if cli.until.is_some() {
            break;
        }
    }
    running.stop().await?;
    let conn = cqrs_sqlite::rusqlite::Connection::open(&db)?;
    for (customer, sales) in read_sales(&conn)? {
        println!(
            "{customer}: {} orders, {} cents, {} completed, {} cancelled",
            sales.orders, sales.placed_cents, sales.completed, sales.cancelled
        );
    }
    Ok(())
}
