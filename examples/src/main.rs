//! `cqrs-examples [--data-dir DIR]`: runs every example in sequence (cart, orders and their
//! read models, library, onboarding, bank transfers), each on its own SQLite file (by default in a fresh temp
//! directory removed at the end). The onboarding story also prints the framework's trace.

use clap::Parser;
use cqrs_examples::demo::{self, DataDirArg, DemoError};
use cqrs_sqlite::SqliteStore;

/// Runs every example in sequence (cart, orders and their read models, library lending, user
/// onboarding with its trace, bank transfers run by a process manager), each on its own SQLite
/// file.
#[derive(Debug, Parser)]
#[command(name = "cqrs-examples")]
struct Cli {
    #[command(flatten)]
    data_dir: DataDirArg,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let data_dir = Cli::parse().data_dir.open()?;
    let open = |name: &str| SqliteStore::open(data_dir.path().join(name));
    let mut out = std::io::stdout();
    println!("data directory: {}", data_dir.path().display());
    demo::cart::run(open("carts.db").await?, &mut out).await?;
    let orders = open("orders.db").await?;
    demo::orders::run(orders.clone(), &mut out).await?;
    demo::read_models::run(orders, &mut out).await?;
    demo::library::run(open("library.db").await?, &mut out).await?;
    demo::bank::run(open("bank.db").await?, &mut out).await?;
    demo::print_traces();
    demo::onboarding::run(open("onboarding.db").await?, &mut out).await?;
    Ok(())
}
