//! Runnable stories over the example domains, written as library functions so the binaries
//! stay thin and the tests can run the very same code and check what it reports.
//!
//! - [`cart`]: commands, refusals, reload, metadata and reading old events through upcasters.
//! - [`orders`]: the order lifecycle and the read model projected from the global log.
//! - [`read_models`]: an after-commit handler vs an inline projection when the read model fails.
//! - [`library`]: a subscription keeps members' loans in step with books (eventual consistency).
//! - [`onboarding`]: a subscription turns a new user into onboarding tasks, traced end to end.
//! - [`bank`]: transfers between accounts run by a process manager, exactly once, with
//!   compensation when the target refuses the money.
//! - [`on_postgres`]: the stories on PostgreSQL, each in a schema of its own.

pub mod bank;
pub mod cart;
mod data_dir;
pub mod library;
pub mod on_postgres;
pub mod onboarding;
pub mod orders;
pub mod read_models;

pub use data_dir::{DataDir, DataDirArg};

use cqrs_core::{
    Aggregate, Committed, DomainEvent, EventStore, Metadata, RecordedEvent, Repository,
    RepositoryError,
};
use std::fmt::Debug;
use std::io::{self, Write};
use uuid::Uuid;

/// Any failure of a demo other than a refused command (refusals are part of the story).
pub type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// Where the demos print; `Send` so a demo's future can move between threads.
pub type Output<'a> = &'a mut (dyn Write + Send);

/// The custom metadata key every demo command carries, next to its correlation id.
pub const USER_KEY: &str = "user";

/// Prints the framework's spans and events (INFO and up) to stdout from now on: every line
/// shows the chain of spans it happened in (`subscription`, `handle`, `execute`, `append`),
/// each with its stream, version and correlation id, so one request can be followed end to
/// end. Installs a process-wide subscriber; a second call changes nothing.
pub fn print_traces() {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .without_time()
        .with_target(false)
        .with_writer(std::io::stdout)
        .finish();
    // Already installed (by an earlier call or by the embedding program): keep that one.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Runs one command with `metadata` and prints it with what it committed or why it was
/// refused; a refusal is returned as the inner `Err`, any other failure as the outer one.
async fn run_command<A, S>(
    repository: &Repository<A, S>,
    id: &str,
    command: A::Command,
    metadata: &Metadata,
    out: Output<'_>,
) -> Result<Result<Committed<A::Event>, A::Error>, DemoError>
where
    A: Aggregate,
    A::Command: Debug,
    A::Error: Debug,
    S: EventStore,
{
    writeln!(out, "> {}-{id}: {command:?}", A::TYPE)?;
    match repository.execute_with(id, command, metadata.clone()).await {
        Ok(committed) => {
            for envelope in &committed.events {
                writeln!(
                    out,
                    "    committed {} version={} position={} correlation_id={}",
                    envelope.event.event_type(),
                    envelope.version,
                    envelope.position,
                    describe(envelope.metadata.correlation_id),
                )?;
            }
            Ok(Ok(committed))
        }
        Err(RepositoryError::Domain(error)) => {
            writeln!(out, "    refused: {error:?}: {error}")?;
            Ok(Err(error))
        }
        Err(other) => Err(other.into()),
    }
}

/// Prints stored events with the metadata each one carries.
fn print_stored(out: Output<'_>, events: &[RecordedEvent]) -> io::Result<()> {
    for event in events {
        write!(
            out,
            "    {} version={} position={} schema={} correlation_id={}",
            event.stream_id,
            event.version,
            event.position,
            event.schema_version,
            describe(event.metadata.correlation_id),
        )?;
        for (key, value) in &event.metadata.custom {
            // A string as it is (`user=ada`), any other value as JSON (`tenant_id=42`).
            match value.as_str() {
                Some(text) => write!(out, " {key}={text}")?,
                None => write!(out, " {key}={value}")?,
            }
        }
        writeln!(out, " {}", event.event_type)?;
    }
    Ok(())
}

fn describe(id: Option<Uuid>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.to_string())
}

/// A short tag from the session's correlation id, so each run writes to its own streams and
/// a demo can be repeated on the same database.
fn session_tag(correlation_id: Uuid) -> String {
    correlation_id.simple().to_string()[..8].to_owned()
}
