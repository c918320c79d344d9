//! `cart --db PATH [--reload]`: runs a few commands on cart `demo-1` in the SQLite file at
//! PATH, or with `--reload` only loads it, then prints `total_price=<n>` and `version=<n>`,
//! so that two processes can show the file holds the cart.

use cqrs_core::{Repository, RepositoryError};
use cqrs_examples::cart::{Cart, CartCommand};
use cqrs_examples::demo::DemoError;
use cqrs_sqlite::SqliteStore;
use std::path::PathBuf;

const CART_ID: &str = "demo-1";

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let (db, reload) = parse_args(std::env::args().skip(1))?;
    let repository = Repository::<Cart, _>::new(SqliteStore::open(&db).await?);
    if !reload {
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

fn parse_args(args: impl Iterator<Item = String>) -> Result<(PathBuf, bool), DemoError> {
    const USAGE: &str = "usage: cart --db PATH [--reload]";
    let mut db = None;
    let mut reload = false;
    let mut args = args;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => db = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            "--reload" => reload = true,
            _ => return Err(USAGE.into()),
        }
    }
    Ok((db.ok_or(USAGE)?, reload))
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
