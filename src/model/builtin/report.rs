//! The incident report (Markdown): what happened, where, what the analysis found, the fix and
//! its diff, and what the validator said. In: a `Request` for `DocGenerator`. Out: a `Report`.
//! Pure.

use crate::model::protocol::{Report, Request};

pub fn write(req: &Request) -> Report {
    let i = &req.incident;
    let mut md = format!("# Incident {}: {}\n\n", i.fingerprint, i.title);
    md.push_str(&format!(
        "- Events: {}\n- Message template: `{}`\n",
        i.count, i.template
    ));
    if let Some(f) = &req.fault {
        md.push_str(&format!(
            "- Exception: `{}`{}\n",
            f.exception,
            if f.message.is_empty() {
                String::new()
            } else {
                format!(": {}", f.message)
            }
        ));
        if let Some(fr) = f.frames.first() {
            md.push_str(&format!(
                "- Raised at: `{}:{}`{}\n",
                fr.path,
                fr.line,
                if fr.function.is_empty() {
                    String::new()
                } else {
                    format!(" in `{}`", fr.function)
                }
            ));
        }
    }
    if let Some(a) = &req.analysis {
        md.push_str(&format!("\n## Analysis\n\n{}\n", a.summary));
        if let Some(p) = &a.pattern {
            md.push_str(&format!("\nFix template: `{p}`.\n"));
        }
    }
    if let Some(fix) = &req.fix {
        md.push_str(&format!("\n## Fix\n\n{}\n", fix.explanation));
        for e in &fix.edits {
            md.push_str(&format!("\n`{}`:\n\n```diff\n", e.path));
            for l in e.search.lines() {
                md.push_str(&format!("-{l}\n"));
            }
            for l in e.replace.lines() {
                md.push_str(&format!("+{l}\n"));
            }
            md.push_str("```\n");
        }
    }
    if !req.feedback.is_empty() {
        md.push_str("\n## Validation\n\n");
        for f in &req.feedback {
            md.push_str(&format!("- {f}\n"));
        }
    }
    if let Some(trace) = &i.exemplar_trace {
        md.push_str(&format!(
            "\n## Trace\n\n```text\n{}\n{trace}\n```\n",
            i.samples.first().map(String::as_str).unwrap_or("")
        ));
    }
    Report { markdown: md }
}
