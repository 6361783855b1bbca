//! The one stable hash of the job: exchange keys, template ids and memo keys are derived from it.
//!
//! In: bytes. Out: a 64-bit hash that is the same on every platform and release. No state.

/// Stable 64-bit hash (xxh3 is a fixed algorithm: the same on every platform and release).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}
