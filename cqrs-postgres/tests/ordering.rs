//! The global order under load from several processes: writers in two child processes
//! (this test binary run again, see `ordering_child`) append concurrently to shared
//! streams, some under `Any`, some under `Exact` with retries, while readers in this process
//! tail the log with pages of several sizes and a subscription follows it live. Every
//! reader must see every event exactly once, all in one order (the order of the final
//! log), with each stream's versions ascending and each writer's appends in the order it
//! made them; every append acknowledged to a writer is stored as acknowledged.

mod common;

use async_trait::async_trait;
use common::test_store;
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{
    Consumer, EventStore, ExpectedVersion, HandlerError, Metadata, NewEvent, RecordedEvent,
    StoreError, Subscription,
};
use cqrs_postgres::{PostgresOptions, PostgresStore};
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const PROCESSES: usize = 2;
/// Writer tasks per process.
const TASKS: usize = 6;
/// Appends per writer task (1 to 3 events each).
const APPENDS: u64 = 200;
/// Streams all writers share.
const STREAMS: u64 = 10;
/// The bound on the whole test: past it, it fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(300);

const SCHEMA_VAR: &str = "CQRS_ORDERING_SCHEMA";
const PROCESS_VAR: &str = "CQRS_ORDERING_PROCESS";

/// A tiny deterministic generator, so a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// The writers of one child process; run only when the parent test sets the variables.
#[test]
#[ignore = "a child process of appends_from_two_processes_reach_every_reader_once_in_one_order"]
fn ordering_child() {
    let (Ok(schema), Ok(process)) = (std::env::var(SCHEMA_VAR), std::env::var(PROCESS_VAR)) else {
        return;
    };
    let process: u64 = process.parse().expect("a process number");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let options = PostgresOptions::new(common::database_url()).schema(schema);
        let store = PostgresStore::connect_with(options).await.expect("connect");
        let writers: Vec<_> = (0..TASKS as u64)
            .map(|task| tokio::spawn(write(store.clone(), process, task)))
            .collect();
        let mut acknowledged = Vec::new();
        for writer in writers {
            acknowledged.extend(writer.await.expect("a writer panicked"));
        }
        // Every acknowledged event is stored as it was acknowledged.
        acknowledged.sort_by_key(|e: &RecordedEvent| e.position);
        let ids: Vec<_> = acknowledged.iter().map(|e| e.event_id).collect();
        let stored = store.read_events_by_id(&ids).await.expect("read by id");
        assert_eq!(
            stored, acknowledged,
            "an acknowledged event is not stored as acknowledged"
        );
        println!("acknowledged {} events", acknowledged.len());
    });
}

/// One writer: `APPENDS` appends to random shared streams; even tasks append under `Any`,
/// odd ones under `Exact` with the version just read, retrying on conflicts.
async fn write(store: PostgresStore, process: u64, task: u64) -> Vec<RecordedEvent> {
    let mut random = Lcg(process * 1_000 + task);
    let writer = format!("p{process}t{task}");
    let mut acknowledged = Vec::new();
    for seq in 0..APPENDS {
        let stream = format!("Order-{}", random.next(STREAMS));
        let count = 1 + random.next(3);
        let events: Vec<NewEvent> = (0..count)
            .map(|_| NewEvent {
                metadata: Metadata::new()
                    .with("writer", writer.as_str())
                    .with("seq", seq),
                ..tagged_event(&writer)
            })
            .collect();
        loop {
            let expected = if task.is_multiple_of(2) {
                ExpectedVersion::Any
            } else {
                let version = store.stream_version(&stream).await.expect("stream_version");
                ExpectedVersion::Exact(version.unwrap_or(0))
            };
            match store.append(&stream, expected, events.clone()).await {
                Ok(appended) => {
                    acknowledged.extend(appended.events);
                    break;
                }
                Err(StoreError::WrongExpectedVersion { .. }) => continue,
                Err(other) => panic!("writer {writer} failed: {other}"),
            }
        }
    }
    acknowledged
}

/// Reads the log from the start in pages of `page` until it has read up to the end
/// `end` announces (once the writers are done).
async fn tail(
    store: PostgresStore,
    page: usize,
    end: watch::Receiver<Option<u64>>,
) -> Vec<RecordedEvent> {
    let started = Instant::now();
    let mut seen: Vec<RecordedEvent> = Vec::new();
    let mut from = 1;
    loop {
        let events = store.read_all(from, page).await.expect("read_all");
        if let Some(last) = events.last() {
            from = last.position + 1;
            seen.extend(events);
            continue;
        }
        if end.borrow().is_some_and(|end| from > end) {
            return seen;
        }
        assert!(started.elapsed() < DEADLINE, "a reader ran out of time");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A consumer keeping what it is given, in order, where the test can read it.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<RecordedEvent>>>,
}

#[async_trait]
impl Consumer for Recorder {
    async fn checkpoint(&self, _: &str) -> Result<u64, HandlerError> {
        Ok(self.events.lock().unwrap().last().map_or(0, |e| e.position))
    }
    async fn consume(&self, _: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
    async fn reset(&self, _: &str) -> Result<(), HandlerError> {
        self.events.lock().unwrap().clear();
        Ok(())
    }
}

/// Runs one child process of writers to its end, within the deadline.
fn run_child(schema: &str, process: usize) -> String {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "ordering_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCHEMA_VAR, schema)
        .env(PROCESS_VAR, process.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a child process");
    let started = Instant::now();
    while child.try_wait().expect("wait for a child").is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("child process {process} ran out of time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("a child's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "child process {process} failed:\n{text}"
    );
    assert!(
        text.contains("acknowledged"),
        "child process {process} wrote nothing:\n{text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_two_processes_reach_every_reader_once_in_one_order() {
    let store = test_store().await;
    let schema = store.guard.schema.clone();
    let (announce, end) = watch::channel(None);
    let readers: Vec<_> = [1, 7, 100]
        .into_iter()
        .map(|page| tokio::spawn(tail(store.store.clone(), page, end.clone())))
        .collect();
    let recorder = Recorder::default();
    let mut subscription = Subscription::new("tail", store.store.clone(), recorder.clone())
        .with_poll_interval(Duration::from_millis(50))
        .start();

    let children: Vec<_> = (0..PROCESSES)
        .map(|process| {
            let schema = schema.clone();
            tokio::task::spawn_blocking(move || run_child(&schema, process))
        })
        .collect();
    for child in children {
        child.await.expect("a child runner panicked");
    }

    let log = store.read_all(1, usize::MAX).await.unwrap();
    let last = log.last().expect("events were appended").position;
    announce.send_replace(Some(last));
    tokio::time::timeout(DEADLINE, subscription.wait_for(last))
        .await
        .expect("the subscription ran out of time")
        .expect("the subscription failed");
    subscription.stop().await.unwrap();

    // One order: dense positions, each stream's versions 1..n ascending, each writer's
    // appends in the order it made them.
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=last).collect::<Vec<_>>(),
        "positions are dense"
    );
    let mut versions: HashMap<&str, u64> = HashMap::new();
    let mut writers: HashMap<String, u64> = HashMap::new();
    for event in &log {
        let version = versions.entry(&event.stream_id).or_insert(0);
        *version += 1;
        assert_eq!(
            event.version, *version,
            "versions of {} out of order",
            event.stream_id
        );
        let writer = event
            .metadata
            .get("writer")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        let seq = event.metadata.get("seq").unwrap().as_u64().unwrap();
        let previous = writers.insert(writer.clone(), seq);
        assert!(
            previous.is_none_or(|p| p <= seq),
            "{writer}'s appends out of order"
        );
    }
    assert_eq!(
        writers.len(),
        PROCESSES * TASKS,
        "every writer's events are in the log"
    );
    assert!(
        writers.values().all(|seq| *seq == APPENDS - 1),
        "every writer's last append is in the log"
    );
    let ids: HashSet<_> = log.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), log.len(), "an event is stored twice");

    // Every reader saw exactly that log: nothing skipped, nothing twice, nothing reordered.
    for (reader, handle) in readers.into_iter().enumerate() {
        let seen = handle.await.expect("a reader panicked");
        assert_eq!(seen.len(), log.len(), "reader {reader} saw another count");
        assert!(seen == log, "reader {reader} saw another log");
    }
    let followed = recorder.events.lock().unwrap().clone();
    assert_eq!(
        followed.len(),
        log.len(),
        "the subscription saw another count"
    );
    assert!(followed == log, "the subscription saw another log");
}
