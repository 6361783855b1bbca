//! Detect stage: `LogRecord` → `ErrorEvent` for the records that are
//! errors; the rest are counted and dropped here by design (they are not errors).
//!
//! A record is an error when any of these holds, and its severity is the highest that applies:
//! its level is at or above the threshold; it carries a stack trace; one automaton of literal
//! keywords (`Exception`, `Traceback`, `panic`, `FATAL`, `segfault`, `OOMKilled`, …) matches its
//! message; a named regex rule from the spec matches (with the rule's severity); or it is an
//! access-log record with an HTTP status at or above the threshold. No state.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::RegexSet;
use serde::{Deserialize, Serialize};

use crate::core::record::{ErrorEvent, Level, LogRecord};

/// The keyword list used when a spec does not set `keywords`.
pub const DEFAULT_KEYWORDS: &[&str] = &[
    "Exception",
    "Traceback (most recent call last)",
    "panic:",
    "panicked at",
    "FATAL",
    "Fatal error",
    "fatal error",
    "segfault",
    "Segmentation fault",
    "SIGSEGV",
    "OOMKilled",
    "OutOfMemoryError",
    "Out of memory",
    "out of memory",
    "core dumped",
    "stack overflow",
    "Killed process",
    "deadlock detected",
];

/// `[detect]`: what counts as an error.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Records at or above this level are errors (`warn`, `error`, `critical`).
    pub level: Level,
    /// Literal keywords that make any record an error (substring match). Replaces the default
    /// list; use `extra_keywords` to add to it.
    pub keywords: Vec<String>,
    /// Keywords added to `keywords`.
    pub extra_keywords: Vec<String>,
    /// Match keywords ignoring ASCII case.
    pub ignore_case: bool,
    /// Records with a stack trace are errors.
    pub traces: bool,
    /// Access-log records with a status at or above this are errors.
    pub http_status: u16,
    /// Named regex rules, each with its severity.
    pub rules: Vec<RuleConfig>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            level: Level::Error,
            keywords: DEFAULT_KEYWORDS.iter().map(|k| k.to_string()).collect(),
            extra_keywords: Vec::new(),
            ignore_case: false,
            traces: true,
            http_status: 500,
            rules: Vec::new(),
        }
    }
}

/// `[[detect.rules]]`: a named pattern.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Reported in the event's reasons as `rule:<name>`.
    pub name: String,
    /// A regular expression (Rust `regex` syntax) searched in the message.
    pub pattern: String,
    /// Severity of a match.
    #[serde(default = "default_severity")]
    pub severity: Level,
}

fn default_severity() -> Level {
    Level::Error
}

/// The compiled detector.
#[derive(Debug, Clone)]
pub struct Detector {
    level: Level,
    keywords: Option<AhoCorasick>,
    keyword_names: Vec<String>,
    rules: Option<RegexSet>,
    rule_names: Vec<(String, Level)>,
    traces: bool,
    http_status: u16,
}

impl Detector {
    pub fn new(cfg: &DetectConfig) -> Result<Detector, String> {
        let keyword_names: Vec<String> = cfg
            .keywords
            .iter()
            .chain(&cfg.extra_keywords)
            .filter(|k| !k.is_empty())
            .cloned()
            .collect();
        let keywords = if keyword_names.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(cfg.ignore_case)
                .match_kind(MatchKind::LeftmostFirst)
                .build(&keyword_names)
                .map_err(|e| format!("detect.keywords: {e}"))?;
            Some(ac)
        };
        let mut seen = std::collections::HashSet::new();
        for r in &cfg.rules {
            if r.name.is_empty() || !seen.insert(r.name.as_str()) {
                return Err(format!(
                    "detect.rules: rule names must be unique and non-empty (`{}`)",
                    r.name
                ));
            }
        }
        let rules = if cfg.rules.is_empty() {
            None
        } else {
            let set = RegexSet::new(cfg.rules.iter().map(|r| &r.pattern))
                .map_err(|e| format!("detect.rules: {e}"))?;
            Some(set)
        };
        Ok(Detector {
            level: cfg.level,
            keywords,
            keyword_names,
            rules,
            rule_names: cfg
                .rules
                .iter()
                .map(|r| (r.name.clone(), r.severity))
                .collect(),
            traces: cfg.traces,
            http_status: cfg.http_status,
        })
    }

    /// The event for an error record; `None` when the record is not an error.
    pub fn detect(&self, rec: LogRecord) -> Option<ErrorEvent> {
        let mut severity = Level::Unknown;
        let mut reasons = Vec::new();
        let mut hit = |level: Level, reason: String| {
            severity = severity.max(level);
            reasons.push(reason);
        };
        if rec.level >= self.level {
            hit(rec.level, "level".into());
        }
        if self.traces && rec.trace.is_some() {
            hit(Level::Error, "trace".into());
        }
        if let Some(ac) = &self.keywords
            && let Some(m) = ac.find(&rec.message)
        {
            hit(
                Level::Error,
                format!("keyword:{}", self.keyword_names[m.pattern().as_usize()]),
            );
        }
        if let Some(set) = &self.rules
            && set.is_match(&rec.message)
        {
            for i in set.matches(&rec.message).iter() {
                let (name, level) = &self.rule_names[i];
                hit(*level, format!("rule:{name}"));
            }
        }
        if rec.status.is_some_and(|s| s >= self.http_status) {
            hit(Level::Error, "http_status".into());
        }
        (!reasons.is_empty()).then_some(ErrorEvent {
            record: rec,
            severity,
            reasons,
            key: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(level: Level, message: &str) -> LogRecord {
        LogRecord {
            level,
            message: message.into(),
            ..LogRecord::default()
        }
    }

    #[test]
    fn each_reason() {
        let mut cfg = DetectConfig::default();
        cfg.rules.push(RuleConfig {
            name: "disk".into(),
            pattern: r"No space left on device".into(),
            severity: Level::Critical,
        });
        let d = Detector::new(&cfg).expect("compiles");
        assert!(d.detect(rec(Level::Info, "all good")).is_none());
        assert_eq!(
            d.detect(rec(Level::Error, "x")).map(|e| e.reasons),
            Some(vec!["level".to_string()])
        );
        let e = d
            .detect(rec(Level::Info, "got java.lang.NullPointerException here"))
            .expect("keyword");
        assert_eq!(e.reasons, vec!["keyword:Exception".to_string()]);
        let e = d
            .detect(rec(Level::Warn, "write: No space left on device"))
            .expect("rule");
        assert_eq!(
            (e.severity, e.reasons),
            (Level::Critical, vec!["rule:disk".to_string()])
        );
        let mut r = rec(Level::Info, "GET / 503");
        r.status = Some(503);
        assert_eq!(
            d.detect(r).map(|e| e.reasons),
            Some(vec!["http_status".to_string()])
        );
        let mut r = rec(Level::Info, "x");
        r.trace = Some("\tat a.b(C.java:1)".into());
        assert!(d.detect(r).is_some());
    }

    #[test]
    fn bad_rules_fail_to_compile() {
        let mut cfg = DetectConfig::default();
        cfg.rules.push(RuleConfig {
            name: "x".into(),
            pattern: "(".into(),
            severity: Level::Error,
        });
        assert!(Detector::new(&cfg).is_err_and(|e| e.contains("detect.rules")));
    }
}
