//! The commands, one module per group, and what they share: reading the store's head,
//! events as JSON records, and the checks of a command's arguments.

mod copy;
mod db;
mod read;
mod serve;
mod stats;
mod subscriptions;
mod verify;

use crate::args::{Cli, Command, LogFilterArgs};
use crate::audit;
use crate::error::CliError;
use crate::output::Output;
use crate::registry::Registry;
use crate::target::{Opened, Opening, StoreUrl};
use cqrs_core::{EventFilter, EventStore, LogRead, RecordedEvent};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Runs the parsed command line.
pub(crate) async fn run(
    cli: Cli,
    registry: &Registry,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let Cli {
        store,
        audit_log,
        command,
        ..
    } = cli;
    if let Command::Copy(args) = command {
        return copy::run(args, out).await;
    }
    let url = store.ok_or_else(|| {
        CliError::Usage(
            "no store named: pass --store sqlite:PATH or --store postgres://... (or set \
             CQRS_STORE)"
                .to_owned(),
        )
    })?;
    let audit_log = audit_log.unwrap_or_else(|| audit::default_path(&url));
    if let Command::Db(command) = command {
        return db::run(command, &url, out).await;
    }
    let store = url.open(Opening::Existing).await?;
    let ctx = Ctx {
        store: &store,
        registry,
        audit_log,
    };
    match command {
        Command::Stats => stats::run(&ctx, out).await,
        Command::Stream(command) => read::stream(&ctx, command, out).await,
        Command::Event(command) => read::event(&ctx, command, out).await,
        Command::Tail(args) => read::tail(&ctx, args, out).await,
        Command::Trace(args) => read::trace(&ctx, args, out).await,
        Command::Search(args) => read::search(&ctx, args, out).await,
        Command::Verify(args) => verify::run(&ctx, args, out).await,
        Command::Subscriptions(command) => subscriptions::run(&ctx, command, out).await,
        Command::Parked(command) => subscriptions::parked(&ctx, command, out).await,
        Command::Rebuild(args) => subscriptions::rebuild(&ctx, args, out).await,
        Command::Serve(args) => serve::run(&ctx, args, out).await,
        Command::Copy(_) | Command::Db(_) => Ok(()),
    }
}

/// What a command on an open store works with.
pub(crate) struct Ctx<'a> {
    store: &'a Opened,
    registry: &'a Registry,
    audit_log: PathBuf,
}

impl Ctx<'_> {
    fn url(&self) -> &StoreUrl {
        &self.store.url
    }

    fn events(&self) -> &dyn EventStore {
        self.store.events.as_ref()
    }
}

/// Events read per page when scanning the log.
const PAGE: usize = 1000;

/// The position of the latest event (0: none).
async fn head(events: &dyn EventStore) -> Result<u64, CliError> {
    let last = events.read_log(&LogRead::backward(u64::MAX, 1)).await?;
    Ok(last.first().map_or(0, |event| event.position))
}

/// The columns of an event in a table (and `payload` when asked).
fn event_columns(payload: bool) -> Vec<&'static str> {
    let mut columns = vec![
        "position",
        "stream",
        "version",
        "type",
        "schema",
        "recorded_at",
        "correlation_id",
    ];
    if payload {
        columns.push("payload");
    }
    columns
}

/// An event as a JSON record: the envelope, the metadata and the payload (as JSON, or as
/// the stored text if it is not JSON).
fn event_record(event: &RecordedEvent) -> Value {
    let payload = serde_json::from_str::<Value>(&event.payload)
        .unwrap_or_else(|_| Value::String(event.payload.clone()));
    json!({
        "position": event.position,
        "stream": event.stream_id,
        "version": event.version,
        "type": event.event_type,
        "schema": event.schema_version,
        "event_id": event.event_id.to_string(),
        "recorded_at": event.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "correlation_id": event.metadata.correlation_id.map(|id| id.to_string()),
        "causation_id": event.metadata.causation_id.map(|id| id.to_string()),
        "metadata": event.metadata.custom,
        "payload": payload,
    })
}

/// The filter `--type` and `--aggregate` name.
fn log_filter(args: &LogFilterArgs) -> EventFilter {
    let mut filter = EventFilter::all();
    if !args.types.is_empty() {
        filter = filter.with_event_types(args.types.iter().cloned());
    }
    if !args.aggregates.is_empty() {
        filter = filter.with_categories(args.aggregates.iter().cloned());
    }
    filter
}

/// A limit of 0 is refused here, with the flag's name, before the store would refuse it.
fn check_limit(limit: usize, flag: &str) -> Result<(), CliError> {
    if limit == 0 {
        return Err(CliError::Usage(format!("{flag} must be at least 1")));
    }
    Ok(())
}
