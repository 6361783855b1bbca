#!/usr/bin/env python3
"""Two binaries side by side, in one run, on the same files: the ratio of new to old.

Makes 1M-line files (HDFS_2k and BGL_2k from ../shared/loghub replayed 500 times), then for
each file runs `templates` (whole process, one worker) and `run` (parse, detect, cluster,
incidents; no sink I/O; one worker), alternating the two binaries `--runs` times, and prints a
Markdown table of the medians (lines/s) and new/old. Build the old binary from the commit to
compare with, e.g.

    git worktree add /tmp/old COMMIT && (cd /tmp/old && cargo build --release)
    python3 scripts/bench-compare.py /tmp/old/target/release/hephaestus target/release/hephaestus
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("old")
ap.add_argument("new")
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--loghub", default=os.path.join(root, "..", "shared", "loghub"))
args = ap.parse_args()


def line_of(stderr, prefix):
    for line in stderr.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    sys.exit(f"no '{prefix}' line in:\n{stderr}")


def templates(binary, log, fmt, tmp):
    res = subprocess.run([binary, "templates", log, "--log-format", fmt, "--workers", "1",
                          "--assignments", os.path.join(tmp, "out.csv")], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{binary} templates: {res.stderr}")
    return line_of(res.stderr, "hephaestus: templates ")["lines_per_second"]


def run(binary, spec):
    res = subprocess.run([binary, "run", spec, "--workers", "1"], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{binary} run: {res.stderr}")
    return line_of(res.stderr, "hephaestus: summary ")["lines_per_second"]


def main():
    formats = json.load(open(os.path.join(args.loghub, "formats.json")))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {cpu}; {args.runs} runs, binaries alternated\n")
    print("| file | command | old lines/s | new lines/s | new / old |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=os.path.join(root, "target")) as tmp:
        for name in ["HDFS", "BGL"]:
            src = os.path.join(args.loghub, name, f"{name}_2k.log")
            if not os.path.exists(src):
                print(f"{src} absent: skipping {name}", file=sys.stderr)
                continue
            data = open(src, "rb").read()
            data += b"" if data.endswith(b"\n") else b"\n"
            log = os.path.join(tmp, f"{name}.log")
            open(log, "wb").write(data * 500)
            fmt = formats[name]["log_format"]
            spec = os.path.join(tmp, f"{name}.toml")
            with open(spec, "w") as f:
                f.write(f'[job]\nname = "compare-{name}"\n\n[[sources]]\npaths = ["{name}.log"]\n'
                        f'header = "{fmt}"\n\n[output]\nincidents = "none"\ndead_letters = "dead.jsonl"\n'
                        'summary = true\n\n[metrics]\nenabled = false\n')
            for label, measure in [("templates", lambda b: templates(b, log, fmt, tmp)),
                                   ("run", lambda b: run(b, spec))]:
                got = {args.old: [], args.new: []}
                for _ in range(args.runs):
                    for b in (args.old, args.new):
                        got[b].append(measure(b))
                old, new = (statistics.median(got[b]) for b in (args.old, args.new))
                print(f"| {name}_2k x 500 | {label} | {old / 1e6:.2f} M | {new / 1e6:.2f} M | {new / old:.2f} |",
                      flush=True)


main()
