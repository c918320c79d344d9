//! `cqrs-examples [--data-dir DIR]`: runs every example, the cart demo then the orders demo,
//! each on its own SQLite file (by default in a fresh temp directory removed at the end).

use cqrs_examples::demo::{self, DataDir, DemoError};
use cqrs_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let data_dir = DataDir::from_args(std::env::args().skip(1))?;
    let mut out = std::io::stdout();
    println!("data directory: {}", data_dir.path().display());
    let carts = SqliteStore::open(data_dir.path().join("carts.db")).await?;
    demo::cart::run(carts, &mut out).await?;
    let orders = SqliteStore::open(data_dir.path().join("orders.db")).await?;
    demo::orders::run(orders, &mut out).await?;
    Ok(())
}
