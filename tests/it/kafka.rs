//! Kafka end to end against a real broker (tansu): the fixture logs replayed into the raw topic
//! give the same incidents as the file replay; the incidents, structured-logs and error-events
//! topics carry the job's records as JSON; two processes share the partitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hephaestus::commands::replay::{self, Request};
use hephaestus::core::record::{ErrorEvent, Incident, LogRecord};
use hephaestus::core::shutdown::Shutdown;
use hephaestus::kafka::KafkaConfig;
use serde_json::Value;

use crate::broker::{Broker, read_topic};
use crate::common::{
    Reaped, cluster_port, files_with_ext, metric_sum, metrics_addr, plan, root, run_plan, scrape,
    stderr_lines,
};

fn logs() -> Vec<PathBuf> {
    files_with_ext(&root().join("fixtures/logs"), "log")
}

/// Replays the fixture logs into `topic` (4 partitions).
pub fn load(addr: &str, topic: &str) -> u64 {
    let req = Request {
        files: logs(),
        kafka: KafkaConfig {
            brokers: addr.into(),
            ..KafkaConfig::default()
        },
        topic: topic.into(),
        partitions: 4,
        replication: 1,
        rate: None,
    };
    let report = replay::replay(&req, &Shutdown::default()).expect("replay into kafka");
    assert_eq!(report.retries, 0);
    report.lines
}

/// A job spec reading `raw` and producing every output to Kafka, under consumer group `group`.
pub fn spec(dir: &Path, addr: &str, group: &str) -> PathBuf {
    let path = dir.join(format!("{group}.toml"));
    let text = format!(
        r#"
[job]
name = "{group}"
workers = 2
[[sources]]
topic = "raw"
service = "local"
[parse]
default_year = 2024
[kafka]
brokers = "{addr}"
group = "{group}"
[kafka.topics]
incidents = "{group}.incidents"
structured = "{group}.structured"
errors = "{group}.errors"
[kafka.produce]
incidents = true
structured = true
errors = true
"#
    );
    std::fs::write(&path, text).expect("write spec");
    path
}

/// The comparable part of each incident's last line: count, first and last seen, title, kind.
fn finals(lines: &[String]) -> BTreeMap<String, Vec<Value>> {
    crate::common::finals(lines)
        .into_iter()
        .map(|(fp, v)| {
            let keep = ["count", "first_seen", "last_seen", "title", "kind"].map(|k| v[k].clone());
            (fp, keep.to_vec())
        })
        .collect()
}

/// The same logs replayed from files (one source, like the topic).
fn file_finals() -> BTreeMap<String, Vec<Value>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("files.toml");
    let text = "[job]\nworkers = 2\n[[sources]]\npaths = [\"-\"]\nservice = \"local\"\n[parse]\ndefault_year = 2024\n";
    std::fs::write(&spec, text).expect("spec");
    let out = run_plan(plan(&spec, &logs(), 2, dir.path()), dir.path());
    finals(&out.incidents)
}

/// Every payload parses as `T` and serializes back to the same JSON.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(records: &[crate::broker::Rec]) {
    for crate::broker::Rec { payload, .. } in records {
        let raw: Value = serde_json::from_slice(payload).expect("JSON payload");
        let typed: T = serde_json::from_slice(payload).expect("typed payload");
        assert_eq!(serde_json::to_value(&typed).expect("serialize"), raw);
    }
}

#[test]
fn kafka_job_matches_file_replay_and_fills_every_topic() {
    let broker = Broker::start();
    let lines = load(&broker.addr, "raw");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = plan(&spec(dir.path(), &broker.addr, "solo"), &[], 2, dir.path());
    p.exit_when_idle = Some(Duration::from_secs(3));
    let out = run_plan(p, dir.path());

    assert_eq!(
        out.summary.lines, lines,
        "every record of the raw topic is read once"
    );
    let expected = file_finals();
    assert!(expected.len() >= 20);
    assert_eq!(
        finals(&out.incidents),
        expected,
        "same incidents as the file replay"
    );

    // The incidents topic: the same JSON objects as the file output, keyed by fingerprint.
    let topic = read_topic(&broker.addr, "solo.incidents", out.incidents.len());
    assert_eq!(topic.len(), out.incidents.len());
    let mut from_topic: Vec<Value> = Vec::new();
    for crate::broker::Rec { key, payload, .. } in &topic {
        let incident: Incident = serde_json::from_slice(payload).expect("incident JSON");
        assert_eq!(key, incident.fingerprint.as_bytes());
        from_topic.push(serde_json::from_slice(payload).expect("JSON"));
    }
    let mut from_file: Vec<Value> = out
        .incidents
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let by_text = |v: &Value| v.to_string();
    from_topic.sort_by_key(by_text);
    from_file.sort_by_key(by_text);
    assert_eq!(from_topic, from_file);

    // Structured records and error events: one record each, JSON that round-trips.
    let structured = read_topic(
        &broker.addr,
        "solo.structured",
        out.summary.records as usize,
    );
    assert_eq!(structured.len() as u64, out.summary.records);
    round_trips::<LogRecord>(&structured);
    let errors = read_topic(
        &broker.addr,
        "solo.errors",
        out.summary.error_events as usize,
    );
    assert_eq!(errors.len() as u64, out.summary.error_events);
    assert!(out.summary.error_events > 100);
    round_trips::<ErrorEvent>(&errors);
}

/// `worker W of N reads `raw` partitions [..]` lines from a process's stderr.
fn assignments(stderr: &str) -> Vec<(usize, Vec<i32>)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("hephaestus: kafka: worker "))
        .map(|rest| {
            let worker = rest
                .split(' ')
                .next()
                .and_then(|w| w.parse().ok())
                .expect("worker");
            let list = rest
                .split('[')
                .nth(1)
                .and_then(|r| r.split(']').next())
                .expect("partitions");
            let parts = list
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            (worker, parts)
        })
        .collect()
}

#[test]
fn two_processes_split_the_partitions_and_match_one() {
    let broker = Broker::start();
    load(&broker.addr, "raw");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut single = plan(&spec(dir.path(), &broker.addr, "one"), &[], 2, dir.path());
    single.exit_when_idle = Some(Duration::from_secs(3));
    let one = run_plan(single, dir.path());

    let two = spec(dir.path(), &broker.addr, "two");
    let hostfile = dir.path().join("hosts.txt");
    std::fs::write(
        &hostfile,
        format!(
            "127.0.0.1:{}\n127.0.0.1:{}\n",
            cluster_port(),
            cluster_port()
        ),
    )
    .expect("hostfile");
    let process = |i: usize| {
        let child = Command::new(env!("CARGO_BIN_EXE_hephaestus"))
            .arg("run")
            .arg(&two)
            .args([
                "--no-metrics",
                "--workers",
                "2",
                "--processes",
                "2",
                "--exit-when-idle",
                "3",
            ])
            .args(["--process", &i.to_string(), "--hostfile"])
            .arg(&hostfile)
            .arg("--output")
            .arg(dir.path().join(format!("p{i}.jsonl")))
            .stdout(Stdio::null())
            // To a file: a pipe read only after the other process exits could fill and block.
            .stderr(std::fs::File::create(dir.path().join(format!("p{i}.stderr"))).expect("stderr"))
            .spawn()
            .expect("spawn process");
        Reaped(Some(child))
    };
    let (p1, p0) = (process(1), process(0));
    let statuses = [p0.take().wait().expect("p0"), p1.take().wait().expect("p1")];
    let mut owner: BTreeMap<i32, usize> = BTreeMap::new();
    for (i, status) in statuses.iter().enumerate() {
        let stderr =
            std::fs::read_to_string(dir.path().join(format!("p{i}.stderr"))).unwrap_or_default();
        assert!(status.success(), "process {i}: {stderr}");
        for (worker, parts) in assignments(&stderr) {
            for p in parts {
                assert!(
                    owner.insert(p, worker).is_none(),
                    "partition {p} read by two workers"
                );
            }
        }
    }
    let expected: BTreeMap<i32, usize> = (0..4).map(|p| (p, p as usize)).collect();
    assert_eq!(
        owner, expected,
        "every partition read by exactly one of the 4 workers"
    );

    let p0 = std::fs::read_to_string(dir.path().join("p0.jsonl")).expect("process 0 output");
    let p0: Vec<String> = p0.lines().map(str::to_string).collect();
    assert!(!one.incidents.is_empty());
    assert_eq!(
        finals(&p0),
        finals(&one.incidents),
        "2 processes × 2 workers = 1 process"
    );
}

/// The job of `spec(dir, addr, group)` as a process with metrics on a free port and `extra`
/// appended to its spec; returns the child and the metrics address.
pub fn spawn_with_metrics(
    dir: &Path,
    addr: &str,
    group: &str,
    extra: &str,
) -> (Reaped, String, std::sync::mpsc::Receiver<String>) {
    let spec = spec(dir, addr, group);
    let mut text = std::fs::read_to_string(&spec).expect("spec");
    text.push_str(extra);
    text.push_str("[metrics]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&spec, text).expect("spec");
    let mut job = Reaped(Some(
        Command::new(env!("CARGO_BIN_EXE_hephaestus"))
            .arg("run")
            .arg(&spec)
            .args(["--exit-when-idle", "30", "--output", "/dev/null"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn job"),
    ));
    let lines = stderr_lines(job.child());
    let addr = metrics_addr(&lines);
    (job, addr, lines)
}

#[test]
fn consumer_lag_rises_while_reading_and_falls_to_zero_once_caught_up() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // A backlog the job takes a while to read, and statistics every 100 ms.
    let files = crate::kafka_accounting::generate(dir.path(), 4, 30_000);
    let req = crate::kafka_accounting::replay_request(&broker.addr, files, None);
    let lines = replay::replay(&req, &Shutdown::default())
        .expect("replay")
        .lines;
    let fast_stats = "[kafka.options]\n\"statistics.interval.ms\" = \"100\"\n";
    let (mut job, addr, stderr) = spawn_with_metrics(dir.path(), &broker.addr, "lag", fast_stats);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut highest = 0.0f64;
    let mut last: Vec<String> = Vec::new();
    let series = loop {
        if let Some(status) = job.child().try_wait().expect("poll job") {
            let said: Vec<String> = stderr.try_iter().collect();
            panic!(
                "the job exited ({status}); lag {last:?}: {}",
                said.join("\n")
            );
        }
        if std::net::TcpStream::connect(&addr).is_err() {
            continue;
        }
        let body = scrape(&addr);
        let series: Vec<String> = body
            .lines()
            .filter(|l| l.starts_with("hephaestus_kafka_consumer_lag{"))
            .map(str::to_string)
            .collect();
        let lag: f64 = series
            .iter()
            .filter_map(|s| s.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum();
        highest = highest.max(lag);
        last = series.clone();
        let read = metric_sum(&body, "hephaestus_ingested_lines_total") as u64;
        // A series per partition with data (librdkafka reports none for an empty one).
        if !series.is_empty() && read == lines && lag == 0.0 && highest > 0.0 {
            break series;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lag never fell to 0 after reading {read} of {lines} lines: {series:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        series.iter().all(|s| s.contains("topic=\"raw\"")),
        "{series:?}"
    );
    eprintln!("consumer lag: up to {highest} records behind, then 0 once caught up");
    let _ = job.child().kill();
}
