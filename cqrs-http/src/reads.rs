//! Reads other than the feed: one stream by version (both ways), one event by position or
//! by id, the events an event caused, and every event of a correlation id.

use crate::app::{json_response, App, Caching};
use crate::error::ApiError;
use crate::params::{encode, number, Params};
use crate::visibility::{Caller, Shown};
use crate::wire::WireEvent;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Extension;
use cqrs_core::{LogRead, RecordedEvent};
use serde::Serialize;
use uuid::Uuid;

/// Events read from the log at a time while scanning for causation or correlation ids.
const SCAN_BATCH: usize = 1_000;

/// A page of one stream.
#[derive(Serialize)]
struct StreamBody {
    stream_id: String,
    direction: &'static str,
    events: Vec<WireEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// `GET /streams/{stream_id}?from=&limit=&direction=forward|backward`: the stream's events
/// by version, oldest first from `from` (default 1), or newest first down from `from`
/// (default: the end).
pub(crate) async fn stream(
    State(app): State<App>,
    Path(stream_id): Path<String>,
    RawQuery(query): RawQuery,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let params = Params::parse(query.as_deref(), &["from", "limit", "direction"])?;
    let limit = params.limit(100, app.config.max_limit)?;
    let backward = match params.get("direction").unwrap_or("forward") {
        "forward" => false,
        "backward" => true,
        other => {
            return Err(ApiError::bad(
                "direction",
                format!("{other:?} is neither `forward` nor `backward`"),
            ))
        }
    };
    let from = params.number("from")?;
    let events = if backward {
        let from = from.unwrap_or(u64::MAX);
        app.store
            .read_stream_backward(&stream_id, from, limit)
            .await
    } else {
        app.store
            .read_stream(&stream_id, from.unwrap_or(1), limit)
            .await
    }
    .map_err(|error| app.store_error(error))?;
    let next = match events.last() {
        Some(last) if events.len() == limit && !(backward && last.version <= 1) => {
            let from = if backward {
                last.version - 1
            } else {
                last.version + 1
            };
            let direction = if backward { "backward" } else { "forward" };
            Some(app.link(&format!(
                "/streams/{}?from={from}&limit={limit}&direction={direction}",
                encode(&stream_id)
            )))
        }
        _ => None,
    };
    let body = StreamBody {
        stream_id,
        direction: if backward { "backward" } else { "forward" },
        events: app.shown(caller.as_ref(), events)?,
        next,
    };
    json_response(&body, Caching::Revalidate, None, caller.as_ref())
}

/// The event at `position`, if stored and shown to `caller` (a hidden event is not found).
pub(crate) async fn event_at(
    app: &App,
    position: u64,
    caller: Option<&Caller>,
) -> Result<RecordedEvent, ApiError> {
    let found = app.read_log(&LogRead::forward(position, 1)).await?;
    found
        .into_iter()
        .find(|event| event.position == position)
        .filter(|event| app.visibility.decide(caller, event) != Shown::Hide)
        .ok_or_else(|| ApiError::not_found(format!("no event at position {position}")))
}

/// The event stored under `id`, if shown to `caller`.
pub(crate) async fn event_by_id(
    app: &App,
    id: Uuid,
    caller: Option<&Caller>,
) -> Result<RecordedEvent, ApiError> {
    let found = app
        .store
        .read_events_by_id(&[id])
        .await
        .map_err(|error| app.store_error(error))?;
    found
        .into_iter()
        .next()
        .filter(|event| app.visibility.decide(caller, event) != Shown::Hide)
        .ok_or_else(|| ApiError::not_found(format!("no event with id {id}")))
}

/// `id` as an event or correlation id (`parameter` names it in the error).
pub(crate) fn parse_id(parameter: &str, id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|error| ApiError::bad(parameter, format!("{id:?} is not a UUID: {error}")))
}

/// `GET /events/{position}`: one event; it never changes, so it is cached for a year.
pub(crate) async fn by_position(
    State(app): State<App>,
    Path(position): Path<String>,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let position = number("position", &position)?;
    let event = event_at(&app, position, caller.as_ref()).await?;
    let shown = app.shown(caller.as_ref(), vec![event])?;
    json_response(&shown[0], Caching::Immutable, None, caller.as_ref())
}

/// `GET /events/by-id/{event_id}`: one event by its id.
pub(crate) async fn by_id(
    State(app): State<App>,
    Path(id): Path<String>,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let event = event_by_id(&app, parse_id("event_id", &id)?, caller.as_ref()).await?;
    let shown = app.shown(caller.as_ref(), vec![event])?;
    json_response(&shown[0], Caching::Immutable, None, caller.as_ref())
}

/// What a scan of the log for causation or correlation ids found.
#[derive(Debug, Serialize)]
pub(crate) struct Scan<E> {
    /// The matching events, in log order.
    pub(crate) events: Vec<E>,
    /// The first and last positions looked at.
    pub(crate) scanned_from: u64,
    pub(crate) scanned_to: u64,
    /// Whether the scan reached the end of the log (else `next` continues it).
    pub(crate) complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<String>,
}

/// Scans one window of the log from `from` for events `wanted` takes, at most `limit`.
/// `next_link` builds the URL that continues from a position.
pub(crate) async fn scan(
    app: &App,
    from: u64,
    limit: usize,
    wanted: impl Fn(&RecordedEvent) -> bool,
    next_link: impl Fn(u64) -> String,
) -> Result<Scan<RecordedEvent>, ApiError> {
    let window_end = from.saturating_add(app.config.scan_window.max(1) - 1);
    let mut events = Vec::new();
    let mut at = from.max(1);
    let (scanned_to, complete) = 'scan: loop {
        let batch = app.read_log(&LogRead::forward(at, SCAN_BATCH)).await?;
        let reached_end = batch.len() < SCAN_BATCH;
        for event in batch {
            if event.position > window_end {
                break 'scan (window_end, false);
            }
            at = event.position.saturating_add(1);
            if wanted(&event) {
                events.push(event);
                if events.len() >= limit {
                    break 'scan (at - 1, false);
                }
            }
        }
        if reached_end {
            break (at - 1, true);
        }
    };
    Ok(Scan {
        events,
        scanned_from: from,
        scanned_to,
        complete,
        next: (!complete).then(|| next_link(scanned_to + 1)),
    })
}

/// `GET /events/by-id/{event_id}/caused?from=&limit=`: the events whose causation id is this
/// event's, scanning from just after it.
pub(crate) async fn caused(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let id = parse_id("event_id", &id)?;
    let params = Params::parse(query.as_deref(), &["from", "limit"])?;
    let limit = params.limit(100, app.config.max_limit)?;
    let cause = event_by_id(&app, id, caller.as_ref()).await?;
    let from = params.number("from")?.unwrap_or(0).max(cause.position + 1);
    let found = scan(
        &app,
        from,
        limit,
        |event| event.metadata.causation_id == Some(id),
        |next| {
            app.link(&format!(
                "/events/by-id/{id}/caused?from={next}&limit={limit}"
            ))
        },
    )
    .await?;
    respond_scan(&app, found, caller.as_ref())
}

/// `GET /correlations/{correlation_id}?from=&limit=`: the events carrying this correlation
/// id, scanning the log from `from` (default: the start).
pub(crate) async fn correlation(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let id = parse_id("correlation_id", &id)?;
    let params = Params::parse(query.as_deref(), &["from", "limit"])?;
    let limit = params.limit(100, app.config.max_limit)?;
    let from = params.number("from")?.unwrap_or(1);
    let found = scan(
        &app,
        from,
        limit,
        |event| event.metadata.correlation_id == Some(id),
        |next| app.link(&format!("/correlations/{id}?from={next}&limit={limit}")),
    )
    .await?;
    respond_scan(&app, found, caller.as_ref())
}

fn respond_scan(
    app: &App,
    found: Scan<RecordedEvent>,
    caller: Option<&Caller>,
) -> Result<Response, ApiError> {
    let body = Scan {
        events: app.shown(caller, found.events)?,
        scanned_from: found.scanned_from,
        scanned_to: found.scanned_to,
        complete: found.complete,
        next: found.next,
    };
    json_response(&body, Caching::Revalidate, None, caller)
}
