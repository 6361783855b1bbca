//! The miner's second way to find variables: by rarity. A token that only one line in the
//! stream has ever carried is a value, whatever it looks like (`kappa7`, `deadbeef`, a user
//! name); two clusters that align except at such tokens, or at wildcards, are one event, even
//! when their lengths differ (`align.rs`).
//!
//! In: every line the memo missed (its tokens are counted per partition) and every new cluster
//! (queued). Out: merges, decided late: a new cluster waits `SETTLE_AFTER` distinct lines of its
//! partition (or `Miner::settle`) so that a word that looked rare when it first came (`startup`
//! in the first `startup succeeded` line) has had the time to show it is not. State, per
//! partition and bounded: token counts, postings from each constant token to the clusters that
//! have it (the candidates a new line is aligned with), and the queue of new clusters.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::{Miner, Slot, Slots};
use crate::cluster::align::{Alignment, align};
use crate::mask::tokens::Tok;

/// Distinct lines a new cluster waits before it is aligned with the others.
const SETTLE_AFTER: u64 = 2048;
/// New clusters waiting at most, per partition (the oldest settles early beyond it).
const MAX_WAITING: usize = 4096;
/// Token counts kept per partition before the once-seen ones are forgotten.
const MAX_COUNTED: usize = 1 << 16;
/// Clusters remembered per token (the most recent), and aligned with per settling.
const MAX_POSTED: usize = 32;
/// Lengths aligned with: a value may take up to this many tokens more or fewer.
const MAX_SKEW: usize = 3;

#[derive(Default)]
pub(super) struct Part {
    lines: u64,
    counts: FxHashMap<u64, u32>,
    postings: FxHashMap<u64, Slots>,
    waiting: VecDeque<(u64, Slot, u64)>,
}

#[derive(Default)]
pub(super) struct Rarity {
    pub(super) parts: FxHashMap<u64, Part>,
}

impl Part {
    fn count(&mut self, toks: &[Tok]) {
        self.lines += 1;
        for t in toks.iter().filter(|t| !t.wild) {
            *self.counts.entry(t.hash).or_default() += 1;
        }
        if self.counts.len() > MAX_COUNTED {
            self.counts.retain(|_, n| *n > 1);
            if self.counts.len() > MAX_COUNTED / 2 {
                self.counts.clear();
            }
        }
    }

    fn seen(&self, t: &Tok) -> u32 {
        self.counts.get(&t.hash).copied().unwrap_or(0)
    }
}

impl Miner {
    /// Counts the tokens of a line the memo missed, in its partition.
    pub(super) fn count_tokens(&mut self, partition: u64, toks: &[Tok]) {
        self.rarity.parts.entry(partition).or_default().count(toks);
    }

    /// Posts a cluster under its constant tokens, so that later lines find it.
    pub(super) fn post(&mut self, partition: u64, slot: Slot) {
        let toks = &self.nodes[slot as usize]
            .as_ref()
            .expect("slot in use")
            .toks;
        let part = self.rarity.parts.entry(partition).or_default();
        for t in toks.iter().filter(|t| !t.wild && !t.var_only) {
            let list = part.postings.entry(t.hash).or_default();
            if list.last() != Some(&slot) && !list.contains(&slot) {
                if list.len() >= MAX_POSTED {
                    list.remove(0);
                }
                list.push(slot);
            }
        }
    }

    /// Forgets an evicted cluster's postings.
    pub(super) fn unpost(&mut self, partition: u64, slot: Slot, toks: &[Tok]) {
        if let Some(part) = self.rarity.parts.get_mut(&partition) {
            for t in toks.iter().filter(|t| !t.wild && !t.var_only) {
                if let Some(list) = part.postings.get_mut(&t.hash) {
                    list.retain(|s| *s != slot);
                    if list.is_empty() {
                        part.postings.remove(&t.hash);
                    }
                }
            }
        }
    }

    /// Queues a new cluster to be aligned once the stream has shown which of its words are
    /// rare, then settles the clusters that have waited long enough.
    pub(super) fn wait(&mut self, partition: u64, slot: Slot) {
        let seq = self.node(slot).seq;
        let part = self.rarity.parts.entry(partition).or_default();
        part.waiting.push_back((part.lines, slot, seq));
        loop {
            let part = self.rarity.parts.entry(partition).or_default();
            let due = part.waiting.front().is_some_and(|&(at, _, _)| {
                at + SETTLE_AFTER <= part.lines || part.waiting.len() > MAX_WAITING
            });
            if !due {
                return;
            }
            if let Some((_, s, seq)) = part.waiting.pop_front() {
                self.settle_one(partition, s, seq);
            }
        }
    }

    /// Settles every waiting cluster now (the end of the input).
    pub fn settle(&mut self) {
        let mut parts: Vec<u64> = self.rarity.parts.keys().copied().collect();
        parts.sort_unstable();
        for p in parts {
            while let Some((_, s, seq)) = self
                .rarity
                .parts
                .get_mut(&p)
                .and_then(|part| part.waiting.pop_front())
            {
                self.settle_one(p, s, seq);
            }
        }
    }

    /// Is the token at `pos` of root `slot` a value seen once: in one line, seen once?
    fn rare(&self, part: &Part, slot: Slot, pos: usize) -> bool {
        let n = self.node(slot);
        let t = &n.toks[pos];
        !t.wild && !t.var_only && n.size <= 1 && part.seen(t) <= 1
    }

    /// Aligns a waiting cluster with the clusters that share its least common constant token
    /// and merges it into the best convincing one.
    fn settle_one(&mut self, partition: u64, slot: Slot, seq: u64) {
        let alive = self.nodes.get(slot as usize).and_then(Option::as_ref);
        if alive.is_none_or(|n| n.seq != seq) || self.find(slot) != slot {
            return;
        }
        let Some(part) = self.rarity.parts.get(&partition) else {
            return;
        };
        let me = self.node(slot);
        let line = me.toks.clone();
        let line_rare: Vec<bool> = (0..line.len()).map(|i| self.rare(part, slot, i)).collect();
        // The candidates: the clusters posted under the line's two least common constant
        // tokens (every candidate must keep the line's common tokens).
        let mut anchors: Vec<(u32, u64)> = line
            .iter()
            .zip(&line_rare)
            .filter(|(t, r)| !t.wild && !t.var_only && !**r)
            .map(|(t, _)| (part.seen(t), t.hash))
            .collect();
        anchors.sort_unstable();
        anchors.dedup();
        let mut candidates: Vec<Slot> = Vec::new();
        for (_, h) in anchors.iter().take(2) {
            if let Some(list) = part.postings.get(h) {
                candidates.extend(list.iter().rev());
            }
        }
        let mut best: Option<(Alignment, Slot)> = None;
        let mut roots: Vec<Slot> = Vec::new();
        for s in candidates {
            if self.nodes.get(s as usize).is_none_or(Option::is_none) {
                continue;
            }
            let r = self.find(s);
            if r == slot || roots.contains(&r) {
                continue;
            }
            roots.push(r);
            let tpl = &self.node(r).toks;
            if tpl.len().abs_diff(line.len()) > MAX_SKEW {
                continue;
            }
            let Some(part) = self.rarity.parts.get(&partition) else {
                return;
            };
            let found = align(&line, tpl, |i| line_rare[i], |j| self.rare(part, r, j));
            let Some(al) = found.filter(Alignment::convincing) else {
                continue;
            };
            let better = best.as_ref().is_none_or(|(b, bs)| {
                (
                    al.kept,
                    std::cmp::Reverse(al.ops),
                    std::cmp::Reverse(self.node(r).seq),
                ) > (
                    b.kept,
                    std::cmp::Reverse(b.ops),
                    std::cmp::Reverse(self.node(*bs).seq),
                )
            });
            if better {
                best = Some((al, r));
            }
        }
        if let Some((al, root)) = best {
            self.union(root, &[slot]);
            self.widen(slot, &al.line_wild);
            self.widen(root, &al.tpl_wild);
            let fam = self.node(root).family;
            self.discover(fam, root, false);
        }
    }

    /// Makes `positions` of a node's template variables, and indexes it under the new pattern.
    fn widen(&mut self, slot: Slot, positions: &[usize]) {
        if positions.is_empty() {
            return;
        }
        let wild = self.wild;
        let n = self.node_mut(slot);
        for &i in positions {
            n.toks[i] = wild;
        }
        n.widen_text(|i| positions.contains(&i));
        let fam = n.family;
        self.register(fam, slot);
    }
}
