//! Masking and tokenising messages for template mining.
//!
//! In: a message. Out: its tokens, with the parts that are variables by their form replaced by
//! `<*>`: numbers, hex, IPs, ids with several digit runs, dates (month and weekday names), URLs,
//! file paths; a unit after a number (`16.0 KB`, `12 ms`) joins the number. Tokens glued by `=`,
//! `:`, `,`, brackets, quotes, `/` and dotted leaders are split into pieces, so `user=alice7`
//! becomes `user=<*>` and `instruction......0` becomes `instruction......<*>`; a run of
//! variables (`blk_1 blk_2 blk_3`) becomes one `<*>`. Words are left alone: whether a word is a
//! variable is decided by the miner from how many different words share its slot.
//!
//! One scanner feeds a `Sink`: the miner's string sink and the hash-only sink of the fast path
//! see exactly the same tokens. No state besides reusable buffers.

/// The wildcard used in templates (the Loghub convention).
pub const WILDCARD: &str = "<*>";

/// Month and weekday names: always part of a date, so variables.
const DATE_WORDS: &[&str] = &[
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Units that belong to the number before them.
const UNITS: &[&str] = &[
    "b", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "bytes", "ms", "us", "ns", "s", "sec",
    "secs", "seconds", "min", "mins", "minutes", "h", "hrs", "hours", "%",
];

/// Receives the masked tokens of one message, in order.
pub trait Sink {
    fn token(&mut self, token: &[u8]);
}

/// Characters that glue pieces together inside one whitespace-separated token.
fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'=' | b':'
            | b','
            | b';'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'<'
            | b'>'
            | b'"'
            | b'\''
            | b'|'
            | b'/'
    )
}

fn is_hexish(b: u8) -> bool {
    b.is_ascii_hexdigit() || matches!(b, b'.' | b'-' | b'_' | b'x' | b'+' | b'#' | b'*')
}

fn in_list(word: &[u8], list: &[&str]) -> bool {
    word.len() <= 9 && list.iter().any(|w| w.as_bytes().eq_ignore_ascii_case(word))
}

/// Is this delimiter-free piece a variable by its form?
fn is_variable(piece: &[u8]) -> bool {
    if in_list(piece, DATE_WORDS) {
        return true;
    }
    // A number with its unit glued on: `12ms`, `3.5KB`, `80%`.
    let num = piece
        .iter()
        .take_while(|&&b| b.is_ascii_digit() || b == b'.')
        .count();
    if num > 0 && piece[0].is_ascii_digit() && num < piece.len() && in_list(&piece[num..], UNITS) {
        return true;
    }
    let (mut runs, mut longest, mut run, mut digits) = (0, 0, 0, false);
    for &b in piece {
        if b.is_ascii_digit() {
            digits = true;
            if run == 0 {
                runs += 1;
            }
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    digits && (piece.iter().all(|&b| is_hexish(b)) || runs >= 2 || longest >= 3)
}

/// `/a/b`, `./a/b`, `~/a/b` or `C:\…`, once surrounding quotes and brackets are stripped.
fn is_path(tok: &[u8]) -> bool {
    let strip = |b: &u8| matches!(b, b'\'' | b'"' | b'[' | b']' | b'(' | b')' | b',' | b';');
    let start = tok.iter().position(|b| !strip(b)).unwrap_or(tok.len());
    let end = tok.iter().rposition(|b| !strip(b)).map_or(start, |e| e + 1);
    let t = &tok[start..end.max(start)];
    let slashes = t.iter().filter(|&&b| b == b'/').count();
    ((t.starts_with(b"/") || t.starts_with(b"./") || t.starts_with(b"~/")) && slashes >= 2)
        || (t.len() >= 3 && t[0].is_ascii_alphabetic() && t[1] == b':' && t[2] == b'\\')
}

/// The masking scanner with its reusable buffers.
#[derive(Default)]
pub struct Masker {
    /// The previous output token, held back because a unit may still join it.
    prev: Vec<u8>,
    has_prev: bool,
    cur: Vec<u8>,
}

fn ends_with_wild(t: &[u8]) -> bool {
    t.ends_with(WILDCARD.as_bytes())
}

impl Masker {
    /// Masks `message`, feeding every token to `sink`.
    pub fn mask(&mut self, message: &str, sink: &mut impl Sink) {
        self.has_prev = false;
        self.prev.clear();
        for tok in message.split_whitespace() {
            let tok = tok.as_bytes();
            self.cur.clear();
            if memchr::memmem::find(tok, b"://").is_some() || is_path(tok) {
                self.cur.extend_from_slice(WILDCARD.as_bytes());
            } else {
                self.pieces(tok);
            }
            self.push(sink);
        }
        if self.has_prev {
            sink.token(&self.prev);
        }
    }

    /// Builds the masked form of one whitespace token into `cur`.
    fn pieces(&mut self, tok: &[u8]) {
        let mut start = 0;
        let mut i = 0;
        while i < tok.len() {
            let b = tok[i];
            let dots = if b == b'.' {
                tok[i..].iter().take_while(|&&c| c == b'.').count()
            } else {
                0
            };
            if is_delim(b) || dots >= 2 {
                self.piece(&tok[start..i]);
                let n = dots.max(1);
                self.cur.extend_from_slice(&tok[i..i + n]);
                i += n;
                start = i;
            } else {
                i += 1;
            }
        }
        self.piece(&tok[start..]);
    }

    fn piece(&mut self, piece: &[u8]) {
        if piece.is_empty() {
            return;
        }
        if is_variable(piece) {
            if !ends_with_wild(&self.cur) {
                self.cur.extend_from_slice(WILDCARD.as_bytes());
            }
        } else {
            self.cur.extend_from_slice(piece);
        }
    }

    /// Applies the rules that look at the previous token (units, runs of variables), then
    /// emits the previous token and holds this one back.
    fn push(&mut self, sink: &mut impl Sink) {
        if self.has_prev && ends_with_wild(&self.prev) {
            let alpha = self
                .cur
                .iter()
                .take_while(|&&b| b.is_ascii_alphabetic() || b == b'%')
                .count();
            if alpha > 0 && in_list(&self.cur[..alpha], UNITS) {
                let rest = self.cur[alpha..].to_vec();
                self.prev.extend_from_slice(&rest);
                return;
            }
        }
        if self.has_prev && self.cur == WILDCARD.as_bytes() && self.prev == WILDCARD.as_bytes() {
            return;
        }
        if self.has_prev {
            sink.token(&self.prev);
        }
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.has_prev = true;
    }
}

/// Collects tokens as strings.
impl Sink for Vec<String> {
    fn token(&mut self, token: &[u8]) {
        self.push(String::from_utf8_lossy(token).into_owned());
    }
}

/// Masks `message` into `out` (cleared first).
pub fn mask_into(message: &str, out: &mut Vec<String>) {
    out.clear();
    Masker::default().mask(message, out);
}

/// Convenience: the masked tokens of a message.
pub fn mask(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    mask_into(message, &mut out);
    out
}

/// Masks a message into one string (tokens joined by single spaces).
pub fn mask_line(message: &str) -> String {
    mask(message).join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_by_form() {
        let cases = [
            (
                "Received block blk_-160 of size 67108864 from /10.250.19.102",
                "Received block <*> of size <*> from /<*>",
            ),
            ("user=alice7 id=42 ok", "user=alice7 id=<*> ok"),
            (
                "GET https://example.com/a?b=c took 12ms",
                "GET <*> took <*>",
            ),
            (
                "uuid 123e4567-e89b-12d3-a456-426614174000 at 0x7ffe1a",
                "uuid <*> at <*>",
            ),
            (
                "connect(10.0.0.1:5432) failed: refused",
                "connect(<*>:<*>) failed: refused",
            ),
            (
                "estimated size 16.0 KB, free 1.2 MB)",
                "estimated size <*>, free <*>)",
            ),
            (
                "program interrupt: illegal instruction......0",
                "program interrupt: illegal instruction......<*>",
            ),
            (
                "connection at Fri Jul 1 12:00:01 2005",
                "connection at <*> <*>:<*>:<*> <*>",
            ),
            ("read /var/log/syslog and ./a/b", "read <*> and <*>"),
            (
                "interface ee0 alt0 node-246 R02-M1-N0",
                "interface <*> alt0 <*>",
            ),
            ("delete blk_1234 blk_5678 blk_9012", "delete <*>"),
            (
                "ask 10.0.0.1:50010 to delete 1234 5678 9012",
                "ask <*>:<*> to delete <*>",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(mask_line(input), want, "{input}");
        }
    }

    #[test]
    fn idempotent_on_samples() {
        for s in [
            "a=1 b='x y' /p/q c",
            "<*> <*>",
            "x:\"y\"",
            "'unterminated quote",
            "é=1 ü",
            "3 KB 4 ms",
        ] {
            let once = mask_line(s);
            assert_eq!(mask_line(&once), once, "{s}");
        }
    }
}
