//! `bank [--data-dir DIR] [--settle]`: runs the bank demo on `bank.db` in DIR (by default in a
//! fresh temp directory removed at the end): accounts, and transfers run by a process
//! manager. With `--settle`, only runs the transfer process until it has reacted to every
//! event in the file, then prints `checkpoint=N` (what the crash test kills and restarts).

use clap::Parser;
use cqrs_examples::demo::{self, DataDirArg, DemoError};
use cqrs_sqlite::SqliteStore;

/// Runs the bank demo on `bank.db`: accounts with an overdraft rule, and transfers driven by
/// a process manager (debit, credit, refund on a refused credit), each step exactly once.
#[derive(Debug, Parser)]
#[command(name = "bank")]
struct Cli {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Only run the transfer process on `bank.db` until it has reacted to every event, then
    /// print `checkpoint=N` and exit
    #[arg(long)]
    settle: bool,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let cli = Cli::parse();
    let data_dir = cli.data_dir.open()?;
    let store = SqliteStore::open(data_dir.path().join("bank.db")).await?;
    if cli.settle {
        let checkpoint = demo::bank::settle(store).await?;
        println!("checkpoint={checkpoint}");
        return Ok(());
    }
    demo::bank::run(store, &mut std::io::stdout()).await?;
    Ok(())
}
