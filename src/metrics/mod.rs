//! Metrics: every name in one place (`names.rs`), typed handles per operator, the per-process
//! tallies behind the end-of-run summary and the progress line, and the Prometheus endpoint
//! (`server.rs`).
//!
//! In: counts and latencies from the operators, once per batch (never per record). Out:
//! `/metrics` (counters and gauges through the `metrics` facade, histograms with explicit buckets
//! from `histogram.rs`), and `Stats`. State: the atomic tallies and the global recorder.

pub mod busy;
pub mod histogram;
pub mod latency;
pub mod names;
pub mod process;
pub mod progress;
mod server;

pub use histogram::{Batch, Histogram};
pub use server::{MetricsError, Server, serve};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use metrics::{Counter, counter, gauge};

/// Records in and out of one operator on one worker, and their latency since ingestion.
#[derive(Clone)]
pub struct OperatorMetrics {
    records_in: Counter,
    outputs: Vec<Counter>,
    latency: Histogram,
}

impl OperatorMetrics {
    /// `outputs` names each output port (`ok`, `dead_letter`, …).
    pub fn new(operator: &'static str, worker: usize, outputs: &[&'static str]) -> OperatorMetrics {
        let w = worker.to_string();
        OperatorMetrics {
            records_in: counter!(names::RECORDS_IN, "operator" => operator, "worker" => w.clone()),
            outputs: outputs
                .iter()
                .map(|o| counter!(names::RECORDS_OUT, "operator" => operator, "worker" => w.clone(), "output" => *o))
                .collect(),
            latency: Histogram::new(names::LATENCY, &[("operator", operator), ("worker", &w)]),
        }
    }

    /// Adds a batch of latencies (time from ingestion to this operator's output).
    pub fn latency(&self, batch: &mut Batch) {
        batch.flush(&self.latency);
    }

    pub fn batch(&self, records_in: usize, records_out: &[usize]) {
        self.records_in.increment(records_in as u64);
        for (c, n) in self.outputs.iter().zip(records_out) {
            c.increment(*n as u64);
        }
    }
}

/// Per-process tallies for the summary (independent of whether metrics are served).
#[derive(Debug, Default)]
pub struct Stats {
    pub lines: AtomicU64,
    pub bytes: AtomicU64,
    pub records: AtomicU64,
    pub error_events: AtomicU64,
    pub dead_letters: AtomicU64,
    pub incident_updates: AtomicU64,
    pub incidents: AtomicU64,
    /// From an error line's ingestion to its incident's update, for the end-of-run report.
    pub latency: latency::Latencies,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

/// Dead letters by reason, once per batch.
pub fn dead_letters(reason: &'static str, n: usize) {
    counter!(names::DEAD_LETTERS, "reason" => reason).increment(n as u64);
}

pub fn error_events(n: usize) {
    counter!(names::ERROR_EVENTS).increment(n as u64);
}

/// Lines and bytes read from one source (a `[[sources]]` entry) on one worker.
#[derive(Clone)]
pub struct Ingest {
    lines: Counter,
    bytes: Counter,
}

impl Ingest {
    pub fn new(worker: usize, source: &str) -> Ingest {
        let (w, s) = (worker.to_string(), source.to_string());
        Ingest {
            lines: counter!(names::INGESTED_LINES, "worker" => w.clone(), "source" => s.clone()),
            bytes: counter!(names::INGESTED_BYTES, "worker" => w, "source" => s),
        }
    }

    pub fn add(&self, lines: usize, bytes: usize) {
        self.lines.increment(lines as u64);
        self.bytes.increment(bytes as u64);
    }
}

pub fn templates(worker: usize, alive: usize, evicted_total: u64) {
    let w = worker.to_string();
    gauge!(names::TEMPLATES, "worker" => w.clone()).set(alive as f64);
    counter!(names::TEMPLATES_EVICTED, "worker" => w).absolute(evicted_total);
}

/// Error events a worker folded into overflow incidents, in one batch: by the miner (`cluster`:
/// no new template past the budget) or by admission (`incident`: no new incident past it).
pub fn events_folded(worker: usize, stage: &'static str, n: u64) {
    counter!(names::EVENTS_FOLDED, "worker" => worker.to_string(), "stage" => stage).increment(n);
}

pub fn incidents(
    worker: usize,
    by_state: &[(&'static str, u64)],
    updates: usize,
    evicted_total: u64,
) {
    let w = worker.to_string();
    for (state, n) in by_state {
        gauge!(names::INCIDENTS, "worker" => w.clone(), "state" => *state).set(*n as f64);
    }
    counter!(names::INCIDENT_UPDATES, "worker" => w.clone()).increment(updates as u64);
    counter!(names::INCIDENTS_EVICTED, "worker" => w).absolute(evicted_total);
}

/// One model call: its time, tokens and cost, and whether it answered.
pub fn model_call(
    backend: &'static str,
    role: &'static str,
    seconds: f64,
    usage: (u64, u64, f64),
    ok: bool,
) {
    let outcome = if ok { "ok" } else { "error" };
    counter!(names::MODEL_REQUESTS, "backend" => backend, "role" => role, "outcome" => outcome)
        .increment(1);
    counter!(names::MODEL_TOKENS, "backend" => backend, "kind" => "prompt").increment(usage.0);
    counter!(names::MODEL_TOKENS, "backend" => backend, "kind" => "completion").increment(usage.1);
    histogram::add_float(names::MODEL_COST, &[("backend", backend)], usage.2);
    let mut b = Batch::default();
    b.observe(seconds);
    b.flush(&Histogram::new(
        names::MODEL_GENERATION,
        &[("backend", backend), ("role", role)],
    ));
}

/// One MCP tool call, by tool and outcome (`ok`, `bad_request`, `not_found`, `unknown_tool`,
/// `error`), and how long it took.
pub fn mcp_request(tool: &str, outcome: &'static str, seconds: f64) {
    let tool = tool.to_string();
    counter!(names::MCP_REQUESTS, "tool" => tool.clone(), "outcome" => outcome).increment(1);
    let mut b = Batch::default();
    b.observe(seconds);
    b.flush(&Histogram::new(
        names::MCP_REQUEST_SECONDS,
        &[("tool", &tool)],
    ));
}

/// A finished fix attempt, by outcome; and the share of worked incidents that got a validated fix.
pub fn fix_attempt(outcome: &'static str) {
    counter!(names::FIX_ATTEMPTS, "outcome" => outcome).increment(1);
}

/// Incidents the stage finished: the share with a validated fix, and what each fix cost.
pub fn fix_success_ratio(validated: u64, finished: u64, usd_total: f64) {
    if finished > 0 {
        gauge!(names::FIX_SUCCESS_RATIO).set(validated as f64 / finished as f64);
    }
    if validated > 0 {
        gauge!(names::FIX_COST).set(usd_total / validated as f64);
    }
}

/// A fix reached `stage` (`staging` or `production`); for production, how long after its
/// incident was first seen.
pub fn deploy(stage: &'static str, since_incident_seconds: Option<f64>) {
    counter!(names::DEPLOYS, "stage" => stage).increment(1);
    if let Some(s) = since_incident_seconds {
        let mut b = Batch::default();
        b.observe(s);
        b.flush(&Histogram::new(names::TIME_TO_PRODUCTION, &[]));
    }
}

/// A fix was rolled back; and the share of decided fixes that held (fix accuracy).
pub fn rollback() {
    counter!(names::ROLLBACKS).increment(1);
}

pub fn fix_accuracy(successful: u64, rolled_back: u64) {
    if successful + rolled_back > 0 {
        gauge!(names::FIX_ACCURACY).set(successful as f64 / (successful + rolled_back) as f64);
    }
}

/// The handoff to the model stage: incidents waiting, updates merged, fingerprints over capacity.
pub fn model_queue(depth: usize, merged: u64, overflow: u64) {
    gauge!(names::MODEL_QUEUE).set(depth as f64);
    counter!(names::MODEL_QUEUE_MERGED).increment(merged);
    counter!(names::MODEL_QUEUE_OVERFLOW).increment(overflow);
}

/// An admission decision: `start_analysis`, `start_patch`, `start_deploy`, `recurrence`, `skip`.
pub fn model_admission(decision: &'static str) {
    counter!(names::MODEL_ADMISSIONS, "decision" => decision).increment(1);
}

/// How far the dataflow's frontier is behind the wall clock (live inputs), in milliseconds.
pub fn frontier_lag(worker: usize, behind_ms: i64) {
    gauge!(names::FRONTIER_LAG, "worker" => worker.to_string())
        .set(behind_ms.max(0) as f64 / 1000.0);
}

fn lags() -> &'static std::sync::Mutex<std::collections::HashMap<(String, i32), i64>> {
    static LAGS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<(String, i32), i64>>,
    > = std::sync::OnceLock::new();
    LAGS.get_or_init(Default::default)
}

/// The consumer lag summed over every partition this process reads, once known.
pub fn total_consumer_lag() -> Option<i64> {
    let lags = lags().lock().ok()?;
    (!lags.is_empty()).then(|| lags.values().sum())
}

/// Records behind the newest offset of a partition the job consumes.
pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    if let Ok(mut lags) = lags().lock() {
        lags.insert((topic.to_string(), partition), lag);
    }
    gauge!(names::KAFKA_LAG, "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(lag as f64);
}

/// A Kafka consumer error (`reason`: librdkafka's error code, snake_case).
pub fn kafka_consumer_error(reason: &str) {
    counter!(names::KAFKA_CONSUMER_ERRORS, "reason" => reason.to_string()).increment(1);
}

/// A Kafka producer error of `output` (`reason`: librdkafka's error code, snake_case).
pub fn kafka_producer_error(output: &'static str, reason: &str) {
    counter!(names::KAFKA_PRODUCER_ERRORS, "output" => output, "reason" => reason.to_string())
        .increment(1);
}

/// Deliveries that failed after librdkafka's retries and were sent again.
pub fn kafka_retries(output: &'static str, n: u64) {
    counter!(names::KAFKA_RETRIES, "output" => output).increment(n);
}
