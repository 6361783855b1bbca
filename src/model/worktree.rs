//! A `git worktree` that lives as long as its value: where fixes are validated, committed,
//! merged and reverted without touching the user's checkout.
//!
//! In: a repository, a parent directory, a name and a revision (a branch is checked out
//! attached, so commits move it; anything else detached). Out: the worktree's directory.
//! State: the worktree, removed (and pruned) on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Worktree {
    repo: PathBuf,
    dir: PathBuf,
}

impl Worktree {
    /// Adds a worktree at `rev`; `attach` checks the branch `rev` out instead of detaching.
    pub fn new(
        repo: &Path,
        parent: &Path,
        name: &str,
        rev: &str,
        attach: bool,
    ) -> Result<Worktree, String> {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        let dir = parent.join(name);
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(repo).args(["worktree", "add", "--force"]);
        if !attach {
            cmd.arg("--detach");
        }
        let out = cmd
            .arg(&dir)
            .arg(rev)
            .output()
            .map_err(|e| format!("git worktree add: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Worktree {
            repo: repo.to_path_buf(),
            dir,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(&self.repo)
                .args(args)
                .output()
        };
        let _ = git(&["worktree", "remove", "--force", &self.dir.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = git(&["worktree", "prune"]);
    }
}
