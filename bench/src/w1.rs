//! W1: every cart's script, command by command, through `Repository::execute` on one task:
//! the cost of one command (load, handle, append in one transaction) without contention.

use crate::backend::BenchStore;
use crate::check::check_carts;
use crate::context::Ctx;
use crate::error::Res;
use crate::report::report;
use crate::script::{script, script_cart_id};
use crate::timing::per_second;
use cqrs_core::Repository;
use cqrs_examples::cart::{Cart, CartCommand};
use std::time::Instant;

/// Runs W1 on `store` (with the aggregate cache if `cache`), reports its commands per second
/// under `label`, checks the carts, and returns the rate.
pub async fn w1<S: BenchStore>(ctx: &Ctx<'_>, store: &S, label: &str, cache: bool) -> Res<u64> {
    let carts = ctx.args.carts;
    let scripts: Vec<(String, Vec<CartCommand>)> = (0..carts)
        .map(|n| (script_cart_id("w1", n), script("w1", n)))
        .collect();
    let mut repository = Repository::<Cart, S>::new(store.clone());
    if cache {
        repository = repository.with_cache(usize::try_from(carts.max(1))?);
    }
    eprintln!("bench: W1 {label}: {carts} carts, one task ...");
    let mut commands = 0u64;
    let started = Instant::now();
    for (cart_id, script) in scripts {
        for command in script {
            repository
                .execute(&cart_id, command)
                .await
                .map_err(|e| format!("W1 {label}: command on cart {cart_id} failed: {e}"))?;
            commands += 1;
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "bench: W1 {label}: {commands} commands in {:.3} s",
        elapsed.as_secs_f64()
    );
    let rate = per_second(commands, elapsed);
    report("W1", label, "cmds_per_s", rate, "cmd/s");
    check_carts(ctx, store, "W1", label, "w1").await?;
    Ok(rate)
}
