//! Shards: the fixed slices of the key space that per-shard budgets are kept in, and the
//! overflow incident that events past a budget fold into.
//!
//! In: a route or partition key; a service name. Out: the key's shard, the service's overflow
//! fingerprint, an event rewritten into it. No state. A shard is always owned by one worker
//! (`shard % peers`), whatever the worker count, so a budget kept per shard decides the same
//! for any number of workers.

use crate::core::hash::stable_hash;
use crate::core::record::{Clustered, Kind};

/// Slices of the key space (at most this many workers share a stage exchanged by shard).
pub const SHARDS: u64 = 64;

/// The shard of a route or template partition.
pub fn owner(key: u64) -> u64 {
    key % SHARDS
}

/// A budget per window split over the shards: `budget / SHARDS`, rounded up, at least one.
pub fn per_shard(budget: u64) -> u64 {
    budget.div_ceil(SHARDS).max(1)
}

/// The fingerprint of `service`'s overflow incident.
pub fn overflow_fingerprint(service: &str) -> u64 {
    stable_hash(&[b"hephaestus-overflow\0".as_slice(), service.as_bytes()].concat())
}

/// Rewrites `c` into `service`'s overflow incident (past `budget` new errors per window): its
/// fingerprint and route change, its message and count stay.
pub fn fold(c: &mut Clustered, service: &str, budget: u64) {
    let fp = overflow_fingerprint(service);
    c.fingerprint = fp;
    c.route = fp;
    c.kind = Kind::Message;
    c.title = format!(
        "overflow: new errors of service `{service}` past {budget} new incidents per window"
    )
    .into();
    c.template = "<new errors past the budget>".into();
    c.merges.clear();
}
