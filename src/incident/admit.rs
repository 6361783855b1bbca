//! Admission: a per-service budget of new incidents per window, so a flood of never-seen errors
//! keeps memory and output bounded without dropping anything.
//!
//! In: clustered events in a deterministic order, on the worker that owns their shard. Out: the
//! same events, except that an event whose fingerprint is new once its service has used its
//! budget for the event's window is folded into the service's overflow incident (its
//! fingerprint and route rewritten, its message kept as a sample, its count kept). State: per
//! service and window, how many new fingerprints were admitted; the fingerprints admitted and
//! the window each was last seen in (forgotten after `windows_kept` quiet windows).
//!
//! The budget is kept per shard (`SHARDS` slices of the route space, each owned by one worker
//! whatever the worker count), so the decisions, and the output, are the same for any number of
//! workers: `budget / SHARDS` (rounded up) new incidents per shard, service and window.

use std::collections::HashMap;
use std::sync::Arc;

use super::IncidentConfig;
use crate::core::record::Clustered;

pub use crate::core::shard::{SHARDS, overflow_fingerprint, owner};

/// What `Admission::admit` did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// A fingerprint already admitted.
    Known,
    /// A new fingerprint, within the budget.
    New,
    /// A new fingerprint past the budget: folded into the overflow incident.
    Folded,
}

/// The admission state of one worker.
#[derive(Debug)]
pub struct Admission {
    cfg: IncidentConfig,
    per_shard: u64,
    /// (service, shard, window) → new fingerprints admitted.
    used: HashMap<(Arc<str>, u64, i64), u64>,
    /// fingerprint → the last window it was seen in.
    known: HashMap<u64, i64>,
    /// The newest window seen, for forgetting.
    newest: i64,
}

impl Admission {
    pub fn new(cfg: &IncidentConfig) -> Admission {
        Admission {
            cfg: cfg.clone(),
            per_shard: crate::core::shard::per_shard(cfg.new_per_window),
            used: HashMap::new(),
            known: HashMap::new(),
            newest: i64::MIN,
        }
    }

    /// Fingerprints restored from a checkpoint count as admitted.
    pub fn remember(&mut self, fingerprints: impl IntoIterator<Item = u64>) {
        for fp in fingerprints {
            self.known.insert(fp, i64::MIN);
        }
    }

    /// Decides for `c`, rewriting it when it is folded.
    pub fn admit(&mut self, c: &mut Clustered) -> Admitted {
        let window = self.cfg.window_of(c.event.record.time());
        if window > self.newest {
            if self.newest == i64::MIN {
                // Restored fingerprints age from the first window seen.
                self.known.values_mut().for_each(|w| *w = (*w).max(window));
            }
            self.newest = window;
            self.forget();
        }
        if let Some(last) = self.known.get_mut(&c.fingerprint) {
            *last = (*last).max(window);
            return Admitted::Known;
        }
        let service: Arc<str> = c.event.record.service.as_deref().unwrap_or("").into();
        let used = self
            .used
            .entry((service.clone(), owner(c.route), window))
            .or_default();
        if *used < self.per_shard {
            *used += 1;
            self.known.insert(c.fingerprint, window);
            return Admitted::New;
        }
        crate::core::shard::fold(c, &service, self.cfg.new_per_window);
        Admitted::Folded
    }

    /// Drops what is older than the windows kept.
    fn forget(&mut self) {
        let horizon = self.newest.saturating_sub(
            self.cfg
                .window
                .0
                .saturating_mul(self.cfg.windows_kept as i64),
        );
        self.used.retain(|(_, _, w), _| *w >= horizon);
        self.known.retain(|_, w| *w >= horizon);
    }

    /// Fingerprints remembered (for tests and metrics).
    pub fn known(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{ErrorEvent, Kind, Level, LogRecord};

    fn event(fp: u64, service: &str, ts: i64) -> Clustered {
        Clustered {
            event: ErrorEvent {
                record: LogRecord {
                    ts: Some(ts),
                    service: Some(service.into()),
                    level: Level::Error,
                    ..LogRecord::default()
                },
                severity: Level::Error,
                reasons: vec![],
                key: None,
            },
            fingerprint: fp,
            route: fp,
            kind: Kind::Message,
            title: "t".into(),
            template: "t".into(),
            merges: vec![],
        }
    }

    fn cfg(budget: u64) -> IncidentConfig {
        IncidentConfig {
            new_per_window: budget,
            ..IncidentConfig::default()
        }
    }

    #[test]
    fn past_the_budget_new_fingerprints_fold_and_known_ones_do_not() {
        let mut a = Admission::new(&cfg(SHARDS));
        // Shard 5: one new fingerprint per window per service.
        let (first, second) = (5, 5 + SHARDS);
        assert_eq!(a.admit(&mut event(first, "api", 1_000)), Admitted::New);
        let mut late = event(second, "api", 2_000);
        assert_eq!(a.admit(&mut late), Admitted::Folded);
        assert_eq!(late.fingerprint, overflow_fingerprint("api"));
        assert_eq!(
            late.route, late.fingerprint,
            "the overflow incident has one owner"
        );
        assert_eq!(a.admit(&mut event(first, "api", 3_000)), Admitted::Known);
        assert_eq!(
            a.admit(&mut event(second, "db", 3_000)),
            Admitted::New,
            "each service has its own budget"
        );
        assert_eq!(
            a.admit(&mut event(second, "api", 4_000)),
            Admitted::Known,
            "one incident per fingerprint, whichever service logged it first"
        );
        let third = 5 + 2 * SHARDS;
        assert_eq!(a.admit(&mut event(third, "api", 5_000)), Admitted::Folded);
        assert_eq!(
            a.admit(&mut event(third, "api", 61_000)),
            Admitted::New,
            "a new window, a new budget"
        );
        assert_ne!(overflow_fingerprint("api"), overflow_fingerprint("db"));
    }

    #[test]
    fn memory_is_bounded_by_the_windows_kept() {
        let c = cfg(SHARDS * 4);
        let mut a = Admission::new(&c);
        for i in 0..200_000u64 {
            let t = i as i64 * 10;
            a.admit(&mut event(i, "flood", t));
        }
        let windows = (c.windows_kept + 1) as u64;
        assert!(
            (a.known() as u64) <= windows * SHARDS * 4,
            "{} fingerprints remembered",
            a.known()
        );
    }
}
