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

use crate::core::record::LineKey;
use crate::mask::WILDCARD;
use crate::mask::tokens::{Powers, Tok, line_key, mark_hash};

/// A cluster's stable id: the hash of its partition and its first template.
pub type TemplateId = u64;
/// A cluster's slot in the miner.
pub type Slot = u32;

/// Wildcard positions of a template (the first 128 positions can be variables).
type Pattern = u128;
const MAX_POS: usize = 128;

struct Node {
    id: TemplateId,
    seq: u64,
    family: u32,
    text: Vec<Box<str>>,
    /// `text` joined by spaces: the template every event of the cluster shares.
    joined: Arc<str>,
    toks: Vec<Tok>,
    size: u64,
    last_used: u64,
    /// Index, bucket and signature keys this node was registered under (for eviction).
    regs: Vec<Reg>,
    /// Nodes merged into this one (only on roots).
    merged: Vec<Slot>,
}

#[derive(Clone, Copy)]
enum Reg {
    Index(u32, Pattern, u64),
    Bucket(u32, u32, u64),
    Sig(u64, u64),
}

struct Family {
    partition: u64,
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
    index: FxHashMap<(u32, Pattern, u64), Slot>,
    buckets: FxHashMap<(u32, u32, u64), Vec<Slot>>,
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
        self.tick += 1;
        let toks: Vec<Tok> = tokens.iter().map(|t| Tok::of(t.as_bytes())).collect();
        let part = self.part_of(key);
        self.count_tokens(part, &toks);
        let fam = self.family(part, toks.len() as u32);
        let slot = match self.matching(fam, &toks) {
            Some(slot) => slot,
            None => {
                let slot = self.create(fam, part, tokens, toks);
                self.post(part, slot);
                if self.find(slot) == slot {
                    self.wait(part, slot);
                }
                slot
            }
        };
        self.memo.insert(key.memo(), slot);
        let r = self.find(slot);
        let tick = self.tick;
        let n = self.node_mut(r);
        n.size += 1;
        n.last_used = tick;
        if self.live > self.max_templates {
            self.evict();
        }
        slot
    }

    fn family(&mut self, partition: u64, len: u32) -> u32 {
        let next = self.families.len() as u32;
        let f = *self.family_of.entry((partition, len)).or_insert(next);
        if f == next {
            self.families.push(Family {
                partition,
                patterns: Vec::new(),
                members: Vec::new(),
            });
        }
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
        let patterns = self.families[fam as usize].patterns.clone();
        let mut best: Option<(u32, u64, Slot)> = None;
        for w in patterns {
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

    fn create(&mut self, fam: u32, part: u64, tokens: &[String], toks: Vec<Tok>) -> Slot {
        let id = crate::core::hash::stable_hash(
            format!("{:016x}\u{1}{}", part, tokens.join(" ")).as_bytes(),
        );
        let slot = self.alloc(fam, id, tokens, toks, 0);
        let sig = self.signature(slot);
        match self.sigs.get(&(part, sig)).copied() {
            Some(other) => {
                let root = self.find(other);
                self.union(root, &[slot]);
            }
            None => {
                self.sigs.insert((part, sig), slot);
                self.node_mut(slot).regs.push(Reg::Sig(part, sig));
                self.discover(fam, slot, true);
            }
        }
        slot
    }

    /// A new live node, indexed.
    fn alloc(
        &mut self,
        fam: u32,
        id: TemplateId,
        tokens: &[String],
        toks: Vec<Tok>,
        size: u64,
    ) -> Slot {
        let text: Vec<Box<str>> = tokens.iter().map(|t| t.as_str().into()).collect();
        self.seq += 1;
        let node = Node {
            id,
            seq: self.seq,
            family: fam,
            joined: text.join(" ").into(),
            text,
            toks,
            size,
            last_used: self.tick,
            regs: Vec::new(),
            merged: Vec::new(),
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.nodes[s as usize] = Some(node);
                self.parent[s as usize] = s;
                s
            }
            None => {
                self.nodes.push(Some(node));
                self.parent.push(self.nodes.len() as Slot - 1);
                self.nodes.len() as Slot - 1
            }
        };
        self.live += 1;
        self.register(fam, slot);
        slot
    }

    /// Hash of a node's constant words: clusters equal on it differ only in variables.
    fn signature(&mut self, slot: Slot) -> u64 {
        let kept: Vec<u64> = self
            .node(slot)
            .toks
            .iter()
            .filter(|t| !t.var_only)
            .map(|t| t.hash)
            .collect();
        let pow = self.pow.get(kept.len()).to_vec();
        crate::mask::tokens::seq_hash(kept.into_iter(), &pow)
    }

    /// The live templates, to save between runs.
    pub fn export(&self) -> Vec<SavedTemplate> {
        let mut out: Vec<SavedTemplate> = (0..self.nodes.len())
            .filter(|&s| self.parent[s] == s as Slot)
            .filter_map(|s| self.nodes[s].as_ref())
            .map(|n| SavedTemplate {
                id: format!("{:016x}", n.id),
                partition: format!("{:016x}", self.families[n.family as usize].partition),
                tokens: n.text.iter().map(|t| t.to_string()).collect(),
                size: n.size,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Restores a saved template (keeping its id); false when it is malformed. The caller
    /// imports each id once.
    pub fn import(&mut self, saved: &SavedTemplate) -> bool {
        let (Ok(id), Ok(partition)) = (
            u64::from_str_radix(&saved.id, 16),
            u64::from_str_radix(&saved.partition, 16),
        ) else {
            return false;
        };
        if saved.tokens.is_empty() {
            return false;
        }
        let toks: Vec<Tok> = saved.tokens.iter().map(|t| Tok::of(t.as_bytes())).collect();
        let partition = if self.whole { 0 } else { partition };
        let fam = self.family(partition, toks.len() as u32);
        let slot = self.alloc(fam, id, &saved.tokens, toks, saved.size);
        let sig = self.signature(slot);
        self.sigs.entry((partition, sig)).or_insert(slot);
        self.node_mut(slot).regs.push(Reg::Sig(partition, sig));
        true
    }

    /// Indexes a node under its template's pattern and skeletons.
    fn register(&mut self, fam: u32, slot: Slot) {
        let toks = self.node(slot).toks.clone();
        let w = Self::pattern_of(&toks);
        let family = &mut self.families[fam as usize];
        if !family.members.contains(&slot) {
            family.members.push(slot);
        }
        if let Err(at) = family
            .patterns
            .binary_search_by_key(&popcount_order(&w), popcount_order)
        {
            family.patterns.insert(at, w);
        }
        let h = self.hash_with(&toks, 0);
        let mut regs = Vec::with_capacity(toks.len() + 1);
        self.index.entry((fam, w, h)).or_insert(slot);
        regs.push(Reg::Index(fam, w, h));
        let pow = self.pow.get(toks.len()).to_vec();
        for (q, t) in toks.iter().enumerate().take(MAX_POS) {
            let skel = h.wrapping_add(self.mark.wrapping_sub(t.hash).wrapping_mul(pow[q]));
            self.buckets
                .entry((fam, q as u32, skel))
                .or_default()
                .push(slot);
            regs.push(Reg::Bucket(fam, q as u32, skel));
        }
        self.node_mut(slot).regs.extend(regs);
    }

    /// Merges `others` into `root` (a live root).
    fn union(&mut self, root: Slot, others: &[Slot]) {
        for &o in others {
            if o == root {
                continue;
            }
            self.parent[o as usize] = root;
            let (id, size, merged) = {
                let n = self.node_mut(o);
                (n.id, n.size, std::mem::take(&mut n.merged))
            };
            let into = self.node(root).id;
            self.merges.push((id, into));
            let r = self.node_mut(root);
            r.size += size;
            r.merged.push(o);
            r.merged.extend(merged);
            self.live -= 1;
        }
    }

    /// Finds the variable positions `slot` reveals, merging clusters as they prove variable;
    /// after a merge (a new wildcard pattern), every cluster of the family is looked at again.
    fn discover(&mut self, fam: u32, slot: Slot, recheck: bool) {
        loop {
            if !self.discover_pass(fam, slot) {
                return;
            }
            if recheck {
                let me = self.find(slot);
                let mut members: Vec<(u64, Slot)> = self.families[fam as usize]
                    .members
                    .clone()
                    .into_iter()
                    .filter(|&m| self.parent[m as usize] == m && m != me)
                    .map(|m| (self.node(m).seq, m))
                    .collect();
                members.sort_unstable();
                for (_, m) in members {
                    self.discover(fam, m, false);
                }
            }
        }
    }

    /// One pass over the buckets of `slot`'s root under each pattern; true after a merge.
    fn discover_pass(&mut self, fam: u32, slot: Slot) -> bool {
        let r = self.find(slot);
        let t = self.node(r).toks.clone();
        let patterns = self.families[fam as usize].patterns.clone();
        let pow = self.pow.get(t.len()).to_vec();
        for w in patterns {
            let tw: Vec<Tok> = t
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    if i < MAX_POS && w & (1 << i) != 0 {
                        self.wild
                    } else {
                        *x
                    }
                })
                .collect();
            let hw = self.hash_with(&tw, 0);
            for q in 0..t.len().min(MAX_POS) {
                if w & (1 << q) != 0 {
                    continue;
                }
                let skel = hw.wrapping_add(self.mark.wrapping_sub(tw[q].hash).wrapping_mul(pow[q]));
                let Some(bucket) = self.buckets.get_mut(&(fam, q as u32, skel)) else {
                    continue;
                };
                if !bucket.contains(&r) {
                    bucket.push(r);
                    self.node_mut(r).regs.push(Reg::Bucket(fam, q as u32, skel));
                }
                let bucket = self.buckets[&(fam, q as u32, skel)].clone();
                let mut roots: Vec<Slot> = Vec::new();
                for m in bucket {
                    if self.nodes[m as usize].is_none() {
                        continue;
                    }
                    let mr = self.find(m);
                    if roots.contains(&mr) {
                        continue;
                    }
                    let mt = &self.node(mr).toks;
                    let same = mt.len() == tw.len()
                        && mt.iter().zip(&tw).enumerate().all(|(i, (a, b))| {
                            i == q
                                || (if i < MAX_POS && w & (1 << i) != 0 {
                                    self.wild.hash
                                } else {
                                    a.hash
                                }) == b.hash
                        });
                    if same {
                        roots.push(mr);
                    }
                }
                let mut vals: Vec<Tok> = Vec::new();
                for &m in &roots {
                    let v = self.node(m).toks[q];
                    if !vals.iter().any(|x| x.hash == v.hash) {
                        vals.push(v);
                    }
                }
                let wild = vals.iter().any(|v| v.wild) && vals.iter().any(|v| !v.wild && v.letter);
                let proven = vals.len() >= self.variable_after || (wild && vals.len() >= 2);
                if proven && Self::anchored(&tw, q) {
                    let nr = *roots
                        .iter()
                        .min_by_key(|&&m| self.node(m).seq)
                        .unwrap_or(&r);
                    self.union(nr, &roots);
                    let wild_tok = self.wild;
                    let n = self.node_mut(nr);
                    for (i, tok) in n.toks.iter_mut().enumerate() {
                        if i == q || (i < MAX_POS && w & (1 << i) != 0) {
                            *tok = wild_tok;
                            n.text[i] = WILDCARD.into();
                        }
                    }
                    n.joined = n.text.join(" ").into();
                    self.register(fam, nr);
                    return true;
                }
            }
        }
        false
    }

    /// Whether making position `q` of `toks` a variable leaves the template anchored: a word
    /// kept, and three constants when `q` is the first position and not a `who:` subject (a
    /// first word is often the event's verb: `startup`/`shutdown succeeded` are two events).
    fn anchored(toks: &[Tok], q: usize) -> bool {
        let mut kept = toks.iter().enumerate().filter(|&(i, t)| i != q && !t.wild);
        let n = kept.clone().count();
        kept.any(|(_, t)| t.letter) && (q != 0 || n >= 3 || toks[0].subject)
    }

    /// Evicts the least recently used eighth of the live templates, with everything merged into
    /// them and every key that refers to them. The memo is a cache and is simply cleared.
    fn evict(&mut self) {
        let mut roots: Vec<(u64, u64, Slot)> = (0..self.nodes.len() as Slot)
            .filter(|&s| self.nodes[s as usize].is_some() && self.parent[s as usize] == s)
            .map(|s| (self.node(s).last_used, self.node(s).seq, s))
            .collect();
        let n = (self.max_templates / 8).max(1).min(roots.len());
        roots.select_nth_unstable(n - 1);
        for &(_, _, root) in &roots[..n] {
            let mut gone = vec![root];
            gone.extend(self.node(root).merged.clone());
            for s in gone {
                self.drop_node(s);
            }
            self.live -= 1;
        }
        self.memo.clear();
        self.evicted += n as u64;
    }

    fn drop_node(&mut self, s: Slot) {
        let Some(node) = self.nodes[s as usize].take() else {
            return;
        };
        for reg in node.regs {
            match reg {
                Reg::Index(f, w, h) => {
                    if self.index.get(&(f, w, h)) == Some(&s) {
                        self.index.remove(&(f, w, h));
                    }
                }
                Reg::Bucket(f, q, k) => {
                    if let Some(b) = self.buckets.get_mut(&(f, q, k)) {
                        b.retain(|&m| m != s);
                        if b.is_empty() {
                            self.buckets.remove(&(f, q, k));
                        }
                    }
                }
                Reg::Sig(p, h) => {
                    if self.sigs.get(&(p, h)) == Some(&s) {
                        self.sigs.remove(&(p, h));
                    }
                }
            }
        }
        let family = &mut self.families[node.family as usize];
        family.members.retain(|&m| m != s);
        let partition = family.partition;
        self.unpost(partition, s, &node.toks);
        self.parent[s as usize] = s;
        self.free.push(s);
    }

    /// Every live template: (id, template, lines).
    pub fn templates(&self) -> impl Iterator<Item = (TemplateId, String, u64)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(s, n)| n.is_some() && self.parent[*s] == *s as Slot)
            .filter_map(|(_, n)| n.as_ref())
            .map(|n| (n.id, n.joined.to_string(), n.size))
    }
}

#[path = "miner_rare.rs"]
mod rare;

#[cfg(test)]
#[path = "miner_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "miner_shapes.rs"]
mod shapes;
