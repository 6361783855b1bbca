//! The parse operator: `RawLine` → `LogRecord` on the first output, `DeadLetter` on the second,
//! and on the third the newest event time of each batch (the job clock's input).
//!
//! In: chunks of joined records, each on the worker it was dealt to (`deal.rs`), an input's
//! chunks on one worker in input order. Out: the three streams above. A record without a
//! timestamp of its own (a panic printed to stderr between log lines) takes the previous
//! record's from the same input, so event time never mixes log time with wall-clock time; a
//! chunk says what its first records inherit, or to go on from this worker's own. State: the
//! last timestamp of each input.

use std::collections::{HashMap, VecDeque};

use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use crate::core::epoch::Epoch;
use crate::core::record::{ClockTick, DeadLetter, DeadReason, LogRecord};
use crate::core::time::Millis;
use crate::dataflow::ctx::Ctx;
use crate::dataflow::deal::{Backlog, Carry, Chunk};
use crate::metrics::{self, Batch, OperatorMetrics, Stats};

/// Event times further than this past the wall clock do not move the job clock (a bogus
/// timestamp must not resolve every incident at once).
const FUTURE_SLACK_MS: Millis = 86_400_000;

pub type Parsed<'s> = (
    StreamVec<'s, Epoch, LogRecord>,
    StreamVec<'s, Epoch, DeadLetter>,
    StreamVec<'s, Epoch, ClockTick>,
);

/// Parses records: structured records, dead letters, and the job clock.
pub trait ParseRecords<'s> {
    /// Parses each chunk on the worker it was dealt to; `backlog` is told what was parsed.
    fn parse_records(self, ctx: &Ctx, backlog: Backlog) -> Parsed<'s>;
}

impl<'s> ParseRecords<'s> for StreamVec<'s, Epoch, Chunk> {
    fn parse_records(self, ctx: &Ctx, backlog: Backlog) -> Parsed<'s> {
        let scope = self.scope();
        let worker = scope.index();
        let plan = ctx.plan.clone();
        let stats = ctx.stats.clone();
        let mut builder = OperatorBuilder::new("Parse".to_owned(), scope);
        let mut input = builder.new_input(self, Exchange::new(|c: &Chunk| c.worker as u64));
        let (ok, ok_stream) = builder.new_output();
        let (dead, dead_stream) = builder.new_output();
        let (clock, clock_stream) = builder.new_output();
        let mut ok = OutputBuilder::from(ok);
        let mut dead = OutputBuilder::from(dead);
        let mut clock = OutputBuilder::from(clock);
        let activator = scope.activator_for(builder.operator_info().address);
        builder.build(move |_caps| {
            let op_metrics = OperatorMetrics::new("parse", worker, &["ok", "dead_letter"]);
            let mut last_ts: HashMap<u32, Option<Millis>> = HashMap::new();
            let mut latency = Batch::default();
            // Every reason is exported from the start, at zero (rates and ratios need it).
            for reason in DeadReason::ALL {
                metrics::dead_letters(reason.as_str(), 0);
            }
            // Chunks received and not parsed yet: one is parsed per scheduling, so that the
            // progress of each reaches the other workers at once (parsing everything queued in
            // one go held their cluster and incident stages back until all of it was done).
            let mut queue: VecDeque<([Capability<Epoch>; 3], Chunk)> = VecDeque::new();
            move |_frontiers| {
                let mut ok = ok.activate();
                let mut dead = dead.activate();
                let mut clock = clock.activate();
                input.for_each(|cap, data| {
                    // A message's stamp always holds its time.
                    let Some(&t) = cap.least() else { return };
                    for chunk in data.drain(..) {
                        queue.push_back(([0, 1, 2].map(|port| cap.delayed(&t, port)), chunk));
                    }
                });
                if queue.len() > 1 {
                    activator.activate();
                }
                if let Some(([ok_cap, dead_cap, clock_cap], chunk)) = queue.pop_front() {
                    let mut ok_s = ok.session(&ok_cap);
                    let mut dead_s = dead.session(&dead_cap);
                    let (mut n_in, mut n_ok, mut n_dead) = (0, 0, 0);
                    let mut reasons = [0usize; DeadReason::ALL.len()];
                    let mut newest = Millis::MIN;
                    let mut ingest = Millis::MIN;
                    let now = crate::core::time::now_ms();
                    let limit = now.saturating_add(FUTURE_SLACK_MS);
                    if let Some(source) = chunk.source() {
                        let last = last_ts.entry(source).or_default();
                        if let Carry::Known(t) = chunk.carry {
                            *last = t;
                        }
                        let (worker, dealt) = (chunk.worker, chunk.len());
                        let parser = plan.parser(source);
                        for raw in &chunk.records {
                            n_in += 1;
                            let (rec, letter) = match parser {
                                Some(p) => p.parse(raw),
                                None => (None, None),
                            };
                            if let Some(mut rec) = rec {
                                match rec.ts {
                                    Some(t) => *last = Some(t),
                                    None => rec.ts = *last,
                                }
                                if let Some(t) = rec.ts.filter(|&t| t <= limit) {
                                    newest = newest.max(t);
                                }
                                ingest = ingest.max(rec.ingest_ms);
                                latency.observe_ms(now, rec.ingest_ms);
                                n_ok += 1;
                                ok_s.give(rec);
                            }
                            if let Some(letter) = letter {
                                reasons[letter.reason as usize] += 1;
                                n_dead += 1;
                                dead_s.give(letter);
                            }
                        }
                        backlog.done(worker, dealt);
                    }
                    drop((ok_s, dead_s));
                    if newest > Millis::MIN {
                        clock.session(&clock_cap).give((newest, true));
                    } else if ingest > Millis::MIN {
                        clock.session(&clock_cap).give((ingest, false));
                    }
                    op_metrics.batch(n_in, &[n_ok, n_dead]);
                    op_metrics.latency(&mut latency);
                    Stats::add(&stats.records, n_ok);
                    Stats::add(&stats.dead_letters, n_dead);
                    for (reason, n) in DeadReason::ALL.iter().zip(reasons) {
                        if n > 0 {
                            metrics::dead_letters(reason.as_str(), n);
                        }
                    }
                }
            }
        });
        (ok_stream, dead_stream, clock_stream)
    }
}
