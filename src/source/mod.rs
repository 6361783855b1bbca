//! Sources: files (plain or gzip), directories, globs and stdin → `SourceItem`s.
//!
//! In: the `[[sources]]` of a spec (at plan time) and then the bytes of each input. Out: the
//! resolved, readable inputs with stable ids (`expand`), and at run time one `SourceItem::Line`
//! per physical line, plus `Idle`/`End` markers the multiline stage needs to flush. State: each
//! input's reader position. Each input belongs to one worker (`id % peers == index`).

pub mod pace;
pub mod reader;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::record::RawLine;
use crate::parse::{Parser, SourceFormat};

/// `[[sources]]`: where logs come from and how to read them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Files, directories (their files, sorted) or globs, relative to the spec's directory;
    /// `-` is stdin. A source has either `paths` or `topic`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// A Kafka topic to consume (see `[kafka]`); its partitions are shared among the workers.
    pub topic: Option<String>,
    /// The line format; `auto` detects it per line.
    #[serde(default)]
    pub format: SourceFormat,
    /// A Loghub-style header template, e.g. `<Date> <Time> <Level> <Component>: <Content>`;
    /// replaces `format`.
    pub header: Option<String>,
    /// Service name for records that do not carry one.
    pub service: Option<String>,
    /// Keep reading files as they grow, like `tail -F` (the job then runs until stopped).
    #[serde(default)]
    pub follow: bool,
    /// This source's `source` label in metrics (default `sources[<index>]`; `input` for
    /// `--input`).
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputKind {
    File(PathBuf),
    Stdin,
}

/// One resolved input. Its id is its index in the plan, the same in every process.
#[derive(Clone, Debug)]
pub struct InputPlan {
    pub id: u32,
    pub kind: InputKind,
    /// For messages and dead letters: the path as given, or `-`.
    pub name: String,
    pub follow: bool,
    pub parser: Parser,
    /// The `source` label of its `[[sources]]` entry.
    pub label: String,
}

/// What the source operator hands to the multiline stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SourceItem {
    /// A physical line, and whether it was the unterminated last line of its input.
    Line(RawLine, bool),
    /// The input has had no new data for a while: flush its open record.
    Idle(u32),
    /// The input ended: flush its open record, marking an unfinished trace as cut.
    End(u32),
}

/// Expands one `paths` entry relative to `base`; `-` is stdin. Errors name the entry.
pub fn expand(entry: &str, base: &Path) -> Result<Vec<InputKind>, String> {
    if entry == "-" {
        return Ok(vec![InputKind::Stdin]);
    }
    let full = if Path::new(entry).is_absolute() {
        PathBuf::from(entry)
    } else {
        base.join(entry)
    };
    if entry.contains(['*', '?', '[']) {
        let pattern = full.to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = glob::glob(&pattern)
            .map_err(|e| format!("input `{entry}`: bad glob: {e}"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("input `{entry}`: no files match"));
        }
        return Ok(files.into_iter().map(InputKind::File).collect());
    }
    let meta = std::fs::metadata(&full).map_err(|e| format!("input `{}`: {e}", full.display()))?;
    if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&full)
            .map_err(|e| format!("input `{}`: {e}", full.display()))?
            .filter_map(Result::ok)
            .map(|d| d.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!(
                "input `{}`: directory has no files",
                full.display()
            ));
        }
        return Ok(files.into_iter().map(InputKind::File).collect());
    }
    std::fs::File::open(&full).map_err(|e| format!("input `{}`: {e}", full.display()))?;
    Ok(vec![InputKind::File(full)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_globs_dirs_and_reports_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in ["b.log", "a.log", ".hidden", "c.txt"] {
            std::fs::write(dir.path().join(n), "x\n").expect("write");
        }
        let names = |v: Vec<InputKind>| -> Vec<String> {
            v.into_iter()
                .map(|k| match k {
                    InputKind::File(p) => p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    InputKind::Stdin => "-".into(),
                })
                .collect()
        };
        assert_eq!(
            names(expand("*.log", dir.path()).expect("glob")),
            ["a.log", "b.log"]
        );
        assert_eq!(
            names(expand(".", dir.path()).expect("dir")),
            ["a.log", "b.log", "c.txt"]
        );
        assert_eq!(names(expand("-", dir.path()).expect("stdin")), ["-"]);
        assert!(expand("missing.log", dir.path()).is_err_and(|e| e.contains("missing.log")));
        assert!(expand("*.gz", dir.path()).is_err_and(|e| e.contains("no files match")));
    }
}
