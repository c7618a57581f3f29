#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) on the same work as bench/bench_decoder: N sequences of a
P-token prompt (BOS + token ids (s * 131 + t * 17) % vocab, as bench_decoder builds them), one
batched prefill, then S greedy decode steps of one token per sequence. Prints one JSONL record
in bench_decoder's fields (prefill_ms, ms_per_step, decode_tokens_per_s, prefill_tokens_per_s).
N > 1 uses llama.cpp's batched decode of parallel sequences (one llama_batch, seq ids 0..N-1).
llama.cpp's CPU matmuls quantize activations to the weights' block type (Q8 for Q4_1 weights):
its arithmetic is not float32, so this is a speed peer, not a parity reference.

Usage: /tmp/lcpvenv/bin/python scripts/bench_llamacpp.py MODEL.gguf [--slots 1] [--prompt 100]
       [--steps 64] [--threads 2]   (the venv: see scripts/regen/bpe_gguf_llamacpp.py)"""
import argparse, json, time

import llama_cpp
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=100)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    n_ctx = a.slots * (a.prompt + a.steps + 8)
    llama_cpp.llama_backend_init()
    mp = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(a.model.encode(), mp)
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx = n_ctx
    cp.n_batch = max(512, a.slots * a.prompt)
    cp.n_ubatch = cp.n_batch
    cp.n_seq_max = a.slots
    cp.n_threads = cp.n_threads_batch = a.threads
    ctx = llama_cpp.llama_init_from_model(model, cp)
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    bos = llama_cpp.llama_vocab_bos(vocab)
    batch = llama_cpp.llama_batch_init(max(a.slots * a.prompt, a.slots), 0, a.slots)

    def fill(items):  # items: (token, pos, seq, want_logits)
        batch.n_tokens = len(items)
        for i, (tok, pos, seq, logits) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos, 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits

    prompts = [[bos] + [(s * 131 + t * 17) % n_vocab for t in range(1, a.prompt)] for s in range(a.slots)]
    fill([(tok, t, s, t == a.prompt - 1) for s in range(a.slots) for t, tok in enumerate(prompts[s])])
    t0 = time.perf_counter()
    assert llama_cpp.llama_decode(ctx, batch) == 0
    t1 = time.perf_counter()
    last = [(s + 1) * a.prompt - 1 for s in range(a.slots)]
    for step in range(a.steps):
        nxt = []
        for s in range(a.slots):
            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, last[s] if step == 0 else s), shape=(n_vocab,))
            nxt.append(int(row.argmax()))
        fill([(nxt[s], a.prompt + step, s, True) for s in range(a.slots)])
        assert llama_cpp.llama_decode(ctx, batch) == 0
    t2 = time.perf_counter()
    print(json.dumps({"name": "llama.cpp " + llama_cpp.__version__, "slots": a.slots, "prompt": a.prompt, "steps": a.steps,
                      "threads": a.threads, "prefill_ms": round((t1 - t0) * 1e3, 3),
                      "prefill_tokens_per_s": round(a.slots * a.prompt / (t1 - t0), 1),
                      "ms_per_step": round((t2 - t1) * 1e3 / a.steps, 4),
                      "decode_tokens_per_s": round(a.slots * a.steps / (t2 - t1), 1)}))


if __name__ == "__main__":
    main()
