//! How the store runs: the group-commit writer, the pool of read connections, and the
//! paging that spreads long reads over threads and reads ahead. No SQL here beyond the
//! writer's transaction control (BEGIN, SAVEPOINT, COMMIT): the work each runs is given to it
//! as functions on a `rusqlite::Connection`.

pub(crate) mod paging;
pub(crate) mod readers;
pub(crate) mod writer;
