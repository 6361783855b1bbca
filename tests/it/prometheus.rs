//! A real Prometheus server scrapes a running job: through its HTTP API there is a records-in
//! rate per operator and a non-empty latency histogram per operator, and once the log stops
//! growing the counters equal what was written: lines ingested = lines in the file, error events
//! = a replay of the same file, and each histogram counts one observation per record it timed.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Reaped, free_port, root};
use crate::monitoring::prometheus_tool;

/// The pipeline's stages, as the `operator` label names them.
pub const OPERATORS: [&str; 6] = [
    "source",
    "multiline",
    "parse",
    "detect",
    "cluster",
    "incident",
];

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET on Prometheus (HTTP/1.0: no chunked answers); the body, if the status is 200.
fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

/// The operators of a PromQL instant query's result vector.
fn operators(addr: &str, query: &str) -> Vec<String> {
    let Some(body) = get(addr, &format!("/api/v1/query?query={}", encode(query))) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).expect("Prometheus answers JSON");
    let mut ops: Vec<String> = v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metric"]["operator"].as_str().map(str::to_string))
        .collect();
    ops.sort();
    ops
}

/// A PromQL query's single value (None while the series is absent).
fn value(addr: &str, query: &str) -> Option<f64> {
    let body = get(addr, &format!("/api/v1/query?query={}", encode(query)))?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// What a finished replay of `log` counts (same parse settings, no follow).
fn replayed(dir: &std::path::Path, log: &std::path::Path) -> hephaestus::job::Summary {
    let spec = dir.join("replay.toml");
    std::fs::write(
        &spec,
        format!("[[sources]]\npaths = [{log:?}]\n[parse]\ndefault_year = 2024\n"),
    )
    .expect("spec");
    let out = dir.join("replay");
    std::fs::create_dir_all(&out).expect("dir");
    let plan = crate::common::plan(&spec, &[], 1, &out);
    hephaestus::job::run(plan, hephaestus::core::shutdown::Shutdown::default()).expect("replay")
}

#[test]
fn prometheus_scrapes_rates_and_latency_histograms_per_operator() {
    let prometheus = prometheus_tool("prometheus");
    let dir = tempfile::tempdir().expect("tempdir");

    // The job: two workers following a log that keeps growing, metrics on a known port.
    let log = dir.path().join("app.log");
    let sample = std::fs::read_to_string(root().join("fixtures/logs/java.log")).expect("fixture");
    std::fs::write(&log, &sample).expect("log");
    let job_port = free_port();
    let spec = dir.path().join("job.toml");
    std::fs::write(
        &spec,
        format!(
            "[job]\nworkers = 2\n[[sources]]\npaths = [\"app.log\"]\nfollow = true\n\
             [parse]\ndefault_year = 2024\n[output]\nincidents = \"none\"\n\
             [metrics]\nlisten = \"127.0.0.1:{job_port}\"\n"
        ),
    )
    .expect("spec");
    let _job = Reaped(Some(
        Command::new(env!("CARGO_BIN_EXE_hephaestus"))
            .arg("run")
            .arg(&spec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn job"),
    ));

    // Prometheus, on loopback, scraping the job every second.
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: hephaestus\n    static_configs:\n      - targets: ['127.0.0.1:{job_port}']\n"
        ),
    )
    .expect("config");
    let _prometheus = Reaped(Some(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus"),
    ));

    let rates = "sum by (operator) (rate(hephaestus_operator_records_in_total[10s]))";
    let latency = "sum by (operator) (hephaestus_operator_latency_seconds_bucket{le=\"+Inf\"}) > 0";
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut appender = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("append");
    let (mut with_rate, mut with_latency) = (Vec::new(), Vec::new());
    while Instant::now() < deadline {
        appender.write_all(sample.as_bytes()).expect("append");
        with_rate = operators(&prom_addr, rates);
        with_latency = operators(&prom_addr, latency);
        if OPERATORS
            .iter()
            .all(|o| with_rate.contains(&o.to_string()) && with_latency.contains(&o.to_string()))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for op in OPERATORS {
        assert!(
            with_rate.contains(&op.to_string()),
            "no records-in rate for {op}: {with_rate:?}"
        );
        assert!(
            with_latency.contains(&op.to_string()),
            "no latency histogram for {op}: {with_latency:?}"
        );
    }

    // The log stops growing; the scraped counters settle on what was written.
    drop(appender);
    let copy = dir.path().join("written.log");
    std::fs::copy(&log, &copy).expect("copy");
    let text = std::fs::read_to_string(&copy).expect("log");
    let lines = text.lines().count() as f64;
    let expected = replayed(dir.path(), &copy);
    assert_eq!(expected.lines as f64, lines, "the replay read every line");
    let events = expected.error_events as f64;
    assert!(events > 0.0);
    let checks: Vec<(String, f64)> = vec![
        ("sum(hephaestus_ingested_lines_total)".into(), lines),
        ("sum(hephaestus_error_events_total)".into(), events),
        (
            "sum(hephaestus_operator_latency_seconds_count{operator=\"source\"})".into(),
            lines,
        ),
        (
            "sum(hephaestus_operator_latency_seconds_count{operator=\"detect\"})".into(),
            events,
        ),
        (
            "sum(hephaestus_operator_latency_seconds_count{operator=\"cluster\"})".into(),
            events,
        ),
        (
            "sum(hephaestus_event_to_incident_seconds_count)".into(),
            events,
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<Option<f64>> = Vec::new();
    while Instant::now() < deadline {
        seen = checks.iter().map(|(q, _)| value(&prom_addr, q)).collect();
        if seen
            .iter()
            .zip(&checks)
            .all(|(v, (_, want))| *v == Some(*want))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for ((query, want), got) in checks.iter().zip(&seen) {
        assert_eq!(*got, Some(*want), "{query}");
    }
}
