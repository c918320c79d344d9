//! Reading: `stream show|events`, `event show`, `tail [-f]`, `trace`, `search`.

use super::context::{check_limit, event_columns, event_record, head, log_filter, Ctx, PAGE};
use crate::args::{EventCommand, SearchArgs, StreamCommand, StreamEventsArgs, TailArgs, TraceArgs};
use crate::error::CliError;
use crate::output::Output;
use cqrs_core::{EventStore, LogRead, RecordedEvent};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

/// `stream show S` and `stream events S`.
pub(crate) async fn stream(
    ctx: &Ctx<'_>,
    command: StreamCommand,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    match command {
        StreamCommand::Show { stream } => show_stream(ctx, &stream, out).await,
        StreamCommand::Events(args) => stream_events(ctx, args, out).await,
    }
}

async fn show_stream(ctx: &Ctx<'_>, stream: &str, out: &mut Output<'_>) -> Result<(), CliError> {
    let Some(version) = ctx.events().stream_version(stream).await? else {
        return Err(CliError::Usage(format!(
            "no stream `{stream}` in {}",
            ctx.url()
        )));
    };
    let events = ctx.events().read_stream(stream, 1, usize::MAX).await?;
    let mut types: BTreeMap<&str, u64> = BTreeMap::new();
    for event in &events {
        *types.entry(&event.event_type).or_default() += 1;
    }
    let time = |event: Option<&RecordedEvent>| {
        event.map(|event| {
            json!(event
                .recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        })
    };
    out.fields(vec![
        ("stream", json!(stream)),
        ("version", json!(version)),
        ("events", json!(events.len())),
        ("first_position", json!(events.first().map(|e| e.position))),
        ("last_position", json!(events.last().map(|e| e.position))),
        (
            "first_recorded_at",
            time(events.first()).unwrap_or(Value::Null),
        ),
        (
            "last_recorded_at",
            time(events.last()).unwrap_or(Value::Null),
        ),
        ("types", json!(types)),
    ])?;
    Ok(())
}

async fn stream_events(
    ctx: &Ctx<'_>,
    args: StreamEventsArgs,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    check_limit(args.limit, "--limit")?;
    let events = if args.backward {
        let from = args.from.unwrap_or(u64::MAX);
        ctx.events()
            .read_stream_backward(&args.stream, from, usize::MAX)
            .await?
    } else {
        let from = args.from.unwrap_or(1);
        ctx.events()
            .read_stream(&args.stream, from, usize::MAX)
            .await?
    };
    let records: Vec<Value> = events
        .iter()
        .filter(|event| args.types.is_empty() || args.types.contains(&event.event_type))
        .take(args.limit)
        .map(event_record)
        .collect();
    out.records(&event_columns(args.payload), &records)?;
    Ok(())
}

/// `event show ID|@POS`.
pub(crate) async fn event(
    ctx: &Ctx<'_>,
    command: EventCommand,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let EventCommand::Show { event } = command;
    let found = find_event(ctx.events(), &event).await?;
    let Some(found) = found else {
        return Err(CliError::Usage(format!(
            "no event {event} in {}",
            ctx.url()
        )));
    };
    let parent = match found.metadata.causation_id {
        Some(cause) => ctx
            .events()
            .read_events_by_id(&[cause])
            .await?
            .into_iter()
            .next(),
        None => None,
    };
    let children = caused_by(ctx.events(), &found).await?;
    let brief = |event: &RecordedEvent| {
        format!(
            "{} {} v{} @{} ({})",
            event.event_type, event.stream_id, event.version, event.position, event.event_id
        )
    };
    let record = event_record(&found);
    let mut fields: Vec<(&str, Value)> = match record {
        Value::Object(map) => ORDER
            .iter()
            .map(|key| (*key, map.get(*key).cloned().unwrap_or(Value::Null)))
            .collect(),
        _ => Vec::new(),
    };
    fields.push(("parent", json!(parent.as_ref().map(brief))));
    fields.push((
        "children",
        json!(children.iter().map(brief).collect::<Vec<_>>()),
    ));
    out.fields(fields)?;
    Ok(())
}

/// The fields of an event in the order `event show` prints them.
const ORDER: [&str; 11] = [
    "event_id",
    "stream",
    "version",
    "position",
    "type",
    "schema",
    "recorded_at",
    "correlation_id",
    "causation_id",
    "metadata",
    "payload",
];

/// The event `id` (a UUID) or `@POSITION` names.
async fn find_event(events: &dyn EventStore, id: &str) -> Result<Option<RecordedEvent>, CliError> {
    if let Some(position) = id.strip_prefix('@') {
        let position: u64 = position.parse().map_err(|_| {
            CliError::Usage(format!("`{id}` is not @POSITION (a whole number after @)"))
        })?;
        let page = events.read_log(&LogRead::forward(position, 1)).await?;
        return Ok(page.into_iter().find(|event| event.position == position));
    }
    let id: Uuid = id.parse().map_err(|_| {
        CliError::Usage(format!(
            "`{id}` is neither an event id (a UUID) nor @POSITION"
        ))
    })?;
    Ok(events.read_events_by_id(&[id]).await?.into_iter().next())
}

/// The events whose causation id is `cause`'s id: they come after it in the log.
async fn caused_by(
    events: &dyn EventStore,
    cause: &RecordedEvent,
) -> Result<Vec<RecordedEvent>, CliError> {
    let mut children = Vec::new();
    scan(events, cause.position + 1, |event| {
        if event.metadata.causation_id == Some(cause.event_id) {
            children.push(event.clone());
        }
        true
    })
    .await?;
    Ok(children)
}

/// Hands every event from `from` on to `visit`, page by page, until it returns false.
async fn scan(
    events: &dyn EventStore,
    mut from: u64,
    mut visit: impl FnMut(&RecordedEvent) -> bool,
) -> Result<(), CliError> {
    loop {
        let page = events.read_log(&LogRead::forward(from, PAGE)).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        from = last.position + 1;
        for event in &page {
            if !visit(event) {
                return Ok(());
            }
        }
    }
}

/// `tail [-f]`.
pub(crate) async fn tail(
    ctx: &Ctx<'_>,
    args: TailArgs,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    check_limit(args.lines, "--lines")?;
    let filter = log_filter(&args.filter);
    let columns = event_columns(args.payload);
    let mut latest = ctx
        .events()
        .read_log(&LogRead::backward(u64::MAX, args.lines).matching(filter.clone()))
        .await?;
    latest.reverse();
    let records: Vec<Value> = latest.iter().map(event_record).collect();
    if args.follow {
        out.records(&columns, &[])?;
        out.more_records(&columns, &records)?;
    } else {
        out.records(&columns, &records)?;
        return Ok(());
    }
    // From one past the head, not the last event shown: events the filter leaves out
    // are not read again.
    let mut from = head(ctx.events()).await? + 1;
    let interval = Duration::from_millis(args.interval.max(1));
    loop {
        let page = ctx
            .events()
            .read_log(&LogRead::forward(from, PAGE).matching(filter.clone()))
            .await?;
        match page.last() {
            Some(last) => {
                from = last.position + 1;
                let records: Vec<Value> = page.iter().map(event_record).collect();
                out.more_records(&columns, &records)?;
            }
            None => tokio::time::sleep(interval).await,
        }
    }
}

/// `trace CORRELATION_ID`.
pub(crate) async fn trace(
    ctx: &Ctx<'_>,
    args: TraceArgs,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let from = match args.after {
        Some(at) => ctx.events().position_at(at).await?.unwrap_or(u64::MAX),
        None => 1,
    };
    let mut found = Vec::new();
    if from != u64::MAX {
        scan(ctx.events(), from, |event| {
            if event.metadata.correlation_id == Some(args.correlation_id) {
                found.push(event.clone());
            }
            true
        })
        .await?;
    }
    if found.is_empty() {
        return Err(CliError::Usage(format!(
            "no event carries correlation id {} in {}",
            args.correlation_id,
            ctx.url()
        )));
    }
    let ids: HashSet<Uuid> = found.iter().map(|event| event.event_id).collect();
    let mut children: HashMap<Uuid, Vec<&RecordedEvent>> = HashMap::new();
    let mut roots = Vec::new();
    for event in &found {
        match event.metadata.causation_id {
            Some(cause) if ids.contains(&cause) => children.entry(cause).or_default().push(event),
            _ => roots.push(event),
        }
    }
    let tree = Tree {
        children: &children,
    };
    match out.format() {
        crate::output::Format::Table => {
            let mut lines = Vec::new();
            for root in &roots {
                tree.lines(root, "", true, true, &mut lines);
            }
            let records: Vec<Value> = lines;
            out.records(
                &["tree", "stream", "version", "position", "recorded_at"],
                &records,
            )?;
        }
        _ => {
            let nested: Vec<Value> = roots.iter().map(|root| tree.nested(root)).collect();
            out.records(&[], &nested)?;
        }
    }
    Ok(())
}

/// The causal tree of one correlation id: each event under the event that caused it.
struct Tree<'a> {
    children: &'a HashMap<Uuid, Vec<&'a RecordedEvent>>,
}

impl Tree<'_> {
    /// One table row per event, the type drawn under its cause.
    fn lines(
        &self,
        event: &RecordedEvent,
        prefix: &str,
        last: bool,
        root: bool,
        rows: &mut Vec<Value>,
    ) {
        let (branch, next) = match (root, last) {
            (true, _) => ("", String::new()),
            (false, true) => ("└─ ", format!("{prefix}   ")),
            (false, false) => ("├─ ", format!("{prefix}│  ")),
        };
        rows.push(json!({
            "tree": format!("{prefix}{branch}{}", event.event_type),
            "stream": event.stream_id,
            "version": event.version,
            "position": event.position,
            "recorded_at": event.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        }));
        let kids = self
            .children
            .get(&event.event_id)
            .map_or(&[][..], Vec::as_slice);
        for (i, child) in kids.iter().enumerate() {
            self.lines(child, &next, i + 1 == kids.len(), false, rows);
        }
    }

    /// The event's record with `caused` holding its children's, recursively.
    fn nested(&self, event: &RecordedEvent) -> Value {
        let mut record = event_record(event);
        let kids = self
            .children
            .get(&event.event_id)
            .map_or(&[][..], Vec::as_slice);
        record["caused"] = Value::from(kids.iter().map(|kid| self.nested(kid)).collect::<Vec<_>>());
        record
    }
}

/// `search --type T --aggregate A --after T --before T`.
pub(crate) async fn search(
    ctx: &Ctx<'_>,
    args: SearchArgs,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    check_limit(args.limit, "--limit")?;
    let filter = log_filter(&args.filter);
    let from = match args.after {
        Some(at) => ctx.events().position_at(at).await?,
        None => Some(1),
    };
    let mut records = Vec::new();
    if let Some(mut from) = from {
        'pages: loop {
            let page = ctx
                .events()
                .read_log(&LogRead::forward(from, PAGE).matching(filter.clone()))
                .await?;
            let Some(last) = page.last() else { break };
            from = last.position + 1;
            for event in &page {
                if args
                    .before
                    .is_some_and(|before| event.recorded_at >= before)
                    || records.len() == args.limit
                {
                    break 'pages;
                }
                records.push(event_record(event));
            }
        }
    }
    out.records(&event_columns(args.payload), &records)?;
    Ok(())
}
