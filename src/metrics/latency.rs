//! Event-to-incident latency for the end-of-run report: a fine histogram (1 ms steps to 1 s,
//! 100 ms steps to 60 s) that the incident stages fill once per epoch, whatever the metrics
//! endpoint does.
//!
//! In: (latency in ms, events) pairs. Out: percentiles and the maximum. State: the counts, as
//! atomics shared by the workers of the process.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

const SLOTS: usize = 1000 + 590 + 1;

fn slot(ms: u64) -> usize {
    match ms {
        0..1000 => ms as usize,
        1000..60_000 => 1000 + ((ms - 1000) / 100) as usize,
        _ => SLOTS - 1,
    }
}

/// The largest latency a slot holds.
fn upper(slot: usize) -> u64 {
    match slot {
        0..1000 => slot as u64,
        s if s < SLOTS - 1 => 1000 + (s as u64 - 1000 + 1) * 100,
        _ => u64::MAX,
    }
}

pub struct Latencies {
    counts: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            counts: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Latencies({:?})", self.summary())
    }
}

/// Percentiles in milliseconds (each the upper end of its 1 ms / 100 ms step).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub events: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

impl Latencies {
    /// Adds `n` events that took `ms`.
    pub fn add(&self, ms: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.counts[slot(ms)].fetch_add(n, Relaxed);
        self.max.fetch_max(ms, Relaxed);
    }

    pub fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let events: u64 = counts.iter().sum();
        let max = self.max.load(Relaxed);
        let at = |q: f64| {
            let want = ((events as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (s, &c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return upper(s).min(max);
                }
            }
            max
        };
        if events == 0 {
            return LatencySummary::default();
        }
        LatencySummary {
            events,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_a_step() {
        let l = Latencies::default();
        l.add(3, 50);
        l.add(40, 49);
        l.add(2_345, 1);
        let s = l.summary();
        assert_eq!(
            (s.events, s.p50_ms, s.p99_ms, s.max_ms),
            (100, 3, 40, 2_345)
        );
        l.add(100_000, 1000);
        assert_eq!(l.summary().p99_ms, 100_000, "beyond 60 s: the maximum");
        assert_eq!(Latencies::default().summary(), LatencySummary::default());
    }
}
