#!/usr/bin/env python3
"""Compares a `rankemb eval --tasks sts,dev --text senteval --json FILE` result with the SentEval
numbers in tests/fixtures/eval/senteval_parity.jsonl (same checks as the C++ test
tests/unit/eval/senteval_parity_test.cpp, for a run made with the CLI).

    python3 scripts/compare_senteval_parity.py minilm.json [--fixture tests/fixtures/eval/senteval_parity.jsonl]
"""
import json
import math
import sys


def main():
    args = sys.argv[1:]
    fixture = "tests/fixtures/eval/senteval_parity.jsonl"
    if "--fixture" in args:
        i = args.index("--fixture")
        fixture = args[i + 1]
        del args[i : i + 2]
    ours = json.load(open(args[0]))
    rows = {}
    for line in open(fixture, encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            j = json.loads(line)
            rows[j["task"]] = j
    worst, n, bad = 0.0, 0, []

    def cmp(what, want, got):
        nonlocal worst, n
        n += 1
        if want is None or got is None or (isinstance(want, float) and math.isnan(want)):
            if not (want is None or math.isnan(want)) or got is not None:
                bad.append(f"{what}: SentEval {want}, ours {got}")
            return
        d = abs(100 * want - 100 * got)
        worst = max(worst, d)
        if d > 0.01:
            bad.append(f"{what}: SentEval {100 * want:.4f}, ours {100 * got:.4f}")

    table = []
    for t in ours["sts"]["tasks"] + ours.get("dev", {}).get("tasks", []):
        f = rows[t["name"]]
        if t["name"] in ("STSBenchmark", "SICKRelatedness"):
            s = next(x for x in f["subsets"] if x["name"] == t["split"])
            cmp(f"{t['name']}/{t['split']} spearman", s["spearman"], t["spearman"])
            cmp(f"{t['name']}/{t['split']} pearson", s["pearson"], t["pearson"])
            if s["n"] != t["n"]:
                bad.append(f"{t['name']}/{t['split']} n: {s['n']} vs {t['n']}")
            table.append((f"{t['name']} {t['split']}", s["spearman"], t["spearman"]))
            continue
        for fs, os_ in zip(f["subsets"], t["subsets"]):
            assert fs["name"] == os_["name"], (fs["name"], os_["name"])
            cmp(f"{t['name']}/{fs['name']} spearman", fs["spearman"], os_["spearman"])
            cmp(f"{t['name']}/{fs['name']} pearson", fs["pearson"], os_["pearson"])
            if fs["n"] != os_["n"]:
                bad.append(f"{t['name']}/{fs['name']} n: {fs['n']} vs {os_['n']}")
        for k, ok in (("all", ("spearman", "pearson")), ("mean", ("mean_spearman", "mean_pearson")), ("wmean", ("wmean_spearman", "wmean_pearson"))):
            cmp(f"{t['name']} {k} spearman", f[k]["spearman"], t[ok[0]])
            cmp(f"{t['name']} {k} pearson", f[k]["pearson"], t[ok[1]])
        table.append((t["name"] + " all", f["all"]["spearman"], t["spearman"]))
    print("| task | SentEval | rankemb | diff |\n|---|---:|---:|---:|")
    for name, a, b in table:
        print(f"| {name} | {100 * a:.4f} | {100 * b:.4f} | {100 * (b - a):+.4f} |")
    print(f"{n} numbers compared, max |diff| x100 = {worst:.6f}, {len(bad)} over 0.01")
    for b in bad[:20]:
        print("  " + b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
