//! The deployment loop end to end, offline, in temporary git repositories: logs with the bug →
//! incident → fix → validated → staging → production; then logs from after the deploy decide:
//! the error returns from the new release (automatic revert, fix failed, webhook notified), it
//! returns only from an older release (nothing happens), or it does not return (fix successful,
//! incident resolved). With manual approval nothing reaches production before `approve`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hephaestus::commands::deploy::{Action, run as fixes};
use hephaestus::core::time::{format_rfc3339, now_ms};
use hephaestus::model::deploy::store::{Book, Status, Store};
use serde_json::{Value, json};

use super::model::{CALC, python_project, scratch};

/// A webhook receiver: records each POST body.
fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = got.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = conn.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(body) = super::common::http_body(&buf) {
                    break Some(body);
                }
            };
            if let Some(body) = body {
                seen.lock()
                    .expect("seen")
                    .push(serde_json::from_slice(&body).unwrap_or_default());
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (url, got)
}

/// JSON log lines: `errors` ZeroDivisionErrors (a real traceback into the repository) from
/// `release`, one a minute from `start`, with an info line between them.
fn logs(repo: &Path, release: &str, start: i64, errors: usize) -> String {
    let trace = format!(
        "Traceback (most recent call last):\n  File \"{}/calc.py\", line 2, in average\n    return sum(values) / len(values)\nZeroDivisionError: division by zero",
        repo.display()
    );
    let mut out = String::new();
    for i in 0..errors as i64 {
        let at = |s: i64| format_rfc3339(start + i * 60_000 + s * 1000);
        let info = json!({"@timestamp": at(0), "level": "INFO", "message": "report started", "service": "report", "release": release});
        let err = json!({"@timestamp": at(30), "level": "ERROR", "message": "report failed for batch of 0 values", "service": "report", "release": release, "exc_info": trace});
        out.push_str(&format!("{info}\n{err}\n"));
    }
    out
}

/// An unrelated error at `at` (moves the logs' clock past the watch window).
fn later(at: i64, release: &str) -> String {
    let line = json!({"@timestamp": format_rfc3339(at), "level": "ERROR", "message": "disk quota exceeded on /var/spool", "service": "mailer", "release": release});
    format!("{line}\n")
}

pub struct Loop {
    pub root: PathBuf,
    pub repo: PathBuf,
    pub spec: PathBuf,
    hooks: Arc<Mutex<Vec<Value>>>,
}

impl Loop {
    fn new(name: &str, approval: &str) -> Loop {
        Loop::with_root(scratch(name), approval, "")
    }

    /// In `root`; `deploy`: extra `[deploy]` keys (operator commands).
    pub fn with_root(root: PathBuf, approval: &str, deploy: &str) -> Loop {
        let (repo, _) = python_project(&root);
        let (url, hooks) = webhook();
        let spec = root.join("job.toml");
        let text = format!(
            "[job]\nstate_dir = \"state\"\n\n[[sources]]\npaths = [\"run.log\"]\n\n[incident]\nquiet_period = \"5m\"\n\n[output]\nincidents = \"incidents.jsonl\"\ndead_letters = \"dead.jsonl\"\n\n[metrics]\nenabled = false\n\n\
             [model]\nenabled = true\nautomation = \"deploy\"\nmax_attempts = 2\nattempts = \"attempts.jsonl\"\nreports_dir = \"reports\"\n\n\
             [model.repository]\npath = {:?}\ntest_command = \"python3 -m unittest -q test_calc\"\n\n\
             [deploy]\napproval = \"{approval}\"\nwatch_window = \"10m\"\nload_command = \"python3 -c 'from calc import average; [average([1, 2]) for _ in range(1000)]'\"\n{deploy}\n\
             [deploy.notify]\nwebhook = \"{url}\"\nfile = \"notices.jsonl\"\n",
            repo.display().to_string()
        );
        std::fs::write(&spec, text).expect("spec");
        Loop {
            root,
            repo,
            spec,
            hooks,
        }
    }

    /// Runs the job on `log` (the same spec and state every time).
    pub fn run(&self, log: &str) -> hephaestus::job::Summary {
        std::fs::write(self.root.join("run.log"), log).expect("log");
        let plan = hephaestus::spec::Plan::load(
            &self.spec,
            hephaestus::spec::Overrides {
                no_metrics: true,
                ..Default::default()
            },
        )
        .expect("plan");
        hephaestus::job::run(plan, hephaestus::core::shutdown::Shutdown::default())
            .unwrap_or_else(|e| panic!("job: {e}"))
    }

    pub fn book(&self) -> Book {
        Store::new(self.repo.join(".git/hephaestus/deploys.json"))
            .load()
            .expect("deploy record")
    }

    pub fn show(&self, rev: &str) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&self.repo)
            .args(["show", &format!("{rev}:calc.py")])
            .output()
            .expect("git show");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn hook_events(&self) -> Vec<String> {
        self.hooks
            .lock()
            .expect("hooks")
            .iter()
            .filter_map(|h| h["event"].as_str().map(str::to_string))
            .collect()
    }

    /// Run 1: the bug's logs, from release r0, ten minutes ago.
    pub fn first_run(&self) {
        let summary = self.run(&logs(&self.repo, "r0", now_ms() - 600_000, 3));
        let m = summary.model.expect("model summary");
        assert_eq!(m.validated, 1, "{m:?}");
    }
}

#[test]
fn a_fix_that_fails_in_production_is_rolled_back() {
    let l = Loop::new("rollback", "auto");
    l.first_run();
    let book = l.book();
    let fix = &book.fixes[0];
    assert_eq!(
        (fix.status, fix.release.as_deref()),
        (Status::Production, Some("r1")),
        "{fix:#?}"
    );
    let fixed = l.show("production");
    assert!(
        fixed.contains("if len(values) else 0"),
        "production has the fix: {fixed}"
    );
    assert_eq!(l.show("main"), CALC, "the user's branch is untouched");
    assert!(l.show(&fix.branch).contains("if len(values)"));
    let attempts = std::fs::read_to_string(l.root.join("attempts.jsonl")).expect("attempts");
    assert!(
        attempts.contains("fix-1 production as release r1"),
        "{attempts}"
    );

    // The error comes back from the release with the fix.
    let summary = l.run(&logs(&l.repo, "r1", now_ms() + 60_000, 2));
    let book = l.book();
    let fix = &book.fixes[0];
    assert_eq!(fix.status, Status::RolledBack, "{fix:#?}");
    assert!(
        fix.rollback
            .as_deref()
            .is_some_and(|w| w.contains("from release r1")),
        "{fix:#?}"
    );
    assert_eq!(
        l.show("production"),
        CALC,
        "the revert restored the old code"
    );
    assert_eq!(
        book.releases
            .iter()
            .map(|r| r.reason.as_str())
            .collect::<Vec<_>>(),
        ["deploy fix-1", "rollback fix-1"]
    );
    let events = l.hook_events();
    assert_eq!(
        events,
        [
            "incident_opened",
            "fix_proposed",
            "deployed",
            "rolled_back",
            "incident_opened"
        ],
        "{events:?}"
    );
    // Back to the worker with that fact: the same fix is not proposed again.
    let m = summary.model.expect("model summary");
    assert_eq!((m.started, m.validated, m.rejected), (1, 0, 1), "{m:?}");
    let records: Vec<Value> = std::fs::read_to_string(l.root.join("attempts.jsonl"))
        .expect("attempts")
        .lines()
        .map(|x| serde_json::from_str(x).expect("record"))
        .collect();
    let again = &records[records.len() - 2];
    assert!(
        again["feedback"]
            .as_str()
            .is_some_and(|f| f.contains("rolled back")),
        "{again:#}"
    );
    let notices = std::fs::read_to_string(l.root.join("notices.jsonl")).expect("notices");
    assert!(notices.contains("\"event\":\"rolled_back\""), "{notices}");
}

#[test]
fn recurrences_from_an_older_release_do_not_roll_back() {
    let l = Loop::new("older", "auto");
    l.first_run();
    // Old instances (release r0) still fail, within the watch window.
    let summary = l.run(&logs(&l.repo, "r0", now_ms() + 60_000, 3));
    let fix = &l.book().fixes[0];
    assert_eq!(fix.status, Status::Production, "{fix:#?}");
    assert!(l.show("production").contains("if len(values)"));
    assert_eq!(
        summary.model.expect("model").started,
        0,
        "the incident is left to the fix"
    );
    assert!(!l.hook_events().contains(&"rolled_back".to_string()));
}

#[test]
fn a_fix_that_holds_through_the_window_succeeds() {
    let l = Loop::new("holds", "auto");
    l.first_run();
    let start = now_ms() + 60_000;
    let quiet: String = (0..20)
        .map(|i| format!("{}\n", json!({"@timestamp": format_rfc3339(start + i * 60_000), "level": "INFO", "message": "report done", "service": "report", "release": "r1"})))
        .collect();
    l.run(&(quiet + &later(start + 20 * 60_000, "r1")));
    let fix = &l.book().fixes[0];
    assert_eq!(fix.status, Status::Successful, "{fix:#?}");
    assert!(
        l.hook_events().contains(&"fix_successful".to_string()),
        "{:?}",
        l.hook_events()
    );
    let lines: Vec<String> = std::fs::read_to_string(l.root.join("incidents.jsonl"))
        .expect("incidents")
        .lines()
        .map(str::to_string)
        .collect();
    let finals = super::common::finals(&lines);
    assert_eq!(finals[&fix.fingerprint]["state"], "resolved", "{lines:#?}");
}

#[test]
fn with_manual_approval_nothing_ships_until_approved() {
    let l = Loop::new("approve", "manual");
    l.first_run();
    let fix = l.book().fixes[0].clone();
    assert_eq!(
        (fix.status, fix.release.as_deref()),
        (Status::AwaitingApproval, None),
        "{fix:#?}"
    );
    assert_eq!(l.show("production"), CALC, "nothing in production yet");
    assert!(
        l.show("hephaestus/staging").contains("if len(values)"),
        "staged"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hephaestus"))
        .arg("fixes")
        .arg(&l.spec)
        .arg("list")
        .output()
        .expect("hephaestus fixes");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && list.contains("fix-1") && list.contains("awaiting_approval"),
        "{list}"
    );
    let shown = fixes(&l.spec, &Action::Show("fix-1".into())).expect("show");
    assert!(
        shown.contains("\"status\": \"awaiting_approval\"") && shown.contains("staged as"),
        "{shown}"
    );
    let out = fixes(&l.spec, &Action::Approve("fix-1".into())).expect("approve");
    assert_eq!(out, "fix-1 production (release r1)\n");
    assert!(l.show("production").contains("if len(values)"));
    assert!(
        fixes(&l.spec, &Action::Approve("fix-1".into())).is_err(),
        "approved once"
    );
    assert!(l.hook_events().contains(&"deployed".to_string()));
}
