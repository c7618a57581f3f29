#!/usr/bin/env python3
"""Reference logits of SmolLM2-135M-Instruct (the GGUF asset) from Hugging Face transformers:

  tests/fixtures/llm/smollm2_gguf_logits.json

The model is rebuilt in transformers from the GGUF file alone: gguf-py's GGUFReader and
gguf.quants.dequantize give float32 tensors, the q/k rows that llama.cpp's converter permuted are
put back (transformers' own reverse_permute rule), and LlamaForCausalLM (attn_implementation
"eager", float32) runs them. For each prompt: the prefill logits at every prompt position
(on a fixed sample of 96 vocabulary ids, rounded to 1e-5, plus each row's argmax and its logit), then 8 greedy
steps fed one token at a time through past_key_values, with the same sample of logits after each.
The prompt ids are written out below (rankemb's tokenizer gave them; its tokenizer parity is tested
separately, against llama.cpp).

Usage: .venv-torch/bin/python scripts/regen/decoder_gguf.py
(.venv-torch: see scripts/regen/encoders.py; needs gguf==0.19.0 too)"""
import json, os

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from transformers import LlamaConfig, LlamaForCausalLM

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GGUF = os.path.join(REPO, ".cache/assets/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(REPO, "tests/fixtures/llm/smollm2_gguf_logits.json")
# Token ids of short ChatML-style prompts (written out so the fixture does not depend on a tokenizer).
PROMPTS = [
    # <|im_start|>user\nRewrite this sentence: A man is playing a guitar on stage.<|im_end|>\n<|im_start|>assistant\n
    [1, 4093, 198, 66, 846, 16064, 451, 6330, 42, 330, 555, 314, 4464, 253, 15987, 335, 3632, 30, 2, 198, 1, 520, 9531, 198],
    # The quick brown fox jumps over the lazy dog.
    [504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30],
    # It's 2026 and we've got 3,141 reasons - don't we?
    [1589, 506, 216, 34, 32, 34, 38, 284, 392, 3543, 3363, 216, 35, 28, 33, 36, 33, 3710, 731, 1326, 982, 392, 47],
]
N_DECODE = 8


def field(reader, key):
    return reader.fields[key].contents()


def reverse_permute(w, n_head):
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
         "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def hf_name(name):
    if name == "token_embd.weight": return "model.embed_tokens.weight"
    if name == "output_norm.weight": return "model.norm.weight"
    if name == "output.weight": return "lm_head.weight"
    _, layer, part, suffix = name.split(".")
    return f"model.layers.{layer}.{NAMES[part]}.{suffix}"


def load_model(path=GGUF):
    """LlamaForCausalLM (float32, eager attention) from the GGUF file's tensors and metadata."""
    r = GGUFReader(path)
    heads, kv = field(r, "llama.attention.head_count"), field(r, "llama.attention.head_count_kv")
    config = LlamaConfig(vocab_size=len(r.fields["tokenizer.ggml.tokens"].data), hidden_size=field(r, "llama.embedding_length"),
                         intermediate_size=field(r, "llama.feed_forward_length"), num_hidden_layers=field(r, "llama.block_count"),
                         num_attention_heads=heads, num_key_value_heads=kv, rms_norm_eps=field(r, "llama.attention.layer_norm_rms_epsilon"),
                         rope_theta=field(r, "llama.rope.freq_base"), max_position_embeddings=field(r, "llama.context_length"),
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    state = {}
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).reshape([int(d) for d in reversed(t.shape)]).astype(np.float32)
        if ".attn_q." in t.name: w = reverse_permute(w, heads)
        if ".attn_k." in t.name: w = reverse_permute(w, kv)
        state[hf_name(t.name)] = torch.from_numpy(np.ascontiguousarray(w))
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model = LlamaForCausalLM(config).eval()
    model.load_state_dict(state, strict=True)
    return model


def main():
    model = load_model()
    config = model.config
    sample = sorted(np.random.default_rng(7).choice(config.vocab_size, 96, replace=False).tolist())
    cases = []
    with torch.no_grad():
        for ids in PROMPTS:
            out = model(torch.tensor([ids]), use_cache=True)
            logits, past = out.logits[0], out.past_key_values
            case = {"prompt": ids, "prefill_sample": logits[:, sample].tolist(),
                    "prefill_argmax": logits.argmax(-1).tolist(), "prefill_max": logits.max(-1).values.tolist(),
                    "decode_ids": [], "decode_sample": []}
            nxt = int(logits[-1].argmax())
            for _ in range(N_DECODE):
                case["decode_ids"].append(nxt)
                out = model(torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                row = out.logits[0, -1]
                case["decode_sample"].append(row[sample].tolist())
                nxt = int(row.argmax())
            cases.append(case)
    def rounded(x):
        return [rounded(v) for v in x] if isinstance(x, list) else round(x, 5) if isinstance(x, float) else x
    cases = [{k: rounded(v) for k, v in c.items()} for c in cases]
    with open(OUT, "w") as f:
        json.dump({"gguf": os.path.basename(GGUF), "sample_ids": sample, "cases": cases}, f)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
