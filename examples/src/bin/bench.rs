//! `bench`: the workloads of `BENCHMARKS.md` (W1-W4 on the cart of seed 5), run through the
//! public API an application uses: `Repository::execute` / `load` for commands and replays,
//! `EventStore::read_all` + `cqrs_core::codec::decode` for the global feed, and
//! `EventStore::append` only for the untimed bulk writes that set up W3 and W4.
//!
//! ```text
//! cargo run --release -p cqrs-examples --bin bench -- [flags]
//!   --carts N            carts of W1 and W2 (1000)
//!   --tasks N            concurrent tokio tasks of W2 (8)
//!   --replay-events N    events of the W3 stream (100000); a comma list (10000,100000)
//!                        reports W3 at each size
//!   --replay-scale LIST  W3 again at these sizes, for scale (10000,100000,1000000;
//!                        `none` skips it): plain loads only, labels `<backend>@<size>`
//!   --bulk-events N      events of the large W4 store, N/20 carts' scripts (1000000);
//!                        W1 runs again on that store once W4 has read it
//!   --loads N            timed loads per W3 figure and passes per W4 figure (5); the
//!                        median is reported
//!   --backends a,b       of sqlite-normal, sqlite-full, mem (all three)
//!   --data-dir DIR       where the SQLite files go (a fresh dir under the system temp dir,
//!                        removed at the end); databases are deleted once their workloads ran
//!   --workloads W1,W2    of W1, W2, W3, W4 (all)
//! ```
//!
//! Besides W1-W4, `P1` (run with W4, on the W1 events): a new `Subscription` catching up
//! over the log; on SQLite its consumer is a `Projection` counting each cart's events in a
//! table, committed page by page with its checkpoint, in memory a `HandlerConsumer`
//! counting them. Checked: every event counted once.
//!
//! Every figure is one line on stdout, `cqrs <workload> <backend> <metric>=<value> <unit>`;
//! progress, checksums and timings of the untimed phases go to stderr. Backend labels:
//! - `sqlite-normal`: `SqliteStore` with `SqliteOptions::default()` (WAL, synchronous=NORMAL);
//!   `sqlite-full`: `SqliteOptions::new().synchronous(Synchronous::Full)`; `mem`: `MemoryStore`.
//! - `<backend>+cache` (W1 only): the repository built `.with_cache(carts)`, on a fresh
//!   database of its own.
//! - `<backend>+snapshot` (W3): the same stream loaded by a repository
//!   `.with_snapshots(SnapshotPolicy::every(N))` after a snapshot of the full state at
//!   version N was saved through `SnapshotStore::save_snapshot`.
//! - `<backend>@<size>`: the figure was measured on a store of that many events, written
//!   compactly (`1M` = 1,000,000, `20k` = 20,000). W4 reports the 20,000 W1 events under the
//!   plain label and the `--bulk-events` store as `@<size>` (by default `sqlite-normal@1M`),
//!   followed by `peak_rss_mb` under the same label: VmHWM of /proc/self/status after that
//!   read, with the high-water mark reset (/proc/self/clear_refs) just before the store is
//!   built, so it covers building and reading that store only (stderr says if the reset was
//!   refused and the figure is the process lifetime peak instead). W3 lines carry
//!   `@<size>` only when several `--replay-events` sizes are given, and for the
//!   `--replay-scale` sizes (replay must stay linear: events/s about the same at each size).
//! - `W1 <backend>@<size>` (when W1 and W4 both run): W1 (fresh carts `w1-…`, no cache) on
//!   the `--bulk-events` store after W4 read it, to show that an append does not cost more
//!   in a large store; stderr gives its ratio to W1 on the empty store.
//!
//! W1 and W2 are single timed runs; W3 reports the median of `--loads` loads and W4 the
//! median of `--loads` passes over the log. W3 and W4 run
//! on `sqlite-normal` and `mem` only (BENCHMARKS: "W3, W4 under NORMAL"). Every workload
//! checks its result: the W1/W2 carts are reloaded and their `total_price` summed, which
//! must equal the sum of folding the scripts in memory (and 18,875,320 for 1,000 carts); W3
//! loads must equal the in-memory fold of the stream at version N; W4 must read every event
//! in ascending position and decode the added quantities the writer wrote. A failed check
//! prints the cause to stderr and exits with status 1; bad flags exit with status 2.

use cqrs_core::backend::recorded_now;
use cqrs_core::codec::{self, decode};
use cqrs_core::stream_id;
use cqrs_core::{
    Aggregate, EventHandler, EventOf, EventStore, ExpectedVersion, HandlerConsumer, HandlerError,
    Metadata, NewEvent, Repository, Snapshot, SnapshotPolicy, SnapshotStore, Subscription,
    Upcasters,
};
use cqrs_examples::cart::{script, script_cart_id, Cart, CartCommand, CartEvent};
use cqrs_memory::MemoryStore;
use cqrs_sqlite::rusqlite::Connection;
use cqrs_sqlite::{ProjectedEvent, Projection, SqliteOptions, SqliteStore, Synchronous};
use std::error::Error;
use std::fmt::Display;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

type BoxError = Box<dyn Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// Commands (and events) of one cart's script.
const EVENTS_PER_CART: u64 = 20;
/// The published sum of `total_price` over carts 0..1000.
const W1_CHECKSUM_1000: i64 = 18_875_320;
/// Events per `append` when writing the W3 stream.
const W3_BATCH: usize = 1000;
/// Events per `read_all` page in W4.
const W4_PAGE: usize = 10_000;
/// Per-cart appends in flight while bulk-writing carts: 50 x 20 events = 1,000 events per
/// group-committed transaction.
const BULK_IN_FLIGHT: u32 = 50;
/// The aggregate id of the W3 stream (and the `cart_id` of its events).
const W3_ID: &str = "w3";

const USAGE: &str = "\
usage: bench [--carts N] [--tasks N] [--replay-events N[,N...]] [--replay-scale N,N...|none]
             [--bulk-events N] [--loads N] [--backends sqlite-normal,sqlite-full,mem]
             [--data-dir DIR] [--workloads W1,W2,W3,W4]
defaults: --carts 1000 --tasks 8 --replay-events 100000 --replay-scale 10000,100000,1000000
          --bulk-events 1000000 --loads 5, every backend and workload, a fresh temporary
          data dir removed at the end
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    SqliteNormal,
    SqliteFull,
    Mem,
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::SqliteNormal, Backend::SqliteFull, Backend::Mem];

    fn label(self) -> &'static str {
        match self {
            Backend::SqliteNormal => "sqlite-normal",
            Backend::SqliteFull => "sqlite-full",
            Backend::Mem => "mem",
        }
    }

    fn sqlite_options(self) -> SqliteOptions {
        match self {
            Backend::SqliteFull => SqliteOptions::new().synchronous(Synchronous::Full),
            Backend::SqliteNormal | Backend::Mem => SqliteOptions::default(),
        }
    }

    /// W3 and W4 are measured under NORMAL (and in memory) only.
    fn runs_reads(self) -> bool {
        self != Backend::SqliteFull
    }
}

#[derive(Debug, Clone, Copy)]
struct Workloads {
    w1: bool,
    w2: bool,
    w3: bool,
    w4: bool,
}

#[derive(Debug, Clone)]
struct Config {
    carts: u32,
    tasks: u32,
    replay_events: Vec<u64>,
    replay_scale: Vec<u64>,
    bulk_events: u64,
    loads: usize,
    backends: Vec<Backend>,
    data_dir: Option<PathBuf>,
    workloads: Workloads,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            carts: 1000,
            tasks: 8,
            replay_events: vec![100_000],
            replay_scale: vec![10_000, 100_000, 1_000_000],
            bulk_events: 1_000_000,
            loads: 5,
            backends: Backend::ALL.to_vec(),
            data_dir: None,
            workloads: Workloads {
                w1: true,
                w2: true,
                w3: true,
                w4: true,
            },
        }
    }
}

/// Parses the flags; `Ok(None)` means help was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Config>, String> {
    fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
        value
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{flag}: `{value}` is not a valid number"))
    }
    fn positive<T: std::str::FromStr + PartialOrd + Default>(
        flag: &str,
        value: &str,
    ) -> Result<T, String> {
        let parsed: T = number(flag, value)?;
        if parsed <= T::default() {
            return Err(format!("{flag} must be at least 1, got {value}"));
        }
        Ok(parsed)
    }

    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg.clone(), None),
        };
        let known = [
            "--carts",
            "--tasks",
            "--replay-events",
            "--replay-scale",
            "--bulk-events",
            "--loads",
            "--backends",
            "--data-dir",
            "--workloads",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown argument `{arg}`"));
        }
        let value: String = match inline {
            Some(value) => value,
            None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--carts" => config.carts = number(&flag, &value)?,
            "--tasks" => config.tasks = positive(&flag, &value)?,
            "--replay-events" => {
                config.replay_events = value
                    .split(',')
                    .map(|size| positive(&flag, size.trim()))
                    .collect::<Result<_, _>>()?;
            }
            "--replay-scale" if value.trim() == "none" => config.replay_scale = Vec::new(),
            "--replay-scale" => {
                config.replay_scale = value
                    .split(',')
                    .map(|size| positive(&flag, size.trim()))
                    .collect::<Result<_, _>>()?;
            }
            "--bulk-events" => {
                let events: u64 = number(&flag, &value)?;
                if events < EVENTS_PER_CART {
                    return Err(format!(
                        "--bulk-events must be at least {EVENTS_PER_CART} (one cart's script)"
                    ));
                }
                config.bulk_events = events;
            }
            "--loads" => config.loads = positive(&flag, &value)?,
            "--backends" => {
                config.backends = value
                    .split(',')
                    .map(|name| {
                        Backend::ALL
                            .into_iter()
                            .find(|b| b.label() == name.trim())
                            .ok_or_else(|| format!("unknown backend `{name}`"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--data-dir" => config.data_dir = Some(PathBuf::from(value)),
            "--workloads" => {
                let mut chosen = Workloads {
                    w1: false,
                    w2: false,
                    w3: false,
                    w4: false,
                };
                for name in value.split(',') {
                    match name.trim().to_ascii_uppercase().as_str() {
                        "W1" => chosen.w1 = true,
                        "W2" => chosen.w2 = true,
                        "W3" => chosen.w3 = true,
                        "W4" => chosen.w4 = true,
                        _ => return Err(format!("unknown workload `{name}`")),
                    }
                }
                config.workloads = chosen;
            }
            _ => unreachable!("flag checked against the known list"),
        }
    }
    if config.backends.is_empty() {
        return Err("--backends is empty".into());
    }
    Ok(Some(config))
}

/// The directory of the SQLite files; a temporary one is removed on drop.
struct DataDir {
    path: PathBuf,
    temporary: bool,
}

impl DataDir {
    fn prepare(given: Option<PathBuf>) -> Res<Self> {
        match given {
            Some(path) => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| format!("cannot create data dir {}: {e}", path.display()))?;
                Ok(Self {
                    path,
                    temporary: false,
                })
            }
            None => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let path =
                    std::env::temp_dir().join(format!("cqrs-bench-{}-{nanos}", std::process::id()));
                std::fs::create_dir(&path)
                    .map_err(|e| format!("cannot create data dir {}: {e}", path.display()))?;
                Ok(Self {
                    path,
                    temporary: true,
                })
            }
        }
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.temporary {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                eprintln!("bench: could not remove {}: {e}", self.path.display());
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprint!("bench: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let data_dir = match DataDir::prepare(config.data_dir.clone()) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("bench: data dir {}", data_dir.path.display());
    let started = Instant::now();
    let outcome = run(&config, &data_dir.path).await;
    drop(data_dir);
    match outcome {
        Ok(()) => {
            eprintln!("bench: done in {:.1} s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: FAILED: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// What the scripts give when folded in memory, without any store.
struct Expected {
    /// Sum of `total_price` over carts 0..carts.
    checksum: i64,
    /// Sum of the quantities of every `ItemAdded` of those carts (the W4 decode check).
    added_units: u64,
}

struct Ctx<'a> {
    config: &'a Config,
    dir: &'a Path,
    expected: Expected,
}

async fn run(config: &Config, dir: &Path) -> Res<()> {
    let mut checksum = 0;
    let mut added_units = 0;
    for n in 0..config.carts {
        let (cart, events) = fold_script("w1", n)?;
        checksum += cart.total_price();
        added_units += added_units_of(&events);
    }
    eprintln!(
        "bench: in-memory fold of {} carts' scripts: checksum {checksum}",
        config.carts
    );
    if config.carts == 1000 && checksum != W1_CHECKSUM_1000 {
        return Err(format!(
            "the in-memory fold of 1000 carts gives {checksum}, BENCHMARKS.md says \
             {W1_CHECKSUM_1000}: the script or the domain is wrong"
        )
        .into());
    }
    let ctx = Ctx {
        config,
        dir,
        expected: Expected {
            checksum,
            added_units,
        },
    };
    for &backend in &config.backends {
        eprintln!("bench: --- backend {} ---", backend.label());
        match backend {
            Backend::SqliteNormal | Backend::SqliteFull => {
                run_backend::<SqliteStore>(&ctx, backend).await?;
            }
            Backend::Mem => run_backend::<MemoryStore>(&ctx, backend).await?,
        }
    }
    Ok(())
}

/// A store the benchmark can open fresh for each workload.
trait BenchStore: EventStore + SnapshotStore + Clone {
    /// An empty store; for SQLite the file `<backend>-<name>.db` in the data dir.
    async fn fresh(backend: Backend, dir: &Path, name: &str) -> Res<Self>;

    /// P1: a new subscription catches up over the store's log, timed; returns how many
    /// cart events its consumer counted and how long the catch-up took. On SQLite the
    /// consumer is a projection counting each cart's events in a table, committing every
    /// page with its checkpoint; in memory, a handler counting them.
    async fn p1_catch_up(&self) -> Res<(u64, Duration)>;
}

/// P1's SQLite read model: `p1_cart_events(stream_id, events)`.
struct CartEventCounts;

impl Projection for CartEventCounts {
    type Aggregate = Cart;

    fn name(&self) -> &str {
        "p1_cart_events"
    }

    fn setup(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS p1_cart_events (stream_id TEXT PRIMARY KEY, events INTEGER)",
        )?;
        Ok(())
    }

    fn apply(&self, conn: &Connection, event: &ProjectedEvent<Self>) -> Result<(), HandlerError> {
        conn.prepare_cached(
            "INSERT INTO p1_cart_events VALUES (?1, 1)
             ON CONFLICT (stream_id) DO UPDATE SET events = events + 1",
        )?
        .execute([&event.stream_id])?;
        Ok(())
    }

    fn reset(&self, conn: &Connection) -> Result<(), HandlerError> {
        conn.execute("DELETE FROM p1_cart_events", [])?;
        Ok(())
    }
}

/// P1's in-memory handler: counts the cart events it is given.
#[derive(Clone, Default)]
struct CountCartEvents(Arc<AtomicU64>);

#[async_trait::async_trait]
impl EventHandler for CountCartEvents {
    type Aggregate = Cart;

    fn name(&self) -> &str {
        "p1-count"
    }

    async fn handle(&self, _: &EventOf<Self>) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl BenchStore for SqliteStore {
    async fn fresh(backend: Backend, dir: &Path, name: &str) -> Res<Self> {
        remove_db(backend, dir, name)?;
        let path = db_path(backend, dir, name);
        SqliteStore::open_with(&path, backend.sqlite_options())
            .await
            .map_err(|e| format!("cannot open {}: {e}", path.display()).into())
    }

    async fn p1_catch_up(&self) -> Res<(u64, Duration)> {
        let consumer = self.projection_consumer(CartEventCounts).await?;
        let started = Instant::now();
        Subscription::new("p1", self.clone(), consumer)
            .catch_up()
            .await?;
        let elapsed = started.elapsed();
        let counted: i64 = self
            .query(|conn| {
                conn.query_row(
                    "SELECT coalesce(sum(events), 0) FROM p1_cart_events",
                    [],
                    |row| row.get(0),
                )
            })
            .await?;
        Ok((u64::try_from(counted)?, elapsed))
    }
}

impl BenchStore for MemoryStore {
    async fn fresh(_: Backend, _: &Path, _: &str) -> Res<Self> {
        Ok(MemoryStore::new())
    }

    async fn p1_catch_up(&self) -> Res<(u64, Duration)> {
        let counter = CountCartEvents::default();
        let consumer = HandlerConsumer::new(counter.clone(), self.clone());
        let started = Instant::now();
        Subscription::new("p1", self.clone(), consumer)
            .catch_up()
            .await?;
        Ok((counter.0.load(Ordering::Relaxed), started.elapsed()))
    }
}

/// P1: a subscription's catch-up over the W1 events (see [`BenchStore::p1_catch_up`]);
/// checks that every event was counted once.
async fn p1<S: BenchStore>(store: &S, label: &str, events: u64) -> Res<()> {
    let (counted, elapsed) = store.p1_catch_up().await?;
    if counted != events {
        return Err(format!(
            "P1 {label}: the consumer counted {counted} events, expected {events}"
        )
        .into());
    }
    eprintln!(
        "bench: P1 {label}: a subscription caught up over {events} events in {:.3} s, each counted once: ok",
        elapsed.as_secs_f64()
    );
    report(
        "P1",
        label,
        "events_per_s",
        per_second(events, elapsed),
        "events/s",
    );
    Ok(())
}

fn db_path(backend: Backend, dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}-{name}.db", backend.label()))
}

/// Deletes a database and its WAL files, if present (nothing to do for the memory store).
fn remove_db(backend: Backend, dir: &Path, name: &str) -> Res<()> {
    let db = db_path(backend, dir, name);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        let path = PathBuf::from(path);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display()).into()),
        }
    }
    Ok(())
}

async fn run_backend<S: BenchStore>(ctx: &Ctx<'_>, backend: Backend) -> Res<()> {
    let label = backend.label();
    let workloads = ctx.config.workloads;
    // The database of W1, which W2 continues and W4 reads.
    let mut w1_db: Option<S> = None;
    let mut w1_ran = false;
    let mut w1_rate = None;
    if workloads.w1 {
        let store = S::fresh(backend, ctx.dir, "w1").await?;
        w1_rate = Some(w1(ctx, &store, label, false).await?);
        w1_db = Some(store);
        w1_ran = true;

        let cached = S::fresh(backend, ctx.dir, "w1-cache").await?;
        w1(ctx, &cached, &format!("{label}+cache"), true).await?;
        drop(cached);
        remove_db(backend, ctx.dir, "w1-cache")?;
    }
    if workloads.w2 {
        let store = match &w1_db {
            Some(store) => store.clone(),
            None => {
                let store = S::fresh(backend, ctx.dir, "w1").await?;
                w1_db = Some(store.clone());
                store
            }
        };
        w2(ctx, &store, label).await?;
    }
    if (workloads.w3 || workloads.w4) && !backend.runs_reads() {
        eprintln!("bench: W3 and W4 are not run on {label} (measured under NORMAL only)");
    }
    if workloads.w3 && backend.runs_reads() {
        let several = ctx.config.replay_events.len() > 1;
        for &size in &ctx.config.replay_events {
            let suffix = if several {
                format!("@{}", compact(size))
            } else {
                String::new()
            };
            w3::<S>(ctx, backend, size, &suffix, true).await?;
        }
        for &size in &ctx.config.replay_scale {
            let suffix = format!("@{}", compact(size));
            w3::<S>(ctx, backend, size, &suffix, false).await?;
        }
    }
    if workloads.w4 && backend.runs_reads() {
        let store = match (&w1_db, w1_ran) {
            (Some(store), true) => store.clone(),
            _ => {
                let store = S::fresh(backend, ctx.dir, "w4-w1").await?;
                let started = Instant::now();
                bulk_write_carts(&store, "w1", ctx.config.carts).await?;
                eprintln!(
                    "bench: W4 {label}: wrote the W1 carts in bulk (untimed) in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                store
            }
        };
        let events = u64::from(ctx.config.carts) * EVENTS_PER_CART;
        w4_read(
            &store,
            label,
            events,
            ctx.expected.added_units,
            ctx.config.loads,
        )
        .await?;
        p1(&store, label, events).await?;
        drop(store);
        drop(w1_db.take());
        remove_db(backend, ctx.dir, "w4-w1")?;
        w4_bulk::<S>(ctx, backend, w1_rate).await?;
    }
    drop(w1_db);
    remove_db(backend, ctx.dir, "w1")?;
    Ok(())
}

/// W1: every cart's script, command by command, through `Repository::execute`, one task.
/// Returns the commands per second it reported.
async fn w1<S: BenchStore>(ctx: &Ctx<'_>, store: &S, label: &str, cache: bool) -> Res<u64> {
    let carts = ctx.config.carts;
    let scripts: Vec<(String, Vec<CartCommand>)> = (0..carts)
        .map(|n| (script_cart_id("w1", n), script("w1", n)))
        .collect();
    let mut repository = Repository::<Cart, S>::new(store.clone());
    if cache {
        repository = repository.with_cache(carts.max(1) as usize);
    }
    eprintln!("bench: W1 {label}: {carts} carts, one task ...");
    let mut commands = 0u64;
    let started = Instant::now();
    for (cart_id, script) in scripts {
        for command in script {
            repository
                .execute(&cart_id, command)
                .await
                .map_err(|e| format!("W1 {label}: command on cart {cart_id} failed: {e}"))?;
            commands += 1;
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "bench: W1 {label}: {commands} commands in {:.3} s",
        elapsed.as_secs_f64()
    );
    let rate = per_second(commands, elapsed);
    report("W1", label, "cmds_per_s", rate, "cmd/s");
    check_carts(ctx, store, "W1", label, "w1").await?;
    Ok(rate)
}

/// W2: the script on carts `w2-…`, cart n run by task `n % tasks`, tasks concurrent.
async fn w2<S: BenchStore>(ctx: &Ctx<'_>, store: &S, label: &str) -> Res<()> {
    let carts = ctx.config.carts;
    let tasks = ctx.config.tasks;
    let mut work: Vec<Vec<(String, Vec<CartCommand>)>> = (0..tasks).map(|_| Vec::new()).collect();
    for n in 0..carts {
        work[(n % tasks) as usize].push((script_cart_id("w2", n), script("w2", n)));
    }
    let repository = Repository::<Cart, S>::new(store.clone());
    eprintln!("bench: W2 {label}: {carts} carts over {tasks} tasks ...");
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for carts in work {
        let repository = repository.clone();
        let label = label.to_owned();
        running.spawn(async move {
            let mut commands = 0u64;
            for (cart_id, script) in carts {
                for command in script {
                    repository.execute(&cart_id, command).await.map_err(|e| {
                        format!("W2 {label}: command on cart {cart_id} failed: {e}")
                    })?;
                    commands += 1;
                }
            }
            Ok::<u64, BoxError>(commands)
        });
    }
    let mut commands = 0u64;
    while let Some(joined) = running.join_next().await {
        commands += joined.map_err(|e| format!("W2 {label}: a task died: {e}"))??;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "bench: W2 {label}: {commands} commands in {:.3} s",
        elapsed.as_secs_f64()
    );
    report(
        "W2",
        label,
        "cmds_per_s",
        per_second(commands, elapsed),
        "cmd/s",
    );
    check_carts(ctx, store, "W2", label, "w2").await
}

/// Reloads every cart of the run through a fresh repository and compares the sum of
/// `total_price` with the in-memory fold of the scripts.
async fn check_carts<S: BenchStore>(
    ctx: &Ctx<'_>,
    store: &S,
    workload: &str,
    label: &str,
    prefix: &str,
) -> Res<()> {
    let repository = Repository::<Cart, S>::new(store.clone());
    let mut sum = 0i64;
    for n in 0..ctx.config.carts {
        let cart_id = script_cart_id(prefix, n);
        let loaded = repository
            .load(&cart_id)
            .await
            .map_err(|e| format!("{workload} {label}: reloading cart {cart_id} failed: {e}"))?;
        if loaded.version != EVENTS_PER_CART {
            return Err(format!(
                "{workload} {label}: cart {cart_id} is at version {}, expected {EVENTS_PER_CART}",
                loaded.version
            )
            .into());
        }
        sum += loaded.state.total_price();
    }
    let expected = ctx.expected.checksum;
    if sum != expected {
        return Err(format!(
            "{workload} {label}: CHECKSUM MISMATCH: reloaded carts sum to {sum}, the in-memory \
             fold gives {expected}"
        )
        .into());
    }
    let published = if ctx.config.carts == 1000 {
        format!(" = BENCHMARKS.md {W1_CHECKSUM_1000}")
    } else {
        String::new()
    };
    eprintln!("bench: {workload} {label}: checksum {sum} = in-memory fold{published}: ok");
    Ok(())
}

/// W3: one stream of `size` events written in bulk, then loaded `--loads` times, plainly
/// and (if `snapshots`) from a snapshot at its last version.
async fn w3<S: BenchStore>(
    ctx: &Ctx<'_>,
    backend: Backend,
    size: u64,
    suffix: &str,
    snapshots: bool,
) -> Res<()> {
    let label = format!("{}{suffix}", backend.label());
    let snapshot_label = format!("{}+snapshot{suffix}", backend.label());
    let name = format!("w3-{size}");
    let store = S::fresh(backend, ctx.dir, &name).await?;
    let stream = stream_id::<Cart>(W3_ID);

    let started = Instant::now();
    let folded = write_w3_stream(&store, &stream, size).await?;
    eprintln!(
        "bench: W3 {label}: wrote {size} events to `{stream}` (untimed) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if size % 2 == 0 && !folded.lines().is_empty() {
        return Err(
            format!("W3 {label}: the in-memory fold of an even stream is not empty").into(),
        );
    }

    let repository = Repository::<Cart, S>::new(store.clone());
    let mut times = Vec::with_capacity(ctx.config.loads);
    for _ in 0..ctx.config.loads {
        let started = Instant::now();
        let loaded = repository
            .load(W3_ID)
            .await
            .map_err(|e| format!("W3 {label}: load failed: {e}"))?;
        times.push(started.elapsed());
        check_w3_load(&label, &loaded.state, loaded.version, &folded, size)?;
    }
    let median_time = median(&times);
    eprintln!("bench: W3 {label}: loads (ms) {}", format_ms(&times));
    report(
        "W3",
        &label,
        "load_ms_median",
        format!("{:.1}", median_time.as_secs_f64() * 1e3),
        "ms",
    );
    report(
        "W3",
        &label,
        "events_per_s",
        per_second(size, median_time),
        "events/s",
    );
    if !snapshots {
        drop(repository);
        drop(store);
        return remove_db(backend, ctx.dir, &name);
    }

    let snapshot = Snapshot {
        stream_id: stream.clone(),
        version: size,
        state_version: 1,
        state: serde_json::to_string(&folded)?,
        taken_at: recorded_now(),
    };
    store
        .save_snapshot(snapshot)
        .await
        .map_err(|e| format!("W3 {snapshot_label}: saving the snapshot failed: {e}"))?;
    let repository =
        Repository::<Cart, S>::new(store.clone()).with_snapshots(SnapshotPolicy::every(size));
    let mut times = Vec::with_capacity(ctx.config.loads);
    for _ in 0..ctx.config.loads {
        let started = Instant::now();
        let loaded = repository
            .load(W3_ID)
            .await
            .map_err(|e| format!("W3 {snapshot_label}: load failed: {e}"))?;
        times.push(started.elapsed());
        check_w3_load(
            &snapshot_label,
            &loaded.state,
            loaded.version,
            &folded,
            size,
        )?;
    }
    let median_time = median(&times);
    eprintln!(
        "bench: W3 {snapshot_label}: loads (ms) {}",
        format_ms(&times)
    );
    report(
        "W3",
        &snapshot_label,
        "load_ms_median",
        format!("{:.1}", median_time.as_secs_f64() * 1e3),
        "ms",
    );
    eprintln!("bench: W3 {label}: every load equals the in-memory fold at version {size}: ok");
    drop(repository);
    drop(store);
    remove_db(backend, ctx.dir, &name)
}

fn check_w3_load(label: &str, state: &Cart, version: u64, folded: &Cart, size: u64) -> Res<()> {
    if version != size {
        return Err(format!("W3 {label}: loaded version {version}, expected {size}").into());
    }
    if state != folded {
        return Err(format!(
            "W3 {label}: the loaded state differs from the in-memory fold: {state} vs {folded}"
        )
        .into());
    }
    Ok(())
}

/// Event i of the W3 stream: j = i/2, item `item-(j % 1000)`; even i adds (quantity
/// `1 + j % 5`, price `100 + j % 900`), odd i removes that item.
fn w3_event(i: u64) -> CartEvent {
    let j = i / 2;
    let cart_id = W3_ID.to_owned();
    let item_id = format!("item-{}", j % 1000);
    if i % 2 == 0 {
        CartEvent::ItemAdded {
            cart_id,
            item_id,
            quantity: (1 + j % 5) as u32,
            price: (100 + j % 900) as i64,
        }
    } else {
        CartEvent::ItemRemoved { cart_id, item_id }
    }
}

/// Appends the W3 stream in batches of [`W3_BATCH`] events; returns its in-memory fold.
async fn write_w3_stream<S: EventStore>(store: &S, stream: &str, size: u64) -> Res<Cart> {
    let mut folded = Cart::default();
    let mut written = 0u64;
    while written < size {
        let end = (written + W3_BATCH as u64).min(size);
        let mut batch = Vec::with_capacity((end - written) as usize);
        for i in written..end {
            let event = w3_event(i);
            folded.apply(&event);
            batch.push(encode_with_new_correlation(&event)?);
        }
        let appended = store
            .append(stream, ExpectedVersion::Exact(written), batch)
            .await
            .map_err(|e| format!("W3: bulk append at version {written} failed: {e}"))?;
        if appended.version != end {
            return Err(format!(
                "W3: bulk append ended at version {}, expected {end}",
                appended.version
            )
            .into());
        }
        written = end;
    }
    Ok(folded)
}

/// Encodes an event as `Repository::execute` would: metadata with a fresh correlation id.
fn encode_with_new_correlation(event: &CartEvent) -> Res<NewEvent> {
    let metadata = Metadata::new().with_correlation_id(Uuid::new_v4());
    Ok(codec::encode(event, &metadata)?)
}

/// W4 on the `--bulk-events` store: build it (untimed), read it all, report throughput and
/// the peak RSS; then, if W1 ran on the empty store (`w1_rate`), W1 again on this store.
async fn w4_bulk<S: BenchStore>(ctx: &Ctx<'_>, backend: Backend, w1_rate: Option<u64>) -> Res<()> {
    let carts = u32::try_from(ctx.config.bulk_events / EVENTS_PER_CART)
        .map_err(|_| "--bulk-events is too large")?;
    let events = u64::from(carts) * EVENTS_PER_CART;
    if events != ctx.config.bulk_events {
        eprintln!(
            "bench: W4: --bulk-events {} is not a multiple of {EVENTS_PER_CART}; using {events}",
            ctx.config.bulk_events
        );
    }
    let label = format!("{}@{}", backend.label(), compact(events));
    let reset = reset_peak_rss();
    if !reset {
        eprintln!(
            "bench: W4 {label}: cannot reset the RSS high-water mark; peak_rss_mb is the \
             process lifetime peak"
        );
    }
    let name = "w4-bulk";
    let store = S::fresh(backend, ctx.dir, name).await?;
    let started = Instant::now();
    let added_units = bulk_write_carts(&store, "w4", carts).await?;
    eprintln!(
        "bench: W4 {label}: wrote {carts} carts = {events} events, {BULK_IN_FLIGHT} appends in \
         flight (untimed), in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    w4_read(&store, &label, events, added_units, ctx.config.loads).await?;
    match peak_rss_kb() {
        Some(kb) => {
            let mb = (kb as f64 / 1024.0).round() as u64;
            let scope = if reset {
                "since this store was built"
            } else {
                "process lifetime"
            };
            eprintln!("bench: W4 {label}: peak RSS after the read: {kb} kB ({scope})");
            report("W4", &label, "peak_rss_mb", mb, "MB");
        }
        None => eprintln!("bench: W4 {label}: VmHWM not found in /proc/self/status"),
    }
    if let Some(empty_rate) = w1_rate {
        let rate = w1(ctx, &store, &label, false).await?;
        eprintln!(
            "bench: W1 {label}: {rate} cmd/s on a store of {events} events = {:.0}% of the {} \
             cmd/s on an empty store",
            rate as f64 * 100.0 / empty_rate.max(1) as f64,
            empty_rate
        );
    }
    drop(store);
    remove_db(backend, ctx.dir, name)
}

/// W4: `passes` times, reads the first `events` events in global order and decodes them
/// (see [`w4_pass`]); reports the median pass.
async fn w4_read<S: EventStore>(
    store: &S,
    label: &str,
    events: u64,
    expected_units: u64,
    passes: usize,
) -> Res<()> {
    let mut times = Vec::with_capacity(passes);
    for _ in 0..passes {
        times.push(w4_pass(store, label, events, expected_units).await?);
    }
    eprintln!("bench: W4 {label}: passes (ms) {}", format_ms(&times));
    report(
        "W4",
        label,
        "events_per_s",
        per_second(events, median(&times)),
        "events/s",
    );
    Ok(())
}

/// One W4 pass: reads the first `events` events in global order, `read_all` page by page,
/// decoding each into `CartEvent`. Checks the positions ascend, the count, and the decoded
/// quantities; returns the time taken.
async fn w4_pass<S: EventStore>(
    store: &S,
    label: &str,
    events: u64,
    expected_units: u64,
) -> Res<Duration> {
    let upcasters = Upcasters::new();
    let mut from = 1u64;
    let mut read = 0u64;
    let mut last_position = 0u64;
    let mut out_of_order = false;
    let mut units = 0u64;
    eprintln!("bench: W4 {label}: reading {events} events ...");
    let started = Instant::now();
    while read < events {
        let limit = W4_PAGE.min((events - read) as usize);
        let page = store
            .read_all(from, limit)
            .await
            .map_err(|e| format!("W4 {label}: read_all from position {from} failed: {e}"))?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        read += page.len() as u64;
        for recorded in &page {
            out_of_order |= recorded.position <= last_position;
            last_position = recorded.position;
            let event: CartEvent = decode(recorded, &upcasters)
                .map_err(|e| format!("W4 {label}: decode failed: {e}"))?;
            if let CartEvent::ItemAdded { quantity, .. } = event {
                units += u64::from(quantity);
            }
        }
    }
    let elapsed = started.elapsed();
    if read != events {
        return Err(format!("W4 {label}: read {read} events, expected {events}").into());
    }
    if out_of_order {
        return Err(format!("W4 {label}: positions did not ascend").into());
    }
    if units != expected_units {
        return Err(format!(
            "W4 {label}: decoded ItemAdded quantities sum to {units}, expected {expected_units}"
        )
        .into());
    }
    eprintln!(
        "bench: W4 {label}: {read} events in {:.3} s, ascending positions, added quantities \
         {units}: ok",
        elapsed.as_secs_f64()
    );
    Ok(elapsed)
}

/// Writes carts 0..carts of `prefix`, each as one append of its 20 script events (folded
/// through `handle` and `apply` in memory), [`BULK_IN_FLIGHT`] appends at a time so that
/// SQLite's group commit puts about 1,000 events in each transaction. Returns the sum of the
/// `ItemAdded` quantities written.
async fn bulk_write_carts<S: EventStore>(store: &S, prefix: &str, carts: u32) -> Res<u64> {
    let mut added_units = 0u64;
    let mut next = 0u32;
    let progress_every = (carts / 10).max(1);
    while next < carts {
        let end = next.saturating_add(BULK_IN_FLIGHT).min(carts);
        let mut batch = Vec::with_capacity((end - next) as usize);
        for n in next..end {
            let (_, events) = fold_script(prefix, n)?;
            added_units += added_units_of(&events);
            let encoded = events
                .iter()
                .map(encode_with_new_correlation)
                .collect::<Res<Vec<_>>>()?;
            batch.push((stream_id::<Cart>(&script_cart_id(prefix, n)), encoded));
        }
        let appends = batch
            .into_iter()
            .map(|(stream, events)| async move {
                let result = store
                    .append(&stream, ExpectedVersion::NoStream, events)
                    .await;
                (stream, result)
            })
            .collect();
        for (stream, result) in join_all(appends).await {
            result.map_err(|e| format!("bulk append to {stream} failed: {e}"))?;
        }
        if end / progress_every != next / progress_every && end < carts {
            eprintln!("bench:   ... {end}/{carts} carts written");
        }
        next = end;
    }
    Ok(added_units)
}

/// Runs futures concurrently in this task and returns their outputs in order. Polling them
/// all in one go queues their appends together, so the writer takes them as one group.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Cart `n`'s script run through `handle` and `apply` alone: the final state and the events.
fn fold_script(prefix: &str, n: u32) -> Res<(Cart, Vec<CartEvent>)> {
    let mut cart = Cart::default();
    let mut events = Vec::with_capacity(EVENTS_PER_CART as usize);
    for command in script(prefix, n) {
        for event in cart.handle(command)? {
            cart.apply(&event);
            events.push(event);
        }
    }
    if events.len() as u64 != EVENTS_PER_CART {
        return Err(format!(
            "cart {n}'s script produced {} events, expected {EVENTS_PER_CART}",
            events.len()
        )
        .into());
    }
    Ok((cart, events))
}

fn added_units_of(events: &[CartEvent]) -> u64 {
    events
        .iter()
        .map(|event| match event {
            CartEvent::ItemAdded { quantity, .. } => u64::from(*quantity),
            _ => 0,
        })
        .sum()
}

/// Resets VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// VmHWM (peak resident set) of this process, in kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn report(workload: &str, backend: &str, metric: &str, value: impl Display, unit: &str) {
    println!("cqrs {workload} {backend} {metric}={value} {unit}");
}

fn per_second(count: u64, elapsed: Duration) -> u64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        (count as f64 / seconds).round() as u64
    } else {
        0
    }
}

/// The median; the mean of the middle two for an even count.
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2
    }
}

fn format_ms(times: &[Duration]) -> String {
    times
        .iter()
        .map(|t| format!("{:.1}", t.as_secs_f64() * 1e3))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `1000000` as `1M`, `20000` as `20k`, other sizes as they are.
fn compact(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}
