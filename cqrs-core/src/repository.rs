//! The repository: rebuilds an aggregate (from a snapshot, a cache entry, or its whole stream),
//! runs commands against it, and loads it as it was at a past version or instant.

use crate::aggregate::{stream_id, Aggregate, DomainEvent};
use crate::backend::recorded_now;
use crate::cache::{AggregateCache, Cached};
use crate::codec::{self, DecodeError, EncodeError};
use crate::envelope::{EventEnvelope, EventRef};
use crate::handler::{EventHandler, HandlerFailure};
use crate::metadata::Metadata;
use crate::snapshot::{Snapshot, SnapshotPolicy, SnapshotStore};
use crate::store::{EventStore, ExpectedVersion, StoreError};
use crate::trace::display_id;
use crate::upcast::Upcasters;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::ops::ControlFlow;
use std::sync::Arc;
use tracing::{field, Instrument, Span};
use uuid::Uuid;

/// Conflicting commands are retried this many times unless configured otherwise.
pub const DEFAULT_CONFLICT_RETRIES: u32 = 3;

/// Events visited per call while replaying a stream: a store that visits in place holds
/// only a page of its own at a time, so a long page costs little memory and lets it read
/// ahead for longer; a store that reads through `read_stream` holds this many events.
const REPLAY_PAGE: usize = 16_384;

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

impl<E> Committed<E> {
    /// The global position of the command's last event (0 if it produced none): what to
    /// wait for to see its consequences, `progress.wait_for(committed.position())`.
    pub fn position(&self) -> u64 {
        self.events.last().map_or(0, |event| event.position)
    }
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
    /// The command's events ARE committed (the stream is at `version`), but after-commit
    /// handlers failed on them; their effects (a read model, a message) are missing until
    /// repaired, for instance by a subscription rebuilding them.
    #[error(
        "events committed to stream `{stream_id}` (now at version {version}), but {} \
         after-commit handler run(s) failed; first: {}",
        .failures.len(),
        .failures.first().map_or(String::new(), ToString::to_string)
    )]
    AfterCommit {
        /// The stream the events were committed to.
        stream_id: String,
        /// Its version after the command.
        version: u64,
        /// The global position of the command's last event (what a subscription that
        /// repairs the effects would be waited for up to).
        position: u64,
        /// Every handler that failed, with the event it failed on.
        failures: Vec<HandlerFailure>,
    },
}

/// Restores snapshots of `A` and saves new ones; erased so that `Repository<A, S>` needs no
/// serde bounds unless snapshots are switched on.
#[async_trait]
trait Snapshotting<A>: Send + Sync {
    fn policy(&self) -> SnapshotPolicy;
    /// The latest usable snapshot at or below `at_most`; anything unusable reads as none.
    async fn restore(&self, stream_id: &str, at_most: u64) -> Option<Loaded<A>>;
    /// Saves the state; a failure is dropped, snapshots being only a cache of the events.
    async fn save(&self, stream_id: &str, state: &A, version: u64);
}

struct SnapshotsIn<T> {
    store: T,
    policy: SnapshotPolicy,
}

#[async_trait]
impl<A, T> Snapshotting<A> for SnapshotsIn<T>
where
    A: Aggregate + Serialize + DeserializeOwned,
    T: SnapshotStore,
{
    fn policy(&self) -> SnapshotPolicy {
        self.policy
    }

    async fn restore(&self, stream_id: &str, at_most: u64) -> Option<Loaded<A>> {
        let snapshot = self.store.load_snapshot(stream_id).await.ok()??;
        if snapshot.state_version != self.policy.state_version || snapshot.version > at_most {
            return None;
        }
        let state = serde_json::from_str(&snapshot.state).ok()?;
        Some(Loaded {
            state,
            version: snapshot.version,
        })
    }

    async fn save(&self, stream_id: &str, state: &A, version: u64) {
        let Ok(state) = serde_json::to_string(state) else {
            return;
        };
        let snapshot = Snapshot {
            stream_id: stream_id.to_owned(),
            version,
            state_version: self.policy.state_version,
            state,
            taken_at: recorded_now(),
        };
        let _ = self.store.save_snapshot(snapshot).await;
    }
}

/// The event types of committed events, formatted only when a trace is written.
struct EventTypes<'a, E>(&'a [EventEnvelope<E>]);

impl<E: DomainEvent> std::fmt::Debug for EventTypes<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|envelope| envelope.event.event_type()))
            .finish()
    }
}

/// The version that follows `version` in a stream; none follows `u64::MAX`, which only a
/// damaged snapshot or event can claim.
fn after(stream_id: &str, version: u64) -> Result<u64, StoreError> {
    version.checked_add(1).ok_or_else(|| StoreError::Corrupt {
        stream_id: stream_id.to_owned(),
        version,
        position: None,
        reason: "no version follows it".to_owned(),
    })
}

/// Checks that `recorded` is the event after `version` in its stream. A stream is exactly
/// versions 1..n, so a missing, repeated or out-of-order version, or 0, is damage to report,
/// never something to fold (or to append on top of).
fn check_next(stream_id: &str, version: u64, recorded: EventRef<'_>) -> Result<(), StoreError> {
    let expected = after(stream_id, version)?;
    let found = recorded.version;
    let (version, position, reason) = if found == expected {
        return Ok(());
    } else if found == 0 {
        let reason = "stream versions start at 1".to_owned();
        (0, Some(recorded.position), reason)
    } else if found > expected {
        // Named by the version that is missing here, which has no position to give.
        let reason = format!("missing: version {found} was read in its place");
        (expected, None, reason)
    } else {
        let reason = format!("read after version {version}: a repeated or out-of-order version");
        (found, Some(recorded.position), reason)
    };
    Err(StoreError::Corrupt {
        stream_id: stream_id.to_owned(),
        version,
        position,
        reason,
    })
}

/// How far a replay goes.
#[derive(Clone, Copy)]
enum Until {
    End,
    Version(u64),
    Time(DateTime<Utc>),
}

/// Loads aggregates of type `A` from store `S` and executes their commands.
pub struct Repository<A: Aggregate, S: EventStore> {
    store: S,
    upcasters: Arc<Upcasters>,
    conflict_retries: u32,
    snapshots: Option<Arc<dyn Snapshotting<A>>>,
    cache: Option<Arc<AggregateCache<A>>>,
    after_commit: Vec<Arc<dyn EventHandler<Aggregate = A>>>,
}

impl<A: Aggregate, S: EventStore + Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            upcasters: self.upcasters.clone(),
            conflict_retries: self.conflict_retries,
            snapshots: self.snapshots.clone(),
            cache: self.cache.clone(),
            after_commit: self.after_commit.clone(),
        }
    }
}

impl<A, S> Repository<A, S>
where
    A: Aggregate + Serialize + DeserializeOwned,
    S: EventStore + SnapshotStore + Clone,
{
    /// Takes a snapshot each time a command crosses a multiple of the policy's interval,
    /// after the append commits (a failing snapshot never fails the command), and loads
    /// from the latest usable snapshot plus the events after it. A snapshot that no longer
    /// decodes, or of another state version, is ignored and the stream replayed.
    pub fn with_snapshots(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshots = Some(Arc::new(SnapshotsIn {
            store: self.store.clone(),
            policy,
        }));
        self
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository with no upcasters, no snapshots, no cache and
    /// [`DEFAULT_CONFLICT_RETRIES`].
    pub fn new(store: S) -> Self {
        Self {
            store,
            upcasters: Arc::new(Upcasters::new()),
            conflict_retries: DEFAULT_CONFLICT_RETRIES,
            snapshots: None,
            cache: None,
            after_commit: Vec::new(),
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

    /// Keeps up to `entries` recently commanded aggregates in memory with their versions,
    /// so a command on a hot aggregate reads only the events it has not seen. Other writers
    /// (other repositories, other processes) stay safe: those events are read before
    /// deciding, and one that lands in between makes the append conflict and the command
    /// run again on the caught-up state. Clones of this repository share the cache.
    pub fn with_cache(mut self, entries: usize) -> Self {
        self.cache = Some(Arc::new(AggregateCache::new(entries)));
        self
    }

    /// Runs `handler` on every event a command of this repository commits, once the append
    /// is durable, in the caller's task, before `execute` returns. Handlers run in the order
    /// they were added. A failing handler does not undo the events: `execute` then returns
    /// [`RepositoryError::AfterCommit`], which says the events are stored; that handler is
    /// not given the command's later events, the other handlers still run. Nothing re-runs
    /// a failed handler; when a reaction must not be lost, use a
    /// [`Subscription`](crate::subscription::Subscription) instead.
    pub fn with_after_commit(mut self, handler: impl EventHandler<Aggregate = A>) -> Self {
        self.after_commit.push(Arc::new(handler));
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

    /// Rebuilds the aggregate from its latest snapshot (if enabled) and the events after
    /// it; an unknown id gives the default state at version 0. A stream that is not exactly
    /// versions 1..n (one missing, repeated, out of order or 0, or a snapshot past its end)
    /// is [`StoreError::Corrupt`], here and in every command on it.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        self.rebuild(&stream_id::<A>(id), Until::End).await
    }

    /// The span of a load: the stream, and the version it reached.
    fn load_span(stream_id: &str) -> Span {
        tracing::debug_span!("load", stream = %stream_id, version = field::Empty)
    }

    /// The aggregate as it was at `version` (or at its current version, if lower): what it
    /// looked like when a past decision was made.
    pub async fn load_at_version(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        self.rebuild(&stream_id::<A>(id), Until::Version(version))
            .await
    }

    /// The aggregate as it was at instant `at`: every event recorded at or before it.
    pub async fn load_as_of(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        self.rebuild(&stream_id::<A>(id), Until::Time(at)).await
    }

    async fn rebuild(
        &self,
        stream_id: &str,
        until: Until,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let at_most = match until {
            Until::End => u64::MAX,
            Until::Version(version) => version,
            // Where a snapshot's last event falls in time is not kept: replay it all.
            Until::Time(_) => 0,
        };
        let span = Self::load_span(stream_id);
        let mut loaded = self
            .restore(stream_id, at_most)
            .instrument(span.clone())
            .await?;
        self.catch_up(stream_id, &mut loaded, until)
            .instrument(span.clone())
            .await?;
        span.record("version", loaded.version);
        Ok(loaded)
    }

    /// The latest usable snapshot at or below `at_most`, or the initial state.
    async fn restore(&self, stream_id: &str, at_most: u64) -> Result<Loaded<A>, StoreError> {
        let restored = match &self.snapshots {
            Some(snapshots) if at_most > 0 => snapshots.restore(stream_id, at_most).await,
            _ => None,
        };
        let Some(restored) = restored else {
            return Ok(Loaded {
                state: A::default(),
                version: 0,
            });
        };
        self.check_reaches(stream_id, restored.version).await?;
        Ok(restored)
    }

    /// Checks that the stream holds its event at `version`, where a snapshot was taken: the
    /// tail read after it cannot tell a stream that ends there from one that ends before
    /// (whose events were lost, so appending on top of the snapshot would hide it).
    async fn check_reaches(&self, stream_id: &str, version: u64) -> Result<(), StoreError> {
        if version == 0 {
            return Ok(());
        }
        let page = self.store.read_stream(stream_id, version, 1).await?;
        match page.first() {
            Some(recorded) if recorded.version == version => Ok(()),
            _ => Err(StoreError::Corrupt {
                stream_id: stream_id.to_owned(),
                version,
                position: None,
                reason: "missing, though the stream's snapshot was taken at this version"
                    .to_owned(),
            }),
        }
    }

    /// Folds the stream's events after `loaded.version` into `loaded`, up to `until`,
    /// refusing anything but the versions that follow it, one by one ([`check_next`]).
    async fn catch_up(
        &self,
        stream_id: &str,
        loaded: &mut Loaded<A>,
        until: Until,
    ) -> Result<(), RepositoryError<A::Error>> {
        loop {
            let limit = match until {
                Until::Version(version) => {
                    let left = version.saturating_sub(loaded.version);
                    usize::try_from(left).unwrap_or(usize::MAX).min(REPLAY_PAGE)
                }
                Until::End | Until::Time(_) => REPLAY_PAGE,
            };
            if limit == 0 {
                return Ok(());
            }
            let from = after(stream_id, loaded.version)?;
            // Each event is decoded where the store holds it; the first failure stops the
            // read and is returned once it has.
            let mut failed: Option<RepositoryError<A::Error>> = None;
            let mut reached_until = false;
            let mut fold = |stored: EventRef<'_>| {
                let folded = check_next(stream_id, loaded.version, stored)
                    .map_err(RepositoryError::from)
                    .and_then(|()| {
                        if matches!(until, Until::Time(at) if stored.recorded_at > at) {
                            reached_until = true;
                            return Ok(());
                        }
                        let event = codec::decode::<A::Event>(stored, &self.upcasters)?;
                        loaded.state.apply(&event);
                        loaded.version = stored.version;
                        Ok(())
                    });
                match folded {
                    Ok(()) if !reached_until => ControlFlow::Continue(()),
                    Ok(()) => ControlFlow::Break(()),
                    Err(error) => {
                        failed = Some(error);
                        ControlFlow::Break(())
                    }
                }
            };
            let visited = self
                .store
                .visit_stream(stream_id, from, limit, &mut fold)
                .await?;
            if let Some(error) = failed {
                return Err(error);
            }
            if reached_until || visited < limit {
                return Ok(());
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
    /// conflict, read the events that won and decide again, up to the configured number of
    /// retries. Then runs the after-commit handlers on the committed events.
    ///
    /// Every event gets `metadata`, with a new correlation id if it carries none. The whole
    /// run is traced in an `execute` span (aggregate, stream, correlation id, version) with
    /// `load`, `append` and `handler` spans inside it.
    pub async fn execute_with(
        &self,
        id: &str,
        command: A::Command,
        mut metadata: Metadata,
    ) -> Result<Committed<A::Event>, RepositoryError<A::Error>> {
        let correlation_id = *metadata.correlation_id.get_or_insert_with(Uuid::new_v4);
        let stream_id = stream_id::<A>(id);
        let span = tracing::info_span!(
            "execute",
            aggregate = A::TYPE,
            stream = %stream_id,
            correlation_id = %correlation_id,
            causation_id = %display_id(metadata.causation_id),
            version = field::Empty,
        );
        let recorder = span.clone();
        async {
            let committed = self
                .decide_and_append(&stream_id, command, &metadata)
                .await?;
            recorder.record("version", committed.version);
            // Field values are only evaluated when someone listens: no cost otherwise.
            tracing::info!(
                version = committed.version,
                events = ?EventTypes(&committed.events),
                "committed"
            );
            self.run_after_commit(&stream_id, &committed).await?;
            Ok(committed)
        }
        .instrument(span)
        .await
    }

    /// Load, handle, append; retried on conflicts.
    async fn decide_and_append(
        &self,
        stream_id: &str,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<Committed<A::Event>, RepositoryError<A::Error>> {
        let mut loaded = match self.cache.as_ref().and_then(|c| c.take(stream_id)) {
            Some(cached) => Loaded {
                state: cached.state,
                version: cached.version,
            },
            None => self.restore(stream_id, u64::MAX).await?,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let span = Self::load_span(stream_id);
            self.catch_up(stream_id, &mut loaded, Until::End)
                .instrument(span.clone())
                .await?;
            span.record("version", loaded.version);
            let events = match loaded.state.handle(command.clone()) {
                Ok(events) => events,
                Err(refusal) => {
                    tracing::info!(error = %refusal, "command refused");
                    self.keep(stream_id, loaded);
                    return Err(RepositoryError::Domain(refusal));
                }
            };
            if events.is_empty() {
                let version = loaded.version;
                self.keep(stream_id, loaded);
                return Ok(Committed {
                    version,
                    events: Vec::new(),
                });
            }
            let new_events = events
                .iter()
                .map(|event| codec::encode(event, metadata))
                .collect::<Result<Vec<_>, _>>()?;
            let expected = ExpectedVersion::Exact(loaded.version);
            let span = tracing::info_span!(
                "append",
                stream = %stream_id,
                expected = loaded.version,
                events = events.len(),
                version = field::Empty,
            );
            let appended = self
                .store
                .append(stream_id, expected, new_events)
                .instrument(span.clone())
                .await;
            match appended {
                Ok(appended) => {
                    span.record("version", appended.version);
                    for event in &events {
                        loaded.state.apply(event);
                    }
                    let before = loaded.version;
                    loaded.version = appended.version;
                    if let Some(snapshots) = &self.snapshots {
                        if snapshots.policy().is_due(before, loaded.version) {
                            snapshots
                                .save(stream_id, &loaded.state, loaded.version)
                                .await;
                        }
                    }
                    self.keep(stream_id, loaded);
                    let events = appended
                        .events
                        .into_iter()
                        .zip(events)
                        .map(|(recorded, event)| recorded.into_envelope(event))
                        .collect();
                    return Ok(Committed {
                        version: appended.version,
                        events,
                    });
                }
                Err(conflict @ StoreError::WrongExpectedVersion { .. }) => {
                    tracing::debug!(attempt = attempts, "concurrency conflict");
                    if attempts > self.conflict_retries {
                        return Err(RepositoryError::Conflict {
                            stream_id: stream_id.to_owned(),
                            attempts,
                            source: conflict,
                        });
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Runs every after-commit handler on every committed event, collecting failures.
    async fn run_after_commit(
        &self,
        stream_id: &str,
        committed: &Committed<A::Event>,
    ) -> Result<(), RepositoryError<A::Error>> {
        let mut failures = Vec::new();
        for handler in &self.after_commit {
            for event in &committed.events {
                let span = tracing::info_span!(
                    "handler",
                    handler = handler.name(),
                    stream = %event.stream_id,
                    version = event.version,
                );
                if let Err(source) = handler.handle(event).instrument(span).await {
                    tracing::warn!(handler = handler.name(), error = %source, "after-commit handler failed");
                    failures.push(HandlerFailure {
                        handler: handler.name().to_owned(),
                        stream_id: event.stream_id.clone(),
                        version: event.version,
                        source,
                    });
                    // A handler that missed an event is not given the ones after it: an
                    // order-dependent one (a read model) would apply them out of context.
                    break;
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RepositoryError::AfterCommit {
                stream_id: stream_id.to_owned(),
                version: committed.version,
                position: committed.events.last().map_or(0, |event| event.position),
                failures,
            })
        }
    }

    /// Puts a state that is correct as of its version back in the cache, if there is one.
    fn keep(&self, stream_id: &str, loaded: Loaded<A>) {
        if let Some(cache) = &self.cache {
            cache.put(
                stream_id,
                Cached {
                    state: loaded.state,
                    version: loaded.version,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::recorded_now;
    use crate::envelope::RecordedEvent;
    use crate::metadata::Metadata;

    fn at(version: u64) -> RecordedEvent {
        RecordedEvent {
            stream_id: "S-1".into(),
            version,
            position: 9,
            event_id: Uuid::nil(),
            event_type: "E".into(),
            schema_version: 1,
            payload: "null".into(),
            metadata: Metadata::new(),
            recorded_at: recorded_now(),
        }
    }

    fn corrupt_at(result: Result<(), StoreError>) -> (u64, Option<u64>) {
        match result {
            Err(StoreError::Corrupt {
                stream_id,
                version,
                position,
                ..
            }) if stream_id == "S-1" => (version, position),
            other => panic!("expected Corrupt on S-1, got {other:?}"),
        }
    }

    #[test]
    fn only_the_next_version_follows() {
        assert!(check_next("S-1", 0, EventRef::from(&at(1))).is_ok());
        assert!(check_next("S-1", 41, EventRef::from(&at(42))).is_ok());
        assert_eq!(
            corrupt_at(check_next("S-1", 0, EventRef::from(&at(0)))),
            (0, Some(9))
        );
        assert_eq!(
            corrupt_at(check_next("S-1", 0, EventRef::from(&at(2)))),
            (1, None)
        );
        assert_eq!(
            corrupt_at(check_next("S-1", 5, EventRef::from(&at(5)))),
            (5, Some(9))
        );
        assert_eq!(
            corrupt_at(check_next("S-1", 5, EventRef::from(&at(3)))),
            (3, Some(9))
        );
    }

    #[test]
    fn nothing_follows_the_last_version_there_is() {
        let result = check_next("S-1", u64::MAX, EventRef::from(&at(u64::MAX)));
        assert_eq!(corrupt_at(result), (u64::MAX, None));
        assert!(after("S-1", u64::MAX).is_err());
    }
}
