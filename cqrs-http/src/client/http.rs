//! [`FeedHttp`]: the follower's HTTP side: GETs with a bearer token, a small cache that
//! revalidates with ETags (`If-None-Match`, `304`), and the sorting of answers into what to
//! retry and what to stop on.

use crate::client::error::FollowError;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How many responses the cache keeps (the pages a follower reads again after a failure,
/// and the head page it revalidates).
const CACHE_ENTRIES: usize = 64;

/// A failed request: worth another try, or not.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Try again after a backoff, from the stored checkpoint.
    Retry(FollowError),
    /// Stop following.
    Stop(FollowError),
}

impl Failure {
    /// The server could not be reached or answered with an error worth retrying.
    pub(crate) fn unavailable(url: &str, reason: impl ToString) -> Self {
        Self::Retry(FollowError::Unavailable {
            url: url.to_owned(),
            attempts: 1,
            reason: reason.to_string(),
        })
    }
}

/// The HTTP client of one follower, with its cache.
pub(crate) struct FeedHttp {
    pub(crate) client: reqwest::Client,
    pub(crate) token: Option<String>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, (String, axum::body::Bytes)>,
    order: VecDeque<String>,
}

impl FeedHttp {
    /// Requests through `client`, with `token` as the bearer token if given.
    pub(crate) fn new(client: reqwest::Client, token: Option<String>) -> Self {
        Self {
            client,
            token,
            cache: Mutex::default(),
        }
    }

    /// A GET of `url`, with the bearer token.
    pub(crate) fn request(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.get(url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// GETs `url` as JSON, revalidating a cached copy by its ETag. `404` and `410` are
    /// [`FollowError::PageGone`]; other `4xx` are [`FollowError::Refused`]; the rest of the
    /// failures are retried.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, Failure> {
        let cached = self.cached(url);
        let mut request = self.request(url);
        if let Some((etag, _)) = &cached {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request
            .send()
            .await
            .map_err(|error| Failure::unavailable(url, error))?;
        let status = response.status();
        let body = match (status, cached) {
            (StatusCode::NOT_MODIFIED, Some((_, body))) => body,
            (status, _) if status.is_success() => {
                let etag = response
                    .headers()
                    .get(ETAG)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let body = response
                    .bytes()
                    .await
                    .map_err(|error| Failure::unavailable(url, error))?;
                if let Some(etag) = etag {
                    self.keep(url, etag, body.clone());
                }
                body
            }
            (status, _) => {
                return Err(refused(
                    url,
                    status,
                    response.text().await.unwrap_or_default(),
                ))
            }
        };
        serde_json::from_slice(&body).map_err(|error| {
            Failure::unavailable(url, format!("the answer is not the JSON expected: {error}"))
        })
    }

    fn cached(&self, url: &str) -> Option<(String, axum::body::Bytes)> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.entries.get(url).cloned()
    }

    fn keep(&self, url: &str, etag: String, body: axum::body::Bytes) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if cache.entries.insert(url.to_owned(), (etag, body)).is_none() {
            cache.order.push_back(url.to_owned());
        }
        while cache.order.len() > CACHE_ENTRIES {
            if let Some(oldest) = cache.order.pop_front() {
                cache.entries.remove(&oldest);
            }
        }
    }
}

/// The failure an unsuccessful `status` means.
pub(crate) fn refused(url: &str, status: StatusCode, body: String) -> Failure {
    match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => Failure::Stop(FollowError::PageGone {
            url: url.to_owned(),
            status: status.as_u16(),
        }),
        status if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS => {
            Failure::Stop(FollowError::Refused {
                url: url.to_owned(),
                status: status.as_u16(),
                body,
            })
        }
        status => Failure::unavailable(url, format!("HTTP {status}: {body}")),
    }
}
