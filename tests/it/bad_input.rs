//! Bad input never stops the job: each bad record is counted and written to the dead-letter
//! output with its reason, and the good records around it still make incidents.

use std::collections::BTreeMap;

use crate::common::{finals, root, run};

#[test]
fn bad_input_goes_to_dead_letters_and_the_job_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.log");
    let mut data = Vec::new();
    data.extend_from_slice(b"2024-03-01 12:00:00 ERROR app: payment 1 failed\n");
    data.extend_from_slice(b"2024-03-01 12:00:01 ERROR app: caf\xe9 2 failed\n");
    data.extend(std::iter::repeat_n(b'x', 10 << 20));
    data.push(b'\n');
    data.extend_from_slice(b"2024-03-01 12:00:02 ERROR app: payment 3 failed\n");
    data.extend_from_slice(b"\x00\x00\x01\x02\x03\x04binary\x05\x06\n");
    data.extend_from_slice(b"{\"ts\":\"2024-03-01T12:00:03Z\",\"level\":\"error\",\"msg\":\"cut\n");
    data.extend_from_slice(b"2024-03-01 12:00:04 ERROR app: payment 4 failed\n");
    data.extend_from_slice(b"2024-03-01 12:00:05 ERROR app: job crashed\nTraceback (most recent call last):\n  File \"/srv/a.py\", line 3, in run\n");
    std::fs::write(&path, &data).expect("write");

    let out = run(&root().join("fixtures/golden.toml"), &[path], 2);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for line in &out.dead {
        let v: serde_json::Value = serde_json::from_str(line).expect("dead letter JSON");
        *reasons
            .entry(v["reason"].as_str().expect("reason").to_string())
            .or_default() += 1;
        assert!(v["source"].as_str().is_some_and(|s| s.ends_with("bad.log")));
        assert!(
            v["preview"]
                .as_str()
                .is_some_and(|p| p.chars().count() <= 256)
        );
        if v["reason"] == "line_too_long" {
            assert_eq!(v["bytes"], 10 << 20);
            assert_eq!(v["line"], 3);
        }
    }
    let want: BTreeMap<String, u64> = [
        ("binary", 1),
        ("invalid_json", 1),
        ("invalid_utf8", 1),
        ("line_too_long", 1),
        ("truncated_trace", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(reasons, want);
    assert_eq!(out.summary.dead_letters, 5);
    let finals = finals(&out.incidents);
    let payments = finals
        .values()
        .find(|v| v["title"] == "payment <*> failed")
        .expect("payment incident");
    assert_eq!(payments["count"], 3);
    assert!(
        finals
            .values()
            .any(|v| v["kind"] == "trace" && v["count"] == 1),
        "the cut traceback still makes an incident"
    );
    // Every record (a joined traceback is one) ends in an incident, a dead letter, or both (the
    // cut traceback); none is lost.
    let in_incidents: u64 = finals.values().filter_map(|v| v["count"].as_u64()).sum();
    let only_dead = out.summary.dead_letters - 1;
    let records = out.summary.records + only_dead;
    let accounted = in_incidents + only_dead + (out.summary.records - out.summary.error_events);
    assert_eq!(accounted, records);
    crate::common::reliability(
        "malformed input (records)",
        "invalid UTF-8, a 10 MiB line, binary bytes, cut JSON, a cut traceback, among good lines",
        (records, accounted, records - accounted, 0),
    );
}

#[test]
fn a_full_output_disk_fails_the_job_with_the_reason() {
    // /dev/full: every write fails with ENOSPC, as on a full disk.
    let log = crate::common::root().join("fixtures/logs/python.log");
    let dir = tempfile::tempdir().expect("tempdir");
    let ov = hephaestus::spec::Overrides {
        inputs: vec![log.display().to_string()],
        output: Some(std::path::PathBuf::from("/dev/full")),
        dead_letters: Some(dir.path().join("dead.jsonl")),
        no_metrics: true,
        ..Default::default()
    };
    let plan =
        hephaestus::spec::Plan::load(&crate::common::root().join("dataflows/bench.toml"), ov)
            .expect("plan");
    let err = hephaestus::job::run(plan, hephaestus::core::shutdown::Shutdown::default())
        .expect_err("a full disk is an error");
    let msg = err.to_string();
    assert!(
        msg.contains("writing incidents") && msg.contains("No space left on device"),
        "{msg}"
    );
}
