//! W2: the same script on carts `w2-…`, cart `n` run by task `n % --tasks`, the tasks
//! concurrent on one repository: commands contending for the store's writer.

use crate::backend::BenchStore;
use crate::check::check_carts;
use crate::context::Ctx;
use crate::error::{BoxError, Res};
use crate::report::report;
use crate::script::{script, script_cart_id};
use crate::timing::per_second;
use cqrs_core::Repository;
use cqrs_examples::cart::{Cart, CartCommand};
use std::time::Instant;

/// Runs W2 on `store` (which holds the W1 carts, if W1 ran), reports its commands per second
/// under `label` and checks the carts.
pub async fn w2<S: BenchStore>(ctx: &Ctx<'_>, store: &S, label: &str) -> Res<()> {
    let carts = ctx.args.carts;
    let tasks = ctx.args.tasks;
    let mut work: Vec<Vec<(String, Vec<CartCommand>)>> = (0..tasks).map(|_| Vec::new()).collect();
    for n in 0..carts {
        work[usize::try_from(n % tasks)?].push((script_cart_id("w2", n), script("w2", n)));
    }
    let repository = Repository::<Cart, S>::new(store.clone());
    eprintln!("bench: W2 {label}: {carts} carts over {tasks} tasks ...");
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for carts in work {
        let repository = repository.clone();
        let label = label.to_owned();
        running.spawn(async move {
            let mut commands = 0u64;
            for (cart_id, script) in carts {
                for command in script {
                    repository.execute(&cart_id, command).await.map_err(|e| {
                        format!("W2 {label}: command on cart {cart_id} failed: {e}")
                    })?;
                    commands += 1;
                }
            }
            Ok::<u64, BoxError>(commands)
        });
    }
    let mut commands = 0u64;
    while let Some(joined) = running.join_next().await {
        commands += joined.map_err(|e| format!("W2 {label}: a task died: {e}"))??;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "bench: W2 {label}: {commands} commands in {:.3} s",
        elapsed.as_secs_f64()
    );
    report(
        "W2",
        label,
        "cmds_per_s",
        per_second(commands, elapsed),
        "cmd/s",
    );
    check_carts(ctx, store, "W2", label, "w2").await
}
