//! `relay run|status|skip` as processes, on a store the examples' stories filled, against
//! the machine's NATS server with a JetStream stream of the test's own, deleted at the end.

mod common;

use common::{cqrs, filled, json, text, url, TestStream, NATS};
use cqrs_core::{EventStore, ExpectedVersion, Metadata, NewEvent};
use cqrs_sqlite::SqliteStore;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use uuid::Uuid;

/// `relay COMMAND --nats NATS --stream NAME` and `more`.
fn relay<'a>(command: &'a str, stream: &'a TestStream, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["relay", command, "--nats", NATS, "--stream", &stream.name];
    args.extend_from_slice(more);
    args
}

/// Appends an event of `size` payload bytes or so to `stream_id`; returns its id.
fn append(path: &Path, stream_id: &str, size: usize) -> Uuid {
    let event = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "Blob".to_owned(),
        schema_version: 1,
        payload: format!("{{\"blob\":\"{}\"}}", "x".repeat(size)),
        metadata: Metadata::new(),
    };
    let id = event.event_id;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(path).await.unwrap();
        store
            .append(stream_id, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    });
    id
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_publishes_once_status_shows_the_lag_and_a_recorded_skip_passes_a_refused_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let store = url(&path);
    let head = json(&store, &["stats"])["head_position"].as_u64().unwrap();
    let stream = TestStream::new();
    stream.create(64 * 1024);
    let name = stream.name.clone();

    let before = json(&store, &relay("status", &stream, &[]));
    assert_eq!(
        (before["checkpoint"].as_u64(), before["lag"].as_u64()),
        (Some(0), Some(head)),
        "{before}"
    );
    assert_eq!(before["stream_last_sequence"].as_u64(), Some(0));
    let until = ["--prefix", name.as_str(), "--until-caught-up"];
    let ran = json(&store, &relay("run", &stream, &until));
    assert_eq!(ran["checkpoint"].as_u64(), Some(head), "{ran}");
    assert_eq!(ran["published"].as_u64(), Some(head), "{ran}");
    assert_eq!(stream.positions(), (1..=head).collect::<Vec<_>>());
    let again = json(&store, &relay("run", &stream, &until));
    assert_eq!(again["published"].as_u64(), Some(0), "{again}");
    assert_eq!(stream.positions().len() as u64, head, "nothing republished");

    // An event above the stream's max_msg_size, then a small one.
    let huge = append(&path, "Blob-1", 100 * 1024);
    append(&path, "Blob-2", 10);
    let mut args = vec!["--store", store.as_str()];
    args.extend(relay("run", &stream, &until));
    let output = cqrs(&args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&huge.to_string()) && message.contains(&format!("position {}", head + 1)),
        "{message}"
    );
    let status = json(&store, &relay("status", &stream, &[]));
    assert_eq!(status["checkpoint"].as_u64(), Some(head), "{status}");
    assert_eq!(status["lag"].as_u64(), Some(2), "{status}");
    assert_eq!(status["stream_last_sequence"].as_u64(), Some(head));
    assert_eq!(status["stream_last_position"].as_u64(), Some(head));
    assert_eq!(status["next_event_id"], huge.to_string());

    let audit = dir.path().join("audit.jsonl");
    let audit_arg = audit.display().to_string();
    let skip = |position: u64| {
        let position = position.to_string();
        let more = [
            "--position",
            &position,
            "--reason",
            "too large; sent by mail",
        ];
        let mut args = vec![
            "--store",
            &store,
            "--audit-log",
            &audit_arg,
            "--format",
            "json",
        ];
        args.extend(relay("skip", &stream, &more));
        cqrs(&args)
    };
    let wrong = skip(head + 2);
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    let skipped = skip(head + 1);
    assert!(skipped.status.success(), "{}", text(&skipped));
    let skipped: Value = serde_json::from_slice(&skipped.stdout).unwrap();
    assert_eq!(skipped["record_position"].as_u64(), Some(head + 3));

    let ran = json(&store, &relay("run", &stream, &until));
    assert_eq!(ran["checkpoint"].as_u64(), Some(head + 3), "{ran}");
    let mut expected: Vec<u64> = (1..=head).collect();
    expected.extend([head + 2, head + 3]);
    assert_eq!(stream.positions(), expected, "the skip record is published");

    let entries: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["relay skip", "relay skip"]);
    assert!(entries[0]["outcome"]
        .as_str()
        .unwrap()
        .starts_with("failed"));
    assert_eq!(entries[1]["outcome"], "done");
    assert_eq!(entries[1]["details"]["event_id"], huge.to_string());
    assert_eq!(entries[1]["details"]["reason"], "too large; sent by mail");
}

/// Asks `relay status` until the relay caught up with the log (no timing: a bounded count of
/// looks, each a process of its own).
fn wait_caught_up(store: &str, stream: &TestStream) {
    for _ in 0..600 {
        let status = json(store, &relay("status", stream, &[]));
        if status["lag"].as_u64() == Some(0) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the relay never caught up");
}

#[test]
fn run_relays_until_killed_and_the_next_run_resumes_without_republishing() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let store = url(&path);
    let head = json(&store, &["stats"])["head_position"].as_u64().unwrap();
    let stream = TestStream::new();
    let name = stream.name.clone();

    let mut args = vec!["--store", &store, "--format", "ndjson"];
    args.extend(relay("run", &stream, &["--prefix", &name]));
    let mut running = Command::new(env!("CARGO_BIN_EXE_cqrs"))
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(running.stdout.take().unwrap()).lines();
    let started: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(started["resumes_after"].as_u64(), Some(0), "{started}");
    assert!(stream.exists(), "run creates the stream");
    wait_caught_up(&store, &stream);
    // Appended by another process while the relay runs: it finds them by polling.
    for n in 0..3 {
        append(&path, &format!("Blob-{n}"), 10);
    }
    wait_caught_up(&store, &stream);
    running.kill().unwrap();
    running.wait().unwrap();

    append(&path, "Blob-9", 10);
    let until = ["--prefix", name.as_str(), "--until-caught-up"];
    let ran = json(&store, &relay("run", &stream, &until));
    assert_eq!(ran["checkpoint"].as_u64(), Some(head + 4), "{ran}");
    assert_eq!(stream.positions(), (1..=head + 4).collect::<Vec<_>>());
}

#[test]
fn an_unreachable_server_a_missing_stream_or_a_wrong_position_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let store = url(&filled(dir.path()));
    let stream = TestStream::new();
    let cases: [(&[&str], &str); 4] = [
        (
            &["relay", "status", "--nats", "127.0.0.1:1", "--stream", "x"],
            "cannot connect to NATS",
        ),
        (&relay("status", &stream, &[]), "no JetStream stream"),
        (
            &relay("skip", &stream, &["--position", "999999", "--reason", "r"]),
            "no event at position 999999",
        ),
        (&relay("skip", &stream, &["--position", "1"]), "--reason"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--store", store.as_str()];
        all.extend_from_slice(args);
        let output = cqrs(&all);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(stderr(&output).contains(expected), "{}", text(&output));
    }
    assert!(!stream.exists(), "status and skip never create a stream");
}
