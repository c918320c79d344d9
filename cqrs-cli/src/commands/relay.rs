//! `relay run|status|skip`: the store's log relayed to a NATS JetStream stream by
//! `cqrs_nats` (the log as outbox). `run` publishes until the process is stopped or, with
//! `--until-caught-up`, until what was stored at start is acknowledged; `status` shows how far
//! the relay got; `skip` moves it past an event the broker refuses for good, recorded in the
//! log (by `cqrs_nats::skip_refused`) and in the audit log.

use super::context::{head, recorded, Ctx};
use crate::args::{RelayArgs, RelayCommand};
use crate::error::CliError;
use crate::output::Output;
use crate::target::Backend;
use cqrs_core::{LogRead, TrackingStore};
use cqrs_nats::async_nats::{self, jetstream};
use cqrs_nats::broker::Broker;
use cqrs_nats::jetstream::JetStreamBroker;
use cqrs_nats::{skip_refused, Relay, RelayConfig, RelayError};
use serde_json::json;
use std::time::Duration;

/// `relay ...`.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    command: RelayCommand,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    match &ctx.store.backend {
        Backend::Sqlite(store) => on(ctx, store.clone(), command, out).await,
        Backend::Postgres(store, _) => on(ctx, store.clone(), command, out).await,
    }
}

async fn on<S: TrackingStore + Clone>(
    ctx: &Ctx<'_>,
    store: S,
    command: RelayCommand,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    match command {
        RelayCommand::Run {
            relay,
            prefix,
            until_caught_up,
        } => publish(store, &relay, prefix, until_caught_up, out).await,
        RelayCommand::Status { relay } => status(ctx, &relay, out).await,
        RelayCommand::Skip {
            relay,
            position,
            event_id,
            reason,
        } => {
            let event = store
                .read_log(&LogRead::forward(position, 1))
                .await?
                .into_iter()
                .find(|event| event.position == position)
                .ok_or_else(|| CliError::Usage(format!("no event at position {position}")))?;
            if event_id.is_some_and(|id| id != event.event_id) {
                return Err(CliError::Usage(format!(
                    "the event at position {position} is {}, not the one named",
                    event.event_id
                )));
            }
            let jetstream = connect(&relay).await?;
            existing_stream(&jetstream, &relay).await?;
            let config = RelayConfig::new(relay.name.clone(), relay.stream.clone(), "");
            let skipped = skip_refused(
                &store,
                &jetstream,
                &config,
                position,
                event.event_id,
                &reason,
            )
            .await;
            let (record, outcome) = match skipped {
                Ok(record) => (Some(record), Ok(())),
                Err(error) => (None, Err(relay_error(error))),
            };
            let details = json!({
                "relay": relay.name,
                "stream": relay.stream,
                "position": position,
                "event_id": event.event_id.to_string(),
                "event_stream": event.stream_id,
                "version": event.version,
                "reason": reason,
                "record_position": record,
            });
            recorded(ctx, "relay skip", details, outcome)?;
            out.fields(vec![
                ("relay", json!(relay.name)),
                ("action", json!("skip")),
                ("skipped_position", json!(position)),
                ("skipped_event_id", json!(event.event_id.to_string())),
                ("record_position", json!(record)),
                ("recorded_in", json!(ctx.audit_log.display().to_string())),
            ])?;
            Ok(())
        }
    }
}

/// `relay run`: starts the relay; stops only on an error, or when caught up if asked.
async fn publish<S: TrackingStore + Clone>(
    store: S,
    args: &RelayArgs,
    prefix: String,
    until_caught_up: bool,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let jetstream = connect(args).await?;
    let config = RelayConfig::new(args.name.clone(), args.stream.clone(), prefix);
    let relay = Relay::new(store.clone(), jetstream, config);
    relay.ensure_stream().await.map_err(relay_error)?;
    let start = relay.lag().await.map_err(relay_error)?;
    let mut running = relay.start();
    if !until_caught_up {
        out.fields(vec![
            ("relay", json!(args.name)),
            ("stream", json!(args.stream)),
            ("resumes_after", json!(start.checkpoint)),
            ("head", json!(start.head)),
        ])?;
        out.note("relaying until stopped (Ctrl-C); a stop at any moment loses nothing")?;
        out.flush()?;
        // Until the process is stopped, or the relay stops on an error.
        return running.wait_for(u64::MAX).await.map_err(relay_error);
    }
    running.wait_for(start.head).await.map_err(relay_error)?;
    running.stop().await.map_err(relay_error)?;
    let checkpoint = store.load_checkpoint(&args.name).await?;
    out.fields(vec![
        ("relay", json!(args.name)),
        ("stream", json!(args.stream)),
        ("checkpoint", json!(checkpoint)),
        (
            "published",
            json!(checkpoint.saturating_sub(start.checkpoint)),
        ),
    ])?;
    Ok(())
}

/// `relay status`: the checkpoint, the head, the lag and the stream's tip.
async fn status(ctx: &Ctx<'_>, args: &RelayArgs, out: &mut Output<'_>) -> Result<(), CliError> {
    let jetstream = connect(args).await?;
    existing_stream(&jetstream, args).await?;
    let tip = JetStreamBroker::new(jetstream, args.stream.clone())
        .tip()
        .await
        .map_err(CliError::failed)?;
    let checkpoint = ctx.store.checkpoints.load_checkpoint(&args.name).await?;
    let head = head(ctx.events()).await?;
    // The relay resumes after the further of the two (its checkpoint may trail a crash).
    let published = checkpoint.max(tip.position);
    let next = ctx
        .events()
        .read_log(&LogRead::forward(published.saturating_add(1), 1))
        .await?;
    out.fields(vec![
        ("relay", json!(args.name)),
        ("stream", json!(args.stream)),
        ("checkpoint", json!(checkpoint)),
        ("head", json!(head)),
        ("lag", json!(head.saturating_sub(published))),
        ("stream_last_sequence", json!(tip.sequence)),
        ("stream_last_position", json!(tip.position)),
        ("next_position", json!(next.first().map(|e| e.position))),
        (
            "next_event_id",
            json!(next.first().map(|e| e.event_id.to_string())),
        ),
    ])?;
    Ok(())
}

/// A JetStream context on the server `--nats` names; one that cannot be reached is a
/// usage error (exit 2).
async fn connect(args: &RelayArgs) -> Result<jetstream::Context, CliError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(args.nats.as_str())
        .await
        .map_err(|error| {
            CliError::Usage(format!("cannot connect to NATS at {}: {error}", args.nats))
        })?;
    Ok(jetstream::new(client))
}

/// `status` and `skip` read a stream; they never create one.
async fn existing_stream(jetstream: &jetstream::Context, args: &RelayArgs) -> Result<(), CliError> {
    match jetstream.get_stream(&args.stream).await {
        Ok(_) => Ok(()),
        Err(error) => Err(CliError::Usage(format!(
            "no JetStream stream `{}` at {}: {error}",
            args.stream, args.nats
        ))),
    }
}

/// A skip asked for the wrong event is the user's to fix (exit 2); the rest failed (exit 1).
fn relay_error(error: RelayError) -> CliError {
    match error {
        RelayError::NotSkippable { .. } => CliError::Usage(error.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}
