//! Durability across processes: one `cart` process writes a cart to a SQLite file, a second
//! process started with `--reload` reads the same total and version back from the file.

use std::path::Path;
use std::process::Command;

/// Runs the `cart` binary and returns its `total_price=` and `version=` lines.
fn run_cart(db: &Path, reload: bool) -> (String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cart"));
    command.arg("--db").arg(db);
    if reload {
        command.arg("--reload");
    }
    let output = command.output().expect("the cart binary starts");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    assert!(
        output.status.success(),
        "cart (reload: {reload}) failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in {stdout:?}"))
            .to_owned()
    };
    (line("total_price="), line("version="))
}

fn version(line: &str) -> u64 {
    line["version=".len()..].parse().expect("a version number")
}

#[test]
fn a_second_process_reloads_what_the_first_wrote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("cart.db");
    let written = run_cart(&db, false);
    let reloaded = run_cart(&db, true);
    assert_eq!(written, reloaded);
    assert!(version(&written.1) > 0, "{written:?}");
}

#[test]
fn reloading_a_fresh_file_shows_an_empty_cart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (total, version_line) = run_cart(&dir.path().join("empty.db"), true);
    assert_eq!(total, "total_price=0");
    assert_eq!(version(&version_line), 0);
}

#[test]
fn a_second_writing_run_appends_to_the_same_cart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("cart.db");
    let first = run_cart(&db, false);
    let second = run_cart(&db, false);
    // The coupon is refused the second time; the other three commands append again.
    assert_eq!(version(&second.1), version(&first.1) + 3);
    assert_eq!(run_cart(&db, true), second);
}
