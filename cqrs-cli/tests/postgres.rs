//! `copy` from the examples' SQLite store into PostgreSQL, then `verify` and `stats` there
//! (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`), in a schema of
//! the test's own that it drops at the end, and `relay run|status` there (NATS on
//! 127.0.0.1:4222, a stream of the test's own); and a schema that is not there is exit 2,
//! left uncreated.

mod common;

use common::{cqrs, filled, json, text, url, TestStream, NATS};
use cqrs_postgres::tokio_postgres::NoTls;
use serde_json::Value;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Runs `sql` on the server.
fn execute(sql: &str) -> u64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (client, connection) = cqrs_postgres::tokio_postgres::connect(&database_url(), NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let rows = client.query(sql, &[]).await.unwrap();
        rows.len() as u64
    })
}

fn schema_exists(schema: &str) -> bool {
    execute(&format!(
        "SELECT 1 FROM pg_namespace WHERE nspname = '{schema}'"
    )) == 1
}

#[test]
fn copy_moves_the_examples_store_to_postgres_and_verify_passes_there() {
    let schema = format!("cqrs_cli_{}", uuid::Uuid::new_v4().simple());
    let target = format!("{}?schema={schema}", database_url());
    let dir = tempfile::tempdir().unwrap();
    let source = url(&filled(dir.path()));

    let output = cqrs(&["--store", &target, "stats"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(!schema_exists(&schema), "a read created the schema");

    let copied = json("", &["copy", "--from", &source, "--to", &target]);
    let outcome = std::panic::catch_unwind(|| {
        assert_eq!(copied["identical"], true, "{copied}");
        let report = json(&target, &["verify"]);
        assert_eq!(report["failures"], Value::Array(vec![]), "{report}");
        assert_eq!(report["events"], copied["source_events"]);
        let again = json("", &["copy", "--from", &source, "--to", &target]);
        assert_eq!(again["copied"].as_u64(), Some(0), "{again}");
        let stats = json(&target, &["stats"]);
        assert_eq!(stats["events"], copied["source_events"]);
        assert_eq!(json(&target, &["db", "check"])["status"], "current");

        // The relay on PostgreSQL: the copied log published once to a stream of the test's.
        let stream = TestStream::new();
        let name = stream.name.as_str();
        let relay = [
            "relay",
            "run",
            "--nats",
            NATS,
            "--stream",
            name,
            "--prefix",
            name,
            "--until-caught-up",
        ];
        let ran = json(&target, &relay);
        assert_eq!(ran["published"], copied["source_events"], "{ran}");
        let status = json(&target, &["relay", "status", "--stream", name]);
        assert_eq!(status["lag"].as_u64(), Some(0), "{status}");
        let published = stream.positions().len() as u64;
        assert_eq!(Some(published), copied["source_events"].as_u64());
    });
    execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_postgres_url_that_cannot_connect_is_exit_2() {
    let output = cqrs(&[
        "--store",
        "postgres://nobody@127.0.0.1:1/none?connect_timeout=2",
        "stats",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot connect"),
        "{}",
        text(&output)
    );
}
