//! Two contexts, two processes, two SQLite files, one NATS server of the test's own: orders
//! are placed while the `orders-relay` and `shipping` processes are killed (SIGKILL) at
//! random moments and restarted, and the broker itself is killed and restarted a few times.
//! Afterwards the JetStream stream holds every event of the orders' log exactly once, in
//! position order, and every order was scheduled (and, if cancelled, cancelled) exactly once
//! in the shipping context, its read model agreeing.

use cqrs_core::{EventStore, LogRead};
use cqrs_examples::shipping;
use cqrs_nats::async_nats;
use cqrs_nats::message;
use cqrs_sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ROUNDS: u64 = 24;
const CANCEL_EVERY: u64 = 4;
const BROKER_RESTARTS: [u64; 3] = [5, 12, 19];

/// A small pseudo-random sequence (xorshift), seeded from a fresh UUID and printed.
struct Random(u64);

impl Random {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// A `nats-server -js` of the test's own, on a free port, its store in a temp dir; killed
/// when dropped.
struct Broker {
    port: u16,
    store: PathBuf,
    process: Option<Child>,
}

impl Broker {
    fn start(store: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut broker = Self {
            port,
            store: store.to_owned(),
            process: None,
        };
        broker.restart();
        broker
    }

    fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) if it runs, starts it again on the same port and store,
    /// and waits until it takes connections.
    fn restart(&mut self) {
        self.kill();
        let process = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is on the PATH");
        self.process = Some(process);
        for _ in 0..500 {
            if std::net::TcpStream::connect(self.url()).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server did not listen on {}", self.url());
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn run(binary: &str, args: &[&str]) -> Child {
    Command::new(binary)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example binary starts")
}

fn finish(child: Child) -> String {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_consumer_and_broker_killed_at_random_moments_ship_every_order_exactly_once() {
    killed_at_random_moments(15).await;
}

/// The size: 24 x 420 orders, about 12,600 events (`.ci/run` runs it explicitly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: about ten thousand events; .ci/run runs it"]
async fn ten_thousand_events_through_kills_of_relay_consumer_and_broker() {
    killed_at_random_moments(420).await;
}

async fn killed_at_random_moments(orders_per_round: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("jetstream"));
    let url = broker.url();
    let orders_db = dir.path().join("orders.db");
    let shipping_db = dir.path().join("shipping.db");
    let (orders, shipping_file) = (orders_db.to_str().unwrap(), shipping_db.to_str().unwrap());
    let nats = ["--nats", url.as_str()];
    let relay_args = [&["relay", "--db", orders][..], &nats].concat();
    let shipping_args = [&["--db", shipping_file][..], &nats].concat();
    let (relay_bin, shipping_bin) = (
        env!("CARGO_BIN_EXE_orders-relay"),
        env!("CARGO_BIN_EXE_shipping"),
    );
    // The stream exists before the first shipping process asks for it.
    finish(run(
        relay_bin,
        &[relay_args.as_slice(), &["--until-caught-up"]].concat(),
    ));

    let seed = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap()) | 1;
    println!("seed {seed}");
    let mut random = Random(seed);
    for round in 0..ROUNDS {
        let from = (round * orders_per_round + 1).to_string();
        let count = orders_per_round.to_string();
        let every = CANCEL_EVERY.to_string();
        let place = [
            "place",
            "--db",
            orders,
            "--orders",
            &count,
            "--from",
            &from,
            "--cancel-every",
            &every,
        ];
        let writer = run(relay_bin, &place);
        let mut relay = run(relay_bin, &relay_args);
        let mut consumer = run(shipping_bin, &shipping_args);
        std::thread::sleep(Duration::from_millis(5 + random.next(120)));
        if BROKER_RESTARTS.contains(&round) {
            broker.restart();
            std::thread::sleep(Duration::from_millis(random.next(150)));
        }
        // SIGKILL: no destructor, no flush, no last checkpoint.
        relay.kill().unwrap();
        consumer.kill().unwrap();
        relay.wait().unwrap();
        consumer.wait().unwrap();
        finish(writer);
    }
    finish(run(
        relay_bin,
        &[relay_args.as_slice(), &["--until-caught-up"]].concat(),
    ));
    finish(run(
        shipping_bin,
        &[shipping_args.as_slice(), &["--until-caught-up"]].concat(),
    ));

    // JetStream holds the orders' log, each event once, in position order.
    let store = SqliteStore::open(&orders_db).await.unwrap();
    let log = store
        .read_log(&LogRead::forward(0, usize::MAX))
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let stream = jetstream.get_stream("ORDERS").await.unwrap();
    let info = stream.get_info().await.unwrap();
    assert_eq!(info.state.messages, u64::try_from(log.len()).unwrap());
    for (sequence, stored) in (1..).zip(&log) {
        let raw = stream.get_raw_message(sequence).await.unwrap();
        let published = message::recorded(&raw.headers, &raw.payload, sequence).unwrap();
        assert_eq!(&published, stored, "JetStream sequence {sequence}");
    }

    // Every order scheduled once; every cancelled one cancelled once; the read model agrees.
    let shipping_store = SqliteStore::open(&shipping_db).await.unwrap();
    let board = shipping::shipments(&shipping_store).await.unwrap();
    assert_eq!(
        board.len(),
        usize::try_from(ROUNDS * orders_per_round).unwrap()
    );
    for n in 1..=ROUNDS * orders_per_round {
        let events = shipping_store
            .read_stream(&format!("Shipment-o{n}"), 1, 10)
            .await
            .unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let cancelled = n % CANCEL_EVERY == 0;
        let expected = if cancelled {
            vec!["ShipmentScheduled", "ShipmentCancelled"]
        } else {
            vec!["ShipmentScheduled"]
        };
        assert_eq!(kinds, expected, "order o{n}");
        let row = board
            .iter()
            .find(|(id, _, _)| *id == format!("o{n}"))
            .unwrap();
        let status = if cancelled { "cancelled" } else { "scheduled" };
        assert_eq!(
            (row.1.as_str(), row.2),
            (status, i64::try_from(n * 100).unwrap())
        );
    }
}
