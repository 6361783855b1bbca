//! The incident book: every incident one worker owns, and their lifecycle. Pure logic, no timely
//! types: the dataflow and the sequential reference drive the same `Book`.
//!
//! Per epoch the driver calls `advance_clock`, `observe` for each event (in position order),
//! `apply_count` for each count change, then `close_epoch`, which decides state changes and
//! returns the incidents to emit and the count retractions to feed back. `flush` at end of input
//! emits every incident with events not yet reported, so the last line per fingerprint carries
//! its final count. When an event's arrival merged templates, the older incident is absorbed
//! into the surviving one and a last `merged` line names where it continues.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::IncidentConfig;
use super::entry::{CountKey, Entry};
use super::state::{Loaded, Saved};
use crate::core::record::{Clustered, Incident, State};
use crate::core::time::Millis;

pub struct Book {
    cfg: IncidentConfig,
    entries: HashMap<u64, Entry>,
    /// Fingerprints merged into others (resolved transitively).
    redirect: HashMap<u64, u64>,
    timers: BinaryHeap<Reverse<(Millis, u64)>>,
    touched: Vec<u64>,
    /// `merged` lines produced by `observe`, emitted at the close of the epoch.
    merged: Vec<Incident>,
    now: Millis,
    /// A log timestamp has been seen: from then on only log time moves the clock.
    real_clock: bool,
    evicted: u64,
    /// Incidents per state, indexed by `State as usize`.
    by_state: [u64; 6],
}

impl Book {
    pub fn new(cfg: IncidentConfig) -> Book {
        Book {
            cfg,
            entries: HashMap::new(),
            redirect: HashMap::new(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            merged: Vec::new(),
            now: Millis::MIN,
            real_clock: false,
            evicted: 0,
            by_state: [0; 6],
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
    pub fn states(&self) -> [u64; 6] {
        self.by_state
    }

    /// The clock, for a checkpoint.
    pub fn clock(&self) -> (Millis, bool) {
        (self.now, self.real_clock)
    }

    /// Every incident, for a checkpoint.
    pub fn saved(&self) -> impl Iterator<Item = Saved> + '_ {
        self.entries.iter().map(|(fp, e)| Saved::new(*fp, e))
    }

    /// Restores a checkpoint; returns the counts to seed the differential collection with (its
    /// later changes then continue from the restored values).
    pub fn restore(&mut self, loaded: Loaded) -> Vec<(CountKey, isize)> {
        if let Some((now, real)) = loaded.clock {
            self.now = self.now.max(now);
            self.real_clock |= real;
        }
        let mut seeds = Vec::new();
        for s in loaded.incidents {
            let (fp, mut e) = s.into_entry();
            for alias in e.parts.keys().filter(|a| **a != fp) {
                self.redirect.insert(*alias, fp);
            }
            seeds.extend(
                e.all_counts()
                    .into_iter()
                    .filter(|(_, d)| *d != 0)
                    .map(|(k, d)| (k, -d)),
            );
            self.by_state[e.state as usize] += 1;
            schedule(&self.cfg, &mut self.timers, fp, &mut e);
            self.entries.insert(fp, e);
        }
        seeds
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

    fn resolve(&mut self, mut fp: u64) -> u64 {
        while let Some(&next) = self.redirect.get(&fp) {
            fp = next;
        }
        fp
    }

    fn set_state(by_state: &mut [u64; 6], e: &mut Entry, s: State) {
        by_state[e.state as usize] -= 1;
        by_state[s as usize] += 1;
        e.state = s;
    }

    fn touch(touched: &mut Vec<u64>, fp: u64, e: &mut Entry) {
        if !e.touched {
            e.touched = true;
            touched.push(fp);
        }
    }

    /// Folds one event into its incident (counts arrive separately through `apply_count`),
    /// after applying the template merges its arrival caused.
    pub fn observe(&mut self, c: &Clustered) {
        for &(from, into) in &c.merges {
            self.merge(from, into);
        }
        let fp = self.resolve(c.fingerprint);
        let t = c.event.record.time();
        let by_state = &mut self.by_state;
        let e = self.entries.entry(fp).or_insert_with(|| {
            by_state[State::New as usize] += 1;
            Entry::new(c, t)
        });
        e.observe(c, &self.cfg);
        Self::touch(&mut self.touched, fp, e);
    }

    /// Incident `from` continues as `into`: its last line says so, and `into` absorbs it.
    fn merge(&mut self, from: u64, into: u64) {
        let (from, into) = (self.resolve(from), self.resolve(into));
        if from == into {
            return;
        }
        self.redirect.insert(from, into);
        let Some(mut old) = self.entries.remove(&from) else {
            return;
        };
        self.by_state[old.state as usize] -= 1;
        if old.emitted {
            old.state = State::Merged;
            let mut line = old.render(&self.cfg, from, self.now);
            line.merged_into = Some(format!("{into:016x}"));
            self.merged.push(line);
        }
        match self.entries.get_mut(&into) {
            Some(e) => {
                e.absorb(old, &self.cfg);
                Self::touch(&mut self.touched, into, e);
            }
            None => {
                // The surviving template had no incident yet: the old one continues under the
                // new fingerprint, announced as new.
                old.state = State::New;
                old.emitted = false;
                old.dirty = true;
                old.touched = false;
                old.timer = None;
                self.by_state[State::New as usize] += 1;
                let e = self.entries.entry(into).or_insert(old);
                Self::touch(&mut self.touched, into, e);
            }
        }
    }

    /// Applies one change from the count collection: `diff` −1 retracts `count`, +1 asserts it.
    pub fn apply_count(&mut self, key: CountKey, count: u64, diff: isize) {
        let fp = self.resolve(key.1);
        if let Some(e) = self.entries.get_mut(&fp) {
            e.apply_count(key.1, key.2, count, diff);
        }
    }

    /// Ends an epoch: state changes, re-emissions and resolutions; windows past the kept range
    /// are retracted (`retract`, to be fed back into the counts at the next epoch).
    pub fn close_epoch(&mut self, emit: &mut Vec<Incident>, retract: &mut Vec<(CountKey, isize)>) {
        let now = self.now;
        emit.append(&mut self.merged);
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
            } else if e.escalating(&self.cfg) {
                State::Escalating
            } else {
                State::Ongoing
            };
            let due = now.saturating_sub(e.last_emit) >= self.cfg.reemit_interval.0;
            if next != e.state || !e.emitted || due {
                Self::set_state(&mut self.by_state, e, next);
                emit.push(e.render(&self.cfg, fp, now));
            }
            retract.extend(e.expired(&self.cfg, now));
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
                Self::set_state(&mut self.by_state, e, State::Resolved);
                emit.push(e.render(&self.cfg, fp, now));
            } else if e.dirty && now.saturating_sub(e.last_emit) >= self.cfg.reemit_interval.0 {
                emit.push(e.render(&self.cfg, fp, now));
            }
            schedule(&self.cfg, &mut self.timers, fp, e);
        }
        self.evict(retract);
    }

    /// End of input: every incident with unreported events, in fingerprint order.
    pub fn flush(&mut self, emit: &mut Vec<Incident>) {
        let now = self.now;
        emit.append(&mut self.merged);
        let mut fps: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(fp, _)| *fp)
            .collect();
        fps.sort_unstable();
        for fp in fps {
            if let Some(e) = self.entries.get_mut(&fp) {
                emit.push(e.render(&self.cfg, fp, now));
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
                retract.extend(e.all_counts());
                for alias in e.parts.keys() {
                    self.redirect.remove(alias);
                }
            }
        }
        self.evicted += excess as u64;
    }
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
