//! Cuts: where a restarted Kafka job resumes, and which saved state and output match it.
//!
//! In: from each worker's Kafka source, once every output and every checkpoint has passed an
//! epoch boundary, the offsets that boundary leaves off at (and, from worker 0, how long each
//! output file was then). Out: `cut-<worker>-of-<peers>.<run>-<epoch>.json` in `job.state_dir`,
//! and at start (`Restore::find`) the newest cut that every worker of one run wrote: where each
//! partition resumes, where each output file is cut back to (what a crashed run wrote past it
//! goes), and which state generation to load (`Pick::AtLeast`). The directory is shared by every
//! process of a multi-process job. State: none beyond the files.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::checkpoint::{self, Gen, Pick};
use super::epoch::Epoch;

pub const PREFIX: &str = "cut-";

/// An output file and its length at a cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
}

/// One cut: what every epoch below its boundary left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cut {
    /// The raw-logs topic the offsets are of.
    pub topic: String,
    /// Per partition, the first offset whose effect the cut's state does not hold.
    pub offsets: BTreeMap<i32, i64>,
    /// Per output (`incidents`, `dead_letters`), the file and its length (worker 0 only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Written>,
}

/// How long each output file was after each epoch written, on worker 0, where the outputs are
/// written: the cut reads it.
#[derive(Debug, Default)]
pub struct Marks {
    outputs: BTreeMap<String, Mark>,
}

#[derive(Debug)]
struct Mark {
    path: PathBuf,
    /// The length before the epochs below.
    base: u64,
    /// The length after each epoch written (in epoch order).
    after: BTreeMap<Epoch, u64>,
}

/// `Marks`, shared by the sinks and the Kafka source of worker 0.
pub type SharedMarks = Rc<RefCell<Marks>>;

impl Marks {
    /// Output `name` was opened at `path` with `bytes` in it.
    pub fn open(&mut self, name: &str, path: &Path, bytes: u64) {
        let mark = Mark {
            path: path.to_path_buf(),
            base: bytes,
            after: BTreeMap::new(),
        };
        self.outputs.insert(name.to_owned(), mark);
    }

    /// Output `name` is `bytes` long once epoch `t` is written.
    pub fn wrote(&mut self, name: &str, t: Epoch, bytes: u64) {
        if let Some(m) = self.outputs.get_mut(name) {
            m.after.insert(t, bytes);
        }
    }

    /// Each output's length once every epoch below `cut` is written; those epochs are then
    /// forgotten (cuts only move forward).
    pub fn at(&mut self, cut: Epoch) -> BTreeMap<String, Written> {
        let mut out = BTreeMap::new();
        for (name, m) in &mut self.outputs {
            let later = m.after.split_off(&cut);
            if let Some((_, &bytes)) = m.after.last_key_value() {
                m.base = bytes;
            }
            m.after = later;
            let written = Written {
                path: m.path.clone(),
                bytes: m.base,
            };
            out.insert(name.clone(), written);
        }
        out
    }
}

fn file(dir: &Path, worker: usize, peers: usize, g: Gen) -> PathBuf {
    dir.join(format!(
        "{PREFIX}{worker}-of-{peers}.{}-{}.json",
        g.run, g.epoch
    ))
}

/// Writes this worker's part of cut `g` (atomically), then removes its parts older than the
/// newest complete cut.
pub fn save(dir: &Path, worker: usize, peers: usize, g: Gen, cut: &Cut) -> std::io::Result<()> {
    checkpoint::write_atomic(&file(dir, worker, peers, g), |out| {
        serde_json::to_writer(out, cut).map_err(std::io::Error::other)
    })?;
    if let Some(keep) = newest_complete(dir)? {
        for (path, w, n, old) in checkpoint::listing(dir, PREFIX, ".json")? {
            if (w, n) == (worker, peers) && old < keep {
                std::fs::remove_file(path)?;
            }
        }
    }
    Ok(())
}

/// The newest generation for which every worker of its worker count wrote its part.
pub fn newest_complete(dir: &Path) -> std::io::Result<Option<Gen>> {
    let mut parts: BTreeMap<(Gen, usize), BTreeSet<usize>> = BTreeMap::new();
    for (_, w, n, g) in checkpoint::listing(dir, PREFIX, ".json")? {
        parts.entry((g, n)).or_default().insert(w);
    }
    Ok(parts
        .into_iter()
        .filter(|((_, n), ws)| (0..*n).all(|w| ws.contains(&w)))
        .map(|((g, _), _)| g)
        .max())
}

/// Cut `g`, every worker's part merged.
pub fn load(dir: &Path, g: Gen) -> std::io::Result<Cut> {
    let mut cut = Cut::default();
    for (path, _, _, found) in checkpoint::listing(dir, PREFIX, ".json")? {
        if found != g {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let part: Cut = serde_json::from_str(&text)
            .map_err(|e| std::io::Error::other(format!("{}: not a cut: {e}", path.display())))?;
        cut.topic = part.topic;
        cut.offsets.extend(part.offsets);
        cut.outputs.extend(part.outputs);
    }
    Ok(cut)
}

/// What a starting job restores, found once per process before any worker starts.
#[derive(Debug, Clone)]
pub struct Restore {
    /// This run's number: one past every generation in the state directories.
    pub run: u64,
    /// The state generations the stateful stages load.
    pub pick: Pick,
    /// The cut a Kafka job resumes at, when one is complete.
    pub cut: Option<(Gen, Cut)>,
    /// Where cuts are kept (`job.state_dir` of a job with a Kafka source): generations are
    /// matched to cuts, and pruned only below the newest complete one.
    pub cut_dir: Option<PathBuf>,
}

impl Default for Restore {
    fn default() -> Restore {
        Restore {
            run: 1,
            pick: Pick::Newest,
            cut: None,
            cut_dir: None,
        }
    }
}

impl Restore {
    /// `state_dirs`: every directory the job saves state to. `cut_dir`: `job.state_dir` of a
    /// job with a Kafka source. Without a complete cut there, such a job starts empty (what an
    /// incomplete run saved is past any offset it committed); without a cut dir, each stage
    /// loads its newest generation.
    pub fn find(state_dirs: &[&Path], cut_dir: Option<&Path>) -> std::io::Result<Restore> {
        let mut newest = Gen::LEGACY;
        for dir in state_dirs.iter().copied().chain(cut_dir) {
            newest = newest.max(checkpoint::newest(dir)?);
        }
        let run = newest.run + 1;
        let Some(dir) = cut_dir else {
            return Ok(Restore {
                run,
                ..Restore::default()
            });
        };
        let cut = match newest_complete(dir)? {
            Some(g) => Some((g, load(dir, g)?)),
            None => None,
        };
        Ok(Restore {
            run,
            pick: cut
                .as_ref()
                .map_or(Pick::Nothing, |(g, _)| Pick::AtLeast(*g)),
            cut,
            cut_dir: Some(dir.to_path_buf()),
        })
    }

    /// The generation saved at boundary `epoch` by this run.
    pub fn generation(&self, epoch: u64) -> Gen {
        Gen {
            run: self.run,
            epoch,
        }
    }

    /// After a worker saved `saved`: its generations older than this may go. With cuts, the
    /// newest complete cut's (a restart may load the oldest generation at or after it), else
    /// `saved` itself.
    pub fn keep_from(&self, saved: Gen) -> Gen {
        match &self.cut_dir {
            None => saved,
            Some(dir) => match newest_complete(dir) {
                Ok(Some(g)) => g.min(saved),
                Ok(None) => self.generation(0).min(saved),
                Err(_) => Gen::LEGACY,
            },
        }
    }

    /// The offset partition `p` of `topic` resumes at, when the restored cut holds one.
    pub fn offset(&self, topic: &str, p: i32) -> Option<i64> {
        let (_, cut) = self.cut.as_ref()?;
        (cut.topic == topic).then(|| cut.offsets.get(&p).copied())?
    }

    /// The length output `name` had at the restored cut, when it was written to `path`.
    pub fn written(&self, name: &str, path: &Path) -> Option<u64> {
        let (_, cut) = self.cut.as_ref()?;
        cut.outputs
            .get(name)
            .filter(|w| w.path == path)
            .map(|w| w.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(run: u64, epoch: u64) -> Gen {
        Gen { run, epoch }
    }

    fn part(p: i32, o: i64) -> Cut {
        Cut {
            topic: "raw".into(),
            offsets: [(p, o)].into(),
            outputs: BTreeMap::new(),
        }
    }

    #[test]
    fn a_cut_counts_only_once_every_worker_wrote_its_part() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        save(d, 0, 2, g(1, 10), &part(0, 5)).expect("save");
        save(d, 1, 2, g(1, 10), &part(1, 7)).expect("save");
        save(d, 0, 2, g(1, 20), &part(0, 9)).expect("save");
        assert_eq!(newest_complete(d).expect("read"), Some(g(1, 10)));
        let r = Restore::find(&[], Some(d)).expect("find");
        assert_eq!(r.run, 2, "one past every generation found");
        assert_eq!(r.pick, Pick::AtLeast(g(1, 10)));
        assert_eq!(
            r.offset("raw", 0),
            Some(5),
            "worker 0's part of the complete cut"
        );
        assert_eq!(r.offset("raw", 1), Some(7));
        assert_eq!(
            r.offset("other", 0),
            None,
            "offsets of another topic do not apply"
        );
        save(d, 1, 2, g(1, 20), &part(1, 12)).expect("save");
        assert_eq!(newest_complete(d).expect("read"), Some(g(1, 20)));
        save(d, 0, 2, g(2, 5), &part(0, 9)).expect("save");
        let left = checkpoint::listing(d, PREFIX, ".json").expect("list");
        assert!(
            left.iter().all(|(_, _, _, found)| *found >= g(1, 20)),
            "parts older than the newest complete cut go: {left:?}"
        );
    }

    #[test]
    fn an_output_is_cut_back_to_its_length_before_the_cut() {
        let mut m = Marks::default();
        m.open("incidents", Path::new("/o"), 100);
        m.wrote("incidents", 3, 150);
        m.wrote("incidents", 7, 180);
        m.wrote("incidents", 12, 240);
        let bytes = |m: &mut Marks, at| m.at(at)["incidents"].bytes;
        assert_eq!(bytes(&mut m, 3), 100, "epoch 3 is not below the cut at 3");
        assert_eq!(bytes(&mut m, 10), 180);
        assert_eq!(bytes(&mut m, 11), 180, "nothing written in between");
        assert_eq!(bytes(&mut m, Epoch::MAX), 240);
    }

    #[test]
    fn a_kafka_job_without_a_complete_cut_starts_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        save(dir.path(), 0, 2, g(3, 10), &part(0, 5)).expect("save");
        let r = Restore::find(&[], Some(dir.path())).expect("find");
        assert_eq!(
            (r.run, r.pick, r.offset("raw", 0)),
            (4, Pick::Nothing, None)
        );
        let files = Restore::find(&[dir.path()], None).expect("find");
        assert_eq!(files.pick, Pick::Newest, "without cuts, the newest state");
    }
}
