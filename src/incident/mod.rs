//! Incident stage: clustered error events folded by fingerprint into de-duplicated incidents.
//!
//! In: `Clustered` events, the event counts per fingerprint and per window (maintained
//! incrementally by differential dataflow in `stage.rs`), and the job clock. Out: `Incident`
//! updates, only when an incident changes state (new, ongoing, escalating, resolved after a quiet
//! period, regressed when it comes back) or on the re-emit interval, never once per error line;
//! plus retractions of counting windows that fell out of the kept range. State (`book.rs`): per
//! fingerprint the incident: first/last seen, counts, windows, services, hosts, samples.

pub mod admit;
mod book;
mod entry;
pub mod state;

pub use book::Book;
pub use entry::CountKey;

use serde::{Deserialize, Serialize};

use crate::core::time::Duration;

/// `[incident]`: windows, lifecycle and limits.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentConfig {
    /// Width of a counting window.
    pub window: Duration,
    /// Windows kept per incident; older ones are retracted from the counts.
    pub windows_kept: usize,
    /// An incident without events for this long (in event time) is resolved.
    pub quiet_period: Duration,
    /// An incident with new events is re-emitted at most this often while its state holds.
    pub reemit_interval: Duration,
    /// Escalating: the newest window holds at least this many times the mean of the earlier ones…
    pub escalate_factor: f64,
    /// …and at least this many events.
    pub escalate_min: u64,
    /// Sample messages kept per incident (the first ones seen).
    pub max_samples: usize,
    /// Services and hosts listed per incident.
    pub max_attrs: usize,
    /// Incidents tracked per worker; beyond it the least recently seen (resolved first) are
    /// forgotten, counted in `hephaestus_incidents_evicted_total`. An incident costs about
    /// 2.5 KB.
    pub max_incidents: usize,
    /// New incidents per service and window; past it, new fingerprints fold into the
    /// service's overflow incident (counted, with samples), so a flood of never-seen errors
    /// keeps memory and output bounded. Kept per 1/64 of the fingerprint space (rounded up), so
    /// decisions are the same for any worker count.
    pub new_per_window: u64,
    /// The record field naming the release that logged an event (`release`, `version`, …):
    /// incidents count their events per release (the deployment loop tells a recurrence from a
    /// release with a fix from one without). Empty: none.
    pub release_field: String,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            window: Duration(60_000),
            windows_kept: 15,
            quiet_period: Duration(15 * 60_000),
            reemit_interval: Duration(5 * 60_000),
            escalate_factor: 3.0,
            escalate_min: 20,
            max_samples: 3,
            max_attrs: 10,
            max_incidents: 20_000,
            new_per_window: 1024,
            release_field: "release".into(),
        }
    }
}

impl IncidentConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.windows_kept < 2 {
            return Err("incident.windows_kept must be at least 2".into());
        }
        if self.escalate_factor < 1.0 || !self.escalate_factor.is_finite() {
            return Err("incident.escalate_factor must be at least 1".into());
        }
        if self.new_per_window == 0 {
            return Err("incident.new_per_window must be at least 1".into());
        }
        if self.max_incidents == 0 {
            return Err("incident.max_incidents must be at least 1".into());
        }
        Ok(())
    }

    /// Start of the window holding `t`.
    pub fn window_of(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.window.0)
    }
}

/// Adds a batch's count changes to `sums`: `+1` per event to its total and to its window (the
/// keys differential counts), summed per key, so one change per key and batch is sent on.
pub fn count_changes<'a>(
    events: impl IntoIterator<Item = &'a crate::core::record::Clustered>,
    cfg: &IncidentConfig,
    sums: &mut rustc_hash::FxHashMap<CountKey, isize>,
) {
    for c in events {
        let window = cfg.window_of(c.event.record.time());
        *sums.entry((c.route, c.fingerprint, None)).or_default() += 1;
        *sums
            .entry((c.route, c.fingerprint, Some(window)))
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{Clustered, ErrorEvent, LogRecord};

    fn event(route: u64, fingerprint: u64, ts: i64) -> Clustered {
        Clustered {
            event: ErrorEvent {
                record: LogRecord {
                    ts: Some(ts),
                    ..LogRecord::default()
                },
                severity: crate::core::record::Level::Error,
                reasons: Vec::new(),
                key: None,
            },
            fingerprint,
            route,
            kind: crate::core::record::Kind::Message,
            title: "".into(),
            template: "".into(),
            merges: Vec::new(),
        }
    }

    #[test]
    fn count_changes_sum_what_one_change_per_event_would_give() {
        let cfg = IncidentConfig::default();
        let w = cfg.window.0;
        let events = [
            event(1, 10, 0),
            event(1, 10, w - 1),
            event(1, 10, w),
            event(2, 20, 5),
            event(1, 11, 5),
        ];
        let mut sums = rustc_hash::FxHashMap::default();
        count_changes(&events[..2], &cfg, &mut sums);
        count_changes(&events[2..], &cfg, &mut sums);
        let mut got: Vec<(CountKey, isize)> = sums.into_iter().collect();
        got.sort();
        // The plain definition: +1 per event and key, consolidated.
        let mut want: std::collections::BTreeMap<CountKey, isize> = Default::default();
        for e in &events {
            let t = e.event.record.time();
            for k in [None, Some(t - t.rem_euclid(w))] {
                *want.entry((e.route, e.fingerprint, k)).or_default() += 1;
            }
        }
        assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        // Ten changes, seven keys: fingerprint 10's total and first window are summed.
        assert_eq!(got.len(), 7, "{got:?}");
    }
}
