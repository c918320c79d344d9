//! `library [--data-dir DIR]`: runs the library demo alone on `library.db` in DIR (by default
//! in a fresh temp directory removed at the end).

use clap::Parser;
use cqrs_examples::demo::{self, DataDirArg, DemoError};
use cqrs_sqlite::SqliteStore;

/// Runs the library lending demo on `library.db`: a subscription keeps members' loans in
/// step with the books; run it twice on one directory to see it resume from its checkpoint.
#[derive(Debug, Parser)]
#[command(name = "library")]
struct Cli {
    #[command(flatten)]
    data_dir: DataDirArg,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let data_dir = Cli::parse().data_dir.open()?;
    let store = SqliteStore::open(data_dir.path().join("library.db")).await?;
    demo::library::run(store, &mut std::io::stdout()).await?;
    Ok(())
}
