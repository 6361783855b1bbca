//! The incident operator and the differential counts behind it.
//!
//! In: `Clustered` events and the job-clock stream. Out: `Incident` updates. Inside: events are
//! exchanged by route (the template partition, or the fingerprint); each contributes `+1` to two
//! keys of a differential collection, `(route, fingerprint, None)` (the total) and
//! `(route, fingerprint, Some(window))`, whose `count()` is kept
//! incrementally; windows that fall out of the kept range are retracted through a feedback edge
//! (so they leave the arrangement rather than being recomputed). The `Book` operator receives
//! events, count changes and the broadcast clock, and at the end of each epoch decides what to
//! emit; at end of input it flushes every incident with unreported events. State: the `Book`.

use std::collections::BTreeMap;

use differential_dataflow::AsCollection;
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Capability, Concat, ConnectLoop, Exchange, Feedback, Operator};

use super::{Book, CountKey};
use crate::job::Ctx;
use crate::metrics::{self, OperatorMetrics, Stats};
use crate::parse::stage::ClockTick;
use crate::pipeline::Epoch;
use crate::record::{Clustered, Incident, State};

/// Everything the book operator consumes, on one stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Input {
    Event(Box<Clustered>),
    Count(CountKey, u64, isize),
    Clock(ClockTick),
}

impl Input {
    /// Count changes go to the worker that owns their route.
    fn route(&self) -> u64 {
        match self {
            Input::Event(c) => c.route,
            Input::Count(key, _, _) => key.0,
            Input::Clock(_) => 0,
        }
    }
}

type Update = (CountKey, Epoch, isize);

/// The epoch at which open incidents are flushed when input ends.
pub const FLUSH_EPOCH: Epoch = Epoch::MAX - 1;

#[derive(Default)]
struct EpochInput {
    events: Vec<Clustered>,
    counts: Vec<(CountKey, u64, isize)>,
    clock: Vec<ClockTick>,
}

pub trait TrackIncidents<'s> {
    fn track_incidents(
        self,
        clock: StreamVec<'s, Epoch, ClockTick>,
        ctx: &Ctx,
    ) -> StreamVec<'s, Epoch, Incident>;
}

impl<'s> TrackIncidents<'s> for StreamVec<'s, Epoch, Clustered> {
    fn track_incidents(
        self,
        clock: StreamVec<'s, Epoch, ClockTick>,
        ctx: &Ctx,
    ) -> StreamVec<'s, Epoch, Incident> {
        let scope = self.scope();
        let worker = scope.index();
        let cfg = ctx.plan.incident.clone();
        let stats = ctx.stats.clone();

        let events = self.exchange(|c: &Clustered| c.route);
        let (loop_handle, retractions) = scope.feedback::<Vec<Update>>(1);
        let window_cfg = cfg.clone();
        let updates = events.clone().unary(Pipeline, "CountKeys", move |_, _| {
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    let Some(t) = cap.least().copied() else {
                        return;
                    };
                    let mut session = output.session(&cap);
                    for c in data.flat_map(|b| b.iter()) {
                        let window = window_cfg.window_of(c.event.record.time());
                        session.give(((c.route, c.fingerprint, None), t, 1isize));
                        session.give(((c.route, c.fingerprint, Some(window)), t, 1isize));
                    }
                });
            }
        });
        let counts = updates.concat(retractions).as_collection().count();
        let counts = counts
            .inner
            .map(|((key, n), _t, diff)| Input::Count(key, n.max(0) as u64, diff))
            .exchange(Input::route);
        let merged = events
            .map(|c| Input::Event(Box::new(c)))
            .concat(counts)
            .concat(clock.broadcast().map(Input::Clock));

        let mut builder = OperatorBuilder::new("Incidents".to_owned(), scope);
        let mut input = builder.new_input(merged, Pipeline);
        let (out, incidents) = builder.new_output();
        let (ret, retract_stream) = builder.new_output::<Vec<Update>>();
        let mut out = OutputBuilder::from(out);
        let mut ret = OutputBuilder::from(ret);
        builder.build(move |mut caps| {
            // Keep a capability for the end-of-input flush, but never for the feedback output:
            // holding one there would keep our own input from ever completing.
            caps.truncate(1);
            let mut held: Option<Capability<Epoch>> = caps.pop();
            let mut book = Book::new(cfg);
            let mut pending: BTreeMap<Epoch, (Capability<Epoch>, Capability<Epoch>, EpochInput)> =
                BTreeMap::new();
            let op_metrics = OperatorMetrics::new("incident", worker, &["ok"]);
            let (mut emit, mut retract) = (Vec::new(), Vec::new());
            move |frontiers| {
                let mut out = out.activate();
                let mut ret = ret.activate();
                input.for_each_stamp(|cap, data| {
                    let Some(t) = cap.least().copied() else {
                        return;
                    };
                    let slot = pending.entry(t).or_insert_with(|| {
                        (
                            cap.delayed(&t, 0),
                            cap.delayed(&t, 1),
                            EpochInput::default(),
                        )
                    });
                    for item in data.flat_map(|b| b.drain(..)) {
                        match item {
                            Input::Event(c) => slot.2.events.push(*c),
                            Input::Count(k, n, d) => slot.2.counts.push((k, n, d)),
                            Input::Clock(tick) => slot.2.clock.push(tick),
                        }
                    }
                });
                let frontier = &frontiers[0];
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let t = *entry.key();
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
                    op_metrics.batch(epoch.events.len(), &[emit.len()]);
                    report(&stats, worker, &book, emit.len());
                    out.session(&cap_out).give_iterator(emit.drain(..));
                    ret.session(&cap_ret)
                        .give_iterator(retract.drain(..).map(|(k, d)| (k, t + 1, d)));
                }
                match frontier.frontier().iter().min() {
                    Some(&t) => {
                        if let Some(h) = held.as_mut()
                            && t > *h.time()
                        {
                            h.downgrade(&t);
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
                        }
                    }
                }
            }
        });
        retract_stream.connect_loop(loop_handle);
        incidents
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
