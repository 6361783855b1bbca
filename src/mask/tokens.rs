//! Token hashing for the miner: per-token hashes and flags, and the positional sequence hash
//! from which every lookup key (exact line, wildcard pattern, skeleton) is derived in O(1) per
//! position.
//!
//! In: masked tokens (strings, or bytes from the masking scanner). Out: `Tok`s and 64-bit
//! hashes. No state besides the table of powers. The hash is positional and polynomial,
//! `H = Σ h_i · P^i`, so replacing the token at position `q` by another is
//! `H + (h' − h_q) · P^q`.

use super::{Sink, WILDCARD, is_unit};
use crate::core::hash::LineKey;
use crate::core::hash::stable_hash;

/// 128-bit multiply, folded: the mixing step of wyhash.
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Hash of one token. Most tokens are short: up to 16 bytes take two overlapping reads and one
/// multiply (wyhash's short-input path); longer ones go to xxh3. Stable across runs and
/// platforms (little-endian reads), which the partition key needs.
pub fn token_hash(b: &[u8]) -> u64 {
    const S0: u64 = 0xa076_1d64_78bd_642f;
    const S1: u64 = 0xe703_7ed1_a0b4_28db;
    let n = b.len();
    let (lo, hi) = if n > 16 {
        return stable_hash(b);
    } else if n >= 8 {
        let head = b.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w));
        let tail = b.last_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w));
        (head, tail)
    } else if n >= 4 {
        let head = b.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
        let tail = b.last_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
        (u64::from(head), u64::from(tail))
    } else if n > 0 {
        (
            u64::from(b[0]) << 16 | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]),
            0,
        )
    } else {
        (0, 0)
    };
    mum(lo ^ S0, hi ^ S1 ^ n as u64)
}

/// The multiplier of the positional hash (odd, so multiplication is invertible mod 2^64).
const P: u64 = 0x9e37_79b9_7f4a_7c15;

/// A masked token as the miner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tok {
    pub hash: u64,
    /// Exactly `<*>`.
    pub wild: bool,
    /// Only variables and punctuation (`<*>:<*>`, `(<*>)`): carries no constant word.
    pub var_only: bool,
    /// Has a letter outside its variables (a word, not a symbol like `****`).
    pub letter: bool,
    /// Contains a variable (`user=<*>`).
    pub has_wild: bool,
    /// Starts with `(` or `[`, or holds one after a word (`LOCAL(<*>)`).
    pub opens: bool,
    /// Ends with `)` or `]` (perhaps followed by one of `:,;.`).
    pub closes: bool,
    /// A name ending with one `:` (`worker7:`, `<*>:`): the subject of a `who: what` message.
    pub subject: bool,
    /// The quotes and brackets around the token (`'…'.`, `(…)`), hashed: a quoted variable
    /// `'<*>'.` stands for any token in the same frame.
    pub frame: u16,
    /// A unit word (`bytes`, `ms`): the masker joins it to a number before it, so after a
    /// variable it may be there or not.
    pub unit: bool,
}

impl Tok {
    pub fn of(bytes: &[u8]) -> Tok {
        let w = WILDCARD.as_bytes();
        let mut letter = false;
        let mut alnum = false;
        let mut has_wild = false;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(w) {
                has_wild = true;
                i += w.len();
                continue;
            }
            letter |= bytes[i].is_ascii_alphabetic();
            alnum |= bytes[i].is_ascii_alphanumeric();
            i += 1;
        }
        let body = match bytes.last() {
            Some(b':' | b',' | b';' | b'.') => &bytes[..bytes.len() - 1],
            _ => bytes,
        };
        Tok {
            hash: token_hash(bytes),
            wild: bytes == w,
            var_only: has_wild && !alnum,
            letter,
            has_wild,
            opens: memchr::memchr2(b'(', b'[', bytes).is_some(),
            closes: matches!(body.last(), Some(b')' | b']')),
            frame: frame(bytes),
            unit: is_unit(bytes),
            subject: bytes.len() > 1
                && bytes.last() == Some(&b':')
                && memchr::memchr(b':', body).is_none(),
        }
    }

    pub fn wildcard() -> Tok {
        Tok::of(WILDCARD.as_bytes())
    }
}

/// Hash of a token's leading quotes and brackets and its trailing ones with punctuation.
fn frame(bytes: &[u8]) -> u16 {
    let lead = bytes
        .iter()
        .take_while(|b| matches!(b, b'\'' | b'"' | b'(' | b'[' | b'{'))
        .count();
    let trail = bytes[lead..]
        .iter()
        .rev()
        .take_while(|b| {
            matches!(
                b,
                b'\'' | b'"' | b')' | b']' | b'}' | b'.' | b',' | b';' | b':'
            )
        })
        .count();
    let mut h: u16 = 1;
    for &b in bytes[..lead]
        .iter()
        .chain(b"|")
        .chain(&bytes[bytes.len() - trail..])
    {
        h = h.wrapping_mul(31).wrapping_add(u16::from(b));
    }
    h
}

/// The hash that stands for "this position is left out" in skeleton keys.
pub fn mark_hash() -> u64 {
    stable_hash(b"\x00skeleton-slot\x00")
}

/// Powers of `P`, grown on demand.
#[derive(Default)]
pub struct Powers(Vec<u64>);

impl Powers {
    pub fn get(&mut self, n: usize) -> &[u64] {
        if self.0.is_empty() {
            self.0.push(1);
        }
        while self.0.len() < n {
            let last = *self.0.last().unwrap_or(&1);
            self.0.push(last.wrapping_mul(P));
        }
        &self.0[..n]
    }
}

/// `Σ h_i · P^i` over the token hashes.
pub fn seq_hash(hashes: impl Iterator<Item = u64>, pow: &[u64]) -> u64 {
    hashes
        .zip(pow)
        .fold(0u64, |acc, (h, p)| acc.wrapping_add(h.wrapping_mul(*p)))
}

/// A masking sink that computes the `LineKey` without building strings (the fast path).
pub struct KeySink<'a> {
    pow: &'a mut Powers,
    key: LineKey,
    partition: PartitionSink,
}

impl<'a> KeySink<'a> {
    pub fn new(pow: &'a mut Powers) -> KeySink<'a> {
        KeySink {
            pow,
            key: LineKey::default(),
            partition: PartitionSink::default(),
        }
    }

    pub fn finish(self) -> LineKey {
        LineKey {
            partition: self.partition.finish(),
            ..self.key
        }
    }
}

impl Sink for KeySink<'_> {
    fn token(&mut self, token: &[u8]) {
        let i = self.key.len as usize;
        let p = self.pow.get(i + 1)[i];
        self.key.seq = self.key.seq.wrapping_add(token_hash(token).wrapping_mul(p));
        self.key.len += 1;
        self.partition.token(token);
    }
}

/// The partition of a `LineKey`: the hash of the first token without a variable (of the empty
/// string when there is none). Full once it has it.
#[derive(Default)]
pub struct PartitionSink(Option<u64>);

impl PartitionSink {
    pub fn finish(self) -> u64 {
        self.0.unwrap_or_else(|| stable_hash(b""))
    }
}

impl Sink for PartitionSink {
    fn token(&mut self, token: &[u8]) {
        if self.0.is_none() && memchr::memmem::find(token, WILDCARD.as_bytes()).is_none() {
            self.0 = Some(token_hash(token));
        }
    }

    fn full(&self) -> bool {
        self.0.is_some()
    }
}

/// The `LineKey` of already masked tokens (must agree with `KeySink`).
pub fn line_key(tokens: &[String], pow: &mut Powers) -> LineKey {
    let mut sink = KeySink::new(pow);
    for t in tokens {
        sink.token(t.as_bytes());
    }
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{Masker, mask};

    #[test]
    fn key_sink_agrees_with_strings() {
        let mut pow = Powers::default();
        for line in [
            "Received block blk_1 of size 12 from /10.0.0.1",
            "<*> only vars 17",
            "",
            "a b c",
            "took 12 ms, then 7 s; ok",
            "17 ms, 9 KB) left",
            "<*> <*>:<*> 3 s",
        ] {
            let mut sink = KeySink::new(&mut pow);
            Masker::default().mask(line, &mut sink);
            let fast = sink.finish();
            assert_eq!(fast, line_key(&mask(line), &mut pow), "{line}");
        }
    }

    #[test]
    fn flags() {
        assert!(
            Tok::of(b"<*>").wild && Tok::of(b"<*>:<*>").var_only && !Tok::of(b"user=<*>").var_only
        );
        assert!(Tok::of(b"ns.example.com").letter && !Tok::of(b"****").letter);
    }
}
