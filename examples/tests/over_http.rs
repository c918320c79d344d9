//! The orders context's feed followed by another process: `serve` (the orders context's
//! feed, a process of its own) and `reporting` (the reporting context, another process with
//! its own SQLite file) run as binaries; the server is killed and restarted while the
//! reporting process follows, and the sales read model still counts every order exactly
//! once.

use cqrs_core::Repository;
use cqrs_examples::order::{Order, OrderCommand};
use cqrs_examples::sales::{read_sales, CustomerSales};
use cqrs_sqlite::rusqlite::{Connection, OpenFlags, OptionalExtension};
use cqrs_sqlite::SqliteStore;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process that is killed when dropped, so a failing test leaves none behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on `addr` over the store in `dir`, without the stories; returns the
/// process and the URL it printed.
fn start_server(dir: &Path, addr: &str) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args([
            "--no-stories",
            "--page-size",
            "5",
            "--addr",
            addr,
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("serve printed nothing").unwrap();
    let url = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    (Process(child), url)
}

/// The reporting process's checkpoint, read from its file (0 before it wrote one).
fn reporting_checkpoint(db: &Path) -> u64 {
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.query_row(
        "SELECT position FROM checkpoints WHERE subscription = 'reporting-sales'",
        [],
        |row| row.get::<_, i64>(0),
    )
    .optional()
    .ok()
    .flatten()
    .map_or(0, |position| u64::try_from(position).unwrap())
}

/// Waits (a bound, not a timing check) until `done` holds, or fails naming `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Places `count` orders from `first` on (customers by number mod 3), completing every
/// third and cancelling every fifth; adds what it did to `expected`; returns the last
/// position written.
async fn place_orders(
    orders: &Repository<Order, SqliteStore>,
    first: u32,
    count: u32,
    expected: &mut BTreeMap<String, CustomerSales>,
) -> u64 {
    let mut last = 0;
    for n in first..first + count {
        let order_id = format!("o{n}");
        let customer_id = format!("customer-{}", n % 3);
        let total_cents = i64::from(n) * 100 + 99;
        let sales = expected.entry(customer_id.clone()).or_default();
        sales.orders += 1;
        sales.placed_cents += total_cents;
        let place = OrderCommand::Place {
            order_id: order_id.clone(),
            customer_id,
            total_cents,
        };
        last = orders.execute(&order_id, place).await.unwrap().events[0].position;
        let next = if n % 3 == 0 {
            sales.completed += 1;
            OrderCommand::Complete {
                order_id: order_id.clone(),
            }
        } else if n % 5 == 0 {
            sales.cancelled += 1;
            OrderCommand::Cancel {
                order_id: order_id.clone(),
                reason: "changed mind".into(),
            }
        } else {
            continue;
        };
        last = orders.execute(&order_id, next).await.unwrap().events[0].position;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_follows_the_feed_exactly_once_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (orders_dir, reporting_dir) = (dir.path().join("orders"), dir.path().join("reporting"));
    std::fs::create_dir_all(&orders_dir).unwrap();
    let store = SqliteStore::open(orders_dir.join("events.db"))
        .await
        .unwrap();
    let orders = Repository::<Order, _>::new(store.clone());
    // Other contexts' events in the same log, which the reporting filter leaves out.
    cqrs_examples::demo::cart::run(store.clone(), &mut std::io::sink())
        .await
        .unwrap();
    let mut expected = BTreeMap::new();
    let first_batch = place_orders(&orders, 0, 150, &mut expected).await;

    let (server, url) = start_server(&orders_dir, "127.0.0.1:0");
    let mut reporting = Process(
        Command::new(env!("CARGO_BIN_EXE_reporting"))
            .args(["--feed", &url, "--data-dir"])
            .arg(&reporting_dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let reporting_db = reporting_dir.join("reporting.db");

    // Kill the server as soon as the reporting process has committed something: it is then
    // (most likely) in the middle of catching up through the 5-position pages.
    wait_until("the reporting process commits a first page", || {
        reporting_checkpoint(&reporting_db) > 0
    });
    drop(server); // killed
    let killed_at = reporting_checkpoint(&reporting_db);
    let last = place_orders(&orders, 150, 60, &mut expected).await;
    assert!(last > first_batch);
    let (server, _) = start_server(&orders_dir, url.trim_start_matches("http://"));

    wait_until("the reporting process reaches the last order event", || {
        reporting_checkpoint(&reporting_db) >= last
    });
    assert!(
        reporting.0.try_wait().unwrap().is_none(),
        "the reporting process is still following"
    );
    drop(reporting);
    drop(server);

    let conn = Connection::open(&reporting_db).unwrap();
    assert_eq!(
        read_sales(&conn).unwrap(),
        expected,
        "every order counted exactly once"
    );
    assert_eq!(reporting_checkpoint(&reporting_db), last);
    eprintln!("server killed with the reporting checkpoint at {killed_at} of {first_batch}; resumed to {last}");
}
