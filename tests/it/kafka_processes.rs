//! One process of a two-process Kafka job killed with SIGKILL: the other stops within seconds
//! with a clear error (no hang), and a restart of both from the shared checkpoints loses
//! nothing and counts nothing twice.

use std::time::{Duration, Instant};

use hephaestus::commands::replay;
use hephaestus::core::shutdown::Shutdown;

use crate::broker::{Broker, committed};
use crate::common::{cluster_port, latest_counts};
use crate::kafka_accounting::{
    Job, account, caught_up, compare, cut_lines, file_counts, generate, kafka_spec, replay_request,
    seen_errors, sent_errors,
};

/// `--processes 2 --process I --hostfile H --workers 1`.
fn cluster_args(i: usize, hostfile: &std::path::Path) -> Vec<String> {
    [
        "--processes",
        "2",
        "--process",
        &i.to_string(),
        "--workers",
        "1",
        "--hostfile",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([hostfile.display().to_string()])
    .collect()
}

fn hostfile(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let hosts = format!(
        "127.0.0.1:{}\n127.0.0.1:{}\n",
        cluster_port(),
        cluster_port()
    );
    std::fs::write(&path, hosts).expect("hostfile");
    path
}

#[test]
fn a_process_killed_stops_its_peer_and_a_restart_of_both_loses_nothing() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let files = generate(d, 4, 20_000);
    let (error_events, expected) = file_counts(&files);
    let req = replay_request(&broker.addr, files, Some(20_000.0));
    let producer = std::thread::spawn(move || replay::replay(&req, &Shutdown::default()));
    std::thread::sleep(Duration::from_millis(300));

    let spec = kafka_spec(d, &broker.addr, "pair");
    let out = d.join("incidents.jsonl");
    let hosts = hostfile(d, "hosts1.txt");
    let start = |i: usize, run: usize, hosts: &std::path::Path| {
        let log = d.join(format!("p{i}-run{run}.log"));
        let out = if i == 0 {
            out.clone()
        } else {
            d.join("p1.jsonl")
        };
        Job::spawn(&spec, &out, &log, &cluster_args(i, hosts))
    };
    let mut p1 = start(1, 1, &hosts);
    let mut p0 = start(0, 1, &hosts);
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed(&broker.addr, "pair", "raw").iter().sum::<i64>() == 0 {
        assert!(Instant::now() < deadline, "the job never committed");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(700));

    // Process 1 dies; process 0 must notice and stop on its own, failing, with a reason.
    p1.signal("-KILL");
    let _ = p1.wait();
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = p0.try_wait() {
            break status;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "process 0 still running 20 s after its peer died: {}",
            p0.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopped_after = killed.elapsed();
    let stderr = p0.stderr();
    assert!(
        !status.success(),
        "process 0 cannot finish without its peer: {stderr}"
    );
    assert!(
        stderr.contains("lost its connection to process 1") && !stderr.contains("panicked"),
        "a clear reason: {stderr}"
    );
    let at_cut = cut_lines(&d.join("state"));

    // Both again, new ports, from the shared state directory.
    let hosts = hostfile(d, "hosts2.txt");
    let mut p1 = start(1, 2, &hosts);
    let mut p0 = start(0, 2, &hosts);
    let sent = producer.join().expect("producer thread").expect("replay");
    caught_up(
        &mut [&mut p0, &mut p1],
        &broker.addr,
        "pair",
        sent.lines,
        180,
    );
    p0.signal("-INT");
    p1.signal("-INT");
    let ((s0, e0), (s1, e1)) = (p0.wait(), p1.wait());
    assert!(
        s0.success() && s1.success(),
        "process 0: {e0}\nprocess 1: {e1}"
    );

    let counts = latest_counts(
        std::fs::read_to_string(&out)
            .expect("output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON")),
    );
    let (lost, twice) = compare(&expected, &counts);
    assert_eq!((lost, twice), (0, 0), "every error event counted once");
    let sent_err = sent_errors(&broker.addr);
    assert_eq!(
        sent_err.len() as u64,
        error_events,
        "one event per ERROR line"
    );
    let seen = seen_errors(&broker.addr, "pair.errors");
    let (err_lost, err_twice) = account(&sent_err, &seen);
    assert_eq!(err_lost, 0, "no error event lost");
    eprintln!(
        "process 1 killed: process 0 stopped {stopped_after:?} later; restart resumed at the cut \
         ({at_cut} of {} lines); errors topic: {err_twice} produced twice",
        sent.lines
    );
    crate::common::reliability(
        "one of two processes killed with SIGKILL, both restarted (Kafka source): incidents file",
        &format!(
            "SIGKILL of process 1 after the first commits; process 0 stopped {:.1} s later, \
             failing; {} lines at 20 k lines/s",
            stopped_after.as_secs_f64(),
            sent.lines
        ),
        (error_events, counts.values().sum(), lost, twice),
    );
}
