//! The cluster operator: error events → clustered events, in a deterministic order.
//!
//! In: `ErrorEvent`s, slimmed where they were detected (`slim`: only the fields read later),
//! then exchanged by `exchange_key` (template partition, or spread for traces).
//! Out: `Clustered` events. Template mining depends on order, so each epoch's events are held
//! until the frontier passes the epoch and then mined sorted by position: the same templates and
//! ids for any number of workers. State: the miner (loaded from `state_dir` when set, and saved
//! there at each checkpoint boundary and at end of input; the `Watermark` tells the incident
//! stage how far the saved miner reaches), and the events of epochs not yet complete.

use std::collections::BTreeMap;

use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, Operator};

use crate::cluster::{Clusterer, exchange_key, state};
use crate::core::checkpoint::{self, Schedule, Watermark};
use crate::core::epoch::Epoch;
use crate::core::record::{Clustered, ErrorEvent};
use crate::dataflow::ctx::Ctx;
use crate::metrics::{self, Batch, OperatorMetrics};

/// Clusters error events into templates and trace fingerprints.
pub trait ClusterEvents<'s> {
    /// Mines each complete epoch's events in position order; `saved` is advanced each time the
    /// miner's state is on disk (the incident stage checkpoints no further than it).
    fn cluster_events(self, ctx: &Ctx, saved: Watermark) -> StreamVec<'s, Epoch, Clustered>;
}

impl<'s> ClusterEvents<'s> for StreamVec<'s, Epoch, ErrorEvent> {
    fn cluster_events(self, ctx: &Ctx, saved: Watermark) -> StreamVec<'s, Epoch, Clustered> {
        let cfg = ctx.plan.cluster_cfg.clone();
        let (worker, peers) = (self.scope().index(), self.scope().peers());
        let release = ctx.plan.incident.release_field.clone();
        let (new_per_window, window) =
            (ctx.plan.incident.new_per_window, ctx.plan.incident.window.0);
        let ctx = ctx.clone();
        // Slimmed on this worker, before the exchange.
        let events = self.map_in_place(move |e| crate::cluster::slim(e, &release));
        events.unary_frontier(
            Exchange::new(exchange_key),
            "Cluster",
            move |_cap, _info| {
                let mut clusterer = Clusterer::new(&cfg).with_budget(new_per_window, window);
                if let Some(dir) = &cfg.state_dir
                    && let Err(e) =
                        state::load(clusterer.miner_mut(), dir, worker, peers, ctx.restore.pick)
                {
                    ctx.error(format!("cluster.state_dir {}: {e}", dir.display()));
                }
                if cfg.state_dir.is_none() {
                    saved.set(Epoch::MAX);
                }
                let mut schedule = Schedule::new(ctx.plan.checkpoint_epochs);
                let save = move |clusterer: &Clusterer, at: Epoch| {
                    if let Some(dir) = &cfg.state_dir {
                        let g = ctx.restore.generation(at);
                        let saved_gen = state::save(clusterer.miner(), dir, worker, peers, g);
                        let keep = ctx.restore.keep_from(g);
                        let pruned = saved_gen.and_then(|()| {
                            checkpoint::prune(dir, state::PREFIX, worker, peers, keep)
                        });
                        if let Err(e) = pruned {
                            ctx.error(format!("cluster.state_dir {}: {e}", dir.display()));
                            return;
                        }
                        saved.set(at);
                    }
                };
                let mut pending: BTreeMap<Epoch, (Capability<Epoch>, Vec<ErrorEvent>)> =
                    BTreeMap::new();
                let op_metrics = OperatorMetrics::new("cluster", worker, &["ok"]);
                let mut latency = Batch::default();
                let mut finished = false;
                move |(input, frontier), output| {
                    input.for_each_stamp(|cap, data| {
                        let Some(time) = cap.least().copied() else {
                            return;
                        };
                        let entry = pending
                            .entry(time)
                            .or_insert_with(|| (cap.delayed(&time, 0), Vec::new()));
                        for batch in data {
                            entry.1.append(batch);
                        }
                    });
                    let mut done = 0;
                    while let Some(entry) = pending.first_entry() {
                        if frontier.less_equal(entry.key()) {
                            break;
                        }
                        if let Some(b) = schedule.before(*entry.key()) {
                            save(&clusterer, b);
                        }
                        let (cap, mut events) = entry.remove();
                        events.sort_by_key(|e| e.record.pos);
                        let n = events.len();
                        let now = crate::core::time::now_ms();
                        if latency.on() {
                            for e in &events {
                                latency.observe_ms(now, e.record.ingest_ms);
                            }
                        }
                        output
                            .session(&cap)
                            .give_iterator(events.into_iter().map(|e| clusterer.cluster(e)));
                        let folded = clusterer.take_folded();
                        if folded > 0 {
                            metrics::events_folded(worker, "cluster", folded);
                        }
                        op_metrics.batch(n, &[n]);
                        op_metrics.latency(&mut latency);
                        done += 1;
                    }
                    if done > 0 {
                        metrics::templates(
                            worker,
                            clusterer.miner().len(),
                            clusterer.miner().evicted(),
                        );
                    }
                    match frontier.frontier().iter().min() {
                        Some(&f) => {
                            if let Some(b) = schedule.after(f) {
                                save(&clusterer, b);
                            }
                        }
                        None if !finished => {
                            finished = true;
                            save(&clusterer, Epoch::MAX);
                        }
                        None => {}
                    }
                }
            },
        )
    }
}
