//! What the NATS tests share: a JetStream stream of their own on the machine's server
//! (unique name and subjects, deleted when dropped), events to append, and a read of
//! everything the stream holds.
#![allow(dead_code)] // each test file uses its own part of the kit

use async_nats::jetstream::{self, stream};
use cqrs_core::{EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent};
use cqrs_nats::message;
use std::time::Duration;
use uuid::Uuid;

/// The machine's NATS server (JetStream enabled).
pub const URL: &str = "127.0.0.1:4222";

/// A JetStream stream owned by one test.
pub struct TestStream {
    pub context: jetstream::Context,
    pub name: String,
    pub prefix: String,
    url: String,
}

impl TestStream {
    /// A new stream on `url` for subjects `<prefix>.>`, configured further by `tune`.
    pub async fn on(url: &str, tune: impl FnOnce(&mut stream::Config)) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        let name = format!("cqrs_test_{id}");
        let prefix = format!("cqrs_test_{id}");
        let client = async_nats::connect(url).await.expect("NATS at {url}");
        let context = jetstream::new(client);
        let mut config = stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        };
        tune(&mut config);
        context.create_stream(config).await.expect("create stream");
        Self {
            context,
            name,
            prefix,
            url: url.to_owned(),
        }
    }

    /// A new stream on the machine's server.
    pub async fn new() -> Self {
        Self::on(URL, |_| {}).await
    }

    /// Every message the stream holds, in sequence order: (sequence, subject, event).
    pub async fn messages(&self) -> Vec<(u64, String, RecordedEvent)> {
        let stream = self.context.get_stream(&self.name).await.expect("stream");
        let info = stream.get_info().await.expect("info");
        let mut messages = Vec::new();
        for sequence in info.state.first_sequence..=info.state.last_sequence {
            if info.state.messages == 0 {
                break;
            }
            let raw = stream.get_raw_message(sequence).await.expect("message");
            let event = message::recorded(&raw.headers, &raw.payload, sequence).expect("envelope");
            messages.push((sequence, raw.subject.to_string(), event));
        }
        messages
    }

    /// The positions of the events the stream holds, in sequence order.
    pub async fn positions(&self) -> Vec<u64> {
        self.messages()
            .await
            .into_iter()
            .map(|(_, _, e)| e.position)
            .collect()
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await, and the test's runtime may be gone: delete on a runtime of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let options =
                    async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
                if let Ok(client) = options.connect(url).await {
                    let _ = jetstream::new(client).delete_stream(&name).await;
                }
            });
        })
        .join();
    }
}

/// An event of type `event_type` carrying `payload`.
pub fn event(event_type: &str, payload: String) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload,
        metadata: Metadata::new().with_correlation_id(Uuid::now_v7()),
    }
}

/// Appends one small event to `stream_id`; returns its position.
pub async fn append(store: &impl EventStore, stream_id: &str, n: u64) -> u64 {
    let appended = store
        .append(
            stream_id,
            ExpectedVersion::Any,
            vec![event("Added", format!("{{\"n\":{n}}}"))],
        )
        .await
        .expect("append");
    appended.events[0].position
}
