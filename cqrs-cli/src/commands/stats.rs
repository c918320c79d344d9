//! `stats`: what the store holds, counted in one pass over the log, and its size on disk.

use super::context::Ctx;
use crate::error::CliError;
use crate::output::Output;
use crate::target::{quote_ident, Backend, StoreUrl};
use cqrs_core::{category, LogRead};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;

/// Counts events, streams and the three breakdowns, then asks the backend for its size.
pub(crate) async fn run(ctx: &Ctx<'_>, out: &mut Output<'_>) -> Result<(), CliError> {
    let mut events = 0u64;
    let mut head = 0u64;
    let mut streams = HashSet::new();
    let mut by_aggregate: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_schema: BTreeMap<String, u64> = BTreeMap::new();
    ctx.events()
        .visit_log(&LogRead::forward(1, usize::MAX), &mut |event| {
            events += 1;
            head = event.position;
            if !streams.contains(event.stream_id) {
                streams.insert(event.stream_id.to_owned());
            }
            *by_aggregate
                .entry(category(event.stream_id).to_owned())
                .or_default() += 1;
            *by_type.entry(event.event_type.to_owned()).or_default() += 1;
            *by_schema
                .entry(format!("{} v{}", event.event_type, event.schema_version))
                .or_default() += 1;
            ControlFlow::Continue(())
        })
        .await?;
    let size = size_bytes(ctx).await?;
    out.fields(vec![
        ("store", json!(ctx.url().to_string())),
        ("events", json!(events)),
        ("streams", json!(streams.len())),
        ("head_position", json!(head)),
        ("size_bytes", json!(size)),
        ("by_aggregate_type", json!(by_aggregate)),
        ("by_event_type", json!(by_type)),
        ("by_schema_version", json!(by_schema)),
    ])?;
    Ok(())
}

/// The file and its WAL (SQLite), or every table of the schema with its indexes (PostgreSQL).
async fn size_bytes(ctx: &Ctx<'_>) -> Result<u64, CliError> {
    match (&ctx.store.backend, ctx.url()) {
        (Backend::Sqlite(_), StoreUrl::Sqlite(path)) => {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
            Ok(size(path) + size(std::path::Path::new(&wal)))
        }
        (Backend::Postgres(_, client), StoreUrl::Postgres { schema, .. }) => {
            let sql = "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = $1 AND c.relkind = 'r'";
            let bytes: i64 = client
                .query_one(sql, &[schema])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|error| {
                    CliError::Failed(format!(
                        "cannot read the size of {}: {error}",
                        quote_ident(schema)
                    ))
                })?;
            Ok(u64::try_from(bytes).unwrap_or(0))
        }
        _ => Ok(0),
    }
}
