//! The one place that wires the timely graph.
//!
//! In: a worker and the job context. Out: the dataflow installed on the worker:
//!
//! ```text
//! source ─► multiline ─► deal ─► parse ─┬─► detect ─► cluster ─► incidents ─► write incidents
//! (files,   (the same    (the    (chunks│     │       (by        ▲ (by route;  │  (worker 0)
//! partitions) worker)    same    dealt  │     │      template)   │ differential└─► Kafka
//!                        worker) in the │     └─► Kafka errors   │ counts)        incidents
//!                                process)                        │
//!                                       ├─► clock ───────────────┘ (broadcast)
//!                                       ├─► Kafka structured
//!                                       └─► dead letters ─► write dead letters (worker 0)
//! ```
//!
//! Every output is probed: a source does not run too far ahead of it, and the Kafka source
//! commits an offset only once every output derived from it is written or delivered.
//! State: none here; each stage keeps its own.

use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Concat, Probe};
use timely::worker::Worker;

use crate::checkpoint::Watermark;
use crate::cluster::stage::ClusterEvents;
use crate::detect::stage::DetectErrors;
use crate::incident::stage::TrackIncidents;
use crate::job::Ctx;
use crate::kafka::commit::SharedHeads;
use crate::kafka::sink::produce;
use crate::kafka::source::read_kafka;
use crate::multiline::stage::JoinMultiline;
use crate::parse::deal::DealChunks;
use crate::parse::stage::ParseRecords;
use crate::record::{ErrorEvent, LogRecord, Position};
use crate::sink::{WriteDeadLetters, WriteIncidents};
use crate::source::stage::read_inputs;

/// The dataflow's timestamp: a batch number when replaying, a wall-clock tick when live.
pub type Epoch = u64;

/// Exchange key that spreads records evenly by position (for stateless stages).
pub fn spread(pos: &Position) -> u64 {
    crate::cluster::tokens::stable_hash(
        &[
            pos.source.to_le_bytes().as_slice(),
            &pos.offset.to_le_bytes(),
        ]
        .concat(),
    )
}

/// Installs the job's dataflow on this worker.
pub fn build(worker: &mut Worker, ctx: Ctx) {
    if ctx.plan.metrics.is_some() {
        crate::metrics::busy::install(worker);
    }
    worker.dataflow::<Epoch, _, _>(|scope| {
        let probe = ProbeHandle::new();
        let checkpoints = ProbeHandle::new();
        let heads = SharedHeads::default();
        let mut items = read_inputs(scope, &ctx, probe.clone());
        if ctx.plan.kafka_source.is_some() {
            let probes = (probe.clone(), checkpoints.clone());
            items = items.concat(read_kafka(scope, &ctx, probes, heads.clone()));
        }
        let raw = items.join_multiline(&ctx, heads);
        let (records, dead, clock) = raw.deal_chunks(&ctx).parse_records(&ctx);
        let errors = records.clone().detect_errors(&ctx);
        let miner_saved = Watermark::default();
        let clustered = errors.clone().cluster_events(&ctx, miner_saved.clone());
        let (incidents, saved) = clustered.track_incidents(clock, &ctx, miner_saved);
        saved.probe_with(&checkpoints);
        if let Some(kafka) = &ctx.plan.kafka {
            // Structured records and error events are keyed by their input (one partition keeps
            // an input's order); incidents by fingerprint (a compacted topic keeps the latest).
            let (topics, to) = (&kafka.topics, &kafka.produce);
            if to.structured {
                let plan = ctx.plan.clone();
                let key = move |r: &LogRecord| plan.source_name(r.pos.source).into_bytes();
                produce(records, &ctx, &topics.structured, "structured", key).probe_with(&probe);
            }
            if to.errors {
                let plan = ctx.plan.clone();
                let key = move |e: &ErrorEvent| plan.source_name(e.record.pos.source).into_bytes();
                produce(errors, &ctx, &topics.errors, "errors", key).probe_with(&probe);
            }
            if to.incidents {
                produce(
                    incidents.clone(),
                    &ctx,
                    &topics.incidents,
                    "incidents",
                    |i| i.fingerprint.clone().into_bytes(),
                )
                .probe_with(&probe);
            }
        }
        incidents.write_incidents(&ctx).probe_with(&probe);
        dead.write_dead_letters(&ctx).probe_with(&probe);
    });
}
