//! Dealing: spreads the parsing of one replayed input over the workers, chunk by chunk.
//!
//! In: the joined records of the inputs this worker reads, in input order (from the multiline
//! stage, same worker). Out: `Chunk`s, each routed to the worker that will parse it (the parse
//! stage's exchange key is `Chunk::worker`). State: per input, the worker the last chunk went to
//! and what the next chunk's first records inherit as a timestamp.
//!
//! Why it is exact: the only order-dependent part of parsing is that a record without a
//! timestamp of its own takes the previous record's (same input). So each chunk carries that
//! timestamp (`Carry::Known`), found by parsing the last few records of the chunk before it
//! here, on the dealing worker; the parse stage starts the chunk from it. When none of those
//! few records has a timestamp, the next chunk goes to the same worker as this one
//! (`Carry::Continue`) and continues that worker's own running state, as with one worker. The
//! records, their positions and epochs do not change, so the output is the same for any number
//! of workers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use crate::core::epoch::Epoch;
use crate::core::epoch::KAFKA_SOURCE_BASE;
use crate::core::record::RawLine;
use crate::core::time::Millis;
use crate::dataflow::ctx::Ctx;

/// Records at the end of a chunk parsed here to find the timestamp the next chunk inherits.
const CARRY_PROBES: usize = 8;

/// Chunks an epoch's records of one input are dealt in. Each worker parses one chunk per
/// scheduling, so smaller chunks let the workers pass records, events and progress back and
/// forth sooner, and deal more evenly (the measurements are in BENCHMARKS.md, "Design choices").
pub const CHUNKS_PER_EPOCH: usize = 4;

/// What the first records of a chunk without a timestamp of their own take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Carry {
    /// The last timestamp of the input before the chunk (`None`: there was none).
    Known(Option<Millis>),
    /// Not known here: the parsing worker's own last timestamp of this input is the right one
    /// (the chunk before went to the same worker).
    Continue,
}

/// Consecutive joined records of one input (never of two), and where they are parsed.
/// Each record keeps its own buffer (one buffer per chunk costs more in fresh pages than the
/// cross-thread frees it saves; BENCHMARKS.md, "Design choices").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub worker: u32,
    pub carry: Carry,
    pub records: Vec<RawLine>,
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The input the records come from.
    pub fn source(&self) -> Option<u32> {
        self.records.first().map(|r| r.pos.source)
    }
}

/// Records dealt to each worker of this process and not parsed yet. A chunk goes to the
/// worker with the shortest queue (in turn when they are even, as they mostly are), so a worker
/// that falls behind is dealt less until it catches up. Chunks never cross processes (that
/// would ship every record over the network to save a parse).
/// Only the backlog is weighed, not the workers' CPU time (BENCHMARKS.md, "Design choices").
#[derive(Clone, Debug)]
pub struct Backlog {
    first: u32,
    queued: Arc<[AtomicUsize]>,
}

impl Backlog {
    /// The backlog of `workers` workers numbered from `first` (one process's).
    pub fn new(first: usize, workers: usize) -> Backlog {
        Backlog {
            first: first as u32,
            queued: (0..workers.max(1)).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    fn slot(&self, worker: u32) -> Option<&AtomicUsize> {
        self.queued.get(worker.checked_sub(self.first)? as usize)
    }

    fn add(&self, worker: u32, n: usize) {
        if let Some(q) = self.slot(worker) {
            q.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// `worker` has parsed `n` records dealt to it.
    pub fn done(&self, worker: u32, n: usize) {
        if let Some(q) = self.slot(worker) {
            q.fetch_sub(n, Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    fn queued(&self, worker: u32) -> Option<usize> {
        Some(self.slot(worker)?.load(Ordering::Relaxed))
    }

    /// The worker with the shortest queue; ties go to the first from `turn` on.
    fn shortest(&self, turn: u32) -> u32 {
        let k = self.queued.len() as u32;
        (0..k)
            .map(|i| (turn + i) % k)
            .min_by_key(|&i| self.queued[i as usize].load(Ordering::Relaxed))
            .map_or(self.first, |i| self.first + i)
    }
}

/// One input's dealing state.
#[derive(Clone, Copy, Debug)]
struct Hand {
    next: Carry,
    last_worker: u32,
}

/// The dealer of one worker: decides where each chunk is parsed and what it inherits.
pub struct Dealer {
    me: u32,
    turn: u32,
    backlog: Backlog,
    hands: HashMap<u32, Hand>,
}

impl Dealer {
    pub fn new(me: usize, backlog: Backlog) -> Dealer {
        Dealer {
            me: me as u32,
            turn: me as u32,
            backlog,
            hands: HashMap::new(),
        }
    }

    /// A chunk that stays on this worker, continuing its state (Kafka partitions, live inputs,
    /// one worker). Queued like any other: the parse stage counts every chunk done.
    pub fn keep(&self, records: Vec<RawLine>) -> Chunk {
        self.backlog.add(self.me, records.len());
        Chunk {
            worker: self.me,
            carry: Carry::Continue,
            records,
        }
    }

    /// Deals `records` (consecutive, of input `source`, following the ones dealt before).
    /// `ts_of` parses a record's own timestamp (outer `None`: it has none).
    pub fn deal(
        &mut self,
        source: u32,
        records: Vec<RawLine>,
        ts_of: impl Fn(&RawLine) -> Option<Millis>,
    ) -> Chunk {
        let hand = self.hands.entry(source).or_insert(Hand {
            next: Carry::Known(None),
            last_worker: self.me,
        });
        let carry = hand.next;
        let worker = match carry {
            Carry::Known(_) => {
                self.turn = self.turn.wrapping_add(1);
                self.backlog.shortest(self.turn)
            }
            Carry::Continue => hand.last_worker,
        };
        hand.last_worker = worker;
        self.backlog.add(worker, records.len());
        let probed = records.iter().rev().take(CARRY_PROBES);
        hand.next = match probed.filter_map(&ts_of).next() {
            Some(t) => Carry::Known(Some(t)),
            // Every record looked at: the carry passes through unchanged.
            None if records.len() <= CARRY_PROBES => carry,
            None => Carry::Continue,
        };
        Chunk {
            worker,
            carry,
            records,
        }
    }
}

/// Deals an input's records out to the parsing workers, chunk by chunk.
pub trait DealChunks<'s> {
    /// Cuts this worker's records into chunks and routes each to the least loaded worker that
    /// can parse it exactly; `backlog` is what each worker of the process still has to parse.
    fn deal_chunks(self, ctx: &Ctx, backlog: Backlog) -> StreamVec<'s, Epoch, Chunk>;
}

impl<'s> DealChunks<'s> for StreamVec<'s, Epoch, RawLine> {
    fn deal_chunks(self, ctx: &Ctx, backlog: Backlog) -> StreamVec<'s, Epoch, Chunk> {
        let plan = ctx.plan.clone();
        let me = self.scope().index();
        // With one worker, or inputs read live (small batches, latency first), every chunk
        // stays where it was read.
        let spread = plan.workers > 1 && !plan.live;
        let most = if spread {
            plan.batch_lines.div_ceil(CHUNKS_PER_EPOCH).max(1)
        } else {
            usize::MAX
        };
        self.unary(Pipeline, "Deal", move |_cap, _info| {
            let mut dealer = Dealer::new(me, backlog);
            let mut by_source: Vec<(u32, Vec<RawLine>)> = Vec::new();
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    let mut session = output.session(&cap);
                    // One chunk per run of an input's records (a worker may read several), of
                    // at most `most` records.
                    for raw in data.flat_map(|batch| batch.drain(..)) {
                        match by_source.last_mut() {
                            Some((s, run)) if *s == raw.pos.source && run.len() < most => {
                                run.push(raw)
                            }
                            _ => by_source.push((raw.pos.source, vec![raw])),
                        }
                    }
                    for (source, run) in by_source.drain(..) {
                        let chunk = if !spread || source >= KAFKA_SOURCE_BASE {
                            dealer.keep(run)
                        } else {
                            let parser = plan.parser(source);
                            dealer.deal(source, run, |raw| parser.and_then(|p| p.parse(raw).0?.ts))
                        };
                        session.give(chunk);
                    }
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::Position;

    fn recs(source: u32, from: u64, ts: &[Option<Millis>]) -> Vec<RawLine> {
        ts.iter()
            .enumerate()
            .map(|(i, t)| RawLine {
                pos: Position {
                    source,
                    offset: from + i as u64,
                    line: from + i as u64,
                },
                // The test's "parser": the timestamp is the bytes, when there are any.
                bytes: t.map(|t| t.to_string().into_bytes()).unwrap_or_default(),
                lines: 1,
                ..Default::default()
            })
            .collect()
    }

    fn ts_of(raw: &RawLine) -> Option<Millis> {
        std::str::from_utf8(&raw.bytes).ok()?.parse().ok()
    }

    /// What one worker's parse stage would give each record: its own or the last before it.
    fn sequential(all: &[RawLine]) -> Vec<Option<Millis>> {
        let mut last = None;
        all.iter()
            .map(|r| {
                if let Some(t) = ts_of(r) {
                    last = Some(t);
                }
                last
            })
            .collect()
    }

    /// What the parse stage does with dealt chunks: each worker keeps its own last timestamp.
    fn dealt(chunks: &[Chunk], peers: usize) -> Vec<Option<Millis>> {
        let mut state = vec![None; peers];
        let mut out = Vec::new();
        for c in chunks {
            let last = &mut state[c.worker as usize];
            if let Carry::Known(t) = c.carry {
                *last = t;
            }
            for r in &c.records {
                if let Some(t) = ts_of(r) {
                    *last = Some(t);
                }
                out.push(*last);
            }
        }
        out
    }

    #[test]
    fn dealt_chunks_inherit_what_one_worker_would_give() {
        // Chunks with timestamps, chunks without any, long and short ones, ts-less heads.
        let shapes: Vec<Vec<Option<Millis>>> = vec![
            vec![None, None, Some(5), None],
            vec![None; 20],
            vec![None, Some(9)],
            vec![None; 3],
            vec![Some(12); 30],
            vec![None, None],
            [vec![Some(20)], vec![None; 15]].concat(),
            vec![None, Some(30), None],
        ];
        let mut all = Vec::new();
        let mut chunks = Vec::new();
        // Nothing is ever parsed here: the queues alone decide.
        let mut dealer = Dealer::new(0, Backlog::new(0, 3));
        let mut from = 0;
        for ts in &shapes {
            let run = recs(0, from, ts);
            from += ts.len() as u64;
            all.extend(run.clone());
            chunks.push(dealer.deal(0, run, ts_of));
        }
        assert_eq!(dealt(&chunks, 3), sequential(&all));
        let back: Vec<RawLine> = chunks.iter().flat_map(|c| c.records.clone()).collect();
        assert_eq!(back, all);
        let workers: Vec<u32> = chunks.iter().map(|c| c.worker).collect();
        // A chunk after 8 or more ts-less records (unknown carry) stays with the worker of the
        // chunk before it; the others go to the shortest queue (queues [0,4,0] after the first
        // chunk, [0,4,22] after the third, then [3,4,22], [33,4,22], [33,6,22], [33,22,22]).
        assert_eq!(workers, [1, 2, 2, 0, 0, 1, 1, 1]);
        assert_eq!(chunks[2].carry, Carry::Continue);
        assert_eq!(chunks[3].carry, Carry::Known(Some(9)));
        assert_eq!(chunks[7].carry, Carry::Continue);
    }

    #[test]
    fn a_worker_that_keeps_up_is_dealt_more() {
        let backlog = Backlog::new(4, 2);
        let mut dealer = Dealer::new(4, backlog.clone());
        let mut to = Vec::new();
        for i in 0..6 {
            let c = dealer.deal(0, recs(0, i * 10, &[Some(i as Millis); 10]), ts_of);
            // Worker 5 parses whatever it is dealt at once; worker 4 never gets to it.
            if c.worker == 5 {
                backlog.done(5, c.len());
            }
            to.push(c.worker);
        }
        // The first tie goes round; from then on worker 4's queue is the longer one.
        assert_eq!(to, [5, 4, 5, 5, 5, 5]);
        assert_eq!(backlog.shortest(0), 5);
        // A worker of another process is never chosen, nor counted.
        backlog.done(0, 3);
        assert!((4..6).contains(&backlog.shortest(1)));
    }

    #[test]
    fn inputs_are_dealt_independently() {
        let mut dealer = Dealer::new(1, Backlog::new(0, 2));
        let a = dealer.deal(0, recs(0, 0, &[Some(1)]), ts_of);
        let b = dealer.deal(1, recs(1, 0, &[None]), ts_of);
        let c = dealer.deal(0, recs(0, 1, &[None]), ts_of);
        assert_eq!((a.carry, b.carry), (Carry::Known(None), Carry::Known(None)));
        assert_eq!(c.carry, Carry::Known(Some(1)));
        assert_eq!(dealer.keep(Vec::new()).worker, 1);
    }

    #[test]
    fn kept_chunks_are_queued_and_done_like_dealt_ones() {
        let backlog = Backlog::new(0, 2);
        let mut dealer = Dealer::new(0, backlog.clone());
        let kept = dealer.keep(recs(9, 0, &[None; 5]));
        let dealt = dealer.deal(0, recs(0, 0, &[Some(1); 3]), ts_of);
        assert_eq!(
            backlog.queued(0),
            Some(5 + if dealt.worker == 0 { 3 } else { 0 })
        );
        // What the parse stage does with each chunk it received.
        for c in [kept, dealt] {
            backlog.done(c.worker, c.len());
        }
        assert_eq!((backlog.queued(0), backlog.queued(1)), (Some(0), Some(0)));
    }
}
