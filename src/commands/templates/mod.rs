//! `hephaestus templates`: mine a log file into message templates and write, for every line,
//! the cluster it ends up in (Loghub's `LineId,ClusterId,EventTemplate` CSV).
//!
//! In: a file (plain or gzip) and, optionally, a Loghub header template whose `<Content>` is
//! mined (lines that do not match it are mined whole). Out: the assignments CSV, one row per
//! line in input order with each line's *final* cluster (a cluster that generalised or merged
//! later is reported for the earlier lines too), and optionally a templates CSV. Uses the job's
//! `Miner`, in one partition (`Miner::one_partition`). State: the miner and one slot per line.
//!
//! The file goes through in rounds (`input.rs`); per round, all workers compute the lines' keys
//! and look them up in the miner's memo, then the miner takes the round's lines in order,
//! mining the misses (`phases.rs`); at the end it settles its waiting clusters. So the
//! assignments are the same for any number of workers and equal to mining every line in order
//! (`tests/it/templates.rs`).

mod input;
mod phases;

use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::cluster::ClusterConfig;
use crate::cluster::miner::{Miner, Slot};
use crate::parse::HeaderFormat;
use input::{Chunk, Input};

/// Lines formatted per step of the CSV writer.
const WRITE_STEP: usize = 1 << 18;

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
    /// Wall time of the whole run.
    pub seconds: f64,
    pub lines_per_second: f64,
    /// Reading, masking and mining (the steady state); the rest is writing the CSVs.
    pub mining_seconds: f64,
    pub mining_lines_per_second: f64,
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

fn io(path: &Path) -> impl Fn(std::io::Error) -> TemplatesError + '_ {
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
    let workers = req.workers.clamp(1, 64);
    let started = Instant::now();
    let mut input = Input::open(&req.file).map_err(io(&req.file))?;
    // One miner sees every line (a first word may be a variable); the workers share the
    // reading, masking and memo look-ups of phase 1.
    let mut miner = Miner::new(req.cluster.variable_after, usize::MAX >> 1).one_partition();
    let mut chunks: Vec<Chunk> = (0..workers).map(|_| Chunk::default()).collect();
    let mut keys = vec![Vec::new(); workers];
    let mut slots = vec![Vec::new(); workers];
    let mut assigned: Vec<Slot> = Vec::new();
    loop {
        let n = input.next_round(&mut chunks).map_err(io(&req.file))?;
        if n == 0 {
            break;
        }
        let round = &chunks[..n];
        let h = header.as_ref();
        phases::keys(round, h, &miner, workers, &mut keys[..n], &mut slots[..n]);
        phases::mine(round, &keys[..n], &mut slots[..n], h, &mut miner);
        for s in &slots[..n] {
            assigned.extend_from_slice(s);
        }
    }
    miner.settle();
    let mining_seconds = started.elapsed().as_secs_f64();
    write_assignments(&req.assignments, &assigned, &mut miner, workers)?;
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
        mining_seconds,
        mining_lines_per_second: lines as f64 / mining_seconds.max(1e-9),
    })
}

/// One row per line. Each slot's final cluster is resolved once into its CSV tail
/// (`,id,template\n`); rows are then formatted in parallel, step by step, and written in order.
fn write_assignments(
    path: &Path,
    assigned: &[u32],
    miner: &mut Miner,
    workers: usize,
) -> Result<(), TemplatesError> {
    let mut tails: Vec<Option<Box<[u8]>>> = Vec::new();
    for &slot in assigned {
        if tails.len() <= slot as usize {
            tails.resize(slot as usize + 1, None);
        }
        if tails[slot as usize].is_none() {
            let (id, t) = miner.resolve(slot).unwrap_or_default();
            tails[slot as usize] = Some(
                format!(",{id:016x},{}\n", csv_field(&t))
                    .into_bytes()
                    .into_boxed_slice(),
            );
        }
    }
    let file = std::fs::File::create(path).map_err(io(path))?;
    let header = b"LineId,ClusterId,EventTemplate\n";
    file.write_all_at(header, 0).map_err(io(path))?;
    let mut offset = header.len() as u64;
    let tails = &tails;
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); workers];
    for (step, lines) in assigned.chunks(WRITE_STEP).enumerate() {
        let first = step * WRITE_STEP;
        // Format the step's rows in parallel…
        std::thread::scope(|s| {
            for (part, buf) in bufs.iter_mut().enumerate() {
                let range = lines.len() * part / workers..lines.len() * (part + 1) / workers;
                s.spawn(move || {
                    buf.clear();
                    let mut num = [0u8; 20];
                    for (k, &slot) in lines[range.clone()].iter().enumerate() {
                        buf.extend_from_slice(digits(
                            &mut num,
                            (first + range.start + k) as u64 + 1,
                        ));
                        let tail = tails[slot as usize].as_deref();
                        buf.extend_from_slice(tail.unwrap_or(b",,\n"));
                    }
                });
            }
        });
        // …then write each part at its offset, in parallel too.
        let mut at = Vec::with_capacity(bufs.len());
        for buf in &bufs {
            at.push(offset);
            offset += buf.len() as u64;
        }
        let file = &file;
        let written: Vec<std::io::Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = bufs
                .iter()
                .zip(&at)
                .map(|(buf, &off)| s.spawn(move || file.write_all_at(buf, off)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("writer panicked")))
                })
                .collect()
        });
        written
            .into_iter()
            .collect::<std::io::Result<()>>()
            .map_err(io(path))?;
    }
    Ok(())
}

/// Formats a line number into `buf`, returning the digits.
fn digits(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}
