//! Property tests (proptest, bounded so CI runs them in seconds): no parser, the multiline
//! joiner or the spec loader panics or loses a line on arbitrary input; masking is idempotent;
//! lines that differ only in variable values share a template; the dataflow equals the
//! sequential reference for random inputs and worker counts.

use proptest::prelude::*;

use hephaestus::cluster::miner::Miner;
use hephaestus::core::record::{Position, RawLine};
use hephaestus::mask::mask;
use hephaestus::multiline::{Joiner, MultilineConfig};

fn raw(bytes: Vec<u8>, line: u64) -> RawLine {
    RawLine {
        pos: Position {
            source: 0,
            offset: line * 100,
            line,
        },
        bytes,
        lines: 1,
        ..Default::default()
    }
}

/// Log-looking text: timestamps, braces, quotes, `=`, brackets, traces, and arbitrary unicode.
fn loggy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,120}",
        r#"\{("[a-z@.]{1,8}": ?("[^"\\]{0,20}"|[0-9]{1,6}|\{|\[), ?){0,4}\}?"#,
        "(ts|level|msg)=(\"[^\"]{0,20}\"|[a-z0-9:.-]{0,12})( [a-z]{1,6}=[^ ]{0,8}){0,4}",
        "<[0-9]{1,3}>[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} [a-z-]{1,8} [a-z]{1,8}(\\[[0-9]{1,5}\\])?: .{0,40}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.,]{8,12}Z? (INFO|ERROR|WARN) \\[[a-z.]{1,10}\\] .{0,60}",
        "\\PC{0,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_parser_returns_a_record_or_a_dead_letter(bytes in prop_oneof![loggy().prop_map(String::into_bytes), proptest::collection::vec(any::<u8>(), 0..200)]) {
        for p in hephaestus::commands::fuzz::parsers() {
            let (rec, dead) = p.parse(&raw(bytes.clone(), 1));
            prop_assert!(rec.is_some() || dead.is_some(), "{:?} lost {:?}", p.format, String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn the_joiner_keeps_every_line(lines in proptest::collection::vec(prop_oneof![
        loggy(),
        Just("Traceback (most recent call last):".to_string()),
        "  File \"/a/[a-z]{1,5}.py\", line [0-9]{1,3}, in [a-z]{1,5}",
        "\tat [a-z.]{1,12}\\([A-Za-z]{1,8}.java:[0-9]{1,3}\\)",
        "(Caused by: )?[a-z.]{1,10}Exception: .{0,20}",
        "thread 'main'( \\([0-9]{1,5}\\))? panicked at src/[a-z]{1,5}.rs:[0-9]{1,3}:[0-9]{1,2}:",
        "goroutine [0-9]{1,3} \\[running\\]:",
    ], 0..60)) {
        let mut j = Joiner::new(MultilineConfig::default());
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            j.push(raw(l.clone().into_bytes(), i as u64 + 1), false, &mut out);
        }
        j.flush(true, &mut out);
        let joined: u64 = out.iter().map(|r| u64::from(r.lines)).sum();
        prop_assert_eq!(joined, lines.len() as u64);
    }

    #[test]
    fn masking_is_idempotent(message in loggy()) {
        let once = mask(&message);
        prop_assert_eq!(mask(&once.join(" ")), once);
    }

    #[test]
    fn variable_values_share_a_template(a in 0u64..1_000_000_000, b in 0u64..1_000_000_000, ip in (0u8..=255, 0u8..=255), hex in "[0-9a-f]{8,16}") {
        let mut miner = Miner::new(3, 10_000);
        let line = |n: u64, h: &str| format!("block blk_{n} of size {n} replicated to 10.1.{}.{} in {n} ms, checksum 0x{h}", ip.0, ip.1);
        let first = miner.insert(&mask(&line(a, &hex)));
        let second = miner.insert(&mask(&line(b, "deadbeef")));
        let (x, _) = miner.resolve(first.slot).expect("first");
        let (y, _) = miner.resolve(second.slot).expect("second");
        prop_assert_eq!(x, y);
    }

    #[test]
    fn the_spec_loader_never_panics(text in prop_oneof!["\\PC{0,200}", "(\\[[a-z.]{1,12}\\]\n([a-z_]{1,12} = (\"[^\"]{0,10}\"|[0-9]{1,5}|true|\\[\\])\n){0,4}){0,4}"]) {
        let _ = hephaestus::spec::Spec::from_toml(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// The whole job against the sequential reference, for a random log and worker count.
    #[test]
    fn the_dataflow_equals_the_reference(seed in any::<u64>(), workers in 1usize..=4) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("gen.log");
        let spec = hephaestus::commands::generate::GenSpec { lines: 3000, seed, error_share: 0.2, error_kinds: 10, templates: 40, start_ms: 1_767_225_600_000, step_ms: 250, unique: false };
        hephaestus::commands::generate::generate(&spec, &mut std::fs::File::create(&log).expect("log")).expect("generate");
        let toml = dir.path().join("spec.toml");
        std::fs::write(&toml, "[job]\nbatch_lines = 17\n\n[[sources]]\npaths = [\"gen.log\"]\n\n[incident]\nwindow = \"1m\"\nquiet_period = \"2m\"\nreemit_interval = \"1m\"\n\n[metrics]\nenabled = false\n").expect("spec");
        let out = tempfile::tempdir().expect("tempdir");
        let want = crate::reference::run(&crate::common::plan(&toml, &[], 1, out.path()));
        prop_assert!(want.len() > 5, "the input makes incidents: {}", want.len());
        let out = tempfile::tempdir().expect("tempdir");
        let got = crate::common::run_plan(crate::common::plan(&toml, &[], workers, out.path()), out.path());
        prop_assert_eq!(got.incidents, want);
    }
}
