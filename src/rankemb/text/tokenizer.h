// rankemb::text owns turning text into token ids and back: the Tokenizer interface, its
// implementations (WordPiece, byte-level BPE, SentencePiece-style BPE, USE-Lite unigram), the
// post-processing template that adds special tokens, and chat templates. No libtorch here.
//
// Data flow: encode(text) = validate UTF-8 -> split out added/special tokens -> model-specific
// encode_tokens() on the remaining spans -> truncate -> wrap with the template's specials.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace rankemb::io {
class GgufFile;
}

namespace rankemb::text {

using TokenId = std::int32_t;

struct EncodeOptions {
  bool add_special_tokens = true;  // wrap with the template's prefix/suffix ([CLS] .. [SEP], BOS)
  std::size_t max_length = 0;      // 0 = no limit; otherwise total length including specials
};

// The special tokens a model defines; -1 where it has none.
struct SpecialTokens {
  TokenId pad = -1, unk = -1, bos = -1, eos = -1, cls = -1, sep = -1, mask = -1;
};

// Tokens added around a single sequence by the post-processor (HF TemplateProcessing for one
// sequence, BertProcessing, RobertaProcessing), e.g. prefix = {[CLS]}, suffix = {[SEP]}.
struct PostTemplate {
  std::vector<TokenId> prefix, suffix;
};

// A token that is matched verbatim in the input before the model runs (HF "added_tokens").
struct AddedToken {
  std::string content;
  TokenId id = -1;
  bool special = false;      // skipped by decode(skip_special_tokens = true)
  bool single_word = false;  // only matches when not inside a word
  bool lstrip = false;       // swallows white space on its left
  bool rstrip = false;       // swallows white space on its right
  bool normalized = false;   // matched against normalized text (we match raw text when false)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Ids for one text. Throws Error(Input) on invalid UTF-8.
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Text for ids; unknown ids throw Error(Input).
  virtual std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = true) const = 0;

  virtual std::size_t vocab_size() const = 0;
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(TokenId id) const = 0;

  const SpecialTokens& special_tokens() const { return specials_; }
  const PostTemplate& post_template() const { return template_; }
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  bool is_special(TokenId id) const;
  // A short name of the algorithm ("wordpiece", "byte-bpe", "sp-bpe", "use-unigram").
  virtual std::string_view kind() const = 0;

 protected:
  // Ids for a span of text that contains no added token; no specials, no truncation.
  virtual void encode_tokens(std::string_view text, std::vector<TokenId>& out) const = 0;

  // Reads what every Hugging Face tokenizer.json shares: "added_tokens" (into added_) and
  // "post_processor" (into template_; TemplateProcessing single, BertProcessing,
  // RobertaProcessing, ByteLevel, Sequence). `file` names the file in error messages.
  void load_hf_common(const nlohmann::json& tokenizer_json, const std::string& file);
  // Splits `text` around added tokens (longest match first, honouring lstrip/rstrip/single_word)
  // and calls encode_tokens() on the pieces between them.
  void encode_with_added(std::string_view text, std::vector<TokenId>& out) const;

  // One string to split out of the text and the added token it stands for. Its text differs from
  // token->content for normalized tokens, which Hugging Face matches in their normalized form.
  struct AddedPattern {
    std::string_view text;
    const AddedToken* token = nullptr;
  };
  // The patterns one split looks for, with the bytes that can start one (to skip the rest fast).
  struct AddedMatcher {
    std::vector<AddedPattern> patterns;
    std::array<bool, 256> first_byte{};
    void add(std::string_view text, const AddedToken* token);  // `text` must outlive the matcher
  };
  // The splitter behind encode_with_added(): leftmost-longest matches of the patterns in `text`
  // (a match failing its single_word test is skipped), matched ids appended to `out`, the text
  // between matches passed to `on_text` (never empty).
  static void split_added(std::string_view text, const AddedMatcher& matcher,
                          const std::function<void(std::string_view)>& on_text, std::vector<TokenId>& out);
  // Whether `span` (a piece handed to encode_tokens()) starts the text given to encode(); for
  // pre-tokenizers that treat the start of the input specially (Metaspace prepend_scheme "first").
  static bool starts_input(std::string_view span);

  // When false, encode_with_added() leaves tokens with normalized = true in the text: the model
  // normalizes first and splits them out of the normalized text itself, as Hugging Face does.
  bool raw_match_normalized_added_ = true;

  SpecialTokens specials_;
  PostTemplate template_;
  std::vector<AddedToken> added_;  // split out of the input before encode_tokens()

 private:
  // What encode_with_added() matches, built from added_ on first use (added_ is final by then).
  mutable std::once_flag raw_matcher_once_;
  mutable AddedMatcher raw_matcher_;
};

// Loads a tokenizer from a model directory or a file. A directory is searched for tokenizer.json
// (WordPiece, BPE or Unigram by its "model.type"), then vocab.txt (BERT WordPiece, with
// do_lower_case from tokenizer_config.json), then vocab.json + merges.txt (GPT-2 byte-level
// BPE; also under the OpenAI names encoder.json + vocab.bpe). Throws Error(ModelFormat) naming
// the file and field for anything malformed.
// A GGUF file (by its magic) is read with load_gguf_tokenizer().
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);
// The tokenizer a GGUF model carries in its tokenizer.ggml.* metadata (byte-level BPE "gpt2";
// the pre-tokenizer llama.cpp picks for tokenizer.ggml.pre; control and user-defined tokens as
// added tokens, control ones special). Throws Error(ModelFormat) naming the file and key.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const io::GgufFile& file);

}  // namespace rankemb::text
