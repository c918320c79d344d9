//! The check after W1 and W2: every cart reloaded through a fresh repository must be at the
//! script's last version, and their `total_price` must sum to the in-memory fold's.

use crate::backend::BenchStore;
use crate::context::Ctx;
use crate::error::Res;
use crate::script::{script_cart_id, EVENTS_PER_CART, W1_CHECKSUM_1000};
use cqrs_core::Repository;
use cqrs_examples::cart::Cart;

/// Reloads every cart of the run with `prefix` through a fresh repository and compares the
/// sum of `total_price` with the in-memory fold of the scripts.
pub async fn check_carts<S: BenchStore>(
    ctx: &Ctx<'_>,
    store: &S,
    workload: &str,
    label: &str,
    prefix: &str,
) -> Res<()> {
    let repository = Repository::<Cart, S>::new(store.clone());
    let mut sum = 0i64;
    for n in 0..ctx.args.carts {
        let cart_id = script_cart_id(prefix, n);
        let loaded = repository
            .load(&cart_id)
            .await
            .map_err(|e| format!("{workload} {label}: reloading cart {cart_id} failed: {e}"))?;
        if loaded.version != EVENTS_PER_CART {
            return Err(format!(
                "{workload} {label}: cart {cart_id} is at version {}, expected {EVENTS_PER_CART}",
                loaded.version
            )
            .into());
        }
        sum += loaded.state.total_price();
    }
    let expected = ctx.expected.checksum;
    if sum != expected {
        return Err(format!(
            "{workload} {label}: CHECKSUM MISMATCH: reloaded carts sum to {sum}, the in-memory \
             fold gives {expected}"
        )
        .into());
    }
    let published = if ctx.args.carts == 1000 {
        format!(" = the published {W1_CHECKSUM_1000}")
    } else {
        String::new()
    };
    eprintln!("bench: {workload} {label}: checksum {sum} = in-memory fold{published}: ok");
    Ok(())
}
