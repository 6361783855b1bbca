//! Custom header formats in the Loghub convention: `<Date> <Time> <Level> <Component>: <Content>`.
//!
//! In: the header template (once, at plan time) and then one line at a time. Out: the record with
//! date/time fields joined into the timestamp, `Level`, `Component`/`Service`/`Logger` as service,
//! `Node`/`Host` as host, `Content` as message, every other field as a field. A line that does
//! not match is rejected as `format_mismatch`. The compiled matcher is the only state: a plain
//! scanner when the literals are plain text (`header_scan.rs`), the regex otherwise.
//!
//! As in logparser, literal text between fields is a regular expression (so `\[<Pid>\]` and
//! optional groups work) and runs of spaces match any whitespace.

use regex::Regex;

use super::Reject;
use super::header_scan::Scanner;
use crate::core::record::{DeadReason, Format, Level, LogRecord};
use crate::core::timestamp;

#[derive(Debug, Clone)]
pub struct HeaderFormat {
    template: String,
    regex: Regex,
    /// Capture-group names in template order, and what each is.
    names: Vec<String>,
    roles: Vec<Role>,
    /// The regex-free matcher, when the template's literals are plain text.
    scanner: Option<Scanner>,
    content: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Time,
    Level,
    Service,
    Host,
    Content,
    Field,
}

fn role(name: &str) -> Role {
    match name.to_ascii_lowercase().as_str() {
        "date" | "time" | "timestamp" | "month" | "day" | "year" | "datetime" => Role::Time,
        "level" | "severity" | "type_level" => Role::Level,
        "component" | "service" | "logger" | "app" => Role::Service,
        "node" | "host" | "hostname" => Role::Host,
        "content" | "message" => Role::Content,
        _ => Role::Field,
    }
}

impl HeaderFormat {
    pub fn new(template: &str) -> Result<HeaderFormat, String> {
        let mut pattern = String::from("^");
        let mut names = Vec::new();
        let mut literals: Vec<&str> = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('<') {
            let close = rest[open..]
                .find('>')
                .map(|c| open + c)
                .ok_or_else(|| format!("unclosed `<` in header `{template}`"))?;
            pattern.push_str(&literal(&rest[..open]));
            literals.push(&rest[..open]);
            let name = &rest[open + 1..close];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("bad field name `<{name}>` in header `{template}`"));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!(
                    "field `<{name}>` appears twice in header `{template}`"
                ));
            }
            pattern.push_str(&format!("(?P<{name}>.*?)"));
            names.push(name.to_string());
            rest = &rest[close + 1..];
        }
        pattern.push_str(&literal(rest));
        literals.push(rest);
        pattern.push('$');
        let Some(content) = names.iter().position(|n| role(n) == Role::Content) else {
            return Err(format!("header `{template}` has no <Content> field"));
        };
        let regex = Regex::new(&pattern).map_err(|e| format!("header `{template}`: {e}"))?;
        Ok(HeaderFormat {
            template: template.to_string(),
            regex,
            roles: names.iter().map(|n| role(n)).collect(),
            names,
            scanner: Scanner::compile(&literals),
            content,
        })
    }

    pub fn template(&self) -> &str {
        &self.template
    }

    /// Fills `spans` with every field's (start, end) in template order; false when the line
    /// does not match.
    fn spans(&self, line: &str, spans: &mut Vec<(usize, usize)>) -> bool {
        if let Some(scanner) = &self.scanner {
            return scanner.spans(line.as_bytes(), spans);
        }
        spans.clear();
        let Some(caps) = self.regex.captures(line) else {
            return false;
        };
        spans.extend(
            self.names
                .iter()
                .map(|n| caps.name(n).map_or((0, 0), |m| (m.start(), m.end()))),
        );
        true
    }

    /// The `<Content>` part of a line, or `None` when the line does not match.
    pub fn content<'a>(&self, line: &'a str, spans: &mut Vec<(usize, usize)>) -> Option<&'a str> {
        if let Some(scanner) = &self.scanner {
            return scanner.spans(line.as_bytes(), spans).then(|| {
                let (a, b) = spans[self.content];
                &line[a..b]
            });
        }
        self.content_by_regex(line)
    }

    /// The `<Content>` part through the regex only (the reference for the fast path).
    pub fn content_by_regex<'a>(&self, line: &'a str) -> Option<&'a str> {
        self.regex
            .captures(line)
            .and_then(|c| c.name(&self.names[self.content]))
            .map(|m| m.as_str())
    }

    pub(crate) fn parse(&self, line: &str, rec: &mut LogRecord, year: i32) -> Result<(), Reject> {
        // Per-thread scratch: a parse allocates only what the record keeps.
        thread_local! {
            static SCRATCH: std::cell::RefCell<(Vec<(usize, usize)>, String)> =
                const { std::cell::RefCell::new((Vec::new(), String::new())) };
        }
        SCRATCH.with_borrow_mut(|(spans, joined)| {
            if !self.spans(line, spans) {
                return Err((
                    DeadReason::FormatMismatch,
                    format!("line does not match header `{}`", self.template),
                ));
            }
            joined.clear();
            let (mut first_time, mut times) = ("", 0);
            for ((name, &(a, b)), role) in self.names.iter().zip(spans.iter()).zip(&self.roles) {
                let value = &line[a..b];
                match role {
                    Role::Time => {
                        if times > 0 {
                            joined.push(' ');
                        } else {
                            first_time = value;
                        }
                        joined.push_str(value);
                        times += 1;
                    }
                    Role::Level => rec.level = Level::parse(value).unwrap_or(Level::Unknown),
                    Role::Service => rec.service = Some(value.to_string()),
                    Role::Host => rec.host = Some(value.to_string()),
                    Role::Content => rec.message = value.to_string(),
                    Role::Field => rec.fields.push((name.as_str().into(), value.into())),
                }
            }
            let whole = if times == 1 {
                first_time
            } else {
                joined.as_str()
            };
            rec.ts = timestamp::parse_field(whole, year).or_else(|| {
                // One of the parts alone, the last first.
                let parts = self.roles.iter().zip(spans.iter()).rev();
                parts
                    .filter(|(r, _)| **r == Role::Time)
                    .find_map(|(_, &(a, b))| timestamp::parse_field(&line[a..b], year))
            });
            rec.format = Format::Header;
            Ok(())
        })
    }
}

/// Literal text between fields: a regex fragment in which runs of spaces match `\s+`.
fn literal(text: &str) -> String {
    let mut out = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if c == ' ' {
            if !in_space {
                out.push_str(r"\s+");
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loghub_hdfs_and_linux() {
        let h = HeaderFormat::new("<Date> <Time> <Pid> <Level> <Component>: <Content>")
            .expect("compiles");
        let mut rec = LogRecord::default();
        h.parse(
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
            &mut rec,
            2024,
        )
        .expect("matches");
        assert_eq!(rec.level, Level::Info);
        assert_eq!(rec.service.as_deref(), Some("dfs.DataNode$PacketResponder"));
        assert_eq!(rec.message, "PacketResponder 1 terminating");
        assert_eq!(
            rec.ts.map(crate::core::time::format_rfc3339).as_deref(),
            Some("2008-11-09T20:36:15.000Z")
        );
        assert_eq!(rec.fields, vec![("Pid".into(), "148".into())]);

        let h =
            HeaderFormat::new(r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>")
                .expect("compiles");
        let mut rec = LogRecord::default();
        h.parse(
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
            &mut rec,
            2005,
        )
        .expect("matches");
        assert_eq!(rec.message, "check pass; user unknown");
        assert_eq!(
            rec.ts.map(crate::core::time::format_rfc3339).as_deref(),
            Some("2005-06-14T15:16:01.000Z")
        );
    }

    #[test]
    fn errors() {
        assert!(HeaderFormat::new("<Date> <Time>").is_err_and(|e| e.contains("no <Content>")));
        assert!(HeaderFormat::new("<Date <Content>").is_err());
        let h = HeaderFormat::new("<Date> <Level> <Content>").expect("compiles");
        let err = h
            .parse("nospace", &mut LogRecord::default(), 2024)
            .expect_err("mismatch");
        assert_eq!(err.0, DeadReason::FormatMismatch);
    }
}
