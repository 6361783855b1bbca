//! Replay pacing: as fast as possible, at a fixed rate, or at N× the records' own speed.
//!
//! In: the `Pacing` asked for on the command line, and from each source, how many lines it
//! wants to read now (rate) or a line's timestamp (speedup). Out: how many it may read, or
//! whether a line is due. Shared by every source of the process: the rate is for the process
//! as a whole; the speedup's time origin is the first timestamp any source sees. State: the
//! start instant, the lines released so far, the first timestamp.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::core::time::Millis;

/// How a replay is paced (`hephaestus run --rate | --speedup | --loop`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacing {
    /// Lines per second for this process; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Replay the records' timestamps this many times faster than they were written.
    pub speedup: Option<f64>,
    /// Read every input this many times (at least 1).
    pub loops: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            rate: None,
            speedup: None,
            loops: 1,
        }
    }
}

impl Pacing {
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("--rate", self.rate), ("--speedup", self.speedup)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(format!("{name} {v}: expected a number above 0"));
            }
        }
        if self.rate.is_some() && self.speedup.is_some() {
            return Err("--rate and --speedup cannot be combined".into());
        }
        if self.loops == 0 {
            return Err("--loop must be at least 1".into());
        }
        Ok(())
    }

    pub fn is_paced(&self) -> bool {
        self.rate.is_some() || self.speedup.is_some()
    }
}

/// The process's shared pacer.
#[derive(Debug)]
pub struct Pacer {
    pub pacing: Pacing,
    start: Instant,
    released: AtomicU64,
    /// The first record timestamp seen (speedup), `i64::MIN` until then.
    origin: AtomicI64,
}

impl Pacer {
    pub fn new(pacing: Pacing) -> Pacer {
        Pacer {
            pacing,
            start: Instant::now(),
            released: AtomicU64::new(0),
            origin: AtomicI64::new(i64::MIN),
        }
    }

    /// With a rate: how many of `want` lines may be read now (they are counted as released).
    pub fn take(&self, want: usize) -> usize {
        let Some(rate) = self.pacing.rate else {
            return want;
        };
        let allowed = (rate * self.start.elapsed().as_secs_f64()) as u64;
        let mut released = self.released.load(Relaxed);
        loop {
            let n = allowed.saturating_sub(released).min(want as u64);
            if n == 0 {
                return 0;
            }
            match self
                .released
                .compare_exchange_weak(released, released + n, Relaxed, Relaxed)
            {
                Ok(_) => return n as usize,
                Err(now) => released = now,
            }
        }
    }

    /// With a speedup: whether a record stamped `ts` is due (the first one ever seen sets the
    /// origin and is due at once).
    pub fn due(&self, ts: Millis) -> bool {
        let Some(x) = self.pacing.speedup else {
            return true;
        };
        let origin = match self.origin.compare_exchange(i64::MIN, ts, Relaxed, Relaxed) {
            Ok(_) => ts,
            Err(o) => o,
        };
        let at_ms = (ts - origin) as f64 / x;
        self.start.elapsed().as_secs_f64() * 1000.0 >= at_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_releases_lines_as_time_passes() {
        let p = Pacer::new(Pacing {
            rate: Some(1000.0),
            ..Pacing::default()
        });
        assert_eq!(p.take(100), 0, "nothing before any time has passed");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let n = p.take(1000);
        assert!((15..=1000).contains(&n), "{n}");
        assert!(
            p.take(1000) <= 10,
            "what was released is not released twice"
        );
        let free = Pacer::new(Pacing::default());
        assert_eq!(free.take(77), 77);
    }

    #[test]
    fn speedup_is_relative_to_the_first_timestamp() {
        let p = Pacer::new(Pacing {
            speedup: Some(1000.0),
            ..Pacing::default()
        });
        assert!(p.due(1_000_000));
        assert!(p.due(1_000_000), "same time");
        assert!(
            !p.due(1_000_000 + 3_600_000),
            "an hour later: 3.6 s at 1000x"
        );
        assert!(
            Pacing {
                rate: Some(1.0),
                speedup: Some(2.0),
                loops: 1
            }
            .validate()
            .is_err()
        );
        assert!(
            Pacing {
                loops: 0,
                ..Pacing::default()
            }
            .validate()
            .is_err()
        );
    }
}
