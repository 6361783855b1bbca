//! `hephaestus templates`: mine a log file into message templates and write, for every line,
//! the cluster it ends up in (Loghub's `LineId,ClusterId,EventTemplate` CSV).
//!
//! In: a file and, optionally, a Loghub header template whose `<Content>` is mined (lines that
//! do not match it are mined whole). Out: the assignments CSV (one row per line, in input order,
//! with each line's *final* cluster: a cluster that generalised or merged later is reported for
//! the earlier lines too) and optionally a templates CSV. Uses the same `Clusterer` as the job.
//! State: the miner and one cluster id per line.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::cluster::ClusterConfig;
use crate::cluster::mask::mask_into;
use crate::cluster::miner::{Miner, Slot};
use crate::parse::HeaderFormat;
use crate::source::reader::{LineReader, Next, open_file};

/// What to mine and where to write.
#[derive(Debug, Clone)]
pub struct Request {
    pub file: PathBuf,
    pub log_format: Option<String>,
    pub workers: usize,
    pub assignments: PathBuf,
    pub templates: Option<PathBuf>,
    pub cluster: ClusterConfig,
}

/// Figures from one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub lines: u64,
    pub templates: usize,
    pub seconds: f64,
    pub lines_per_second: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error("--log-format: {0}")]
    Format(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> TemplatesError + '_ {
    move |source| TemplatesError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

pub fn run(req: &Request) -> Result<Report, TemplatesError> {
    let header = req
        .log_format
        .as_deref()
        .map(HeaderFormat::new)
        .transpose()
        .map_err(TemplatesError::Format)?;
    let started = Instant::now();
    let (inner, _) = open_file(&req.file).map_err(io(&req.file))?;
    let mut reader = LineReader::new(inner, usize::MAX >> 1, false);
    let mut miner = Miner::new(req.cluster.variable_after, req.cluster.max_templates);
    let mut tokens = Vec::new();
    let mut assigned: Vec<Slot> = Vec::new();
    while let Next::Line(line) = reader.next_line().map_err(io(&req.file))? {
        let text = String::from_utf8_lossy(&line.bytes);
        let content = header
            .as_ref()
            .and_then(|h| h.content(&text))
            .unwrap_or(&text);
        mask_into(content, &mut tokens);
        assigned.push(miner.insert(&tokens).slot);
    }
    let mut out =
        BufWriter::new(std::fs::File::create(&req.assignments).map_err(io(&req.assignments))?);
    writeln!(out, "LineId,ClusterId,EventTemplate").map_err(io(&req.assignments))?;
    for (i, slot) in assigned.iter().enumerate() {
        let (id, t) = miner.resolve(*slot).unwrap_or_default();
        writeln!(out, "{},{:016x},{}", i + 1, id, csv_field(&t)).map_err(io(&req.assignments))?;
    }
    out.flush().map_err(io(&req.assignments))?;
    if let Some(path) = &req.templates {
        let mut out = BufWriter::new(std::fs::File::create(path).map_err(io(path))?);
        writeln!(out, "ClusterId,EventTemplate,Occurrences").map_err(io(path))?;
        for (id, t, n) in miner.templates() {
            writeln!(out, "{id:016x},{},{n}", csv_field(&t)).map_err(io(path))?;
        }
        out.flush().map_err(io(path))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let lines = assigned.len() as u64;
    Ok(Report {
        lines,
        templates: miner.len(),
        seconds,
        lines_per_second: lines as f64 / seconds.max(1e-9),
    })
}
