//! Masking and tokenising messages for template mining.
//!
//! In: a message. Out: its tokens, with the parts that are variables by their form replaced by
//! `<*>`: numbers, hex, IPs, ids with several digit runs, dates (month and weekday names), URLs,
//! file paths; a unit after a number (`16.0 KB`, `12 ms`) joins the number. Tokens glued by `=`,
//! `:`, `,`, brackets, quotes, `/` and dotted leaders are split into pieces; the piece after
//! `=` (or after `:` in a glued list of pairs, `k:v;k:v`) is a value, so `user=alice7` and
//! `enabled=true` become `user=<*>` and `enabled=<*>` (a value holding `=` itself, a nested
//! map or padding, is one value to the token's end), and `instruction......0` becomes
//! `instruction......<*>`; a run of variables (`blk_1 blk_2 blk_3`) becomes one `<*>`. Words are left alone: whether a word is a
//! variable is decided by the miner from how many different words share its slot.
//!
//! One scanner feeds a `Sink`: the miner's string sink and the hash-only sink of the fast path
//! see exactly the same tokens. No state besides reusable buffers.

pub mod tokens;

/// The wildcard used in templates (the Loghub convention).
pub const WILDCARD: &str = "<*>";

/// Month and weekday names: always part of a date, so variables. `lower` is lowercase.
fn date_word(lower: &[u8]) -> bool {
    matches!(
        lower,
        b"mon"
            | b"tue"
            | b"wed"
            | b"thu"
            | b"fri"
            | b"sat"
            | b"sun"
            | b"jan"
            | b"feb"
            | b"mar"
            | b"apr"
            | b"may"
            | b"jun"
            | b"jul"
            | b"aug"
            | b"sep"
            | b"oct"
            | b"nov"
            | b"dec"
            | b"monday"
            | b"tuesday"
            | b"wednesday"
            | b"thursday"
            | b"friday"
            | b"saturday"
            | b"sunday"
            | b"january"
            | b"february"
            | b"march"
            | b"april"
            | b"june"
            | b"july"
            | b"august"
            | b"september"
            | b"october"
            | b"november"
            | b"december"
    )
}

/// Units that belong to the number before them. `lower` is lowercase.
fn unit_word(lower: &[u8]) -> bool {
    matches!(
        lower,
        b"b" | b"kb"
            | b"mb"
            | b"gb"
            | b"tb"
            | b"kib"
            | b"mib"
            | b"gib"
            | b"bytes"
            | b"ms"
            | b"us"
            | b"ns"
            | b"s"
            | b"sec"
            | b"secs"
            | b"seconds"
            | b"min"
            | b"mins"
            | b"minutes"
            | b"h"
            | b"hrs"
            | b"hours"
            | b"%"
    )
}

/// `word` lowercased into `buf` when it is short enough to be a date word or unit.
fn lowered<'a>(word: &[u8], buf: &'a mut [u8; 9]) -> Option<&'a [u8]> {
    if word.is_empty() || word.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(word) {
        *d = s.to_ascii_lowercase();
    }
    Some(&buf[..word.len()])
}

/// Receives the masked tokens of one message, in order.
pub trait Sink {
    fn token(&mut self, token: &[u8]);

    /// The sink has what it needs: masking may stop before the end of the message.
    fn full(&self) -> bool {
        false
    }
}

const DELIM: u8 = 1;
const DIGIT: u8 = 2;
const HEXISH: u8 = 4;
const ALPHA: u8 = 8;
const SLASH: u8 = 16;

/// Byte classes: delimiters glue pieces together inside one whitespace-separated token; hexish
/// bytes make up numbers, hex and ids (`0x1f`, `10.0.0.1`, `12-ab_3`).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let delims = b"=:,;()[]{}<>\"'|/";
    let mut i = 0;
    while i < delims.len() {
        t[delims[i] as usize] |= DELIM;
        i += 1;
    }
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_digit() {
            t[b] |= DIGIT | HEXISH;
        }
        if c.is_ascii_hexdigit() {
            t[b] |= HEXISH;
        }
        if c.is_ascii_alphabetic() {
            t[b] |= ALPHA;
        }
        b += 1;
    }
    let hexish = b".-_x+#*";
    let mut i = 0;
    while i < hexish.len() {
        t[hexish[i] as usize] |= HEXISH;
        i += 1;
    }
    t[b'/' as usize] |= SLASH;
    t[b'\\' as usize] |= SLASH;
    t
};

/// A unit word (`ms`, `bytes`, `KB`), which joins a number before it.
pub(crate) fn is_unit(word: &[u8]) -> bool {
    let mut buf = [0u8; 9];
    lowered(word, &mut buf).is_some_and(unit_word)
}

/// What the scanner learns about a piece while looking for its end.
#[derive(Clone, Copy)]
struct Stats {
    digits: u32,
    runs: u32,
    run: u32,
    longest: u32,
    /// AND of the classes of all bytes.
    all: u8,
}

impl Stats {
    const EMPTY: Stats = Stats {
        digits: 0,
        runs: 0,
        run: 0,
        longest: 0,
        all: 0xff,
    };

    fn add(&mut self, class: u8) {
        if class & DIGIT != 0 {
            self.digits += 1;
            self.runs += u32::from(self.run == 0);
            self.run += 1;
            self.longest = self.longest.max(self.run);
        } else {
            self.run = 0;
        }
        self.all &= class;
    }
}

/// Is this delimiter-free piece a variable by its form?
fn is_variable(piece: &[u8], st: &Stats) -> bool {
    if st.digits == 0 {
        let mut buf = [0u8; 9];
        return st.all & ALPHA != 0 && lowered(piece, &mut buf).is_some_and(date_word);
    }
    // A number with its unit glued on: `12ms`, `3.5KB`, `80%`.
    let num = piece
        .iter()
        .take_while(|&&b| b.is_ascii_digit() || b == b'.')
        .count();
    if piece[0].is_ascii_digit() && num < piece.len() && is_unit(&piece[num..]) {
        return true;
    }
    st.all & HEXISH != 0 || st.runs >= 2 || st.longest >= 3
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

/// Whether a value after `=` holds another `=` before its first `,` or `;`.
fn nested(value: &[u8]) -> bool {
    let end = memchr::memchr2(b',', b';', value).unwrap_or(value.len());
    memchr::memchr(b'=', &value[..end]).is_some()
}

fn ends_with_wild(t: &[u8]) -> bool {
    t.ends_with(WILDCARD.as_bytes())
}

impl Masker {
    /// Masks `message`, feeding every token to `sink`.
    pub fn mask(&mut self, message: &str, sink: &mut impl Sink) {
        self.has_prev = false;
        self.prev.clear();
        if message.is_ascii() {
            let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
            for tok in message.as_bytes().split(ws).filter(|t| !t.is_empty()) {
                self.token(tok, sink);
                if sink.full() {
                    return;
                }
            }
        } else {
            for tok in message.split_whitespace() {
                self.token(tok.as_bytes(), sink);
                if sink.full() {
                    return;
                }
            }
        }
        if self.has_prev {
            sink.token(&self.prev);
        }
    }

    fn token(&mut self, tok: &[u8], sink: &mut impl Sink) {
        self.cur.clear();
        let slashes = self.pieces(tok);
        if slashes && (memchr::memmem::find(tok, b"://").is_some() || is_path(tok)) {
            self.cur.clear();
            self.cur.extend_from_slice(WILDCARD.as_bytes());
        }
        self.push(sink);
    }

    /// Builds the masked form of one whitespace token into `cur`, in one pass; returns whether
    /// the token holds a slash or backslash (it may then be a URL or a path).
    fn pieces(&mut self, tok: &[u8]) -> bool {
        let (mut start, mut i, mut slashes) = (0, 0, 0u8);
        let mut st = Stats::EMPTY;
        // The piece after `=` is a value; so is the piece after `:` in a glued list of pairs
        // (`k:v;k:v`, `a:1,b:2`; a trailing `,` or `;` makes no list).
        let pairs = memchr::memchr_iter(b':', tok).nth(1).is_some()
            && memchr::memchr2_iter(b';', b',', tok)
                .any(|i| tok[i + 1..].iter().any(|&c| CLASS[c as usize] & DELIM == 0));
        let mut value = false;
        while i < tok.len() {
            let b = tok[i];
            let class = CLASS[b as usize];
            slashes |= class & SLASH;
            let dots = b == b'.' && tok.get(i + 1) == Some(&b'.');
            if class & DELIM != 0 || dots {
                self.piece(&tok[start..i], &st, value);
                value = b == b'=' || (pairs && b == b':');
                if b == b'=' && nested(&tok[i + 1..]) {
                    // `args=a=1,b=2`, `sig=YWJj==`: the value holds `=` itself, a nested map
                    // or padding: the rest of the token is one value.
                    self.cur.push(b'=');
                    self.piece(WILDCARD.as_bytes(), &st, true);
                    return slashes != 0;
                }
                let n = if dots {
                    tok[i..].iter().take_while(|&&c| c == b'.').count()
                } else {
                    1
                };
                self.cur.extend_from_slice(&tok[i..i + n]);
                i += n;
                start = i;
                st = Stats::EMPTY;
            } else {
                st.add(class);
                i += 1;
            }
        }
        self.piece(&tok[start..], &st, value);
        slashes != 0
    }

    fn piece(&mut self, piece: &[u8], st: &Stats, value: bool) {
        if piece.is_empty() {
            return;
        }
        if value || is_variable(piece, st) {
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
            // `12 ms,` and `16.0 KB)` join; `52211 s-1` and `/x1 s/17` do not: `<*>-1` and
            // `/<*>/<*>` would mask again to `<*>`, and masking must be idempotent.
            let tail_is_punct = self.cur[alpha..]
                .iter()
                .all(|b| matches!(b, b',' | b'.' | b';' | b':' | b')' | b']' | b'}' | b'\''));
            if alpha > 0 && tail_is_punct && is_unit(&self.cur[..alpha]) {
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
    mask_with(message, out);
}

/// Masks `message` into `sink` with this thread's masker (its buffers are reused).
pub fn mask_with(message: &str, sink: &mut impl Sink) {
    thread_local! {
        static MASKER: std::cell::RefCell<Masker> = std::cell::RefCell::default();
    }
    MASKER.with_borrow_mut(|m| m.mask(message, sink));
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
mod tests;
