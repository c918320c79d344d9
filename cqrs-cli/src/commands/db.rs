//! `db check` and `db migrate`: the store's schema, apart from starting an application.

use crate::args::DbCommand;
use crate::error::CliError;
use crate::output::Output;
use crate::target::{connect_postgres, inspect_sqlite, postgres_schema_version, Opening, StoreUrl};
use serde_json::json;

/// Reports (and with `migrate`, brings up to date) the schema version.
pub(crate) async fn run(
    command: DbCommand,
    url: &StoreUrl,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    match command {
        DbCommand::Check => {
            let (found, current) = versions(url).await?;
            let status = match found {
                None => "no store",
                Some(found) if found == current => "current",
                Some(found) if found < current => "older: run `cqrs db migrate`",
                Some(_) => "newer than this build",
            };
            out.fields(vec![
                ("store", json!(url.to_string())),
                ("schema_version", json!(found)),
                ("this_build", json!(current)),
                ("status", json!(status)),
            ])?;
            match found {
                None => Err(CliError::Usage(format!("no store at {url}"))),
                Some(found) if found == current => Ok(()),
                Some(_) => Err(CliError::Found(format!("{url}: schema {status}"))),
            }
        }
        DbCommand::Migrate { create } => {
            let (before, current) = versions(url).await.or_else(|error| match error {
                // A missing file: there is nothing to read, and --create makes one.
                CliError::Usage(_) if create => Ok((None, 0)),
                other => Err(other),
            })?;
            let opening = if create {
                Opening::Create
            } else {
                Opening::Migrate
            };
            drop(url.open(opening).await?);
            let (after, _) = versions(url).await?;
            out.fields(vec![
                ("store", json!(url.to_string())),
                ("schema_version_before", json!(before)),
                ("schema_version", json!(after)),
                ("this_build", json!(current.max(after.unwrap_or(0)))),
            ])?;
            Ok(())
        }
    }
}

/// The schema version found (`None`: no store) and the one this build writes, read
/// without changing anything.
async fn versions(url: &StoreUrl) -> Result<(Option<i64>, i64), CliError> {
    match url {
        StoreUrl::Sqlite(path) => {
            if !path.exists() {
                return Err(CliError::Usage(format!(
                    "no store at {url}: the file does not exist"
                )));
            }
            let found = inspect_sqlite(path)?;
            let blank = found.application_id == 0 && found.schema_version == 0;
            Ok((
                (!blank).then_some(found.schema_version),
                i64::from(cqrs_sqlite::SCHEMA_VERSION),
            ))
        }
        StoreUrl::Postgres {
            url: address,
            schema,
        } => {
            let client = connect_postgres(address).await?;
            Ok((
                postgres_schema_version(&client, schema).await?,
                cqrs_postgres::SCHEMA_VERSION,
            ))
        }
    }
}
