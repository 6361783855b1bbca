//! The Kafka source operator: the raw-logs topic → `SourceItem`s.
//!
//! In: the topic's partitions; worker `index` of `peers` (across all processes) owns partition
//! `p` when `p % peers == index`, assigned manually (no group rebalancing; auto-commit off). Out:
//! one `SourceItem::Line` per record, stamped with a wall-clock tick so that an idle partition
//! never holds progress back; `Idle` markers so the multiline stage flushes quiet partitions.
//! The operator polls without blocking and re-activates itself.
//!
//! Offsets are committed by `commit.rs` (at-least-once; exactly-once counts with cuts). Idle
//! means no record *and* no broker trouble for the whole period, and for a partition's open
//! record to be flushed, the broker confirming we are at its end: an outage or back-pressure is
//! waited out, not taken for the end of the data.
//! State: the consumer and committer, per partition when it last had data.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use crate::core::cut::SharedMarks;
use crate::core::epoch::Epoch;
use crate::core::epoch::KAFKA_SOURCE_BASE;
use crate::core::record::{Position, RawLine};
use crate::dataflow::ctx::Ctx;
use crate::kafka::commit::{Committer, Cuts, Events, SharedHeads};
use crate::metrics::{self, Stats};
use crate::source::SourceItem;

struct Quiet {
    partition: i32,
    source: u32,
    last_data: Instant,
    unflushed: bool,
    /// Confirmed read to the broker's end since its last record (for `--exit-when-idle`).
    read_out: bool,
}

/// Whether this worker has read everything partition `p` holds: the broker answers (an outage
/// or a stopped broker is not quiet) and its high watermark is not past our position. Asked
/// only when a partition has been quiet for `idle_flush`, before its open record is flushed.
fn at_end(consumer: &BaseConsumer<Events>, topic: &str, p: i32) -> bool {
    let Ok((_, high)) = consumer.fetch_watermarks(topic, p, Duration::from_millis(500)) else {
        return false;
    };
    position(consumer, topic, p).is_none_or(|o| o >= high)
}

/// The next offset this worker reads from partition `p`, once it has consumed from it.
fn position(consumer: &BaseConsumer<Events>, topic: &str, p: i32) -> Option<i64> {
    offset_in(&consumer.position().ok()?, topic, p)
}

fn offset_in(tpl: &TopicPartitionList, topic: &str, p: i32) -> Option<i64> {
    match tpl.find_partition(topic, p)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// Whether partition `p` has nothing left to read, for `--exit-when-idle`: like `at_end`, but a
/// partition this worker has not consumed from yet counts as read only when its start (the
/// cut's offset, else the group's committed one, else `kafka.start`) is at the broker's end.
fn caught_up(consumer: &BaseConsumer<Events>, ctx: &Ctx, topic: &str, p: i32) -> bool {
    // Longer than `at_end`'s wait: a broker may answer this only after a pending fetch.
    let Ok((low, high)) = consumer.fetch_watermarks(topic, p, Duration::from_secs(2)) else {
        return false;
    };
    if let Some(o) = position(consumer, topic, p) {
        return o >= high;
    }
    if let Some(o) = ctx.restore.offset(topic, p) {
        return o >= high;
    }
    let mut tpl = TopicPartitionList::new();
    if tpl
        .add_partition(topic, p)
        .set_offset(Offset::Stored)
        .is_err()
    {
        return false;
    }
    match consumer.committed_offsets(tpl, Duration::from_millis(500)) {
        Ok(c) => match offset_in(&c, topic, p) {
            Some(o) => o >= high,
            None => {
                let latest = ctx
                    .plan
                    .kafka
                    .as_ref()
                    .is_some_and(|k| k.start == crate::kafka::Start::Latest);
                latest || high <= low
            }
        },
        Err(_) => false,
    }
}

/// Creates the consumer and assigns this worker's partitions, retrying while the broker or the
/// topic is not there yet.
fn assign(
    ctx: &Ctx,
    topic: &str,
    index: usize,
    peers: usize,
) -> Result<(BaseConsumer<Events>, Vec<i32>), String> {
    let kafka = ctx.plan.kafka.as_ref().ok_or("no [kafka] section")?;
    let cfg = kafka.consumer(&format!("hephaestus-{}-w{index}", ctx.plan.name));
    let consumer: BaseConsumer<Events> = cfg
        .create_with_context(Events::default())
        .map_err(|e| format!("kafka consumer: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_error = None;
    let partitions = loop {
        let found = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(|e| {
                metrics::kafka_consumer_error(&crate::kafka::reason(&e));
                last_error = Some(e);
            })
            .ok()
            .and_then(|md| md.topics().first().map(|t| t.partitions().len()))
            .filter(|&n| n > 0);
        match found {
            Some(n) => break n,
            None if Instant::now() < deadline && !ctx.shutdown.is_triggered() => {
                std::thread::sleep(Duration::from_millis(500))
            }
            None => {
                let brokers = kafka.brokers();
                return Err(match last_error {
                    Some(e) => format!(
                        "kafka: no metadata for topic `{topic}` from {brokers}: {e} (are the \
                         brokers up and reachable?)"
                    ),
                    None => {
                        format!("kafka topic `{topic}` not found at {brokers} (create it first)")
                    }
                });
            }
        }
    };
    let owned: Vec<i32> = (0..partitions as i32)
        .filter(|p| *p as usize % peers == index)
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &owned {
        // The restored cut's offset, where there is one (the state holds exactly what came
        // before it); else `Stored`: the group's committed offset, else `auto.offset.reset`.
        let at = ctx
            .restore
            .offset(topic, *p)
            .map_or(Offset::Stored, Offset::Offset);
        tpl.add_partition_offset(topic, *p, at)
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

/// The source stream of this worker for the plan's Kafka topic. `probes`: the outputs (for
/// back-pressure and commits) and the checkpoints (for commits); `marks`: the output files'
/// lengths (written on worker 0), for the cuts.
pub fn read_kafka<'s>(
    scope: Scope<'s, Epoch>,
    ctx: &Ctx,
    probes: (ProbeHandle<Epoch>, ProbeHandle<Epoch>),
    heads: SharedHeads,
    marks: SharedMarks,
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
        let topic_label = topic.clone();
        let mut quiet: Vec<Quiet> = Vec::new();
        let mut state = match assign(&ctx, &topic, index, peers) {
            Ok((consumer, owned)) => {
                let source = |id: i32| KAFKA_SOURCE_BASE + id as u32;
                quiet = owned
                    .iter()
                    .map(|&id| Quiet {
                        partition: id,
                        source: source(id),
                        last_data: Instant::now(),
                        unflushed: false,
                        read_out: false,
                    })
                    .collect();
                let starts: Vec<Option<i64>> = owned
                    .iter()
                    .map(|&id| ctx.restore.offset(&topic, id))
                    .collect();
                let parts = owned
                    .iter()
                    .zip(starts)
                    .map(|(&id, start)| (id, source(id), start));
                let cuts = ctx.restore.cut_dir.clone().map(|dir| {
                    let marks = (index == 0).then(|| marks.clone());
                    let every = plan.checkpoint_epochs;
                    Cuts::new(dir, every, ctx.restore.clone(), (index, peers), marks)
                });
                Some(Committer::new(
                    consumer,
                    topic,
                    probes.clone(),
                    heads.clone(),
                    parts,
                    cuts,
                ))
            }
            Err(e) => {
                ctx.error(e);
                None
            }
        };
        // A worker with no partition holds on while cuts are kept: it writes its (empty) part
        // of each.
        let cutting = ctx.restore.cut_dir.is_some();
        let mut cap = (state.is_some() && (cutting || !quiet.is_empty())).then_some(cap);
        let mut last_record = Instant::now();
        let mut last_end_check = Instant::now();
        let mut last_error: Option<Instant> = None;
        let (mut last_logged, mut unlogged): (Option<Instant>, u32) = (None, 0);
        let tick = plan.tick_ms.max(1);
        let ingest = metrics::Ingest::new(index, &topic_label);
        move |output| {
            let Some(st) = state.as_mut() else { return };
            if let Some(held) = cap.as_mut() {
                let now_tick = (crate::core::time::now_ms() / tick) as Epoch;
                let epoch = now_tick.max(*held.time());
                // Idle means quiet for the whole period *and* every partition read to the
                // broker's end (asked at most every 500 ms): never a slow first fetch, an outage
                // or back-pressure.
                let idle_exit = plan.exit_when_idle.is_some_and(|d| {
                    let quiet_for = last_record.elapsed() >= d
                        && last_error.is_none_or(|e| e.elapsed() >= d)
                        && last_end_check.elapsed() >= d.min(Duration::from_millis(500));
                    quiet_for && {
                        // A partition once confirmed stays so until its next record: a broker
                        // that answers one query of several in time still lets the job end.
                        for q in quiet.iter_mut().filter(|q| !q.read_out) {
                            q.read_out = caught_up(&st.consumer, &ctx, &topic_label, q.partition);
                        }
                        last_end_check = Instant::now();
                        quiet.iter().all(|q| q.read_out)
                    }
                });
                let stamp = held.delayed(&epoch);
                let mut session = output.session(&stamp);
                let (mut n, mut bytes) = (0usize, 0usize);
                let ingest_ms = crate::core::time::now_ms();
                if ctx.shutdown.is_triggered() || idle_exit {
                    for q in &quiet {
                        session.give(SourceItem::End(q.source));
                    }
                    drop(session);
                    cap = None;
                } else if st.behind(held.time().saturating_sub(plan.max_inflight_epochs)) {
                    // The outputs are behind: leave records in librdkafka's bounded queue (and
                    // do not count the wait as idleness).
                    drop(session);
                    last_record = Instant::now();
                    for q in quiet.iter_mut() {
                        q.last_data = last_record;
                    }
                } else {
                    while n < plan.batch_lines {
                        match st.consumer.poll(Duration::ZERO) {
                            None => break,
                            Some(Err(e)) if crate::kafka::is_fatal_for_consumer(&e) => {
                                metrics::kafka_consumer_error(&crate::kafka::reason(&e));
                                ctx.fail(format!(
                                    "kafka consumer of `{topic_label}`: {e} (the job cannot \
                                     go on; check the credentials and ACLs)"
                                ));
                                break;
                            }
                            Some(Err(e)) => {
                                // Broker unreachable and the like: librdkafka reconnects on its
                                // own. Counted; logged at most every 10 s.
                                metrics::kafka_consumer_error(&crate::kafka::reason(&e));
                                last_error = Some(Instant::now());
                                if last_logged
                                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
                                {
                                    eprintln!(
                                        "hephaestus: kafka: {e} (retrying; {unlogged} more since the last)"
                                    );
                                    unlogged = 0;
                                    last_logged = last_error;
                                } else {
                                    unlogged += 1;
                                }
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
                                st.read(epoch, part, offset);
                                if let Some(q) = quiet.iter_mut().find(|q| q.source == pos.source) {
                                    q.last_data = Instant::now();
                                    q.unflushed = true;
                                    q.read_out = false;
                                }
                            }
                        }
                    }
                    // A partition is idle (its open record flushed) once quiet for
                    // `idle_flush` *and* at the broker's end: never because the broker stopped
                    // answering or the outputs held the source back.
                    let flush_after = Duration::from_millis(plan.idle_flush_ms as u64);
                    for q in quiet
                        .iter_mut()
                        .filter(|q| q.unflushed && q.last_data.elapsed() >= flush_after)
                    {
                        if at_end(&st.consumer, &topic_label, q.partition) {
                            session.give(SourceItem::Idle(q.source));
                            q.unflushed = false;
                        } else {
                            // Asked again after another quiet period.
                            q.last_data = Instant::now();
                        }
                    }
                    drop(session);
                    if n > 0 {
                        last_record = Instant::now();
                        Stats::add(&ctx.stats.lines, n);
                        Stats::add(&ctx.stats.bytes, bytes);
                        ingest.add(n, bytes);
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
