//! `bench`: runs the benchmark workloads (see `bench/README.md`); exits with status 0 when
//! every check passed, 1 when one failed, 2 on bad flags.

use clap::Parser;
use cqrs_bench::args::Args;
use cqrs_bench::limits::{ratios, Limit};
use cqrs_bench::report::{compact, figures};
use cqrs_examples::demo::DataDir;
use std::process::ExitCode;
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let data_dir = match DataDir::new(args.data_dir.clone(), "cqrs-bench") {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Read first: a bad file is found before the long run, not after.
    let limits = match args
        .limits
        .as_deref()
        .map(cqrs_bench::limits::read)
        .transpose()
    {
        Ok(limits) => limits,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("bench: data dir {}", data_dir.path().display());
    let started = Instant::now();
    let outcome = cqrs_bench::run(&args, data_dir.path()).await;
    drop(data_dir);
    match outcome {
        Ok(()) => {
            if let Some(limits) = limits {
                print_limits(&limits, &args);
            }
            eprintln!("bench: done in {:.1} s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: FAILED: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// The limit figures as the limits program printed them, then each ratio.
fn print_limits(limits: &[Limit], args: &Args) {
    for limit in limits {
        println!(
            "limits {} {} {}={}",
            limit.workload, limit.backend, limit.metric, limit.value
        );
    }
    let bulk = format!("@{}", compact(args.bulk_events));
    for line in ratios(&figures(), limits, &bulk) {
        println!("{line}");
    }
}
