//! The repository: loads an aggregate by replaying its stream and runs commands against it.

use crate::aggregate::Aggregate;
use crate::codec::{self, DecodeError, EncodeError};
use crate::envelope::EventEnvelope;
use crate::metadata::Metadata;
use crate::store::{EventStore, ExpectedVersion, StoreError};
use crate::upcast::Upcasters;
use std::marker::PhantomData;
use std::sync::Arc;
use uuid::Uuid;

/// Conflicting commands are retried this many times unless configured otherwise.
pub const DEFAULT_CONFLICT_RETRIES: u32 = 3;

/// Events read per page while replaying a stream.
const REPLAY_PAGE: usize = 4096;

/// The stream that holds the events of aggregate `A` with this id: `<A::TYPE>-<id>`.
pub fn stream_id<A: Aggregate>(id: &str) -> String {
    format!("{}-{id}", A::TYPE)
}

/// An aggregate rebuilt from its stream, with the version it was rebuilt at.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state after folding every event.
    pub state: A,
    /// The stream's version (0: no event yet).
    pub version: u64,
}

/// What a command committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<E> {
    /// The stream's version after the command.
    pub version: u64,
    /// The events the command produced, as stored (empty if it produced none).
    pub events: Vec<EventEnvelope<E>>,
}

/// Why a load or a command failed, kept apart so callers can `match` on the cause.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError<E: std::error::Error + 'static> {
    /// The aggregate refused the command; nothing was appended.
    #[error("command refused: {0}")]
    Domain(#[source] E),
    /// Other writers kept changing the stream; the last attempt's conflict is the source.
    #[error("concurrency conflict on stream `{stream_id}` after {attempts} attempts")]
    Conflict {
        /// The contended stream.
        stream_id: String,
        /// How many times the command was tried.
        attempts: u32,
        /// The store's last refusal.
        #[source]
        source: StoreError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A new event could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Loads aggregates of type `A` from store `S` and executes their commands.
pub struct Repository<A: Aggregate, S: EventStore> {
    store: S,
    upcasters: Arc<Upcasters>,
    conflict_retries: u32,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate, S: EventStore + Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            upcasters: self.upcasters.clone(),
            conflict_retries: self.conflict_retries,
            _aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository with no upcasters and [`DEFAULT_CONFLICT_RETRIES`].
    pub fn new(store: S) -> Self {
        Self {
            store,
            upcasters: Arc::new(Upcasters::new()),
            conflict_retries: DEFAULT_CONFLICT_RETRIES,
            _aggregate: PhantomData,
        }
    }

    /// Reads old events through this upcaster chain.
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = Arc::new(upcasters);
        self
    }

    /// How many times a command that hit a concurrency conflict is re-run on fresh state
    /// before [`RepositoryError::Conflict`] is returned (0: never retried).
    pub fn with_conflict_retries(mut self, retries: u32) -> Self {
        self.conflict_retries = retries;
        self
    }

    /// The store underneath, for reads the repository does not cover.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The upcaster chain events are read through.
    pub fn upcasters(&self) -> &Upcasters {
        &self.upcasters
    }

    /// Rebuilds the aggregate by replaying its whole stream; an unknown id gives the
    /// default state at version 0.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        self.load_stream(&stream_id::<A>(id)).await
    }

    async fn load_stream(&self, stream_id: &str) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
        };
        loop {
            let page = self
                .store
                .read_stream(stream_id, loaded.version + 1, REPLAY_PAGE)
                .await?;
            let full = page.len() == REPLAY_PAGE;
            for recorded in &page {
                let event = codec::decode::<A::Event>(recorded, &self.upcasters)?;
                loaded.state.apply(&event);
                loaded.version = recorded.version;
            }
            if !full {
                return Ok(loaded);
            }
        }
    }

    /// Runs a command with fresh metadata (a new correlation id).
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
    ) -> Result<Committed<A::Event>, RepositoryError<A::Error>> {
        self.execute_with(id, command, Metadata::new()).await
    }

    /// Runs a command: load, `handle`, append at the loaded version; on a concurrency
    /// conflict, load and decide again, up to the configured number of retries.
    ///
    /// Every event gets `metadata`, with a new correlation id if it carries none.
    pub async fn execute_with(
        &self,
        id: &str,
        command: A::Command,
        mut metadata: Metadata,
    ) -> Result<Committed<A::Event>, RepositoryError<A::Error>> {
        metadata.correlation_id.get_or_insert_with(Uuid::new_v4);
        let stream_id = stream_id::<A>(id);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let loaded = self.load_stream(&stream_id).await?;
            let events = loaded
                .state
                .handle(command.clone())
                .map_err(RepositoryError::Domain)?;
            if events.is_empty() {
                return Ok(Committed {
                    version: loaded.version,
                    events: Vec::new(),
                });
            }
            let new_events = events
                .iter()
                .map(|event| codec::encode(event, &metadata))
                .collect::<Result<Vec<_>, _>>()?;
            let expected = ExpectedVersion::Exact(loaded.version);
            match self.store.append(&stream_id, expected, new_events).await {
                Ok(appended) => {
                    let events = appended
                        .events
                        .into_iter()
                        .zip(events)
                        .map(|(recorded, event)| EventEnvelope {
                            stream_id: recorded.stream_id,
                            version: recorded.version,
                            position: recorded.position,
                            event_id: recorded.event_id,
                            metadata: recorded.metadata,
                            recorded_at: recorded.recorded_at,
                            event,
                        })
                        .collect();
                    return Ok(Committed {
                        version: appended.version,
                        events,
                    });
                }
                Err(conflict @ StoreError::WrongExpectedVersion { .. }) => {
                    if attempts > self.conflict_retries {
                        return Err(RepositoryError::Conflict {
                            stream_id,
                            attempts,
                            source: conflict,
                        });
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
}
