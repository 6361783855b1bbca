//! A plain sequential implementation of the job, for checking the dataflow against.
//!
//! Same pure stage logic (reader, joiner, parser, detector, clusterer, incident book), none of
//! the dataflow: no workers, no exchange, no differential. Epochs are assigned as the source
//! does (line `n` of an input at epoch `n / batch_lines`), counts are kept in a `HashMap` with
//! the semantics of differential's `count()` (a change retracts the old count and asserts the
//! new one), and window retractions are applied one epoch later, like the feedback edge.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hephaestus::cluster::Clusterer;
use hephaestus::core::record::{Clustered, ErrorEvent, Incident, Position, RawLine};
use hephaestus::incident::{Book, CountKey};
use hephaestus::multiline::Joiner;
use hephaestus::source::InputKind;
use hephaestus::source::reader::read_all;
use hephaestus::spec::Plan;

#[derive(Default)]
struct Epoch {
    events: Vec<ErrorEvent>,
    /// Newest log timestamp among the records parsed at this epoch; `None` if it had none.
    clock: Option<i64>,
}

/// The incident lines the job should write, in order.
pub fn run(plan: &Plan) -> Vec<String> {
    let b = plan.batch_lines as u64;
    let mut epochs: BTreeMap<u64, Epoch> = BTreeMap::new();
    for input in &plan.inputs {
        let InputKind::File(path) = &input.kind else {
            panic!("reference reads files only")
        };
        let file = std::fs::File::open(path).expect("open input");
        let lines = read_all(file, plan.max_line_bytes).expect("read input");
        let end_epoch = lines.len() as u64 / b;
        let mut joiner = Joiner::new(plan.multiline.clone());
        let mut last_ts: Option<i64> = None;
        let mut emitted: Vec<(u64, RawLine)> = Vec::new();
        for (i, line) in lines.into_iter().enumerate() {
            let epoch = i as u64 / b;
            let pos = Position {
                source: input.id,
                offset: line.offset,
                line: line.number,
            };
            let raw = RawLine {
                pos,
                ingest_ms: 0,
                bytes: line.bytes,
                lines: 1,
                oversize: line.oversize,
                cut: false,
            };
            let mut out = Vec::new();
            joiner.push(raw, line.unterminated, &mut out);
            emitted.extend(out.into_iter().map(|r| (epoch, r)));
        }
        let mut out = Vec::new();
        joiner.flush(true, &mut out);
        emitted.extend(out.into_iter().map(|r| (end_epoch, r)));
        for (epoch, raw) in emitted {
            let (rec, _dead) = input.parser.parse(&raw);
            let Some(mut rec) = rec else { continue };
            match rec.ts {
                Some(t) => last_ts = Some(t),
                None => rec.ts = last_ts,
            }
            let slot = epochs.entry(epoch).or_default();
            if let Some(t) = rec.ts {
                slot.clock = Some(slot.clock.map_or(t, |c| c.max(t)));
            }
            if let Some(ev) = plan.detector.detect(rec) {
                slot.events.push(ev);
            }
        }
    }

    let mut clusterer = Clusterer::new(&plan.cluster_cfg);
    let mut book = Book::new(plan.incident.clone());
    let mut counts: HashMap<CountKey, i64> = HashMap::new();
    let mut retract_next: Vec<(CountKey, isize)> = Vec::new();
    let mut out = Vec::new();
    let mut t = epochs.keys().next().copied().unwrap_or(0);
    loop {
        let epoch = epochs.remove(&t);
        if epoch.is_none() && retract_next.is_empty() {
            match epochs.keys().next().copied() {
                Some(next) => {
                    t = next;
                    continue;
                }
                None => break,
            }
        }
        let mut epoch = epoch.unwrap_or_default();
        if let Some(c) = epoch.clock {
            book.advance_clock(c, true);
        }
        epoch.events.sort_by_key(|e| e.record.pos);
        let clustered: Vec<Clustered> = epoch
            .events
            .into_iter()
            .map(|e| clusterer.cluster(e))
            .collect();
        let mut deltas: HashMap<CountKey, i64> = HashMap::new();
        for c in &clustered {
            let w = plan.incident.window_of(c.event.record.time());
            *deltas.entry((c.route, c.fingerprint, None)).or_default() += 1;
            *deltas.entry((c.route, c.fingerprint, Some(w))).or_default() += 1;
        }
        for (k, d) in retract_next.drain(..) {
            *deltas.entry(k).or_default() += d as i64;
        }
        let mut changes = Vec::new();
        let keys: BTreeSet<CountKey> = deltas.keys().copied().collect();
        for k in keys {
            let old = counts.get(&k).copied().unwrap_or(0);
            let new = old + deltas[&k];
            if old == new {
                continue;
            }
            if old > 0 {
                changes.push((k, old as u64, -1isize));
            }
            if new > 0 {
                changes.push((k, new as u64, 1));
                counts.insert(k, new);
            } else {
                counts.remove(&k);
            }
        }
        for c in &clustered {
            book.observe(c);
        }
        changes.sort_by_key(|&(_, _, d)| d);
        for (k, n, d) in changes {
            book.apply_count(k, n, d);
        }
        let mut emit: Vec<Incident> = Vec::new();
        book.close_epoch(&mut emit, &mut retract_next);
        emit.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        out.extend(emit.iter().map(|i| serde_json::to_string(i).expect("json")));
        t += 1;
    }
    let mut emit = Vec::new();
    book.flush(&mut emit);
    emit.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    out.extend(emit.iter().map(|i| serde_json::to_string(i).expect("json")));
    out
}
