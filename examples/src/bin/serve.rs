//! `serve [--data-dir DIR] [--addr ADDR] [--no-stories] [--page-size N]`: fills
//! `events.db` with the four stories (cart, orders, library, onboarding), then serves its
//! feed and the event browser over HTTP on 127.0.0.1.

use clap::Parser;
use cqrs_examples::demo::{self, DataDirArg, DemoError};
use cqrs_http::{FeedConfig, HttpFeed};
use cqrs_sqlite::SqliteStore;

/// Fills a store with the four stories and serves its feed (`/feed`) and event browser
/// (`/browse`).
#[derive(Debug, Parser)]
#[command(name = "serve")]
struct Cli {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Where to listen (port 0: any free port; the address is printed)
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Serve the store as it is, without running the stories first
    #[arg(long)]
    no_stories: bool,
    /// Positions per feed page (fixed for a deployment)
    #[arg(long, default_value_t = 100)]
    page_size: u64,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let cli = Cli::parse();
    let data_dir = cli.data_dir.open()?;
    let store = SqliteStore::open(data_dir.path().join("events.db")).await?;
    if !cli.no_stories {
        let mut out = std::io::sink();
        demo::cart::run(store.clone(), &mut out).await?;
        demo::orders::run(store.clone(), &mut out).await?;
        demo::library::run(store.clone(), &mut out).await?;
        demo::onboarding::run(store.clone(), &mut out).await?;
    }
    let subscriptions = [demo::library::SUBSCRIPTION, demo::onboarding::SUBSCRIPTION];
    let router = HttpFeed::new(store.clone())
        .with_config(FeedConfig::default().with_page_size(cli.page_size))
        .with_subscriptions(store, subscriptions)
        .router();
    let listener = tokio::net::TcpListener::bind(&cli.addr).await?;
    let address = listener.local_addr()?;
    println!("listening on http://{address} (feed: /feed, browser: /browse)");
    axum::serve(listener, router).await?;
    Ok(())
}
