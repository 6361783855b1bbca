//! `hephaestus mcp` driven by the official MCP Python SDK client (`mcp_client.py`, in the venv
//! `scripts/mcp-python` makes; `scripts/test` passes it as `HEPHAESTUS_MCP_PYTHON`): over
//! streamable HTTP on a replay of the fixtures, read-only, checked against the incidents file;
//! over stdio with `--allow-writes` on the deployment loop: fixes proposed (one validated into the
//! loop, one that fixes nothing turned down), approved and rolled back. Bad requests get an
//! error result with the reason, and the server keeps serving.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hephaestus::model::deploy::store::Status;
use serde_json::{Value, json};

use super::common::{finals, metric_sum, metrics_addr, root, scrape, stderr_lines};
use super::deploy::Loop;

/// The venv's python, or `None` (said on stderr) where the SDK could not be installed; under CI
/// its absence fails the test.
fn python() -> Option<PathBuf> {
    match std::env::var_os("HEPHAESTUS_MCP_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "HEPHAESTUS_MCP_PYTHON is unset: scripts/test installs the MCP SDK (scripts/mcp-python)"
            )
        }
        None => {
            eprintln!("mcp: skipped: HEPHAESTUS_MCP_PYTHON is unset (run scripts/test)");
            None
        }
    }
}

/// Runs `steps` with the Python client; one answer per step, after the server's name.
fn client(py: &Path, transport: &[&str], steps: &[Value]) -> Vec<Value> {
    let script = root().join("tests/it/mcp_client.py");
    let mut child = Command::new(py)
        .arg(script)
        .args(transport)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python client");
    let steps = serde_json::to_vec(steps).expect("steps");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&steps)
        .expect("write steps");
    let out = child.wait_with_output().expect("client output");
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client JSON: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(answers[0]["server"], "hephaestus", "{answers:?}");
    assert_eq!(answers.len(), steps_len(&steps) + 1, "{answers:?}");
    answers[1..].to_vec()
}

fn steps_len(steps: &[u8]) -> usize {
    serde_json::from_slice::<Vec<Value>>(steps).map_or(0, |v| v.len())
}

fn call(name: &str, args: Value) -> Value {
    json!({"op": "call", "name": name, "args": args})
}

fn tool_names(answer: &Value) -> Vec<String> {
    answer["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// An error result whose text says `why`.
fn refused(answer: &Value, why: &str) {
    assert_eq!(answer["is_error"], true, "{answer}");
    let text = answer["text"].as_str().unwrap_or_default();
    assert!(text.contains(why), "`{text}` does not say `{why}`");
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("incidents file")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn an_agent_reads_the_fixture_incidents_over_http() {
    let Some(py) = python() else { return };
    let dir = super::model::scratch("mcp-http");
    let incidents = dir.join("incidents.jsonl");
    let spec = root().join("fixtures/golden.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_hephaestus"))
        .args(["run", spec.to_str().expect("spec"), "--output"])
        .arg(&incidents)
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let want = finals(&lines(&incidents));
    let live: Vec<&Value> = want.values().filter(|v| v["state"] != "merged").collect();
    assert!(
        live.len() > 10,
        "the fixtures make incidents: {}",
        live.len()
    );

    let mut server = Command::new(env!("CARGO_BIN_EXE_hephaestus"))
        .args(["mcp", spec.to_str().expect("spec"), "--incidents"])
        .arg(&incidents)
        .args(["--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mcp server");
    let said = stderr_lines(&mut server);
    let metrics = metrics_addr(&said);
    let url = loop {
        let line = said
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the server says where it serves");
        if let Some(rest) = line.strip_prefix("hephaestus: mcp: serving ") {
            break rest.to_string();
        }
    };
    let escalating = live
        .iter()
        .find(|v| v["state"] == "escalating")
        .expect("an escalating incident");
    let fp = escalating["fingerprint"].as_str().expect("fp").to_string();
    let word = escalating["title"]
        .as_str()
        .expect("title")
        .split(' ')
        .next()
        .expect("word");
    let steps = [
        json!({"op": "list_tools"}),
        call("list_incidents", json!({"limit": 500})),
        call("list_incidents", json!({"state": "escalating"})),
        call(
            "list_incidents",
            json!({"text": word.to_uppercase(), "limit": 500}),
        ),
        call("get_incident", json!({"fingerprint": fp})),
        call("get_incident", json!({"fingerprint": "0000000000000000"})),
        call("list_incidents", json!({"limit": "ten"})),
        call("list_incidents", json!({"colour": "red"})),
        call("list_incidents", json!({"text": "x".repeat(300 * 1024)})),
        call("list_incidents", json!({"since": "yesterday"})),
        call("approve_fix", json!({"id": "fix-1"})),
        json!({"op": "list_resources"}),
        json!({"op": "list_resource_templates"}),
        json!({"op": "read_resource", "uri": format!("hephaestus://incident/{fp}")}),
        json!({"op": "read_resource", "uri": "hephaestus://incident/nope"}),
        json!({"op": "get_prompt", "name": "fix_incident", "args": {"fingerprint": fp}}),
        call("list_incidents", json!({"limit": 1})),
    ];
    let a = client(&py, &["http", &url], &steps);

    assert_eq!(
        tool_names(&a[0]),
        ["list_incidents", "get_incident", "list_fixes", "get_fix"],
        "no tool that changes state without --allow-writes"
    );
    for t in a[0]["tools"].as_array().into_iter().flatten() {
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 80),
            "{t}"
        );
        assert_eq!(t["schema"]["type"], "object", "{t}");
    }
    // Every live incident, as the file last has it, newest first.
    let listed = a[1]["structured"]["incidents"]
        .as_array()
        .expect("incidents");
    assert_eq!(listed.len(), live.len(), "{}", a[1]);
    for row in listed {
        let line = &want[row["fingerprint"].as_str().expect("fp")];
        for k in [
            "title",
            "state",
            "count",
            "first_seen",
            "last_seen",
            "services",
        ] {
            assert_eq!(row[k], line[k], "{k} of {row}");
        }
    }
    let seen: Vec<&str> = listed
        .iter()
        .map(|r| r["last_seen"].as_str().unwrap_or(""))
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {seen:?}"
    );
    let esc = a[2]["structured"]["incidents"]
        .as_array()
        .expect("filtered");
    assert!(
        !esc.is_empty() && esc.iter().all(|r| r["state"] == "escalating"),
        "{}",
        a[2]
    );
    let by_text = a[3]["structured"]["incidents"].as_array().expect("by text");
    assert!(
        by_text.iter().any(|r| r["fingerprint"] == fp.as_str()),
        "{}",
        a[3]
    );
    assert!(by_text.len() < listed.len(), "the text filter filters");
    // get_incident: the whole line, with its (empty) fix history.
    let got = &a[4]["structured"];
    let mut line = want[&fp].clone();
    line["fixes"] = json!([]);
    assert_eq!(got, &line);
    // Bad requests, each with its reason; the server keeps serving.
    refused(&a[5], "no incident with fingerprint `0000000000000000`");
    refused(&a[6], "bad arguments for `list_incidents`: invalid type");
    refused(&a[7], "unknown field `colour`");
    refused(&a[8], "argument `text` is 307200 bytes");
    refused(&a[9], "`since` must be an RFC 3339 time");
    refused(&a[10], "unknown tool `approve_fix`");
    // Resources and the prompt.
    let uris: Vec<&str> = a[11]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["uri"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(uris.len(), live.len());
    assert!(uris.contains(&format!("hephaestus://incident/{fp}").as_str()));
    assert_eq!(
        a[12]["templates"],
        json!(["hephaestus://incident/{fingerprint}"])
    );
    let read: Value =
        serde_json::from_str(a[13]["contents"][0].as_str().expect("text")).expect("JSON");
    assert_eq!(read, line);
    assert!(
        a[14]["exception"]
            .as_str()
            .is_some_and(|e| e.contains("nope")),
        "{}",
        a[14]
    );
    let prompt = a[15]["messages"][0].as_str().expect("prompt");
    assert!(
        prompt.contains(&fp) && prompt.contains("reproduces the incident"),
        "{prompt}"
    );
    assert_eq!(
        a[16]["structured"]["incidents"].as_array().map(Vec::len),
        Some(1),
        "still serving"
    );

    let body = scrape(&metrics);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        metric_sum(
            &body,
            "hephaestus_mcp_requests_total{tool=\"list_incidents\",outcome=\"ok\"}"
        ) >= 4.0,
        "{body}"
    );
    assert!(
        metric_sum(
            &body,
            "hephaestus_mcp_requests_total{tool=\"list_incidents\",outcome=\"bad_request\"}"
        ) >= 4.0,
        "{body}"
    );
    assert!(
        metric_sum(
            &body,
            "hephaestus_mcp_request_seconds_count{tool=\"get_incident\"}"
        ) >= 2.0,
        "{body}"
    );
}

#[test]
fn an_agent_proposes_approves_and_rolls_back_fixes_over_stdio() {
    let Some(py) = python() else { return };
    let root = super::model::scratch("mcp-stdio");
    let l = Loop::with_root(root.clone(), "manual", "");
    l.first_run();
    let fix = l.book().fixes[0].clone();
    assert_eq!(fix.status, Status::AwaitingApproval);
    let bin = env!("CARGO_BIN_EXE_hephaestus");
    let spec = l.spec.to_str().expect("spec");
    let test = json!({
        "diff": "--- /dev/null\n+++ b/test_agent.py\n@@ -0,0 +1,8 @@\n+import unittest\n+\n+from calc import average\n+\n+\n+class EmptyBatch(unittest.TestCase):\n+    def test_empty(self):\n+        self.assertEqual(average([]), 0)\n",
        "command": "python3 -m unittest -q test_agent",
    });
    let no_op = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,3 @@\n def average(values):\n+    # values may be empty\n     return sum(values) / len(values)\n";
    let outside = fix
        .diff
        .replace("a/calc.py", "a/../calc.py")
        .replace("b/calc.py", "b/../calc.py");
    let fp = fix.fingerprint.as_str();
    let steps = [
        json!({"op": "list_tools"}),
        call("get_incident", json!({"fingerprint": fp})),
        call("list_fixes", json!({"status": "awaiting_approval"})),
        call("get_fix", json!({"id": "fix-1"})),
        call(
            "propose_fix",
            json!({"fingerprint": fp, "diff": fix.diff, "test": test, "explanation": "guard the empty batch"}),
        ),
        call("propose_fix", json!({"fingerprint": fp, "diff": no_op})),
        call(
            "propose_fix",
            json!({"fingerprint": fp, "diff": "make it not divide by zero"}),
        ),
        call("propose_fix", json!({"fingerprint": fp, "diff": outside})),
        call(
            "propose_fix",
            json!({"fingerprint": "0000000000000000", "diff": fix.diff}),
        ),
        call("reject_fix", json!({"id": "fix-1"})),
        call("approve_fix", json!({"id": "fix-9"})),
        call("approve_fix", json!({"id": "fix-1"})),
        call("approve_fix", json!({"id": "fix-1"})),
        call(
            "rollback_fix",
            json!({"id": "fix-1", "why": "agent saw latency double"}),
        ),
        json!({"op": "get_prompt", "name": "fix_incident", "args": {"fingerprint": fp}}),
    ];
    let a = client(&py, &["stdio", bin, "mcp", spec, "--allow-writes"], &steps);
    assert_eq!(tool_names(&a[0]).len(), 8, "{}", a[0]);
    let history = &a[1]["structured"]["fixes"];
    assert_eq!(
        history[0]["id"], "fix-1",
        "the incident carries its fix history: {}",
        a[1]
    );
    assert_eq!(a[2]["structured"]["fixes"][0]["id"], "fix-1", "{}", a[2]);
    assert_eq!(a[3]["structured"]["diff"], fix.diff.as_str());
    // A good fix with the agent's own test: validated, and into the loop as fix-2.
    let good = &a[4]["structured"];
    assert_eq!(good["validated"], true, "{}", a[4]);
    assert_eq!(good["fix"]["id"], "fix-2", "{}", a[4]);
    assert_eq!(good["fix"]["status"], "awaiting_approval", "{}", a[4]);
    assert!(
        good["steps"]
            .as_str()
            .is_some_and(|s| s.contains("passed test fails before the fix")),
        "{}",
        a[4]
    );
    // A change that fixes nothing: the generated reproducing test still fails after it.
    refused(&a[5], "the fix did not validate");
    refused(&a[5], "FAILED test passes after the fix");
    refused(&a[6], "malformed diff: no file headers");
    refused(&a[7], "must be relative and stay inside the repository");
    refused(&a[8], "no incident with fingerprint `0000000000000000`");
    refused(&a[9], "`why` is required");
    refused(&a[10], "no fix `fix-9`");
    assert_eq!(a[11]["structured"]["status"], "production", "{}", a[11]);
    refused(&a[12], "only a staged fix awaiting approval");
    assert_eq!(a[13]["structured"]["status"], "rolled_back", "{}", a[13]);
    let prompt = a[14]["messages"][0].as_str().expect("prompt");
    assert!(
        prompt.contains("calc.py") && prompt.contains("def average"),
        "the prompt carries the code: {prompt}"
    );

    let book = l.book();
    assert_eq!(
        book.fixes.len(),
        2,
        "only the validated proposal became a fix"
    );
    assert_eq!(book.fixes[1].status, Status::AwaitingApproval);
    assert_eq!(book.fixes[0].status, Status::RolledBack);
    assert_eq!(
        book.fixes[0].rollback.as_deref(),
        Some("agent saw latency double")
    );
    let reasons: Vec<&str> = book.releases.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["deploy fix-1", "rollback fix-1"]);
    let notices = std::fs::read_to_string(root.join("notices.jsonl")).unwrap_or_default();
    assert!(
        notices.contains("rolled"),
        "the rollback was notified: {notices}"
    );
}
