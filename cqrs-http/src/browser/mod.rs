//! The event browser: server-rendered pages for people (domain experts, auditors) over the
//! same store and visibility hook as the feed: recent streams and subscriptions, a stream's
//! events paged both ways, one event with its payload, metadata, causation parent and the
//! events it caused, a correlation's whole story as a tree, and a live tail that can pause.

mod html;

use crate::app::App;
use crate::error::ApiError;
use crate::params::{encode, number, Params};
use crate::reads::{event_at, event_by_id, parse_id, scan};
use crate::visibility::Caller;
use crate::wire::WireEvent;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use cqrs_core::LogRead;
use html::{escape, event_row, page, pretty_json, EVENT_HEADER};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use uuid::Uuid;

/// Events of a stream shown per page.
const STREAM_PAGE: u64 = 20;
/// [`STREAM_PAGE`] as a read limit.
const STREAM_LIMIT: usize = 20;
/// How far back the home page looks for recently written streams.
const RECENT_EVENTS: usize = 500;
/// Events a trace or a list of caused events shows at most.
const TRACE_LIMIT: usize = 500;

/// The browser's routes, under `/browse`.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/browse", get(home))
        .route("/browse/streams/{stream_id}", get(stream))
        .route("/browse/events/{position}", get(event))
        .route("/browse/correlations/{correlation_id}", get(trace))
        .route("/browse/tail", get(tail))
        .route("/browse/assets/style.css", get(style))
        .route("/browse/assets/tail.js", get(script))
}

/// A browser page, or a failure shown as one.
type Html = Result<Response, BrowserError>;

/// An [`ApiError`] shown as an HTML page with its status.
struct BrowserError(ApiError);

impl From<ApiError> for BrowserError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for BrowserError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = format!("<h1>{}</h1><p>{}</p>", status, escape(&self.0.to_string()));
        let mut response = html_response(page("", "Error", &body, ""));
        *response.status_mut() = status;
        response
    }
}

fn html_response(text: String) -> Response {
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Pages show the store as it is now, to whoever asked.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    response
}

fn caller_of(caller: Option<Extension<Caller>>) -> Option<Caller> {
    caller.map(|Extension(caller)| caller)
}

/// `/browse`: recently written streams, the latest events, and the subscriptions.
async fn home(State(app): State<App>, caller: Option<Extension<Caller>>) -> Html {
    let caller = caller_of(caller);
    let base = &app.config.base_path;
    let recent = app
        .read_log(&LogRead::backward(u64::MAX, RECENT_EVENTS))
        .await?;
    let head = recent.first().map_or(0, |event| event.position);
    let recent = app.shown(caller.as_ref(), recent)?;
    let mut body =
        format!("<h1>Streams</h1><p class=\"muted\">Head of the log: position {head}.</p>");
    body.push_str("<table id=\"streams\"><tr><th>Stream</th><th>Version</th><th>Last event</th><th>At (UTC)</th></tr>");
    let mut seen = HashSet::new();
    for event in recent
        .iter()
        .filter(|event| seen.insert(event.stream_id.clone()))
        .take(30)
    {
        let _ = write!(
            body,
            "<tr><td><a class=\"stream-link\" href=\"{base}/browse/streams/{path}\">{stream}</a></td>\
             <td class=\"num\">{version}</td><td class=\"type\">{kind}</td><td class=\"muted\">{at}</td></tr>",
            path = encode(&event.stream_id),
            stream = escape(&event.stream_id),
            version = event.version,
            kind = escape(&event.event_type),
            at = event.recorded_at.format("%Y-%m-%d %H:%M:%S"),
        );
    }
    body.push_str("</table><h2>Latest events</h2><table id=\"latest\">");
    body.push_str(EVENT_HEADER);
    for event in recent.iter().take(20) {
        body.push_str(&event_row(base, event));
    }
    body.push_str("</table><h2>Subscriptions</h2>");
    match &app.subscriptions {
        Some(subscriptions) => {
            body.push_str("<table id=\"subscriptions\"><tr><th>Subscription</th><th>Checkpoint</th><th>Behind the head</th></tr>");
            for name in &subscriptions.names {
                let checkpoint = subscriptions
                    .checkpoints
                    .load_checkpoint(name)
                    .await
                    .map_err(|error| app.store_error(error))?;
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td class=\"num\">{checkpoint}</td><td class=\"num\">{}</td></tr>",
                    escape(name),
                    head.saturating_sub(checkpoint)
                );
            }
            body.push_str("</table><p class=\"muted\">Behind the head counts positions: for a \
                subscription that takes only some events it is an upper bound.</p>");
        }
        None => body.push_str(
            "<p class=\"muted\">None listed: the store contract has no listing of checkpoints, so \
             the server names the subscriptions it shows (<code>HttpFeed::with_subscriptions</code>).</p>",
        ),
    }
    Ok(html_response(page(base, "Streams", &body, "")))
}

/// `/browse/streams/{stream_id}?from=`: twenty events of the stream from version `from`
/// (default: the newest twenty), with links to older and newer ones.
async fn stream(
    State(app): State<App>,
    Path(stream_id): Path<String>,
    RawQuery(query): RawQuery,
    caller: Option<Extension<Caller>>,
) -> Html {
    let caller = caller_of(caller);
    let base = &app.config.base_path;
    let params = Params::parse(query.as_deref(), &["from"])?;
    let version = app
        .store
        .stream_version(&stream_id)
        .await
        .map_err(|error| app.store_error(error))?
        .ok_or_else(|| ApiError::not_found(format!("no stream `{stream_id}`")))?;
    let newest = version.saturating_sub(STREAM_PAGE - 1).max(1);
    let from = params.number("from")?.unwrap_or(newest).clamp(1, version);
    let events = app
        .store
        .read_stream(&stream_id, from, STREAM_LIMIT)
        .await
        .map_err(|error| app.store_error(error))?;
    let last = events.last().map_or(from, |event| event.version);
    let events = app.shown(caller.as_ref(), events)?;
    let path = format!("{base}/browse/streams/{}", encode(&stream_id));
    let mut pager = String::from("<nav class=\"pager\">");
    if from > 1 {
        let older = from.saturating_sub(STREAM_PAGE).max(1);
        let _ = write!(pager, "<a href=\"{path}?from=1\">Oldest</a><a id=\"older\" href=\"{path}?from={older}\">← Older</a>");
    }
    if last < version {
        let _ = write!(
            pager,
            "<a id=\"newer\" href=\"{path}?from={}\">Newer →</a><a href=\"{path}\">Newest</a>",
            last + 1
        );
    }
    pager.push_str("</nav>");
    let mut body = format!(
        "<h1>Stream {}</h1><p class=\"muted\">Versions {from} to {last} of {version}.</p>{pager}<table id=\"events\">{EVENT_HEADER}",
        escape(&stream_id)
    );
    for event in &events {
        body.push_str(&event_row(base, event));
    }
    body.push_str("</table>");
    body.push_str(&pager);
    Ok(html_response(page(base, &stream_id, &body, "")))
}

/// `/browse/events/{position}`: one event, its payload and metadata, the event that caused
/// it, the events it caused, and a link to its correlation's trace.
async fn event(
    State(app): State<App>,
    Path(position): Path<String>,
    caller: Option<Extension<Caller>>,
) -> Html {
    let caller = caller_of(caller);
    let base = &app.config.base_path;
    let position = number("position", &position)?;
    let stored = event_at(&app, position, caller.as_ref()).await?;
    let event_id = stored.event_id;
    let shown = app.shown(caller.as_ref(), vec![stored])?;
    let Some(event) = shown.first() else {
        return Err(ApiError::not_found(format!("no event at position {position}")).into());
    };
    let parent = match event.metadata.causation_id {
        Some(cause) => match event_by_id(&app, cause, caller.as_ref()).await {
            Ok(parent) => format!(
                "<a id=\"causation-link\" href=\"{base}/browse/events/{}\">{} in {} (version {})</a>",
                parent.position,
                escape(&parent.event_type),
                escape(&parent.stream_id),
                parent.version
            ),
            Err(ApiError::NotFound { .. }) => format!("{cause} <span class=\"muted\">(not in this store)</span>"),
            Err(error) => return Err(error.into()),
        },
        None => "<span class=\"muted\">none: a command from outside started it</span>".to_owned(),
    };
    let correlation = match event.metadata.correlation_id {
        Some(id) => format!("<a id=\"correlation-link\" href=\"{base}/browse/correlations/{id}\">{id}</a> (the whole story as a tree)"),
        None => "<span class=\"muted\">none</span>".to_owned(),
    };
    let caused = scan(
        &app,
        position + 1,
        TRACE_LIMIT,
        |candidate| candidate.metadata.causation_id == Some(event_id),
        |_| String::new(),
    )
    .await?;
    let caused = app.shown(caller.as_ref(), caused.events)?;
    let mut body = format!(
        "<h1><span id=\"event-type\" class=\"type\">{kind}</span> at position {position}</h1>\
         <nav class=\"pager\">{previous}<a href=\"{base}/browse/events/{next}\">Next position →</a></nav><dl id=\"envelope\">\
         <dt>Stream</dt><dd><a id=\"stream-link\" href=\"{base}/browse/streams/{stream_path}\">{stream}</a></dd>\
         <dt>Version</dt><dd id=\"event-version\">{version}</dd><dt>Position</dt><dd>{position}</dd>\
         <dt>Event id</dt><dd id=\"event-id\"><code>{id}</code></dd><dt>Schema version</dt><dd>{schema}</dd>\
         <dt>Recorded at</dt><dd>{at}</dd><dt>Caused by</dt><dd id=\"causation\">{parent}</dd>\
         <dt>Correlation</dt><dd>{correlation}</dd></dl>",
        kind = escape(&event.event_type),
        previous = if position > 1 {
            format!("<a href=\"{base}/browse/events/{}\">← Previous position</a>", position - 1)
        } else {
            String::new()
        },
        next = position + 1,
        stream_path = encode(&event.stream_id),
        stream = escape(&event.stream_id),
        version = event.version,
        id = event.event_id,
        schema = event.schema_version,
        at = event.recorded_at.format("%Y-%m-%d %H:%M:%S%.6f UTC"),
    );
    body.push_str("<h2>Payload</h2>");
    match &event.payload {
        Some(payload) => {
            let _ = write!(
                body,
                "<pre id=\"payload\">{}</pre>",
                pretty_json(payload.get())
            );
        }
        None => body.push_str("<p id=\"payload\" class=\"redacted\">Withheld from you.</p>"),
    }
    let metadata = serde_json::to_string(&event.metadata).unwrap_or_default();
    let _ = write!(
        body,
        "<h2>Metadata</h2><pre id=\"metadata\">{}</pre>",
        pretty_json(&metadata)
    );
    body.push_str("<h2>Events it caused</h2>");
    if caused.is_empty() {
        body.push_str("<p class=\"muted\" id=\"caused\">None.</p>");
    } else {
        let _ = write!(body, "<table id=\"caused\">{EVENT_HEADER}");
        for event in &caused {
            body.push_str(&event_row(base, event));
        }
        body.push_str("</table>");
    }
    Ok(html_response(page(base, &event.event_type, &body, "")))
}

/// `/browse/correlations/{correlation_id}?from=`: every event of one request, as a tree of
/// causes and effects.
async fn trace(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    caller: Option<Extension<Caller>>,
) -> Html {
    let caller = caller_of(caller);
    let base = &app.config.base_path;
    let id = parse_id("correlation_id", &id)?;
    let params = Params::parse(query.as_deref(), &["from"])?;
    let from = params.number("from")?.unwrap_or(1);
    let path = format!("{base}/browse/correlations/{id}");
    let found = scan(
        &app,
        from,
        TRACE_LIMIT,
        |event| event.metadata.correlation_id == Some(id),
        |next| format!("{path}?from={next}"),
    )
    .await?;
    let events = app.shown(caller.as_ref(), found.events)?;
    let ids: HashSet<Uuid> = events.iter().map(|event| event.event_id).collect();
    let mut children: BTreeMap<Option<Uuid>, Vec<&WireEvent>> = BTreeMap::new();
    for event in &events {
        let parent = event
            .metadata
            .causation_id
            .filter(|cause| ids.contains(cause));
        children.entry(parent).or_default().push(event);
    }
    let mut body = format!(
        "<h1>Correlation {id}</h1><p class=\"muted\">{} events; positions {} to {} scanned.</p><ul class=\"tree\" id=\"trace\">",
        events.len(),
        found.scanned_from,
        found.scanned_to
    );
    let mut shown = HashSet::new();
    tree(base, &children, None, &mut shown, &mut body);
    body.push_str("</ul>");
    if let Some(next) = found.next {
        let _ = write!(body, "<p><a href=\"{next}\">Scan further →</a></p>");
    }
    Ok(html_response(page(base, "Correlation", &body, "")))
}

/// The events caused by `parent` (`None`: the roots), each with its own effects below it.
fn tree(
    base: &str,
    children: &BTreeMap<Option<Uuid>, Vec<&WireEvent>>,
    parent: Option<Uuid>,
    shown: &mut HashSet<Uuid>,
    out: &mut String,
) {
    for event in children.get(&parent).into_iter().flatten() {
        if !shown.insert(event.event_id) {
            continue; // causation loops cannot happen in a sound log; never recurse forever
        }
        let _ = write!(
            out,
            "<li><a class=\"type\" href=\"{base}/browse/events/{position}\">{kind}</a> \
             <span class=\"muted\">{stream} v{version}, position {position}</span>",
            position = event.position,
            kind = escape(&event.event_type),
            stream = escape(&event.stream_id),
            version = event.version,
        );
        if children.contains_key(&Some(event.event_id)) {
            out.push_str("<ul>");
            tree(base, children, Some(event.event_id), shown, out);
            out.push_str("</ul>");
        }
        out.push_str("</li>");
    }
}

/// `/browse/tail`: new events as they are appended (SSE), with a pause button.
async fn tail(State(app): State<App>) -> Html {
    let base = &app.config.base_path;
    let head = app.head().await?;
    let body = format!(
        "<h1>Live tail</h1><p><button id=\"tail-toggle\">Pause</button> \
         <span id=\"tail-status\" class=\"muted\">connecting</span> \
         <span class=\"muted\">(from position {head} on, newest first)</span></p>\
         <table>{EVENT_HEADER}<tbody id=\"tail-rows\"></tbody></table>\
         <script src=\"{base}/browse/assets/tail.js\"></script>"
    );
    let data = format!(" data-after=\"{head}\"");
    Ok(html_response(page(base, "Live tail", &body, &data)))
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("style.css"))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("tail.js"))
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
