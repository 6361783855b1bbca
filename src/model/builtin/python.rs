//! Python templates: a guarded rewrite of the faulting line, and a `unittest` that calls the
//! faulting function with the input the fault needs and fails if it raises the same exception.
//!
//! In: the faulting spot (file, line, pattern) and the fault. Out: a fix or a test proposal, or
//! `Unsupported` when the line or the function does not have a shape a template handles. Pure.

use super::{Spot, atom_after, atom_before, replace_line, unsupported};
use crate::model::edits::Edit;
use crate::model::protocol::{BackendError, FixProposal, TestKind, TestProposal};
use crate::trace::fault::Fault;

fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The first ` / `, ` // ` or ` % ` operator of a line: (start, end) of the operator.
fn divide(line: &str) -> Option<(usize, usize)> {
    [" // ", " / ", " % "]
        .iter()
        .filter_map(|op| line.find(op).map(|i| (i, i + op.len())))
        .min()
}

/// `x[k]` occurrences that are subscripts (not slices): (name span, key span).
fn subscripts(line: &str) -> Vec<((usize, usize), (usize, usize))> {
    let mut out = Vec::new();
    for (i, _) in line.match_indices('[') {
        let Some((a, b)) = atom_before(line, i).filter(|(_, b)| *b == i) else {
            continue;
        };
        let Some(end) = super::group_end(line, i) else {
            continue;
        };
        let key = (i + 1, end - 1);
        if !line[key.0..key.1].contains(':') {
            out.push(((a, b), key));
        }
    }
    out
}

/// The division's divisor expression on `line`.
fn divisor(line: &str) -> Option<String> {
    let (_, end) = divide(line)?;
    atom_after(line, end).map(|(a, b)| line[a..b].to_string())
}

pub fn fix(spot: &Spot) -> Result<FixProposal, BackendError> {
    let line = spot.text;
    let ind = indent(line);
    let stmt = line.trim_start();
    let (new, explanation) = match spot.pattern {
        "division_by_zero" => {
            let div =
                divisor(line).ok_or_else(|| unsupported("no division on the faulting line"))?;
            let guarded = |expr: &str| format!("({expr}) if {div} else 0");
            let new = if let Some(expr) = stmt.strip_prefix("return ") {
                format!("{ind}return {}", guarded(expr))
            } else if let Some((lhs, rhs)) = stmt.split_once(" = ") {
                format!("{ind}{lhs} = {}", guarded(rhs))
            } else {
                return Err(unsupported("the division is neither returned nor assigned"));
            };
            (
                new,
                format!(
                    "Guard the division: return 0 when `{div}` is zero instead of raising ZeroDivisionError."
                ),
            )
        }
        "missing_key" => {
            let subs = subscripts(line);
            let ((n0, _), (k0, k1)) = *subs
                .first()
                .ok_or_else(|| unsupported("no subscript on the faulting line"))?;
            // `a[k]` → `a.get(k)`; following subscripts of the chain go through `(… or {}).get(…)`.
            let mut expr = format!("{}.get({})", &line[n0..k0 - 1], &line[k0..k1]);
            let mut end = k1 + 1;
            while line[end..].starts_with('[') {
                let close = super::group_end(line, end)
                    .ok_or_else(|| unsupported("unbalanced subscript"))?;
                expr = format!("({expr} or {{}}).get({})", &line[end + 1..close - 1]);
                end = close;
            }
            (format!("{}{expr}{}", &line[..n0], &line[end..]), "Look the key up with `.get()`: a missing key gives None instead of raising KeyError.".to_string())
        }
        "none_dereference" => {
            let target = subscripts(line)
                .first()
                .map(|((a, b), _)| line[*a..*b].to_string())
                .or_else(|| {
                    let dot = line.find(").").map(|i| i + 1).or_else(|| line.find('.'))?;
                    atom_before(line, dot).map(|(a, b)| line[a..b].to_string())
                })
                .ok_or_else(|| unsupported("nothing dereferenced on the faulting line"))?;
            (
                format!("{ind}if {target} is None:\n{ind}    return None\n{line}"),
                format!("Return None early when `{target}` is None instead of dereferencing it."),
            )
        }
        "index_bounds" => {
            let ((n0, n1), (k0, k1)) = *subscripts(line)
                .first()
                .ok_or_else(|| unsupported("no index on the faulting line"))?;
            let (seq, idx) = (&line[n0..n1], &line[k0..k1]);
            let expr = format!("({seq}[{idx}] if -len({seq}) <= {idx} < len({seq}) else None)");
            (
                format!("{}{expr}{}", &line[..n0], &line[k1 + 1..]),
                format!("Check `{idx}` against the length of `{seq}` before indexing."),
            )
        }
        other => return Err(unsupported(format!("no Python template for {other}"))),
    };
    let edit = replace_line(&spot.file.path, &spot.file.content, spot.line, &new)
        .ok_or_else(|| unsupported("the faulting line cannot be addressed uniquely"))?;
    Ok(FixProposal {
        edits: vec![edit],
        explanation,
    })
}

/// The module-level function enclosing line `line`: (name, parameter names).
fn enclosing(content: &str, line: u32) -> Option<(String, Vec<String>)> {
    let lines: Vec<&str> = content.lines().collect();
    let def = lines
        .get(..line as usize)?
        .iter()
        .rev()
        .find(|l| l.trim_start().starts_with("def "))?;
    if !def.starts_with("def ") {
        return None; // a method: it needs an instance
    }
    let rest = def.strip_prefix("def ")?;
    let (name, params) = rest.split_once('(')?;
    let params = &params[..params.rfind(')')?];
    let names = params
        .split(',')
        .map(|p| p.split([':', '=']).next().unwrap_or("").trim().to_string())
        .filter(|p| !p.is_empty() && !p.starts_with('*') && p != "self")
        .collect();
    Some((name.trim().to_string(), names))
}

/// Arguments that trigger the fault: the divisor, key, object or sequence gets the bad value.
fn arguments(spot: &Spot, fault: &Fault, params: &[String]) -> Option<Vec<String>> {
    let line = spot.text;
    let mut args: Vec<String> = params.iter().map(|_| "1".to_string()).collect();
    let mut set = |name: &str, value: String| match params.iter().position(|p| p == name) {
        Some(i) => {
            args[i] = value;
            true
        }
        None => false,
    };
    let hit = match spot.pattern {
        "division_by_zero" => {
            let div = divisor(line)?;
            match div.strip_prefix("len(").and_then(|d| d.strip_suffix(')')) {
                Some(seq) => set(seq, "[]".into()),
                None => set(&div, "0".into()),
            }
        }
        "missing_key" => {
            let ((n0, n1), (k0, k1)) = *subscripts(line).first()?;
            let key = fault.message.trim().to_string();
            let container = set(&line[n0..n1], "{}".into());
            set(
                &line[k0..k1],
                if key.is_empty() {
                    "'missing'".into()
                } else {
                    key
                },
            ) || container
        }
        "none_dereference" => {
            let target = subscripts(line)
                .first()
                .map(|((a, b), _)| line[*a..*b].to_string())
                .or_else(|| {
                    let dot = line.find('.')?;
                    atom_before(line, dot).map(|(a, b)| line[a..b].to_string())
                })?;
            set(&target, "None".into())
        }
        "index_bounds" => {
            let ((n0, n1), (k0, k1)) = *subscripts(line).first()?;
            let seq = set(&line[n0..n1], "[]".into());
            set(&line[k0..k1], "0".into()) || seq
        }
        _ => false,
    };
    hit.then_some(args)
}

pub fn repro(spot: &Spot, fault: &Fault, tag: &str) -> Result<TestProposal, BackendError> {
    let (function, params) = enclosing(&spot.file.content, spot.line)
        .ok_or_else(|| unsupported("the fault is not in a module-level function"))?;
    let args = arguments(spot, fault, &params)
        .ok_or_else(|| unsupported("cannot derive an input that reproduces the fault"))?;
    let module = spot
        .file
        .path
        .strip_suffix(".py")
        .unwrap_or(&spot.file.path)
        .replace('/', ".");
    if !module
        .split('.')
        .all(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(unsupported(format!(
            "{} is not importable as a module",
            spot.file.path
        )));
    }
    let exc = &fault.exception;
    let name = format!("test_hephaestus_{tag}");
    let call = format!("{function}({})", args.join(", "));
    let body = format!(
        "\"\"\"Reproduces incident {tag}: {function} raised {exc}. Written by hephaestus.\"\"\"\n\
         import unittest\n\nfrom {module} import {function}\n\n\n\
         class HephaestusRepro(unittest.TestCase):\n    def test_{function}_does_not_raise(self):\n        \
         try:\n            {call}\n        except {exc} as e:\n            self.fail(f\"{function} raised {{e!r}}\")\n\n\n\
         if __name__ == \"__main__\":\n    unittest.main()\n"
    );
    Ok(TestProposal {
        kind: TestKind::Unit,
        edits: vec![Edit {
            path: format!("{name}.py"),
            search: String::new(),
            replace: body,
        }],
        command: format!("python3 -m unittest -v {name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::protocol::SourceFile;
    use crate::trace::Lang;

    fn spot<'a>(file: &'a SourceFile, line: u32, pattern: &'a str) -> Spot<'a> {
        let text = file.content.lines().nth(line as usize - 1).expect("line");
        Spot {
            file,
            line,
            text,
            column: None,
            pattern,
        }
    }

    fn file(content: &str) -> SourceFile {
        SourceFile {
            path: "calc.py".into(),
            content: content.into(),
        }
    }

    fn fault(exception: &str, message: &str) -> Fault {
        Fault {
            language: Lang::Python,
            exception: exception.into(),
            message: message.into(),
            frames: Vec::new(),
        }
    }

    fn fixed(content: &str, line: u32, pattern: &str) -> String {
        let f = file(content);
        let p = fix(&spot(&f, line, pattern)).expect("fix");
        content.replacen(&p.edits[0].search, &p.edits[0].replace, 1)
    }

    #[test]
    fn templates_rewrite_the_faulting_line() {
        assert_eq!(
            fixed(
                "def average(xs):\n    return sum(xs) / len(xs)\n",
                2,
                "division_by_zero"
            ),
            "def average(xs):\n    return (sum(xs) / len(xs)) if len(xs) else 0\n"
        );
        assert_eq!(
            fixed(
                "def ratio(a, b):\n    r = a / b\n    return r\n",
                2,
                "division_by_zero"
            ),
            "def ratio(a, b):\n    r = (a / b) if b else 0\n    return r\n"
        );
        assert_eq!(
            fixed(
                "def name(profiles, uid):\n    return profiles[uid]['name']\n",
                2,
                "missing_key"
            ),
            "def name(profiles, uid):\n    return (profiles.get(uid) or {}).get('name')\n"
        );
        assert_eq!(
            fixed(
                "def city(user):\n    return user.address\n",
                2,
                "none_dereference"
            ),
            "def city(user):\n    if user is None:\n        return None\n    return user.address\n"
        );
        assert_eq!(
            fixed("def first(xs, i):\n    return xs[i]\n", 2, "index_bounds"),
            "def first(xs, i):\n    return (xs[i] if -len(xs) <= i < len(xs) else None)\n"
        );
    }

    #[test]
    fn reproducing_tests_feed_the_fault_its_input() {
        let f = file("def average(xs):\n    return sum(xs) / len(xs)\n");
        let t = repro(
            &spot(&f, 2, "division_by_zero"),
            &fault("ZeroDivisionError", "division by zero"),
            "ab12",
        )
        .expect("repro");
        assert_eq!(t.command, "python3 -m unittest -v test_hephaestus_ab12");
        assert!(t.edits[0].replace.contains("from calc import average"));
        assert!(t.edits[0].replace.contains("average([])"));
        assert!(
            t.edits[0]
                .replace
                .contains("except ZeroDivisionError as e:")
        );

        let f = file("def name(uid):\n    return PROFILES[uid]\n");
        let t = repro(
            &spot(&f, 2, "missing_key"),
            &fault("KeyError", "'u-1'"),
            "ab12",
        )
        .expect("repro");
        assert!(
            t.edits[0].replace.contains("name('u-1')"),
            "{}",
            t.edits[0].replace
        );

        let method = file("class A:\n    def f(self, xs):\n        return 1 / len(xs)\n");
        assert!(
            repro(
                &spot(&method, 3, "division_by_zero"),
                &fault("ZeroDivisionError", ""),
                "x"
            )
            .is_err()
        );
    }
}
