//! The miner's budget of new templates: per service, shard and window, as the incident stage
//! budgets new incidents, so a flood of never-seen messages costs a lookup per line, not a new
//! template each.
//!
//! In: each mined event's service, template partition and time. Out: whether a line that
//! matches no template may start one. State: per (service, shard, window), the new templates
//! started; windows older than the newest but one are forgotten. The shard of a partition is
//! owned by one worker for any worker count (`core::shard`), and each worker mines its events
//! in position order, so the decisions are the same for any number of workers.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

use crate::core::shard::{owner, per_shard};
use crate::core::time::Millis;

/// Where a line's new template would be counted: (service hash, shard, window start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(u64, u64, Millis);

#[derive(Debug)]
pub struct NewTemplates {
    /// New incidents per service and window (`incident.new_per_window`); a line past it would
    /// fold into its service's overflow incident anyway.
    pub budget: u64,
    per_shard: u64,
    window: Millis,
    used: FxHashMap<Key, u64>,
    newest: Millis,
}

impl NewTemplates {
    pub fn new(budget: u64, window: Millis) -> NewTemplates {
        NewTemplates {
            budget,
            per_shard: per_shard(budget),
            window: window.max(1),
            used: FxHashMap::default(),
            newest: Millis::MIN,
        }
    }

    /// The key of a line of `service` in template partition `partition`, logged at `time`.
    pub fn key(&mut self, service: &str, partition: u64, time: Millis) -> Key {
        let window = time - time.rem_euclid(self.window);
        if window > self.newest {
            self.newest = window;
            let horizon = window.saturating_sub(self.window);
            self.used.retain(|k, _| k.2 >= horizon);
        }
        let mut h = FxHasher::default();
        service.hash(&mut h);
        Key(h.finish(), owner(partition), window)
    }

    /// Whether a new template may start under `key`.
    pub fn allows(&self, key: Key) -> bool {
        self.used.get(&key).is_none_or(|&n| n < self.per_shard)
    }

    /// Counts a new template started under `key`.
    pub fn spend(&mut self, key: Key) {
        *self.used.entry(key).or_default() += 1;
    }

    /// Windows × services × shards counted now (for tests).
    pub fn tracked(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::shard::SHARDS;

    #[test]
    fn each_service_shard_and_window_has_its_own_budget() {
        let mut b = NewTemplates::new(2 * SHARDS, 60_000);
        let k = b.key("api", 7, 1_000);
        assert!(b.allows(k));
        b.spend(k);
        assert!(b.allows(k));
        b.spend(k);
        assert!(!b.allows(k), "two per shard and window");
        assert_eq!(
            b.key("api", 7 + SHARDS, 59_999),
            k,
            "same shard, same window"
        );
        let shard = b.key("api", 8, 2_000);
        assert!(b.allows(shard), "another shard");
        let other = b.key("db", 7, 2_000);
        assert!(b.allows(other), "another service");
        let next = b.key("api", 7, 60_000);
        assert!(b.allows(next), "a new window, a new budget");
    }

    #[test]
    fn old_windows_are_forgotten() {
        let mut b = NewTemplates::new(SHARDS, 1_000);
        for i in 0..100_000i64 {
            let k = b.key("flood", i as u64, i * 10);
            b.spend(k);
        }
        assert!(b.tracked() as u64 <= 2 * SHARDS, "{} tracked", b.tracked());
    }
}
