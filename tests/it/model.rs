//! The model-worker stage end to end, offline: tiny projects generated here with a seeded bug,
//! their real logs through the real dataflow, fixes proven in the sandbox.
//!
//! Projects live under `CARGO_TARGET_TMPDIR` (not /tmp: the sandbox's /tmp is private).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A fresh directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "model-{name}-{}-{}",
        std::process::id(),
        hephaestus::core::time::now_ms()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn sh(dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Writes `files` into `dir` and commits them.
pub fn git_repo(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "commit",
            "-qm",
            "seed",
        ],
    ] {
        let out = sh(dir, "git", args);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

pub const CALC: &str = "def average(values):\n    return sum(values) / len(values)\n";
const TEST_CALC: &str = "import unittest\n\nfrom calc import average\n\n\nclass CalcTest(unittest.TestCase):\n    def test_average(self):\n        self.assertEqual(average([2, 4]), 3)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n";
const APP: &str = "import logging\n\nfrom calc import average\n\nlogging.basicConfig(format=\"%(asctime)s %(levelname)s [%(name)s] %(message)s\", level=logging.INFO)\nlog = logging.getLogger(\"report\")\n\nfor batch in ([1, 2, 3], [], [4, 5], []):\n    try:\n        log.info(\"average of %d values: %s\", len(batch), average(batch))\n    except Exception:\n        log.exception(\"report failed for batch of %d values\", len(batch))\n";

/// The Python project with its bug, and the log its app writes (a real traceback).
pub fn python_project(root: &Path) -> (PathBuf, PathBuf) {
    let repo = root.join("pyrepo");
    git_repo(
        &repo,
        &[
            ("calc.py", CALC),
            ("test_calc.py", TEST_CALC),
            ("app.py", APP),
            (".gitignore", "__pycache__/\n"),
        ],
    );
    let out = sh(&repo, "python3", &["app.py"]);
    let log = root.join("app.log");
    std::fs::write(&log, &out.stderr).expect("log");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("ZeroDivisionError"),
        "the app did not fail: {text}"
    );
    (repo, log)
}

const LIB_RS: &str = "/// The first word of `s`.\npub fn first_word(s: &str) -> &str {\n    s.split_whitespace().next().unwrap()\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn first() {\n        assert_eq!(super::first_word(\"hello world\"), \"hello\");\n    }\n}\n";
const MAIN_RS: &str = "fn main() {\n    for input in [\"hello world\", \"   \", \"x y\", \"\"] {\n        eprintln!(\"[2026-11-24T00:00:00Z INFO  words] parsing {input:?}\");\n        if std::panic::catch_unwind(|| words::first_word(input).len()).is_err() {\n            eprintln!(\"[2026-11-24T00:00:01Z ERROR words] request failed\");\n        }\n    }\n}\n";

/// The Rust crate with its bug, and the log its binary writes (a real panic).
fn rust_project(root: &Path) -> (PathBuf, PathBuf) {
    let repo = root.join("words");
    let manifest =
        "[package]\nname = \"words\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n";
    git_repo(
        &repo,
        &[
            ("Cargo.toml", manifest),
            ("src/lib.rs", LIB_RS),
            ("src/main.rs", MAIN_RS),
            (".gitignore", "target/\nCargo.lock\n"),
        ],
    );
    let out = sh(&repo, "cargo", &["run", "--quiet", "--offline"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        text.contains("panicked at src/lib.rs:3"),
        "the binary did not panic: {text}"
    );
    let log = root.join("words.log");
    std::fs::write(&log, text).expect("log");
    (repo, log)
}

/// Runs the job on `log` with `[model]` settings appended; the summary and attempt records.
pub fn run_job(root: &Path, log: &Path, model: &str) -> (hephaestus::job::Summary, Vec<Value>) {
    let spec = root.join("job.toml");
    let text = format!(
        "[job]\nname = \"model-test\"\n\n[[sources]]\npaths = [{log:?}]\n\n[metrics]\nenabled = false\n\n\
         [model]\nenabled = true\nattempts = \"attempts.jsonl\"\nreports_dir = \"reports\"\n{model}\n"
    );
    std::fs::write(&spec, text).expect("spec");
    let plan = super::common::plan(&spec, &[], 2, root);
    let summary = hephaestus::job::run(plan, hephaestus::core::shutdown::Shutdown::default())
        .unwrap_or_else(|e| panic!("job: {e}"));
    let attempts = std::fs::read_to_string(root.join("attempts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("attempt record"))
        .collect();
    (summary, attempts)
}

/// The validated attempt and its incident's report.
fn validated(root: &Path, attempts: &[Value]) -> (Value, String) {
    let ok: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["outcome"] == "validated")
        .collect();
    assert_eq!(ok.len(), 1, "one validated attempt: {attempts:#?}");
    let fp = ok[0]["fingerprint"].as_str().unwrap_or_default();
    let report =
        std::fs::read_to_string(root.join("reports").join(format!("{fp}.md"))).expect("report");
    (ok[0].clone(), report)
}

fn step<'a>(attempt: &'a Value, name: &str) -> &'a Value {
    attempt["validation"]["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name:?} in {attempt:#}"))
}

#[test]
fn python_division_by_zero_is_fixed_and_proven() {
    let root = scratch("python");
    let (repo, log) = python_project(&root);
    let model = format!(
        "[model.repository]\npath = {repo:?}\ntest_command = \"python3 -m unittest -q test_calc\"\n"
    );
    let (summary, attempts) = run_job(&root, &log, &model);
    let m = summary.model.expect("model summary");
    assert_eq!(
        (m.started, m.validated, m.attempts),
        (1, 1, 1),
        "{m:?}\n{attempts:#?}"
    );
    let (a, report) = validated(&root, &attempts);
    let a = &a;
    assert_eq!(a["analysis"]["pattern"], "division_by_zero");
    for name in [
        "patch applies",
        "test fails before the fix",
        "test passes after the fix",
        "unit tests",
    ] {
        assert_eq!(step(a, name)["ok"], true, "{name}: {a:#}");
    }
    let diff = a["diff"].as_str().expect("diff");
    assert!(
        diff.contains("--- a/calc.py") && diff.contains("-    return sum(values) / len(values)"),
        "{diff}"
    );
    // The repository itself is untouched: fixes live on worktrees, which are removed.
    assert_eq!(
        std::fs::read_to_string(repo.join("calc.py")).expect("calc"),
        CALC
    );
    assert!(
        report.contains(a["fingerprint"].as_str().unwrap_or("?"))
            && report.contains("ZeroDivisionError"),
        "{report}"
    );
    assert!(
        report.contains("Outcome: **Validated** after 1 attempt(s)")
            && report.contains("✔ test fails before the fix"),
        "{report}"
    );
    let states: Vec<&str> = a["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(
        &states[..5],
        [
            "ErrorAnalysis",
            "LogicAnalysis",
            "LogicFix",
            "UnitTests",
            "ValidationPhase"
        ],
        "{states:?}"
    );
}

#[test]
fn rust_unwrap_on_none_is_fixed_and_proven() {
    let root = scratch("rust");
    let (repo, log) = rust_project(&root);
    let model = format!(
        "[model.repository]\npath = {repo:?}\ntest_command = \"cargo test --quiet --offline\"\n\n[model.sandbox]\ntimeout = \"300s\"\n"
    );
    let (summary, attempts) = run_job(&root, &log, &model);
    let m = summary.model.expect("model summary");
    // The panic is fixed; the plain "request failed" line beside it has no trace: analysis only.
    assert_eq!(
        (m.validated, m.analysis_only, m.rejected),
        (1, 1, 0),
        "{m:?}\n{attempts:#?}"
    );
    let (a, report) = validated(&root, &attempts);
    let a = &a;
    assert_eq!(a["analysis"]["pattern"], "none_dereference", "{a:#}");
    assert_eq!(step(a, "test fails before the fix")["ok"], true);
    assert_eq!(step(a, "test passes after the fix")["ok"], true);
    assert_eq!(step(a, "unit tests")["ok"], true);
    assert!(
        a["diff"]
            .as_str()
            .is_some_and(|d| d.contains("+++ b/src/lib.rs")),
        "{a:#}"
    );
    assert!(report.contains("src/lib.rs"), "{report}");
}
