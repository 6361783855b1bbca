//! Rust templates: the panicking expression on the faulting line made total (`unwrap` →
//! `unwrap_or_default`, `/` → `checked_div`, `v[i]` → `v.get(i)`), and a test module appended to
//! the same file that calls the enclosing function with empty/zero inputs and must not panic.
//!
//! In: the faulting spot (file, line, column, pattern). Out: a fix or a test proposal, or
//! `Unsupported` when the line or the function does not have a shape a template handles. Pure.

use super::{Spot, append, atom_after, atom_before, replace_line, unsupported};
use crate::model::protocol::{BackendError, FixProposal, TestKind, TestProposal};

/// Of the byte offsets `candidates`, the one nearest the panic's column (1-based).
fn nearest(candidates: Vec<usize>, column: Option<u32>) -> Option<usize> {
    let col = column.map_or(0, |c| c.saturating_sub(1) as usize);
    candidates.into_iter().min_by_key(|i| i.abs_diff(col))
}

fn unwraps(line: &str) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = line
        .match_indices(".unwrap()")
        .map(|(i, m)| (i, i + m.len()))
        .collect();
    for (i, _) in line.match_indices(".expect(") {
        if let Some(end) = super::group_end(line, i + ".expect".len()) {
            out.push((i, end));
        }
    }
    out
}

pub fn fix(spot: &Spot) -> Result<FixProposal, BackendError> {
    let line = spot.text;
    let (new, explanation) = match spot.pattern {
        "none_dereference" | "unwrap_err" => {
            let spans = unwraps(line);
            let start = nearest(spans.iter().map(|s| s.0).collect(), spot.column)
                .ok_or_else(|| unsupported("no unwrap or expect on the faulting line"))?;
            let (a, b) = spans
                .into_iter()
                .find(|s| s.0 == start)
                .ok_or_else(|| unsupported("no unwrap"))?;
            (
                format!("{}.unwrap_or_default(){}", &line[..a], &line[b..]),
                "Fall back to the type's default instead of panicking on a missing value."
                    .to_string(),
            )
        }
        "division_by_zero" => {
            let ops: Vec<usize> = line
                .match_indices(" / ")
                .chain(line.match_indices(" % "))
                .map(|(i, _)| i)
                .collect();
            let at = nearest(ops, spot.column)
                .ok_or_else(|| unsupported("no division on the faulting line"))?;
            let method = if &line[at..at + 3] == " / " {
                "checked_div"
            } else {
                "checked_rem"
            };
            let (l0, _) = atom_before(line, at).ok_or_else(|| unsupported("no dividend"))?;
            let (_, r1) = atom_after(line, at + 3).ok_or_else(|| unsupported("no divisor"))?;
            let (lhs, rhs) = (&line[l0..at], line[at + 3..r1].trim());
            (
                format!(
                    "{}{lhs}.{method}({rhs}).unwrap_or_default(){}",
                    &line[..l0],
                    &line[r1..]
                ),
                format!(
                    "Use `{method}` so that a zero divisor gives the default instead of a panic."
                ),
            )
        }
        "index_bounds" => {
            let idx: Vec<usize> = line
                .match_indices('[')
                .map(|(i, _)| i)
                .filter(|i| atom_before(line, *i).is_some_and(|(_, b)| b == *i))
                .collect();
            let open = nearest(idx, spot.column)
                .ok_or_else(|| unsupported("no index on the faulting line"))?;
            let close =
                super::group_end(line, open).ok_or_else(|| unsupported("unbalanced index"))?;
            let (n0, _) = atom_before(line, open).ok_or_else(|| unsupported("no indexed value"))?;
            let index = &line[open + 1..close - 1];
            if index.contains("..") {
                return Err(unsupported("slicing, not indexing"));
            }
            (
                format!(
                    "{}{}.get({index}).cloned().unwrap_or_default(){}",
                    &line[..n0],
                    &line[n0..open],
                    &line[close..]
                ),
                "Read the element with `get` so that an index past the end gives the default."
                    .to_string(),
            )
        }
        other => return Err(unsupported(format!("no Rust template for {other}"))),
    };
    let edit = replace_line(&spot.file.path, &spot.file.content, spot.line, &new)
        .ok_or_else(|| unsupported("the faulting line cannot be addressed uniquely"))?;
    Ok(FixProposal {
        edits: vec![edit],
        explanation,
    })
}

/// A value of `ty` that is empty or zero (what makes lookups and divisions fail).
fn empty_value(ty: &str) -> String {
    let t = ty.trim();
    let ints = [
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
    ];
    match t {
        "&str" | "&'static str" => "\"\"".into(),
        "String" => "String::new()".into(),
        "f32" | "f64" => "0.0".into(),
        "bool" => "false".into(),
        t if ints.contains(&t) => "0".into(),
        t if t.starts_with("&[") || t.starts_with("&mut [") => "&[]".into(),
        t if t.starts_with("Vec<") => "Vec::new()".into(),
        t if t.starts_with("Option<") => "None".into(),
        t if t.starts_with("&mut ") => format!("&mut {}", empty_value(&t[5..])),
        t if t.starts_with('&') => format!("&{}", empty_value(&t[1..])),
        _ => "Default::default()".into(),
    }
}

/// The function enclosing line `line`: (name, parameter types).
fn enclosing(content: &str, line: u32) -> Option<(String, Vec<String>)> {
    let lines: Vec<&str> = content.lines().collect();
    let upto = &lines.get(..line as usize)?;
    let start = upto.iter().rposition(|l| {
        let t = l.trim_start();
        t.starts_with("fn ") || t.starts_with("pub fn ") || t.starts_with("pub(crate) fn ")
    })?;
    let sig: String = lines[start..]
        .iter()
        .take(20)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let after = &sig[sig.find("fn ")? + 3..];
    let name_end = after.find(['(', '<'])?;
    let name = after[..name_end].trim().to_string();
    let open = after.find('(')?;
    let close = super::group_end(after, open)?;
    let params = &after[open + 1..close - 1];
    let mut types = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in params.chars().chain(std::iter::once(',')) {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                let p = std::mem::take(&mut current);
                if p.trim().is_empty() {
                    continue;
                }
                if p.contains("self") && !p.contains(':') {
                    return None; // a method: it needs a receiver
                }
                types.push(p.split_once(':').map(|(_, t)| t.trim().to_string())?);
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    Some((name, types))
}

pub fn repro(spot: &Spot, tag: &str) -> Result<TestProposal, BackendError> {
    let (function, types) = enclosing(&spot.file.content, spot.line)
        .ok_or_else(|| unsupported("the fault is not in a free function"))?;
    let args: Vec<String> = types.iter().map(|t| empty_value(t)).collect();
    let module = format!("hephaestus_repro_{tag}");
    let test = format!(
        "\n#[cfg(test)]\nmod {module} {{\n    /// Reproduces the incident: `{function}` panicked on empty input. Written by hephaestus.\n    \
         #[test]\n    fn {function}_does_not_panic() {{\n        let _ = super::{function}({});\n    }}\n}}\n",
        args.join(", ")
    );
    let edit = append(&spot.file.path, &spot.file.content, &test)
        .ok_or_else(|| unsupported("cannot append to the file"))?;
    Ok(TestProposal {
        kind: TestKind::Unit,
        edits: vec![edit],
        command: format!("cargo test --quiet {module}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::protocol::SourceFile;

    fn fixed(content: &str, line: u32, column: Option<u32>, pattern: &str) -> String {
        let file = SourceFile {
            path: "src/lib.rs".into(),
            content: content.into(),
        };
        let text = content.lines().nth(line as usize - 1).expect("line");
        let p = fix(&Spot {
            file: &file,
            line,
            text,
            column,
            pattern,
        })
        .expect("fix");
        content.replacen(&p.edits[0].search, &p.edits[0].replace, 1)
    }

    #[test]
    fn templates_make_the_expression_total() {
        let src =
            "pub fn first_word(s: &str) -> &str {\n    s.split_whitespace().next().unwrap()\n}\n";
        assert!(
            fixed(src, 2, Some(31), "none_dereference")
                .contains("s.split_whitespace().next().unwrap_or_default()\n")
        );
        let src = "pub fn per_item(total: u32, n: u32) -> u32 {\n    total / n\n}\n";
        assert!(
            fixed(src, 2, Some(5), "division_by_zero")
                .contains("    total.checked_div(n).unwrap_or_default()\n")
        );
        let src = "pub fn third(v: &[u8]) -> u8 {\n    v[2]\n}\n";
        assert!(
            fixed(src, 2, Some(5), "index_bounds")
                .contains("    v.get(2).cloned().unwrap_or_default()\n")
        );
        let src = "fn cfg(s: &str) -> u16 {\n    s.parse::<u16>().expect(\"a port\")\n}\n";
        assert!(
            fixed(src, 2, None, "unwrap_err").contains("s.parse::<u16>().unwrap_or_default()\n")
        );
    }

    #[test]
    fn the_reproducing_test_calls_the_function_with_empty_inputs() {
        let content = "pub fn per_item(total: u32, names: &[String], label: &str) -> u32 {\n    total / names.len() as u32\n}\n";
        let file = SourceFile {
            path: "src/lib.rs".into(),
            content: content.into(),
        };
        let text = content.lines().nth(1).expect("line");
        let t = repro(
            &Spot {
                file: &file,
                line: 2,
                text,
                column: None,
                pattern: "division_by_zero",
            },
            "ab12",
        )
        .expect("repro");
        assert_eq!(t.command, "cargo test --quiet hephaestus_repro_ab12");
        assert!(
            t.edits[0]
                .replace
                .contains("let _ = super::per_item(0, &[], \"\");"),
            "{}",
            t.edits[0].replace
        );
        let method = "impl A {\n    fn f(&self, n: u32) -> u32 {\n        1 / n\n    }\n}\n";
        let file = SourceFile {
            path: "src/lib.rs".into(),
            content: method.into(),
        };
        let text = method.lines().nth(2).expect("line");
        assert!(
            repro(
                &Spot {
                    file: &file,
                    line: 3,
                    text,
                    column: None,
                    pattern: "division_by_zero"
                },
                "x"
            )
            .is_err()
        );
    }
}
