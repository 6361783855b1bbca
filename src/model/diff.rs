//! A unified diff from outside (an agent's patch over MCP) turned into the edits the validator
//! proves, so it is held to exactly what a model's fix is.
//!
//! In: the repository and a unified diff (`--- a/PATH` / `+++ b/PATH` headers, as git writes
//! them). Out: one whole-file `Edit` per file the diff changes (an empty search for a new file),
//! or an `EditError` that says which path or hunk is wrong. Paths must stay inside the
//! repository; deletions and renames are refused. State: none; the diff is applied with
//! `git apply` to a scratch copy of the files it touches, removed afterwards.

use std::path::{Path, PathBuf};

use super::edits::{Edit, EditError, git_apply, safe};

/// The most files one diff may touch.
pub const MAX_FILES: usize = 50;

/// The path of a `--- ` or `+++ ` header: `None` for `/dev/null`.
fn header_path(rest: &str) -> Option<String> {
    let path = rest.split('\t').next().unwrap_or("").trim_end();
    if path == "/dev/null" {
        return None;
    }
    let path = path
        .strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(path);
    Some(path.to_string())
}

/// Each file of the diff: (old path, new path).
/// A file of a diff: its old path and its new one (`None`: `/dev/null`).
type FilePair = (Option<String>, Option<String>);

fn files(diff: &str) -> Result<Vec<FilePair>, EditError> {
    let mut out = Vec::new();
    let mut lines = diff.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(old) = line.strip_prefix("--- ") else {
            continue;
        };
        let Some(new) = lines.peek().and_then(|l| l.strip_prefix("+++ ")) else {
            return Err(EditError::Diff(format!(
                "`{line}` is not followed by a `+++ ` line"
            )));
        };
        out.push((header_path(old), header_path(new)));
        lines.next();
    }
    if out.is_empty() {
        return Err(EditError::Diff(
            "no file headers: a unified diff names each file with `--- a/PATH` and `+++ b/PATH`"
                .into(),
        ));
    }
    if out.len() > MAX_FILES {
        return Err(EditError::Diff(format!(
            "the diff touches {} files; at most {MAX_FILES}",
            out.len()
        )));
    }
    Ok(out)
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The edits `diff` makes to `repo`.
pub fn edits(repo: &Path, diff: &str) -> Result<Vec<Edit>, EditError> {
    let files = files(diff)?;
    // Unique per call: two proposals in one process in the same millisecond get their own.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "hephaestus-diff-{}-{}-{call}",
        std::process::id(),
        crate::core::time::now_ms()
    )));
    let mut paths = Vec::new();
    for (index, (old, new)) in files.into_iter().enumerate() {
        let Some(path) = new else {
            return Err(EditError::Diff(format!(
                "the diff deletes `{}`; deleting files is not supported",
                old.unwrap_or_default()
            )));
        };
        if old.as_ref().is_some_and(|o| o != &path) {
            return Err(EditError::Diff(format!(
                "the diff renames `{}` to `{path}`; renames are not supported",
                old.unwrap_or_default()
            )));
        }
        if !safe(repo, &path) {
            return Err(EditError::Path { index, path });
        }
        let target = scratch.0.join(&path);
        let dir = target.parent().unwrap_or(&scratch.0);
        let io = |e: std::io::Error| EditError::Read {
            index,
            path: path.clone(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let original = match old {
            Some(_) => Some(std::fs::read_to_string(repo.join(&path)).map_err(io)?),
            None => None,
        };
        if let Some(text) = &original {
            std::fs::write(&target, text).map_err(io)?;
        }
        paths.push((index, path, original));
    }
    git_apply(&scratch.0, diff, &[])?;
    let mut out = Vec::new();
    for (index, path, original) in paths {
        let new = std::fs::read_to_string(scratch.0.join(&path)).map_err(|e| EditError::Read {
            index,
            path: path.clone(),
            reason: e.to_string(),
        })?;
        out.push(Edit {
            path,
            search: original.unwrap_or_default(),
            replace: new,
        });
    }
    Ok(out)
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
        dir
    }

    const FIX: &str = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,4 @@\n def average(xs):\n+    if not xs:\n+        return 0.0\n     return sum(xs) / len(xs)\n";

    #[test]
    fn a_diff_becomes_whole_file_edits() {
        let r = repo();
        let e = edits(r.path(), FIX).expect("edits");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "calc.py");
        assert!(e[0].replace.contains("if not xs:"));
        let patch = super::super::edits::apply(r.path(), &e).expect("applies");
        assert!(patch.diff.contains("+    if not xs:"), "{}", patch.diff);
        let new_file = "--- /dev/null\n+++ b/test_calc.py\n@@ -0,0 +1 @@\n+import calc\n";
        let e = edits(r.path(), new_file).expect("new file");
        assert_eq!(
            (e[0].search.as_str(), e[0].replace.as_str()),
            ("", "import calc\n")
        );
    }

    #[test]
    fn bad_diffs_say_what_is_wrong() {
        let r = repo();
        let err = |d: &str| edits(r.path(), d).expect_err(d).to_string();
        assert!(err("just some text").contains("no file headers"));
        assert!(
            err(&FIX
                .replace("a/calc.py", "a/../etc/passwd")
                .replace("b/calc.py", "b/../etc/passwd"))
            .contains("stay inside the repository")
        );
        assert!(err(&FIX.replace("b/calc.py", "b/other.py")).contains("renames"));
        assert!(err("--- a/calc.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n").contains("deletes"));
        assert!(err(&FIX.replace(" def average(xs):", " def mean(xs):")).contains("git apply"));
        assert!(err(&FIX.replace("calc.py", ".git/config")).contains("stay inside"));
    }
}
