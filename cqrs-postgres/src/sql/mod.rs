//! What is stored: the schema, and every statement as plain SQL text or a function on a
//! client, qualified by the store's schema. Nothing here knows about pools or tasks.

pub(crate) mod append;
pub(crate) mod events;
pub(crate) mod locks;
pub(crate) mod parked;
pub(crate) mod schema;
pub(crate) mod state;

use crate::error::PostgresError;

/// The names a store's SQL is written with.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// The schema as given.
    pub(crate) schema_name: String,
    /// The schema quoted as an SQL identifier.
    pub(crate) schema: String,
}

impl Names {
    /// Checks and quotes `schema`.
    pub(crate) fn new(schema: &str) -> Result<Self, PostgresError> {
        let reason = if schema.is_empty() {
            "it is empty"
        } else if schema.contains('\0') {
            "it contains a NUL character"
        } else if schema.len() > 63 {
            "it is longer than the 63 bytes PostgreSQL keeps of a name"
        } else if schema.starts_with("pg_") {
            "names starting with pg_ are reserved by PostgreSQL"
        } else {
            return Ok(Self {
                schema_name: schema.to_owned(),
                schema: quote_identifier(schema),
            });
        };
        Err(PostgresError::InvalidSchemaName {
            name: schema.to_owned(),
            reason,
        })
    }

    /// The `NOTIFY` channel appends are announced on: the schema's name (channels are
    /// per database, like schemas).
    pub(crate) fn channel(&self) -> &str {
        &self.schema_name
    }
}

/// `name` as a quoted SQL identifier (double quotes, inner ones doubled).
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked_and_quoted() {
        assert_eq!(Names::new("cqrs").unwrap().schema, "\"cqrs\"");
        assert_eq!(Names::new("a\"b").unwrap().schema, "\"a\"\"b\"");
        for bad in ["", "a\0b", "pg_temp", &"x".repeat(64)] {
            assert!(
                matches!(
                    Names::new(bad),
                    Err(PostgresError::InvalidSchemaName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(Names::new(&"x".repeat(63)).is_ok());
    }
}
