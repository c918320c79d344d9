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

        // Parked events on PostgreSQL: listed, counted, discarded (and the discard recorded).
        park_on_postgres(&schema, "mailer", 3);
        let parked = json(&target, &["parked", "list"]);
        assert_eq!(parked[0]["subscription"], "mailer", "{parked}");
        assert_eq!(parked[0]["position"].as_u64(), Some(3), "{parked}");
        let listed = json(&target, &["subscriptions", "list"]);
        let mailer = listed
            .as_array()
            .and_then(|all| all.iter().find(|s| s["subscription"] == "mailer"))
            .unwrap_or_else(|| panic!("no mailer in {listed}"));
        assert_eq!(mailer["parked"].as_u64(), Some(1), "{listed}");
        let audit = dir.path().join("audit.jsonl");
        let output = cqrs(&[
            "--store",
            &target,
            "--audit-log",
            audit.to_str().unwrap(),
            "parked",
            "discard",
            "mailer",
            "3",
            "--reason",
            "test",
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let recorded = std::fs::read_to_string(&audit).unwrap();
        assert!(recorded.contains("parked discard"), "{recorded}");
        assert_eq!(json(&target, &["parked", "list"]), Value::Array(vec![]));

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

/// Parks the event at `position` for `subscription` in the store in `schema`, its
/// checkpoint moved past it, as a parking subscription would leave them.
fn park_on_postgres(schema: &str, subscription: &str, position: u64) {
    use cqrs_core::{CheckpointStore, EventStore, LogRead, ParkedEvent, ParkingStore};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let options = cqrs_postgres::PostgresOptions::new(database_url()).schema(schema);
        let store = cqrs_postgres::PostgresStore::connect_with(options)
            .await
            .unwrap();
        let event = store
            .read_log(&LogRead::forward(position, 1))
            .await
            .unwrap()
            .remove(0);
        store
            .park(ParkedEvent {
                subscription: subscription.to_owned(),
                position,
                event_id: event.event_id,
                stream_id: event.stream_id,
                version: event.version,
                event_type: event.event_type,
                error: "the mail server refused it".to_owned(),
                attempts: 3,
                parked_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        store.save_checkpoint(subscription, position).await.unwrap();
    });
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
