//! The fuzz corpus and every crash the fuzzer found, replayed on the stable toolchain.
//!
//! In: `fuzz/corpus/TARGET/*` (inputs libFuzzer kept because they reach new code) and
//! `fuzz/regressions/TARGET/*` (inputs that once crashed a target). Out: each input through the
//! same `hephaestus::commands::fuzz` body the cargo-fuzz harness calls, which panics when an invariant
//! breaks. `scripts/fuzz run` is the fuzzing itself; this is what keeps its finds fixed.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd.filter_map(|e| Some(e.ok()?.path())).collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    let mut n = 0;
    for (name, body) in hephaestus::commands::fuzz::TARGETS {
        for file in inputs(&root.join(name)) {
            let data = std::fs::read(&file).expect("read input");
            let run = std::panic::catch_unwind(|| body(&data));
            assert!(run.is_ok(), "{name}: {} fails", file.display());
            n += 1;
        }
    }
    n
}

#[test]
fn every_target_has_a_committed_corpus_that_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, _) in hephaestus::commands::fuzz::TARGETS {
        assert!(
            inputs(&root.join(name)).len() >= 3,
            "fuzz/corpus/{name} is missing or nearly empty"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("fuzz/fuzz_targets/{name}.rs"))
                .is_file(),
            "no cargo-fuzz harness for {name}"
        );
    }
    assert!(replay("corpus") > 0);
}

#[test]
fn every_crash_the_fuzzer_found_stays_fixed() {
    assert!(
        replay("regressions") >= 1,
        "the regression cases are committed"
    );
}
