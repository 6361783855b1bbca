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
    cmd.args(extra).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
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
    let (o0, o1) = (
        p0.take().wait_with_output().expect("process 0"),
        p1.take().wait_with_output().expect("process 1"),
    );
    assert!(
        o0.status.success(),
        "process 0: {}",
        String::from_utf8_lossy(&o0.stderr)
    );
    assert!(
        o1.status.success(),
        "process 1: {}",
        String::from_utf8_lossy(&o1.stderr)
    );

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
