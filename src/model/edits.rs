//! Code changes as search/replace edits, turned into a patch the stage builds itself.
//!
//! In: edits (`path`, `search`, `replace`) from a backend, and the repository they apply to.
//! Out: the new file contents and a unified diff, or an error that says which edit failed and
//! why (the feedback goes back to the backend). A model's line numbers are never trusted: each
//! `search` text must occur exactly once in its file (an empty `search` creates a new file).
//! `check` then proves the diff with `git apply --check`. No state.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// One change: replace the only occurrence of `search` in `path` with `replace`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// Relative to the repository root.
    pub path: String,
    /// The exact text to replace; empty to create `path`.
    pub search: String,
    pub replace: String,
}

/// The edits applied in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// New content per path, in path order.
    pub files: BTreeMap<String, String>,
    /// The unified diff against the repository (`a/` and `b/` prefixes, as git writes them).
    pub diff: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("edit {index}: path `{path}` must be relative and stay inside the repository")]
    Path { index: usize, path: String },
    #[error("edit {index}: cannot read `{path}`: {reason}")]
    Read {
        index: usize,
        path: String,
        reason: String,
    },
    #[error("edit {index}: the search text does not occur in `{path}`")]
    NotFound { index: usize, path: String },
    #[error("edit {index}: the search text occurs {count} times in `{path}`; make it unique")]
    Ambiguous {
        index: usize,
        path: String,
        count: usize,
    },
    #[error("edit {index}: `{path}` already exists; an empty search creates new files only")]
    Exists { index: usize, path: String },
    #[error("no edits")]
    Empty,
    #[error("the edits change nothing")]
    NoChange,
    #[error("git apply --check: {0}")]
    Check(String),
    #[error("malformed diff: {0}")]
    Diff(String),
}

/// A path an edit may touch: relative, no `..`, not in `.git`, and no symbolic link on the
/// way from `repo` to it (a link could lead out of the repository).
pub(crate) fn safe(repo: &Path, path: &str) -> bool {
    let p = Path::new(path);
    let plain = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(n) if n != ".git"));
    plain
        && p.ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .all(|a| {
                std::fs::symlink_metadata(repo.join(a))
                    .map_or(true, |m| !m.file_type().is_symlink())
            })
}

/// Applies `edits` to the files of `repo`, in order (later edits see earlier ones).
pub fn apply(repo: &Path, edits: &[Edit]) -> Result<Patch, EditError> {
    if edits.is_empty() {
        return Err(EditError::Empty);
    }
    let mut original: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for (index, e) in edits.iter().enumerate() {
        let path = e.path.clone();
        if !safe(repo, &path) {
            return Err(EditError::Path { index, path });
        }
        if !files.contains_key(&path) {
            let on_disk = match std::fs::read_to_string(repo.join(&path)) {
                Ok(text) => Some(text),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => {
                    return Err(EditError::Read {
                        index,
                        path,
                        reason: err.to_string(),
                    });
                }
            };
            original.insert(path.clone(), on_disk.clone());
            if let Some(text) = on_disk {
                files.insert(path.clone(), text);
            }
        }
        match (files.get_mut(&path), e.search.is_empty()) {
            (None, true) => {
                files.insert(path, e.replace.clone());
            }
            (Some(_), true) => return Err(EditError::Exists { index, path }),
            (None, false) => {
                return Err(EditError::Read {
                    index,
                    path,
                    reason: "no such file".into(),
                });
            }
            (Some(text), false) => match text.matches(&e.search).count() {
                0 => return Err(EditError::NotFound { index, path }),
                1 => *text = text.replacen(&e.search, &e.replace, 1),
                count => return Err(EditError::Ambiguous { index, path, count }),
            },
        }
    }
    let mut diff = String::new();
    for (path, new) in &files {
        let old = original.get(path).cloned().flatten();
        if old.as_deref() == Some(new.as_str()) {
            continue;
        }
        let old_text = old.as_deref().unwrap_or("");
        let a = if old.is_some() {
            format!("a/{path}")
        } else {
            "/dev/null".to_string()
        };
        diff.push_str(&format!("diff --git a/{path} b/{path}\n"));
        if old.is_none() {
            diff.push_str("new file mode 100644\n");
        }
        let unified = similar::TextDiff::from_lines(old_text, new.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&a, &format!("b/{path}"))
            .to_string();
        diff.push_str(&unified);
        if !unified.ends_with('\n') {
            diff.push('\n');
        }
    }
    if diff.is_empty() {
        return Err(EditError::NoChange);
    }
    Ok(Patch { files, diff })
}

/// Runs `git apply` with `args` in `worktree`, the diff on stdin.
pub(crate) fn git_apply(worktree: &Path, diff: &str, args: &[&str]) -> Result<(), EditError> {
    let mut child = Command::new("git")
        .arg("apply")
        .args(args)
        .arg("-")
        .current_dir(worktree)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| EditError::Check(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(diff.as_bytes())
            .map_err(|e| EditError::Check(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| EditError::Check(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EditError::Check(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// `git apply --check`: the diff applies cleanly to `worktree`.
pub fn check(worktree: &Path, diff: &str) -> Result<(), EditError> {
    git_apply(worktree, diff, &["--check"])
}

/// Applies the diff to `worktree` (after `check`).
pub fn apply_to(worktree: &Path, diff: &str) -> Result<(), EditError> {
    git_apply(worktree, diff, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("calc.py"),
            "def average(xs):\n    return sum(xs) / len(xs)\n",
        )
        .expect("write");
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("git")
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ]);
        dir
    }

    fn edit(path: &str, search: &str, replace: &str) -> Edit {
        Edit {
            path: path.into(),
            search: search.into(),
            replace: replace.into(),
        }
    }

    #[test]
    fn a_unique_search_becomes_a_diff_that_git_applies() {
        let dir = repo();
        let p = apply(
            dir.path(),
            &[
                edit(
                    "calc.py",
                    "    return sum(xs) / len(xs)",
                    "    return sum(xs) / len(xs) if xs else 0.0",
                ),
                edit(
                    "test_repro.py",
                    "",
                    "from calc import average\nassert average([]) == 0.0\n",
                ),
            ],
        )
        .expect("apply");
        assert!(p.diff.contains(
            "-    return sum(xs) / len(xs)\n+    return sum(xs) / len(xs) if xs else 0.0\n"
        ));
        assert!(p.diff.contains("--- /dev/null\n+++ b/test_repro.py"));
        check(dir.path(), &p.diff).expect("git apply --check");
        apply_to(dir.path(), &p.diff).expect("git apply");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("calc.py")).expect("read"),
            p.files["calc.py"]
        );
        assert!(
            check(dir.path(), &p.diff).is_err(),
            "a second application no longer applies"
        );
    }

    #[test]
    fn bad_edits_say_what_is_wrong() {
        let dir = repo();
        let d = dir.path();
        assert_eq!(apply(d, &[]), Err(EditError::Empty));
        assert!(matches!(
            apply(d, &[edit("../x.py", "", "x")]),
            Err(EditError::Path { .. })
        ));
        assert!(matches!(
            apply(d, &[edit("/etc/passwd", "root", "x")]),
            Err(EditError::Path { .. })
        ));
        assert!(matches!(
            apply(d, &[edit(".git/config", "", "x")]),
            Err(EditError::Path { .. })
        ));
        // A symbolic link inside the repository that leads out of it.
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("secret.py"), "token = 1\n").expect("secret");
        std::os::unix::fs::symlink(outside.path(), d.join("lib")).expect("symlink");
        assert!(matches!(
            apply(d, &[edit("lib/secret.py", "token = 1", "token = 2")]),
            Err(EditError::Path { .. })
        ));
        assert!(matches!(
            apply(d, &[edit("calc.py", "nope", "x")]),
            Err(EditError::NotFound { .. })
        ));
        assert!(matches!(
            apply(d, &[edit("calc.py", "xs", "ys")]),
            Err(EditError::Ambiguous { count: 3, .. })
        ));
        assert!(matches!(
            apply(d, &[edit("calc.py", "", "x")]),
            Err(EditError::Exists { .. })
        ));
        assert!(matches!(
            apply(d, &[edit("missing.py", "a", "b")]),
            Err(EditError::Read { .. })
        ));
        assert_eq!(
            apply(d, &[edit("calc.py", "average", "average")]),
            Err(EditError::NoChange)
        );
    }
}
