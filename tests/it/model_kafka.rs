//! `hephaestus worker` with a real broker: a job produces incidents to a topic, the worker reads
//! them, proves the fix and sends the attempt records to the fixes topic; a record that is not
//! an incident is counted and skipped; offsets are committed once the work is done.

use std::time::Duration;

use hephaestus::commands::worker::{self, WorkerOptions};
use hephaestus::core::shutdown::Shutdown;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

use super::broker::{Broker, committed, read_topic};
use super::model::{python_project, scratch};

#[test]
fn the_worker_reads_incidents_and_writes_fixes() {
    let broker = Broker::start();
    let root = scratch("worker");
    let (repo, log) = python_project(&root);
    let kafka = format!(
        "[kafka]\nbrokers = \"{}\"\ngroup = \"w\"\n[kafka.topics]\nincidents = \"w.incidents\"\nfixes = \"w.fixes\"\n",
        broker.addr
    );
    let job = root.join("job.toml");
    let text = format!(
        "[[sources]]\npaths = [{:?}]\n[metrics]\nenabled = false\n{kafka}[kafka.produce]\nincidents = true\n",
        log.display().to_string()
    );
    std::fs::write(&job, text).expect("job spec");
    let plan = hephaestus::spec::Plan::load(
        &job,
        hephaestus::spec::Overrides {
            no_metrics: true,
            // Not stdout: the test run's stdout is the test runner's.
            output: Some(root.join("incidents.jsonl")),
            ..Default::default()
        },
    )
    .expect("plan");
    let summary = hephaestus::job::run(plan, Shutdown::default()).expect("job");
    assert_eq!(summary.incidents, 1);

    // Someone else's garbage on the topic.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("producer");
    producer
        .send(
            BaseRecord::to("w.incidents")
                .key("x")
                .payload("{not an incident"),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    producer.flush(Duration::from_secs(10)).expect("flush");

    let spec = root.join("worker.toml");
    let text = format!(
        "[metrics]\nenabled = false\n{kafka}[kafka.produce]\nfixes = true\n\n[model]\nenabled = true\nreports_dir = \"reports\"\n\
         [model.repository]\npath = {:?}\ntest_command = \"python3 -m unittest -q test_calc\"\n",
        repo.display().to_string()
    );
    std::fs::write(&spec, text).expect("worker spec");
    let options = WorkerOptions {
        exit_when_idle: Some(Duration::from_secs(4)),
        no_metrics: true,
    };
    let w = worker::run(&spec, &options, &Shutdown::default()).expect("worker");
    assert_eq!((w.malformed, w.model.validated), (1, 1), "{w:?}");
    assert!(w.consumed >= 2, "{w:?}");

    let fixes = read_topic(&broker.addr, "w.fixes", 1);
    let record: Value = serde_json::from_slice(&fixes[0].payload).expect("fix record");
    assert_eq!(record["outcome"], "validated", "{record:#}");
    assert_eq!(
        fixes[0].key,
        record["fingerprint"]
            .as_str()
            .unwrap_or_default()
            .as_bytes()
    );
    assert!(
        root.join("reports")
            .join(format!(
                "{}.md",
                record["fingerprint"].as_str().unwrap_or_default()
            ))
            .is_file()
    );
    let done: i64 = committed(&broker.addr, "w-worker", "w.incidents")
        .iter()
        .sum();
    assert_eq!(
        done as u64, w.consumed,
        "every consumed record committed after the work"
    );
}
