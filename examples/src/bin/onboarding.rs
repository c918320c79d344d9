//! `onboarding [--data-dir DIR]`: runs the onboarding demo on `onboarding.db` in DIR (by
//! default in a fresh temp directory removed at the end), printing the framework's trace so
//! the request can be followed from `UserCreated` to the tasks it caused.

use cqrs_examples::demo::{self, DataDir, DemoError};
use cqrs_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let data_dir = DataDir::from_args(std::env::args().skip(1))?;
    let store = SqliteStore::open(data_dir.path().join("onboarding.db")).await?;
    demo::print_traces();
    demo::onboarding::run(store, &mut std::io::stdout()).await?;
    Ok(())
}
