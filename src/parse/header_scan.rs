//! The fast path for header templates whose literal parts are plain text (most of Loghub's:
//! `<Date> <Time> <Pid> <Level> <Component>: <Content>`, `\[<Time>\] \[<Level>\] <Content>`).
//!
//! In: the literal parts of a template (once), then one line at a time. Out: the span of every
//! field, exactly what the equivalent regex (`(?P<F>.*?)` per field, runs of spaces as `\s+`)
//! would capture, without a regex: each field ends at the first place its separator matches.
//! Templates with regex syntax in their literals (optional groups, classes) return `None` at
//! compile time and keep the regex. No state.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// One or more whitespace bytes (a run of spaces in the template).
    Space,
    Lit(Vec<u8>),
}

#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    lead: Vec<Seg>,
    /// The separator after each field but the last.
    seps: Vec<Vec<Seg>>,
}

/// Plain literal text → segments; `None` if it uses regex syntax beyond `\x` escapes.
fn segments(lit: &str) -> Option<Vec<Seg>> {
    let mut segs: Vec<Seg> = Vec::new();
    let mut chars = lit.chars();
    let push = |segs: &mut Vec<Seg>, c: char| {
        let mut buf = [0u8; 4];
        let bytes = c.encode_utf8(&mut buf).as_bytes();
        match segs.last_mut() {
            Some(Seg::Lit(v)) => v.extend_from_slice(bytes),
            _ => segs.push(Seg::Lit(bytes.to_vec())),
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if segs.last() != Some(&Seg::Space) {
                    segs.push(Seg::Space);
                }
            }
            '\\' => {
                let e = chars.next()?;
                if e.is_ascii_alphanumeric() {
                    return None; // \s, \d, \w…: a class, not a literal.
                }
                push(&mut segs, e);
            }
            '.' | '^' | '$' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' => {
                return None;
            }
            c => push(&mut segs, c),
        }
    }
    Some(segs)
}

fn is_space(b: u8) -> bool {
    SPACE[b as usize]
}

/// The first whitespace byte, eight bytes at a time: a word with a byte below `!` (0x21) is
/// checked byte by byte against the table, others are skipped whole.
fn next_space(bytes: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x2121_2121_2121_2121;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*word);
        if x.wrapping_sub(LOW) & !x & HIGH != 0
            && let Some(k) = word.iter().position(|&b| SPACE[b as usize])
        {
            return Some(i + k);
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|&b| SPACE[b as usize])
        .map(|k| i + k)
}

static SPACE: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\r' as usize] = true;
    t[0x0b] = true;
    t[0x0c] = true;
    t
};

/// Where `segs` ends if it matches at `at`.
fn match_at(segs: &[Seg], line: &[u8], at: usize) -> Option<usize> {
    let mut cur = at;
    for seg in segs {
        match seg {
            Seg::Space => {
                let n = line[cur..].iter().take_while(|&&b| is_space(b)).count();
                if n == 0 {
                    return None;
                }
                cur += n;
            }
            Seg::Lit(lit) => {
                if !line[cur..].starts_with(lit) {
                    return None;
                }
                cur += lit.len();
            }
        }
    }
    Some(cur)
}

/// The first place at or after `from` where `segs` matches: (start, end).
fn find(segs: &[Seg], line: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while at <= line.len() {
        let start = match segs.first()? {
            Seg::Space => at + next_space(&line[at..])?,
            Seg::Lit(lit) => at + memchr::memmem::find(&line[at..], lit)?,
        };
        if let Some(end) = match_at(segs, line, start) {
            return Some((start, end));
        }
        // A later start inside the same whitespace run would end at the same place.
        let skip = line[start..]
            .iter()
            .take_while(|&&b| is_space(b))
            .count()
            .max(1);
        at = start + skip;
    }
    None
}

impl Scanner {
    /// `literals` has one more entry than there are fields: before the first field, between
    /// fields, after the last. `None` when a literal is not plain text or text follows the last
    /// field.
    pub(crate) fn compile(literals: &[&str]) -> Option<Scanner> {
        let (lead, rest) = literals.split_first()?;
        let (tail, between) = rest.split_last()?;
        if !tail.is_empty() {
            return None;
        }
        let seps = between
            .iter()
            .map(|l| segments(l))
            .collect::<Option<Vec<_>>>()?;
        if seps.iter().any(Vec::is_empty) {
            return None; // two fields back to back: the regex decides by backtracking.
        }
        Some(Scanner {
            lead: segments(lead)?,
            seps,
        })
    }

    /// Fills `spans` with one (start, end) per field; false when the line does not match.
    pub(crate) fn spans(&self, line: &[u8], spans: &mut Vec<(usize, usize)>) -> bool {
        spans.clear();
        let Some(mut pos) = match_at(&self.lead, line, 0) else {
            return false;
        };
        for sep in &self.seps {
            let Some((start, end)) = find(sep, line, pos) else {
                return false;
            };
            spans.push((pos, start));
            pos = end;
        }
        spans.push((pos, line.len()));
        true
    }
}
