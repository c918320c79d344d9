//! The security hooks' vocabulary: [`Caller`] (who asks, set by an authentication layer) and
//! [`Visibility`] (what each caller may see of each event: [`Shown`]).

use cqrs_core::RecordedEvent;

/// Who is asking, as an authentication layer established it (see
/// [`bearer_auth`](crate::bearer_auth)), kept in the request's extensions. A response to a
/// request with a caller is `Cache-Control: private`, since what it shows may depend on who
/// asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The caller's name, as the authentication layer knows it.
    pub name: String,
}

/// What a caller sees of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The whole event.
    Show,
    /// Its place, type, ids and links, without payload or custom metadata.
    Redact,
    /// Nothing: the event is left out (positions keep their gaps).
    Hide,
}

/// Decides, per caller and event, what is shown, so that a context publishes only its
/// published events. Any `Fn(Option<&Caller>, &RecordedEvent) -> Shown` is one.
pub trait Visibility: Send + Sync + 'static {
    /// What `caller` (`None`: no authentication layer ran) sees of `event`.
    fn decide(&self, caller: Option<&Caller>, event: &RecordedEvent) -> Shown;
}

impl<F> Visibility for F
where
    F: Fn(Option<&Caller>, &RecordedEvent) -> Shown + Send + Sync + 'static,
{
    fn decide(&self, caller: Option<&Caller>, event: &RecordedEvent) -> Shown {
        self(caller, event)
    }
}

/// Shows every event to everyone: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShowAll;

impl Visibility for ShowAll {
    fn decide(&self, _: Option<&Caller>, _: &RecordedEvent) -> Shown {
        Shown::Show
    }
}
