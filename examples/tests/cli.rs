//! Every example binary's command line: `--help` prints the usage and succeeds, an unknown
//! or incomplete flag exits with status 2 and the usage, before any file is touched.

use std::process::{Command, Output};

/// Each binary with the flags its usage names.
const BINARIES: [(&str, &str, &[&str]); 8] = [
    (
        "cqrs-examples",
        env!("CARGO_BIN_EXE_cqrs-examples"),
        &["--data-dir"],
    ),
    ("cart", env!("CARGO_BIN_EXE_cart"), &["--db", "--reload"]),
    ("orders", env!("CARGO_BIN_EXE_orders"), &["--data-dir"]),
    ("library", env!("CARGO_BIN_EXE_library"), &["--data-dir"]),
    (
        "onboarding",
        env!("CARGO_BIN_EXE_onboarding"),
        &["--data-dir"],
    ),
    (
        "bank",
        env!("CARGO_BIN_EXE_bank"),
        &["--data-dir", "--settle"],
    ),
    (
        "serve",
        env!("CARGO_BIN_EXE_serve"),
        &["--data-dir", "--addr", "--no-stories", "--page-size"],
    ),
    (
        "reporting",
        env!("CARGO_BIN_EXE_reporting"),
        &["--feed", "--data-dir", "--until", "--long-poll"],
    ),
];

fn run(path: &str, args: &[&str]) -> Output {
    Command::new(path)
        .args(args)
        .output()
        .expect("the binary starts")
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for (name, path, flags) in BINARIES {
        let output = run(path, &["--help"]);
        assert_eq!(output.status.code(), Some(0), "{name}");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains(&format!("Usage: {name}")), "{name}: {help}");
        for flag in flags {
            assert!(help.contains(flag), "{name} --help names {flag}: {help}");
        }
    }
}

#[test]
fn an_unknown_flag_exits_with_status_2_and_the_usage() {
    for (name, path, _) in BINARIES {
        let output = run(path, &["--bogus"]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("Usage: {name}")),
            "{name}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{name} ran before refusing");
    }
}

#[test]
fn a_flag_without_its_value_or_a_missing_required_one_is_refused() {
    let (_, cart, _) = BINARIES[1];
    assert_eq!(
        run(cart, &["--reload"]).status.code(),
        Some(2),
        "--db is required"
    );
    assert_eq!(run(cart, &["--db"]).status.code(), Some(2));
    let (_, library, _) = BINARIES[3];
    assert_eq!(run(library, &["--data-dir"]).status.code(), Some(2));
}
