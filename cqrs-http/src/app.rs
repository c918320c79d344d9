//! [`App`]: what every route shares (the store, the settings, the visibility hook, the cache
//! of archived pages), and the steps they all take: read the store, decide what the caller
//! sees, answer with the right caching headers.

use crate::config::FeedConfig;
use crate::error::ApiError;
use crate::page_cache::PageCache;
use crate::visibility::{Caller, Shown, Visibility};
use crate::wire::WireEvent;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cqrs_core::{CheckpointStore, EventStore, LogRead, RecordedEvent, StoreError};
use serde::Serialize;
use std::sync::Arc;

/// The subscriptions the browser lists, with where their checkpoints are kept.
#[derive(Clone)]
pub(crate) struct Subscriptions {
    pub(crate) checkpoints: Arc<dyn CheckpointStore>,
    pub(crate) names: Vec<String>,
}

/// The state every route shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) config: Arc<FeedConfig>,
    pub(crate) visibility: Arc<dyn Visibility>,
    pub(crate) pages: Arc<PageCache>,
    pub(crate) subscriptions: Option<Subscriptions>,
}

/// How long a response may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caching {
    /// Never changes (an archived page, an event): a year, `immutable`.
    Immutable,
    /// May change at any time (the head page, a stream): revalidate every time.
    Revalidate,
}

impl App {
    /// A store failure as the answer to give.
    pub(crate) fn store_error(&self, error: StoreError) -> ApiError {
        ApiError::from_store(error, self.config.retry_after)
    }

    /// Reads the log, mapping failures to answers.
    pub(crate) async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, ApiError> {
        self.store
            .read_log(read)
            .await
            .map_err(|error| self.store_error(error))
    }

    /// The position of the newest event in the log (0: none).
    pub(crate) async fn head(&self) -> Result<u64, ApiError> {
        let newest = self.read_log(&LogRead::backward(u64::MAX, 1)).await?;
        Ok(newest.first().map_or(0, |event| event.position))
    }

    /// The events as `caller` may see them: hidden ones left out, redacted ones stripped.
    pub(crate) fn shown(
        &self,
        caller: Option<&Caller>,
        events: Vec<RecordedEvent>,
    ) -> Result<Vec<WireEvent>, ApiError> {
        let mut shown = Vec::with_capacity(events.len());
        for event in events {
            match self.visibility.decide(caller, &event) {
                Shown::Show => {
                    shown.push(WireEvent::shown(event).map_err(|error| ApiError::Internal {
                        reason: error.to_string(),
                    })?)
                }
                Shown::Redact => shown.push(WireEvent::redacted(event)),
                Shown::Hide => {}
            }
        }
        Ok(shown)
    }

    /// A link under the router's base path.
    pub(crate) fn link(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_path)
    }
}

/// `body` as JSON with the caching headers for `caching` (and `etag`, if any). A response to
/// a caller is `private`: what it shows may depend on who asked.
pub(crate) fn json_response(
    body: &impl Serialize,
    caching: Caching,
    etag: Option<&str>,
    caller: Option<&Caller>,
) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(|error| ApiError::Internal {
        reason: format!("could not write the response: {error}"),
    })?;
    Ok(bytes_response(bytes.into(), caching, etag, caller))
}

/// Already serialized JSON `bytes`, with caching headers as [`json_response`].
pub(crate) fn bytes_response(
    bytes: axum::body::Bytes,
    caching: Caching,
    etag: Option<&str>,
    caller: Option<&Caller>,
) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    cache_headers(headers, caching, etag, caller);
    response
}

/// `304 Not Modified` for a request whose `If-None-Match` holds the current `etag`.
pub(crate) fn not_modified(caching: Caching, etag: &str, caller: Option<&Caller>) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    cache_headers(response.headers_mut(), caching, Some(etag), caller);
    response
}

fn cache_headers(
    headers: &mut HeaderMap,
    caching: Caching,
    etag: Option<&str>,
    caller: Option<&Caller>,
) {
    let scope = if caller.is_some() {
        "private"
    } else {
        "public"
    };
    let control = match caching {
        Caching::Immutable => format!("{scope}, max-age=31536000, immutable"),
        Caching::Revalidate => format!("{scope}, no-cache"),
    };
    if let Ok(value) = HeaderValue::from_str(&control) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if caller.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("authorization"));
    }
    if let Some(value) = etag.and_then(|etag| HeaderValue::from_str(etag).ok()) {
        headers.insert(header::ETAG, value);
    }
}

/// Whether the request's `If-None-Match` names `etag` (or is `*`).
pub(crate) fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}
