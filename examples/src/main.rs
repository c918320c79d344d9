//! `cqrs-examples [--data-dir DIR | --postgres URL [--keep-schemas]]`: runs every example in
//! sequence (cart, orders and their read models, library, onboarding, bank transfers), each
//! on its own SQLite file (by default in a fresh temp directory removed at the end), or with
//! `--postgres` each in a fresh PostgreSQL schema of its own, dropped at the end. The
//! onboarding story also prints the framework's trace.

use clap::Parser;
use cqrs_examples::demo::{self, DataDirArg, DemoError};
use cqrs_sqlite::SqliteStore;

/// Runs every example in sequence (cart, orders and their read models, library lending, user
/// onboarding with its trace, bank transfers run by a process manager), each on its own SQLite
/// file, or each in a PostgreSQL schema of its own.
#[derive(Debug, Parser)]
#[command(name = "cqrs-examples")]
struct Cli {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Runs the stories on the PostgreSQL server at URL instead (e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres), each in a fresh schema
    /// `cqrs_examples_<tag>_<story>`, dropped at the end; the read-model contrast, written
    /// for SQLite, is left out
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    postgres: Option<String>,
    /// With --postgres: keeps the schemas instead of dropping them
    #[arg(long, requires = "postgres")]
    keep_schemas: bool,
}

#[tokio::main]
async fn main() -> Result<(), DemoError> {
    let cli = Cli::parse();
    let mut out = std::io::stdout();
    if let Some(url) = &cli.postgres {
        let run = demo::on_postgres::run(url, cli.keep_schemas, true, &mut out).await?;
        let fate = if run.kept { "kept" } else { "dropped" };
        println!("schemas {fate}: {}", run.schemas.join(", "));
        return Ok(());
    }
    let data_dir = cli.data_dir.open()?;
    let open = |name: &str| SqliteStore::open(data_dir.path().join(name));
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
