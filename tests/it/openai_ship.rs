//! A whole job whose fix comes from the OpenAI-compatible backend and nothing else: every role
//! is answered by the local chat-completions server (with a fix the builtin backend would not
//! write), the sandbox proves it with the model's own reproducing test, and the deployment loop
//! ships it to production.

use hephaestus::model::deploy::store::{Status, Store};

use super::openai::{Server, completion};

const ANALYSIS: &str = r#"{"kind": "logic", "summary": "average() divides by len(values), which is 0 for an empty batch", "path": "calc.py", "line": 2, "pattern": null}"#;
const FIX: &str = r#"{"edits": [{"path": "calc.py", "search": "return sum(values) / len(values)", "replace": "return sum(values) / max(len(values), 1)  # model: empty batches average to 0"}], "explanation": "an empty batch has no average; return 0 instead of dividing by zero"}"#;
const TESTS: &str = r#"{"kind": "unit", "edits": [{"path": "test_model_repro.py", "search": "", "replace": "import unittest\n\nfrom calc import average\n\n\nclass ModelRepro(unittest.TestCase):\n    def test_empty_batch(self):\n        self.assertEqual(average([]), 0)\n"}], "command": "python3 -m unittest -q test_model_repro"}"#;
const REPORT: &str =
    r##"{"markdown": "# Empty batches crash the report\n\nWritten by the model."}"##;

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_backends_own_fix_is_validated_and_deployed() {
    let (server, url) = Server::roles(vec![
        ("logic analyzer", completion(ANALYSIS, 900, 60)),
        ("syntax analyzer", completion(ANALYSIS, 900, 60)),
        ("code fixer", completion(FIX, 1200, 90)),
        ("test generator", completion(TESTS, 1100, 120)),
        ("doc generator", completion(REPORT, 1000, 80)),
    ])
    .await;
    let root = super::model::scratch("openai-ships");
    let (repo, log) = super::model::python_project(&root);
    let model = format!(
        "automation = \"deploy\"\nbackend = \"openai\"\n\n[model.openai]\nbase_url = \"{url}\"\nmodel = \"m\"\nmax_retries = 0\n\n\
         [model.repository]\npath = {:?}\ntest_command = \"python3 -m unittest -q test_calc\"\n\n\
         [deploy]\napproval = \"auto\"\nwatch_window = \"10m\"\n",
        repo.display().to_string()
    );
    let (summary, attempts) = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || super::model::run_job(&root, &log, &model))
            .await
            .expect("job")
    };
    let m = summary.model.expect("model summary");
    assert_eq!((m.validated, m.attempts), (1, 1), "{m:?}\n{attempts:#?}");

    let steps = attempts[0]["steps"].as_array().expect("steps");
    let by_role: Vec<(String, String)> = steps
        .iter()
        .filter_map(|s| Some((s["role"].as_str()?.into(), s["backend"].as_str()?.into())))
        .collect();
    assert!(
        by_role.iter().all(|(_, backend)| backend == "openai"),
        "every role answered by the model server: {by_role:?}"
    );
    for role in ["logic_analyzer", "code_fixer", "test_generator"] {
        assert!(
            by_role.iter().any(|(r, _)| r == role),
            "{role} asked: {by_role:?}"
        );
    }
    let diff = attempts[0]["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("max(len(values), 1)"), "{diff}");
    assert!(server.requests() >= 3);

    let book = Store::new(repo.join(".git/hephaestus/deploys.json"))
        .load()
        .expect("deploy record");
    let fix = &book.fixes[0];
    assert_eq!(fix.status, Status::Production, "{fix:#?}");
    assert!(fix.diff.contains("max(len(values), 1)"), "{}", fix.diff);
    let production = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["show", "production:calc.py"])
        .output()
        .expect("git show");
    let shipped = String::from_utf8_lossy(&production.stdout);
    assert!(
        shipped.contains("max(len(values), 1)"),
        "production runs the model's fix: {shipped}"
    );
    let fp = attempts[0]["fingerprint"].as_str().unwrap_or_default();
    let report =
        std::fs::read_to_string(root.join("reports").join(format!("{fp}.md"))).expect("report");
    assert!(report.contains("Written by the model."), "{report}");
}
