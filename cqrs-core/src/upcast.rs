//! Upcasters: chained steps that bring events written under an older schema to the current one.

use serde_json::Value;
use std::collections::HashMap;

/// An event on its way through the upcaster chain: type, schema version and JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// The event type as stored, or as renamed by an earlier step.
    pub event_type: String,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The payload as JSON.
    pub payload: Value,
}

/// Why an upcaster could not convert an old event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upcasting `{event_type}` schema {schema_version} failed: {reason}")]
pub struct UpcastError {
    /// The event type the failing step received.
    pub event_type: String,
    /// The schema version the failing step received.
    pub schema_version: u32,
    /// What the step reported.
    pub reason: String,
}

type Step = Box<dyn Fn(RawEvent) -> Result<RawEvent, String> + Send + Sync>;

/// A chain longer than this is taken to be a cycle between steps.
const MAX_STEPS: usize = 64;

/// The registered upcasting steps, keyed by the `(event_type, schema_version)` they accept.
///
/// Reading an event runs the step registered for its type and version, then the step for
/// what that returned, and so on until no step matches; the result is deserialized into the
/// current event enum. The chain ends at most at the version the code writes: an event still
/// above it is refused as newer than the code
/// ([`DecodeCause::NewerThanCode`](crate::codec::DecodeCause::NewerThanCode)). Prefer a weak
/// schema (`#[serde(default)]` on new fields) and add a step only for what it cannot express:
/// a rename, a reshaped field, a split value.
#[derive(Default)]
pub struct Upcasters {
    steps: HashMap<String, HashMap<u32, Step>>,
}

impl Upcasters {
    /// No steps: every event is read as stored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that converts `event_type` at `schema_version`; it may change the
    /// payload, the type and the version (a later step picks up what it returns).
    pub fn with(
        mut self,
        event_type: &str,
        schema_version: u32,
        step: impl Fn(RawEvent) -> Result<RawEvent, String> + Send + Sync + 'static,
    ) -> Self {
        self.steps
            .entry(event_type.to_owned())
            .or_default()
            .insert(schema_version, Box::new(step));
        self
    }

    /// Whether any step accepts this type and version: the codec's fast path skips JSON
    /// trees entirely when none does.
    pub fn applies_to(&self, event_type: &str, schema_version: u32) -> bool {
        // No steps (the usual case) answers without hashing the type for every event read.
        !self.steps.is_empty()
            && self
                .steps
                .get(event_type)
                .is_some_and(|by_version| by_version.contains_key(&schema_version))
    }

    /// Runs the chain until no step accepts the event.
    pub fn upcast(&self, mut event: RawEvent) -> Result<RawEvent, UpcastError> {
        for _ in 0..MAX_STEPS {
            let Some(step) = self
                .steps
                .get(event.event_type.as_str())
                .and_then(|by_version| by_version.get(&event.schema_version))
            else {
                return Ok(event);
            };
            let (event_type, schema_version) = (event.event_type.clone(), event.schema_version);
            event = step(event).map_err(|reason| UpcastError {
                event_type,
                schema_version,
                reason,
            })?;
        }
        Err(UpcastError {
            event_type: event.event_type,
            schema_version: event.schema_version,
            reason: format!("the chain did not end after {MAX_STEPS} steps (a cycle?)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(event_type: &str, schema_version: u32, payload: Value) -> RawEvent {
        RawEvent {
            event_type: event_type.into(),
            schema_version,
            payload,
        }
    }

    #[test]
    fn steps_chain_until_none_matches() {
        let upcasters = Upcasters::new()
            .with("Added", 1, |mut e| {
                e.payload["qty"] = json!(1);
                e.schema_version = 2;
                Ok(e)
            })
            .with("Added", 2, |e| {
                Ok(raw("ItemAdded", 3, json!({ "quantity": e.payload["qty"] })))
            });
        let out = upcasters.upcast(raw("Added", 1, json!({}))).unwrap();
        assert_eq!(out, raw("ItemAdded", 3, json!({ "quantity": 1 })));
        let current = raw("ItemAdded", 3, json!({ "quantity": 7 }));
        assert_eq!(upcasters.upcast(current.clone()).unwrap(), current);
    }

    #[test]
    fn a_failing_step_names_type_and_version() {
        let upcasters = Upcasters::new().with("Added", 1, |_| Err("no qty".into()));
        let err = upcasters.upcast(raw("Added", 1, json!({}))).unwrap_err();
        assert_eq!(err.to_string(), "upcasting `Added` schema 1 failed: no qty");
    }

    #[test]
    fn a_cycle_is_an_error_not_a_hang() {
        let upcasters = Upcasters::new()
            .with("A", 1, |e| Ok(raw("B", 1, e.payload)))
            .with("B", 1, |e| Ok(raw("A", 1, e.payload)));
        let err = upcasters.upcast(raw("A", 1, json!(null))).unwrap_err();
        assert!(err.reason.contains("did not end"), "{err}");
    }
}
