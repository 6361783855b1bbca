//! `hephaestus templates` against two expectations: the templates written here by hand for each
//! shape the generator draws from (one cluster per shape, none shared), and the plain
//! sequential reference: one `Miner`, every line inserted in order. The file spans several read
//! rounds, so lines the memo knows from earlier rounds take the parallel lookup path;
//! assignments and occurrence counts must not change.

use hephaestus::cluster::ClusterConfig;
use hephaestus::cluster::miner::Miner;
use hephaestus::commands::templates::{Request, run};
use hephaestus::mask::mask_into;

/// The generator's shapes (`{}` is a number), each with the template a person would write for
/// it: numbers, addresses, ids and `key=value` values are variables; a number with its unit
/// (`12 s`) is one variable.
const SHAPES: [(&str, &str); 8] = [
    (
        "Receiving block blk_{} src: /10.0.{}.{}:50010 dest: /10.0.{}.{}:50010",
        "Receiving block <*> src: /<*>:<*> dest: /<*>:<*>",
    ),
    (
        "PacketResponder {} for block blk_{} terminating",
        "PacketResponder <*> for block <*> terminating",
    ),
    (
        "user={} action=login status={} latency={}ms",
        "user=<*> action=<*> status=<*> latency=<*>",
    ),
    (
        "Failed password for invalid user u{} from 10.1.{}.{} port {} ssh2",
        "Failed password for invalid user <*> from <*> port <*> ssh2",
    ),
    (
        "job {} finished in {} s with {} tasks [a{}, b{}]",
        "job <*> finished in <*> with <*> tasks [<*>, <*>]",
    ),
    ("cache miss key:{} shard:{}", "cache miss key:<*> shard:<*>"),
    (
        "Connection reset by peer while reading response header from upstream {}",
        "Connection reset by peer while reading response header from upstream <*>",
    ),
    (
        "instruction cache parity error corrected {}",
        "instruction cache parity error corrected <*>",
    ),
];

/// About 20 MiB of seeded lines drawn from `SHAPES`; each line with its shape's index.
fn generate(path: &std::path::Path) -> Vec<(String, usize)> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut lines = Vec::new();
    let mut bytes = 0;
    while bytes < 20 << 20 {
        let which = (next() % SHAPES.len() as u64) as usize;
        let shape = SHAPES[which].0;
        let mut line = String::new();
        let mut parts = shape.split("{}").peekable();
        while let Some(p) = parts.next() {
            line.push_str(p);
            if parts.peek().is_some() {
                line.push_str(&(next() % 50).to_string());
            }
        }
        bytes += line.len() + 1;
        lines.push((line, which));
    }
    let text: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
    std::fs::write(path, text.join("\n") + "\n").expect("write log");
    lines
}

/// Every line of a shape in one cluster with the hand-written template; no cluster shared.
fn check_by_hand(assignments: &str, lines: &[(String, usize)]) {
    let mut cluster_of: Vec<Option<(String, String)>> = vec![None; SHAPES.len()];
    for (row, (line, shape)) in assignments.lines().skip(1).zip(lines) {
        let mut cols = row.splitn(3, ',');
        let (_, id) = (cols.next(), cols.next().unwrap_or_default().to_string());
        let template = cols.next().unwrap_or_default().to_string();
        let want = quote(SHAPES[*shape].1);
        assert_eq!(template, want, "line {line:?}");
        match &cluster_of[*shape] {
            None => cluster_of[*shape] = Some((id, template)),
            Some((first, _)) => assert_eq!(&id, first, "line {line:?} left its shape's cluster"),
        }
    }
    let mut ids: Vec<&String> = cluster_of.iter().flatten().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), SHAPES.len(), "every shape was drawn");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), SHAPES.len(), "one cluster per shape");
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
fn templates_equal_the_hand_written_ones_and_the_sequential_miner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("gen.log");
    let lines = generate(&log);
    let cfg = ClusterConfig::default();
    let mut miner = Miner::new(cfg.variable_after, usize::MAX >> 1).one_partition();
    let mut tokens = Vec::new();
    let slots: Vec<_> = lines
        .iter()
        .map(|(l, _)| {
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
        check_by_hand(&got, &lines);
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
