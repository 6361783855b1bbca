//! Metrics: every metric name in one place, typed handles per operator, the per-process tallies
//! behind the end-of-run summary, and the Prometheus endpoint.
//!
//! In: counts from the operators, once per batch (never per record). Out: `/metrics` on the
//! spec's address (metrics + metrics-exporter-prometheus), and `Stats` read by the summary.
//! State: the atomic tallies and the global recorder. Labels are `operator`, `worker`, `output`,
//! `reason`, `state`: never a template or fingerprint.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use metrics::{Counter, counter, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;

/// Metric names, `hephaestus_<noun>_<unit>`, `_total` on counters.
pub mod names {
    pub const INGESTED_LINES: &str = "hephaestus_ingested_lines_total";
    pub const INGESTED_BYTES: &str = "hephaestus_ingested_bytes_total";
    pub const RECORDS_IN: &str = "hephaestus_operator_records_in_total";
    pub const RECORDS_OUT: &str = "hephaestus_operator_records_out_total";
    pub const DEAD_LETTERS: &str = "hephaestus_dead_letters_total";
    pub const ERROR_EVENTS: &str = "hephaestus_error_events_total";
    pub const TEMPLATES: &str = "hephaestus_templates";
    pub const TEMPLATES_EVICTED: &str = "hephaestus_templates_evicted_total";
    pub const INCIDENTS: &str = "hephaestus_incidents";
    pub const INCIDENT_UPDATES: &str = "hephaestus_incident_updates_total";
    pub const INCIDENTS_EVICTED: &str = "hephaestus_incidents_evicted_total";
    pub const KAFKA_LAG: &str = "hephaestus_kafka_consumer_lag";
    pub const KAFKA_RETRIES: &str = "hephaestus_kafka_delivery_retries_total";
    pub const BUILD_INFO: &str = "hephaestus_build_info";
    pub const START_TIME: &str = "hephaestus_start_time_seconds";
}

/// Records in and out of one operator on one worker.
#[derive(Clone)]
pub struct OperatorMetrics {
    records_in: Counter,
    outputs: Vec<Counter>,
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
        }
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

pub fn ingested(worker: usize, lines: usize, bytes: usize) {
    let w = worker.to_string();
    counter!(names::INGESTED_LINES, "worker" => w.clone()).increment(lines as u64);
    counter!(names::INGESTED_BYTES, "worker" => w).increment(bytes as u64);
}

pub fn templates(worker: usize, alive: usize, evicted_total: u64) {
    let w = worker.to_string();
    gauge!(names::TEMPLATES, "worker" => w.clone()).set(alive as f64);
    counter!(names::TEMPLATES_EVICTED, "worker" => w).absolute(evicted_total);
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

/// Records behind the newest offset of a partition the job consumes.
pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    gauge!(names::KAFKA_LAG, "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(lag as f64);
}

/// Deliveries that failed after librdkafka's retries and were sent again.
pub fn kafka_retries(output: &'static str, n: u64) {
    counter!(names::KAFKA_RETRIES, "output" => output).increment(n);
}

/// The Prometheus endpoint; serving stops when this is dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Exporter(String),
}

/// Installs the global recorder and serves `/metrics` on `addr` from a thread of its own.
pub fn serve(addr: SocketAddr) -> Result<Server, MetricsError> {
    // Bind first so that a taken port is a clear error, and port 0 resolves to a real one.
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    drop(listener);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MetricsError::Exporter(e.to_string()))?;
    let (recorder, exporter) = {
        let _guard = runtime.enter();
        PrometheusBuilder::new()
            .with_http_listener(bound)
            .build()
            .map_err(|e| MetricsError::Exporter(e.to_string()))?
    };
    metrics::set_global_recorder(recorder).map_err(|e| MetricsError::Exporter(e.to_string()))?;
    gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    gauge!(names::START_TIME).set(crate::time::now_ms() as f64 / 1000.0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = exporter => {}
                    _ = stopped => {}
                }
            });
        })
        .map_err(|e| MetricsError::Exporter(e.to_string()))?;
    Ok(Server {
        addr: bound,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
