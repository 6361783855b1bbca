//! The miner's first way to find variables: by position. A new template is indexed under its
//! pattern and its skeletons (the template with one position made a variable); two templates
//! of one family whose skeletons meet are one event, merged under the older.
//!
//! In: a new or changed cluster of a family. Out: unions of clusters (recorded as merges).
//! State: the family's pattern and skeleton indexes, kept in the `Miner`.

use super::*;

impl Miner {
    /// Indexes a node under its template's pattern and skeletons.
    pub(super) fn register(&mut self, fam: u32, slot: Slot) {
        let len = self.node(slot).toks.len();
        // Borrowed field by field: the node's tokens are read while the indexes grow, with no
        // copy of them (this runs once per new template, so a flood pays it per line).
        let Miner {
            nodes,
            families,
            index,
            buckets,
            pow,
            mark,
            ..
        } = self;
        let pow = pow.get(len);
        let node = nodes[slot as usize].as_mut().expect("slot in use");
        let toks = &node.toks;
        let w = Self::pattern_of(toks);
        let family = &mut families[fam as usize];
        if !family.members.contains(&slot) {
            family.members.push(slot);
        }
        if let Err(at) = family
            .patterns
            .binary_search_by_key(&popcount_order(&w), popcount_order)
        {
            family.patterns.insert(at, w);
        }
        let h = crate::mask::tokens::seq_hash(toks.iter().map(|t| t.hash), pow);
        index.entry((fam, w, h)).or_insert(slot);
        node.regs.reserve(len.min(MAX_POS) + 1);
        node.regs.push(Reg::Index(fam, w, h));
        for (q, t) in toks.iter().enumerate().take(MAX_POS) {
            let skel = h.wrapping_add(mark.wrapping_sub(t.hash).wrapping_mul(pow[q]));
            buckets.entry((fam, q as u32, skel)).or_default().push(slot);
            node.regs.push(Reg::Bucket(fam, q as u32, skel));
        }
    }

    /// Merges `others` into `root` (a live root).
    pub(super) fn union(&mut self, root: Slot, others: &[Slot]) {
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
    pub(super) fn discover(&mut self, fam: u32, slot: Slot, recheck: bool) {
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
    pub(super) fn discover_pass(&mut self, fam: u32, slot: Slot) -> bool {
        let r = self.find(slot);
        let len = self.node(r).toks.len();
        let mut tw: Vec<Tok> = Vec::with_capacity(len);
        for p in 0..self.families[fam as usize].patterns.len() {
            // A merge returns at once, so the family's patterns do not change under the loop.
            let w = self.families[fam as usize].patterns[p];
            tw.clear();
            tw.extend(self.node(r).toks.iter().enumerate().map(|(i, x)| {
                if i < MAX_POS && w & (1 << i) != 0 {
                    self.wild
                } else {
                    *x
                }
            }));
            let pow = self.pow.get(len);
            let hw = crate::mask::tokens::seq_hash(tw.iter().map(|t| t.hash), pow);
            for q in 0..len.min(MAX_POS) {
                if w & (1 << q) != 0 {
                    continue;
                }
                let pq = self.pow.get(len)[q];
                let skel = hw.wrapping_add(self.mark.wrapping_sub(tw[q].hash).wrapping_mul(pq));
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
                    let wild = |i: usize| i == q || (i < MAX_POS && w & (1 << i) != 0);
                    for (i, tok) in n.toks.iter_mut().enumerate() {
                        if wild(i) {
                            *tok = wild_tok;
                        }
                    }
                    n.widen_text(wild);
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
    pub(super) fn anchored(toks: &[Tok], q: usize) -> bool {
        let mut kept = toks.iter().enumerate().filter(|&(i, t)| i != q && !t.wild);
        let n = kept.clone().count();
        kept.any(|(_, t)| t.letter) && (q != 0 || n >= 3 || toks[0].subject)
    }
}
