//! The miner's state between runs: each worker saves its live templates at end of input and,
//! at start, loads the templates of the partitions it owns, so a restarted job keeps its
//! template ids (and its incidents their fingerprints) for any number of workers.
//!
//! In: a directory. Out: `templates-<worker>-of-<peers>.jsonl` files, one saved template per
//! line. State: none beyond the files. A file from an earlier run with another worker count is
//! read at start like the others and removed by worker 0 when it saves.

use std::collections::HashSet;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::miner::{Miner, SavedTemplate};

fn file(dir: &Path, worker: usize, peers: usize) -> PathBuf {
    dir.join(format!("templates-{worker}-of-{peers}.jsonl"))
}

fn state_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    files.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("templates-") && n.ends_with(".jsonl"))
    });
    files.sort();
    Ok(files)
}

/// Loads the saved templates whose partition this worker owns (`partition % peers == worker`,
/// the exchange's routing). Returns how many were loaded.
pub fn load(miner: &mut Miner, dir: &Path, worker: usize, peers: usize) -> std::io::Result<usize> {
    let mut seen = HashSet::new();
    let mut loaded = 0;
    for path in state_files(dir)? {
        let reader = std::io::BufReader::new(std::fs::File::open(&path)?);
        for line in reader.lines() {
            let line = line?;
            let Ok(t) = serde_json::from_str::<SavedTemplate>(&line) else {
                return Err(std::io::Error::other(format!(
                    "{}: not a saved template: {line}",
                    path.display()
                )));
            };
            let owned = u64::from_str_radix(&t.partition, 16)
                .is_ok_and(|p| p % peers as u64 == worker as u64);
            if owned && seen.insert(t.id.clone()) && miner.import(&t) {
                loaded += 1;
            }
        }
    }
    Ok(loaded)
}

/// Saves this worker's live templates (atomically: write, then rename).
pub fn save(miner: &Miner, dir: &Path, worker: usize, peers: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = file(dir, worker, peers);
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = BufWriter::new(std::fs::File::create(&tmp)?);
    for t in miner.export() {
        serde_json::to_writer(&mut out, &t)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    if worker == 0 {
        let suffix = format!("-of-{peers}.jsonl");
        for stale in state_files(dir)? {
            if !stale
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&suffix))
            {
                std::fs::remove_file(stale)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mask::mask;

    #[test]
    fn round_trip_keeps_ids_for_any_worker_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = Miner::new(3, 1000);
        let lines = [
            "session for alice expired",
            "session for bob expired",
            "session for carol expired",
            "disk sda is full",
            "cpu hot",
        ];
        let ids: Vec<u64> = lines.iter().map(|l| m.insert(&mask(l)).id).collect();
        let merged = m.insert(&mask("session for alice expired")).id;
        save(&m, dir.path(), 0, 1).expect("save");
        // Two workers now: between them they load every template once.
        let mut a = Miner::new(3, 1000);
        let mut b = Miner::new(3, 1000);
        let n = load(&mut a, dir.path(), 0, 2).expect("load")
            + load(&mut b, dir.path(), 1, 2).expect("load");
        assert_eq!(n, m.len());
        for (line, want) in [
            ("session for zoe expired", merged),
            ("disk sda is full", ids[3]),
            ("cpu hot", ids[4]),
        ] {
            let miner = if crate::cluster::message_key(line).is_multiple_of(2) {
                &mut a
            } else {
                &mut b
            };
            assert_eq!(miner.insert(&mask(line)).id, want, "{line}");
        }
    }
}
