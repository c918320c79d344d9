//! What a workload returns when it fails: a message naming the workload, the backend and
//! what went wrong, with the store's error as its cause where there is one.

/// Any failure of a run; `main` prints it with its chain of causes and exits with status 1.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The result of a workload or of one of its steps.
pub type Res<T> = Result<T, BoxError>;
