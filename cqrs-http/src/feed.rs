//! The feed: the global log as fixed-size pages of positions. Archived pages (wholly behind
//! the head) never change and are cached for a year; the head page is revalidated with an
//! ETag of the head position. Every page links to first, previous, next and current, so a
//! client never builds page URLs.

use crate::app::{bytes_response, matches_etag, not_modified, App, Caching};
use crate::error::ApiError;
use crate::params::{number, Params};
use crate::visibility::Caller;
use crate::wire::WireEvent;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use cqrs_core::LogRead;
use serde::Serialize;

/// The parameters every feed page takes.
const PAGE_PARAMS: &[&str] = &["type", "category"];

/// One page of the feed, as served.
#[derive(Serialize)]
struct PageBody {
    /// The page's number, from 1.
    page: u64,
    page_size: u64,
    /// The positions the page covers (events may be fewer: filtered, hidden, or not yet
    /// appended on the head page).
    first_position: u64,
    last_position: u64,
    /// Whether the head is past the page's last position, so it never changes.
    archived: bool,
    /// The newest position in the log (head page only: an archived page never changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    head_position: Option<u64>,
    links: PageLinks,
    events: Vec<WireEvent>,
}

/// Links between pages (RFC 5005 in spirit: `previous` is older, `next` is newer).
#[derive(Serialize)]
struct PageLinks {
    #[serde(rename = "self")]
    this: String,
    first: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    current: String,
}

impl PageLinks {
    fn header(&self) -> String {
        let mut links = vec![
            format!("<{}>; rel=\"self\"", self.this),
            format!("<{}>; rel=\"first\"", self.first),
            format!("<{}>; rel=\"current\"", self.current),
        ];
        if let Some(previous) = &self.previous {
            links.push(format!("<{previous}>; rel=\"prev-archive\""));
        }
        if let Some(next) = &self.next {
            links.push(format!("<{next}>; rel=\"next-archive\""));
        }
        links.join(", ")
    }
}

/// A request for one page, after its parameters were read.
struct PageRequest {
    page: u64,
    params: Params,
    caller: Option<Caller>,
    headers: HeaderMap,
}

/// The strong ETag of archived page `page` (page size included: it fixes the content).
fn archived_etag(app: &App, page: u64) -> String {
    format!("\"page-{}-{page}\"", app.config.page_size)
}

/// `GET /feed`: the head page (the one the next append lands in).
pub(crate) async fn head_page(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref(), PAGE_PARAMS)?;
    let head = app.head().await?;
    let page = head / app.config.page_size + 1;
    let request = PageRequest {
        page,
        params,
        caller: caller.map(|Extension(caller)| caller),
        headers,
    };
    serve(&app, request, head).await
}

/// `GET /feed/pages/{page}`: any page; archived ones come from memory once rendered, and a
/// request holding an archived page's ETag gets `304` without reading the store.
pub(crate) async fn page(
    State(app): State<App>,
    Path(page): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    caller: Option<Extension<Caller>>,
) -> Result<Response, ApiError> {
    let page = number("page", &page)?;
    if page == 0 {
        return Err(ApiError::bad("page", "pages are numbered from 1"));
    }
    let params = Params::parse(query.as_deref(), PAGE_PARAMS)?;
    let caller = caller.map(|Extension(caller)| caller);
    let etag = archived_etag(&app, page);
    if matches_etag(&headers, &etag) {
        return Ok(not_modified(Caching::Immutable, &etag, caller.as_ref()));
    }
    let key = (
        page,
        params.filter_query(),
        caller.as_ref().map(|c| c.name.clone()),
    );
    if let Some(bytes) = app.pages.get(&key) {
        return Ok(with_links(
            bytes_response(bytes, Caching::Immutable, Some(&etag), caller.as_ref()),
            &links(&app, page, true, &params),
        ));
    }
    let head = app.head().await?;
    let request = PageRequest {
        page,
        params,
        caller,
        headers,
    };
    serve(&app, request, head).await
}

/// `GET /feed/at/{position}`: redirects to the page holding `position`.
pub(crate) async fn at(
    State(app): State<App>,
    Path(position): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let position = number("position", &position)?;
    if position == 0 {
        return Err(ApiError::bad("position", "positions start at 1"));
    }
    let params = Params::parse(query.as_deref(), PAGE_PARAMS)?;
    let page = (position - 1) / app.config.page_size + 1;
    let location = app.link(&format!("/feed/pages/{page}{}", query_suffix(&params)));
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    // The page size is fixed per deployment, but a new deployment may change it.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

/// Renders page `request.page` given the head position `head`.
async fn serve(app: &App, request: PageRequest, head: u64) -> Result<Response, ApiError> {
    let size = app.config.page_size;
    let page = request.page;
    let last_position = page.saturating_mul(size);
    let first_position = last_position - size + 1;
    if first_position > head.saturating_add(1) {
        return Err(ApiError::not_found(format!(
            "page {page}: the log's head is at position {head}, in page {}",
            head / size + 1
        )));
    }
    let archived = head >= last_position;
    let caller = request.caller.as_ref();
    let head_etag = format!("\"head-{head}\"");
    if !archived && matches_etag(&request.headers, &head_etag) {
        return Ok(not_modified(Caching::Revalidate, &head_etag, caller));
    }
    let limit = usize::try_from(size).unwrap_or(usize::MAX);
    let read = LogRead::forward(first_position, limit).matching(request.params.filter()?);
    let mut events = app.read_log(&read).await?;
    events.retain(|event| event.position <= last_position);
    let links = links(app, page, archived, &request.params);
    let body = PageBody {
        page,
        page_size: size,
        first_position,
        last_position,
        archived,
        head_position: (!archived).then_some(head),
        links: links_body(app, page, archived, &request.params),
        events: app.shown(caller, events)?,
    };
    let bytes: axum::body::Bytes = serde_json::to_vec(&body)
        .map_err(|error| ApiError::Internal {
            reason: format!("could not write page {page}: {error}"),
        })?
        .into();
    let response = if archived {
        let key = (
            page,
            request.params.filter_query(),
            caller.map(|c| c.name.clone()),
        );
        app.pages.put(key, bytes.clone());
        bytes_response(
            bytes,
            Caching::Immutable,
            Some(&archived_etag(app, page)),
            caller,
        )
    } else {
        bytes_response(bytes, Caching::Revalidate, Some(&head_etag), caller)
    };
    Ok(with_links(response, &links))
}

/// `?type=..&category=..` of the request (empty without a filter).
fn query_suffix(params: &Params) -> String {
    let query = params.filter_query();
    match query.strip_prefix('&') {
        Some(rest) => format!("?{rest}"),
        None => String::new(),
    }
}

fn links_body(app: &App, page: u64, archived: bool, params: &Params) -> PageLinks {
    let query = query_suffix(params);
    let page_link = |n: u64| app.link(&format!("/feed/pages/{n}{query}"));
    PageLinks {
        this: page_link(page),
        first: page_link(1),
        previous: (page > 1).then(|| page_link(page - 1)),
        next: archived.then(|| page_link(page + 1)),
        current: app.link(&format!("/feed{query}")),
    }
}

fn links(app: &App, page: u64, archived: bool, params: &Params) -> String {
    links_body(app, page, archived, params).header()
}

fn with_links(mut response: Response, links: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(links) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}
