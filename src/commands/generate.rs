//! `hephaestus generate`: realistic mixed logs for load tests, reproducible from a seed.
//!
//! In: how many lines, the seed, the share of error events, how many distinct error kinds and
//! message templates. Out: log lines on a writer: services that log JSON, logfmt, syslog,
//! access logs and plain timestamped lines, with stack traces in Python, Java, Go, Rust and
//! Node.js among the errors. The same arguments give the same bytes. State: the random
//! generator and the clock.

use std::io::Write;

use crate::core::time::{Millis, format_rfc3339};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenSpec {
    /// Physical lines to write (a stack trace counts all its lines).
    pub lines: u64,
    pub seed: u64,
    /// Share of events that are errors (0..1).
    pub error_share: f64,
    /// Distinct error kinds (message errors and traces).
    pub error_kinds: u32,
    /// Distinct informational message templates.
    pub templates: u32,
    /// First timestamp, and milliseconds between events.
    pub start_ms: Millis,
    pub step_ms: Millis,
    /// Adversarial cardinality: every line is made of random words (no two alike), a share
    /// `error_share` of them at level ERROR.
    pub unique: bool,
}

/// xorshift64*: fast, seeded, good enough for load.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

const VERBS: [&str; 12] = [
    "loaded",
    "stored",
    "sent",
    "received",
    "scheduled",
    "finished",
    "queued",
    "opened",
    "closed",
    "refreshed",
    "synced",
    "evicted",
];
const NOUNS: [&str; 12] = [
    "order", "session", "invoice", "cart", "profile", "batch", "report", "token", "shipment",
    "payment", "upload", "index",
];
const SERVICES: [&str; 6] = ["checkout", "billing", "search", "auth", "gateway", "worker"];

/// One informational message of template `t`, with its variable parts filled.
fn message(t: u32, r: &mut Rng) -> String {
    let (v, n) = (VERBS[(t % 12) as usize], NOUNS[((t / 12) % 12) as usize]);
    match (t / 144) % 4 {
        0 => format!("{n} {} {v} in {} ms", r.below(1_000_000), r.below(900)),
        1 => format!(
            "{v} {} {n}s for user u-{} (shard {})",
            r.below(50),
            r.below(100_000),
            t
        ),
        2 => format!(
            "{n} {v}: id={} bytes={} node=10.0.{}.{}",
            r.below(1 << 30),
            r.below(1 << 20),
            r.below(256),
            r.below(256)
        ),
        _ => format!(
            "step {t} {v} {n} [{}, {}, {}]",
            r.below(100),
            r.below(100),
            r.below(100)
        ),
    }
}

/// A stack trace of error kind `k` (the language and the faulting function follow from `k`).
fn trace(k: u32, r: &mut Rng) -> (String, Vec<String>) {
    let f = format!("handle_{}", NOUNS[(k % 12) as usize]);
    match k % 5 {
        0 => (
            "Traceback (most recent call last):".into(),
            vec![
                format!("  File \"/srv/app/{f}.py\", line {}, in {f}", 10 + k),
                format!("    return totals[key] / count{k}"),
                format!("KeyError: 'k{}'", r.below(1000)),
            ],
        ),
        1 => (
            format!(
                "java.lang.IllegalStateException: {f} failed for {}",
                r.below(100_000)
            ),
            vec![
                format!(
                    "\tat com.shop.service.Service{k}.{f}(Service{k}.java:{})",
                    20 + k
                ),
                "\tat com.shop.web.Controller.handle(Controller.java:88)".into(),
            ],
        ),
        2 => (
            format!(
                "panic: runtime error: index out of range [{}] with length {k}",
                r.below(10) + u64::from(k)
            ),
            vec![
                String::new(),
                "goroutine 1 [running]:".into(),
                format!("main.{f}{k}()"),
                format!("\t/app/{f}.go:{} +0x1d", 12 + k),
            ],
        ),
        3 => (
            format!("thread 'main' panicked at src/{f}.rs:{}:5:", 30 + k),
            vec![
                "called `Option::unwrap()` on a `None` value".into(),
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
                    .into(),
            ],
        ),
        _ => (
            format!("TypeError: Cannot read properties of undefined (reading 'f{k}')"),
            vec![
                format!("    at {f} (/app/src/{f}.js:{}:15)", 10 + k),
                "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
                    .into(),
            ],
        ),
    }
}

/// A random lowercase word of 3 to 10 letters.
fn word(r: &mut Rng, buf: &mut String) {
    let mut bits = r.next();
    for _ in 0..3 + bits % 8 {
        bits = bits.rotate_right(5) ^ r.next();
        buf.push((b'a' + (bits % 26) as u8) as char);
    }
}

/// One line of random words (`unique`).
fn unique_line(ts: &str, error: bool, r: &mut Rng, buf: &mut String) {
    buf.push_str(ts);
    buf.push_str(if error { " ERROR [" } else { " INFO [" });
    word(r, buf);
    buf.push(']');
    for _ in 0..3 + r.below(10) {
        buf.push(' ');
        word(r, buf);
    }
    buf.push('\n');
}

/// Writes `spec.lines` lines; returns how many error events it wrote.
pub fn generate(spec: &GenSpec, out: &mut dyn Write) -> std::io::Result<u64> {
    let mut r = Rng(spec.seed.max(1) ^ 0x9e37_79b9_7f4a_7c15);
    let (mut written, mut errors, mut t) = (0u64, 0u64, spec.start_ms);
    let mut buf = String::new();
    while written < spec.lines {
        buf.clear();
        t += spec.step_ms;
        let ts = format_rfc3339(t);
        if spec.unique {
            let error = r.chance(spec.error_share);
            errors += u64::from(error);
            unique_line(&ts, error, &mut r, &mut buf);
            written += 1;
            out.write_all(buf.as_bytes())?;
            continue;
        }
        let service = SERVICES[r.below(SERVICES.len() as u64) as usize];
        let error = r.chance(spec.error_share);
        let kind = r.below(u64::from(spec.error_kinds.max(1))) as u32;
        let style = r.below(5);
        if error {
            errors += 1;
        }
        match (error, style) {
            (true, 0) | (true, 1) if kind.is_multiple_of(2) => {
                let (head, rest) = trace(kind / 2, &mut r);
                buf.push_str(&format!(
                    "{ts} ERROR [{service}] request {} failed\n{head}\n",
                    r.below(1 << 20)
                ));
                for l in rest {
                    buf.push_str(&l);
                    buf.push('\n');
                }
            }
            (true, _) => {
                let msg = format!(
                    "{} failed: upstream {} timed out after {} ms (kind {kind})",
                    NOUNS[(kind % 12) as usize],
                    SERVICES[(kind % 6) as usize],
                    r.below(5000)
                );
                buf.push_str(&match style {
                    2 => format!("ts={ts} level=error app={service} msg=\"{msg}\" attempt={}\n", r.below(5)),
                    3 => format!("{{\"@timestamp\":\"{ts}\",\"level\":\"error\",\"service\":\"{service}\",\"message\":\"{msg}\"}}\n"),
                    _ => format!("{ts} ERROR [{service}] {msg}\n"),
                });
            }
            (false, _) => {
                let msg = message(r.below(u64::from(spec.templates.max(1))) as u32, &mut r);
                buf.push_str(&match style {
                    0 => format!("{ts} INFO [{service}] {msg}\n"),
                    1 => format!("ts={ts} level=info app={service} msg=\"{msg}\"\n"),
                    2 => format!("{{\"@timestamp\":\"{ts}\",\"level\":\"info\",\"service\":\"{service}\",\"message\":\"{msg}\"}}\n"),
                    3 => format!("<14>Mar  1 12:00:00 {service}-{} {service}[{}]: {msg}\n", r.below(8), r.below(30000)),
                    _ => format!(
                        "10.0.{}.{} - - [01/Mar/2024:12:00:00 +0000] \"GET /api/{}/{} HTTP/1.1\" {} {} \"-\" \"load/1.0\"\n",
                        r.below(256),
                        r.below(256),
                        NOUNS[r.below(12) as usize],
                        r.below(100_000),
                        if r.chance(0.98) { 200 } else { 404 },
                        r.below(50_000)
                    ),
                });
            }
        }
        written += buf.bytes().filter(|&b| b == b'\n').count() as u64;
        out.write_all(buf.as_bytes())?;
    }
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> GenSpec {
        GenSpec {
            lines: 2000,
            seed,
            error_share: 0.1,
            error_kinds: 12,
            templates: 300,
            start_ms: 1_700_000_000_000,
            step_ms: 3,
            unique: false,
        }
    }

    #[test]
    fn seeded_and_mixed() {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        let errors = generate(&spec(7), &mut a).expect("write");
        generate(&spec(7), &mut b).expect("write");
        generate(&spec(8), &mut c).expect("write");
        assert_eq!(a, b, "same seed, same bytes");
        assert_ne!(a, c);
        let text = String::from_utf8(a).expect("utf8");
        assert!(text.lines().count() >= 2000);
        for needle in [
            "Traceback",
            "java.lang.",
            "goroutine",
            "panicked at",
            "TypeError",
            "level=info",
            "\"@timestamp\"",
            "<14>",
            "HTTP/1.1",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        assert!((100..300).contains(&errors), "{errors} error events at 10%");
        let mut u = Vec::new();
        generate(
            &GenSpec {
                unique: true,
                ..spec(9)
            },
            &mut u,
        )
        .expect("write");
        let text = String::from_utf8(u).expect("utf8");
        let lines: std::collections::HashSet<&str> = text
            .lines()
            .map(|l| l.split_once(' ').map_or(l, |x| x.1))
            .collect();
        assert_eq!(lines.len(), 2000, "random lines do not repeat");
    }
}
