#!/usr/bin/env python3
"""Score `hephaestus templates` on every Loghub dataset in ../shared/loghub.

For each dataset: run the miner on the 2k sample with the dataset's header format (the only
per-dataset input), score the assignments with eval_ga.py (GA, FGA) and report templates found
and lines/s. Prints a Markdown table with the averages; `--json` prints the raw results.

    scripts/loghub.py [--bin target/release/hephaestus] [--loghub ../shared/loghub] [--workers N]

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
args = ap.parse_args()

if not os.path.isdir(args.loghub):
    print(f"loghub data not found at {args.loghub}; nothing to score")
    sys.exit(0)
formats = json.load(open(os.path.join(args.loghub, "formats.json")))
names = sorted(formats) if not args.only else args.only.split(",")
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
        report = {}
        for line in res.stderr.splitlines():
            if line.startswith("hephaestus: templates "):
                report = json.loads(line[len("hephaestus: templates "):])
        score = subprocess.run([sys.executable, os.path.join(args.loghub, "eval_ga.py"), gt, out, "--json"],
                               capture_output=True, text=True, check=True)
        m = json.loads(score.stdout)
        rows.append({"dataset": name, "GA": m["GA"], "FGA": m["FGA"], "templates": report.get("templates"),
                     "gt_templates": m.get("gt_groups"), "lines_per_second": report.get("lines_per_second"),
                     "seconds": time.time() - t0})
if args.json:
    print(json.dumps(rows, indent=1))
    sys.exit(0)
print("| dataset | GA | FGA | templates (truth) | lines/s |")
print("|---|---|---|---|---|")
for r in rows:
    print(f"| {r['dataset']} | {r['GA']:.3f} | {r['FGA']:.3f} | {r['templates']} ({r['gt_templates']}) | {r['lines_per_second']:,.0f} |")
ga = sum(r["GA"] for r in rows) / len(rows)
fga = sum(r["FGA"] for r in rows) / len(rows)
print(f"| **average** | **{ga:.3f}** | **{fga:.3f}** | | |")
