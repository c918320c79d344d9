//! The record of every change an operator makes through the command line (`subscriptions
//! reset`, `set-checkpoint`, `skip`, `rebuild`, `parked retry|discard`, `relay skip`): one
//! JSON line appended to an audit log file, and the same facts as a `tracing` event (target
//! `cqrs::audit`, level INFO) for whatever collects the process's logs.
//!
//! The log lives outside the store on purpose: the store's schema belongs to its backend
//! crate, and an audit entry must be written even when the store refuses the change. By
//! default it is `PATH.audit.jsonl` next to an SQLite file, and `cqrs-audit.jsonl` in the
//! working directory for PostgreSQL; `--audit-log` (or `CQRS_AUDIT_LOG`) names another.

use crate::error::CliError;
use crate::target::StoreUrl;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The audit log file for `store`, unless one is named.
pub fn default_path(store: &StoreUrl) -> PathBuf {
    match store {
        StoreUrl::Sqlite(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".audit.jsonl");
            PathBuf::from(name)
        }
        StoreUrl::Postgres { .. } => PathBuf::from("cqrs-audit.jsonl"),
    }
}

/// Records `action` on `store` with its `details` (and the outcome), before it is reported.
pub fn record(
    log: &Path,
    store: &StoreUrl,
    action: &str,
    details: Value,
    outcome: &Result<(), String>,
) -> Result<(), CliError> {
    let user = std::env::var("USER").unwrap_or_default();
    let entry = json!({
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "user": user,
        "store": store.to_string(),
        "action": action,
        "details": details,
        "outcome": match outcome { Ok(()) => "done".to_owned(), Err(error) => format!("failed: {error}") },
    });
    tracing::info!(target: "cqrs::audit", %entry, "{action}");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|error| {
            CliError::Failed(format!(
                "cannot open the audit log {}: {error}",
                log.display()
            ))
        })?;
    writeln!(file, "{entry}").map_err(|error| {
        CliError::Failed(format!(
            "cannot write the audit log {}: {error}",
            log.display()
        ))
    })
}
