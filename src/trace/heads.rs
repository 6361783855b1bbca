//! Where a trace starts and what continues it, line by line: the tests the multiline stage joins
//! records by, kept beside the readers that parse what it joined.
//!
//! In: one physical line. Out: whether it is a trace head (an exception header, a Go or Rust
//! panic) or a frame of one. No state; each test is a few byte comparisons (they run on every
//! log line).

pub fn starts_ws(s: &str) -> bool {
    s.starts_with([' ', '\t'])
}

/// `java.lang.IllegalStateException: …`, `TypeError: …`, `com.x.MyError`, `Error: …`.
pub fn exception_header(s: &str) -> bool {
    // The name is what comes before the first `: ` and may hold no space, so unless the line
    // starts `Exception in thread`, the first space must follow a colon: one `memchr` instead
    // of a substring search over every log line.
    let name = if let Some(rest) = s.strip_prefix("Exception in thread ") {
        let full = rest.split_once(": ").map_or(rest, |(n, _)| n);
        full.rsplit(' ').next().unwrap_or(full)
    } else {
        match memchr::memchr(b' ', s.as_bytes()) {
            None => s,
            Some(i) if i > 0 && s.as_bytes()[i - 1] == b':' => &s[..i - 1],
            Some(_) => return false,
        }
    };
    exception_name(name)
}

/// `java.lang.IllegalStateException`, `TypeError`, `pkg.Outer$Fault`.
fn exception_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(' ')
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'$' || b == b'_')
        && ["Exception", "Error", "Throwable", "Fault"]
            .iter()
            .any(|k| name.rsplit('.').next().is_some_and(|last| last.contains(k)))
}

pub fn go_head(s: &str) -> bool {
    s.starts_with("panic: ")
        || s.starts_with("fatal error: ")
        || s.starts_with("SIGQUIT: ")
        || s.starts_with("SIGSEGV: ")
}

pub fn rust_head(s: &str) -> bool {
    s.starts_with("thread '") && s.contains(" panicked at ")
}

/// `main.main()`, `net/http.(*conn).serve(0xc000…)`, `main.worker(...)`.
pub fn go_call(s: &str) -> bool {
    s.ends_with(')') && s.find('(').is_some_and(|i| i > 0 && !s[..i].contains(' '))
}

pub fn python_exception_line(s: &str) -> bool {
    let name = s.split_once(':').map_or(s, |(n, _)| n);
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

pub fn rust_frame(s: &str) -> bool {
    let t = s.trim_start();
    starts_ws(s)
        && (t.starts_with("at ")
            || t.split_once(": ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_header_agrees_with_its_plain_definition() {
        // The definition the fast path replaced: the name before the first `: `.
        fn plain(s: &str) -> bool {
            let name = s.split_once(": ").map_or(s, |(n, _)| n);
            let name = name
                .strip_prefix("Exception in thread ")
                .map_or(name, |r| r.rsplit(' ').next().unwrap_or(r));
            exception_name(name)
        }
        let words = [
            "java.lang.IllegalStateException",
            "TypeError",
            "Error",
            "a:b",
            ":",
            " ",
            "Exception in thread \"main\"",
            "x",
            "msg",
            "",
            "ValueError:",
            "e.F$Fault",
            "::",
        ];
        let seps = ["", " ", ": ", ":", "  ", ": :"];
        for a in words {
            for sep in seps {
                for b in words {
                    let s = format!("{a}{sep}{b}");
                    assert_eq!(exception_header(&s), plain(&s), "{s:?}");
                }
            }
        }
    }
}
