//! Admission: which incidents the model-worker stage works on, and how far automation may go.
//!
//! In: incident updates (fingerprint, event count, whether its frames are in the repository),
//! the time, the money spent. Out: a `Decision`. Each fingerprint is worked on once (single
//! flight; a recurrence meanwhile only bumps a counter), failures are not retried before the
//! negative cache expires, and the daily budget caps spending (beyond it: analysis only).
//! State: fingerprints in flight and done, the negative cache, the day's spending. Pure: `now`
//! is an argument.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::core::time::Millis;

/// How far automation goes for an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Classify and report; no patch.
    Analysis,
    /// Propose and validate a patch.
    Patch,
    /// Also hand a validated patch to deployment.
    Deploy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Work on it, up to this level.
    Start(Level),
    /// Already in flight or handled: counted as a recurrence.
    Recurrence,
    /// Not now (too few events, in the negative cache): the reason.
    Skip(String),
}

/// What the gate needs to know about an incident.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub fingerprint: &'a str,
    pub events: u64,
    /// A frame of its trace is a file of the repository.
    pub in_repository: bool,
}

#[derive(Clone, Debug)]
pub struct Gate {
    pub max_level: Level,
    pub min_events: u64,
    /// The project has a test command (no patch is proposed without one).
    pub has_tests: bool,
    /// How long a failed fingerprint is left alone.
    pub negative_ttl_ms: Millis,
    pub usd_per_day: f64,
}

#[derive(Debug, Default)]
pub struct Admission {
    in_flight: HashMap<String, u64>,
    done: HashMap<String, u64>,
    negative: HashMap<String, Millis>,
    day: i64,
    spent_today: f64,
}

const DAY_MS: Millis = 86_400_000;

impl Admission {
    pub fn decide(&mut self, gate: &Gate, c: &Candidate, now: Millis) -> Decision {
        if let Some(n) = self
            .in_flight
            .get_mut(c.fingerprint)
            .or_else(|| self.done.get_mut(c.fingerprint))
        {
            *n += 1;
            return Decision::Recurrence;
        }
        if let Some(&until) = self.negative.get(c.fingerprint) {
            if now < until {
                return Decision::Skip(format!(
                    "failed before; retried after {}",
                    crate::core::time::format_rfc3339(until)
                ));
            }
            self.negative.remove(c.fingerprint);
        }
        if c.events < gate.min_events {
            return Decision::Skip(format!(
                "{} events, fewer than {}",
                c.events, gate.min_events
            ));
        }
        self.roll_day(now);
        let mut level = gate.max_level;
        if !c.in_repository || !gate.has_tests || self.spent_today >= gate.usd_per_day {
            level = Level::Analysis;
        }
        self.in_flight.insert(c.fingerprint.to_string(), 0);
        Decision::Start(level)
    }

    fn roll_day(&mut self, now: Millis) {
        let day = now.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.spent_today = 0.0;
        }
    }

    /// Money spent now (counts against today's budget).
    pub fn spend(&mut self, usd: f64, now: Millis) {
        self.roll_day(now);
        self.spent_today += usd;
    }

    /// What is left of today's budget.
    pub fn left_today(&mut self, gate: &Gate, now: Millis) -> f64 {
        self.roll_day(now);
        (gate.usd_per_day - self.spent_today).max(0.0)
    }

    /// The work on `fingerprint` ended; a failure goes to the negative cache. Returns the
    /// recurrences seen while it was in flight.
    pub fn finish(&mut self, gate: &Gate, fingerprint: &str, succeeded: bool, now: Millis) -> u64 {
        let recurrences = self.in_flight.remove(fingerprint).unwrap_or(0);
        if succeeded {
            self.done.insert(fingerprint.to_string(), recurrences);
        } else {
            self.negative.insert(
                fingerprint.to_string(),
                now.saturating_add(gate.negative_ttl_ms),
            );
        }
        recurrences
    }

    /// Forgets what was decided for `fingerprint` (its fix was rolled back: work on it again).
    pub fn reopen(&mut self, fingerprint: &str) {
        self.done.remove(fingerprint);
        self.negative.remove(fingerprint);
    }

    /// Recurrences counted for a fingerprint (in flight or done).
    pub fn recurrences(&self, fingerprint: &str) -> u64 {
        self.in_flight
            .get(fingerprint)
            .or_else(|| self.done.get(fingerprint))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate {
            max_level: Level::Patch,
            min_events: 2,
            has_tests: true,
            negative_ttl_ms: 1000,
            usd_per_day: 1.0,
        }
    }

    fn c(fp: &str, events: u64) -> Candidate<'_> {
        Candidate {
            fingerprint: fp,
            events,
            in_repository: true,
        }
    }

    #[test]
    fn one_flight_per_fingerprint() {
        let (g, mut a) = (gate(), Admission::default());
        assert_eq!(
            a.decide(&g, &c("f", 1), 0),
            Decision::Skip("1 events, fewer than 2".into())
        );
        assert_eq!(a.decide(&g, &c("f", 2), 0), Decision::Start(Level::Patch));
        for _ in 0..99 {
            assert_eq!(a.decide(&g, &c("f", 3), 0), Decision::Recurrence);
        }
        assert_eq!(a.finish(&g, "f", true, 0), 99);
        assert_eq!(
            a.decide(&g, &c("f", 3), 10),
            Decision::Recurrence,
            "done: never again"
        );
        assert_eq!(a.recurrences("f"), 100);
    }

    #[test]
    fn failures_wait_out_the_negative_cache() {
        let (g, mut a) = (gate(), Admission::default());
        assert_eq!(a.decide(&g, &c("f", 5), 0), Decision::Start(Level::Patch));
        a.finish(&g, "f", false, 100);
        assert!(matches!(a.decide(&g, &c("f", 5), 500), Decision::Skip(_)));
        assert_eq!(
            a.decide(&g, &c("f", 5), 1100),
            Decision::Start(Level::Patch)
        );
    }

    #[test]
    fn the_gate_caps_automation() {
        let (g, mut a) = (gate(), Admission::default());
        let outside = Candidate {
            fingerprint: "o",
            events: 5,
            in_repository: false,
        };
        assert_eq!(a.decide(&g, &outside, 0), Decision::Start(Level::Analysis));
        let untested = Gate {
            has_tests: false,
            ..gate()
        };
        assert_eq!(
            a.decide(&untested, &c("u", 5), 0),
            Decision::Start(Level::Analysis)
        );
        a.spend(1.5, 0);
        assert_eq!(
            a.decide(&g, &c("b", 5), 1),
            Decision::Start(Level::Analysis),
            "budget exhausted"
        );
        assert_eq!(
            a.decide(&g, &c("n", 5), DAY_MS + 1),
            Decision::Start(Level::Patch),
            "a new day, a new budget"
        );
    }
}
