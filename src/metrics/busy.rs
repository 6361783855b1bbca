//! Operator busy time, from timely's own logging.
//!
//! In: a worker's timely log (`Operates` events name the operators, `Schedule` start/stop pairs
//! time each scheduling). Out: `hephaestus_operator_busy_seconds{operator,worker}`, a histogram
//! of scheduling durations whose `_sum` is the busy time, per pipeline stage (timely's and
//! differential's helper operators are folded into the stage they serve, or `other`). Filled
//! each time timely flushes a batch of log events. State: operator names, open schedulings.

use std::collections::HashMap;
use std::time::Duration;

use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

use super::{Batch, Histogram, names};

/// The stage an operator belongs to, by its name.
pub fn stage(name: &str) -> &'static str {
    match name {
        "Source" | "KafkaSource" => "source",
        "Multiline" => "multiline",
        "Parse" => "parse",
        "Detect" => "detect",
        "Cluster" => "cluster",
        "CountKeys" | "Incidents" | "Count" | "AsCollection" => "incident",
        "WriteIncidents" | "WriteDeadLetters" | "KafkaSink" => "sink",
        n if n.starts_with("Arrange") => "incident",
        _ => "other",
    }
}

/// Starts recording this worker's operator busy time (before its dataflow is built).
pub fn install(worker: &mut Worker) {
    let w = worker.index().to_string();
    let Some(mut register) = worker.log_register() else {
        return;
    };
    let mut stages: HashMap<usize, &'static str> = HashMap::new();
    let mut started: HashMap<usize, Duration> = HashMap::new();
    let mut batches: HashMap<&'static str, (Batch, Histogram)> = HashMap::new();
    register.insert::<TimelyEventBuilder, _>("timely", move |_now, data| {
        let Some(events) = data else { return };
        for (t, event) in events.iter() {
            match event {
                // Scopes (the dataflow itself) contain the operators: their time is not their own.
                TimelyEvent::Operates(op) if op.addr.len() >= 2 => {
                    stages.insert(op.id, stage(&op.name));
                }
                TimelyEvent::Schedule(s) => match s.start_stop {
                    StartStop::Start => {
                        started.insert(s.id, *t);
                    }
                    StartStop::Stop => {
                        if let (Some(start), Some(&stage)) =
                            (started.remove(&s.id), stages.get(&s.id))
                        {
                            let entry = batches.entry(stage).or_insert_with(|| {
                                let labels = [("operator", stage), ("worker", w.as_str())];
                                (Batch::default(), Histogram::new(names::BUSY, &labels))
                            });
                            entry.0.observe(t.saturating_sub(start).as_secs_f64());
                        }
                    }
                },
                _ => {}
            }
        }
        for (batch, histogram) in batches.values_mut() {
            batch.flush(histogram);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn helper_operators_count_for_the_stage_they_serve() {
        assert_eq!(super::stage("Arrange: Count"), "incident");
        assert_eq!(super::stage("KafkaSource"), "source");
        assert_eq!(super::stage("Exchange"), "other");
    }
}
