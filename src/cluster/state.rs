//! The miner's state between runs: each worker checkpoints its live templates (with the
//! incident book, at the same epoch boundaries, and at end of input) and, at start, loads the
//! templates of the partitions it owns, so a restarted job keeps its template ids (and its
//! incidents their fingerprints) for any number of workers.
//!
//! In: a directory. Out: `templates-<worker>-of-<peers>.<run>-<epoch>.jsonl` files, one saved template per
//! line. State: none beyond the files (see `checkpoint` for how they are written and when files
//! of another worker count go).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use super::miner::{Miner, SavedTemplate};
use crate::core::checkpoint::{self, Gen, Pick};

pub const PREFIX: &str = "templates-";

/// Loads the saved templates whose partition this worker owns (`owner(partition) % peers ==
/// worker`, the exchange's routing); a newer file wins over an older one. Returns how many were
/// loaded.
pub fn load(
    miner: &mut Miner,
    dir: &Path,
    worker: usize,
    peers: usize,
    pick: Pick,
) -> std::io::Result<usize> {
    let mut owned: BTreeMap<String, SavedTemplate> = BTreeMap::new();
    for path in checkpoint::files(dir, PREFIX, pick)? {
        let reader = std::io::BufReader::new(std::fs::File::open(&path)?);
        for line in reader.lines() {
            let line = line?;
            let Ok(t) = serde_json::from_str::<SavedTemplate>(&line) else {
                return Err(std::io::Error::other(format!(
                    "{}: not a saved template: {line}",
                    path.display()
                )));
            };
            if u64::from_str_radix(&t.partition, 16)
                .is_ok_and(|p| crate::core::shard::owner(p) % peers as u64 == worker as u64)
            {
                owned.insert(t.id.clone(), t);
            }
        }
    }
    Ok(owned.values().filter(|t| miner.import(t)).count())
}

/// Saves generation `g` of this worker's live templates.
pub fn save(miner: &Miner, dir: &Path, worker: usize, peers: usize, g: Gen) -> std::io::Result<()> {
    checkpoint::write_atomic(&checkpoint::file(dir, PREFIX, worker, peers, g), |out| {
        for t in miner.export() {
            serde_json::to_writer(&mut *out, &t)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::mask;

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
        save(&m, dir.path(), 0, 1, Gen { run: 1, epoch: 0 }).expect("save");
        // Two workers now: between them they load every template once.
        let mut a = Miner::new(3, 1000);
        let mut b = Miner::new(3, 1000);
        let n = load(&mut a, dir.path(), 0, 2, Pick::Newest).expect("load")
            + load(&mut b, dir.path(), 1, 2, Pick::Newest).expect("load");
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
