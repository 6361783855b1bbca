//! When the stateful stages (the miner, the incident book) checkpoint to `job.state_dir`.
//!
//! In: the epochs an operator processes, in order, and its input frontier. Out: the boundary
//! (a multiple of `every` epochs, the same on every worker) at which to save before going on, so
//! that a checkpoint tagged `b` holds exactly the effect of every epoch below `b`. A Kafka source
//! commits an offset only once every worker's checkpoints cover its epoch, so a restart resumes
//! from a state that matches the committed offsets (up to the window in between, which is
//! replayed). State: the next boundary due. Pure logic, no timely types.
//!
//! Files: each stage writes `<prefix><worker>-of-<peers>.jsonl` atomically (write, then rename),
//! so a crash leaves the previous checkpoint whole. Files written with another number of
//! workers are read like the others at start and removed only after a run that saved its own
//! has ended cleanly (`remove_stale`), so changing the worker count never loses state.

use std::cell::Cell;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::rc::Rc;

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
    /// first, when `t` has reached it. The first epoch seen only starts the schedule.
    pub fn before(&mut self, t: Epoch) -> Option<Epoch> {
        let b = self.boundary(t);
        match self.next {
            None => {
                self.next = Some(b.saturating_add(self.every));
                None
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

/// The file a worker saves a stage's state to.
pub fn file(dir: &Path, prefix: &str, worker: usize, peers: usize) -> PathBuf {
    dir.join(format!("{prefix}{worker}-of-{peers}.jsonl"))
}

/// A stage's state files in `dir`, oldest first (a later file wins where two hold the same
/// item); none when `dir` does not exist.
pub fn files(dir: &Path, prefix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    files.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".jsonl"))
    });
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    files.sort_by_cached_key(|p| (modified(p), p.clone()));
    Ok(files)
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

/// After a clean end: removes the state files of `prefixes` written with another number of
/// workers (this run saved everything they held under its own). Returns how many went.
pub fn remove_stale(dir: &Path, prefixes: &[&str], peers: usize) -> std::io::Result<usize> {
    let suffix = format!("-of-{peers}.jsonl");
    let mut removed = 0;
    for prefix in prefixes {
        for stale in files(dir, prefix)? {
            if !stale
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&suffix))
            {
                std::fs::remove_file(stale)?;
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
    fn only_files_of_another_worker_count_are_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "incidents-0-of-2.jsonl",
            "incidents-0-of-4.jsonl",
            "templates-1-of-2.jsonl",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        assert_eq!(
            remove_stale(dir.path(), &["incidents-", "templates-"], 4).expect("remove"),
            2
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["incidents-0-of-4.jsonl", "notes.txt"]);
    }

    #[test]
    fn saves_once_per_boundary_before_the_epoch_that_crosses_it() {
        let mut s = Schedule::new(10);
        assert_eq!(s.before(3), None, "the first epoch starts the schedule");
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
