//! The one stable hash of the job, and the key of a masked line derived from it: exchange
//! keys, template ids and memo keys all come from here.
//!
//! In: bytes. Out: a 64-bit hash that is the same on every platform and release, and `LineKey`s.
//! No state.

/// Stable 64-bit hash (xxh3 is a fixed algorithm: the same on every platform and release).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The partition key and memo key of a masked line, computed from the tokens alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineKey {
    /// Hash of the first token without a variable: the exchange key.
    pub partition: u64,
    /// Positional hash of all tokens.
    pub seq: u64,
    pub len: u32,
}

impl LineKey {
    /// The memo key: the exact masked line within its partition.
    pub fn memo(&self) -> u64 {
        stable_hash(
            &[
                self.partition.to_le_bytes(),
                self.seq.to_le_bytes(),
                u64::from(self.len).to_le_bytes(),
            ]
            .concat(),
        )
    }
}
