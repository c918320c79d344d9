//! The follower (feature `client`): [`FeedFollower`] feeds a `cqrs_core::Consumer` in this
//! process from another process's feed. It catches up through the pages (revalidating cached
//! ones by ETag), then follows live by Server-Sent Events or long-polling. Its checkpoint
//! is the consumer's own (so a read model and its checkpoint commit together), every
//! (re)connection starts from it, positions must strictly increase, and failures are retried
//! with jittered backoff; what cannot be read in order stops it with a [`FollowError`].

mod backoff;
mod error;
mod http;
mod sse;

pub use backoff::Backoff;
pub use error::FollowError;

use crate::params::encode;
use crate::wire::WireEvent;
use cqrs_core::{Consumer, RecordedEvent};
use futures_util::StreamExt;
use http::{refused, Failure, FeedHttp};
use serde::Deserialize;
use sse::SseParser;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a follower follows the feed once it reached the head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LiveMode {
    /// One long-lived Server-Sent-Events response (`/feed/sse`).
    #[default]
    Sse,
    /// Repeated long-polls of the cursor (`/feed/events?wait=`), where SSE is blocked.
    LongPoll,
}

/// A page of the feed, as far as the follower reads it.
#[derive(Deserialize)]
struct PageJson {
    archived: bool,
    #[serde(default)]
    head_position: Option<u64>,
    links: PageLinksJson,
    events: Vec<WireEvent>,
}

#[derive(Deserialize)]
struct PageLinksJson {
    #[serde(default)]
    next: Option<String>,
}

/// An answer of the cursor endpoint, as far as the follower reads it.
#[derive(Deserialize)]
struct CursorJson {
    events: Vec<WireEvent>,
}

/// Events a long-poll asks for at most.
const LONG_POLL_LIMIT: usize = 500;

/// Feeds a [`Consumer`] from a feed served by [`HttpFeed`](crate::HttpFeed) in another
/// process, exactly once where the consumer commits its effects with its checkpoint (a
/// `cqrs_sqlite` projection consumer), at least once otherwise.
pub struct FeedFollower {
    name: Arc<str>,
    origin: String,
    base: String,
    filter_query: String,
    consumer: Arc<dyn Consumer>,
    http: FeedHttp,
    live: LiveMode,
    backoff: Backoff,
    long_poll_wait: u64,
}

impl FeedFollower {
    /// Follows the feed at `feed_url` (`http://host:port`, plus the base path if the routes
    /// are nested) into `consumer`, under `name` (its checkpoint's key: keep it stable). Reads
    /// only the events the consumer's filter takes (the server filters them).
    pub fn new(
        feed_url: impl Into<String>,
        name: impl Into<String>,
        consumer: impl Consumer,
    ) -> Self {
        let base = feed_url.into().trim_end_matches('/').to_owned();
        let filter = consumer.filter();
        let mut filter_query = String::new();
        for (parameter, list) in [
            ("type", filter.event_types()),
            ("category", filter.categories()),
        ] {
            for name in list.into_iter().flatten() {
                filter_query.push_str(&format!("&{parameter}={}", encode(name)));
            }
        }
        Self {
            name: Arc::from(name.into()),
            origin: origin(&base).to_owned(),
            base,
            filter_query,
            consumer: Arc::new(consumer),
            http: FeedHttp::new(reqwest::Client::new(), None),
            live: LiveMode::Sse,
            backoff: Backoff::default(),
            long_poll_wait: 25,
        }
    }

    /// Follows live this way (SSE by default).
    pub fn with_live(mut self, live: LiveMode) -> Self {
        self.live = live;
        self
    }

    /// Retries failures this way.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.http.token = Some(token.into());
        self
    }

    /// Uses this HTTP client (timeouts, TLS roots, proxies of your choosing).
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http.client = client;
        self
    }

    /// The follower's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Consumes every event after the consumer's checkpoint up to the feed's head as it is
    /// now, and returns the new checkpoint.
    pub async fn catch_up(&self) -> Result<u64, FollowError> {
        self.run(false, None, None).await
    }

    /// Runs as a task on the current tokio runtime: catches up, then follows live until
    /// stopped or until an error it cannot retry.
    pub fn start(self) -> RunningFollower {
        let (stop, stopped) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(0);
        let name = self.name.clone();
        let task = tokio::spawn(async move {
            self.run(true, Some(&progress_tx), Some(stopped))
                .await
                .map(drop)
        });
        RunningFollower {
            name,
            stop,
            progress,
            task: Some(task),
        }
    }

    /// Sessions from the stored checkpoint until done, stopped, or a failure that is not
    /// retried. Failures are counted in a row per kind: an answer from the feed resets the
    /// count of feed failures (so an idle stream dropped now and then never adds up), a page
    /// the consumer took resets the count of consumer failures.
    async fn run(
        &self,
        live: bool,
        progress: Option<&watch::Sender<u64>>,
        stop: Option<watch::Receiver<bool>>,
    ) -> Result<u64, FollowError> {
        let failures = Failures::default();
        let session = Session {
            follower: self,
            progress,
            stop,
            failures: &failures,
        };
        loop {
            let failure = match session.run(live).await {
                Ok(checkpoint) => return Ok(checkpoint),
                Err(Failure::Stop(error)) => return Err(error),
                Err(Failure::Retry(error)) => error,
            };
            let count = match failure {
                FollowError::Consumer { .. } => &failures.consumer,
                _ => &failures.feed,
            };
            let attempts = count.fetch_add(1, Ordering::Relaxed) + 1;
            if attempts >= self.backoff.attempts.max(1) {
                return Err(with_attempts(failure, attempts));
            }
            let delay = self.backoff.delay(attempts);
            tracing::warn!(follower = %self.name, attempts, error = %failure, "feed failed; retrying in {delay:?}");
            if session
                .until_stopped(tokio::time::sleep(delay))
                .await
                .is_none()
            {
                return session.checkpoint().await.map_err(|failure| match failure {
                    Failure::Retry(error) | Failure::Stop(error) => error,
                });
            }
        }
    }
}

/// `error` with the count of attempts that failed in a row.
fn with_attempts(error: FollowError, count: u32) -> FollowError {
    match error {
        FollowError::Unavailable { url, reason, .. } => FollowError::Unavailable {
            url,
            attempts: count,
            reason,
        },
        FollowError::Consumer {
            subscription,
            checkpoint,
            source,
            ..
        } => FollowError::Consumer {
            subscription,
            checkpoint,
            attempts: count,
            source,
        },
        other => other,
    }
}

/// `scheme://host:port` of `url`, to which the feed's links (absolute paths) are joined.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

/// One connection's worth of following: from the stored checkpoint, through the pages, then
/// live.
struct Session<'a> {
    follower: &'a FeedFollower,
    progress: Option<&'a watch::Sender<u64>>,
    stop: Option<watch::Receiver<bool>>,
    failures: &'a Failures,
}

/// Failed attempts in a row, of the feed and of the consumer.
#[derive(Default)]
struct Failures {
    feed: AtomicU32,
    consumer: AtomicU32,
}

impl Session<'_> {
    async fn run(&self, live: bool) -> Result<u64, Failure> {
        let mut checkpoint = self.checkpoint().await?;
        self.report(checkpoint);
        let Some(()) = self
            .until_stopped(self.catch_up(&mut checkpoint))
            .await
            .transpose()?
        else {
            return Ok(checkpoint);
        };
        if !live {
            return Ok(checkpoint);
        }
        match self.follower.live {
            LiveMode::Sse => self.follow_sse(&mut checkpoint).await?,
            LiveMode::LongPoll => self.follow_long_poll(&mut checkpoint).await?,
        }
        Ok(checkpoint)
    }

    /// `work`, unless the follower is asked to stop first (`None`). Only network waits are
    /// cut short this way, never a consumer's commit.
    async fn until_stopped<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let Some(mut stop) = self.stop.clone() else {
            return Some(work.await);
        };
        if *stop.borrow_and_update() {
            return None;
        }
        tokio::select! {
            value = work => Some(value),
            _ = stop.changed() => None,
        }
    }

    async fn checkpoint(&self) -> Result<u64, Failure> {
        let follower = self.follower;
        follower
            .consumer
            .checkpoint(&follower.name)
            .await
            .map_err(|source| {
                Failure::Retry(FollowError::Consumer {
                    subscription: follower.name.to_string(),
                    checkpoint: 0,
                    attempts: 1,
                    source,
                })
            })
    }

    fn report(&self, checkpoint: u64) {
        if let Some(progress) = self.progress {
            progress.send_if_modified(|reached| {
                let further = checkpoint > *reached;
                if further {
                    *reached = checkpoint;
                }
                further
            });
        }
    }

    /// The filter as a query string of its own (`?type=..`), for pages.
    fn page_query(&self) -> String {
        match self.follower.filter_query.strip_prefix('&') {
            Some(rest) => format!("?{rest}"),
            None => String::new(),
        }
    }

    /// Reads the head page, checks the feed has not gone behind the checkpoint, then reads
    /// the pages from the one holding the checkpoint's successor up to the head page.
    async fn catch_up(&self, checkpoint: &mut u64) -> Result<(), Failure> {
        let follower = self.follower;
        let head_url = format!("{}/feed{}", follower.base, self.page_query());
        let head_page: PageJson = follower.http.get_json(&head_url).await?;
        self.failures.feed.store(0, Ordering::Relaxed);
        let head = head_page.head_position.unwrap_or(0);
        if head < *checkpoint {
            return Err(Failure::Stop(FollowError::FeedBehind {
                subscription: follower.name.to_string(),
                checkpoint: *checkpoint,
                head,
            }));
        }
        if head == *checkpoint {
            return Ok(());
        }
        let mut url = format!(
            "{}/feed/at/{}{}",
            follower.base,
            *checkpoint + 1,
            self.page_query()
        );
        loop {
            let page: PageJson = follower.http.get_json(&url).await?;
            self.deliver(page.events, checkpoint, &url, true).await?;
            match (page.archived, page.links.next) {
                (true, Some(next)) => url = format!("{}{next}", follower.origin),
                _ => return Ok(()),
            }
        }
    }

    /// Follows `/feed/sse` from the checkpoint until the stream fails or the follower stops.
    async fn follow_sse(&self, checkpoint: &mut u64) -> Result<(), Failure> {
        let follower = self.follower;
        let url = format!(
            "{}/feed/sse?after={}{}",
            follower.base, *checkpoint, follower.filter_query
        );
        let Some(response) = self.until_stopped(follower.http.request(&url).send()).await else {
            return Ok(());
        };
        let response = response.map_err(|error| Failure::unavailable(&url, error))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(refused(
                &url,
                status,
                response.text().await.unwrap_or_default(),
            ));
        }
        let mut body = response.bytes_stream();
        let mut parser = SseParser::default();
        loop {
            let Some(chunk) = self.until_stopped(body.next()).await else {
                return Ok(());
            };
            let chunk = match chunk {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => return Err(Failure::unavailable(&url, error)),
                None => return Err(Failure::unavailable(&url, "the event stream ended")),
            };
            let mut events = Vec::new();
            for message in parser.push(&chunk) {
                if message.event == "error" {
                    return Err(Failure::unavailable(&url, message.data));
                }
                let event: WireEvent = serde_json::from_str(&message.data).map_err(|error| {
                    Failure::unavailable(
                        &url,
                        format!("an event that is not the JSON expected: {error}"),
                    )
                })?;
                events.push(event);
            }
            self.deliver(events, checkpoint, &url, false).await?;
        }
    }

    /// Long-polls `/feed/events` from the checkpoint until a request fails or the follower
    /// stops.
    async fn follow_long_poll(&self, checkpoint: &mut u64) -> Result<(), Failure> {
        let follower = self.follower;
        loop {
            let url = format!(
                "{}/feed/events?after={}&limit={LONG_POLL_LIMIT}&wait={}{}",
                follower.base, *checkpoint, follower.long_poll_wait, follower.filter_query
            );
            let Some(answer) = self
                .until_stopped(follower.http.get_json::<CursorJson>(&url))
                .await
            else {
                return Ok(());
            };
            self.deliver(answer?.events, checkpoint, &url, false)
                .await?;
        }
    }

    /// Checks that positions strictly increase (a page may start before the checkpoint;
    /// anything live must come after it), then hands the events after the checkpoint to the
    /// consumer as one page and moves the checkpoint to the last one.
    async fn deliver(
        &self,
        events: Vec<WireEvent>,
        checkpoint: &mut u64,
        url: &str,
        from_page: bool,
    ) -> Result<(), Failure> {
        let follower = self.follower;
        let mut previous = if from_page { 0 } else { *checkpoint };
        let mut batch: Vec<RecordedEvent> = Vec::with_capacity(events.len());
        for event in events {
            if event.position <= previous {
                return Err(Failure::Stop(FollowError::WentBackwards {
                    subscription: follower.name.to_string(),
                    after: previous,
                    position: event.position,
                    url: url.to_owned(),
                }));
            }
            previous = event.position;
            if event.position <= *checkpoint {
                continue;
            }
            let position = event.position;
            batch.push(
                event
                    .into_recorded()
                    .ok_or(Failure::Stop(FollowError::Redacted { position }))?,
            );
        }
        let Some(last) = batch.last().map(|event| event.position) else {
            return Ok(());
        };
        follower
            .consumer
            .consume_page(&follower.name, &batch)
            .await
            .map_err(|source| {
                Failure::Retry(FollowError::Consumer {
                    subscription: follower.name.to_string(),
                    checkpoint: *checkpoint,
                    attempts: 1,
                    source,
                })
            })?;
        *checkpoint = last;
        self.failures.consumer.store(0, Ordering::Relaxed);
        self.report(last);
        Ok(())
    }
}

/// A follower running as a task; dropping it asks the task to stop.
pub struct RunningFollower {
    name: Arc<str>,
    stop: watch::Sender<bool>,
    progress: watch::Receiver<u64>,
    task: Option<JoinHandle<Result<(), FollowError>>>,
}

impl RunningFollower {
    /// The position of the last event consumed.
    pub fn checkpoint(&self) -> u64 {
        *self.progress.borrow()
    }

    /// Waits until the consumer's checkpoint reaches `position`; if the follower stops
    /// first, returns why.
    pub async fn wait_for(&mut self, position: u64) -> Result<(), FollowError> {
        loop {
            if *self.progress.borrow_and_update() >= position {
                return Ok(());
            }
            if self.progress.changed().await.is_err() {
                if *self.progress.borrow() >= position {
                    return Ok(());
                }
                return Err(self
                    .outcome()
                    .await
                    .err()
                    .unwrap_or_else(|| self.not_running()));
            }
        }
    }

    /// Stops (never in the middle of a consumer's commit) and returns how the follower
    /// ended: `Ok` if it was healthy, or the error that had stopped it.
    pub async fn stop(mut self) -> Result<(), FollowError> {
        self.stop.send_replace(true);
        self.outcome().await
    }

    async fn outcome(&mut self) -> Result<(), FollowError> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|_| Err(self.not_running())),
            None => Err(self.not_running()),
        }
    }

    fn not_running(&self) -> FollowError {
        FollowError::NotRunning {
            subscription: self.name.to_string(),
        }
    }
}

impl Drop for RunningFollower {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_the_feeds_origin() {
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(
            origin("http://127.0.0.1:8080/api/events"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin("https://h/"), "https://h");
    }
}
