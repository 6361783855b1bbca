//! Aligning a line with a template whose length may differ: the miner's test of "the same event
//! with other values", when the values are words, take a varying number of tokens, or are left
//! out.
//!
//! In: two token sequences (`Tok`s) and, for each position, whether its token is *rare* (the
//! miner's statistic: a value seen once). Out: the best alignment, when there is one that only
//! ever lets a rare token or a wildcard differ: how many constant tokens it keeps, how many
//! tokens it had to call variables, and which positions on each side become `<*>`. No state;
//! pure and cheap (a dynamic programme over at most `MAX_LEN`² cells).
//!
//! Steps of the alignment, left to right:
//! - equal tokens: kept;
//! - a template `<*>` against a wildcard or a rare token (any token when the lengths are
//!   equal), or a quoted `'<*>'` against a rare token in the same quotes: absorbed, free; a common word does not slide into a wildcard because a `<*>` was
//!   left out next to it;
//! - a line `<*>` against a rare template token, or two rare tokens: one variable (an op);
//! - a bracketed group holding a variable, on either side, against nothing: an op (an
//!   optional part: `(retry <*>)`, `LOCAL(<*>)`, `[<*>]`);
//! - a token of either side against nothing: a rare token is an op (a value that takes one
//!   more token), a wildcard next to another variable part is free (`qa <*>` against `qb`),
//!   anything else is not allowed.

use crate::mask::tokens::Tok;

/// Longest sequences that are aligned (longer lines only match by equal length).
pub const MAX_LEN: usize = 64;

/// The outcome of `align`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alignment {
    /// Equal constant tokens.
    pub kept: u32,
    /// Kept tokens with a letter.
    pub letters: u32,
    /// Tokens called variables (rare tokens replaced or added).
    pub ops: u32,
    /// Variable parts: when the lengths match but for optional groups, a run of substituted
    /// tokens is one (`( qa qb qc )` against `( qd qe qf )`); otherwise every op is one.
    pub parts: u32,
    /// An op at the first position of either side.
    pub first: bool,
    /// Positions of the line that become `<*>`.
    pub line_wild: Vec<usize>,
    /// Positions of the template that become `<*>`.
    pub tpl_wild: Vec<usize>,
}

impl Alignment {
    /// Enough constants to say this is one event (a line that fits a template's wildcards with
    /// no op is one too): a word kept, at least as many constants kept
    /// as variable parts, and more context when the first token is one of them (a
    /// first word is often the event's verb or program: `startup`/`shutdown succeeded`).
    pub fn convincing(&self) -> bool {
        self.letters >= 1 && self.kept >= self.parts && (!self.first || self.kept >= 3)
    }
}

const NEG: i32 = i32::MIN / 2;
/// A kept token outweighs any number of ops (at most 2 · MAX_LEN).
const KEEP: i32 = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    None,
    Keep,
    Absorb,
    Both,
    Line,
    Tpl,
    /// A group of the line (of so many tokens) left out.
    LineGroup(u8),
    TplGroup(u8),
}

/// Longest optional group, in tokens.
const MAX_GROUP: usize = 4;

/// For each position, the length of the bracketed group holding a variable that starts there
/// (`(retry <*>)`: 2; `LOCAL(<*>)`: 1), or 0.
fn groups(toks: &[Tok]) -> Vec<u8> {
    (0..toks.len())
        .map(|i| {
            if !toks[i].opens {
                return 0;
            }
            let mut wild = false;
            for (k, t) in toks[i..].iter().enumerate().take(MAX_GROUP) {
                wild |= t.has_wild;
                if t.closes {
                    return if wild { k as u8 + 1 } else { 0 };
                }
                if k > 0 && t.opens {
                    return 0;
                }
            }
            0
        })
        .collect()
}

/// Which wildcards may stand against nothing: those next to another variable part (a value
/// that took one token more on this side: `qa <*>` against `qb`). A lone wildcard always
/// takes a token: `rhost=<*> <*>` and `rhost=<*>` are two events. A unit after a variable
/// may be left out too, as an op: the masker joins it to a number (`<*> bytes` against `<*>`).
fn gaps(toks: &[Tok], rare: &[bool]) -> Vec<bool> {
    let var = |i: usize| toks[i].wild || rare[i];
    (0..toks.len())
        .map(|i| {
            let next_to_var = (i > 0 && var(i - 1)) || (i + 1 < toks.len() && var(i + 1));
            (toks[i].wild && next_to_var) || (toks[i].unit && i > 0 && var(i - 1))
        })
        .collect()
}

/// The best alignment of `line` with `tpl` (most constants kept, then fewest ops), if every
/// difference is a rare token or a wildcard.
pub fn align(
    line: &[Tok],
    tpl: &[Tok],
    line_rare: impl Fn(usize) -> bool,
    tpl_rare: impl Fn(usize) -> bool,
) -> Option<Alignment> {
    let (m, n) = (line.len(), tpl.len());
    if m > MAX_LEN || n > MAX_LEN || m == 0 || n == 0 {
        return None;
    }
    let w = n + 1;
    let mut score = vec![NEG; (m + 1) * w];
    let mut step = vec![Step::None; (m + 1) * w];
    score[0] = 0;
    let lr: Vec<bool> = (0..m).map(&line_rare).collect();
    let tr: Vec<bool> = (0..n).map(&tpl_rare).collect();
    let (lg, tg) = (gaps(line, &lr), gaps(tpl, &tr));
    let (lgr, tgr) = (groups(line), groups(tpl));
    for i in 0..=m {
        for j in 0..=n {
            let here = score[i * w + j];
            if here == NEG {
                continue;
            }
            let mut relax = |ii: usize, jj: usize, add: i32, s: Step| {
                let at = ii * w + jj;
                if here + add > score[at] {
                    score[at] = here + add;
                    step[at] = s;
                }
            };
            if i < m && j < n {
                let (a, t) = (line[i], tpl[j]);
                let framed = t.var_only && lr[i] && a.frame == t.frame;
                if (t.wild && (a.wild || lr[i] || m == n)) || framed {
                    relax(i + 1, j + 1, 0, Step::Absorb);
                } else if a.hash == t.hash {
                    relax(i + 1, j + 1, KEEP, Step::Keep);
                } else if (a.wild || lr[i]) && tr[j] {
                    relax(i + 1, j + 1, -1, Step::Both);
                }
            }
            if i < m && (lg[i] || lr[i]) {
                relax(i + 1, j, -i32::from(!line[i].wild), Step::Line);
            }
            if j < n && (tg[j] || tr[j]) {
                relax(i, j + 1, -i32::from(!tpl[j].wild), Step::Tpl);
            }
            if i < m && lgr[i] > 0 {
                relax(i + lgr[i] as usize, j, -1, Step::LineGroup(lgr[i]));
            }
            if j < n && tgr[j] > 0 {
                relax(i, j + tgr[j] as usize, -1, Step::TplGroup(tgr[j]));
            }
        }
    }
    if score[m * w + n] == NEG {
        return None;
    }
    let mut out = Alignment::default();
    let (mut i, mut j) = (m, n);
    // Per side: a group left out, a token left out.
    let (mut group, mut dropped) = ([false; 2], [false; 2]);
    let mut in_part = false;
    while i > 0 || j > 0 {
        let ops = out.ops;
        let st = step[i * w + j];
        match st {
            Step::Keep => {
                i -= 1;
                j -= 1;
                out.kept += 1;
                out.letters += u32::from(line[i].letter);
            }
            Step::Absorb => {
                i -= 1;
                j -= 1;
                if !line[i].wild {
                    out.line_wild.push(i);
                }
            }
            Step::Both => {
                i -= 1;
                j -= 1;
                out.ops += 1;
                // `who: what` with another who is the same event; any other first word may
                // be the event's verb.
                let subjects = i == 0 && j == 0 && line[0].subject && tpl[0].subject;
                out.first |= (i == 0 || j == 0) && !subjects;
                if !line[i].wild {
                    out.line_wild.push(i);
                }
                out.tpl_wild.push(j);
            }
            Step::Line => {
                i -= 1;
                if !line[i].wild {
                    dropped[0] = true;
                    out.ops += 1;
                    out.first |= i == 0;
                    out.line_wild.push(i);
                }
            }
            Step::Tpl => {
                j -= 1;
                if !tpl[j].wild {
                    dropped[1] = true;
                    out.ops += 1;
                    out.first |= j == 0;
                    out.tpl_wild.push(j);
                }
            }
            Step::LineGroup(k) => {
                group[0] = true;
                i -= k as usize;
                out.ops += 1;
                out.first |= i == 0;
                out.line_wild
                    .extend((i..i + k as usize).filter(|&p| !line[p].wild));
            }
            Step::TplGroup(k) => {
                group[1] = true;
                j -= k as usize;
                out.ops += 1;
                out.first |= j == 0;
                out.tpl_wild
                    .extend((j..j + k as usize).filter(|&p| !tpl[p].wild));
            }
            Step::None => return None,
        }
        // A run of substitutions is one part; a token added or left out is one each.
        if out.ops > ops {
            out.parts += u32::from(!(in_part && st == Step::Both));
        }
        if st != Step::Absorb {
            in_part = st == Step::Both;
        }
    }
    if (group[0] && (group[1] || dropped[1])) || (group[1] && dropped[0]) {
        // One group in place of another (`by (uid=<*>)`, `by LOGIN(uid=<*>)`) is a different
        // part, not an optional one.
        return None;
    }
    if dropped[0] || dropped[1] {
        // Where a value took more tokens on one side, each differing token counts: a run of
        // words against a shorter run is as likely another event (`Initializing CPU#<*>`,
        // `Initializing Cryptographic API`).
        out.parts = out.ops;
    }
    out.line_wild.sort_unstable();
    out.tpl_wild.sort_unstable();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        s.split(' ').map(|t| Tok::of(t.as_bytes())).collect()
    }

    /// Rare: tokens starting with `q` (the tests' stand-in for "seen once").
    fn rare(t: &[Tok], s: &str) -> Vec<bool> {
        let _ = t;
        s.split(' ').map(|w| w.starts_with('q')).collect()
    }

    fn run(a: &str, b: &str) -> Option<Alignment> {
        let (ta, tb) = (toks(a), toks(b));
        let (ra, rb) = (rare(&ta, a), rare(&tb, b));
        align(&ta, &tb, |i| ra[i], |j| rb[j])
    }

    #[test]
    fn rare_words_are_variables_at_any_length() {
        let al = run("open qa qb for user qc", "open qd for user qe").expect("aligns");
        assert_eq!((al.kept, al.ops), (3, 3));
        assert_eq!(al.line_wild, vec![1, 2, 5]);
        assert_eq!(al.tpl_wild, vec![1, 4]);
        assert!(al.convincing());
    }

    #[test]
    fn common_words_never_differ() {
        assert_eq!(run("link is up", "link is down"), None);
        assert_eq!(run("open qa for user", "open qb for admin"), None);
    }

    #[test]
    fn wildcards_absorb_and_may_be_empty() {
        let al = run("sent qa qb bytes", "sent <*> bytes").expect("aligns");
        assert_eq!((al.kept, al.ops), (2, 1));
        assert_eq!(
            run("closed <*> now", "closed now"),
            None,
            "a value takes a token"
        );
        let al = run("sent qa <*> now", "sent qb now").expect("aligns");
        assert_eq!((al.kept, al.ops), (2, 1));
    }

    #[test]
    fn optional_groups_with_a_variable_may_be_left_out() {
        let al = run("connect failed (retry <*>)", "connect failed").expect("aligns");
        assert_eq!((al.kept, al.ops, al.line_wild.clone()), (2, 1, vec![2, 3]));
        let al = run("LOCAL(<*>) session ended", "session ended").expect("aligns");
        assert!(
            al.first && !al.convincing(),
            "a first token needs three kept"
        );
        assert!(run("connect failed (retry later)", "connect failed").is_none());
        assert!(run("opened by (uid=<*>) now", "opened by LOGIN(uid=<*>) now").is_none());
    }

    #[test]
    fn a_first_word_needs_more_context() {
        let al = run("qa connected to server", "qb connected to server").expect("aligns");
        assert!(al.first && al.convincing());
        let al = run("qa startup succeeded", "qb startup succeeded").expect("aligns");
        assert!(al.first && !al.convincing());
    }
}
