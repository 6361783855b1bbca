//! Syslog: RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`) and RFC 3164
//! (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`, also without `<PRI>` as in /var/log/syslog).
//!
//! In: one line. Out: level from the PRI severity, timestamp, host, service (APP or TAG), pid
//! and structured-data parameters as fields; `None` when the line is not syslog. No state.

use crate::core::record::{Format, Level, LogRecord, Text};
use crate::core::timestamp;

/// `<PRI>` → (severity level, rest).
fn pri(line: &str) -> Option<(Level, &str)> {
    let rest = line.strip_prefix('<')?;
    let end = rest.find('>')?;
    if end == 0 || end > 3 {
        return None;
    }
    let p: u16 = rest[..end].parse().ok()?;
    (p <= 191).then(|| (Level::from_syslog((p % 8) as u8), &rest[end + 1..]))
}

pub(crate) fn parse(line: &str, rec: &mut LogRecord, year: i32) -> Option<()> {
    let (level, rest) = match pri(line) {
        Some((level, rest)) => (Some(level), rest),
        None => (None, line),
    };
    if let (Some(level), Some(body)) = (level, rest.strip_prefix("1 ")) {
        return rfc5424(body, level, rec, year);
    }
    rfc3164(rest, level, rec, year)
}

fn nil(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_string())
}

fn rfc5424(body: &str, level: Level, rec: &mut LogRecord, year: i32) -> Option<()> {
    let mut it = body.splitn(6, ' ');
    let (ts, host, app, procid, msgid) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    let rest = it.next().unwrap_or("");
    rec.ts = if ts == "-" {
        None
    } else {
        Some(timestamp::parse_field(ts, year)?)
    };
    rec.host = nil(host);
    rec.service = nil(app);
    rec.level = level;
    rec.fields
        .extend(nil(procid).map(|p| ("pid".into(), p.into())));
    rec.fields
        .extend(nil(msgid).map(|m| ("msgid".into(), m.into())));
    let msg = if let Some(after) = rest.strip_prefix('-') {
        after
    } else {
        structured_data(rest, &mut rec.fields)?
    };
    rec.message = msg
        .trim_start_matches(' ')
        .trim_start_matches('\u{feff}')
        .to_string();
    rec.format = Format::Syslog5424;
    Some(())
}

/// `[id k="v" k2="v2"][id2 …]`; returns the text after the last element.
fn structured_data<'a>(mut s: &'a str, fields: &mut Vec<(Text, Text)>) -> Option<&'a str> {
    while let Some(inner) = s.strip_prefix('[') {
        let b = inner.as_bytes();
        let mut i = 0;
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        let element = inner.get(..i)?;
        let (id, params) = element.split_once(' ').unwrap_or((element, ""));
        for (k, v) in super::logfmt::pairs(params) {
            fields.push((format!("{id}.{k}").into(), v.into()));
        }
        s = inner.get(i + 1..)?;
    }
    Some(s)
}

fn rfc3164(rest: &str, level: Option<Level>, rec: &mut LogRecord, year: i32) -> Option<()> {
    let (ts, n) = timestamp::parse_prefix(rest, year)?;
    // Without `<PRI>`, only the shapes syslog daemons write: BSD `Mmm dd hh:mm:ss` and rsyslog's
    // RFC 3339 `2024-03-01T12:00:00+00:00`. Anything else is left to the generic parser.
    if level.is_none()
        && !(rest.starts_with(|c: char| c.is_ascii_alphabetic())
            || rest.as_bytes().get(10) == Some(&b'T'))
    {
        return None;
    }
    let after = rest[n..].strip_prefix(' ')?;
    let (host, after) = after.split_once(' ')?;
    let hostname = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
    };
    if !hostname(host) || host.ends_with(':') || Level::parse(host).is_some() {
        return None;
    }
    // TAG is alphanumeric (plus `._-/()`), then `[pid]` and/or `:`.
    let tag_end = after.find(|c: char| !(c.is_ascii_alphanumeric() || "._-/()".contains(c)))?;
    let tag = &after[..tag_end];
    let mut msg = &after[tag_end..];
    let mut pid = None;
    if let Some(inner) = msg.strip_prefix('[') {
        let close = inner.find(']')?;
        pid = Some(&inner[..close]);
        msg = &inner[close + 1..];
    }
    msg = msg.strip_prefix(':')?;
    if tag.is_empty() {
        return None;
    }
    rec.ts = Some(ts);
    rec.host = Some(host.to_string());
    rec.service = Some(tag.to_string());
    rec.fields.extend(pid.map(|p| ("pid".into(), p.into())));
    let msg = msg.trim_start();
    rec.level = level.unwrap_or_else(|| leading_level(msg));
    rec.message = msg.to_string();
    rec.format = Format::Syslog3164;
    Some(())
}

/// Without `<PRI>` the level may be the message's first word (`error: …`, `[WARN] …`).
fn leading_level(msg: &str) -> Level {
    msg.split(' ')
        .next()
        .and_then(Level::parse)
        .unwrap_or(Level::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_with_structured_data() {
        let mut rec = LogRecord::default();
        let line = r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event"#;
        parse(line, &mut rec, 2024).expect("5424");
        assert_eq!(rec.level, Level::Notice);
        assert_eq!(rec.service.as_deref(), Some("evntslog"));
        assert_eq!(rec.message, "An application event");
        assert!(
            rec.fields
                .contains(&("exampleSDID@32473.iut".into(), "3".into()))
        );
    }

    #[test]
    fn rfc3164_without_pri() {
        let mut rec = LogRecord::default();
        parse(
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; rhost=1.2.3.4",
            &mut rec,
            2005,
        )
        .expect("3164");
        assert_eq!(rec.host.as_deref(), Some("combo"));
        assert_eq!(rec.service.as_deref(), Some("sshd(pam_unix)"));
        assert_eq!(rec.message, "authentication failure; rhost=1.2.3.4");
        assert!(
            parse(
                "2024-03-01 12:00:00 ERROR main: boom",
                &mut LogRecord::default(),
                2024
            )
            .is_none()
        );
    }
}
