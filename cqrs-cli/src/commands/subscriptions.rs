//! Subscriptions: `subscriptions list|reset|set-checkpoint|skip`, `parked list|retry|discard`
//! and `rebuild`. Every change is recorded in the audit log (see `crate::audit`) with its
//! outcome, whether it succeeded or not.

use super::context::{head, recorded, Ctx};
use crate::args::{ChangeArgs, ParkedCommand, RebuildArgs, SubscriptionsCommand};
use crate::error::CliError;
use crate::output::Output;
use crate::progress::Progress;
use crate::target::Backend;
use cqrs_core::{LogRead, ParkedEvent, ParkingStore, StoreError, Subscription};
use cqrs_sqlite::SqliteStore;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// `subscriptions ...`.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    command: SubscriptionsCommand,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    match command {
        SubscriptionsCommand::List => list(ctx, out).await,
        SubscriptionsCommand::Reset(change) => set(ctx, &change, "reset", 0, json!({}), out).await,
        SubscriptionsCommand::SetCheckpoint { change, position } => {
            let head = head(ctx.events()).await?;
            if position > head {
                return Err(CliError::Usage(format!(
                    "position {position} is past the head of the log ({head})"
                )));
            }
            set(ctx, &change, "set-checkpoint", position, json!({}), out).await
        }
        SubscriptionsCommand::Skip { change, count } => {
            let checkpoint = ctx.store.checkpoints.load_checkpoint(&change.name).await?;
            let skipped = ctx
                .events()
                .read_log(&LogRead::forward(checkpoint + 1, count.max(1)))
                .await?;
            let Some(last) = skipped.last() else {
                return Err(CliError::Usage(format!(
                    "subscription `{}` is at the head ({checkpoint}): nothing to skip",
                    change.name
                )));
            };
            let skipped_ids: Vec<Value> = skipped
                .iter()
                .map(|e| json!({"position": e.position, "stream": e.stream_id, "version": e.version, "event_id": e.event_id.to_string()}))
                .collect();
            let details = json!({ "skipped": skipped_ids });
            set(ctx, &change, "skip", last.position, details, out).await
        }
    }
}

/// Every subscription the store or the application knows, with checkpoint, head and lag.
async fn list(ctx: &Ctx<'_>, out: &mut Output<'_>) -> Result<(), CliError> {
    let mut names: BTreeSet<String> = ctx
        .registry
        .subscription_names()
        .map(str::to_owned)
        .collect();
    match ctx.store.checkpoints.checkpoints().await {
        Ok(stored) => names.extend(stored.into_iter().map(|(name, _)| name)),
        Err(StoreError::Unsupported { .. }) => out.note(
            "(this store cannot list its checkpoints yet: only registered subscriptions are shown)",
        )?,
        Err(error) => return Err(error.into()),
    }
    let sqlite = sqlite(ctx);
    names.extend(parked_subscriptions(ctx).await?);
    let head = head(ctx.events()).await?;
    let mut records = Vec::new();
    for name in names {
        let checkpoint = ctx.store.checkpoints.load_checkpoint(&name).await?;
        // A registered subscription knows the head of the events it takes.
        let mut own_head = head;
        if let Some(store) = &sqlite {
            if let Some(subscription) = ctx.registry.subscription(&name, store.clone()).await {
                if let Ok(lag) = subscription?.lag().await {
                    own_head = lag.head;
                }
            }
        }
        let parked = ctx.store.parking.parked(&name).await?;
        records.push(json!({
            "subscription": name,
            "checkpoint": checkpoint,
            "head": own_head,
            "lag": own_head.saturating_sub(checkpoint),
            "parked": parked.len(),
            "last_error": parked.iter().max_by_key(|p| p.parked_at).map(|p| p.error.clone()),
        }));
    }
    out.records(
        &[
            "subscription",
            "checkpoint",
            "head",
            "lag",
            "parked",
            "last_error",
        ],
        &records,
    )?;
    Ok(())
}

/// Sets `change.name`'s checkpoint to `position`, recorded with `details` and the outcome.
async fn set(
    ctx: &Ctx<'_>,
    change: &ChangeArgs,
    action: &str,
    position: u64,
    mut details: Value,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let before = ctx.store.checkpoints.load_checkpoint(&change.name).await?;
    details["subscription"] = json!(change.name);
    details["from"] = json!(before);
    details["to"] = json!(position);
    details["reason"] = json!(change.reason);
    let outcome = ctx
        .store
        .checkpoints
        .save_checkpoint(&change.name, position)
        .await;
    recorded(ctx, action, details, outcome.map_err(CliError::from))?;
    out.fields(vec![
        ("subscription", json!(change.name)),
        ("action", json!(action)),
        ("checkpoint_before", json!(before)),
        ("checkpoint", json!(position)),
        ("recorded_in", json!(ctx.audit_log.display().to_string())),
    ])?;
    if action == "reset" {
        out.note("note: a read model it keeps is not emptied; `rebuild` empties and replays it")?;
    }
    Ok(())
}

/// The SQLite store, where parking and registered subscriptions live.
fn sqlite(ctx: &Ctx<'_>) -> Option<SqliteStore> {
    match &ctx.store.backend {
        Backend::Sqlite(store) => Some(store.clone()),
        Backend::Postgres(..) => None,
    }
}

fn sqlite_only(ctx: &Ctx<'_>, what: &str) -> Result<SqliteStore, CliError> {
    sqlite(ctx).ok_or_else(|| {
        CliError::Usage(format!(
            "{what} works on SQLite stores only for now: registered subscriptions run on \
             SQLite"
        ))
    })
}

/// The subscriptions with parked events: on SQLite every one with an entry; elsewhere
/// those with a checkpoint or registered here (a parked event's subscription has moved
/// its checkpoint past it).
async fn parked_subscriptions(ctx: &Ctx<'_>) -> Result<Vec<String>, CliError> {
    if let Some(store) = sqlite(ctx) {
        return Ok(store
            .query(|conn| {
                let mut statement =
                    conn.prepare("SELECT DISTINCT subscription FROM parked ORDER BY 1")?;
                let names = statement
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(names)
            })
            .await?);
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
    let mut parked = Vec::new();
    for name in names {
        if !ctx.store.parking.parked(&name).await?.is_empty() {
            parked.push(name);
        }
    }
    Ok(parked)
}

/// The registered subscription `name`, or a usage error naming the registered ones.
async fn registered(
    ctx: &Ctx<'_>,
    name: &str,
    store: SqliteStore,
) -> Result<Subscription<SqliteStore>, CliError> {
    match ctx.registry.subscription(name, store).await {
        Some(subscription) => Ok(subscription?),
        None => {
            let known: Vec<&str> = ctx.registry.subscription_names().collect();
            Err(CliError::Usage(format!(
                "subscription `{name}` is not registered in this binary (registered: {}); \
                 run the application's own admin binary",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

/// `parked list|retry|discard`.
pub(crate) async fn parked(
    ctx: &Ctx<'_>,
    command: ParkedCommand,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let store = &ctx.store.parking;
    match command {
        ParkedCommand::List { name } => {
            let names = match name {
                Some(name) => vec![name],
                None => parked_subscriptions(ctx).await?,
            };
            let mut records = Vec::new();
            for name in names {
                records.extend(store.parked(&name).await?.iter().map(parked_record));
            }
            let columns = [
                "subscription",
                "position",
                "stream",
                "version",
                "type",
                "attempts",
                "parked_at",
                "error",
            ];
            out.records(&columns, &records)?;
            Ok(())
        }
        ParkedCommand::Retry { change, position } => {
            let store = sqlite_only(ctx, "parked retry")?;
            let subscription = registered(ctx, &change.name, store).await?;
            let details = json!({ "subscription": change.name, "position": position, "reason": change.reason });
            let outcome = subscription
                .retry_parked(position)
                .await
                .map_err(CliError::failed);
            recorded(ctx, "parked retry", details, outcome)?;
            out.note(&format!(
                "retried the event parked at {position}: handled, no longer parked"
            ))?;
            Ok(())
        }
        ParkedCommand::Discard { change, position } => {
            let entry = store
                .parked(&change.name)
                .await?
                .into_iter()
                .find(|parked| parked.position == position)
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "subscription `{}` has no event parked at {position}",
                        change.name
                    ))
                })?;
            let mut details = parked_record(&entry);
            details["reason"] = json!(change.reason);
            let outcome = match store.unpark(&change.name, position).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(CliError::Usage(format!(
                    "the event at {position} was no longer parked"
                ))),
                Err(error) => Err(error.into()),
            };
            recorded(ctx, "parked discard", details, outcome)?;
            out.note(&format!(
                "discarded the event parked at {position}; it stays in the log"
            ))?;
            Ok(())
        }
    }
}

fn parked_record(parked: &ParkedEvent) -> Value {
    json!({
        "subscription": parked.subscription,
        "position": parked.position,
        "event_id": parked.event_id.to_string(),
        "stream": parked.stream_id,
        "version": parked.version,
        "type": parked.event_type,
        "attempts": parked.attempts,
        "parked_at": parked.parked_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "error": parked.error,
    })
}

/// `rebuild NAME`: resets the registered subscription's consumer and replays the log, with
/// a progress line on a terminal.
pub(crate) async fn rebuild(
    ctx: &Ctx<'_>,
    args: RebuildArgs,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let store = sqlite_only(ctx, "rebuild")?;
    let change = args.change;
    let subscription = registered(ctx, &change.name, store.clone()).await?;
    let total = head(ctx.events()).await?;
    let before = ctx.store.checkpoints.load_checkpoint(&change.name).await?;
    let mut work = tokio::spawn(async move { subscription.rebuild().await });
    let mut progress = Progress::new("rebuild", total);
    let checkpoints = ctx.store.checkpoints.clone();
    let finished = loop {
        tokio::select! {
            done = &mut work => break done,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Ok(at) = checkpoints.load_checkpoint(&change.name).await {
                    progress.update(at);
                }
            }
        }
    };
    progress.finish();
    let outcome = match finished {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(CliError::failed(error)),
        Err(error) => Err(CliError::Failed(format!("the rebuild stopped: {error}"))),
    };
    let after = ctx.store.checkpoints.load_checkpoint(&change.name).await?;
    let details = json!({ "subscription": change.name, "from": before, "to": after, "reason": change.reason });
    recorded(ctx, "rebuild", details, outcome)?;
    out.fields(vec![
        ("subscription", json!(change.name)),
        ("action", json!("rebuild")),
        ("checkpoint", json!(after)),
        ("head", json!(total)),
    ])?;
    Ok(())
}
