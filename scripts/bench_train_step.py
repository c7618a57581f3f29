#!/usr/bin/env python3
"""Seconds per training step: `rankemb train` (bench/bench_train_step) against a Python PyTorch
eager reference that does what the authors' code (hly1998/RankingSentenceGeneration) does.

One chain of 33 real SNLI sentences (the first 33 lines of ../shared/data/nli/snli_seed_sentences.txt,
3 to 32 words), batch = 1 chain, max_seq_length 32, both sides at --threads (default 2):

  reference, per step (train.py + posttraining/models.py + the HF Trainer around them):
    pad the pre-tokenized chain to its longest sentence (DataCollatorWithPadding), teacher forward
    under no_grad (every step), A = cos / tau2, the authors' refine loops + transform, student
    forward in train mode (dropout on; pooler avg for all-MiniLM-L6-v2, [CLS] + a fresh dense+tanh
    MLP for the BERT-base-shaped student, as --pooler_type cls --mlp_only_train trains), S = cos /
    temp, ListMLE with a random permutation, backward, clip_grad_norm_ 1.0, AdamW, linear schedule.
    bfloat16 = torch.autocast("cpu", bfloat16) around both forwards (the CPU analogue of their --fp16).
  rankemb: the real Trainer (teacher targets cached after the first step; optionally
    --length-buckets; bfloat16 autocast), model/checkpoint writing off.

Models: all-MiniLM-L6-v2 (.cache/assets) as student and teacher, and a BERT-base-shaped model
(BertConfig() defaults: 12 layers, hidden 768, vocab 30522; random weights, seed 0, written once
to .cache/bench/bert-base-random with the bert-base-uncased vocab) as student and teacher on both
sides. Every configuration runs `--warmup` untimed steps then `--steps` timed ones; the median is
reported. Sides run back to back in one invocation, each in its own process.

Run from the repo root (the reference needs transformers: .venv-torch = Debian python3-torch 1.13
+ transformers 4.44.2):
  nice ninja -C build-train bench_train_step   # cmake -DRANKEMB_BUILD_BENCH=ON
  nice .venv-torch/bin/python scripts/bench_train_step.py [--threads 2] [--out .cache/bench/train_step.jsonl]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("RANKEMB_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))
BENCH = os.path.join(REPO, ".cache", "bench")
MINILM = os.path.join(REPO, ".cache", "assets", "all-MiniLM-L6-v2")
BERT_BASE = os.path.join(BENCH, "bert-base-random")
CHAIN = os.path.join(BENCH, "snli_chain33.jsonl")
TEMP = TAU2 = 0.05
OMEGA = 0.5


def chain_sentences():
    with open(os.path.join(DATA, "nli", "snli_seed_sentences.txt"), encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    return lines[:33]


def prepare():
    os.makedirs(BENCH, exist_ok=True)
    s = chain_sentences()
    with open(CHAIN, "w", encoding="utf-8") as f:
        f.write(json.dumps({"id": "snli33", "seed": s[0], "sentences": s[1:], "kept": True}) + "\n")
    if not os.path.exists(os.path.join(BERT_BASE, "model.safetensors")):
        import torch
        from transformers import BertConfig, BertModel
        torch.manual_seed(0)
        model = BertModel(BertConfig())
        tmp = BERT_BASE + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.copy(os.path.join(REPO, ".cache", "assets", "bert-vocab", "vocab.txt"), tmp)
        with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
            json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer", "model_max_length": 512}, f)
        shutil.rmtree(BERT_BASE, ignore_errors=True)
        os.replace(tmp, BERT_BASE)


# --------------------------------------------------------------------------------------------
# The reference (run in a child process: python scripts/bench_train_step.py --reference ...)

def reference(kind, dtype, steps, warmup, threads):
    import torch
    from transformers import AutoModel, AutoTokenizer
    sys.path.insert(0, os.path.join(REPO, "scripts", "regen"))
    import ranking_loss as rl  # the port of the authors' refine / transform / ListMLE

    torch.set_num_threads(threads)
    torch.manual_seed(2024)
    model_dir = MINILM if kind == "minilm" else BERT_BASE
    tok = AutoTokenizer.from_pretrained(model_dir)
    chain = chain_sentences()
    features = [{"input_ids": tok(s, truncation=True, max_length=32)["input_ids"]} for s in chain]
    student = AutoModel.from_pretrained(model_dir, add_pooling_layer=False)
    teacher = AutoModel.from_pretrained(model_dir)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    params = list(student.parameters())
    mlp = None
    if kind == "bert-base":
        h = student.config.hidden_size
        mlp = torch.nn.Sequential(torch.nn.Linear(h, h), torch.nn.Tanh())
        torch.nn.init.normal_(mlp[0].weight, std=student.config.initializer_range)
        torch.nn.init.zeros_(mlp[0].bias)
        params += list(mlp.parameters())
    total = warmup + steps
    opt = torch.optim.AdamW(params, lr=3e-6, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (total - s) / total))
    bf16 = dtype == "bfloat16"

    def mean_pool(out, mask):
        m = mask.unsqueeze(-1).to(out.dtype)
        return (out * m).sum(1) / m.sum(1).clamp(min=1e-9)

    times, losses = [], []
    for step in range(total):
        t0 = time.perf_counter()
        batch = tok.pad(features, return_tensors="pt")  # pad to the longest of the batch
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():
                tout = teacher(**batch)
                t = mean_pool(tout.last_hidden_state, batch["attention_mask"]) if kind == "minilm" else tout.pooler_output
                A = rl.cosine_matrix(t.float(), TAU2)
            student.train()
            out = student(**batch).last_hidden_state
            if kind == "minilm":
                z = mean_pool(out, batch["attention_mask"])
            else:
                z = mlp(out[:, 0])
            S = rl.cosine_matrix(z.float(), TEMP)
        Y = rl.transform(rl.refine(A), OMEGA) + A
        loss = rl.list_mle(S, Y, torch.randperm(S.shape[-1]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    timed = times[warmup:]
    print(json.dumps({"impl": "reference", "name": kind, "dtype": dtype, "threads": threads,
                      "median_s": statistics.median(timed), "first_step_s": times[0], "step_s": timed,
                      "losses": losses, "torch": torch.__version__}))


# --------------------------------------------------------------------------------------------

def run_json(cmd):
    print("+", " ".join(cmd), file=sys.stderr)
    p = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default=os.path.join(REPO, "build-train", "bench", "bench_train_step"))
    ap.add_argument("--out", default=os.path.join(BENCH, "train_step.jsonl"))
    ap.add_argument("--models", default="minilm,bert-base")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--buckets", type=int, default=4, help="--length-buckets for rankemb's fastest setting")
    ap.add_argument("--steps", default="minilm=8+2,bert-base=4+2",
                    help="timed+warm-up steps per model (lower them on a loaded machine)")
    ap.add_argument("--reference", nargs=4, metavar=("KIND", "DTYPE", "STEPS", "WARMUP"))
    args = ap.parse_args()
    if args.reference:
        kind, dtype, steps, warmup = args.reference
        reference(kind, dtype, int(steps), int(warmup), args.threads)
        return

    prepare()
    plan = {}
    for item in args.steps.split(","):
        kind, counts = item.split("=")
        timed, warm = counts.split("+")
        plan[kind] = (int(timed), int(warm))
    results = []
    for kind in args.models.split(","):
        steps, warmup = plan[kind]
        model_dir = MINILM if kind == "minilm" else BERT_BASE
        extra = [] if kind == "minilm" else ["--pooler", "cls", "--mlp-only-train", "1"]
        for dtype in args.dtypes.split(","):
            results.append(run_json([sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
                                     "--reference", kind, dtype, str(steps), str(warmup)]))
            for buckets in sorted({1, args.buckets}):
                r = run_json([args.bench, model_dir, CHAIN, "--dtype", dtype, "--steps", str(steps), "--warmup",
                              str(warmup), "--threads", str(args.threads), "--length-buckets", str(buckets),
                              "--name", kind] + extra)
                results.append(r)
            print(json.dumps(results[-3:]), file=sys.stderr)
    with open(args.out, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")

    rows = ["| model | implementation | dtype | s / step (median) | vs reference fp32 |", "|---|---|---|---:|---:|"]
    for kind in args.models.split(","):
        ref32 = next(r["median_s"] for r in results if r["name"] == kind and r["impl"] == "reference"
                     and r["dtype"] == "float32")
        for r in results:
            if r["name"] != kind:
                continue
            impl = "Python eager reference (teacher every step)" if r["impl"] == "reference" else (
                "rankemb (cached teacher" + (f", {r['length_buckets']} length buckets" if r["length_buckets"] > 1 else "")
                + ")")
            rows.append(f"| {kind} | {impl} | {r['dtype']} | {r['median_s']:.3f} | {ref32 / r['median_s']:.2f}x |")
    table = "\n".join(rows)
    with open(os.path.join(BENCH, "train_step_table.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
