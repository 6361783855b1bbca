//! When the stateful stages (the miner, the incident book) checkpoint to `job.state_dir`.
//!
//! In: the epochs an operator processes, in order, and its input frontier. Out: the boundary
//! (a multiple of `every` epochs, the same on every worker) at which to save before going on, so
//! that a checkpoint tagged `b` holds exactly the effect of every epoch below `b`. A Kafka source
//! records a cut (`cut`) only at a boundary every worker's checkpoints and every output have
//! passed, so a restart loads the state of that cut and resumes at its offsets: nothing is
//! counted twice. State: the next boundary due. Pure logic, no timely types.
//!
//! Files: each stage writes `<prefix><worker>-of-<peers>.<run>-<epoch>.jsonl` atomically (write,
//! then rename), one file per generation (`Gen`), so a crash leaves every earlier generation
//! whole and a restart can load the one that matches the cut it resumes at (`Pick`). A worker
//! prunes its own generations older than the newest complete cut (see `cut`); files of other
//! runs and worker counts are read like the others at start and removed only after a run has
//! ended cleanly (`remove_stale`), so changing the worker count never loses state.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::core::epoch::Epoch;

/// Every epoch below this is covered by the miner's saved state on this worker (`Epoch::MAX`
/// once its final state is saved, or when nothing is saved at all). The incident operator reads
/// it: its checkpoint output never runs ahead of the miner's.
pub type Watermark = Rc<Cell<Epoch>>;

/// The boundaries at which an operator saves.
#[derive(Debug, Clone)]
pub struct Schedule {
    every: u64,
    /// The next boundary to save at; `None` until the first epoch is seen.
    next: Option<Epoch>,
}

impl Schedule {
    pub fn new(every: u64) -> Schedule {
        Schedule {
            every: every.max(1),
            next: None,
        }
    }

    fn boundary(&self, t: Epoch) -> Epoch {
        t - t % self.every
    }

    /// Call before processing epoch `t` (epochs in increasing order): the boundary to save at
    /// first, when `t` has reached it (the first epoch seen always has).
    pub fn before(&mut self, t: Epoch) -> Option<Epoch> {
        let b = self.boundary(t);
        match self.next {
            // The first epoch saves at its boundary too: a cut there must find a generation
            // without this epoch's data (skipping it let a restart count an epoch twice: the
            // disk-full test, 1 run in 30).
            None => {
                self.next = Some(b.saturating_add(self.every));
                Some(b)
            }
            Some(next) if t >= next => {
                self.next = Some(b.saturating_add(self.every));
                Some(b)
            }
            Some(_) => None,
        }
    }

    /// Call after processing every epoch below `frontier`: the boundary to save at, when the
    /// frontier has passed one with no data on the way (`before` caught any with data).
    pub fn after(&mut self, frontier: Epoch) -> Option<Epoch> {
        match self.next {
            Some(next) if frontier >= next => {
                let b = self.boundary(frontier);
                self.next = Some(b.saturating_add(self.every));
                Some(b)
            }
            _ => None,
        }
    }
}

/// A saved generation: the run that saved it (a run numbers itself one past every generation
/// already in the state directories), then the epoch boundary its state covers (every epoch
/// below it). Ordered by run first, so a restarted run's boundaries, which are wall-clock ticks,
/// are newer than the previous run's final save at `Epoch::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Gen {
    pub run: u64,
    pub epoch: Epoch,
}

impl Gen {
    /// Files written before generations existed (`<prefix><w>-of-<n>.jsonl`).
    pub const LEGACY: Gen = Gen { run: 0, epoch: 0 };

    /// `<run>-<epoch>`, as in file names.
    fn parse(s: &str) -> Option<Gen> {
        let (run, epoch) = s.split_once('-')?;
        Some(Gen {
            run: run.parse().ok()?,
            epoch: epoch.parse().ok()?,
        })
    }
}

/// Which saved generation of each file set (one worker of one worker count) a job loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// None: start empty.
    Nothing,
    /// The newest of each set (file inputs are read again from the start).
    Newest,
    /// The oldest at or after this cut of each set: it holds exactly the effect of every epoch
    /// below the cut (no data came between the cut and it, or a save would lie between).
    AtLeast(Gen),
}

/// A state file's name parsed: (worker, peers, generation).
fn parse_name(name: &str, prefix: &str, ext: &str) -> Option<(usize, usize, Gen)> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(ext)?;
    let (set, generation) = match rest.split_once('.') {
        Some((set, g)) => (set, Gen::parse(g)?),
        None => (rest, Gen::LEGACY),
    };
    let (w, n) = set.split_once("-of-")?;
    Some((w.parse().ok()?, n.parse().ok()?, generation))
}

/// The file a worker saves generation `g` of a stage's state to.
pub fn file(dir: &Path, prefix: &str, worker: usize, peers: usize, g: Gen) -> PathBuf {
    dir.join(format!(
        "{prefix}{worker}-of-{peers}.{}-{}.jsonl",
        g.run, g.epoch
    ))
}

/// Every file of `prefix` in `dir` ending in `ext`, parsed; none when `dir` does not exist.
pub(crate) fn listing(
    dir: &Path,
    prefix: &str,
    ext: &str,
) -> std::io::Result<Vec<(PathBuf, usize, usize, Gen)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if let Some((w, n, g)) = name.to_str().and_then(|n| parse_name(n, prefix, ext)) {
            out.push((entry.path(), w, n, g));
        }
    }
    Ok(out)
}

/// The state files of `prefix` a job loads under `pick`, oldest generation first (a later
/// file wins where two hold the same item).
pub fn files(dir: &Path, prefix: &str, pick: Pick) -> std::io::Result<Vec<PathBuf>> {
    let mut chosen: BTreeMap<(usize, usize), (Gen, PathBuf)> = BTreeMap::new();
    for (path, w, n, g) in listing(dir, prefix, ".jsonl")? {
        let eligible = match pick {
            Pick::Nothing => false,
            Pick::Newest => true,
            Pick::AtLeast(cut) => g >= cut,
        };
        let replace = match chosen.get(&(w, n)) {
            None => true,
            Some((old, _)) if pick == Pick::Newest => g > *old,
            Some((old, _)) => g < *old,
        };
        if eligible && replace {
            chosen.insert((w, n), (g, path));
        }
    }
    let mut files: Vec<(Gen, PathBuf)> = chosen.into_values().collect();
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// Removes this worker's generations of `prefix` older than `keep_from`.
pub fn prune(
    dir: &Path,
    prefix: &str,
    worker: usize,
    peers: usize,
    keep_from: Gen,
) -> std::io::Result<()> {
    for (path, w, n, g) in listing(dir, prefix, ".jsonl")? {
        if (w, n) == (worker, peers) && g < keep_from {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// The newest generation of any state or cut file in `dir` (`Gen::LEGACY` when none).
pub fn newest(dir: &Path) -> std::io::Result<Gen> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Gen::LEGACY),
        Err(e) => return Err(e),
    };
    let mut newest = Gen::LEGACY;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stem = name
            .strip_suffix(".jsonl")
            .or_else(|| name.strip_suffix(".json"));
        if let Some(g) = stem
            .and_then(|s| s.rsplit_once('.'))
            .and_then(|(_, g)| Gen::parse(g))
        {
            newest = newest.max(g);
        }
    }
    Ok(newest)
}

/// Writes `path` through `write`, then renames it into place after an fsync.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = BufWriter::new(File::create(&tmp)?);
    write(&mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// After a clean end, once this run has saved `last` on every worker: removes every other
/// generation of `prefixes` (older runs, other worker counts). Returns how many went.
pub fn remove_stale(dir: &Path, prefixes: &[&str], last: Gen) -> std::io::Result<usize> {
    let mut removed = 0;
    for prefix in prefixes {
        for (path, _, _, g) in listing(dir, prefix, ".jsonl")? {
            if g != last {
                std::fs::remove_file(path)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_clean_end_only_the_final_generation_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "incidents-0-of-2.jsonl",
            "incidents-0-of-2.1-500.jsonl",
            "incidents-0-of-4.2-18446744073709551615.jsonl",
            "incidents-1-of-4.2-600.jsonl",
            "templates-1-of-4.2-18446744073709551615.jsonl",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        let last = Gen {
            run: 2,
            epoch: Epoch::MAX,
        };
        assert_eq!(newest(dir.path()).expect("newest"), last);
        assert_eq!(
            remove_stale(dir.path(), &["incidents-", "templates-"], last).expect("remove"),
            3
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "incidents-0-of-4.2-18446744073709551615.jsonl",
                "notes.txt",
                "templates-1-of-4.2-18446744073709551615.jsonl"
            ]
        );
    }

    #[test]
    fn a_restart_at_a_cut_reads_the_oldest_generation_at_or_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = |run, epoch| Gen { run, epoch };
        for (w, n, at) in [
            (0, 2, g(1, 10)),
            (0, 2, g(1, 30)),
            (0, 2, g(1, 40)),
            (1, 2, g(1, 40)),
        ] {
            std::fs::write(file(dir.path(), "s-", w, n, at), "").expect("write");
        }
        let names = |pick| {
            files(dir.path(), "s-", pick)
                .expect("files")
                .iter()
                .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Pick::AtLeast(g(1, 20))),
            ["s-0-of-2.1-30.jsonl", "s-1-of-2.1-40.jsonl"]
        );
        assert_eq!(
            names(Pick::Newest),
            ["s-0-of-2.1-40.jsonl", "s-1-of-2.1-40.jsonl"]
        );
        assert!(names(Pick::Nothing).is_empty());
        assert!(
            names(Pick::AtLeast(g(2, 0))).is_empty(),
            "a later run saved nothing yet"
        );
        prune(dir.path(), "s-", 0, 2, g(1, 30)).expect("prune");
        assert_eq!(
            names(Pick::AtLeast(g(1, 0))),
            ["s-0-of-2.1-30.jsonl", "s-1-of-2.1-40.jsonl"]
        );
    }

    #[test]
    fn saves_once_per_boundary_before_the_epoch_that_crosses_it() {
        let mut s = Schedule::new(10);
        assert_eq!(
            s.before(3),
            Some(0),
            "the first epoch saves at its boundary"
        );
        assert_eq!(s.before(9), None);
        assert_eq!(s.before(10), Some(10));
        assert_eq!(s.before(15), None);
        assert_eq!(
            s.before(37),
            Some(30),
            "a jump saves once, at the last boundary passed"
        );
        assert_eq!(s.before(38), None);
    }

    #[test]
    fn the_frontier_passing_a_boundary_without_data_saves_too() {
        let mut s = Schedule::new(10);
        assert_eq!(s.after(25), None, "nothing seen yet");
        s.before(21);
        assert_eq!(s.after(29), None);
        assert_eq!(s.after(30), Some(30));
        assert_eq!(s.after(31), None);
        assert_eq!(s.before(33), None, "already saved at 30");
        assert_eq!(s.before(40), Some(40));
    }

    #[test]
    fn a_checkpoint_never_covers_an_epoch_processed_after_it() {
        // Epochs with data arrive in order; frontiers arrive in between. Whatever the interleaving,
        // a save tagged b happens after every epoch < b and before every epoch >= b.
        let mut s = Schedule::new(7);
        let mut processed: Vec<Epoch> = Vec::new();
        let mut saves: Vec<(Epoch, Vec<Epoch>)> = Vec::new();
        for t in (0..200).filter(|t| t % 3 != 0) {
            if let Some(b) = s.before(t) {
                saves.push((b, processed.clone()));
            }
            processed.push(t);
            if t % 5 == 0
                && let Some(b) = s.after(t + 1)
            {
                saves.push((b, processed.clone()));
            }
        }
        assert!(saves.len() > 20);
        for (b, seen) in saves {
            assert!(
                seen.iter().all(|&t| t < b),
                "save at {b} after a later epoch"
            );
            let expected = (0..b).filter(|t| t % 3 != 0).count();
            assert_eq!(seen.len(), expected, "save at {b} misses an earlier epoch");
        }
    }
}
