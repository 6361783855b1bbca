//! `hephaestus replay`: recorded log files → the raw-logs topic, at a given rate.
//!
//! In: files (plain or gzip), read one after the other, line by line. Out: one Kafka record per
//! line, keyed by the file's path so that a file's lines stay in order on one partition and are
//! never interleaved with another file's (the job joins multiline records per partition). The
//! topic is created with the requested partitions when it does not exist. Every delivery is
//! confirmed; a failed one is sent again and counted. State: the producer and the failures to
//! resend.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde::Serialize;

use crate::core::shutdown::Shutdown;
use crate::kafka::KafkaConfig;
use crate::source::reader::{LineReader, Next, open_file};

/// The largest line sent as is; longer ones are cut to it (and counted) so that they fit in a
/// broker's default 1 MB message limit.
const MAX_LINE: usize = 900 * 1024;

/// What to replay, and where.
#[derive(Clone, Debug)]
pub struct Request {
    pub files: Vec<PathBuf>,
    pub kafka: KafkaConfig,
    pub topic: String,
    /// Partitions of the topic when it has to be created.
    pub partitions: i32,
    pub replication: i32,
    /// Lines per second (all files together); `None` sends as fast as the broker takes them.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub lines: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Lines longer than the limit, sent cut.
    pub cut: u64,
    /// Deliveries that failed and were sent again.
    pub retries: u64,
    pub stopped: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("kafka: {0}")]
    Kafka(String),
}

fn kafka(what: &str, e: impl std::fmt::Display) -> ReplayError {
    ReplayError::Kafka(format!("{what}: {e}"))
}

/// Failed deliveries, kept to be sent again.
#[derive(Default)]
struct Failures(Mutex<Vec<(Vec<u8>, Vec<u8>)>>);

impl ClientContext for Failures {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka::log(level, fac, message);
    }
}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((_, msg)) = result {
            use rdkafka::message::Message;
            let key = msg.key().unwrap_or_default().to_vec();
            let payload = msg.payload().unwrap_or_default().to_vec();
            if let Ok(mut v) = self.0.lock() {
                v.push((key, payload));
            }
        }
    }
}

/// Creates `topic` unless it exists (checked first: some clusters refuse topic creation to
/// clients, and an existing topic needs none).
fn ensure_topic(req: &Request) -> Result<(), ReplayError> {
    let mut cfg = req.kafka.admin();
    // Looking the topic up must not create it with the broker's default partition count.
    cfg.set("allow.auto.create.topics", "false");
    let admin: AdminClient<DefaultClientContext> =
        cfg.create().map_err(|e| kafka("admin client", e))?;
    let exists = admin
        .inner()
        .fetch_metadata(Some(&req.topic), Duration::from_secs(10))
        .map_err(|e| kafka("metadata", e))?
        .topics()
        .first()
        .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty());
    if exists {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| kafka("runtime", e))?;
    let topic = NewTopic::new(
        &req.topic,
        req.partitions,
        TopicReplication::Fixed(req.replication),
    );
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = rt
        .block_on(admin.create_topics([&topic], &opts))
        .map_err(|e| kafka("create topic", e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(kafka(&format!("create topic {t}"), code)),
        }
    }
    Ok(())
}

/// Sends one record, waiting while librdkafka's queue is full.
fn send(
    producer: &BaseProducer<Failures>,
    topic: &str,
    key: &[u8],
    payload: &[u8],
) -> Result<(), ReplayError> {
    loop {
        match producer.send(BaseRecord::to(topic).key(key).payload(payload)) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(50));
            }
            Err((e, _)) => return Err(kafka("send", e)),
        }
    }
}

/// Sends the failed deliveries again until none is left; returns how many were resent.
fn resend(producer: &BaseProducer<Failures>, topic: &str) -> Result<u64, ReplayError> {
    let failed = producer
        .context()
        .0
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default();
    for (key, payload) in &failed {
        send(producer, topic, key, payload)?;
    }
    Ok(failed.len() as u64)
}

/// Replays the files; stops early (after delivering what was sent) when `shutdown` fires.
pub fn replay(req: &Request, shutdown: &Shutdown) -> Result<Report, ReplayError> {
    ensure_topic(req)?;
    let producer: BaseProducer<Failures> = req
        .kafka
        .producer("hephaestus-replay")
        .create_with_context(Failures::default())
        .map_err(|e| kafka("producer", e))?;
    let started = Instant::now();
    let mut report = Report {
        lines: 0,
        bytes: 0,
        seconds: 0.0,
        cut: 0,
        retries: 0,
        stopped: false,
    };
    let mut progress = Instant::now();
    'files: for path in &req.files {
        let name = path.display().to_string();
        let io = |source| ReplayError::Io {
            path: name.clone(),
            source,
        };
        let (inner, _) = open_file(path).map_err(io)?;
        let mut reader = LineReader::new(inner, MAX_LINE, false);
        while let Next::Line(line) = reader.next_line().map_err(io)? {
            if shutdown.is_triggered() {
                report.stopped = true;
                break 'files;
            }
            if let Some(rate) = req.rate {
                let due = started + Duration::from_secs_f64(report.lines as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    producer.poll(wait);
                }
            }
            send(&producer, &req.topic, name.as_bytes(), &line.bytes)?;
            producer.poll(Duration::ZERO);
            report.lines += 1;
            report.bytes += line.bytes.len() as u64;
            report.cut += u64::from(line.oversize.is_some());
            report.retries += resend(&producer, &req.topic)?;
            if progress.elapsed() >= Duration::from_secs(5) {
                progress = Instant::now();
                let rate = report.lines as f64 / started.elapsed().as_secs_f64();
                eprintln!(
                    "hephaestus: replay: {} lines sent ({rate:.0}/s), now {name}",
                    report.lines
                );
            }
        }
    }
    // Deliver everything sent, including what fails and is sent again on the way.
    loop {
        producer
            .flush(Duration::from_secs(120))
            .map_err(|e| kafka("flush", e))?;
        match resend(&producer, &req.topic)? {
            0 => break,
            n => report.retries += n,
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
