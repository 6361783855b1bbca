//! The model pool's prompt templates, and reading a chat model's reply back into an `Answer`.
//!
//! In: a `Request` (one role). Out: the system and user messages for it; later, the reply text
//! turned into the role's `Answer`, or why it is not one (the backend re-asks once with that
//! reason). Models are told never to invent line numbers: edits are search/replace on text they
//! were shown. No state.

use serde::Deserialize;
use serde_json::json;

use crate::model::edits::Edit;
use crate::model::protocol::{
    Analysis, Answer, ErrorKind, FixProposal, Report, Request, Role, TestKind, TestProposal,
};

const COMMON: &str = "You are one role in an automated incident-repair pipeline. You get a JSON \
request with the incident (its log template, samples and stack trace), the parsed fault, the \
repository files the trace touches, earlier analysis and fixes, and the validator's feedback on \
earlier attempts (address it). Answer with one JSON object only, no prose and no code fences.";

/// What each role must answer, as shown to the model.
fn schema(role: Role) -> &'static str {
    match role {
        Role::SyntaxAnalyzer | Role::LogicAnalyzer => {
            r#"{"kind": "syntax" | "logic" | "infrastructure", "summary": "one paragraph: what fails and why", "path": "repository file with the fault or null", "line": 1-based line or null, "pattern": null}"#
        }
        Role::CodeFixer => {
            r#"{"edits": [{"path": "file relative to the repository root", "search": "exact text copied from the file, long enough to occur once", "replace": "its replacement"}], "explanation": "why this fixes the root cause"}"#
        }
        Role::TestGenerator => {
            r#"{"kind": "unit" | "integration", "edits": [{"path": "new test file", "search": "", "replace": "its whole content"}], "command": "shell command that runs only this test; it must fail on the current code and pass once fixed"}"#
        }
        Role::DocGenerator => {
            r#"{"markdown": "the incident report: summary, impact (events, services), root cause, the fix and how it was validated, follow-ups"}"#
        }
    }
}

fn task(role: Role) -> &'static str {
    match role {
        Role::SyntaxAnalyzer => {
            "Role: syntax analyzer. Decide whether this is a syntax/compile error, and locate it."
        }
        Role::LogicAnalyzer => {
            "Role: logic analyzer. Explain the runtime fault's root cause and locate the line to change. Use `infrastructure` for faults outside the code (network, disk, permissions, configuration)."
        }
        Role::CodeFixer => {
            "Role: code fixer. Propose the smallest change that fixes the root cause without breaking other behaviour. Do not use line numbers: each edit replaces text you were shown."
        }
        Role::TestGenerator => {
            "Role: test generator. Write a test that reproduces the fault from the trace, in the project's test framework, and the command that runs only it."
        }
        Role::DocGenerator => "Role: doc generator. Write the incident report in Markdown.",
    }
}

/// The chat messages for a request.
pub fn messages(req: &Request) -> serde_json::Value {
    let system = format!(
        "{COMMON}\n{}\nAnswer with JSON of this shape:\n{}",
        task(req.role),
        schema(req.role)
    );
    let user = serde_json::to_string(req).unwrap_or_default();
    json!([
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ])
}

/// The JSON object in a reply (models sometimes wrap it in a code fence or a sentence).
fn object(text: &str) -> &str {
    let t = text.trim();
    match (t.find('{'), t.rfind('}')) {
        (Some(a), Some(b)) if a < b => &t[a..=b],
        _ => t,
    }
}

#[derive(Deserialize)]
struct Tests {
    #[serde(default = "unit")]
    kind: TestKind,
    edits: Vec<Edit>,
    command: String,
}

fn unit() -> TestKind {
    TestKind::Unit
}

#[derive(Deserialize)]
struct Analyzed {
    kind: ErrorKind,
    summary: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    line: Option<u32>,
    #[serde(default)]
    pattern: Option<String>,
}

/// The reply as the role's answer, or what is wrong with it.
pub fn answer(role: Role, reply: &str) -> Result<Answer, String> {
    let text = object(reply);
    let e = |e: serde_json::Error| format!("not the JSON the {} must answer: {e}", role.as_str());
    Ok(match role {
        Role::SyntaxAnalyzer | Role::LogicAnalyzer => {
            let a: Analyzed = serde_json::from_str(text).map_err(e)?;
            Answer::Analysis(Analysis {
                kind: a.kind,
                summary: a.summary,
                path: a.path,
                line: a.line,
                pattern: a.pattern,
            })
        }
        Role::CodeFixer => {
            let f: FixProposal = serde_json::from_str(text).map_err(e)?;
            if f.edits.is_empty() {
                return Err("the fix has no edits".into());
            }
            Answer::Fix(f)
        }
        Role::TestGenerator => {
            let t: Tests = serde_json::from_str(text).map_err(e)?;
            if t.command.trim().is_empty() {
                return Err("the test has no command".into());
            }
            Answer::Tests(TestProposal {
                kind: t.kind,
                edits: t.edits,
                command: t.command,
            })
        }
        Role::DocGenerator => Answer::Report(serde_json::from_str::<Report>(text).map_err(e)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_through_fences_and_checked() {
        let fenced = "```json\n{\"edits\": [{\"path\": \"a.py\", \"search\": \"x\", \"replace\": \"y\"}], \"explanation\": \"e\"}\n```";
        assert!(
            matches!(answer(Role::CodeFixer, fenced), Ok(Answer::Fix(f)) if f.edits.len() == 1)
        );
        assert!(answer(Role::CodeFixer, "{\"edits\": [], \"explanation\": \"\"}").is_err());
        assert!(answer(Role::CodeFixer, "I would change line 3").is_err());
        let a = answer(
            Role::LogicAnalyzer,
            "{\"kind\": \"logic\", \"summary\": \"s\", \"line\": 4}",
        );
        assert!(matches!(
            a,
            Ok(Answer::Analysis(Analysis {
                line: Some(4),
                path: None,
                ..
            }))
        ));
        assert!(answer(Role::TestGenerator, "{\"edits\": [], \"command\": \" \"}").is_err());
    }
}
