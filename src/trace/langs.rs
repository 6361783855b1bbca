//! The per-language stack-trace readers behind `trace::parse`.
//!
//! In: the lines of one record (head line first). Out: a `Trace` (exceptions outermost first,
//! frames innermost first). No state. Each reader is tolerant: unknown lines are skipped, a trace
//! cut off at any point still yields what was read.

use super::model::{Exception, InApp, Lang, Trace, frame, normalize_file};
use crate::mask::mask_line;

/// `java.lang.X: msg`, `Exception in thread "main" java.lang.X: msg`, `TypeError: msg`.
fn header(line: &str) -> Option<Exception> {
    let line = line.trim();
    let line = match line.strip_prefix("Exception in thread \"") {
        Some(rest) => rest.split_once("\" ").map_or(rest, |(_, r)| r),
        None => line,
    };
    let (name, msg) = line
        .split_once(": ")
        .unwrap_or((line.trim_end_matches(':'), ""));
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._$".contains(&b))
        && ["Exception", "Error", "Throwable", "Fault", "Panic"]
            .iter()
            .any(|k| name.contains(k));
    ok.then(|| Exception {
        type_name: name.to_string(),
        message: msg.to_string(),
        frames: Vec::new(),
    })
}

/// Java/Kotlin/.NET (`at pkg.C.m(F.java:12)`, `at N.C.M() in F.cs:line 4`) and Node.js
/// (`at fn (/app/x.js:1:2)`, `at /app/x.js:1:2`): returns (function, location, is_node).
fn split_at_frame(rest: &str) -> (&str, &str, bool) {
    if let Some((f, loc)) = rest.split_once(" (") {
        let f = f.trim_start_matches("async ").trim_start_matches("new ");
        return (f, loc.trim_end_matches(')'), true);
    }
    if let Some(idx) = rest.find('(') {
        let function = &rest[..idx];
        let inner = &rest[idx + 1..];
        if let Some((_, file)) = inner.split_once(") in ") {
            return (function, file, false);
        }
        let file = inner.rsplit_once(')').map_or(inner, |(a, _)| a);
        // Java 9 module and class-loader prefixes: `java.base/java.lang.Thread.run`, `app//a.B.c`.
        let function = function.rsplit_once('/').map_or(function, |(_, f)| f);
        return (function, file, false);
    }
    ("<anonymous>", rest, true)
}

pub(crate) fn stack<'a>(lines: impl Iterator<Item = &'a str>, in_app: &InApp) -> Trace {
    let mut exceptions: Vec<Exception> = Vec::new();
    let mut lang = Lang::Java;
    let mut suppressed = false;
    for line in lines {
        let t = line.trim_start();
        let indented = t.len() != line.len();
        if let (true, Some(rest)) = (indented, t.strip_prefix("at ")) {
            if suppressed {
                continue;
            }
            let (function, file, node) = split_at_frame(rest.trim_end());
            if node {
                lang = Lang::Node;
            }
            if exceptions.is_empty() {
                exceptions.push(Exception {
                    type_name: "unknown".into(),
                    ..Exception::default()
                });
            }
            if let Some(ex) = exceptions.last_mut() {
                ex.frames.push(frame(lang, function, file, in_app));
            }
        } else if let Some(rest) = t.strip_prefix("Caused by: ") {
            suppressed &= indented;
            if !suppressed {
                exceptions.push(header(rest).unwrap_or_else(|| Exception {
                    type_name: rest.to_string(),
                    ..Exception::default()
                }));
            }
        } else if t.starts_with("Suppressed: ") {
            suppressed = true;
        } else if exceptions.is_empty() {
            exceptions.extend(header(t));
        }
    }
    Trace { lang, exceptions }
}

/// `  File "/app/x.py", line 10, in handler`.
fn python_frame(t: &str) -> Option<(&str, &str)> {
    let rest = t.strip_prefix("File \"")?;
    let (path, rest) = rest.split_once('"')?;
    let func = rest.rsplit_once(", in ").map_or("<module>", |(_, f)| f);
    Some((func.trim(), path))
}

pub(crate) fn python<'a>(lines: impl Iterator<Item = &'a str>, in_app: &InApp) -> Trace {
    let mut exceptions: Vec<Exception> = Vec::new();
    let mut in_tb = false;
    for line in lines {
        let t = line.trim_start();
        if t.starts_with("Traceback (most recent call last):") {
            exceptions.push(Exception::default());
            in_tb = true;
        } else if let (true, Some((func, path))) = (in_tb, python_frame(t)) {
            if let Some(ex) = exceptions.last_mut() {
                ex.frames.push(frame(Lang::Python, func, path, in_app));
            }
        } else if in_tb && !line.starts_with([' ', '\t']) && !t.is_empty() {
            if let Some(ex) = exceptions.last_mut() {
                let (name, msg) = t.split_once(": ").unwrap_or((t.trim_end_matches(':'), ""));
                ex.type_name = name.to_string();
                ex.message = msg.to_string();
            }
            in_tb = false;
        }
    }
    for ex in &mut exceptions {
        ex.frames.reverse();
        if ex.type_name.is_empty() {
            // The exception line never came: the traceback was cut off.
            ex.type_name = "incomplete traceback".into();
        }
    }
    exceptions.reverse();
    Trace {
        lang: Lang::Python,
        exceptions,
    }
}

pub(crate) fn go<'a>(lines: impl Iterator<Item = &'a str>, in_app: &InApp) -> Trace {
    let mut ex = Exception::default();
    let mut goroutines = 0;
    let mut pending: Option<&str> = None;
    for line in lines {
        let t = line.trim();
        if ex.type_name.is_empty() {
            for prefix in ["panic: ", "fatal error: "] {
                if let Some(msg) = t.strip_prefix(prefix) {
                    let msg = msg.trim_end_matches(" [recovered]");
                    ex.type_name = format!("{}{}", prefix, mask_line(msg));
                }
            }
        }
        if t.starts_with("goroutine ") && t.ends_with("]:") {
            goroutines += 1;
            continue;
        }
        if goroutines != 1 || t.starts_with("created by ") {
            continue;
        }
        if line.starts_with('\t') || line.starts_with(' ') {
            if let Some(function) = pending.take() {
                ex.frames.push(frame(Lang::Go, function, t, in_app));
            }
        } else if let Some(idx) = t.rfind('(')
            && let Some(function) = pending.replace(&t[..idx])
        {
            ex.frames.push(frame(Lang::Go, function, "", in_app));
        }
    }
    if let Some(function) = pending {
        ex.frames.push(frame(Lang::Go, function, "", in_app));
    }
    if ex.type_name.is_empty() {
        ex.type_name = "goroutine dump".into();
    }
    Trace {
        lang: Lang::Go,
        exceptions: vec![ex],
    }
}

pub(crate) fn rust<'a>(lines: impl Iterator<Item = &'a str>, in_app: &InApp) -> Trace {
    let mut ex = Exception::default();
    let mut location = None;
    let mut expect_message = false;
    let mut pending: Option<&str> = None;
    for line in lines {
        let t = line.trim();
        if let Some((_, after)) = t.split_once(" panicked at ").filter(|_| location.is_none()) {
            if let Some(loc) = after.strip_suffix(':') {
                location = Some(loc);
                expect_message = true;
            } else if let Some((msg, loc)) = after.rsplit_once("', ") {
                ex.message = msg.trim_start_matches('\'').to_string();
                location = Some(loc);
            } else {
                location = Some(after);
            }
            continue;
        }
        if expect_message {
            ex.message = t.to_string();
            expect_message = false;
            continue;
        }
        if let Some(file) = t.strip_prefix("at ") {
            if let Some(function) = pending.take() {
                ex.frames.push(frame(Lang::Rust, function, file, in_app));
            }
        } else if let Some((_, sym)) = t
            .split_once(": ")
            .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            && let Some(function) = pending.replace(sym)
        {
            ex.frames.push(frame(Lang::Rust, function, "", in_app));
        }
    }
    if let Some(function) = pending {
        ex.frames.push(frame(Lang::Rust, function, "", in_app));
    }
    if let Some(loc) = location {
        // The panic location is the first in-app frame even without a backtrace.
        let mut f = frame(Lang::Rust, &normalize_file(loc), loc, in_app);
        f.in_app = true;
        ex.frames.insert(0, f);
    }
    ex.type_name = format!("panic: {}", mask_line(&ex.message));
    ex.message.clear();
    Trace {
        lang: Lang::Rust,
        exceptions: vec![ex],
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn fp(message: &str, trace: &str) -> (u64, String) {
        let t = parse(message, trace, &InApp::default()).expect("a trace");
        (t.fingerprint(5), t.title())
    }

    #[test]
    fn java_ignores_line_numbers_ids_and_lambdas() {
        let a = fp(
            "request 17 failed",
            "java.lang.NullPointerException: user 17 missing\n\tat com.shop.Cart.total(Cart.java:42)\n\tat com.shop.Cart$$Lambda$14/0x0000000800066840.apply(Unknown Source)\n\tat java.base/java.util.stream.ReferencePipeline.map(ReferencePipeline.java:195)",
        );
        let b = fp(
            "request 99 failed",
            "java.lang.NullPointerException: user 99 missing\n\tat com.shop.Cart.total(Cart.java:42)\n\tat com.shop.Cart$$Lambda$15/0x0000000800099999.apply(Unknown Source)\n\tat java.base/java.util.stream.ReferencePipeline.map(ReferencePipeline.java:201)",
        );
        assert_eq!(a.0, b.0);
        assert_eq!(
            a.1,
            "java.lang.NullPointerException: user <*> missing (at com.shop.Cart.total)"
        );
        let c = fp(
            "request 17 failed",
            "java.lang.IllegalStateException: user 17 missing\n\tat com.shop.Cart.total(Cart.java:42)",
        );
        assert_ne!(a.0, c.0, "different exception, same line");
    }

    #[test]
    fn python_chain_outermost_first() {
        let t = parse("Traceback (most recent call last):", "  File \"/app/a.py\", line 3, in main\n    f()\n  File \"/usr/lib/python3.11/json/__init__.py\", line 1, in loads\nKeyError: 'x'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/app/a.py\", line 9, in main\nValueError: bad", &InApp::default()).expect("trace");
        assert_eq!(t.exceptions[0].type_name, "ValueError");
        assert_eq!(t.exceptions[1].type_name, "KeyError");
        assert_eq!(t.exceptions[1].frames[0].function, "loads");
        assert!(!t.exceptions[1].frames[0].in_app);
    }

    #[test]
    fn go_and_rust_and_node() {
        let t = parse("panic: runtime error: index out of range [5] with length 3", "\ngoroutine 1 [running]:\nmain.handler(0xc000012345)\n\t/app/main.go:12 +0x1d\nruntime.goexit()\n\t/usr/local/go/src/runtime/asm_amd64.s:1650 +0x1\ngoroutine 2 [chan receive]:\nmain.other()", &InApp::default()).expect("go");
        assert_eq!(
            t.exceptions[0].type_name,
            "panic: runtime error: index out of range [<*>] with length <*>"
        );
        assert_eq!(t.exceptions[0].frames.len(), 2);
        assert!(t.exceptions[0].frames[0].in_app && !t.exceptions[0].frames[1].in_app);

        let t = parse("thread 'main' panicked at src/main.rs:4:5:", "called `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/abc/library/std/src/panicking.rs:647:5\n   1: app::run::h0123456789abcdef\n             at ./src/main.rs:4:5", &InApp::default()).expect("rust");
        assert_eq!(
            t.exceptions[0].type_name,
            "panic: called `Option::unwrap()` on a `None` value"
        );
        assert_eq!(t.exceptions[0].frames[0].file, "src/main.rs");
        let with_id = parse(
            "thread 'main' (14316) panicked at src/main.rs:4:5:",
            "called `Option::unwrap()` on a `None` value",
            &InApp::default(),
        )
        .expect("rust with a thread id");
        assert_eq!(with_id.exceptions[0].type_name, t.exceptions[0].type_name);
        assert_eq!(with_id.exceptions[0].frames[0].file, "src/main.rs");
        assert!(
            t.exceptions[0]
                .frames
                .iter()
                .any(|f| f.function == "app::run")
        );

        let t = parse("TypeError: Cannot read properties of undefined (reading 'id')", "    at handler (/app/src/h.js:10:15)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)", &InApp::default()).expect("node");
        assert_eq!(t.lang, Lang::Node);
        assert_eq!(t.exceptions[0].frames[0].file, "src/h.js");
        assert!(!t.exceptions[0].frames[1].in_app);
    }
}
