//! W4: every event read in global order and decoded into the event enum, over the W1
//! events and over a large store built in bulk; the large store's peak memory, and W1 again
//! on it to show an append costs the same in a large store.

use crate::backend::{Backend, BenchStore};
use crate::bulk::{bulk_write_carts, BULK_IN_FLIGHT};
use crate::context::Ctx;
use crate::error::Res;
use crate::report::{compact, report};
use crate::rss::{kb_to_mb, peak_rss_kb, reset_peak_rss};
use crate::script::EVENTS_PER_CART;
use crate::timing::{format_ms, median, per_second};
use crate::w1::w1;
use cqrs_core::codec::decode;
use cqrs_core::{EventStore, LogRead, Upcasters};
use cqrs_examples::cart::CartEvent;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// Events per `visit_log` page.
const W4_PAGE: usize = 10_000;

/// W4 on the `--bulk-events` store: build it (untimed), read it all, report throughput and
/// the peak RSS; then, if W1 ran on the empty store (`w1_rate`), W1 again on this store.
pub async fn w4_bulk<S: BenchStore>(
    ctx: &Ctx<'_>,
    backend: Backend,
    w1_rate: Option<u64>,
) -> Res<()> {
    let carts = u32::try_from(ctx.args.bulk_events / EVENTS_PER_CART)
        .map_err(|_| "--bulk-events is too large")?;
    let events = u64::from(carts) * EVENTS_PER_CART;
    if events != ctx.args.bulk_events {
        eprintln!(
            "bench: W4: --bulk-events {} is not a multiple of {EVENTS_PER_CART}; using {events}",
            ctx.args.bulk_events
        );
    }
    let label = format!("{}@{}", backend.label(), compact(events));
    let reset = reset_peak_rss();
    if !reset {
        eprintln!(
            "bench: W4 {label}: cannot reset the RSS high-water mark; peak_rss_mb is the \
             process lifetime peak"
        );
    }
    let name = "w4-bulk";
    let store = S::fresh(backend, ctx.dir, name).await?;
    let started = Instant::now();
    let added_units = bulk_write_carts(&store, "w4", carts).await?;
    eprintln!(
        "bench: W4 {label}: wrote {carts} carts = {events} events, {BULK_IN_FLIGHT} appends in \
         flight (untimed), in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    w4_read(&store, &label, events, added_units, ctx.args.loads).await?;
    match peak_rss_kb() {
        Some(kb) => {
            let mb = kb_to_mb(kb);
            let scope = if reset {
                "since this store was built"
            } else {
                "process lifetime"
            };
            eprintln!("bench: W4 {label}: peak RSS after the read: {kb} kB ({scope})");
            report("W4", &label, "peak_rss_mb", mb, "MB");
        }
        None => eprintln!("bench: W4 {label}: VmHWM not found in /proc/self/status"),
    }
    if let Some(empty_rate) = w1_rate {
        let rate = w1(ctx, &store, &label, false).await?;
        eprintln!(
            "bench: W1 {label}: {rate} cmd/s on a store of {events} events = {:.0}% of the {} \
             cmd/s on an empty store",
            rate as f64 * 100.0 / empty_rate.max(1) as f64,
            empty_rate
        );
    }
    drop(store);
    S::remove(backend, ctx.dir, name).await
}

/// W4: `passes` times, reads the first `events` events in global order and decodes them
/// (see [`w4_pass`]); reports the median pass.
pub async fn w4_read<S: EventStore>(
    store: &S,
    label: &str,
    events: u64,
    expected_units: u64,
    passes: usize,
) -> Res<()> {
    let mut times = Vec::with_capacity(passes);
    for _ in 0..passes {
        times.push(w4_pass(store, label, events, expected_units).await?);
    }
    eprintln!("bench: W4 {label}: passes (ms) {}", format_ms(&times));
    report(
        "W4",
        label,
        "events_per_s",
        per_second(events, median(&times)),
        "events/s",
    );
    Ok(())
}

/// One W4 pass: reads the first `events` events in global order, `visit_log` page by page,
/// decoding each into `CartEvent`. Checks the positions ascend, the count, and the decoded
/// quantities; returns the time taken.
async fn w4_pass<S: EventStore>(
    store: &S,
    label: &str,
    events: u64,
    expected_units: u64,
) -> Res<Duration> {
    let upcasters = Upcasters::new();
    let mut from = 1u64;
    let mut read = 0u64;
    let mut last_position = 0u64;
    let mut out_of_order = false;
    let mut units = 0u64;
    eprintln!("bench: W4 {label}: reading {events} events ...");
    let started = Instant::now();
    let mut failed = None;
    while read < events {
        let limit = usize::try_from(events - read).map_or(W4_PAGE, |left| left.min(W4_PAGE));
        let visited = store
            .visit_log(&LogRead::forward(from, limit), &mut |stored| {
                out_of_order |= stored.position <= last_position;
                last_position = stored.position;
                match decode::<CartEvent>(stored, &upcasters) {
                    Ok(CartEvent::ItemAdded { quantity, .. }) => units += u64::from(quantity),
                    Ok(_) => {}
                    Err(error) => {
                        failed = Some(error);
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            })
            .await
            .map_err(|e| format!("W4 {label}: visit_log from position {from} failed: {e}"))?;
        if let Some(error) = failed.take() {
            return Err(format!("W4 {label}: decode failed: {error}").into());
        }
        if visited == 0 {
            break;
        }
        from = last_position + 1;
        read += visited as u64;
    }
    let elapsed = started.elapsed();
    if read != events {
        return Err(format!("W4 {label}: read {read} events, expected {events}").into());
    }
    if out_of_order {
        return Err(format!("W4 {label}: positions did not ascend").into());
    }
    if units != expected_units {
        return Err(format!(
            "W4 {label}: decoded ItemAdded quantities sum to {units}, expected {expected_units}"
        )
        .into());
    }
    eprintln!(
        "bench: W4 {label}: {read} events in {:.3} s, ascending positions, added quantities \
         {units}: ok",
        elapsed.as_secs_f64()
    );
    Ok(elapsed)
}
