//! Cluster stage (the seed's error analyzer): `ErrorEvent` → `Clustered` (event + fingerprint).
//!
//! In: error events. Out: each event with the fingerprint that keys its incident, a title and
//! its message template. Events with a stack trace get the trace fingerprint (exception types and
//! normalised top in-app frames, `trace.rs`); a trace we cannot read falls back to a hash of the
//! masked message and trace. Both are stateless. Events without a trace are mined into message
//! templates (`miner.rs`); the template's stable id is the fingerprint. State: the miner's
//! templates, partitioned by `exchange_key` so that lines that can share a template always meet
//! on one worker.

pub mod mask;
pub mod miner;
pub mod stage;
pub mod trace;
mod trace_langs;

use serde::{Deserialize, Serialize};

use crate::record::{Clustered, ErrorEvent, Kind};
use miner::{Miner, stable_hash};
use trace::InApp;

/// `[cluster]`: template mining and trace fingerprints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Fraction (0–1] of a message's positions that must agree with a template to join it.
    pub similarity: f64,
    /// Most templates kept per worker; beyond it the least recently used are evicted (counted in
    /// `hephaestus_templates_evicted_total`).
    pub max_templates: usize,
    /// Frames per exception that go into a trace fingerprint.
    pub max_frames: usize,
    /// Function or file prefixes of the application's own frames (e.g. `com.example.`, `app/`).
    pub in_app: Vec<String>,
    /// Function or file prefixes never counted as the application's.
    pub not_in_app: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            similarity: 0.5,
            max_templates: 50_000,
            max_frames: 5,
            in_app: Vec::new(),
            not_in_app: Vec::new(),
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.similarity > 0.0 && self.similarity <= 1.0) {
            return Err(format!(
                "cluster.similarity must be in (0, 1], got {}",
                self.similarity
            ));
        }
        if self.max_templates == 0 || self.max_frames == 0 {
            return Err("cluster.max_templates and cluster.max_frames must be at least 1".into());
        }
        Ok(())
    }
}

/// Where an event must be clustered: the template partition for messages; anywhere (spread by
/// position) for traces, whose fingerprint needs no state.
pub fn exchange_key(ev: &ErrorEvent) -> u64 {
    let rec = &ev.record;
    if rec.trace.is_some() {
        crate::pipeline::spread(&rec.pos)
    } else {
        miner::partition_key(&mask::mask(&rec.message))
    }
}

pub struct Clusterer {
    miner: Miner,
    in_app: InApp,
    max_frames: usize,
    tokens: Vec<String>,
}

impl Clusterer {
    pub fn new(cfg: &ClusterConfig) -> Clusterer {
        Clusterer {
            miner: Miner::new(cfg.similarity, cfg.max_templates),
            in_app: InApp {
                include: cfg.in_app.clone(),
                exclude: cfg.not_in_app.clone(),
            },
            max_frames: cfg.max_frames,
            tokens: Vec::new(),
        }
    }

    pub fn miner(&self) -> &Miner {
        &self.miner
    }

    pub fn cluster(&mut self, event: ErrorEvent) -> Clustered {
        let rec = &event.record;
        if let Some(trace_text) = &rec.trace {
            let template = mask::mask_line(&rec.message);
            if let Some(trace) = trace::parse(&rec.message, trace_text, &self.in_app) {
                let (fingerprint, title) = (trace.fingerprint(self.max_frames), trace.title());
                return Clustered {
                    event,
                    fingerprint,
                    kind: Kind::Trace,
                    title,
                    template,
                };
            }
            let material = format!("{template}\n{}", mask::mask_line(trace_text));
            let fingerprint = stable_hash(material.as_bytes());
            return Clustered {
                event,
                fingerprint,
                kind: Kind::Message,
                title: truncate(&template),
                template,
            };
        }
        mask::mask_into(&rec.message, &mut self.tokens);
        let m = self.miner.insert(&self.tokens);
        Clustered {
            event,
            fingerprint: m.id,
            kind: Kind::Message,
            title: truncate(&m.template),
            template: m.template,
        }
    }
}

/// Longest title, in bytes, before it is cut with `…`.
const TITLE_BYTES: usize = 160;

/// Cuts a title to `TITLE_BYTES`.
pub(crate) fn truncate(s: &str) -> String {
    crate::record::truncate(s, TITLE_BYTES)
}
