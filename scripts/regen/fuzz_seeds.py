#!/usr/bin/env python3
"""Writes fuzz/seeds/tokenizer_files/: tiny tokenizer files that seed fuzz/tokenizer_files.cpp.

A file named K_... is fed to the target as byte K (which file name the loader sees: 0
tokenizer.json, 1 vocab.json, 2 vocab.txt) followed by the file. They only need to load, so that
mutation starts from inputs that reach deep into the readers. Standard library only.
"""
import json
import pathlib

OUT = pathlib.Path(__file__).resolve().parents[2] / "fuzz" / "seeds" / "tokenizer_files"


def added(i, t):
    return {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def wordpiece():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "man", "is", "play", "##ing", "guitar", ".", "1", "##2", "##3"]
    single = [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
              {"SpecialToken": {"id": "[SEP]", "type_id": 0}}]
    return vocab, {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(i, t) for i, t in enumerate(vocab[:4])],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing", "single": single, "pair": [],
                           "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                              "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(vocab)}},
    }


def byte_level_bpe():
    vocab = ["<|endoftext|>", "A", "\u0120", "m", "a", "n", "\u0120m", "\u0120man", "i", "s", "\u0120is", ".", "1", "2", "3"]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "<|endoftext|>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": False}, byte_level]},
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(vocab)}, "merges": ["\u0120 m", "\u0120m a", "i s", "\u0120 is"]},
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    vocab, wp = wordpiece()
    (OUT / "0_wordpiece_tokenizer.json").write_text(json.dumps(wp))
    (OUT / "0_bytelevel_bpe_tokenizer.json").write_text(json.dumps(byte_level_bpe()))
    unigram = [["\ufffd", 0], ["<s>", 0], ["</s>", 0], ["extra_token_id_1", 0], ["extra_token_id_2", 0],
               ["extra_token_id_3", 0], ["\u2581a", -2.5], ["\u2581man", -4.0], ["s", -3.3], [".", -3.2],
               ["\u2581", -1.0], [":", None]]  # a null score, as the real file has
    (OUT / "1_use_unigram_vocab.json").write_text(json.dumps(unigram))
    (OUT / "2_vocab.txt").write_text("\n".join(vocab) + "\n")


if __name__ == "__main__":
    main()
