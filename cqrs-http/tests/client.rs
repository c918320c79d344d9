//! The follower: catches up through pages, follows live (SSE or long-poll), delivers each
//! event once in order to the consumer, retries failures, and stops with a typed error when
//! the feed went backwards, a page is gone, or an event is withheld.

mod common;

use axum::response::IntoResponse;
use common::*;
use cqrs_core::{async_trait, Consumer, EventFilter, HandlerError, RecordedEvent};
use cqrs_http::client::{Backoff, FeedFollower, FollowError, LiveMode};
use cqrs_http::{FeedConfig, HttpFeed, Shown};
use cqrs_memory::MemoryStore;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A consumer keeping what it got and its checkpoint together, failing on demand.
#[derive(Clone, Default)]
struct Recorder {
    got: Arc<Mutex<(u64, Vec<RecordedEvent>)>>,
    failures_left: Arc<AtomicU32>,
    filter: Option<EventFilter>,
}

impl Recorder {
    fn positions(&self) -> Vec<u64> {
        self.got
            .lock()
            .unwrap()
            .1
            .iter()
            .map(|e| e.position)
            .collect()
    }
    fn at(checkpoint: u64) -> Self {
        let recorder = Self::default();
        recorder.got.lock().unwrap().0 = checkpoint;
        recorder
    }
}

#[async_trait]
impl Consumer for Recorder {
    fn filter(&self) -> EventFilter {
        self.filter.clone().unwrap_or_default()
    }
    async fn checkpoint(&self, _: &str) -> Result<u64, HandlerError> {
        Ok(self.got.lock().unwrap().0)
    }
    async fn consume(&self, name: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.consume_page(name, std::slice::from_ref(event)).await
    }
    async fn consume_page(&self, _: &str, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("the read model is locked".into());
        }
        let mut got = self.got.lock().unwrap();
        got.1.extend_from_slice(events);
        got.0 = events.last().map_or(got.0, |e| e.position);
        Ok(())
    }
    async fn reset(&self, _: &str) -> Result<(), HandlerError> {
        *self.got.lock().unwrap() = (0, Vec::new());
        Ok(())
    }
}

fn quick() -> Backoff {
    Backoff {
        attempts: 4,
        first: Duration::from_millis(5),
        max: Duration::from_millis(20),
    }
}

async fn tags(store: &MemoryStore, stream: &str, count: usize) -> Vec<RecordedEvent> {
    let tags: Vec<String> = (0..count).map(|n| format!("{stream}-{n}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    append(store, stream, &tags).await
}

async fn follows_through_pages_then_live(live: LiveMode) {
    let store = MemoryStore::new();
    let mut stored = tags(&store, "Cart-1", 10).await;
    let config = FeedConfig::default().with_page_size(3);
    let base = serve(HttpFeed::new(store.clone()).with_config(config).router()).await;
    let recorder = Recorder::default();
    let mut running = FeedFollower::new(&base, "copy", recorder.clone())
        .with_live(live)
        .with_backoff(quick())
        .start();
    running.wait_for(10).await.unwrap();
    stored.extend(tags(&store, "Cart-2", 5).await);
    running.wait_for(15).await.unwrap();
    running.stop().await.unwrap();
    assert_eq!(
        recorder.got.lock().unwrap().1,
        stored,
        "every event once, in order, byte for byte"
    );
}

#[tokio::test]
async fn a_follower_catches_up_through_pages_then_follows_by_sse() {
    follows_through_pages_then_live(LiveMode::Sse).await;
}

#[tokio::test]
async fn a_follower_catches_up_through_pages_then_follows_by_long_poll() {
    follows_through_pages_then_live(LiveMode::LongPoll).await;
}

#[tokio::test]
async fn a_follower_reads_only_what_its_consumer_takes_and_resumes_from_its_checkpoint() {
    let store = MemoryStore::new();
    tags(&store, "Cart-1", 3).await;
    tags(&store, "Order-1", 2).await; // 4, 5
    tags(&store, "Cart-2", 3).await;
    tags(&store, "Order-2", 2).await; // 9, 10
    let config = FeedConfig::default().with_page_size(4);
    let base = serve(HttpFeed::new(store.clone()).with_config(config).router()).await;
    let recorder = Recorder {
        filter: Some(EventFilter::all().with_categories(["Order"])),
        ..Recorder::at(4)
    };
    let follower = FeedFollower::new(&base, "orders", recorder.clone());
    assert_eq!(follower.catch_up().await.unwrap(), 10);
    assert_eq!(recorder.positions(), [5, 9, 10]);
    assert_eq!(
        follower.catch_up().await.unwrap(),
        10,
        "nothing new, nothing again"
    );
    assert_eq!(recorder.positions(), [5, 9, 10]);
}

#[tokio::test]
async fn a_failing_consumer_is_retried_from_its_checkpoint_without_loss_or_duplicates() {
    let store = MemoryStore::new();
    let stored = tags(&store, "Cart-1", 7).await;
    let config = FeedConfig::default().with_page_size(2);
    let base = serve(HttpFeed::new(store).with_config(config).router()).await;
    let recorder = Recorder::default();
    recorder.failures_left.store(3, Ordering::SeqCst);
    let follower = FeedFollower::new(&base, "flaky", recorder.clone()).with_backoff(quick());
    assert_eq!(follower.catch_up().await.unwrap(), 7);
    assert_eq!(recorder.got.lock().unwrap().1, stored);

    let broken = Recorder::default();
    broken.failures_left.store(10, Ordering::SeqCst);
    let error = FeedFollower::new(&base, "broken", broken)
        .with_backoff(quick())
        .catch_up()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, FollowError::Consumer { subscription, checkpoint: 0, attempts: 4, .. } if subscription == "broken"),
        "{error}"
    );
}

#[tokio::test]
async fn a_feed_behind_the_checkpoint_stops_the_follower_rather_than_skip() {
    let store = MemoryStore::new();
    tags(&store, "Cart-1", 3).await;
    let base = serve(HttpFeed::new(store).router()).await;
    let error = FeedFollower::new(&base, "restored", Recorder::at(50))
        .catch_up()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            FollowError::FeedBehind {
                checkpoint: 50,
                head: 3,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("the feed went backwards"));
}

#[tokio::test]
async fn a_page_that_is_gone_stops_the_follower() {
    let store = MemoryStore::new();
    tags(&store, "Cart-1", 5).await;
    let config = FeedConfig::default().with_page_size(2);
    let router =
        HttpFeed::new(store)
            .with_config(config)
            .router()
            .layer(axum::middleware::from_fn(
                |request: axum::extract::Request, next: axum::middleware::Next| async move {
                    if request.uri().path() == "/feed/pages/2" {
                        return axum::http::StatusCode::GONE.into_response();
                    }
                    next.run(request).await
                },
            ));
    let base = serve(router).await;
    let recorder = Recorder::default();
    let error = FeedFollower::new(&base, "gone", recorder.clone())
        .catch_up()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, FollowError::PageGone { url, status: 410 } if url.ends_with("/feed/pages/2")),
        "{error}"
    );
    assert_eq!(
        recorder.positions(),
        [1, 2],
        "nothing after the missing page"
    );
}

#[tokio::test]
async fn positions_that_do_not_strictly_increase_stop_the_follower() {
    let store = MemoryStore::new();
    let stored = tags(&store, "Cart-1", 2).await;
    let swapped: Vec<_> = stored
        .iter()
        .rev()
        .map(|event| cqrs_http::WireEvent::shown(event.clone()).unwrap())
        .collect();
    let page = serde_json::json!({
        "page": 1, "page_size": 10, "first_position": 1, "last_position": 10,
        "archived": false, "head_position": 2, "links": {}, "events": swapped,
    });
    let router = axum::Router::new()
        .route(
            "/feed",
            axum::routing::get({
                let page = page.clone();
                move || async move { axum::Json(page) }
            }),
        )
        .route(
            "/feed/at/{position}",
            axum::routing::get(move || async move { axum::Json(page) }),
        );
    let base = serve(router).await;
    let error = FeedFollower::new(&base, "backwards", Recorder::default())
        .catch_up()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            FollowError::WentBackwards {
                after: 2,
                position: 1,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_feed_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener); // nothing listens there now
    let error = FeedFollower::new(&base, "nowhere", Recorder::default())
        .with_backoff(quick())
        .catch_up()
        .await
        .unwrap_err();
    assert!(
        matches!(error, FollowError::Unavailable { attempts: 4, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_redacted_event_cannot_be_consumed_and_stops_the_follower() {
    let store = MemoryStore::new();
    tags(&store, "Cart-1", 3).await;
    let visibility = |_: Option<&cqrs_http::Caller>, event: &RecordedEvent| {
        if event.position == 2 {
            Shown::Redact
        } else {
            Shown::Show
        }
    };
    let base = serve(HttpFeed::new(store).with_visibility(visibility).router()).await;
    let recorder = Recorder::default();
    let error = FeedFollower::new(&base, "partner", recorder.clone())
        .catch_up()
        .await
        .unwrap_err();
    assert!(
        matches!(error, FollowError::Redacted { position: 2 }),
        "{error}"
    );
    assert!(
        recorder.positions().is_empty(),
        "the page is delivered whole or not at all"
    );
}

#[tokio::test]
async fn streams_that_end_after_answering_never_add_up_to_giving_up() {
    let store = MemoryStore::new();
    tags(&store, "Cart-1", 2).await;
    let streams = Arc::new(AtomicU32::new(0));
    let counted = streams.clone();
    // Every SSE request is answered, then the stream ends at once (as a proxy dropping an
    // idle connection would).
    let router = HttpFeed::new(store)
        .router()
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let counted = counted.clone();
                async move {
                    if request.uri().path() == "/feed/sse" {
                        counted.fetch_add(1, Ordering::SeqCst);
                        return ([("content-type", "text/event-stream")], "").into_response();
                    }
                    next.run(request).await
                }
            },
        ));
    let base = serve(router).await;
    let backoff = Backoff {
        attempts: 2,
        first: Duration::from_millis(1),
        max: Duration::from_millis(2),
    };
    let mut running = FeedFollower::new(&base, "idle", Recorder::default())
        .with_backoff(backoff)
        .start();
    running.wait_for(2).await.unwrap();
    for _ in 0..4_000 {
        if streams.load(Ordering::SeqCst) >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        streams.load(Ordering::SeqCst) >= 6,
        "the follower stopped reconnecting"
    );
    running.stop().await.unwrap(); // still running after 6 dropped streams, with 2 attempts
}
