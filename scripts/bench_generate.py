#!/usr/bin/env python3
"""Guided-generation throughput with Hugging Face transformers on PyTorch CPU, the reference for
bench/bench_generate (the rankemb LLM backend). Same work: one chain step for each of N seed
sentences (positive = prompt(seed i), negative = prompt(seed i+1)), guided greedy decoding
score = lneg + g * (lpos - lneg) over float32 log_softmax, stop at EOS or --max-new-tokens.

transformers has no continuous batching: chains run in static groups of --batch, both streams of
every chain of a group stacked into one left-padded forward batch (2 * batch rows) with a shared
KV cache; a group runs until all of its chains have stopped. tokens/s counts each chain's own
tokens (up to and including its EOS), as bench_generate does.

  .venv-torch/bin/python scripts/bench_generate.py --model DIR|FILE.gguf --input FILE [--chains 16] [--batch 16]
      [--guidance 1.5] [--max-new-tokens 32] [--dtype float32|bfloat16] [--threads N]
      [--prompt-template TEXT] [--chat-template auto|none]
      (a .gguf file loads through transformers' GGUF support: pip install gguf accelerate)
  .venv-torch/bin/python scripts/bench_generate.py --make-qwen-random DIR
      writes a Qwen2.5-0.5B-shaped Qwen2ForCausalLM with seeded random weights (hidden 896,
      24 layers, 14 heads, 2 kv heads, intermediate 4864, vocab 151936, tied) plus the
      qwen3-tokenizer asset's tokenizer files to DIR (outside the repo: about 2 GB).
"""
import argparse, json, os, shutil, sys, time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INDENT = " " * 28
PAPER_PROMPT = (INDENT + "Rewrite the following sentence or phrase using different words and sentence structure while "
                "preserving its original meaning. \n" + INDENT + "Directly answer with the rewritten sentence. Don't give "
                "any explanation or description other than the rewritten sentence.\n" + INDENT +
                "Write a sentence that is entailment with: ```{sentence}```. Result: ")


def make_qwen_random(out_dir):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    cfg = Qwen2Config(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                      intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True,
                      max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                      bos_token_id=151643, eos_token_id=151645, torch_dtype="float32")
    model = Qwen2ForCausalLM(cfg).eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    tok_dir = os.path.join(REPO, ".cache", "assets", "qwen3-tokenizer", "models")
    shutil.copy(os.path.join(tok_dir, "tokenizer_config.json"), os.path.join(out_dir, "tokenizer_config.json"))
    # The tokenizers release next to transformers 4.44 reads merges only as "a b" strings, not as
    # the [a, b] pairs newer releases write; byte-level BPE tokens never contain a space.
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    tj["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    print(f"wrote {out_dir}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")


def render(tok, template, sentence, chat):
    user = template.replace("{sentence}", sentence.strip())
    if chat:
        text = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True,
                                       enable_thinking=False)
        return tok(text, add_special_tokens=False)["input_ids"]
    return tok(user)["input_ids"]


def run_group(model, pos, neg, g, max_new, eos, pad, step_ms):
    n = len(pos)
    streams = pos + (neg if neg else [])
    width = max(len(s) for s in streams)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in streams])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in streams])
    position = (mask.cumsum(-1) - 1).clamp(min=0)
    done = [False] * n
    counts = [0] * n
    past = None
    with torch.no_grad():
        for _ in range(max_new):
            t = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask, position_ids=position, past_key_values=past, use_cache=True)
            step_ms.append((time.perf_counter() - t) * 1000)
            past = out.past_key_values
            lp = torch.log_softmax(out.logits[:, -1].float(), -1)
            score = lp[n:] + g * (lp[:n] - lp[n:]) if neg else lp
            tok = score.argmax(-1)
            for i in range(n):
                if not done[i]:
                    counts[i] += 1
                    done[i] = int(tok[i]) in eos or counts[i] >= max_new
            if all(done):
                break
            nxt = torch.cat([tok, tok]) if neg else tok
            ids = nxt.unsqueeze(1)
            mask = torch.cat([mask, torch.ones(len(streams), 1, dtype=mask.dtype)], 1)
            position = position[:, -1:] + 1
    return sum(counts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--input")
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--guidance", type=float, default=1.5)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--prompt-template", default="")
    ap.add_argument("--chat-template", default="auto", choices=["auto", "none"])
    ap.add_argument("--name", default="")
    ap.add_argument("--make-qwen-random")
    a = ap.parse_args()
    if a.make_qwen_random:
        return make_qwen_random(a.make_qwen_random)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    # A .gguf file loads as transformers loads one (weights dequantized, tokenizer converted from
    # the metadata, which needs the gguf package).
    where = {"pretrained_model_name_or_path": a.model}
    if a.model.endswith(".gguf"):
        where = {"pretrained_model_name_or_path": os.path.dirname(os.path.abspath(a.model)), "gguf_file": os.path.basename(a.model)}
    tok = AutoTokenizer.from_pretrained(**where)
    dtype = torch.bfloat16 if a.dtype == "bfloat16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(**where, torch_dtype=dtype).eval()
    load_s = time.perf_counter() - t0
    chat = a.chat_template == "auto" and bool(getattr(tok, "chat_template", None))
    template = a.prompt_template or PAPER_PROMPT
    seeds = [l.rstrip("\n") for l in open(a.input, encoding="utf-8") if l.strip()][: a.chains + 1]
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    for t in ("<|im_end|>", "<|eot_id|>"):
        if t in tok.get_vocab():
            eos.add(tok.convert_tokens_to_ids(t))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    guided = a.guidance != 1.0
    prompts = [render(tok, template, s, chat) for s in seeds]
    run_group(model, prompts[:1], prompts[1:2] if guided else None, a.guidance, 4, eos, pad, [])  # warm-up
    step_ms = []  # forward calls: the first of each group is the prefill
    start = time.perf_counter()
    tokens = 0
    for g0 in range(0, a.chains, a.batch):
        idx = list(range(g0, min(a.chains, g0 + a.batch)))
        tokens += run_group(model, [prompts[i] for i in idx], [prompts[i + 1] for i in idx] if guided else None,
                            a.guidance, a.max_new_tokens, eos, pad, step_ms)
    total = time.perf_counter() - start
    print(json.dumps({"impl": f"transformers=={transformers.__version__}", "model": a.name or os.path.basename(a.model.rstrip("/")),
                      "dtype": a.dtype, "batch": a.batch, "chains": a.chains, "guidance": a.guidance,
                      "threads": torch.get_num_threads(), "max_new_tokens": a.max_new_tokens, "load_s": round(load_s, 3),
                      "total_s": round(total, 3), "new_tokens": tokens, "forward_calls": len(step_ms),
                      "step_p50_ms": round(sorted(step_ms)[len(step_ms) // 2], 2), "step_max_ms": round(max(step_ms), 2), "tokens_per_s": round(tokens / total, 2)}))


if __name__ == "__main__":
    sys.exit(main())
