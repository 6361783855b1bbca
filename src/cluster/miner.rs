//! Streaming template miner (Drain-class): masked token sequences → template clusters.
//!
//! In: the masked tokens of one message at a time. Out: the id of the cluster it joined and the
//! cluster's current template. State: the clusters, grouped by partition (the first constant
//! token, which is also the exchange key, so lines that can share a template meet on one worker)
//! and token count; each cluster keeps its template, size and last use. A line joins the most
//! similar cluster of its group when at least `similarity` of its positions agree, and the
//! positions that disagree become `<*>`; otherwise it starts a cluster. Ids are stable hashes of
//! the partition and the first template, so they do not depend on worker count or run. Memory is
//! bounded by `max_templates`: past it, the least recently used eighth is evicted and counted.

use std::collections::HashMap;

use super::mask::WILDCARD;

/// A cluster's stable id.
pub type TemplateId = u64;

/// Stable 64-bit hash (xxh3 is a fixed algorithm: the same on every platform and release).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The partition key of a masked message: the hash of its first constant token.
pub fn partition_key(tokens: &[String]) -> u64 {
    let first = tokens
        .iter()
        .find(|t| !t.contains(WILDCARD))
        .map_or("", String::as_str);
    stable_hash(first.as_bytes())
}

struct Cluster {
    id: TemplateId,
    tokens: Vec<String>,
    size: u64,
    last_used: u64,
}

/// The outcome of one `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub id: TemplateId,
    pub template: String,
    /// A new cluster was created.
    pub created: bool,
}

pub struct Miner {
    similarity: f64,
    max_templates: usize,
    groups: HashMap<(u64, usize), Vec<u32>>,
    slots: Vec<Option<Cluster>>,
    free: Vec<u32>,
    live: usize,
    tick: u64,
    evicted: u64,
}

impl Miner {
    pub fn new(similarity: f64, max_templates: usize) -> Miner {
        Miner {
            similarity,
            max_templates: max_templates.max(8),
            groups: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            tick: 0,
            evicted: 0,
        }
    }

    /// Clusters alive.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Clusters evicted so far to respect `max_templates`.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Adds one masked message; returns the cluster it joined.
    pub fn insert(&mut self, tokens: &[String]) -> Match {
        self.tick += 1;
        let key = partition_key(tokens);
        let group = (key, tokens.len());
        let best = self.groups.get(&group).and_then(|members| {
            let mut best: Option<(u32, f64, usize)> = None;
            for &slot in members {
                let Some(c) = &self.slots[slot as usize] else {
                    continue;
                };
                let (same, wild) = similarity(&c.tokens, tokens);
                let score = same as f64 / tokens.len().max(1) as f64;
                if best.is_none_or(|(_, s, w)| score > s || (score == s && wild > w)) {
                    best = Some((slot, score, wild));
                }
            }
            best
        });
        if let Some((slot, score, _)) = best
            && (score >= self.similarity || tokens.is_empty())
        {
            let tick = self.tick;
            let c = self.slots[slot as usize]
                .as_mut()
                .expect("group members are live");
            for (t, new) in c.tokens.iter_mut().zip(tokens) {
                if t != new && t != WILDCARD {
                    *t = WILDCARD.to_string();
                }
            }
            c.size += 1;
            c.last_used = tick;
            return Match {
                id: c.id,
                template: c.tokens.join(" "),
                created: false,
            };
        }
        let template = tokens.join(" ");
        let mut h = key.to_le_bytes().to_vec();
        h.extend_from_slice(template.as_bytes());
        let id = stable_hash(&h);
        let cluster = Cluster {
            id,
            tokens: tokens.to_vec(),
            size: 1,
            last_used: self.tick,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(cluster);
                s
            }
            None => {
                self.slots.push(Some(cluster));
                (self.slots.len() - 1) as u32
            }
        };
        self.groups.entry(group).or_default().push(slot);
        self.live += 1;
        if self.live > self.max_templates {
            self.evict();
        }
        Match {
            id,
            template,
            created: true,
        }
    }

    /// Evicts the least recently used eighth of the clusters.
    fn evict(&mut self) {
        let mut ages: Vec<(u64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (c.last_used, i as u32)))
            .collect();
        let n = (self.max_templates / 8).max(1);
        ages.select_nth_unstable(n - 1);
        let mut gone = vec![false; self.slots.len()];
        for &(_, slot) in &ages[..n] {
            gone[slot as usize] = true;
            self.slots[slot as usize] = None;
            self.free.push(slot);
        }
        self.groups.retain(|_, members| {
            members.retain(|&s| !gone[s as usize]);
            !members.is_empty()
        });
        self.live -= n;
        self.evicted += n as u64;
    }

    /// Every live cluster: (id, template, size).
    pub fn templates(&self) -> impl Iterator<Item = (TemplateId, String, u64)> + '_ {
        self.slots
            .iter()
            .flatten()
            .map(|c| (c.id, c.tokens.join(" "), c.size))
    }
}

/// (positions that agree, wildcard positions in the template). A position agrees when the
/// tokens are equal, or when the template has `<*>` and the line's token is itself a masked
/// variable; a constant word against `<*>` does not agree, so a template that has decayed into
/// wildcards does not swallow unrelated lines.
fn similarity(template: &[String], tokens: &[String]) -> (usize, usize) {
    let mut same = 0;
    let mut wild = 0;
    for (t, x) in template.iter().zip(tokens) {
        if t == WILDCARD {
            wild += 1;
            same += usize::from(x.contains(WILDCARD));
        } else if t == x {
            same += 1;
        }
    }
    (same, wild)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mask::mask;

    #[test]
    fn generalises_and_keeps_ids() {
        let mut m = Miner::new(0.5, 1000);
        let a = m.insert(&mask("Connection from alpha closed"));
        let b = m.insert(&mask("Connection from beta closed"));
        assert!(a.created && !b.created);
        assert_eq!(a.id, b.id);
        assert_eq!(b.template, "Connection from <*> closed");
        let c = m.insert(&mask("Disk full on node 7"));
        assert_ne!(c.id, a.id);
        // Same input order, same ids: stable across instances.
        let mut m2 = Miner::new(0.5, 1000);
        assert_eq!(m2.insert(&mask("Connection from alpha closed")).id, a.id);
    }

    #[test]
    fn bounded_with_eviction() {
        let mut m = Miner::new(0.5, 64);
        for i in 0..1000 {
            m.insert(&[
                format!("w{}", char::from(b'a' + (i % 26) as u8)).repeat(i % 7 + 1),
                "x".into(),
            ]);
            assert!(m.len() <= 64);
        }
        let words: Vec<String> = (0..500)
            .map(|i| format!("tok{}", "q".repeat(i % 50 + 1)))
            .collect();
        for w in &words {
            m.insert(&[w.clone(), w.clone(), "end".into()]);
        }
        assert!(m.len() <= 64 && m.evicted() > 0);
    }
}
