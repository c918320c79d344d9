//! `library [--data-dir DIR]`: runs the library demo alone on `library.db` in DIR (by default
//! in a fresh temp directory removed at the end).

use cqrs_examples::demo::{self, DataDir, DemoError};
use cqrs_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let data_dir = DataDir::from_args(std::env::args().skip(1))?;
    let store = SqliteStore::open(data_dir.path().join("library.db")).await?;
    demo::library::run(store, &mut std::io::stdout()).await?;
    Ok(())
}
