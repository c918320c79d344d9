//! The command line's grammar (clap): global options and every subcommand with its help.

use crate::output::Format;
use crate::target::StoreUrl;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Inspect, verify, repair and move an event store.
///
/// The store is `sqlite:PATH` or `postgres://USER@HOST:PORT/DATABASE[?schema=NAME]`
/// (schema `cqrs` by default). Reading never creates or migrates a store. Exit codes: 0 done,
/// 1 failed or found problems, 2 a usage error or a store URL naming no store.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    /// The store to work on
    #[arg(long, short, global = true, env = "CQRS_STORE", value_name = "URL")]
    pub store: Option<StoreUrl>,
    /// Output: a table for people, JSON or NDJSON for scripts
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Where changes made through the command line are recorded [default: PATH.audit.jsonl
    /// next to an SQLite file, ./cqrs-audit.jsonl for PostgreSQL]
    #[arg(long, global = true, env = "CQRS_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Events, streams, head position, counts by aggregate type, event type and schema
    /// version, and the store's size on disk
    Stats,
    /// One stream: a summary, or its events
    #[command(subcommand)]
    Stream(StreamCommand),
    /// One event
    #[command(subcommand)]
    Event(EventCommand),
    /// The latest events of the log; with -f, new ones as they are committed
    Tail(TailArgs),
    /// Every event of one correlation id, as the tree of what caused what
    Trace(TraceArgs),
    /// Events by type, aggregate and time
    Search(SearchArgs),
    /// Checks the store's invariants (and with --decode, that every event decodes); exits 1
    /// naming each failure
    Verify(VerifyArgs),
    /// Subscriptions: checkpoints, lag, parked events; recorded changes of checkpoints
    #[command(subcommand, alias = "subs")]
    Subscriptions(SubscriptionsCommand),
    /// Events a subscription parked: list, retry, discard
    #[command(subcommand)]
    Parked(ParkedCommand),
    /// Empties a registered subscription's read model and replays the whole log into it
    Rebuild(RebuildArgs),
    /// Copies every event of one store into another, resumably, then compares the two
    Copy(CopyArgs),
    /// The store's schema: check it, or migrate it
    #[command(subcommand)]
    Db(DbCommand),
    /// Serves the store's HTTP feed and event browser (read-only)
    Serve(ServeArgs),
    /// The relay of the log to NATS JetStream (the log as outbox): run it, see how far it
    /// got, skip an event the broker refuses (recorded)
    #[command(subcommand)]
    Relay(RelayCommand),
}

/// `stream ...`
#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// The stream's version, event count, types and time span
    Show {
        /// The stream id (`Cart-42`)
        stream: String,
    },
    /// The stream's events
    Events(StreamEventsArgs),
}

/// `stream events`
#[derive(Debug, Args)]
pub struct StreamEventsArgs {
    /// The stream id (`Cart-42`)
    pub stream: String,
    /// The first version shown (the last one, with --backward)
    #[arg(long)]
    pub from: Option<u64>,
    /// At most this many events
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Newest first
    #[arg(long)]
    pub backward: bool,
    /// Only events of these types (repeat or separate with commas)
    #[arg(long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Show each event's payload too
    #[arg(long)]
    pub payload: bool,
}

/// `event ...`
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// The envelope, payload, causation parent and children of one event
    Show {
        /// The event id, or `@POSITION`
        event: String,
    },
}

/// Filters shared by `tail` and `search`.
#[derive(Debug, Args)]
pub struct LogFilterArgs {
    /// Only events of these types (repeat or separate with commas)
    #[arg(long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only events of these aggregate types (stream categories: `Cart` for `Cart-42`)
    #[arg(long = "aggregate", value_delimiter = ',')]
    pub aggregates: Vec<String>,
}

/// `tail`
#[derive(Debug, Args)]
pub struct TailArgs {
    /// How many of the latest events to show first
    #[arg(short = 'n', long, default_value_t = 10)]
    pub lines: usize,
    /// Keep following the log; stop with Ctrl-C
    #[arg(short, long)]
    pub follow: bool,
    /// How often to look for new events when following, in milliseconds
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub interval: u64,
    /// Show each event's payload too
    #[arg(long)]
    pub payload: bool,
    #[command(flatten)]
    pub filter: LogFilterArgs,
}

/// `trace`
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The correlation id
    pub correlation_id: uuid::Uuid,
    /// Scan only events recorded at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_parser = parse_time)]
    pub after: Option<DateTime<Utc>>,
}

/// `search`
#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub filter: LogFilterArgs,
    /// Only events recorded at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_parser = parse_time)]
    pub after: Option<DateTime<Utc>>,
    /// Only events recorded before this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_parser = parse_time)]
    pub before: Option<DateTime<Utc>>,
    /// At most this many events
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Show each event's payload too
    #[arg(long)]
    pub payload: bool,
}

/// `verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also run every event through its aggregate's upcasters and decoder (needs an
    /// application's binary, which registers its aggregates)
    #[arg(long)]
    pub decode: bool,
}

/// `subscriptions ...`
#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// Every subscription with its checkpoint, the head, the lag and its parked events
    List,
    /// Sets a subscription's checkpoint back to 0, so it replays the log (its read model is
    /// not emptied: see `rebuild`); recorded in the audit log
    Reset(ChangeArgs),
    /// Sets a subscription's checkpoint to a position; recorded in the audit log
    SetCheckpoint {
        #[command(flatten)]
        change: ChangeArgs,
        /// The new checkpoint: the position of the last event taken as handled
        position: u64,
    },
    /// Moves a subscription's checkpoint past the next events it would handle, unhandled;
    /// recorded in the audit log
    Skip {
        #[command(flatten)]
        change: ChangeArgs,
        /// How many events to skip
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

/// What every recorded change names.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The subscription
    pub name: String,
    /// Why, for the audit log
    #[arg(long)]
    pub reason: Option<String>,
}

/// `parked ...`
#[derive(Debug, Subcommand)]
pub enum ParkedCommand {
    /// The parked events of one subscription, or of all
    List {
        /// The subscription [default: all]
        name: Option<String>,
    },
    /// Delivers a parked event to its (registered) subscription again; recorded
    Retry {
        #[command(flatten)]
        change: ChangeArgs,
        /// The parked event's position
        position: u64,
    },
    /// Removes a parked event from the list without handling it; recorded
    Discard {
        #[command(flatten)]
        change: ChangeArgs,
        /// The parked event's position
        position: u64,
    },
}

/// `rebuild`
#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// `copy`
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The store to copy from
    #[arg(long, value_name = "URL")]
    pub from: StoreUrl,
    /// The store to copy into: created if missing, and continued where an earlier copy
    /// stopped
    #[arg(long, value_name = "URL")]
    pub to: StoreUrl,
    /// Events read per page
    #[arg(long, default_value_t = 1000)]
    pub page: usize,
}

/// `db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Reports the schema version found and the one this build writes; exits 1 if they
    /// differ
    Check,
    /// Brings the schema up to date (and with --create, creates a store that is missing)
    Migrate {
        /// Create the store if there is none
        #[arg(long)]
        create: bool,
    },
}

/// `serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen (port 0: any free port; the address is printed)
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Positions per feed page
    #[arg(long, default_value_t = 100)]
    pub page_size: u64,
}

/// `relay ...`
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Publishes the log to a JetStream stream (created for `<prefix>.>` if missing) until
    /// the process is stopped (Ctrl-C or a kill at any moment loses and duplicates nothing:
    /// the next run resumes after the stream's last message), or with --until-caught-up
    /// until every event stored at start is acknowledged
    Run {
        #[command(flatten)]
        relay: RelayArgs,
        /// The subject prefix: events go to `<prefix>.<aggregate type>.<stream id>`
        #[arg(long)]
        prefix: String,
        /// Stop once every event stored at start is published and acknowledged
        #[arg(long)]
        until_caught_up: bool,
    },
    /// The relay's checkpoint, the log's head, the lag, and the stream's last sequence and
    /// the log position on its last message
    Status {
        #[command(flatten)]
        relay: RelayArgs,
    },
    /// Moves the relay past the event it is stopped before (one the broker refuses for
    /// good) without publishing it; recorded in the log (a `RelaySkipped` event, which is
    /// published) and in the audit log. Run it while the relay is stopped
    Skip {
        #[command(flatten)]
        relay: RelayArgs,
        /// The position of the refused event (the relay's error names it)
        #[arg(long)]
        position: u64,
        /// The refused event's id, checked against the event at --position if given
        #[arg(long)]
        event_id: Option<uuid::Uuid>,
        /// Why, for the record in the log and the audit log
        #[arg(long)]
        reason: String,
    },
}

/// Which relay, publishing where.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The NATS server
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "127.0.0.1:4222",
        value_name = "URL"
    )]
    pub nats: String,
    /// The JetStream stream
    #[arg(long, value_name = "NAME")]
    pub stream: String,
    /// The relay's name: the key of its checkpoint in the store
    #[arg(long, default_value = "relay", value_name = "RELAY")]
    pub name: String,
}

/// An instant as RFC 3339 (`2024-05-01T12:00:00Z`) or a date (midnight UTC).
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .ok_or_else(|| {
            format!("`{text}` is not a time: use RFC 3339 (2024-05-01T12:00:00Z) or YYYY-MM-DD")
        })
}
