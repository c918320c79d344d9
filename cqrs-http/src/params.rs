//! [`Params`]: a request's query string, read into typed values with a `400` naming the
//! parameter for anything malformed or unknown.

use crate::error::ApiError;
use cqrs_core::EventFilter;

/// The decoded `name=value` pairs of a query string.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The pairs of `query` (`None`: no query string), refusing names not in `known`.
    pub(crate) fn parse(query: Option<&str>, known: &[&str]) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for part in query
            .unwrap_or("")
            .split('&')
            .filter(|part| !part.is_empty())
        {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name, "query")?;
            if !known.contains(&name.as_str()) {
                return Err(ApiError::bad(
                    name,
                    format!("unknown parameter; this route takes {}", known.join(", ")),
                ));
            }
            let value = decode(value, &name)?;
            pairs.push((name, value));
        }
        Ok(Self(pairs))
    }

    /// The last value given for `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `name` as a whole number, if given.
    pub(crate) fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name).map(|value| number(name, value)).transpose()
    }

    /// `limit`: at least 1, `default` when not given, capped at `max`.
    pub(crate) fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.number("limit")? {
            None => Ok(default.min(max)),
            Some(0) => Err(ApiError::bad("limit", "must be at least 1")),
            Some(limit) => Ok(usize::try_from(limit).unwrap_or(usize::MAX).min(max)),
        }
    }

    /// The filter of `type` and `category` (each a comma-separated list, or repeated).
    pub(crate) fn filter(&self) -> Result<EventFilter, ApiError> {
        let mut filter = EventFilter::all();
        for (name, value) in &self.0 {
            let list = || -> Result<Vec<String>, ApiError> {
                let items: Vec<String> = value.split(',').map(str::to_owned).collect();
                if items.iter().any(String::is_empty) {
                    return Err(ApiError::bad(
                        name.as_str(),
                        "a comma-separated list of non-empty names",
                    ));
                }
                Ok(items)
            };
            match name.as_str() {
                "type" => filter = filter.with_event_types(list()?),
                "category" => filter = filter.with_categories(list()?),
                _ => {}
            }
        }
        Ok(filter)
    }

    /// The filter's parameters as a query string suffix (`&type=A&category=B`, encoded),
    /// for links that must keep it.
    pub(crate) fn filter_query(&self) -> String {
        self.0
            .iter()
            .filter(|(name, _)| name == "type" || name == "category")
            .map(|(name, value)| format!("&{name}={}", encode(value)))
            .collect()
    }
}

/// `value` of parameter `name` as a whole number.
pub(crate) fn number(name: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad(name, format!("{value:?} is not a whole number")))
}

/// Percent-decodes one part of a query string (`+` is a space).
fn decode(text: &str, name: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| ApiError::bad(name, "a malformed %-escape"))?;
                out.push(hex);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad(name, "not UTF-8 once decoded"))
}

/// Percent-encodes `text` for a URL path segment or query value.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_and_the_last_one_wins() {
        let params = Params::parse(
            Some("after=3&type=A%2CB&after=5&category=Or+der"),
            &["after", "type", "category"],
        )
        .unwrap();
        assert_eq!(params.number("after").unwrap(), Some(5));
        let filter = params.filter().unwrap();
        assert!(filter.matches("Or der-1", "B"));
        assert!(!filter.matches("Or der-1", "C"));
        assert_eq!(params.filter_query(), "&type=A%2CB&category=Or%20der");
    }

    #[test]
    fn bad_input_names_the_parameter() {
        let unknown = Params::parse(Some("limt=3"), &["limit"]).unwrap_err();
        assert_eq!(
            unknown,
            ApiError::bad("limt", "unknown parameter; this route takes limit")
        );
        let params = Params::parse(
            Some("limit=x&after=-1&type=A,,B"),
            &["limit", "after", "type"],
        )
        .unwrap();
        assert!(
            matches!(params.limit(10, 100), Err(ApiError::BadParameter { parameter, .. }) if parameter == "limit")
        );
        assert!(
            matches!(params.number("after"), Err(ApiError::BadParameter { parameter, .. }) if parameter == "after")
        );
        assert!(
            matches!(params.filter(), Err(ApiError::BadParameter { parameter, .. }) if parameter == "type")
        );
        let zero = Params::parse(Some("limit=0"), &["limit"]).unwrap();
        assert!(zero.limit(10, 100).is_err());
        let escape = Params::parse(Some("type=%zz"), &["type"]).unwrap_err();
        assert!(matches!(escape, ApiError::BadParameter { parameter, .. } if parameter == "type"));
    }

    #[test]
    fn limits_are_capped_and_default() {
        let huge = Params::parse(Some("limit=99999999999"), &["limit"]).unwrap();
        assert_eq!(huge.limit(10, 100).unwrap(), 100);
        assert_eq!(Params::default().limit(10, 100).unwrap(), 10);
    }
}
