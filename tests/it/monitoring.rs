//! The operators' kit in `monitoring/`: the alert rules pass promtool's checks and unit tests,
//! and every query of the rules and the dashboard names a metric a running job exports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::broker::Broker;
use crate::common::{root, scrape};

/// A Prometheus binary (`prometheus` or `promtool`) from `$HEPHAESTUS_PROMETHEUS_BIN`, else
/// the PATH; a missing one fails the test.
pub fn prometheus_tool(name: &str) -> PathBuf {
    let dir = std::env::var("HEPHAESTUS_PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin".into());
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.exists(),
        "no {name} at {}: run the tests with scripts/test, which installs Prometheus \
         (scripts/prometheus install)",
        path.display()
    );
    path
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let promtool = prometheus_tool("promtool");
    let dir = root().join("monitoring");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The `hephaestus_…` metric names a text holds, histogram series folded into their family.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("hephaestus_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let word = &text[start..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                word.strip_suffix(s)
                    .filter(|f| hephaestus::metrics::names::HISTOGRAMS.contains(f))
            })
            .unwrap_or(word);
        names.insert(family.to_string());
        i = end;
    }
    names
}

#[test]
fn dashboard_and_alerts_query_only_exported_metrics() {
    // A Kafka job, so that the consumer lag is exported too.
    let broker = Broker::start();
    crate::kafka::load(&broker.addr, "raw");
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut job, addr, _stderr) =
        crate::kafka::spawn_with_metrics(dir.path(), &broker.addr, "monitoring", "");
    let deadline = Instant::now() + Duration::from_secs(40);
    let exported = loop {
        let body = scrape(&addr);
        let exported: BTreeSet<String> = body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .flat_map(names_in)
            .collect();
        if exported.contains("hephaestus_kafka_consumer_lag") || Instant::now() > deadline {
            break exported;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = job.child().kill();

    let dashboard =
        std::fs::read_to_string(root().join("monitoring/dashboard.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    assert!(queries.len() >= 25, "a panel per signal");
    let rules = std::fs::read_to_string(root().join("monitoring/alerts.yml")).expect("rules");
    queries.push(rules);
    for q in &queries {
        let used = names_in(q);
        assert!(
            !used.is_empty() || q.starts_with("up{"),
            "query names no metric: {q}"
        );
        for name in used {
            assert!(
                exported.contains(&name),
                "{name} (in {q}) is not exported; exported: {exported:?}"
            );
        }
    }
}
