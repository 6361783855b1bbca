//! Live inputs through the binary: stdin, gzip and directories give the same incidents as the
//! plain file; `--follow` picks up appended lines and truncated files, serves metrics while it
//! runs, and on SIGINT flushes open incidents and exits 0.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Reaped, finals, metric_sum, metrics_addr, root, scrape, stderr_lines};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hephaestus"))
}

/// (fingerprint, count, first_seen, last_seen, title) of the last line per incident.
fn summary_of(stdout: &str) -> Vec<(String, u64, String, String, String)> {
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    finals(&lines)
        .into_iter()
        .map(|(fp, v)| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (
                fp,
                v["count"].as_u64().unwrap_or(0),
                s("first_seen"),
                s("last_seen"),
                s("title"),
            )
        })
        .collect()
}

fn run_with(args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut cmd = bin();
    cmd.arg("run")
        .arg(root().join("fixtures/golden.toml"))
        .arg("--no-metrics")
        .args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 stdout")
}

#[test]
fn stdin_gzip_and_directory_inputs_match_the_plain_file() {
    let java = root().join("fixtures/logs/java.log");
    let data = std::fs::read(&java).expect("fixture");
    let want = summary_of(&run_with(&["--input", java.to_str().expect("path")], None));
    assert!(want.len() >= 3);

    let got = summary_of(&run_with(&["--input", "-"], Some(&data)));
    assert_eq!(got, want, "stdin");

    let dir = tempfile::tempdir().expect("tempdir");
    let gz = dir.path().join("java.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create"),
        flate2::Compression::default(),
    );
    enc.write_all(&data).expect("gzip");
    enc.finish().expect("finish");
    assert_eq!(
        summary_of(&run_with(&["--input", gz.to_str().expect("path")], None)),
        want,
        "gzip"
    );
    assert_eq!(
        summary_of(&run_with(
            &["--input", dir.path().to_str().expect("path")],
            None
        )),
        want,
        "directory of one gzip file"
    );
}

#[test]
fn follow_serves_metrics_and_flushes_on_interrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "2024-03-01 12:00:00,000 ERROR [main] app.Db: connection 1 refused\n",
    )
    .expect("write");
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, "[[sources]]\npaths = [\"app.log\"]\nfollow = true\n\n[job]\nworkers = 2\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n").expect("spec");
    let out = dir.path().join("incidents.jsonl");
    let mut child = Reaped(Some(
        bin()
            .arg("run")
            .arg(&spec)
            .arg("--output")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    ));
    let rx = stderr_lines(child.child());
    let addr = metrics_addr(&rx);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("append");
    for i in 2..=5 {
        writeln!(
            f,
            "2024-03-01 12:00:0{i},000 ERROR [main] app.Db: connection {i} refused"
        )
        .expect("append line");
    }
    f.flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = scrape(&addr);
        // The last line stays in the multiline joiner until the input has been idle for
        // `idle_flush` (1 s): it could still grow a stack trace.
        let done = metric_sum(&body, "hephaestus_ingested_lines_total") >= 5.0
            && metric_sum(&body, "hephaestus_error_events_total") >= 5.0;
        if done || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        metric_sum(&body, "hephaestus_ingested_lines_total"),
        5.0,
        "{body}"
    );
    assert!(metric_sum(&body, "hephaestus_ingested_bytes_total") > 200.0);
    for op in crate::prometheus::OPERATORS {
        let name = format!("hephaestus_operator_records_in_total{{operator=\"{op}\"");
        assert!(
            body.contains(&name) || op == "source",
            "records in for {op}:\n{body}"
        );
        let name = format!("hephaestus_operator_records_out_total{{operator=\"{op}\"");
        assert!(body.contains(&name), "records out for {op}:\n{body}");
    }
    assert_eq!(metric_sum(&body, "hephaestus_error_events_total"), 5.0);

    // Truncation (log rotation by copytruncate): the follower starts over at the beginning.
    std::fs::write(
        &log,
        "2024-03-01 12:01:00,000 ERROR [main] app.Db: connection 6 refused\n",
    )
    .expect("truncate");
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric_sum(&scrape(&addr), "hephaestus_error_events_total") < 6.0 {
        assert!(
            Instant::now() < deadline,
            "the truncated file's new line was not read"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let killed = Command::new("kill")
        .arg("-INT")
        .arg(child.child().id().to_string())
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    let status = child.child().wait().expect("wait");
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    let lines: Vec<String> = std::fs::read_to_string(&out)
        .expect("incidents")
        .lines()
        .map(str::to_string)
        .collect();
    let finals = finals(&lines);
    assert_eq!(finals.len(), 1);
    assert_eq!(
        finals.values().next().map(|v| v["count"].clone()),
        Some(serde_json::json!(6))
    );
}
