//! The stories on PostgreSQL (`cqrs-examples --postgres URL`): each on a `PostgresStore` in
//! a fresh schema of its own (`cqrs_examples_<tag>_<story>`), dropped at the end, also when
//! a story fails, unless the caller keeps them. The read-model contrast is left out: its
//! projection is written for SQLite.

use super::{bank, cart, library, onboarding, orders, print_traces, DemoError, Output};
use cqrs_postgres::tokio_postgres::{self, NoTls};
use cqrs_postgres::{PostgresOptions, PostgresStore};
use uuid::Uuid;

/// What a run on PostgreSQL leaves: the schemas it used, and whether they were kept.
#[derive(Debug)]
pub struct PostgresRun {
    /// The schemas the stories ran in, one per story.
    pub schemas: Vec<String>,
    /// Whether they were kept (else they were dropped).
    pub kept: bool,
}

/// Runs cart, orders, library, bank and onboarding on the server at `url`, each in a new
/// schema; `traces` prints the framework's trace for onboarding, as the SQLite run does.
pub async fn run(
    url: &str,
    keep: bool,
    traces: bool,
    out: Output<'_>,
) -> Result<PostgresRun, DemoError> {
    let base = format!(
        "cqrs_examples_{}",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let mut schemas = Vec::new();
    let outcome = stories(url, &base, &mut schemas, traces, out).await;
    if !keep {
        drop_schemas(url, &schemas).await?;
    }
    outcome?;
    Ok(PostgresRun {
        schemas,
        kept: keep,
    })
}

async fn stories(
    url: &str,
    base: &str,
    schemas: &mut Vec<String>,
    traces: bool,
    out: Output<'_>,
) -> Result<(), DemoError> {
    writeln!(out, "PostgreSQL: one schema per story, {base}_<story>")?;
    cart::run(open(url, base, "carts", schemas).await?, out).await?;
    orders::run(open(url, base, "orders", schemas).await?, out).await?;
    writeln!(
        out,
        "(the read-model contrast runs on SQLite only: its projection is SQLite's)"
    )?;
    library::run(open(url, base, "library", schemas).await?, out).await?;
    bank::run(open(url, base, "bank", schemas).await?, out).await?;
    if traces {
        print_traces();
    }
    onboarding::run(open(url, base, "onboarding", schemas).await?, out).await?;
    Ok(())
}

/// A store in schema `<base>_<story>`, recorded in `schemas` before it is created.
async fn open(
    url: &str,
    base: &str,
    story: &str,
    schemas: &mut Vec<String>,
) -> Result<PostgresStore, DemoError> {
    let schema = format!("{base}_{story}");
    schemas.push(schema.clone());
    Ok(PostgresStore::connect_with(PostgresOptions::new(url).schema(schema)).await?)
}

/// Drops `schemas` and everything in them.
async fn drop_schemas(url: &str, schemas: &[String]) -> Result<(), DemoError> {
    if schemas.is_empty() {
        return Ok(());
    }
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    let driver = tokio::spawn(connection);
    for schema in schemas {
        // Names made here: letters, digits and underscores only.
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await?;
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}
