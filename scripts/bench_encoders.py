#!/usr/bin/env python3
"""Sentence-encoder throughput, rankemb vs the reference implementations, in one run on one input.

Input: the STS-B test sentences (sentence1 and sentence2 of every row, deduplicated, file order).
Every implementation gets the same batch size and the same torch thread count; each does a
warm-up on the first batches, then REPEATS timed passes over the whole input, and the median pass
is reported. Timings include tokenization on both sides.

  (a) all-MiniLM-L6-v2: rankemb float32 and bfloat16 (bench/bench_encode) vs sentence-transformers'
      SentenceTransformer.encode. Also the smallest per-sentence cosine between our bfloat16 and
      our float32 embeddings (and between ours and sentence-transformers', as a sanity check).
  (b) a BERT-base-shaped model (12 layers, hidden 768, 12 heads, intermediate 3072, vocab 30522)
      with seeded random weights, written by this script with transformers into a temporary
      directory next to all-MiniLM-L6-v2's tokenizer files: rankemb float32/bfloat16 (mean
      pooling) vs transformers' BertModel forward + mean pooling, same tokenization, batches
      sorted by length as rankemb and sentence-transformers sort them.
  (c) USE-Lite (converted by `rankemb convert use-lite`): rankemb vs the package's own node runtime
      (@energetic-ai/embeddings EmbeddingsModel.embed, batches in file order as its users call it;
      the tfjs wasm backend ignores the thread count).

Usage: .venv-torch/bin/python scripts/bench_encoders.py [--build build] [--threads 2,1] [--batch 32]
         [--repeats 3] [--limit N] [--bert-base-limit N] [--out bench/results/encode.jsonl]
(.venv-torch: python3-torch 1.13.1 from Debian + transformers==4.44.2, sentence-transformers==3.0.1.)
Prints a markdown table (the one in the README) to stdout and appends nothing: --out is rewritten.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("RANKEMB_CACHE_DIR", os.path.join(REPO, ".cache"))
DATA = os.environ.get("RANKEMB_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))
MINILM = f"{CACHE}/assets/all-MiniLM-L6-v2"
USE_LITE = f"{CACHE}/models/use-lite"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

# Times USE-Lite's own runtime; argv: sentences file, batch, repeats, warm-up batches, output .f32.
NODE_BENCH = r"""
const fs = require("fs");
const path = require("path");
const REPO = process.env.RANKEMB_REPO;
const { ASSETS, core, embeddings } = require(path.join(REPO, "scripts", "regen", "use_runtime.js"));
const [file, batchS, repeatsS, warmS, out] = process.argv.slice(2);
const BATCH = parseInt(batchS), REPEATS = parseInt(repeatsS), WARM = parseInt(warmS);
async function embedAll(embedder, texts) {
  const rows = [];
  for (let i = 0; i < texts.length; i += BATCH) {
    const vecs = await embedder.embed(texts.slice(i, i + BATCH));
    for (const v of vecs) rows.push(v);
  }
  return rows;
}
(async () => {
  await core.ready();
  const { modelSource } = require(path.join(ASSETS, "use-lite", "dist", "index.js"));
  const { model, vocabulary } = await modelSource();
  const embedder = new embeddings.EmbeddingsModel({ vocabulary, model });
  const texts = fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
  await embedAll(embedder, texts.slice(0, WARM * BATCH));
  const times = [];
  let rows;
  for (let r = 0; r < REPEATS; ++r) {
    const t = process.hrtime.bigint();
    rows = await embedAll(embedder, texts);
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  const flat = new Float32Array(rows.length * rows[0].length);
  rows.forEach((v, i) => flat.set(v, i * v.length));
  fs.writeFileSync(out, Buffer.from(flat.buffer));
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(JSON.stringify({ median_s: median, times_s: times, dim: rows[0].length, backend: core.getBackend ? core.getBackend() : null }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def stsb_test_sentences():
    seen, out = set(), []
    with open(f"{DATA}/stsb/stsb-test.tsv", encoding="utf-8") as f:
        next(f)
        for row in f:
            c = row.rstrip("\n").split("\t")
            for s in (c[5], c[6]):
                if s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def time_passes(fn, warm, repeats):
    warm()
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, result


def min_cosine(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


def rankemb(args, model, text_file, dtype, threads, tmp, name, pooler=None):
    npy = os.path.join(tmp, f"{name}-{dtype}-{threads}.npy")
    cmd = [args.bench, model, text_file, "--batch", str(args.batch), "--dtype", dtype, "--threads", str(threads),
           "--repeats", str(args.repeats), "--warmup-batches", str(args.warmup_batches), "--name", name, "--npy", npy]
    if pooler:
        cmd += ["--pooler", pooler]
    rec = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    rec["impl"] = f"rankemb {dtype}"
    return rec, np.load(npy)


def record(impl, model, lines, threads, args, median, times, **extra):
    return {"impl": impl, "model": model, "dtype": "float32", "batch": args.batch, "threads": threads,
            "sentences": len(lines), "median_s": round(median, 4), "times_s": [round(t, 4) for t in times],
            "sentences_per_s": round(len(lines) / median, 1), **extra}


def bench_minilm(args, lines, text_file, threads, tmp):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(MINILM, device="cpu")
    warm = lines[: args.warmup_batches * args.batch]
    median, times, ref = time_passes(lambda: st.encode(lines, batch_size=args.batch),
                                     lambda: st.encode(warm, batch_size=args.batch), args.repeats)
    import sentence_transformers
    recs = [record("sentence-transformers", "all-MiniLM-L6-v2", lines, threads, args, median, times,
                   version=sentence_transformers.__version__)]
    fp32, e32 = rankemb(args, MINILM, text_file, "float32", threads, tmp, "all-MiniLM-L6-v2")
    bf16, e16 = rankemb(args, MINILM, text_file, "bfloat16", threads, tmp, "all-MiniLM-L6-v2")
    fp32["min_cos_vs_reference"] = min_cosine(e32, ref)
    bf16["min_cos_vs_reference"] = min_cosine(e16, ref)
    bf16["min_cos_vs_float32"] = min_cosine(e16, e32)
    return recs + [fp32, bf16]


def make_bert_base(tmp):
    from transformers import BertConfig, BertModel
    d = os.path.join(tmp, "bert-base-random")
    if not os.path.exists(d):
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072)
        BertModel(cfg).eval().save_pretrained(d, safe_serialization=True)
        for f in TOKENIZER_FILES:
            shutil.copy(os.path.join(MINILM, f), d)
    return d


def bench_bert_base(args, lines, text_file, threads, tmp):
    from transformers import AutoTokenizer, BertModel
    import transformers
    d = make_bert_base(tmp)
    tok = AutoTokenizer.from_pretrained(d)
    model = BertModel.from_pretrained(d).eval()

    def encode(texts):
        # Longest first, as rankemb and sentence-transformers batch; results back in input order.
        lens = [len(tok(t)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -lens[i])
        out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(texts), args.batch):
                idx = order[s : s + args.batch]
                enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=512, return_tensors="pt")
                h = model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                out[idx] = ((h * m).sum(1) / m.sum(1).clamp(min=1e-9)).numpy()
        return out

    warm = lines[: args.warmup_batches * args.batch]
    median, times, ref = time_passes(lambda: encode(lines), lambda: encode(warm), args.repeats)
    recs = [record("transformers", "bert-base (random)", lines, threads, args, median, times,
                   version=transformers.__version__)]
    fp32, e32 = rankemb(args, d, text_file, "float32", threads, tmp, "bert-base (random)", pooler="avg")
    bf16, e16 = rankemb(args, d, text_file, "bfloat16", threads, tmp, "bert-base (random)", pooler="avg")
    fp32["min_cos_vs_reference"] = min_cosine(e32, ref)
    bf16["min_cos_vs_reference"] = min_cosine(e16, ref)
    bf16["min_cos_vs_float32"] = min_cosine(e16, e32)
    return recs + [fp32, bf16]


def bench_use_lite(args, lines, text_file, threads, tmp, node_cache):
    if not os.path.exists(os.path.join(USE_LITE, "model.safetensors")):
        print(f"USE-Lite: {USE_LITE} missing (run scripts/convert-assets.sh); skipped", file=sys.stderr)
        return []
    if "rec" not in node_cache:  # node runs single-threaded whatever the torch thread count
        out = os.path.join(tmp, "use-node.f32")
        res = subprocess.run(["node", "-", text_file, str(args.batch), str(args.repeats), str(args.warmup_batches), out],
                             input=NODE_BENCH, capture_output=True, text=True, env={**os.environ, "RANKEMB_REPO": REPO})
        if res.returncode != 0:
            print(f"USE-Lite node runtime failed: {res.stderr[-2000:]}", file=sys.stderr)
            return []
        r = json.loads(res.stdout.strip().splitlines()[-1])
        node_cache["rec"] = (r, np.fromfile(out, dtype=np.float32).reshape(len(lines), r["dim"]))
    r, ref = node_cache["rec"]
    recs = [record("node runtime", "USE-Lite", lines, threads, args, r["median_s"], r["times_s"],
                   note="tfjs wasm backend, single-threaded, measured once")]
    try:
        fp32, e32 = rankemb(args, USE_LITE, text_file, "float32", threads, tmp, "USE-Lite")
    except subprocess.CalledProcessError as e:
        print(f"USE-Lite in rankemb failed: {e.stderr[-2000:]}", file=sys.stderr)
        return recs
    fp32["min_cos_vs_reference"] = min_cosine(e32, ref)
    recs.append(fp32)
    try:
        bf16, e16 = rankemb(args, USE_LITE, text_file, "bfloat16", threads, tmp, "USE-Lite")
        bf16["min_cos_vs_reference"] = min_cosine(e16, ref)
        bf16["min_cos_vs_float32"] = min_cosine(e16, e32)
        recs.append(bf16)
    except subprocess.CalledProcessError as e:
        print(f"USE-Lite bfloat16 in rankemb failed: {e.stderr[-2000:]}", file=sys.stderr)
    return recs


def table(recs):
    rows = ["| model | threads | sentences | implementation | sentences/s | vs reference | vs our float32 | min cos bf16/fp32 |",
            "|---|---:|---:|---|---:|---:|---:|---:|"]
    groups = {}
    for r in recs:
        groups.setdefault((r["model"], r["threads"]), []).append(r)
    for (model, threads), g in groups.items():
        ref = next((r for r in g if not r["impl"].startswith("rankemb")), None)
        ours32 = next((r for r in g if r["impl"] == "rankemb float32"), None)
        for r in g:
            vs_ref = f"{r['sentences_per_s'] / ref['sentences_per_s']:.2f}x" if ref and r is not ref else ""
            vs_32 = (f"{r['sentences_per_s'] / ours32['sentences_per_s']:.2f}x"
                     if ours32 and r["impl"] == "rankemb bfloat16" else "")
            cos = f"{r['min_cos_vs_float32']:.5f}" if "min_cos_vs_float32" in r else ""
            rows.append(f"| {model} | {threads} | {r['sentences']} | {r['impl']} | {r['sentences_per_s']:.1f} | "
                        f"{vs_ref} | {vs_32} | {cos} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", default="2,1", help="comma-separated torch thread counts")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup-batches", type=int, default=4)
    ap.add_argument("--limit", type=int, default=0, help="first N sentences only (0 = all)")
    ap.add_argument("--bert-base-limit", type=int, default=512,
                    help="first N sentences for BERT-base (0 = as --limit); it is ~8x MiniLM's cost")
    ap.add_argument("--models", default="minilm,bert-base,use-lite")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "encode.jsonl"))
    args = ap.parse_args()
    args.bench = os.path.join(REPO, args.build, "bench", "bench_encode")
    if not os.path.exists(args.bench):
        sys.exit(f"{args.bench} missing: build it (cmake -DRANKEMB_BUILD_BENCH=ON, ninja bench_encode)")

    lines = stsb_test_sentences()
    if args.limit:
        lines = lines[: args.limit]
    bert_lines = lines[: args.bert_base_limit] if args.bert_base_limit else lines
    models = args.models.split(",")
    recs, node_cache = [], {}
    with tempfile.TemporaryDirectory(prefix="rankemb-bench-") as tmp:
        text_file = os.path.join(tmp, "stsb-test.txt")
        with open(text_file, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        bert_file = os.path.join(tmp, "stsb-test-bert.txt")
        with open(bert_file, "w", encoding="utf-8") as f:
            f.write("\n".join(bert_lines) + "\n")
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            if "minilm" in models:
                recs += bench_minilm(args, lines, text_file, threads, tmp)
            if "bert-base" in models:
                recs += bench_bert_base(args, bert_lines, bert_file, threads, tmp)
            if "use-lite" in models:
                recs += bench_use_lite(args, lines, text_file, threads, tmp, node_cache)
            print(table([r for r in recs if r["threads"] == threads]), file=sys.stderr, flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        meta = {"torch": torch.__version__, "cpu_count": os.cpu_count(), "batch": args.batch, "repeats": args.repeats,
                "load_avg_at_end": os.getloadavg()}
        f.write(json.dumps({"meta": meta}) + "\n")
        for r in recs:
            f.write(json.dumps(r) + "\n")
    print(table(recs))


if __name__ == "__main__":
    main()
