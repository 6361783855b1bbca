//! Masking and tokenising messages for template mining.
//!
//! In: a message. Out: its tokens, with variable parts replaced by `<*>`: numbers, hex, UUIDs,
//! IPs, durations and sizes (anything holding a digit), paths, URLs, e-mail addresses and quoted
//! values. Tokens glued by `=`, `:`, `,`, brackets and quotes are split so that `user=alice7`
//! becomes `user=<*>` and not one opaque token. No state; single pass, no regex.

/// The wildcard used in templates (the Loghub convention).
pub const WILDCARD: &str = "<*>";

/// Characters that glue a key to a value, wrap a value, or separate path segments inside one
/// whitespace token (so `/api/orders/17` keeps its route: `/api/orders/<*>`).
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

/// Is this delimiter-free piece a variable?
fn is_variable(piece: &str) -> bool {
    let b = piece.as_bytes();
    // Numbers, hex, ids, IPs, durations, sizes: anything with a digit; e-mail addresses.
    b.iter().any(u8::is_ascii_digit) || (piece.contains('@') && piece.contains('.'))
}

/// Finds the end of a quoted value starting at `b[start]` (a quote), if it closes before a
/// delimiter boundary; returns the index just past the closing quote.
fn quoted_end(b: &[u8], start: usize) -> Option<usize> {
    let q = b[start];
    let close = start + 1 + memchr::memchr(q, &b[start + 1..])?;
    let after = b.get(close + 1).copied();
    (close > start + 1 && after.is_none_or(|c| c == b' ' || c == b'\t' || is_delim(c) || c == b'.'))
        .then_some(close + 1)
}

/// Masks `message` into `out` (cleared first) as whitespace-separated tokens.
pub fn mask_into(message: &str, out: &mut Vec<String>) {
    out.clear();
    let b = message.as_bytes();
    let mut i = 0;
    let mut tok = String::new();
    let mut piece_start = 0;
    // The current token under construction is `tok`; `piece` is the delimiter-free run being read.
    let flush_piece = |tok: &mut String, piece: &str| {
        if piece.is_empty() {
            return;
        }
        if is_variable(piece) {
            if !tok.ends_with(WILDCARD) {
                tok.push_str(WILDCARD);
            }
        } else {
            tok.push_str(piece);
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' {
            flush_piece(&mut tok, &message[piece_start..i]);
            if !tok.is_empty() {
                out.push(std::mem::take(&mut tok));
            }
            i += 1;
            piece_start = i;
            continue;
        }
        if i == piece_start && tok.is_empty() {
            // A URL is one variable: its `:`, `/`, `?` and `=` are not glue between words.
            let end = memchr::memchr2(b' ', b'\t', &b[i..]).map_or(b.len(), |n| i + n);
            if memchr::memmem::find(&b[i..end], b"://").is_some() {
                tok.push_str(WILDCARD);
                i = end;
                piece_start = i;
                continue;
            }
        }
        if (c == b'"' || c == b'\'')
            && (i == piece_start)
            && let Some(end) = quoted_end(b, i)
        {
            // A quoted value is one variable, even when it holds spaces.
            if !tok.ends_with(WILDCARD) {
                tok.push_str(WILDCARD);
            }
            i = end;
            piece_start = i;
            continue;
        }
        if is_delim(c) {
            flush_piece(&mut tok, &message[piece_start..i]);
            tok.push(c as char);
            i += 1;
            piece_start = i;
            continue;
        }
        i += 1;
    }
    flush_piece(&mut tok, &message[piece_start..]);
    if !tok.is_empty() {
        out.push(tok);
    }
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
    fn masks_variables() {
        let cases = [
            (
                "Received block blk_-160 of size 67108864 from /10.250.19.102",
                "Received block <*> of size <*> from /<*>",
            ),
            (
                "GET /api/orders/8812 took 3ms",
                "GET /api/orders/<*> took <*>",
            ),
            ("user=alice7 id=42 ok", "user=<*> id=<*> ok"),
            (
                "opened '/var/log/my app.log' for writing",
                "opened <*> for writing",
            ),
            ("read /var/log/syslog", "read /var/log/syslog"),
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
            ("mail bob@example.com", "mail <*>"),
            ("[main] done, 3 left", "[main] done, <*> left"),
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
        ] {
            let once = mask_line(s);
            assert_eq!(mask_line(&once), once, "{s}");
        }
    }
}
