//! Timestamps as they appear in logs.
//!
//! In: text (a whole field, or the start of a line). Out: milliseconds since the Unix epoch (UTC),
//! or `None` when the text is not a timestamp we know. No state. Hand-written scanners rather than regexes: this runs
//! on every line.
//!
//! Shapes recognised at the start of a line (`parse_prefix`):
//! - ISO 8601 / RFC 3339: `2024-03-01T12:00:00.123Z`, `2024-03-01 12:00:00,123 +02:00`, also `/`;
//! - BGL: `2005-06-03-15.42.50.675872`; two-digit years: `17/06/09 20:10:40`;
//! - syslog: `Mar  1 12:00:00` (year from the spec's `default_year`), `Mar 1 2024 12:00:00`;
//! - ctime / Apache: `Sun Dec 04 04:47:44 2005`, `[Sun Dec 04 04:47:44 2005]` is the caller's job;
//! - access logs: `10/Oct/2000:13:55:36 -0700`;
//! - compact: `081109 203615` (yyMMdd HHmmss), `20240301T120000Z`.
//!
//! `parse_field` also takes Unix epoch numbers (seconds, ms, µs, ns by magnitude).

use super::time::{Millis, days_from_civil};
#[cfg(test)]
use super::time::{civil_from_days, format_rfc3339, parse_duration};

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];
const WEEKDAYS: [&[u8; 3]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];

/// A byte cursor over the start of a string.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_any(&mut self, set: &[u8]) -> Option<u8> {
        let c = self.peek()?;
        if set.contains(&c) {
            self.i += 1;
            Some(c)
        } else {
            None
        }
    }
    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(s.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')))
    }
    /// One or two digits.
    fn digits12(&mut self) -> Option<u32> {
        let a = self.digits(1)?;
        Some(match self.digits(1) {
            Some(b) => a * 10 + b,
            None => a,
        })
    }
    fn spaces(&mut self) -> usize {
        let start = self.i;
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        self.i - start
    }
    fn word3(&mut self, table: &[&[u8; 3]]) -> Option<usize> {
        let s = self.b.get(self.i..self.i + 3)?;
        let pos = table.iter().position(|w| w.eq_ignore_ascii_case(s))?;
        self.i += 3;
        Some(pos)
    }
}

fn valid(m: u32, d: u32, h: u32, mi: u32, s: u32) -> bool {
    (1..=12).contains(&m) && (1..=31).contains(&d) && h < 24 && mi < 60 && s <= 60
}

/// (hour, minute, second, millisecond).
type Hms = (u32, u32, u32, u32);

fn assemble(y: i64, mo: u32, d: u32, (h, mi, s, ms): Hms, off_min: i64) -> Option<Millis> {
    if !valid(mo, d, h, mi, s) {
        return None;
    }
    let secs =
        days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - off_min * 60;
    Some(secs * 1000 + i64::from(ms))
}

/// `hh:mm:ss` with an optional `.frac`/`,frac`; returns (h, m, s, ms).
fn clock(c: &mut Cur, sep: u8) -> Option<(u32, u32, u32, u32)> {
    let h = c.digits(2)?;
    if !c.eat(sep) {
        return None;
    }
    let mi = c.digits(2)?;
    if !c.eat(sep) {
        return None;
    }
    let s = c.digits(2)?;
    Some((h, mi, s, fraction(c)))
}

fn fraction(c: &mut Cur) -> u32 {
    let save = c.i;
    if c.eat_any(b".,").is_none() {
        return 0;
    }
    let (mut ms, mut n) = (0u32, 0);
    while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
        if n < 3 {
            ms = ms * 10 + u32::from(d - b'0');
        }
        n += 1;
        c.i += 1;
    }
    if n == 0 {
        c.i = save;
        return 0;
    }
    for _ in n..3 {
        ms *= 10;
    }
    ms
}

/// `Z`, `UTC`, `+hh:mm`, `+hhmm`, `+hh` after optional spaces; minutes east of UTC.
fn zone(c: &mut Cur) -> i64 {
    let save = c.i;
    c.spaces();
    if c.eat(b'Z') {
        return 0;
    }
    if c.b[c.i..].starts_with(b"UTC") || c.b[c.i..].starts_with(b"GMT") {
        c.i += 3;
        return 0;
    }
    if let Some(sign) = c.eat_any(b"+-")
        && let Some(h) = c.digits(2)
    {
        let colon = c.eat(b':');
        let m = match c.digits(2) {
            Some(m) => m,
            None if colon => {
                c.i = save;
                return 0;
            }
            None => 0,
        };
        if h <= 14 && m < 60 {
            let off = i64::from(h * 60 + m);
            return if sign == b'-' { -off } else { off };
        }
    }
    c.i = save;
    0
}

/// ISO-like: `YYYY-MM-DD[T ]hh:mm:ss[.f][zone]`, `YYYY/MM/DD ...`, BGL `YYYY-MM-DD-hh.mm.ss.f`.
fn iso(c: &mut Cur) -> Option<Millis> {
    let y = c.digits(4)?;
    let sep = c.eat_any(b"-/")?;
    let mo = c.digits(2)?;
    if !c.eat(sep) {
        return None;
    }
    let d = c.digits(2)?;
    let (h, mi, s, ms) = if c.eat(b'-') {
        clock(c, b'.')?
    } else {
        c.eat_any(b"T ")?;
        clock(c, b':')?
    };
    let off = zone(c);
    assemble(i64::from(y), mo, d, (h, mi, s, ms), off)
}

/// Two-digit year: `yy/MM/dd HH:mm:ss` (Spark) or `yyMMdd HHmmss` (HDFS).
fn short_year(c: &mut Cur) -> Option<Millis> {
    let save = c.i;
    if let Some(t) = (|| {
        let y = c.digits(2)?;
        c.eat(b'/').then_some(())?;
        let mo = c.digits(2)?;
        c.eat(b'/').then_some(())?;
        let d = c.digits(2)?;
        c.eat(b' ').then_some(())?;
        let (h, mi, s, ms) = clock(c, b':')?;
        assemble(2000 + i64::from(y), mo, d, (h, mi, s, ms), 0)
    })() {
        return Some(t);
    }
    c.i = save;
    let date = c.digits(6)?;
    if !c.eat(b' ') {
        return None;
    }
    let time = c.digits(6)?;
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, mo, d) = (date / 10_000, date / 100 % 100, date % 100);
    let (h, mi, s) = (time / 10_000, time / 100 % 100, time % 100);
    assemble(2000 + i64::from(y), mo, d, (h, mi, s, 0), 0)
}

/// `[Www ]Mmm dd [yyyy ]hh:mm:ss[ yyyy]`; the year defaults to `default_year`.
fn month_first(c: &mut Cur, default_year: i32) -> Option<Millis> {
    let save = c.i;
    if c.word3(&WEEKDAYS).is_some() && c.spaces() == 0 {
        c.i = save;
    }
    let mo = c.word3(&MONTHS)? as u32 + 1;
    if c.spaces() == 0 {
        return None;
    }
    let d = c.digits12()?;
    c.spaces();
    let mut year = None;
    let before = c.i;
    if let Some(y) = c.digits(4) {
        if c.spaces() > 0 {
            year = Some(y);
        } else {
            c.i = before;
        }
    }
    let (h, mi, s, ms) = clock(c, b':')?;
    if year.is_none() {
        let before = c.i;
        if c.spaces() > 0 {
            match c.digits(4) {
                Some(y) if !c.peek().is_some_and(|b| b.is_ascii_digit()) => year = Some(y),
                _ => c.i = before,
            }
        }
    }
    let off = zone(c);
    let y = year.map_or(i64::from(default_year), i64::from);
    assemble(y, mo, d, (h, mi, s, ms), off)
}

/// Access-log style: `10/Oct/2000:13:55:36 -0700`.
fn clf(c: &mut Cur) -> Option<Millis> {
    let d = c.digits(2)?;
    c.eat(b'/').then_some(())?;
    let mo = c.word3(&MONTHS)? as u32 + 1;
    c.eat(b'/').then_some(())?;
    let y = c.digits(4)?;
    c.eat(b':').then_some(())?;
    let (h, mi, s, ms) = clock(c, b':')?;
    let off = zone(c);
    assemble(i64::from(y), mo, d, (h, mi, s, ms), off)
}

/// Parses a timestamp at the start of `text`; returns it and the number of bytes consumed.
pub fn parse_prefix(text: &str, default_year: i32) -> Option<(Millis, usize)> {
    let b = text.as_bytes();
    let first = *b.first()?;
    let mut c = Cur { b, i: 0 };
    let t = if first.is_ascii_digit() {
        iso(&mut c)
            .or_else(|| {
                c.i = 0;
                clf(&mut c)
            })
            .or_else(|| {
                c.i = 0;
                short_year(&mut c)
            })
    } else if first.is_ascii_alphabetic() {
        month_first(&mut c, default_year)
    } else {
        None
    }?;
    // A timestamp must end at a boundary, not in the middle of a word.
    if c.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((t, c.i))
}

/// Parses a whole field: any `parse_prefix` shape, or a Unix epoch number.
pub fn parse_field(text: &str, default_year: i32) -> Option<Millis> {
    let text = text.trim();
    if let Some((t, n)) = parse_prefix(text, default_year)
        && text[n..].trim().is_empty()
    {
        return Some(t);
    }
    parse_epoch(text)
}

/// A Unix epoch number; the unit is chosen by magnitude (s, ms, µs, ns).
pub fn parse_epoch(text: &str) -> Option<Millis> {
    let v: f64 = text.parse().ok()?;
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    let ms = if v < 1e11 {
        v * 1e3
    } else if v < 1e14 {
        v
    } else if v < 1e17 {
        v / 1e3
    } else {
        v / 1e6
    };
    (ms < 1e15).then_some(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        parse_prefix(s, 2024).map(|(t, _)| format_rfc3339(t))
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn shapes() {
        let t = Some("2024-03-01T12:00:00.123Z".to_string());
        assert_eq!(p("2024-03-01T12:00:00.123Z rest"), t);
        assert_eq!(p("2024-03-01 14:00:00,123 +02:00 x"), t);
        assert_eq!(p("2024-03-01 13:00:00.123456+0100"), t);
        assert_eq!(p("2024/03/01 12:00:00.123"), t);
        assert_eq!(
            p("2005-06-03-15.42.50.675872 R02"),
            Some("2005-06-03T15:42:50.675Z".into())
        );
        assert_eq!(
            p("17/06/09 20:10:40 INFO"),
            Some("2017-06-09T20:10:40.000Z".into())
        );
        assert_eq!(
            p("081109 203615 148"),
            Some("2008-11-09T20:36:15.000Z".into())
        );
        assert_eq!(
            p("Mar  1 12:00:00 host"),
            Some("2024-03-01T12:00:00.000Z".into())
        );
        assert_eq!(
            p("Sun Dec 04 04:47:44 2005] x"),
            Some("2005-12-04T04:47:44.000Z".into())
        );
        assert_eq!(
            p("10/Oct/2000:13:55:36 -0700] x"),
            Some("2000-10-10T20:55:36.000Z".into())
        );
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "hello",
            "2024-13-01T00:00:00",
            "12345",
            "2024-03-01Tfoo",
            "Marching on",
            "1.2.3.4",
        ] {
            assert_eq!(p(s), None, "{s}");
        }
    }

    #[test]
    fn epochs_and_durations() {
        assert_eq!(parse_field("1700000000", 2024), Some(1_700_000_000_000));
        assert_eq!(parse_field("1700000000123", 2024), Some(1_700_000_000_123));
        assert_eq!(parse_field("1700000000.5", 2024), Some(1_700_000_000_500));
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("x"), None);
    }
}
