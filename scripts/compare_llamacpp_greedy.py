#!/usr/bin/env python3
"""Greedy continuations of rankemb and llama.cpp on the same GGUF file and the same prompts, and
how often they agree (issue 13, item 6). llama.cpp's CPU kernels multiply with activations
quantized to 8 bits (Q8_1 against Q4_1 weights); rankemb keeps float32 activations. So the two
are expected to part where two tokens score almost the same, and this reports how often and
where, not a tolerance.

Prompts: one SNLI seed sentence each, in the small-model prompt of `rankemb generate`
("Rewrite this sentence using some different words. ..."), rendered by the GGUF file's own chat
template with jinja2 as transformers' apply_chat_template does (trim_blocks, lstrip_blocks, the
generation prompt added). Both sides get the same rendered text: rankemb through its
OpenAI-shaped /v1/completions (one prompt per request, temperature 0, so a 1-slot decode from
the file's Q4_1 blocks), llama.cpp through llama-cpp-python's Llama (top_k 1, no repeat penalty,
n_batch large enough for one prefill). Both stop at the model's end-of-generation tokens or
after --max-tokens.

Per prompt: whether the texts are equal, and k = the number of llama.cpp tokens whose decoded
text is a prefix of rankemb's text (where the two first part, in llama.cpp tokens; rankemb's
endpoint returns text, not ids, so this is a string comparison and counts one token too many
when llama.cpp's first different token is a prefix of rankemb's text there). The prompt token
counts of the two sides are asserted equal (the ids themselves: the tokenizer parity tests).
Prints one JSON summary line and writes every pair to --out (JSONL).

Usage: build/bin/rankemb --threads 2 serve -m .cache/assets/all-MiniLM-L6-v2 \
           --llm .cache/assets/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf --port 8093 &
       /tmp/lcpvenv/bin/python scripts/compare_llamacpp_greedy.py MODEL.gguf \
           ../shared/data/nli/snli_seed_sentences.txt --url http://127.0.0.1:8093 --n 100
       (the venv: see scripts/regen/bpe_gguf_llamacpp.py; it has jinja2 through llama-cpp-python)
"""
import argparse, json, os, statistics, sys, time, urllib.request

import jinja2
import jinja2.sandbox
import llama_cpp

PROMPT = "Rewrite this sentence using some different words. Reply with the new sentence only.\nSentence: {sentence}"


def render(template, sentence):
    messages = [{"role": "user", "content": PROMPT.replace("{sentence}", sentence)}]
    return template.render(messages=messages, add_generation_prompt=True)


def rankemb_complete(url, prompt, max_tokens):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}).encode()
    req = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.load(r)
    return out["choices"][0]["text"], out["usage"]["prompt_tokens"], out["choices"][0]["finish_reason"]


def llamacpp_complete(llm, prompt, max_tokens):
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    out = []
    llm.reset()  # generate() would otherwise keep the KV of the prefix shared with the last prompt
    for tok in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
            return out, len(ids), "stop"
        out.append(tok)
        if len(out) >= max_tokens:
            return out, len(ids), "length"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("seeds")
    ap.add_argument("--url", default="http://127.0.0.1:8093")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/llamacpp_greedy_agreement.jsonl")
    a = ap.parse_args()
    llm = llama_cpp.Llama(a.model, n_ctx=1024, n_batch=512, n_threads=a.threads, n_threads_batch=a.threads,
                          verbose=False)
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(llm.metadata["tokenizer.chat_template"])
    seeds = [l.strip() for l in open(a.seeds, encoding="utf-8") if l.strip()][: a.n]
    rows, t_r, t_l = [], 0.0, 0.0
    for i, seed in enumerate(seeds):
        prompt = render(template, seed)
        t0 = time.perf_counter()
        r_text, r_prompt_tokens, r_finish = rankemb_complete(a.url, prompt, a.max_tokens)
        t1 = time.perf_counter()
        ids, l_prompt_tokens, l_finish = llamacpp_complete(llm, prompt, a.max_tokens)
        t2 = time.perf_counter()
        t_r, t_l = t_r + t1 - t0, t_l + t2 - t1
        assert r_prompt_tokens == l_prompt_tokens, (i, r_prompt_tokens, l_prompt_tokens)
        l_text = llm.detokenize(ids).decode("utf-8", errors="replace")
        k = 0
        while k < len(ids) and r_text.startswith(llm.detokenize(ids[: k + 1]).decode("utf-8", errors="replace")):
            k += 1
        rows.append({"seed": seed, "prompt_tokens": l_prompt_tokens, "rankemb": r_text, "llamacpp": l_text,
                     "rankemb_finish": r_finish, "llamacpp_finish": l_finish, "llamacpp_tokens": len(ids),
                     "equal": r_text == l_text, "agreed_tokens": k})
        print(f"\r{i + 1}/{len(seeds)} equal so far {sum(r['equal'] for r in rows)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    with open(a.out + ".tmp", "w", encoding="utf-8") as f:  # never a half-written --out
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(a.out + ".tmp", a.out)
    parted = [r["agreed_tokens"] for r in rows if not r["equal"]]
    print(json.dumps({
        "prompts": len(rows), "max_tokens": a.max_tokens, "equal": sum(r["equal"] for r in rows),
        "equal_share": round(sum(r["equal"] for r in rows) / len(rows), 4),
        "parted_at_token_median": statistics.median(parted) if parted else None,
        "parted_at_token_min": min(parted) if parted else None,
        "llamacpp_tokens": sum(r["llamacpp_tokens"] for r in rows),
        "seconds_rankemb_http": round(t_r, 2), "seconds_llamacpp": round(t_l, 2)}))


if __name__ == "__main__":
    main()
