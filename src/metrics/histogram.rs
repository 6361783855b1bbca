//! Prometheus histograms with explicit buckets (10 µs … 60 s), cheap enough to fill per batch.
//!
//! In: observations, bucketed locally per batch (`Batch`) and added to a shared series in one
//! go (a few atomic adds, whatever the batch size). Out: the series in Prometheus' text format
//! (`_bucket{le=…}`, `_sum`, `_count`, `# TYPE … histogram`), appended to `/metrics` by the
//! server. Real histograms, not summaries, so they sum across workers and processes. State: the
//! process-wide registry of series (a series lives as long as the process).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

/// Upper bounds of the buckets, in seconds.
pub const BUCKETS: [f64; 21] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const SLOTS: usize = BUCKETS.len() + 1;

/// One labelled series.
struct Series {
    name: &'static str,
    labels: String,
    /// Per bucket (not cumulative); the last slot is above the largest bound.
    counts: [AtomicU64; SLOTS],
    /// The sum of observations, in nanoseconds.
    sum_ns: AtomicU64,
}

fn registry() -> &'static Mutex<Vec<Arc<Series>>> {
    static REGISTRY: OnceLock<Mutex<Vec<Arc<Series>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// A handle on one series; cloning shares it.
#[derive(Clone)]
pub struct Histogram(Arc<Series>);

impl Histogram {
    /// The series `name{labels}`, created on first use.
    pub fn new(name: &'static str, labels: &[(&str, &str)]) -> Histogram {
        let text = label_text(labels);
        let mut all = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = all.iter().find(|s| s.name == name && s.labels == text) {
            return Histogram(s.clone());
        }
        let series = Arc::new(Series {
            name,
            labels: text,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        });
        all.push(series.clone());
        Histogram(series)
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns observation on for the batches created from now on (the endpoint does, at start):
/// without an endpoint, operators do not spend time on latencies nobody reads.
pub fn enable() {
    ENABLED.store(true, Relaxed);
}

/// Observations of one batch, added to a histogram by `flush`.
#[derive(Debug, Clone)]
pub struct Batch {
    counts: [u64; SLOTS],
    sum_ns: u64,
    on: bool,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            counts: [0; SLOTS],
            sum_ns: 0,
            on: ENABLED.load(Relaxed),
        }
    }
}

impl Batch {
    /// Whether observations are recorded (metrics are served).
    pub fn on(&self) -> bool {
        self.on
    }

    pub fn observe(&mut self, seconds: f64) {
        self.observe_n(seconds, 1);
    }

    /// `n` observations of the same value.
    pub fn observe_n(&mut self, seconds: f64, n: u64) {
        if !self.on {
            return;
        }
        let s = seconds.max(0.0);
        let slot = BUCKETS.partition_point(|b| *b < s);
        self.counts[slot] += n;
        self.sum_ns = self.sum_ns.saturating_add((s * 1e9) as u64 * n);
    }

    /// Observes the time from `since_ms` to `now_ms` (wall-clock milliseconds).
    pub fn observe_ms(&mut self, now_ms: i64, since_ms: i64) {
        self.observe(now_ms.saturating_sub(since_ms) as f64 / 1000.0);
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|c| *c == 0)
    }

    /// Adds the batch to `h` and empties it.
    pub fn flush(&mut self, h: &Histogram) {
        if self.is_empty() {
            return;
        }
        for (slot, n) in h.0.counts.iter().zip(self.counts) {
            if n > 0 {
                slot.fetch_add(n, Relaxed);
            }
        }
        h.0.sum_ns.fetch_add(self.sum_ns, Relaxed);
        self.counts = [0; SLOTS];
        self.sum_ns = 0;
    }
}

/// Counters with fractional increments (money): the facade's counters count whole units.
struct FloatSeries {
    name: &'static str,
    labels: String,
    bits: AtomicU64,
}

fn floats() -> &'static Mutex<Vec<Arc<FloatSeries>>> {
    static FLOATS: OnceLock<Mutex<Vec<Arc<FloatSeries>>>> = OnceLock::new();
    FLOATS.get_or_init(Mutex::default)
}

/// Prometheus label text: `k="v",…` with `\` and `"` escaped.
fn label_text(labels: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            text,
            "{sep}{k}=\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        );
    }
    text
}

/// Adds `v` to the float counter `name{labels}` (created at zero on first use).
pub fn add_float(name: &'static str, labels: &[(&str, &str)], v: f64) {
    let text = label_text(labels);
    let series = {
        let mut all = floats().lock().unwrap_or_else(|e| e.into_inner());
        match all.iter().find(|s| s.name == name && s.labels == text) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(FloatSeries {
                    name,
                    labels: text,
                    bits: AtomicU64::new(0f64.to_bits()),
                });
                all.push(s.clone());
                s
            }
        }
    };
    let _ = series.bits.fetch_update(Relaxed, Relaxed, |b| {
        Some((f64::from_bits(b) + v).to_bits())
    });
}

fn render_floats(out: &mut String) {
    let all = floats().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&'static str> = all.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let _ = writeln!(out, "# TYPE {name} counter");
        for s in all.iter().filter(|s| s.name == name) {
            let v = f64::from_bits(s.bits.load(Relaxed));
            if s.labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{}}} {v}", s.labels);
            }
        }
    }
}

/// Appends every series in Prometheus' text format, grouped by name.
pub fn render(out: &mut String) {
    render_floats(out);
    let all = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&'static str> = all.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for s in all.iter().filter(|s| s.name == name) {
            let sep = if s.labels.is_empty() { "" } else { "," };
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += s.counts[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{}{sep}le=\"{bound}\"}} {cumulative}",
                    s.labels
                );
            }
            cumulative += s.counts[SLOTS - 1].load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{}{sep}le=\"+Inf\"}} {cumulative}",
                s.labels
            );
            let sum = s.sum_ns.load(Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{{{}}} {sum}", s.labels);
            let _ = writeln!(out, "{name}_count{{{}}} {cumulative}", s.labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_land_in_cumulative_buckets_with_sum_and_count() {
        let h = Histogram::new("test_latency_seconds", &[("operator", "parse")]);
        let mut b = Batch {
            on: true,
            ..Batch::default()
        };
        for s in [0.000_005, 0.002, 0.002, 0.7, 100.0] {
            b.observe(s);
        }
        b.flush(&h);
        assert!(b.is_empty());
        let mut out = String::new();
        render(&mut out);
        let line = |suffix: &str| {
            out.lines()
                .find(|l| l.starts_with(&format!("test_latency_seconds{suffix}")))
                .unwrap_or_else(|| panic!("{suffix} in {out}"))
                .rsplit(' ')
                .next()
                .expect("value")
                .to_string()
        };
        assert_eq!(line("_bucket{operator=\"parse\",le=\"0.00001\"}"), "1");
        assert_eq!(line("_bucket{operator=\"parse\",le=\"0.0025\"}"), "3");
        assert_eq!(line("_bucket{operator=\"parse\",le=\"1\"}"), "4");
        assert_eq!(line("_bucket{operator=\"parse\",le=\"60\"}"), "4");
        assert_eq!(line("_bucket{operator=\"parse\",le=\"+Inf\"}"), "5");
        assert_eq!(line("_count{operator=\"parse\"}"), "5");
        let sum: f64 = line("_sum{operator=\"parse\"}").parse().expect("sum");
        assert!((sum - 100.704005).abs() < 1e-6, "{sum}");
        assert!(out.contains("# TYPE test_latency_seconds histogram"));
    }
}
