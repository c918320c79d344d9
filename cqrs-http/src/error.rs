//! [`ApiError`]: every failure a route answers with, as a status and a JSON body that says
//! what was wrong and where (the parameter, the id).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cqrs_core::StoreError;
use serde::Serialize;
use std::time::Duration;

/// Why a request was not answered with what it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A query or path parameter is malformed or out of range: `400`.
    #[error("bad parameter `{parameter}`: {reason}")]
    BadParameter {
        /// The parameter as named in the URL (`limit`, `after`, `position`, ...).
        parameter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing is stored under the id or position asked: `404`.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for (`event at position 7`, `page 12`).
        what: String,
    },
    /// The store is down or busy; the client should try again later: `503` with
    /// `Retry-After`.
    #[error("event store unavailable: {reason}")]
    Unavailable {
        /// What the store reported.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// The store returned something it should not (a damaged event): `500`.
    #[error("event store failed: {reason}")]
    Internal {
        /// What failed, with the stream, version or position the store named.
        reason: String,
    },
}

impl ApiError {
    /// A bad `parameter`, because of `reason`.
    pub fn bad(parameter: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::BadParameter {
            parameter: parameter.into(),
            reason: reason.into(),
        }
    }

    /// Nothing found for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadParameter { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A store failure as an answer: a refused argument is the client's `400`, a busy or
    /// failing backend `503` (try again), a damaged event `500`.
    pub fn from_store(error: StoreError, retry_after: Duration) -> Self {
        match error {
            StoreError::InvalidArgument { argument, reason } => Self::bad(argument, reason),
            StoreError::Busy { .. } | StoreError::Backend(_) => Self::Unavailable {
                reason: error.to_string(),
                retry_after,
            },
            other => Self::Internal {
                reason: other.to_string(),
            },
        }
    }
}

/// The JSON body of an error answer.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (kind, parameter) = match &self {
            Self::BadParameter { parameter, .. } => ("bad_parameter", Some(parameter.as_str())),
            Self::NotFound { .. } => ("not_found", None),
            Self::Unavailable { .. } => ("unavailable", None),
            Self::Internal { .. } => ("internal", None),
        };
        let body = ErrorBody {
            error: kind,
            message: self.to_string(),
            parameter,
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        // An error may be gone on the next try: never cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Self::Unavailable { retry_after, .. } = &self {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        response
    }
}
