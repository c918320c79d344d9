//! The other context's side: a JetStream durable consumer feeding an [`InboundReactor`] in
//! another process, with its own store, exactly once.
//!
//! Each message is rebuilt into the sender's envelope ([`message::recorded`]), decoded into
//! the receiving context's own event type by event type name and schema version (through its
//! upcasters: it never shares the sender's Rust types), and handed to the reactor, whose
//! commands are committed by [`TrackingStore::append_batch`] together with the message's
//! JetStream stream sequence as the checkpoint of this inbound. Only then is the message
//! acknowledged. A redelivered message (an acknowledgement lost, a crash between commit and
//! acknowledgement) finds its sequence at or below the checkpoint and does nothing again.
//!
//! Order is kept by the checkpoint, not by the broker's redelivery: at every start (and after
//! any broker failure, or a delivery seen missing) the durable consumer is recreated to
//! deliver from the sequence after the checkpoint, and messages are handled one at a time in
//! delivery order, so no message is ever handled after a later one.

use crate::message::{self, EnvelopeError};
use async_nats::jetstream::{self, consumer};
use async_trait::async_trait;
use cqrs_core::codec::decode_envelope;
use cqrs_core::{
    DecodeError, DomainEvent, EventEnvelope, HandlerError, Reaction, RecordedEvent, StoreError,
    TrackingStore, Upcasters,
};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Code of the receiving context that reacts to another context's events by issuing commands
/// on its own aggregates (see `cqrs_core::Reactor`, its in-process counterpart).
///
/// `react` may run more than once for one message (a conflict re-runs it, a crash before the
/// commit runs it again); only one run's commands are ever committed, so it must have no
/// other effect.
#[async_trait]
pub trait InboundReactor: Send + Sync + 'static {
    /// The receiving context's own type for the sender's events it takes.
    type Event: DomainEvent;

    /// Names the reactor in errors and traces.
    fn name(&self) -> &str;

    /// The sender's event type names (as sent) this reactor takes; other messages only
    /// move past.
    fn event_types(&self) -> BTreeSet<String>;

    /// Brings events sent under older schema versions to `Event`'s current one.
    fn upcasters(&self) -> Upcasters {
        Upcasters::new()
    }

    /// Decides the commands `event` calls for, issuing each with [`Reaction::execute`].
    async fn react(
        &self,
        event: &EventEnvelope<Self::Event>,
        reaction: &mut Reaction,
    ) -> Result<(), HandlerError>;
}

/// Where an inbound reads and how patiently it retries.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// The key of the checkpoint in the receiving store (keep it stable).
    pub name: String,
    /// The durable consumer's name (default: `name`). Two processes running one inbound
    /// may each have their own: the checkpoint still lets each message commit once.
    pub durable: String,
    /// The sender's JetStream stream.
    pub stream: String,
    /// The subjects taken, e.g. `orders.Order.>` (empty: the whole stream).
    pub filter_subject: String,
    /// How long JetStream waits for an acknowledgement before delivering again.
    pub ack_wait: Duration,
    /// Deliveries awaiting acknowledgement at most.
    pub max_ack_pending: i64,
    /// Tries of a failing reaction before the inbound stops.
    pub attempts: u32,
    /// Re-runs of a reaction whose commit conflicted, at once.
    pub conflict_retries: u32,
    /// The wait after the first failure; it doubles up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait; broker failures are retried until stopped.
    pub max_backoff: Duration,
}

impl InboundConfig {
    /// An inbound called `name` reading `filter_subject` of JetStream stream `stream`.
    pub fn new(
        name: impl Into<String>,
        stream: impl Into<String>,
        filter_subject: impl Into<String>,
    ) -> Self {
        let name = name.into();
        Self {
            durable: name.clone(),
            name,
            stream: stream.into(),
            filter_subject: filter_subject.into(),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1024,
            attempts: 5,
            conflict_retries: 3,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Why an inbound stopped.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// A message does not carry a readable envelope; the inbound stopped before it.
    #[error("inbound `{inbound}`: {source}")]
    Envelope {
        /// The inbound.
        inbound: String,
        /// Which message and header.
        #[source]
        source: EnvelopeError,
    },
    /// A message does not decode into the receiving context's type; stopped before it.
    #[error("inbound `{inbound}`: message at JetStream sequence {sequence}: {source}")]
    Decode {
        /// The inbound.
        inbound: String,
        /// The message's JetStream sequence.
        sequence: u64,
        /// The codec's error (stream, version, type, cause).
        #[source]
        source: Box<DecodeError>,
    },
    /// A reaction kept failing; the checkpoint stays before its message.
    #[error(
        "inbound `{inbound}` stopped at JetStream sequence {sequence} (stream `{stream_id}` \
         version {version}, sender position {position}) after {attempts} attempts: {source}"
    )]
    EventFailed {
        /// The inbound.
        inbound: String,
        /// The message's JetStream sequence.
        sequence: u64,
        /// The sender's stream.
        stream_id: String,
        /// The event's version there.
        version: u64,
        /// The event's position in the sender's log.
        position: u64,
        /// How many times it was tried.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: HandlerError,
    },
    /// The receiving store failed in a way retrying does not fix.
    #[error("inbound `{inbound}`: the store failed: {source}")]
    Store {
        /// The inbound.
        inbound: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The inbound's task ended without saying why (it panicked or was aborted).
    #[error("inbound `{inbound}` is not running")]
    NotRunning {
        /// The inbound.
        inbound: String,
    },
}

/// Feeds an [`InboundReactor`] from a JetStream durable consumer; see the [module](self).
pub struct Inbound<R: InboundReactor, S> {
    reactor: R,
    store: S,
    jetstream: jetstream::Context,
    config: InboundConfig,
    event_types: BTreeSet<String>,
    upcasters: Upcasters,
}

/// What ended one consumer session short of a stop.
enum Session {
    /// Recreate the consumer from the checkpoint at once.
    Resync,
    /// Back off, then recreate.
    Retry(String),
}

impl<R: InboundReactor, S: TrackingStore> Inbound<R, S> {
    /// Feeds `reactor` from `jetstream`, committing to `store` (the store its repositories
    /// read).
    pub fn new(reactor: R, store: S, jetstream: jetstream::Context, config: InboundConfig) -> Self {
        Self {
            event_types: reactor.event_types(),
            upcasters: reactor.upcasters(),
            reactor,
            store,
            jetstream,
            config,
        }
    }

    /// Runs the inbound as a task until stopped, or until a message cannot be handled.
    pub fn start(self) -> RunningInbound {
        let (stop, stopped) = watch::channel(false);
        let (progress_sender, progress) = watch::channel(0);
        let name = self.config.name.clone();
        let task = tokio::spawn(async move { self.run(stopped, progress_sender).await });
        RunningInbound {
            name,
            progress,
            stop,
            task: Some(task),
        }
    }

    /// Handles messages until `stopped` is raised (then `Ok`) or a message cannot be
    /// handled, reporting the checkpoint (a JetStream sequence) through `progress`.
    pub async fn run(
        &self,
        mut stopped: watch::Receiver<bool>,
        progress: watch::Sender<u64>,
    ) -> Result<(), InboundError> {
        let mut backoff = self.config.first_backoff;
        loop {
            if *stopped.borrow() {
                return Ok(());
            }
            match self.session(&mut stopped, &progress).await? {
                None => return Ok(()),
                Some(Session::Resync) => backoff = self.config.first_backoff,
                Some(Session::Retry(reason)) => {
                    tracing::warn!(inbound = %self.config.name, %reason, "inbound retrying in {backoff:?}");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stopped.changed() => {}
                    }
                    backoff = backoff.saturating_mul(2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// One life of the durable consumer: recreated after the checkpoint, read until it
    /// fails (`Some`) or the inbound is stopped (`None`).
    async fn session(
        &self,
        stopped: &mut watch::Receiver<bool>,
        progress: &watch::Sender<u64>,
    ) -> Result<Option<Session>, InboundError> {
        let mut checkpoint = match self.store.load_checkpoint(&self.config.name).await {
            Ok(checkpoint) => checkpoint,
            Err(StoreError::Busy { reason }) => return Ok(Some(Session::Retry(reason))),
            Err(source) => return Err(self.store_error(source)),
        };
        progress.send_replace(checkpoint);
        let consumer = match self.consumer(checkpoint).await {
            Ok(consumer) => consumer,
            Err(error) => return Ok(Some(Session::Retry(error.to_string()))),
        };
        let mut messages = match consumer.messages().await {
            Ok(messages) => messages,
            Err(error) => return Ok(Some(Session::Retry(error.to_string()))),
        };
        let mut next_delivery = 1;
        loop {
            let received = tokio::select! {
                received = messages.next() => received,
                _ = stopped.changed() => return Ok(None),
            };
            let message = match received {
                Some(Ok(message)) => message,
                Some(Err(error)) => return Ok(Some(Session::Retry(error.to_string()))),
                None => return Ok(Some(Session::Retry("message stream ended".to_owned()))),
            };
            let (sequence, delivery) = match message.info() {
                Ok(info) => (info.stream_sequence, info.consumer_sequence),
                Err(error) => return Ok(Some(Session::Retry(error.to_string()))),
            };
            if delivery != next_delivery {
                // A delivery went missing (lost on the wire): a later message must not be
                // handled before it, so start again from the checkpoint.
                tracing::info!(inbound = %self.config.name, delivery, expected = next_delivery, "missed a delivery; resyncing");
                return Ok(Some(Session::Resync));
            }
            next_delivery += 1;
            if sequence > checkpoint {
                let empty = async_nats::HeaderMap::new();
                let headers = message.headers.as_ref().unwrap_or(&empty);
                let recorded =
                    message::recorded(headers, &message.payload, sequence).map_err(|source| {
                        InboundError::Envelope {
                            inbound: self.config.name.clone(),
                            source,
                        }
                    })?;
                self.handle(sequence, recorded, stopped).await?;
                checkpoint = sequence;
                progress.send_replace(checkpoint);
            }
            if let Err(error) = message.ack().await {
                // Committed already: a redelivery will find the checkpoint past it.
                tracing::debug!(inbound = %self.config.name, sequence, %error, "ack failed");
            }
        }
    }

    /// The durable consumer, recreated to deliver from the message after `checkpoint`.
    async fn consumer(&self, checkpoint: u64) -> Result<consumer::PullConsumer, async_nats::Error> {
        let stream = self
            .jetstream
            .get_stream_no_info(&self.config.stream)
            .await?;
        // Its delivery state (what it sent, what was acknowledged) is the broker's; the
        // checkpoint is ours, committed with the effects: start over from it.
        let _ = stream.delete_consumer(&self.config.durable).await;
        let deliver_policy = if checkpoint == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: checkpoint + 1,
            }
        };
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(self.config.durable.clone()),
                filter_subject: self.config.filter_subject.clone(),
                deliver_policy,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: self.config.ack_wait,
                max_ack_pending: self.config.max_ack_pending,
                ..Default::default()
            })
            .await?;
        Ok(consumer)
    }

    /// Reacts to the event at JetStream `sequence` and commits the reaction with `sequence`
    /// as the checkpoint, retrying a failing reaction with backoff.
    async fn handle(
        &self,
        sequence: u64,
        recorded: RecordedEvent,
        stopped: &watch::Receiver<bool>,
    ) -> Result<(), InboundError> {
        if !self.event_types.contains(&recorded.event_type) {
            // Not for this context: nothing to commit; a redelivery skips it again.
            return Ok(());
        }
        let (stream_id, version, position) = (
            recorded.stream_id.clone(),
            recorded.version,
            recorded.position,
        );
        let envelope =
            decode_envelope::<R::Event>(recorded, &self.upcasters).map_err(|source| {
                InboundError::Decode {
                    inbound: self.config.name.clone(),
                    sequence,
                    source: Box::new(source),
                }
            })?;
        let span = tracing::info_span!(
            "inbound",
            inbound = %self.config.name,
            reactor = self.reactor.name(),
            sequence,
            stream = %stream_id,
            version,
            position,
        );
        let mut backoff = self.config.first_backoff;
        let mut attempt = 1;
        loop {
            match self
                .react(sequence, &envelope)
                .instrument(span.clone())
                .await
            {
                Ok(()) => return Ok(()),
                Err(source) if attempt >= self.config.attempts.max(1) || *stopped.borrow() => {
                    return Err(InboundError::EventFailed {
                        inbound: self.config.name.clone(),
                        sequence,
                        stream_id,
                        version,
                        position,
                        attempts: attempt,
                        source,
                    })
                }
                Err(error) => {
                    tracing::warn!(parent: &span, attempt, %error, "reaction failed; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2).min(self.config.max_backoff);
                    attempt += 1;
                }
            }
        }
    }

    /// One try: react, commit with the checkpoint; a conflict re-runs the reaction at once.
    async fn react(
        &self,
        sequence: u64,
        envelope: &EventEnvelope<R::Event>,
    ) -> Result<(), HandlerError> {
        let mut conflicts = 0;
        loop {
            let mut reaction = Reaction::caused_by(envelope);
            if let Err(failure) = self.reactor.react(envelope, &mut reaction).await {
                let checkpoint = self.store.load_checkpoint(&self.config.name).await?;
                if checkpoint >= sequence {
                    return Ok(());
                }
                return Err(failure);
            }
            let batch = reaction
                .into_batch()
                .tracking(self.config.name.clone(), sequence);
            match self.store.append_batch(batch).await {
                Ok(_) => return Ok(()),
                Err(StoreError::CheckpointPassed { checkpoint, .. }) => {
                    tracing::info!(checkpoint, "reaction committed already; not run again");
                    return Ok(());
                }
                Err(StoreError::WrongExpectedVersion { .. })
                    if conflicts < self.config.conflict_retries =>
                {
                    conflicts += 1;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    fn store_error(&self, source: StoreError) -> InboundError {
        InboundError::Store {
            inbound: self.config.name.clone(),
            source,
        }
    }
}

/// An inbound running as a task; dropping it asks the task to stop.
pub struct RunningInbound {
    name: String,
    progress: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), InboundError>>>,
}

impl RunningInbound {
    /// The checkpoint: the JetStream sequence of the last message handled.
    pub fn checkpoint(&self) -> u64 {
        *self.progress.borrow()
    }

    /// Waits until every message up to JetStream `sequence` is handled; if the inbound
    /// stops first, returns why.
    pub async fn wait_for(&mut self, sequence: u64) -> Result<(), InboundError> {
        let mut progress = self.progress.clone();
        if progress
            .wait_for(|reached| *reached >= sequence)
            .await
            .is_ok()
        {
            return Ok(());
        }
        Err(match self.finish().await {
            Err(error) => error,
            Ok(()) => self.not_running(),
        })
    }

    /// Stops after the message in hand and returns how the inbound ended.
    pub async fn stop(mut self) -> Result<(), InboundError> {
        self.stop.send_replace(true);
        self.finish().await
    }

    async fn finish(&mut self) -> Result<(), InboundError> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|_| Err(self.not_running())),
            None => Err(self.not_running()),
        }
    }

    fn not_running(&self) -> InboundError {
        InboundError::NotRunning {
            inbound: self.name.clone(),
        }
    }
}

impl Drop for RunningInbound {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
