// Private pieces of the BPE tokenizers (bpe.cpp, byte_level.cpp, sp_bpe.cpp): the PCRE2 regex
// wrapper, the Hugging Face normalizer / pre-tokenizer / decoder pipelines as plain step lists,
// and the byte <-> unicode table of byte-level BPE. Parsing of tokenizer.json lives next to each.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace rankemb::text::detail {

// A compiled PCRE2 pattern (UTF + UCP, JIT when available). Safe to use from many threads.
class Regex {
 public:
  // Throws Error(ModelFormat) "<where>: ..." when the pattern does not compile. `literal` matches
  // the text verbatim (HF's {"String": ...} patterns).
  Regex(std::string_view pattern, bool literal, std::string_view where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [begin, end) byte offsets (relative to s) of all non-overlapping matches,
  // left to right; empty matches are reported too. `s` must be valid UTF-8.
  void find_all(std::string_view s, std::vector<std::uint32_t>& bounds) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
};

struct Span {
  std::uint32_t begin, end;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
enum class PrependScheme { Always, Never, First };

struct PreTokenizerStep {
  enum class Kind { Split, ByteLevel, Metaspace };
  explicit PreTokenizerStep(Kind k) : kind(k) {}
  Kind kind;
  std::shared_ptr<Regex> regex;  // Split; ByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  std::string replacement;        // Metaspace ("▁")
  PrependScheme prepend = PrependScheme::Always;
  bool split = true;  // Metaspace: split on the replacement, keeping it with the next piece
};

// Pre-tokenizer pipeline: `buf` holds the text, `pieces` its words. Steps may rewrite `buf`.
class PreTokenizer {
 public:
  bool empty() const { return steps_.empty(); }
  bool byte_level() const { return byte_level_; }
  // Parses "pre_tokenizer" (null, ByteLevel, Split, Metaspace, Sequence of them).
  void parse(const nlohmann::json& j, const std::string& file);
  void add_byte_level(bool add_prefix_space, bool use_regex);
  // `at_input_start`: this text begins the encode() input (Metaspace prepend_scheme "first").
  void run(std::string& buf, std::vector<Span>& pieces, bool at_input_start) const;

 private:
  void parse_one(const nlohmann::json& j, const std::string& file, const std::string& field);
  std::vector<PreTokenizerStep> steps_;
  bool byte_level_ = false;
};

struct NormalizerStep {
  enum class Kind { NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace };
  explicit NormalizerStep(Kind k, std::string t = {}) : kind(k), text(std::move(t)) {}
  Kind kind;
  std::string text;  // Prepend: the prefix; Replace: the literal pattern
  std::string content;  // Replace: the replacement
  std::shared_ptr<Regex> regex;  // Replace with a {"Regex": ...} pattern
};

class Normalizer {
 public:
  bool empty() const { return steps_.empty(); }
  void parse(const nlohmann::json& j, const std::string& file);
  std::string run(std::string_view text) const;

 private:
  void parse_one(const nlohmann::json& j, const std::string& file, const std::string& field);
  std::vector<NormalizerStep> steps_;
};

struct DecoderStep {
  enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
  explicit DecoderStep(Kind k, std::string p = {}, std::string c = {}) : kind(k), pattern(std::move(p)), content(std::move(c)) {}
  Kind kind;
  std::string pattern, content;  // Replace (literal pattern); Strip content; Metaspace replacement
  std::size_t start = 0, stop = 0;  // Strip
  bool prepend = true;  // Metaspace: the first token loses its replacement characters
};

class Decoder {
 public:
  bool empty() const { return steps_.empty(); }
  void parse(const nlohmann::json& j, const std::string& file);
  void add_byte_level() { steps_.emplace_back(DecoderStep::Kind::ByteLevel); }
  // Hugging Face's decode_chain over the token strings, then concatenation (space-joined when
  // there is no decoder at all).
  std::string run(std::vector<std::string> tokens) const;

 private:
  void parse_one(const nlohmann::json& j, const std::string& file, const std::string& field);
  std::vector<DecoderStep> steps_;
};

// GPT-2's reversible byte -> printable code point map (bytes that are printable keep their value).
const std::array<char32_t, 256>& byte_to_unicode();
// Inverse of byte_to_unicode(): -1 for code points that are not in the map.
int unicode_to_byte(char32_t cp);

// The GPT-2 pre-tokenizer regex (ByteLevel use_regex).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace rankemb::text::detail
