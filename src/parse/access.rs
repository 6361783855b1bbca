//! Apache/nginx access logs, common and combined:
//! `client ident user [10/Oct/2000:13:55:36 -0700] "GET /path HTTP/1.1" 200 2326 "referer" "agent"`.
//!
//! In: one line. Out: timestamp, status (level error for 5xx, warn for 4xx, info otherwise), a
//! message `METHOD path status`, and client, user, method, path, protocol, bytes, referer and
//! user agent as fields; `None` when the line is not an access log. No state.

use crate::core::record::{Format, Level, LogRecord, Text};
use crate::core::timestamp;

/// Cheap pre-check: three space-separated tokens then ` [dd/`.
pub(crate) fn looks_like(line: &str) -> bool {
    let head = &line.as_bytes()[..line.len().min(160)];
    memchr::memmem::find(head, b" [").is_some_and(|i| {
        head.get(i + 2..i + 5)
            .is_some_and(|d| d[0].is_ascii_digit() && d[1].is_ascii_digit() && d[2] == b'/')
    })
}

/// A `"…"` field with `\"` escapes; returns (content, rest).
fn quoted(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('"')?;
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&inner[..i], &inner[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

pub(crate) fn parse(line: &str, rec: &mut LogRecord, year: i32) -> Option<()> {
    let mut parts = line.splitn(4, ' ');
    let (client, ident, user, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = rest.strip_prefix('[')?;
    let close = rest.find(']')?;
    let ts = timestamp::parse_field(&rest[..close], year)?;
    let rest = rest[close + 1..].strip_prefix(' ')?;
    let (request, rest) = quoted(rest)?;
    let mut tail = rest.trim_start().splitn(3, ' ');
    let status: u16 = tail.next()?.parse().ok()?;
    let bytes = tail.next().unwrap_or("-");
    let rest = tail.next().unwrap_or("").trim_start();
    let (method, path, proto) = {
        let mut r = request.splitn(3, ' ');
        (
            r.next().unwrap_or(""),
            r.next().unwrap_or(""),
            r.next().unwrap_or(""),
        )
    };
    rec.ts = Some(ts);
    rec.status = Some(status);
    rec.level = match status {
        500.. => Level::Error,
        400..=499 => Level::Warn,
        _ => Level::Info,
    };
    let field = |k: &str, v: &str| (Text::from(k), Text::from(v));
    rec.fields.extend([
        field("client", client),
        field("method", method),
        field("path", path),
        field("status", &status.to_string()),
    ]);
    for (k, v) in [
        ("ident", ident),
        ("user", user),
        ("protocol", proto),
        ("bytes", bytes),
    ] {
        if v != "-" && !v.is_empty() {
            rec.fields.push(field(k, v));
        }
    }
    if let Some((referer, rest)) = quoted(rest) {
        rec.fields.push(field("referer", referer));
        if let Some((agent, _)) = quoted(rest.trim_start()) {
            rec.fields.push(field("user_agent", agent));
        }
    }
    rec.message = if path.is_empty() {
        format!("{request} {status}")
    } else {
        format!("{method} {path} {status}")
    };
    rec.format = Format::Access;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 503 2326 "http://example.com/" "Mozilla/4.08 [en]""#;
        assert!(looks_like(line));
        let mut rec = LogRecord::default();
        parse(line, &mut rec, 2024).expect("parses");
        assert_eq!((rec.status, rec.level), (Some(503), Level::Error));
        assert_eq!(rec.message, "GET /apache_pb.gif 503");
        assert!(
            rec.fields
                .contains(&("user_agent".into(), "Mozilla/4.08 [en]".into()))
        );
        assert!(rec.fields.contains(&("user".into(), "frank".into())));
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(!looks_like("2024-03-01 12:00:00 ERROR [main] x"));
        assert!(
            parse(
                "a b c [not a time] \"GET / HTTP/1.1\" 200 1",
                &mut LogRecord::default(),
                2024
            )
            .is_none()
        );
    }
}
