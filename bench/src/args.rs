//! The command line: sizes, backends and workloads, parsed by `clap` (`--help` lists them
//! with their defaults; a bad flag exits with status 2 and the usage).

use crate::backend::Backend;
use crate::script::EVENTS_PER_CART;
use clap::{ArgAction, Parser};
use std::path::PathBuf;
use std::str::FromStr;

/// Runs the benchmark workloads on the cart domain through the public API, one line per
/// figure on stdout (`cqrs <workload> <backend> <metric>=<value> <unit>`), progress and
/// checks on stderr. Exits with status 1 if a check fails.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bench",
    args_override_self = true,
    after_help = "Workloads, output lines and how to compare them: bench/README.md"
)]
pub struct Args {
    /// Carts of W1 and W2
    #[arg(long, value_name = "N", default_value = "1000", value_parser = number::<u32>)]
    pub carts: u32,

    /// Concurrent tokio tasks of W2
    #[arg(long, value_name = "N", default_value = "8", value_parser = positive::<u32>)]
    pub tasks: u32,

    /// Events of the W3 stream; a comma list reports W3 at each size
    #[arg(
        long,
        value_name = "N[,N...]",
        default_value = "100000",
        value_parser = sizes
    )]
    pub replay_events: Sizes,

    /// W3 again at these sizes, for scale: plain loads only, labels `<backend>@<size>`;
    /// `none` skips it
    #[arg(
        long,
        value_name = "N,N...|none",
        default_value = "10000,100000,1000000",
        value_parser = sizes_or_none
    )]
    pub replay_scale: Sizes,

    /// Events of the large W4 store, N/20 carts' scripts; W1 runs again on that store once
    /// W4 has read it
    #[arg(long, value_name = "N", default_value = "1000000", value_parser = bulk_events)]
    pub bulk_events: u64,

    /// Timed loads per W3 figure and passes per W4 figure; the median is reported
    #[arg(long, value_name = "N", default_value = "5", value_parser = positive::<usize>)]
    pub loads: usize,

    /// Backends to run, in this order
    #[arg(
        long,
        value_name = "B,B...",
        value_delimiter = ',',
        action = ArgAction::Set,
        default_value = "sqlite-normal,sqlite-full,mem"
    )]
    pub backends: Vec<Backend>,

    /// Where the SQLite files go; databases are deleted once their workloads ran [default:
    /// a fresh directory under the system temp dir, removed at the end]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The output file of the hand-written limits program (`limits --out FILE`), run on this
    /// machine in the same session: its figures are printed after the bench's, with each
    /// bench figure's ratio to its limit
    #[arg(long, value_name = "FILE")]
    pub limits: Option<PathBuf>,

    /// Workloads to run (P1 runs with W4)
    #[arg(
        long,
        value_name = "W,W...",
        value_delimiter = ',',
        action = ArgAction::Set,
        default_value = "W1,W2,W3,W4",
        ignore_case = true
    )]
    pub workloads: Vec<Workload>,
}

impl Args {
    /// Whether `workload` was asked for.
    pub fn runs(&self, workload: Workload) -> bool {
        self.workloads.contains(&workload)
    }
}

/// A workload that `--workloads` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Commands on one task
    #[value(name = "W1")]
    W1,
    /// Commands on concurrent tasks
    #[value(name = "W2")]
    W2,
    /// Replay of one long stream
    #[value(name = "W3")]
    W3,
    /// Global read and decode (and P1, a subscription catching up)
    #[value(name = "W4")]
    W4,
}

/// Sizes given as a comma list, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes(pub Vec<u64>);

/// A number, `_` allowed as a separator (`1_000_000`).
fn number<T: FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{value}` is not a valid number"))
}

/// A number of at least 1.
fn positive<T: FromStr + PartialOrd + Default>(value: &str) -> Result<T, String> {
    let parsed: T = number(value)?;
    if parsed <= T::default() {
        return Err(format!("must be at least 1, got {value}"));
    }
    Ok(parsed)
}

fn sizes(value: &str) -> Result<Sizes, String> {
    value
        .split(',')
        .map(positive)
        .collect::<Result<_, _>>()
        .map(Sizes)
}

fn sizes_or_none(value: &str) -> Result<Sizes, String> {
    if value.trim() == "none" {
        Ok(Sizes(Vec::new()))
    } else {
        sizes(value)
    }
}

fn bulk_events(value: &str) -> Result<u64, String> {
    let events: u64 = number(value)?;
    if events < EVENTS_PER_CART {
        return Err(format!(
            "must be at least {EVENTS_PER_CART} (one cart's script), got {value}"
        ));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
    }

    #[test]
    fn the_defaults_run_everything_at_full_size() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.carts, 1000);
        assert_eq!(args.tasks, 8);
        assert_eq!(args.replay_events, Sizes(vec![100_000]));
        assert_eq!(args.replay_scale, Sizes(vec![10_000, 100_000, 1_000_000]));
        assert_eq!(args.bulk_events, 1_000_000);
        assert_eq!(args.loads, 5);
        assert_eq!(
            args.backends,
            [Backend::SqliteNormal, Backend::SqliteFull, Backend::Mem]
        );
        assert_eq!(args.data_dir, None);
        for workload in [Workload::W1, Workload::W2, Workload::W3, Workload::W4] {
            assert!(args.runs(workload), "{workload:?}");
        }
    }

    #[test]
    fn lists_separators_and_case_are_read_as_before() {
        let args = parse(&[
            "--carts=300",
            "--replay-events",
            "1_000,2000",
            "--replay-scale",
            "none",
            "--backends",
            "mem,sqlite-full",
            "--workloads",
            "w1,W4",
            "--data-dir",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(args.carts, 300);
        assert_eq!(args.replay_events, Sizes(vec![1000, 2000]));
        assert_eq!(args.replay_scale, Sizes(Vec::new()));
        assert_eq!(args.backends, [Backend::Mem, Backend::SqliteFull]);
        assert_eq!(args.workloads, [Workload::W1, Workload::W4]);
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn a_flag_given_twice_takes_the_last_value() {
        let args = parse(&["--carts", "50", "--backends", "mem", "--carts", "300"]).unwrap();
        assert_eq!(args.carts, 300);
        let args = parse(&["--workloads", "W1,W2", "--workloads", "W4"]).unwrap();
        assert_eq!(args.workloads, [Workload::W4]);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["--tasks", "0"][..],
            &["--loads", "0"],
            &["--carts", "many"],
            &["--replay-events", "10,0"],
            &["--bulk-events", "19"],
            &["--backends", "oracle"],
            &["--backends", ""],
            &["--workloads", "W5"],
            &["--unknown"],
            &["--carts"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_is_not_an_error() {
        let err = parse(&["--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert_eq!(err.exit_code(), 0);
    }
}
