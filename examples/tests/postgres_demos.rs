//! The stories on PostgreSQL (`cqrs-examples --postgres URL`) on the server of
//! `DATABASE_URL` (default: the local one with trust auth): they run, each in a schema of
//! its own, and the schemas are dropped at the end unless kept.

use cqrs_examples::demo::on_postgres;
use cqrs_postgres::tokio_postgres::{self, NoTls};

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Which of `schemas` exist on the server.
async fn existing(schemas: &[String]) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(&database_url(), NoTls)
        .await
        .expect("connect to the test server (set DATABASE_URL)");
    tokio::spawn(connection);
    client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY($1) ORDER BY 1",
            &[&schemas],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn drop_all(schemas: &[String]) {
    let (client, connection) = tokio_postgres::connect(&database_url(), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for schema in schemas {
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stories_run_on_postgres_and_their_schemas_are_dropped() {
    let mut out = Vec::new();
    let run = on_postgres::run(&database_url(), false, false, &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(run.schemas.len(), 5, "{:?}", run.schemas);
    for heading in ["== Library demo", "== Onboarding demo"] {
        assert!(out.contains(heading), "{heading} missing from:\n{out}");
    }
    assert!(
        existing(&run.schemas).await.is_empty(),
        "schemas left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_schemas_are_left_on_the_server() {
    let run = on_postgres::run(&database_url(), true, false, &mut Vec::new())
        .await
        .unwrap();
    let found = existing(&run.schemas).await;
    drop_all(&run.schemas).await;
    let mut expected = run.schemas.clone();
    expected.sort();
    assert_eq!(found, expected);
}
