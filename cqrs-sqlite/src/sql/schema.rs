//! The versioned schema, migrated on open, and the pragmas every connection gets.

use crate::error::{store_error, SqliteError};
use crate::options::SqliteOptions;
use cqrs_core::StoreError;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// The schema version this crate writes: how many migrations it knows.
pub const SCHEMA_VERSION: u32 = 4;

/// Each entry moves the schema one version up; `PRAGMA user_version` records how many ran.
/// Never edit an entry once released: add one, and raise [`SCHEMA_VERSION`] (the array's
/// length makes the compiler hold the two together).
// `as`: a const context, where `try_from` cannot run; a u32 always fits a usize here.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: the event log. `position` is the rowid, so it grows by one per insert and never
    // has gaps (rows are never deleted). Triggers keep stored events immutable.
    "CREATE TABLE events (
        position       INTEGER PRIMARY KEY,
        stream_id      TEXT    NOT NULL,
        version        INTEGER NOT NULL CHECK (version >= 1),
        event_id       BLOB    NOT NULL UNIQUE CHECK (length(event_id) = 16),
        event_type     TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        payload        TEXT    NOT NULL,
        metadata       TEXT    NOT NULL,
        recorded_at    INTEGER NOT NULL,
        UNIQUE (stream_id, version)
    );
    CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'stored events are immutable: UPDATE refused'); END;
    CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'stored events are immutable: DELETE refused'); END;",
    // 2: the latest snapshot per stream (a cache of the events: it may be replaced).
    "CREATE TABLE snapshots (
        stream_id     TEXT    PRIMARY KEY,
        version       INTEGER NOT NULL,
        state_version INTEGER NOT NULL,
        state         TEXT    NOT NULL,
        taken_at      INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 3: where each subscription got to: the position of the last event it handled.
    "CREATE TABLE checkpoints (
        subscription TEXT    PRIMARY KEY,
        position     INTEGER NOT NULL CHECK (position >= 0),
        updated_at   INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 4: what filtered reads seek by. `category` is the stream id up to its first '-'
    // (`cqrs_core::category`), a virtual column: computed from `stream_id`, so it needs no
    // back-fill of stored rows (which the triggers forbid) and can never disagree with it;
    // only the index stores it. Each index ends with the position (the rowid), so a filtered
    // read is a range of one index in log order. (The first position at an instant needs
    // no index: `recorded_at` never decreases along positions, so the table is in time
    // order already.)
    "ALTER TABLE events ADD COLUMN category TEXT GENERATED ALWAYS AS (
        CASE WHEN instr(stream_id, '-') > 0
             THEN substr(stream_id, 1, instr(stream_id, '-') - 1)
             ELSE stream_id END
    ) VIRTUAL;
    CREATE INDEX events_by_category ON events (category, position);
    CREATE INDEX events_by_type ON events (event_type, position);",
];

/// WAL pages after which the writer's commit copies the WAL into the database file
/// (SQLite's default: 1,000). A checkpoint runs inside the commit that crosses the mark,
/// writes each page changed since the last one once and fsyncs twice; the hot pages of an
/// event log (the last table and index leaves) change on every append, so a longer WAL
/// writes them back far less often, with fewer fsyncs. The cost: a WAL file of up to
/// 10,000 pages (about 40 MB) and a longer recovery scan after a crash.
const WAL_AUTOCHECKPOINT: i64 = 10_000;

/// Prepared statements kept per connection (rusqlite's default is 16).
const STATEMENT_CACHE: usize = 64;

/// Opens a connection with the busy timeout set (before anything can wait for a lock).
fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(store_error)?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(store_error)?;
    // Keep one query plan per statement. Without it SQLite marks statements whose bound
    // values could change the plan (`LIMIT ?`, `stream_id = ?`) to be re-planned when their
    // bindings are cleared, which rusqlite's statement cache does on every reuse: the SQL
    // would be parsed again on every append and read.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(store_error)?;
    conn.pragma_update(None, "synchronous", options.synchronous.as_pragma())
        .map_err(store_error)?;
    // Room for every statement the store runs (reads also run on the writer's connection),
    // with some to spare, so none is evicted and parsed again.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Opens the writer's connection: WAL, then every migration the file has not seen yet.
pub(crate) fn open_writer(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let mut conn = connect(path, options)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(store_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(
            format!("the file refused WAL mode (journal_mode is {mode})").into(),
        ));
    }
    migrate(&mut conn)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)
        .map_err(store_error)?;
    Ok(conn)
}

/// Opens a read connection: one that cannot write, so a read can never change the file.
pub(crate) fn open_reader(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let conn = connect(path, options)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(store_error)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE: two processes opening a new file at once migrate it one after the other.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let found: u32 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(store_error)?;
    if found > SCHEMA_VERSION {
        // Returning drops `tx`, which rolls back: a refused file is left as it was.
        return Err(SqliteError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    for (version, migration) in (1..=SCHEMA_VERSION).zip(MIGRATIONS) {
        if version > found {
            tx.execute_batch(migration).map_err(store_error)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(store_error)?;
    tx.commit().map_err(store_error)
}
