#!/usr/bin/env python3
"""Score `hephaestus templates` on every Loghub dataset in ../shared/loghub.

Accuracy (default): for each dataset, run the miner on the 2k sample with the dataset's header
format (the only per-dataset input), score the assignments with eval_ga.py (GA, FGA) and report
the templates found. Prints a Markdown table with the averages; `--json` prints raw results.

Throughput (`--throughput`): replay HDFS_2k and BGL_2k 500 times (1M lines each, in a temporary
directory), run `templates` with 1 and 2 workers `--runs` times each, and print the medians of
the whole run (start to CSV written) and of the steady state (reading, masking, mining).

    scripts/loghub.py [--bin target/release/hephaestus] [--loghub ../shared/loghub]
    scripts/loghub.py --throughput [--runs 7]

Exits 0 with a notice when the Loghub directory is absent.
"""
import argparse, json, os, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(root, "target/release/hephaestus"))
ap.add_argument("--loghub", default=os.path.join(root, "..", "shared", "loghub"))
ap.add_argument("--workers", type=int, default=1)
ap.add_argument("--json", action="store_true")
ap.add_argument("--only", help="comma-separated dataset names")
ap.add_argument("--throughput", action="store_true")
ap.add_argument("--runs", type=int, default=7)
args = ap.parse_args()

if not os.path.isdir(args.loghub):
    print(f"loghub data not found at {args.loghub}; nothing to score")
    sys.exit(0)
formats = json.load(open(os.path.join(args.loghub, "formats.json")))
names = sorted(formats) if not args.only else args.only.split(",")


def report_of(stderr):
    for line in stderr.splitlines():
        if line.startswith("hephaestus: templates "):
            return json.loads(line[len("hephaestus: templates "):])
    return {}


if args.throughput:
    import statistics
    print("| file | workers | lines/s (whole run) | lines/s (steady state) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["HDFS", "BGL"]:
            data = open(os.path.join(args.loghub, name, f"{name}_2k.log"), "rb").read()
            if not data.endswith(b"\n"):
                data += b"\n"
            big = os.path.join(tmp, f"{name}_1M.log")
            open(big, "wb").write(data * 500)
            runs = {1: [], 2: []}
            for _ in range(args.runs):
                for w in (1, 2):
                    res = subprocess.run([args.bin, "templates", big, "--log-format", formats[name]["log_format"],
                                          "--workers", str(w), "--assignments", os.path.join(tmp, "out.csv")],
                                         capture_output=True, text=True, check=True)
                    r = report_of(res.stderr)
                    runs[w].append((r["lines_per_second"], r["mining_lines_per_second"]))
            for w in (1, 2):
                whole = statistics.median(x[0] for x in runs[w])
                steady = statistics.median(x[1] for x in runs[w])
                print(f"| {name}_2k x 500 (1M lines) | {w} | {whole/1e6:.2f} M | {steady/1e6:.2f} M |")
    sys.exit(0)
rows = []
with tempfile.TemporaryDirectory() as tmp:
    for name in names:
        log = os.path.join(args.loghub, name, f"{name}_2k.log")
        gt = os.path.join(args.loghub, name, f"{name}_2k.log_structured_corrected.csv")
        out = os.path.join(tmp, f"{name}.csv")
        cmd = [args.bin, "templates", log, "--log-format", formats[name]["log_format"],
               "--workers", str(args.workers), "--assignments", out]
        t0 = time.time()
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"{name}: {' '.join(cmd)} failed:\n{res.stderr}")
        report = report_of(res.stderr)
        score = subprocess.run([sys.executable, os.path.join(args.loghub, "eval_ga.py"), gt, out, "--json"],
                               capture_output=True, text=True, check=True)
        m = json.loads(score.stdout)
        rows.append({"dataset": name, "GA": m["GA"], "FGA": m["FGA"], "templates": report.get("templates"),
                     "gt_templates": m.get("gt_groups"), "lines_per_second": report.get("lines_per_second"),
                     "seconds": time.time() - t0})
if args.json:
    print(json.dumps(rows, indent=1))
    sys.exit(0)
print("| dataset | GA | FGA | templates (truth) |")
print("|---|---|---|---|")
for r in rows:
    print(f"| {r['dataset']} | {r['GA']:.3f} | {r['FGA']:.3f} | {r['templates']} ({r['gt_templates']}) |")
ga = sum(r["GA"] for r in rows) / len(rows)
fga = sum(r["FGA"] for r in rows) / len(rows)
print(f"| **average** | **{ga:.3f}** | **{fga:.3f}** | |")
