//! The advisory lock keys of a store: its append lock, its stream locks, its subscription
//! locks and its migration lock. Keys are hashes of the schema name (and stream id), the same in every process and
//! every version of this crate, so that all processes sharing a schema take the same locks;
//! advisory locks are per database, so stores in other schemas take other keys. Two names
//! hashing alike only make their appends wait for each other, never wrong.

/// FNV-1a, 64 bits: small, stable and good enough to spread names over lock keys.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            // A separator byte that UTF-8 text never holds.
            hash = (hash ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
        }
        for byte in part.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// Reinterprets 64 hash bits as PostgreSQL's signed `bigint` key.
fn signed(hash: u64) -> i64 {
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The store's append lock: taken last by every append transaction, after its stream
/// locks, and held until it commits; positions are drawn under it.
pub(crate) fn append_key(schema: &str) -> i64 {
    signed(fnv1a(&[schema, "append"]))
}

/// The lock serializing the migrations of one schema.
pub(crate) fn migration_key(schema: &str) -> i64 {
    signed(fnv1a(&[schema, "migrate"]))
}

/// The lock of one stream of the store: taken, in ascending key order, before the append
/// lock, so that two transactions never wait for each other in a cycle.
pub(crate) fn stream_key(schema: &str, stream_id: &str) -> i64 {
    signed(fnv1a(&[schema, "stream", stream_id]))
}

/// The lock of one subscription's checkpoint, held by a projection consumer's transaction
/// from reading the checkpoint to committing the new one.
pub(crate) fn subscription_key(schema: &str, subscription: &str) -> i64 {
    signed(fnv1a(&[schema, "subscription", subscription]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_apart() {
        // The values every process and version must agree on: a change here would let two
        // versions of this crate append to one schema under different locks.
        assert_eq!(fnv1a(&["a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(append_key("cqrs"), append_key("cqrs"));
        assert_ne!(append_key("cqrs"), append_key("other"));
        assert_ne!(append_key("cqrs"), migration_key("cqrs"));
        assert_ne!(stream_key("cqrs", "a"), stream_key("other", "a"));
        assert_ne!(stream_key("ab", "c"), stream_key("a", "bc"));
    }
}
