//! Sinks: incidents and dead letters as JSON lines.
//!
//! In: `Incident` updates and `DeadLetter`s from every worker, exchanged to worker 0, which holds
//! each epoch until it is complete and writes it in a deterministic order (incidents by
//! fingerprint, dead letters by position), so the output is byte-identical for any number of
//! workers and processes. Out: lines on stdout, stderr or a file, and incidents handed to the
//! model stage when it runs; each file's length after each epoch, for the Kafka source's cuts
//! (a restart cuts the file back to its length at the cut it resumes from). State: the writer,
//! the epochs not yet complete, and the set of fingerprints written (for the summary).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};

use serde::Serialize;
use timely::ExchangeData;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Capability, Operator};

use crate::core::cut::SharedMarks;
use crate::core::epoch::Epoch;
use crate::core::record::{DeadLetter, Incident};
use crate::dataflow::ctx::Ctx;
use crate::metrics::Stats;
use crate::model::queue::Handoff;
use crate::spec::Sink;

/// Opens an output. A file that a restored cut recorded (`keep`: its length then) is cut back
/// to that length and appended to: what a crashed run wrote past the cut goes, and is written
/// again from the replayed input. Returns the writer and the length it starts at.
fn open(sink: &Sink, keep: Option<u64>) -> std::io::Result<Option<(Box<dyn Write>, u64)>> {
    Ok(match sink {
        Sink::None => None,
        Sink::Stdout => Some((Box::new(BufWriter::new(std::io::stdout())), 0)),
        Sink::Stderr => Some((Box::new(BufWriter::new(std::io::stderr())), 0)),
        Sink::File(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let (file, at) = match keep {
                Some(bytes) => {
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(path)?;
                    let meta = file.metadata()?;
                    if meta.is_file() && meta.len() < bytes {
                        return Err(std::io::Error::other(format!(
                            "{} is {} bytes, shorter than the {bytes} the checkpoint recorded \
                             (changed since?): move it away to start a new one",
                            path.display(),
                            meta.len()
                        )));
                    }
                    if meta.is_file() {
                        file.set_len(bytes)?;
                    }
                    file.seek(SeekFrom::End(0))?;
                    (file, bytes)
                }
                None => (File::create(path)?, 0),
            };
            Some((Box::new(BufWriter::new(file)), at))
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
    W: FnMut(Epoch, Vec<D>) -> bool + 'static,
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
                    let t = *entry.key();
                    let (cap, batch) = entry.remove();
                    if !write(t, batch) {
                        failed.push(cap);
                    }
                }
            }
        },
    )
}

/// A JSON-lines writer that fails the job at the first error and stops writing after it.
struct Lines {
    out: Option<Counting>,
    /// The output could not be opened or written: no epoch passes any more.
    broken: bool,
    /// The output's name in cuts (`incidents`, `dead_letters`).
    name: &'static str,
    what: &'static str,
    ctx: Ctx,
    /// A file's length after each epoch, for the cuts.
    marks: Option<SharedMarks>,
}

/// A writer that counts the bytes that went through it.
struct Counting {
    inner: Box<dyn Write>,
    bytes: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Lines {
    fn new(
        sink: &Sink,
        (name, what): (&'static str, &'static str),
        ctx: &Ctx,
        marks: Option<SharedMarks>,
    ) -> Lines {
        let path = match sink {
            Sink::File(path) => Some(path),
            _ => None,
        };
        let keep = path.and_then(|p| ctx.restore.written(name, p));
        let out = match marks.as_ref().map(|_| open(sink, keep)) {
            None => None,
            Some(Ok(out)) => out,
            Some(Err(e)) => {
                ctx.fail(format!("{what} output {sink:?}: {e}"));
                None
            }
        };
        if let (Some(m), Some(path), Some((_, at))) = (&marks, path, &out) {
            m.borrow_mut().open(name, path, *at);
        }
        Lines {
            broken: marks.is_some() && out.is_none() && !matches!(sink, Sink::None),
            out: out.map(|(inner, bytes)| Counting { inner, bytes }),
            name,
            what,
            ctx: ctx.clone(),
            marks: marks.filter(|_| path.is_some()),
        }
    }

    /// Writes and flushes epoch `t`'s lines; false (and the job failed) when that did not work.
    fn write<T: Serialize>(&mut self, t: Epoch, items: impl IntoIterator<Item = T>) -> bool {
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
        if let Some(m) = &self.marks {
            m.borrow_mut().wrote(self.name, t, out.bytes);
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
    /// runs; the returned stream passes an epoch once it is on disk. `marks` receives the
    /// file's length after each epoch.
    fn write_incidents(
        self,
        ctx: &Ctx,
        model: Option<Handoff>,
        marks: SharedMarks,
    ) -> StreamVec<'s, Epoch, ()>;
}

impl<'s> WriteIncidents<'s> for StreamVec<'s, Epoch, Incident> {
    fn write_incidents(
        self,
        ctx: &Ctx,
        model: Option<Handoff>,
        marks: SharedMarks,
    ) -> StreamVec<'s, Epoch, ()> {
        let marks = (self.scope().index() == 0).then_some(marks);
        let mut lines = Lines::new(&ctx.plan.incidents, ("incidents", "incidents"), ctx, marks);
        let stats = ctx.stats.clone();
        let model = model.filter(|_| self.scope().index() == 0);
        let mut seen: HashSet<String> = HashSet::new();
        collect_epochs(
            self,
            "WriteIncidents",
            move |t, mut batch: Vec<Incident>| {
                batch.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
                for i in &batch {
                    if !seen.contains(&i.fingerprint) {
                        seen.insert(i.fingerprint.clone());
                        Stats::add(&stats.incidents, 1);
                    }
                }
                let written = lines.write(t, &batch);
                if let Some(model) = model.as_ref().filter(|_| written) {
                    model.offer(batch);
                }
                written
            },
        )
    }
}

/// The dead-letter output.
pub trait WriteDeadLetters<'s> {
    /// Writes the dead letters; the returned stream passes an epoch once it is on disk.
    /// `marks` receives the file's length after each epoch.
    fn write_dead_letters(self, ctx: &Ctx, marks: SharedMarks) -> StreamVec<'s, Epoch, ()>;
}

impl<'s> WriteDeadLetters<'s> for StreamVec<'s, Epoch, DeadLetter> {
    fn write_dead_letters(self, ctx: &Ctx, marks: SharedMarks) -> StreamVec<'s, Epoch, ()> {
        let marks = (self.scope().index() == 0).then_some(marks);
        let sink = &ctx.plan.dead_letters;
        let mut lines = Lines::new(sink, ("dead_letters", "dead letters"), ctx, marks);
        let plan = ctx.plan.clone();
        collect_epochs(
            self,
            "WriteDeadLetters",
            move |t, mut batch: Vec<DeadLetter>| {
                batch.sort_by_key(|d| (d.pos, d.reason));
                let mut names: std::collections::HashMap<u32, String> = Default::default();
                for d in &batch {
                    names
                        .entry(d.pos.source)
                        .or_insert_with(|| plan.source_name(d.pos.source));
                }
                lines.write(
                    t,
                    batch.iter().map(|d| DeadLine {
                        source: names.get(&d.pos.source).map_or("?", String::as_str),
                        line: d.pos.line,
                        offset: d.pos.offset,
                        reason: d.reason.as_str(),
                        detail: &d.detail,
                        bytes: d.bytes,
                        preview: &d.preview,
                    }),
                )
            },
        )
    }
}
