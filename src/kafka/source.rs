//! The Kafka source operator: the raw-logs topic → `SourceItem`s.
//!
//! In: the topic's partitions; worker `index` of `peers` (across all processes) owns partition
//! `p` when `p % peers == index`, assigned manually (no group rebalancing; auto-commit off). Out:
//! one `SourceItem::Line` per record, stamped with a wall-clock tick so that an idle partition
//! never holds progress back; `Idle` markers so the multiline stage flushes quiet partitions.
//! The operator polls without blocking and re-activates itself.
//!
//! Offsets (at-least-once): a consumed offset is committed only when the end of the dataflow,
//! which includes the Kafka sinks waiting for their delivery reports, has passed the epoch it was
//! read in, and never past the head of a multiline record still open. A crash therefore replays
//! at most the uncommitted window and loses nothing. State: the consumer, the offsets read per
//! epoch, the last offset committed per partition.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use crate::job::Ctx;
use crate::metrics::{self, Stats};
use crate::pipeline::Epoch;
use crate::record::{Position, RawLine};
use crate::source::SourceItem;
use crate::spec::KAFKA_SOURCE_BASE;

/// The head offset of each source's open multiline record (shared with the multiline stage of
/// the same worker): offsets at or past it are not committed yet.
pub type OpenHeads = Rc<RefCell<HashMap<u32, u64>>>;

/// Publishes consumer lag per partition from librdkafka's statistics (no blocking calls).
struct LagContext;

impl ClientContext for LagContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        super::log(level, fac, message);
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

impl ConsumerContext for LagContext {}

struct Partition {
    id: i32,
    source: u32,
    last_data: Instant,
    unflushed: bool,
    /// The last offset read in an epoch every output has passed.
    done: Option<i64>,
    committed: Option<i64>,
}

/// Creates the consumer and assigns this worker's partitions, retrying while the broker or the
/// topic is not there yet.
fn assign(
    ctx: &Ctx,
    topic: &str,
    index: usize,
    peers: usize,
) -> Result<(BaseConsumer<LagContext>, Vec<i32>), String> {
    let kafka = ctx.plan.kafka.as_ref().ok_or("no [kafka] section")?;
    let mut cfg = kafka.consumer(&format!("hephaestus-{}-w{index}", ctx.plan.name));
    cfg.set("statistics.interval.ms", "5000");
    let consumer: BaseConsumer<LagContext> = cfg
        .create_with_context(LagContext)
        .map_err(|e| format!("kafka consumer: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let partitions = loop {
        let found = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|md| md.topics().first().map(|t| t.partitions().len()))
            .filter(|&n| n > 0);
        match found {
            Some(n) => break n,
            None if Instant::now() < deadline && !ctx.shutdown.is_triggered() => {
                std::thread::sleep(Duration::from_millis(500))
            }
            None => {
                return Err(format!(
                    "kafka topic `{topic}` not found at {} (create it first)",
                    kafka.brokers()
                ));
            }
        }
    };
    let owned: Vec<i32> = (0..partitions as i32)
        .filter(|p| *p as usize % peers == index)
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &owned {
        // `Stored`: the group's committed offset, else `auto.offset.reset`.
        tpl.add_partition_offset(topic, *p, Offset::Stored)
            .map_err(|e| format!("kafka assign: {e}"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("kafka assign: {e}"))?;
    eprintln!(
        "hephaestus: kafka: worker {index} of {peers} reads `{topic}` partitions {owned:?} of {partitions}"
    );
    Ok((consumer, owned))
}

/// The source stream of this worker for the plan's Kafka topic.
pub fn read_kafka<'s>(
    scope: Scope<'s, Epoch>,
    ctx: &Ctx,
    probe: ProbeHandle<Epoch>,
    open: OpenHeads,
) -> StreamVec<'s, Epoch, SourceItem> {
    let ctx = ctx.clone();
    let (index, peers) = (scope.index(), scope.peers());
    source(scope, "KafkaSource", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let plan = ctx.plan.clone();
        let topic = plan
            .kafka_source
            .as_ref()
            .map(|(t, _)| t.clone())
            .unwrap_or_default();
        let (probe, open) = (probe.clone(), open.clone());
        let mut state = match assign(&ctx, &topic, index, peers) {
            Ok((consumer, owned)) => {
                let parts: Vec<Partition> = owned
                    .into_iter()
                    .map(|id| Partition {
                        id,
                        source: KAFKA_SOURCE_BASE + id as u32,
                        last_data: Instant::now(),
                        unflushed: false,
                        done: None,
                        committed: None,
                    })
                    .collect();
                Some(Committer {
                    consumer,
                    topic,
                    probe,
                    open,
                    read: BTreeMap::new(),
                    parts,
                })
            }
            Err(e) => {
                ctx.error(e);
                None
            }
        };
        let mut cap = state.as_ref().filter(|s| !s.parts.is_empty()).map(|_| cap);
        let mut last_record = Instant::now();
        let mut errors_logged = 0u32;
        let tick = plan.tick_ms.max(1);
        move |output| {
            let Some(st) = state.as_mut() else { return };
            if let Some(held) = cap.as_mut() {
                let now_tick = (crate::time::now_ms() / tick) as Epoch;
                let epoch = now_tick.max(*held.time());
                let idle_exit = plan
                    .exit_when_idle
                    .is_some_and(|d| last_record.elapsed() >= d);
                let stamp = held.delayed(&epoch);
                let mut session = output.session(&stamp);
                let (mut n, mut bytes) = (0usize, 0usize);
                let ingest_ms = crate::time::now_ms();
                if ctx.shutdown.is_triggered() || idle_exit {
                    for p in &st.parts {
                        session.give(SourceItem::End(p.source));
                    }
                    drop(session);
                    cap = None;
                } else if st
                    .probe
                    .less_than(&held.time().saturating_sub(plan.max_inflight_epochs))
                {
                    // The outputs are behind: leave records in librdkafka's bounded queue (and
                    // do not count the wait as idleness).
                    drop(session);
                    last_record = Instant::now();
                } else {
                    while n < plan.batch_lines {
                        match st.consumer.poll(Duration::ZERO) {
                            None => break,
                            Some(Err(e)) => {
                                // Broker unreachable and the like: librdkafka reconnects on its own.
                                if errors_logged < 5 {
                                    eprintln!("hephaestus: kafka: {e} (retrying)");
                                }
                                errors_logged += 1;
                                break;
                            }
                            Some(Ok(m)) => {
                                let payload = m.payload().unwrap_or_default();
                                let (offset, part) = (m.offset(), m.partition());
                                let limit = plan.max_line_bytes;
                                let oversize =
                                    (payload.len() > limit).then_some(payload.len() as u64);
                                let pos = Position {
                                    source: KAFKA_SOURCE_BASE + part as u32,
                                    offset: offset as u64,
                                    line: offset as u64 + 1,
                                };
                                let raw = RawLine {
                                    pos,
                                    ingest_ms,
                                    bytes: payload[..payload.len().min(limit)].to_vec(),
                                    lines: 1,
                                    oversize,
                                    cut: false,
                                };
                                n += 1;
                                bytes += payload.len();
                                session.give(SourceItem::Line(raw, false));
                                let e = st
                                    .read
                                    .entry(epoch)
                                    .or_default()
                                    .entry(part)
                                    .or_insert(offset);
                                *e = (*e).max(offset);
                                if let Some(p) = st.parts.iter_mut().find(|p| p.id == part) {
                                    p.last_data = Instant::now();
                                    p.unflushed = true;
                                }
                            }
                        }
                    }
                    for p in st.parts.iter_mut().filter(|p| {
                        p.unflushed
                            && p.last_data.elapsed()
                                >= Duration::from_millis(plan.idle_flush_ms as u64)
                    }) {
                        session.give(SourceItem::Idle(p.source));
                        p.unflushed = false;
                    }
                    drop(session);
                    if n > 0 {
                        last_record = Instant::now();
                        Stats::add(&ctx.stats.lines, n);
                        Stats::add(&ctx.stats.bytes, bytes);
                        metrics::ingested(index, n, bytes);
                    }
                    if now_tick > *held.time() {
                        held.downgrade(&now_tick);
                    }
                }
            }
            st.commit(CommitMode::Async);
            // Keep polling while running; once stopped, keep committing until the outputs have
            // caught up with everything read (the rest is committed when the dataflow ends).
            if cap.is_some() || st.pending() {
                activator.activate_after(Duration::from_millis(if cap.is_some() { 2 } else { 20 }));
            }
        }
    })
}

/// The consumer and what it has read, committing as outputs catch up; on drop (the dataflow has
/// completed normally) it commits everything it read, synchronously.
struct Committer {
    consumer: BaseConsumer<LagContext>,
    topic: String,
    probe: ProbeHandle<Epoch>,
    open: OpenHeads,
    read: BTreeMap<Epoch, HashMap<i32, i64>>,
    parts: Vec<Partition>,
}

impl Committer {
    /// Commits, per partition, the offset after the last record whose epoch every output has
    /// passed, but not past the head of a multiline record still open.
    fn commit(&mut self, mode: CommitMode) {
        while let Some(entry) = self.read.first_entry() {
            if self.probe.less_equal(entry.key()) {
                break;
            }
            for (id, o) in entry.remove() {
                if let Some(p) = self.parts.iter_mut().find(|p| p.id == id) {
                    p.done = Some(p.done.map_or(o, |d| d.max(o)));
                }
            }
        }
        let heads = self.open.borrow();
        let mut tpl = TopicPartitionList::new();
        for p in self.parts.iter_mut() {
            let Some(done) = p.done else { continue };
            let next = heads
                .get(&p.source)
                .map_or(done + 1, |&head| (done + 1).min(head as i64));
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
            eprintln!("hephaestus: kafka: committing offsets: {e}");
        }
    }

    /// Records read but not yet committed.
    fn pending(&self) -> bool {
        !self.read.is_empty()
            || self
                .parts
                .iter()
                .any(|p| p.done.is_some_and(|d| p.committed != Some(d + 1)))
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if self.probe.done() && !std::thread::panicking() {
            self.open.borrow_mut().clear();
            self.commit(CommitMode::Sync);
        }
    }
}
