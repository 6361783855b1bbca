//! The miner's slots: creating a cluster, its signature, eviction of the least recently used,
//! and the templates as saved between runs (`export`/`import`).
//!
//! In: new clusters and saved templates. Out: slots, saved templates, the live templates.
//! State: the node arena and its free list, kept in the `Miner`.

use super::*;

/// A cluster's stable id: the hash of its partition and first template (as it always was:
/// saved templates and incident fingerprints keep it).
fn template_id(partition: u64, joined: &str) -> TemplateId {
    crate::core::hash::stable_hash(format!("{partition:016x}\u{1}{joined}").as_bytes())
}

impl Miner {
    pub(super) fn create(
        &mut self,
        fam: u32,
        part: u64,
        tokens: &[String],
        toks: Vec<Tok>,
    ) -> Slot {
        let (joined, ends) = super::join(tokens.iter().map(String::as_str));
        let id = template_id(part, &joined);
        let slot = self.alloc(fam, id, (joined, ends), toks, 0);
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
    pub(super) fn alloc(
        &mut self,
        fam: u32,
        id: TemplateId,
        (joined, ends): (String, Box<[u32]>),
        toks: Vec<Tok>,
        size: u64,
    ) -> Slot {
        self.seq += 1;
        let node = Node {
            id,
            seq: self.seq,
            family: fam,
            joined: joined.into(),
            ends,
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
    pub(super) fn signature(&mut self, slot: Slot) -> u64 {
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
                tokens: n.text().map(str::to_string).collect(),
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
        let text = super::join(saved.tokens.iter().map(String::as_str));
        let slot = self.alloc(fam, id, text, toks, saved.size);
        let sig = self.signature(slot);
        self.sigs.entry((partition, sig)).or_insert(slot);
        self.node_mut(slot).regs.push(Reg::Sig(partition, sig));
        true
    }

    /// Evicts the least recently used eighth of the live templates, with everything merged into
    /// them and every key that refers to them. The memo is a cache and is simply cleared.
    pub(super) fn evict(&mut self) {
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
        self.forget_empty_partitions();
    }

    /// After an eviction: what is kept per partition (token counts, postings, settling queue,
    /// families) goes for partitions left without a template, or a flood of lines that
    /// each start a partition of their own (random words) would grow it without bound.
    fn forget_empty_partitions(&mut self) {
        let mut live: rustc_hash::FxHashSet<u64> = rustc_hash::FxHashSet::default();
        for (f, family) in self.families.iter_mut().enumerate() {
            let key = (family.partition, family.len);
            if !family.members.is_empty() {
                live.insert(family.partition);
            } else if self.family_of.get(&key) == Some(&(f as u32)) {
                // Empty and still named: forget it, and reuse its place.
                self.family_of.remove(&key);
                family.patterns = Vec::new();
                family.members = Vec::new();
                self.free_families.push(f as u32);
            }
        }
        self.family_of.shrink_to_fit();
        self.rarity.parts.retain(|p, _| live.contains(p));
    }

    pub(super) fn drop_node(&mut self, s: Slot) {
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
                        b.retain(|m| *m != s);
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
