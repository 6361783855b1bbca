//! Incident state between runs: each worker checkpoints its book, and at start every worker
//! loads the incidents it owns, so a restarted job keeps counting where it stopped.
//!
//! In: a directory. Out: `incidents-<worker>-of-<peers>.<run>-<epoch>.jsonl`, one line with the book's clock
//! then one line per incident (everything the book needs to carry on: counts per alias and
//! window, samples, lifecycle). State: none beyond the files. Every worker reads every file and
//! keeps the incidents whose route it owns, so the worker count may change between runs (see
//! `checkpoint` for how files are written and when stale ones go).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::admit::owner;
use super::entry::Entry;
use crate::core::checkpoint::{self, Gen, Pick};
use crate::core::time::Millis;

pub const PREFIX: &str = "incidents-";

/// One line of a state file: `{"clock":…}` or `{"incident":…}` (externally tagged: an
/// internally tagged enum would buffer the line and lose its integer map keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Line {
    /// The book's clock (first line).
    Clock {
        now: Millis,
        real: bool,
    },
    Incident(Box<Saved>),
}

/// One incident as saved: its fingerprint and everything the book keeps about it (counts per
/// alias and window, samples, lifecycle).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Saved {
    pub fingerprint: u64,
    entry: Entry,
}

impl Saved {
    pub(super) fn new(fingerprint: u64, entry: &Entry) -> Saved {
        Saved {
            fingerprint,
            entry: entry.clone(),
        }
    }

    /// The route, which decides the worker that owns the incident.
    pub fn route(&self) -> u64 {
        self.entry.route
    }

    pub(super) fn into_entry(self) -> (u64, Entry) {
        (self.fingerprint, self.entry)
    }
}

/// What a worker loads: the newest clock over all files and the incidents it owns
/// (`owner(route) % peers == worker`, the exchange's routing).
#[derive(Debug, Default)]
pub struct Loaded {
    pub clock: Option<(Millis, bool)>,
    pub incidents: Vec<Saved>,
}

pub fn load(dir: &Path, worker: usize, peers: usize, pick: Pick) -> std::io::Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut by_fingerprint: BTreeMap<u64, Saved> = BTreeMap::new();
    for path in checkpoint::files(dir, PREFIX, pick)? {
        let reader = std::io::BufReader::new(std::fs::File::open(&path)?);
        for (n, line) in reader.lines().enumerate() {
            let line = line?;
            let parsed: Line = serde_json::from_str(&line).map_err(|e| {
                std::io::Error::other(format!(
                    "{} line {}: not incident state: {e}",
                    path.display(),
                    n + 1
                ))
            })?;
            match parsed {
                Line::Clock { now, real } => {
                    let (t, r) = loaded.clock.unwrap_or((Millis::MIN, false));
                    loaded.clock = Some((t.max(now), r || real));
                }
                Line::Incident(s) if owner(s.route()) % peers as u64 == worker as u64 => {
                    by_fingerprint.insert(s.fingerprint, *s);
                }
                Line::Incident(_) => {}
            }
        }
    }
    loaded.incidents = by_fingerprint.into_values().collect();
    Ok(loaded)
}

/// Saves generation `g` of a worker's book: its clock, then its incidents.
pub fn save<'a>(
    dir: &Path,
    worker: usize,
    peers: usize,
    g: Gen,
    clock: (Millis, bool),
    incidents: impl Iterator<Item = Saved> + 'a,
) -> std::io::Result<()> {
    checkpoint::write_atomic(&checkpoint::file(dir, PREFIX, worker, peers, g), |out| {
        serde_json::to_writer(
            &mut *out,
            &Line::Clock {
                now: clock.0,
                real: clock.1,
            },
        )?;
        out.write_all(b"\n")?;
        for s in incidents {
            serde_json::to_writer(&mut *out, &Line::Incident(Box::new(s)))?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{Clustered, ErrorEvent, Kind, Level, LogRecord, Position};
    use crate::incident::{Book, IncidentConfig};

    const G1: Gen = Gen { run: 1, epoch: 10 };

    fn event(fp: u64, route: u64, t: Millis, line: u64) -> Clustered {
        let record = LogRecord {
            pos: Position {
                source: 0,
                offset: line * 10,
                line,
            },
            ts: Some(t),
            message: format!("disk {line} full"),
            service: Some("db".into()),
            ..LogRecord::default()
        };
        Clustered {
            event: ErrorEvent {
                record,
                severity: Level::Error,
                reasons: vec!["level".into()],
                key: None,
            },
            fingerprint: fp,
            route,
            kind: Kind::Message,
            title: format!("title {fp}").into(),
            template: "disk <*> full".into(),
            merges: Vec::new(),
        }
    }

    /// A book with a few incidents whose counts came through `apply_count`, as in the dataflow.
    fn book() -> Book {
        let cfg = IncidentConfig::default();
        let mut book = Book::new(cfg.clone());
        let mut counts: BTreeMap<(u64, u64, Option<Millis>), u64> = BTreeMap::new();
        for i in 0..40u64 {
            let (fp, route) = (100 + i % 7, i % 7);
            let t = 1_700_000_000_000 + i as Millis * 17_000;
            let c = event(fp, route, t, i);
            book.advance_clock(t, true);
            book.observe(&c);
            for key in [(route, fp, None), (route, fp, Some(cfg.window_of(t)))] {
                let n = counts.entry(key).or_default();
                if *n > 0 {
                    book.apply_count(key, *n, -1);
                }
                *n += 1;
                book.apply_count(key, *n, 1);
            }
            book.close_epoch(&mut Vec::new(), &mut Vec::new());
        }
        book
    }

    fn sorted(saved: impl Iterator<Item = Saved>) -> Vec<Saved> {
        let mut v: Vec<Saved> = saved.collect();
        v.sort_by_key(|s| s.fingerprint);
        v
    }

    #[test]
    fn a_checkpoint_restores_every_incident_on_the_worker_that_owns_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = book();
        save(dir.path(), 0, 1, G1, original.clock(), original.saved()).expect("save");

        // Two workers now: each restores the incidents whose route it owns, and seeds its
        // counts with exactly what the original had counted.
        let mut restored = Vec::new();
        let mut seeded = 0;
        for worker in 0..2 {
            let loaded = load(dir.path(), worker, 2, Pick::Newest).expect("load");
            assert!(
                loaded
                    .incidents
                    .iter()
                    .all(|s| owner(s.route()) % 2 == worker as u64)
            );
            let mut b = Book::new(IncidentConfig::default());
            let seeds = b.restore(loaded);
            assert!(seeds.iter().all(|(_, d)| *d > 0));
            seeded += seeds
                .iter()
                .filter(|(k, _)| k.2.is_none())
                .map(|(_, d)| *d as u64)
                .sum::<u64>();
            assert_eq!(b.clock(), original.clock());
            restored.extend(b.saved());
        }
        assert_eq!(seeded, 40, "every counted event is seeded once");
        assert_eq!(sorted(restored.into_iter()), sorted(original.saved()));
    }

    #[test]
    fn a_newer_file_wins_and_a_broken_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = book();
        save(dir.path(), 0, 2, G1, (1, false), std::iter::empty()).expect("save");
        let g2 = Gen { run: 2, epoch: 0 };
        save(dir.path(), 0, 1, g2, b.clock(), b.saved()).expect("save");
        let loaded = load(dir.path(), 0, 1, Pick::Newest).expect("load");
        assert_eq!(loaded.incidents.len(), 7);
        assert_eq!(loaded.clock, Some(b.clock()));
        let at_cut = load(dir.path(), 0, 1, Pick::AtLeast(g2)).expect("load");
        assert_eq!(
            at_cut.clock,
            Some(b.clock()),
            "generations before the cut are not read"
        );
        let none = load(dir.path(), 0, 1, Pick::Nothing).expect("load");
        assert!(none.clock.is_none() && none.incidents.is_empty());

        std::fs::write(dir.path().join("incidents-1-of-2.jsonl"), "{not json\n").expect("write");
        let err = load(dir.path(), 0, 1, Pick::Newest).expect_err("broken state is refused");
        assert!(
            err.to_string().contains("incidents-1-of-2.jsonl line 1"),
            "{err}"
        );
    }
}
