//! The one place that wires the timely graph.
//!
//! In: a worker and the job context. Out: the dataflow installed on the worker:
//!
//! ```text
//! source ─► multiline ─► parse ─┬─► detect ─► cluster ─► incidents ─► write incidents (worker 0)
//!  (owned      (same      (spread│                 ▲ (by fingerprint; differential counts)
//!   inputs)    worker)    by pos)├─► clock ────────┘ (broadcast)
//!                                └─► dead letters ─► write dead letters (worker 0)
//! ```
//!
//! State: none here; each stage keeps its own.

use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::worker::Worker;

use crate::cluster::stage::ClusterEvents;
use crate::detect::stage::DetectErrors;
use crate::incident::stage::TrackIncidents;
use crate::job::Ctx;
use crate::multiline::stage::JoinMultiline;
use crate::parse::stage::ParseRecords;
use crate::record::Position;
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
    worker.dataflow::<Epoch, _, _>(|scope| {
        let probe = ProbeHandle::new();
        let items = read_inputs(scope, &ctx, probe.clone());
        let raw = items.join_multiline(&ctx);
        let (records, dead, clock) = raw.parse_records(&ctx);
        let incidents = records
            .detect_errors(&ctx)
            .cluster_events(&ctx)
            .track_incidents(clock, &ctx);
        incidents.probe_with(&probe).write_incidents(&ctx);
        dead.probe_with(&probe).write_dead_letters(&ctx);
    });
}
