//! The source operator: reads this worker's inputs and stamps lines with epochs.
//!
//! In: the plan's inputs (each worker owns `id % peers == index`). Out: `SourceItem`s. Replays
//! stamp line `n` of an input with epoch `n / batch_lines`, the same for any number of workers;
//! live inputs (stdin, `follow`) are stamped with wall-clock ticks so that idle inputs never hold
//! progress back. An input does not run more than `max_inflight_epochs` ahead of the output
//! (back-pressure through the probe). State: each owned input's reader and epoch. stdin is read
//! by a thread of its own so that the worker never blocks.

use std::io::BufReader;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use crate::core::epoch::Epoch;
use crate::core::record::{Position, RawLine};
use crate::dataflow::ctx::Ctx;
use crate::metrics::{self, Stats};
use crate::source::pace::Pacer;
use crate::source::reader::{Line, LineReader, Next, open_file};
use crate::source::{InputKind, InputPlan, SourceItem};

/// Where an input's lines come from.
enum Feed {
    File {
        reader: LineReader,
        path: std::path::PathBuf,
        ino: u64,
        checked: Instant,
    },
    /// Lines from the stdin thread; `None` from the channel means end of input.
    Stdin(Receiver<std::io::Result<Option<Line>>>),
}

struct Active {
    id: u32,
    feed: Feed,
    epoch: Epoch,
    /// Lines stamped with `epoch` so far (a replay moves on after `batch_lines`).
    in_epoch: usize,
    /// A line read but not yet due (`--speedup`).
    held: Option<Line>,
    /// Passes over the input still to start after this one (`--loop`).
    loops_left: u32,
    done: bool,
    last_data: Instant,
    unflushed: bool,
    ingest: metrics::Ingest,
}

fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.ino())
}

fn open(input: &InputPlan, limit: usize) -> std::io::Result<Feed> {
    match &input.kind {
        InputKind::File(path) => {
            let (inner, gz) = open_file(path)?;
            let follow = input.follow && !gz;
            Ok(Feed::File {
                reader: LineReader::new(inner, limit, follow),
                path: path.clone(),
                ino: inode(path),
                checked: Instant::now(),
            })
        }
        InputKind::Stdin => {
            let (tx, rx) = sync_channel(1 << 14);
            std::thread::Builder::new()
                .name("stdin".into())
                .spawn(move || {
                    let mut reader = LineReader::new(
                        Box::new(BufReader::with_capacity(1 << 16, std::io::stdin())),
                        limit,
                        false,
                    );
                    loop {
                        let item = match reader.next_line() {
                            Ok(Next::Line(line)) => Ok(Some(line)),
                            Ok(_) => Ok(None),
                            Err(e) => Err(e),
                        };
                        let last = !matches!(item, Ok(Some(_)));
                        if tx.send(item).is_err() || last {
                            break;
                        }
                    }
                })?;
            Ok(Feed::Stdin(rx))
        }
    }
}

impl Feed {
    fn next_line(&mut self) -> std::io::Result<Next> {
        match self {
            Feed::File {
                reader,
                path,
                ino,
                checked,
            } => {
                let next = reader.next_line()?;
                if next == Next::Pending && checked.elapsed() >= Duration::from_secs(1) {
                    // Following: a rotated file (new inode) or a truncated one starts over.
                    *checked = Instant::now();
                    let now_ino = inode(path);
                    let len = std::fs::metadata(path.as_path()).map_or(u64::MAX, |m| m.len());
                    if (now_ino != 0 && now_ino != *ino) || len < reader.offset() {
                        let (inner, _) = open_file(path)?;
                        reader.reset(inner);
                        *ino = now_ino;
                    }
                }
                Ok(next)
            }
            Feed::Stdin(rx) => match rx.try_recv() {
                Ok(Ok(Some(line))) => Ok(Next::Line(line)),
                Ok(Ok(None)) | Err(TryRecvError::Disconnected) => Ok(Next::Eof),
                Ok(Err(e)) => Err(e),
                Err(TryRecvError::Empty) => Ok(Next::Pending),
            },
        }
    }
}

/// With `--speedup`: whether a line is due by the timestamp it starts with (a line without
/// one is due at once, right after the line before it).
fn due(pacer: &Pacer, line: &Line, default_year: i32) -> bool {
    if pacer.pacing.speedup.is_none() {
        return true;
    }
    let text = String::from_utf8_lossy(&line.bytes[..line.bytes.len().min(64)]);
    match crate::core::timestamp::parse_prefix(text.trim_start(), default_year) {
        Some((ts, _)) => pacer.due(ts),
        None => true,
    }
}

/// The source stream of this worker.
pub fn read_inputs<'s>(
    scope: Scope<'s, Epoch>,
    ctx: &Ctx,
    probe: ProbeHandle<Epoch>,
    pacer: Arc<Pacer>,
) -> StreamVec<'s, Epoch, SourceItem> {
    let ctx = ctx.clone();
    let (index, peers) = (scope.index(), scope.peers());
    source(scope, "Source", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let plan = ctx.plan.clone();
        let live = plan.live;
        let tick = plan.tick_ms.max(1);
        let mut actives: Vec<Active> = Vec::new();
        for input in plan
            .inputs
            .iter()
            .filter(|i| i.id as usize % peers == index)
        {
            match open(input, plan.max_line_bytes) {
                Ok(feed) => actives.push(Active {
                    id: input.id,
                    feed,
                    epoch: 0,
                    in_epoch: 0,
                    held: None,
                    loops_left: plan.pacing.loops.saturating_sub(1),
                    done: false,
                    last_data: Instant::now(),
                    unflushed: false,
                    ingest: metrics::Ingest::new(index, &input.label),
                }),
                Err(e) => ctx.error(format!("input {}: {e}", input.name)),
            }
        }
        let op_metrics = metrics::OperatorMetrics::new("source", index, &["ok"]);
        let mut latency = metrics::Batch::default();
        let mut cap = (!actives.is_empty()).then_some(cap);
        move |output| {
            let Some(held) = cap.as_mut() else { return };
            let stop = ctx.shutdown.is_triggered();
            let now_tick = (crate::core::time::now_ms() / tick) as Epoch;
            let (mut lines, mut bytes) = (0usize, 0usize);
            let mut waiting = false;
            for a in actives.iter_mut().filter(|a| !a.done) {
                let epoch = if live {
                    now_tick.max(*held.time())
                } else {
                    a.epoch
                };
                if stop {
                    output
                        .session(&held.delayed(&epoch))
                        .give(SourceItem::End(a.id));
                    a.done = true;
                    continue;
                }
                if probe.less_than(&epoch.saturating_sub(plan.max_inflight_epochs)) {
                    waiting = true;
                    continue;
                }
                let stamp = held.delayed(&epoch);
                let mut session = output.session(&stamp);
                let mut input_bytes = 0;
                let mut n = 0;
                let ingest_ms = crate::core::time::now_ms();
                // A replay at a fixed rate reads only what the pacer releases.
                let limit = if live {
                    plan.batch_lines
                } else {
                    pacer.take(plan.batch_lines - a.in_epoch)
                };
                if limit == 0 {
                    waiting = true;
                }
                while n < limit {
                    let next = match a.held.take() {
                        Some(line) => Ok(Next::Line(line)),
                        None => a.feed.next_line(),
                    };
                    match next {
                        Ok(Next::Line(line)) if !due(&pacer, &line, plan.default_year) => {
                            a.held = Some(line);
                            waiting = true;
                            break;
                        }
                        Ok(Next::Eof) if a.loops_left > 0 => {
                            a.loops_left -= 1;
                            match open(&plan.inputs[a.id as usize], plan.max_line_bytes) {
                                Ok(feed) => a.feed = feed,
                                Err(e) => {
                                    ctx.error(format!(
                                        "input {}: {e}",
                                        plan.inputs[a.id as usize].name
                                    ));
                                    session.give(SourceItem::End(a.id));
                                    a.done = true;
                                    break;
                                }
                            }
                        }
                        Ok(Next::Line(line)) => {
                            n += 1;
                            input_bytes += line.oversize.map_or(line.bytes.len(), |l| l as usize);
                            let pos = Position {
                                source: a.id,
                                offset: line.offset,
                                line: line.number,
                            };
                            let raw = RawLine {
                                pos,
                                ingest_ms,
                                bytes: line.bytes,
                                lines: 1,
                                oversize: line.oversize,
                                cut: false,
                            };
                            session.give(SourceItem::Line(raw, line.unterminated));
                        }
                        Ok(Next::Pending) => {
                            waiting = true;
                            if a.unflushed
                                && a.last_data.elapsed()
                                    >= Duration::from_millis(plan.idle_flush_ms as u64)
                            {
                                session.give(SourceItem::Idle(a.id));
                                a.unflushed = false;
                            }
                            break;
                        }
                        Ok(Next::Eof) => {
                            session.give(SourceItem::End(a.id));
                            a.done = true;
                            break;
                        }
                        Err(e) => {
                            ctx.error(format!("input {}: {e}", plan.inputs[a.id as usize].name));
                            session.give(SourceItem::End(a.id));
                            a.done = true;
                            break;
                        }
                    }
                }
                if n > 0 {
                    a.last_data = Instant::now();
                    a.unflushed = true;
                }
                a.ingest.add(n, input_bytes);
                lines += n;
                bytes += input_bytes;
                a.in_epoch += n;
                if !live && a.in_epoch >= plan.batch_lines {
                    a.epoch += 1;
                    a.in_epoch = 0;
                }
            }
            if lines > 0 {
                Stats::add(&ctx.stats.lines, lines);
                Stats::add(&ctx.stats.bytes, bytes);
                op_metrics.batch(0, &[lines]);
                // Lines are stamped as they are read: their latency here is zero.
                latency.observe_n(0.0, lines as u64);
                op_metrics.latency(&mut latency);
            }
            let next = actives
                .iter()
                .filter(|a| !a.done)
                .map(|a| if live { now_tick } else { a.epoch })
                .min();
            match next {
                None => cap = None,
                Some(t) => {
                    if t > *held.time() {
                        held.downgrade(&t);
                    }
                    if waiting && lines == 0 {
                        activator.activate_after(Duration::from_millis(if live { 10 } else { 1 }));
                    } else {
                        activator.activate();
                    }
                }
            }
        }
    })
}
