//! The ground layer: the vocabulary every other layer shares and none of them owns.
//!
//! In and out: records and their positions, epochs, time, the stable hash, checkpoint files
//! and the stop signal. Nothing here imports another module of the crate.

pub mod checkpoint;
pub mod cut;
pub mod epoch;
pub mod hash;
pub mod record;
pub mod shard;
pub mod shutdown;
pub mod time;
pub mod timestamp;
