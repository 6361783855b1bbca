//! `hephaestus templates` against the plain sequential reference: one `Miner`, every line
//! inserted in order. The file spans several read rounds, so lines the memo knows from earlier
//! rounds take the parallel lookup path; assignments and occurrence counts must not change.

use hephaestus::cluster::ClusterConfig;
use hephaestus::cluster::miner::Miner;
use hephaestus::commands::templates::{Request, run};
use hephaestus::mask::mask_into;

/// About 20 MiB of seeded lines: a few dozen templates with variables, lists, glued tokens.
fn generate(path: &std::path::Path) -> Vec<String> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let shapes = [
        "Receiving block blk_{} src: /10.0.{}.{}:50010 dest: /10.0.{}.{}:50010",
        "PacketResponder {} for block blk_{} terminating",
        "user={} action=login status={} latency={}ms",
        "Failed password for invalid user u{} from 10.1.{}.{} port {} ssh2",
        "job {} finished in {} s with {} tasks [a{}, b{}]",
        "cache miss key:{} shard:{}",
        "Connection reset by peer while reading response header from upstream {}",
        "instruction cache parity error corrected {}",
    ];
    let mut lines = Vec::new();
    let mut bytes = 0;
    while bytes < 20 << 20 {
        let shape = shapes[(next() % shapes.len() as u64) as usize];
        let mut line = String::new();
        let mut parts = shape.split("{}").peekable();
        while let Some(p) = parts.next() {
            line.push_str(p);
            if parts.peek().is_some() {
                line.push_str(&(next() % 50).to_string());
            }
        }
        bytes += line.len() + 1;
        lines.push(line);
    }
    std::fs::write(path, lines.join("\n") + "\n").expect("write log");
    lines
}

/// RFC 4180, as the command writes it.
fn quote(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[test]
fn templates_equal_the_sequential_miner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("gen.log");
    let lines = generate(&log);
    let cfg = ClusterConfig::default();
    let mut miner = Miner::new(cfg.variable_after, usize::MAX >> 1).one_partition();
    let mut tokens = Vec::new();
    let slots: Vec<_> = lines
        .iter()
        .map(|l| {
            mask_into(l, &mut tokens);
            miner.insert(&tokens).slot
        })
        .collect();
    miner.settle();
    let mut want = String::from("LineId,ClusterId,EventTemplate\n");
    for (i, slot) in slots.into_iter().enumerate() {
        let (id, t) = miner.resolve(slot).expect("resolved");
        want.push_str(&format!("{},{id:016x},{}\n", i + 1, quote(&t)));
    }
    let mut want_counts: Vec<(String, u64)> =
        miner.templates().map(|(_, t, n)| (quote(&t), n)).collect();
    want_counts.sort();
    for workers in [1, 2] {
        let out = dir.path().join(format!("w{workers}.csv"));
        let tpl = dir.path().join(format!("t{workers}.csv"));
        let req = Request {
            file: log.clone(),
            log_format: None,
            workers,
            assignments: out.clone(),
            templates: Some(tpl.clone()),
            cluster: cfg.clone(),
        };
        let report = run(&req).expect("templates");
        assert_eq!(report.lines as usize, lines.len());
        let got = std::fs::read_to_string(&out).expect("assignments");
        assert!(
            got == want,
            "{workers} worker(s): assignments differ from the sequential miner"
        );
        let mut counts: Vec<(String, u64)> = std::fs::read_to_string(&tpl)
            .expect("templates csv")
            .lines()
            .skip(1)
            .filter_map(|l| {
                let (rest, n) = l.rsplit_once(',')?;
                let (_, t) = rest.split_once(',')?;
                Some((t.to_string(), n.parse().ok()?))
            })
            .collect();
        counts.sort();
        assert_eq!(counts, want_counts, "{workers} worker(s): occurrences");
    }
}
