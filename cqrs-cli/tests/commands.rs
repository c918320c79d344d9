//! Every command of the generic `cqrs` binary, run as a process against a store the
//! examples' stories filled.

mod common;

use common::{at, cqrs, damage, filled, json, text, url};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

#[test]
fn a_store_url_that_names_no_store_is_exit_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    for (store, message) in [
        (url(&missing), "does not exist"),
        (
            "mysql://h/db".to_owned(),
            "neither sqlite:PATH nor postgres://",
        ),
        ("sqlite:".to_owned(), "names no file"),
    ] {
        let output = cqrs(&["--store", &store, "stats"]);
        assert_eq!(output.status.code(), Some(2), "{store}: {}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(message),
            "{}",
            text(&output)
        );
    }
    assert!(!missing.exists(), "a read created the file");
    let output = cqrs(&["stats"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--store"));
    let not_a_store = dir.path().join("notes.txt");
    std::fs::write(
        &not_a_store,
        "hello, not a database at all, long enough to be read",
    )
    .unwrap();
    let output = cqrs(&["--store", &url(&not_a_store), "stats"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn stats_count_what_the_stories_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = url(&filled(dir.path()));
    let stats = json(&store, &["stats"]);
    let events = stats["events"].as_u64().unwrap();
    assert_eq!(
        stats["head_position"].as_u64(),
        Some(events),
        "dense positions"
    );
    let by_aggregate = stats["by_aggregate_type"].as_object().unwrap();
    for aggregate in ["Cart", "Order", "Book", "Member", "User", "Task"] {
        assert!(by_aggregate.contains_key(aggregate), "{aggregate}: {stats}");
    }
    let sum: u64 = by_aggregate.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(sum, events);
    assert!(
        stats["by_schema_version"]["ItemAdded v3"]
            .as_u64()
            .is_some(),
        "{stats}"
    );
    assert!(stats["size_bytes"].as_u64().unwrap() > 0);
}

/// The first stream of `aggregate` in the log.
fn first_stream(store: &str, aggregate: &str) -> String {
    let found = json(store, &["search", "--aggregate", aggregate, "--limit", "1"]);
    found[0]["stream"].as_str().unwrap().to_owned()
}

#[test]
fn stream_and_event_reads_show_envelopes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = url(&filled(dir.path()));
    let cart = first_stream(&store, "Cart");
    let events = json(&store, &["stream", "events", &cart]);
    let versions: Vec<u64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    let backward = json(
        &store,
        &["stream", "events", &cart, "--backward", "--limit", "2"],
    );
    assert_eq!(backward[0]["version"].as_u64(), versions.last().copied());
    assert_eq!(backward.as_array().unwrap().len(), 2);
    let from = json(
        &store,
        &["stream", "events", &cart, "--from", "2", "--limit", "1"],
    );
    assert_eq!(from[0]["version"].as_u64(), Some(2));
    let only = json(
        &store,
        &["stream", "events", &cart, "--type", "CouponApplied"],
    );
    assert!(only
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] == "CouponApplied"));
    let show = json(&store, &["stream", "show", &cart]);
    assert_eq!(show["version"].as_u64(), versions.last().copied());

    // An event by position and by id; its children are the events it caused.
    let user = json(&store, &["search", "--type", "UserCreated", "--limit", "1"]);
    let position = format!("@{}", user[0]["position"]);
    let by_position = json(&store, &["event", "show", &position]);
    let id = by_position["event_id"].as_str().unwrap().to_owned();
    let by_id = json(&store, &["event", "show", &id]);
    assert_eq!(by_position, by_id);
    let children = by_id["children"].as_array().unwrap();
    assert_eq!(children.len(), 2, "two onboarding tasks: {by_id}");
    assert!(children[0].as_str().unwrap().starts_with("TaskCreated"));
    let task = children[0].as_str().unwrap();
    let task_id = task.rsplit('(').next().unwrap().trim_end_matches(')');
    let child = json(&store, &["event", "show", task_id]);
    assert!(child["parent"].as_str().unwrap().contains(&id), "{child}");

    let output = cqrs(&["--store", &store, "event", "show", "@999999"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let output = cqrs(&["--store", &store, "event", "show", "not-an-id"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn trace_draws_the_causal_tree_of_a_correlation_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = url(&filled(dir.path()));
    let user = json(&store, &["search", "--type", "UserCreated", "--limit", "1"]);
    let correlation = user[0]["correlation_id"].as_str().unwrap().to_owned();
    let tree = json(&store, &["trace", &correlation]);
    assert_eq!(tree[0]["type"], "UserCreated", "{tree}");
    let caused = tree[0]["caused"].as_array().unwrap();
    assert_eq!(caused.len(), 2);
    assert!(caused.iter().all(|task| task["type"] == "TaskCreated"));
    let table = cqrs(&["--store", &store, "trace", &correlation]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.contains("└─ TaskCreated"), "{table}");
    let output = cqrs(&[
        "--store",
        &store,
        "trace",
        "00000000-0000-0000-0000-000000000000",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn search_filters_by_type_aggregate_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = url(&filled(dir.path()));
    let tasks = json(&store, &["search", "--type", "TaskCreated"]);
    assert!(!tasks.as_array().unwrap().is_empty());
    assert!(tasks
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] == "TaskCreated"));
    let books = json(&store, &["search", "--aggregate", "Book"]);
    assert!(books
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["stream"].as_str().unwrap().starts_with("Book-")));
    assert_eq!(
        json(&store, &["search", "--before", "2000-01-01"]),
        Value::Array(vec![])
    );
    assert_eq!(
        json(&store, &["search", "--after", "2999-01-01"]),
        Value::Array(vec![])
    );
    let all = json(
        &store,
        &["search", "--after", "2000-01-01", "--limit", "100000"],
    );
    let stats = json(&store, &["stats"]);
    assert_eq!(
        all.as_array().unwrap().len() as u64,
        stats["events"].as_u64().unwrap()
    );
    let output = cqrs(&["--store", &store, "search", "--after", "yesterday"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn tail_shows_the_latest_and_follows_new_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let store = url(&path);
    let head = json(&store, &["stats"])["head_position"].as_u64().unwrap();
    let latest = json(&store, &["tail", "-n", "2"]);
    let positions: Vec<u64> = latest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, vec![head - 1, head]);

    let mut follower = Command::new(env!("CARGO_BIN_EXE_cqrs"))
        .args([
            "--store",
            &store,
            "--format",
            "ndjson",
            "tail",
            "-f",
            "-n",
            "1",
            "--interval",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["position"].as_u64(), Some(head));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use cqrs_core::{EventStore, ExpectedVersion};
        let appender = cqrs_sqlite::SqliteStore::open(&path).await.unwrap();
        let event = cqrs_core::testing::toy::tagged_event("followed");
        appender
            .append("Note-1", ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
    });
    let next: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(next["stream"], "Note-1");
    assert_eq!(next["position"].as_u64(), Some(head + 1));
    follower.kill().unwrap();
    follower.wait().unwrap();
}

#[test]
fn verify_passes_a_sound_store_and_names_every_damaged_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let store = url(&path);
    let report = json(&store, &["verify"]);
    assert_eq!(report["failures"], Value::Array(vec![]), "{report}");
    assert!(report["events"].as_u64().unwrap() > 10);

    // Three rows damaged three ways, and a trigger dropped.
    let (payload_stream, payload_version) = at(&path, 3);
    damage(
        &path,
        "UPDATE events SET payload = '{not json' WHERE position = 3",
        &[],
    );
    let (meta_stream, meta_version) = at(&path, 5);
    damage(
        &path,
        "UPDATE events SET metadata = '[1]' WHERE position = 5",
        &[],
    );
    let (gap_stream, gap_version) = at(&path, 7);
    damage(
        &path,
        "UPDATE events SET version = version + 40 WHERE position = 7",
        &[],
    );
    cqrs_sqlite::rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TRIGGER events_refuse_delete")
        .unwrap();

    let output = cqrs(&["--store", &store, "--format", "json", "verify"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let failures = report["failures"].as_array().unwrap();
    let named = |check: &str, stream: &str, version: i64| {
        failures.iter().any(|f| {
            f["check"] == check && f["stream"] == stream && f["version"].as_i64() == Some(version)
        })
    };
    assert!(
        named("payload is JSON", &payload_stream, payload_version),
        "{report}"
    );
    assert!(named("readable", &meta_stream, meta_version), "{report}");
    assert!(
        failures
            .iter()
            .any(|f| f["check"] == "versions 1..n" && f["stream"] == gap_stream.as_str()),
        "{report} (stream {gap_stream} version {gap_version})"
    );
    assert!(
        failures
            .iter()
            .any(|f| f["what"].as_str().unwrap().contains("events_refuse_delete")),
        "{report}"
    );
    assert_eq!(failures.len(), 4, "one failure each: {report}");
    // The generic binary has no aggregates to decode with.
    let output = cqrs(&["--store", &store, "verify", "--decode"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn checkpoint_changes_are_applied_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let store = url(&path);
    let audit = dir.path().join("audit.jsonl");
    let audit_arg = audit.display().to_string();
    let list = json(&store, &["subscriptions", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subscription"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"member-loans") && names.contains(&"onboarding-tasks"),
        "{list}"
    );
    let head = json(&store, &["stats"])["head_position"].as_u64().unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["head"].as_u64() == Some(head)));

    let change = |args: &[&str]| {
        let mut all = vec!["--audit-log", &audit_arg];
        all.extend_from_slice(args);
        json(&store, &all)
    };
    change(&[
        "subscriptions",
        "set-checkpoint",
        "member-loans",
        "3",
        "--reason",
        "replay",
    ]);
    let after = change(&["subscriptions", "skip", "member-loans", "--count", "2"]);
    assert_eq!(after["checkpoint"].as_u64(), Some(5));
    change(&["subscriptions", "reset", "member-loans"]);
    let list = json(&store, &["subscriptions", "list"]);
    let loans = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subscription"] == "member-loans")
        .unwrap();
    assert_eq!(
        (loans["checkpoint"].as_u64(), loans["lag"].as_u64()),
        (Some(0), Some(head))
    );

    let entries: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["set-checkpoint", "skip", "reset"]);
    assert_eq!(entries[0]["details"]["reason"], "replay");
    assert_eq!(entries[1]["details"]["from"].as_u64(), Some(3));
    assert_eq!(
        entries[1]["details"]["skipped"].as_array().unwrap().len(),
        2
    );
    assert!(entries.iter().all(|e| e["outcome"] == "done"));

    let output = cqrs(&[
        "--store",
        &store,
        "subscriptions",
        "set-checkpoint",
        "x",
        "999999",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    // Without --audit-log, the log sits next to the file.
    json(&store, &["subscriptions", "reset", "onboarding-tasks"]);
    assert!(dir.path().join("events.db.audit.jsonl").exists());
}

#[test]
fn parked_and_rebuild_need_what_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = url(&filled(dir.path()));
    assert_eq!(json(&store, &["parked", "list"]), Value::Array(vec![]));
    for args in [
        &["parked", "discard", "member-loans", "1"][..],
        &["parked", "retry", "member-loans", "1"],
        &["rebuild", "member-loans"],
    ] {
        let mut all = vec!["--store", &store];
        all.extend_from_slice(args);
        let output = cqrs(&all);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
    }
}

#[test]
fn copy_is_resumable_and_checks_itself() {
    let dir = tempfile::tempdir().unwrap();
    let source = url(&filled(dir.path()));
    let target = url(&dir.path().join("copy.db"));
    let first = json(
        "",
        &["copy", "--from", &source, "--to", &target, "--page", "7"],
    );
    assert_eq!(first["identical"], true, "{first}");
    assert_eq!(first["copied"], first["source_events"]);
    let again = json("", &["copy", "--from", &source, "--to", &target]);
    assert_eq!(again["copied"].as_u64(), Some(0), "{again}");
    assert_eq!(again["source_sha256"], again["target_sha256"]);
    assert_eq!(json(&target, &["verify"])["failures"], Value::Array(vec![]));
    // A target holding another store's events is refused.
    let output = cqrs(&[
        "copy",
        "--from",
        &target,
        "--to",
        &url(&filled(tempfile::tempdir().unwrap().path())),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn db_check_and_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let store = url(&filled(dir.path()));
    assert_eq!(json(&store, &["db", "check"])["status"], "current");
    let new = dir.path().join("new.db");
    let output = cqrs(&["--store", &url(&new), "db", "migrate"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(!new.exists());
    let created = json(&url(&new), &["db", "migrate", "--create"]);
    assert_eq!(created["schema_version"], created["this_build"]);
    assert_eq!(json(&url(&new), &["stats"])["events"].as_u64(), Some(0));
}

#[test]
fn serve_answers_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = url(&filled(dir.path()));
    let mut server = Command::new(env!("CARGO_BIN_EXE_cqrs"))
        .args([
            "--store",
            &store,
            "--format",
            "ndjson",
            "serve",
            "--addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let started: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let address = started["listening"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /feed HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 "), "{response}");
    assert!(!response.starts_with("HTTP/1.1 5"), "{response}");
}

#[test]
fn help_reads_for_every_command() {
    let output = cqrs(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "stats",
        "stream",
        "event",
        "tail",
        "trace",
        "search",
        "verify",
        "subscriptions",
        "parked",
        "rebuild",
        "copy",
        "db",
        "serve",
        "relay",
    ] {
        assert!(help.contains(command), "{command}: {help}");
    }
    let output = cqrs(&["stats", "--bogus"]);
    assert_eq!(output.status.code(), Some(2));
}
