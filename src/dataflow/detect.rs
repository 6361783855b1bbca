//! The detect operator: keeps the records that are errors, as `ErrorEvent`s.
//!
//! In: `LogRecord`s (pipeline: detection needs no state). Out: `ErrorEvent`s; records that are not
//! errors end here and are counted as such. State: none.

use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Operator;

use crate::core::epoch::Epoch;
use crate::core::record::{ErrorEvent, LogRecord};
use crate::dataflow::ctx::Ctx;
use crate::metrics::{self, Batch, OperatorMetrics, Stats};

/// Keeps the records that are errors.
pub trait DetectErrors<'s> {
    /// Turns each error record into an `ErrorEvent` (with its line key, when it is mined) and
    /// drops the rest, counting both.
    fn detect_errors(self, ctx: &Ctx) -> StreamVec<'s, Epoch, ErrorEvent>;
}

impl<'s> DetectErrors<'s> for StreamVec<'s, Epoch, LogRecord> {
    fn detect_errors(self, ctx: &Ctx) -> StreamVec<'s, Epoch, ErrorEvent> {
        let plan = ctx.plan.clone();
        let stats = ctx.stats.clone();
        let worker = self.scope().index();
        self.unary(Pipeline, "Detect", move |_cap, _info| {
            let op_metrics = OperatorMetrics::new("detect", worker, &["ok"]);
            let mut latency = Batch::default();
            move |input, output| {
                input.for_each_stamp(|cap, data| {
                    let mut session = output.session(&cap);
                    let (mut n_in, mut n_out) = (0, 0);
                    let now = crate::core::time::now_ms();
                    for batch in data {
                        n_in += batch.len();
                        for mut event in batch.drain(..).filter_map(|rec| plan.detector.detect(rec))
                        {
                            if crate::cluster::mined(&event.record) {
                                event.key = Some(crate::cluster::key_of(&event.record.message));
                            }
                            n_out += 1;
                            latency.observe_ms(now, event.record.ingest_ms);
                            session.give(event);
                        }
                    }
                    op_metrics.batch(n_in, &[n_out]);
                    op_metrics.latency(&mut latency);
                    metrics::error_events(n_out);
                    Stats::add(&stats.error_events, n_out);
                });
            }
        })
    }
}
