//! What an incident says about its fault: language, exception, message and frames with file and
//! line, read from the incident's first sample and exemplar trace.
//!
//! In: an `Incident`. Out: a `Fault` (or `None` when there is no trace to read). Frames are kept
//! innermost first, as written in the log (paths as the crashed process saw them: `locate` maps
//! them onto a repository by path suffix). Pure; no state.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::{Frame, Lang};
use crate::core::record::Incident;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub language: Lang,
    /// `ZeroDivisionError`, `KeyError`, `panic`, `java.lang.NullPointerException`…
    pub exception: String,
    pub message: String,
    /// Innermost first.
    pub frames: Vec<Frame>,
}

/// `File "/srv/app/calc.py", line 2, in average`
fn python_frame(line: &str) -> Option<Frame> {
    let rest = line.trim().strip_prefix("File \"")?;
    let (path, rest) = rest.split_once('"')?;
    let rest = rest.trim_start_matches(',').trim().strip_prefix("line ")?;
    let (num, rest) = rest.split_once(',').unwrap_or((rest, ""));
    let function = rest
        .trim()
        .strip_prefix("in ")
        .unwrap_or("")
        .trim()
        .to_string();
    Some(Frame {
        path: path.into(),
        line: num.trim().parse().ok()?,
        column: None,
        function,
        ..Frame::default()
    })
}

fn python(trace: &str) -> Option<Fault> {
    let mut frames: Vec<Frame> = trace.lines().filter_map(python_frame).collect();
    frames.reverse();
    let last = trace
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with(' '))?;
    let (exception, message) = last
        .split_once(':')
        .map_or((last, ""), |(e, m)| (e, m.trim()));
    Some(Fault {
        language: Lang::Python,
        exception: exception.trim().into(),
        message: message.into(),
        frames,
    })
}

/// `PATH:LINE:COL` at the end of `s` (after `panicked at ` or `at `).
fn location(s: &str) -> Option<(String, u32, Option<u32>)> {
    let s = s.trim().trim_end_matches(':').trim_start_matches("./");
    let mut parts = s.rsplitn(3, ':');
    let (c, l, p) = (parts.next()?, parts.next()?, parts.next()?);
    match (l.parse::<u32>(), c.parse::<u32>()) {
        (Ok(line), Ok(col)) => Some((p.to_string(), line, Some(col))),
        _ => None,
    }
}

fn rust(head: &str, trace: &str) -> Option<Fault> {
    let all = format!("{head}\n{trace}");
    let at = all
        .lines()
        .find_map(|l| l.split_once("panicked at ").map(|(_, r)| r.to_string()))?;
    // Rust ≥ 1.73: `panicked at src/lib.rs:2:40:` then the message on the next line; older:
    // `panicked at 'message', src/lib.rs:2:40`.
    let (message, place) = match at.strip_prefix('\'').and_then(|r| r.rsplit_once("', ")) {
        Some((msg, place)) => (msg.to_string(), place.to_string()),
        None => {
            let after = all
                .lines()
                .skip_while(|l| !l.contains("panicked at "))
                .nth(1)
                .unwrap_or("");
            (after.trim().to_string(), at)
        }
    };
    let mut frames = Vec::new();
    if let Some((path, line, column)) = location(&place) {
        frames.push(Frame {
            path,
            line,
            column,
            function: String::new(),
            ..Frame::default()
        });
    }
    let lines: Vec<&str> = all.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let Some(at) = l.trim().strip_prefix("at ") else {
            continue;
        };
        let Some((path, line, column)) = location(at) else {
            continue;
        };
        if path.starts_with("/rustc/") || frames.iter().any(|f| f.path == path && f.line == line) {
            continue;
        }
        // The function is on the line before: `   2: krate::module::func::h3c1f9b1a2e4d5f60`.
        let function = i
            .checked_sub(1)
            .and_then(|j| lines[j].trim().split_once(": "))
            .map(|(_, f)| f.rsplit_once("::h").map_or(f, |(name, _)| name).to_string())
            .unwrap_or_default();
        frames.push(Frame {
            path,
            line,
            column,
            function,
            ..Frame::default()
        });
    }
    Some(Fault {
        language: Lang::Rust,
        exception: "panic".into(),
        message,
        frames,
    })
}

/// `at com.shop.CartService.total(CartService.java:57)`
fn java(trace: &str) -> Option<Fault> {
    let first = trace
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim().starts_with("at "))?;
    let (exception, message) = first
        .split_once(':')
        .map_or((first, ""), |(e, m)| (e, m.trim()));
    let frames = trace
        .lines()
        .filter_map(|l| {
            let inner = l.trim().strip_prefix("at ")?;
            let (function, place) = inner.split_once('(')?;
            let (file, line) = place.trim_end_matches(')').split_once(':')?;
            Some(Frame {
                path: file.into(),
                line: line.parse().ok()?,
                column: None,
                function: function.into(),
                ..Frame::default()
            })
        })
        .collect();
    Some(Fault {
        language: Lang::Java,
        exception: exception.trim().into(),
        message: message.into(),
        frames,
    })
}

impl Fault {
    /// Reads the fault of `incident`; `None` without a trace.
    pub fn of(incident: &Incident) -> Option<Fault> {
        let head = incident.samples.first().map(String::as_str).unwrap_or("");
        let trace = incident.exemplar_trace.as_deref().unwrap_or("");
        if trace.contains("Traceback (most recent call last)") || trace.contains("File \"") {
            return python(trace);
        }
        if head.contains("panicked at ") || trace.contains("panicked at ") {
            return rust(head, trace);
        }
        if trace
            .lines()
            .any(|l| l.trim().starts_with("at ") && l.contains(".java:"))
        {
            return java(trace);
        }
        None
    }

    /// The innermost frame whose file exists in `repo` (matched by the longest path suffix),
    /// with its path relative to `repo`.
    pub fn locate(&self, repo: &Path) -> Option<(Frame, String)> {
        self.frames
            .iter()
            .find_map(|f| locate(repo, &f.path).map(|rel| (f.clone(), rel)))
    }
}

/// `path` as a file of `repo`: the longest suffix of its components that exists there.
pub fn locate(repo: &Path, path: &str) -> Option<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    (0..parts.len()).find_map(|i| {
        let rel = parts[i..].join("/");
        (!rel.contains("..") && repo.join(&rel).is_file()).then_some(rel)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(sample: &str, trace: &str) -> Incident {
        let line = serde_json::json!({
            "fingerprint": "0", "state": "new", "count": 1, "first_seen": "", "last_seen": "", "at": "",
            "kind": "trace", "title": "", "template": "", "severity": "error", "service": "",
            "services": [], "hosts": [], "windows": [], "samples": [sample], "exemplar_trace": trace,
            "reasons": [], "regressions": 0, "merged_into": null
        });
        serde_json::from_value(line).expect("incident")
    }

    #[test]
    fn python_traceback() {
        let t = "Traceback (most recent call last):\n  File \"/srv/app/app.py\", line 10, in handle\n    return average(v)\n  File \"/srv/app/calc.py\", line 2, in average\n    return sum(v) / len(v)\nZeroDivisionError: division by zero";
        let f = Fault::of(&incident("request failed", t)).expect("fault");
        assert_eq!(
            (f.language, f.exception.as_str(), f.message.as_str()),
            (Lang::Python, "ZeroDivisionError", "division by zero")
        );
        assert_eq!(
            f.frames[0],
            Frame {
                path: "/srv/app/calc.py".into(),
                line: 2,
                column: None,
                function: "average".into(),
                ..Frame::default()
            }
        );
        assert_eq!(f.frames[1].function, "handle");
    }

    #[test]
    fn rust_panic_new_and_old_formats() {
        let t = "called `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/abc/library/std/src/panicking.rs:645:5\n   2: ingest::parser::parse_frame::h3c1f9b1a2e4d5f60\n             at ./src/parser.rs:42:31\n   3: ingest::server::handle::h9a8b\n             at ./src/server.rs:88:9";
        let f = Fault::of(&incident(
            "thread 'main' panicked at src/parser.rs:42:31:",
            t,
        ))
        .expect("fault");
        assert_eq!(f.message, "called `Option::unwrap()` on a `None` value");
        assert_eq!(f.frames.len(), 2, "{:?}", f.frames);
        assert_eq!(
            (
                f.frames[0].path.as_str(),
                f.frames[0].line,
                f.frames[0].column
            ),
            ("src/parser.rs", 42, Some(31))
        );
        assert_eq!(f.frames[1].function, "ingest::server::handle");

        let old = Fault::of(&incident(
            "thread 'main' panicked at 'attempt to divide by zero', src/lib.rs:7:5",
            "",
        ))
        .expect("fault");
        assert_eq!(
            (old.message.as_str(), old.frames[0].line),
            ("attempt to divide by zero", 7)
        );
    }

    #[test]
    fn java_and_nothing() {
        let t = "java.lang.NullPointerException: item is null\n\tat com.shop.CartService.total(CartService.java:57)";
        let f = Fault::of(&incident("Request failed", t)).expect("fault");
        assert_eq!(
            (f.exception.as_str(), f.frames[0].line),
            ("java.lang.NullPointerException", 57)
        );
        assert_eq!(Fault::of(&incident("disk full", "")), None);
    }

    #[test]
    fn frames_are_located_by_path_suffix() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("api")).expect("mkdir");
        std::fs::write(dir.path().join("api/handlers.py"), "x").expect("write");
        assert_eq!(
            locate(dir.path(), "/srv/app/api/handlers.py").as_deref(),
            Some("api/handlers.py")
        );
        assert_eq!(
            locate(dir.path(), "/usr/lib/python3.11/collections/__init__.py"),
            None
        );
    }
}
