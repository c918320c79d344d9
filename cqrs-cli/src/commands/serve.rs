//! `serve`: the store's HTTP feed and event browser (`cqrs-http`), read-only.

use super::context::Ctx;
use crate::args::ServeArgs;
use crate::error::CliError;
use crate::output::Output;
use cqrs_core::StoreError;
use cqrs_http::{FeedConfig, HttpFeed};
use std::collections::BTreeSet;

/// Serves until the process is stopped; prints the address it listens on first.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    args: ServeArgs,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    if args.page_size == 0 {
        return Err(CliError::Usage("--page-size must be at least 1".to_owned()));
    }
    let mut names: BTreeSet<String> = ctx
        .registry
        .subscription_names()
        .map(str::to_owned)
        .collect();
    match ctx.store.checkpoints.checkpoints().await {
        Ok(stored) => names.extend(stored.into_iter().map(|(name, _)| name)),
        Err(StoreError::Unsupported { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    let router = HttpFeed::new(ctx.store.events.clone())
        .with_config(FeedConfig::default().with_page_size(args.page_size))
        .with_subscriptions(ctx.store.checkpoints.clone(), names)
        .router();
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|error| CliError::Usage(format!("cannot listen on {}: {error}", args.addr)))?;
    let address = listener.local_addr().map_err(CliError::failed)?;
    out.fields(vec![
        ("listening", serde_json::json!(format!("http://{address}"))),
        ("feed", serde_json::json!("/feed")),
        ("browser", serde_json::json!("/browse")),
    ])?;
    out.flush()?;
    axum::serve(listener, router)
        .await
        .map_err(CliError::failed)
}
