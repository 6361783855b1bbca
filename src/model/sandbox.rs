//! Running an untrusted command (a build, a test suite) on a worktree, contained.
//!
//! In: a directory (the only writable place besides a private, discarded `/tmp`), a shell
//! command, limits. Out: how it ended (exit
//! code, signal, timed out), its output capped at a size, and how long it took. Inside:
//! bubblewrap gives a read-only view of the host, a private `/tmp`, no network and its own PID
//! namespace (its processes die with it); `prlimit` caps address space (memory) and CPU time;
//! a pids cgroup (v1 or v2, when the host lets us make one) caps the number of processes, with
//! `RLIMIT_NPROC` as the fallback (which the kernel does not enforce for root); a wall-clock
//! timeout kills the whole process group. State: none; each run makes and removes its cgroup.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `[model.sandbox]`: the limits of every validation step.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Address space per process, in MiB (a build needs room: rustc maps a lot).
    pub memory_mib: u64,
    /// CPU seconds per process.
    pub cpu_seconds: u64,
    /// Processes (and threads) in the sandbox at once.
    pub processes: u64,
    /// Wall-clock time of the whole command.
    pub timeout: crate::core::time::Duration,
    /// Output kept per stream; the rest is dropped and marked.
    pub output_kib: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 4096,
            cpu_seconds: 600,
            processes: 256,
            timeout: crate::core::time::Duration(300_000),
            output_kib: 64,
        }
    }
}

/// How a sandboxed command ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
    /// Some output was dropped (over `output_kib`).
    pub truncated: bool,
    pub seconds: f64,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.exit == Exit::Code(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "sandbox: bubblewrap (`bwrap`) not found: install it (scripts/test does, `apt-get install bubblewrap`)"
    )]
    NoBwrap,
    #[error("sandbox: {0}")]
    Io(#[from] std::io::Error),
}

/// A pids cgroup for one run, removed on drop.
struct Cgroup(PathBuf);

impl Cgroup {
    fn create(processes: u64) -> Option<Cgroup> {
        let name = format!(
            "hephaestus-{}-{}",
            std::process::id(),
            crate::core::time::now_ms()
        );
        // cgroup v1's pids hierarchy, else v2's unified one (with the pids controller).
        for root in [
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ] {
            let dir = Path::new(root).join(&name);
            if std::fs::create_dir(&dir).is_ok() {
                if std::fs::write(dir.join("pids.max"), processes.to_string()).is_ok() {
                    return Some(Cgroup(dir));
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
        None
    }

    /// Kills whatever is still in it.
    fn kill_all(&self) {
        if let Ok(procs) = std::fs::read_to_string(self.0.join("cgroup.procs")) {
            for pid in procs.split_whitespace() {
                let _ = Command::new("kill")
                    .args(["-KILL", pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Reads a stream to its end, keeping the first `cap` bytes.
fn capped(
    mut r: impl Read + Send + 'static,
    cap: usize,
) -> std::thread::JoinHandle<(Vec<u8>, bool)> {
    std::thread::spawn(move || {
        let (mut kept, mut buf, mut over) = (Vec::new(), [0u8; 8192], false);
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = cap.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
            over |= n > room;
        }
        (kept, over)
    })
}

/// `/tmp/<first>` when `dir` is below `/tmp` (the part of the host's /tmp that must stay visible).
fn tmp_ancestor(dir: &str) -> Option<String> {
    let rest = dir.strip_prefix("/tmp/")?;
    let first = rest.split('/').next().filter(|f| !f.is_empty())?;
    Some(format!("/tmp/{first}"))
}

/// Runs `command` (with `sh -c`) in `dir` under the limits; `env` is added to a small clean
/// environment (PATH, HOME=/tmp, the Rust toolchain's homes, CARGO_NET_OFFLINE).
pub fn run(
    dir: &Path,
    command: &str,
    limits: &Limits,
    env: &[(&str, &str)],
) -> Result<Run, SandboxError> {
    let bwrap = find("bwrap").ok_or(SandboxError::NoBwrap)?;
    let prlimit = find("prlimit").ok_or(SandboxError::NoBwrap)?;
    let dir = dir.canonicalize()?;
    let d = dir.to_string_lossy().into_owned();
    let cgroup = Cgroup::create(limits.processes);
    let started = Instant::now();
    let mut cmd = Command::new("sh");
    // Join the cgroup first (when there is one), then set the rlimits, then enter bubblewrap.
    cmd.arg("-c")
        .arg(r#"cg=$1; shift; if [ -n "$cg" ]; then echo $$ > "$cg/cgroup.procs" || exit 125; fi; exec "$@""#)
        .arg("sandbox")
        .arg(cgroup.as_ref().map(|c| c.0.to_string_lossy().into_owned()).unwrap_or_default())
        .arg(prlimit)
        .arg(format!("--as={}", limits.memory_mib.saturating_mul(1 << 20)))
        .arg(format!("--cpu={}", limits.cpu_seconds))
        .arg(format!("--nproc={}", limits.processes))
        .arg("--")
        .arg(bwrap)
        .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
        // A directory under /tmp: its top-level ancestor comes back read-only over the private
        // /tmp, so that writes next to the worktree fail there too.
        .args(tmp_ancestor(&d).map(|a| ["--ro-bind".to_string(), a.clone(), a]).into_iter().flatten())
        .args(["--bind", &d, &d, "--chdir", &d])
        .args(["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"])
        .args(["--setenv", "PATH", &std::env::var("PATH").unwrap_or_default()])
        .args(["--setenv", "HOME", "/tmp", "--setenv", "CARGO_HOME", "/tmp/cargo"])
        .args(["--setenv", "CARGO_NET_OFFLINE", "true", "--setenv", "LANG", "C.UTF-8"]);
    if let Ok(rustup) = std::env::var("RUSTUP_HOME")
        .or_else(|_| std::env::var("HOME").map(|h| format!("{h}/.rustup")))
    {
        cmd.args(["--setenv", "RUSTUP_HOME", &rustup]);
    }
    for (k, v) in env {
        cmd.args(["--setenv", k, v]);
    }
    cmd.args(["--", "sh", "-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let cap = limits.output_kib * 1024;
    let out = child.stdout.take().map(|s| capped(s, cap));
    let err = child.stderr.take().map(|s| capped(s, cap));
    let deadline = started + Duration::from_millis(limits.timeout.0.max(1) as u64);
    let exit = loop {
        if let Some(status) = child.try_wait()? {
            use std::os::unix::process::ExitStatusExt;
            break match (status.code(), status.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(s)) => Exit::Signal(s),
                (None, None) => Exit::Code(-1),
            };
        }
        if Instant::now() >= deadline {
            // The process group (sh, prlimit, bwrap) and everything in the cgroup.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            if let Some(c) = &cgroup {
                c.kill_all();
            }
            let _ = child.wait();
            break Exit::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(cgroup);
    let join = |h: Option<std::thread::JoinHandle<(Vec<u8>, bool)>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let ((stdout, t1), (stderr, t2)) = (join(out), join(err));
    Ok(Run {
        exit,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        truncated: t1 || t2,
        seconds: started.elapsed().as_secs_f64(),
    })
}
