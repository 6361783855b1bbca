//! The validation sandbox, with real processes: runaway commands are stopped by their limits,
//! and nothing inside reaches the network or writes outside its worktree.

use hephaestus::model::sandbox::{Exit, Limits, run};

fn limits() -> Limits {
    Limits {
        timeout: hephaestus::core::time::Duration(20_000),
        ..Limits::default()
    }
}

#[test]
fn an_endless_loop_is_killed_on_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Limits {
        timeout: hephaestus::core::time::Duration(1_000),
        ..limits()
    };
    let r = run(dir.path(), "while :; do :; done", &l, &[]).expect("run");
    assert_eq!(r.exit, Exit::TimedOut);
    assert!(r.seconds < 5.0, "killed after {} s", r.seconds);
}

#[test]
fn a_memory_bomb_hits_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Limits {
        memory_mib: 256,
        ..limits()
    };
    let r = run(
        dir.path(),
        "python3 -c 'x = bytearray(1 << 30); print(len(x))'",
        &l,
        &[],
    )
    .expect("run");
    assert!(
        !r.ok(),
        "a 1 GiB allocation under a 256 MiB limit succeeded: {r:?}"
    );
    assert!(r.stderr.contains("MemoryError"), "{}", r.stderr);
    // The same program with room succeeds: the limit, not the program, stopped it.
    let small = run(
        dir.path(),
        "python3 -c 'x = bytearray(1 << 20); print(len(x))'",
        &l,
        &[],
    )
    .expect("run");
    assert!(small.ok(), "{small:?}");
}

#[test]
fn a_network_connect_fails() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "reachable from outside"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), timeout=3)'"
    );
    let r = run(dir.path(), &script, &limits(), &[]).expect("run");
    assert!(!r.ok(), "connected from inside the sandbox: {r:?}");
    assert!(
        r.stderr.contains("Connection refused") || r.stderr.contains("unreachable"),
        "{}",
        r.stderr
    );
}

#[test]
fn writes_land_in_the_worktree_and_nowhere_else() {
    // Worktrees usually live outside /tmp (inside the sandbox /tmp is private scratch space); one
    // under /tmp (a checkout in /tmp) must be as contained.
    let outers = [
        tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir"),
        tempfile::tempdir().expect("tempdir in /tmp"),
    ];
    for outer in &outers {
        let dir = outer.path().join("worktree");
        std::fs::create_dir(&dir).expect("mkdir");
        let r = run(
            &dir,
            "echo hi > inside.txt && echo hi > ../escape.txt",
            &limits(),
            &[],
        )
        .expect("run");
        assert!(!r.ok(), "{}: {r:?}", dir.display());
        assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
        assert_eq!(
            std::fs::read_to_string(dir.join("inside.txt")).expect("inside"),
            "hi\n"
        );
        assert!(!outer.path().join("escape.txt").exists());
        let home = run(&dir, "touch /root/escape /etc/escape", &limits(), &[]).expect("run");
        assert!(!home.ok());
    }
}

#[test]
fn processes_are_capped_and_output_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Limits {
        processes: 16,
        ..limits()
    };
    let r = run(
        dir.path(),
        "for i in $(seq 1 64); do sleep 1 & done; wait",
        &l,
        &[],
    )
    .expect("run");
    assert!(
        r.stderr.to_lowercase().contains("fork"),
        "64 processes under a cap of 16: {r:?}"
    );

    let l = Limits {
        output_kib: 4,
        ..limits()
    };
    let r = run(dir.path(), "yes | head -c 1000000", &l, &[]).expect("run");
    assert!(
        r.ok() && r.truncated && r.stdout.len() == 4096,
        "{} bytes",
        r.stdout.len()
    );
}
