#!/usr/bin/env python3
"""Writes the chat-template fixtures: what each model's own Jinja chat template renders for one
user turn with the generation prompt, i.e. what transformers'
apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
returns, without needing transformers.

  tests/fixtures/text/chat_templates.expected.jsonl
      {"format", "system", "enable_thinking", "index", "rendered"} for the first 300 corpus texts,
      every hard case and a few system messages, per format variant (llama3; chatml = Qwen3 with
      default variables, and with enable_thinking=False). "system": null = no system message;
      "enable_thinking": null = the variable is left undefined (the template's default).
  tests/fixtures/text/chat_template_ids.expected.jsonl
      {"format", "system", "enable_thinking", "index", "ids"}: the first 50 entries of each variant,
      tokenized by `tokenizers` from the tokenizer.json next to each config, add_special_tokens=False
      (what apply_chat_template(tokenize=True) does).

The Jinja environment mirrors the one transformers compiles chat templates in: an immutable
sandbox with trim_blocks and lstrip_blocks, the loopcontrols extension, a tojson filter that keeps
non-ASCII text, and the raise_exception / strftime_now globals. The template sees the tokenizer's
special tokens (bos_token, eos_token, ...) as variables, as transformers passes them.

Usage: .venv-ref/bin/pip install jinja2==3.1.4
       .venv-ref/bin/python scripts/regen/chat_templates.py [--data-dir ../shared/data]
"""
import argparse, datetime, hashlib, importlib.metadata, json, os, sys

import jinja2
import jinja2.ext
import tokenizers
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from corpus import DEFAULT_DATA, OUT as CORPUS_JSONL, load_corpus  # noqa: E402

ASSETS = os.path.join(REPO, ".cache", "assets")
MODELS = {
    "llama3": os.path.join(ASSETS, "llama3-tokenizer", "models"),
    "chatml": os.path.join(ASSETS, "qwen3-tokenizer", "models"),
}
OUT_DIR = os.path.join(REPO, "tests", "fixtures", "text")
N_PLAIN = 300
N_IDS = 50

# (corpus index or "hard:<k>", system message). Chosen to exercise trimming (Llama-3 trims both
# the system and the user content; Qwen3 trims neither), newlines and non-ASCII text.
SYSTEMS = [
    "You are a helpful assistant.",
    "  Answer in one word.\n",
    "Réponds en français.\nSois bref.",
    "\u3000wide space\u3000",
    # Python's str.strip() (Jinja's trim) also strips the information separators U+001C..U+001F,
    # which are not Unicode White_Space; U+200B is neither.
    "\x1c\x1d\x1e\x1f\x85\u2028 separators \u200b",
]


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token_content(t):
    return t["content"] if isinstance(t, dict) else t


def load_template(model_dir, env):
    with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    # Special tokens as transformers' special_tokens_map exposes them: only those that are set.
    variables = {}
    for key in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        if cfg.get(key) is not None:
            variables[key] = token_content(cfg[key])
    if cfg.get("additional_special_tokens"):
        variables["additional_special_tokens"] = [token_content(t) for t in cfg["additional_special_tokens"]]
    return env.from_string(cfg["chat_template"]), variables


def render(template, variables, system, text, enable_thinking):
    messages = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    kwargs = dict(variables)
    if enable_thinking is not None:
        kwargs["enable_thinking"] = enable_thinking
    return template.render(messages=messages, tools=None, documents=None, add_generation_prompt=True, **kwargs)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=DEFAULT_DATA)
    args = ap.parse_args()

    texts = load_corpus(args.data_dir)
    with open(CORPUS_JSONL, encoding="utf-8") as f:
        rows = [json.loads(l) for l in f if l.strip() and not l.startswith("#")]
    assert len(rows) == len(texts)
    hard = [i for i, r in enumerate(rows) if "text" in r]
    plain = list(range(min(N_PLAIN, len(texts))))
    indices = plain + [i for i in hard if i not in plain]
    # System messages on a real sentence, the empty text and a whitespace-only text.
    sys_targets = [0, hard[0], hard[2]]

    env = make_env()
    variants = [("llama3", None), ("chatml", None), ("chatml", False)]
    entries = []  # (format, system, enable_thinking, index, rendered)
    for fmt, thinking in variants:
        template, variables = load_template(MODELS[fmt], env)
        for i in indices:
            entries.append((fmt, None, thinking, i, render(template, variables, None, texts[i], thinking)))
        for s in SYSTEMS:
            for i in sys_targets:
                entries.append((fmt, s, thinking, i, render(template, variables, s, texts[i], thinking)))

    toks = {fmt: tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json")) for fmt, d in MODELS.items()}
    assets = ", ".join(
        f"{os.path.relpath(os.path.join(d, n), REPO)} sha256:{sha256(os.path.join(d, n))}"
        for d in MODELS.values() for n in ("tokenizer_config.json", "tokenizer.json"))
    header = (f"# generated by scripts/regen/chat_templates.py (jinja2=={jinja2.__version__}, "
              f"markupsafe=={importlib.metadata.version('markupsafe')}, tokenizers=={tokenizers.__version__}; {assets})\n")

    def key(e):
        return {"format": e[0], "system": e[1], "enable_thinking": e[2], "index": e[3]}

    os.makedirs(OUT_DIR, exist_ok=True)
    out = os.path.join(OUT_DIR, "chat_templates.expected.jsonl")
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        f.write(header)
        for e in entries:
            f.write(json.dumps({**key(e), "rendered": e[4]}, ensure_ascii=False, separators=(",", ":")) + "\n")
    os.replace(out + ".tmp", out)

    out_ids = os.path.join(OUT_DIR, "chat_template_ids.expected.jsonl")
    n_ids = 0
    with open(out_ids + ".tmp", "w", encoding="utf-8") as f:
        f.write(header)
        for fmt, thinking in variants:
            group = [e for e in entries if e[0] == fmt and e[2] == thinking][:N_IDS]
            for e in group:
                ids = toks[fmt].encode(e[4], add_special_tokens=False).ids
                f.write(json.dumps({**key(e), "ids": ids}, separators=(",", ":")) + "\n")
                n_ids += 1
    os.replace(out_ids + ".tmp", out_ids)
    print(f"wrote {len(entries)} rendered prompts to {out} and {n_ids} id lists to {out_ids}", file=sys.stderr)


if __name__ == "__main__":
    main()
