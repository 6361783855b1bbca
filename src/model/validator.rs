//! The solution validator: proves a proposed fix on a fresh `git worktree`, every command in
//! the sandbox.
//!
//! In: the repository, a reproducing test and a fix (as edits), the project's commands. Out: a
//! `Validation`: each step with its outcome and output tail, and one feedback line for the
//! backend when it fails. Steps: the fix applies (`git apply --check`); the project builds with
//! the test added; the reproducing test fails before the fix *with the incident's failure*
//! (`reproduction`: a timeout, a signal, a build or import error is inconclusive, rejected with
//! that reason); the fix applies and the project
//! builds; the test passes after it; the unit and integration suites pass; the optional
//! performance command stays within `perf_factor` of its time before the fix. State: none; the
//! worktree is removed afterwards.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::edits;
use super::protocol::{FixProposal, TestProposal};
use super::reproduction::{NotReproduced, Reproduction};
use super::sandbox::{self, Limits, Run};
use super::worktree::Worktree;

/// How a repository is built and tested (`[model.repository]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Project {
    /// The repository the incidents' code lives in (a git checkout).
    pub path: PathBuf,
    /// Syntax/build check; empty picks `cargo build --quiet --all-targets` for a Cargo project
    /// and `python3 -m compileall -q .` otherwise.
    pub build_command: String,
    /// The unit test suite; required for a patch to be proposed at all.
    pub test_command: String,
    pub integration_command: String,
    /// Optional; its wall time after the fix must stay within `perf_factor` of before.
    pub perf_command: String,
    pub perf_factor: f64,
    /// Where worktrees are made (not under /tmp: the sandbox's /tmp is private). Default:
    /// `<path>/.git/hephaestus-worktrees`.
    pub work_dir: Option<PathBuf>,
}

impl Default for Project {
    fn default() -> Self {
        Project {
            path: PathBuf::from("."),
            build_command: String::new(),
            test_command: String::new(),
            integration_command: String::new(),
            perf_command: String::new(),
            perf_factor: 1.2,
            work_dir: None,
        }
    }
}

impl Project {
    /// Where worktrees go: `work_dir`, else `<repo>/.git/hephaestus-worktrees`.
    pub fn worktrees(&self, repo: &Path) -> PathBuf {
        self.work_dir
            .clone()
            .unwrap_or_else(|| repo.join(".git").join("hephaestus-worktrees"))
    }

    fn build(&self, dir: &Path) -> String {
        match self.build_command.as_str() {
            "" if dir.join("Cargo.toml").is_file() => "cargo build --quiet --all-targets".into(),
            "" => "python3 -m compileall -q .".into(),
            c => c.into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub seconds: f64,
    /// The end of the output, for the record and the feedback.
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Validation {
    pub passed: bool,
    pub steps: Vec<Step>,
    /// Why it failed, for the next attempt (empty when it passed).
    pub feedback: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("worktree: {0}")]
    Worktree(String),
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

struct Steps {
    steps: Vec<Step>,
    feedback: String,
}

impl Steps {
    fn record(
        &mut self,
        name: &str,
        ok: bool,
        seconds: f64,
        detail: String,
        why: impl FnOnce() -> String,
    ) -> bool {
        if !ok && self.feedback.is_empty() {
            self.feedback = why();
        }
        self.steps.push(Step {
            name: name.into(),
            ok,
            seconds,
            detail,
        });
        ok
    }

    fn edit(&mut self, name: &str, dir: &Path, edits: &[edits::Edit]) -> bool {
        let result = edits::apply(dir, edits)
            .and_then(|p| edits::check(dir, &p.diff).and_then(|()| edits::apply_to(dir, &p.diff)));
        let detail = result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        let why = || format!("{name} failed: {detail}");
        self.record(name, result.is_ok(), 0.0, detail.clone(), why)
    }

    /// Runs the reproducing test before the fix: it must fail with the incident's failure.
    fn reproduce(
        &mut self,
        dir: &Path,
        command: &str,
        limits: &Limits,
        expect: &Reproduction,
    ) -> Result<bool, ValidateError> {
        let run = sandbox::run(dir, command, limits, &[])?;
        let judged = expect.judge(&run);
        let detail = tail(&format!("{}\n{}", run.stdout, run.stderr), 20);
        let why = || match &judged {
            Err(NotReproduced::Passed) => format!(
                "test fails before the fix: `{command}` passed before the fix, so the test does not reproduce the fault"
            ),
            Err(e) => format!(
                "test fails before the fix: `{command}`: {e}:\n{}",
                tail(&detail, 12)
            ),
            Ok(()) => String::new(),
        };
        let ok = judged.is_ok();
        Ok(self.record(
            "test fails before the fix",
            ok,
            run.seconds,
            detail.clone(),
            why,
        ))
    }

    fn run(
        &mut self,
        name: &str,
        dir: &Path,
        command: &str,
        limits: &Limits,
        expect_ok: bool,
    ) -> Result<(bool, Run), ValidateError> {
        let run = sandbox::run(dir, command, limits, &[])?;
        let ok = run.ok() == expect_ok;
        let detail = tail(&format!("{}\n{}", run.stdout, run.stderr), 20);
        let exit = run.exit.clone();
        let why = || {
            if expect_ok {
                format!(
                    "{name} failed (`{command}`, {exit:?}):\n{}",
                    tail(&detail, 12)
                )
            } else {
                format!(
                    "{name}: `{command}` passed before the fix, so the test does not reproduce the fault"
                )
            }
        };
        let seconds = run.seconds;
        Ok((self.record(name, ok, seconds, detail.clone(), why), run))
    }
}

/// Validates `fix` with `test` on a new worktree of `project` named `name`; before the fix the
/// test must fail with `expect`, the incident's failure.
pub fn validate(
    project: &Project,
    limits: &Limits,
    name: &str,
    (test, expect): (&TestProposal, &Reproduction),
    fix: &FixProposal,
) -> Result<Validation, ValidateError> {
    let repo = project
        .path
        .canonicalize()
        .map_err(|e| ValidateError::Worktree(format!("{}: {e}", project.path.display())))?;
    let parent = project
        .work_dir
        .clone()
        .unwrap_or_else(|| repo.join(".git").join("hephaestus-worktrees"));
    let wt = Worktree::new(&repo, &parent, name, "HEAD", false).map_err(ValidateError::Worktree)?;
    let dir = wt.dir();
    let mut s = Steps {
        steps: Vec::new(),
        feedback: String::new(),
    };
    let build = project.build(dir);
    let passed = 'steps: {
        // The fix must apply to the code as it is.
        let check = edits::apply(dir, &fix.edits).and_then(|p| edits::check(dir, &p.diff));
        let detail = check
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        if !s.record("patch applies", check.is_ok(), 0.0, detail.clone(), || {
            format!("the fix does not apply: {detail}")
        }) {
            break 'steps false;
        }
        if !s.edit("add the reproducing test", dir, &test.edits)
            || !s.run("build with the test", dir, &build, limits, true)?.0
        {
            break 'steps false;
        }
        if !s.reproduce(dir, &test.command, limits, expect)? {
            break 'steps false;
        }
        let perf_before = if project.perf_command.is_empty() {
            None
        } else {
            Some(
                s.run(
                    "performance before",
                    dir,
                    &project.perf_command,
                    limits,
                    true,
                )?
                .1
                .seconds,
            )
        };
        if !s.edit("apply the fix", dir, &fix.edits)
            || !s.run("build with the fix", dir, &build, limits, true)?.0
        {
            break 'steps false;
        }
        if !s
            .run(
                "test passes after the fix",
                dir,
                &test.command,
                limits,
                true,
            )?
            .0
        {
            break 'steps false;
        }
        for (name, command) in [
            ("unit tests", &project.test_command),
            ("integration tests", &project.integration_command),
        ] {
            if !command.is_empty() && !s.run(name, dir, command, limits, true)?.0 {
                break 'steps false;
            }
        }
        if let Some(before) = perf_before {
            let (ok, run) = s.run(
                "performance after",
                dir,
                &project.perf_command,
                limits,
                true,
            )?;
            let within = run.seconds <= before * project.perf_factor + 0.05;
            let detail = format!("{:.2} s after vs {:.2} s before", run.seconds, before);
            let why = || {
                format!(
                    "performance regressed beyond {}x: {detail}",
                    project.perf_factor
                )
            };
            if !ok
                || !s.record(
                    "performance within budget",
                    within,
                    0.0,
                    detail.clone(),
                    why,
                )
            {
                break 'steps false;
            }
        }
        true
    };
    Ok(Validation {
        passed,
        steps: s.steps,
        feedback: if passed { String::new() } else { s.feedback },
    })
}
