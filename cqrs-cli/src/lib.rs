//! The `cqrs` command line as a library: the generic `cqrs` binary is [`App::new`] with
//! nothing registered, working on raw envelopes; an application wraps the same commands
//! in a `main` of its own that registers its aggregates (with their upcasters), projections
//! and subscriptions, and gets the commands that need its types too (`verify --decode`,
//! `rebuild`, `parked retry`).
//!
//! ```no_run
//! use cqrs_cli::App;
//! # use cqrs_core::testing::toy::Tally;
//! fn main() -> std::process::ExitCode {
//!     App::new("tally-admin")
//!         .aggregate::<Tally>()
//!         .main()
//! }
//! ```
//!
//! Every command, its options and its output are described by `cqrs --help`; the README's
//! "Operating a store" section shows a session.

mod args;
mod audit;
mod commands;
mod error;
mod output;
mod progress;
mod registry;
mod target;

pub use error::CliError;
pub use output::Format;
pub use target::StoreUrl;

use args::Cli;
use clap::{CommandFactory, FromArgMatches};
use cqrs_core::{Aggregate, StoreError, Subscription, Upcasters};
use cqrs_sqlite::{MultiProjection, SqliteStore};
use registry::Registry;
use std::ffi::OsString;
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// A command line: the commands, plus what an application registered.
pub struct App {
    name: &'static str,
    registry: Registry,
}

impl App {
    /// The commands under program name `name` (shown in help and errors), nothing
    /// registered yet.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            registry: Registry::default(),
        }
    }

    /// Registers aggregate `A`, whose events `verify --decode` then decodes.
    pub fn aggregate<A: Aggregate>(self) -> Self {
        self.aggregate_with_upcasters::<A>(Upcasters::new())
    }

    /// Registers aggregate `A` with the upcasters its repository reads old events through.
    pub fn aggregate_with_upcasters<A: Aggregate>(mut self, upcasters: Upcasters) -> Self {
        self.registry.add_aggregate::<A>(upcasters);
        self
    }

    /// Registers a projection in the SQLite file, fed by subscription `subscription`:
    /// `rebuild` empties it and replays the log into it. `make` builds the projection.
    pub fn projection<P, F>(mut self, subscription: &str, make: F) -> Self
    where
        P: MultiProjection,
        F: Fn() -> P + Send + Sync + 'static,
    {
        let build = registry::projection_subscription(subscription.to_owned(), make);
        self.registry
            .add_subscription(subscription.to_owned(), build);
        self
    }

    /// Registers subscription `name`, built by `build` on the open (SQLite) store as the
    /// application builds it: `rebuild` and `parked retry` run it.
    pub fn subscription<F, Fut>(mut self, name: &str, build: F) -> Self
    where
        F: Fn(SqliteStore) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Subscription<SqliteStore>, StoreError>> + Send + 'static,
    {
        let build = Arc::new(build);
        self.registry.add_subscription(
            name.to_owned(),
            Arc::new(move |store| {
                let build = Arc::clone(&build);
                Box::pin(async move { build(store).await })
            }),
        );
        self
    }

    /// Runs the command line of this process's arguments, prints any failure on standard
    /// error, and returns the exit code: what an application's `main` returns.
    pub fn main(self) -> ExitCode {
        let mut stdout = std::io::stdout();
        match self.run(std::env::args_os(), &mut stdout) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Exit::Clap(error)) => {
                // clap prints help and version on stdout, errors on stderr.
                let _ = error.print();
                ExitCode::from(if error.use_stderr() { 2 } else { 0 })
            }
            Err(Exit::Cli(error)) => {
                let _ = stdout.flush();
                eprintln!("{}: error: {error}", self.name);
                ExitCode::from(error.exit_code())
            }
        }
    }

    /// Runs the command line `args` (the program name first), writing to `out`.
    pub fn run<I, T>(&self, args: I, out: &mut (dyn Write + Send)) -> Result<(), Exit>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command()
            .name(self.name)
            .bin_name(self.name)
            .try_get_matches_from(args)
            .map_err(Exit::Clap)?;
        let cli = Cli::from_arg_matches(&matches).map_err(Exit::Clap)?;
        install_tracing();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|error| Exit::Cli(CliError::failed(error)))?;
        let mut output = output::Output::new(cli.format, out);
        runtime
            .block_on(commands::run(cli, &self.registry, &mut output))
            .map_err(Exit::Cli)
    }
}

/// How [`App::run`] ended without success.
#[derive(Debug)]
pub enum Exit {
    /// The arguments did not parse, or asked for help or the version (clap's own message).
    Clap(clap::Error),
    /// The command failed.
    Cli(CliError),
}

/// Warnings and errors of the framework (a subscription retrying, say) on standard error.
fn install_tracing() {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .without_time()
        .finish();
    // Already installed by the embedding program: keep that one.
    let _ = tracing::subscriber::set_global_default(subscriber);
}
