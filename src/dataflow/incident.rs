//! The incident operator and the differential counts behind it.
//!
//! In: `Clustered` events and the job-clock stream. Out: `Incident` updates. Inside: events are
//! exchanged by route (the template partition, or the fingerprint); each contributes `+1` to two
//! keys of a differential collection, `(route, fingerprint, None)` (the total) and
//! `(route, fingerprint, Some(window))` (summed per key and batch before they are sent), whose
//! `count()` is kept incrementally; windows that fall out of the kept range are retracted through a feedback edge
//! (so they leave the arrangement rather than being recomputed). The `Book` operator receives
//! events, count changes and the broadcast clock, and at the end of each epoch decides what to
//! emit; at end of input it flushes every incident with unreported events. State: the `Book`,
//! restored from `job.state_dir` at start (its counts seed the differential collection at epoch
//! 0) and saved there at each checkpoint boundary and at the end. The second output carries no
//! data: its frontier is the newest checkpoint that this worker's book *and* miner have saved,
//! and the Kafka source commits offsets only below it.

use std::collections::BTreeMap;

use differential_dataflow::AsCollection;
use rustc_hash::FxHashMap;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{
    Capability, Concat, ConnectLoop, Exchange as _, Feedback, InputCapability,
};

use crate::core::checkpoint::{self, Schedule, Watermark};
use crate::core::epoch::{Epoch, FLUSH_EPOCH};
use crate::core::record::ClockTick;
use crate::core::record::{Clustered, Incident, State};
use crate::dataflow::admit::AdmitIncidents;
use crate::dataflow::ctx::Ctx;
use crate::incident::admit::{Admission, owner};
use crate::incident::{Book, CountKey, IncidentConfig, count_changes, state};
use crate::metrics::{self, Batch, Histogram, OperatorMetrics, Stats, names};

type Update = (CountKey, Epoch, isize);

#[derive(Default)]
struct EpochInput {
    events: Vec<Clustered>,
    counts: Vec<(CountKey, u64, isize)>,
    clock: Vec<ClockTick>,
}

/// Per epoch not yet complete: capabilities for the incident and retraction outputs, and input.
type Pending = BTreeMap<Epoch, (Capability<Epoch>, Capability<Epoch>, EpochInput)>;

/// The book's input for the epoch of `cap`.
fn slot_of<'a>(
    pending: &'a mut Pending,
    cap: &InputCapability<Epoch>,
) -> Option<&'a mut EpochInput> {
    let t = cap.least().copied()?;
    let slot = pending.entry(t).or_insert_with(|| {
        (
            cap.delayed(&t, 0),
            cap.delayed(&t, 1),
            EpochInput::default(),
        )
    });
    Some(&mut slot.2)
}

/// A count from differential: (key, count), time, change.
type Counted = ((CountKey, isize), Epoch, isize);

/// Passes events through unchanged and emits their count changes, summed per key and batch
/// (`count_changes`), so differential sees one change per key rather than two per event, and
/// no event is cloned. `seeds` (restored counts) enter at epoch 0, before any event.
fn count_keys<'s>(
    events: StreamVec<'s, Epoch, Clustered>,
    seeds: Vec<(CountKey, isize)>,
    cfg: IncidentConfig,
) -> (
    StreamVec<'s, Epoch, Clustered>,
    StreamVec<'s, Epoch, Update>,
) {
    let scope = events.scope();
    let mut builder = OperatorBuilder::new("CountKeys".to_owned(), scope);
    let mut input = builder.new_input(events, Pipeline);
    let (pass, passed) = builder.new_output::<Vec<Clustered>>();
    let (changes, updates) = builder.new_output::<Vec<Update>>();
    let (mut pass, mut changes) = (OutputBuilder::from(pass), OutputBuilder::from(changes));
    scope
        .activator_for(builder.operator_info().address)
        .activate();
    builder.build(move |mut caps| {
        let mut seed = caps.pop().map(|cap| (cap, seeds));
        drop(caps);
        let mut sums = FxHashMap::default();
        move |_frontiers| {
            let (mut pass, mut changes) = (pass.activate(), changes.activate());
            if let Some((cap, seeds)) = seed.take() {
                changes
                    .session(&cap)
                    .give_iterator(seeds.into_iter().map(|(k, d)| (k, 0, d)));
            }
            input.for_each_stamp(|cap, data| {
                let Some(t) = cap.least().copied() else {
                    return;
                };
                let out = cap.delayed(&t, 0);
                let mut session = pass.session(&out);
                for batch in data {
                    count_changes(batch.iter(), &cfg, &mut sums);
                    session.give_container(batch);
                }
                changes
                    .session(&cap.delayed(&t, 1))
                    .give_iterator(sums.drain().map(|(k, d)| (k, t, d)));
            });
        }
    });
    (passed, updates)
}

/// Incident updates, and the checkpoint stream (no data; see the module docs).
pub type Tracked<'s> = (StreamVec<'s, Epoch, Incident>, StreamVec<'s, Epoch, ()>);

/// Folds clustered events into de-duplicated incidents.
pub trait TrackIncidents<'s> {
    /// Counts events per incident and window, and emits each incident's update at the end of
    /// the epoch it changed in; `clock` drives windows and resolution. Returns the updates and
    /// the checkpoint stream.
    fn track_incidents(
        self,
        clock: StreamVec<'s, Epoch, ClockTick>,
        ctx: &Ctx,
        miner_saved: Watermark,
    ) -> Tracked<'s>;
}

impl<'s> TrackIncidents<'s> for StreamVec<'s, Epoch, Clustered> {
    fn track_incidents(
        self,
        clock: StreamVec<'s, Epoch, ClockTick>,
        ctx: &Ctx,
        miner_saved: Watermark,
    ) -> Tracked<'s> {
        let scope = self.scope();
        let (worker, peers) = (scope.index(), scope.peers());
        let cfg = ctx.plan.incident.clone();
        let stats = ctx.stats.clone();
        let state_dir = ctx.plan.state_dir.clone();
        let mut book = Book::new(cfg.clone());
        let mut admission = Admission::new(&cfg);
        let mut seeds = Vec::new();
        if let Some(dir) = &state_dir {
            match state::load(dir, worker, peers, ctx.restore.pick) {
                Ok(loaded) => {
                    admission.remember(loaded.incidents.iter().map(|s| s.fingerprint));
                    seeds = book.restore(loaded);
                }
                Err(e) => ctx.error(format!("job.state_dir {}: {e}", dir.display())),
            }
        }

        // By shard (the same owner for any worker count), past the budget folded, and again by
        // shard: a folded event belongs to its service's overflow incident.
        let events = self
            .exchange(|c: &Clustered| owner(c.route))
            .admit_incidents(admission)
            .exchange(|c: &Clustered| owner(c.route));
        let (loop_handle, retractions) = scope.feedback::<Vec<Update>>(1);
        let (events, updates) = count_keys(events, seeds, cfg.clone());
        let counts = updates.concat(retractions).as_collection().count().inner;
        // Built before the book operator: timely schedules operators in the order they were
        // built, so an input built after its consumer reaches it one step later (measured: a
        // replay's probe then lagged enough that HDFS at one worker lost a fifth).
        let clock = clock.broadcast();

        let mut builder = OperatorBuilder::new("Incidents".to_owned(), scope);
        // Events stay where their route put them; counts go to the worker owning their route;
        // every worker sees the whole clock.
        let mut events = builder.new_input(events, Pipeline);
        let route = |((key, _), _, _): &Counted| owner(key.0);
        let mut counts = builder.new_input(counts, Exchange::new(route));
        let mut clock = builder.new_input(clock, Pipeline);
        let (out, incidents) = builder.new_output();
        let (ret, retract_stream) = builder.new_output::<Vec<Update>>();
        let (_checkpoints, checkpoint_stream) = builder.new_output::<Vec<()>>();
        let mut out = OutputBuilder::from(out);
        let mut ret = OutputBuilder::from(ret);
        let ctx = ctx.clone();
        let activator = scope.activator_for(builder.operator_info().address);
        builder.build(move |mut caps| {
            // Keep a capability for the end-of-input flush and one for the checkpoint frontier,
            // but never for the feedback output: holding one there would keep our own input
            // from ever completing.
            let mut covered: Option<Capability<Epoch>> = caps.pop().filter(|_| state_dir.is_some());
            caps.truncate(1);
            let mut held: Option<Capability<Epoch>> = caps.pop();
            let mut schedule = Schedule::new(ctx.plan.checkpoint_epochs);
            let live_tick = ctx.plan.live.then_some(ctx.plan.tick_ms);
            let mut saved_at: Epoch = 0;
            let save = move |book: &Book, at: Epoch| -> bool {
                let Some(dir) = &state_dir else { return false };
                let g = ctx.restore.generation(at);
                let saved = state::save(dir, worker, peers, g, book.clock(), book.saved())
                    .and_then(|()| {
                        let keep = ctx.restore.keep_from(g);
                        checkpoint::prune(dir, state::PREFIX, worker, peers, keep)
                    });
                if let Err(e) = &saved {
                    ctx.error(format!("job.state_dir {}: {e}", dir.display()));
                }
                saved.is_ok()
            };
            let mut pending: Pending = BTreeMap::new();
            let op_metrics = OperatorMetrics::new("incident", worker, &["ok"]);
            let mut latency = Batch::default();
            let w = worker.to_string();
            let event_to_incident = Histogram::new(names::EVENT_TO_INCIDENT, &[("worker", &w)]);
            let (mut emit, mut retract) = (Vec::new(), Vec::new());
            move |frontiers| {
                let mut out = out.activate();
                let mut ret = ret.activate();
                events.for_each_stamp(|cap, data| {
                    if let Some(slot) = slot_of(&mut pending, &cap) {
                        data.for_each(|b| slot.events.append(b));
                    }
                });
                counts.for_each_stamp(|cap, data| {
                    if let Some(slot) = slot_of(&mut pending, &cap) {
                        let changes = data.flat_map(|b| b.drain(..));
                        slot.counts
                            .extend(changes.map(|((k, n), _, d)| (k, n.max(0) as u64, d)));
                    }
                });
                clock.for_each_stamp(|cap, data| {
                    if let Some(slot) = slot_of(&mut pending, &cap) {
                        data.for_each(|b| slot.clock.append(b));
                    }
                });
                // An epoch is complete once every input has passed it.
                let complete = |t: &Epoch| !frontiers.iter().any(|f| f.less_equal(t));
                while let Some(entry) = pending.first_entry() {
                    if !complete(entry.key()) {
                        break;
                    }
                    let t = *entry.key();
                    if let Some(b) = schedule.before(t)
                        && save(&book, b)
                    {
                        saved_at = b;
                    }
                    let (cap_out, cap_ret, mut epoch) = entry.remove();
                    for (t, real) in epoch.clock.drain(..) {
                        book.advance_clock(t, real);
                    }
                    epoch.events.sort_by_key(|c| c.event.record.pos);
                    for c in &epoch.events {
                        book.observe(c);
                    }
                    epoch.counts.sort_by_key(|&(_, _, d)| d);
                    for (k, n, d) in epoch.counts {
                        book.apply_count(k, n, d);
                    }
                    book.close_epoch(&mut emit, &mut retract);
                    let now = crate::core::time::now_ms();
                    // Events read in the same batch share their latency: one observation per
                    // run, for the report's histogram and (when served) the metrics' one.
                    let mut record = |ms: u64, n: u64| {
                        stats.latency.add(ms, n);
                        latency.observe_n(ms as f64 / 1000.0, n);
                    };
                    let mut run: Option<(u64, u64)> = None;
                    for c in &epoch.events {
                        let ms = (now - c.event.record.ingest_ms).max(0) as u64;
                        match run.as_mut() {
                            Some((l, n)) if *l == ms => *n += 1,
                            _ => {
                                if let Some((l, n)) = run.replace((ms, 1)) {
                                    record(l, n);
                                }
                            }
                        }
                    }
                    if let Some((l, n)) = run {
                        record(l, n);
                    }
                    latency.clone().flush(&event_to_incident);
                    op_metrics.batch(epoch.events.len(), &[emit.len()]);
                    op_metrics.latency(&mut latency);
                    report(&stats, worker, &book, emit.len());
                    out.session(&cap_out).give_iterator(emit.drain(..));
                    ret.session(&cap_ret)
                        .give_iterator(retract.drain(..).map(|(k, d)| (k, t + 1, d)));
                }
                let least = frontiers
                    .iter()
                    .flat_map(|f| f.frontier().iter().min().copied())
                    .min();
                match least {
                    Some(t) => {
                        if let Some(h) = held.as_mut()
                            && t > *h.time()
                        {
                            h.downgrade(&t);
                            if let Some(tick) = live_tick {
                                metrics::frontier_lag(
                                    worker,
                                    crate::core::time::now_ms() - t as i64 * tick,
                                );
                            }
                        }
                        if let Some(b) = schedule.after(t)
                            && save(&book, b)
                        {
                            saved_at = b;
                        }
                    }
                    None => {
                        if let Some(mut h) = held.take() {
                            // Every worker flushes at the same epoch, so the sink orders the
                            // final lines the same way for any number of workers.
                            h.downgrade(&FLUSH_EPOCH);
                            book.flush(&mut emit);
                            report(&stats, worker, &book, emit.len());
                            out.session(&h).give_iterator(emit.drain(..));
                            if save(&book, Epoch::MAX) {
                                saved_at = Epoch::MAX;
                            }
                        }
                    }
                }
                // The checkpoint frontier: what both this book and this worker's miner have
                // saved. A failed save keeps it where it was (offsets stay uncommitted).
                let reached = saved_at.min(miner_saved.get());
                if reached == Epoch::MAX {
                    covered = None;
                } else if let Some(c) = covered.as_mut() {
                    if reached > *c.time() {
                        c.downgrade(&reached);
                    }
                    if held.is_none() {
                        // Input is done; wait for the miner's final save.
                        activator.activate_after(std::time::Duration::from_millis(10));
                    }
                }
            }
        });
        retract_stream.connect_loop(loop_handle);
        (incidents, checkpoint_stream)
    }
}

fn report(stats: &Stats, worker: usize, book: &Book, updates: usize) {
    Stats::add(&stats.incident_updates, updates);
    let states = book.states();
    let by_state: Vec<(&'static str, u64)> = State::ALL
        .iter()
        .map(|s| (s.as_str(), states[*s as usize]))
        .collect();
    metrics::incidents(worker, &by_state, updates, book.evicted());
}
