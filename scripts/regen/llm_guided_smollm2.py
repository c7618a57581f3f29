#!/usr/bin/env python3
"""Writes tests/fixtures/llm/smollm2_guided.expected.jsonl: three-step guided chains of the
embedded LLM (SmolLM2-135M-Instruct, the GGUF asset) computed with Hugging Face transformers on
PyTorch CPU in float32, the reference for tests/unit/llm/smollm2_generate_test.cpp.

Independent of rankemb at every stage:
- weights: LlamaForCausalLM rebuilt from the GGUF file by gguf-py (decoder_gguf.load_model);
- prompt: the user turn rendered by the chat template stored in the GGUF file, through
  transformers' apply_chat_template (Python jinja2) and its tokenizer converted from the GGUF
  metadata (add_generation_prompt, no extra BOS: the template writes every special token);
- the loop: METHOD.md stage 1, written from the method description. At each step positive =
  prompt(current) and the negative is, by preset:
    paper     - the authors' prompt, g = 1.5, negative prompt(previous); no negative (one stream)
                when previous == current (step 1);
    small-llm - rankemb's recipe for small models (README "Real LLM chains"): a short prompt,
                g = 2, negative prompt(previous), or the copy prompt of the current sentence when
                previous == current;
  score = lneg + g * (lpos - lneg) over float32 log_softmax, argmax (lowest id on ties), stop at
  <|im_end|> (id 2, the file's eos) or MAX_NEW tokens, decode with skip_special_tokens, strip
  surrounding backticks and white space. Step k+1 rewrites step k's output. Each step records its
  smallest gap between the chosen token's score and the runner-up's ("min_margin"): how far a
  rounding difference would have to go to flip a greedy choice.

Usage: .venv-bench/bin/python scripts/regen/llm_guided_smollm2.py  (about 3 minutes on 2 cores)
(needs torch, transformers and gguf==0.19.0 in that environment)
"""
import json, os, sys

import numpy as np
import torch
import transformers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from corpus import load_corpus  # noqa: E402
from decoder_gguf import GGUF, load_model  # noqa: E402
# The authors' prompt, the seeds, one cached stream and the output clean-up of the TinyStories run.
from llm_guided_tinystories import PROMPT as PAPER_PROMPT, SEEDS, Stream, strip_generated  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "tests", "fixtures", "llm", "smollm2_guided.expected.jsonl")

SMALL_PROMPT = "Rewrite this sentence using some different words. Reply with the new sentence only.\nSentence: {sentence}"
COPY_PROMPT = ("Repeat the following sentence exactly, word for word, without changing anything. "
               "Directly answer with the sentence.\nSentence: ```{sentence}```. Result: ")
PRESETS = {"paper": {"prompt": PAPER_PROMPT, "g": 1.5, "copy_when_same": False},
           "small-llm": {"prompt": SMALL_PROMPT, "g": 2.0, "copy_when_same": True}}
MAX_NEW = 48
STEPS = 3
STOPS = {2}


def prompt_ids(tok, template, sentence):
    user = template.replace("{sentence}", sentence.strip())
    return tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True, tokenize=True)


def guided(model, tok, preset, current, previous):
    p = PRESETS[preset]
    pos_ids = prompt_ids(tok, p["prompt"], current)
    if current != previous:
        neg_ids = prompt_ids(tok, p["prompt"], previous)
    elif p["copy_when_same"]:
        neg_ids = prompt_ids(tok, COPY_PROMPT, current)
    else:
        neg_ids = None
    pos = Stream(model, pos_ids)
    neg = Stream(model, neg_ids) if neg_ids is not None and neg_ids != pos_ids else None
    g = np.float32(p["g"])
    gen = []
    margin = float("inf")  # smallest gap between the chosen token's score and the runner-up's
    while True:
        lp = pos.logp()
        score = lp if neg is None else (lambda ln: ln + g * (lp - ln))(neg.logp())
        t = int(np.argmax(score))
        top2 = np.partition(score, -2)[-2:]
        margin = min(margin, float(top2[1] - top2[0]))
        gen.append(t)
        if t in STOPS or len(gen) >= MAX_NEW:
            break
        pos.pending.append(t)
        if neg is not None:
            neg.pending.append(t)
    body = gen[:-1] if gen[-1] in STOPS else gen
    return {"ids": gen, "text": strip_generated(tok.decode(body, skip_special_tokens=True)), "streams": 1 if neg is None else 2,
            "min_margin": round(margin, 6)}


def main():
    texts = load_corpus()
    tok = AutoTokenizer.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF))
    model = load_model()
    lines = []
    for preset in PRESETS:
        for i in SEEDS:
            previous = current = texts[i]
            steps = []
            for _ in range(STEPS):
                step = guided(model, tok, preset, current, previous)
                steps.append(step)
                previous, current = current, step["text"]
            lines.append({"preset": preset, "seed": i, "steps": steps})
            print(preset, i, [s["text"] for s in steps], flush=True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(f"# generated by scripts/regen/llm_guided_smollm2.py (transformers=={transformers.__version__}, "
                f"torch=={torch.__version__}, {os.path.basename(GGUF)} dequantized to float32, max_new_tokens={MAX_NEW})\n")
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {len(lines)} lines to {OUT}")


if __name__ == "__main__":
    main()
