//! Reacting to committed events: the handler trait shared by after-commit dispatch and
//! subscriptions, the failure they report, and the metadata of the commands they issue.

use crate::aggregate::Aggregate;
use crate::envelope::EventEnvelope;
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
