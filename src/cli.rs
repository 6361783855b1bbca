//! The command line: `hephaestus run SPEC …`, `check SPEC`, `templates FILE`, `replay FILE…`,
//! `worker SPEC`, `fixes SPEC …`.
//!
//! In: arguments. Out: a `Command` whose run options become `spec::Overrides`. No state. The
//! binary (`main.rs`) only dispatches; everything it calls is here or in `job`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::spec::{Cluster, Overrides, read_hostfile};

/// Hephaestus reads logs (files, directories, globs, stdin), finds errors, groups them by message
/// template and stack-trace fingerprint, and writes de-duplicated incidents as JSON lines.
#[derive(Debug, Parser)]
#[command(name = "hephaestus", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job spec: replay its inputs to the end (or follow them until Ctrl-C) and write
    /// incidents as JSON lines. Exit code 0 when the replay completes, also when some lines went
    /// to the dead-letter output; non-zero with a one-line error for a bad spec or input.
    Run(RunArgs),
    /// Validate a job spec without running it: parse it, compile its formats and rules, and
    /// resolve its inputs. Prints a one-line description on success.
    Check {
        /// The job spec (TOML), e.g. dataflows/local.toml.
        spec: PathBuf,
    },
    /// Mine a log file into message templates with the job's clusterer and write, for every
    /// line, the cluster it ends up in: `LineId,ClusterId,EventTemplate` (Loghub's format).
    Templates(TemplatesArgs),
    /// Load recorded log files into a Kafka topic (the raw-logs topic of a job), one record per
    /// line keyed by file, optionally at a fixed rate; creates the topic when it is missing.
    /// Prints a JSON report on stderr when every line has been delivered.
    Replay(ReplayArgs),
    /// Run only the model-worker stage, on incidents from the spec's incidents topic (a job with
    /// `kafka.produce.incidents = true` writes them): work on each as `[model]` says and write
    /// fix-attempt records, reports and (with `kafka.produce.fixes`) the fixes topic. Ctrl-C
    /// stops reading and finishes the incidents already taken.
    Worker(WorkerArgs),
    /// The deployment loop's fixes: list them, show one, approve a staged fix for production
    /// (`[deploy] approval = "manual"`), reject it, or roll a deployed fix back.
    Fixes(FixesArgs),
    /// Serve the job's incidents and fixes to agents over the Model Context Protocol: stdio by
    /// default (what an agent launches), streamable HTTP at `http://ADDR/mcp` with `--http`.
    /// Read-only unless `--allow-writes`.
    Mcp(McpArgs),
    /// Write realistic mixed logs for load tests (JSON, logfmt, syslog, access logs, plain lines,
    /// stack traces in five languages), the same for the same seed.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Lines to write (a stack trace counts all its lines).
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of events that are errors, 0 to 1.
    #[arg(long, default_value_t = 0.05)]
    pub errors: f64,
    /// Distinct error kinds.
    #[arg(long, default_value_t = 40)]
    pub kinds: u32,
    /// Distinct informational message templates.
    #[arg(long, default_value_t = 500)]
    pub templates: u32,
    /// Where to write (default: stdout).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Adversarial cardinality instead: every line random words (`--errors` of them at ERROR).
    #[arg(long)]
    pub unique: bool,
}

impl GenerateArgs {
    pub fn spec(&self) -> Result<crate::commands::generate::GenSpec, String> {
        if !(0.0..=1.0).contains(&self.errors) {
            return Err(format!(
                "--errors {}: expected a share from 0 to 1",
                self.errors
            ));
        }
        Ok(crate::commands::generate::GenSpec {
            lines: self.lines,
            seed: self.seed,
            error_share: self.errors,
            error_kinds: self.kinds.max(1),
            templates: self.templates.max(1),
            start_ms: 1_767_225_600_000,
            step_ms: 1,
            unique: self.unique,
        })
    }
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The job spec: where it writes incidents, and (`[model.repository]`, `[deploy]`) where
    /// the fixes are.
    pub spec: PathBuf,
    /// Read incidents from this JSON-lines file (written by `hephaestus run --output FILE`)
    /// instead of the spec's incidents output.
    #[arg(long, value_name = "FILE")]
    pub incidents: Option<PathBuf>,
    /// Serve streamable HTTP at `http://ADDR/mcp` (e.g. 127.0.0.1:8765) instead of stdio.
    /// Only loopback `Host` headers are accepted.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// Offer the tools that change fixes (propose_fix, approve_fix, reject_fix, rollback_fix);
    /// without it they are not listed.
    #[arg(long)]
    pub allow_writes: bool,
    /// Serve Prometheus metrics (requests by tool and outcome, their latency) at
    /// `http://ADDR/metrics`.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

impl McpArgs {
    pub fn args(&self) -> crate::commands::mcp::McpArgs {
        crate::commands::mcp::McpArgs {
            spec: self.spec.clone(),
            incidents: self.incidents.clone(),
            http: self.http,
            allow_writes: self.allow_writes,
            metrics: self.metrics,
        }
    }
}

#[derive(Debug, Args)]
pub struct FixesArgs {
    /// The job spec whose `[model.repository]` and `[deploy]` sections locate the fixes.
    pub spec: PathBuf,
    #[command(subcommand)]
    pub action: FixesAction,
}

#[derive(Debug, Subcommand)]
pub enum FixesAction {
    /// Every fix: id, status, fingerprint, release, title.
    List,
    /// One fix as JSON, with its history.
    Show { id: String },
    /// Deploy a staged fix: a new release on the production branch (or the deploy command).
    Approve { id: String },
    /// Turn a staged fix down.
    Reject {
        id: String,
        #[arg(long, default_value = "rejected by an operator")]
        why: String,
    },
    /// Take a deployed fix out of production (`git revert`, or the rollback command).
    Rollback {
        id: String,
        #[arg(long, default_value = "rolled back by an operator")]
        why: String,
    },
}

impl FixesAction {
    pub fn action(&self) -> crate::commands::deploy::Action {
        use crate::commands::deploy::Action;
        match self {
            FixesAction::List => Action::List,
            FixesAction::Show { id } => Action::Show(id.clone()),
            FixesAction::Approve { id } => Action::Approve(id.clone()),
            FixesAction::Reject { id, why } => Action::Reject(id.clone(), why.clone()),
            FixesAction::Rollback { id, why } => Action::Rollback(id.clone(), why.clone()),
        }
    }
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The job spec (TOML) with `[kafka]` and `[model]` sections.
    pub spec: PathBuf,
    /// Stop once no incident has arrived for this many seconds and all work is done.
    #[arg(long, value_name = "SECS")]
    pub exit_when_idle: Option<f64>,
    /// Do not serve Prometheus metrics, whatever the spec says.
    #[arg(long)]
    pub no_metrics: bool,
}

impl WorkerArgs {
    pub fn options(&self) -> Result<crate::commands::worker::WorkerOptions, String> {
        let exit_when_idle = match self.exit_when_idle {
            Some(s) if !(s.is_finite() && s >= 0.0) => {
                return Err(format!("--exit-when-idle {s}: expected seconds, 0 or more"));
            }
            s => s.map(std::time::Duration::from_secs_f64),
        };
        Ok(crate::commands::worker::WorkerOptions {
            exit_when_idle,
            no_metrics: self.no_metrics,
        })
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Log files (plain or gzip), sent one after the other.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Where to send them. Only `kafka` for now.
    #[arg(long, value_enum, default_value = "kafka")]
    pub to: ReplayTarget,
    /// Bootstrap brokers, `host:port[,…]` (default: $HEPHAESTUS_KAFKA_BROKERS, else
    /// 127.0.0.1:9092).
    #[arg(long)]
    pub brokers: Option<String>,
    /// The topic.
    #[arg(long, default_value = "hephaestus.logs.raw")]
    pub topic: String,
    /// Partitions when the topic has to be created.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Replication factor when the topic has to be created.
    #[arg(long, default_value_t = 1)]
    pub replication: i32,
    /// Lines per second, all files together (default: as fast as the broker takes them).
    #[arg(long, value_name = "LINES")]
    pub rate: Option<f64>,
    /// Extra librdkafka producer settings, `key=value`; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReplayTarget {
    Kafka,
}

impl ReplayArgs {
    pub fn request(&self) -> Result<crate::commands::replay::Request, String> {
        let mut kafka = crate::kafka::KafkaConfig::default();
        if let Some(b) = &self.brokers {
            // Options win over the environment variable: an explicit flag beats both.
            kafka.options.insert("bootstrap.servers".into(), b.clone());
        }
        for o in &self.options {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| format!("-X {o}: expected KEY=VALUE"))?;
            kafka.options.insert(k.trim().into(), v.trim().into());
        }
        if let Some(r) = self.rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
            return Err(format!(
                "--rate {r}: expected lines per second, more than 0"
            ));
        }
        if self.partitions < 1 || self.replication < 1 {
            return Err("--partitions and --replication must be at least 1".into());
        }
        Ok(crate::commands::replay::Request {
            files: self.files.clone(),
            kafka,
            topic: self.topic.clone(),
            partitions: self.partitions,
            replication: self.replication,
            rate: self.rate,
        })
    }
}

#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// The log file (plain or gzip).
    pub file: PathBuf,
    /// Loghub header template, e.g. `<Date> <Time> <Pid> <Level> <Component>: <Content>`; only
    /// `<Content>` is mined. Without it the whole line is mined.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Worker threads. Assignments are the same for any number.
    #[arg(short, long, default_value_t = 1)]
    pub workers: usize,
    /// Where to write one row per input line: `LineId,ClusterId,EventTemplate`.
    #[arg(long, value_name = "OUT.csv")]
    pub assignments: PathBuf,
    /// Where to write one row per template: `ClusterId,EventTemplate,Occurrences`.
    #[arg(long, value_name = "OUT.csv")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job spec (TOML), e.g. dataflows/local.toml. Relative input paths in it are resolved
    /// against the spec's directory.
    pub spec: PathBuf,
    /// Worker threads per process (default: the spec's `job.workers`). Results are the same for
    /// any number of workers.
    #[arg(short, long)]
    pub workers: Option<usize>,
    /// Read these files, directories or globs instead of the spec's sources; `-` reads stdin.
    /// Repeatable. Paths are relative to the working directory.
    #[arg(short, long = "input", value_name = "PATH")]
    pub inputs: Vec<String>,
    /// Write incidents as JSON lines to this file instead of the spec's `output.incidents`.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write dead letters (lines that could not be read, with the reason) as JSON lines to this
    /// file instead of the spec's `output.dead_letters`.
    #[arg(long, value_name = "PATH")]
    pub dead_letters: Option<PathBuf>,
    /// Keep reading input files as they grow, like `tail -F` (rotation and truncation are
    /// handled); stop with Ctrl-C, which flushes open incidents.
    #[arg(long)]
    pub follow: bool,
    /// Number of processes in a multi-process job (all run the same spec).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub processes: usize,
    /// This process's index, from 0 to N-1. Process 0 writes the outputs.
    #[arg(long, default_value_t = 0, value_name = "I")]
    pub process: usize,
    /// File with one `host:port` per line, one line per process in process order. Without it,
    /// processes listen on localhost ports 2101, 2102, ….
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// Do not serve Prometheus metrics, whatever the spec says.
    #[arg(long)]
    pub no_metrics: bool,
    /// With live inputs (Kafka, stdin, --follow): stop once no record has arrived for this many
    /// seconds (for Kafka: and every partition is read to the broker's end), after flushing
    /// every output and committing offsets.
    #[arg(long, value_name = "SECS")]
    pub exit_when_idle: Option<f64>,
    /// Replay the inputs at this many lines per second (for the whole job; each process of a
    /// multi-process job paces its share) instead of as fast as possible; the summary says
    /// whether the job kept up.
    #[arg(long, value_name = "LINES", conflicts_with = "speedup")]
    pub rate: Option<f64>,
    /// Replay the inputs X times faster than they were written, by the timestamps that start
    /// their lines (lines without one follow the line before).
    #[arg(long, value_name = "X")]
    pub speedup: Option<f64>,
    /// Read every input K times over: a big load from a small recording.
    #[arg(long = "loop", value_name = "K", default_value_t = 1)]
    pub loops: u32,
}

impl RunArgs {
    pub fn overrides(&self) -> Result<Overrides, String> {
        let hosts = match (&self.hostfile, self.processes) {
            (Some(path), _) => read_hostfile(path)?,
            (None, 1) => Vec::new(),
            (None, n) => (0..n).map(|i| format!("localhost:{}", 2101 + i)).collect(),
        };
        Ok(Overrides {
            workers: self.workers,
            inputs: self.inputs.clone(),
            output: self.output.clone(),
            dead_letters: self.dead_letters.clone(),
            follow: self.follow,
            cluster: Cluster {
                processes: self.processes,
                process: self.process,
                hosts,
            },
            no_metrics: self.no_metrics,
            exit_when_idle: match self.exit_when_idle {
                Some(s) if !(s.is_finite() && s >= 0.0) => {
                    return Err(format!("--exit-when-idle {s}: expected seconds, 0 or more"));
                }
                s => s.map(std::time::Duration::from_secs_f64),
            },
            pacing: crate::source::pace::Pacing {
                rate: self.rate,
                speedup: self.speedup,
                loops: self.loops,
            },
        })
    }
}
