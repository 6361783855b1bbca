//! Helpers: run a whole job in-process and read what it wrote.

use std::path::{Path, PathBuf};

use hephaestus::core::shutdown::Shutdown;
use hephaestus::job::{self, Summary};
use hephaestus::spec::{Overrides, Plan};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A loopback port nobody listens on right now.
/// A port for a timely process of a multi-process test: below the kernel's ephemeral range
/// (32768 and up), so a port another test takes with `bind(0)` can never be handed out between
/// our check and timely's own bind; distinct within this test binary.
pub fn cluster_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 500) as u16 * 16;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = base + n % 8_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The files in `dir` with extension `ext`, sorted.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// What a job wrote.
pub struct Output {
    pub incidents: Vec<String>,
    pub dead: Vec<String>,
    pub summary: Summary,
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Plans `spec` with `inputs` (empty: the spec's own) on `workers` workers.
pub fn plan(spec: &Path, inputs: &[PathBuf], workers: usize, out_dir: &Path) -> Plan {
    let ov = Overrides {
        workers: Some(workers),
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        output: Some(out_dir.join("incidents.jsonl")),
        dead_letters: Some(out_dir.join("dead.jsonl")),
        no_metrics: true,
        ..Overrides::default()
    };
    Plan::load(spec, ov).unwrap_or_else(|e| panic!("plan {}: {e}", spec.display()))
}

/// Runs a planned job to completion and reads its outputs.
pub fn run_plan(plan: Plan, out_dir: &Path) -> Output {
    run_until(plan, out_dir, Shutdown::default())
}

/// Runs a planned job until its input ends or `shutdown` fires, and reads its outputs.
pub fn run_until(plan: Plan, out_dir: &Path, shutdown: Shutdown) -> Output {
    let summary = job::run(plan, shutdown).unwrap_or_else(|e| panic!("job failed: {e}"));
    Output {
        incidents: lines(&out_dir.join("incidents.jsonl")),
        dead: lines(&out_dir.join("dead.jsonl")),
        summary,
    }
}

pub fn run(spec: &Path, inputs: &[PathBuf], workers: usize) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    run_plan(plan(spec, inputs, workers, dir.path()), dir.path())
}

/// The last line written for each fingerprint.
pub fn finals(incidents: &[String]) -> std::collections::BTreeMap<String, serde_json::Value> {
    incidents
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("incident JSON"))
        .map(|v| {
            (
                v["fingerprint"].as_str().expect("fingerprint").to_string(),
                v,
            )
        })
        .collect()
}

/// A small deterministic generator (splitmix64) so seeded inputs need no extra crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A child process that is killed if the test fails before it ends (no orphans left running).
pub struct Reaped(pub Option<std::process::Child>);

impl Reaped {
    pub fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("child still owned")
    }

    /// Hands the child back for `wait_with_output` and friends.
    pub fn take(mut self) -> std::process::Child {
        self.0.take().expect("child still owned")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The body of `http://addr/metrics`.
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to metrics");
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

/// The sum of every series of metric `name` in a scrape.
pub fn metric_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Forwards a child's stderr lines to a channel (so a test can wait for one without blocking
/// the child on a full pipe).
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits for the `metrics on http://ADDR/metrics` line; returns ADDR.
pub fn metrics_addr(lines: &std::sync::mpsc::Receiver<String>) -> String {
    loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("metrics address on stderr");
        if let Some(rest) = line.strip_prefix("hephaestus: metrics on http://") {
            return rest.trim_end_matches("/metrics").to_string();
        }
    }
}

/// The body of the HTTP request in `buf`, once `buf` holds all of it (headers and
/// `content-length` bytes); for the tests' small HTTP servers.
pub fn http_body(buf: &[u8]) -> Option<Vec<u8>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (buf.len() >= end + 4 + len).then(|| buf[end + 4..end + 4 + len].to_vec())
}

/// One row of RELIABILITY.md: what a fault test injected and what came out, appended to
/// `target/reliability.jsonl` (`scripts/reliability.py` turns the rows of one run into the table).
pub fn reliability(fault: &str, injected: &str, events: (u64, u64, u64, u64)) {
    let (events_in, events_out, lost, duplicated) = events;
    let row = serde_json::json!({
        "fault": fault, "injected": injected, "in": events_in, "out": events_out,
        "lost": lost, "duplicated": duplicated,
    });
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("reliability.jsonl");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        use std::io::Write;
        let _ = writeln!(f, "{row}");
    }
}

/// A model-stage fault as a reliability row: every incident handed over is worked on, counted
/// as a recurrence, or skipped (none vanishes).
pub fn model_reliability(fault: &str, injected: &str, m: &hephaestus::model::stage::StageSummary) {
    let worked = m.validated + m.rejected + m.analysis_only + m.budget_exhausted;
    let accounted = worked + m.recurrences + m.skipped;
    reliability(
        fault,
        injected,
        (m.offered, accounted, m.offered.saturating_sub(accounted), 0),
    );
}

/// The JSON of the `hephaestus: summary` line a job prints on stderr at the end.
pub fn summary_of(stderr: &str) -> serde_json::Value {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("hephaestus: summary "))
        .map(|s| serde_json::from_str(s).expect("summary JSON"))
        .expect("summary line")
}

/// The last count per fingerprint, leaving out incidents merged into others.
pub fn latest_counts(
    lines: impl IntoIterator<Item = serde_json::Value>,
) -> std::collections::BTreeMap<String, u64> {
    let mut latest = std::collections::BTreeMap::<String, serde_json::Value>::new();
    for v in lines {
        latest.insert(
            v["fingerprint"].as_str().expect("fingerprint").to_string(),
            v,
        );
    }
    latest
        .into_iter()
        .filter(|(_, v)| v["state"] != "merged")
        .map(|(fp, v)| (fp, v["count"].as_u64().expect("count")))
        .collect()
}
