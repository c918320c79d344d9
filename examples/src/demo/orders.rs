//! The order story of minimum CQRS: commands change orders (the write side) and a read
//! model of statuses is projected from the global log (the read side).

use super::{print_stored, run_command, session_tag, DemoError, Output, USER_KEY};
use crate::order::{Order, OrderCommand, OrderError, OrderEvent, OrderReadModel};
use cqrs_core::codec::decode;
use cqrs_core::stream_id;
use cqrs_core::{
    Aggregate, EventEnvelope, EventFilter, EventStore, Loaded, LogRead, Metadata, RecordedEvent,
    Repository, Upcasters,
};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The value of [`USER_KEY`] on the demo's commands.
pub const USER: &str = "bob";

/// Events read per page of the global log.
const PAGE: usize = 256;

/// What the orders demo did, for the caller to check or show.
#[derive(Debug)]
pub struct OrdersDemo {
    /// The orders the session placed, in order: one completed, one cancelled, one open.
    pub order_ids: Vec<String>,
    /// The correlation id every command of the session carried.
    pub correlation_id: Uuid,
    /// Every committed event, in order.
    pub committed: Vec<EventEnvelope<OrderEvent>>,
    /// Each order's state folded from its committed events, as the session saw it.
    pub states: BTreeMap<String, Order>,
    /// The refused commands, as (order id, error), in order.
    pub refused: Vec<(String, OrderError)>,
    /// Each order as a fresh repository rebuilds it from the store.
    pub reloaded: BTreeMap<String, Loaded<Order>>,
    /// The events of `order_ids` as the global log returns them, with metadata.
    pub stored: Vec<RecordedEvent>,
    /// Statuses projected from every order event in the global log.
    pub read_model: OrderReadModel,
}

/// Runs the orders story on `store`, printing each step to `out`.
pub async fn run<S: EventStore + Clone>(
    store: S,
    out: Output<'_>,
) -> Result<OrdersDemo, DemoError> {
    let correlation_id = Uuid::new_v4();
    let tag = session_tag(correlation_id);
    let [completed, cancelled, open, never_placed] =
        ["1", "2", "3", "4"].map(|n| format!("{tag}-{n}"));
    let metadata = Metadata::new()
        .with_correlation_id(correlation_id)
        .with(USER_KEY, USER);
    writeln!(
        out,
        "== Orders demo: correlation_id={correlation_id}, {USER_KEY}={USER}"
    )?;

    let place = |order_id: &str, customer_id: &str, total_cents| OrderCommand::Place {
        order_id: order_id.to_owned(),
        customer_id: customer_id.to_owned(),
        total_cents,
    };
    let complete = |order_id: &str| OrderCommand::Complete {
        order_id: order_id.to_owned(),
    };
    let cancel = |order_id: &str, reason: &str| OrderCommand::Cancel {
        order_id: order_id.to_owned(),
        reason: reason.to_owned(),
    };
    let commands = [
        place(&completed, "customer-7", 4200),
        complete(&completed),
        place(&cancelled, "customer-9", 1500),
        cancel(&cancelled, "customer changed their mind"),
        place(&open, "customer-7", 990),
        complete(&cancelled),
        cancel(&completed, "too late"),
        place(&open, "customer-7", 990),
        complete(&never_placed),
    ];

    let repository = Repository::<Order, S>::new(store.clone());
    let mut states = BTreeMap::<String, Order>::new();
    let mut committed = Vec::new();
    let mut refused = Vec::new();
    for command in commands {
        let order_id = match &command {
            OrderCommand::Place { order_id, .. }
            | OrderCommand::Complete { order_id }
            | OrderCommand::Cancel { order_id, .. } => order_id.clone(),
        };
        match run_command(&repository, &order_id, command, &metadata, &mut *out).await? {
            Ok(done) => {
                let state = states.entry(order_id).or_default();
                for envelope in done.events {
                    state.apply(&envelope.event);
                    committed.push(envelope);
                }
                writeln!(out, "    state: {state}")?;
            }
            Err(error) => refused.push((order_id, error)),
        }
    }

    let order_ids = vec![completed, cancelled, open];
    let fresh = Repository::<Order, S>::new(store.clone());
    let mut reloaded = BTreeMap::new();
    writeln!(out, "-- reloaded in a fresh repository:")?;
    for order_id in &order_ids {
        let loaded = fresh.load(order_id).await?;
        writeln!(
            out,
            "    {order_id}: version={} {}; same as before: {}",
            loaded.version,
            loaded.state,
            states.get(order_id) == Some(&loaded.state)
        )?;
        reloaded.insert(order_id.clone(), loaded);
    }

    let (read_model, stored) = project(&store, &order_ids).await?;
    writeln!(
        out,
        "-- metadata on every event of these orders, from the global log:"
    )?;
    print_stored(out, &stored)?;
    writeln!(out, "-- read model projected from the global log:")?;
    for order_id in &order_ids {
        let status = read_model
            .status(order_id)
            .map_or_else(|| "missing".to_owned(), |status| status.to_string());
        writeln!(out, "    {order_id}: {status}")?;
    }
    writeln!(out)?;
    Ok(OrdersDemo {
        order_ids,
        correlation_id,
        committed,
        states,
        refused,
        reloaded,
        stored,
        read_model,
    })
}

/// Pages through the order events of the global log (the store filters them: other
/// aggregates' events are never read), projecting each into the read model the way a
/// subscription would; also returns the events of the orders named.
async fn project<S: EventStore>(
    store: &S,
    order_ids: &[String],
) -> Result<(OrderReadModel, Vec<RecordedEvent>), DemoError> {
    let streams: Vec<String> = order_ids.iter().map(|id| stream_id::<Order>(id)).collect();
    let upcasters = Upcasters::new();
    let mut read_model = OrderReadModel::default();
    let mut session = Vec::new();
    let mut read = LogRead::forward(0, PAGE).matching(EventFilter::all().with_aggregate::<Order>());
    loop {
        let page = store.read_log(&read).await?;
        let full = page.len() == PAGE;
        for recorded in page {
            read.from = recorded.position + 1;
            read_model.project(&decode::<OrderEvent>(&recorded, &upcasters)?);
            if streams.contains(&recorded.stream_id) {
                session.push(recorded);
            }
        }
        if !full {
            return Ok((read_model, session));
        }
    }
}
