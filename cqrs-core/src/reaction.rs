//! Reactions whose effects are commands, committed exactly once: a [`Reactor`] (a process
//! manager, a policy) hears the events of several aggregates and issues commands through a
//! [`Reaction`]; a [`ReactorConsumer`] commits the events of all those commands together with
//! the subscription's checkpoint, in one transaction of a [`TrackingStore`].
//!
//! So an event redelivered after a crash never runs its commands twice, and no aggregate
//! needs to remember which reactions it already applied: either the reaction's events and
//! the checkpoint past its event are both stored, or neither is. A command the target
//! aggregate refuses comes back to the reactor as its domain error, so it can compensate
//! (issue other commands) in the same reaction.
//!
//! ```
//! use cqrs_core::reaction::{Reaction, Reactor};
//! use cqrs_core::testing::toy::{Tally, TallyCommand, TallyEvent};
//! use cqrs_core::{async_trait, EventEnvelope, EventStore, HandlerError, Repository, Sources};
//!
//! /// Mirrors every addition to a tally onto the tally "mirror".
//! struct Mirror<S: EventStore> {
//!     tallies: Repository<Tally, S>,
//! }
//!
//! #[async_trait]
//! impl<S: EventStore> Reactor for Mirror<S> {
//!     type Event = TallyEvent;
//!     fn name(&self) -> &str {
//!         "mirror"
//!     }
//!     fn sources(&self) -> Sources<TallyEvent> {
//!         Sources::of::<Tally>()
//!     }
//!     async fn react(
//!         &self,
//!         event: &EventEnvelope<TallyEvent>,
//!         reaction: &mut Reaction,
//!     ) -> Result<(), HandlerError> {
//!         let TallyEvent::Added { n } = event.event;
//!         if event.stream_id != "Tally-mirror" {
//!             reaction.execute(&self.tallies, "mirror", TallyCommand::Add(n)).await?;
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! Run it with `Subscription::new(name, store.clone(), ReactorConsumer::new(reactor, store))`.

use crate::aggregate::{stream_id, Aggregate};
use crate::codec;
use crate::envelope::{EventEnvelope, RecordedEvent};
use crate::handler::HandlerError;
use crate::log::EventFilter;
use crate::metadata::Metadata;
use crate::parking::ParkingStore;
use crate::repository::{Loaded, Repository, RepositoryError, DEFAULT_CONFLICT_RETRIES};
use crate::sources::Sources;
use crate::store::{EventStore, ExpectedVersion, StoreError};
use crate::subscription::Consumer;
use crate::trace::display_id;
use crate::tracking::{AppendBatch, StreamAppend, TrackingStore};
use async_trait::async_trait;
use std::any::Any;
use std::collections::HashMap;
use tracing::Instrument;

/// Code that reacts to events of several aggregates by issuing commands, each reaction
/// committed exactly once by a [`ReactorConsumer`].
///
/// `react` may run more than once for one event (a concurrency conflict on a target stream
/// re-runs it on fresh state; a crash before the commit runs it again), but only one run's
/// commands are ever committed. So it must have no effect other than the commands it issues
/// through `reaction`: its state is what it loads (its own aggregate's stream, the targets'),
/// never a variable it keeps.
#[async_trait]
pub trait Reactor: Send + Sync + 'static {
    /// What the reactor receives: each source's events wrapped into one type.
    type Event: Send + Sync + 'static;

    /// Names the reactor in errors and traces.
    fn name(&self) -> &str;

    /// The aggregates whose events the reactor takes, and how each becomes an `Event`.
    fn sources(&self) -> Sources<Self::Event>;

    /// Decides the commands `event` calls for, issuing each with
    /// [`Reaction::execute`]. An error fails this delivery (the subscription retries it);
    /// nothing of the reaction is committed.
    async fn react(
        &self,
        event: &EventEnvelope<Self::Event>,
        reaction: &mut Reaction,
    ) -> Result<(), HandlerError>;
}

/// One command a reaction issued, and whether its aggregate took it.
pub struct Issued {
    /// The stream of the aggregate commanded.
    pub stream_id: String,
    /// The refusal's message, if the aggregate refused the command.
    pub refusal: Option<String>,
    command: Box<dyn Any + Send + Sync>,
}

impl Issued {
    /// The command, if it was one of aggregate `A`'s.
    pub fn command<A: Aggregate>(&self) -> Option<&A::Command> {
        self.command.downcast_ref::<A::Command>()
    }
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("stream_id", &self.stream_id)
            .field("refusal", &self.refusal)
            .finish_non_exhaustive()
    }
}

/// A stream a reaction commanded: its state as the reaction's commands left it, and which
/// append of the batch holds their events (none yet: `None`).
struct Commanded {
    state: Box<dyn Any + Send + Sync>,
    append: Option<usize>,
}

/// The commands issued in reaction to one event, not yet committed: each is decided on
/// the target's current state (plus what earlier commands of this reaction did to it), and
/// its events wait for the one batch that commits them all with the checkpoint.
pub struct Reaction {
    metadata: Metadata,
    appends: Vec<StreamAppend>,
    commanded: HashMap<String, Commanded>,
    issued: Vec<Issued>,
}

impl Reaction {
    /// A reaction to `event`: its commands carry [`Metadata::caused_by`] the event (its
    /// correlation id, or the event's id when it has none).
    pub fn caused_by<E>(event: &EventEnvelope<E>) -> Self {
        let mut metadata = Metadata::caused_by(event);
        metadata.correlation_id.get_or_insert(event.event_id);
        Self {
            metadata,
            appends: Vec::new(),
            commanded: HashMap::new(),
            issued: Vec::new(),
        }
    }

    /// The metadata every command of this reaction carries.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Decides `command` on aggregate `id` of `repository` (loaded from the store, or as
    /// this reaction's earlier commands left it) and stages its events for the reaction's
    /// commit. Returns the events, or the aggregate's refusal as
    /// [`RepositoryError::Domain`] (nothing staged) for the reactor to compensate.
    ///
    /// The repository must read the store the [`ReactorConsumer`] commits to. Its
    /// after-commit handlers do not run for these events (a subscription hears them).
    pub async fn execute<A: Aggregate, S: EventStore>(
        &mut self,
        repository: &Repository<A, S>,
        id: &str,
        command: A::Command,
    ) -> Result<Vec<A::Event>, RepositoryError<A::Error>> {
        let stream = stream_id::<A>(id);
        let mut commanded = match self.commanded.remove(&stream) {
            Some(commanded) => commanded,
            None => Commanded {
                state: Box::new(repository.load(id).await?),
                append: None,
            },
        };
        let Some(loaded) = commanded.state.downcast_mut::<Loaded<A>>() else {
            return Err(StoreError::InvalidArgument {
                argument: "id",
                reason: format!(
                    "stream `{stream}` was commanded as another aggregate type in this reaction"
                ),
            }
            .into());
        };
        let decided = loaded.state.handle(command.clone());
        self.issued.push(Issued {
            stream_id: stream.clone(),
            refusal: decided.as_ref().err().map(ToString::to_string),
            command: Box::new(command),
        });
        let events = match decided {
            Ok(events) => events,
            Err(refusal) => {
                self.commanded.insert(stream, commanded);
                return Err(RepositoryError::Domain(refusal));
            }
        };
        let encoded = events
            .iter()
            .map(|event| codec::encode(event, &self.metadata))
            .collect::<Result<Vec<_>, _>>();
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(error) => {
                self.commanded.insert(stream, commanded);
                return Err(error.into());
            }
        };
        for event in &events {
            loaded.state.apply(event);
        }
        if !encoded.is_empty() {
            let index = *commanded.append.get_or_insert_with(|| {
                self.appends.push(StreamAppend {
                    stream_id: stream.clone(),
                    expected: ExpectedVersion::Exact(loaded.version),
                    events: Vec::new(),
                });
                self.appends.len() - 1
            });
            self.appends[index].events.extend(encoded);
        }
        self.commanded.insert(stream, commanded);
        Ok(events)
    }

    /// Every command issued so far, in order, refused ones included.
    pub fn issued(&self) -> &[Issued] {
        &self.issued
    }

    /// The appends the reaction's commands call for, one per stream commanded, each under
    /// the version the stream had when it was loaded.
    pub fn into_batch(self) -> AppendBatch {
        AppendBatch {
            appends: self.appends,
            tracking: None,
        }
    }
}

/// Feeds a [`Reactor`] from a subscription and commits each reaction's commands with the
/// subscription's checkpoint, in one [`TrackingStore::append_batch`]: exactly once.
///
/// A batch that conflicts with another writer on a target stream re-runs the reaction on
/// fresh state, up to the configured retries (then the subscription retries the event). A
/// batch refused because the checkpoint already passed the event (another process committed
/// this reaction first) counts as done.
pub struct ReactorConsumer<R: Reactor, S> {
    reactor: R,
    store: S,
    sources: Sources<R::Event>,
    conflict_retries: u32,
}

impl<R: Reactor, S: TrackingStore> ReactorConsumer<R, S> {
    /// Runs `reactor`, committing to `store` (the store its repositories read).
    pub fn new(reactor: R, store: S) -> Self {
        Self {
            sources: reactor.sources(),
            reactor,
            store,
            conflict_retries: DEFAULT_CONFLICT_RETRIES,
        }
    }

    /// How many times a reaction whose batch conflicted is re-run at once on fresh state.
    pub fn with_conflict_retries(mut self, retries: u32) -> Self {
        self.conflict_retries = retries;
        self
    }

    /// Reacts to `event` and commits the reaction with its position as the checkpoint, or,
    /// for a parked event (`parked`: the list it is on), with its removal from that list.
    async fn react(
        &self,
        subscription: &str,
        event: &RecordedEvent,
        parked: Option<&dyn ParkingStore>,
    ) -> Result<(), HandlerError> {
        let commit = |batch| self.commit(batch, subscription, event, parked.is_some());
        let Some(envelope) = self.sources.decode(event.clone())? else {
            // Not one of the sources' streams: only the checkpoint moves (or the entry goes).
            return commit(AppendBatch::new()).await;
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut reaction = Reaction::caused_by(&envelope);
            if let Err(failure) = self.reactor.react(&envelope, &mut reaction).await {
                // A redelivered event meets the state its committed reaction left (a step
                // already taken is refused): that reaction stands, and this one is moot.
                let committed = match parked {
                    None => self.store.load_checkpoint(subscription).await? >= event.position,
                    Some(parking) => !parking
                        .parked(subscription)
                        .await?
                        .iter()
                        .any(|parked| parked.position == event.position),
                };
                if committed {
                    tracing::info!("reaction committed already; not run again");
                    return Ok(());
                }
                return Err(failure);
            }
            match commit(reaction.into_batch()).await {
                Err(conflict) if attempts <= self.conflict_retries && is_conflict(&conflict) => {
                    tracing::debug!(attempt = attempts, "reaction conflicted; deciding again");
                }
                outcome => return outcome,
            }
        }
    }

    /// Commits `batch` with the event's position as the checkpoint, or (`unparking`) with
    /// the event's removal from the parked list; either refusal that says the reaction is
    /// committed already counts as done.
    async fn commit(
        &self,
        batch: AppendBatch,
        subscription: &str,
        event: &RecordedEvent,
        unparking: bool,
    ) -> Result<(), HandlerError> {
        let committed = if unparking {
            self.store
                .append_batch_unparking(batch, subscription, event.position)
                .await
        } else {
            let batch = batch.tracking(subscription, event.position);
            self.store.append_batch(batch).await
        };
        match committed {
            Ok(_) => Ok(()),
            Err(StoreError::CheckpointPassed { checkpoint, .. }) => {
                tracing::info!(checkpoint, "reaction committed already; not run again");
                Ok(())
            }
            Err(StoreError::NotParked { .. }) => {
                tracing::info!("parked event retried or discarded already; not run again");
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }
}

fn is_conflict(error: &HandlerError) -> bool {
    matches!(
        error.downcast_ref::<StoreError>(),
        Some(StoreError::WrongExpectedVersion { .. })
    )
}

#[async_trait]
impl<R: Reactor, S: TrackingStore> Consumer for ReactorConsumer<R, S> {
    /// The sources' categories.
    fn filter(&self) -> EventFilter {
        self.sources.filter()
    }

    async fn checkpoint(&self, subscription: &str) -> Result<u64, HandlerError> {
        Ok(self.store.load_checkpoint(subscription).await?)
    }

    /// Reacts and commits the reaction with the checkpoint, in a `react` span naming the
    /// reactor, the event and its correlation id.
    async fn consume(&self, subscription: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        let span = tracing::info_span!(
            "react",
            reactor = self.reactor.name(),
            stream = %event.stream_id,
            version = event.version,
            position = event.position,
            event_type = %event.event_type,
            correlation_id = %display_id(event.metadata.correlation_id),
        );
        self.react(subscription, event, None).instrument(span).await
    }

    /// Only the checkpoint moves, in a batch of no append.
    async fn pass(&self, subscription: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.commit(AppendBatch::new(), subscription, event, false)
            .await
    }

    /// Reacts and commits the reaction with the event's removal from the parked list of
    /// this consumer's store, in one [`TrackingStore::append_batch_unparking`]: exactly
    /// once, however many retries race (the others find it gone, and commit nothing). The
    /// consumer's store must be the one the subscription parks in; `parking` is asked only
    /// whether a failed reaction was committed already.
    async fn consume_parked(
        &self,
        subscription: &str,
        event: &RecordedEvent,
        parking: &dyn ParkingStore,
    ) -> Result<(), HandlerError> {
        let span = tracing::info_span!(
            "react",
            reactor = self.reactor.name(),
            stream = %event.stream_id,
            version = event.version,
            position = event.position,
            parked = true,
            correlation_id = %display_id(event.metadata.correlation_id),
        );
        self.react(subscription, event, Some(parking))
            .instrument(span)
            .await
    }

    /// Refused: a reactor's effects are commands, which a replay would issue again.
    async fn reset(&self, subscription: &str) -> Result<(), HandlerError> {
        Err(format!(
            "subscription `{subscription}` feeds reactor `{}`, whose commands cannot be \
             undone: it is never rebuilt (a replay would issue them again)",
            self.reactor.name()
        )
        .into())
    }
}
