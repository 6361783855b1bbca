#!/usr/bin/env python3
"""Soak: generated mixed logs at a fixed rate for a while, RSS, throughput and latency over time.

Runs `hephaestus run --rate R --loop K` on a generated file with the metrics endpoint on, scrapes
/metrics every --every seconds (lines ingested, resident memory, the event-to-incident
histogram), stops the job gracefully after --seconds and prints one row per interval, then the
job's own summary. `--json` prints everything as one JSON object (scripts/reliability.py uses it).

    python3 scripts/soak.py [--seconds 300] [--rate 100000] [--workers 1] [--unique]
"""
import argparse, json, os, re, signal, socket, subprocess, sys, tempfile, time, urllib.request

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=int, default=300)
ap.add_argument("--rate", type=int, default=100_000)
ap.add_argument("--workers", type=int, default=1)
ap.add_argument("--every", type=float, default=5.0)
ap.add_argument("--unique", action="store_true", help="adversarial: every line random words")
ap.add_argument("--json", action="store_true")
args = ap.parse_args()
binary = os.path.join(root, "target", "release", "hephaestus")
BUCKET = re.compile(r'^hephaestus_event_to_incident_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)$')


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    lines = sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("hephaestus_ingested_lines_total"))
    rss = next((float(l.split()[-1]) for l in text.splitlines() if l.startswith("hephaestus_process_resident_memory_bytes ")), 0.0)
    buckets = {}
    for l in text.splitlines():
        m = BUCKET.match(l)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0.0) + float(m.group(2))
    return lines, rss, buckets


def p99(now, before):
    """The 99th percentile's bucket bound over the interval (cumulative buckets)."""
    delta = {le: now.get(le, 0) - before.get(le, 0) for le in now}
    total = delta.get(float("inf"), 0)
    if total <= 0:
        return None
    for le in sorted(delta):
        if delta[le] >= 0.99 * total:
            return le
    return None


def main():
    if not os.path.exists(binary):
        sys.exit("build first: cargo build --release")
    with tempfile.TemporaryDirectory(dir=os.path.join(root, "target")) as tmp:
        log = os.path.join(tmp, "soak.log")
        lines_in_file = 1_000_000
        gen = [binary, "generate", "--lines", str(lines_in_file), "--seed", "11", "-o", log]
        subprocess.run(gen + (["--unique", "--errors", "0.1"] if args.unique else []), check=True, capture_output=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        spec = os.path.join(tmp, "soak.toml")
        open(spec, "w").write(f'[job]\nname = "soak"\n\n[[sources]]\npaths = ["soak.log"]\n\n[output]\nincidents = "none"\n'
                              f'dead_letters = "dead.jsonl"\nsummary = true\n\n[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
        loops = args.rate * args.seconds // lines_in_file + 2
        job = subprocess.Popen([binary, "run", spec, "--workers", str(args.workers), "--rate", str(args.rate), "--loop", str(loops)],
                               stderr=subprocess.PIPE, text=True)
        rows, start = [], time.time()
        prev = None
        while time.time() - start < args.seconds and job.poll() is None:
            time.sleep(args.every)
            try:
                lines, rss, buckets = scrape(port)
            except OSError:
                continue
            t = time.time() - start
            if prev:
                rate = (lines - prev[1]) / (t - prev[0])
                q = p99(buckets, prev[3])
                rows.append({"t": round(t, 1), "lines_per_second": round(rate), "rss_mib": round(rss / 2**20, 1),
                             "p99_ms": None if q is None else (q * 1000 if q != float("inf") else "inf")})
                if not args.json:
                    print(f"{t:7.1f} s  {rate:10,.0f} lines/s  RSS {rss / 2**20:7.1f} MiB  p99 <= {rows[-1]['p99_ms']} ms", flush=True)
            prev = (t, lines, rss, buckets)
        job.send_signal(signal.SIGTERM)
        _, err = job.communicate(timeout=120)
        summary = next((json.loads(l[len("hephaestus: summary "):]) for l in err.splitlines() if l.startswith("hephaestus: summary ")), {})
        dead = sum(1 for _ in open(os.path.join(tmp, "dead.jsonl"))) if os.path.exists(os.path.join(tmp, "dead.jsonl")) else 0
    out = {"seconds": args.seconds, "rate": args.rate, "workers": args.workers, "unique": args.unique, "rows": rows,
           "summary": summary, "dead_letters_written": dead}
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(summary))


main()
