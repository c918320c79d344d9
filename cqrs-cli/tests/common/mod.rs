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
