//! A reference model of the store contract, for model-based tests of backends.
//!
//! [`append_ops`] generates random appends (random streams, expected versions, batch sizes,
//! reused event ids); [`check_against_model`] runs them against a backend and against
//! [`ReferenceStore`], a deliberately naive list of `(stream, event id)` pairs, and fails at
//! the first outcome or final content that differs.

use crate::envelope::NewEvent;
use crate::metadata::Metadata;
use crate::store::{EventStore, ExpectedVersion, StoreError};
use proptest::prelude::*;
use proptest::sample::Index;
use uuid::Uuid;

/// One generated append.
#[derive(Debug, Clone)]
pub struct AppendOp {
    /// Which of four streams it goes to.
    pub stream: u8,
    /// The condition it is made under.
    pub expected: ExpectedVersion,
    /// How many events it carries (0 to 4).
    pub batch: usize,
    /// Replace the batch's last event id with one generated earlier (stored or not).
    pub reuse_id: Option<Index>,
}

fn expected_versions() -> impl Strategy<Value = ExpectedVersion> {
    prop_oneof![
        Just(ExpectedVersion::Any),
        Just(ExpectedVersion::NoStream),
        Just(ExpectedVersion::StreamExists),
        (0u64..8).prop_map(ExpectedVersion::Exact),
    ]
}

/// Sequences of up to `max_ops` random appends.
pub fn append_ops(max_ops: usize) -> impl Strategy<Value = Vec<AppendOp>> {
    let op = (
        0u8..4,
        expected_versions(),
        0usize..5,
        prop::option::weighted(0.15, any::<Index>()),
    )
        .prop_map(|(stream, expected, batch, reuse_id)| AppendOp {
            stream,
            expected,
            batch,
            reuse_id,
        });
    prop::collection::vec(op, 0..max_ops)
}

/// What one append did, in terms both the model and a backend can report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed; the stream's version afterwards.
    Appended {
        /// The stream's version after the append.
        version: u64,
    },
    /// Refused: the stream was at `actual`.
    WrongExpectedVersion {
        /// The stream's version at the time.
        actual: Option<u64>,
    },
    /// Refused: this id was taken.
    DuplicateEventId {
        /// The taken id.
        event_id: Uuid,
    },
    /// Any other error (always a failure of the backend).
    Failed(String),
}

/// The contract in its plainest form: a list of `(stream, event id)` in commit order.
#[derive(Debug, Default)]
pub struct ReferenceStore {
    log: Vec<(String, Uuid)>,
}

impl ReferenceStore {
    fn version(&self, stream: &str) -> u64 {
        self.log.iter().filter(|(s, _)| s == stream).count() as u64
    }

    /// Applies one append to the model.
    pub fn append(&mut self, stream: &str, expected: ExpectedVersion, ids: &[Uuid]) -> Outcome {
        let version = self.version(stream);
        let exists = version > 0;
        let holds = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => !exists,
            ExpectedVersion::StreamExists => exists,
            ExpectedVersion::Exact(v) => v == version,
        };
        if !holds {
            return Outcome::WrongExpectedVersion {
                actual: exists.then_some(version),
            };
        }
        for (i, id) in ids.iter().enumerate() {
            if self.log.iter().any(|(_, stored)| stored == id) || ids[..i].contains(id) {
                return Outcome::DuplicateEventId { event_id: *id };
            }
        }
        self.log
            .extend(ids.iter().map(|id| (stream.to_owned(), *id)));
        Outcome::Appended {
            version: version + ids.len() as u64,
        }
    }

    /// Every event as `(stream, version, event id, position)`, in global order.
    pub fn contents(&self) -> Vec<(String, u64, Uuid, u64)> {
        let mut versions = std::collections::HashMap::new();
        self.log
            .iter()
            .enumerate()
            .map(|(i, (stream, id))| {
                let version = versions.entry(stream.clone()).or_insert(0u64);
                *version += 1;
                (stream.clone(), *version, *id, i as u64 + 1)
            })
            .collect()
    }
}

fn outcome(result: Result<crate::Appended, StoreError>) -> Outcome {
    match result {
        Ok(appended) => Outcome::Appended {
            version: appended.version,
        },
        Err(StoreError::WrongExpectedVersion { actual, .. }) => {
            Outcome::WrongExpectedVersion { actual }
        }
        Err(StoreError::DuplicateEventId { event_id, .. }) => {
            Outcome::DuplicateEventId { event_id }
        }
        Err(other) => Outcome::Failed(other.to_string()),
    }
}

/// Runs `ops` against `store` (which must start empty) and the reference model; every
/// outcome and the final global log (streams, versions, ids, gap-free positions) must agree.
pub async fn check_against_model<S: EventStore>(
    store: &S,
    ops: &[AppendOp],
) -> Result<(), TestCaseError> {
    let mut model = ReferenceStore::default();
    let mut generated: Vec<Uuid> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let stream = format!("model-{}", op.stream);
        let first = generated.len() as u128 + 1;
        let mut ids: Vec<Uuid> = (first..first + op.batch as u128)
            .map(Uuid::from_u128)
            .collect();
        generated.extend(&ids);
        if let (Some(index), Some(last)) = (&op.reuse_id, ids.last_mut()) {
            *last = generated[index.index(generated.len())];
        }
        let expected = model.append(&stream, op.expected, &ids);
        let events = ids
            .iter()
            .map(|id| NewEvent {
                event_id: *id,
                event_type: "Modelled".to_owned(),
                schema_version: 1,
                payload: format!("{{\"step\":{step}}}"),
                metadata: Metadata::new(),
            })
            .collect();
        let actual = outcome(store.append(&stream, op.expected, events).await);
        prop_assert_eq!(&actual, &expected, "step {}: {:?}", step, op);
    }
    let stored: Vec<(String, u64, Uuid, u64)> = store
        .read_all(1, usize::MAX)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .into_iter()
        .map(|e| (e.stream_id, e.version, e.event_id, e.position))
        .collect();
    prop_assert_eq!(stored, model.contents());
    Ok(())
}
