//! The two parallel phases of the `templates` command.
//!
//! In: a round of chunks. Out: each line's `LineKey` (phase 1, all workers on even shares of the
//! lines, no strings built), then each line's miner slot (phase 2, worker `w` mines the lines
//! whose partition is `w` modulo the workers, in line order; only lines the memo has not seen
//! are masked into strings). State: none here; the miners belong to the caller.

use super::input::Chunk;
use crate::cluster::mask::{Masker, mask_into};
use crate::cluster::miner::{Miner, Slot};
use crate::cluster::tokens::{KeySink, LineKey, Powers};
use crate::parse::HeaderFormat;

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

/// A share of phase 1: lines of one chunk, their keys, and which of them each miner owns.
struct Item<'a> {
    chunk: u32,
    first: u32,
    lines: &'a [(u32, u32)],
    keys: &'a mut [LineKey],
    owned: Vec<Vec<u32>>,
}

/// Phase 1: fills `keys[c]` with the key of every line of `chunks[c]`, and `owned[w]` with the
/// `(chunk, line)` of every line miner `w` owns, in line order. The lines are cut into small
/// items that the workers take from a shared queue, so an uneven chunk costs nothing.
pub fn keys(
    chunks: &[Chunk],
    header: Option<&HeaderFormat>,
    workers: usize,
    keys: &mut [Vec<LineKey>],
    owned: &mut [Vec<(u32, u32)>],
) {
    let mut items: Vec<Item> = Vec::new();
    for (c, (chunk, out)) in chunks.iter().zip(keys.iter_mut()).enumerate() {
        out.clear();
        out.resize(chunk.lines.len(), LineKey::default());
        for (k, (lines, keys)) in chunk
            .lines
            .chunks(ITEM_LINES)
            .zip(out.chunks_mut(ITEM_LINES))
            .enumerate()
        {
            items.push(Item {
                chunk: c as u32,
                first: (k * ITEM_LINES) as u32,
                lines,
                keys,
                owned: Vec::new(),
            });
        }
    }
    items.reverse();
    let (queue, done) = (
        std::sync::Mutex::new(items),
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
                while let Some(mut item) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    let chunk = &chunks[item.chunk as usize];
                    item.owned = vec![Vec::new(); workers];
                    for (i, (k, &(a, b))) in item.keys.iter_mut().zip(item.lines).enumerate() {
                        let text = content(
                            &chunk.bytes[a as usize..b as usize],
                            header,
                            &mut spans,
                            &mut lossy,
                        );
                        let mut sink = KeySink::new(&mut pow);
                        masker.mask(text, &mut sink);
                        *k = sink.finish();
                        item.owned[owner(k.partition, workers)].push(item.first + i as u32);
                    }
                    if let Ok(mut d) = done.lock() {
                        d.push(item);
                    }
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
}

/// Phase 2: each miner takes the lines it owns, in line order, and records `(chunk, line,
/// slot)` in its `out`.
pub fn mine(
    chunks: &[Chunk],
    keys: &[Vec<LineKey>],
    owned: &[Vec<(u32, u32)>],
    header: Option<&HeaderFormat>,
    miners: &mut [Miner],
    out: &mut [Vec<(u32, u32, Slot)>],
) {
    std::thread::scope(|s| {
        for ((miner, out), lines) in miners.iter_mut().zip(out.iter_mut()).zip(owned) {
            out.clear();
            s.spawn(move || {
                let (mut tokens, mut spans, mut lossy) = (Vec::new(), Vec::new(), String::new());
                for &(c, i) in lines {
                    let key = &keys[c as usize][i as usize];
                    let slot = match miner.lookup(key) {
                        Some(slot) => slot,
                        None => {
                            let chunk = &chunks[c as usize];
                            let (a, b) = chunk.lines[i as usize];
                            let text = content(
                                &chunk.bytes[a as usize..b as usize],
                                header,
                                &mut spans,
                                &mut lossy,
                            );
                            mask_into(text, &mut tokens);
                            miner.insert_new(&tokens, key)
                        }
                    };
                    out.push((c, i, slot));
                }
            });
        }
    });
}
