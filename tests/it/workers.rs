//! The dataflow gives the same incidents for any number of workers, and the same as a plain
//! sequential implementation of the same logic (`reference.rs`) on seeded random input.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::common::{Rng, files_with_ext, plan, root, run, run_plan};
use crate::reference;

#[test]
fn one_and_four_workers_write_identical_incidents() {
    let logs = files_with_ext(&root().join("fixtures/logs"), "log");
    let spec = root().join("fixtures/golden.toml");
    let one = run(&spec, &logs, 1);
    let four = run(&spec, &logs, 4);
    assert!(
        one.incidents.len() >= 20,
        "the fixtures make incidents: {}",
        one.incidents.len()
    );
    assert_eq!(one.incidents, four.incidents);
    assert_eq!(one.dead, four.dead);
    assert_eq!(one.summary.error_events, four.summary.error_events);
}

const INFO: &[&str] = &[
    "GET /api/items/{} 200 {}ms",
    "cache hit ratio {}%",
    "user {} logged in from 10.0.{}.7",
    "scheduled job {} finished",
];
const ERRORS: &[&str] = &[
    "payment {} declined: insufficient funds",
    "connection to db-{} refused after {} retries",
    "timeout calling inventory service after {}ms",
    "disk /dev/sd{} is {}% full",
    "queue orders-{} is backed up ({} messages)",
];

fn fill(template: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            let _ = write!(out, "{}", rng.below(5000));
        }
        out.push_str(part);
    }
    out
}

fn stamp(ms: i64) -> String {
    let t = hephaestus::core::time::format_rfc3339(ms);
    format!("{} {},{}", &t[..10], &t[11..19], &t[20..23])
}

fn java_trace(rng: &mut Rng, out: &mut Vec<String>, t: i64) {
    let (ty, method) = rng.pick(&[
        ("java.lang.NullPointerException", "total"),
        ("java.lang.IllegalStateException", "total"),
        ("java.io.IOException", "flush"),
    ]);
    out.push(format!(
        "{} ERROR [exec-{}] com.shop.Api: request {} failed",
        stamp(t),
        rng.below(9),
        rng.below(99_999)
    ));
    out.push(format!("{ty}: id {} missing", rng.below(99_999)));
    out.push(format!("\tat com.shop.Service.{method}(Service.java:57)"));
    out.push(format!(
        "\tat jdk.internal.reflect.GeneratedMethodAccessor{}.invoke(Unknown Source)",
        rng.below(300)
    ));
    out.push(format!(
        "\tat java.base/java.lang.Thread.run(Thread.java:{})",
        800 + rng.below(60)
    ));
}

fn python_trace(rng: &mut Rng, out: &mut Vec<String>, t: i64) {
    let (ty, func) = rng.pick(&[("KeyError", "lookup"), ("ZeroDivisionError", "ratio")]);
    out.push(format!(
        "{} ERROR [worker] job {} crashed",
        stamp(t),
        rng.below(9999)
    ));
    out.push("Traceback (most recent call last):".into());
    out.push(format!("  File \"/srv/app/{func}.py\", line 12, in {func}"));
    out.push("    return table[key] / count".into());
    out.push(format!("{ty}: '{}'", rng.below(500)));
}

/// Mixed logs with errors, traces, bursts and long gaps (so incidents resolve and regress).
fn generate(seed: u64, dir: &Path, files: usize, lines: usize) -> Vec<PathBuf> {
    let mut rng = Rng(seed);
    let mut paths = Vec::new();
    for f in 0..files {
        let mut t: i64 = 1_709_294_400_000 + f as i64 * 17_000;
        let mut out = Vec::new();
        while out.len() < lines {
            t += rng.below(4000) as i64;
            if rng.below(120) == 0 {
                t += 20 * 60_000 + rng.below(20 * 60_000) as i64;
            }
            match rng.below(100) {
                0..=54 => out.push(format!("{} INFO [main] com.shop.Web: {}", stamp(t), {
                    let tpl: &str = rng.pick(INFO);
                    fill(tpl, &mut rng)
                })),
                55..=79 => out.push(format!("{} ERROR [main] com.shop.Web: {}", stamp(t), {
                    let tpl: &str = rng.pick(ERRORS);
                    fill(tpl, &mut rng)
                })),
                80..=87 => java_trace(&mut rng, &mut out, t),
                88..=92 => python_trace(&mut rng, &mut out, t),
                93 => {
                    // Words in one slot: two users are a fork, the third merges the templates.
                    let user = rng.pick(&["alice", "bob", "carol", "dave", "erin"]);
                    out.push(format!(
                        "{} ERROR [main] com.shop.Auth: session for {user} expired",
                        stamp(t)
                    ));
                }
                94..=96 => {
                    let iso = hephaestus::core::time::format_rfc3339(t);
                    out.push(format!(
                        r#"{{"ts":"{iso}","level":"error","service":"billing","msg":"{}"}}"#,
                        {
                            let tpl: &str = rng.pick(ERRORS);
                            fill(tpl, &mut rng)
                        }
                    ));
                }
                _ => {
                    let template = rng.pick(ERRORS);
                    for _ in 0..(20 + rng.below(30)) {
                        t += 40;
                        out.push(format!(
                            "{} ERROR [main] com.shop.Web: {}",
                            stamp(t),
                            fill(template, &mut rng)
                        ));
                    }
                }
            }
        }
        let path = dir.join(format!("gen-{f}.log"));
        std::fs::write(&path, out.join("\n") + "\n").expect("write generated log");
        paths.push(path);
    }
    paths
}

#[test]
fn dataflow_matches_sequential_reference() {
    for seed in [1u64, 2, 3] {
        let dir = tempfile::tempdir().expect("tempdir");
        let inputs = generate(seed, dir.path(), 3, 400 + 150 * seed as usize);
        let (spec, want) = reference_run(
            dir.path(),
            "[job]\nbatch_lines = 13\n\n[[sources]]\npaths = [\"gen-*.log\"]\n\n[incident]\nwindow = \"1m\"\nquiet_period = \"5m\"\nreemit_interval = \"2m\"\nescalate_min = 10\n\n[metrics]\nenabled = false\n",
            &inputs,
        );
        let states: std::collections::BTreeSet<&str> = want
            .iter()
            .filter_map(|l| l.split("\"state\":\"").nth(1))
            .filter_map(|s| s.split('"').next())
            .collect();
        assert!(
            states.len() >= 5 && states.contains("merged"),
            "seed {seed}: the input exercises the lifecycle and template merges, states seen: {states:?}"
        );
        assert_workers_match(
            &spec,
            &inputs,
            &want,
            &[1, 2, 3, 5],
            &format!("seed {seed}"),
        );
    }
}

/// Writes `spec_text` to `dir/spec.toml` and runs the sequential reference on `inputs`: the
/// spec's path and the incident lines the job should write.
fn reference_run(dir: &Path, spec_text: &str, inputs: &[PathBuf]) -> (PathBuf, Vec<String>) {
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, spec_text).expect("write spec");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let want = reference::run(&plan(&spec, inputs, 1, out_dir.path()));
    (spec, want)
}

/// Runs the job with each number of workers; each must write `want`, or the first difference
/// is named.
fn assert_workers_match(
    spec: &Path,
    inputs: &[PathBuf],
    want: &[String],
    workers: &[usize],
    label: &str,
) {
    for &workers in workers {
        let out_dir = tempfile::tempdir().expect("tempdir");
        let got = run_plan(plan(spec, inputs, workers, out_dir.path()), out_dir.path());
        if got.incidents != want {
            let i = want
                .iter()
                .zip(&got.incidents)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len().min(got.incidents.len()));
            panic!(
                "{label}, {workers} workers: {} lines vs reference {}; first difference at {i}:\n  reference: {}\n  dataflow:  {}",
                got.incidents.len(),
                want.len(),
                want.get(i).map_or("<none>", String::as_str),
                got.incidents.get(i).map_or("<none>", String::as_str)
            );
        }
    }
}

/// A replay's records are parsed in chunks on every worker of the process; a record without a
/// timestamp takes the one before it in its input even when that one was parsed elsewhere, in
/// another chunk, or several chunks back (runs of timestamp-less lines longer than a chunk).
/// Epochs of 40 lines are dealt in chunks of 10: longer than the 8 records the dealer parses to
/// find the carried timestamp, so some chunks must continue the state of the worker before.
#[test]
fn lines_without_timestamps_inherit_across_dealt_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(7);
    let mut t = 1_767_225_600_000i64;
    let mut inputs = Vec::new();
    for f in 0..2 {
        let mut out = Vec::new();
        while out.len() < 1500 {
            // Timestamps jump by minutes, so an event given the wrong one lands in another
            // window (and the incident's windows, first and last seen differ).
            t += 30_000 + rng.below(150_000) as i64;
            out.push(format!(
                "{} ERROR [main] com.shop.Web: {}",
                stamp(t),
                fill(rng.pick(ERRORS), &mut rng)
            ));
            let run = match rng.below(4) {
                0 => 0,
                1 => rng.below(4),
                _ => rng.below(40),
            };
            for _ in 0..run {
                out.push(format!("segfault in worker {} (core dumped)", rng.below(3)));
            }
        }
        let path = dir.path().join(format!("bare-{f}.log"));
        std::fs::write(&path, out.join("\n") + "\n").expect("write log");
        inputs.push(path);
    }
    let (spec, want) = reference_run(
        dir.path(),
        "[job]\nbatch_lines = 40\n\n[[sources]]\npaths = [\"bare-*.log\"]\n\n[incident]\nwindow = \"1m\"\nquiet_period = \"10m\"\nreemit_interval = \"2m\"\n\n[metrics]\nenabled = false\n",
        &inputs,
    );
    assert!(
        want.iter().any(|l| l.contains("segfault in worker")),
        "the bare lines make incidents: {} lines",
        want.len()
    );
    assert_workers_match(&spec, &inputs, &want, &[1, 2, 3], "timestamp-less runs");
}
