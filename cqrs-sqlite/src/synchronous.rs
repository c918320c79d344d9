//! The `synchronous` setting: how often SQLite waits for the disk, i.e. what a power cut can lose.

/// How durable a commit is once `append` has returned.
///
/// In WAL mode both levels keep the file consistent after any crash; they differ in what
/// an operating-system crash or power loss can take back:
/// - [`Synchronous::Normal`] (the default) syncs the WAL only at checkpoints. A commit
///   survives the application crashing, but the last commits before a power loss may be
///   rolled back. It costs no fsync per commit, so it is several times faster.
/// - [`Synchronous::Full`] syncs the WAL on every commit: once `append` returns, the events
///   survive power loss. Group commit shares that fsync among concurrent appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Durable against application crashes; the newest commits may be lost on power loss.
    #[default]
    Normal,
    /// Durable against power loss; one fsync per committed transaction.
    Full,
}

impl Synchronous {
    /// The value of `PRAGMA synchronous` for this level.
    pub fn as_pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}
