// Constructors of the concrete tokenizers, called only by load_tokenizer() in tokenizer.cpp.
// Each throws Error(ModelFormat) naming `file` and the offending field.
#pragma once

#include <filesystem>
#include <cstdint>
#include <memory>
#include <span>

#include <nlohmann/json_fwd.hpp>

#include "rankemb/text/tokenizer.h"

namespace rankemb::text::detail {

// tokenizer.json whose "model.type" is "WordPiece".
std::unique_ptr<Tokenizer> make_wordpiece(const nlohmann::json& tokenizer_json, const std::filesystem::path& file);
// BERT vocab.txt (one token per line); lowercase also strips accents, as BertTokenizer does.
std::unique_ptr<Tokenizer> make_wordpiece_vocab_txt(const std::filesystem::path& vocab_txt, bool lowercase);
// tokenizer.json whose "model.type" is "BPE": byte-level (GPT-2, Llama-3, Qwen) or
// SentencePiece-style (Metaspace / Prepend+Replace normalizer, byte fallback: Llama-2, Mistral).
// bos/eos/unk/pad come from `specials` when given (GGUF), else from tokenizer_config.json next to `file`.
// What GGUF tokenizers need beyond tokenizer.json (gguf_vocab.cpp).
struct BpeExtras {
  // When not empty (one per vocabulary id): SentencePiece by scores instead of model.merges, as
  // llama.cpp's SPM tokenizer: from the characters up, the adjacent pair whose joined text is a
  // token with the highest score merges first (leftmost on ties).
  std::span<const float> piece_scores;
  // decode() ends with llama.cpp's clean_spaces passes (" ." -> ".", " 's" -> "'s", ...).
  bool clean_spaces = false;
};
std::unique_ptr<Tokenizer> make_bpe(const nlohmann::json& tokenizer_json, const std::filesystem::path& file,
                                    const SpecialTokens* specials = nullptr, const BpeExtras& extras = {});
// GPT-2 layout: vocab.json (token -> id) + merges.txt (the npm/OpenAI names encoder.json + vocab.bpe too).
std::unique_ptr<Tokenizer> make_gpt2_bpe_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);
// Universal Sentence Encoder Lite vocabulary: a JSON array of [piece, score] pairs.
std::unique_ptr<Tokenizer> make_use_unigram(const std::filesystem::path& vocab_json);

}  // namespace rankemb::text::detail
