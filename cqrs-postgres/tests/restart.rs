//! A server restart mid-append, on a PostgreSQL server of the test's own: `initdb` into a
//! temporary directory, `pg_ctl start` on a free port, and `pg_ctl stop -m immediate` (a
//! crash: no shutdown checkpoint, backends killed) then `start` again, three times, while
//! tasks append through one `PostgresStore`. The appends cut short report a typed error
//! (`OutcomeUnknown`, or `ConnectionLost` when nothing was stored); retrying them with the
//! same event ids stores each exactly once (`DuplicateEventId` when it was stored); the same
//! store appends again after each restart, never recreated; the log stays dense, each
//! stream's versions 1..n, every acknowledged event as acknowledged.
//!
//! The server's binaries are looked for in `CQRS_PG_BIN` (default
//! `/usr/lib/postgresql/15/bin`). PostgreSQL refuses to run as root: as root, the server
//! runs as user `postgres` (through `runuser`). The directory is removed, and the server
//! stopped, when the test ends, passed or failed.

use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{Appended, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use cqrs_postgres::{PostgresError, PostgresOptions, PostgresStore};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How many times the server is crashed and started again.
const RESTARTS: usize = 3;
/// Appending tasks.
const WRITERS: usize = 6;
/// Appends acknowledged between two restarts (and after the last), so that each restart
/// lands on a store that is appending, and the store is seen to recover.
const BETWEEN: usize = 40;

/// A PostgreSQL server in a directory of its own, stopped and removed when dropped.
struct PrivateServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Whether commands run as user `postgres` (this process is root).
    as_postgres: bool,
}

impl PrivateServer {
    /// Creates the cluster and starts the server; says what failed otherwise.
    fn start() -> Result<Self, String> {
        let bin = PathBuf::from(
            std::env::var("CQRS_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        if !bin.join("initdb").exists() {
            return Err(format!("no initdb in {} (set CQRS_PG_BIN)", bin.display()));
        }
        let dir = std::env::temp_dir().join(format!("cqrs-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let uid = Command::new("id").arg("-u").output();
        let as_postgres = uid.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let server = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(&server.dir))?;
        }
        let data = server.data();
        run(server
            .command("initdb")
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C", "-D"])
            .arg(&data))?;
        server.start_again()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command running `program` of the server's binaries, as `postgres` when root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// Starts the server and waits until it accepts connections.
    fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-o", &options, "-w", "-t", "120", "start"]))
    }

    /// Stops the server as a crash would: every backend killed at once.
    fn crash(&self) -> Result<(), String> {
        run(self.command("pg_ctl").arg("-D").arg(self.data()).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]))
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.crash();
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("could not remove {}: {error}", self.dir.display());
        }
    }
}

/// Runs `command`; its output when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The typed failures a cut connection gives.
fn is_cut(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Backend(inner) if matches!(
            inner.downcast_ref::<PostgresError>(),
            Some(PostgresError::OutcomeUnknown { .. } | PostgresError::ConnectionLost { .. })
        )
    )
}

fn is_unknown(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Backend(inner) if matches!(
            inner.downcast_ref::<PostgresError>(),
            Some(PostgresError::OutcomeUnknown { .. })
        )
    )
}

/// `operation`'s result, made again while it fails on a connection the server cut before
/// the pool noticed (a few at most: the pool holds 8); any other failure is the test's.
async fn again<T, F, Fut>(mut operation: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match operation().await {
            Err(error) if is_cut(&error) && attempts < 10 => continue,
            other => return other,
        }
    }
}

/// Waits until `acked` reaches `target`. Not a timed assertion: the bound only turns a
/// store that never recovers into a failure instead of a hang.
async fn wait_for(acked: &AtomicUsize, target: usize) {
    for _ in 0..60_000 {
        if acked.load(Ordering::SeqCst) >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the store did not append again after the restart");
}

/// One append a writer made: its stream, its events, and how it ended.
type Attempt = (String, Vec<NewEvent>, Result<Appended, StoreError>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_append_gives_typed_errors_and_the_same_store_recovers() {
    let server = PrivateServer::start()
        .unwrap_or_else(|why| panic!("cannot run a private PostgreSQL server here: {why}"));
    let options = PostgresOptions::new(server.url())
        .schema("restart")
        .connect_timeout(Duration::from_secs(5));
    let store = PostgresStore::connect_with(options).await.unwrap();
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|task| {
            let (store, acked, stop) = (store.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut attempts: Vec<Attempt> = Vec::new();
                for round in 0usize.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let stream = format!("Restart-{}", task % 3);
                    let events: Vec<NewEvent> = (0..1 + (round + task) % 3)
                        .map(|index| tagged_event(&format!("{task}/{round}/{index}")))
                        .collect();
                    let outcome = store
                        .append(&stream, ExpectedVersion::Any, events.clone())
                        .await;
                    match &outcome {
                        Ok(_) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        // While the server is down every append fails at once: no spinning.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                    attempts.push((stream, events, outcome));
                }
                attempts
            })
        })
        .collect();
    let server = Arc::new(server);
    for _ in 0..RESTARTS {
        wait_for(&acked, acked.load(Ordering::SeqCst) + BETWEEN).await;
        let restarted = server.clone();
        tokio::task::spawn_blocking(move || {
            restarted.crash()?;
            restarted.start_again()
        })
        .await
        .unwrap()
        .unwrap();
    }
    // The same store, never recreated, appends again.
    wait_for(&acked, acked.load(Ordering::SeqCst) + BETWEEN).await;
    stop.store(true, Ordering::SeqCst);
    let mut attempts = Vec::new();
    for writer in writers {
        attempts.extend(writer.await.unwrap());
    }

    let (mut stored, mut lost, mut unknown, mut duplicates) = (0, 0, 0, 0);
    let mut expected_events = 0;
    let mut acknowledged: HashMap<Uuid, (u64, u64)> = HashMap::new();
    for (stream, events, outcome) in attempts {
        expected_events += events.len();
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        match outcome {
            Ok(appended) => {
                stored += 1;
                for event in appended.events {
                    acknowledged.insert(event.event_id, (event.version, event.position));
                }
            }
            Err(error) if is_cut(&error) => {
                let was_unknown = is_unknown(&error);
                if was_unknown {
                    unknown += 1;
                } else {
                    lost += 1;
                    let found = again(|| store.read_events_by_id(&ids)).await.unwrap();
                    assert!(found.is_empty(), "a lost append was stored: {error:?}");
                }
                // Retrying the same events is safe: stored once, whatever happened.
                let retried =
                    again(|| store.append(&stream, ExpectedVersion::Any, events.clone())).await;
                match retried {
                    Ok(_) => {}
                    Err(StoreError::DuplicateEventId { .. }) if was_unknown => duplicates += 1,
                    other => panic!("retrying after {error:?}: {other:?}"),
                }
            }
            Err(other) => panic!("an untyped failure of a restart: {other:?}"),
        }
        let found = again(|| store.read_events_by_id(&ids)).await.unwrap();
        assert_eq!(found.len(), ids.len(), "an append is stored whole, once");
    }
    assert!(lost + unknown > 0, "no append was cut by the restarts");

    let mut log: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = log.len() as u64 + 1;
        let page = again(|| store.read_all(from, 1_000)).await.unwrap();
        if page.is_empty() {
            break;
        }
        log.extend(page);
    }
    assert_eq!(
        log.len(),
        expected_events,
        "every append stored exactly once"
    );
    let mut versions: HashMap<&str, u64> = HashMap::new();
    let mut seen = HashSet::new();
    for (event, position) in log.iter().zip(1..) {
        assert_eq!(event.position, position, "positions are dense");
        let version = versions.entry(&event.stream_id).or_default();
        *version += 1;
        assert_eq!(event.version, *version, "versions of {}", event.stream_id);
        assert!(
            seen.insert(event.event_id),
            "{} stored twice",
            event.event_id
        );
        if let Some(acked) = acknowledged.get(&event.event_id) {
            assert_eq!(
                *acked,
                (event.version, event.position),
                "stored as acknowledged"
            );
        }
    }
    assert!(
        acknowledged.keys().all(|id| seen.contains(id)),
        "an acknowledged event was lost"
    );
    eprintln!(
        "{RESTARTS} restarts: appends stored {stored}, lost then stored by a retry {lost}, \
         unknown then retried {unknown} (of which already stored: {duplicates}); {} events",
        log.len()
    );
    drop(store);
}
