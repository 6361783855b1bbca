//! Parse stage: `RawLine` → `LogRecord`, bad input → `DeadLetter`.
//!
//! In: raw records (one head line plus joined stack-trace lines). Out: a `LogRecord` with
//! timestamp, level, service, host, message, fields and trace; or a dead letter with a reason
//! (invalid UTF-8, too long, binary, broken JSON, not matching a declared header format); a
//! record whose trace was cut off by the end of input yields both. No state: each record is
//! parsed alone, so this stage runs anywhere.
//!
//! Formats are detected per line (`auto`) or fixed per source. The pure logic lives here and in
//! the per-format files; `stage.rs` wraps it in a timely operator.

mod access;
mod config;
mod generic;
mod header;
mod header_scan;
mod json;
mod logfmt;
mod syslog;

pub use config::{FormatChoice, ParseConfig, SourceFormat};
pub use header::HeaderFormat;

use crate::core::record::{DeadLetter, DeadReason, LogRecord, RawLine};

/// A parse failure local to one format parser: the reason and a human detail.
pub(crate) type Reject = (DeadReason, String);

/// How to parse one source's records: the compiled format and per-source defaults.
#[derive(Debug, Clone)]
pub struct Parser {
    pub format: FormatChoice,
    /// Service name for records that carry none.
    pub service: Option<String>,
    pub default_year: i32,
}

impl Parser {
    /// Parses one raw record. Returns the record, a dead letter, or both (a cut-off trace is
    /// still an error worth an incident, and also reported as truncated).
    pub fn parse(&self, raw: &RawLine) -> (Option<LogRecord>, Option<DeadLetter>) {
        let len = raw.oversize.unwrap_or(raw.bytes.len() as u64);
        let dead =
            |reason, detail: String| DeadLetter::new(raw.pos, reason, detail, &raw.bytes, len);
        if let Some(full) = raw.oversize {
            return (
                None,
                Some(dead(
                    DeadReason::LineTooLong,
                    format!("line of {full} bytes exceeds the limit"),
                )),
            );
        }
        if let Some(detail) = binary_junk(&raw.bytes) {
            return (None, Some(dead(DeadReason::Binary, detail)));
        }
        let text = match std::str::from_utf8(&raw.bytes) {
            Ok(text) => text,
            Err(e) => {
                let detail = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                return (None, Some(dead(DeadReason::InvalidUtf8, detail)));
            }
        };
        let (head, trace) = match text.split_once('\n') {
            Some((head, trace)) => (head.trim_end_matches('\r'), Some(trace)),
            None => (text.trim_end_matches('\r'), None),
        };
        let mut rec = LogRecord {
            pos: raw.pos,
            ingest_ms: raw.ingest_ms,
            trace: trace.map(str::to_owned),
            cut: raw.cut,
            ..LogRecord::default()
        };
        if let Err((reason, detail)) = self.parse_head(head, &mut rec) {
            return (None, Some(dead(reason, detail)));
        }
        if rec.service.is_none() {
            rec.service.clone_from(&self.service);
        }
        let cut = raw.cut.then(|| {
            dead(
                DeadReason::TruncatedTrace,
                "input ended inside a stack trace".into(),
            )
        });
        (Some(rec), cut)
    }

    fn parse_head(&self, head: &str, rec: &mut LogRecord) -> Result<(), Reject> {
        let year = self.default_year;
        match &self.format {
            FormatChoice::Auto | FormatChoice::Fixed(SourceFormat::Auto) => auto(head, rec, year),
            FormatChoice::Fixed(SourceFormat::Json) => json::parse(head, rec, year),
            FormatChoice::Fixed(SourceFormat::Logfmt) => logfmt::parse(head, rec, year),
            FormatChoice::Fixed(SourceFormat::Syslog) => {
                syslog::parse(head, rec, year).ok_or_else(|| mismatch("syslog"))
            }
            FormatChoice::Fixed(SourceFormat::Access) => {
                access::parse(head, rec, year).ok_or_else(|| mismatch("access log"))
            }
            FormatChoice::Fixed(SourceFormat::Generic) => generic::parse(head, rec, year)
                .ok_or_else(|| mismatch("timestamp level logger: message")),
            FormatChoice::Fixed(SourceFormat::Plain) => {
                generic::plain(head, rec);
                Ok(())
            }
            FormatChoice::Header(h) => h.parse(head, rec, year),
        }
    }
}

fn mismatch(what: &str) -> Reject {
    (
        DeadReason::FormatMismatch,
        format!("line does not match the {what} format"),
    )
}

/// A parser of one header shape: fills the record, or `None` when the line is not that shape.
type HeadParser = fn(&str, &mut LogRecord, i32) -> Option<()>;

/// Per-line auto-detection, cheapest discriminating test first. Each attempt parses into a
/// scratch record, so a parser that gives up half-way leaves nothing behind.
fn auto(head: &str, rec: &mut LogRecord, year: i32) -> Result<(), Reject> {
    let start = head.trim_start();
    let first = start.as_bytes().first().copied().unwrap_or(b' ');
    if first == b'{' {
        return json::parse(start, rec, year);
    }
    let attempts: [(bool, HeadParser); 3] = [
        (
            first == b'<' || first.is_ascii_alphanumeric(),
            syslog::parse,
        ),
        (access::looks_like(start), access::parse),
        (true, generic::parse),
    ];
    for (applies, parser) in attempts {
        if !applies {
            continue;
        }
        let mut scratch = LogRecord::default();
        if parser(start, &mut scratch, year).is_some() {
            adopt(rec, scratch);
            return Ok(());
        }
    }
    if logfmt::looks_like(start) {
        return logfmt::parse(start, rec, year);
    }
    generic::plain(start, rec);
    Ok(())
}

/// Moves what a header parser found into the record (keeping position, trace and flags).
fn adopt(rec: &mut LogRecord, head: LogRecord) {
    rec.ts = head.ts;
    rec.level = head.level;
    rec.service = head.service;
    rec.host = head.host;
    rec.message = head.message;
    rec.fields = head.fields;
    rec.status = head.status;
    rec.format = head.format;
}

/// Binary junk: a NUL byte, or more than 10% control characters other than tab and ESC (ANSI
/// colours are common in logs). Returns a description when the text is junk.
fn binary_junk(bytes: &[u8]) -> Option<String> {
    // Most lines hold no byte below 0x20 at all: one branch-free (vectorised) count decides.
    let low = bytes.iter().map(|&b| usize::from(b < 0x20)).sum::<usize>();
    if low == 0 {
        return None;
    }
    if let Some(i) = memchr::memchr(0, bytes) {
        return Some(format!("NUL byte at {i}"));
    }
    if low * 10 <= bytes.len() {
        // Not junk even if every low byte counted.
        return None;
    }
    let control = bytes
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b))
        .count();
    (control * 10 > bytes.len()).then(|| format!("{control} control bytes in {}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{Format, Level, Position};

    #[test]
    fn binary_junk_agrees_with_its_definition() {
        let plain = |bytes: &[u8]| {
            if let Some(i) = bytes.iter().position(|&b| b == 0) {
                return Some(format!("NUL byte at {i}"));
            }
            let control = bytes
                .iter()
                .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b))
                .count();
            (control * 10 > bytes.len())
                .then(|| format!("{control} control bytes in {}", bytes.len()))
        };
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            // Mostly text, with a share of low bytes that varies with the length.
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x % 97 < (len % 23) as u64 {
                        (x >> 8) as u8 % 0x20
                    } else {
                        b'a' + (x % 26) as u8
                    }
                })
                .collect();
            assert_eq!(binary_junk(&bytes), plain(&bytes), "{bytes:?}");
        }
    }

    fn raw(text: &[u8]) -> RawLine {
        RawLine {
            pos: Position {
                source: 0,
                offset: 0,
                line: 1,
            },
            bytes: text.to_vec(),
            lines: 1,
            ..Default::default()
        }
    }

    fn auto_parser() -> Parser {
        Parser {
            format: FormatChoice::Auto,
            service: Some("svc".into()),
            default_year: 2024,
        }
    }

    #[test]
    fn detects_each_format() {
        let p = auto_parser();
        let cases: [(&str, Format); 7] = [
            (
                r#"{"ts":"2024-03-01T12:00:00Z","level":"error","msg":"boom"}"#,
                Format::Json,
            ),
            (
                "ts=2024-03-01T12:00:00Z level=error msg=\"boom now\"",
                Format::Logfmt,
            ),
            (
                "<11>Mar  1 12:00:00 web01 app[42]: boom",
                Format::Syslog3164,
            ),
            (
                "<11>1 2024-03-01T12:00:00Z web01 app 42 - - boom",
                Format::Syslog5424,
            ),
            (
                "10.0.0.1 - - [01/Mar/2024:12:00:00 +0000] \"GET / HTTP/1.1\" 500 12",
                Format::Access,
            ),
            (
                "2024-03-01 12:00:00,000 ERROR [main] com.example.App: boom",
                Format::Generic,
            ),
            ("just some words", Format::Plain),
        ];
        for (line, want) in cases {
            let (rec, dead) = p.parse(&raw(line.as_bytes()));
            assert!(dead.is_none(), "{line}: {dead:?}");
            let rec = rec.expect(line);
            assert_eq!(rec.format, want, "{line}");
            if want != Format::Plain {
                assert_eq!(rec.ts, Some(1_709_294_400_000), "{line}");
                assert!(rec.level >= Level::Error, "{line}");
            }
        }
    }

    #[test]
    fn bad_input_goes_to_dead_letters() {
        let p = auto_parser();
        let cases: [(&[u8], DeadReason); 3] = [
            (b"caf\xe9 ok", DeadReason::InvalidUtf8),
            (b"\x00\x01\x02\x03junk", DeadReason::Binary),
            (br#"{"level":"error","msg":"trunc"#, DeadReason::InvalidJson),
        ];
        for (bytes, reason) in cases {
            let (rec, dead) = p.parse(&raw(bytes));
            assert!(rec.is_none());
            assert_eq!(dead.map(|d| d.reason), Some(reason));
        }
        let mut long = raw(b"xxxx");
        long.oversize = Some(10_000_000);
        let (_, dead) = p.parse(&long);
        let dead = dead.expect("dead letter");
        assert_eq!(
            (dead.reason, dead.bytes),
            (DeadReason::LineTooLong, 10_000_000)
        );
    }

    #[test]
    fn cut_trace_is_processed_and_reported() {
        let p = auto_parser();
        let mut r = raw(b"2024-03-01 12:00:00 ERROR app: failed\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)");
        r.cut = true;
        let (rec, dead) = p.parse(&r);
        let rec = rec.expect("record");
        assert!(
            rec.trace
                .as_deref()
                .is_some_and(|t| t.starts_with("java.lang"))
        );
        assert_eq!(dead.map(|d| d.reason), Some(DeadReason::TruncatedTrace));
    }
}
