//! [`FollowError`]: why a follower stopped. A follower never jumps ahead: what it cannot
//! read in order, it stops on.

use cqrs_core::HandlerError;

/// Why a [`FeedFollower`](crate::client::FeedFollower) stopped.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The feed's head is behind the consumer's checkpoint: the server's log lost events it
    /// had served (a restored backup, another store). Following on would skip or repeat.
    #[error("subscription `{subscription}` has handled up to position {checkpoint}, but the feed's head is at {head}: the feed went backwards")]
    FeedBehind {
        /// The follower's name (its checkpoint's key).
        subscription: String,
        /// The consumer's checkpoint.
        checkpoint: u64,
        /// The head position the feed reported.
        head: u64,
    },
    /// The feed served an event at or before one already delivered: positions must strictly
    /// increase.
    #[error("subscription `{subscription}` got position {position} after {after} from {url}: positions must strictly increase")]
    WentBackwards {
        /// The follower's name.
        subscription: String,
        /// The position of the last event delivered (or the checkpoint).
        after: u64,
        /// The position served next.
        position: u64,
        /// Where it came from.
        url: String,
    },
    /// A page the feed linked to (or holds the checkpoint) is no longer there.
    #[error("feed page {url} is gone (HTTP {status}); the follower stops rather than skip it")]
    PageGone {
        /// The page's URL.
        url: String,
        /// The status it was answered with.
        status: u16,
    },
    /// The feed refused the request itself (`401`, `403`, `400`): trying again will not help.
    #[error("the feed refused {url} with HTTP {status}: {body}")]
    Refused {
        /// The URL asked.
        url: String,
        /// The status it was answered with.
        status: u16,
        /// The answer's body (the feed's JSON error names the parameter).
        body: String,
    },
    /// The feed withheld an event's payload from this caller, so it cannot be consumed.
    #[error("the event at position {position} is redacted for this caller; it cannot be consumed")]
    Redacted {
        /// The event's position.
        position: u64,
    },
    /// The feed kept failing (unreachable, `5xx`, not the JSON expected).
    #[error("feed unavailable after {attempts} attempts, last at {url}: {reason}")]
    Unavailable {
        /// The last URL tried.
        url: String,
        /// How many attempts in a row failed.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The consumer kept failing on an event (or on reading its checkpoint).
    #[error("subscription `{subscription}`: the consumer failed {attempts} times in a row after position {checkpoint}: {source}")]
    Consumer {
        /// The follower's name.
        subscription: String,
        /// Its checkpoint then.
        checkpoint: u64,
        /// How many attempts in a row failed.
        attempts: u32,
        /// The last failure.
        #[source]
        source: HandlerError,
    },
    /// The follower was stopped, or its task ended, before what was awaited.
    #[error("follower `{subscription}` is not running")]
    NotRunning {
        /// The follower's name.
        subscription: String,
    },
}

impl FollowError {
    /// Whether trying again (after a backoff, from the stored checkpoint) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Consumer { .. })
    }
}
