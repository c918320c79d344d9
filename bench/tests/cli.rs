//! The `bench` binary as CI and users call it: `--help` succeeds, a bad flag exits with
//! status 2, and a tiny run of every workload on every backend passes all its checks.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .expect("the bench binary starts")
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    let output = bench(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("Usage: bench"), "{help}");
    assert!(help.contains("--bulk-events"), "{help}");
}

#[test]
fn a_bad_flag_exits_with_status_2_and_says_why() {
    let output = bench(&["--bogus"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unexpected argument '--bogus'"), "{stderr}");
    assert!(stderr.contains("Usage: bench"), "{stderr}");
    assert!(output.stdout.is_empty());
    for bad in [&["--tasks", "0"][..], &["--workloads", "W9"], &["--carts"]] {
        let output = bench(bad);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("'{}", bad[0])),
            "{bad:?}: {stderr}"
        );
    }
}

/// Every workload on every backend, W2 writing into W1's database before P1 reads it: the
/// combination whose subscription check once counted the W2 events as missing ones.
#[test]
fn a_tiny_run_of_everything_passes_its_checks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = bench(&[
        "--carts",
        "6",
        "--tasks",
        "4",
        "--replay-events",
        "100,200",
        "--replay-scale",
        "400",
        "--bulk-events",
        "400",
        "--loads",
        "1",
        "--data-dir",
        dir.path().to_str().expect("a utf-8 temp path"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!(fields[0], "cqrs", "{line}");
        assert!(fields[3].contains('='), "{line}");
    }
    for expected in [
        "cqrs W1 sqlite-normal cmds_per_s=",
        "cqrs W1 sqlite-full+cache cmds_per_s=",
        "cqrs W2 mem cmds_per_s=",
        "cqrs W3 sqlite-normal+snapshot@200 load_ms_median=",
        "cqrs W3 mem@400 events_per_s=",
        "cqrs W4 sqlite-normal events_per_s=",
        "cqrs P1 sqlite-normal events_per_s=",
        "cqrs P1 mem events_per_s=",
        "cqrs W4 mem@400 peak_rss_mb=",
        "cqrs W1 sqlite-normal@400 cmds_per_s=",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in\n{stdout}");
    }
    // P1 covered the W1 and the W2 events of W1's database: 2 x 6 carts x 20 events.
    assert!(
        stderr.contains("P1 sqlite-normal: a subscription caught up over 240 events"),
        "{stderr}"
    );
    // Every database was deleted once its workloads ran; the given directory is kept.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the data dir is kept")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Given the limits program's output, the bench prints its limit figures and each ratio;
/// a limits file that cannot be read stops it before any work, naming the file.
#[test]
fn limits_are_printed_with_the_ratios_and_a_bad_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = dir.path().join("limits.txt");
    std::fs::write(
        &limits,
        "limits L5-W1-handwritten sqlite-normal cmds_per_s=1000 cmd/s\n\
         # limits check L5-W1 sqlite-normal OK\n",
    )
    .expect("limits file written");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let output = bench(&[
        "--carts",
        "3",
        "--workloads",
        "W1",
        "--backends",
        "sqlite-normal",
        "--limits",
        limits.to_str().expect("utf-8"),
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("limits L5-W1-handwritten sqlite-normal cmds_per_s=1000\n"),
        "{stdout}"
    );
    let ratio = stdout
        .lines()
        .find(|line| line.starts_with("ratio W1 sqlite-normal cmds_per_s="))
        .unwrap_or_else(|| panic!("no W1 ratio in\n{stdout}"));
    let figure: f64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("cqrs W1 sqlite-normal cmds_per_s="))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|value| value.parse().ok())
        .expect("the W1 figure");
    assert!(
        ratio.contains(&format!("={:.2} ", figure / 1000.0)),
        "{ratio} for {figure}"
    );

    let missing = dir.path().join("no-such-file.txt");
    let output = bench(&["--limits", missing.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-file.txt"), "{stderr}");
    assert!(output.stdout.is_empty());
}
