//! `onboarding [--data-dir DIR]`: runs the onboarding demo on `onboarding.db` in DIR (by
//! default in a fresh temp directory removed at the end), printing the framework's trace so
//! the request can be followed from `UserCreated` to the tasks it caused.

use clap::Parser;
use cqrs_examples::demo::{self, DataDirArg, DemoError};
use cqrs_sqlite::SqliteStore;

/// Runs the user onboarding demo on `onboarding.db`, printing the framework's trace from
/// `UserCreated` to the tasks it caused.
#[derive(Debug, Parser)]
#[command(name = "onboarding")]
struct Cli {
    #[command(flatten)]
    data_dir: DataDirArg,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let data_dir = Cli::parse().data_dir.open()?;
    let store = SqliteStore::open(data_dir.path().join("onboarding.db")).await?;
    demo::print_traces();
    demo::onboarding::run(store, &mut std::io::stdout()).await?;
    Ok(())
}
