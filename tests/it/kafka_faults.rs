//! Kafka under faults: the job SIGKILLed mid-run and started again (nothing lost, duplicates
//! bounded by the uncommitted window), and the broker going away mid-run (the job waits,
//! resumes, loses nothing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hephaestus::commands::replay::{self, Request};
use hephaestus::core::shutdown::Shutdown;
use hephaestus::kafka::KafkaConfig;
use rdkafka::mocking::MockCluster;
use serde_json::Value;

use crate::broker::{Broker, committed, read_topic, read_until_quiet};
use crate::common::{
    Reaped, Rng, files_with_ext, latest_counts, plan, root, run_plan, run_until, summary_of,
};

/// `services` log files of `lines` lines each: info noise, four message errors with numeric
/// variables (their templates do not depend on arrival order) and two Java exceptions.
fn generate(dir: &Path, services: usize, lines: usize) -> Vec<PathBuf> {
    let mut rng = Rng(7);
    (0..services)
        .map(|s| {
            let mut out = String::new();
            for i in 0..lines {
                let ms = i as u64 * 10;
                let ts = format!("2024-03-01 12:{:02}:{:02}.{:03}", ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
                let n = rng.below(100_000);
                let line = match rng.below(20) {
                    0..=9 => format!("INFO  [exec-{s}] com.shop.Api - GET /items/{n} 200 {}ms", n % 90),
                    10..=11 => format!("ERROR [exec-{s}] com.shop.Pay - payment {n} declined by gateway {}", n % 7),
                    12 => format!("ERROR [exec-{s}] com.shop.Db - connection to db-{} refused after {n} ms", n % 3),
                    13 => format!("ERROR [exec-{s}] com.shop.Cache - cache node {} unreachable", n % 5),
                    14..=15 => format!("WARN  [exec-{s}] com.shop.Db - slow query took {n} ms"),
                    16 => format!("ERROR [exec-{s}] com.shop.Api - quota {n} exceeded for tenant {}", n % 11),
                    _ => {
                        let ty = if n.is_multiple_of(2) { "java.lang.IllegalStateException" } else { "java.io.IOException" };
                        format!(
                            "ERROR [exec-{s}] com.shop.Api - request {n} failed\n{ty}: pool {n} exhausted\n\
                             \tat com.shop.Pool.get(Pool.java:42)\n\tat com.shop.Api.handle(Api.java:10)\n\
                             \tat java.base/java.lang.Thread.run(Thread.java:833)"
                        )
                    }
                };
                out.push_str(&format!("{ts} {line}\n"));
            }
            let path = dir.join(format!("svc{s}.log"));
            std::fs::write(&path, out).expect("write log");
            path
        })
        .collect()
}

fn replay_request(addr: &str, files: Vec<PathBuf>, rate: Option<f64>) -> Request {
    Request {
        files,
        kafka: KafkaConfig {
            brokers: addr.into(),
            ..KafkaConfig::default()
        },
        topic: "raw".into(),
        partitions: 4,
        replication: 1,
        rate,
    }
}

/// The file replay of `files`: (error events, final count per fingerprint).
fn file_counts(files: &[PathBuf]) -> (u64, BTreeMap<String, u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("files.toml");
    std::fs::write(
        &spec,
        "[job]\nworkers = 2\n[[sources]]\npaths = [\"-\"]\nservice = \"shop\"\n",
    )
    .expect("spec");
    let out = run_plan(plan(&spec, files, 2, dir.path()), dir.path());
    let finals: Vec<Value> = out
        .incidents
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    (out.summary.error_events, latest_counts(finals))
}

/// Events counted more than once per incident, asserting the incidents are those of the file
/// replay and that none lost an event.
fn counted_twice(expected: &BTreeMap<String, u64>, counts: &BTreeMap<String, u64>) -> u64 {
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "same incidents"
    );
    let mut twice = 0;
    for (fp, want) in expected {
        let got = counts[fp];
        assert!(
            got >= *want,
            "incident {fp}: {got} counted, {want} error events (lost some)"
        );
        twice += got - want;
    }
    twice
}

fn kafka_spec(dir: &Path, addr: &str, group: &str) -> PathBuf {
    let path = dir.join(format!("{group}.toml"));
    let state = dir.join("state");
    let text = format!(
        "[job]\nname = \"{group}\"\nworkers = 2\ncheckpoint = \"500ms\"\nstate_dir = \"{}\"\n\
         [[sources]]\ntopic = \"raw\"\nservice = \"shop\"\n\
         [kafka]\nbrokers = \"{addr}\"\ngroup = \"{group}\"\n\
         [kafka.topics]\nincidents = \"{group}.incidents\"\n[kafka.produce]\nincidents = true\n",
        state.display()
    );
    std::fs::write(&path, text).expect("write spec");
    path
}

/// The job as a process, the way an operator runs it.
fn spawn(spec: &Path, out: &Path) -> Reaped {
    let child = Command::new(env!("CARGO_BIN_EXE_hephaestus"))
        .arg("run")
        .arg(spec)
        .args(["--no-metrics", "--exit-when-idle", "4", "--output"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn job");
    Reaped(Some(child))
}

#[test]
fn a_job_killed_mid_run_and_restarted_loses_nothing() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(dir.path(), 4, 40_000);
    let total_lines: usize = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .expect("read log")
                .lines()
                .count()
        })
        .sum();
    let (error_events, expected) = file_counts(&files);
    assert!(expected.len() >= 6 && error_events > 10_000);

    // Load at 20k lines/s while the job runs; SIGKILL it as soon as it has committed offsets
    // (its first checkpoints are done and it is reading on), then start it again.
    let req = replay_request(&broker.addr, files, Some(20_000.0));
    let producer = std::thread::spawn(move || replay::replay(&req, &Shutdown::default()));
    std::thread::sleep(Duration::from_millis(300));
    let spec = kafka_spec(dir.path(), &broker.addr, "crash");
    let mut first = spawn(&spec, &dir.path().join("run1.jsonl"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while committed(&broker.addr, "crash", "raw").iter().sum::<i64>() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never committed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(700));
    first.child().kill().expect("SIGKILL");
    first.child().wait().expect("reap");
    let resume_at = committed(&broker.addr, "crash", "raw");
    let committed_lines: i64 = resume_at.iter().sum();

    let second = spawn(&spec, &dir.path().join("run2.jsonl"));
    let sent = producer.join().expect("producer thread").expect("replay");
    let run2 = second.take().wait_with_output().expect("second run");
    let stderr = String::from_utf8_lossy(&run2.stderr);
    assert!(run2.status.success(), "{stderr}");
    assert_eq!(sent.lines, total_lines as u64);

    // The second run read exactly the uncommitted window, once.
    let summary = summary_of(&stderr);
    let window = summary["lines"].as_u64().expect("lines");
    assert!(
        committed_lines > 0,
        "the first run committed nothing before the kill: {resume_at:?}"
    );
    assert_eq!(
        window,
        sent.lines - committed_lines as u64,
        "resumed at the committed offsets"
    );
    assert!(window < sent.lines, "the first run was killed mid-run");

    // Every error event is counted; what the first run had counted past its last checkpoint is
    // counted again, and that can only come from the window the second run re-read.
    let topic = read_until_quiet(&broker.addr, "crash.incidents");
    let counts = latest_counts(
        topic
            .iter()
            .map(|(_, _, p)| serde_json::from_slice(p).expect("JSON")),
    );
    let twice = counted_twice(&expected, &counts);
    let second_events = summary["error_events"].as_u64().expect("error events");
    eprintln!(
        "SIGKILL mid-run: resumed at offsets {resume_at:?}; re-read {window} of {} lines \
         ({second_events} error events); {twice} of {error_events} error events counted twice",
        sent.lines
    );
    assert!(
        twice <= second_events,
        "duplicates come only from the re-read window"
    );
    let counted: u64 = counts.values().sum();
    crate::common::reliability(
        "job killed with SIGKILL mid-run, restarted (Kafka source, checkpoints)",
        &format!(
            "SIGKILL after the first commits; {} lines at 20 k lines/s",
            sent.lines
        ),
        (error_events, counted, 0, twice),
    );
}

#[test]
fn the_job_waits_out_a_broker_outage_and_loses_nothing() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let addr = cluster.bootstrap_servers();
    cluster.create_topic("raw", 4, 1).expect("create topic");
    let logs = files_with_ext(&root().join("fixtures/logs"), "log");
    let (_, expected) = file_counts(&logs);

    let req = replay_request(&addr, logs, Some(150.0));
    let producer = std::thread::spawn(move || replay::replay(&req, &Shutdown::default()));
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = kafka_spec(dir.path(), &addr, "outage");
    let p = plan(&spec, &[], 2, dir.path());
    let out_dir = dir.path().to_path_buf();
    let stop = Shutdown::default();
    let job = {
        let stop = stop.clone();
        std::thread::spawn(move || run_until(p, &out_dir, stop))
    };

    std::thread::sleep(Duration::from_millis(1500));
    cluster.broker_down(-1).expect("broker down");
    // The mock broker closes its listener while down and listens on the same port again when
    // up: hold the port meanwhile, or another test of this binary binding an ephemeral port may
    // take it and the broker never comes back.
    let hold = addr.parse::<std::net::SocketAddr>().ok().and_then(|a| {
        (0..50).find_map(|_| {
            std::net::TcpListener::bind(a).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(20));
                None
            })
        })
    });
    std::thread::sleep(Duration::from_secs(3));
    drop(hold);
    cluster.broker_up(-1).expect("broker up");

    // Once everything sent has been delivered and the job has committed all of it, stop it.
    let sent = producer.join().expect("producer thread").expect("replay");
    // Seconds when the machine is free; far more when other jobs load both cores.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while committed(&addr, "outage", "raw").iter().sum::<i64>() < sent.lines as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not catch up after the outage"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.trigger();
    let out = job.join().expect("job thread");
    assert_eq!(out.summary.lines, sent.lines, "every line read once");
    let finals = latest_counts(
        out.incidents
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON")),
    );
    assert_eq!(
        finals, expected,
        "same incidents and counts as the file replay"
    );
    let topic = read_topic(&addr, "outage.incidents", out.incidents.len());
    assert_eq!(
        topic.len(),
        out.incidents.len(),
        "every incident update delivered"
    );
    let want: u64 = expected.values().sum();
    let got: u64 = finals.values().sum();
    crate::common::reliability(
        "Kafka broker stopped and restarted mid-run",
        &format!(
            "broker down for 3 s while {} lines were replayed",
            sent.lines
        ),
        (
            want,
            got,
            want.saturating_sub(got),
            got.saturating_sub(want),
        ),
    );
}

#[test]
fn a_full_output_disk_stops_the_job_and_a_restart_loses_nothing() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(dir.path(), 2, 5_000);
    let (error_events, expected) = file_counts(&files);
    let sent = replay::replay(
        &replay_request(&broker.addr, files, None),
        &Shutdown::default(),
    )
    .expect("replay");
    let spec = dir.path().join("disk.toml");
    std::fs::write(
        &spec,
        format!(
            "[job]\nname = \"disk\"\nworkers = 2\ncheckpoint = \"200ms\"\nstate_dir = \"{}\"\n\
             [[sources]]\ntopic = \"raw\"\nservice = \"shop\"\n\
             [kafka]\nbrokers = \"{}\"\ngroup = \"disk\"\n",
            dir.path().join("state").display(),
            broker.addr
        ),
    )
    .expect("spec");

    // Run 1 writes its incidents to /dev/full (every write fails with ENOSPC): the job stops
    // with the reason, and what it committed is only what it had written (nothing).
    let run1 = spawn(&spec, Path::new("/dev/full"))
        .take()
        .wait_with_output()
        .expect("run 1");
    let stderr = String::from_utf8_lossy(&run1.stderr);
    assert!(!run1.status.success(), "{stderr}");
    assert!(
        stderr.contains("writing incidents: No space left on device"),
        "{stderr}"
    );
    let committed_lines: i64 = committed(&broker.addr, "disk", "raw").iter().sum();
    assert!(
        (committed_lines as u64) < sent.lines,
        "run 1 committed past what it could not write: {committed_lines} of {}",
        sent.lines
    );

    // Run 2, the disk freed: resumes at the committed offsets, and every error event is in an
    // incident; what run 1 had checkpointed is counted again only from the re-read window.
    let out2 = dir.path().join("run2.jsonl");
    let run2 = spawn(&spec, &out2)
        .take()
        .wait_with_output()
        .expect("run 2");
    let stderr = String::from_utf8_lossy(&run2.stderr);
    assert!(run2.status.success(), "{stderr}");
    let summary = summary_of(&stderr);
    assert_eq!(
        summary["lines"].as_u64(),
        Some(sent.lines - committed_lines as u64),
        "run 2 resumed at the committed offsets"
    );
    let counts = latest_counts(
        std::fs::read_to_string(&out2)
            .expect("run 2 output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON")),
    );
    let twice = counted_twice(&expected, &counts);
    let second_events = summary["error_events"].as_u64().expect("error events");
    assert!(
        twice <= second_events,
        "duplicates only from the re-read window"
    );
    crate::common::reliability(
        "output disk full (incidents file), job restarted with room (Kafka source)",
        &format!(
            "incidents written to /dev/full (ENOSPC); {} lines; run 1 committed {committed_lines}",
            sent.lines
        ),
        (error_events, counts.values().sum(), 0, twice),
    );
}
