#!/usr/bin/env python3
"""What serving metrics costs a replay: throughput with the Prometheus endpoint on vs off.

Builds a 1M-line log from the fixture logs (copies renumbered, so messages vary like real ones:
the masker and miner work as in production), then replays it with `dataflows/bench.toml`
alternately with metrics off (the spec's default) and on (the same spec with the endpoint
enabled on a free loopback port: histograms, busy time from timely's logging, the exporter),
`--runs` times each, and prints the medians and the difference.

    cargo build --release && scripts/bench-metrics.py [--runs 7] [--workers 1] [--lines 1000000]
"""

import argparse, json, os, re, statistics, subprocess, sys, tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(root, "target/release/hephaestus"))
ap.add_argument("--runs", type=int, default=7)
ap.add_argument("--workers", type=int, default=1)
ap.add_argument("--lines", type=int, default=1_000_000)
args = ap.parse_args()

if not os.path.exists(args.bin):
    sys.exit(f"no binary at {args.bin}: cargo build --release first")

fixtures = os.path.join(root, "fixtures", "logs")
sample = []
for name in sorted(os.listdir(fixtures)):
    if name.endswith(".log"):
        with open(os.path.join(fixtures, name), encoding="utf-8", errors="replace") as f:
            sample.extend(f.read().splitlines())

number = re.compile(r"(?<![\w.:-])\d{2,6}(?![\w.:-])")

with tempfile.TemporaryDirectory() as tmp:
    big = os.path.join(tmp, "big.log")
    with open(big, "w", encoding="utf-8") as out:
        written, copy = 0, 0
        while written < args.lines:
            for line in sample:
                out.write(number.sub(lambda m: str(int(m.group()) + copy), line) + "\n")
            written += len(sample)
            copy += 1
    spec_off = os.path.join(root, "dataflows", "bench.toml")
    with open(spec_off, encoding="utf-8") as f:
        text = f.read()
    spec_on = os.path.join(tmp, "bench-metrics.toml")
    with open(spec_on, "w", encoding="utf-8") as f:
        f.write(text.replace('[metrics]\nenabled = false', '[metrics]\nenabled = true\nlisten = "127.0.0.1:0"'))

    def run(spec):
        cmd = [args.bin, "run", spec, "--input", big, "--workers", str(args.workers)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
        line = next(l for l in p.stderr.splitlines() if l.startswith("hephaestus: summary "))
        return json.loads(line[len("hephaestus: summary "):])["lines_per_second"]

    rates = {"off": [], "on": []}
    for i in range(args.runs):
        for mode, spec in (("off", spec_off), ("on", spec_on)) if i % 2 == 0 else (("on", spec_on), ("off", spec_off)):
            rates[mode].append(run(spec))
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    print(f"{written} lines, {args.workers} worker(s), {args.runs} runs each, medians:")
    print(f"  metrics off: {off/1e6:.2f} M lines/s   (runs: {', '.join(f'{r/1e6:.2f}' for r in rates['off'])})")
    print(f"  metrics on:  {on/1e6:.2f} M lines/s   (runs: {', '.join(f'{r/1e6:.2f}' for r in rates['on'])})")
    print(f"  difference:  {100 * (on - off) / off:+.1f}%")
