//! What the HTTP tests share: a server on 127.0.0.1 port 0, appends, a store that can be
//! taken down, and JSON reads.
#![allow(dead_code)] // each test file uses its own part of it

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{
    Appended, EventStore, ExpectedVersion, LogRead, NewEvent, PositionWatch, RecordedEvent,
    StoreError,
};
use cqrs_memory::MemoryStore;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Serves `router` on 127.0.0.1, on a port the system picks; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// Appends one `Tagged` event per tag to `stream`, returning them as stored.
pub async fn append(store: &impl EventStore, stream: &str, tags: &[&str]) -> Vec<RecordedEvent> {
    let events = tags.iter().map(|tag| tagged_event(tag)).collect();
    store
        .append(stream, ExpectedVersion::Any, events)
        .await
        .unwrap()
        .events
}

/// Appends `event` to `stream`.
pub async fn append_one(store: &impl EventStore, stream: &str, event: NewEvent) -> RecordedEvent {
    store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
        .unwrap()
        .events
        .remove(0)
}

/// GET `url`: status, headers and body text.
pub async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    get_with(&reqwest::Client::new(), url, &[]).await
}

/// GET `url` with extra headers.
pub async fn get_with(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// GET `url`, expecting `200`, as JSON.
pub async fn json(url: &str) -> Value {
    let (status, _, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The positions of a JSON list of events.
pub fn positions(events: &Value) -> Vec<u64> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["position"].as_u64().unwrap())
        .collect()
}

/// A header's value as text.
pub fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|value| value.to_str().unwrap())
        .unwrap_or("")
}

/// A memory store that can be taken down: while down, every read fails as a backend would.
#[derive(Clone, Default)]
pub struct Downable {
    pub inner: MemoryStore,
    pub down: Arc<AtomicBool>,
}

impl Downable {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("connection refused".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for Downable {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        self.check()?;
        self.inner.append(stream_id, expected, events).await
    }
    async fn read_stream(
        &self,
        stream_id: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_stream(stream_id, from, limit).await
    }
    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner
            .read_stream_backward(stream_id, from, limit)
            .await
    }
    async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_log(read).await
    }
    async fn read_events_by_id(&self, ids: &[Uuid]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_events_by_id(ids).await
    }
    async fn position_at(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        self.check()?;
        self.inner.position_at(at).await
    }
    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        self.check()?;
        self.inner.stream_version(stream_id).await
    }
    fn appends(&self) -> Option<PositionWatch> {
        self.inner.appends()
    }
}
