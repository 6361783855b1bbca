//! The multiline operator: runs one `Joiner` per input on the worker that reads it.
//!
//! In: `SourceItem`s (pipeline: no exchange, an input's lines stay in order on its worker). Out:
//! joined `RawLine` records, each emitted at the epoch in which it completed. State: the open
//! record of each input (see `Joiner`). For Kafka partitions, the head offsets of open records
//! and of records emitted per epoch are published to the source (`Heads`), so that no offset is
//! committed before the record holding it has been fully processed.

use rustc_hash::FxHashMap;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use crate::core::epoch::Epoch;
use crate::core::epoch::KAFKA_SOURCE_BASE;
use crate::core::record::RawLine;
use crate::dataflow::ctx::Ctx;
use crate::kafka::commit::SharedHeads;
use crate::metrics::{Batch, OperatorMetrics};
use crate::multiline::Joiner;
use crate::source::SourceItem;

/// Joins stack-trace lines to the record they belong to.
pub trait JoinMultiline<'s> {
    /// Runs one `Joiner` per input on the worker that reads it; `heads` receives the offsets of
    /// records still open, so the Kafka source commits nothing inside one.
    fn join_multiline(self, ctx: &Ctx, heads: SharedHeads) -> StreamVec<'s, Epoch, RawLine>;
}

impl<'s> JoinMultiline<'s> for StreamVec<'s, Epoch, SourceItem> {
    fn join_multiline(self, ctx: &Ctx, heads: SharedHeads) -> StreamVec<'s, Epoch, RawLine> {
        let cfg = ctx.plan.multiline.clone();
        let worker = self.scope().index();
        self.unary(Pipeline, "Multiline", move |_cap, _info| {
            // Looked up once per line: a cheap hash of the input's number.
            let mut joiners: FxHashMap<u32, Joiner> = FxHashMap::default();
            let metrics = OperatorMetrics::new("multiline", worker, &["ok"]);
            let mut latency = Batch::default();
            let mut out = Vec::new();
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    let Some(&t) = cap.least() else { return };
                    let mut n_in = 0;
                    for batch in data {
                        for item in batch.drain(..) {
                            match item {
                                SourceItem::Line(raw, unterminated) => {
                                    n_in += 1;
                                    let joiner = joiners
                                        .entry(raw.pos.source)
                                        .or_insert_with(|| Joiner::new(cfg.clone()));
                                    joiner.push(raw, unterminated, &mut out);
                                }
                                SourceItem::Idle(id) => {
                                    if let Some(j) = joiners.get_mut(&id) {
                                        j.flush(false, &mut out);
                                    }
                                }
                                SourceItem::End(id) => {
                                    if let Some(mut j) = joiners.remove(&id) {
                                        j.flush(true, &mut out);
                                    }
                                }
                            }
                        }
                    }
                    let mut h = heads.borrow_mut();
                    for (&id, j) in joiners.iter().filter(|(id, _)| **id >= KAFKA_SOURCE_BASE) {
                        match j.open_head() {
                            Some(head) => h.open.insert(id, head),
                            None => h.open.remove(&id),
                        };
                    }
                    for r in out.iter().filter(|r| r.pos.source >= KAFKA_SOURCE_BASE) {
                        h.emitted(t, r.pos.source, r.pos.offset);
                    }
                    drop(h);
                    let now = crate::core::time::now_ms();
                    if latency.on() {
                        for r in &out {
                            latency.observe_ms(now, r.ingest_ms);
                        }
                    }
                    metrics.batch(n_in, &[out.len()]);
                    metrics.latency(&mut latency);
                    output.session(&cap).give_iterator(out.drain(..));
                });
            }
        })
    }
}
