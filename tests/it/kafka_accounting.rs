//! What the Kafka fault tests share: generated logs, the file replay they are compared with,
//! per-position accounting of error events, and the job as a process stopped on a condition.
//!
//! In: a broker address and a directory. Out: expected counts, (lost, duplicated) pairs and the
//! job's stderr. No state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hephaestus::commands::replay::Request;
use hephaestus::core::cut::Restore;
use hephaestus::core::epoch::KAFKA_SOURCE_BASE;
use hephaestus::kafka::KafkaConfig;
use serde_json::Value;

use crate::broker::{committed, read_all};
use crate::common::{Reaped, Rng, latest_counts, plan, run_plan};

/// `services` log files of `lines` lines each: info noise, four message errors with numeric
/// variables (their templates do not depend on arrival order) and two Java exceptions.
pub fn generate(dir: &Path, services: usize, lines: usize) -> Vec<PathBuf> {
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

pub fn replay_request(addr: &str, files: Vec<PathBuf>, rate: Option<f64>) -> Request {
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
pub fn file_counts(files: &[PathBuf]) -> (u64, BTreeMap<String, u64>) {
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

/// (lost, duplicated) error events over the incidents, per incident (an event lost in one
/// incident and one doubled in another do not cancel), asserting they are the file replay's.
pub fn compare(expected: &BTreeMap<String, u64>, counts: &BTreeMap<String, u64>) -> (u64, u64) {
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "same incidents"
    );
    expected.iter().fold((0, 0), |(lost, twice), (fp, want)| {
        let got = counts[fp];
        (
            lost + want.saturating_sub(got),
            twice + got.saturating_sub(*want),
        )
    })
}

/// The (partition, offset) of every error line sent to `raw`: each `ERROR` line (the lines of an
/// exception join the `ERROR` line before them), read back from the topic.
pub fn sent_errors(addr: &str) -> BTreeSet<(i64, i64)> {
    read_all(addr, "raw")
        .into_iter()
        .filter(|r| r.payload.windows(7).any(|w| w == b" ERROR "))
        .map(|r| (r.partition as i64, r.offset))
        .collect()
}

/// Positions of the error events on an errors topic, as (partition, offset), one per record.
pub fn seen_errors(addr: &str, topic: &str) -> Vec<(i64, i64)> {
    read_all(addr, topic)
        .iter()
        .map(|r| {
            let e: Value = serde_json::from_slice(&r.payload).expect("error event JSON");
            let pos = &e["record"]["pos"];
            let source = pos["source"].as_i64().expect("source");
            let offset = pos["offset"].as_i64().expect("offset");
            (source - i64::from(KAFKA_SOURCE_BASE), offset)
        })
        .collect()
}

/// (lost, duplicated) error events on the errors topic, each position counted; asserts that
/// nothing arrived that was not sent.
pub fn account(sent: &BTreeSet<(i64, i64)>, seen: &[(i64, i64)]) -> (u64, u64) {
    let mut times: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for p in seen {
        *times.entry(*p).or_default() += 1;
    }
    let stray: Vec<_> = times.keys().filter(|p| !sent.contains(p)).take(5).collect();
    assert!(
        stray.is_empty(),
        "error events at positions never sent: {stray:?}"
    );
    let lost = sent.iter().filter(|p| !times.contains_key(p)).count() as u64;
    (lost, times.values().map(|n| n - 1).sum())
}

/// A job process, the way an operator runs it, its stderr going to a file (a pipe nobody reads
/// would block it past 64 KiB).
pub struct Job {
    proc: Reaped,
    log: PathBuf,
}

impl Job {
    /// `hephaestus run SPEC --no-metrics --output OUT EXTRA…`, stderr to `log`.
    pub fn spawn(spec: &Path, out: &Path, log: &Path, extra: &[String]) -> Job {
        let err = std::fs::File::create(log).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_hephaestus"))
            .arg("run")
            .arg(spec)
            .args(["--no-metrics", "--output"])
            .arg(out)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn job");
        Job {
            proc: Reaped(Some(child)),
            log: log.to_path_buf(),
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (`-INT`, `-KILL`…).
    pub fn signal(&mut self, signal: &str) {
        let pid = self.proc.child().id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill {signal} {pid}");
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.proc.child().try_wait().expect("poll job")
    }

    /// Waits for the exit: (status, stderr).
    pub fn wait(self) -> (std::process::ExitStatus, String) {
        let status = self.proc.take().wait().expect("wait for job");
        (
            status,
            std::fs::read_to_string(&self.log).unwrap_or_default(),
        )
    }
}

/// Waits until `group` has committed everything sent, failing the test when a job exits first
/// or after `secs`.
pub fn caught_up(jobs: &mut [&mut Job], addr: &str, group: &str, sent: u64, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while committed(addr, group, "raw").iter().sum::<i64>() < sent as i64 {
        for job in jobs.iter_mut() {
            if let Some(status) = job.try_wait() {
                panic!(
                    "a job exited ({status}) before reading everything: {}",
                    job.stderr()
                );
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{group}: the job did not commit all {sent} lines in {secs} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Once `group` has committed everything sent, asks the job to stop (SIGINT, as Ctrl-C) and
/// returns its stderr, asserting a clean exit.
pub fn stop_when_caught_up(mut job: Job, addr: &str, group: &str, sent: u64, secs: u64) -> String {
    caught_up(&mut [&mut job], addr, group, sent, secs);
    job.signal("-INT");
    let (status, stderr) = job.wait();
    assert!(status.success(), "{stderr}");
    stderr
}

/// Where a restart resumes: the offsets of the newest complete cut in `state`, summed.
pub fn cut_lines(state: &Path) -> u64 {
    let restore = Restore::find(&[state], Some(state)).expect("state dir");
    let (_, cut) = restore.cut.expect("a complete cut");
    cut.offsets.values().sum::<i64>() as u64
}

pub fn kafka_spec(dir: &Path, addr: &str, group: &str) -> PathBuf {
    let path = dir.join(format!("{group}.toml"));
    let state = dir.join("state");
    let text = format!(
        "[job]\nname = \"{group}\"\nworkers = 2\ncheckpoint = \"500ms\"\nstate_dir = \"{}\"\n\
         [[sources]]\ntopic = \"raw\"\nservice = \"shop\"\n\
         [kafka]\nbrokers = \"{addr}\"\ngroup = \"{group}\"\n\
         [kafka.topics]\nincidents = \"{group}.incidents\"\nerrors = \"{group}.errors\"\n\
         [kafka.produce]\nincidents = true\nerrors = true\n",
        state.display()
    );
    std::fs::write(&path, text).expect("write spec");
    path
}
