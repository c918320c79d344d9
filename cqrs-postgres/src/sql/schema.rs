//! The versioned schema, created and migrated on connect in the store's own PostgreSQL
//! schema, and the checks that leave a schema this crate cannot use untouched.
//!
//! Connecting reads before it writes: a schema at the current version is used as it is, one
//! at a newer version or holding another application's tables is refused, and only a missing
//! or older one is migrated, in one transaction under an advisory lock, so that processes
//! connecting at once migrate it once.

use crate::error::{store_error, PostgresError};
use crate::sql::locks;
use crate::sql::Names;
use cqrs_core::StoreError;
use tokio_postgres::Client;

/// The schema version this crate writes: how many migrations it knows.
pub const SCHEMA_VERSION: i64 = 2;

/// Each entry moves the schema one version up; table `schema_version` records each one run.
/// Never edit an entry once released: add one, and raise [`SCHEMA_VERSION`]. `@.` stands
/// for the store's schema, quoted.
// `as`: a const context; the version is a small positive number.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: the event log, snapshots and checkpoints. Positions are given by the appender
    // under the store's append lock (see `sql::append`), never by a sequence. `category`
    // is the stream id up to its first '-' (`cqrs_core::category`), stored so that
    // filtered reads seek an index in log order; the time index answers `position_at`.
    // Payload and metadata are `text`, so they read back byte for byte as written.
    // Triggers refuse UPDATE, DELETE and TRUNCATE of stored events.
    "CREATE TABLE @.events (
        position       bigint      PRIMARY KEY CHECK (position >= 1),
        stream_id      text        NOT NULL,
        version        bigint      NOT NULL CHECK (version >= 1),
        event_id       uuid        NOT NULL UNIQUE,
        event_type     text        NOT NULL,
        schema_version bigint      NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
        payload        text        NOT NULL,
        metadata       text        NOT NULL,
        recorded_at    timestamptz NOT NULL,
        category       text        NOT NULL GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
        UNIQUE (stream_id, version)
    );
    CREATE INDEX events_by_category ON @.events (category, position);
    CREATE INDEX events_by_type ON @.events (event_type, position);
    CREATE INDEX events_by_time ON @.events (recorded_at, position);
    CREATE FUNCTION @.events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'stored events are immutable: % refused', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON @.events
        FOR EACH ROW EXECUTE FUNCTION @.events_refuse_change();
    CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON @.events
        FOR EACH STATEMENT EXECUTE FUNCTION @.events_refuse_change();
    CREATE TABLE @.snapshots (
        stream_id     text        PRIMARY KEY,
        version       bigint      NOT NULL CHECK (version >= 0),
        state_version bigint      NOT NULL,
        state         text        NOT NULL,
        taken_at      timestamptz NOT NULL
    );
    CREATE TABLE @.checkpoints (
        subscription text        PRIMARY KEY,
        position     bigint      NOT NULL CHECK (position >= 0),
        updated_at   timestamptz NOT NULL
    );",
    // 2: the events subscriptions parked (`cqrs_core::parking`): one row per subscription
    // and position, with the event's identity and its last error, until it is retried or
    // discarded. A retried reaction deletes its row in the transaction of its appends.
    "CREATE TABLE @.parked (
        subscription text        NOT NULL,
        position     bigint      NOT NULL CHECK (position >= 1),
        event_id     uuid        NOT NULL,
        stream_id    text        NOT NULL,
        version      bigint      NOT NULL CHECK (version >= 1),
        event_type   text        NOT NULL,
        error        text        NOT NULL,
        attempts     bigint      NOT NULL CHECK (attempts BETWEEN 0 AND 4294967295),
        parked_at    timestamptz NOT NULL,
        PRIMARY KEY (subscription, position)
    );",
];

/// Makes the store's schema current, or refuses it untouched (see the module's doc).
pub(crate) async fn ensure(client: &mut Client, names: &Names) -> Result<(), StoreError> {
    if let Some(found) = recorded_version(client, names).await? {
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        refuse_newer(names, found)?;
    } else {
        refuse_foreign(client, names).await?;
    }
    migrate(client, names).await
}

/// The recorded schema version, or `None` where the schema or its version table is missing.
async fn recorded_version(client: &Client, names: &Names) -> Result<Option<i64>, StoreError> {
    let table = format!("{}.schema_version", names.schema);
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(store_error)?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = client
        .query_one(&format!("SELECT max(version) FROM {table}"), &[])
        .await
        .map_err(store_error)?;
    Ok(Some(row.get::<_, Option<i64>>(0).unwrap_or(0)))
}

fn refuse_newer(names: &Names, found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(PostgresError::SchemaTooNew {
            schema: names.schema_name.clone(),
            found,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    Ok(())
}

/// Refuses a schema without a version table that holds anything: another application's.
async fn refuse_foreign(client: &Client, names: &Names) -> Result<(), StoreError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1",
            &[&names.schema_name],
        )
        .await
        .map_err(store_error)?;
    let relations: i64 = row.get(0);
    if relations > 0 {
        return Err(PostgresError::ForeignSchema {
            schema: names.schema_name.clone(),
            reason: format!(
                "it holds {relations} tables, indexes or sequences but no table schema_version"
            ),
        }
        .into());
    }
    Ok(())
}

/// Runs the missing migrations in one transaction, under the schema's migration lock; reads
/// the version again under the lock, since another process may have migrated meanwhile.
async fn migrate(client: &mut Client, names: &Names) -> Result<(), StoreError> {
    let transaction = client.transaction().await.map_err(store_error)?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&locks::migration_key(&names.schema_name)],
        )
        .await
        .map_err(store_error)?;
    let schema = &names.schema;
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_version (
                 version    bigint      PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
             );"
        ))
        .await
        .map_err(store_error)?;
    let row = transaction
        .query_one(
            &format!("SELECT max(version) FROM {schema}.schema_version"),
            &[],
        )
        .await
        .map_err(store_error)?;
    let found = row.get::<_, Option<i64>>(0).unwrap_or(0);
    refuse_newer(names, found)?;
    for (version, migration) in (1..)
        .zip(MIGRATIONS.iter())
        .skip_while(|(v, _)| *v <= found)
    {
        transaction
            .batch_execute(&migration.replace("@.", &format!("{schema}.")))
            .await
            .map_err(store_error)?;
        transaction
            .execute(
                &format!("INSERT INTO {schema}.schema_version (version) VALUES ($1)"),
                &[&version],
            )
            .await
            .map_err(store_error)?;
    }
    transaction.commit().await.map_err(store_error)
}
