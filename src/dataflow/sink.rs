//! Sinks: incidents and dead letters as JSON lines.
//!
//! In: `Incident` updates and `DeadLetter`s from every worker, exchanged to worker 0, which holds
//! each epoch until it is complete and writes it in a deterministic order (incidents by
//! fingerprint, dead letters by position), so the output is byte-identical for any number of
//! workers and processes. Out: lines on stdout, stderr or a file, and incidents handed to the
//! model stage when it runs. State: the writer, the epochs
//! not yet complete, and the set of fingerprints written (for the summary).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};

use serde::Serialize;
use timely::ExchangeData;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Capability, Operator};

use crate::core::epoch::Epoch;
use crate::core::record::{DeadLetter, Incident};
use crate::dataflow::ctx::Ctx;
use crate::metrics::Stats;
use crate::model::queue::Handoff;
use crate::spec::Sink;

fn open(sink: &Sink) -> std::io::Result<Option<Box<dyn Write>>> {
    Ok(match sink {
        Sink::None => None,
        Sink::Stdout => Some(Box::new(BufWriter::new(std::io::stdout()))),
        Sink::Stderr => Some(Box::new(BufWriter::new(std::io::stderr()))),
        Sink::File(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Some(Box::new(BufWriter::new(File::create(path)?)))
        }
    })
}

/// Collects a stream on worker 0 and hands each completed epoch, in order, to `write`.
///
/// The returned (empty) stream passes an epoch only once `write` has returned `true` for it:
/// each pending epoch holds a capability until then, so a probe on it, which the Kafka source
/// commits by, never runs ahead of what is on disk. An epoch whose write failed keeps its
/// capability; the write has already failed the job (`Ctx::fail`), which stops the workers.
fn collect_epochs<'s, D, W>(
    stream: StreamVec<'s, Epoch, D>,
    name: &str,
    mut write: W,
) -> StreamVec<'s, Epoch, ()>
where
    D: ExchangeData,
    W: FnMut(Vec<D>) -> bool + 'static,
{
    let mut pending: BTreeMap<Epoch, (Capability<Epoch>, Vec<D>)> = BTreeMap::new();
    let mut failed: Vec<Capability<Epoch>> = Vec::new();
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &D| 0),
        name,
        move |_cap, _info| {
            move |(input, frontier), _output| {
                input.for_each_stamp(|cap, data| {
                    if let Some(t) = cap.least().copied() {
                        let slot = pending
                            .entry(t)
                            .or_insert_with(|| (cap.delayed(&t, 0), Vec::new()));
                        for batch in data {
                            slot.1.append(batch);
                        }
                    }
                });
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (cap, batch) = entry.remove();
                    if !write(batch) {
                        failed.push(cap);
                    }
                }
            }
        },
    )
}

/// A JSON-lines writer that fails the job at the first error and stops writing after it.
struct Lines {
    out: Option<Box<dyn Write>>,
    /// The output could not be opened or written: no epoch passes any more.
    broken: bool,
    what: &'static str,
    ctx: Ctx,
}

impl Lines {
    fn new(sink: &Sink, what: &'static str, ctx: &Ctx, active: bool) -> Lines {
        let out = if active {
            open(sink).unwrap_or_else(|e| {
                ctx.fail(format!("{what} output {sink:?}: {e}"));
                None
            })
        } else {
            None
        };
        Lines {
            broken: active && out.is_none() && !matches!(sink, Sink::None),
            out,
            what,
            ctx: ctx.clone(),
        }
    }

    /// Writes and flushes one epoch's lines; false (and the job failed) when that did not work.
    fn write<T: Serialize>(&mut self, items: impl IntoIterator<Item = T>) -> bool {
        let Some(out) = self.out.as_mut() else {
            return !self.broken;
        };
        let result = items.into_iter().try_for_each(|item| {
            serde_json::to_writer(&mut *out, &item).map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        });
        if let Err(e) = result.and_then(|()| out.flush()) {
            self.ctx.fail(format!("writing {}: {e}", self.what));
            self.out = None;
            self.broken = true;
            return false;
        }
        true
    }
}

/// Dead letters as written: the input's name instead of its id.
#[derive(Serialize)]
struct DeadLine<'a> {
    source: &'a str,
    line: u64,
    offset: u64,
    reason: &'static str,
    detail: &'a str,
    bytes: u64,
    preview: &'a str,
}

/// The incidents output.
pub trait WriteIncidents<'s> {
    /// Writes the incidents on worker 0 and hands them to the model stage (`model`), when it
    /// runs; the returned stream passes an epoch once it is on disk.
    fn write_incidents(self, ctx: &Ctx, model: Option<Handoff>) -> StreamVec<'s, Epoch, ()>;
}

impl<'s> WriteIncidents<'s> for StreamVec<'s, Epoch, Incident> {
    fn write_incidents(self, ctx: &Ctx, model: Option<Handoff>) -> StreamVec<'s, Epoch, ()> {
        let mut lines = Lines::new(
            &ctx.plan.incidents,
            "incidents",
            ctx,
            self.scope().index() == 0,
        );
        let stats = ctx.stats.clone();
        let model = model.filter(|_| self.scope().index() == 0);
        let mut seen: HashSet<String> = HashSet::new();
        collect_epochs(self, "WriteIncidents", move |mut batch: Vec<Incident>| {
            batch.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
            for i in &batch {
                if !seen.contains(&i.fingerprint) {
                    seen.insert(i.fingerprint.clone());
                    Stats::add(&stats.incidents, 1);
                }
            }
            let written = lines.write(&batch);
            if let Some(model) = model.as_ref().filter(|_| written) {
                model.offer(batch);
            }
            written
        })
    }
}

/// The dead-letter output.
pub trait WriteDeadLetters<'s> {
    /// Writes the dead letters; the returned stream passes an epoch once it is on disk.
    fn write_dead_letters(self, ctx: &Ctx) -> StreamVec<'s, Epoch, ()>;
}

impl<'s> WriteDeadLetters<'s> for StreamVec<'s, Epoch, DeadLetter> {
    fn write_dead_letters(self, ctx: &Ctx) -> StreamVec<'s, Epoch, ()> {
        let mut lines = Lines::new(
            &ctx.plan.dead_letters,
            "dead letters",
            ctx,
            self.scope().index() == 0,
        );
        let plan = ctx.plan.clone();
        collect_epochs(
            self,
            "WriteDeadLetters",
            move |mut batch: Vec<DeadLetter>| {
                batch.sort_by_key(|d| (d.pos, d.reason));
                let mut names: std::collections::HashMap<u32, String> = Default::default();
                for d in &batch {
                    names
                        .entry(d.pos.source)
                        .or_insert_with(|| plan.source_name(d.pos.source));
                }
                lines.write(batch.iter().map(|d| DeadLine {
                    source: names.get(&d.pos.source).map_or("?", String::as_str),
                    line: d.pos.line,
                    offset: d.pos.offset,
                    reason: d.reason.as_str(),
                    detail: &d.detail,
                    bytes: d.bytes,
                    preview: &d.preview,
                }))
            },
        )
    }
}
