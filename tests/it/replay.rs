//! Replay pacing and the load generator: `--loop` reads inputs K times, `--rate` and
//! `--speedup` pace the source (lower bounds on the time taken: pacing is behaviour, not
//! speed), live inputs refuse them, and `generate` is reproducible.

use std::path::PathBuf;

use hephaestus::source::pace::Pacing;
use hephaestus::spec::{Overrides, Plan};

use crate::common::root;

fn run(input: &std::path::Path, pacing: Pacing) -> hephaestus::job::Summary {
    let dir = tempfile::tempdir().expect("tempdir");
    let ov = Overrides {
        inputs: vec![input.display().to_string()],
        output: Some(dir.path().join("incidents.jsonl")),
        dead_letters: Some(dir.path().join("dead.jsonl")),
        no_metrics: true,
        pacing,
        ..Overrides::default()
    };
    let plan = Plan::load(&root().join("dataflows/bench.toml"), ov).expect("plan");
    hephaestus::job::run(plan, hephaestus::core::shutdown::Shutdown::default()).expect("job")
}

fn generated(lines: u64, step_ms: i64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gen.log");
    let spec = hephaestus::commands::generate::GenSpec {
        lines,
        seed: 5,
        error_share: 0.1,
        error_kinds: 8,
        templates: 50,
        start_ms: 1_767_225_600_000,
        step_ms,
        unique: false,
    };
    let mut f = std::fs::File::create(&path).expect("file");
    hephaestus::commands::generate::generate(&spec, &mut f).expect("generate");
    (dir, path)
}

#[test]
fn loops_read_every_input_k_times() {
    let log = root().join("fixtures/logs/python.log");
    let once = run(&log, Pacing::default());
    let thrice = run(
        &log,
        Pacing {
            loops: 3,
            ..Pacing::default()
        },
    );
    assert_eq!(
        (thrice.lines, thrice.error_events),
        (3 * once.lines, 3 * once.error_events)
    );
    assert_eq!(
        thrice.incidents, once.incidents,
        "the same errors, three times as often"
    );
}

#[test]
fn a_rate_paces_the_replay_and_is_reported() {
    let (_dir, log) = generated(1000, 1);
    let s = run(
        &log,
        Pacing {
            rate: Some(4000.0),
            ..Pacing::default()
        },
    );
    let r = s.rate.clone().expect("rate report");
    assert_eq!(r.asked, 4000.0);
    assert!(
        s.seconds >= 0.2,
        "1000 lines at 4000/s took {} s",
        s.seconds
    );
    assert!(r.achieved <= 4000.0 * 1.05, "{r:?}");
    assert!(
        s.event_to_incident.events > 0 && s.peak_rss_bytes > 0,
        "{s:?}"
    );
}

#[test]
fn speedup_follows_the_records_timestamps() {
    // 300 lines 50 ms apart: 15 s of log time, 1 s at 15x.
    let (_dir, log) = generated(300, 50);
    let s = run(
        &log,
        Pacing {
            speedup: Some(15.0),
            ..Pacing::default()
        },
    );
    assert!(s.seconds >= 0.8, "{} s", s.seconds);
    assert_eq!(s.lines, 300);
}

#[test]
fn live_inputs_refuse_pacing_and_bad_values_are_refused() {
    let spec = root().join("dataflows/bench.toml");
    let live = Overrides {
        inputs: vec!["-".into()],
        pacing: Pacing {
            rate: Some(10.0),
            ..Pacing::default()
        },
        ..Overrides::default()
    };
    let Err(e) = Plan::load(&spec, live) else {
        panic!("a paced stdin was accepted")
    };
    let e = e.to_string();
    assert!(e.contains("do not apply to live inputs"), "{e}");
    let bad = Overrides {
        pacing: Pacing {
            speedup: Some(0.0),
            ..Pacing::default()
        },
        ..Overrides::default()
    };
    assert!(Plan::load(&spec, bad).is_err());
}

#[test]
fn generate_is_reproducible() {
    let make = |seed: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hephaestus"))
            .args(["generate", "--lines", "500", "--seed", seed])
            .output()
            .expect("generate");
        assert!(out.status.success());
        out.stdout
    };
    assert_eq!(make("3"), make("3"));
    assert_ne!(make("3"), make("4"));
}
