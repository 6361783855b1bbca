//! Running a job: the timely workers, the metrics endpoint, shutdown, and the summary.
//!
//! In: a validated `Plan` and a `Shutdown` handle (the binary triggers it on Ctrl-C; tests
//! pass their own, so whole jobs run in-process). Out: the run's `Summary`, or a `JobError`
//! with every error the workers hit. State: the per-process `Stats` and the error list that the
//! operators share through `Ctx`.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::core::cut::Restore;
use crate::core::shutdown::Shutdown;
use crate::dataflow::ctx::Ctx;
use crate::dataflow::deal::Backlog;
use crate::dataflow::graph::{self, Shared};
use crate::metrics::{self, Stats};
use crate::source::pace::Pacer;
use crate::spec::Plan;

/// The end-of-run figures of this process.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub process: usize,
    pub lines: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub lines_per_second: f64,
    pub records: u64,
    pub error_events: u64,
    /// Distinct incidents written (process 0 writes them all).
    pub incidents: u64,
    pub incident_updates: u64,
    pub dead_letters: u64,
    pub mb_per_second: f64,
    /// From an error line's ingestion to its incident's update (this process's incidents).
    pub event_to_incident: crate::metrics::latency::LatencySummary,
    /// The most resident memory the process had.
    pub peak_rss_bytes: u64,
    /// With `--rate`: what was asked, what was achieved, and whether the job kept up (within 2%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateReport>,
    /// What the model-worker stage did (when `[model]` is enabled, process 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::model::stage::StageSummary>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RateReport {
    pub asked: f64,
    pub achieved: f64,
    pub kept_up: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error("timely: {0}")]
    Timely(String),
    #[error(transparent)]
    Model(#[from] crate::model::stage::StageError),
    #[error("{}", .0.join("; "))]
    Failed(Vec<String>),
}

/// What the stateful stages restore: the newest complete cut for a Kafka job with
/// `job.state_dir`, else each stage's newest state.
fn find_restore(plan: &Plan) -> Result<Restore, JobError> {
    let dirs: Vec<&std::path::Path> = [&plan.state_dir, &plan.cluster_cfg.state_dir]
        .into_iter()
        .flatten()
        .map(|d| d.as_path())
        .collect();
    let cut_dir = plan
        .state_dir
        .as_deref()
        .filter(|_| plan.kafka_source.is_some());
    let restore = Restore::find(&dirs, cut_dir)
        .map_err(|e| JobError::Failed(vec![format!("reading the state directories: {e}")]))?;
    if let Some((g, cut)) = &restore.cut {
        eprintln!(
            "hephaestus: restoring the checkpoint of run {} at epoch {} ({} partition offsets)",
            g.run,
            g.epoch,
            cut.offsets.len()
        );
    }
    Ok(restore)
}

/// After a clean end every worker has saved its final state: every other generation (older
/// runs, other worker counts) is no longer needed. With cuts, only once every worker's final cut
/// is there too.
fn remove_stale_state(ctx: &Ctx, errors: &mut Vec<String>) {
    let plan = &ctx.plan;
    let last = ctx.restore.generation(crate::core::epoch::Epoch::MAX);
    if let Some(dir) = &ctx.restore.cut_dir
        && !crate::core::cut::newest_complete(dir).is_ok_and(|g| g == Some(last))
    {
        return;
    }
    let dirs = [&plan.state_dir, &plan.cluster_cfg.state_dir];
    let prefixes = [
        crate::incident::state::PREFIX,
        crate::cluster::state::PREFIX,
    ];
    for dir in dirs.into_iter().flatten() {
        let removed = crate::core::checkpoint::remove_stale(dir, &prefixes, last).and_then(|n| {
            let cuts = crate::core::checkpoint::listing(dir, crate::core::cut::PREFIX, ".json")?;
            for (path, _, _, g) in cuts {
                if g != last {
                    std::fs::remove_file(path)?;
                }
            }
            Ok(n)
        });
        if let Err(e) = removed {
            errors.push(format!("state dir {}: {e}", dir.display()));
        }
    }
}

/// Runs the job to completion (end of input, or shutdown).
pub fn run(plan: Plan, shutdown: Shutdown) -> Result<Summary, JobError> {
    let _server = match plan.metrics {
        Some(addr) => {
            let server = metrics::serve(addr)?;
            eprintln!("hephaestus: metrics on http://{}/metrics", server.addr);
            Some(server)
        }
        None => None,
    };
    let config = plan.timely_config();
    let process = plan.cluster.process;
    let mut plan_pacing = plan.pacing;
    if let Some(r) = plan_pacing.rate.as_mut() {
        // The rate is for the whole job: each process paces its share.
        *r /= plan.cluster.processes.max(1) as f64;
    }
    let stage = if plan.model.enabled && process == 0 {
        let fixes = crate::model::stage::fixes_topic(plan.kafka.as_ref())?;
        Some(crate::model::stage::Stage::start(
            plan.model.clone(),
            fixes,
            &plan.deploy,
        )?)
    } else {
        None
    };
    let shared = Shared {
        pacer: Arc::new(Pacer::new(plan_pacing)),
        backlog: Backlog::new(plan.cluster.process * plan.workers, plan.workers),
        model: stage.as_ref().map(|s| s.handoff()),
    };
    let restore = find_restore(&plan)?;
    let ctx = Ctx::new(
        Arc::new(plan),
        Arc::new(Stats::default()),
        shutdown,
        restore,
    );
    let started = Instant::now();
    let progress = crate::metrics::progress::Progress::start(ctx.stats.clone());
    let worker_ctx = ctx.clone();
    let worker_shared = shared.clone();
    let guards = timely::execute(config, move |worker| {
        graph::build(worker, worker_ctx.clone(), worker_shared.clone());
        while !worker_ctx.is_fatal()
            && worker.step_or_park(Some(std::time::Duration::from_millis(20)))
        {}
        if worker_ctx.is_fatal() {
            // Stop where we are: dropping the dataflow drops its operators unfinished, so no
            // probe passes what was not written (timely would otherwise step it to the end).
            for id in worker.installed_dataflows() {
                worker.drop_dataflow(id);
            }
        }
    })
    .map_err(JobError::Timely)?;
    for result in guards.join() {
        if let Err(e) = result {
            ctx.error(format!("worker failed: {e}"));
        }
    }
    drop(progress);
    // The dataflow's time; the model stage may go on working on what it was handed.
    let seconds = started.elapsed().as_secs_f64();
    let model = stage.map(|stage| {
        let waiting = shared.model.as_ref().map_or(0, |h| h.len());
        eprintln!("hephaestus: input done; the model stage finishes its work ({waiting} incident(s) waiting)");
        stage.finish()
    });
    if let Some(m) = &model {
        for e in &m.errors {
            ctx.error(e.clone());
        }
    }
    let s = &ctx.stats;
    let lines = Stats::get(&s.lines);
    let lines_per_second = if seconds > 0.0 {
        lines as f64 / seconds
    } else {
        0.0
    };
    let summary = Summary {
        process,
        lines,
        bytes: Stats::get(&s.bytes),
        seconds,
        lines_per_second,
        records: Stats::get(&s.records),
        error_events: Stats::get(&s.error_events),
        incidents: Stats::get(&s.incidents),
        incident_updates: Stats::get(&s.incident_updates),
        dead_letters: Stats::get(&s.dead_letters),
        mb_per_second: if seconds > 0.0 {
            Stats::get(&s.bytes) as f64 / 1e6 / seconds
        } else {
            0.0
        },
        event_to_incident: s.latency.summary(),
        peak_rss_bytes: crate::metrics::process::peak_resident_bytes().unwrap_or(0),
        rate: shared.pacer.pacing.rate.map(|asked| {
            let achieved = lines_per_second;
            let kept_up = achieved >= asked * 0.98;
            if !kept_up {
                eprintln!(
                    "hephaestus: asked for {asked:.0} lines/s, achieved {achieved:.0}: the job could not keep up"
                );
            }
            RateReport { asked, achieved, kept_up }
        }),
        model,
    };
    let mut errors = ctx.errors();
    if errors.is_empty() {
        remove_stale_state(&ctx, &mut errors);
    }
    if errors.is_empty() {
        Ok(summary)
    } else {
        Err(JobError::Failed(errors))
    }
}
