//! Kafka sinks: a stream of records → a topic, as JSON, with every delivery confirmed.
//!
//! In: records on the worker that owns them (pipeline: an incident is produced by the worker
//! that keeps it, so one fingerprint's updates stay in order on one partition). Out: an empty
//! stream whose frontier is held at an epoch until every record of that epoch has been
//! acknowledged by the brokers; the job's probe watches it, so offsets are committed only for
//! what has been delivered. A delivery that fails after librdkafka's own retries is sent again
//! and counted (with every producer error, by reason); a record librdkafka refuses outright
//! stops the job. State: the producer and the records in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{Capability, Operator};

use crate::core::epoch::Epoch;
use crate::dataflow::ctx::Ctx;
use crate::kafka;
use crate::metrics;

/// Collects delivery reports (`(message id, error reason if it failed)`) for the operator to
/// drain after each poll; counts client errors.
struct Reports {
    done: Mutex<Vec<(usize, Option<String>)>>,
    output: &'static str,
}

impl ClientContext for Reports {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka::log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        metrics::kafka_producer_error(self.output, &kafka::reason(&error));
        eprintln!(
            "hephaestus: kafka: {} producer: {error}: {reason}",
            self.output
        );
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let failed = result.as_ref().err().map(|(e, _)| kafka::reason(e));
        if let Ok(mut v) = self.done.lock() {
            v.push((id, failed));
        }
    }
}

struct InFlight {
    epoch: Epoch,
    key: Vec<u8>,
    payload: Vec<u8>,
}

/// Writes `stream` to `topic`, keyed by `key`; returns the stream to probe for delivery.
pub fn produce<'s, D, K>(
    stream: StreamVec<'s, Epoch, D>,
    ctx: &Ctx,
    topic: &str,
    what: &'static str,
    key: K,
) -> StreamVec<'s, Epoch, ()>
where
    D: Serialize + timely::ExchangeData,
    K: Fn(&D) -> Vec<u8> + 'static,
{
    let ctx = ctx.clone();
    let topic = topic.to_string();
    let scope = stream.scope();
    let worker = scope.index();
    stream.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "KafkaSink",
        move |_cap, info| {
            let activator = scope.activator_for(info.address);
            let producer: Option<BaseProducer<Reports>> = ctx.plan.kafka.as_ref().and_then(|k| {
                let client = format!("hephaestus-{}-{what}-w{worker}", ctx.plan.name);
                let reports = Reports {
                    done: Mutex::default(),
                    output: what,
                };
                k.producer(&client)
                    .create_with_context(reports)
                    .map_err(|e| ctx.error(format!("kafka producer: {e}")))
                    .ok()
            });
            metrics::kafka_retries(what, 0);
            let mut next_id = 0usize;
            let mut flight: HashMap<usize, InFlight> = HashMap::new();
            let mut waiting: Vec<usize> = Vec::new();
            let mut held: BTreeMap<Epoch, (Capability<Epoch>, usize)> = BTreeMap::new();
            move |(input, frontier), _output| {
                let Some(producer) = producer.as_ref() else {
                    input.for_each_stamp(|_, _| {});
                    return;
                };
                input.for_each_stamp(|cap, data| {
                    let Some(t) = cap.least().copied() else {
                        return;
                    };
                    let slot = held.entry(t).or_insert_with(|| (cap.delayed(&t, 0), 0));
                    for d in data.flat_map(|b| b.drain(..)) {
                        let payload = match serde_json::to_vec(&d) {
                            Ok(payload) => payload,
                            Err(e) => {
                                metrics::kafka_producer_error(what, "serialize");
                                ctx.fail(format!("kafka {what}: a record does not serialize: {e}"));
                                continue;
                            }
                        };
                        let id = next_id;
                        next_id += 1;
                        slot.1 += 1;
                        flight.insert(
                            id,
                            InFlight {
                                epoch: t,
                                key: key(&d),
                                payload,
                            },
                        );
                        waiting.push(id);
                    }
                });
                // Hand waiting records to librdkafka (a full queue is tried again next time).
                waiting.retain(|&id| {
                    let Some(m) = flight.get(&id) else {
                        return false;
                    };
                    let record = BaseRecord::with_opaque_to(&topic, id)
                        .key(&m.key)
                        .payload(&m.payload);
                    match producer.send(record) {
                        Ok(()) => false,
                        // librdkafka's queue is full: try again next time.
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                            true
                        }
                        // A record librdkafka refuses (too large, …): the job stops with it,
                        // committing nothing past it.
                        Err((e, _)) => {
                            metrics::kafka_producer_error(what, &kafka::reason(&e));
                            ctx.fail(format!("kafka {what}: producing to `{topic}`: {e}"));
                            false
                        }
                    }
                });
                producer.poll(Duration::ZERO);
                let reports = producer
                    .context()
                    .done
                    .lock()
                    .map(|mut v| std::mem::take(&mut *v))
                    .unwrap_or_default();
                for (id, failed) in reports {
                    if let Some(reason) = failed {
                        metrics::kafka_producer_error(what, &reason);
                        metrics::kafka_retries(what, 1);
                        waiting.push(id);
                    } else {
                        if let Some(m) = flight.remove(&id)
                            && let Some(slot) = held.get_mut(&m.epoch)
                        {
                            slot.1 -= 1;
                        }
                    }
                }
                held.retain(|t, (_, n)| *n > 0 || frontier.less_equal(t));
                if !held.is_empty() || !waiting.is_empty() {
                    activator.activate_after(Duration::from_millis(if waiting.is_empty() {
                        1
                    } else {
                        10
                    }));
                }
            }
        },
    )
}
