//! Metadata that travels with every event: correlation and causation ids plus the user's own keys.

use serde::{Deserialize, Serialize};
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
    /// The application's own keys (user id, tenant, request path, ...), kept in order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
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

    /// Adds one of the application's own keys.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }

    /// Reads one of the application's own keys.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.custom.get(key).map(String::as_str)
    }

    /// Parses metadata as stored (serde's JSON form), for backends reading it back.
    ///
    /// The two shapes nearly every event carries, `{}` and a lone correlation id (what
    /// `Repository::execute` writes), are read without serde: parsing them was about a
    /// tenth of the instructions of replaying a stream. Anything else goes through serde.
    pub fn from_json(json: &[u8]) -> serde_json::Result<Self> {
        if json == b"{}" {
            return Ok(Self::default());
        }
        let lone_correlation = json
            .strip_prefix(b"{\"correlation_id\":\"")
            .and_then(|rest| rest.strip_suffix(b"\"}"))
            .filter(|id| id.len() == 36)
            .and_then(|id| Uuid::try_parse_ascii(id).ok());
        match lone_correlation {
            Some(id) => Ok(Self::default().with_correlation_id(id)),
            None => serde_json::from_slice(json),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_json_agrees_with_serde_on_every_shape() {
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let texts = [
            "{}".to_owned(),
            format!(r#"{{"correlation_id":"{id}"}}"#),
            format!(r#"{{"correlation_id":"{}"}}"#, id.to_uppercase()),
            format!(r#"{{ "correlation_id": "{id}" }}"#),
            format!(r#"{{"correlation_id":"{id}","causation_id":"{id}"}}"#),
            format!(r#"{{"correlation_id":"{id}","custom":{{"user":"ann"}}}}"#),
            r#"{"custom":{"k":"v"}}"#.to_owned(),
            r#"{"unknown":1}"#.to_owned(),
        ];
        for text in &texts {
            let ours = Metadata::from_json(text.as_bytes()).unwrap();
            let serde: Metadata = serde_json::from_str(text).unwrap();
            assert_eq!(ours, serde, "{text}");
        }
        let id = Uuid::parse_str(id).unwrap();
        let lone = Metadata::from_json(texts[1].as_bytes()).unwrap();
        assert_eq!(lone, Metadata::new().with_correlation_id(id));
        let json = serde_json::to_string(&lone).unwrap();
        assert_eq!(json, texts[1], "the shape serde writes is the fast one");
    }

    #[test]
    fn from_json_refuses_what_serde_refuses() {
        for text in [
            r#"{"correlation_id":"67e55044-10b1-426f-9247-bb680e5fe0cX"}"#,
            r#"{"correlation_id":"not a uuid at all, but 36 bytes long"}"#,
            r#"{"correlation_id":7}"#,
            r#"{"#,
            "",
        ] {
            assert!(Metadata::from_json(text.as_bytes()).is_err(), "{text}");
            assert!(serde_json::from_str::<Metadata>(text).is_err(), "{text}");
        }
    }
}
