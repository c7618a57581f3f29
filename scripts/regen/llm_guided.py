#!/usr/bin/env python3
"""Writes tests/fixtures/llm/guided_toy.expected.jsonl: the reference for the guided
decoding of src/rankemb/llm/llm_generator.cpp, computed with numpy float32 on a toy model that
tests/unit/llm/llm_generator_test.cpp re-implements in C++ (FakeCausalLm/ByteTokenizer).

Toy tokenizer: id 0 "<s>" (BOS, prepended to every prompt), 1 "</s>" (EOS), 2 "<|eot|>"
(end of turn), 3 "<|sep|>" (special, not a stop token), 4 + b for byte b. 260 ids.
Toy model: the logits of a sequence depend on its whole history h = t_0..t_n through a 64-bit
FNV-1a hash; logit[v] = (q - 128) / 32 for printable ASCII bytes and -8 + q / 256 otherwise, with
q = mix(hash, v) % 257 (exact in float32).
Guided greedy (METHOD.md): score = lneg + g * (lpos - lneg) over float32 log-softmax, argmax with
ties to the lowest id; one stream when g == 1 or the prompts are equal.

Two kinds of lines after the header:
  {"kind": "scores", "pos": [...], "neg": [...] or [], "g": g, "scores": [...]}
  {"kind": "decode", "current": corpus index, "previous": corpus index, "g": g, "streams": 1|2,
   "ids": [generated ids], "text": "..."}

Usage: .venv-ref/bin/python scripts/regen/llm_guided.py
"""
import json, os, sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
from corpus import load_corpus  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "tests", "fixtures", "llm", "guided_toy.expected.jsonl")

M64 = (1 << 64) - 1
VOCAB = 260
PROMPT = "Rewrite: {sentence}\nResult:"
MAX_NEW = 12
STOPS = {1, 2}


def mix(x):
    x &= M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def history_hash(tokens):
    h = 0xCBF29CE484222325
    for t in tokens:
        h = ((h ^ t) * 0x100000001B3) & M64
    return h


def toy_logits(tokens):
    h = history_hash(tokens)
    out = np.empty(VOCAB, dtype=np.float32)
    for v in range(VOCAB):
        q = mix(h + v * 0x9E3779B97F4A7C15) % 257
        printable = v >= 4 and 0x20 <= v - 4 <= 0x7E
        out[v] = (q - 128) / 32.0 if printable else -8.0 + q / 256.0
    return out


def log_softmax(x):
    x = x.astype(np.float32)
    m = np.max(x)
    s = np.sum(np.exp(x - m), dtype=np.float32)
    return (x - m - np.log(s)).astype(np.float32)


def guided(lpos_logits, lneg_logits, g):
    lp = log_softmax(lpos_logits)
    if lneg_logits is None or g == 1.0:  # one stream: the positive log-probabilities exactly
        return lp
    ln = log_softmax(lneg_logits)
    return (ln + np.float32(g) * (lp - ln)).astype(np.float32)


def prompt_ids(sentence):
    text = PROMPT.replace("{sentence}", sentence.strip())
    return [0] + [4 + b for b in text.encode("utf-8")]


def strip_generated(s):
    return s.strip("` \t\n\r\f\v")


def decode(current, previous, g):
    pos = prompt_ids(current)
    neg = prompt_ids(previous)
    two = g != 1.0 and current != previous and pos != neg
    gen = []
    while True:
        score = guided(toy_logits(pos + gen), toy_logits(neg + gen) if two else None, g)
        tok = int(np.argmax(score))  # first maximum = lowest id
        gen.append(tok)
        if tok in STOPS or len(gen) >= MAX_NEW:
            break
    body = [t for t in gen if t not in STOPS and t >= 4]
    text = strip_generated(bytes(t - 4 for t in body).decode("utf-8"))
    return gen, text, 2 if two else 1


def main():
    texts = load_corpus()
    rng = np.random.default_rng(2026)
    lines = []
    # The formula on small tables, including ties and a guidance below 1.
    for g in [1.5, 1.0, 3.0, 0.5, 1.5]:
        pos = np.round(rng.normal(size=9) * 3, 2).astype(np.float32)
        neg = np.round(rng.normal(size=9) * 3, 2).astype(np.float32)
        lines.append({"kind": "scores", "pos": pos.tolist(), "neg": neg.tolist(), "g": g,
                      "scores": guided(pos, neg, g).tolist()})
    pos = np.array([1.0, 3.0, 3.0, -2.0], dtype=np.float32)
    lines.append({"kind": "scores", "pos": pos.tolist(), "neg": [], "g": 1.5, "scores": guided(pos, None, 1.5).tolist()})

    # Guided decoding of corpus pairs: every 97th corpus sentence, previous = the next picked one,
    # step 1 (previous == current) for every fifth; a long hard case comes late so the generator
    # has to re-reserve its slots while other requests are running.
    picks = list(range(0, len(texts), 97))
    long_index = max(range(len(texts)), key=lambda i: len(texts[i].encode("utf-8")))
    picks.insert(len(picks) - 3, long_index)
    gs = [1.5, 1.0, 3.0, 0.5]
    for n, i in enumerate(picks):
        j = i if n % 5 == 0 else picks[(n + 1) % len(picks)]
        g = gs[n % len(gs)]
        ids, text, streams = decode(texts[i], texts[j], g)
        lines.append({"kind": "decode", "current": i, "previous": j, "g": g, "streams": streams,
                      "ids": ids, "text": text})

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(f"# generated by scripts/regen/llm_guided.py (numpy=={np.__version__}, toy model: "
                f"fnv1a64 full-history hash, prompt {json.dumps(PROMPT)}, max_new_tokens={MAX_NEW})\n")
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {len(lines)} lines to {OUT}")


if __name__ == "__main__":
    main()
