//! Reacting to events on MemoryStore: after-commit handlers, commands from handlers, and
//! subscriptions (catch-up, live wake-up, checkpoints, retries, stopping, rebuilding).

use async_trait::async_trait;
use cqrs_core::{
    Aggregate, Appended, CheckpointStore, Consumer, DomainEvent, EventEnvelope, EventFilter,
    EventHandler, EventOf, EventStore, ExpectedVersion, HandlerConsumer, HandlerError, LogRead,
    Metadata, MultiEventHandler, NewEvent, PositionWatch, RecordedEvent, Repository,
    RepositoryError, RetryPolicy, Sources, StoreError, Subscription, SubscriptionError,
};
use cqrs_memory::MemoryStore;
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum NoteEvent {
    Written { text: String },
}

#[derive(Debug, thiserror::Error)]
#[error("empty note")]
struct EmptyNote;

/// Records texts (`a|b` records two events); the aggregate whose events the handlers react to.
#[derive(Debug, Default)]
struct Note;
impl Aggregate for Note {
    const TYPE: &'static str = "Note";
    type Command = String;
    type Event = NoteEvent;
    type Error = EmptyNote;
    fn handle(&self, text: String) -> Result<Vec<NoteEvent>, EmptyNote> {
        if text.is_empty() {
            return Err(EmptyNote);
        }
        Ok(text
            .split('|')
            .map(|text| NoteEvent::Written {
                text: text.to_owned(),
            })
            .collect())
    }
    fn apply(&mut self, _: &NoteEvent) {}
}

/// A second aggregate type, whose stream name starts like `Note`'s.
#[derive(Debug, Default)]
struct Notebook;
impl Aggregate for Notebook {
    const TYPE: &'static str = "Notebook";
    type Command = String;
    type Event = NoteEvent;
    type Error = EmptyNote;
    fn handle(&self, text: String) -> Result<Vec<NoteEvent>, EmptyNote> {
        Note.handle(text)
    }
    fn apply(&mut self, _: &NoteEvent) {}
}

/// Records what it saw as `(stream, version, text)`; fails while `failures` is above zero,
/// or always on texts starting with "poison".
#[derive(Clone, Default)]
struct Recorder {
    name: &'static str,
    seen: Arc<Mutex<Vec<(String, u64, String)>>>,
    failures: Arc<AtomicU32>,
}

impl Recorder {
    fn named(name: &'static str) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    fn seen(&self) -> Vec<(String, u64, String)> {
        self.seen.lock().unwrap().clone()
    }

    fn texts(&self) -> Vec<String> {
        self.seen().into_iter().map(|(_, _, text)| text).collect()
    }
}

#[async_trait]
impl EventHandler for Recorder {
    type Aggregate = Note;
    fn name(&self) -> &str {
        self.name
    }
    async fn handle(&self, event: &EventOf<Self>) -> Result<(), HandlerError> {
        let NoteEvent::Written { text } = &event.event;
        if text.starts_with("poison") {
            return Err(format!("cannot digest {text:?}").into());
        }
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("transient failure".into());
        }
        self.seen
            .lock()
            .unwrap()
            .push((event.stream_id.clone(), event.version, text.clone()));
        Ok(())
    }
}

/// On every note, writes a copy into the notebook `book`, as a command caused by the note.
struct CopyToNotebook {
    notebooks: Repository<Notebook, MemoryStore>,
}

#[async_trait]
impl EventHandler for CopyToNotebook {
    type Aggregate = Note;
    fn name(&self) -> &str {
        "copy-to-notebook"
    }
    async fn handle(&self, event: &EventOf<Self>) -> Result<(), HandlerError> {
        let NoteEvent::Written { text } = &event.event;
        self.notebooks
            .execute_with(
                "book",
                format!("copy of {text}"),
                Metadata::caused_by(event),
            )
            .await?;
        Ok(())
    }
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    }
}

async fn write(store: &MemoryStore, id: &str, texts: &[&str]) {
    let notes = Repository::<Note, _>::new(store.clone());
    for text in texts {
        notes.execute(id, (*text).to_owned()).await.unwrap();
    }
}

#[tokio::test]
async fn after_commit_handlers_see_each_committed_event_before_execute_returns() {
    let store = MemoryStore::new();
    let first = Recorder::named("first");
    let second = Recorder::named("second");
    let notes = Repository::<Note, _>::new(store.clone())
        .with_after_commit(first.clone())
        .with_after_commit(second.clone());
    notes.execute("a", "one".into()).await.unwrap();
    notes.execute("a", "two".into()).await.unwrap();
    let expected = vec![
        ("Note-a".to_owned(), 1, "one".to_owned()),
        ("Note-a".to_owned(), 2, "two".to_owned()),
    ];
    assert_eq!(first.seen(), expected);
    assert_eq!(second.seen(), expected);
    // A refused command commits nothing and runs no handler.
    assert!(matches!(
        notes.execute("a", String::new()).await,
        Err(RepositoryError::Domain(EmptyNote))
    ));
    assert_eq!(first.seen().len(), 2);
}

#[tokio::test]
async fn a_failing_after_commit_handler_leaves_the_events_committed_and_says_so() {
    let store = MemoryStore::new();
    let healthy = Recorder::named("healthy");
    let notes = Repository::<Note, _>::new(store.clone())
        .with_after_commit(Recorder::named("choking"))
        .with_after_commit(healthy.clone());
    let outcome = notes.execute("a", "poison pill|after it".into()).await;
    let Err(RepositoryError::AfterCommit {
        stream_id,
        version,
        position,
        failures,
    }) = outcome
    else {
        panic!("expected AfterCommit, got {outcome:?}");
    };
    assert_eq!((stream_id.as_str(), version, position), ("Note-a", 2, 2));
    assert_eq!(failures.len(), 2, "both handlers choke on the poison pill");
    assert_eq!(failures[0].handler, "choking");
    assert_eq!(
        (failures[0].stream_id.as_str(), failures[0].version),
        ("Note-a", 1)
    );
    assert!(failures[0].source.to_string().contains("poison pill"));
    // A handler that failed is not given the command's later events.
    assert_eq!(healthy.seen(), vec![]);
    // The events are stored all the same, and the next command builds on them.
    assert_eq!(store.stream_version("Note-a").await.unwrap(), Some(2));
    notes.execute("a", "fine".into()).await.unwrap();
    assert_eq!(
        healthy.seen(),
        vec![("Note-a".to_owned(), 3, "fine".to_owned())]
    );
}

#[tokio::test]
async fn commands_issued_by_handlers_carry_correlation_and_causation_ids() {
    let store = MemoryStore::new();
    let notebooks = Repository::<Notebook, _>::new(store.clone());
    let notes = Repository::<Note, _>::new(store.clone()).with_after_commit(CopyToNotebook {
        notebooks: notebooks.clone(),
    });
    let request = uuid::Uuid::new_v4();
    let committed = notes
        .execute_with(
            "a",
            "hello".into(),
            Metadata::new()
                .with_correlation_id(request)
                .with("tenant", "t1"),
        )
        .await
        .unwrap();
    let cause = &committed.events[0];
    let copies = store.read_stream("Notebook-book", 1, 10).await.unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].metadata.correlation_id, Some(request));
    assert_eq!(copies[0].metadata.causation_id, Some(cause.event_id));
    assert_eq!(
        copies[0].metadata.get("tenant").and_then(|v| v.as_str()),
        Some("t1")
    );
    assert_eq!(cause.metadata.causation_id, None);
}

#[tokio::test]
async fn a_subscription_catches_up_skips_other_aggregates_and_resumes_from_its_checkpoint() {
    let store = MemoryStore::new();
    write(&store, "a", &["one", "two"]).await;
    Repository::<Notebook, _>::new(store.clone())
        .execute("x", "not a note".into())
        .await
        .unwrap();
    write(&store, "b", &["three"]).await;

    let recorder = Recorder::named("r");
    let consumer = HandlerConsumer::new(recorder.clone(), store.clone());
    let subscription = Subscription::new("notes", store.clone(), consumer);
    assert_eq!(subscription.catch_up().await.unwrap(), 4);
    assert_eq!(recorder.texts(), ["one", "two", "three"]);
    assert_eq!(store.load_checkpoint("notes").await.unwrap(), 4);

    // A new subscription of the same name (a restarted process) starts after the checkpoint.
    write(&store, "a", &["four"]).await;
    let again = Recorder::named("r");
    let subscription = Subscription::new(
        "notes",
        store.clone(),
        HandlerConsumer::new(again.clone(), store.clone()),
    );
    assert_eq!(subscription.catch_up().await.unwrap(), 5);
    assert_eq!(
        again.seen(),
        vec![("Note-a".to_owned(), 3, "four".to_owned())]
    );
    // Another name has its own checkpoint.
    let other = Recorder::named("o");
    Subscription::new(
        "other",
        store.clone(),
        HandlerConsumer::new(other.clone(), store.clone()),
    )
    .catch_up()
    .await
    .unwrap();
    assert_eq!(other.texts(), ["one", "two", "three", "four"]);
}

/// A MemoryStore that counts the events its reads of the global log return.
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryStore,
    log_events_read: Arc<AtomicUsize>,
    log_reads: Arc<AtomicUsize>,
}

#[async_trait]
impl EventStore for Counting {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        self.inner.append(stream_id, expected, events).await
    }
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream_id, from_version, limit).await
    }
    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner
            .read_stream_backward(stream_id, from_version, limit)
            .await
    }
    async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.inner.read_log(read).await?;
        self.log_reads.fetch_add(1, Ordering::SeqCst);
        self.log_events_read
            .fetch_add(events.len(), Ordering::SeqCst);
        Ok(events)
    }
    async fn read_events_by_id(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_events_by_id(ids).await
    }
    async fn position_at(
        &self,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.position_at(at).await
    }
    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        self.inner.stream_version(stream_id).await
    }
    fn appends(&self) -> Option<PositionWatch> {
        self.inner.appends()
    }
}

#[tokio::test]
async fn a_subscription_reads_only_the_events_of_its_handlers_aggregate() {
    let counting = Counting::default();
    let store = counting.inner.clone();
    write(&store, "a", &["one"]).await;
    let many: Vec<String> = (0..600).map(|i| format!("n{i}")).collect();
    Repository::<Notebook, _>::new(store.clone())
        .execute("x", many.join("|"))
        .await
        .unwrap();
    write(&store, "b", &["two"]).await;

    let recorder = Recorder::named("r");
    let consumer = HandlerConsumer::new(recorder.clone(), store.clone());
    let subscription = Subscription::new("notes", counting.clone(), consumer);
    assert_eq!(subscription.catch_up().await.unwrap(), 602);
    assert_eq!(recorder.texts(), ["one", "two"]);
    assert_eq!(
        counting.log_events_read.load(Ordering::SeqCst),
        2,
        "the 600 notebook events were read"
    );
}

#[tokio::test]
async fn a_running_subscription_passes_the_positions_of_events_it_does_not_take() {
    let store = MemoryStore::new();
    let recorder = Recorder::named("r");
    let mut running = Subscription::new(
        "notes",
        store.clone(),
        HandlerConsumer::new(recorder.clone(), store.clone()),
    )
    .with_poll_interval(Duration::from_secs(3600))
    .start();
    write(&store, "a", &["one"]).await;
    let other = Repository::<Notebook, _>::new(store.clone())
        .execute("x", "not a note".into())
        .await
        .unwrap();
    let position = other.events[0].position;
    tokio::time::timeout(Duration::from_secs(5), running.wait_for(position))
        .await
        .expect("the notebook's event counts as handled")
        .unwrap();
    assert_eq!(running.checkpoint(), position);
    assert_eq!(recorder.texts(), ["one"]);
    running.stop().await.unwrap();
    assert_eq!(
        store.load_checkpoint("notes").await.unwrap(),
        1,
        "the stored checkpoint is the last note's"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_and_the_event_delivered() {
    let store = MemoryStore::new();
    write(&store, "a", &["one", "two"]).await;
    let recorder = Recorder::named("r");
    recorder.failures.store(2, Ordering::SeqCst);
    let subscription = Subscription::new(
        "notes",
        store.clone(),
        HandlerConsumer::new(recorder.clone(), store.clone()),
    )
    .with_retry(quick_retry(3));
    assert_eq!(subscription.catch_up().await.unwrap(), 2);
    assert_eq!(recorder.texts(), ["one", "two"]);
}

#[tokio::test]
async fn an_event_that_keeps_failing_stops_the_subscription_before_it() {
    let store = MemoryStore::new();
    write(&store, "a", &["one", "poison", "three"]).await;
    let recorder = Recorder::named("r");
    let subscription = Subscription::new(
        "notes",
        store.clone(),
        HandlerConsumer::new(recorder.clone(), store.clone()),
    )
    .with_retry(quick_retry(3));
    let error = subscription.catch_up().await.unwrap_err();
    let SubscriptionError::EventFailed {
        subscription: name,
        stream_id,
        version,
        position,
        attempts,
        source,
    } = &error
    else {
        panic!("expected EventFailed, got {error:?}");
    };
    assert_eq!(
        (
            name.as_str(),
            stream_id.as_str(),
            *version,
            *position,
            *attempts
        ),
        ("notes", "Note-a", 2, 2, 3)
    );
    assert!(source.to_string().contains("poison"));
    assert!(error.to_string().contains("stream `Note-a` version 2"));
    // Nothing after it was handled, and the checkpoint waits before it.
    assert_eq!(recorder.texts(), ["one"]);
    assert_eq!(store.load_checkpoint("notes").await.unwrap(), 1);
    // Running it again retries the same event: it is never skipped.
    assert!(subscription.catch_up().await.is_err());
    assert_eq!(recorder.texts(), ["one"]);
}

#[tokio::test]
async fn a_running_subscription_wakes_on_appends_without_polling() {
    let store = MemoryStore::new();
    write(&store, "a", &["one"]).await;
    let recorder = Recorder::named("r");
    let mut running = Subscription::new(
        "notes",
        store.clone(),
        HandlerConsumer::new(recorder.clone(), store.clone()),
    )
    // Polling alone would take an hour: only the append signal can make this test pass.
    .with_poll_interval(Duration::from_secs(3600))
    .start();
    let within = Duration::from_secs(5);
    tokio::time::timeout(within, running.wait_for(1))
        .await
        .unwrap()
        .unwrap();
    write(&store, "b", &["two", "three"]).await;
    tokio::time::timeout(within, running.wait_for(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorder.texts(), ["one", "two", "three"]);
    assert_eq!(running.checkpoint(), 3);
    running.stop().await.unwrap();
    assert_eq!(store.load_checkpoint("notes").await.unwrap(), 3);
}

#[tokio::test]
async fn a_running_subscription_reports_the_event_that_stopped_it() {
    let store = MemoryStore::new();
    let mut running = Subscription::new(
        "notes",
        store.clone(),
        HandlerConsumer::new(Recorder::named("r"), store.clone()),
    )
    .with_retry(quick_retry(2))
    .start();
    write(&store, "a", &["one", "poison"]).await;
    let error = tokio::time::timeout(Duration::from_secs(5), running.wait_for(2))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            &error,
            SubscriptionError::EventFailed {
                version: 2,
                attempts: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(running.checkpoint(), 1);
}

#[tokio::test]
async fn handlers_in_a_subscription_can_issue_commands_with_causation() {
    let store = MemoryStore::new();
    let notebooks = Repository::<Notebook, _>::new(store.clone());
    let consumer = HandlerConsumer::new(CopyToNotebook { notebooks }, store.clone());
    let committed = Repository::<Note, _>::new(store.clone())
        .execute("a", "hi".into())
        .await
        .unwrap();
    let cause = &committed.events[0];
    // The copy lands at position 2, after the page this catch-up read.
    assert_eq!(
        Subscription::new("copier", store.clone(), consumer)
            .catch_up()
            .await
            .unwrap(),
        1
    );
    let copies = store.read_stream("Notebook-book", 1, 10).await.unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(
        copies[0].metadata.correlation_id,
        cause.metadata.correlation_id
    );
    assert_eq!(copies[0].metadata.causation_id, Some(cause.event_id));
}

#[tokio::test]
async fn rebuild_replays_the_whole_log_from_position_zero() {
    let store = MemoryStore::new();
    write(&store, "a", &["one", "two"]).await;
    let recorder = Recorder::named("r");
    let subscription = Subscription::new(
        "notes",
        store.clone(),
        HandlerConsumer::new(recorder.clone(), store.clone()),
    );
    subscription.catch_up().await.unwrap();
    assert_eq!(subscription.rebuild().await.unwrap(), 2);
    assert_eq!(recorder.texts(), ["one", "two", "one", "two"]);
}

#[tokio::test]
async fn stop_cuts_a_long_retry_short_and_reports_the_failing_event() {
    let store = MemoryStore::new();
    write(&store, "a", &["one", "poison"]).await;
    let mut running = Subscription::new(
        "notes",
        store.clone(),
        HandlerConsumer::new(Recorder::named("r"), store.clone()),
    )
    .with_retry(RetryPolicy {
        attempts: 1000,
        first_backoff: Duration::from_secs(60),
        max_backoff: Duration::from_secs(3600),
    })
    .start();
    tokio::time::timeout(Duration::from_secs(5), running.wait_for(1))
        .await
        .unwrap()
        .unwrap();
    // The poison event is now waiting out a one-minute backoff.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), running.stop())
        .await
        .expect("stop returns at once, not after the backoff");
    assert!(
        matches!(
            &stopped,
            Err(SubscriptionError::EventFailed {
                version: 2,
                attempts: 1,
                ..
            })
        ),
        "{stopped:?}"
    );
    assert_eq!(store.load_checkpoint("notes").await.unwrap(), 1);
}

/// The events a handler across the two note aggregates takes, each still typed.
#[derive(Debug, Clone, PartialEq)]
enum Paper {
    Note(NoteEvent),
    Notebook(NoteEvent),
}

/// Records every note and notebook event it is given, in the order given.
#[derive(Clone, Default)]
struct PaperTrail {
    seen: Arc<Mutex<Vec<(u64, Paper)>>>,
}

#[async_trait]
impl MultiEventHandler for PaperTrail {
    type Event = Paper;
    fn name(&self) -> &str {
        "paper-trail"
    }
    fn sources(&self) -> Sources<Paper> {
        Sources::new()
            .with::<Note>(Paper::Note)
            .with::<Notebook>(Paper::Notebook)
    }
    async fn handle(&self, event: &EventEnvelope<Paper>) -> Result<(), HandlerError> {
        self.seen
            .lock()
            .unwrap()
            .push((event.position, event.event.clone()));
        Ok(())
    }
}

#[tokio::test]
async fn a_handler_of_several_aggregates_gets_each_typed_in_global_order_from_one_filtered_read() {
    let counting = Counting::default();
    let store = counting.inner.clone();
    let written = |text: &str| NoteEvent::Written {
        text: text.to_owned(),
    };
    write(&store, "a", &["one"]).await;
    Repository::<Notebook, _>::new(store.clone())
        .execute("x", "two|three".to_owned())
        .await
        .unwrap();
    // Events of neither aggregate, in between: not read at all.
    for _ in 0..3 {
        store
            .append("Other-1", ExpectedVersion::Any, vec![other_event()])
            .await
            .unwrap();
    }
    write(&store, "b", &["four"]).await;

    let trail = PaperTrail::default();
    let consumer = HandlerConsumer::new(trail.clone(), store.clone());
    assert_eq!(
        consumer.filter(),
        EventFilter::all().with_categories(["Note", "Notebook"])
    );
    let subscription = Subscription::new("paper", counting.clone(), consumer);
    assert_eq!(subscription.catch_up().await.unwrap(), 7);
    assert_eq!(
        *trail.seen.lock().unwrap(),
        [
            (1, Paper::Note(written("one"))),
            (2, Paper::Notebook(written("two"))),
            (3, Paper::Notebook(written("three"))),
            (7, Paper::Note(written("four"))),
        ]
    );
    assert_eq!(
        counting.log_events_read.load(Ordering::SeqCst),
        4,
        "the other aggregate's events were read"
    );
    assert_eq!(
        counting.log_reads.load(Ordering::SeqCst),
        1,
        "one read took both aggregates' events"
    );
}

/// An event of a stream no handler here takes.
fn other_event() -> NewEvent {
    cqrs_core::codec::encode(
        &NoteEvent::Written {
            text: "other".to_owned(),
        },
        &Metadata::new(),
    )
    .unwrap()
}

#[tokio::test]
async fn lag_is_the_head_its_consumer_takes_minus_the_checkpoint() {
    let store = MemoryStore::new();
    write(&store, "a", &["one", "two"]).await;
    // A notebook event after them: not the consumer's, so not lag.
    Repository::<Notebook, _>::new(store.clone())
        .execute("x", "n".to_owned())
        .await
        .unwrap();
    let subscription = Subscription::new(
        "lagging",
        store.clone(),
        HandlerConsumer::new(Recorder::named("r"), store.clone()),
    );
    let lag = subscription.lag().await.unwrap();
    assert_eq!((lag.head, lag.checkpoint, lag.behind()), (2, 0, 2));
    subscription.catch_up().await.unwrap();
    assert_eq!(subscription.lag().await.unwrap().behind(), 0);
    write(&store, "a", &["three"]).await;
    let lag = subscription.lag().await.unwrap();
    assert_eq!((lag.head, lag.checkpoint, lag.behind()), (4, 2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_progress_handle_to_read_their_own_writes() {
    let store = MemoryStore::new();
    let recorder = Recorder::named("r");
    let consumer = HandlerConsumer::new(recorder.clone(), store.clone());
    let running = Subscription::new("shared", store.clone(), consumer).start();
    let progress = running.progress();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (store, progress, recorder) = (store.clone(), progress.clone(), recorder.clone());
            tokio::spawn(async move {
                let text = format!("task {task}");
                let committed = Repository::<Note, _>::new(store)
                    .execute(&format!("n{task}"), text.clone())
                    .await
                    .unwrap();
                progress.wait_for(committed.position()).await.unwrap();
                assert!(recorder.texts().contains(&text), "{text} not handled yet");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let lag = running.lag();
    assert_eq!((lag.checkpoint, lag.behind()), (8, 0));
    running.stop().await.unwrap();
    // Stopped: waiting for what it will never handle says so instead of hanging.
    match progress.wait_for(9).await {
        Err(SubscriptionError::NotRunning { subscription }) => assert_eq!(subscription, "shared"),
        other => panic!("expected NotRunning, got {other:?}"),
    }
    assert!(
        progress.wait_for(8).await.is_ok(),
        "reached before it stopped"
    );
}
