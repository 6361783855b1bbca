//! The fixes topic: every fix-attempt record, as JSON keyed by fingerprint, confirmed delivered.
//!
//! In: the attempts of one worked incident. Out: one Kafka record per attempt on
//! `kafka.topics.fixes` (enabled by `kafka.produce.fixes`), or the error after librdkafka's own
//! retries (`message.timeout.ms`), which fails the job at the end. State: the producer.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::composer::FixAttempt;
use crate::kafka::KafkaConfig;

pub struct FixesTopic {
    producer: FutureProducer,
    topic: String,
}

impl FixesTopic {
    pub fn new(kafka: &KafkaConfig) -> Result<FixesTopic, String> {
        let producer = kafka
            .producer("hephaestus-fixes")
            .create()
            .map_err(|e| format!("fixes producer: {e}"))?;
        Ok(FixesTopic {
            producer,
            topic: kafka.topics.fixes.clone(),
        })
    }

    /// Sends every attempt and waits until the brokers have them.
    pub async fn publish(&self, attempts: &[FixAttempt]) -> Result<(), String> {
        for a in attempts {
            let payload = serde_json::to_vec(a).map_err(|e| e.to_string())?;
            let record = FutureRecord::to(&self.topic)
                .key(&a.fingerprint)
                .payload(&payload);
            self.producer
                .send(record, Duration::from_secs(5))
                .await
                .map_err(|(e, _)| format!("producing to {}: {e}", self.topic))?;
        }
        Ok(())
    }
}
