#!/usr/bin/env python3
"""Replay benchmarks: writes BENCHMARKS.md from one run (about 2 minutes on 2 cores).

Builds the release binary, makes 1M-line files (HDFS_2k and BGL_2k from ../shared/loghub
replayed 500 times, when present, and generated mixed logs), replays each through the full
pipeline (parse, detect, cluster, incidents; no sink I/O) at 1 and 2 workers, runs the mixed
logs at a fixed 100,000 lines/s for 60 s while sampling the process's RSS, and runs Python
Drain3 (installed from PyPI into a virtual environment under target/) on the same files.

    python3 scripts/bench-replay.py [--runs 5] [--loop 3] [--rate-seconds 60] [--out BENCHMARKS.md]
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--loop", type=int, default=3,
                help="passes over each file per run (--loop): 3 M lines, so a run measures the steady state, not start-up")
ap.add_argument("--rate", type=int, default=100_000)
ap.add_argument("--rate-seconds", type=int, default=60)
ap.add_argument("--loghub", default=os.path.join(root, "..", "shared", "loghub"))
ap.add_argument("--out", default=os.path.join(root, "BENCHMARKS.md"))
ap.add_argument("--no-drain3", action="store_true")
ap.add_argument("--drain3-lines", type=int, default=100_000,
                help="lines of each file fed to Drain3 (its clusters explode on the mixed logs: 1 k lines/s)")
args = ap.parse_args()
binary = os.path.join(root, "target", "release", "hephaestus")


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def summary(stderr):
    for line in stderr.splitlines():
        if line.startswith("hephaestus: summary "):
            return json.loads(line[len("hephaestus: summary "):])
    sys.exit(f"no summary in:\n{stderr}")


def spec(tmp, name, header, parts=1):
    """A job over `name.log`, or over its `parts` pieces `name.0.log`, `name.1.log`, …"""
    path = os.path.join(tmp, f"{name}{'' if parts == 1 else f'.{parts}'}.toml")
    head = f'header = "{header}"\n' if header else ""
    logs = f'"{name}.log"' if parts == 1 else ", ".join(f'"{name}.{i}.log"' for i in range(parts))
    with open(path, "w") as f:
        f.write(f'[job]\nname = "bench-{name}"\n\n[[sources]]\npaths = [{logs}]\n{head}\n'
                '[output]\nincidents = "none"\ndead_letters = "dead.jsonl"\nsummary = true\n\n[metrics]\nenabled = false\n')
    return path


def run(spec_path, workers, extra=()):
    res = subprocess.run([binary, "run", spec_path, "--workers", str(workers), *extra], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{spec_path}: {res.stderr}")
    return summary(res.stderr)


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None


def fixed_rate(spec_path, lines_in_file):
    loops = max(1, int(args.rate * args.rate_seconds / lines_in_file) + 1)
    cmd = [binary, "run", spec_path, "--rate", str(args.rate), "--loop", str(loops)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    start, samples = time.time(), []
    while proc.poll() is None and time.time() - start < args.rate_seconds:
        r = rss_of(proc.pid)
        if r:
            samples.append((time.time() - start, r))
        time.sleep(0.5)
    proc.terminate()  # a graceful stop: it flushes and prints its summary
    _, err = proc.communicate()
    s = summary(err)
    window = [r for t, r in samples if 10 <= t < 20]
    last = [r for t, r in samples if t >= args.rate_seconds - 10]
    return s, samples, statistics.mean(window) if window else 0, statistics.mean(last) if last else 0


DRAIN3 = r'''
import json, re, sys, time
from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig
path, fmt, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
regex = None
if fmt:
    parts = re.split(r"(<[^<>]+>)", fmt)
    pat = "".join(("(?P<%s>.*?)" % p[1:-1]) if p.startswith("<") else re.sub(" +", r"\\s+", re.escape(p)) for p in parts)
    regex = re.compile("^" + pat + "$")
cfg = TemplateMinerConfig()
cfg.profiling_enabled = False
miner = TemplateMiner(config=cfg)
n = 0
t0 = time.time()
with open(path, errors="replace") as f:
    for line in f:
        line = line.rstrip("\n")
        if regex:
            m = regex.match(line)
            line = m.group("Content") if m else line
        miner.add_log_message(line)
        n += 1
        if n >= limit:
            break
dt = time.time() - t0
print(json.dumps({"lines": n, "seconds": dt, "lines_per_second": n / dt, "clusters": len(miner.drain.clusters)}))
'''


def drain3(python, path, fmt):
    res = sh([python, "-c", DRAIN3, path, fmt or "", str(args.drain3_lines)])
    return json.loads(res.stdout)


def main():
    say("building the release binary")
    sh(["cargo", "build", "--release", "--locked"], cwd=root)
    formats = {}
    fj = os.path.join(args.loghub, "formats.json")
    if os.path.exists(fj):
        formats = {k: v["log_format"] for k, v in json.load(open(fj)).items()}
    with tempfile.TemporaryDirectory(dir=os.path.join(root, "target")) as tmp:
        files = []
        for name in ["HDFS", "BGL"]:
            src = os.path.join(args.loghub, name, f"{name}_2k.log")
            if not os.path.exists(src):
                say(f"{src} absent: skipping {name}")
                continue
            data = open(src, "rb").read()
            data += b"" if data.endswith(b"\n") else b"\n"
            open(os.path.join(tmp, f"{name}.log"), "wb").write(data * 500)
            files.append((name, f"{name}_2k × 500", formats[name]))
        sh([binary, "generate", "--lines", "1000000", "--seed", "1", "--output", os.path.join(tmp, "mixed.log")])
        files.append(("mixed", "generated mixed (seed 1)", None))
        rows = []
        loop = ("--loop", str(args.loop))
        for name, label, header in files:
            sp = spec(tmp, name, header)
            for w in (1, 2):
                say(f"{label}, {w} worker(s), {args.runs} runs")
                runs = sorted((run(sp, w, loop) for _ in range(args.runs)), key=lambda s: s["lines_per_second"])
                rows.append((label, w, 1, runs))
            # The same lines as two inputs, each read and joined by its own worker.
            lines = open(os.path.join(tmp, f"{name}.log"), "rb").read().split(b"\n")[:-1]
            half = len(lines) // 2
            for i, part in enumerate((lines[:half], lines[half:])):
                open(os.path.join(tmp, f"{name}.{i}.log"), "wb").write(b"\n".join(part) + b"\n")
            say(f"{label} as two inputs, 2 workers, {args.runs} runs")
            runs = sorted((run(spec(tmp, name, header, 2), 2, loop) for _ in range(args.runs)), key=lambda s: s["lines_per_second"])
            rows.append((label, 2, 2, runs))
        say(f"mixed logs at {args.rate} lines/s for {args.rate_seconds} s")
        rate_s, samples, rss_10_20, rss_last = fixed_rate(spec(tmp, "mixed", None), 1_000_000)
        drains = []
        if not args.no_drain3:
            venv = os.path.join(root, "target", "bench-venv")
            if not os.path.exists(os.path.join(venv, "bin", "python")):
                say("installing drain3 into target/bench-venv")
                sh([sys.executable, "-m", "venv", venv])
                sh([os.path.join(venv, "bin", "pip"), "install", "--quiet", "drain3==0.9.11"])
            for name, label, header in files:
                say(f"Drain3 on {label}")
                drains.append((label, drain3(os.path.join(venv, "bin", "python"), os.path.join(tmp, f"{name}.log"), header)))
    write(rows, rate_s, samples, rss_10_20, rss_last, drains)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    rustc = sh(["rustc", "--version"]).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores, {mem} GiB, Linux {platform.release()}, {rustc}"


def write(rows, rate_s, samples, rss_10_20, rss_last, drains):
    mb = 1 << 20
    out = ["# Benchmarks", "",
           f"One run of `python3 scripts/bench-replay.py` on {time.strftime('%Y-%m-%d')}: {machine()}.",
           "Release build, the full pipeline (parse, detect, cluster, incidents; incidents not written),",
           f"each file replayed {args.loop} times per run (`--loop {args.loop}`), medians of {args.runs} runs.",
           "Latency: from a line's ingestion to its incident's update. The range is the slowest and",
           "fastest of the runs: two-worker runs on this virtual machine swing by a third from minute",
           "to minute with nothing else running (one-worker runs by under a tenth).", "",
           "| file | inputs | workers | lines/s | per worker | range | MB/s | p50 / p99 / max latency | peak RSS | incidents |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for label, w, parts, runs in rows:
        s = runs[len(runs) // 2]
        lat = s["event_to_incident"]
        latency = f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']} ms" if lat["events"] else "no error events"
        spread = f"{runs[0]['lines_per_second'] / 1e6:.2f}–{runs[-1]['lines_per_second'] / 1e6:.2f} M"
        out.append(f"| {label} | {parts} | {w} | {s['lines_per_second'] / 1e6:.2f} M | {s['lines_per_second'] / w / 1e6:.2f} M | "
                   f"{spread} | {s['mb_per_second']:.0f} | {latency} | {s['peak_rss_bytes'] / mb:.0f} MiB | {s['incidents']} |")
    out += ["", "Targets: 0.5 M lines/s per worker on the generated logs, 1 M on HDFS and BGL. One input is",
            "read and joined into multiline records by one worker, which deals the records out in chunks",
            "(a quarter of an epoch each) to every worker of the process for parsing and detection; clustering and",
            "incidents are partitioned by template and fingerprint, so where error events fall in a few",
            "of them (BGL) one worker holds most of that work. The `inputs = 2` rows are the same lines",
            "split in two files."]
    lat = rate_s["event_to_incident"]
    r = rate_s.get("rate") or {}
    out += ["", f"## Fixed rate: generated mixed logs at {args.rate:,} lines/s for {args.rate_seconds} s", "",
            f"`hephaestus run SPEC --rate {args.rate} --loop K`, stopped after {args.rate_seconds} s, RSS sampled every 0.5 s:", "",
            f"- achieved {r.get('achieved', 0):,.0f} lines/s (asked {r.get('asked', 0):,.0f}; kept up: {r.get('kept_up')})",
            f"- event-to-incident latency p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms ({lat['events']:,} error events)",
            f"- RSS: mean {rss_10_20 / mb:.1f} MiB over 10–20 s, {rss_last / mb:.1f} MiB over the last 10 s "
            f"({(rss_last / rss_10_20 - 1) * 100 if rss_10_20 else 0:+.1f} %); peak {rate_s['peak_rss_bytes'] / mb:.1f} MiB"]
    if drains:
        out += ["", "## Python Drain3 on the same files", "",
                "Drain3 0.9.11 (PyPI), default configuration, template mining only (no parsing of anything else,",
                f"no incidents), the Loghub header stripped with the same format, on the first {args.drain3_lines:,} lines", "",
                "| file | lines/s | clusters |", "|---|---|---|"]
        for label, d in drains:
            out.append(f"| {label} | {d['lines_per_second'] / 1e3:.0f} k | {d['clusters']} |")
    out += ["", "Reproduce: `python3 scripts/bench-replay.py` (about 3 minutes; `--no-drain3` skips Drain3)."]
    open(args.out, "w").write("\n".join(out) + "\n")
    say(f"wrote {args.out}")


main()
