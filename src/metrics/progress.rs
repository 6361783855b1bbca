//! A live status line for long runs, on stderr when it is a terminal (and nothing otherwise, so
//! logs and pipes stay clean).
//!
//! In: the process' `Stats` and the Kafka consumer lag, read once a second. Out: one line,
//! redrawn in place: lines and their rate, bytes, error events, incidents, dead letters, lag.
//! State: the previous reading (for the rate) and the drawing thread, stopped on drop.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::{self, Stats};

/// One reading of the tallies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    pub lines: u64,
    pub bytes: u64,
    pub error_events: u64,
    pub incidents: u64,
    pub dead_letters: u64,
    pub lag: Option<i64>,
}

impl Reading {
    fn of(stats: &Stats) -> Reading {
        Reading {
            lines: Stats::get(&stats.lines),
            bytes: Stats::get(&stats.bytes),
            error_events: Stats::get(&stats.error_events),
            incidents: Stats::get(&stats.incidents),
            dead_letters: Stats::get(&stats.dead_letters),
            lag: metrics::total_consumer_lag(),
        }
    }
}

/// `1234567` → `1.23M`.
fn short(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2}G", n / 1e9),
        n if n >= 1e6 => format!("{:.2}M", n / 1e6),
        n if n >= 1e4 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

/// The status line for `now`, given the reading `seconds` earlier.
pub fn line(now: &Reading, before: &Reading, seconds: f64) -> String {
    let rate = (now.lines - before.lines.min(now.lines)) as f64 / seconds.max(1e-9);
    let mut s = format!(
        "hephaestus: {} lines ({}/s), {}B, {} error events, {} incidents, {} dead letters",
        short(now.lines as f64),
        short(rate),
        short(now.bytes as f64),
        short(now.error_events as f64),
        now.incidents,
        now.dead_letters
    );
    if let Some(lag) = now.lag {
        s.push_str(&format!(", lag {}", short(lag as f64)));
    }
    s
}

/// The drawing thread; the line is cleared when this is dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing if stderr is a terminal.
    pub fn start(stats: Arc<Stats>) -> Option<Progress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let (mut before, mut at) = (Reading::default(), Instant::now());
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    if at.elapsed() < Duration::from_secs(1) {
                        continue;
                    }
                    let now = Reading::of(&stats);
                    let text = line(&now, &before, at.elapsed().as_secs_f64());
                    (before, at) = (now, Instant::now());
                    let _ = write!(std::io::stderr(), "\r\x1b[K{text}");
                }
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            })
            .ok()?;
        Some(Progress {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_rates_and_totals() {
        let before = Reading {
            lines: 1_000_000,
            ..Reading::default()
        };
        let now = Reading {
            lines: 3_500_000,
            bytes: 250_000_000,
            error_events: 12_345,
            incidents: 28,
            dead_letters: 3,
            lag: Some(42),
        };
        assert_eq!(
            line(&now, &before, 2.0),
            "hephaestus: 3.50M lines (1.25M/s), 250.00MB, 12.3k error events, 28 incidents, \
             3 dead letters, lag 42"
        );
        assert!(!line(&Reading::default(), &Reading::default(), 1.0).contains("lag"));
    }
}
