// Tokenizers from GGUF metadata (tokenizer.ggml.*). The vocabulary, merges and token types are
// turned into the tokenizer.json document Hugging Face would ship for the same model, which the
// one BPE loader (bpe.cpp) then reads: so a GGUF tokenizer and a tokenizer.json tokenizer are the
// same code. The pre-tokenizer is chosen by tokenizer.ggml.pre with llama.cpp's regular
// expressions for each name (llama-vocab.cpp); an unknown name is an error, never a guess.
#include <nlohmann/json.hpp>

#include "rankemb/io/gguf.h"
#include "rankemb/text/detail/loaders.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace rankemb::text {

namespace {

using nlohmann::json;

// token_type values of llama.cpp (LLAMA_TOKEN_TYPE_*).
constexpr int kControl = 3, kUserDefined = 4;

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
SpecialTokens gguf_specials(const io::GgufFile& f, std::size_t n_tokens) {
  SpecialTokens s;
  auto read = [&](const char* key, TokenId& field) {
    auto id = f.integer(key);
    if (!id) return;
    // Some converters write -1 (or UINT32_MAX) for "none".
    if (*id < 0 || *id == 0xFFFFFFFFLL) return;
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

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const io::GgufFile& f) {
  const std::string& origin = f.origin();
  const std::string model = f.require_string("tokenizer.ggml.model");
  if (model != "gpt2")
    fail(ErrorCode::ModelFormat, "{}: tokenizer.ggml.model \"{}\" is not supported (gpt2: byte-level BPE)", origin, model);
  const auto* tokens = f.strings("tokenizer.ggml.tokens");
  const auto* merges = f.strings("tokenizer.ggml.merges");
  if (!tokens || !merges) fail(ErrorCode::ModelFormat, "{}: a gpt2 tokenizer needs tokenizer.ggml.tokens and tokenizer.ggml.merges", origin);
  const auto* types = f.numbers("tokenizer.ggml.token_type");
  if (types && types->size() != tokens->size())
    fail(ErrorCode::ModelFormat, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", origin, types->size(), tokens->size());

  json vocab = json::object();
  json added = json::array();
  for (std::size_t id = 0; id < tokens->size(); ++id) {
    const std::string& token = (*tokens)[id];
    if (!vocab.emplace(token, id).second) fail(ErrorCode::ModelFormat, "{}: tokenizer.ggml.tokens[{}] {:?} repeats an earlier token", origin, id, token);
    const int type = types ? static_cast<int>((*types)[id]) : 1;
    if (type == kControl || type == kUserDefined) {
      added.push_back({{"id", id}, {"content", token}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", type == kControl}});
    }
  }
  const std::string pre = f.string("tokenizer.ggml.pre").value_or("default");
  const SpecialTokens specials = gguf_specials(f, tokens->size());
  json tj = {
      {"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", *merges}, {"byte_fallback", false}, {"ignore_merges", false}}},
      {"pre_tokenizer", pre_tokenizer(pre, origin)},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"added_tokens", std::move(added)},
  };
  // BOS/EOS wrapping as llama.cpp's add_special does: only where the file asks for it.
  json single = json::array();
  json table = json::object();
  auto add_special = [&](TokenId id) {
    const std::string& t = (*tokens)[static_cast<std::size_t>(id)];
    single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    table[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
  };
  if (f.boolean("tokenizer.ggml.add_bos_token").value_or(false) && specials.bos >= 0) add_special(specials.bos);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (f.boolean("tokenizer.ggml.add_eos_token").value_or(false) && specials.eos >= 0) add_special(specials.eos);
  tj["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", table}};
  return detail::make_bpe(tj, origin + " (tokenizer.ggml)", &specials);
}

}  // namespace rankemb::text
