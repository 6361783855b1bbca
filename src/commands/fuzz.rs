//! Fuzz-target bodies: arbitrary bytes in, a panic out when an invariant breaks; no state.
//!
//! The cargo-fuzz harnesses under `fuzz/fuzz_targets/` are one line each and call these, and
//! the integration test `tests/it/fuzz.rs` replays every committed corpus file and regression
//! case through them on the stable toolchain, so a crash the fuzzer once found stays a test.
//! Each body asserts more than "does not panic": no parser drops a record, the joiner keeps every
//! physical line, masking is idempotent, replaying lines adds no template, a fingerprint is a
//! function of the trace.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::cluster::miner::Miner;
use crate::core::record::{Position, RawLine};
use crate::mask::mask;
use crate::multiline::{Joiner, MultilineConfig};
use crate::parse::{FormatChoice, HeaderFormat, Parser, SourceFormat};
use crate::spec::{Overrides, Plan, Spec};
use crate::trace::{self, InApp};

/// A target body: panics when an invariant breaks on `data`.
pub type Target = fn(&[u8]);

/// The targets by name, as the fuzz crate and the corpus directories name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("parse", parse),
    ("header", header),
    ("multiline", multiline),
    ("mask_mine", mask_mine),
    ("trace", trace),
    ("spec", spec),
];

/// Header formats of the Loghub datasets the `parse` target also tries.
const HEADERS: &[&str] = &[
    "<Date> <Time> <Pid> <Level> <Component>: <Content>",
    "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
    "<Month> <Date> <Time> <Level> <Component>(\\[<PID>\\])?: <Content>",
];

fn raw(bytes: &[u8], line: u64) -> RawLine {
    RawLine {
        pos: Position {
            source: 0,
            offset: 0,
            line,
        },
        bytes: bytes.to_vec(),
        lines: 1,
        ..RawLine::default()
    }
}

fn parser(format: FormatChoice) -> Parser {
    Parser {
        format,
        service: None,
        default_year: 2024,
    }
}

fn check_parse(p: &Parser, bytes: &[u8]) {
    let (rec, dead) = p.parse(&raw(bytes, 1));
    assert!(
        rec.is_some() || dead.is_some(),
        "{:?} returned neither a record nor a dead letter for {:?}",
        p.format,
        String::from_utf8_lossy(bytes)
    );
}

/// Every fixed-format parser and three Loghub header parsers (the property tests use it too),
/// built once: compiling the header regexes for every input would cost more than parsing it.
pub fn parsers() -> &'static [Parser] {
    static PARSERS: OnceLock<Vec<Parser>> = OnceLock::new();
    PARSERS.get_or_init(build_parsers)
}

fn build_parsers() -> Vec<Parser> {
    let fixed = [
        SourceFormat::Auto,
        SourceFormat::Json,
        SourceFormat::Logfmt,
        SourceFormat::Syslog,
        SourceFormat::Access,
        SourceFormat::Generic,
        SourceFormat::Plain,
    ];
    let headers = HEADERS.iter().filter_map(|h| HeaderFormat::new(h).ok());
    fixed
        .into_iter()
        .map(|f| parser(FormatChoice::Fixed(f)))
        .chain(headers.map(|h| parser(FormatChoice::Header(Arc::new(h)))))
        .collect()
}

/// Every parser returns a record or a dead letter.
pub fn parse(data: &[u8]) {
    for p in parsers() {
        check_parse(p, data);
    }
}

/// The first line is a user's header format: compiling it never panics, and when it compiles,
/// every further line parses to a record or a dead letter.
pub fn header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (format, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(h) = HeaderFormat::new(format) else {
        return;
    };
    let p = parser(FormatChoice::Header(Arc::new(h)));
    for line in rest.split('\n') {
        check_parse(&p, line.as_bytes());
    }
}

/// The joiner, fed the input's lines, gives back exactly as many physical lines, in order.
pub fn multiline(data: &[u8]) {
    let mut j = Joiner::new(MultilineConfig::default());
    let mut out = Vec::new();
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    for (i, l) in lines.iter().enumerate() {
        // A line is "unterminated" when it is the last one and input does not end in a newline.
        let unterminated = i + 1 == lines.len() && !data.ends_with(b"\n");
        j.push(raw(l, i as u64 + 1), unterminated, &mut out);
    }
    j.flush(true, &mut out);
    assert!(!j.is_open(), "the joiner is open after the final flush");
    let joined: u64 = out.iter().map(|r| u64::from(r.lines)).sum();
    assert_eq!(
        joined,
        lines.len() as u64,
        "physical lines lost or invented"
    );
    let heads: Vec<u64> = out.iter().map(|r| r.pos.line).collect();
    assert!(
        heads.windows(2).all(|w| w[0] < w[1]),
        "records out of order"
    );
}

/// Masking is idempotent; the miner places every line, and replaying the lines adds no template.
pub fn mask_mine(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut miner = Miner::new(3, 10_000);
    let masked: Vec<Vec<String>> = text.lines().map(mask).collect();
    for (line, once) in text.lines().zip(&masked) {
        assert_eq!(
            &mask(&once.join(" ")),
            once,
            "mask is not idempotent on {line:?}"
        );
        let m = miner.insert(once);
        assert!(
            miner.resolve(m.slot).is_some(),
            "line {line:?} has no template"
        );
    }
    let templates = miner.len();
    for once in &masked {
        miner.insert(once);
    }
    assert!(
        miner.len() <= templates,
        "replaying the same lines grew the templates from {templates} to {}",
        miner.len()
    );
}

/// The first line is the message, the rest the trace: parsing never panics, and the
/// fingerprint and title are functions of the input.
pub fn trace(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (message, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let in_app = InApp::default();
    let Some(a) = trace::parse(message, rest, &in_app) else {
        return;
    };
    let b = trace::parse(message, rest, &in_app).expect("the same input parsed once");
    assert_eq!(a.fingerprint(5), b.fingerprint(5));
    assert_eq!(a.title(), b.title());
}

/// Any text: the spec loader and the planner return a spec or an error, never a panic.
pub fn spec(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(spec) = Spec::from_toml(&text) {
        let _ = Plan::build(
            spec,
            Path::new("/nonexistent/hephaestus-fuzz/spec.toml"),
            Overrides::default(),
        );
    }
}
