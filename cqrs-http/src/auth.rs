//! [`BearerAuth`]: an example authentication layer. It maps `Authorization: Bearer <token>`
//! to a [`Caller`] in the request's extensions and answers anything else with `401`; write
//! your own the same way (any `tower` layer that inserts a `Caller` works with the
//! visibility hook).

use crate::visibility::Caller;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// A `tower` layer that lets in requests carrying one of its bearer tokens, each token naming
/// a caller.
#[derive(Debug, Clone, Default)]
pub struct BearerAuth {
    tokens: Arc<HashMap<String, Caller>>,
}

/// A [`BearerAuth`] layer for these `(token, caller name)` pairs.
pub fn bearer_auth<I, T, N>(tokens: I) -> BearerAuth
where
    I: IntoIterator<Item = (T, N)>,
    T: Into<String>,
    N: Into<String>,
{
    let tokens = tokens
        .into_iter()
        .map(|(token, name)| (token.into(), Caller { name: name.into() }))
        .collect();
    BearerAuth {
        tokens: Arc::new(tokens),
    }
}

impl BearerAuth {
    /// The caller whose token the request carries.
    fn caller<B>(&self, request: &Request<B>) -> Option<Caller> {
        let value = request
            .headers()
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let token = value.strip_prefix("Bearer ")?.trim();
        self.tokens.get(token).cloned()
    }
}

impl<S> Layer<S> for BearerAuth {
    type Service = BearerAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuthService {
            auth: self.clone(),
            inner,
        }
    }
}

/// The service [`BearerAuth`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct BearerAuthService<S> {
    auth: BearerAuth,
    inner: S,
}

impl<S> Service<Request<Body>> for BearerAuthService<S>
where
    S: Service<Request<Body>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        match self.auth.caller(&request) {
            Some(caller) => {
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            None => Box::pin(async { Ok(unauthorized()) }),
        }
    }
}

fn unauthorized() -> Response {
    let body = serde_json::json!({
        "error": "unauthorized",
        "message": "a valid `Authorization: Bearer <token>` header is required",
    });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
