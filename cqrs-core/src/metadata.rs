//! Metadata that travels with every event: correlation and causation ids plus the user's own keys.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Context of the command that produced an event, so one request can be followed end to end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Shared by every event of one request and by everything its handlers cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The id of the event whose handling issued the command (none for a user's command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The application's own keys (user id, tenant, request path, ...), kept in key order,
    /// each holding any JSON value: strings, numbers, booleans, arrays, objects and null
    /// come back as they went in (a tenant id `42` stays the number 42).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, Value>,
}

impl Metadata {
    /// Empty metadata; the repository fills in a correlation id when none is given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the correlation id, to tie these events to a request that began elsewhere.
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id, to record which event caused this command.
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Adds one of the application's own keys, with any value that converts to JSON
    /// (`"acme"`, `42`, `true`, `serde_json::json!({ "region": "eu" })`, ...).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }

    /// Reads one of the application's own keys (`.and_then(Value::as_str)` for a string).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.custom.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_hold_any_json_value_and_serde_keeps_each_as_it_is() {
        let metadata = Metadata::new()
            .with("user", "ada")
            .with("tenant_id", 42)
            .with("beta", true)
            .with("ratio", 0.25)
            .with("region", json!({ "name": "eu", "zones": [1, 2] }))
            .with("nothing", Value::Null);
        assert_eq!(metadata.get("user").and_then(Value::as_str), Some("ada"));
        assert_eq!(metadata.get("tenant_id"), Some(&json!(42)));
        assert_eq!(metadata.get("missing"), None);
        let text = serde_json::to_string(&metadata).unwrap();
        assert_eq!(
            text,
            r#"{"custom":{"beta":true,"nothing":null,"ratio":0.25,"region":{"name":"eu","zones":[1,2]},"tenant_id":42,"user":"ada"}}"#
        );
        let back: Metadata = serde_json::from_str(&text).unwrap();
        assert_eq!(back, metadata);
        assert_eq!(back.get("tenant_id").and_then(Value::as_u64), Some(42));
    }
}
