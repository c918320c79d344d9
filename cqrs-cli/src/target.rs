//! The `--store` URL: which store, and opening it without creating anything unless asked.
//!
//! `sqlite:PATH` opens an existing file (a missing one is an error, never a new empty
//! store); `postgres://...` (or `postgresql://`) connects and uses schema `cqrs`, or the
//! one named by a `schema=` query parameter, which must exist already. Only `db migrate
//! --create` and the target of `copy` create a store. A store whose schema is older than
//! this build's is refused until `cqrs db migrate` brings it up to date, so that reading
//! never migrates a file behind an application's back.

use crate::error::CliError;
use cqrs_core::{CheckpointStore, EventStore, ParkingStore};
use cqrs_postgres::tokio_postgres::{self, NoTls};
use cqrs_postgres::{PostgresOptions, PostgresStore};
use cqrs_sqlite::rusqlite::{Connection, OpenFlags};
use cqrs_sqlite::{SqliteOptions, SqliteStore, APPLICATION_ID};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// A store named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database and the schema holding the store.
    Postgres {
        /// The connection URL, without the `schema` parameter.
        url: String,
        /// The store's schema.
        schema: String,
    },
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(format!("store URL `{text}` names no file: use sqlite:PATH"));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return postgres_url(text);
        }
        Err(format!(
            "store URL `{text}` is neither sqlite:PATH nor postgres://USER@HOST:PORT/DATABASE"
        ))
    }
}

/// Splits `schema=NAME` off the query string and checks the rest parses as the driver's URL.
fn postgres_url(text: &str) -> Result<StoreUrl, String> {
    let (base, query) = text.split_once('?').unwrap_or((text, ""));
    let mut schema = cqrs_postgres::DEFAULT_SCHEMA.to_owned();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.strip_prefix("schema=") {
            Some(name) if !name.is_empty() => schema = name.to_owned(),
            Some(_) => return Err(format!("store URL `{text}`: `schema=` names no schema")),
            None => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    tokio_postgres::Config::from_str(&url)
        .map_err(|error| format!("store URL `{text}` is not a PostgreSQL URL: {error}"))?;
    Ok(StoreUrl::Postgres { url, schema })
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Postgres { url, schema } => write!(f, "{} (schema {schema})", redact(url)),
        }
    }
}

/// The URL with its password replaced, for messages and the audit log.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Whether opening may create or migrate the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Only an existing store at the current schema version.
    Existing,
    /// An existing store, migrated if its schema is older (`db migrate`).
    Migrate,
    /// Created if missing, migrated if older (`db migrate --create`, `copy`'s target).
    Create,
}

/// An open store, as the commands use it: the contract for reads and checkpoints, and the
/// backend for what only it can answer (sizes, triggers, schema).
#[derive(Clone)]
pub struct Opened {
    /// What the user named.
    pub url: StoreUrl,
    /// The log.
    pub events: Arc<dyn EventStore>,
    /// The subscriptions' checkpoints.
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// The subscriptions' parked events.
    pub parking: Arc<dyn ParkingStore>,
    /// The concrete store.
    pub backend: Backend,
}

/// The concrete store behind [`Opened`].
#[derive(Clone)]
pub enum Backend {
    /// An SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL schema; the client runs the backend's own queries.
    Postgres(PostgresStore, Arc<tokio_postgres::Client>),
}

/// What an SQLite file holds, read without writing to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteFound {
    /// `PRAGMA application_id`.
    pub application_id: i32,
    /// `PRAGMA user_version`: the schema version.
    pub schema_version: i64,
}

/// Reads the application id and schema version of `path`, read-only.
pub fn inspect_sqlite(path: &std::path::Path) -> Result<SqliteFound, CliError> {
    let not_a_store = |reason: String| {
        CliError::Usage(format!(
            "{} is not an event store: {reason}",
            path.display()
        ))
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|error| not_a_store(error.to_string()))?;
    let read = |pragma: &str| -> Result<i64, CliError> {
        conn.pragma_query_value(None, pragma, |row| row.get(0))
            .map_err(|error| not_a_store(error.to_string()))
    };
    let application_id = i32::try_from(read("application_id")?)
        .map_err(|_| not_a_store("its application_id is out of range".to_owned()))?;
    Ok(SqliteFound {
        application_id,
        schema_version: read("user_version")?,
    })
}

/// The schema version recorded in a PostgreSQL schema (`None`: no store there).
pub async fn postgres_schema_version(
    client: &tokio_postgres::Client,
    schema: &str,
) -> Result<Option<i64>, CliError> {
    let table = format!("{}.schema_version", quote_ident(schema));
    let exists: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[&table])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|error| CliError::Failed(format!("cannot read schema `{schema}`: {error}")))?;
    if exists.is_none() {
        return Ok(None);
    }
    let version: Option<i64> = client
        .query_one(&format!("SELECT max(version)::bigint FROM {table}"), &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|error| CliError::Failed(format!("cannot read {table}: {error}")))?;
    Ok(version)
}

/// `name` quoted as a PostgreSQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl StoreUrl {
    /// Opens the store as `opening` allows; a store that is not there (or not one) is a
    /// [`CliError::Usage`] and nothing is created.
    pub async fn open(&self, opening: Opening) -> Result<Opened, CliError> {
        match self {
            StoreUrl::Sqlite(path) => self.open_sqlite(path, opening).await,
            StoreUrl::Postgres { url, schema } => self.open_postgres(url, schema, opening).await,
        }
    }

    async fn open_sqlite(&self, path: &PathBuf, opening: Opening) -> Result<Opened, CliError> {
        if !path.exists() && opening != Opening::Create {
            return Err(CliError::Usage(format!(
                "no store at {}: the file does not exist (the cqrs command never creates one \
                 by reading; `cqrs db migrate --create` does)",
                path.display()
            )));
        }
        if path.exists() {
            let found = inspect_sqlite(path)?;
            let current = i64::from(cqrs_sqlite::SCHEMA_VERSION);
            let stamped = found.application_id == APPLICATION_ID;
            let blank = found.application_id == 0 && found.schema_version == 0;
            if blank && opening != Opening::Create {
                return Err(CliError::Usage(format!(
                    "{} is not an event store: it holds no schema",
                    path.display()
                )));
            }
            // Schemas 1 to 3 were not stamped; the store recognises them by their tables.
            let older_store =
                (stamped || found.application_id == 0) && !blank && found.schema_version < current;
            if older_store && opening == Opening::Existing {
                return Err(older(self, found.schema_version, current));
            }
        }
        let store = SqliteStore::open_with(path, SqliteOptions::new())
            .await
            .map_err(|error| CliError::Usage(format!("cannot open {self}: {error}")))?;
        Ok(Opened {
            url: self.clone(),
            events: Arc::new(store.clone()),
            checkpoints: Arc::new(store.clone()),
            parking: Arc::new(store.clone()),
            backend: Backend::Sqlite(store),
        })
    }

    async fn open_postgres(
        &self,
        url: &str,
        schema: &str,
        opening: Opening,
    ) -> Result<Opened, CliError> {
        let client = connect_postgres(url).await?;
        let found = postgres_schema_version(&client, schema).await?;
        let current = cqrs_postgres::SCHEMA_VERSION;
        match found {
            None if opening != Opening::Create => {
                return Err(CliError::Usage(format!(
                    "no store at {self}: the schema holds no store (the cqrs command never \
                     creates one by reading; `cqrs db migrate --create` does)"
                )))
            }
            Some(version) if version < current && opening == Opening::Existing => {
                return Err(older(self, version, current))
            }
            _ => {}
        }
        let store = PostgresStore::connect_with(PostgresOptions::new(url).schema(schema))
            .await
            .map_err(|error| CliError::Usage(format!("cannot open {self}: {error}")))?;
        Ok(Opened {
            url: self.clone(),
            events: Arc::new(store.clone()),
            checkpoints: Arc::new(store.clone()),
            parking: Arc::new(store.clone()),
            backend: Backend::Postgres(store, Arc::new(client)),
        })
    }
}

/// Connects a plain client (its connection driven by a task of its own).
pub async fn connect_postgres(url: &str) -> Result<tokio_postgres::Client, CliError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|error| CliError::Usage(format!("cannot connect to {}: {error}", redact(url))))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

fn older(url: &StoreUrl, found: i64, current: i64) -> CliError {
    CliError::Usage(format!(
        "{url} is at schema version {found}, older than this build's {current}: run \
         `cqrs db migrate` first (reading never migrates a store)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_stores_or_say_what_is_wrong() {
        assert_eq!(
            "sqlite:data/app.db".parse::<StoreUrl>(),
            Ok(StoreUrl::Sqlite("data/app.db".into()))
        );
        assert_eq!(
            "sqlite:///tmp/a.db".parse::<StoreUrl>(),
            Ok(StoreUrl::Sqlite("/tmp/a.db".into()))
        );
        assert_eq!(
            "postgres://u@h:5432/db?schema=billing&connect_timeout=3".parse::<StoreUrl>(),
            Ok(StoreUrl::Postgres {
                url: "postgres://u@h:5432/db?connect_timeout=3".into(),
                schema: "billing".into()
            })
        );
        for bad in [
            "app.db",
            "sqlite:",
            "mysql://h/db",
            "postgres://u@h/db?schema=",
        ] {
            let error = bad.parse::<StoreUrl>().unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
