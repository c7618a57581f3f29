#!/usr/bin/env python3
"""Writes the GGUF fixtures of tests/unit/io/gguf_test.cpp with gguf-py (the reference writer and
dequantizer, independent of rankemb's reader):

  tests/fixtures/io/gguf_quants.gguf          one 2 x 512 tensor of every dequantizable type, raw block
                                              bytes drawn at random (scale fields set to finite half
                                              floats so every value is a number), plus metadata of
                                              every value type
  tests/fixtures/io/gguf_quants_expected.safetensors
                                              gguf.quants.dequantize() of each tensor, float32

  tests/fixtures/io/gguf_tiny_vocab.gguf      a tokenizer-only GGUF (tokenizer.ggml.model gpt2, pre smollm):
                                              the 256 byte-level symbols, 40 merges learned from a few
                                              sentences, 3 control tokens and 1 user-defined token
  tests/fixtures/io/gguf_tiny_spm_vocab.gguf  a SentencePiece-kind tokenizer-only GGUF (tokenizer.ggml.model
                                              llama): scores with a tie, byte tokens, a user-defined
                                              token; its expected ids come from llama.cpp
                                              (scripts/regen/bpe_gguf_llamacpp.py)
  tests/fixtures/io/gguf_tiny_vocab.expected.json
                                              Hugging Face `tokenizers` ids for some texts, from the same
                                              vocabulary as a tokenizer.json (Digits + ByteLevel, the
                                              control tokens special added tokens)

Usage: python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf==0.19.0 numpy safetensors tokenizers
       /tmp/gguf-venv/bin/python scripts/regen/gguf_fixture.py"""
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFWriter, GGML_QUANT_SIZES
from gguf.quants import dequantize
from safetensors.numpy import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests/fixtures/io"
ROWS, COLS = 2, 512

# Byte offsets of the float16 scale fields inside one block of each type.
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def random_blocks(rng, qtype):
    block, size = GGML_QUANT_SIZES[qtype]
    n_blocks = ROWS * COLS // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in HALF_FIELDS[qtype]:
        halves = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        halves[::7] = np.float16(6.1e-05) * rng.random(len(halves[::7])).astype(np.float16)  # subnormals too
        raw[:, off:off + 2] = halves.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(ROWS, COLS // block * size)


def main():
    rng = np.random.default_rng(20261206)
    w = GGUFWriter(str(OUT / "gguf_quants.gguf"), "llama")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo\nworld")
    w.add_uint64("test.u64", 2**40 + 3)
    w.add_int64("test.i64", -(2**40) - 5)
    w.add_float64("test.f64", 1e-300)
    w.add_array("test.strings", ["a", "", "ü ß"])
    w.add_array("test.ints", [1, -2, 300000])
    w.add_array("test.floats", [0.5, -1.25])
    expected = {}
    floats = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    floats[0, :4] = [np.inf, -0.0, 1e-40, 65504.0]
    for name, qtype, data in [
        ("f32", T.F32, floats),
        ("f16", T.F16, floats.astype(np.float16)),
        ("bf16", T.BF16, (floats.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(ROWS, -1)),
    ] + [(q.name.lower(), q, random_blocks(rng, q)) for q in HALF_FIELDS]:
        raw_dtype = None if qtype in (T.F32, T.F16) else qtype
        w.add_tensor(name, data, raw_dtype=raw_dtype)
        expected[name] = np.ascontiguousarray(dequantize(data, qtype).reshape(ROWS, COLS).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(expected, str(OUT / "gguf_quants_expected.safetensors"))
    print("wrote", OUT / "gguf_quants.gguf", "and the expected values of", len(expected), "tensors")


TEXTS = ["Two women, 3 dogs and 2026 cats.", "<|im_start|>user\nhello there<|im_end|>\n", "  spaced   out  ",
         "ünïcödé 12345 x<tool>y", "the the then there", ""]


def byte_symbols():
    # GPT-2's byte-to-unicode table.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_vocab():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=256 + 40 + len(specials), special_tokens=specials, show_progress=False,
                                  initial_alphabet=byte_symbols())
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["the women then went there", "two dogs and the cats", "hello there, user"] * 20, trainer)
    tok.add_tokens(["<tool>"])  # user-defined: matched in text, not special
    state = json.loads(tok.to_str())
    vocab = sorted(state["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab += [(t["content"], t["id"]) for t in state["added_tokens"] if t["content"] not in state["model"]["vocab"]]
    vocab.sort(key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["model"]["merges"]]
    types = [3 if t in specials else 4 if t == "<tool>" else 1 for t, _ in vocab]
    w = GGUFWriter(str(OUT / "gguf_tiny_vocab.gguf"), "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    expected = [{"text": t, "ids": tok.encode(t).ids, "decoded": tok.decode(tok.encode(t).ids, skip_special_tokens=True)}
                for t in TEXTS]
    with open(OUT / "gguf_tiny_vocab.expected.json", "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=0)
    print("wrote", OUT / "gguf_tiny_vocab.gguf", len(vocab), "tokens,", len(merges), "merges")


def tiny_spm_vocab():
    """A SentencePiece-kind GGUF (tokenizer.ggml.model llama): <unk>, <s>, </s>, the 256 byte
    tokens, and pieces over "a b c" with scores; "ab" and "bc" share a score (ties merge leftmost),
    "▁ab" is reachable only through "▁a" + "b", "é" is not a token but "ét" is (llama.cpp still
    merges it; alone, "é" falls back to its bytes)."""
    pieces = [("\u2581", -1.0), ("a", -2.0), ("b", -3.0), ("c", -4.0), ("d", -4.5), ("\u2581a", -5.0), ("ab", -6.0),
              ("bc", -6.0), ("\u2581ab", -7.0), ("cd", -8.0), ("\u2581\u2581", -9.0), ("abcd", -10.0), ("<tool>", 0.0), ("\u00e9t", -11.0)]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [p for p, _ in pieces]
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [sc for _, sc in pieces]
    types = [2, 3, 3] + [6] * 256 + [4 if p == "<tool>" else 1 for p, _ in pieces]
    w = GGUFWriter(str(OUT / "gguf_tiny_spm_vocab.gguf"), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", OUT / "gguf_tiny_spm_vocab.gguf", len(tokens), "tokens")


if __name__ == "__main__":
    main()
    tiny_vocab()
    tiny_spm_vocab()
