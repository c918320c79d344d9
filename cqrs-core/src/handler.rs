//! Reacting to committed events: the handler traits shared by after-commit dispatch and
//! subscriptions (of one aggregate type, or of several), and the failure they report.

use crate::aggregate::Aggregate;
use crate::envelope::EventEnvelope;
use crate::sources::Sources;
use async_trait::async_trait;

/// Whatever a handler or projection failed with; kept whole so the caller sees the cause.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The events of aggregate `A`, decoded, as a handler receives them.
pub type EventOf<H> = EventEnvelope<<<H as EventHandler>::Aggregate as Aggregate>::Event>;

/// Code that reacts to the committed events of one aggregate type: updates a read model,
/// sends a message, or executes commands on other aggregates.
///
/// The same handler can run after commit in the caller's task
/// ([`Repository::with_after_commit`](crate::Repository::with_after_commit)) or in a
/// durable [`Subscription`](crate::subscription::Subscription). Either way it may see an
/// event more than once (a retry, a restart before the checkpoint was saved), so it should
/// be idempotent, for instance by keying its effects on the event id.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// The aggregate whose events this handler receives; other streams are skipped.
    type Aggregate: Aggregate;

    /// Names the handler in errors and traces.
    fn name(&self) -> &str;

    /// Reacts to one event; an error is reported (after commit) or retried (subscription).
    async fn handle(&self, event: &EventOf<Self>) -> Result<(), HandlerError>;
}

/// Code that reacts to the committed events of several aggregate types, each arriving typed
/// as one `Event` (an enum over the sources, say), in global order: a read model across
/// aggregates, a notifier, a process manager that tolerates at-least-once delivery.
///
/// Fed by a [`HandlerConsumer`](crate::HandlerConsumer) in a
/// [`Subscription`](crate::subscription::Subscription), which reads the log once, filtered
/// to the sources' categories. Every [`EventHandler`] is one (of its one aggregate), so the
/// same consumer runs both. For commands issued exactly once, see
/// [`Reactor`](crate::reaction::Reactor).
#[async_trait]
pub trait MultiEventHandler: Send + Sync + 'static {
    /// What the handler receives: each source's events wrapped into one type.
    type Event: Send + Sync + 'static;

    /// Names the handler in errors and traces.
    fn name(&self) -> &str;

    /// The aggregates whose events the handler takes, and how each becomes an `Event`.
    /// Asked once, when the handler is wrapped in its consumer.
    fn sources(&self) -> Sources<Self::Event>;

    /// Reacts to one event; an error is retried by the subscription.
    async fn handle(&self, event: &EventEnvelope<Self::Event>) -> Result<(), HandlerError>;
}

#[async_trait]
impl<H: EventHandler> MultiEventHandler for H {
    type Event = <H::Aggregate as Aggregate>::Event;

    fn name(&self) -> &str {
        EventHandler::name(self)
    }

    /// The handler's one aggregate, its events as they are.
    fn sources(&self) -> Sources<Self::Event> {
        Sources::of::<H::Aggregate>()
    }

    async fn handle(&self, event: &EventEnvelope<Self::Event>) -> Result<(), HandlerError> {
        EventHandler::handle(self, event).await
    }
}

/// One handler that failed on one committed event.
#[derive(Debug, thiserror::Error)]
#[error("handler `{handler}` failed on stream `{stream_id}` version {version}: {source}")]
pub struct HandlerFailure {
    /// The handler's name.
    pub handler: String,
    /// The stream of the event it failed on.
    pub stream_id: String,
    /// The event's version in that stream.
    pub version: u64,
    /// What it failed with.
    #[source]
    pub source: HandlerError,
}
