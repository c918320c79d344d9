//! How values appear as `tracing` span fields.

/// An optional id as a trace field (`-` when absent).
pub(crate) fn display_id(id: Option<uuid::Uuid>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.to_string())
}
