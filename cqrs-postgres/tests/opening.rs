//! Connecting: a wrong URL or an unreachable server is a clear typed error; the schema is
//! created and recorded, reused as it is, refused untouched when newer or foreign, and
//! migrated once when processes connect at once; stored events cannot be changed.

mod common;

use common::{database_url, raw_client, SchemaGuard};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{CheckpointStore, EventStore, ExpectedVersion, NewEvent, StoreError};
use cqrs_postgres::{PostgresError, PostgresOptions, PostgresStore, SCHEMA_VERSION};

/// The backend error inside `error`, which must be one of this crate's.
fn postgres_error(error: &StoreError) -> &PostgresError {
    match error {
        StoreError::Backend(inner) => inner
            .downcast_ref::<PostgresError>()
            .unwrap_or_else(|| panic!("not a PostgresError: {inner:?}")),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// Everything in `schema` that a refusal must leave as it was: its tables and rows.
async fn fingerprint(schema: &str) -> Vec<String> {
    let client = raw_client().await;
    let rows = client
        .query(
            "SELECT c.relname || ':' || c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap();
    let mut found: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    for table in ["schema_version", "events", "users"] {
        let exists: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("\"{schema}\".{table}")],
            )
            .await
            .unwrap()
            .get(0);
        if exists {
            let text: String = client
                .query_one(
                    &format!("SELECT coalesce(string_agg(t::text, ';' ORDER BY t::text), '') FROM \"{schema}\".{table} t"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            found.push(format!("{table}={text}"));
        }
    }
    found
}

#[tokio::test]
async fn an_unreadable_url_is_a_typed_error() {
    let error = PostgresStore::connect("postgres://postgres@127.0.0.1:notaport/postgres")
        .await
        .unwrap_err();
    assert!(
        matches!(postgres_error(&error), PostgresError::InvalidUrl { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("invalid PostgreSQL URL"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_typed_error_naming_it_without_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let options =
        PostgresOptions::new("postgres://someone:secret@127.0.0.1:1/somedb").schema("unused");
    let error = PostgresStore::connect_with(options).await.unwrap_err();
    match postgres_error(&error) {
        PostgresError::Connect { target, .. } => {
            assert_eq!(target, "127.0.0.1:1 database somedb");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(!error.to_string().contains("secret"), "{error}");
}

#[tokio::test]
async fn an_invalid_schema_name_is_refused_before_connecting() {
    let options = PostgresOptions::new(database_url()).schema("pg_catalog");
    let error = PostgresStore::connect_with(options).await.unwrap_err();
    assert!(
        matches!(
            postgres_error(&error),
            PostgresError::InvalidSchemaName { .. }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn the_schema_is_created_recorded_and_reused() {
    let guard = SchemaGuard::new();
    let store = PostgresStore::connect_with(guard.options()).await.unwrap();
    store
        .append("s-1", ExpectedVersion::NoStream, vec![tagged_event("a")])
        .await
        .unwrap();
    drop(store);
    let client = raw_client().await;
    let recorded: i64 = client
        .query_one(
            &format!(
                "SELECT max(version) FROM \"{}\".schema_version",
                guard.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, SCHEMA_VERSION);
    let before = fingerprint(&guard.schema).await;
    let again = PostgresStore::connect_with(guard.options()).await.unwrap();
    assert_eq!(again.stream_version("s-1").await.unwrap(), Some(1));
    assert_eq!(
        fingerprint(&guard.schema).await,
        before,
        "reconnecting changed the schema"
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused_untouched() {
    let guard = SchemaGuard::new();
    let store = PostgresStore::connect_with(guard.options()).await.unwrap();
    store
        .append("s-1", ExpectedVersion::NoStream, vec![tagged_event("a")])
        .await
        .unwrap();
    drop(store);
    let client = raw_client().await;
    client
        .execute(
            &format!(
                "INSERT INTO \"{}\".schema_version (version) VALUES (99)",
                guard.schema
            ),
            &[],
        )
        .await
        .unwrap();
    let before = fingerprint(&guard.schema).await;
    let error = PostgresStore::connect_with(guard.options())
        .await
        .unwrap_err();
    match postgres_error(&error) {
        PostgresError::SchemaTooNew {
            schema,
            found,
            supported,
        } => {
            assert_eq!(schema, &guard.schema);
            assert_eq!((*found, *supported), (99, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(
        fingerprint(&guard.schema).await,
        before,
        "the refused schema changed"
    );
}

#[tokio::test]
async fn another_applications_schema_is_refused_untouched() {
    let guard = SchemaGuard::new();
    let client = raw_client().await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".users (name text); \
             INSERT INTO \"{0}\".users VALUES ('ann');",
            guard.schema
        ))
        .await
        .unwrap();
    let before = fingerprint(&guard.schema).await;
    let error = PostgresStore::connect_with(guard.options())
        .await
        .unwrap_err();
    assert!(
        matches!(postgres_error(&error), PostgresError::ForeignSchema { .. }),
        "{error}"
    );
    assert_eq!(
        fingerprint(&guard.schema).await,
        before,
        "the foreign schema changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_connecting_at_once_migrate_once() {
    let guard = SchemaGuard::new();
    let connects = (0..6).map(|_| PostgresStore::connect_with(guard.options()));
    let stores = futures_join_all(connects).await;
    for store in &stores {
        assert!(store.is_ok(), "{:?}", store.as_ref().err());
    }
    let client = raw_client().await;
    let versions: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".schema_version", guard.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, SCHEMA_VERSION, "each migration recorded once");
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.expect("a connect task panicked"));
    }
    outputs
}

#[tokio::test]
async fn stored_events_cannot_be_updated_deleted_or_truncated() {
    let guard = SchemaGuard::new();
    let store = PostgresStore::connect_with(guard.options()).await.unwrap();
    let stored = store
        .append(
            "s-1",
            ExpectedVersion::NoStream,
            vec![tagged_event("a"), tagged_event("b")],
        )
        .await
        .unwrap();
    let client = raw_client().await;
    let events = format!("\"{}\".events", guard.schema);
    for change in [
        format!("UPDATE {events} SET payload = '{{}}' WHERE version = 1"),
        format!("DELETE FROM {events} WHERE version = 2"),
        format!("TRUNCATE {events}"),
    ] {
        let error = client.batch_execute(&change).await.unwrap_err();
        let message = error
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        assert!(
            message.starts_with("stored events are immutable"),
            "{change}: {error}"
        );
    }
    assert_eq!(
        store.read_stream("s-1", 1, 10).await.unwrap(),
        stored.events
    );
}

#[tokio::test]
async fn values_postgresql_cannot_hold_are_invalid_arguments_naming_them() {
    let guard = SchemaGuard::new();
    let store = PostgresStore::connect_with(guard.options()).await.unwrap();
    let bad = NewEvent {
        payload: "{\"a\":\"\0\"}".to_owned(),
        ..tagged_event("x")
    };
    let id = bad.event_id;
    let error = store
        .append("s-1", ExpectedVersion::Any, vec![tagged_event("ok"), bad])
        .await
        .unwrap_err();
    match &error {
        StoreError::InvalidArgument { argument, reason } => {
            assert_eq!(*argument, "events");
            let named = format!("the payload of event {id} contains a NUL");
            assert!(reason.starts_with(&named), "{reason}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_eq!(
        store.stream_version("s-1").await.unwrap(),
        None,
        "nothing stored"
    );
    let refused = |result: Result<(), StoreError>| match result {
        Err(StoreError::InvalidArgument { argument, .. }) => argument,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert_eq!(
        refused(store.save_checkpoint("a\0b", 1).await),
        "subscription"
    );
    assert_eq!(
        refused(store.save_checkpoint("big", u64::MAX).await),
        "position"
    );
    assert_eq!(
        store.load_checkpoint("big").await.unwrap(),
        0,
        "nothing stored"
    );
}

/// A schema at version 1 (before parked events) is migrated on connect: the table of
/// parked events is added, the events kept, and the version recorded.
#[tokio::test]
async fn a_version_1_schema_gains_the_parked_events() {
    use cqrs_core::{ParkedEvent, ParkingStore};
    let guard = SchemaGuard::new();
    let store = PostgresStore::connect_with(guard.options()).await.unwrap();
    store
        .append("Old-1", ExpectedVersion::NoStream, vec![tagged_event("a")])
        .await
        .unwrap();
    drop(store);
    let schema = format!("\"{}\"", guard.schema);
    let client = raw_client().await;
    client
        .batch_execute(&format!(
            "DROP TABLE {schema}.parked; DELETE FROM {schema}.schema_version WHERE version > 1"
        ))
        .await
        .unwrap();
    let store = PostgresStore::connect_with(guard.options()).await.unwrap();
    assert_eq!(store.stream_version("Old-1").await.unwrap(), Some(1));
    let parked = ParkedEvent {
        subscription: "sub".to_owned(),
        position: 1,
        event_id: uuid::Uuid::new_v4(),
        stream_id: "Old-1".to_owned(),
        version: 1,
        event_type: "Tagged".to_owned(),
        error: "boom".to_owned(),
        attempts: 3,
        parked_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
    };
    store.park(parked.clone()).await.unwrap();
    assert_eq!(store.parked("sub").await.unwrap(), [parked]);
    let recorded: i64 = client
        .query_one(
            &format!("SELECT max(version) FROM {schema}.schema_version"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, SCHEMA_VERSION);
}
