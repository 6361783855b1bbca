//! The `builtin` backend: no model. It classifies errors, writes template fixes for common faults
//! in Python and Rust, writes a reproducing test from the trace, and writes the incident report.
//!
//! In: a `Request`. Out: the role's answer, at zero cost, or `Unsupported` when no template fits
//! (the composer then stops at analysis). Pure apart from reading nothing: the request carries
//! the files. Lang specifics live in `python.rs` and `rust.rs`.

mod classify;
mod python;
mod report;
mod rust;

pub use classify::{PATTERNS, analyze};

/// The builtin report for a request (also the fallback when a backend cannot write one).
pub fn report_for(req: &Request) -> String {
    report::write(req).markdown
}

use super::edits::Edit;
use super::protocol::{
    Analysis, Answer, Backend, BackendError, Call, Request, Response, Role, SourceFile,
};
use crate::trace::Lang;

pub struct Builtin;

/// Where a template works: the file, its content, and the faulting line.
pub(crate) struct Spot<'a> {
    pub file: &'a SourceFile,
    /// 1-based.
    pub line: u32,
    pub text: &'a str,
    pub column: Option<u32>,
    pub pattern: &'a str,
}

fn unsupported(why: impl Into<String>) -> BackendError {
    BackendError::Unsupported(why.into())
}

/// The faulting line of the analysis, in the request's files.
fn spot<'a>(req: &'a Request, analysis: &'a Analysis) -> Result<Spot<'a>, BackendError> {
    let pattern = analysis
        .pattern
        .as_deref()
        .ok_or_else(|| unsupported("no fix template fits this fault"))?;
    let path = analysis
        .path
        .as_deref()
        .ok_or_else(|| unsupported("the fault is in no repository file"))?;
    let line = analysis
        .line
        .ok_or_else(|| unsupported("no faulting line"))?;
    let file = req
        .files
        .iter()
        .find(|f| f.path == path)
        .ok_or_else(|| unsupported(format!("{path} not provided")))?;
    let text = file
        .content
        .lines()
        .nth(line.saturating_sub(1) as usize)
        .ok_or_else(|| unsupported(format!("{path} has no line {line}")))?;
    let column = req.fault.as_ref().and_then(|f| {
        f.frames
            .iter()
            .find(|fr| path.ends_with(fr.path.trim_start_matches("./")) || fr.path.ends_with(path))
            .and_then(|fr| fr.column)
    });
    Ok(Spot {
        file,
        line,
        text,
        column,
        pattern,
    })
}

/// An edit that replaces line `line` (1-based) of `content` with `new` (several lines allowed),
/// its search text grown upwards until it is unique.
pub(crate) fn replace_line(path: &str, content: &str, line: u32, new: &str) -> Option<Edit> {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let idx = (line as usize)
        .checked_sub(1)
        .filter(|i| *i < lines.len())?;
    let ending = if lines[idx].ends_with('\n') { "\n" } else { "" };
    for start in (0..=idx).rev() {
        let search: String = lines[start..=idx].concat();
        if content.matches(&search).count() == 1 {
            let replace = format!("{}{new}{ending}", lines[start..idx].concat());
            return Some(Edit {
                path: path.into(),
                search,
                replace,
            });
        }
    }
    None
}

/// An edit that appends `addition` to the end of `content`.
pub(crate) fn append(path: &str, content: &str, addition: &str) -> Option<Edit> {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    for start in (0..lines.len()).rev() {
        let search: String = lines[start..].concat();
        if !search.trim().is_empty() && content.matches(&search).count() == 1 {
            let sep = if search.ends_with('\n') { "" } else { "\n" };
            return Some(Edit {
                path: path.into(),
                search: search.clone(),
                replace: format!("{search}{sep}{addition}"),
            });
        }
    }
    None
}

/// The span `[start, end)` of the bracketed group opening at `open` (`(` or `[`).
pub(crate) fn group_end(s: &str, open: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let (o, c) = match bytes.get(open)? {
        b'(' => (b'(', b')'),
        b'[' => (b'[', b']'),
        _ => return None,
    };
    let mut depth = 0;
    for (i, b) in bytes.iter().enumerate().skip(open) {
        if *b == o {
            depth += 1;
        } else if *b == c {
            depth -= 1;
            if depth == 0 {
                return Some(i + 1);
            }
        }
    }
    None
}

/// The expression atom starting at `from` (after spaces): a name chain with calls and
/// subscripts, or a parenthesized group. Returns its span.
pub(crate) fn atom_after(s: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut i = from;
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    let start = i;
    loop {
        match bytes.get(i) {
            Some(b) if b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.' => i += 1,
            Some(b'(') | Some(b'[') => i = group_end(s, i)?,
            _ => break,
        }
    }
    (i > start).then_some((start, i))
}

/// The expression atom ending at `to` (before spaces). Returns its span.
pub(crate) fn atom_before(s: &str, to: usize) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut end = to;
    while end > 0 && bytes[end - 1] == b' ' {
        end -= 1;
    }
    let mut i = end;
    while i > 0 {
        let b = bytes[i - 1];
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            i -= 1;
        } else if b == b')' || b == b']' {
            // Walk back to the matching opener.
            let (o, c) = if b == b')' {
                (b'(', b')')
            } else {
                (b'[', b']')
            };
            let mut depth = 0;
            let mut j = i;
            while j > 0 {
                j -= 1;
                if bytes[j] == c {
                    depth += 1;
                } else if bytes[j] == o {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            i = j;
        } else {
            break;
        }
    }
    (i < end).then_some((i, end))
}

/// The short fingerprint used in generated names.
pub(crate) fn tag(req: &Request) -> String {
    req.incident
        .fingerprint
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_lowercase()
}

fn answer(req: &Request) -> Result<Answer, BackendError> {
    let analysis = || req.analysis.clone().unwrap_or_else(|| analyze(req));
    let language = req.fault.as_ref().map_or(Lang::Unknown, |f| f.language);
    Ok(match req.role {
        Role::SyntaxAnalyzer | Role::LogicAnalyzer => Answer::Analysis(analyze(req)),
        Role::CodeFixer => {
            let a = analysis();
            let spot = spot(req, &a)?;
            match language {
                Lang::Python => Answer::Fix(python::fix(&spot)?),
                Lang::Rust => Answer::Fix(rust::fix(&spot)?),
                _ => return Err(unsupported("fix templates exist for Python and Rust")),
            }
        }
        Role::TestGenerator => {
            let a = analysis();
            let spot = spot(req, &a)?;
            let fault = req.fault.as_ref().ok_or_else(|| unsupported("no fault"))?;
            match language {
                Lang::Python => Answer::Tests(python::repro(&spot, fault, &tag(req))?),
                Lang::Rust => Answer::Tests(rust::repro(&spot, &tag(req))?),
                _ => return Err(unsupported("reproducing tests exist for Python and Rust")),
            }
        }
        Role::DocGenerator => Answer::Report(report::write(req)),
    })
}

impl Backend for Builtin {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn call<'a>(&'a self, request: &'a Request) -> Call<'a> {
        Box::pin(async move {
            Ok(Response {
                answer: answer(request)?,
                usage: Default::default(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_grow_until_unique() {
        let content = "a\n}\nb\n}\n";
        let e = replace_line("f", content, 4, "};").expect("edit");
        assert_eq!(
            (e.search.as_str(), e.replace.as_str()),
            ("b\n}\n", "b\n};\n")
        );
        let e = append("f", content, "extra\n").expect("append");
        assert_eq!(
            (e.search.as_str(), e.replace.as_str()),
            ("b\n}\n", "b\n}\nextra\n")
        );
    }

    #[test]
    fn atoms() {
        let s = "return sum(values) / len(values) + 1";
        let slash = s.find('/').expect("slash");
        assert_eq!(
            atom_after(s, slash + 1).map(|(a, b)| &s[a..b]),
            Some("len(values)")
        );
        assert_eq!(
            atom_before(s, slash).map(|(a, b)| &s[a..b]),
            Some("sum(values)")
        );
    }
}
