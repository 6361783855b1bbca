//! The binary's contract: help, exit codes, one-line errors, the summary.

use std::process::Command;

use crate::common::root;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hephaestus"))
}

#[test]
fn help_explains_every_run_option() {
    let out = bin().args(["run", "--help"]).output().expect("run --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--workers",
        "--input",
        "--output",
        "--dead-letters",
        "--follow",
        "--processes",
        "--process",
        "--hostfile",
        "--no-metrics",
    ] {
        assert!(help.contains(opt), "run --help mentions {opt}");
    }
    let out = bin().arg("--help").output().expect("--help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run") && help.contains("check"));
}

#[test]
fn bad_spec_and_unreadable_input_fail_with_one_line() {
    let out = bin()
        .args(["check"])
        .arg(root().join("fixtures/specs/broken/unknown_key.toml"))
        .output()
        .expect("check");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("workerz"));

    let out = bin()
        .arg("run")
        .arg(root().join("fixtures/golden.toml"))
        .args(["--no-metrics", "--input", "/nonexistent/app.log"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/app.log"));
}

#[test]
fn replay_exits_zero_with_a_summary_even_with_dead_letters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .arg("run")
        .arg(root().join("fixtures/golden.toml"))
        .arg("--no-metrics")
        .arg("--input")
        .arg(root().join("fixtures/bad/binary.log"))
        .arg("--dead-letters")
        .arg(dir.path().join("dead.jsonl"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let v = crate::common::summary_of(&err);
    for key in [
        "lines",
        "bytes",
        "seconds",
        "lines_per_second",
        "error_events",
        "incidents",
        "dead_letters",
    ] {
        assert!(v.get(key).is_some(), "summary has {key}");
    }
    assert_eq!(v["lines"], 5);
    assert_eq!(v["dead_letters"], 2);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("\"fingerprint\""))
            .count() as u64,
        v["incident_updates"].as_u64().expect("n")
    );
}

#[test]
fn a_metrics_port_already_taken_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = crate::common::root().join("fixtures/logs/python.log");
    let job = |listen: &str| {
        let spec = dir.path().join("job.toml");
        std::fs::write(
            &spec,
            format!("[[sources]]\npaths = [{:?}]\n[output]\nincidents = \"incidents.jsonl\"\n[metrics]\nenabled = true\nlisten = \"{listen}\"\n", log.display().to_string()),
        )
        .expect("spec");
        std::process::Command::new(env!("CARGO_BIN_EXE_hephaestus"))
            .arg("run")
            .arg(&spec)
            .output()
            .expect("run")
    };
    let out = job(&addr.to_string());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("in use"),
        "{stderr}"
    );
    // Refused before reading: no output was started, so a rerun has everything to do.
    let incidents = dir.path().join("incidents.jsonl");
    assert!(!incidents.exists(), "the refused job wrote output");

    let out = job("127.0.0.1:0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = crate::common::summary_of(&stderr);
    let events = summary["error_events"].as_u64().expect("error events");
    // Incidents merged into others are counted in the one they joined.
    let counted: u64 = crate::common::latest_counts(
        std::fs::read_to_string(&incidents)
            .expect("incidents")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON")),
    )
    .values()
    .sum();
    assert!(events > 0);
    assert_eq!(counted, events, "every error event in an incident");
    crate::common::reliability(
        "metrics port already taken",
        "metrics.listen on a bound port: exit 2 before reading; rerun on a free port",
        (events, counted, events - counted, 0),
    );
}
