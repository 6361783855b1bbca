//! The timely processes of a job: how many, which one this is, and where the others listen.
//!
//! In: `--processes`, `--process` and a hostfile. Out: a `Cluster`. No state.

use std::path::Path;

/// The timely processes of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    pub processes: usize,
    pub process: usize,
    /// `host:port` of every process, in process order (empty for one process).
    pub hosts: Vec<String>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            processes: 1,
            process: 0,
            hosts: Vec::new(),
        }
    }
}

/// Reads a timely hostfile: one `host:port` per line; blank lines and `#` comments are skipped.
pub fn read_hostfile(path: &Path) -> Result<Vec<String>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("hostfile {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}
