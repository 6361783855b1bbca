//! The builtin analyzers: what kind of error an incident is, and which fix template (if any)
//! fits it, from the exception, the message and the faulting source line.
//!
//! In: a `Request` (fault, files). Out: an `Analysis`. Pure; no state.

use crate::model::protocol::{Analysis, ErrorKind, Request};
use crate::trace::Lang;
use crate::trace::fault::Fault;

/// Fix templates the builtin backend knows, by name.
pub const PATTERNS: [&str; 5] = [
    "division_by_zero",
    "missing_key",
    "none_dereference",
    "index_bounds",
    "unwrap_err",
];

/// Messages of faults outside the code: nothing to patch.
const INFRASTRUCTURE: [&str; 17] = [
    "connection refused",
    "connectionrefused",
    "connectionreset",
    "timedout",
    "connection reset",
    "timed out",
    "timeout",
    "no space left",
    "disk full",
    "name or service not known",
    "temporary failure in name resolution",
    "broken pipe",
    "too many open files",
    "out of memory",
    "permission denied",
    "service unavailable",
    "no route to host",
];

const INFRASTRUCTURE_EXCEPTIONS: [&str; 8] = [
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "TimeoutError",
    "OSError",
    "MemoryError",
    "java.net.ConnectException",
    "java.net.SocketTimeoutException",
];

const SYNTAX_EXCEPTIONS: [&str; 4] = ["SyntaxError", "IndentationError", "TabError", "NameError"];

/// The template that fits a fault, if any.
pub fn pattern(fault: &Fault) -> Option<&'static str> {
    let (e, m) = (fault.exception.as_str(), fault.message.as_str());
    match fault.language {
        Lang::Python => match e {
            "ZeroDivisionError" => Some("division_by_zero"),
            "KeyError" => Some("missing_key"),
            "IndexError" => Some("index_bounds"),
            "AttributeError" | "TypeError" if m.contains("'NoneType'") => Some("none_dereference"),
            _ => None,
        },
        Lang::Rust => {
            if m.contains("divide by zero") || m.contains("remainder with a divisor of zero") {
                Some("division_by_zero")
            } else if m.contains("`Option::unwrap()` on a `None`") {
                Some("none_dereference")
            } else if m.contains("`Result::unwrap()` on an `Err`") {
                Some("unwrap_err")
            } else if m.starts_with("index out of bounds") {
                Some("index_bounds")
            } else {
                None
            }
        }
        _ => None,
    }
}

fn kind(fault: Option<&Fault>, title: &str) -> ErrorKind {
    let text = format!(
        "{} {} {title}",
        fault.map_or("", |f| &f.exception),
        fault.map_or("", |f| &f.message)
    )
    .to_lowercase();
    if let Some(f) = fault {
        if SYNTAX_EXCEPTIONS.contains(&f.exception.as_str()) {
            return ErrorKind::Syntax;
        }
        if INFRASTRUCTURE_EXCEPTIONS.contains(&f.exception.as_str()) {
            return ErrorKind::Infrastructure;
        }
    }
    if INFRASTRUCTURE.iter().any(|s| text.contains(s)) || fault.is_none() {
        return ErrorKind::Infrastructure;
    }
    ErrorKind::Logic
}

/// The builtin analysis of a request.
pub fn analyze(req: &Request) -> Analysis {
    let fault = req.fault.as_ref();
    let kind = kind(fault, &req.incident.title);
    let located = fault.and_then(|f| {
        f.frames.iter().find_map(|fr| {
            req.files
                .iter()
                .find(|s| {
                    fr.path.ends_with(&s.path) || s.path.ends_with(fr.path.trim_start_matches("./"))
                })
                .map(|s| (s.path.clone(), fr.line))
        })
    });
    let pattern = fault
        .filter(|_| kind == ErrorKind::Logic)
        .and_then(pattern)
        .map(str::to_string);
    let summary = match (fault, &located) {
        (Some(f), Some((path, line))) => format!(
            "{} error: {}{}{} raised at {path}:{line}",
            match kind {
                ErrorKind::Syntax => "Syntax",
                ErrorKind::Logic => "Logic",
                ErrorKind::Infrastructure => "Infrastructure",
            },
            f.exception,
            if f.message.is_empty() { "" } else { ": " },
            f.message
        ),
        (Some(f), None) => format!(
            "{}: {} (no frame in the repository)",
            f.exception, f.message
        ),
        (None, _) => format!("{} (no stack trace)", req.incident.title),
    };
    Analysis {
        kind,
        summary,
        path: located.as_ref().map(|l| l.0.clone()),
        line: located.map(|l| l.1),
        pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Frame;

    fn fault(language: Lang, exception: &str, message: &str) -> Fault {
        let frames = vec![Frame {
            path: "/srv/calc.py".into(),
            line: 2,
            column: None,
            function: "f".into(),
            ..Frame::default()
        }];
        Fault {
            language,
            exception: exception.into(),
            message: message.into(),
            frames,
        }
    }

    #[test]
    fn templates_by_exception_and_message() {
        assert_eq!(
            pattern(&fault(
                Lang::Python,
                "ZeroDivisionError",
                "division by zero"
            )),
            Some("division_by_zero")
        );
        assert_eq!(
            pattern(&fault(Lang::Python, "KeyError", "'u-1'")),
            Some("missing_key")
        );
        assert_eq!(
            pattern(&fault(
                Lang::Python,
                "AttributeError",
                "'NoneType' object has no attribute 'name'"
            )),
            Some("none_dereference")
        );
        assert_eq!(
            pattern(&fault(
                Lang::Rust,
                "panic",
                "called `Option::unwrap()` on a `None` value"
            )),
            Some("none_dereference")
        );
        assert_eq!(
            pattern(&fault(Lang::Rust, "panic", "attempt to divide by zero")),
            Some("division_by_zero")
        );
        assert_eq!(
            pattern(&fault(
                Lang::Rust,
                "panic",
                "index out of bounds: the len is 0 but the index is 0"
            )),
            Some("index_bounds")
        );
        assert_eq!(pattern(&fault(Lang::Python, "ValueError", "bad")), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(
            kind(
                Some(&fault(Lang::Python, "SyntaxError", "invalid syntax")),
                ""
            ),
            ErrorKind::Syntax
        );
        assert_eq!(
            kind(Some(&fault(Lang::Python, "ConnectionRefusedError", "")), ""),
            ErrorKind::Infrastructure
        );
        assert_eq!(
            kind(
                Some(&fault(
                    Lang::Rust,
                    "panic",
                    "called `Result::unwrap()` on an `Err` value: Os { kind: TimedOut }"
                )),
                ""
            ),
            ErrorKind::Infrastructure
        );
        assert_eq!(
            kind(Some(&fault(Lang::Python, "KeyError", "'x'")), ""),
            ErrorKind::Logic
        );
        assert_eq!(kind(None, "disk full on /var"), ErrorKind::Infrastructure);
    }
}
