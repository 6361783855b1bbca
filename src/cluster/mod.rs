//! Cluster stage: `ErrorEvent` → `Clustered` (event + fingerprint).
//!
//! In: error events. Out: each event with the fingerprint that keys its incident, a title and
//! its message template. Events with a stack trace get the trace fingerprint (exception types and
//! normalised top in-app frames, `trace.rs`); a trace we cannot read falls back to a hash of the
//! masked message and trace. Both are stateless. Events without a trace are mined into message
//! templates (`miner.rs`); the template's stable id is the fingerprint. State: the miner's
//! templates, partitioned by `exchange_key` so that lines that can share a template always meet
//! on one worker.

pub mod align;
pub mod budget;
pub mod miner;
pub mod state;

use serde::{Deserialize, Serialize};

use crate::core::hash::stable_hash;
use crate::core::record::truncate_title as truncate;
use crate::core::record::{Clustered, ErrorEvent, Format, Kind, LogRecord};
use crate::mask::{self, tokens};
use crate::trace::{self, InApp};
use budget::NewTemplates;
use miner::Miner;

/// `[cluster]`: template mining and trace fingerprints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// A slot of a template becomes a variable once it has taken this many different words
    /// (two alternatives are a fork: `startup`/`shutdown` stay two templates).
    pub variable_after: usize,
    /// Most templates kept per worker; beyond it the least recently used are evicted (counted in
    /// `hephaestus_templates_evicted_total`). A live template costs about 3 KB.
    pub max_templates: usize,
    /// Frames per exception that go into a trace fingerprint.
    pub max_frames: usize,
    /// Function or file prefixes of the application's own frames (e.g. `com.example.`, `app/`).
    pub in_app: Vec<String>,
    /// Function or file prefixes never counted as the application's.
    pub not_in_app: Vec<String>,
    /// Directory where the templates are saved at end of input and loaded at start, so a
    /// restarted job keeps its template ids (relative to the spec's directory).
    pub state_dir: Option<std::path::PathBuf>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            variable_after: 3,
            max_templates: 20_000,
            max_frames: 5,
            in_app: Vec::new(),
            not_in_app: Vec::new(),
            state_dir: None,
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.variable_after < 2 {
            return Err(format!(
                "cluster.variable_after must be at least 2, got {}",
                self.variable_after
            ));
        }
        if self.max_templates == 0 || self.max_frames == 0 {
            return Err("cluster.max_templates and cluster.max_frames must be at least 1".into());
        }
        Ok(())
    }
}

/// The partition key of a message: the hash of its first masked token without a variable
/// (the `partition` of its `LineKey`). Masking stops at that token.
pub fn message_key(message: &str) -> u64 {
    let mut sink = tokens::PartitionSink::default();
    mask::mask_with(message, &mut sink);
    sink.finish()
}

/// The `LineKey` of a message's masked line (its partition is `message_key`), masked with this
/// thread's masker into no strings at all.
pub fn key_of(message: &str) -> crate::core::hash::LineKey {
    thread_local! {
        static POWERS: std::cell::RefCell<tokens::Powers> = std::cell::RefCell::default();
    }
    POWERS.with_borrow_mut(|pow| {
        let mut sink = tokens::KeySink::new(pow);
        mask::mask_with(message, &mut sink);
        sink.finish()
    })
}

/// Where an event must be clustered: the shard of its template partition for messages (a
/// shard is mined on one worker for any worker count, as its budget needs); anywhere (spread by
/// position) for traces, whose fingerprint needs no state.
pub fn exchange_key(ev: &ErrorEvent) -> u64 {
    let rec = &ev.record;
    if !mined(rec) {
        crate::core::epoch::spread(&rec.pos)
    } else {
        crate::core::shard::owner(
            ev.key
                .map_or_else(|| message_key(&rec.message), |k| k.partition),
        )
    }
}

/// Whether an error event's message is mined into a template (no stack trace, not an access
/// log line, whose route is its template).
pub fn mined(rec: &LogRecord) -> bool {
    rec.trace.is_none() && rec.format != Format::Access
}

pub struct Clusterer {
    miner: Miner,
    in_app: InApp,
    max_frames: usize,
    tokens: Vec<String>,
    /// New templates per service, shard and window (`with_budget`); none: unbounded.
    budget: Option<NewTemplates>,
    /// Events refused a new template by the budget, folded into overflow (since the last take).
    folded: u64,
}

impl Clusterer {
    pub fn new(cfg: &ClusterConfig) -> Clusterer {
        Clusterer {
            miner: Miner::new(cfg.variable_after, cfg.max_templates),
            in_app: InApp {
                include: cfg.in_app.clone(),
                exclude: cfg.not_in_app.clone(),
            },
            max_frames: cfg.max_frames,
            tokens: Vec::new(),
            budget: None,
            folded: 0,
        }
    }

    /// Starts at most `per_window` new templates per service and window (kept per shard): a
    /// message that matches no template past it folds into its service's overflow incident,
    /// where the incident stage's budget of as many new incidents would fold it anyway.
    pub fn with_budget(mut self, per_window: u64, window: crate::core::time::Millis) -> Self {
        self.budget = Some(NewTemplates::new(per_window, window));
        self
    }

    /// Events folded by the budget since the last call.
    pub fn take_folded(&mut self) -> u64 {
        std::mem::take(&mut self.folded)
    }

    pub fn miner(&self) -> &Miner {
        &self.miner
    }

    pub fn miner_mut(&mut self) -> &mut Miner {
        &mut self.miner
    }

    pub fn cluster(&mut self, mut event: ErrorEvent) -> Clustered {
        // The key the detect stage computed, or (from another process, or a test) none yet.
        let key = event.key.take();
        let rec = &event.record;
        let stateless = |event, fingerprint, kind, title: String, template: String| Clustered {
            event,
            fingerprint,
            route: fingerprint,
            kind,
            title: title.into(),
            template: template.into(),
            merges: Vec::new(),
        };
        if rec.format == Format::Access {
            let route = access_route(rec);
            let fingerprint = stable_hash(format!("access\u{1}{route}").as_bytes());
            return stateless(event, fingerprint, Kind::Message, route.clone(), route);
        }
        if let Some(trace_text) = &rec.trace {
            let template = mask::mask_line(&rec.message);
            if let Some(trace) = trace::parse(&rec.message, trace_text, &self.in_app) {
                let (fingerprint, title) = (trace.fingerprint(self.max_frames), trace.title());
                return stateless(event, fingerprint, Kind::Trace, title, template);
            }
            let material = format!("{template}\n{}", mask::mask_line(trace_text));
            let fingerprint = stable_hash(material.as_bytes());
            return stateless(
                event,
                fingerprint,
                Kind::Message,
                truncate(&template),
                template,
            );
        }
        let key = key.unwrap_or_else(|| key_of(&rec.message));
        let mask = |tokens: &mut Vec<String>| mask::mask_into(&rec.message, tokens);
        let slot = match &mut self.budget {
            None => self.miner.insert_keyed(&key, &mut self.tokens, mask),
            Some(budget) => {
                let service = rec.service.as_deref().unwrap_or("");
                let at = budget.key(service, key.partition, rec.time());
                let may_create = budget.allows(at);
                match self
                    .miner
                    .insert_within(&key, &mut self.tokens, mask, may_create)
                {
                    Some((slot, new)) => {
                        if new {
                            budget.spend(at);
                        }
                        slot
                    }
                    None => {
                        self.folded += 1;
                        let (service, per_window) = (service.to_owned(), budget.budget);
                        let mut c =
                            stateless(event, 0, Kind::Message, String::new(), String::new());
                        crate::core::shard::fold(&mut c, &service, per_window);
                        return c;
                    }
                }
            }
        };
        let m = self.miner.matched(slot, &key);
        Clustered {
            event,
            fingerprint: m.id,
            route: m.partition,
            kind: Kind::Message,
            title: if m.template.len() <= crate::core::record::TITLE_BYTES {
                m.template.clone()
            } else {
                truncate(&m.template).into()
            },
            template: m.template,
            merges: self.miner.take_merges(),
        }
    }
}

/// The fields an access line's route is made of.
const ROUTE_FIELDS: [&str; 3] = ["method", "path", "status"];

/// Drops the fields that neither clustering nor the incidents read (all but an access line's
/// route fields and `keep`, the incident's release field). Done on the worker that parsed the
/// record, before the event crosses to the one owning its template, so the fields are freed
/// where they were made and never travel.
pub fn slim(ev: &mut ErrorEvent, keep: &str) {
    let access = ev.record.format == Format::Access;
    let fields = &mut ev.record.fields;
    fields.retain(|(k, _)| *k == keep || (access && ROUTE_FIELDS.contains(&k.as_str())));
    if fields.is_empty() {
        *fields = Vec::new();
    }
}

/// An access-log request as a route: `GET /api/orders/{id} 502`. Path segments that hold a
/// digit or are long (ids, hashes, tokens) become `{id}`; the query string is dropped.
pub fn access_route(rec: &LogRecord) -> String {
    let field = |k: &str| {
        debug_assert!(ROUTE_FIELDS.contains(&k));
        rec.fields
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    };
    let path = field("path").split(['?', '#']).next().unwrap_or("");
    let segments: Vec<&str> = path
        .split('/')
        .map(|seg| {
            if seg.bytes().any(|b| b.is_ascii_digit()) || seg.len() > 32 {
                "{id}"
            } else {
                seg
            }
        })
        .collect();
    format!(
        "{} {} {}",
        field("method"),
        segments.join("/"),
        field("status")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_agree_with_the_masking_fast_path() {
        let mut pow = tokens::Powers::default();
        for line in [
            "Received block blk_1 of size 12 from /10.0.0.1",
            "",
            "<*> <*>:<*> 3 s",
        ] {
            let mut sink = tokens::KeySink::new(&mut pow);
            mask::Masker::default().mask(line, &mut sink);
            let fast = sink.finish();
            assert_eq!(message_key(line), fast.partition, "{line}");
            assert_eq!(key_of(line), fast, "{line}");
        }
    }
    use crate::core::record::Level;

    fn access(method: &str, path: &str, status: &str) -> ErrorEvent {
        let fields = [("method", method), ("path", path), ("status", status)]
            .iter()
            .map(|&(k, v)| (k.into(), v.into()))
            .collect();
        let record = LogRecord {
            format: Format::Access,
            fields,
            ..LogRecord::default()
        };
        ErrorEvent {
            record,
            severity: Level::Error,
            reasons: vec!["http_status".into()],
            key: None,
        }
    }

    #[test]
    fn slimming_keeps_what_clustering_and_incidents_read() {
        let mut ev = access("GET", "/api/orders/8812", "502");
        let route = access_route(&ev.record);
        for (k, v) in [("release", "v7"), ("ua", "curl/8"), ("bytes", "512")] {
            ev.record.fields.push((k.into(), v.into()));
        }
        slim(&mut ev, "release");
        let names: Vec<&str> = ev.record.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["method", "path", "status", "release"]);
        assert_eq!(access_route(&ev.record), route);
        // Not an access line: only the release field stays; none at all frees the list.
        ev.record.format = Format::Header;
        slim(&mut ev, "release");
        assert_eq!(ev.record.fields.len(), 1);
        slim(&mut ev, "");
        assert_eq!(ev.record.fields.capacity(), 0);
    }

    fn message(text: &str, service: &str, ts: i64) -> ErrorEvent {
        let record = LogRecord {
            message: text.into(),
            service: Some(service.into()),
            ts: Some(ts),
            ..LogRecord::default()
        };
        ErrorEvent {
            record,
            severity: Level::Error,
            reasons: vec!["level".into()],
            key: None,
        }
    }

    #[test]
    fn past_the_template_budget_only_lines_that_match_no_template_fold() {
        use crate::core::shard::{SHARDS, overflow_fingerprint};
        // Three new templates per service, shard and window.
        let mut c = Clusterer::new(&ClusterConfig::default()).with_budget(3 * SHARDS, 60_000);
        let fp = |c: &mut Clusterer, text: &str, service: &str, ts: i64| {
            c.cluster(message(text, service, ts)).fingerprint
        };
        let alpha = fp(&mut c, "session alpha opened", "api", 1_000);
        fp(&mut c, "session beta opened", "api", 1_100);
        // The third value makes the slot a variable: merged, so no new template is spent.
        assert_eq!(fp(&mut c, "session gamma opened", "api", 1_200), alpha);
        fp(&mut c, "session closed by peer", "api", 1_300);
        let overflow = overflow_fingerprint("api");
        assert_eq!(
            fp(&mut c, "session ended abruptly today", "api", 2_000),
            overflow
        );
        assert_eq!(
            fp(&mut c, "session delta opened", "api", 2_100),
            alpha,
            "a line that matches a template is mined past the budget"
        );
        assert_eq!(fp(&mut c, "session closed by peer", "api", 2_200), {
            let mut fresh = Clusterer::new(&ClusterConfig::default());
            fp(&mut fresh, "session closed by peer", "api", 0)
        });
        assert_ne!(
            fp(&mut c, "session ended abruptly today", "db", 2_300),
            overflow_fingerprint("db"),
            "each service has its own budget"
        );
        assert_ne!(
            fp(&mut c, "session reset by admin", "api", 61_000),
            overflow,
            "a new window, a new budget"
        );
        let folded = c.cluster(message("session dropped by server today", "api", 3_000));
        assert_eq!(
            folded.fingerprint, folded.route,
            "the overflow incident has one owner"
        );
        assert_eq!(&*folded.template, "<new errors past the budget>");
        assert_eq!(c.take_folded(), 2);
    }

    #[test]
    fn access_errors_group_by_route() {
        let mut c = Clusterer::new(&ClusterConfig::default());
        let a = c.cluster(access("GET", "/api/orders/8812?x=1", "502"));
        let b = c.cluster(access("GET", "/api/orders/17", "502"));
        let other = c.cluster(access("GET", "/cart/17", "502"));
        assert_eq!(&*a.title, "GET /api/orders/{id} 502");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, other.fingerprint);
    }
}
