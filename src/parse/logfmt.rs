//! logfmt: `ts=… level=error msg="quoted \"text\"" key=value flag`.
//!
//! In: one line. Out: timestamp, level, message, service and host from the usual keys, the
//! remaining pairs as fields. Bare words are flags with an empty value. A quote left open runs
//! to the end of the line rather than failing. No state.

use super::Reject;
use crate::core::record::{Format, Level, LogRecord};
use crate::core::timestamp;

/// At least two `key=` pairs among the first tokens, and the first token is one.
pub(crate) fn looks_like(line: &str) -> bool {
    let mut pairs = 0;
    for (i, tok) in line
        .split(' ')
        .filter(|t| !t.is_empty())
        .take(4)
        .enumerate()
    {
        let is_pair = tok.find('=').is_some_and(|eq| eq > 0 && is_key(&tok[..eq]));
        if i == 0 && !is_pair {
            return false;
        }
        pairs += usize::from(is_pair);
    }
    pairs >= 2
}

fn is_key(k: &str) -> bool {
    k.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@' | b'/'))
}

/// Splits a logfmt line into pairs, unescaping quoted values.
pub(crate) fn pairs(line: &str) -> Vec<(String, String)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let key = line[start..i].to_string();
        if i >= b.len() || b[i] == b' ' {
            out.push((key, String::new()));
            continue;
        }
        i += 1; // '='
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut v = String::new();
            let mut seg = i;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1].is_ascii() {
                    v.push_str(&line[seg..i]);
                    v.push(match b[i + 1] {
                        b'n' => '\n',
                        b't' => '\t',
                        c => c as char,
                    });
                    i += 2;
                    seg = i;
                } else {
                    i += 1;
                }
            }
            v.push_str(&line[seg..i.min(b.len())]);
            i += 1;
            v
        } else {
            let s = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            line[s..i].to_string()
        };
        out.push((key, value));
    }
    out
}

pub(crate) fn parse(line: &str, rec: &mut LogRecord, year: i32) -> Result<(), Reject> {
    for (k, v) in pairs(line) {
        match k.as_str() {
            "ts" | "time" | "timestamp" | "t" | "@timestamp" if rec.ts.is_none() => {
                rec.ts = timestamp::parse_field(&v, year);
                if rec.ts.is_none() {
                    rec.fields.push((k.into(), v.into()));
                }
            }
            "level" | "lvl" | "severity" | "loglevel" if rec.level == Level::Unknown => {
                rec.level = Level::parse(&v).unwrap_or(Level::Unknown);
            }
            "msg" | "message" if rec.message.is_empty() => rec.message = v,
            "service" | "app" | "logger" | "component" | "module" if rec.service.is_none() => {
                rec.service = Some(v)
            }
            "host" | "hostname" | "node" if rec.host.is_none() => rec.host = Some(v),
            "stack" | "stacktrace" | "stack_trace" | "error.stack" if rec.trace.is_none() => {
                rec.trace = Some(v)
            }
            _ => rec.fields.push((k.into(), v.into())),
        }
    }
    rec.format = Format::Logfmt;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_with_quotes_and_flags() {
        let got = pairs(r#"a=1 msg="say \"hi\"" flag b= c="open"#);
        let want: Vec<(String, String)> = [
            ("a", "1"),
            ("msg", "say \"hi\""),
            ("flag", ""),
            ("b", ""),
            ("c", "open"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn detection() {
        assert!(looks_like("level=info msg=started port=80"));
        assert!(!looks_like("started with level=info"));
        assert!(!looks_like("x=1 only"));
    }
}
