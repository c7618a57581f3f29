#!/usr/bin/env python3
"""Tokenizer throughput, rankemb vs the reference implementations, in one run on one input.

Input: every sentence of STS-B (train/dev/test) and SICK test from the data dir (~25k lines).
Each implementation encodes the whole input single-threaded (add_special_tokens on, as models
use it), 5 timed passes after a warm-up; the median pass is reported. Hugging Face `tokenizers`
(Rust) is also timed with encode_batch on all cores, its fastest mode. USE-Lite is compared with
its own JavaScript tokenizer in node.

Usage: .venv-ref/bin/python scripts/bench_tokenizers.py [--build build] [--out bench/results/tokenize.jsonl]
Prints a markdown table (the one in the README) to stdout.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("RANKEMB_CACHE_DIR", os.path.join(REPO, ".cache")) + "/assets"
DATA = os.environ.get("RANKEMB_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))
MODELS = os.path.join(os.path.dirname(DATA), "models")

# name, rankemb path, reference kind, reference path(s)
CONFIGS = [
    ("wordpiece (all-MiniLM-L6-v2)", f"{CACHE}/all-MiniLM-L6-v2/tokenizer.json", "hf-json", f"{CACHE}/all-MiniLM-L6-v2/tokenizer.json"),
    ("byte-level BPE (GPT-2)", f"{CACHE}/gpt2-bpe", "hf-gpt2", (f"{CACHE}/gpt2-bpe/encoder.json", f"{CACHE}/gpt2-bpe/vocab.bpe")),
    ("byte-level BPE (Llama-3)", f"{CACHE}/llama3-tokenizer/models/tokenizer.json", "hf-json", f"{CACHE}/llama3-tokenizer/models/tokenizer.json"),
    ("byte-level BPE (Qwen3)", f"{CACHE}/qwen3-tokenizer/models/tokenizer.json", "hf-json", f"{CACHE}/qwen3-tokenizer/models/tokenizer.json"),
    ("SentencePiece BPE (TinyStories)", f"{MODELS}/tinystories-656k/tokenizer.json", "hf-json", f"{MODELS}/tinystories-656k/tokenizer.json"),
    ("unigram (USE-Lite)", f"{CACHE}/use-lite/dist/vocab.json", "node-use", None),
]
REPEATS = 5


def build_input(path):
    lines = []
    for split in ("train", "dev", "test"):
        with open(f"{DATA}/stsb/stsb-{split}.tsv", encoding="utf-8") as f:
            next(f)
            for row in f:
                c = row.rstrip("\n").split("\t")
                lines += [c[5], c[6]]
    with open(f"{DATA}/sick/SICK_test_annotated.txt", encoding="utf-8") as f:
        next(f)
        for row in f:
            c = row.rstrip("\n").split("\t")
            lines += [c[1], c[2]]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def time_passes(fn):
    fn()  # warm-up
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_hf(kind, ref, lines):
    import tokenizers
    from tokenizers import Tokenizer
    if kind == "hf-gpt2":
        from tokenizers import models, pre_tokenizers, decoders
        tok = Tokenizer(models.BPE.from_file(*ref))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    else:
        tok = Tokenizer.from_file(ref)
    single = time_passes(lambda: [tok.encode(s) for s in lines])
    batch = time_passes(lambda: tok.encode_batch(lines))
    return {"impl": f"tokenizers {tokenizers.__version__}", "median_s": single, "batch_median_s": batch}


USE_NODE = r"""
const fs = require('fs');
const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n'); lines.pop();
const {makeTokenizer} = require(process.argv[3]);
(async () => {
  const tok = await makeTokenizer();
  const run = () => { for (const l of lines) tok(l); };
  run();
  const times = [];
  for (let r = 0; r < %d; ++r) { const t = process.hrtime.bigint(); run(); times.push(Number(process.hrtime.bigint() - t) / 1e9); }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({median_s: times[Math.floor(times.length / 2)]}));
})();
""" % REPEATS


def bench_use(inp):
    helper = os.path.join(REPO, "scripts", "regen", "use_runtime.js")
    if not os.path.exists(helper):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(USE_NODE)
    out = subprocess.run(["node", f.name, inp, helper], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    r = json.loads(out.strip().splitlines()[-1])
    r["impl"] = "USE JS tokenizer (node)"
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "input.txt")
        lines = build_input(inp)
        records = []
        print(f"input: {len(lines)} sentences, {sum(len(l.encode()) for l in lines) / 1e6:.2f} MB; "
              f"median of {REPEATS} passes, single thread unless noted\n")
        print("| tokenizer | rankemb sent/s | reference | reference sent/s | ratio | reference encode_batch (all cores) sent/s |")
        print("|---|---:|---|---:|---:|---:|")
        for name, ours, kind, ref in CONFIGS:
            p = subprocess.run([os.path.join(args.build, "bench", "bench_tokenize"), ours, inp, str(REPEATS), name],
                               capture_output=True, text=True)
            if p.returncode != 0:
                print(f"| {name} | failed: {p.stderr.strip()[:80]} | | | | |")
                continue
            r = json.loads(p.stdout)
            ref_r = bench_use(inp) if kind == "node-use" else bench_hf(kind, ref, lines)
            records.append({"tokenizer": name, "rankemb": r, "reference": ref_r})
            ours_sps = len(lines) / r["median_s"]
            if ref_r is None:
                print(f"| {name} | {ours_sps:,.0f} | (reference missing) | | | |")
                continue
            ref_sps = len(lines) / ref_r["median_s"]
            batch = f"{len(lines) / ref_r['batch_median_s']:,.0f}" if "batch_median_s" in ref_r else "-"
            print(f"| {name} | {ours_sps:,.0f} | {ref_r['impl']} | {ref_sps:,.0f} | {ours_sps / ref_sps:.2f}x | {batch} |")
        if args.out:
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            with open(args.out, "w") as f:
                for rec in records:
                    f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
