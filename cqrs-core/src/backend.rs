//! What every store backend shares: the stream id rules, the checks of read arguments, the
//! recording clock and the reading of stored metadata, so that all backends agree.
//! Applications do not need it.

use crate::log::{EventFilter, LogRead};
use crate::metadata::Metadata;
use crate::store::StoreError;
use chrono::{DateTime, Timelike, Utc};
use uuid::Uuid;

/// Refuses stream ids no backend can store faithfully; backends call it, so all agree.
pub fn validate_stream_id(stream_id: &str) -> Result<(), StoreError> {
    let reason = if stream_id.is_empty() {
        "it is empty"
    } else if stream_id.contains('\0') {
        "it contains a NUL character"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidStreamId {
        stream_id: stream_id.to_owned(),
        reason,
    })
}

/// Refuses a read limit of 0; backends call it first in every paged read, so all agree.
///
/// An empty page is how a pager learns it reached the end of a stream or of the log: a
/// limit of 0 would return one without being at the end.
pub fn check_limit(limit: usize) -> Result<(), StoreError> {
    if limit == 0 {
        return Err(StoreError::InvalidArgument {
            argument: "limit",
            reason: "a read of 0 events returns an empty page, which a pager takes for the end"
                .to_owned(),
        });
    }
    Ok(())
}

/// Refuses what no store reads: a limit of 0 ([`check_limit`]) and a filter with an empty
/// list (see [`EventFilter`]); backends call it first in `read_log`.
pub fn check_log_read(read: &LogRead) -> Result<(), StoreError> {
    check_limit(read.limit)?;
    check_filter(&read.filter)
}

fn check_filter(filter: &EventFilter) -> Result<(), StoreError> {
    let empty = if filter.event_types().is_some_and(|types| types.is_empty()) {
        "event types"
    } else if filter
        .categories()
        .is_some_and(|categories| categories.is_empty())
    {
        "categories"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidArgument {
        argument: "filter",
        reason: format!(
            "its list of {empty} is empty, so it would match no event; leave the list unset \
             to take every event"
        ),
    })
}

/// The time to record an append at: now ([`recorded_now`]), or `last` (the latest recorded
/// time in the store) if the clock reads earlier. Backends call it while holding their
/// write lock, with the time of the last stored event, so `recorded_at` never decreases
/// along positions even when the system clock steps back, and the first position recorded
/// at or after an instant can be found by a search over positions, not a scan.
pub fn recording_time(last: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let now = recorded_now();
    match last {
        Some(last) if last > now => last,
        _ => now,
    }
}

/// The current time cut to whole microseconds, the precision every backend keeps, so an
/// event reads back with exactly the timestamp its append returned.
pub fn recorded_now() -> DateTime<Utc> {
    let now = Utc::now();
    let micros = now.nanosecond() / 1_000 * 1_000;
    now.with_nanosecond(micros).unwrap_or(now)
}

/// Parses metadata as stored (serde's JSON form), for backends reading it back.
///
/// The two shapes nearly every event carries, `{}` and a lone correlation id (what
/// `Repository::execute` writes), are read without serde, because parsing metadata is a
/// large share of the cost of replaying a stream. Anything else goes through serde, after
/// a check that it is a JSON object: serde would read an array as metadata with every
/// field missing, silently losing the correlation id.
pub fn decode_metadata(json: &[u8]) -> serde_json::Result<Metadata> {
    if json == b"{}" {
        return Ok(Metadata::default());
    }
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(serde::de::Error::custom("metadata is not a JSON object"));
    }
    let lone_correlation = json
        .strip_prefix(b"{\"correlation_id\":\"")
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .filter(|id| id.len() == 36)
        .and_then(|id| Uuid::try_parse_ascii(id).ok());
    match lone_correlation {
        Some(id) => Ok(Metadata::default().with_correlation_id(id)),
        None => serde_json::from_slice(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_metadata_agrees_with_serde_on_every_shape() {
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let texts = [
            "{}".to_owned(),
            format!(r#"{{"correlation_id":"{id}"}}"#),
            format!(r#"{{"correlation_id":"{}"}}"#, id.to_uppercase()),
            format!(r#"{{ "correlation_id": "{id}" }}"#),
            format!(r#"{{"correlation_id":"{id}","causation_id":"{id}"}}"#),
            format!(r#"{{"correlation_id":"{id}","custom":{{"user":"ann"}}}}"#),
            r#"{"custom":{"k":"v"}}"#.to_owned(),
            r#"{"custom":{"tenant":42,"beta":true,"ratio":-0.5,"none":null}}"#.to_owned(),
            format!(r#"{{"correlation_id":"{id}","custom":{{"org":{{"id":7,"tags":["a"]}}}}}}"#),
            r#"{"unknown":1}"#.to_owned(),
        ];
        for text in &texts {
            let ours = decode_metadata(text.as_bytes()).unwrap();
            let serde: Metadata = serde_json::from_str(text).unwrap();
            assert_eq!(ours, serde, "{text}");
        }
        let id = Uuid::parse_str(id).unwrap();
        let lone = decode_metadata(texts[1].as_bytes()).unwrap();
        assert_eq!(lone, Metadata::new().with_correlation_id(id));
        let json = serde_json::to_string(&lone).unwrap();
        assert_eq!(json, texts[1], "the shape serde writes is the fast one");
    }

    #[test]
    fn decode_metadata_refuses_what_serde_refuses() {
        for text in [
            r#"{"correlation_id":"67e55044-10b1-426f-9247-bb680e5fe0cX"}"#,
            r#"{"correlation_id":"not a uuid at all, but 36 bytes long"}"#,
            r#"{"correlation_id":7}"#,
            r#"{"#,
            "",
        ] {
            assert!(decode_metadata(text.as_bytes()).is_err(), "{text}");
            assert!(serde_json::from_str::<Metadata>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn metadata_that_is_not_a_json_object_is_refused() {
        for text in ["[]", " [\"correlation_id\"]", "null", "7", "\"{}\""] {
            let error = decode_metadata(text.as_bytes()).unwrap_err();
            assert!(
                error.to_string().contains("not a JSON object"),
                "{text}: {error}"
            );
        }
        assert_eq!(decode_metadata(b" { }").unwrap(), Metadata::default());
    }

    #[test]
    fn a_read_limit_of_zero_is_refused() {
        assert!(check_limit(1).is_ok());
        assert!(check_limit(usize::MAX).is_ok());
        match check_limit(0) {
            Err(StoreError::InvalidArgument { argument, .. }) => assert_eq!(argument, "limit"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn reads_with_a_zero_limit_or_an_empty_list_are_refused() {
        let refused = |read: &LogRead| match check_log_read(read) {
            Err(StoreError::InvalidArgument { argument, .. }) => Some(argument),
            _ => None,
        };
        assert_eq!(refused(&LogRead::forward(1, 1)), None);
        assert_eq!(refused(&LogRead::backward(1, usize::MAX)), None);
        assert_eq!(refused(&LogRead::forward(1, 0)), Some("limit"));
        assert_eq!(refused(&LogRead::backward(1, 0)), Some("limit"));
        let no_types = EventFilter::all().with_event_types(Vec::<String>::new());
        let no_categories = EventFilter::all()
            .with_event_types(["A"])
            .with_categories(Vec::<String>::new());
        for filter in [no_types, no_categories] {
            let read = LogRead::forward(1, 10).matching(filter);
            assert_eq!(refused(&read), Some("filter"), "{read:?}");
        }
        assert!(check_limit(1).is_ok());
    }

    #[test]
    fn the_recording_time_never_goes_back_before_the_last_one() {
        let now = recorded_now();
        let ahead = now + chrono::Duration::hours(1);
        assert_eq!(recording_time(Some(ahead)), ahead, "a clock stepped back");
        let behind = now - chrono::Duration::hours(1);
        let taken = recording_time(Some(behind));
        assert!(taken >= now && taken.timestamp_subsec_nanos().is_multiple_of(1_000));
        assert!(recording_time(None) >= now);
    }

    #[test]
    fn stream_ids_are_validated() {
        assert!(validate_stream_id("Cart-1").is_ok());
        assert!(matches!(
            validate_stream_id(""),
            Err(crate::store::StoreError::InvalidStreamId { .. })
        ));
        assert!(matches!(
            validate_stream_id("a\0b"),
            Err(crate::store::StoreError::InvalidStreamId { .. })
        ));
    }
}
