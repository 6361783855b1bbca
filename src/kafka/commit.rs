//! Offset commits for the Kafka source (at-least-once).
//!
//! In: the offsets the source read per epoch; the job's probes (outputs written or delivered,
//! checkpoints saved); the multiline stage's `Heads` on the same worker. Out: commits to the
//! consumer group. An offset is committed only when
//! - every epoch it was read in has passed both probes, and
//! - no multiline record holding it is still open, or was emitted in an epoch not yet passed
//!   (a record's lines are read over several epochs but it is counted in the epoch it ends).
//!
//! A crash therefore replays at most the uncommitted window and loses nothing. Commit failures
//! (broker away) are reported by librdkafka and retried. With `job.state_dir`, offsets are
//! recorded in cuts instead (`commit_cut.rs`): a restart resumes exactly where its restored
//! state ends, so nothing is counted twice either. State: the consumer, the offsets read per
//! epoch, the last offset committed per partition.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use timely::dataflow::ProbeHandle;

use crate::core::epoch::Epoch;
use crate::metrics;

#[path = "commit_cut.rs"]
mod commit_cut;
pub use commit_cut::Cuts;

/// What the multiline stage of a worker still holds, per Kafka source: offsets at or after
/// these heads are not committed.
#[derive(Debug, Default)]
pub struct Heads {
    /// The head offset of each source's open record.
    pub open: HashMap<u32, u64>,
    /// Per epoch, the smallest head offset of the records emitted in it, per source.
    pub emitted: BTreeMap<Epoch, HashMap<u32, u64>>,
}

/// `Heads`, shared between the multiline operator and the source of one worker.
pub type SharedHeads = Rc<RefCell<Heads>>;

impl Heads {
    /// Notes a record with head offset `head` emitted at epoch `t`.
    pub fn emitted(&mut self, t: Epoch, source: u32, head: u64) {
        let min = self
            .emitted
            .entry(t)
            .or_default()
            .entry(source)
            .or_insert(head);
        *min = (*min).min(head);
    }

    /// The first offset of `source` that is not settled yet, if any.
    fn bound(&self, source: u32) -> Option<u64> {
        let emitted = self
            .emitted
            .values()
            .filter_map(|m| m.get(&source).copied());
        emitted.chain(self.open.get(&source).copied()).min()
    }
}

/// Publishes consumer lag per partition from librdkafka's statistics (no blocking calls), and
/// collects the partitions whose offset commit failed, to commit again.
#[derive(Default)]
pub struct Events {
    failed_commits: Mutex<Vec<i32>>,
    /// The last client error logged, and when.
    last_logged: Mutex<Option<(String, Instant)>>,
}

impl ClientContext for Events {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        super::log(level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let code = super::reason(&error);
        metrics::kafka_consumer_error(&code);
        // Logged when the reason changes, else at most every 10 s (an outage reports every
        // reconnect).
        if let Ok(mut last) = self.last_logged.lock() {
            let due = last
                .as_ref()
                .is_none_or(|(c, t)| *c != code || t.elapsed() >= Duration::from_secs(10));
            if due {
                eprintln!("hephaestus: kafka: consumer: {error}: {reason} (counted by reason)");
                *last = Some((code, Instant::now()));
            }
        }
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    metrics::consumer_lag(topic, *p, part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Events {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = &result {
            metrics::kafka_consumer_error(&super::reason(e));
        }
        let failed: Vec<i32> = offsets
            .elements()
            .iter()
            .filter(|e| {
                let part = e.error();
                if let (Ok(()), Err(err)) = (&result, &part) {
                    metrics::kafka_consumer_error(&super::reason(err));
                }
                result.is_err() || part.is_err()
            })
            .map(|e| e.partition())
            .collect();
        if !failed.is_empty() {
            eprintln!(
                "hephaestus: kafka: offset commit failed for partitions {failed:?}; retrying"
            );
            if let Ok(mut f) = self.failed_commits.lock() {
                f.extend(failed);
            }
        }
    }
}

struct Part {
    id: i32,
    source: u32,
    /// Where this run started reading, when known (the restored cut's offset).
    start: Option<i64>,
    /// The last offset read in an epoch both probes have passed.
    done: Option<i64>,
    committed: Option<i64>,
}

/// The consumer and what it has read, committing as outputs catch up; on drop (the dataflow has
/// completed normally) it commits everything it read, synchronously.
pub struct Committer {
    pub consumer: BaseConsumer<Events>,
    topic: String,
    probe: ProbeHandle<Epoch>,
    checkpoints: ProbeHandle<Epoch>,
    heads: SharedHeads,
    read: BTreeMap<Epoch, HashMap<i32, i64>>,
    parts: Vec<Part>,
    /// With `job.state_dir`: offsets are recorded in cuts, and committed to the group only
    /// once a cut is complete.
    cuts: Option<Cuts>,
}

impl Committer {
    /// `parts`: (partition, source id, offset it starts at when known) of every assigned
    /// partition.
    pub fn new(
        consumer: BaseConsumer<Events>,
        topic: String,
        probes: (ProbeHandle<Epoch>, ProbeHandle<Epoch>),
        heads: SharedHeads,
        parts: impl IntoIterator<Item = (i32, u32, Option<i64>)>,
        cuts: Option<Cuts>,
    ) -> Committer {
        let parts = parts
            .into_iter()
            .map(|(id, source, start)| Part {
                id,
                source,
                start,
                done: None,
                committed: start,
            })
            .collect();
        let (probe, checkpoints) = probes;
        Committer {
            consumer,
            topic,
            probe,
            checkpoints,
            heads,
            read: BTreeMap::new(),
            parts,
            cuts,
        }
    }

    /// The outputs are this many epochs behind `t` or more (back-pressure).
    pub fn behind(&self, t: Epoch) -> bool {
        self.probe.less_than(&t)
    }

    /// Notes that `offset` of `partition` was read in epoch `t`.
    pub fn read(&mut self, t: Epoch, partition: i32, offset: i64) {
        let o = self
            .read
            .entry(t)
            .or_default()
            .entry(partition)
            .or_insert(offset);
        *o = (*o).max(offset);
    }

    fn passed(probes: (&ProbeHandle<Epoch>, &ProbeHandle<Epoch>), t: &Epoch) -> bool {
        !probes.0.less_equal(t) && !probes.1.less_equal(t)
    }

    /// Commits, per partition, the offset after the last record read in a passed epoch, but
    /// not past an unsettled multiline record.
    pub fn commit(&mut self, mode: CommitMode) {
        if self.cuts.is_some() {
            return self.cut(mode);
        }
        let failed = self
            .consumer
            .context()
            .failed_commits
            .lock()
            .map(|mut f| std::mem::take(&mut *f));
        for id in failed.unwrap_or_default() {
            if let Some(p) = self.parts.iter_mut().find(|p| p.id == id) {
                p.committed = None;
            }
        }
        let probes = (&self.probe, &self.checkpoints);
        while let Some(entry) = self.read.first_entry() {
            if !Self::passed(probes, entry.key()) {
                break;
            }
            for (id, o) in entry.remove() {
                if let Some(p) = self.parts.iter_mut().find(|p| p.id == id) {
                    p.done = Some(p.done.map_or(o, |d| d.max(o)));
                }
            }
        }
        let mut heads = self.heads.borrow_mut();
        while heads
            .emitted
            .first_key_value()
            .is_some_and(|(t, _)| Self::passed(probes, t))
        {
            heads.emitted.pop_first();
        }
        let mut tpl = TopicPartitionList::new();
        for p in self.parts.iter_mut() {
            let Some(done) = p.done else { continue };
            let next = heads
                .bound(p.source)
                .map_or(done + 1, |head| (done + 1).min(head as i64));
            if p.committed.is_none_or(|c| next > c)
                && tpl
                    .add_partition_offset(&self.topic, p.id, Offset::Offset(next))
                    .is_ok()
            {
                p.committed = Some(next);
            }
        }
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, mode)
        {
            metrics::kafka_consumer_error(&super::reason(&e));
            eprintln!("hephaestus: kafka: committing offsets: {e}");
        }
    }

    /// Records read but not committed yet.
    pub fn pending(&self) -> bool {
        if let Some(cuts) = &self.cuts {
            return !self.read.is_empty() || cuts.unconfirmed.is_some();
        }
        !self.read.is_empty()
            || self
                .parts
                .iter()
                .any(|p| p.done.is_some_and(|d| p.committed != Some(d + 1)))
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if self.probe.done() && self.checkpoints.done() && !std::thread::panicking() {
            if self.cuts.is_some() {
                return self.final_cut();
            }
            // Every output is complete: the multiline stage flushed everything it held.
            let mut heads = self.heads.borrow_mut();
            heads.open.clear();
            heads.emitted.clear();
            drop(heads);
            self.commit(CommitMode::Sync);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_the_oldest_unsettled_head() {
        let mut h = Heads::default();
        assert_eq!(h.bound(7), None);
        h.open.insert(7, 40);
        h.emitted(5, 7, 30);
        h.emitted(5, 7, 25);
        h.emitted(6, 7, 35);
        h.emitted(6, 8, 1);
        assert_eq!(h.bound(7), Some(25));
        h.emitted.pop_first();
        assert_eq!(h.bound(7), Some(35));
        assert_eq!(h.bound(8), Some(1));
    }
}
