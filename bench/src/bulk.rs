//! The untimed bulk writes that set up the read workloads: whole carts appended many at a
//! time, so that SQLite's group commit puts many events in each transaction.

use crate::error::Res;
use crate::script::{added_units_of, fold_script, script_cart_id};
use cqrs_core::codec;
use cqrs_core::{stream_id, EventStore, ExpectedVersion, Metadata, NewEvent};
use cqrs_examples::cart::{Cart, CartEvent};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use uuid::Uuid;

/// Per-cart appends in flight while bulk-writing carts: 50 x 20 events = 1,000 events per
/// group-committed transaction.
pub const BULK_IN_FLIGHT: u32 = 50;

/// Encodes an event as `Repository::execute` would: metadata with a fresh correlation id.
pub fn encode_with_new_correlation(event: &CartEvent) -> Res<NewEvent> {
    let metadata = Metadata::new().with_correlation_id(Uuid::new_v4());
    Ok(codec::encode(event, &metadata)?)
}

/// Writes carts 0..carts of `prefix`, each as one append of its 20 script events (folded
/// through `handle` and `apply` in memory), [`BULK_IN_FLIGHT`] appends at a time so that
/// SQLite's group commit puts about 1,000 events in each transaction. Returns the sum of the
/// `ItemAdded` quantities written.
pub async fn bulk_write_carts<S: EventStore>(store: &S, prefix: &str, carts: u32) -> Res<u64> {
    let mut added_units = 0u64;
    let mut next = 0u32;
    let progress_every = (carts / 10).max(1);
    while next < carts {
        let end = next.saturating_add(BULK_IN_FLIGHT).min(carts);
        let mut batch = Vec::with_capacity(usize::try_from(end - next)?);
        for n in next..end {
            let (_, events) = fold_script(prefix, n)?;
            added_units += added_units_of(&events);
            let encoded = events
                .iter()
                .map(encode_with_new_correlation)
                .collect::<Res<Vec<_>>>()?;
            batch.push((stream_id::<Cart>(&script_cart_id(prefix, n)), encoded));
        }
        let appends = batch
            .into_iter()
            .map(|(stream, events)| async move {
                let result = store
                    .append(&stream, ExpectedVersion::NoStream, events)
                    .await;
                (stream, result)
            })
            .collect();
        for (stream, result) in join_all(appends).await {
            result.map_err(|e| format!("bulk append to {stream} failed: {e}"))?;
        }
        if end / progress_every != next / progress_every && end < carts {
            eprintln!("bench:   ... {end}/{carts} carts written");
        }
        next = end;
    }
    Ok(added_units)
}

/// Runs futures concurrently in this task and returns their outputs in order. Polling them
/// all in one go queues their appends together, so the writer takes them as one group.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
