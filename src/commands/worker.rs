//! `hephaestus worker SPEC`: the model-worker stage on its own, fed by the incidents topic that a
//! job produces (`kafka.produce.incidents`), so fixes can run on other machines than the
//! dataflow.
//!
//! In: incident updates from `kafka.topics.incidents` (JSON, as the job writes them), under the
//! consumer group `<kafka.group>-worker`. Out: what the stage writes (attempt records, reports,
//! the fixes topic) and a `WorkerSummary`. A record that is not an incident is reported with its
//! partition, offset and reason, counted, and skipped. Offsets are committed only when the stage
//! is idle (everything consumed so far is worked on) and at the end: a crash re-delivers
//! incidents not yet worked on (at least once). State: the consumer and the next offset per
//! partition.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::core::record::Incident;
use crate::core::shutdown::Shutdown;
use crate::model::stage::{Stage, StageSummary, fixes_topic};
use crate::spec::Spec;

#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerSummary {
    pub consumed: u64,
    /// Records that were not incidents (skipped, each reported on stderr).
    pub malformed: u64,
    pub model: StageSummary,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Spec(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Stage(#[from] crate::model::stage::StageError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("{}", .0.join("; "))]
    Failed(Vec<String>),
}

/// How a worker runs.
#[derive(Clone, Debug, Default)]
pub struct WorkerOptions {
    /// Stop once no record has arrived for this long and the stage is idle.
    pub exit_when_idle: Option<Duration>,
    pub no_metrics: bool,
}

fn commit(
    consumer: &BaseConsumer,
    topic: &str,
    next: &BTreeMap<i32, i64>,
) -> Result<(), WorkerError> {
    if next.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in next {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
    }
    consumer.commit(&tpl, CommitMode::Sync)?;
    Ok(())
}

/// Runs the worker for the spec at `path` until shutdown (or idle, with `exit_when_idle`).
pub fn run(
    path: &Path,
    options: &WorkerOptions,
    shutdown: &Shutdown,
) -> Result<WorkerSummary, WorkerError> {
    let spec = Spec::load(path).map_err(|e| WorkerError::Spec(e.to_string()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut model = spec.model.clone();
    if !model.enabled {
        return Err(WorkerError::Spec(format!(
            "{}: the worker needs [model] enabled = true",
            path.display()
        )));
    }
    model
        .plan(|p| if p.is_absolute() { p } else { dir.join(p) })
        .map_err(|e| WorkerError::Spec(format!("{}: {e}", path.display())))?;
    let kafka = spec.kafka.clone().ok_or_else(|| {
        WorkerError::Spec(format!(
            "{}: the worker reads the incidents topic: add a [kafka] section",
            path.display()
        ))
    })?;
    let _metrics = match (
        spec.metrics.enabled && !options.no_metrics,
        spec.metrics.listen.parse(),
    ) {
        (false, _) => None,
        (true, Ok(addr)) => Some(crate::metrics::serve(addr)?),
        (true, Err(e)) => {
            return Err(WorkerError::Spec(format!(
                "metrics.listen `{}`: {e}",
                spec.metrics.listen
            )));
        }
    };
    let topic = kafka.topics.incidents.clone();
    let mut cfg = kafka.consumer("hephaestus-worker");
    cfg.set("group.id", format!("{}-worker", kafka.group));
    let consumer: BaseConsumer = cfg.create()?;
    consumer.subscribe(&[&topic])?;
    let mut deploy = spec.deploy.clone();
    deploy
        .plan(|p| if p.is_absolute() { p } else { dir.join(p) })
        .map_err(|e| WorkerError::Spec(format!("{}: {e}", path.display())))?;
    let stage = Stage::start(model, fixes_topic(Some(&kafka))?, &deploy)?;
    let handoff = stage.handoff();
    eprintln!(
        "hephaestus: worker reading {topic} as group {}-worker",
        kafka.group
    );
    let mut summary = WorkerSummary::default();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut committed = next.clone();
    let mut last = Instant::now();
    while !shutdown.is_triggered() {
        if options.exit_when_idle.is_some_and(|d| last.elapsed() >= d) && stage.idle() {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if next != committed && stage.idle() {
                    commit(&consumer, &topic, &next)?;
                    committed = next.clone();
                }
            }
            Some(Err(e)) => eprintln!("hephaestus: worker: kafka: {e}"),
            Some(Ok(m)) => {
                last = Instant::now();
                summary.consumed += 1;
                next.insert(m.partition(), m.offset() + 1);
                match serde_json::from_slice::<Incident>(m.payload().unwrap_or_default()) {
                    Ok(incident) => {
                        handoff.offer([incident]);
                    }
                    Err(e) => {
                        summary.malformed += 1;
                        crate::metrics::dead_letters("malformed_incident", 1);
                        eprintln!(
                            "hephaestus: worker: {topic}/{} offset {}: not an incident: {e}",
                            m.partition(),
                            m.offset()
                        );
                    }
                }
            }
        }
    }
    summary.model = stage.finish();
    commit(&consumer, &topic, &next)?;
    if summary.model.errors.is_empty() {
        Ok(summary)
    } else {
        Err(WorkerError::Failed(summary.model.errors.clone()))
    }
}
