//! The commands, one module per group, and the dispatch of a parsed command line to them.

mod context;
mod copy;
mod db;
mod read;
mod relay;
mod serve;
mod stats;
mod subscriptions;
mod verify;

use crate::args::{Cli, Command};
use crate::audit;
use crate::error::CliError;
use crate::output::Output;
use crate::registry::Registry;
use crate::target::Opening;
use context::Ctx;

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
        Command::Relay(command) => relay::run(&ctx, command, out).await,
        Command::Copy(_) | Command::Db(_) => Ok(()),
    }
}
