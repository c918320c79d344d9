//! `verify`: the store's invariants, checked on every event of the log, and with
//! `--decode` every event through its aggregate's upcasters and decoder.
//!
//! A damaged row does not end the check: the backend names it (`StoreError::Corrupt`), it
//! is reported, and the scan goes on after it, so every damaged event is named in one run.

use super::context::{Ctx, PAGE};
use crate::args::VerifyArgs;
use crate::error::CliError;
use crate::output::Output;
use crate::registry::Decoded;
use crate::target::{quote_ident, Backend, StoreUrl};
use cqrs_core::{LogRead, RecordedEvent, StoreError};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// One broken invariant.
#[derive(Debug, Default)]
struct Failure {
    check: &'static str,
    stream: Option<String>,
    version: Option<u64>,
    position: Option<u64>,
    event_type: Option<String>,
    what: String,
}

impl Failure {
    fn of(check: &'static str, event: &RecordedEvent, what: String) -> Self {
        Self {
            check,
            stream: Some(event.stream_id.clone()),
            version: Some(event.version),
            position: Some(event.position),
            event_type: Some(event.event_type.clone()),
            what,
        }
    }

    fn record(&self) -> Value {
        json!({
            "check": self.check,
            "stream": self.stream,
            "version": self.version,
            "position": self.position,
            "type": self.event_type,
            "what": self.what,
        })
    }
}

/// What the scan of the log keeps.
#[derive(Default)]
struct Scan {
    events: u64,
    last_position: u64,
    /// Each stream's last version seen.
    streams: HashMap<String, u64>,
    /// Streams whose versions were not 1..n in log order.
    suspect: BTreeSet<String>,
    ids: HashSet<Uuid>,
    decoded: u64,
    unregistered: BTreeSet<String>,
    failures: Vec<Failure>,
}

/// Runs every check and prints each failure; exits 1 if there is any.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    args: VerifyArgs,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    if args.decode && !ctx.registry.has_aggregates() {
        return Err(CliError::Usage(
            "--decode needs the application's aggregates: run it through the application's \
             own admin binary (built on cqrs_cli::App), which registers them"
                .to_owned(),
        ));
    }
    let mut scan = Scan::default();
    scan.failures.extend(schema_failures(ctx).await?);
    read_log(ctx, args.decode, &mut scan).await;
    for stream in std::mem::take(&mut scan.suspect) {
        scan.failures.push(stream_failure(ctx, &stream).await);
    }
    let records: Vec<Value> = scan.failures.iter().map(Failure::record).collect();
    let unregistered: Vec<&String> = scan.unregistered.iter().collect();
    match out.format() {
        crate::output::Format::Table => {
            if !records.is_empty() {
                out.records(
                    &["check", "stream", "version", "position", "type", "what"],
                    &records,
                )?;
            }
            let mut summary = format!(
                "checked {} events in {} streams of {}: {} failures",
                scan.events,
                scan.streams.len(),
                ctx.url(),
                records.len()
            );
            if args.decode {
                summary.push_str(&format!("; {} events decoded", scan.decoded));
                if !unregistered.is_empty() {
                    summary.push_str(&format!(
                        "; not decoded, no aggregate registered: {}",
                        scan.unregistered
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            out.note(&summary)?;
        }
        _ => out.fields(vec![
            ("store", json!(ctx.url().to_string())),
            ("events", json!(scan.events)),
            ("streams", json!(scan.streams.len())),
            ("decoded", json!(args.decode.then_some(scan.decoded))),
            ("unregistered_aggregates", json!(unregistered)),
            ("failures", Value::from(records.clone())),
        ])?,
    }
    if records.is_empty() {
        Ok(())
    } else {
        Err(CliError::Found(format!(
            "verify found {} failures",
            records.len()
        )))
    }
}

/// Reads the whole log page by page; a damaged row is reported and passed over.
async fn read_log(ctx: &Ctx<'_>, decode: bool, scan: &mut Scan) {
    let mut from = 1;
    loop {
        match ctx.events().read_log(&LogRead::forward(from, PAGE)).await {
            Ok(page) => {
                let Some(last) = page.last().map(|event| event.position) else {
                    return;
                };
                for event in &page {
                    check(ctx, decode, scan, event);
                }
                from = last + 1;
            }
            Err(StoreError::Corrupt {
                stream_id,
                version,
                position: Some(position),
                reason,
            }) if position >= from => {
                // The events before the damaged one, which the failed page did not return.
                if position > from {
                    let before = usize::try_from(position - from).unwrap_or(usize::MAX);
                    match ctx.events().read_log(&LogRead::forward(from, before)).await {
                        Ok(page) => page
                            .iter()
                            .for_each(|event| check(ctx, decode, scan, event)),
                        Err(error) => return unreadable(scan, from, &error),
                    }
                }
                scan.failures.push(Failure {
                    check: "readable",
                    stream: Some(stream_id.clone()).filter(|s| !s.is_empty()),
                    version: Some(version).filter(|v| *v > 0),
                    position: Some(position),
                    event_type: None,
                    what: reason,
                });
                // Taken as seen, so its stream's next event is not reported as well.
                if !stream_id.is_empty() && version > 0 {
                    scan.streams.insert(stream_id, version);
                }
                scan.last_position = position;
                from = position + 1;
            }
            Err(error) => return unreadable(scan, from, &error),
        }
    }
}

fn unreadable(scan: &mut Scan, from: u64, error: &StoreError) {
    scan.failures.push(Failure {
        check: "readable",
        position: Some(from),
        what: format!("the log cannot be read from here on: {error}"),
        ..Failure::default()
    });
}

/// The checks of one event as it comes in log order.
fn check(ctx: &Ctx<'_>, decode: bool, scan: &mut Scan, event: &RecordedEvent) {
    scan.events += 1;
    if event.position <= scan.last_position {
        let what = format!(
            "position {} does not follow {}",
            event.position, scan.last_position
        );
        scan.failures
            .push(Failure::of("positions increase", event, what));
    }
    scan.last_position = scan.last_position.max(event.position);
    let expected = scan
        .streams
        .get(&event.stream_id)
        .map_or(1, |last| last + 1);
    if event.version != expected {
        scan.suspect.insert(event.stream_id.clone());
    }
    scan.streams.insert(event.stream_id.clone(), event.version);
    if !scan.ids.insert(event.event_id) {
        let what = format!("event id {} is stored twice", event.event_id);
        scan.failures.push(Failure::of("ids unique", event, what));
    }
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&event.payload) {
        scan.failures
            .push(Failure::of("payload is JSON", event, error.to_string()));
    }
    if decode {
        match ctx.registry.decode(event) {
            Decoded::Ok => scan.decoded += 1,
            Decoded::Unregistered => {
                scan.unregistered
                    .insert(cqrs_core::category(&event.stream_id).to_owned());
            }
            Decoded::Failed(error) => {
                scan.failures
                    .push(Failure::of("decodes", event, error.cause.to_string()));
            }
        }
    }
}

/// A stream whose versions were not 1..n in the log: its own read names the event.
async fn stream_failure(ctx: &Ctx<'_>, stream: &str) -> Failure {
    let failure = |version, position, what| Failure {
        check: "versions 1..n",
        stream: Some(stream.to_owned()),
        version,
        position,
        event_type: None,
        what,
    };
    match ctx.events().read_stream(stream, 1, usize::MAX).await {
        Err(StoreError::Corrupt {
            version,
            position,
            reason,
            ..
        }) => failure(Some(version), position, reason),
        Err(error) => failure(None, None, error.to_string()),
        Ok(events) => {
            let versions: Vec<u64> = events.iter().map(|event| event.version).collect();
            failure(
                None,
                None,
                format!("its versions in log order are {versions:?}"),
            )
        }
    }
}

/// The schema version and the triggers that keep events immutable.
async fn schema_failures(ctx: &Ctx<'_>) -> Result<Vec<Failure>, CliError> {
    let schema_failure = |what: String| Failure {
        check: "schema",
        what,
        ..Failure::default()
    };
    let (version, current, triggers, wanted): (i64, i64, Vec<String>, &[&str]) = match (
        &ctx.store.backend,
        ctx.url(),
    ) {
        (Backend::Sqlite(store), _) => {
            let (version, triggers) = store
                    .query(|conn| {
                        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
                        let mut statement = conn.prepare(
                            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'events'",
                        )?;
                        let names = statement
                            .query_map([], |row| row.get::<_, String>(0))?
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok((version, names))
                    })
                    .await?;
            let current = i64::from(cqrs_sqlite::SCHEMA_VERSION);
            (
                version,
                current,
                triggers,
                &["events_refuse_update", "events_refuse_delete"],
            )
        }
        (Backend::Postgres(_, client), StoreUrl::Postgres { schema, .. }) => {
            let version = crate::target::postgres_schema_version(client, schema)
                .await?
                .unwrap_or(0);
            let rows = client
                .query(
                    "SELECT t.tgname::text FROM pg_trigger t
                         JOIN pg_class c ON c.oid = t.tgrelid
                         JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = $1 AND c.relname = 'events' AND NOT t.tgisinternal",
                    &[schema],
                )
                .await
                .map_err(|error| {
                    CliError::Failed(format!(
                        "cannot read the triggers of {}: {error}",
                        quote_ident(schema)
                    ))
                })?;
            let triggers = rows.iter().filter_map(|row| row.try_get(0).ok()).collect();
            let wanted: &[&str] = &["events_refuse_update_delete", "events_refuse_truncate"];
            (version, cqrs_postgres::SCHEMA_VERSION, triggers, wanted)
        }
        _ => return Ok(Vec::new()),
    };
    let mut failures = Vec::new();
    if version != current {
        failures.push(schema_failure(format!(
            "schema version {version}, but this build reads version {current}"
        )));
    }
    for trigger in wanted {
        if !triggers.iter().any(|found| found == trigger) {
            failures.push(schema_failure(format!(
                "trigger `{trigger}`, which keeps stored events immutable, is missing"
            )));
        }
    }
    Ok(failures)
}
