//! What an application registers so that the command line knows its types: each
//! aggregate's event decoder (with its upcasters), for `verify --decode`, and its
//! subscriptions and projections, for `rebuild` and `parked retry`.

use cqrs_core::codec::{self, DecodeError};
use cqrs_core::{
    category, is_stream_of, Aggregate, RecordedEvent, StoreError, Subscription, Upcasters,
};
use cqrs_sqlite::{MultiProjection, SqliteStore};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Decodes one stored event into its aggregate's event type and drops it.
type Decoder = Arc<dyn Fn(&RecordedEvent) -> Result<(), DecodeError> + Send + Sync>;

/// Builds a registered subscription on an open SQLite store.
pub type BuildSubscription = Arc<
    dyn Fn(
            SqliteStore,
        )
            -> Pin<Box<dyn Future<Output = Result<Subscription<SqliteStore>, StoreError>> + Send>>
        + Send
        + Sync,
>;

/// One registered aggregate.
#[derive(Clone)]
struct AggregateEntry {
    name: &'static str,
    owns: fn(&str) -> bool,
    decode: Decoder,
}

/// An application's registrations (empty for the generic `cqrs` binary).
#[derive(Clone, Default)]
pub struct Registry {
    aggregates: Vec<AggregateEntry>,
    subscriptions: BTreeMap<String, BuildSubscription>,
}

/// What [`Registry::decode`] made of one event.
#[derive(Debug)]
pub enum Decoded {
    /// It decodes into its aggregate's current event type.
    Ok,
    /// No registered aggregate owns its stream.
    Unregistered,
    /// It does not decode.
    Failed(DecodeError),
}

impl Registry {
    /// Registers aggregate `A`, its old events read through `upcasters`.
    pub fn add_aggregate<A: Aggregate>(&mut self, upcasters: Upcasters) {
        let upcasters = Arc::new(upcasters);
        self.aggregates.push(AggregateEntry {
            name: A::TYPE,
            owns: is_stream_of::<A>,
            decode: Arc::new(move |event| codec::decode::<A::Event>(event, &upcasters).map(drop)),
        });
    }

    /// Registers subscription `name`, built by `build`.
    pub fn add_subscription(&mut self, name: String, build: BuildSubscription) {
        self.subscriptions.insert(name, build);
    }

    /// Whether any aggregate is registered (the generic binary has none).
    pub fn has_aggregates(&self) -> bool {
        !self.aggregates.is_empty()
    }

    /// Runs `event` through its aggregate's upcasters and decoder.
    pub fn decode(&self, event: &RecordedEvent) -> Decoded {
        let owner = self.aggregates.iter().find(|entry| {
            category(&event.stream_id) == entry.name && (entry.owns)(&event.stream_id)
        });
        match owner {
            None => Decoded::Unregistered,
            Some(entry) => match (entry.decode)(event) {
                Ok(()) => Decoded::Ok,
                Err(error) => Decoded::Failed(error),
            },
        }
    }

    /// The registered subscriptions' names.
    pub fn subscription_names(&self) -> impl Iterator<Item = &str> {
        self.subscriptions.keys().map(String::as_str)
    }

    /// The subscription registered as `name`, built on `store`.
    pub async fn subscription(
        &self,
        name: &str,
        store: SqliteStore,
    ) -> Option<Result<Subscription<SqliteStore>, StoreError>> {
        let build = self.subscriptions.get(name)?;
        Some(build(store).await)
    }
}

/// The builder of a projection fed by subscription `name`: a fresh projection from `make`
/// each time, behind the store's projection consumer.
pub fn projection_subscription<P, F>(name: String, make: F) -> BuildSubscription
where
    P: MultiProjection,
    F: Fn() -> P + Send + Sync + 'static,
{
    let make = Arc::new(make);
    Arc::new(move |store: SqliteStore| {
        let (name, make) = (name.clone(), Arc::clone(&make));
        Box::pin(async move {
            let consumer = store.projection_consumer(make()).await?;
            Ok(Subscription::new(name, store, consumer))
        })
    })
}
