//! Two timely processes on loopback write the same incidents as one process.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::{Reaped, cluster_port, files_with_ext, root};

fn logs() -> Vec<PathBuf> {
    files_with_ext(&root().join("fixtures/logs"), "log")
}

fn command(out: &std::path::Path, extra: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hephaestus"));
    cmd.arg("run")
        .arg(root().join("fixtures/golden.toml"))
        .arg("--no-metrics")
        .arg("--workers")
        .arg("2")
        .arg("--output")
        .arg(out);
    for log in logs() {
        cmd.arg("--input").arg(log);
    }
    // stderr to a file: a pipe read only after the other process exits could fill and block.
    let err = std::fs::File::create(out.with_extension("stderr")).expect("stderr file");
    cmd.args(extra).stdout(Stdio::null()).stderr(err);
    cmd
}

fn said(out: &std::path::Path) -> String {
    std::fs::read_to_string(out.with_extension("stderr")).unwrap_or_default()
}

#[test]
fn two_processes_match_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let single = dir.path().join("single.jsonl");
    let status = command(&single, &[]).status().expect("run single process");
    assert!(status.success());

    let hostfile = dir.path().join("hosts.txt");
    std::fs::write(
        &hostfile,
        format!(
            "127.0.0.1:{}\n127.0.0.1:{}\n",
            cluster_port(),
            cluster_port()
        ),
    )
    .expect("hostfile");
    let cluster = |i: usize| {
        let out = dir.path().join(format!("p{i}.jsonl"));
        let args = [
            "--processes".to_string(),
            "2".into(),
            "--process".into(),
            i.to_string(),
            "--hostfile".into(),
            hostfile.display().to_string(),
        ];
        Reaped(Some(command(&out, &args).spawn().expect("spawn process")))
    };
    let p1 = cluster(1);
    let p0 = cluster(0);
    let (s0, s1) = (
        p0.take().wait().expect("process 0"),
        p1.take().wait().expect("process 1"),
    );
    let out = |i: usize| dir.path().join(format!("p{i}.jsonl"));
    assert!(s0.success(), "process 0: {}", said(&out(0)));
    assert!(s1.success(), "process 1: {}", said(&out(1)));

    let one = std::fs::read_to_string(&single).expect("single output");
    let two = std::fs::read_to_string(dir.path().join("p0.jsonl")).expect("process 0 output");
    assert!(one.lines().count() >= 20);
    assert_eq!(
        one, two,
        "process 0 of a 2-process job writes what a single process writes"
    );
    assert!(
        !dir.path().join("p1.jsonl").exists(),
        "only process 0 writes incidents"
    );
}
