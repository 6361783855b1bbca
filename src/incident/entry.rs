//! One incident as the book keeps it: what it has seen, its counts, its lifecycle flags.
//!
//! In: clustered events (`observe`), count changes per alias (`apply_count`), other incidents
//! merged into it (`absorb`). Out: `Incident` lines (`render`). State: the fields below. Counts
//! are kept per *alias*, the fingerprint under which events were counted; an incident that
//! absorbed others (its template merged theirs) reports the sum, so no count ever has to move.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::IncidentConfig;
use crate::core::record::{Clustered, Incident, Kind, Level, ReleaseCount, State, WindowCount};
use crate::core::time::{Millis, format_rfc3339};

/// What differential counts: (route, fingerprint at counting time, window start or `None` for
/// the total).
pub type CountKey = (u64, u64, Option<Millis>);

/// Longest sample kept, in bytes.
const SAMPLE_BYTES: usize = 512;
/// Longest exemplar trace kept, in bytes: the model stage reads frames and the exception from it.
const TRACE_BYTES: usize = 8192;
/// Reasons listed per incident.
const MAX_REASONS: usize = 8;

/// The differential counts of one alias: the total and per window start.
#[derive(Default, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Part {
    pub total: u64,
    pub windows: BTreeMap<Millis, u64>,
}

/// Serialized as is in checkpoints (`state.rs`), except for the per-epoch bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Entry {
    pub route: u64,
    pub kind: Kind,
    pub title: String,
    pub template: String,
    pub severity: Level,
    pub service: String,
    pub services: BTreeSet<String>,
    pub hosts: BTreeSet<String>,
    pub reasons: BTreeSet<String>,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub parts: BTreeMap<u64, Part>,
    pub samples: Vec<String>,
    pub exemplar_trace: Option<String>,
    pub state: State,
    pub regressions: u32,
    /// Events per release (`release_field`), with when each release was last seen; the
    /// `max_attrs` most recent releases are kept.
    #[serde(default)]
    pub releases: BTreeMap<String, (u64, Millis)>,
    pub emitted: bool,
    pub last_emit: Millis,
    /// Events since the last emission.
    pub dirty: bool,
    #[serde(skip)]
    pub touched: bool,
    #[serde(skip)]
    pub timer: Option<Millis>,
}

fn cut(s: &str) -> String {
    crate::core::record::truncate(s, SAMPLE_BYTES)
}

impl Entry {
    /// A new incident, in state `New`, opened by event `c` at time `t`.
    pub fn new(c: &Clustered, t: Millis) -> Entry {
        Entry {
            route: c.route,
            kind: c.kind,
            title: c.title.to_string(),
            template: c.template.to_string(),
            severity: c.event.severity,
            service: c.event.record.service.clone().unwrap_or_default(),
            services: BTreeSet::new(),
            hosts: BTreeSet::new(),
            reasons: BTreeSet::new(),
            first_seen: t,
            last_seen: t,
            parts: BTreeMap::new(),
            samples: Vec::new(),
            exemplar_trace: None,
            state: State::New,
            regressions: 0,
            releases: BTreeMap::new(),
            emitted: false,
            last_emit: t,
            dirty: false,
            touched: false,
            timer: None,
        }
    }

    /// Folds one event in.
    pub fn observe(&mut self, c: &Clustered, cfg: &IncidentConfig) {
        let rec = &c.event.record;
        let t = rec.time();
        if c.kind == Kind::Message && *self.template != *c.template {
            // The template generalised since the incident opened: report the current one.
            self.template = c.template.to_string();
            self.title = c.title.to_string();
        }
        self.severity = self.severity.max(c.event.severity);
        self.first_seen = self.first_seen.min(t);
        self.last_seen = self.last_seen.max(t);
        for (set, value) in [
            (&mut self.services, &rec.service),
            (&mut self.hosts, &rec.host),
        ] {
            // Looked up before cloning: nearly every event repeats what the set holds.
            if let Some(v) = value
                && set.len() < cfg.max_attrs
                && !set.contains(v)
            {
                set.insert(v.clone());
            }
        }
        for r in &c.event.reasons {
            if self.reasons.len() < MAX_REASONS && !self.reasons.contains(r) {
                self.reasons.insert(r.clone());
            }
        }
        if self.samples.len() < cfg.max_samples {
            self.samples.push(cut(&rec.message));
        }
        if !cfg.release_field.is_empty()
            && let Some((_, release)) = rec.fields.iter().find(|(k, _)| *k == cfg.release_field)
        {
            self.count_release(release, 1, t, cfg);
        }
        if self.exemplar_trace.is_none() {
            self.exemplar_trace = rec
                .trace
                .as_deref()
                .map(|t| crate::core::record::truncate(t, TRACE_BYTES));
        }
        self.dirty = true;
    }

    /// Counts `n` events of `release`; beyond `max_attrs` releases the least recently seen goes.
    fn count_release(&mut self, release: &str, n: u64, t: Millis, cfg: &IncidentConfig) {
        let slot = self
            .releases
            .entry(crate::core::record::truncate(release, 64))
            .or_default();
        slot.0 += n;
        slot.1 = slot.1.max(t);
        while self.releases.len() > cfg.max_attrs.max(1) {
            let oldest = self
                .releases
                .iter()
                .min_by_key(|(k, (_, at))| (*at, (*k).clone()))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.releases.remove(&k),
                None => break,
            };
        }
    }

    /// Takes over an incident whose template merged into this one's.
    pub fn absorb(&mut self, other: Entry, cfg: &IncidentConfig) {
        self.severity = self.severity.max(other.severity);
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        for (set, more) in [
            (&mut self.services, other.services),
            (&mut self.hosts, other.hosts),
        ] {
            for v in more {
                if set.len() < cfg.max_attrs {
                    set.insert(v);
                }
            }
        }
        for r in other.reasons {
            if self.reasons.len() < MAX_REASONS {
                self.reasons.insert(r);
            }
        }
        let room = cfg.max_samples.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
        if self.exemplar_trace.is_none() {
            self.exemplar_trace = other.exemplar_trace;
        }
        self.regressions = self.regressions.max(other.regressions);
        for (release, (n, at)) in other.releases {
            self.count_release(&release, n, at, cfg);
        }
        self.parts.extend(other.parts);
        self.dirty = true;
    }

    /// Applies one change from the count collection for `alias`: `diff` −1 retracts `count`,
    /// +1 asserts it.
    pub fn apply_count(&mut self, alias: u64, window: Option<Millis>, count: u64, diff: isize) {
        let part = self.parts.entry(alias).or_default();
        match (window, diff.signum()) {
            (None, 1) => part.total = count,
            (None, -1) if part.total == count => part.total = 0,
            (Some(w), 1) => {
                part.windows.insert(w, count);
            }
            (Some(w), -1) if part.windows.get(&w) == Some(&count) => {
                part.windows.remove(&w);
            }
            _ => {}
        }
    }

    /// Events so far, over all aliases.
    pub fn count(&self) -> u64 {
        self.parts.values().map(|p| p.total).sum()
    }

    /// Events per window start, over all aliases.
    pub fn windows(&self) -> BTreeMap<Millis, u64> {
        let mut out: BTreeMap<Millis, u64> = BTreeMap::new();
        for p in self.parts.values() {
            for (w, n) in &p.windows {
                *out.entry(*w).or_default() += n;
            }
        }
        out
    }

    /// The incident line, marking the entry as reported.
    pub fn render(&mut self, cfg: &IncidentConfig, fp: u64, now: Millis) -> Incident {
        self.emitted = true;
        self.dirty = false;
        self.last_emit = now;
        let first_window =
            cfg.window_of(now.max(self.last_seen)) - (cfg.windows_kept as i64 - 1) * cfg.window.0;
        Incident {
            fingerprint: format!("{fp:016x}"),
            state: self.state,
            count: self.count(),
            first_seen: format_rfc3339(self.first_seen),
            last_seen: format_rfc3339(self.last_seen),
            at: format_rfc3339(now),
            kind: self.kind,
            title: self.title.clone(),
            template: self.template.clone(),
            severity: self.severity,
            service: self.service.clone(),
            services: self.services.iter().cloned().collect(),
            hosts: self.hosts.iter().cloned().collect(),
            windows: self
                .windows()
                .range(first_window..)
                .map(|(w, c)| WindowCount {
                    start: format_rfc3339(*w),
                    count: *c,
                })
                .collect(),
            samples: self.samples.clone(),
            exemplar_trace: self.exemplar_trace.clone(),
            reasons: self.reasons.iter().cloned().collect(),
            regressions: self.regressions,
            releases: self
                .releases
                .iter()
                .map(|(release, (count, _))| ReleaseCount {
                    release: release.clone(),
                    count: *count,
                })
                .collect(),
            merged_into: None,
        }
    }

    /// Newest window at least `escalate_factor` × the mean of the earlier kept windows, and at
    /// least `escalate_min` events.
    pub fn escalating(&self, cfg: &IncidentConfig) -> bool {
        let w = cfg.window.0;
        let windows = self.windows();
        let current = cfg.window_of(self.last_seen);
        let Some(&n) = windows.get(&current) else {
            return false;
        };
        let oldest =
            (current - (cfg.windows_kept as i64 - 1) * w).max(cfg.window_of(self.first_seen));
        let slots = (current - oldest) / w;
        if slots == 0 || n < cfg.escalate_min {
            return false;
        }
        let before: u64 = windows.range(oldest..current).map(|(_, c)| c).sum();
        n as f64 >= cfg.escalate_factor * (before as f64 / slots as f64)
    }

    /// Count keys of windows older than the kept range, to retract.
    pub fn expired(&self, cfg: &IncidentConfig, now: Millis) -> Vec<(CountKey, isize)> {
        let horizon =
            cfg.window_of(now.max(self.last_seen)) - (cfg.windows_kept as i64 - 1) * cfg.window.0;
        self.parts
            .iter()
            .flat_map(|(alias, p)| {
                p.windows
                    .range(..horizon)
                    .map(move |(w, n)| ((self.route, *alias, Some(*w)), -(*n as isize)))
            })
            .collect()
    }

    /// Count keys of everything this entry counted, to retract when it is forgotten.
    pub fn all_counts(&self) -> Vec<(CountKey, isize)> {
        self.parts
            .iter()
            .flat_map(|(alias, p)| {
                std::iter::once(((self.route, *alias, None), -(p.total as isize))).chain(
                    p.windows
                        .iter()
                        .map(move |(w, n)| ((self.route, *alias, Some(*w)), -(*n as isize))),
                )
            })
            .collect()
    }
}
