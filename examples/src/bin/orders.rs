//! `orders [--data-dir DIR]`: runs the orders demo and the read-model demo (after-commit
//! handler vs inline projection) on `orders.db` in DIR (by default in a fresh temp directory
//! removed at the end).

use clap::Parser;
use cqrs_examples::demo::{self, DataDirArg, DemoError};
use cqrs_sqlite::SqliteStore;

/// Runs the "minimum CQRS" orders demo and the read-model demo (after-commit handler vs
/// inline projection) on `orders.db`.
#[derive(Debug, Parser)]
#[command(name = "orders")]
struct Cli {
    #[command(flatten)]
    data_dir: DataDirArg,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let data_dir = Cli::parse().data_dir.open()?;
    let store = SqliteStore::open(data_dir.path().join("orders.db")).await?;
    let mut out = std::io::stdout();
    demo::orders::run(store.clone(), &mut out).await?;
    demo::read_models::run(store, &mut out).await?;
    Ok(())
}
