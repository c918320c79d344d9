//! `cqrs`: the generic command line, on raw envelopes (no application types registered).

fn main() -> std::process::ExitCode {
    cqrs_cli::App::new("cqrs").main()
}
