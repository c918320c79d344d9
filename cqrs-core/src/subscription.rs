//! Subscriptions: named, durable consumers of the global log that catch up from a stored
//! checkpoint, then follow new events live.
//!
//! A subscription reads only the events its consumer's [`Consumer::filter`] takes, the
//! filter applied by the store (in SQLite through an index): a handler of one aggregate
//! type reads that aggregate's events, not the whole log.
//!
//! Delivery is at least once: a consumer's checkpoint moves only after it handled an event,
//! so a crash in between delivers that event again. A consumer that stores its checkpoint
//! in the same transaction as its effects (a read model in the same SQLite file, see
//! `cqrs_sqlite::SqliteStore::projection_consumer`) gets exactly-once effects. A failing
//! event is retried with backoff; if it keeps failing the subscription stops and reports
//! it — an event is never skipped silently. Opted in with [`Subscription::on_failure`]
//! (`OnFailure::Park`), it parks the event instead (see [`crate::parking`]) and goes on.

use crate::envelope::RecordedEvent;
use crate::handler::{HandlerError, MultiEventHandler};
use crate::log::{EventFilter, LogRead};
use crate::parking::ParkingStore;
use crate::sources::Sources;
use crate::store::{EventStore, StoreError};
use crate::trace::display_id;
use crate::upcast::Upcasters;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

mod parked;

/// Where subscriptions keep their checkpoints: the position of the last event handled.
#[async_trait]
pub trait CheckpointStore: Send + Sync + 'static {
    /// The subscription's checkpoint (0: nothing handled yet).
    async fn load_checkpoint(&self, subscription: &str) -> Result<u64, StoreError>;
    /// Records that everything up to `position` has been handled.
    async fn save_checkpoint(&self, subscription: &str, position: u64) -> Result<(), StoreError>;
    /// Every stored checkpoint as `(subscription, position)`, by name: what an operator's
    /// tool lists (`cqrs subscriptions list`). Optional: the default refuses with
    /// [`StoreError::Unsupported`], so a store written before it keeps compiling.
    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Err(StoreError::Unsupported {
            operation: "listing checkpoints",
        })
    }
}

#[async_trait]
impl<C: CheckpointStore + ?Sized> CheckpointStore for Arc<C> {
    async fn load_checkpoint(&self, subscription: &str) -> Result<u64, StoreError> {
        (**self).load_checkpoint(subscription).await
    }

    async fn save_checkpoint(&self, subscription: &str, position: u64) -> Result<(), StoreError> {
        (**self).save_checkpoint(subscription, position).await
    }

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        (**self).checkpoints().await
    }
}

/// What a subscription feeds: handles each event of the log and owns the checkpoint, so
/// that it can store both in one transaction when it is able to.
#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Which events of the log this consumer takes; the subscription reads only those (the
    /// store applies the filter), so the others cost it nothing. The default takes every
    /// event. Asked once, when the subscription is created.
    fn filter(&self) -> EventFilter {
        EventFilter::all()
    }
    /// The position of the last event consumed for this subscription (0: none).
    async fn checkpoint(&self, subscription: &str) -> Result<u64, HandlerError>;
    /// Handles one event (or skips it, if it is not for this consumer) and records its
    /// position as the checkpoint.
    async fn consume(&self, subscription: &str, event: &RecordedEvent) -> Result<(), HandlerError>;
    /// Consumes a page of events in log order and records the last one's position. The
    /// default consumes them one by one; a consumer that can store a whole page with one
    /// checkpoint write (one transaction) overrides it, so catching up and rebuilding cost
    /// one write per page instead of one per event. If it fails, the subscription asks
    /// [`checkpoint`](Consumer::checkpoint) how far it got and goes on event by event.
    async fn consume_page(
        &self,
        subscription: &str,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        for event in events {
            self.consume(subscription, event).await?;
        }
        Ok(())
    }
    /// Forgets everything consumed: the checkpoint goes back to 0 and, where the consumer
    /// owns a read model, the read model is emptied, so the log can be replayed into it.
    async fn reset(&self, subscription: &str) -> Result<(), HandlerError>;
    /// Records `event`'s position as the checkpoint without handling it: the subscription
    /// parked it ([`OnFailure::Park`](crate::parking::OnFailure::Park)). The default
    /// refuses (the subscription then stops before the event): only the consumer knows
    /// where its checkpoint lives.
    async fn pass(&self, subscription: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        Err(cannot_park(subscription, event))
    }
    /// Handles `event`, which `subscription` parked earlier, without touching the checkpoint
    /// (it is past the event already), and removes it from `parking`'s list once handled,
    /// both in one transaction where the consumer can. An event no longer parked (retried
    /// or discarded meanwhile) is not handled again where the consumer can tell. The
    /// default refuses, like [`pass`](Consumer::pass).
    async fn consume_parked(
        &self,
        subscription: &str,
        event: &RecordedEvent,
        parking: &dyn ParkingStore,
    ) -> Result<(), HandlerError> {
        let _ = parking;
        Err(cannot_park(subscription, event))
    }
}

/// The refusal of a consumer that cannot park events.
fn cannot_park(subscription: &str, event: &RecordedEvent) -> HandlerError {
    format!(
        "the consumer of subscription `{subscription}` cannot park events (it implements \
         neither `Consumer::pass` nor `Consumer::consume_parked`): the event at position {} \
         was not parked",
        event.position
    )
    .into()
}

/// Feeds an [`EventHandler`](crate::EventHandler) the events of its aggregate type, or a
/// [`MultiEventHandler`] those of its several sources (its filter is their categories, so
/// one read of the log takes them all, in global order), each decoded through its
/// aggregate's upcasters, and saves the checkpoint after each page it handled
/// (at-least-once: a crash mid-page delivers that page's handled events again).
pub struct HandlerConsumer<H: MultiEventHandler, C> {
    handler: H,
    checkpoints: C,
    sources: Sources<H::Event>,
}

impl<H: MultiEventHandler, C: CheckpointStore> HandlerConsumer<H, C> {
    /// Runs `handler`, keeping the checkpoint in `checkpoints`.
    pub fn new(handler: H, checkpoints: C) -> Self {
        Self {
            sources: handler.sources(),
            handler,
            checkpoints,
        }
    }

    /// Decodes old events through this upcaster chain first: for a one-aggregate handler.
    /// It replaces the chains a multi-aggregate handler's sources give (give each source
    /// its own with [`Sources::with_upcasted`] instead).
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.sources = self.sources.with_upcasters_for_all(upcasters);
        self
    }

    /// Runs the handler on `event` if it belongs to one of its sources (the filter's
    /// categories can take more streams, for a `TYPE` with a `-`), in a `handle` span that
    /// names the event and its correlation id.
    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if !self.sources.takes(&event.stream_id) {
            return Ok(());
        }
        let span = tracing::info_span!(
            "handle",
            handler = self.handler.name(),
            stream = %event.stream_id,
            version = event.version,
            position = event.position,
            event_type = %event.event_type,
            correlation_id = %display_id(event.metadata.correlation_id),
        );
        async {
            match self.sources.decode(event.clone())? {
                Some(envelope) => self.handler.handle(&envelope).await,
                None => Ok(()),
            }
        }
        .instrument(span)
        .await
    }
}

#[async_trait]
impl<H: MultiEventHandler, C: CheckpointStore> Consumer for HandlerConsumer<H, C> {
    /// The events of the handler's aggregate types.
    fn filter(&self) -> EventFilter {
        self.sources.filter()
    }

    async fn checkpoint(&self, subscription: &str) -> Result<u64, HandlerError> {
        Ok(self.checkpoints.load_checkpoint(subscription).await?)
    }

    async fn consume(&self, subscription: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.handle(event).await?;
        Ok(self
            .checkpoints
            .save_checkpoint(subscription, event.position)
            .await?)
    }

    /// Handles the page's events of its aggregate, then saves the checkpoint once; if a
    /// handler fails, first saves the checkpoint of the event before it, so only the
    /// failing event is tried again.
    async fn consume_page(
        &self,
        subscription: &str,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        let mut handled = None;
        for event in events {
            if let Err(failure) = self.handle(event).await {
                if let Some(position) = handled {
                    self.checkpoints
                        .save_checkpoint(subscription, position)
                        .await?;
                }
                return Err(failure);
            }
            handled = Some(event.position);
        }
        match handled {
            Some(position) => Ok(self
                .checkpoints
                .save_checkpoint(subscription, position)
                .await?),
            None => Ok(()),
        }
    }

    async fn reset(&self, subscription: &str) -> Result<(), HandlerError> {
        Ok(self.checkpoints.save_checkpoint(subscription, 0).await?)
    }

    async fn pass(&self, subscription: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        Ok(self
            .checkpoints
            .save_checkpoint(subscription, event.position)
            .await?)
    }

    /// Handles the event, then removes it from the parked list: two writes, so a crash in
    /// between leaves it parked and a later retry handles it again (at least once, as
    /// every delivery to a handler).
    async fn consume_parked(
        &self,
        subscription: &str,
        event: &RecordedEvent,
        parking: &dyn ParkingStore,
    ) -> Result<(), HandlerError> {
        self.handle(event).await?;
        parking.unpark(subscription, event.position).await?;
        Ok(())
    }
}

/// Why a subscription stopped.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// An event kept failing; the checkpoint stays before it, and later events wait.
    #[error(
        "subscription `{subscription}` stopped at stream `{stream_id}` version {version} \
         (position {position}) after {attempts} attempts: {source}"
    )]
    EventFailed {
        /// The subscription's name.
        subscription: String,
        /// The stream of the failing event.
        stream_id: String,
        /// Its version in that stream.
        version: u64,
        /// Its place in the global log.
        position: u64,
        /// How many times it was tried.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: HandlerError,
    },
    /// Reading the checkpoint or the log kept failing.
    #[error(
        "subscription `{subscription}` could not {action} after {attempts} attempts: {source}"
    )]
    Unavailable {
        /// The subscription's name.
        subscription: String,
        /// What it was doing.
        action: &'static str,
        /// How many times it was tried.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: HandlerError,
    },
    /// A handler panicked; the checkpoint stays where it was.
    #[error(
        "subscription `{subscription}` panicked handling the event after position {checkpoint}"
    )]
    Panicked {
        /// The subscription's name.
        subscription: String,
        /// Its checkpoint when it panicked.
        checkpoint: u64,
    },
    /// The subscription was stopped, or its task ended, before reaching what was awaited.
    #[error("subscription `{subscription}` is not running")]
    NotRunning {
        /// The subscription's name.
        subscription: String,
    },
    /// Nothing is parked at this position: retried or discarded already, or never parked.
    #[error("subscription `{subscription}` has no event parked at position {position}")]
    NotParked {
        /// The subscription's name.
        subscription: String,
        /// The position asked for.
        position: u64,
    },
    /// The event is parked, but the checkpoint is not past it yet (a subscription stopped
    /// between the two): it is not retried out of band, since the subscription delivers
    /// it again itself when it starts (and forgets the entry then).
    #[error(
        "subscription `{subscription}` parked the event at position {position} but its \
         checkpoint is {checkpoint}, before it: the subscription delivers it again when it \
         starts"
    )]
    ParkedAhead {
        /// The subscription's name.
        subscription: String,
        /// The parked event's position.
        position: u64,
        /// The subscription's checkpoint.
        checkpoint: u64,
    },
    /// Retrying a parked event failed; it stays parked, with this error and its attempts
    /// added.
    #[error(
        "retrying the event subscription `{subscription}` parked at position {position} \
         failed after {attempts} attempts; it stays parked: {source}"
    )]
    RetryFailed {
        /// The subscription's name.
        subscription: String,
        /// The parked event's position.
        position: u64,
        /// How many times it was tried in this retry.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: HandlerError,
    },
}

/// How often and how patiently a failing step is retried: `attempts` tries in all, waiting
/// `first_backoff` after the first failure and twice as long after each next one, at most
/// `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all (at least 1).
    pub attempts: u32,
    /// The wait after the first failure.
    pub first_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Five tries over about 1.5 s: enough to ride out a busy database, short enough that a
    /// real bug stops the subscription quickly.
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Runs `step` until it succeeds, the attempts are spent, or (during a backoff) `stop`
    /// is raised; returns the last error and how many attempts were made.
    async fn run<T, F, Fut>(
        &self,
        stop: Option<&watch::Receiver<bool>>,
        mut step: F,
    ) -> Result<T, (HandlerError, u32)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, HandlerError>>,
    {
        let mut stop = stop.cloned();
        let mut backoff = self.first_backoff;
        let mut attempt = 1;
        loop {
            match step().await {
                Ok(value) => return Ok(value),
                Err(error) if attempt >= self.attempts.max(1) => return Err((error, attempt)),
                Err(error) => {
                    tracing::warn!(attempt, error = %error, "failed; retrying in {backoff:?}");
                    let pause = tokio::time::sleep(backoff);
                    match &mut stop {
                        Some(stop) => {
                            if *stop.borrow_and_update() {
                                return Err((error, attempt));
                            }
                            tokio::select! {
                                () = pause => {}
                                // Asked to stop (or the handle is gone): give up with this error.
                                _ = stop.changed() => return Err((error, attempt)),
                            }
                        }
                        None => pause.await,
                    }
                    backoff = backoff.saturating_mul(2).min(self.max_backoff);
                    attempt += 1;
                }
            }
        }
    }
}

/// Events read from the log per page.
const PAGE: usize = 512;

/// A named consumer of the global log of store `S`.
pub struct Subscription<S> {
    name: Arc<str>,
    store: S,
    consumer: Arc<dyn Consumer>,
    /// The consumer's filter, the one every read of the log is made with.
    filter: EventFilter,
    retry: RetryPolicy,
    poll_interval: Duration,
    /// Raised to stop a running subscription; cuts retry backoffs short.
    stopped: Option<watch::Receiver<bool>>,
    /// A running subscription's view of the head: the latest position its filter takes.
    head: Option<watch::Sender<u64>>,
    /// Where an event that keeps failing is parked (`None`: the subscription stops).
    parking: Option<Arc<dyn ParkingStore>>,
}

/// How far a subscription is behind: the latest position of the log its consumer takes (the
/// head), and its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// The position of the latest event the consumer takes (0: none yet).
    pub head: u64,
    /// The position of the last event it handled (0: none).
    pub checkpoint: u64,
}

impl Lag {
    /// Head minus checkpoint, in positions (0: caught up).
    pub fn behind(&self) -> u64 {
        self.head.saturating_sub(self.checkpoint)
    }
}

impl<S: EventStore + Clone> Subscription<S> {
    /// A subscription called `name` (its checkpoint's key: keep it stable) feeding
    /// `consumer` from `store`'s log.
    pub fn new(name: impl Into<String>, store: S, consumer: impl Consumer) -> Self {
        Self {
            name: Arc::from(name.into()),
            store,
            filter: consumer.filter(),
            consumer: Arc::new(consumer),
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_millis(500),
            stopped: None,
            head: None,
            parking: None,
        }
    }

    /// How failing events (and failing reads) are retried before the subscription stops.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long a live subscription waits for a wake-up before reading the log anyway:
    /// the bound on how late it sees events appended by other processes.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The subscription's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How far behind the subscription is now: the latest position its consumer takes, and
    /// its stored checkpoint (a running subscription's [`RunningSubscription::lag`] needs no
    /// read).
    pub async fn lag(&self) -> Result<Lag, SubscriptionError> {
        let checkpoint = self.checkpoint().await?;
        let head = self.head().await?;
        Ok(Lag { head, checkpoint })
    }

    /// Handles every event after the checkpoint up to the end of the log as it is now, and
    /// returns the new checkpoint.
    pub async fn catch_up(&self) -> Result<u64, SubscriptionError> {
        let from = self.checkpoint().await?;
        self.forget_parked_after(from).await?;
        self.catch_up_from(from, None).await
    }

    /// Replays the whole log into a reset consumer (an emptied read model), then returns
    /// the new checkpoint.
    pub async fn rebuild(&self) -> Result<u64, SubscriptionError> {
        self.retry
            .run(self.stopped.as_ref(), || self.consumer.reset(&self.name))
            .await
            .map_err(|(source, attempts)| {
                self.unavailable("reset its consumer", source, attempts)
            })?;
        self.forget_parked_after(0).await?;
        self.catch_up_from(0, None).await
    }

    /// Runs the subscription as a task on the current tokio runtime (call it from within
    /// one): catches up, then follows new events, waking on every append made through this
    /// store and polling as a fallback.
    pub fn start(self) -> RunningSubscription {
        let (stop, stopped) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(0);
        let (head_tx, head) = watch::channel(0);
        let name = self.name.clone();
        let span = tracing::info_span!("subscription", name = %self.name);
        let mut subscription = self;
        subscription.head = Some(head_tx);
        let task = tokio::spawn(subscription.follow(stopped, progress_tx).instrument(span));
        RunningSubscription {
            shared: SubscriptionProgress {
                name,
                progress,
                head,
            },
            stop,
            task: Some(task),
        }
    }

    async fn follow(
        mut self,
        mut stopped: watch::Receiver<bool>,
        progress: watch::Sender<u64>,
    ) -> Result<(), SubscriptionError> {
        self.stopped = Some(stopped.clone());
        let mut appends = self.store.appends();
        let mut checkpoint = self.checkpoint().await?;
        self.forget_parked_after(checkpoint).await?;
        progress.send_replace(checkpoint);
        loop {
            if let Some(appends) = &mut appends {
                appends.borrow_and_update();
            }
            checkpoint = self.catch_up_from(checkpoint, Some(&progress)).await?;
            if *stopped.borrow() {
                return Ok(());
            }
            let woken = async {
                let signalled = match &mut appends {
                    Some(appends) => appends.changed().await.is_ok(),
                    None => false,
                };
                if !signalled {
                    // No signal (or its store is gone): the poll below is all there is.
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = stopped.changed() => return Ok(()),
                () = woken => {}
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    async fn checkpoint(&self) -> Result<u64, SubscriptionError> {
        self.retry
            .run(self.stopped.as_ref(), || {
                self.consumer.checkpoint(&self.name)
            })
            .await
            .map_err(|(source, attempts)| self.unavailable("read its checkpoint", source, attempts))
    }

    /// Consumes pages of the events its filter takes from `checkpoint` on until a short
    /// page (the end of the log), or until asked to stop; reports progress as it goes, and
    /// returns the position of the last event consumed.
    ///
    /// A filtered read passes over the events it leaves out without a trace: the checkpoint
    /// stays at the last event taken. So that progress (what `wait_for` waits on) passes
    /// them too, the end of the log is read first; once every page up to the end of the
    /// log was consumed, every event at or before that end is handled or not wanted.
    async fn catch_up_from(
        &self,
        mut checkpoint: u64,
        progress: Option<&watch::Sender<u64>>,
    ) -> Result<u64, SubscriptionError> {
        let end = match progress {
            Some(_) if !self.filter.is_all() => self.log_end().await?,
            _ => 0,
        };
        // A running subscription publishes its head, for its lag (one index seek a round).
        let head = match &self.head {
            Some(heads) => {
                let head = self.head().await?;
                heads.send_replace(head);
                Some(head)
            }
            None => None,
        };
        loop {
            let read = LogRead::forward(checkpoint + 1, PAGE).matching(self.filter.clone());
            let page = self
                .retry
                .run(self.stopped.as_ref(), || async {
                    self.store.read_log(&read).await.map_err(HandlerError::from)
                })
                .await
                .map_err(|(source, attempts)| self.unavailable("read the log", source, attempts))?;
            if self.stop_requested() {
                return Ok(checkpoint);
            }
            checkpoint = self.consume_page(&page, checkpoint, progress).await?;
            if let Some(head) = head.filter(|_| !page.is_empty()) {
                let lag = head.saturating_sub(checkpoint);
                tracing::debug!(subscription = %self.name, checkpoint, head, lag, "consumed a page");
            }
            let consumed_all = page.last().is_none_or(|last| last.position == checkpoint);
            if page.len() < PAGE {
                if let Some(progress) = progress.filter(|_| consumed_all) {
                    advance(progress, end);
                }
                return Ok(checkpoint);
            }
        }
    }

    /// The position of the latest event the consumer takes (0: none).
    async fn head(&self) -> Result<u64, SubscriptionError> {
        self.newest(self.filter.clone()).await
    }

    /// The position of the latest event in the log (0: none), whatever its kind.
    async fn log_end(&self) -> Result<u64, SubscriptionError> {
        self.newest(EventFilter::all()).await
    }

    /// The position of the latest event `filter` takes (0: none).
    async fn newest(&self, filter: EventFilter) -> Result<u64, SubscriptionError> {
        let newest = LogRead::backward(u64::MAX, 1).matching(filter);
        let events = self
            .retry
            .run(self.stopped.as_ref(), || async {
                self.store
                    .read_log(&newest)
                    .await
                    .map_err(HandlerError::from)
            })
            .await
            .map_err(|(source, attempts)| self.unavailable("read the log", source, attempts))?;
        Ok(events.first().map_or(0, |event| event.position))
    }

    /// Hands the consumer the whole page at once (one transaction, where it can); if that
    /// fails, asks it how far it got and goes on event by event, with retries, so the event
    /// that fails is the one reported. Returns the new checkpoint.
    async fn consume_page(
        &self,
        page: &[RecordedEvent],
        checkpoint: u64,
        progress: Option<&watch::Sender<u64>>,
    ) -> Result<u64, SubscriptionError> {
        let Some(last) = page.last() else {
            return Ok(checkpoint);
        };
        let report = |position: u64| {
            if let Some(progress) = progress {
                advance(progress, position);
            }
        };
        let whole = self
            .consumer
            .consume_page(&self.name, page)
            .instrument(tracing::debug_span!(
                "page",
                from = page[0].position,
                to = last.position
            ))
            .await;
        if whole.is_ok() {
            report(last.position);
            return Ok(last.position);
        }
        let reached = self.checkpoint().await?;
        report(reached.max(checkpoint));
        let mut checkpoint = reached;
        for event in page.iter().filter(|event| event.position > reached) {
            if self.stop_requested() {
                break;
            }
            self.deliver(event).await?;
            checkpoint = event.position;
            report(checkpoint);
        }
        Ok(checkpoint)
    }

    /// Whether a running subscription was asked to stop.
    fn stop_requested(&self) -> bool {
        self.stopped
            .as_ref()
            .is_some_and(|stopped| *stopped.borrow())
    }

    /// Delivers `event` with retries; if it keeps failing, parks it (with `OnFailure::Park`,
    /// unless asked to stop meanwhile) or stops before it.
    async fn deliver(&self, event: &RecordedEvent) -> Result<(), SubscriptionError> {
        let span = tracing::debug_span!("deliver", position = event.position);
        let outcome = self
            .retry
            .run(self.stopped.as_ref(), || {
                self.consumer.consume(&self.name, event)
            })
            .instrument(span)
            .await;
        let Err((source, attempts)) = outcome else {
            return Ok(());
        };
        if let Some(parking) = self.parking.as_deref().filter(|_| !self.stop_requested()) {
            return self.park(parking, event, source, attempts).await;
        }
        tracing::error!(
            subscription = %self.name,
            stream = %event.stream_id,
            version = event.version,
            error = %source,
            "event keeps failing; subscription stopped"
        );
        Err(SubscriptionError::EventFailed {
            subscription: self.name.to_string(),
            stream_id: event.stream_id.clone(),
            version: event.version,
            position: event.position,
            attempts,
            source,
        })
    }

    fn unavailable(
        &self,
        action: &'static str,
        source: HandlerError,
        attempts: u32,
    ) -> SubscriptionError {
        SubscriptionError::Unavailable {
            subscription: self.name.to_string(),
            action,
            attempts,
            source,
        }
    }
}

/// Moves `progress` on to `position`, never back.
fn advance(progress: &watch::Sender<u64>, position: u64) {
    progress.send_if_modified(|reached| {
        let further = position > *reached;
        if further {
            *reached = position;
        }
        further
    });
}

/// A subscription running as a task; dropping it asks the task to stop after the event in
/// hand.
pub struct RunningSubscription {
    shared: SubscriptionProgress,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), SubscriptionError>>>,
}

/// A running subscription's progress, to share: clones are cheap and need no `&mut`, so many
/// tasks (web requests, say) can each wait until the subscription has handled their own
/// writes ("read your writes"), and an operator can read its lag. It does not keep the
/// subscription running.
#[derive(Debug, Clone)]
pub struct SubscriptionProgress {
    name: Arc<str>,
    progress: watch::Receiver<u64>,
    head: watch::Receiver<u64>,
}

impl SubscriptionProgress {
    /// How far the subscription got: every event at or before this position that its
    /// consumer takes is handled (one its filter leaves out counts as handled).
    pub fn checkpoint(&self) -> u64 {
        *self.progress.borrow()
    }

    /// How far behind it is, as of its last read of the log (it reads again on every append
    /// through this store, and every poll interval).
    pub fn lag(&self) -> Lag {
        let checkpoint = self.checkpoint();
        Lag {
            head: (*self.head.borrow()).max(checkpoint),
            checkpoint,
        }
    }

    /// Waits until every event up to `position` has been handled: for a command's
    /// consequences, `wait_for(committed.position())`. If the subscription stops first,
    /// returns [`SubscriptionError::NotRunning`] (the [`RunningSubscription`] tells why).
    pub async fn wait_for(&self, position: u64) -> Result<(), SubscriptionError> {
        let mut progress = self.progress.clone();
        let reached = progress
            .wait_for(|reached| *reached >= position)
            .await
            .is_ok();
        // The task may have ended after a final progress that reached `position`.
        if reached || *progress.borrow() >= position {
            Ok(())
        } else {
            Err(SubscriptionError::NotRunning {
                subscription: self.name.to_string(),
            })
        }
    }
}

impl RunningSubscription {
    /// How far the subscription got: every event at or before this position that its
    /// consumer takes is handled (one its filter leaves out counts as handled).
    pub fn checkpoint(&self) -> u64 {
        self.shared.checkpoint()
    }

    /// How far behind it is, as of its last read of the log.
    pub fn lag(&self) -> Lag {
        self.shared.lag()
    }

    /// A handle on its progress that many tasks can share and wait on.
    pub fn progress(&self) -> SubscriptionProgress {
        self.shared.clone()
    }

    /// Waits until every event up to `position` has been handled (for instance the
    /// position of an append whose consequences the caller wants to see). If the
    /// subscription stops first, returns why.
    pub async fn wait_for(&mut self, position: u64) -> Result<(), SubscriptionError> {
        match self.shared.wait_for(position).await {
            Err(SubscriptionError::NotRunning { .. }) => Err(self
                .outcome()
                .await
                .err()
                .unwrap_or_else(|| self.not_running())),
            outcome => outcome,
        }
    }

    /// Stops after the event in hand and returns how the subscription ended: `Ok` if it was
    /// healthy, or the error that had stopped it already. An event being retried is given
    /// up at once: its last error is returned (the checkpoint stays before it).
    pub async fn stop(mut self) -> Result<(), SubscriptionError> {
        self.stop.send_replace(true);
        self.outcome().await
    }

    async fn outcome(&mut self) -> Result<(), SubscriptionError> {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(outcome) => outcome,
                Err(join) if join.is_panic() => Err(SubscriptionError::Panicked {
                    subscription: self.shared.name.to_string(),
                    checkpoint: self.checkpoint(),
                }),
                Err(_) => Err(self.not_running()),
            },
            None => Err(self.not_running()),
        }
    }

    fn not_running(&self) -> SubscriptionError {
        SubscriptionError::NotRunning {
            subscription: self.shared.name.to_string(),
        }
    }
}

impl Drop for RunningSubscription {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
