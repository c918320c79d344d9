//! Following the log as it grows: [`Tail`] (read after a position, waiting for appends up to
//! a deadline), the cursor endpoint with long-polling, and the Server-Sent-Events endpoint.

use crate::app::{json_response, App, Caching};
use crate::error::ApiError;
use crate::params::Params;
use crate::visibility::Caller;
use crate::wire::WireEvent;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use cqrs_core::{EventFilter, LogRead, PositionWatch, RecordedEvent};
use serde::Serialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use tokio::time::Instant;

/// Events an SSE stream reads from the store at a time.
const SSE_BATCH: usize = 256;

/// A reader of the log after a position, that can wait for more.
pub(crate) struct Tail {
    app: App,
    filter: EventFilter,
    /// The position of the last event read (shown or not).
    pub(crate) after: u64,
    appends: Option<PositionWatch>,
}

impl Tail {
    /// Reads events after `after` that `filter` takes.
    pub(crate) fn new(app: App, filter: EventFilter, after: u64) -> Self {
        let appends = app.store.appends();
        Self {
            app,
            filter,
            after,
            appends,
        }
    }

    /// Up to `limit` events after the last one read. When there are none yet, waits for an
    /// append (woken by the store's signal, or reading again every poll interval) until
    /// `deadline`; `None` waits as long as it takes.
    pub(crate) async fn next(
        &mut self,
        limit: usize,
        deadline: Option<Instant>,
    ) -> Result<Vec<RecordedEvent>, ApiError> {
        loop {
            if let Some(appends) = &mut self.appends {
                appends.borrow_and_update();
            }
            let read =
                LogRead::forward(self.after.saturating_add(1), limit).matching(self.filter.clone());
            let events = self.app.read_log(&read).await?;
            if let Some(last) = events.last() {
                self.after = last.position;
                return Ok(events);
            }
            let now = Instant::now();
            let nap = match deadline {
                Some(deadline) if deadline <= now => return Ok(events),
                Some(deadline) => (deadline - now).min(self.app.config.poll_interval),
                None => self.app.config.poll_interval,
            };
            let signalled = async {
                let signalled = match &mut self.appends {
                    Some(appends) => appends.changed().await.is_ok(),
                    None => false,
                };
                if !signalled {
                    // No signal (or its store is gone): the poll is all there is.
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = signalled => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }
}

/// The answer of the cursor endpoint.
#[derive(Serialize)]
struct CursorBody {
    /// The position the read started after.
    after: u64,
    /// Where the next read starts after: the last event read, shown or not.
    last_position: u64,
    events: Vec<WireEvent>,
    links: CursorLinks,
}

#[derive(Serialize)]
struct CursorLinks {
    next: String,
}

/// `GET /feed/events?after=&limit=&wait=&type=&category=`: up to `limit` events after
/// `after`; with `wait` (seconds, capped), holds the request until one arrives.
pub(crate) async fn cursor(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let params = Params::parse(
        query.as_deref(),
        &["after", "limit", "wait", "type", "category"],
    )?;
    let after = params.number("after")?.unwrap_or(0);
    let limit = params.limit(100, app.config.max_limit)?;
    let wait = params
        .number("wait")?
        .map_or(std::time::Duration::ZERO, std::time::Duration::from_secs)
        .min(app.config.max_wait);
    let mut tail = Tail::new(app.clone(), params.filter()?, after);
    let events = tail.next(limit, Some(Instant::now() + wait)).await?;
    let body = CursorBody {
        after,
        last_position: tail.after,
        events: app.shown(caller.as_ref(), events)?,
        links: CursorLinks {
            next: app.link(&format!(
                "/feed/events?after={}&limit={limit}{}",
                tail.after,
                params.filter_query()
            )),
        },
    };
    json_response(&body, Caching::Revalidate, None, caller.as_ref())
}

/// `GET /feed/sse?after=&type=&category=`: every event after `after` (or after the
/// `Last-Event-ID` header; by default after the head: only new events), then each new one
/// as it is appended. Each SSE `id` is the event's position.
pub(crate) async fn sse(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let params = Params::parse(query.as_deref(), &["after", "type", "category"])?;
    let resume = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ApiError::bad("Last-Event-ID", "not text"))
                .and_then(|text| crate::params::number("Last-Event-ID", text.trim()))
        })
        .transpose()?;
    let after = match resume.or(params.number("after")?) {
        Some(after) => after,
        None => app.head().await?,
    };
    let tail = Tail::new(app.clone(), params.filter()?, after);
    let state = (tail, VecDeque::new(), caller.clone(), false);
    let stream = futures_util::stream::unfold(state, |(mut tail, mut ready, caller, done)| {
        async move {
            loop {
                if let Some(event) = ready.pop_front() {
                    return Some((Ok::<_, Infallible>(event), (tail, ready, caller, done)));
                }
                if done {
                    return None;
                }
                match tail.next(SSE_BATCH, None).await {
                    Ok(events) => match tail.app.shown(caller.as_ref(), events) {
                        Ok(shown) => ready.extend(shown.iter().map(sse_event)),
                        Err(error) => {
                            return Some((Ok(error_event(&error)), (tail, ready, caller, true)))
                        }
                    },
                    // The client reconnects with its Last-Event-ID and resumes.
                    Err(error) => {
                        return Some((Ok(error_event(&error)), (tail, ready, caller, true)))
                    }
                }
            }
        }
    });
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(app.config.keep_alive))
        .into_response();
    let control = if caller.is_some() {
        "private, no-cache"
    } else {
        "no-cache"
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(control));
    Ok(response)
}

/// One event as an SSE message: `id` its position, `data` its JSON envelope.
fn sse_event(event: &WireEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_default();
    Event::default().id(event.position.to_string()).data(data)
}

/// The failure that ends a stream, as an `error` event.
fn error_event(error: &ApiError) -> Event {
    let data = serde_json::json!({ "error": error.to_string() });
    Event::default().event("error").data(data.to_string())
}
