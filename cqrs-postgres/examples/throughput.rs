//! What the ordering design costs, measured: append latency and throughput with one writer
//! and with concurrent writers (group commit), with and without `NOTIFY`, a stream replay
//! and a read of the whole log. Run it in release mode against a server of your own:
//!
//! ```sh
//! cargo run --release -p cqrs-postgres --example throughput -- [--tasks 8] [--appends 2000]
//! ```
//!
//! `DATABASE_URL` names the server (default: local, user `postgres`). It works in a schema of
//! its own, dropped at the end unless `--schema NAME` names one to share: two of these run at
//! once with the same `--schema` measure two processes appending to one store.

use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{EventStore, ExpectedVersion, StoreError};
use cqrs_postgres::{PostgresOptions, PostgresStore};
use std::time::{Duration, Instant};

struct Args {
    tasks: usize,
    appends: usize,
    schema: Option<String>,
}

fn args() -> Args {
    let mut parsed = Args {
        tasks: 8,
        appends: 2_000,
        schema: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--tasks" => parsed.tasks = value.parse().expect("--tasks N"),
            "--appends" => parsed.appends = value.parse().expect("--appends N"),
            "--schema" => parsed.schema = Some(value),
            other => panic!("unknown flag {other}; see the example's doc"),
        }
    }
    parsed
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `count` appends of one event each, by `tasks` tasks on streams of their own; returns
/// appends per second and the median and 99th-percentile latency.
async fn appends(
    store: &PostgresStore,
    label: &str,
    tasks: usize,
    count: usize,
) -> Result<(f64, Duration, Duration), StoreError> {
    let started = Instant::now();
    let run = std::process::id();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let store = store.clone();
            let stream = format!("Bench-{label}-{run}-{task}");
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for version in 0..(count / tasks) as u64 {
                    let began = Instant::now();
                    store
                        .append(
                            &stream,
                            ExpectedVersion::Exact(version),
                            vec![tagged_event("b")],
                        )
                        .await?;
                    latencies.push(began.elapsed());
                }
                Ok::<_, StoreError>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.expect("a task panicked")?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |percent: usize| latencies[(latencies.len() - 1) * percent / 100];
    Ok((latencies.len() as f64 / elapsed, at(50), at(99)))
}

async fn run(args: Args) -> Result<(), StoreError> {
    let schema = args
        .schema
        .clone()
        .unwrap_or_else(|| format!("cqrs_bench_{}", uuid::Uuid::new_v4().simple()));
    let options = PostgresOptions::new(database_url()).schema(&schema);
    let store = PostgresStore::connect_with(options.clone()).await?;
    let quiet = PostgresStore::connect_with(options.notify(false)).await?;
    let single = args.appends / 4;
    for (label, store, tasks, count) in [
        ("1 task", &store, 1, single),
        ("tasks", &store, args.tasks, args.appends),
        ("tasks, NOTIFY off", &quiet, args.tasks, args.appends),
    ] {
        let (rate, median, p99) =
            appends(store, &label.replace([' ', ','], ""), tasks, count).await?;
        println!(
            "appends, {tasks} task(s){}: {rate:.0}/s, latency median {median:.2?}, p99 {p99:.2?}",
            if label.contains("NOTIFY") {
                ", NOTIFY off"
            } else {
                ""
            }
        );
    }
    if args.schema.is_none() {
        let stream = "Replay-1";
        let batch = (0..10_000).map(|i| tagged_event(&i.to_string())).collect();
        store
            .append(stream, ExpectedVersion::NoStream, batch)
            .await?;
        let started = Instant::now();
        let events = store.read_stream(stream, 1, usize::MAX).await?;
        let rate = events.len() as f64 / started.elapsed().as_secs_f64();
        println!(
            "replay of a {}-event stream: {rate:.0} events/s",
            events.len()
        );
        let started = Instant::now();
        let (mut from, mut read) = (1, 0);
        loop {
            let page = store.read_all(from, 1_000).await?;
            let Some(last) = page.last() else { break };
            from = last.position + 1;
            read += page.len();
        }
        let rate = read as f64 / started.elapsed().as_secs_f64();
        report(&format!(
            "read of the whole log ({read} events) in pages of 1,000: {rate:.0} events/s"
        ));
        drop((store, quiet));
        let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
    }
    Ok(())
}

/// Prints a figure; a closed stdout (`| head`) must not stop the run before it drops
/// its schema.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

#[tokio::main]
async fn main() {
    if let Err(error) = run(args()).await {
        eprintln!("throughput: {error}");
        std::process::exit(1);
    }
}
