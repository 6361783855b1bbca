//! A real Prometheus server scrapes a running job: through its HTTP API there is a records-in
//! rate per operator and a non-empty latency histogram per operator.

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
}
