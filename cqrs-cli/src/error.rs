//! What a command can fail with, and the exit code each failure gives.

use cqrs_core::StoreError;

/// Why a command failed. [`CliError::exit_code`] tells the shell: 2 for what the user
/// typed (a usage error, a store URL that names no store), 1 for everything else.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line names something that is not there or cannot be used: a malformed
    /// store URL, a missing file, a schema not created, an unknown subscription. Nothing
    /// was created or changed.
    #[error("{0}")]
    Usage(String),
    /// The store failed or refused.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The command ran and found problems (`verify`, `copy`'s check, `db check`); what it
    /// found was printed.
    #[error("{0}")]
    Found(String),
    /// Any other failure (a subscription that stopped, writing the output, the server).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process's exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// A failure of anything that can be displayed.
    pub fn failed(error: impl std::fmt::Display) -> Self {
        CliError::Failed(error.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::Failed(format!("cannot write the output: {error}"))
    }
}
