//! What the command tests share: a store filled by the examples' stories, the binary run as
//! a process, and damage done to a file as someone with the sqlite3 shell could.

#![allow(dead_code)] // each test binary uses its own part of it

use cqrs_examples::demo;
use cqrs_sqlite::rusqlite::{params, Connection};
use cqrs_sqlite::SqliteStore;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `events.db` in `dir`, filled with the cart, orders, library and onboarding stories.
pub fn filled(dir: &Path) -> PathBuf {
    let path = dir.join("events.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        let mut out = std::io::sink();
        demo::cart::run(store.clone(), &mut out).await.unwrap();
        demo::orders::run(store.clone(), &mut out).await.unwrap();
        demo::library::run(store.clone(), &mut out).await.unwrap();
        demo::onboarding::run(store, &mut out).await.unwrap();
    });
    path
}

/// Runs `cqrs` with `args`.
pub fn cqrs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cqrs"))
        .args(args)
        .env_remove("CQRS_STORE")
        .env_remove("CQRS_AUDIT_LOG")
        .env_remove("NATS_URL")
        .output()
        .unwrap()
}

/// `sqlite:PATH`.
pub fn url(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// Runs `cqrs --store URL --format json ARGS` (no `--store` for an empty URL), expects success, and parses the output.
pub fn json(store: &str, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    if !store.is_empty() {
        all.extend(["--store", store]);
    }
    all.extend_from_slice(args);
    let output = cqrs(&all);
    assert!(output.status.success(), "{args:?}: {}", text(&output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&output)))
}

/// Standard output and error, for messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `sql` on the file with the immutability triggers dropped and the CHECKs ignored,
/// then puts the triggers back.
pub fn damage(path: &Path, sql: &str, values: &[&dyn cqrs_sqlite::rusqlite::ToSql]) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER events_refuse_update; PRAGMA ignore_check_constraints = ON;")
        .unwrap();
    assert_eq!(conn.execute(sql, values).unwrap(), 1, "{sql}");
    conn.execute_batch(
        "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
         BEGIN SELECT RAISE(ABORT, 'stored events are immutable: UPDATE refused'); END;",
    )
    .unwrap();
}

/// The stream and version of the event at `position`.
pub fn at(path: &Path, position: i64) -> (String, i64) {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT stream_id, version FROM events WHERE position = ?1",
            params![position],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

/// The machine's NATS server (JetStream enabled).
pub const NATS: &str = "127.0.0.1:4222";

/// A JetStream stream name (and subject prefix) of the test's own, on [`NATS`]; the stream
/// (made by the test or by `relay run`) is deleted when this is dropped.
pub struct TestStream {
    pub name: String,
    runtime: tokio::runtime::Runtime,
    context: cqrs_nats::async_nats::jetstream::Context,
}

impl TestStream {
    /// A name no other test uses; nothing is created yet.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        // The context spawns a task: make it on the runtime.
        let context = runtime.block_on(async {
            let client = cqrs_nats::async_nats::connect(NATS)
                .await
                .expect("a NATS server on 127.0.0.1:4222");
            cqrs_nats::async_nats::jetstream::new(client)
        });
        Self {
            name: format!("cqrs_cli_{}", uuid::Uuid::new_v4().simple()),
            context,
            runtime,
        }
    }

    /// Creates the stream for subjects `<name>.>`, refusing messages above `max_message_size`.
    pub fn create(&self, max_message_size: i32) {
        let config = cqrs_nats::async_nats::jetstream::stream::Config {
            name: self.name.clone(),
            subjects: vec![format!("{}.>", self.name)],
            max_message_size,
            ..Default::default()
        };
        self.runtime
            .block_on(self.context.create_stream(config))
            .unwrap();
    }

    /// Whether the stream exists.
    pub fn exists(&self) -> bool {
        self.runtime
            .block_on(self.context.get_stream(&self.name))
            .is_ok()
    }

    /// The log position on each message of the stream, in sequence order.
    pub fn positions(&self) -> Vec<u64> {
        self.runtime.block_on(async {
            let stream = self.context.get_stream(&self.name).await.unwrap();
            let info = stream.get_info().await.unwrap();
            let mut positions = Vec::new();
            if info.state.messages == 0 {
                return positions;
            }
            for sequence in info.state.first_sequence..=info.state.last_sequence {
                let raw = stream.get_raw_message(sequence).await.unwrap();
                positions.push(cqrs_nats::message::position(&raw.headers, sequence).unwrap());
            }
            positions
        })
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let _ = self
            .runtime
            .block_on(self.context.delete_stream(&self.name));
    }
}
