//! Kafka: the `[kafka]` section of a spec and the one place where clients are configured.
//!
//! In: the spec's brokers, group, topic names and extra librdkafka options (the environment
//! variable `HEPHAESTUS_KAFKA_BROKERS` overrides the brokers). Out: configured consumers and
//! producers. No state. The source operator is in `source.rs` (its offset commits in
//! `commit.rs`), the sinks in `sink.rs`, `hephaestus replay` in `replay.rs`. Any
//! Kafka-protocol broker works (Apache Kafka with KRaft, Redpanda, tansu); nothing here talks to
//! ZooKeeper.

pub mod commit;

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use serde::{Deserialize, Serialize};

/// The environment variable that overrides the spec's brokers.
pub const BROKERS_ENV: &str = "HEPHAESTUS_KAFKA_BROKERS";

/// `[kafka]`: the cluster and the topics the job reads and writes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Consumer group under which consumed offsets are committed (partitions are assigned to
    /// workers by the job, not by the group).
    pub group: String,
    /// Where a partition with no committed offset starts: `earliest` or `latest`.
    pub start: Start,
    pub topics: Topics,
    /// Which outputs go to Kafka, besides the file outputs.
    pub produce: Produce,
    /// Extra librdkafka settings, passed through as given (they win over the defaults below).
    pub options: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group: "hephaestus".into(),
            start: Start::Earliest,
            topics: Topics::default(),
            produce: Produce::default(),
            options: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    #[default]
    Earliest,
    Latest,
}

/// `[kafka.topics]`: topic names.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    pub raw: String,
    pub structured: String,
    pub errors: String,
    pub incidents: String,
    pub fixes: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            raw: "hephaestus.logs.raw".into(),
            structured: "hephaestus.logs.structured".into(),
            errors: "hephaestus.errors".into(),
            incidents: "hephaestus.incidents".into(),
            fixes: "hephaestus.fixes".into(),
        }
    }
}

/// `[kafka.produce]`: the outputs written to topics.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Produce {
    /// Incident updates, keyed by fingerprint (a compacted topic keeps each incident's latest).
    pub incidents: bool,
    /// Every parsed record (`LogRecord` as JSON).
    pub structured: bool,
    /// Every error event (`ErrorEvent` as JSON).
    pub errors: bool,
    /// Every fix-attempt record of the model stage, keyed by fingerprint.
    pub fixes: bool,
}

/// The `reason` label of a Kafka error: librdkafka's error code in snake_case
/// (`broker_transport_failure`, `unknown_topic_or_partition`…), a bounded set; `other` when the
/// error carries none.
pub fn reason(e: &KafkaError) -> String {
    let Some(code) = e.rdkafka_error_code() else {
        return "other".into();
    };
    let mut out = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A consumer error the job cannot wait out: access refused, or the client itself failed. The
/// job stops with it (a missing topic is waited for at start, `dataflow::kafka_source`).
pub fn is_fatal_for_consumer(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::SaslAuthenticationFailed
                | C::Authentication
                | C::Fatal
                | C::InvalidGroupId
        )
    )
}

/// librdkafka's own log lines (warnings and worse, or everything asked for with the `debug`
/// option), on stderr.
pub(crate) fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    eprintln!("hephaestus: kafka: {level:?} {facility}: {message}");
}

impl KafkaConfig {
    /// The brokers, with the environment override applied.
    pub fn brokers(&self) -> String {
        std::env::var(BROKERS_ENV)
            .ok()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| self.brokers.clone())
    }

    /// Settings shared by every client.
    fn base(&self, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers())
            // Identifies the process and worker in broker logs and metrics.
            .set("client.id", client_id)
            // A broker that is down is retried for as long as the job runs; reconnect backoff
            // grows to 2 s (librdkafka's default is 10 s), so the job resumes soon after an
            // outage without spinning during it.
            .set("reconnect.backoff.max.ms", "2000")
            // Metadata (partition leaders) is refreshed every 30 s and at once on errors.
            .set("topic.metadata.refresh.interval.ms", "30000");
        c.set_log_level(RDKafkaLogLevel::Warning);
        c
    }

    fn apply_options(&self, c: &mut ClientConfig) {
        for (k, v) in &self.options {
            c.set(k, v);
        }
    }

    /// A consumer for manually assigned partitions.
    pub fn consumer(&self, client_id: &str) -> ClientConfig {
        let mut c = self.base(client_id);
        // Offsets are committed by the job, only up to what every output has delivered
        // (at-least-once): never automatically, and never stored automatically either.
        c.set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Where a partition without a committed offset starts.
            .set(
                "auto.offset.reset",
                match self.start {
                    Start::Earliest => "earliest",
                    Start::Latest => "latest",
                },
            )
            // Each worker polls without blocking; librdkafka prefetches up to this much per
            // partition in the background so a poll seldom comes back empty under load.
            .set("queued.max.messages.kbytes", "65536")
            // A partition end is not an error: the source decides when it is idle.
            .set("enable.partition.eof", "false")
            // Session timeout matters only for group coordination (commits); 6 s keeps a
            // restarted job from waiting long (tansu takes half of it to answer a first join).
            .set("session.timeout.ms", "6000")
            // Statistics (consumer lag per partition, `hephaestus_kafka_consumer_lag`) every 5 s.
            .set("statistics.interval.ms", "5000");
        self.apply_options(&mut c);
        c
    }

    /// An admin client (topic creation).
    pub fn admin(&self) -> ClientConfig {
        let mut c = self.base("hephaestus-admin");
        self.apply_options(&mut c);
        c
    }

    /// A producer whose every delivery is reported back.
    pub fn producer(&self, client_id: &str) -> ClientConfig {
        let mut c = self.base(client_id);
        // All in-sync replicas acknowledge, and retries cannot duplicate or reorder records.
        c.set("acks", "all")
            .set("enable.idempotence", "true")
            // librdkafka retries a failed send for up to two minutes before reporting failure;
            // the sink then sends again and counts it.
            .set("message.timeout.ms", "120000")
            // Small batches, short linger: incidents are few and latency matters more.
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            // Keys spread by murmur2, as the Java client does. librdkafka's default (crc32)
            // sent `svc0.log` … `svc3.log` all to one of four partitions: keys that differ in
            // one character collide in crc32's low bits.
            .set("partitioner", "murmur2_random");
        self.apply_options(&mut c);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn reasons_are_error_codes_in_snake_case_and_only_refusals_are_fatal() {
        let down = KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown);
        let acl = KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert_eq!(reason(&down), "all_brokers_down");
        assert_eq!(reason(&acl), "topic_authorization_failed");
        assert_eq!(reason(&KafkaError::Canceled), "other");
        assert!(is_fatal_for_consumer(&acl));
        assert!(!is_fatal_for_consumer(&down), "an outage is waited out");
    }
}
