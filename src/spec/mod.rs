//! Job specs: the TOML files in `dataflows/`, as written (the "low" form).
//!
//! In: TOML text. Out: a `Spec`, every section with documented defaults and unknown keys refused;
//! `plan.rs` turns it into a validated `Plan` before any dataflow is built. No state.

mod plan;
mod topology;

pub use plan::{Overrides, Plan, Sink};
pub use topology::{Cluster, read_hostfile};

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterConfig;
use crate::core::time::Duration;
use crate::detect::DetectConfig;
use crate::incident::IncidentConfig;
use crate::multiline::MultilineConfig;
use crate::parse::ParseConfig;
use crate::source::SourceConfig;

/// A spec that cannot be used, with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    pub path: String,
    pub message: String,
}

/// A whole job spec.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub job: JobConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub parse: ParseConfig,
    #[serde(default)]
    pub multiline: MultilineConfig,
    #[serde(default)]
    pub detect: DetectConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub incident: IncidentConfig,
    #[serde(default)]
    pub output: OutputConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The Kafka cluster, for `topic` sources and Kafka outputs.
    pub kafka: Option<crate::kafka::KafkaConfig>,
    /// The model-worker stage: incidents in, validated fixes out.
    #[serde(default)]
    pub model: crate::model::ModelConfig,
    /// The deployment loop (with `model.automation = "deploy"`).
    #[serde(default)]
    pub deploy: crate::model::deploy::DeployConfig,
}

/// `[job]`: parallelism and pacing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobConfig {
    /// Shown in logs and metrics.
    pub name: String,
    /// Worker threads per process (`--workers` overrides).
    pub workers: usize,
    /// Lines read from each input per epoch when replaying. Epochs are the unit of ordering, so
    /// replays give the same result for any number of workers.
    pub batch_lines: usize,
    /// Epochs an input may run ahead of the slowest output before it waits (back-pressure).
    /// Default for replays: one more than the workers of a process (few in flight stay in
    /// cache, and each worker has a chunk to parse while the next is read); 8 for live inputs
    /// (ticks of wall-clock time: room to catch up after a stall).
    pub max_inflight_epochs: Option<u64>,
    /// Epoch length for live inputs (stdin, `follow`): they are stamped with wall-clock ticks.
    pub tick: Duration,
    /// How long a live input must be quiet before its open multiline record is flushed.
    pub idle_flush: Duration,
    /// Where the job keeps its state between runs (relative to the spec): templates and
    /// incidents, checkpointed every `checkpoint` and at the end, loaded at start. With a Kafka
    /// source, offsets are committed only up to the last complete checkpoint, so a restart
    /// neither loses nor resets counts.
    pub state_dir: Option<std::path::PathBuf>,
    /// How often the state is checkpointed (in epochs of `tick`).
    pub checkpoint: Duration,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            name: "hephaestus".into(),
            workers: 1,
            // Small epochs, few in flight: what is in flight stays in cache (BENCHMARKS.md,
            // "Design choices").
            batch_lines: 4096,
            max_inflight_epochs: None,
            tick: Duration(100),
            idle_flush: Duration(1000),
            state_dir: None,
            checkpoint: Duration(10_000),
        }
    }
}

/// `[output]`: where results go.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Incidents as JSON lines: `stdout`, `none` (summary only), or a file path (relative to the
    /// working directory; `--output` overrides).
    pub incidents: String,
    /// Dead letters as JSON lines: `stderr`, `stdout` or a file path. They are never discarded.
    pub dead_letters: String,
    /// Print a summary line on stderr when a replay ends.
    pub summary: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            incidents: "stdout".into(),
            dead_letters: "stderr".into(),
            summary: true,
        }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Listen address of `/metrics`. Loopback unless you mean otherwise; port 0 picks a free
    /// one. With several processes on one host, process `i` adds `i` to the port.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: "127.0.0.1:9464".into(),
        }
    }
}

impl Spec {
    /// Reads and deserialises a spec file.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let err = |message: String| SpecError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        Spec::from_toml(&text).map_err(err)
    }

    pub fn from_toml(text: &str) -> Result<Spec, String> {
        toml::from_str(text).map_err(|e| {
            e.to_string()
                .trim_end()
                .replace('\n', " ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
    }
}
