//! The incident book: every incident one worker owns, and their lifecycle. Pure logic, no timely
//! types: the dataflow and the sequential reference drive the same `Book`.
//!
//! Per epoch the driver calls `advance_clock`, `observe` for each event (in position order),
//! `apply_count` for each count change, then `close_epoch`, which decides state changes and
//! returns the incidents to emit and the count retractions to feed back. `flush` at end of input
//! emits every incident with events not yet reported, so the last line per fingerprint carries
//! its final count.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use super::IncidentConfig;
use crate::record::{Clustered, Incident, Kind, Level, State, WindowCount};
use crate::time::{Millis, format_rfc3339};

/// What differential counts: per fingerprint the total (`None`) and per window start.
pub type CountKey = (u64, Option<Millis>);

/// Longest sample kept, in bytes.
const SAMPLE_BYTES: usize = 512;

struct Entry {
    kind: Kind,
    title: String,
    template: String,
    severity: Level,
    service: String,
    services: BTreeSet<String>,
    hosts: BTreeSet<String>,
    reasons: BTreeSet<String>,
    first_seen: Millis,
    last_seen: Millis,
    count: u64,
    windows: BTreeMap<Millis, u64>,
    samples: Vec<String>,
    exemplar_trace: Option<String>,
    state: State,
    regressions: u32,
    emitted: bool,
    last_emit: Millis,
    /// Events since the last emission.
    dirty: bool,
    touched: bool,
    timer: Option<Millis>,
}

impl Entry {
    /// A new incident, in state `New`, opened by event `c` at time `t`.
    fn new(c: &Clustered, t: Millis) -> Entry {
        Entry {
            kind: c.kind,
            title: c.title.clone(),
            template: c.template.clone(),
            severity: c.event.severity,
            service: c.event.record.service.clone().unwrap_or_default(),
            services: BTreeSet::new(),
            hosts: BTreeSet::new(),
            reasons: BTreeSet::new(),
            first_seen: t,
            last_seen: t,
            count: 0,
            windows: BTreeMap::new(),
            samples: Vec::new(),
            exemplar_trace: None,
            state: State::New,
            regressions: 0,
            emitted: false,
            last_emit: t,
            dirty: false,
            touched: false,
            timer: None,
        }
    }
}

pub struct Book {
    cfg: IncidentConfig,
    entries: HashMap<u64, Entry>,
    timers: BinaryHeap<Reverse<(Millis, u64)>>,
    touched: Vec<u64>,
    now: Millis,
    /// A log timestamp has been seen: from then on only log time moves the clock.
    real_clock: bool,
    evicted: u64,
    /// Incidents per state, indexed by `State as usize`.
    by_state: [u64; 5],
}

impl Book {
    pub fn new(cfg: IncidentConfig) -> Book {
        Book {
            cfg,
            entries: HashMap::new(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            now: Millis::MIN,
            real_clock: false,
            evicted: 0,
            by_state: [0; 5],
        }
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Incidents forgotten so far to respect `max_incidents`.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Incidents per state, indexed by `State as usize` (for metrics).
    pub fn states(&self) -> [u64; 5] {
        self.by_state
    }

    /// Moves the job clock forward. Log timestamps (`real`) drive it; the wall clock at
    /// ingestion stands in only for jobs whose logs carry no timestamps at all.
    pub fn advance_clock(&mut self, t: Millis, real: bool) {
        if real && !self.real_clock {
            self.real_clock = true;
            self.now = t;
        } else if real || !self.real_clock {
            self.now = self.now.max(t);
        }
    }

    /// Folds one event into its incident (counts arrive separately through `apply_count`).
    pub fn observe(&mut self, c: &Clustered) {
        let rec = &c.event.record;
        let t = rec.time();
        let cfg = &self.cfg;
        let by_state = &mut self.by_state;
        let e = self.entries.entry(c.fingerprint).or_insert_with(|| {
            by_state[State::New as usize] += 1;
            Entry::new(c, t)
        });
        if c.kind == Kind::Message && e.template != c.template {
            // The template generalised since the incident opened: report the current one.
            e.template.clone_from(&c.template);
            e.title.clone_from(&c.title);
        }
        e.severity = e.severity.max(c.event.severity);
        e.first_seen = e.first_seen.min(t);
        e.last_seen = e.last_seen.max(t);
        for (set, value) in [(&mut e.services, &rec.service), (&mut e.hosts, &rec.host)] {
            if let Some(v) = value
                && (set.len() < cfg.max_attrs || set.contains(v))
            {
                set.insert(v.clone());
            }
        }
        for r in &c.event.reasons {
            if e.reasons.len() < 8 {
                e.reasons.insert(r.clone());
            }
        }
        if e.samples.len() < cfg.max_samples {
            e.samples.push(cut(&rec.message));
        }
        if e.exemplar_trace.is_none() {
            e.exemplar_trace = rec.trace.as_deref().map(cut);
        }
        e.dirty = true;
        if !e.touched {
            e.touched = true;
            self.touched.push(c.fingerprint);
        }
    }

    /// Applies one change from the count collection: `diff` −1 retracts `count`, +1 asserts it.
    pub fn apply_count(&mut self, key: CountKey, count: u64, diff: isize) {
        let Some(e) = self.entries.get_mut(&key.0) else {
            return;
        };
        match (key.1, diff.signum()) {
            (None, 1) => e.count = count,
            (None, -1) if e.count == count => e.count = 0,
            (Some(w), 1) => {
                e.windows.insert(w, count);
            }
            (Some(w), -1) if e.windows.get(&w) == Some(&count) => {
                e.windows.remove(&w);
            }
            _ => {}
        }
    }

    /// Ends an epoch: state changes, re-emissions and resolutions; windows past the kept range
    /// are retracted (`retract`, to be fed back into the counts at the next epoch).
    pub fn close_epoch(&mut self, emit: &mut Vec<Incident>, retract: &mut Vec<(CountKey, isize)>) {
        let now = self.now;
        let touched = std::mem::take(&mut self.touched);
        for fp in touched {
            let Some(e) = self.entries.get_mut(&fp) else {
                continue;
            };
            e.touched = false;
            let next = if !e.emitted {
                State::New
            } else if e.state == State::Resolved {
                e.regressions += 1;
                State::Regressed
            } else if escalating(&self.cfg, e) {
                State::Escalating
            } else {
                State::Ongoing
            };
            let due = now.saturating_sub(e.last_emit) >= self.cfg.reemit_interval.0;
            if next != e.state || !e.emitted || due {
                self.by_state[e.state as usize] -= 1;
                self.by_state[next as usize] += 1;
                e.state = next;
                emit.push(render(&self.cfg, fp, e, now));
            }
            expire(&self.cfg, fp, e, now, retract);
            schedule(&self.cfg, &mut self.timers, fp, e);
        }
        while let Some(&Reverse((at, fp))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(e) = self.entries.get_mut(&fp) else {
                continue;
            };
            e.timer = None;
            if e.state != State::Resolved
                && now.saturating_sub(e.last_seen) >= self.cfg.quiet_period.0
            {
                self.by_state[e.state as usize] -= 1;
                self.by_state[State::Resolved as usize] += 1;
                e.state = State::Resolved;
                emit.push(render(&self.cfg, fp, e, now));
            } else if e.dirty && now.saturating_sub(e.last_emit) >= self.cfg.reemit_interval.0 {
                emit.push(render(&self.cfg, fp, e, now));
            }
            schedule(&self.cfg, &mut self.timers, fp, e);
        }
        self.evict(retract);
    }

    /// End of input: every incident with unreported events, in fingerprint order.
    pub fn flush(&mut self, emit: &mut Vec<Incident>) {
        let now = self.now;
        let mut fps: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(fp, _)| *fp)
            .collect();
        fps.sort_unstable();
        for fp in fps {
            if let Some(e) = self.entries.get_mut(&fp) {
                emit.push(render(&self.cfg, fp, e, now));
            }
        }
    }

    /// Keeps at most `max_incidents`: forgets resolved ones first, then the least recently seen,
    /// retracting their counts.
    fn evict(&mut self, retract: &mut Vec<(CountKey, isize)>) {
        let excess = self.entries.len().saturating_sub(self.cfg.max_incidents);
        if excess == 0 {
            return;
        }
        let mut order: Vec<(bool, Millis, u64)> = self
            .entries
            .iter()
            .map(|(fp, e)| (e.state != State::Resolved, e.last_seen, *fp))
            .collect();
        order.sort_unstable();
        for &(_, _, fp) in &order[..excess] {
            if let Some(e) = self.entries.remove(&fp) {
                self.by_state[e.state as usize] -= 1;
                retract.push(((fp, None), -(e.count as isize)));
                retract.extend(
                    e.windows
                        .iter()
                        .map(|(w, n)| ((fp, Some(*w)), -(*n as isize))),
                );
            }
        }
        self.evicted += excess as u64;
    }
}

fn cut(s: &str) -> String {
    crate::record::truncate(s, SAMPLE_BYTES)
}

/// Newest window at least `escalate_factor` × the mean of the earlier kept windows, and at least
/// `escalate_min` events.
fn escalating(cfg: &IncidentConfig, e: &Entry) -> bool {
    let w = cfg.window.0;
    let current = cfg.window_of(e.last_seen);
    let Some(&n) = e.windows.get(&current) else {
        return false;
    };
    let oldest = (current - (cfg.windows_kept as i64 - 1) * w).max(cfg.window_of(e.first_seen));
    let slots = (current - oldest) / w;
    if slots == 0 || n < cfg.escalate_min {
        return false;
    }
    let before: u64 = e.windows.range(oldest..current).map(|(_, c)| c).sum();
    n as f64 >= cfg.escalate_factor * (before as f64 / slots as f64)
}

fn expire(
    cfg: &IncidentConfig,
    fp: u64,
    e: &Entry,
    now: Millis,
    retract: &mut Vec<(CountKey, isize)>,
) {
    let horizon =
        cfg.window_of(now.max(e.last_seen)) - (cfg.windows_kept as i64 - 1) * cfg.window.0;
    retract.extend(
        e.windows
            .range(..horizon)
            .map(|(w, n)| ((fp, Some(*w)), -(*n as isize))),
    );
}

fn schedule(
    cfg: &IncidentConfig,
    timers: &mut BinaryHeap<Reverse<(Millis, u64)>>,
    fp: u64,
    e: &mut Entry,
) {
    let mut at = None::<Millis>;
    if e.state != State::Resolved {
        at = Some(e.last_seen.saturating_add(cfg.quiet_period.0));
    }
    if e.dirty {
        let r = e.last_emit.saturating_add(cfg.reemit_interval.0);
        at = Some(at.map_or(r, |a| a.min(r)));
    }
    if let Some(at) = at
        && e.timer.is_none_or(|t| at < t)
    {
        e.timer = Some(at);
        timers.push(Reverse((at, fp)));
    }
}

fn render(cfg: &IncidentConfig, fp: u64, e: &mut Entry, now: Millis) -> Incident {
    e.emitted = true;
    e.dirty = false;
    e.last_emit = now;
    let first_window =
        cfg.window_of(now.max(e.last_seen)) - (cfg.windows_kept as i64 - 1) * cfg.window.0;
    Incident {
        fingerprint: format!("{fp:016x}"),
        state: e.state,
        count: e.count,
        first_seen: format_rfc3339(e.first_seen),
        last_seen: format_rfc3339(e.last_seen),
        at: format_rfc3339(now),
        kind: e.kind,
        title: e.title.clone(),
        template: e.template.clone(),
        severity: e.severity,
        service: e.service.clone(),
        services: e.services.iter().cloned().collect(),
        hosts: e.hosts.iter().cloned().collect(),
        windows: e
            .windows
            .range(first_window..)
            .map(|(w, c)| WindowCount {
                start: format_rfc3339(*w),
                count: *c,
            })
            .collect(),
        samples: e.samples.clone(),
        exemplar_trace: e.exemplar_trace.clone(),
        reasons: e.reasons.iter().cloned().collect(),
        regressions: e.regressions,
    }
}
