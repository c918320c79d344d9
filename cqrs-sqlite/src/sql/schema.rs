//! The versioned schema, how a file is recognised as this framework's, the migrations run
//! on open, and the pragmas every connection gets.
//!
//! Opening reads the file before it writes anything (not even the switch to WAL), so a
//! file it refuses (another application's, one from a newer version, one that is not an
//! intact database) is left byte for byte as it was; and a file already current is opened
//! without taking the write lock.

use crate::error::{store_error, SqliteError};
use crate::options::SqliteOptions;
use cqrs_core::StoreError;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// The schema version this crate writes: how many migrations it knows.
pub const SCHEMA_VERSION: u32 = 7;

/// `PRAGMA application_id` of every file this crate creates or migrates (`CQRS` in ASCII),
/// so that another application's SQLite file is never taken for a store.
pub const APPLICATION_ID: i32 = 0x4351_5253;

/// The last schema version written before files were stamped with [`APPLICATION_ID`]: a
/// file at or below it has no application id and is recognised by its exact schema.
const LAST_UNSTAMPED_VERSION: u32 = 3;

/// Each entry moves the schema one version up; `PRAGMA user_version` records how many ran.
/// Never edit an entry once released: add one, and raise [`SCHEMA_VERSION`] (the array's
/// length makes the compiler hold the two together). Files of an earlier version are
/// recognised by the exact text of these entries.
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
    // 4: the event log rebuilt. `AUTOINCREMENT`: a position is never given twice, not even
    // one of a row removed by hand, and past the largest integer appends fail instead of
    // taking free positions at random. Each column's type and range is checked on insert.
    // The rows are copied as they are, damaged ones too (the CHECKs set aside for the
    // copy), so that reads still report them; the new table takes the old one's name
    // without rewriting views that read `events` (`legacy_alter_table`), and the triggers
    // and the UNIQUE indexes come back with it. A failed migration leaves the pragmas set
    // on a connection that is then closed.
    "CREATE TABLE events_v4 (
        position       INTEGER PRIMARY KEY AUTOINCREMENT CHECK (position >= 1),
        stream_id      TEXT    NOT NULL CHECK (typeof(stream_id) = 'text'),
        version        INTEGER NOT NULL CHECK (typeof(version) = 'integer' AND version >= 1),
        event_id       BLOB    NOT NULL UNIQUE
                               CHECK (typeof(event_id) = 'blob' AND length(event_id) = 16),
        event_type     TEXT    NOT NULL CHECK (typeof(event_type) = 'text'),
        schema_version INTEGER NOT NULL CHECK (typeof(schema_version) = 'integer'
                                               AND schema_version BETWEEN 0 AND 4294967295),
        payload        TEXT    NOT NULL CHECK (typeof(payload) = 'text'),
        metadata       TEXT    NOT NULL CHECK (typeof(metadata) = 'text'),
        recorded_at    INTEGER NOT NULL CHECK (typeof(recorded_at) = 'integer'),
        UNIQUE (stream_id, version)
    );
    PRAGMA ignore_check_constraints = ON;
    INSERT INTO events_v4 (position, stream_id, version, event_id, event_type,
                           schema_version, payload, metadata, recorded_at)
    SELECT position, stream_id, version, event_id, event_type,
           schema_version, payload, metadata, recorded_at
    FROM events ORDER BY position;
    PRAGMA ignore_check_constraints = OFF;
    DROP TRIGGER events_refuse_update;
    DROP TRIGGER events_refuse_delete;
    DROP TABLE events;
    PRAGMA legacy_alter_table = ON;
    ALTER TABLE events_v4 RENAME TO events;
    PRAGMA legacy_alter_table = OFF;
    CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'stored events are immutable: UPDATE refused'); END;
    CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'stored events are immutable: DELETE refused'); END;",
    // 5: what filtered reads seek by. `category` is the stream id up to its first '-'
    // (`cqrs_core::category`), a virtual column: computed from `stream_id`, so it needs no
    // back-fill of stored rows (which the triggers forbid) and can never disagree with it;
    // only the index stores it. Each index ends with the position (the rowid), so a filtered
    // read is a range of one index in log order. (The first position at an instant needs
    // no index: `recorded_at` never decreases along positions, so the table is in time
    // order already.) A row whose stream id or type is no longer text (damaged by hand or
    // by a disk fault) falls out of both indexes' ranges, so filtered reads would pass over
    // it: `events_unreadable` holds just those rows (none in a healthy file, where the
    // CHECKs refuse them), and a filtered read asks it about the positions it covered.
    "ALTER TABLE events ADD COLUMN category TEXT GENERATED ALWAYS AS (
        CASE WHEN instr(stream_id, '-') > 0
             THEN substr(stream_id, 1, instr(stream_id, '-') - 1)
             ELSE stream_id END
    ) VIRTUAL;
    CREATE INDEX events_by_category ON events (category, position);
    CREATE INDEX events_by_type ON events (event_type, position);
    CREATE INDEX events_unreadable ON events (position)
        WHERE typeof(stream_id) != 'text' OR typeof(event_type) != 'text';",
    // 6: what filtered reads seek by, kept in batches instead of on every append. An
    // index on the events table costs every append a b-tree insert and, under WAL, one
    // more page written per commit (measured: the two of schema 5 took a third of an
    // append). The same entries now go to two tables of their own, written for
    // `INDEX_BATCH` events at a time by the append that completes a batch, and
    // `log_indexed` says up to which position they hold every event; a filtered read
    // seeks them up to there and scans the few events after it (in position order, by
    // the table's own b-tree). Rows whose stream id or type is not text have no entry,
    // as they had none in the indexes (`events_unreadable` still finds them).
    "DROP INDEX events_by_category;
    DROP INDEX events_by_type;
    CREATE TABLE log_by_category (
        category TEXT    NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (category, position)
    ) WITHOUT ROWID;
    CREATE TABLE log_by_type (
        event_type TEXT    NOT NULL,
        position   INTEGER NOT NULL,
        PRIMARY KEY (event_type, position)
    ) WITHOUT ROWID;
    CREATE TABLE log_indexed (
        only  INTEGER PRIMARY KEY CHECK (only = 1),
        up_to INTEGER NOT NULL CHECK (up_to >= 0)
    );
    INSERT INTO log_by_category (category, position)
        SELECT category, position FROM events WHERE typeof(stream_id) = 'text';
    INSERT INTO log_by_type (event_type, position)
        SELECT event_type, position FROM events WHERE typeof(event_type) = 'text';
    INSERT INTO log_indexed (only, up_to)
        SELECT 1, max(0, coalesce(max(position), 0)) FROM events;",
    // 7: the events subscriptions parked (`cqrs_core::parking`): one row per subscription
    // and position, with the event's identity and its last error, until it is retried or
    // discarded. Each column's type is checked on insert, as the events' are.
    "CREATE TABLE parked (
        subscription TEXT    NOT NULL CHECK (typeof(subscription) = 'text'),
        position     INTEGER NOT NULL CHECK (typeof(position) = 'integer' AND position >= 1),
        event_id     BLOB    NOT NULL
                             CHECK (typeof(event_id) = 'blob' AND length(event_id) = 16),
        stream_id    TEXT    NOT NULL CHECK (typeof(stream_id) = 'text'),
        version      INTEGER NOT NULL CHECK (typeof(version) = 'integer' AND version >= 1),
        event_type   TEXT    NOT NULL CHECK (typeof(event_type) = 'text'),
        error        TEXT    NOT NULL CHECK (typeof(error) = 'text'),
        attempts     INTEGER NOT NULL CHECK (typeof(attempts) = 'integer'
                                             AND attempts BETWEEN 0 AND 4294967295),
        parked_at    INTEGER NOT NULL CHECK (typeof(parked_at) = 'integer'),
        PRIMARY KEY (subscription, position)
    ) WITHOUT ROWID;",
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

/// Opens the writer's connection: reads what the file is, refuses it untouched if it is
/// not this framework's or is newer, then switches it to WAL and migrates it if needed.
/// A file already current is only read: opening it never waits for another writer.
pub(crate) fn open_writer(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let mut conn = connect(path, options)?;
    let found = inspect(&conn)?;
    use_wal(&conn)?;
    if !matches!(found, Found::Store { version } if version == SCHEMA_VERSION) {
        migrate(&mut conn)?;
    }
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

/// What a file holds, as far as opening it is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// No table, no version, no application id: a new file, to be created.
    Empty,
    /// A file of this framework at this schema version.
    Store { version: u32 },
}

/// Reads what the file is, writing nothing: refuses another application's file, a file
/// of a newer version, and one that is not an intact database, with a typed error.
fn inspect(conn: &Connection) -> Result<Found, StoreError> {
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(store_error)?;
    let user_version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(store_error)?;
    let foreign = |reason: String| -> StoreError { SqliteError::ForeignFile { reason }.into() };
    let Ok(version) = u32::try_from(user_version) else {
        return Err(foreign(format!("its user_version is {user_version}")));
    };
    if application_id == APPLICATION_ID {
        if version > SCHEMA_VERSION {
            return Err(SqliteError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            }
            .into());
        }
        return Ok(Found::Store { version });
    }
    if application_id != 0 {
        return Err(foreign(format!(
            "its application_id is {application_id:#x}, not {APPLICATION_ID:#x}"
        )));
    }
    let objects = schema_of(conn)?;
    if objects.is_empty() && version == 0 {
        return Ok(Found::Empty);
    }
    if !(1..=LAST_UNSTAMPED_VERSION).contains(&version) {
        return Err(foreign(format!(
            "it has no application_id, and user_version {version} is not one of an \
             earlier version of this framework"
        )));
    }
    let expected = schema_of(&schema_at(version)?)?;
    for object in &expected {
        if !objects.contains(object) {
            return Err(foreign(format!(
                "it has no application_id, and its {} `{}` differs from schema version \
                 {version} of this framework",
                object.kind, object.name
            )));
        }
    }
    Ok(Found::Store { version })
}

/// One entry of `sqlite_schema`: a table, index, trigger or view, and the SQL it was
/// created with, exactly.
#[derive(Debug, PartialEq, Eq)]
struct SchemaObject {
    kind: String,
    name: String,
    table: String,
    sql: Option<String>,
}

/// Every entry of the file's `sqlite_schema`.
fn schema_of(conn: &Connection) -> Result<Vec<SchemaObject>, StoreError> {
    let mut statement = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name")
        .map_err(store_error)?;
    let objects = statement
        .query_map([], |row| {
            Ok(SchemaObject {
                kind: row.get(0)?,
                name: row.get(1)?,
                table: row.get(2)?,
                sql: row.get(3)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(store_error)?;
    Ok(objects)
}

/// A database in memory holding the schema this crate wrote at `version`.
fn schema_at(version: u32) -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory().map_err(store_error)?;
    for migration in MIGRATIONS.iter().zip(1..=version).map(|(sql, _)| sql) {
        conn.execute_batch(migration).map_err(store_error)?;
    }
    Ok(conn)
}

/// Switches the file to WAL, unless it is in WAL already (which would change nothing, but
/// waits for the write lock).
fn use_wal(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .map_err(store_error)?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(store_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(
            format!("the file refused WAL mode (journal_mode is {mode})").into(),
        ));
    }
    Ok(())
}

/// Creates the schema, or brings a file of an earlier version up to date, and stamps it
/// with [`APPLICATION_ID`]: all of it in one transaction, or none of it.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE: two processes opening a new file at once migrate it one after the other.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    // Again, under the lock: another process may have created or migrated the file since.
    // Returning early drops `tx`, which rolls back: a refused file is left as it was.
    let found = match inspect(&tx)? {
        Found::Empty => 0,
        Found::Store { version } => version,
    };
    for (version, migration) in (1..=SCHEMA_VERSION).zip(MIGRATIONS) {
        if version > found {
            tx.execute_batch(migration).map_err(store_error)?;
        }
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(store_error)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(store_error)?;
    tx.commit().map_err(store_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The released text of migrations 1 to 3, kept by the integration tests to build
    /// files of an earlier version.
    const RELEASED: &str = include_str!("../../tests/fixtures/schema-v3.sql");

    #[test]
    fn released_migrations_are_never_edited() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(RELEASED).unwrap();
        assert_eq!(
            schema_of(&conn).unwrap(),
            schema_of(&schema_at(LAST_UNSTAMPED_VERSION).unwrap()).unwrap(),
            "a file of an earlier version would no longer be recognised"
        );
    }

    #[test]
    fn a_new_file_gets_the_rebuilt_events_table_and_its_triggers() {
        let new = schema_at(SCHEMA_VERSION).unwrap();
        let events: String = new
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'events'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(events.contains("AUTOINCREMENT"), "{events}");
        let names: Vec<String> = schema_of(&new)
            .unwrap()
            .into_iter()
            .map(|object| object.name)
            .collect();
        assert!(names.contains(&"events_refuse_update".to_owned()));
        assert!(names.contains(&"events_refuse_delete".to_owned()));
        assert!(!names.iter().any(|name| name.contains("v4")), "{names:?}");
    }
}
