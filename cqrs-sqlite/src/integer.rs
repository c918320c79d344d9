//! The one conversion between SQLite's signed 64-bit integers and the store's unsigned
//! versions, positions and counts: checked, never `as`, so a value that does not fit
//! becomes an error that names it instead of a number silently cut or wrapped.
//!
//! Three uses, three functions: a value read from the file or stored in it ([`convert`],
//! [`argument`] for one a caller gave), and a read's bounds ([`lower_bound`],
//! [`upper_bound`]), the only place where a value past SQLite's largest integer has a
//! meaning of its own.

use crate::error::SqliteError;
use cqrs_core::StoreError;
use std::fmt::Display;

/// `value` as a `U`, or [`SqliteError::OutOfRange`] naming `what` the value is.
///
/// Read from the file, a value that does not fit was damaged or written by something other
/// than this crate; on its way in, it is one SQLite cannot hold. Callers reading an event
/// row turn the error into `StoreError::Corrupt`, which also names the stream and version.
pub(crate) fn convert<T, U>(value: T, what: &'static str) -> Result<U, SqliteError>
where
    T: Copy + Display,
    U: TryFrom<T>,
{
    U::try_from(value).map_err(|_| SqliteError::OutOfRange {
        what,
        value: value.to_string(),
    })
}

/// A value a caller asked to store (`what`, part of `argument`), as an `i64`: one past
/// SQLite's largest integer is [`StoreError::InvalidArgument`], never clamped to a value
/// that would read back as something else.
pub(crate) fn argument(value: u64, argument: &'static str, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidArgument {
        argument,
        reason: format!(
            "{what} {value} is past {}, the largest integer SQLite stores",
            i64::MAX
        ),
    })
}

/// A read's inclusive lower bound (`>=`), or `None` when it is past every value SQLite can
/// hold, so nothing can match.
pub(crate) fn lower_bound(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

/// A read's inclusive upper bound (`<=`, or a row count): past SQLite's largest integer it
/// means "to the end", as the largest integer does.
pub(crate) fn upper_bound<T>(value: T) -> i64
where
    i64: TryFrom<T>,
{
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_fit_convert_and_others_are_named_errors() {
        assert_eq!(convert::<i64, u64>(42, "position").unwrap(), 42);
        assert_eq!(convert::<u64, i64>(7, "version").unwrap(), 7);
        match convert::<i64, u64>(-3, "position") {
            Err(SqliteError::OutOfRange { what, value }) => {
                assert_eq!((what, value.as_str()), ("position", "-3"));
            }
            other => panic!("expected OutOfRange, got {other:?}"),
        }
        let too_big = convert::<u64, i64>(u64::MAX, "version").unwrap_err();
        assert_eq!(
            too_big.to_string(),
            format!("version {} is out of range for its type", u64::MAX)
        );
    }

    #[test]
    fn bounds_past_sqlite_mean_nothing_below_and_the_end_above() {
        assert_eq!(lower_bound(5), Some(5));
        assert_eq!(lower_bound(u64::MAX), None);
        assert_eq!(upper_bound(u64::MAX), i64::MAX);
        assert_eq!(upper_bound(usize::MAX), i64::MAX);
        assert_eq!(upper_bound(7_u64), 7);
    }

    #[test]
    fn a_value_to_store_past_sqlite_is_an_invalid_argument() {
        assert_eq!(argument(9, "position", "checkpoint").unwrap(), 9);
        match argument(u64::MAX, "position", "checkpoint") {
            Err(StoreError::InvalidArgument { argument, reason }) => {
                assert_eq!(argument, "position");
                assert!(reason.contains(&u64::MAX.to_string()), "{reason}");
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
}
