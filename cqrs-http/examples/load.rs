//! `cargo run --release -p cqrs-http --example load`: the feed under load, from a second
//! process on loopback, bounded in requests and time; prints its figures.
//!
//! The program starts itself again as the server (`--serve`: a SQLite store filled with
//! events, served by `HttpFeed`, taking `append N BYTES` commands on stdin so that appends
//! wake its live streams as a writer in the serving process would), then measures:
//! archived pages (plain and revalidated with `If-None-Match`), the head page, 1,000
//! concurrent SSE clients each receiving every new event, and a client that never reads
//! while others are fed (the server's resident memory before and after). It exits non-zero
//! if a request failed or a client missed an event.

use clap::Parser;
use cqrs_core::{EventStore, ExpectedVersion, LogRead, Metadata, NewEvent};
use cqrs_http::{FeedConfig, HttpFeed};
use cqrs_sqlite::SqliteStore;
use std::io::{BufRead, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use uuid::Uuid;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Load test of the HTTP feed (a second process on loopback).
#[derive(Debug, Parser)]
struct Args {
    /// Run as the server (internal: the load process starts itself with it)
    #[arg(long, hide = true)]
    serve: Option<std::path::PathBuf>,
    /// Events in the store before the run
    #[arg(long, default_value_t = 20_050)]
    events: u64,
    /// Positions per page
    #[arg(long, default_value_t = 100)]
    page_size: u64,
    /// Connections of the request phases
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Longest a request phase runs, in seconds
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Most requests a request phase sends
    #[arg(long, default_value_t = 400_000)]
    max_requests: u64,
    /// Concurrent SSE clients of the fan-out phase
    #[arg(long, default_value_t = 1_000)]
    sse_clients: usize,
    /// Events appended during the fan-out phase
    #[arg(long, default_value_t = 20)]
    sse_events: u64,
    /// Events of 1 KiB appended while one client never reads
    #[arg(long, default_value_t = 5_000)]
    slow_events: u64,
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match &args.serve {
        Some(db) => runtime.block_on(serve(db, &args)),
        None => runtime.block_on(load(&args)),
    }
}

fn event(bytes: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "Measured".into(),
        schema_version: 1,
        payload: format!("{{\"pad\":\"{}\"}}", "x".repeat(bytes)),
        metadata: Metadata::new().with_correlation_id(Uuid::new_v4()),
    }
}

/// The server process: fills the store if empty, serves it, appends on command.
async fn serve(db: &std::path::Path, args: &Args) -> Result<(), Error> {
    let store = SqliteStore::open(db).await?;
    let router = HttpFeed::new(store.clone())
        .with_config(FeedConfig::default().with_page_size(args.page_size))
        .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let words: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|w| w.parse().ok())
            .collect();
        let [count, bytes] = words[..] else {
            return Err(format!("expected `append COUNT BYTES`, got {line:?}").into());
        };
        let bytes = usize::try_from(bytes)?;
        for _ in 0..count {
            store
                .append("Load-1", ExpectedVersion::Any, vec![event(bytes)])
                .await?;
        }
        let newest = store.read_log(&LogRead::backward(u64::MAX, 1)).await?;
        println!(
            "appended {}",
            newest.first().map_or(0, |event| event.position)
        );
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// The server child and its stdin/stdout.
struct Server {
    child: Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    address: String,
}

impl Server {
    /// Appends `count` events of `bytes` each in the server; returns the head position
    /// (`append(0, 0)`: the head as it is).
    fn append(&mut self, count: u64, bytes: usize) -> Result<u64, Error> {
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "append {count} {bytes}")?;
        let line = self.lines.next().ok_or("the server ended")??;
        Ok(line.trim_start_matches("appended ").parse()?)
    }

    /// The server's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

async fn load(args: &Args) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("feed.db");
    {
        let store = SqliteStore::open(&db).await?;
        let mut left = args.events;
        while left > 0 {
            let batch = left.min(500);
            let events = (0..batch).map(|_| event(200)).collect();
            store
                .append(&format!("Fill-{left}"), ExpectedVersion::Any, events)
                .await?;
            left -= batch;
        }
    }
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .arg(&db)
        .args(["--page-size", &args.page_size.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let first = lines.next().ok_or("the server printed nothing")??;
    let address = first.trim_start_matches("listening on ").to_owned();
    let mut server = Server {
        child,
        lines,
        address,
    };
    println!(
        "cqrs-http load: {} events of ~0.3 KiB in SQLite, pages of {}, {} connections, phases of at most {} s / {} requests, server {}",
        args.events, args.page_size, args.connections, args.seconds, args.max_requests, server.address
    );
    let outcome = phases(args, &mut server).await;
    let _ = server.child.kill();
    let _ = server.child.wait();
    outcome
}

async fn phases(args: &Args, server: &mut Server) -> Result<(), Error> {
    let archived = args.events / args.page_size; // pages wholly behind the head
    let address = server.address.clone();
    let pages = move |n: u64| format!("/feed/pages/{}", n % archived + 1);
    requests(args, &address, "archived pages", &pages, None).await?;
    let etag_of = |n: u64| format!("\"page-{}-{}\"", args.page_size, n % archived + 1);
    requests(
        args,
        &address,
        "archived pages, If-None-Match (304)",
        &pages,
        Some(&etag_of),
    )
    .await?;
    requests(args, &address, "head page", &|_| "/feed".to_owned(), None).await?;
    let head = server.append(0, 0)?;
    let head_etag = move |_| format!("\"head-{head}\"");
    requests(
        args,
        &address,
        "head page, If-None-Match (304)",
        &|_| "/feed".to_owned(),
        Some(&head_etag),
    )
    .await?;
    fan_out(args, server).await?;
    slow_client(args, server).await
}

/// One request phase: `connections` keep-alive connections asking `path(n)` in turn.
async fn requests(
    args: &Args,
    address: &str,
    name: &str,
    path: &(dyn Fn(u64) -> String + Sync),
    etag: Option<&(dyn Fn(u64) -> String + Sync)>,
) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let per_connection = args.max_requests / args.connections as u64;
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.connections {
        let address = address.to_owned();
        let requests: Vec<Vec<u8>> = (0..64u64)
            .map(|i| {
                let n = i * 7919 + worker as u64 * 104_729;
                let condition = etag
                    .map(|etag| format!("If-None-Match: {}\r\n", etag(n)))
                    .unwrap_or_default();
                format!("GET {} HTTP/1.1\r\nHost: load\r\n{condition}\r\n", path(n)).into_bytes()
            })
            .collect();
        workers.push(tokio::spawn(async move {
            let mut connection = BufStream::new(TcpStream::connect(&address).await?);
            let mut latencies = Vec::new();
            let (mut bytes, mut statuses) = (0usize, [0u64; 6]);
            for i in 0..per_connection {
                if Instant::now() >= deadline {
                    break;
                }
                let sent = Instant::now();
                let (status, body) = get(&mut connection, &requests[(i % 64) as usize]).await?;
                latencies.push(sent.elapsed());
                bytes += body;
                statuses[usize::from(status / 100)] += 1;
            }
            Ok::<_, Error>((latencies, bytes, statuses))
        }));
    }
    let (mut latencies, mut bytes, mut statuses) = (Vec::new(), 0, [0u64; 6]);
    for worker in workers {
        let (l, b, s) = worker.await??;
        latencies.extend(l);
        bytes += b;
        for (total, one) in statuses.iter_mut().zip(s) {
            *total += one;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    // The latency below which `percent` of the requests answered.
    let at = |percent: usize| {
        let index = (latencies.len() * percent / 100).min(latencies.len().saturating_sub(1));
        latencies.get(index).copied().unwrap_or_default()
    };
    println!(
        "{name:<40} {:>8} requests in {elapsed:.2} s = {:>7.0} req/s; p50 {:?}, p99 {:?}; {:.1} MiB of bodies; 2xx {} 3xx {} 4xx {} 5xx {}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        at(50),
        at(99),
        bytes as f64 / (1 << 20) as f64,
        statuses[2],
        statuses[3],
        statuses[4],
        statuses[5],
    );
    if statuses[4] + statuses[5] > 0 {
        return Err(format!("{name}: requests failed").into());
    }
    Ok(())
}

/// Sends one request on a keep-alive connection and reads the answer: (status, body bytes).
async fn get(connection: &mut BufStream<TcpStream>, request: &[u8]) -> Result<(u16, usize), Error> {
    connection.write_all(request).await?;
    connection.flush().await?;
    let mut line = String::new();
    connection.read_line(&mut line).await?;
    let status: u16 = line.split_whitespace().nth(1).ok_or("no status")?.parse()?;
    let mut length = 0usize;
    loop {
        line.clear();
        connection.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    connection.read_exact(&mut body).await?;
    Ok((status, length))
}

/// Opens an SSE stream after `after`; returns the connection positioned at the body.
async fn open_sse(address: &str, after: u64) -> Result<BufStream<TcpStream>, Error> {
    let mut connection = BufStream::new(TcpStream::connect(address).await?);
    let request = format!("GET /feed/sse?after={after} HTTP/1.1\r\nHost: load\r\n\r\n");
    connection.write_all(request.as_bytes()).await?;
    connection.flush().await?;
    let mut line = String::new();
    loop {
        line.clear();
        connection.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            return Ok(connection);
        }
    }
}

/// Reads a chunked SSE body until the event with id `last` arrived; checks every id from
/// `after + 1` to `last` came once, in order.
async fn read_sse_until(
    mut connection: BufStream<TcpStream>,
    after: u64,
    last: u64,
) -> Result<(), Error> {
    let mut expected = after + 1;
    let mut text = String::new();
    let mut line = String::new();
    while expected <= last {
        // One chunk: its size line, its data, its CRLF.
        line.clear();
        connection.read_line(&mut line).await?;
        let size = usize::from_str_radix(line.trim(), 16)?;
        let mut chunk = vec![0; size + 2];
        connection.read_exact(&mut chunk).await?;
        text.push_str(std::str::from_utf8(&chunk[..size])?);
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                let id: u64 = id.parse()?;
                if id != expected {
                    return Err(format!("expected event {expected}, got {id}").into());
                }
                expected += 1;
            }
        }
    }
    Ok(())
}

/// 1,000 SSE clients; events appended one by one; every client must get every event.
async fn fan_out(args: &Args, server: &mut Server) -> Result<(), Error> {
    let head = server.append(0, 0)?;
    let mut connections = Vec::new();
    for _ in 0..args.sse_clients {
        connections.push(open_sse(&server.address, head).await?);
    }
    let last = head + args.sse_events;
    let started = Instant::now();
    let readers: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            tokio::spawn(tokio::time::timeout(
                Duration::from_secs(60),
                read_sse_until(connection, head, last),
            ))
        })
        .collect();
    // Appended one by one by the server's own writer (a stdin command), 10 ms apart.
    let mut appended = head;
    for _ in 0..args.sse_events {
        appended = server.append(1, 200)?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut complete = 0;
    for reader in readers {
        if matches!(reader.await?, Ok(Ok(()))) {
            complete += 1;
        }
    }
    println!(
        "{:<40} {complete} of {} clients received all {} events (positions {}..={appended}, each once, in order) in {:.2} s; server RSS {} MiB",
        "SSE fan-out",
        args.sse_clients,
        args.sse_events,
        head + 1,
        started.elapsed().as_secs_f64(),
        server.rss_kib() / 1024,
    );
    if complete < args.sse_clients {
        return Err("SSE fan-out: some clients missed events".into());
    }
    Ok(())
}

/// One client that never reads while 50 others follow a burst of 1 KiB events.
async fn slow_client(args: &Args, server: &mut Server) -> Result<(), Error> {
    let head = server.append(0, 0)?;
    let before = server.rss_kib();
    let _stalled = open_sse(&server.address, head).await?; // never read from
    let mut readers = Vec::new();
    let last = head + args.slow_events;
    for _ in 0..50 {
        let connection = open_sse(&server.address, head).await?;
        readers.push(tokio::spawn(tokio::time::timeout(
            Duration::from_secs(120),
            read_sse_until(connection, head, last),
        )));
    }
    let started = Instant::now();
    server.append(args.slow_events, 1024)?;
    let mut complete = 0;
    for reader in readers {
        if matches!(reader.await?, Ok(Ok(()))) {
            complete += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = server.rss_kib();
    println!(
        "{:<40} {complete} of 50 readers got all {} events of 1 KiB in {elapsed:.2} s while one client read nothing; {:.1} MiB appended in all; server RSS {} MiB before, {} MiB after",
        "slow client",
        args.slow_events,
        (args.slow_events * 1100) as f64 / (1 << 20) as f64,
        before / 1024,
        after / 1024,
    );
    if complete < 50 {
        return Err("slow client: a reader missed events".into());
    }
    Ok(())
}
