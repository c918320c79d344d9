//! The one conversion between SQLite's signed 64-bit integers and the store's unsigned
//! versions, positions and counts: checked, never `as`, so a value that does not fit
//! becomes an error that names it instead of a number silently cut or wrapped.

use crate::error::SqliteError;
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

#[cfg(test)]
mod tests {
    use super::convert;
    use crate::error::SqliteError;

    #[test]
    fn values_that_fit_convert_and_others_are_named_errors() {
        assert_eq!(convert::<i64, u64>(42, "position").unwrap(), 42);
        assert_eq!(convert::<u64, i64>(7, "version").unwrap(), 7);
        assert_eq!(
            convert::<usize, i64>(usize::MAX, "limit").unwrap_or(i64::MAX),
            i64::MAX
        );
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
}
