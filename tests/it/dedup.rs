//! De-duplication: many copies of one bug make one incident; different bugs at the same line
//! make different incidents.

use crate::common::{Rng, finals, root, run};

fn npe(out: &mut Vec<String>, i: u64, rng: &mut Rng, ty: &str) {
    let s = i % 60;
    out.push(format!(
        "2024-03-01 12:{:02}:{s:02},{:03} ERROR [exec-{}] com.shop.CartController - cart {} failed",
        i / 60 % 60,
        i % 1000,
        i % 8,
        rng.below(1_000_000)
    ));
    out.push(format!(
        "{ty}: Cannot invoke \"Item.price()\" because item {} is null",
        rng.below(1_000_000)
    ));
    out.push("\tat com.shop.CartService.total(CartService.java:57)".into());
    out.push("\tat com.shop.CartController.show(CartController.java:31)".into());
    out.push(format!(
        "\tat jdk.internal.reflect.GeneratedMethodAccessor{}.invoke(Unknown Source)",
        rng.below(500)
    ));
    out.push(format!(
        "\tat java.base/java.lang.reflect.Method.invoke(Method.java:{})",
        500 + rng.below(100)
    ));
    out.push(format!(
        "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:{})",
        800 + rng.below(200)
    ));
    out.push(format!(
        "\tat java.base/java.lang.Thread.run(Thread.java:{})",
        800 + rng.below(50)
    ));
}

#[test]
fn ten_thousand_copies_of_one_npe_make_one_incident() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(42);
    let mut lines = Vec::new();
    for i in 0..10_000 {
        npe(&mut lines, i, &mut rng, "java.lang.NullPointerException");
    }
    let path = dir.path().join("npe.log");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let out = run(&root().join("fixtures/golden.toml"), &[path], 2);
    let finals = finals(&out.incidents);
    assert_eq!(finals.len(), 1, "one incident: {:?}", finals.keys());
    let inc = finals.values().next().expect("one");
    assert_eq!(inc["count"], 10_000);
    assert_eq!(inc["kind"], "trace");
    assert!(
        inc["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("java.lang.NullPointerException"))
    );
    assert!(
        out.incidents.len() < 100,
        "emitted on state changes, not per line: {}",
        out.incidents.len()
    );
}

#[test]
fn two_exceptions_from_the_same_line_make_two_incidents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(7);
    let mut lines = Vec::new();
    for i in 0..50 {
        let ty = if i % 2 == 0 {
            "java.lang.NullPointerException"
        } else {
            "java.lang.IllegalStateException"
        };
        npe(&mut lines, i, &mut rng, ty);
    }
    let path = dir.path().join("two.log");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let out = run(&root().join("fixtures/golden.toml"), &[path], 3);
    let finals = finals(&out.incidents);
    assert_eq!(finals.len(), 2);
    let counts: Vec<u64> = finals
        .values()
        .map(|v| v["count"].as_u64().expect("count"))
        .collect();
    assert_eq!(counts, vec![25, 25]);
}

#[test]
fn incidents_follow_template_merges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = Vec::new();
    // Two users first (a fork: two templates, two incidents), then a third merges them.
    for (i, user) in [
        "alice", "bob", "alice", "bob", "alice", "bob", "carol", "alice", "dave",
    ]
    .iter()
    .enumerate()
    {
        lines.push(format!(
            "2024-03-01 12:00:{i:02},000 ERROR [main] app.Auth: session for {user} expired"
        ));
        lines.push(format!(
            "2024-03-01 12:00:{i:02},500 INFO [main] app.Web: ok"
        ));
    }
    let path = dir.path().join("merge.log");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, "[job]\nbatch_lines = 2\n\n[[sources]]\npaths = [\"merge.log\"]\n\n[metrics]\nenabled = false\n").expect("spec");
    let out = run(&spec, &[path], 2);
    let finals = finals(&out.incidents);
    let merged: Vec<&serde_json::Value> =
        finals.values().filter(|v| v["state"] == "merged").collect();
    assert_eq!(
        merged.len(),
        1,
        "the older incident ends as merged: {:?}",
        out.incidents
    );
    let into = merged[0]["merged_into"].as_str().expect("merged_into");
    let survivor = &finals[into];
    assert_eq!(
        survivor["count"], 9,
        "the surviving incident counts every event"
    );
    assert_eq!(survivor["template"], "session for <*> expired");
}

#[test]
fn a_restarted_job_keeps_its_template_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, users: &[&str]| {
        let lines: Vec<String> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                format!(
                    "2024-03-01 12:00:{i:02},000 ERROR [main] app.Auth: session for {u} expired"
                )
            })
            .collect();
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write");
        path
    };
    let first = write("first.log", &["alice", "bob", "carol", "alice"]);
    let second = write("second.log", &["zoe", "yves"]);
    let spec = |state: bool| {
        let path = dir
            .path()
            .join(if state { "with.toml" } else { "without.toml" });
        let state = if state { "state_dir = \"state\"\n" } else { "" };
        std::fs::write(&path, format!("[[sources]]\npaths = [\"first.log\"]\n\n[cluster]\n{state}\n[metrics]\nenabled = false\n")).expect("spec");
        path
    };
    let before = finals(&run(&spec(true), &[first], 2).incidents);
    let survivor = before
        .iter()
        .find(|(_, v)| v["state"] != "merged")
        .map(|(fp, _)| fp.clone())
        .expect("an incident");
    let after = finals(&run(&spec(true), std::slice::from_ref(&second), 3).incidents);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        vec![&survivor],
        "restored templates keep their ids across a restart"
    );
    let fresh = finals(&run(&spec(false), &[second], 3).incidents);
    assert!(
        !fresh.contains_key(&survivor),
        "without saved state the ids differ (the test means something)"
    );
}

/// An incident counts its events per release (the `release` field), though the other fields are
/// dropped before the events cross to the worker that owns their template.
#[test]
fn incidents_count_their_events_per_release() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines: Vec<String> = (0..60u32)
        .map(|i| {
            let release = if i < 40 { "v1" } else { "v2" };
            format!(
                "time=2024-03-01T10:00:{:02}Z level=error msg=\"payment declined for order {}\" release={release} region=eu-{}",
                i,
                1000 + i,
                i % 3
            )
        })
        .collect();
    let path = dir.path().join("releases.log");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    for workers in [1, 3] {
        let out = run(
            &root().join("fixtures/golden.toml"),
            std::slice::from_ref(&path),
            workers,
        );
        let finals = finals(&out.incidents);
        assert_eq!(finals.len(), 1, "{workers} workers: {:?}", out.incidents);
        let incident = finals.values().next().expect("one incident");
        let releases: std::collections::BTreeMap<&str, u64> = incident["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .map(|r| {
                (
                    r["release"].as_str().expect("name"),
                    r["count"].as_u64().expect("count"),
                )
            })
            .collect();
        assert_eq!(
            releases,
            [("v1", 40), ("v2", 20)].into_iter().collect(),
            "{workers} workers"
        );
    }
}
