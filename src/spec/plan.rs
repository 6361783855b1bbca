//! The validated plan (the "high" form of a spec): everything the dataflow needs, compiled and
//! checked before any worker starts.
//!
//! In: a `Spec`, the spec's path (relative input paths resolve against its directory) and the
//! command-line overrides. Out: a `Plan` with resolved, readable inputs (stable ids), compiled
//! formats, detector and limits, output sinks, the metrics address and the timely cluster
//! configuration; or a `SpecError` naming the problem. No state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::topology::Cluster;
use super::{Spec, SpecError};
use crate::cluster::ClusterConfig;
use crate::core::epoch::KAFKA_SOURCE_BASE;
use crate::detect::Detector;
use crate::incident::IncidentConfig;
use crate::multiline::MultilineConfig;
use crate::parse::{FormatChoice, Parser};
use crate::source::{InputKind, InputPlan, SourceConfig, expand};

/// Command-line settings that win over the spec.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub workers: Option<usize>,
    /// Replace the spec's sources with these paths (relative to the working directory).
    pub inputs: Vec<String>,
    /// Write incidents to this file.
    pub output: Option<PathBuf>,
    /// Write dead letters to this file.
    pub dead_letters: Option<PathBuf>,
    pub follow: bool,
    pub cluster: Cluster,
    /// Turn the metrics endpoint off (tests running several jobs in one process).
    pub no_metrics: bool,
    /// Stop once no record has arrived on any live input for this long.
    pub exit_when_idle: Option<std::time::Duration>,
    /// Replay pacing (`--rate`, `--speedup`, `--loop`).
    pub pacing: crate::source::pace::Pacing,
}

/// Where a stream of JSON lines goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
    None,
    File(PathBuf),
}

impl Sink {
    fn parse(text: &str, allow_none: bool) -> Result<Sink, String> {
        Ok(match text {
            "stdout" | "-" => Sink::Stdout,
            "stderr" => Sink::Stderr,
            "none" if allow_none => Sink::None,
            "none" => {
                return Err(
                    "dead letters cannot be discarded: use a file, `stdout` or `stderr`".into(),
                );
            }
            "" => return Err("empty output path".into()),
            path => Sink::File(PathBuf::from(path)),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub spec_path: PathBuf,
    pub workers: usize,
    pub cluster: Cluster,
    pub inputs: Vec<InputPlan>,
    /// Some input is stdin or followed: epochs are wall-clock ticks instead of line batches.
    pub live: bool,
    pub batch_lines: usize,
    pub max_inflight_epochs: u64,
    pub tick_ms: i64,
    pub idle_flush_ms: i64,
    pub max_line_bytes: usize,
    pub multiline: MultilineConfig,
    pub detector: Detector,
    pub cluster_cfg: ClusterConfig,
    pub incident: IncidentConfig,
    pub incidents: Sink,
    pub dead_letters: Sink,
    pub summary: bool,
    pub metrics: Option<SocketAddr>,
    pub kafka: Option<crate::kafka::KafkaConfig>,
    /// The Kafka topic source, if any: its topic and how its records are parsed.
    pub kafka_source: Option<(String, Parser)>,
    /// Incident state checkpoints (`job.state_dir`, resolved).
    pub state_dir: Option<PathBuf>,
    /// Epochs between checkpoints.
    pub checkpoint_epochs: u64,
    pub exit_when_idle: Option<std::time::Duration>,
    pub pacing: crate::source::pace::Pacing,
    /// The year for timestamps without one (`parse.default_year`, else this year).
    pub default_year: i32,
    /// The model-worker stage (`[model]`, paths resolved); runs in process 0 when enabled.
    pub model: crate::model::ModelConfig,
    /// The deployment loop (`[deploy]`, paths resolved).
    pub deploy: crate::model::deploy::DeployConfig,
}

fn current_year() -> i32 {
    crate::core::time::civil_from_days(crate::core::time::now_ms().div_euclid(86_400_000)).0 as i32
}

impl Plan {
    pub fn build(spec: Spec, spec_path: &Path, ov: Overrides) -> Result<Plan, SpecError> {
        // One line per error: multi-line messages (regex carets) are folded.
        let err = |message: String| SpecError {
            path: spec_path.display().to_string(),
            message: message
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" | "),
        };
        let spec_dir = spec_path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let (sources, base): (Vec<SourceConfig>, PathBuf) = if ov.inputs.is_empty() {
            (spec.sources.clone(), spec_dir.clone())
        } else {
            let template = spec.sources.first().cloned();
            let src = SourceConfig {
                paths: ov.inputs.clone(),
                format: template.as_ref().map(|s| s.format).unwrap_or_default(),
                header: template.as_ref().and_then(|s| s.header.clone()),
                service: template.as_ref().and_then(|s| s.service.clone()),
                follow: false,
                topic: None,
                name: Some("input".into()),
            };
            (vec![src], PathBuf::new())
        };
        if sources.is_empty() {
            return Err(err(
                "no sources: add a [[sources]] section or pass --input".into()
            ));
        }
        let default_year = spec.parse.default_year.unwrap_or_else(current_year);
        let mut inputs = Vec::new();
        let mut kafka_source = None;
        for (i, src) in sources.iter().enumerate() {
            let format = FormatChoice::new(src.format, src.header.as_deref())
                .map_err(|e| err(format!("sources[{i}]: {e}")))?;
            let label = src
                .name
                .clone()
                .or_else(|| src.topic.clone())
                .unwrap_or_else(|| format!("sources[{i}]"));
            let parser = Parser {
                format,
                service: src.service.clone(),
                default_year,
            };
            match (&src.topic, src.paths.is_empty()) {
                (Some(topic), true) => {
                    if spec.kafka.is_none() {
                        return Err(err(format!(
                            "sources[{i}] reads topic `{topic}` but the spec has no [kafka] section"
                        )));
                    }
                    if kafka_source.replace((topic.clone(), parser)).is_some() {
                        return Err(err("at most one source can read a Kafka topic".into()));
                    }
                    continue;
                }
                (Some(_), false) => {
                    return Err(err(format!(
                        "sources[{i}] has both `paths` and `topic`: choose one"
                    )));
                }
                (None, true) => return Err(err(format!("sources[{i}] needs `paths` or `topic`"))),
                (None, false) => {}
            }
            for entry in &src.paths {
                for kind in expand(entry, &base).map_err(&err)? {
                    let name = match &kind {
                        InputKind::File(p) => p.display().to_string(),
                        InputKind::Stdin => "-".to_string(),
                    };
                    let follow = (src.follow || ov.follow) && kind != InputKind::Stdin;
                    inputs.push(InputPlan {
                        id: inputs.len() as u32,
                        kind,
                        name,
                        follow,
                        parser: parser.clone(),
                        label: label.clone(),
                    });
                }
            }
        }
        if inputs.iter().filter(|i| i.kind == InputKind::Stdin).count() > 1 {
            return Err(err("stdin (`-`) can be read only once".into()));
        }
        let live = kafka_source.is_some()
            || inputs
                .iter()
                .any(|i| i.follow || i.kind == InputKind::Stdin);

        ov.pacing.validate().map_err(&err)?;
        if live && (ov.pacing.is_paced() || ov.pacing.loops > 1) {
            return Err(err(
                "--rate, --speedup and --loop replay files; they do not apply to live inputs (stdin, --follow, Kafka)".into(),
            ));
        }
        // At a fixed rate an epoch holds about 10 ms of lines (the same for the same rate), so
        // that incidents do not wait for a big batch to fill.
        let batch_lines = match ov.pacing.rate {
            Some(r) => spec.job.batch_lines.min(((r / 100.0) as usize).max(64)),
            None => spec.job.batch_lines,
        };
        let workers = ov.workers.unwrap_or(spec.job.workers);
        if workers == 0 {
            return Err(err("workers must be at least 1".into()));
        }
        let max_inflight_epochs = spec.job.max_inflight_epochs.unwrap_or(if live {
            8
        } else {
            workers.max(1) as u64 + 1
        });
        if spec.job.batch_lines == 0 || max_inflight_epochs == 0 {
            return Err(err(
                "job.batch_lines and job.max_inflight_epochs must be at least 1".into(),
            ));
        }
        if spec.parse.max_line_bytes < 64 {
            return Err(err("parse.max_line_bytes must be at least 64".into()));
        }
        let cluster = ov.cluster.clone();
        if cluster.processes == 0 || cluster.process >= cluster.processes {
            return Err(err(format!(
                "--process {} is not below --processes {}",
                cluster.process, cluster.processes
            )));
        }
        if cluster.processes > 1 && cluster.hosts.len() != cluster.processes {
            return Err(err(format!(
                "{} processes need {} hosts, the hostfile has {}",
                cluster.processes,
                cluster.processes,
                cluster.hosts.len()
            )));
        }
        let detector = Detector::new(&spec.detect).map_err(&err)?;
        spec.cluster.validate().map_err(&err)?;
        let mut cluster_cfg = spec.cluster.clone();
        let resolve = |d: std::path::PathBuf| if d.is_absolute() { d } else { spec_dir.join(d) };
        let state_dir = spec.job.state_dir.clone().map(resolve);
        cluster_cfg.state_dir = cluster_cfg
            .state_dir
            .map(resolve)
            .or_else(|| state_dir.clone());
        if spec.job.checkpoint.0 < spec.job.tick.0.max(1) {
            return Err(err("job.checkpoint must be at least one tick".into()));
        }
        spec.incident.validate().map_err(&err)?;
        let mut model = spec.model.clone();
        model.plan(resolve).map_err(&err)?;
        let mut deploy = spec.deploy.clone();
        deploy.plan(resolve).map_err(&err)?;
        if spec.kafka.as_ref().is_some_and(|k| k.produce.fixes) && !model.enabled {
            return Err(err(
                "kafka.produce.fixes needs the model stage: [model] enabled = true".into(),
            ));
        }

        // Output files named in the spec are relative to it, like its inputs; on the command
        // line, to the working directory.
        let in_spec_dir = |s: Sink| match s {
            Sink::File(p) => Sink::File(resolve(p)),
            other => other,
        };
        let incidents = match &ov.output {
            Some(path) => Sink::File(path.clone()),
            None => Sink::parse(&spec.output.incidents, true)
                .map(in_spec_dir)
                .map_err(|e| err(format!("output.incidents: {e}")))?,
        };
        let dead_letters = match &ov.dead_letters {
            Some(path) => Sink::File(path.clone()),
            None => Sink::parse(&spec.output.dead_letters, false)
                .map(in_spec_dir)
                .map_err(|e| err(format!("output.dead_letters: {e}")))?,
        };
        let mut metrics: Option<SocketAddr> = if spec.metrics.enabled {
            let addr = spec
                .metrics
                .listen
                .parse()
                .map_err(|e| err(format!("metrics.listen `{}`: {e}", spec.metrics.listen)))?;
            Some(addr)
        } else {
            None
        };
        if ov.no_metrics {
            metrics = None;
        }
        if let Some(addr) = metrics.as_mut().filter(|a| a.port() != 0) {
            addr.set_port(addr.port().saturating_add(cluster.process as u16));
        }
        Ok(Plan {
            name: spec.job.name.clone(),
            spec_path: spec_path.to_path_buf(),
            workers,
            cluster,
            inputs,
            live,
            batch_lines,
            max_inflight_epochs,
            tick_ms: spec.job.tick.0,
            idle_flush_ms: spec.job.idle_flush.0,
            max_line_bytes: spec.parse.max_line_bytes,
            multiline: spec.multiline.clone(),
            detector,
            cluster_cfg,
            incident: spec.incident.clone(),
            incidents,
            dead_letters,
            summary: spec.output.summary,
            metrics,
            kafka: spec.kafka.clone(),
            kafka_source,
            state_dir,
            checkpoint_epochs: (spec.job.checkpoint.0 / spec.job.tick.0.max(1)).max(1) as u64,
            exit_when_idle: ov.exit_when_idle,
            pacing: ov.pacing,
            default_year,
            model,
            deploy,
        })
    }

    /// Loads, parses and plans a spec file.
    pub fn load(spec_path: &Path, ov: Overrides) -> Result<Plan, SpecError> {
        Plan::build(Spec::load(spec_path)?, spec_path, ov)
    }

    /// The timely configuration: threads in one process, or a cluster of processes.
    pub fn timely_config(&self) -> timely::Config {
        if self.cluster.processes <= 1 {
            return timely::Config::process(self.workers);
        }
        timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: self.workers,
                process: self.cluster.process,
                addresses: self.cluster.hosts.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        }
    }

    /// How the records of a source are parsed (a file input, or a partition of the topic).
    pub fn parser(&self, source: u32) -> Option<&Parser> {
        if source >= KAFKA_SOURCE_BASE {
            return self.kafka_source.as_ref().map(|(_, p)| p);
        }
        self.inputs.get(source as usize).map(|i| &i.parser)
    }

    /// A source's name for dead letters and messages.
    pub fn source_name(&self, source: u32) -> String {
        match (&self.kafka_source, source.checked_sub(KAFKA_SOURCE_BASE)) {
            (Some((topic, _)), Some(partition)) => format!("kafka:{topic}/{partition}"),
            _ => self
                .inputs
                .get(source as usize)
                .map_or_else(|| "?".into(), |i| i.name.clone()),
        }
    }

    /// Total workers across processes.
    pub fn peers(&self) -> usize {
        self.workers * self.cluster.processes
    }
}
