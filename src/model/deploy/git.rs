//! The git operations of the deployment loop, on the target repository.
//!
//! In: the repository and where worktrees may go. Out: commits and branch moves: a fix committed
//! on its branch, merged into staging, production fast-forwarded, a merge reverted. Every
//! change is made on a worktree or with `update-ref`, never in the user's checkout. No state.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::edits::Edit;
use crate::model::worktree::Worktree;

/// Who the loop's commits are by.
const IDENTITY: [&str; 4] = [
    "-c",
    "user.name=hephaestus",
    "-c",
    "user.email=hephaestus@localhost",
];

#[derive(Clone)]
pub struct Git {
    pub repo: PathBuf,
    pub worktrees: PathBuf,
}

impl Git {
    /// Runs git in `dir`; its stdout, or the command and its stderr.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(IDENTITY)
            .args(args)
            .output()
            .map_err(|e| format!("git {}: {e}", args.join(" ")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The commit a revision names, if it exists.
    pub fn commit_of(&self, rev: &str) -> Option<String> {
        self.run(
            &self.repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )
        .ok()
    }

    /// Creates `branch` at `from` unless it exists; its commit.
    pub fn ensure_branch(&self, branch: &str, from: &str) -> Result<String, String> {
        if let Some(c) = self.commit_of(&format!("refs/heads/{branch}")) {
            return Ok(c);
        }
        self.run(&self.repo, &["branch", branch, from])?;
        self.commit_of(branch)
            .ok_or_else(|| format!("branch {branch} was not created"))
    }

    fn worktree(&self, name: &str, rev: &str, attach: bool) -> Result<Worktree, String> {
        let name = format!(
            "{name}-{}-{}",
            std::process::id(),
            crate::core::time::now_ms()
        );
        Worktree::new(&self.repo, &self.worktrees, &name, rev, attach)
    }

    /// Commits the edit sets (the fix, then its reproducing test) on `branch`, made from
    /// `base`; the commit.
    pub fn commit_fix(
        &self,
        branch: &str,
        base: &str,
        sets: &[&[Edit]],
        message: &str,
    ) -> Result<String, String> {
        let wt = self.worktree("commit", base, false)?;
        for edits in sets.iter().filter(|e| !e.is_empty()) {
            let patch = crate::model::edits::apply(wt.dir(), edits).map_err(|e| e.to_string())?;
            crate::model::edits::apply_to(wt.dir(), &patch.diff).map_err(|e| e.to_string())?;
        }
        self.run(wt.dir(), &["add", "-A"])?;
        self.run(wt.dir(), &["commit", "--quiet", "-m", message])?;
        let commit = self.run(wt.dir(), &["rev-parse", "HEAD"])?;
        self.run(&self.repo, &["branch", "--force", branch, &commit])?;
        Ok(commit)
    }

    /// Merges `branch` into `into` (a merge commit even when a fast-forward would do); the merge
    /// commit. A conflict aborts the merge and is an error.
    pub fn merge(
        &self,
        into: &str,
        branch: &str,
        message: &str,
    ) -> Result<(String, Worktree), String> {
        let wt = self.worktree("merge", into, true)?;
        if let Err(e) = self.run(
            wt.dir(),
            &["merge", "--no-ff", "--quiet", "-m", message, branch],
        ) {
            let _ = self.run(wt.dir(), &["merge", "--abort"]);
            return Err(e);
        }
        let commit = self.run(wt.dir(), &["rev-parse", "HEAD"])?;
        Ok((commit, wt))
    }

    /// Moves `branch` to `to`, only if that is a fast-forward.
    pub fn fast_forward(&self, branch: &str, to: &str) -> Result<(), String> {
        let old = self
            .commit_of(&format!("refs/heads/{branch}"))
            .ok_or_else(|| format!("no branch {branch}"))?;
        self.run(&self.repo, &["merge-base", "--is-ancestor", &old, to])
            .map_err(|_| {
                format!("{branch} ({old:.8}) is not an ancestor of {to:.8}: not a fast-forward")
            })?;
        self.run(
            &self.repo,
            &["update-ref", &format!("refs/heads/{branch}"), to, &old],
        )?;
        Ok(())
    }

    /// Reverts `commit` (a merge: its first parent is the mainline) on `branch`; the new commit.
    pub fn revert(&self, branch: &str, commit: &str, message: &str) -> Result<String, String> {
        let wt = self.worktree("revert", branch, true)?;
        let parents = self.run(wt.dir(), &["rev-list", "--parents", "-n", "1", commit])?;
        let mut args = vec!["revert", "--no-edit"];
        if parents.split_whitespace().count() > 2 {
            args.extend(["-m", "1"]);
        }
        args.push(commit);
        if let Err(e) = self.run(wt.dir(), &args) {
            let _ = self.run(wt.dir(), &["revert", "--abort"]);
            return Err(e);
        }
        self.run(wt.dir(), &["commit", "--amend", "--quiet", "-m", message])?;
        self.run(wt.dir(), &["rev-parse", "HEAD"])
    }
}
