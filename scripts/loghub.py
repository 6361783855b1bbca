#!/usr/bin/env python3
"""Score `hephaestus templates` on every Loghub dataset in ../shared/loghub.

Accuracy (default): for each dataset, run the miner on the 2k sample with the dataset's header
format (the only per-dataset input), score the assignments with eval_ga.py (GA, FGA) and report
the templates found. Then the same on metamorphic copies made by ../shared/loghub/perturb.py
for each `--seeds` seed and `--modes` mode (variable values rewritten into other shapes,
lengths, key=value runs; ground truth kept), in a temporary directory. Prints one Markdown
table per set and one of the averages; `--json` prints raw results; `--seeds ''` scores the
originals only.

Throughput (`--throughput`): replay HDFS_2k and BGL_2k 500 times (1M lines each, in a temporary
directory), run `templates` with 1 and 2 workers `--runs` times each, and print the medians of
the whole run (start to CSV written) and of the steady state (reading, masking, mining).

    scripts/loghub.py [--bin target/release/hephaestus] [--loghub ../shared/loghub]
                      [--seeds 7,11] [--modes shape,length,kv]
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
ap.add_argument("--seeds", default="7", help="comma-separated perturb.py seeds ('' for none)")
ap.add_argument("--modes", default="shape,length,kv", help="comma-separated perturb.py modes")
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


def score(root, tmp):
    """GA, FGA and templates for every dataset under `root`."""
    rows = {}
    for name in names:
        log = os.path.join(root, name, f"{name}_2k.log")
        gt = os.path.join(root, name, f"{name}_2k.log_structured_corrected.csv")
        out = os.path.join(tmp, f"{name}.csv")
        cmd = [args.bin, "templates", log, "--log-format", formats[name]["log_format"],
               "--workers", str(args.workers), "--assignments", out]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"{name}: {' '.join(cmd)} failed:\n{res.stderr}")
        report = report_of(res.stderr)
        ev = subprocess.run([sys.executable, os.path.join(args.loghub, "eval_ga.py"), gt, out, "--json"],
                            capture_output=True, text=True, check=True)
        m = json.loads(ev.stdout)
        rows[name] = {"GA": m["GA"], "FGA": m["FGA"], "templates": report.get("templates"),
                      "gt_templates": m.get("gt_groups")}
    return rows


perturb = os.path.join(args.loghub, "perturb.py")
seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
modes = [m for m in args.modes.split(",") if m.strip()] if os.path.exists(perturb) else []
results = {}
with tempfile.TemporaryDirectory() as tmp:
    results["original"] = score(args.loghub, tmp)
    for seed in seeds:
        for mode in modes:
            copy = os.path.join(tmp, f"{mode}-{seed}")
            subprocess.run([sys.executable, perturb, args.loghub, copy, str(seed), mode, *names],
                           check=True, capture_output=True)
            results[f"{mode} {seed}"] = score(copy, tmp)
if args.json:
    print(json.dumps(results, indent=1))
    sys.exit(0)
cols = list(results)
mean = lambda col, k: sum(r[k] for r in results[col].values()) / len(results[col])
print("| dataset | " + " | ".join(f"{c} GA / FGA" for c in cols) + " | templates (truth) |")
print("|---|" + "---|" * len(cols) + "---|")
for name in names:
    cells = " | ".join(f"{results[c][name]['GA']:.3f} / {results[c][name]['FGA']:.3f}" for c in cols)
    o = results["original"][name]
    print(f"| {name} | {cells} | {o['templates']} ({o['gt_templates']}) |")
cells = " | ".join(f"**{mean(c, 'GA'):.3f} / {mean(c, 'FGA'):.3f}**" for c in cols)
print(f"| **average** | {cells} | |")
worst = {c: min(results[c].items(), key=lambda kv: kv[1]["GA"]) for c in cols}
print()
print("lowest GA per column: " + ", ".join(f"{c}: {n} {r['GA']:.3f}" for c, (n, r) in worst.items()))
