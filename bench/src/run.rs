//! A whole run: the scripts folded in memory once, then, backend by backend, the chosen
//! workloads in order, each on a fresh database except where one continues another's.

use crate::args::{Args, Workload};
use crate::backend::{Backend, BenchStore};
use crate::bulk::bulk_write_carts;
use crate::context::{Ctx, Expected};
use crate::error::Res;
use crate::p1::{p1, CatchUp};
use crate::report::compact;
use crate::script::{added_units_of, fold_script, W1_CHECKSUM_1000};
use crate::w1::w1;
use crate::w2::w2;
use crate::w3::w3;
use crate::w4::{w4_bulk, w4_read};
use cqrs_memory::MemoryStore;
use cqrs_postgres::PostgresStore;
use cqrs_sqlite::SqliteStore;
use std::path::Path;
use std::time::Instant;

/// Runs every chosen workload on every chosen backend, the SQLite files in `dir`; stops at
/// the first failed check.
pub async fn run(args: &Args, dir: &Path) -> Res<()> {
    let mut checksum = 0;
    let mut added_units = 0;
    for n in 0..args.carts {
        let (cart, events) = fold_script("w1", n)?;
        checksum += cart.total_price();
        added_units += added_units_of(&events);
    }
    eprintln!(
        "bench: in-memory fold of {} carts' scripts: checksum {checksum}",
        args.carts
    );
    if args.carts == 1000 && checksum != W1_CHECKSUM_1000 {
        return Err(format!(
            "the in-memory fold of 1000 carts gives {checksum}, the published checksum is \
             {W1_CHECKSUM_1000}: the script or the domain is wrong"
        )
        .into());
    }
    let ctx = Ctx {
        args,
        dir,
        expected: Expected {
            checksum,
            added_units,
        },
    };
    for &backend in &args.backends {
        eprintln!("bench: --- backend {} ---", backend.label());
        match backend {
            Backend::SqliteNormal | Backend::SqliteFull => {
                run_backend::<SqliteStore>(&ctx, backend).await?;
            }
            Backend::Mem => run_backend::<MemoryStore>(&ctx, backend).await?,
            Backend::Postgres => run_backend::<PostgresStore>(&ctx, backend).await?,
        }
    }
    Ok(())
}

async fn run_backend<S: BenchStore + CatchUp>(ctx: &Ctx<'_>, backend: Backend) -> Res<()> {
    let label = backend.label();
    let args = ctx.args;
    // The database of W1, which W2 continues and W4 reads, and how many events its log
    // holds: P1 catches up over all of them.
    let mut w1_db: Option<S> = None;
    let mut w1_db_events = 0u64;
    let mut w1_ran = false;
    let mut w1_rate = None;
    if args.runs(Workload::W1) {
        let store = S::fresh(backend, ctx.dir, "w1").await?;
        w1_rate = Some(w1(ctx, &store, label, false).await?);
        w1_db = Some(store);
        w1_db_events += ctx.script_events();
        w1_ran = true;

        let cached = S::fresh(backend, ctx.dir, "w1-cache").await?;
        w1(ctx, &cached, &format!("{label}+cache"), true).await?;
        drop(cached);
        S::remove(backend, ctx.dir, "w1-cache").await?;
    }
    if args.runs(Workload::W2) {
        let store = match &w1_db {
            Some(store) => store.clone(),
            None => {
                let store = S::fresh(backend, ctx.dir, "w1").await?;
                w1_db = Some(store.clone());
                store
            }
        };
        w2(ctx, &store, label).await?;
        w1_db_events += ctx.script_events();
    }
    let reads_chosen = args.runs(Workload::W3) || args.runs(Workload::W4);
    if reads_chosen && !backend.runs_reads() {
        eprintln!("bench: W3 and W4 are not run on {label} (measured under NORMAL only)");
    }
    if args.runs(Workload::W3) && backend.runs_reads() {
        let several = args.replay_events.0.len() > 1;
        for &size in &args.replay_events.0 {
            let suffix = if several {
                format!("@{}", compact(size))
            } else {
                String::new()
            };
            w3::<S>(ctx, backend, size, &suffix, true).await?;
        }
        for &size in &args.replay_scale.0 {
            let suffix = format!("@{}", compact(size));
            w3::<S>(ctx, backend, size, &suffix, false).await?;
        }
    }
    if args.runs(Workload::W4) && backend.runs_reads() {
        // W4 reads the W1 events, the first of the log; P1 then catches up over the whole
        // log, which also holds the W2 events when W2 ran on the W1 database.
        let (store, log_events) = match (&w1_db, w1_ran) {
            (Some(store), true) => (store.clone(), w1_db_events),
            _ => {
                let store = S::fresh(backend, ctx.dir, "w4-w1").await?;
                let started = Instant::now();
                bulk_write_carts(&store, "w1", args.carts).await?;
                eprintln!(
                    "bench: W4 {label}: wrote the W1 carts in bulk (untimed) in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                (store, ctx.script_events())
            }
        };
        w4_read(
            &store,
            label,
            ctx.script_events(),
            ctx.expected.added_units,
            args.loads,
        )
        .await?;
        p1(&store, label, log_events).await?;
        drop(store);
        drop(w1_db.take());
        S::remove(backend, ctx.dir, "w4-w1").await?;
        w4_bulk::<S>(ctx, backend, w1_rate).await?;
    }
    drop(w1_db);
    S::remove(backend, ctx.dir, "w1").await?;
    Ok(())
}
