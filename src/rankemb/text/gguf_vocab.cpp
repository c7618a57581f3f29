// Tokenizers from GGUF metadata (tokenizer.ggml.*): byte-level BPE ("gpt2") and SentencePiece
// ("llama"). The vocabulary, merges (or scores) and token types are
// turned into the tokenizer.json document Hugging Face would ship for the same model, which the
// one BPE loader (bpe.cpp) then reads: so a GGUF tokenizer and a tokenizer.json tokenizer are the
// same code. The pre-tokenizer is chosen by tokenizer.ggml.pre with llama.cpp's regular
// expressions for each name (llama-vocab.cpp); an unknown name is an error, never a guess.
#include <algorithm>
#include <cctype>
#include <cmath>

#include <nlohmann/json.hpp>

#include "rankemb/io/gguf.h"
#include "rankemb/text/detail/loaders.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace rankemb::text {

namespace {

using nlohmann::json;

// token_type values of llama.cpp (LLAMA_TOKEN_TYPE_*).
constexpr int kUnknown = 2, kControl = 3, kUserDefined = 4;

constexpr const char* kLlama3Pattern =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Pattern =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

json split(const char* pattern) {
  return {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
}

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

// The pre-tokenizer llama.cpp applies for `pre` (LLAMA_VOCAB_PRE_TYPE_*), as a tokenizer.json step.
json pre_tokenizer(const std::string& pre, const std::string& origin) {
  auto sequence = [](json first, json second) {
    json steps = json::array({std::move(first), std::move(second)});
    return json{{"type", "Sequence"}, {"pretokenizers", std::move(steps)}};
  };
  if (pre == "default" || pre == "gpt2" || pre == "gpt-2") return byte_level(true);
  // The GPT-2 expression after single digits (StarCoder's family, SmolLM's included).
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r")
    return sequence(split("\\p{N}"), byte_level(true));
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" || pre == "pixtral")
    return sequence(split(kLlama3Pattern), byte_level(false));
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return sequence(split(kQwen2Pattern), byte_level(false));
  fail(ErrorCode::ModelFormat,
       "{}: tokenizer.ggml.pre \"{}\" is not supported (default, gpt2, smollm, starcoder, refact, command-r, llama3, llama-bpe, "
       "falcon3, pixtral, qwen2, deepseek-r1-qwen)",
       origin, pre);
}

// The special-token ids GGUF declares, by token id.
// A SentencePiece vocabulary without the keys has llama.cpp's defaults: <unk> 0, <s> 1, </s> 2.
SpecialTokens gguf_specials(const io::GgufFile& f, std::size_t n_tokens, const std::string& model) {
  SpecialTokens s;
  if (model == "llama" && n_tokens > 2) s.unk = 0, s.bos = 1, s.eos = 2;
  auto read = [&](const char* key, TokenId& field) {
    auto id = f.integer(key);
    if (!id) return;
    // Some converters write -1 (or UINT32_MAX) for "none".
    if (*id < 0 || *id == 0xFFFFFFFFLL) {
      field = -1;
      return;
    }
    if (static_cast<std::size_t>(*id) >= n_tokens)
      fail(ErrorCode::ModelFormat, "{}: {} = {} is outside the {} tokens", f.origin(), key, *id, n_tokens);
    field = static_cast<TokenId>(*id);
  };
  read("tokenizer.ggml.bos_token_id", s.bos);
  read("tokenizer.ggml.eos_token_id", s.eos);
  read("tokenizer.ggml.unknown_token_id", s.unk);
  read("tokenizer.ggml.padding_token_id", s.pad);
  return s;
}

// What the model-specific half of a GGUF tokenizer adds to the shared one.
struct ModelParts {
  std::vector<float> piece_scores;  // SentencePiece: one per token
  bool adds_bos = false;            // llama.cpp's add_bos when the file does not say
  bool clean_spaces = false;        // llama.cpp's clean_spaces in decode
};

// tokenizer.ggml.model "gpt2": byte-level BPE with the file's merges, pre-tokenized as
// tokenizer.ggml.pre says. The Llama-3 family (llama.cpp's LLAMA3 pre-tokenizer type) takes a
// word that is itself a token without merging (ignore_merges) and adds BOS by default. Decoding
// cleans spaces before punctuation as llama.cpp does, except for the pre-tokenizers it exempts.
ModelParts byte_level_bpe(const io::GgufFile& f, json& tj) {
  const auto* merges = f.strings("tokenizer.ggml.merges");
  if (!merges) fail(ErrorCode::ModelFormat, "{}: a gpt2 tokenizer needs tokenizer.ggml.merges", f.origin());
  const std::string pre = f.string("tokenizer.ggml.pre").value_or("default");
  const bool llama3 = pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" || pre == "pixtral";
  tj["model"]["merges"] = *merges;
  tj["model"]["ignore_merges"] = llama3;
  tj["pre_tokenizer"] = pre_tokenizer(pre, f.origin());
  tj["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  const bool clean = !(pre == "smollm" || pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "command-r");
  return {.adds_bos = llama3, .clean_spaces = clean};
}

// tokenizer.ggml.model "llama": SentencePiece (Llama 2, Mistral, Phi-3, Gemma), merged by the
// tokens' scores as llama.cpp does (BpeExtras::piece_scores), unknown characters spelled with
// <0xXX> byte tokens; the text gets a leading "▁" (unless add_space_prefix is false) and "▁" for
// every space, as Hugging Face's Llama tokenizer.json does.
ModelParts sentencepiece(const io::GgufFile& f, std::size_t n_tokens, json& tj) {
  const auto* scores = f.numbers("tokenizer.ggml.scores");
  if (!scores || scores->size() != n_tokens)
    fail(ErrorCode::ModelFormat, "{}: a llama (SentencePiece) tokenizer needs tokenizer.ggml.scores, one per token ({} tokens, {} scores)",
         f.origin(), n_tokens, scores ? scores->size() : 0);
  ModelParts parts{.adds_bos = true};
  parts.piece_scores.reserve(n_tokens);
  for (std::size_t i = 0; i < n_tokens; ++i) {
    const auto score = static_cast<float>((*scores)[i]);
    if (!std::isfinite(score)) fail(ErrorCode::ModelFormat, "{}: tokenizer.ggml.scores[{}] is not a finite number", f.origin(), i);
    parts.piece_scores.push_back(score);
  }
  tj["model"]["merges"] = json::array();
  tj["model"]["byte_fallback"] = true;
  tj["model"]["fuse_unk"] = true;
  const bool prefix = f.boolean("tokenizer.ggml.add_space_prefix").value_or(true);
  const std::string space = "\xe2\x96\x81";  // "▁"
  json normalizers = json::array();
  if (prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", space}});
  normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}});
  tj["normalizer"] = {{"type", "Sequence"}, {"normalizers", std::move(normalizers)}};
  json decoders = json::array({json{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
                               json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
  if (prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  tj["decoder"] = {{"type", "Sequence"}, {"decoders", std::move(decoders)}};
  return parts;
}

// GGUF files carry no per-token strip flags; llama.cpp sets them by model name. For Phi-3 ("phi-3"
// or "phi3" in general.name, any case) its special tokens swallow the white space on their
// right, except <unk>, <s> and <|endoftext|> (llama-vocab.cpp, "set attributes by model name").
bool phi3_strip_rules(const io::GgufFile& f) {
  std::string name = f.string("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos;
}

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const io::GgufFile& f) {
  const std::string& origin = f.origin();
  const std::string model = f.require_string("tokenizer.ggml.model");
  if (model != "gpt2" && model != "llama")
    fail(ErrorCode::ModelFormat, "{}: tokenizer.ggml.model \"{}\" is not supported (gpt2: byte-level BPE, llama: SentencePiece)", origin,
         model);
  const auto* tokens = f.strings("tokenizer.ggml.tokens");
  if (!tokens) fail(ErrorCode::ModelFormat, "{}: the tokenizer needs tokenizer.ggml.tokens", origin);
  const auto* types = f.numbers("tokenizer.ggml.token_type");
  if (types && types->size() != tokens->size())
    fail(ErrorCode::ModelFormat, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", origin, types->size(), tokens->size());

  json vocab = json::object();
  json added = json::array();
  const bool phi3 = phi3_strip_rules(f);
  for (std::size_t id = 0; id < tokens->size(); ++id) {
    const std::string& token = (*tokens)[id];
    if (!vocab.emplace(token, id).second) fail(ErrorCode::ModelFormat, "{}: tokenizer.ggml.tokens[{}] {:?} repeats an earlier token", origin, id, token);
    const int type = types ? static_cast<int>((*types)[id]) : 1;
    // llama.cpp matches these in the text before the model sees it (control and unknown ones as
    // special tokens).
    const bool special = type == kControl || (type == kUnknown && model == "llama");
    if (special || type == kUserDefined) {
      added.push_back({{"id", id}, {"content", token}, {"single_word", false}, {"lstrip", false}, {"rstrip", phi3 && token != "<unk>" && token != "<s>" && token != "<|endoftext|>"},
                       {"normalized", false}, {"special", special}});
    }
  }
  const SpecialTokens specials = gguf_specials(f, tokens->size(), model);
  json tj = {{"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"byte_fallback", false}, {"ignore_merges", false}}},
             {"added_tokens", std::move(added)}};
  const ModelParts parts = model == "gpt2" ? byte_level_bpe(f, tj) : sentencepiece(f, tokens->size(), tj);
  if (model == "llama" && specials.unk >= 0) tj["model"]["unk_token"] = (*tokens)[static_cast<std::size_t>(specials.unk)];

  // BOS/EOS wrapping as llama.cpp's add_special does: where the file asks for it, else by the
  // tokenizer's kind.
  json single = json::array();
  json table = json::object();
  auto add_special = [&](TokenId id) {
    const std::string& t = (*tokens)[static_cast<std::size_t>(id)];
    single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    table[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
  };
  if (f.boolean("tokenizer.ggml.add_bos_token").value_or(parts.adds_bos) && specials.bos >= 0) add_special(specials.bos);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (f.boolean("tokenizer.ggml.add_eos_token").value_or(false) && specials.eos >= 0) add_special(specials.eos);
  tj["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", table}};
  return detail::make_bpe(tj, origin + " (tokenizer.ggml)", &specials,
                          {.piece_scores = parts.piece_scores, .clean_spaces = parts.clean_spaces});
}

}  // namespace rankemb::text
