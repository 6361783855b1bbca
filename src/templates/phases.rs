//! The two parallel phases of the `templates` command.
//!
//! In: a round of chunks. Out: each line's `LineKey` and, when its owner's memo knows it, its
//! assignment (phase 1, all workers on even shares of the lines, no strings built, the miners
//! only read); then the slot of every other line (phase 2, miner `w` mines the missed lines it
//! owns, in line order; only those are masked into strings). The result is what mining every
//! line in order would give: the memo only grows within a round. State: none here; the miners
//! belong to the caller.

use super::input::Chunk;
use crate::cluster::mask::{Masker, mask_into};
use crate::cluster::miner::{Miner, Slot};
use crate::cluster::tokens::{KeySink, LineKey, Powers};
use crate::parse::HeaderFormat;
use rustc_hash::FxHashMap;

/// The text that is mined for one line.
pub fn content<'a>(
    line: &'a [u8],
    header: Option<&HeaderFormat>,
    spans: &mut Vec<(usize, usize)>,
    lossy: &'a mut String,
) -> &'a str {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(_) => {
            *lossy = String::from_utf8_lossy(line).into_owned();
            lossy.as_str()
        }
    };
    let text = text.strip_suffix('\r').unwrap_or(text);
    header.and_then(|h| h.content(text, spans)).unwrap_or(text)
}

/// Lines per work item of phase 1: small enough to balance, large enough to be cheap.
const ITEM_LINES: usize = 8192;

/// The miner that owns a partition (a multiply, not a division: this runs once per line).
fn owner(partition: u64, workers: usize) -> usize {
    ((u128::from(partition) * workers as u128) >> 64) as usize
}

/// What phase 1 writes for a line the memo did not know (phase 2 fills it in).
pub const MISS: u32 = u32::MAX;

/// A share of phase 1: lines of one chunk, their keys and codes, and which of them each miner
/// still has to mine.
struct Item<'a> {
    chunk: u32,
    first: u32,
    lines: &'a [(u32, u32)],
    keys: &'a mut [LineKey],
    codes: &'a mut [u32],
    owned: Vec<Vec<u32>>,
}

/// Phase 1: fills `keys[c]` with the key of every line of `chunks[c]` and `codes[c]` with its
/// assignment (`code(worker, slot)`) when its owner's memo already knows the line, else `MISS`;
/// `owned[w]` gets the `(chunk, line)` of every miss miner `w` owns, in line order, and `hits[w]`
/// the memo hits per slot (for `Miner::hits`). The miners are only read. The lines are cut into
/// small items that the workers take from a shared queue, so an uneven chunk costs nothing.
#[allow(clippy::too_many_arguments)]
pub fn keys(
    chunks: &[Chunk],
    header: Option<&HeaderFormat>,
    miners: &[Miner],
    code: impl Fn(usize, Slot) -> u32 + Sync,
    keys: &mut [Vec<LineKey>],
    codes: &mut [Vec<u32>],
    owned: &mut [Vec<(u32, u32)>],
    hits: &mut [FxHashMap<Slot, u64>],
) {
    let workers = miners.len();
    let mut items: Vec<Item> = Vec::new();
    for (c, ((chunk, out), codes)) in chunks
        .iter()
        .zip(keys.iter_mut())
        .zip(codes.iter_mut())
        .enumerate()
    {
        out.clear();
        out.resize(chunk.lines.len(), LineKey::default());
        codes.clear();
        codes.resize(chunk.lines.len(), MISS);
        for (k, ((lines, keys), codes)) in chunk
            .lines
            .chunks(ITEM_LINES)
            .zip(out.chunks_mut(ITEM_LINES))
            .zip(codes.chunks_mut(ITEM_LINES))
            .enumerate()
        {
            items.push(Item {
                chunk: c as u32,
                first: (k * ITEM_LINES) as u32,
                lines,
                keys,
                codes,
                owned: Vec::new(),
            });
        }
    }
    items.reverse();
    let (queue, done, counted) = (
        std::sync::Mutex::new(items),
        std::sync::Mutex::new(Vec::new()),
        std::sync::Mutex::new(Vec::new()),
    );
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let (mut masker, mut pow, mut spans, mut lossy) = (
                    Masker::default(),
                    Powers::default(),
                    Vec::new(),
                    String::new(),
                );
                let mut found: Vec<FxHashMap<Slot, u64>> = vec![FxHashMap::default(); workers];
                while let Some(mut item) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    let chunk = &chunks[item.chunk as usize];
                    item.owned = vec![Vec::new(); workers];
                    let lines = item
                        .keys
                        .iter_mut()
                        .zip(item.codes.iter_mut())
                        .zip(item.lines);
                    for (i, ((k, out), &(a, b))) in lines.enumerate() {
                        let text = content(
                            &chunk.bytes[a as usize..b as usize],
                            header,
                            &mut spans,
                            &mut lossy,
                        );
                        let mut sink = KeySink::new(&mut pow);
                        masker.mask(text, &mut sink);
                        *k = sink.finish();
                        let w = owner(k.partition, workers);
                        match miners[w].peek(k) {
                            Some(slot) => {
                                *out = code(w, slot);
                                *found[w].entry(slot).or_default() += 1;
                            }
                            None => item.owned[w].push(item.first + i as u32),
                        }
                    }
                    if let Ok(mut d) = done.lock() {
                        d.push(item);
                    }
                }
                if let Ok(mut c) = counted.lock() {
                    c.push(found);
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_unstable_by_key(|it| (it.chunk, it.first));
    for (w, list) in owned.iter_mut().enumerate() {
        list.clear();
        for it in &done {
            list.extend(it.owned[w].iter().map(|&i| (it.chunk, i)));
        }
    }
    for h in hits.iter_mut() {
        h.clear();
    }
    for found in counted.into_inner().unwrap_or_default() {
        for (w, f) in found.into_iter().enumerate() {
            for (slot, n) in f {
                *hits[w].entry(slot).or_default() += n;
            }
        }
    }
}

/// Phase 2: each miner counts its memo hits of phase 1, then takes the missed lines it owns,
/// in line order, and records `(chunk, line, slot)` in its `out`.
pub fn mine(
    chunks: &[Chunk],
    keys: &[Vec<LineKey>],
    owned: &[Vec<(u32, u32)>],
    hits: &[FxHashMap<Slot, u64>],
    header: Option<&HeaderFormat>,
    miners: &mut [Miner],
    out: &mut [Vec<(u32, u32, Slot)>],
) {
    std::thread::scope(|s| {
        let work = miners.iter_mut().zip(out.iter_mut()).zip(owned).zip(hits);
        for (((miner, out), lines), hits) in work {
            out.clear();
            if lines.is_empty() {
                for (&slot, &n) in hits {
                    miner.hits(slot, n);
                }
                continue;
            }
            s.spawn(move || {
                for (&slot, &n) in hits {
                    miner.hits(slot, n);
                }
                let (mut tokens, mut spans, mut lossy) = (Vec::new(), Vec::new(), String::new());
                for &(c, i) in lines {
                    let key = &keys[c as usize][i as usize];
                    let slot = miner.insert_keyed(key, &mut tokens, |tokens| {
                        let chunk = &chunks[c as usize];
                        let (a, b) = chunk.lines[i as usize];
                        let text = content(
                            &chunk.bytes[a as usize..b as usize],
                            header,
                            &mut spans,
                            &mut lossy,
                        );
                        mask_into(text, tokens)
                    });
                    out.push((c, i, slot));
                }
            });
        }
    });
}
