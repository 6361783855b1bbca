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

use crate::core::checkpoint::Watermark;
use crate::core::cut::SharedMarks;
use crate::dataflow::cluster::ClusterEvents;
use crate::dataflow::ctx::Ctx;
use crate::dataflow::deal::Backlog;
use crate::dataflow::deal::DealChunks;
use crate::dataflow::detect::DetectErrors;
use crate::dataflow::incident::TrackIncidents;
use crate::dataflow::kafka_sink::produce;
use crate::dataflow::kafka_source::read_kafka;
use crate::dataflow::multiline::JoinMultiline;
use crate::dataflow::parse::ParseRecords;
use crate::kafka::commit::SharedHeads;
use crate::model::queue::Handoff;
use crate::source::pace::Pacer;
use std::sync::Arc;

use crate::core::epoch::Epoch;
use crate::core::record::{ErrorEvent, LogRecord};
use crate::dataflow::sink::{WriteDeadLetters, WriteIncidents};
use crate::dataflow::source::read_inputs;

/// What the workers of one process share besides the context; each part goes to the one
/// operator that uses it.
#[derive(Clone)]
pub struct Shared {
    /// Paces replays (`--rate`, `--speedup`), for every file source of the process.
    pub pacer: Arc<Pacer>,
    /// Records dealt to each worker of this process for parsing and not parsed yet.
    pub backlog: Backlog,
    /// Where worker 0's incident sink hands incidents to the model stage, when it runs.
    pub model: Option<Handoff>,
}

/// Installs the job's dataflow on this worker.
pub fn build(worker: &mut Worker, ctx: Ctx, shared: Shared) {
    if ctx.plan.metrics.is_some() {
        crate::metrics::busy::install(worker);
    }
    worker.dataflow::<Epoch, _, _>(|scope| {
        let probe = ProbeHandle::new();
        let checkpoints = ProbeHandle::new();
        let heads = SharedHeads::default();
        let marks = SharedMarks::default();
        let mut items = read_inputs(scope, &ctx, probe.clone(), shared.pacer);
        if ctx.plan.kafka_source.is_some() {
            let probes = (probe.clone(), checkpoints.clone());
            let kafka = read_kafka(scope, &ctx, probes, heads.clone(), marks.clone());
            items = items.concat(kafka);
        }
        let raw = items.join_multiline(&ctx, heads);
        let (records, dead, clock) = raw
            .deal_chunks(&ctx, shared.backlog.clone())
            .parse_records(&ctx, shared.backlog);
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
        incidents
            .write_incidents(&ctx, shared.model, marks.clone())
            .probe_with(&probe);
        dead.write_dead_letters(&ctx, marks).probe_with(&probe);
    });
}
