//! Kafka client errors: counted by reason in the metric contract, and one the job cannot wait
//! out stops it with the reason and a failed exit, instead of retrying forever.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hephaestus::commands::replay::{self, Request};
use hephaestus::core::shutdown::Shutdown;
use hephaestus::job;
use hephaestus::kafka::KafkaConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::common::{Reaped, files_with_ext, free_port, plan, root, scrape};

fn spec(dir: &Path, brokers: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("errors.toml");
    let text = format!(
        "[job]\nname = \"errs\"\nworkers = 2\n[[sources]]\ntopic = \"raw\"\nservice = \"shop\"\n\
         [kafka]\nbrokers = \"{brokers}\"\ngroup = \"errs\"\n{extra}"
    );
    std::fs::write(&path, text).expect("write spec");
    path
}

/// The value of the first series of `name` whose labels contain `label`, in a scrape.
fn series(body: &str, name: &str, label: &str) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
}

#[test]
fn consumer_errors_are_counted_by_reason() {
    // Nothing listens on this port: every metadata request fails.
    let dead = free_port();
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    let spec = spec(dir.path(), &format!("127.0.0.1:{dead}"), &metrics);
    let mut job = Reaped(Some(
        Command::new(env!("CARGO_BIN_EXE_hephaestus"))
            .arg("run")
            .arg(&spec)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn job"),
    ));
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let counted = loop {
        let body = if std::net::TcpStream::connect(&addr).is_ok() {
            scrape(&addr)
        } else {
            String::new()
        };
        let found = series(&body, "hephaestus_kafka_consumer_errors_total", "reason=\"");
        if let Some(n) = found.filter(|n| *n >= 1.0) {
            break (n, body);
        }
        assert!(
            Instant::now() < deadline,
            "no consumer error counted: {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let pid = job.child().id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let out = job.take().wait_with_output().expect("job");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the job cannot have read its topic: {stderr}"
    );
    assert!(
        stderr.contains("no metadata for topic `raw`"),
        "the reason is said: {stderr}"
    );
    let reasons: Vec<&str> = counted
        .1
        .lines()
        .filter(|l| l.starts_with("hephaestus_kafka_consumer_errors_total"))
        .collect();
    eprintln!("consumer errors while the broker was unreachable: {reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|l| l.contains("reason=\"") && !l.contains("reason=\"\"")),
        "{reasons:?}"
    );
}

#[test]
fn a_fatal_consumer_error_stops_the_job_with_the_reason() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let addr = cluster.bootstrap_servers();
    cluster.create_topic("raw", 2, 1).expect("create topic");
    let req = Request {
        files: files_with_ext(&root().join("fixtures/logs"), "log"),
        kafka: KafkaConfig {
            brokers: addr.clone(),
            ..KafkaConfig::default()
        },
        topic: "raw".into(),
        partitions: 2,
        replication: 1,
        rate: None,
    };
    replay::replay(&req, &Shutdown::default()).expect("replay");
    // Every fetch is refused as if the job's credentials lost the topic's read ACL.
    let refused = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 200];
    cluster.request_errors(RDKafkaApiKey::Fetch, &refused);

    let dir = tempfile::tempdir().expect("tempdir");
    let spec = spec(dir.path(), &addr, "");
    let p = plan(&spec, &[], 2, dir.path());
    // A hang fails the test instead of blocking it: the watchdog stops the job after 60 s.
    let stop = Shutdown::default();
    let watchdog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && !stop.is_triggered() {
                std::thread::sleep(Duration::from_millis(100));
            }
            stop.trigger();
        })
    };
    let started = Instant::now();
    let result = job::run(p, stop.clone());
    let took = started.elapsed();
    stop.trigger();
    watchdog.join().expect("watchdog");
    let err = result.expect_err("the job cannot go on").to_string();
    assert!(
        err.contains("cannot go on") && err.contains("uthoriz"),
        "a clear reason: {err}"
    );
    assert!(
        took < Duration::from_secs(55),
        "stopped by the error, not the watchdog: {took:?}"
    );
}
