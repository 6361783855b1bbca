//! Every fixture log is a test case: its incidents and dead letters are compared with the golden
//! files beside it (`x.log` → `x.incidents.jsonl`, `x.dead.jsonl`). A fixture may bring its own
//! spec (`x.toml`); the others run with fixtures/golden.toml. `HEPHAESTUS_BLESS=1` rewrites the
//! goldens from the current output.

use std::path::{Path, PathBuf};

use crate::common::{root, run};

fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            fixtures(&p, out);
        } else if p.extension().is_some_and(|e| e == "log") {
            out.push(p);
        }
    }
}

fn compare(golden: &Path, got: &[String], bless: bool, failures: &mut Vec<String>) {
    let text = if got.is_empty() {
        String::new()
    } else {
        got.join("\n") + "\n"
    };
    if bless {
        if got.is_empty() {
            let _ = std::fs::remove_file(golden);
        } else {
            std::fs::write(golden, &text).expect("write golden");
        }
        return;
    }
    let want = std::fs::read_to_string(golden).unwrap_or_default();
    if want != text {
        let first = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(text.lines().count()));
        failures.push(format!(
            "{}: differs at line {} (want {} lines, got {})\n  want: {}\n  got:  {}",
            golden.display(),
            first + 1,
            want.lines().count(),
            text.lines().count(),
            want.lines().nth(first).unwrap_or("<none>"),
            text.lines().nth(first).unwrap_or("<none>")
        ));
    }
}

#[test]
fn every_fixture_matches_its_golden() {
    let bless = std::env::var("HEPHAESTUS_BLESS").is_ok_and(|v| v == "1");
    let mut logs = Vec::new();
    fixtures(&root().join("fixtures/logs"), &mut logs);
    fixtures(&root().join("fixtures/bad"), &mut logs);
    assert!(logs.len() >= 15, "fixtures found: {}", logs.len());
    let mut failures = Vec::new();
    for log in &logs {
        let own = log.with_extension("toml");
        let spec = if own.exists() {
            own
        } else {
            root().join("fixtures/golden.toml")
        };
        // Relative to the package root (the tests' working directory), so dead letters name
        // the same source on every machine.
        let rel = log.strip_prefix(root()).unwrap_or(log).to_path_buf();
        let out = run(&spec, &[rel], 2);
        compare(
            &log.with_extension("incidents.jsonl"),
            &out.incidents,
            bless,
            &mut failures,
        );
        compare(
            &log.with_extension("dead.jsonl"),
            &out.dead,
            bless,
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches (rerun with HEPHAESTUS_BLESS=1 after checking):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
