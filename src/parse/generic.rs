//! The generic application-log shape, `timestamp level [thread] logger: message`, in its common
//! variants (log4j/logback, Python logging, Go, Spark, env_logger's `[ts LEVEL target] msg`,
//! Apache error logs' `[ts] [level] msg`), and plain text.
//!
//! In: one line. Out: timestamp, level, logger as service, thread as a field, the message; `None`
//! when the line does not start with a timestamp. `plain` accepts anything: the whole line is
//! the message and a level word among the first tokens sets the level. No state.

use crate::core::record::{Format, Level, LogRecord};
use crate::core::timestamp;

/// Looks at most this many header tokens after the timestamp before the message starts.
const MAX_HEADER_TOKENS: usize = 5;

pub(crate) fn parse(line: &str, rec: &mut LogRecord, year: i32) -> Option<()> {
    let bracketed = line.starts_with('[');
    let body = if bracketed { &line[1..] } else { line };
    let (ts, n) = timestamp::parse_prefix(body, year)?;
    let mut rest = &body[n..];
    let mut in_bracket = bracketed;
    if in_bracket && let Some(after) = rest.strip_prefix(']') {
        rest = after;
        in_bracket = false;
    }
    rec.ts = Some(ts);
    rec.format = Format::Generic;
    let mut logger_done = false;
    for _ in 0..MAX_HEADER_TOKENS {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = strip_separator(rest) {
            rest = after;
            continue;
        }
        if in_bracket {
            // env_logger: `[ts LEVEL target] message`.
            let close = rest.find(']')?;
            for word in rest[..close].split(' ') {
                match Level::parse(word) {
                    Some(l) if rec.level == Level::Unknown => rec.level = l,
                    _ if !word.is_empty() && rec.service.is_none() => {
                        rec.service = Some(word.to_string())
                    }
                    _ => {}
                }
            }
            rest = &rest[close + 1..];
            in_bracket = false;
            logger_done = true;
            continue;
        }
        let (tok, after) = token(rest);
        if tok.is_empty() {
            break;
        }
        if let Some(inner) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            match Level::parse(inner) {
                Some(l) if rec.level == Level::Unknown => rec.level = l,
                _ => rec.fields.push(("thread".into(), inner.into())),
            }
            rest = after;
            continue;
        }
        if rec.level == Level::Unknown
            && let Some(l) = Level::parse(tok.trim_end_matches(':'))
        {
            rec.level = l;
            rest = after;
            continue;
        }
        if !logger_done && is_logger(tok) {
            let name = tok.trim_end_matches(':');
            if tok.ends_with(':') && after.starts_with(' ') {
                rec.service = Some(name.to_string());
                rest = after;
                logger_done = true;
                continue;
            }
            if let Some(after_sep) = after
                .strip_prefix(" - ")
                .or_else(|| after.strip_prefix(" | "))
            {
                rec.service = Some(name.to_string());
                rest = after_sep;
                logger_done = true;
                continue;
            }
        }
        break;
    }
    rec.message = rest.trim().to_string();
    Some(())
}

/// A standalone `-`, `|` or `:` between header tokens.
fn strip_separator(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    (matches!(b.first(), Some(b'-' | b'|' | b':')) && matches!(b.get(1), Some(b' ') | None))
        .then(|| &s[1..])
}

/// The next space-delimited token; a bracketed token may contain spaces.
fn token(s: &str) -> (&str, &str) {
    let end = if s.starts_with('[') {
        s.find(']').map_or(s.len(), |i| i + 1)
    } else {
        s.find([' ', '\t']).unwrap_or(s.len())
    };
    s.split_at(end)
}

/// Logger names: `com.example.Foo`, `myapp.db`, `my_app::module`, `sshd`, `Foo$Bar@12`.
fn is_logger(tok: &str) -> bool {
    let name = tok.trim_end_matches(':');
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._$:/-@<>()".contains(&b))
}

/// Plain text: the whole line is the message; a level word among the first four tokens sets the
/// level (`[main] ERROR x`, `E0301 12:00:00 …` is left alone).
pub(crate) fn plain(line: &str, rec: &mut LogRecord) {
    rec.format = Format::Plain;
    rec.level = line
        .split(' ')
        .take(4)
        .find_map(|w| Level::parse(w).filter(|_| w.len() > 1))
        .unwrap_or(Level::Unknown);
    rec.message = line.trim().to_string();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> LogRecord {
        let mut rec = LogRecord::default();
        parse(line, &mut rec, 2024).expect(line);
        rec
    }

    #[test]
    fn variants() {
        let r = p("2024-03-01 12:00:00,123 ERROR [main] com.example.Foo - request failed: id=7");
        assert_eq!(
            (r.level, r.service.as_deref(), r.message.as_str()),
            (
                Level::Error,
                Some("com.example.Foo"),
                "request failed: id=7"
            )
        );
        let r = p("2024-03-01 12:00:00.123 [http-nio-1] WARN  c.e.Bar: slow");
        assert_eq!(
            (r.level, r.service.as_deref(), r.message.as_str()),
            (Level::Warn, Some("c.e.Bar"), "slow")
        );
        let r = p("2024-03-01 12:00:00,123 - myapp.db - ERROR - connection lost");
        assert_eq!(
            (r.level, r.service.as_deref(), r.message.as_str()),
            (Level::Error, Some("myapp.db"), "connection lost")
        );
        let r = p("[2024-03-01T12:00:00Z ERROR myapp::handler] bad request");
        assert_eq!(
            (r.level, r.service.as_deref(), r.message.as_str()),
            (Level::Error, Some("myapp::handler"), "bad request")
        );
        let r = p("[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6");
        assert_eq!(
            (r.level, r.message.as_str()),
            (Level::Error, "mod_jk child workerEnv in error state 6")
        );
        let r = p("2024/03/01 12:00:00 server listening on :8080");
        assert_eq!(
            (r.level, r.service, r.message.as_str()),
            (Level::Unknown, None, "server listening on :8080")
        );
        let r = p(
            "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers",
        );
        assert_eq!(
            r.service.as_deref(),
            Some("executor.CoarseGrainedExecutorBackend")
        );
    }

    #[test]
    fn plain_levels() {
        let mut rec = LogRecord::default();
        plain("[main] ERROR something broke", &mut rec);
        assert_eq!(rec.level, Level::Error);
        plain("nothing to see", &mut rec);
        assert_eq!(rec.level, Level::Unknown);
    }
}
