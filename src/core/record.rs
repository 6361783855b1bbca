//! The records that travel between stages, in dataflow order.
//!
//! `RawLine` (source → multiline → parse) → `LogRecord` (parse → detect) → `ErrorEvent`
//! (detect → cluster) → `Clustered` (cluster → incident) → `Incident` (incident → sink);
//! bad input becomes a `DeadLetter` at whichever stage finds it. Every type is serde so it can
//! cross process boundaries (timely uses bincode) and be written as JSON. No state.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::hash::LineKey;
use super::time::Millis;

/// A short string stored inline up to 24 bytes (field names and values).
pub type Text = compact_str::CompactString;

/// Cuts `s` to at most `max_bytes` bytes on a character boundary, marking a cut with `…`
/// (titles, samples and traces carried in incidents stay bounded).
pub fn truncate(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_string();
    }
    let end = (0..=max_bytes)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &s[..end])
}

/// Longest incident title, in bytes, before it is cut with `…`.
pub const TITLE_BYTES: usize = 160;

/// Cuts a title to `TITLE_BYTES`.
pub fn truncate_title(s: &str) -> String {
    truncate(s, TITLE_BYTES)
}

/// Where a record came from: the input (index into the plan's input list) and the byte offset
/// and 1-based line number of its first line. Ordering by position is the deterministic order
/// in which order-dependent stages consume each epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    pub source: u32,
    pub offset: u64,
    pub line: u64,
}

/// A line (or a multiline record) as read, before any interpretation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawLine {
    pub pos: Position,
    /// Wall-clock time at which the source read it.
    pub ingest_ms: Millis,
    /// The bytes, without the trailing newline; continuation lines joined with `\n`.
    pub bytes: Vec<u8>,
    /// How many physical lines this record holds (1 unless multiline joined some).
    pub lines: u32,
    /// Set by the reader when the line was longer than the limit: its full length.
    pub oversize: Option<u64>,
    /// Set by the multiline joiner when input ended inside an unfinished stack trace.
    pub cut: bool,
}

/// Log severity, ordered from least to most severe.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Unknown,
    Trace,
    Debug,
    Info,
    Notice,
    #[serde(alias = "warning")]
    Warn,
    #[serde(alias = "err")]
    Error,
    #[serde(alias = "fatal", alias = "crit")]
    Critical,
}

impl Level {
    /// Recognises the usual spellings (`ERR`, `warning`, `FATAL`, `E`, syslog names…).
    pub fn parse(word: &str) -> Option<Level> {
        let w = word.trim_matches(|c: char| matches!(c, '[' | ']' | '<' | '>' | ':' | '(' | ')'));
        if w.is_empty() || w.len() > 9 {
            return None;
        }
        let mut buf = [0u8; 9];
        for (d, s) in buf.iter_mut().zip(w.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        Some(match &buf[..w.len()] {
            b"trace" | b"finest" | b"finer" | b"verbose" => Level::Trace,
            b"debug" | b"dbg" | b"fine" | b"d" => Level::Debug,
            b"info" | b"inf" | b"information" | b"i" | b"config" => Level::Info,
            b"notice" => Level::Notice,
            b"warn" | b"warning" | b"wrn" | b"w" => Level::Warn,
            b"error" | b"err" | b"e" | b"severe" | b"failure" => Level::Error,
            b"fatal" | b"critical" | b"crit" | b"alert" | b"emerg" | b"emergency" | b"panic"
            | b"f" => Level::Critical,
            _ => return None,
        })
    }

    /// Syslog severity 0–7.
    pub fn from_syslog(severity: u8) -> Level {
        match severity {
            0..=2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warn,
            5 => Level::Notice,
            6 => Level::Info,
            _ => Level::Debug,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }
}

/// Which parser understood the line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Json,
    Logfmt,
    Syslog3164,
    Syslog5424,
    Access,
    Generic,
    Header,
    #[default]
    Plain,
}

/// A parsed log record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub pos: Position,
    pub ingest_ms: Millis,
    /// The record's own timestamp, when it has one.
    pub ts: Option<Millis>,
    pub level: Level,
    pub service: Option<String>,
    pub host: Option<String>,
    /// The message, without header fields and without the stack trace.
    pub message: String,
    /// Other fields, name and value; short ones (most) are stored inline, without allocating.
    pub fields: Vec<(Text, Text)>,
    /// Stack-trace lines that followed the head line, joined with `\n`.
    pub trace: Option<String>,
    /// HTTP status for access logs.
    pub status: Option<u16>,
    pub format: Format,
    /// The trace was still open when input ended.
    pub cut: bool,
}

impl LogRecord {
    /// Event time: the record's timestamp, or when it was read if it has none.
    pub fn time(&self) -> Millis {
        self.ts.unwrap_or(self.ingest_ms)
    }
}

/// A record the detector flagged as an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub record: LogRecord,
    pub severity: Level,
    /// Why: `level`, `trace`, `keyword:<k>`, `rule:<name>`, `http_status`.
    pub reasons: Vec<String>,
    /// The key of the message's masked line, for an event to be mined: computed by the detect
    /// stage, on the worker that parsed the record, so that the worker owning the template
    /// masks the message only when its memo misses. Not serialized; the cluster stage computes
    /// it when it is absent.
    #[serde(skip)]
    pub key: Option<LineKey>,
}

/// Message errors are grouped by template, errors with a stack trace by trace fingerprint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Message,
    Trace,
}

/// An error event with its fingerprint: the incident key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clustered {
    pub event: ErrorEvent,
    pub fingerprint: u64,
    /// Where its incident lives: the template partition for message templates (so templates
    /// that merge share a worker), the fingerprint otherwise.
    pub route: u64,
    pub kind: Kind,
    /// One-line description: the exception and its top frame, or the message template
    /// (shared by the events of a template, like `template`).
    pub title: Arc<str>,
    /// The message template (masked message) this event matched.
    pub template: Arc<str>,
    /// Templates this event's arrival merged: (merged fingerprint, surviving fingerprint).
    pub merges: Vec<(u64, u64)>,
}

/// Why a record went to the dead-letter output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    InvalidUtf8,
    LineTooLong,
    Binary,
    InvalidJson,
    FormatMismatch,
    TruncatedTrace,
}

impl DeadReason {
    pub const ALL: [DeadReason; 6] = [
        DeadReason::InvalidUtf8,
        DeadReason::LineTooLong,
        DeadReason::Binary,
        DeadReason::InvalidJson,
        DeadReason::FormatMismatch,
        DeadReason::TruncatedTrace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::InvalidUtf8 => "invalid_utf8",
            DeadReason::LineTooLong => "line_too_long",
            DeadReason::Binary => "binary",
            DeadReason::InvalidJson => "invalid_json",
            DeadReason::FormatMismatch => "format_mismatch",
            DeadReason::TruncatedTrace => "truncated_trace",
        }
    }
}

/// A record that could not be processed normally, with the reason and enough to find it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub pos: Position,
    pub reason: DeadReason,
    pub detail: String,
    /// Length in bytes of the offending record.
    pub bytes: u64,
    /// The start of the record (at most 256 bytes), decoded lossily.
    pub preview: String,
}

impl DeadLetter {
    pub const PREVIEW_BYTES: usize = 256;

    pub fn new(
        pos: Position,
        reason: DeadReason,
        detail: impl Into<String>,
        bytes: &[u8],
        len: u64,
    ) -> Self {
        let head = &bytes[..bytes.len().min(Self::PREVIEW_BYTES)];
        // JSON escapes control characters; invalid UTF-8 becomes U+FFFD.
        let preview = String::from_utf8_lossy(head).into_owned();
        DeadLetter {
            pos,
            reason,
            detail: detail.into(),
            bytes: len,
            preview,
        }
    }
}

/// An incident's lifecycle state.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    New,
    Ongoing,
    Escalating,
    Resolved,
    Regressed,
    /// Its template merged into another one: the incident continues under `merged_into`.
    Merged,
}

impl State {
    pub const ALL: [State; 6] = [
        State::New,
        State::Ongoing,
        State::Escalating,
        State::Resolved,
        State::Regressed,
        State::Merged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Ongoing => "ongoing",
            State::Escalating => "escalating",
            State::Resolved => "resolved",
            State::Regressed => "regressed",
            State::Merged => "merged",
        }
    }
}

/// Events an incident has seen from one release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseCount {
    pub release: String,
    pub count: u64,
}

/// Events in one window of the incident's configured width.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCount {
    pub start: String,
    pub count: u64,
}

/// The state of one de-duplicated incident as emitted (one JSON line per emission).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub fingerprint: String,
    pub state: State,
    /// Events so far.
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// The job clock when this was emitted (the newest event time seen by the job).
    pub at: String,
    pub kind: Kind,
    pub title: String,
    pub template: String,
    pub severity: Level,
    /// The service that reported it first; `services` has all of them (capped).
    pub service: String,
    pub services: Vec<String>,
    pub hosts: Vec<String>,
    /// Recent windows, oldest first.
    pub windows: Vec<WindowCount>,
    pub samples: Vec<String>,
    pub exemplar_trace: Option<String>,
    pub reasons: Vec<String>,
    /// How many times it came back after being resolved.
    pub regressions: u32,
    /// Events per release, for logs that name theirs (`incident.release_field`).
    #[serde(default)]
    pub releases: Vec<ReleaseCount>,
    /// For a `merged` incident: the fingerprint it continues under. (Always serialized: records
    /// cross processes as bincode, which cannot skip fields.)
    pub merged_into: Option<String>,
}

/// A job-clock reading: the newest event time of a batch, and whether it came from the logs'
/// own timestamps (`true`) or, for a batch without any, from the wall clock at ingestion.
pub type ClockTick = (Millis, bool);
