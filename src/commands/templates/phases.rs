//! The two parallel phases of the `templates` command.
//!
//! In: a round of chunks. Out: each line's `LineKey` and, when the miner's memo knows it, its
//! slot (phase 1, all threads on small shares of the lines, no strings built, the miner only
//! read); then the slot of every other line (phase 2, the miner takes the round's lines in
//! order: a memo hit is counted, a miss is masked into strings and mined). The result is what
//! mining every line in order would give: the memo only grows within a round, and the miner
//! sees every hit at its place in the stream. State: none here; the miner belongs to the caller.

use super::input::Chunk;
use crate::cluster::miner::{Miner, Slot};
use crate::core::hash::LineKey;
use crate::mask::tokens::{KeySink, Powers};
use crate::mask::{Masker, mask_into};
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

/// What phase 1 writes for a line the memo did not know (phase 2 fills it in).
pub const MISS: u32 = u32::MAX;

/// A share of phase 1: lines of one chunk, their keys and slots.
struct Item<'a> {
    chunk: &'a Chunk,
    lines: &'a [(u32, u32)],
    keys: &'a mut [LineKey],
    slots: &'a mut [Slot],
}

/// Phase 1: fills `keys[c]` with the key of every line of `chunks[c]` and `slots[c]` with its
/// slot when the miner's memo already knows the line, else `MISS`. The miner is only read.
/// The lines are cut into small items that `threads` threads take from a shared queue, so an
/// uneven chunk costs nothing.
pub fn keys(
    chunks: &[Chunk],
    header: Option<&HeaderFormat>,
    miner: &Miner,
    threads: usize,
    keys: &mut [Vec<LineKey>],
    slots: &mut [Vec<Slot>],
) {
    let mut items: Vec<Item> = Vec::new();
    for ((chunk, keys), slots) in chunks.iter().zip(keys.iter_mut()).zip(slots.iter_mut()) {
        keys.clear();
        keys.resize(chunk.lines.len(), LineKey::default());
        slots.clear();
        slots.resize(chunk.lines.len(), MISS);
        let shares = chunk
            .lines
            .chunks(ITEM_LINES)
            .zip(keys.chunks_mut(ITEM_LINES))
            .zip(slots.chunks_mut(ITEM_LINES));
        for ((lines, keys), slots) in shares {
            items.push(Item {
                chunk,
                lines,
                keys,
                slots,
            });
        }
    }
    let queue = std::sync::Mutex::new(items);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let (mut masker, mut pow, mut spans, mut lossy) = (
                    Masker::default(),
                    Powers::default(),
                    Vec::new(),
                    String::new(),
                );
                while let Some(item) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    let lines = item.keys.iter_mut().zip(item.slots.iter_mut());
                    for ((k, out), &(a, b)) in lines.zip(item.lines) {
                        let bytes = &item.chunk.bytes[a as usize..b as usize];
                        let text = content(bytes, header, &mut spans, &mut lossy);
                        let mut sink = KeySink::new(&mut pow);
                        masker.mask(text, &mut sink);
                        *k = sink.finish();
                        if let Some(slot) = miner.peek(k) {
                            *out = slot;
                        }
                    }
                }
            });
        }
    });
}

/// Phase 2: the miner takes the round's lines in order, counting each memo hit of phase 1
/// (`Miner::hits`) and mining each miss into `slots`.
pub fn mine(
    chunks: &[Chunk],
    keys: &[Vec<LineKey>],
    slots: &mut [Vec<Slot>],
    header: Option<&HeaderFormat>,
    miner: &mut Miner,
) {
    let (mut tokens, mut spans, mut lossy) = (Vec::new(), Vec::new(), String::new());
    for ((chunk, keys), slots) in chunks.iter().zip(keys).zip(slots.iter_mut()) {
        for ((key, slot), &(a, b)) in keys.iter().zip(slots.iter_mut()).zip(&chunk.lines) {
            if *slot != MISS {
                miner.hits(*slot, 1);
                continue;
            }
            *slot = miner.insert_keyed(key, &mut tokens, |tokens| {
                let bytes = &chunk.bytes[a as usize..b as usize];
                mask_into(content(bytes, header, &mut spans, &mut lossy), tokens)
            });
        }
    }
}
