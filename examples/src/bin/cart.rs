//! `cart --db PATH [--reload]`: runs a few commands on cart `demo-1` in the SQLite file at
//! PATH, or with `--reload` only loads it, then prints `total_price=<n>` and `version=<n>`,
//! so that two processes can show the file holds the cart.

use clap::Parser;
use cqrs_core::{Repository, RepositoryError};
use cqrs_examples::cart::{Cart, CartCommand};
use cqrs_examples::demo::DemoError;
use cqrs_sqlite::SqliteStore;
use std::path::PathBuf;

const CART_ID: &str = "demo-1";

/// Runs a few commands on cart `demo-1` in a SQLite file (or only loads it), then prints
/// `total_price=<n>` and `version=<n>`, so that two processes can show the file holds the cart.
#[derive(Debug, Parser)]
#[command(name = "cart")]
struct Cli {
    /// The SQLite file holding the cart, created if missing
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Only load the cart and print it; run no command
    #[arg(long)]
    reload: bool,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let cli = Cli::parse();
    let repository = Repository::<Cart, _>::new(SqliteStore::open(&cli.db).await?);
    if !cli.reload {
        for command in commands() {
            match repository.execute(CART_ID, command).await {
                Ok(_) => {}
                // On a second run the coupon is refused; the other commands still apply.
                Err(RepositoryError::Domain(refusal)) => eprintln!("refused: {refusal}"),
                Err(other) => return Err(other.into()),
            }
        }
    }
    let loaded = repository.load(CART_ID).await?;
    println!("total_price={}", loaded.state.total_price());
    println!("version={}", loaded.version);
    Ok(())
}

fn commands() -> Vec<CartCommand> {
    let cart_id = CART_ID.to_owned();
    vec![
        CartCommand::AddItem {
            cart_id: cart_id.clone(),
            item_id: "tea".to_owned(),
            quantity: 2,
            price: 450,
        },
        CartCommand::AddItem {
            cart_id: cart_id.clone(),
            item_id: "cup".to_owned(),
            quantity: 1,
            price: 1200,
        },
        CartCommand::UpdateQuantity {
            cart_id: cart_id.clone(),
            item_id: "tea".to_owned(),
            new_quantity: 3,
        },
        CartCommand::ApplyCoupon {
            cart_id,
            coupon_code: "WELCOME".to_owned(),
            discount_amount: 150,
            campaign: None,
        },
    ]
}
