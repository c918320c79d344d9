//! What the commands share: the open store and the registrations they work with, the
//! audit record of a change, the log's head, events as JSON records, and the checks of
//! common arguments.

use crate::args::LogFilterArgs;
use crate::audit;
use crate::error::CliError;
use crate::registry::Registry;
use crate::target::{Opened, StoreUrl};
use cqrs_core::{EventFilter, EventStore, LogRead, RecordedEvent};
use serde_json::{json, Value};
use std::path::PathBuf;

/// What a command on an open store works with.
pub(crate) struct Ctx<'a> {
    pub(crate) store: &'a Opened,
    pub(crate) registry: &'a Registry,
    pub(crate) audit_log: PathBuf,
}

impl Ctx<'_> {
    pub(crate) fn url(&self) -> &StoreUrl {
        &self.store.url
    }

    pub(crate) fn events(&self) -> &dyn EventStore {
        self.store.events.as_ref()
    }
}

/// Writes the audit entry of `action` (with the outcome), then hands back the outcome.
pub(crate) fn recorded(
    ctx: &Ctx<'_>,
    action: &str,
    details: Value,
    outcome: Result<(), CliError>,
) -> Result<(), CliError> {
    let text = outcome.as_ref().map(|_| ()).map_err(ToString::to_string);
    audit::record(&ctx.audit_log, ctx.url(), action, details, &text)?;
    outcome
}

/// Events read per page when scanning the log.
pub(crate) const PAGE: usize = 1000;

/// The position of the latest event (0: none).
pub(crate) async fn head(events: &dyn EventStore) -> Result<u64, CliError> {
    let last = events.read_log(&LogRead::backward(u64::MAX, 1)).await?;
    Ok(last.first().map_or(0, |event| event.position))
}

/// The columns of an event in a table (and `payload` when asked).
pub(crate) fn event_columns(payload: bool) -> Vec<&'static str> {
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
pub(crate) fn event_record(event: &RecordedEvent) -> Value {
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
pub(crate) fn log_filter(args: &LogFilterArgs) -> EventFilter {
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
pub(crate) fn check_limit(limit: usize, flag: &str) -> Result<(), CliError> {
    if limit == 0 {
        return Err(CliError::Usage(format!("{flag} must be at least 1")));
    }
    Ok(())
}
