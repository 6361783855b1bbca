//! Per-stage benchmarks (criterion) and an end-to-end replay: `cargo bench`.
//!
//! In: in-memory samples of each log format (no files), and a generated mixed log for the
//! end-to-end case (a temporary file). Out: criterion reports, in lines per second
//! (`Throughput::Elements`). Stages: parse per format, multiline, detect, mask/tokenise, mine,
//! incident update; then the whole job at 1 and 2 workers.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use hephaestus::cluster::miner::Miner;
use hephaestus::commands::generate::{GenSpec, generate};
use hephaestus::core::record::{Clustered, ErrorEvent, Kind, Level, LogRecord, Position, RawLine};
use hephaestus::core::shutdown::Shutdown;
use hephaestus::detect::{DetectConfig, Detector};
use hephaestus::incident::Book;
use hephaestus::incident::IncidentConfig;
use hephaestus::mask::tokens::{KeySink, Powers};
use hephaestus::mask::{Masker, mask, mask_into};
use hephaestus::multiline::{Joiner, MultilineConfig};
use hephaestus::parse::{FormatChoice, Parser};
use hephaestus::spec::{Overrides, Plan};

/// The binary's allocator, so that the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLES: &[(&str, &str)] = &[
    (
        "json",
        r#"{"@timestamp":"2024-03-01T12:00:01.000Z","log":{"level":"ERROR"},"message":"payment declined for order 1002","service":{"name":"payments"}}"#,
    ),
    (
        "logfmt",
        r#"ts=2024-03-01T12:00:01Z level=error app=gateway msg="backend unavailable" backend=10.0.0.12:9000"#,
    ),
    (
        "syslog",
        "<11>Mar  1 12:00:01 db-1 postgres[902]: could not write to file \"pg_wal/x.902\": No space left on device",
    ),
    (
        "access",
        r#"10.0.0.10 - - [01/Mar/2024:12:00:00 +0000] "GET /api/orders/8812 HTTP/1.1" 502 1000 "-" "curl/8""#,
    ),
    (
        "generic",
        "2024-03-01 12:00:01,202 ERROR [sync-1] com.example.inventory.Sync: warehouse WH-12 returned HTTP 500",
    ),
];

fn raw(text: &str, i: u64) -> RawLine {
    RawLine {
        pos: Position {
            source: 0,
            offset: i * 100,
            line: i + 1,
        },
        bytes: text.as_bytes().to_vec(),
        lines: 1,
        ..RawLine::default()
    }
}

fn parse(c: &mut Criterion) {
    let parser = Parser {
        format: FormatChoice::Auto,
        service: None,
        default_year: 2024,
    };
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    for (name, line) in SAMPLES {
        g.bench_function(*name, |b| {
            b.iter_batched(
                || raw(line, 0),
                |r| black_box(parser.parse(&r)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn multiline(c: &mut Criterion) {
    let trace = [
        "2024-03-01 12:00:02 ERROR [main] App: failed",
        "java.lang.IllegalStateException: boom",
        "\tat a.B.c(B.java:10)",
        "\tat a.B.main(B.java:3)",
    ];
    let lines: Vec<RawLine> = (0..1000)
        .map(|i| raw(trace[i % trace.len()], i as u64))
        .collect();
    let mut g = c.benchmark_group("multiline");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("java_traces", |b| {
        b.iter_batched(
            || lines.clone(),
            |lines| {
                let mut j = Joiner::new(MultilineConfig::default());
                let mut out = Vec::new();
                for l in lines {
                    j.push(l, false, &mut out);
                }
                j.flush(true, &mut out);
                black_box(out)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn detect(c: &mut Criterion) {
    let d = Detector::new(&DetectConfig::default()).expect("detector");
    let rec = LogRecord {
        message: "GET /api/items/42 200 in 12ms for user 7 from 10.0.0.1".into(),
        ..LogRecord::default()
    };
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(1));
    g.bench_function("info_line", |b| {
        b.iter_batched(
            || rec.clone(),
            |r| black_box(d.detect(r)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn cluster(c: &mut Criterion) {
    let messages: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "Received block blk_{} of size {} from /10.250.{}.{}",
                i * 7919,
                67_108_864 - i,
                i % 255,
                i % 7
            )
        })
        .collect();
    let mut g = c.benchmark_group("cluster");
    g.throughput(Throughput::Elements(messages.len() as u64));
    g.bench_function("mask_to_strings", |b| {
        let mut tokens = Vec::new();
        b.iter(|| {
            for m in &messages {
                mask_into(m, &mut tokens);
                black_box(&tokens);
            }
        })
    });
    g.bench_function("mask_to_key", |b| {
        let (mut masker, mut pow) = (Masker::default(), Powers::default());
        b.iter(|| {
            for m in &messages {
                let mut sink = KeySink::new(&mut pow);
                masker.mask(m, &mut sink);
                black_box(sink.finish());
            }
        })
    });
    g.bench_function("mine_memo_hits", |b| {
        let (mut masker, mut pow) = (Masker::default(), Powers::default());
        let mut miner = Miner::new(3, 10_000);
        let keys: Vec<_> = messages
            .iter()
            .map(|m| {
                let mut sink = KeySink::new(&mut pow);
                masker.mask(m, &mut sink);
                let key = sink.finish();
                miner.insert(&mask(m));
                key
            })
            .collect();
        b.iter(|| {
            for k in &keys {
                black_box(miner.lookup(k));
            }
        })
    });
    g.bench_function("mine_new_lines", |b| {
        let mut tokens = Vec::new();
        b.iter_batched(
            || Miner::new(3, 10_000),
            |mut miner| {
                for m in &messages {
                    mask_into(m, &mut tokens);
                    black_box(miner.insert(&tokens));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Incident updates: 1000 error events over 20 fingerprints folded into the book, one epoch.
fn incident(c: &mut Criterion) {
    let events: Vec<Clustered> = (0..1000u64)
        .map(|i| {
            let mut record = LogRecord {
                message: format!("payment {i} declined"),
                ts: Some(1_700_000_000_000 + i as i64 * 10),
                ..LogRecord::default()
            };
            record.pos.line = i;
            Clustered {
                event: ErrorEvent {
                    record,
                    severity: Level::Error,
                    reasons: vec!["level".into()],
                    key: None,
                },
                fingerprint: i % 20,
                route: i % 20,
                kind: Kind::Message,
                title: format!("payment <*> declined ({})", i % 20).into(),
                template: "payment <*> declined".into(),
                merges: Vec::new(),
            }
        })
        .collect();
    let mut g = c.benchmark_group("incident");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("observe_and_close_epoch", |b| {
        b.iter_batched(
            || Book::new(IncidentConfig::default()),
            |mut book| {
                for e in &events {
                    book.observe(e);
                }
                let (mut emit, mut retract) = (Vec::new(), Vec::new());
                book.close_epoch(&mut emit, &mut retract);
                black_box((emit, retract))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The whole job on 200,000 generated mixed lines (parse, detect, cluster, incidents; no sink).
fn end_to_end(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("hephaestus-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let log = dir.join("mixed.log");
    let spec = GenSpec {
        lines: 200_000,
        seed: 1,
        error_share: 0.05,
        error_kinds: 40,
        templates: 500,
        start_ms: 1_767_225_600_000,
        step_ms: 1,
        unique: false,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&log).expect("log"));
    generate(&spec, &mut out).expect("generate");
    drop(out);
    let toml = dir.join("bench.toml");
    std::fs::write(
        &toml,
        "[[sources]]\npaths = [\"mixed.log\"]\n[output]\nincidents = \"none\"\ndead_letters = \"stderr\"\n[metrics]\nenabled = false\n",
    )
    .expect("spec");
    let mut g = c.benchmark_group("end_to_end");
    g.sample_size(10);
    g.throughput(Throughput::Elements(spec.lines));
    for workers in [1, 2] {
        g.bench_function(format!("mixed_{workers}_workers"), |b| {
            b.iter(|| {
                let ov = Overrides {
                    workers: Some(workers),
                    no_metrics: true,
                    ..Overrides::default()
                };
                let plan = Plan::load(&toml, ov).expect("plan");
                black_box(hephaestus::job::run(plan, Shutdown::default()).expect("job"))
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(
    benches, parse, multiline, detect, cluster, incident, end_to_end
);
criterion_main!(benches);
