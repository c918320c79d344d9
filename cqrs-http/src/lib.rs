//! The event log over HTTP, read-only: a cacheable feed of fixed-size pages for other
//! contexts, a cursor with long-polling and a Server-Sent-Events stream for live tailing,
//! reads of streams, events, causation and correlation, and an event browser; plus (feature
//! `client`) a follower that feeds a `cqrs_core::Consumer` in another process from the feed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cqrs_http::{FeedConfig, HttpFeed};
//! let store = cqrs_memory::MemoryStore::new();
//! let app = HttpFeed::new(store).with_config(FeedConfig::default().with_page_size(100)).router();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Nothing writes through HTTP: every route is a `GET`.

mod app;
mod auth;
mod browser;
#[cfg(feature = "client")]
pub mod client;
mod config;
mod error;
mod feed;
mod live;
mod page_cache;
mod params;
mod reads;
mod visibility;
mod wire;

pub use auth::{bearer_auth, BearerAuth, BearerAuthService};
pub use config::FeedConfig;
pub use error::ApiError;
pub use visibility::{Caller, ShowAll, Shown, Visibility};
pub use wire::{PayloadError, WireEvent};

use app::{App, Subscriptions};
use axum::routing::get;
use axum::Router;
use cqrs_core::{CheckpointStore, EventStore};
use page_cache::PageCache;
use std::sync::Arc;
use tower_http::compression::CompressionLayer;

/// Builds the HTTP routes over one event store: the feed, the reads and the browser.
pub struct HttpFeed {
    store: Arc<dyn EventStore>,
    config: FeedConfig,
    visibility: Arc<dyn Visibility>,
    subscriptions: Option<Subscriptions>,
}

impl HttpFeed {
    /// Serves `store` (any backend, or an `Arc<dyn EventStore>`) with the default settings,
    /// showing every event.
    pub fn new(store: impl EventStore) -> Self {
        Self {
            store: Arc::new(store),
            config: FeedConfig::default(),
            visibility: Arc::new(ShowAll),
            subscriptions: None,
        }
    }

    /// Serves with these settings (page size, limits, waits).
    pub fn with_config(mut self, config: FeedConfig) -> Self {
        self.config = config;
        self
    }

    /// Decides per caller and event what is shown, redacted or hidden.
    pub fn with_visibility(mut self, visibility: impl Visibility) -> Self {
        self.visibility = Arc::new(visibility);
        self
    }

    /// Lists these subscriptions in the browser, with their checkpoints (read from
    /// `checkpoints`) and how far behind the head they are. The store contract has no
    /// listing of checkpoints, so the names are given here.
    pub fn with_subscriptions<I, N>(mut self, checkpoints: impl CheckpointStore, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<String>,
    {
        self.subscriptions = Some(Subscriptions {
            checkpoints: Arc::new(checkpoints),
            names: names.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// The routes (all `GET`), compressed where the client accepts it. Mount them at the
    /// root, or under [`FeedConfig::base_path`] with `Router::nest`.
    pub fn router(self) -> Router {
        // Settings set field by field may be out of range: a page or a read is never empty.
        let config = FeedConfig {
            page_size: self.config.page_size.max(1),
            max_limit: self.config.max_limit.max(1),
            scan_window: self.config.scan_window.max(1),
            ..self.config
        };
        let app = App {
            pages: Arc::new(PageCache::new(config.page_cache_bytes)),
            store: self.store,
            config: Arc::new(config),
            visibility: self.visibility,
            subscriptions: self.subscriptions,
        };
        Router::new()
            .route("/feed", get(feed::head_page))
            .route("/feed/pages/{page}", get(feed::page))
            .route("/feed/at/{position}", get(feed::at))
            .route("/feed/events", get(live::cursor))
            .route("/feed/sse", get(live::sse))
            .route("/streams/{stream_id}", get(reads::stream))
            .route("/events/{position}", get(reads::by_position))
            .route("/events/by-id/{event_id}", get(reads::by_id))
            .route("/events/by-id/{event_id}/caused", get(reads::caused))
            .route("/correlations/{correlation_id}", get(reads::correlation))
            .merge(browser::routes())
            .with_state(app)
            .layer(CompressionLayer::new())
    }
}
