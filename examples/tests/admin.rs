//! `cqrs-examples-admin`, the command line with the examples' types registered, as a
//! process: `verify --decode` passes over the examples' stores and, over a damaged copy,
//! fails naming every damaged event; `rebuild` replays a registered subscription.

use cqrs_sqlite::rusqlite::Connection;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn admin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cqrs-examples-admin"))
        .args(args)
        .env_remove("CQRS_STORE")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n{}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn store(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// The examples' five stores, filled by `cqrs-examples --data-dir`.
fn stores(dir: &Path) -> Vec<std::path::PathBuf> {
    let status = Command::new(env!("CARGO_BIN_EXE_cqrs-examples"))
        .args(["--data-dir", &dir.display().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    [
        "carts.db",
        "orders.db",
        "library.db",
        "onboarding.db",
        "bank.db",
    ]
    .iter()
    .map(|name| dir.join(name))
    .collect()
}

#[test]
fn verify_decode_passes_the_examples_and_names_each_damaged_event() {
    let dir = tempfile::tempdir().unwrap();
    for path in stores(dir.path()) {
        let output = admin(&[
            "--store",
            &store(&path),
            "--format",
            "json",
            "verify",
            "--decode",
        ]);
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            text(&output)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["decoded"], report["events"], "{report}");
        assert_eq!(report["unregistered_aggregates"], Value::Array(vec![]));
    }

    // Two cart events whose payloads no longer fit the event type, one an old event that
    // its upcaster can no longer read.
    let carts = dir.path().join("carts.db");
    let conn = Connection::open(&carts).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_refuse_update;
         UPDATE events SET payload = '{\"item_id\":\"seven\"}' WHERE position = 1;
         UPDATE events SET payload = '{}' WHERE event_type = 'ProductAdded' AND schema_version = 1;
         CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
         BEGIN SELECT RAISE(ABORT, 'stored events are immutable: UPDATE refused'); END;",
    )
    .unwrap();
    let damaged: Vec<(String, i64, String)> = conn
        .prepare("SELECT stream_id, version, event_type FROM events WHERE position = 1 OR (event_type = 'ProductAdded' AND schema_version = 1)")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(damaged.len(), 2);
    let output = admin(&[
        "--store",
        &store(&carts),
        "--format",
        "json",
        "verify",
        "--decode",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), damaged.len(), "{report}");
    for (stream, version, event_type) in &damaged {
        assert!(
            failures.iter().any(|f| f["check"] == "decodes"
                && f["stream"] == stream.as_str()
                && f["version"].as_i64() == Some(*version)
                && f["type"] == event_type.as_str()
                && !f["what"].as_str().unwrap().is_empty()),
            "{stream} v{version}: {report}"
        );
    }
    // The same damage, in a table for people.
    let output = admin(&["--store", &store(&carts), "verify", "--decode"]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("decodes") && table.contains("2 failures"),
        "{table}"
    );
}

#[test]
fn rebuild_replays_a_registered_subscription_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library.db");
    stores(dir.path());
    let url = store(&library);
    let output = admin(&[
        "--store",
        &url,
        "--format",
        "json",
        "rebuild",
        "member-loans",
        "--reason",
        "test",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let rebuilt: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(rebuilt["checkpoint"].as_u64().unwrap() > 0, "{rebuilt}");
    let audit = std::fs::read_to_string(dir.path().join("library.db.audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"action\":\"rebuild\"") && audit.contains("\"outcome\":\"done\""),
        "{audit}"
    );
    let output = admin(&["--store", &url, "rebuild", "nobody"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("member-loans"));
}
