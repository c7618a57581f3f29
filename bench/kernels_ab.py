#!/usr/bin/env python3
"""Before/after of the hand-written kernels in one build and one run: bench_encode and
bench_train_step with the kernels on and with RANKEMB_KERNELS=off (libtorch's own operators:
batched matmuls for attention, torch::optim::AdamW), alternating A B A B ... so that a drift in
the machine's speed hits both sides alike. Prints the median of each side and the ratio of the
medians, and appends one JSON line per side to --out.

usage (from the repository root, after building the benches):
  python3 bench/kernels_ab.py [--rounds 5] [--threads 2] [--out bench/results/kernels_ab.jsonl]
      [--model .cache/assets/all-MiniLM-L6-v2] [--sentences /tmp/stsb2000.txt] [--skip-encode] [--skip-train]
The encode input defaults to the first 2,000 distinct STS-B test sentences (written to a temporary
file); the training chain is the 33-sentence SNLI chain of scripts/bench_train_step.py. Needs only
the Python standard library.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("RANKEMB_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))


def stsb_sentences(n):
    seen, out = set(), []
    with open(os.path.join(DATA, "stsb", "stsb-test.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            for s in cols[5:7]:
                if s not in seen:
                    seen.add(s)
                    out.append(s)
    return out[:n]


def snli_chain(path):
    with open(os.path.join(DATA, "nli", "snli_seed_sentences.txt"), encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f if l.strip()][:33]
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"id": "snli33", "seed": lines[0], "sentences": lines[1:], "kept": True}) + "\n")


def run(cmd, kernels):
    env = dict(os.environ, RANKEMB_KERNELS="on" if kernels else "off")
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ab(name, cmd, key, rounds, out_path, extra):
    sides = {True: [], False: []}
    for r in range(rounds):
        for kernels in (True, False) if r % 2 == 0 else (False, True):
            rec = run(cmd, kernels)
            sides[kernels].append(rec[key])
            print(f"  {name} round {r + 1} kernels={'on' if kernels else 'off'}: {rec[key]:.4f}", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in sides.items()}
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(out_path, "a", encoding="utf-8") as f:
        for kernels in (True, False):
            f.write(json.dumps({"ts": now, "bench": name, "kernels": "on" if kernels else "off", key: med[kernels],
                                "runs": sides[kernels], **extra}) + "\n")
    print(f"| {name} | {med[False]:.4f} | {med[True]:.4f} | {med[False] / med[True]:.2f}x |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=os.path.join(REPO, ".cache", "assets", "all-MiniLM-L6-v2"))
    p.add_argument("--sentences", help="encode input, one sentence per line (default: 2,000 STS-B test sentences)")
    p.add_argument("--bench-dir", default=os.path.join(REPO, "build", "bench"))
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "kernels_ab.jsonl"))
    p.add_argument("--skip-encode", action="store_true")
    p.add_argument("--skip-train", action="store_true")
    a = p.parse_args()
    extra = {"model": os.path.basename(a.model.rstrip("/")), "threads": a.threads}
    print("| bench (median) | kernels off | kernels on | speed-up |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="kernels-ab-") as tmp:
        if not a.skip_encode:
            text = a.sentences
            if not text:
                text = os.path.join(tmp, "stsb.txt")
                with open(text, "w", encoding="utf-8") as f:
                    f.write("\n".join(stsb_sentences(2000)) + "\n")
            cmd = [os.path.join(a.bench_dir, "bench_encode"), a.model, text, "--batch", "64", "--threads",
                   str(a.threads), "--repeats", "3"]
            ab("encode float32, s per 2,000 sentences", cmd, "median_s", a.rounds, a.out, extra)
        if not a.skip_train:
            chain = os.path.join(tmp, "chain.jsonl")
            snli_chain(chain)
            cmd = [os.path.join(a.bench_dir, "bench_train_step"), a.model, chain, "--teacher", a.model, "--threads",
                   str(a.threads), "--steps", "8", "--warmup", "2"]
            ab("train step float32, s", cmd, "median_s", a.rounds, a.out, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
