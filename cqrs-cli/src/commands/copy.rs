//! `copy --from URL --to URL`: every event of one store appended to another in log order,
//! with its id, stream, version, type, schema version, payload and metadata as they are
//! (the target records its own positions and times: into an empty target the positions
//! come out the same, since both logs are dense).
//!
//! Resumable: the copy starts after the source event that the target's last event is, so
//! re-running it continues where it stopped, and each append is all or nothing. At the
//! end both logs are counted and hashed (SHA-256 over each event's copied fields, in log
//! order), and any difference is an error.

use super::context::{head, PAGE};
use crate::args::CopyArgs;
use crate::error::CliError;
use crate::output::Output;
use crate::progress::Progress;
use crate::target::Opening;
use cqrs_core::{EventStore, ExpectedVersion, LogRead, NewEvent, RecordedEvent};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Copies, then compares the two logs.
pub(crate) async fn run(args: CopyArgs, out: &mut Output<'_>) -> Result<(), CliError> {
    if args.page == 0 {
        return Err(CliError::Usage("--page must be at least 1".to_owned()));
    }
    if args.from == args.to {
        return Err(CliError::Usage(format!(
            "--from and --to both name {}",
            args.from
        )));
    }
    let source = args.from.open(Opening::Existing).await?;
    let target = args.to.open(Opening::Create).await?;
    let (source, target) = (source.events.as_ref(), target.events.as_ref());
    let start = resume_at(source, target).await?;
    let total = head(source).await?;
    let mut progress = Progress::new("copy", total);
    let mut from = start;
    let mut copied = 0u64;
    loop {
        let page = source
            .read_log(&LogRead::forward(from, args.page.min(PAGE * 10)))
            .await?;
        let Some(last) = page.last().map(|event| event.position) else {
            break;
        };
        for run in page.chunk_by(|a, b| a.stream_id == b.stream_id) {
            append_run(target, run).await?;
            copied += run.len() as u64;
        }
        progress.update(last);
        from = last + 1;
    }
    progress.finish();
    let (source_sum, target_sum) = (checksum(source).await?, checksum(target).await?);
    let same = source_sum == target_sum;
    out.fields(vec![
        ("from", json!(args.from.to_string())),
        ("to", json!(args.to.to_string())),
        ("resumed_after", json!(start - 1)),
        ("copied", json!(copied)),
        ("source_events", json!(source_sum.events)),
        ("target_events", json!(target_sum.events)),
        ("source_sha256", json!(source_sum.hex())),
        ("target_sha256", json!(target_sum.hex())),
        ("identical", json!(same)),
    ])?;
    if same {
        Ok(())
    } else {
        Err(CliError::Found(format!(
            "the copy differs from its source: {} events hashing to {} in the source, {} \
             hashing to {} in the target",
            source_sum.events,
            source_sum.hex(),
            target_sum.events,
            target_sum.hex()
        )))
    }
}

/// The source position to copy from: one past the source event the target's last event
/// is (1 for an empty target). A target whose last event the source does not hold is
/// another store's, and is refused.
async fn resume_at(source: &dyn EventStore, target: &dyn EventStore) -> Result<u64, CliError> {
    let last = target.read_log(&LogRead::backward(u64::MAX, 1)).await?;
    let Some(last) = last.first() else {
        return Ok(1);
    };
    match source.read_events_by_id(&[last.event_id]).await?.first() {
        Some(found) => Ok(found.position + 1),
        None => Err(CliError::Usage(format!(
            "the target already holds events, and its last one ({}, stream `{}` version {}) \
             is not in the source: copy into an empty store, or into the one an earlier copy \
             of this source filled",
            last.event_id, last.stream_id, last.version
        ))),
    }
}

/// Appends consecutive events of one stream at the versions they have in the source.
async fn append_run(target: &dyn EventStore, run: &[RecordedEvent]) -> Result<(), CliError> {
    let Some(first) = run.first() else {
        return Ok(());
    };
    let events = run
        .iter()
        .map(|event| NewEvent {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            metadata: event.metadata.clone(),
        })
        .collect();
    let expected = ExpectedVersion::Exact(first.version - 1);
    target.append(&first.stream_id, expected, events).await?;
    Ok(())
}

/// A log's event count and hash.
#[derive(Debug, PartialEq, Eq)]
struct Checksum {
    events: u64,
    sha256: Vec<u8>,
}

impl Checksum {
    fn hex(&self) -> String {
        self.sha256
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// SHA-256 over every event's copied fields, each length-prefixed, in log order.
async fn checksum(events: &dyn EventStore) -> Result<Checksum, CliError> {
    let mut hash = Sha256::new();
    let mut count = 0u64;
    let mut from = 1;
    loop {
        let page = events.read_log(&LogRead::forward(from, PAGE)).await?;
        let Some(last) = page.last().map(|event| event.position) else {
            break;
        };
        for event in &page {
            count += 1;
            let metadata = serde_json::to_string(&event.metadata).map_err(CliError::failed)?;
            for field in [
                event.stream_id.as_bytes(),
                &event.version.to_be_bytes(),
                event.event_id.as_bytes(),
                event.event_type.as_bytes(),
                &event.schema_version.to_be_bytes(),
                event.payload.as_bytes(),
                metadata.as_bytes(),
            ] {
                hash.update((field.len() as u64).to_be_bytes());
                hash.update(field);
            }
        }
        from = last + 1;
    }
    Ok(Checksum {
        events: count,
        sha256: hash.finalize().to_vec(),
    })
}
