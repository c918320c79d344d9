//! The relay: the global log as an outbox, published to a JetStream stream.
//!
//! Nothing is written at append time. The relay reads the log after its checkpoint, publishes
//! each event (many publishes in flight), and moves its checkpoint only past events JetStream
//! acknowledged. Every publish carries `Nats-Expected-Last-Sequence` (the sequence the
//! previous event got), so the JetStream stream is always a prefix of the log in position
//! order: a publish that would leave a hole, or land after another relay's, is refused by the
//! broker. After any failure, and at start, the relay reads the stream's tip and resumes after
//! the further of its checkpoint and the position on the last message: nothing is lost and
//! nothing published twice, however long it was down (the duplicate window plays no part).
//! A second relay started by mistake loses every race it runs into and resumes after what the
//! first published, so the stream still holds each event once, in order.

use crate::broker::{AckFuture, Broker, Failure, Outgoing, PublishFailure, Tip, TipError};
use crate::jetstream::JetStreamBroker;
use crate::message;
use async_nats::jetstream;
use cqrs_core::{
    CheckpointStore, EventFilter, EventStore, Lag, LogRead, RecordedEvent, StoreError,
};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// What a relay publishes, where, and how hard it tries.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The relay's name: the key of its checkpoint in the store (keep it stable).
    pub name: String,
    /// The JetStream stream published to.
    pub stream: String,
    /// The first subject token: events go to `<prefix>.<aggregate type>.<stream id>`.
    pub prefix: String,
    /// Which events of the log are published (default: all).
    pub filter: EventFilter,
    /// Events read from the log at a time.
    pub page: usize,
    /// Publishes awaiting their acknowledgement at most.
    pub max_in_flight: usize,
    /// How long an idle relay waits before reading the log again (appends by this process
    /// wake it at once, see `EventStore::appends`).
    pub poll_interval: Duration,
    /// The wait after the first transient failure; it doubles up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between retries; transient failures are retried until stopped.
    pub max_backoff: Duration,
}

impl RelayConfig {
    /// A relay called `name` publishing to JetStream stream `stream` under `prefix`.
    pub fn new(
        name: impl Into<String>,
        stream: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            stream: stream.into(),
            prefix: prefix.into(),
            filter: EventFilter::all(),
            page: 512,
            max_in_flight: 256,
            poll_interval: Duration::from_millis(200),
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Why a relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The broker refuses this event for good (too large); the relay stopped before it.
    /// Fix the broker's limits and restart, or skip it with [`skip_refused`](crate::skip_refused) (recorded).
    #[error(
        "relay `{relay}`: JetStream refused event {event_id} at position {position} \
         (stream `{stream_id}` version {version}); the relay stopped before it: {source}"
    )]
    Refused {
        /// The relay.
        relay: String,
        /// The event's position in the log.
        position: u64,
        /// The event's id.
        event_id: Uuid,
        /// Its stream.
        stream_id: String,
        /// Its version there.
        version: u64,
        /// What the broker said.
        #[source]
        source: PublishFailure,
    },
    /// The store failed in a way retrying does not fix.
    #[error("relay `{relay}`: the event store failed: {source}")]
    Store {
        /// The relay.
        relay: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The JetStream stream's last message was not published by a relay.
    #[error("relay `{relay}`: {source}")]
    Foreign {
        /// The relay.
        relay: String,
        /// Which message, and what is wrong with it.
        #[source]
        source: TipError,
    },
    /// The broker's stream ends with an event this store does not hold at that position:
    /// it was filled from another store, or this store was restored from an older copy.
    /// Resuming would skip events, so the relay refuses to.
    #[error(
        "relay `{relay}`: the stream's last message carries event {event_id} at position \
         {position}, which this store does not hold there; not resuming after it"
    )]
    Diverged {
        /// The relay.
        relay: String,
        /// The position on the last message.
        position: u64,
        /// The event id on it.
        event_id: Uuid,
    },
    /// A skip was asked for an event that is not the one the relay is stopped before.
    #[error("relay `{relay}`: cannot skip position {position}: {reason}")]
    NotSkippable {
        /// The relay.
        relay: String,
        /// The position asked.
        position: u64,
        /// Why not.
        reason: String,
    },
    /// The broker could not be reached (only from one-shot calls; the relay itself retries).
    #[error("relay `{relay}`: broker unreachable: {source}")]
    Unreachable {
        /// The relay.
        relay: String,
        /// What the client reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The relay's task ended without saying why (it panicked or was aborted).
    #[error("relay `{relay}` is not running")]
    NotRunning {
        /// The relay.
        relay: String,
    },
}

/// How one round of publishing ended short of its page.
enum Stop {
    /// Back off, read the tip, go on.
    Retry(String),
    /// Read the tip and go on at once.
    Resync,
    /// Give up: the relay stops with this error.
    Fatal(Box<RelayError>),
}

/// Publishes the log of store `S` to broker `B` (JetStream); see the [module](self).
pub struct Relay<S, B = JetStreamBroker> {
    store: S,
    broker: B,
    config: RelayConfig,
}

impl<S: EventStore + CheckpointStore> Relay<S> {
    /// A relay of `store`'s log to JetStream stream `config.stream` through `jetstream`.
    pub fn new(store: S, jetstream: jetstream::Context, config: RelayConfig) -> Self {
        let broker = JetStreamBroker::new(jetstream, config.stream.clone());
        Self::with_broker(store, broker, config)
    }

    /// The JetStream stream for subjects `<prefix>.>`, created if missing (file storage,
    /// two-minute duplicate window); an existing stream is left as configured.
    pub async fn ensure_stream(&self) -> Result<(), RelayError> {
        self.broker
            .ensure_stream(&self.config.prefix, Duration::from_secs(120))
            .await
            .map_err(|source| self.unreachable(source))
    }
}

impl<S: EventStore + CheckpointStore, B: Broker> Relay<S, B> {
    /// A relay of `store`'s log to `broker`.
    pub fn with_broker(store: S, broker: B, config: RelayConfig) -> Self {
        Self {
            store,
            broker,
            config,
        }
    }

    /// How far behind the relay is: the latest position it publishes, and how far it got
    /// (the further of its checkpoint and the JetStream stream's tip).
    pub async fn lag(&self) -> Result<Lag, RelayError> {
        let tip = self
            .broker
            .tip()
            .await
            .map_err(|source| self.tip_error(source))?;
        let checkpoint = self.load_checkpoint().await?.max(tip.position);
        Ok(Lag {
            head: self.head().await?.max(checkpoint),
            checkpoint,
        })
    }

    /// Runs the relay as a task until stopped, or until an event is refused for good.
    pub fn start(self) -> RunningRelay
    where
        S: Clone,
        B: Clone,
    {
        let (stop, stopped) = watch::channel(false);
        let (lag_sender, lag) = watch::channel(Lag {
            head: 0,
            checkpoint: 0,
        });
        let name = self.config.name.clone();
        let task = tokio::spawn(async move { self.run(stopped, lag_sender).await });
        RunningRelay {
            name,
            lag,
            stop,
            task: Some(task),
        }
    }

    /// Publishes until `stopped` is raised (then `Ok`) or an error ends it, reporting its
    /// lag through `lag` after every page.
    pub async fn run(
        &self,
        mut stopped: watch::Receiver<bool>,
        lag: watch::Sender<Lag>,
    ) -> Result<(), RelayError> {
        let mut wake = self.store.appends();
        let mut backoff = self.config.first_backoff;
        let mut checkpoint = self.load_checkpoint().await?;
        let mut tip: Option<Tip> = None;
        loop {
            if *stopped.borrow() {
                return Ok(());
            }
            let round = match tip {
                Some(ref mut current) => self.round(current, &mut checkpoint, &lag).await,
                None => self.sync(&mut checkpoint).await.map(|synced| {
                    tip = Some(synced);
                    true
                }),
            };
            // Idle, an append wakes the relay early; backing off, nothing but a stop does.
            let (pause, wakeable) = match round {
                Ok(true) => {
                    backoff = self.config.first_backoff;
                    continue;
                }
                Ok(false) => (self.config.poll_interval, true),
                Err(Stop::Fatal(error)) => {
                    tracing::error!(relay = %self.config.name, error = %error, "relay stopped");
                    return Err(*error);
                }
                Err(Stop::Resync) => {
                    tip = None;
                    continue;
                }
                Err(Stop::Retry(reason)) => {
                    tracing::warn!(relay = %self.config.name, %reason, "relay retrying in {backoff:?}");
                    tip = None;
                    let wait = backoff;
                    backoff = backoff.saturating_mul(2).min(self.config.max_backoff);
                    (wait, false)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => {}
                _ = async {
                    match wake.as_mut().filter(|_| wakeable) {
                        Some(wake) => wake.changed().await.ok(),
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }

    /// Reads the tip and moves the checkpoint up to it: every event up to the position on
    /// the last message is in the stream, since publishes only ever extend it in order.
    async fn sync(&self, checkpoint: &mut u64) -> Result<Tip, Stop> {
        let tip = match self.broker.tip().await {
            Ok(tip) => tip,
            Err(TipError::Unreachable { source, .. }) => {
                return Err(Stop::Retry(source.to_string()))
            }
            Err(foreign) => return Err(Stop::Fatal(Box::new(self.tip_error(foreign)))),
        };
        if tip.position > 0 {
            self.check_holds(&tip).await?;
        }
        if tip.position > *checkpoint {
            self.save_checkpoint(tip.position).await?;
            *checkpoint = tip.position;
        }
        tracing::debug!(relay = %self.config.name, sequence = tip.sequence, checkpoint = *checkpoint, "relay resumes");
        Ok(tip)
    }

    /// Refuses to resume after a tip whose event is not this store's at that position.
    async fn check_holds(&self, tip: &Tip) -> Result<(), Stop> {
        let read = LogRead::forward(tip.position, 1);
        let found = self
            .store
            .read_log(&read)
            .await
            .map_err(|e| self.store_stop(e))?;
        let holds = found
            .first()
            .is_some_and(|event| event.position == tip.position && event.event_id == tip.event_id);
        if holds {
            return Ok(());
        }
        Err(Stop::Fatal(Box::new(RelayError::Diverged {
            relay: self.config.name.clone(),
            position: tip.position,
            event_id: tip.event_id,
        })))
    }

    /// Publishes one page after the checkpoint; `Ok(false)` when there was none to publish.
    async fn round(
        &self,
        tip: &mut Tip,
        checkpoint: &mut u64,
        lag: &watch::Sender<Lag>,
    ) -> Result<bool, Stop> {
        let read = LogRead::forward(checkpoint.saturating_add(1), self.config.page.max(1))
            .matching(self.config.filter.clone());
        let page = self
            .store
            .read_log(&read)
            .await
            .map_err(|e| self.store_stop(e))?;
        if page.is_empty() {
            lag.send_replace(Lag {
                head: *checkpoint,
                checkpoint: *checkpoint,
            });
            return Ok(false);
        }
        let published = self.publish(&page, tip).await;
        if let Some(position) = published.acked.filter(|acked| *acked > *checkpoint) {
            self.save_checkpoint(position).await?;
            *checkpoint = position;
        }
        let head = self.head().await.map_err(|e| Stop::Fatal(Box::new(e)))?;
        let now = Lag {
            head: head.max(*checkpoint),
            checkpoint: *checkpoint,
        };
        lag.send_replace(now);
        tracing::debug!(relay = %self.config.name, checkpoint = now.checkpoint, head = now.head, lag = now.behind(), "relayed a page");
        published.outcome.map(|()| true)
    }

    /// Publishes `page` in order, up to `max_in_flight` at once, each expecting the sequence
    /// the one before it got; stops at the first failure. Reports the last position whose
    /// publish (and every one before it) JetStream acknowledged.
    async fn publish(&self, page: &[RecordedEvent], tip: &mut Tip) -> Published {
        let mut in_flight: VecDeque<(&RecordedEvent, AckFuture)> = VecDeque::new();
        let mut acked = None;
        let mut expected = tip.sequence;
        let mut outcome = Ok(());
        for event in page {
            if in_flight.len() >= self.config.max_in_flight.max(1) {
                if let Some((event, ack)) = in_flight.pop_front() {
                    if let Err(stop) = self.await_ack(event, ack, tip).await {
                        outcome = Err(stop);
                        break;
                    }
                    acked = Some(event.position);
                }
            }
            let outgoing = Outgoing {
                subject: message::subject(&self.config.prefix, event),
                headers: message::headers(event),
                payload: event.payload.clone().into_bytes(),
                expected_last_sequence: expected,
            };
            match self.broker.publish(outgoing).await {
                Ok(ack) => {
                    in_flight.push_back((event, ack));
                    expected += 1;
                }
                Err(error) => {
                    outcome = Err(self.failed(event, error));
                    break;
                }
            }
        }
        // Settle what is in flight, in order: the acknowledged prefix counts; a failed
        // acknowledgement is earlier than a failed send, so it is the one reported.
        let sent = std::mem::replace(&mut outcome, Ok(()));
        while let Some((event, ack)) = in_flight.pop_front() {
            if outcome.is_err() {
                continue;
            }
            match self.await_ack(event, ack, tip).await {
                Ok(()) => acked = Some(event.position),
                Err(stop) => outcome = Err(stop),
            }
        }
        if outcome.is_ok() {
            outcome = sent;
        }
        Published { acked, outcome }
    }

    /// Awaits one acknowledgement and moves the tip past it.
    async fn await_ack(
        &self,
        event: &RecordedEvent,
        ack: AckFuture,
        tip: &mut Tip,
    ) -> Result<(), Stop> {
        match ack.await {
            Ok(ack) if ack.duplicate || ack.sequence != tip.sequence + 1 => {
                // Not where this relay expected it: another relay got there first.
                tracing::info!(relay = %self.config.name, position = event.position, sequence = ack.sequence, "stream moved under the relay; resyncing");
                Err(Stop::Resync)
            }
            Ok(ack) => {
                *tip = Tip {
                    sequence: ack.sequence,
                    position: event.position,
                    event_id: event.event_id,
                };
                Ok(())
            }
            Err(error) => Err(self.failed(event, error)),
        }
    }

    fn failed(&self, event: &RecordedEvent, error: PublishFailure) -> Stop {
        match error.failure {
            Failure::Refused => Stop::Fatal(Box::new(RelayError::Refused {
                relay: self.config.name.clone(),
                position: event.position,
                event_id: event.event_id,
                stream_id: event.stream_id.clone(),
                version: event.version,
                source: error,
            })),
            Failure::Moved => Stop::Resync,
            Failure::Transient => {
                Stop::Retry(format!("publishing position {}: {error}", event.position))
            }
        }
    }

    /// The latest position the relay publishes (0: none).
    async fn head(&self) -> Result<u64, RelayError> {
        let newest = LogRead::backward(u64::MAX, 1).matching(self.config.filter.clone());
        let events = self
            .store
            .read_log(&newest)
            .await
            .map_err(|source| self.store_error(source))?;
        Ok(events.first().map_or(0, |event| event.position))
    }

    async fn load_checkpoint(&self) -> Result<u64, RelayError> {
        self.store
            .load_checkpoint(&self.config.name)
            .await
            .map_err(|source| self.store_error(source))
    }

    async fn save_checkpoint(&self, position: u64) -> Result<(), Stop> {
        self.store
            .save_checkpoint(&self.config.name, position)
            .await
            .map_err(|e| self.store_stop(e))
    }

    fn store_stop(&self, error: StoreError) -> Stop {
        match error {
            StoreError::Busy { reason } => Stop::Retry(reason),
            other => Stop::Fatal(Box::new(self.store_error(other))),
        }
    }

    fn store_error(&self, source: StoreError) -> RelayError {
        RelayError::Store {
            relay: self.config.name.clone(),
            source,
        }
    }

    fn tip_error(&self, source: TipError) -> RelayError {
        match source {
            TipError::Unreachable { source, .. } => self.unreachable(source),
            foreign => RelayError::Foreign {
                relay: self.config.name.clone(),
                source: foreign,
            },
        }
    }

    fn unreachable(&self, source: Box<dyn std::error::Error + Send + Sync>) -> RelayError {
        RelayError::Unreachable {
            relay: self.config.name.clone(),
            source,
        }
    }
}

/// What publishing a page came to.
struct Published {
    /// The last position acknowledged, with every one before it.
    acked: Option<u64>,
    outcome: Result<(), Stop>,
}

/// A relay running as a task; dropping it asks the task to stop.
pub struct RunningRelay {
    name: String,
    lag: watch::Receiver<Lag>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), RelayError>>>,
}

impl RunningRelay {
    /// How far behind the relay is, as of its last page: head minus checkpoint.
    pub fn lag(&self) -> Lag {
        *self.lag.borrow()
    }

    /// Waits until the checkpoint reached `position` (every event up to it acknowledged by
    /// JetStream); if the relay stops first, returns why.
    pub async fn wait_for(&mut self, position: u64) -> Result<(), RelayError> {
        let mut lag = self.lag.clone();
        if lag.wait_for(|lag| lag.checkpoint >= position).await.is_ok() {
            return Ok(());
        }
        Err(match self.finish().await {
            Err(error) => error,
            Ok(()) => self.not_running(),
        })
    }

    /// Stops after the page in hand and returns how the relay ended.
    pub async fn stop(mut self) -> Result<(), RelayError> {
        self.stop.send_replace(true);
        self.finish().await
    }

    async fn finish(&mut self) -> Result<(), RelayError> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|_| Err(self.not_running())),
            None => Err(self.not_running()),
        }
    }

    fn not_running(&self) -> RelayError {
        RelayError::NotRunning {
            relay: self.name.clone(),
        }
    }
}

impl Drop for RunningRelay {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
