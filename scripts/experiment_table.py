#!/usr/bin/env python3
"""The README's teacher-experiment table from the run directories scripts/experiment_teacher.sh
writes: one row per run with the 7 STS tasks (SentEval text, Spearman x 100), their mean, the
change against the base model, the dev score that selected the checkpoint (best of the dev
evaluations, STS-B dev + SICK-R dev) and its step, and the training time.

Usage: python3 scripts/experiment_table.py [runs/exp14]   (standard library only)
"""
import json
import os
import sys

TASKS = ["STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R"]


def sts(group):
    by = {t["display"]: t["spearman"] for t in group["tasks"]}
    pct = lambda v: float("nan") if v is None else v * 100
    return [pct(by.get(n)) for n in TASKS], pct(group["mean_spearman"])


def best_dev(metrics):
    best = None
    if not os.path.exists(metrics):
        return None
    with open(metrics) as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") == "eval" and r.get("score") is not None and (best is None or r["score"] > best[0]):
                best = (r["score"], r["step"])
    return best


def load(run_dir):
    """(sts list, mean, best dev (score, step) or None, seconds) of one run directory, or None."""
    results = os.path.join(run_dir, "results.json")
    if os.path.exists(results):  # a demo row
        r = json.load(open(results))
        values, mean = sts(r["refined"]["sts"])
        dev = best_dev(os.path.join(run_dir, "train", "metrics.jsonl"))
        return values, mean, dev, r["train"].get("seconds")
    ev = os.path.join(run_dir, "eval.json")
    if not os.path.exists(ev):
        return None
    values, mean = sts(json.load(open(ev))["sts"])
    dev = best_dev(os.path.join(run_dir, "train", "metrics.jsonl"))
    seconds = None
    if os.path.exists(os.path.join(run_dir, "train.time")):  # one "<s> s" line per (resumed) part
        with open(os.path.join(run_dir, "train.time")) as f:
            seconds = sum(float(line.split()[0]) for line in f if line.strip() and line.split()[0][0].isdigit())
    return values, mean, dev, seconds


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/exp14"
    base = load(os.path.join(out, "base"))
    print("| run | " + " | ".join(TASKS) + " | mean | vs base | best dev (step) | train s |")
    print("|---|" + "---:|" * (len(TASKS) + 5))
    for name in sorted(os.listdir(out)):
        d = os.path.join(out, name)
        if not os.path.isdir(d):
            continue
        row = load(d)
        if row is None:
            continue
        values, mean, dev, seconds = row
        delta = f"{mean - base[1]:+.2f}" if base and name != "base" else ""
        dev_s = f"{dev[0] * 100:.2f} ({dev[1]})" if dev else ""
        secs = f"{seconds:.0f}" if seconds is not None else ""
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {mean:.2f} | {delta} | {dev_s} | {secs} |")


if __name__ == "__main__":
    main()
