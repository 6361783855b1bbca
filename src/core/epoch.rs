//! Epochs and record numbering shared by every stage: the dataflow's timestamp, the epoch that
//! flushes what is open at the end, where Kafka source ids start, and the key that spreads
//! records over workers.
//!
//! In: record positions. Out: epochs and exchange keys. No state.

use super::hash::stable_hash;
use super::record::Position;

/// The dataflow's timestamp: a batch number when replaying, a wall-clock tick when live.
pub type Epoch = u64;

/// The epoch at which open incidents are flushed when input ends.
pub const FLUSH_EPOCH: Epoch = Epoch::MAX - 1;

/// Source ids of Kafka partitions start here (file inputs are numbered from 0).
pub const KAFKA_SOURCE_BASE: u32 = 1 << 30;

/// Exchange key that spreads records evenly by position (for stateless stages).
pub fn spread(pos: &Position) -> u64 {
    stable_hash(
        &[
            pos.source.to_le_bytes().as_slice(),
            &pos.offset.to_le_bytes(),
        ]
        .concat(),
    )
}
