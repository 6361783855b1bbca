//! Cuts for the Kafka source of a job with `job.state_dir`: exactly-once counts across restarts.
//!
//! In: the committer's offsets read per epoch, the multiline heads, the outputs' lengths (worker
//! 0) and both probes. Out: at each checkpoint boundary `b` that every output and every
//! checkpoint has passed, this worker's part of cut `b` (`core::cut`): per partition, the first
//! offset whose effect the state saved at `b` does not hold. Once every worker's part is on disk
//! the same offsets are committed to the consumer group (for lag, and for tools that read it).
//! A restart loads the newest complete cut's state and seeks to its offsets, and each output file
//! is cut back to its length at the cut. State: the last cut written and one not yet confirmed
//! complete.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::Committer;
use crate::core::checkpoint::Gen;
use crate::core::cut::{self, Cut, Restore, SharedMarks};
use crate::core::epoch::Epoch;

/// Where and how often this worker writes its part of each cut.
pub struct Cuts {
    dir: PathBuf,
    every: Epoch,
    restore: Arc<Restore>,
    worker: usize,
    peers: usize,
    /// The outputs' lengths, on the worker that writes them.
    marks: Option<SharedMarks>,
    /// The boundary of the last part written.
    last: Option<Epoch>,
    /// A part written, its offsets not committed to the group until the cut is complete.
    pub(super) unconfirmed: Option<(Gen, BTreeMap<i32, i64>)>,
    checked: Option<Instant>,
}

impl Cuts {
    pub fn new(
        dir: PathBuf,
        every: Epoch,
        restore: Arc<Restore>,
        (worker, peers): (usize, usize),
        marks: Option<SharedMarks>,
    ) -> Cuts {
        Cuts {
            dir,
            every: every.max(1),
            restore,
            worker,
            peers,
            marks,
            last: None,
            unconfirmed: None,
            checked: None,
        }
    }
}

impl Committer {
    /// The least epoch either probe has not passed; `None` once both are done.
    fn frontier(&self) -> Option<Epoch> {
        let least =
            |p: &timely::dataflow::ProbeHandle<Epoch>| p.with_frontier(|f| f.iter().min().copied());
        match (least(&self.probe), least(&self.checkpoints)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes this worker's part of the newest boundary both probes have passed, when newer
    /// than the last; commits a complete cut's offsets to the group.
    pub(super) fn cut(&mut self, mode: CommitMode) {
        self.confirm(mode, Duration::ZERO);
        let Some(cuts) = self.cuts.as_ref() else {
            return;
        };
        let g = match self.frontier() {
            Some(f) => f - f % cuts.every,
            None => Epoch::MAX,
        };
        if g == 0 || cuts.last.is_some_and(|l| g <= l) {
            return;
        }
        while let Some(entry) = self.read.first_entry() {
            if *entry.key() >= g {
                break;
            }
            for (id, o) in entry.remove() {
                if let Some(p) = self.parts.iter_mut().find(|p| p.id == id) {
                    p.done = Some(p.done.map_or(o, |d| d.max(o)));
                }
            }
        }
        let mut heads = self.heads.borrow_mut();
        if g == Epoch::MAX {
            // Every output is complete: the multiline stage flushed everything it held.
            heads.open.clear();
            heads.emitted.clear();
        }
        while heads.emitted.first_key_value().is_some_and(|(t, _)| *t < g) {
            heads.emitted.pop_first();
        }
        let mut offsets = BTreeMap::new();
        for p in &self.parts {
            let Some(next) = p.done.map(|d| d + 1).or(p.start) else {
                continue;
            };
            let at = heads
                .bound(p.source)
                .map_or(next, |head| next.min(head as i64));
            offsets.insert(p.id, at);
        }
        drop(heads);
        let Some(cuts) = self.cuts.as_mut() else {
            return;
        };
        let outputs = cuts
            .marks
            .as_ref()
            .map(|m| m.borrow_mut().at(g))
            .unwrap_or_default();
        let part = Cut {
            topic: self.topic.clone(),
            offsets,
            outputs,
        };
        let generation = cuts.restore.generation(g);
        match cut::save(&cuts.dir, cuts.worker, cuts.peers, generation, &part) {
            Ok(()) => {
                cuts.last = Some(g);
                cuts.unconfirmed = Some((generation, part.offsets));
                cuts.checked = None;
            }
            Err(e) => eprintln!(
                "hephaestus: kafka: saving the checkpoint cut at epoch {g} in {}: {e} (retrying)",
                cuts.dir.display()
            ),
        }
        self.confirm(mode, Duration::ZERO);
    }

    /// Commits the unconfirmed part's offsets once every worker's part of its cut is on disk
    /// (looked at every 100 ms, or for up to `wait`).
    fn confirm(&mut self, mode: CommitMode, wait: Duration) {
        let Some(cuts) = self.cuts.as_mut() else {
            return;
        };
        let Some((g, offsets)) = cuts.unconfirmed.as_ref() else {
            return;
        };
        if cuts
            .checked
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
            && wait.is_zero()
        {
            return;
        }
        let deadline = Instant::now() + wait;
        loop {
            cuts.checked = Some(Instant::now());
            if cut::newest_complete(&cuts.dir).is_ok_and(|c| c.is_some_and(|c| c >= *g)) {
                break;
            }
            if Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut tpl = TopicPartitionList::new();
        for (id, o) in offsets {
            if let Some(p) = self.parts.iter_mut().find(|p| p.id == *id)
                && p.committed.is_none_or(|c| *o > c)
                && tpl
                    .add_partition_offset(&self.topic, *id, Offset::Offset(*o))
                    .is_ok()
            {
                p.committed = Some(*o);
            }
        }
        cuts.unconfirmed = None;
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, mode)
        {
            crate::metrics::kafka_consumer_error(&crate::kafka::reason(&e));
            eprintln!("hephaestus: kafka: committing offsets: {e}");
        }
    }

    /// At the end: the final cut (everything read), committed once every worker's is there.
    pub(super) fn final_cut(&mut self) {
        self.cut(CommitMode::Sync);
        self.confirm(CommitMode::Sync, Duration::from_secs(5));
    }
}
