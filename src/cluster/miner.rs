//! The streaming template miner: masked token sequences → template clusters.
//!
//! In: the masked tokens of one message at a time. Out: the cluster it belongs to, whose stable
//! id and template may later change by merging (`resolve` follows merges, so earlier lines follow
//! too). State, per partition (first constant token) and length ("family"): the clusters, an
//! index from each wildcard pattern to the clusters with that pattern, skeleton buckets, and a
//! memo of exact lines already seen.
//!
//! The method, in one paragraph. A line joins the most specific cluster whose constant tokens it
//! repeats (`<*>` positions accept anything); otherwise it starts a cluster of its own. When
//! clusters are equal but for one position, that position is a variable as soon as it has taken
//! `variable_after` (3) different words, or one of them is already `<*>` and another is a word
//! (a hostname next to an IP): the clusters merge, with `<*>` there. Two alternatives are a fork
//! (`startup`/`shutdown`, `bytes`/`values`) and stay apart. Clusters whose constant words are the
//! same and that differ only in how many variable-only tokens they have (lists, optional
//! `(1.2 KB)`) are one template. A wildcard-heavy template never decays into matching everything:
//! only a position that proved variable accepts any token, so replaying the same logs adds no
//! templates. Merges go through union-find so every earlier line follows its cluster.
//!
//! Memory is bounded by `max_templates` live templates: beyond it the least recently used eighth
//! is evicted, with everything that refers to it.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::core::hash::LineKey;
use crate::mask::WILDCARD;
use crate::mask::tokens::{Powers, Tok, line_key, mark_hash};

/// A cluster's stable id: the hash of its partition and its first template.
pub type TemplateId = u64;
/// A cluster's slot in the miner.
pub type Slot = u32;

/// The slots kept under one key: nearly always one or two, so they are kept inline (a flood
/// of new templates would otherwise allocate once per token).
type Slots = smallvec::SmallVec<[Slot; 2]>;

/// Wildcard positions of a template (the first 128 positions can be variables).
type Pattern = u128;
const MAX_POS: usize = 128;

struct Node {
    id: TemplateId,
    seq: u64,
    family: u32,
    /// The template every event of the cluster shares: its tokens joined by spaces.
    joined: Arc<str>,
    /// Where each token of `joined` ends (one allocation, not one per token).
    ends: Box<[u32]>,
    toks: Vec<Tok>,
    size: u64,
    last_used: u64,
    /// Index, bucket and signature keys this node was registered under (for eviction).
    regs: Vec<Reg>,
    /// Nodes merged into this one (only on roots).
    merged: Vec<Slot>,
}

impl Node {
    /// The template's tokens.
    fn text(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&e| e as usize + 1));
        starts
            .zip(self.ends.iter())
            .map(|(a, &b)| &self.joined[a..b as usize])
    }

    /// Makes the tokens at `wild(position)` the wildcard.
    fn widen_text(&mut self, wild: impl Fn(usize) -> bool) {
        let (joined, ends) = join(
            self.text()
                .enumerate()
                .map(|(i, t)| if wild(i) { WILDCARD } else { t }),
        );
        self.joined = joined.into();
        self.ends = ends;
    }
}

/// Tokens joined by spaces, and where each ends.
fn join<'t>(tokens: impl Iterator<Item = &'t str>) -> (String, Box<[u32]>) {
    let mut joined = String::new();
    let mut ends = Vec::new();
    for (i, t) in tokens.enumerate() {
        if i > 0 {
            joined.push(' ');
        }
        joined.push_str(t);
        ends.push(joined.len() as u32);
    }
    (joined, ends.into())
}

#[derive(Clone, Copy)]
enum Reg {
    Index(u32, Pattern, u64),
    Bucket(u32, u32, u64),
    Sig(u64, u64),
}

struct Family {
    partition: u64,
    /// Tokens per line (with `partition`, the key in `family_of`).
    len: u32,
    patterns: Vec<Pattern>,
    members: Vec<Slot>,
}

/// A template as saved between runs (`export`/`import`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedTemplate {
    /// The stable id, as 16 hex digits.
    pub id: String,
    pub partition: String,
    pub tokens: Vec<String>,
    pub size: u64,
}

/// The outcome of one `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub slot: Slot,
    pub id: TemplateId,
    /// Shared with every other match of the cluster until it changes.
    pub template: Arc<str>,
    /// The line's partition (its first constant token).
    pub partition: u64,
}

pub struct Miner {
    variable_after: usize,
    max_templates: usize,
    nodes: Vec<Option<Node>>,
    parent: Vec<Slot>,
    free: Vec<Slot>,
    families: Vec<Family>,
    family_of: FxHashMap<(u64, u32), u32>,
    /// Families an eviction left empty, for reuse (a flood of one-line partitions).
    free_families: Vec<u32>,
    index: FxHashMap<(u32, Pattern, u64), Slot>,
    buckets: FxHashMap<(u32, u32, u64), Slots>,
    sigs: FxHashMap<(u64, u64), Slot>,
    memo: FxHashMap<u64, Slot>,
    pow: Powers,
    wild: Tok,
    mark: u64,
    seq: u64,
    tick: u64,
    live: usize,
    evicted: u64,
    merges: Vec<(TemplateId, TemplateId)>,
    rarity: rare::Rarity,
    /// One partition for every line (`one_partition`).
    whole: bool,
}

/// Patterns are tried most specific first (fewest wildcards), then by their lowest positions.
fn popcount_order(p: &Pattern) -> (u32, std::cmp::Reverse<Pattern>) {
    (p.count_ones(), std::cmp::Reverse(p.reverse_bits()))
}

impl Miner {
    pub fn new(variable_after: usize, max_templates: usize) -> Miner {
        Miner {
            variable_after: variable_after.max(2),
            max_templates: max_templates.max(8),
            nodes: Vec::new(),
            parent: Vec::new(),
            free: Vec::new(),
            families: Vec::new(),
            family_of: FxHashMap::default(),
            free_families: Vec::new(),
            index: FxHashMap::default(),
            buckets: FxHashMap::default(),
            sigs: FxHashMap::default(),
            memo: FxHashMap::default(),
            pow: Powers::default(),
            wild: Tok::wildcard(),
            mark: mark_hash(),
            seq: 0,
            tick: 0,
            live: 0,
            evicted: 0,
            merges: Vec::new(),
            rarity: rare::Rarity::default(),
            whole: false,
        }
    }

    /// A miner that mines every line in one partition, whatever its first token: a first word
    /// may then be a variable too. For a miner that sees the whole stream (`templates`); the
    /// job's miners each own partitions of it.
    pub fn one_partition(mut self) -> Miner {
        self.whole = true;
        self
    }

    fn part_of(&self, key: &LineKey) -> u64 {
        if self.whole { 0 } else { key.partition }
    }

    /// Live templates (roots).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Templates evicted so far to respect `max_templates`.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Merges since the last call: (merged id, surviving id).
    pub fn take_merges(&mut self) -> Vec<(TemplateId, TemplateId)> {
        std::mem::take(&mut self.merges)
    }

    fn node(&self, s: Slot) -> &Node {
        self.nodes[s as usize].as_ref().expect("slot in use")
    }

    fn node_mut(&mut self, s: Slot) -> &mut Node {
        self.nodes[s as usize].as_mut().expect("slot in use")
    }

    /// The root a slot was merged into.
    pub fn find(&mut self, mut s: Slot) -> Slot {
        while self.parent[s as usize] != s {
            let grand = self.parent[self.parent[s as usize] as usize];
            self.parent[s as usize] = grand;
            s = grand;
        }
        s
    }

    /// The current id and template of the cluster `slot` ended up in, or `None` if evicted.
    pub fn resolve(&mut self, slot: Slot) -> Option<(TemplateId, String)> {
        if self.nodes.get(slot as usize).is_none_or(Option::is_none) {
            return None;
        }
        let r = self.find(slot);
        let n = self.node(r);
        Some((n.id, n.joined.to_string()))
    }

    /// The memo: the slot an identical masked line went to, if it is still known.
    pub fn lookup(&mut self, key: &LineKey) -> Option<Slot> {
        let slot = *self.memo.get(&key.memo())?;
        self.tick += 1;
        let r = self.find(slot);
        let tick = self.tick;
        let n = self.node_mut(r);
        n.size += 1;
        n.last_used = tick;
        Some(slot)
    }

    /// The memo, read-only: lets other threads look lines up while the miner rests (the
    /// `templates` command's first phase). Count what it found with `hits`.
    pub fn peek(&self, key: &LineKey) -> Option<Slot> {
        self.memo.get(&key.memo()).copied()
    }

    /// Records `n` memo hits on `slot` found by `peek`: what `lookup` does for each.
    pub fn hits(&mut self, slot: Slot, n: u64) {
        if slot as usize >= self.parent.len() {
            return;
        }
        let r = self.find(slot);
        if self.nodes.get(r as usize).is_none_or(Option::is_none) {
            return;
        }
        self.tick += n;
        let tick = self.tick;
        let node = self.node_mut(r);
        node.size += n;
        node.last_used = tick;
    }

    /// Adds one masked message; returns the cluster it joined.
    pub fn insert(&mut self, tokens: &[String]) -> Match {
        let key = line_key(tokens, &mut self.pow);
        let slot = match self.lookup(&key) {
            Some(slot) => slot,
            None => self.insert_new(tokens, &key),
        };
        self.matched(slot, &key)
    }

    /// The slot of a line keyed `key` (by `KeySink`, where it was masked): its memo entry, or,
    /// when the memo misses, the line masked into `tokens` by `mask` and inserted. Masking into
    /// strings is paid only for lines the memo has not seen.
    pub fn insert_keyed(
        &mut self,
        key: &LineKey,
        tokens: &mut Vec<String>,
        mask: impl FnOnce(&mut Vec<String>),
    ) -> Slot {
        match self.lookup(key) {
            Some(slot) => slot,
            None => {
                mask(tokens);
                self.insert_new(tokens, key)
            }
        }
    }

    /// `insert_keyed`, with a budget: a line that repeats no template starts one only when
    /// `may_create` says so, and is refused (`None`, nothing kept of it) otherwise. Else its
    /// slot, and whether that is a new template (a new id, not merged into an older one).
    pub fn insert_within(
        &mut self,
        key: &LineKey,
        tokens: &mut Vec<String>,
        mask: impl FnOnce(&mut Vec<String>),
        may_create: bool,
    ) -> Option<(Slot, bool)> {
        if let Some(slot) = self.lookup(key) {
            return Some((slot, false));
        }
        mask(tokens);
        let toks = Self::toks_of(tokens);
        if !may_create {
            let fam = *self
                .family_of
                .get(&(self.part_of(key), toks.len() as u32))?;
            self.matching(fam, &toks)?;
        }
        Some(self.add(tokens, key, toks))
    }

    /// The cluster `slot` (from `lookup` or `insert_new` of the line keyed `key`) stands in.
    pub fn matched(&mut self, slot: Slot, key: &LineKey) -> Match {
        let r = self.find(slot);
        let n = self.node(r);
        Match {
            slot,
            id: n.id,
            template: n.joined.clone(),
            partition: key.partition,
        }
    }

    /// Adds a masked message that missed the memo; returns its slot.
    pub fn insert_new(&mut self, tokens: &[String], key: &LineKey) -> Slot {
        let toks = Self::toks_of(tokens);
        self.add(tokens, key, toks).0
    }

    fn toks_of(tokens: &[String]) -> Vec<Tok> {
        tokens.iter().map(|t| Tok::of(t.as_bytes())).collect()
    }

    /// `insert_new` of the line's tokens: its slot, and whether it started a new template.
    fn add(&mut self, tokens: &[String], key: &LineKey, toks: Vec<Tok>) -> (Slot, bool) {
        self.tick += 1;
        let part = self.part_of(key);
        self.count_tokens(part, &toks);
        let fam = self.family(part, toks.len() as u32);
        let (slot, created) = match self.matching(fam, &toks) {
            Some(slot) => (slot, false),
            None => {
                let slot = self.create(fam, part, tokens, toks);
                self.post(part, slot);
                if self.find(slot) == slot {
                    self.wait(part, slot);
                }
                (slot, true)
            }
        };
        self.memo.insert(key.memo(), slot);
        let r = self.find(slot);
        let tick = self.tick;
        let n = self.node_mut(r);
        n.size += 1;
        n.last_used = tick;
        let new = created && r == slot;
        if self.live > self.max_templates {
            self.evict();
        }
        (slot, new)
    }

    fn family(&mut self, partition: u64, len: u32) -> u32 {
        if let Some(&f) = self.family_of.get(&(partition, len)) {
            return f;
        }
        let family = Family {
            partition,
            len,
            patterns: Vec::new(),
            members: Vec::new(),
        };
        let f = match self.free_families.pop() {
            Some(f) => {
                self.families[f as usize] = family;
                f
            }
            None => {
                self.families.push(family);
                self.families.len() as u32 - 1
            }
        };
        self.family_of.insert((partition, len), f);
        f
    }

    fn pattern_of(toks: &[Tok]) -> Pattern {
        toks.iter()
            .take(MAX_POS)
            .enumerate()
            .filter(|(_, t)| t.wild)
            .fold(0, |p, (i, _)| p | (1 << i))
    }

    /// `Σ h_i P^i` with the positions of `w` replaced by the wildcard.
    fn hash_with(&mut self, toks: &[Tok], w: Pattern) -> u64 {
        let wild = self.wild.hash;
        let pow = self.pow.get(toks.len());
        toks.iter()
            .enumerate()
            .zip(pow)
            .fold(0u64, |acc, ((i, t), p)| {
                let h = if i < MAX_POS && w & (1 << i) != 0 {
                    wild
                } else {
                    t.hash
                };
                acc.wrapping_add(h.wrapping_mul(*p))
            })
    }

    /// The most specific cluster whose constants the line repeats (oldest on ties).
    fn matching(&mut self, fam: u32, toks: &[Tok]) -> Option<Slot> {
        let mut best: Option<(u32, u64, Slot)> = None;
        for p in 0..self.families[fam as usize].patterns.len() {
            let w = self.families[fam as usize].patterns[p];
            if best.is_some_and(|(n, _, _)| w.count_ones() > n) {
                break;
            }
            let h = self.hash_with(toks, w);
            if let Some(&s) = self.index.get(&(fam, w, h)) {
                let seq = self.node(s).seq;
                if best.is_none_or(|(_, bs, _)| seq < bs) {
                    best = Some((w.count_ones(), seq, s));
                }
            }
        }
        best.map(|(_, _, s)| s)
    }
}

#[path = "miner_discover.rs"]
mod discover;

#[path = "miner_rare.rs"]
mod rare;

#[path = "miner_store.rs"]
mod store;

#[cfg(test)]
#[path = "miner_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "miner_shapes.rs"]
mod shapes;
