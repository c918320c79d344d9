//! W3: one stream of `size` events, written in bulk (untimed), then loaded `--loads` times
//! through the repository, plainly and from a snapshot at its last version: the cost of
//! replay.

use crate::backend::{Backend, BenchStore};
use crate::bulk::encode_with_new_correlation;
use crate::context::Ctx;
use crate::error::Res;
use crate::report::report;
use crate::timing::{format_ms, median, ms, per_second};
use cqrs_core::backend::recorded_now;
use cqrs_core::{
    stream_id, Aggregate, EventStore, ExpectedVersion, Repository, Snapshot, SnapshotPolicy,
};
use cqrs_examples::cart::{Cart, CartEvent};
use std::time::{Duration, Instant};

/// Events per `append` when writing the stream.
const W3_BATCH: u64 = 1000;

/// The aggregate id of the stream (and the `cart_id` of its events).
const W3_ID: &str = "w3";

/// Runs W3 on a fresh store at `size` events, labelled `<backend><suffix>` (and
/// `<backend>+snapshot<suffix>` for the loads from a snapshot, if `snapshots`).
pub async fn w3<S: BenchStore>(
    ctx: &Ctx<'_>,
    backend: Backend,
    size: u64,
    suffix: &str,
    snapshots: bool,
) -> Res<()> {
    let label = format!("{}{suffix}", backend.label());
    let snapshot_label = format!("{}+snapshot{suffix}", backend.label());
    let name = format!("w3-{size}");
    let store = S::fresh(backend, ctx.dir, &name).await?;
    let stream = stream_id::<Cart>(W3_ID);

    let started = Instant::now();
    let folded = write_w3_stream(&store, &stream, size).await?;
    eprintln!(
        "bench: W3 {label}: wrote {size} events to `{stream}` (untimed) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if size.is_multiple_of(2) && !folded.lines().is_empty() {
        return Err(
            format!("W3 {label}: the in-memory fold of an even stream is not empty").into(),
        );
    }

    let repository = Repository::<Cart, S>::new(store.clone());
    let median_time = timed_loads(ctx, &repository, &label, &folded, size).await?;
    report("W3", &label, "load_ms_median", ms(median_time), "ms");
    report(
        "W3",
        &label,
        "events_per_s",
        per_second(size, median_time),
        "events/s",
    );
    if !snapshots {
        drop(repository);
        drop(store);
        return S::remove(backend, ctx.dir, &name).await;
    }

    let snapshot = Snapshot {
        stream_id: stream.clone(),
        version: size,
        state_version: 1,
        state: serde_json::to_string(&folded)?,
        taken_at: recorded_now(),
    };
    store
        .save_snapshot(snapshot)
        .await
        .map_err(|e| format!("W3 {snapshot_label}: saving the snapshot failed: {e}"))?;
    let repository =
        Repository::<Cart, S>::new(store.clone()).with_snapshots(SnapshotPolicy::every(size));
    let median_time = timed_loads(ctx, &repository, &snapshot_label, &folded, size).await?;
    report(
        "W3",
        &snapshot_label,
        "load_ms_median",
        ms(median_time),
        "ms",
    );
    eprintln!("bench: W3 {label}: every load equals the in-memory fold at version {size}: ok");
    drop(repository);
    drop(store);
    S::remove(backend, ctx.dir, &name).await
}

/// Loads the stream `--loads` times, each timed and checked against the fold; gives the
/// median time and prints every one to stderr.
async fn timed_loads<S: BenchStore>(
    ctx: &Ctx<'_>,
    repository: &Repository<Cart, S>,
    label: &str,
    folded: &Cart,
    size: u64,
) -> Res<Duration> {
    let mut times = Vec::with_capacity(ctx.args.loads);
    for _ in 0..ctx.args.loads {
        let started = Instant::now();
        let loaded = repository
            .load(W3_ID)
            .await
            .map_err(|e| format!("W3 {label}: load failed: {e}"))?;
        times.push(started.elapsed());
        check_w3_load(label, &loaded.state, loaded.version, folded, size)?;
    }
    eprintln!("bench: W3 {label}: loads (ms) {}", format_ms(&times));
    Ok(median(&times))
}

fn check_w3_load(label: &str, state: &Cart, version: u64, folded: &Cart, size: u64) -> Res<()> {
    if version != size {
        return Err(format!("W3 {label}: loaded version {version}, expected {size}").into());
    }
    if state != folded {
        return Err(format!(
            "W3 {label}: the loaded state differs from the in-memory fold: {state} vs {folded}"
        )
        .into());
    }
    Ok(())
}

/// Event i of the W3 stream: j = i/2, item `item-(j % 1000)`; even i adds (quantity
/// `1 + j % 5`, price `100 + j % 900`), odd i removes that item.
fn w3_event(i: u64) -> Res<CartEvent> {
    let j = i / 2;
    let cart_id = W3_ID.to_owned();
    let item_id = format!("item-{}", j % 1000);
    Ok(if i.is_multiple_of(2) {
        CartEvent::ItemAdded {
            cart_id,
            item_id,
            quantity: u32::try_from(1 + j % 5)?,
            price: i64::try_from(100 + j % 900)?,
        }
    } else {
        CartEvent::ItemRemoved { cart_id, item_id }
    })
}

/// Appends the W3 stream in batches of [`W3_BATCH`] events; returns its in-memory fold.
async fn write_w3_stream<S: EventStore>(store: &S, stream: &str, size: u64) -> Res<Cart> {
    let mut folded = Cart::default();
    let mut written = 0u64;
    while written < size {
        let end = (written + W3_BATCH).min(size);
        let mut batch = Vec::with_capacity(usize::try_from(end - written)?);
        for i in written..end {
            let event = w3_event(i)?;
            folded.apply(&event);
            batch.push(encode_with_new_correlation(&event)?);
        }
        let appended = store
            .append(stream, ExpectedVersion::Exact(written), batch)
            .await
            .map_err(|e| format!("W3: bulk append at version {written} failed: {e}"))?;
        if appended.version != end {
            return Err(format!(
                "W3: bulk append ended at version {}, expected {end}",
                appended.version
            )
            .into());
        }
        written = end;
    }
    Ok(folded)
}
