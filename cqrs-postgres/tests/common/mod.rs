//! What the PostgreSQL tests share: the server they use (`DATABASE_URL`, by default the
//! local one with trust auth), and a store on a schema of its own that is dropped when the
//! test ends, passed or failed, so tests pass on a server holding other data.

#![allow(dead_code)] // Each test file uses a part.

use cqrs_postgres::{PostgresOptions, PostgresStore};
use std::ops::Deref;
use uuid::Uuid;

/// The server the tests use.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A schema name no other test uses.
pub fn unique_schema() -> String {
    format!("cqrs_test_{}", Uuid::new_v4().simple())
}

/// Drops its schema (and everything in it) when dropped, also when a test panics.
pub struct SchemaGuard {
    pub schema: String,
}

impl SchemaGuard {
    pub fn new() -> Self {
        Self {
            schema: unique_schema(),
        }
    }

    pub fn options(&self) -> PostgresOptions {
        PostgresOptions::new(database_url()).schema(&self.schema)
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // On a thread of its own: the test's runtime may be the one being dropped.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the schema");
            runtime.block_on(async {
                let client = raw_client().await;
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.schema);
        }
    }
}

/// A plain connection to the test server, for setting up and damaging by hand.
pub async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the test server (set DATABASE_URL)");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A store on a schema of its own; the store is dropped before its schema.
pub struct TestStore {
    pub store: PostgresStore,
    pub guard: SchemaGuard,
}

impl Deref for TestStore {
    type Target = PostgresStore;
    fn deref(&self) -> &PostgresStore {
        &self.store
    }
}

/// A store on a new schema.
pub async fn test_store() -> TestStore {
    let guard = SchemaGuard::new();
    let store = PostgresStore::connect_with(guard.options())
        .await
        .expect("connect a store to the test server (set DATABASE_URL)");
    TestStore { store, guard }
}
