// BERT WordPiece: BertNormalizer + BertPreTokenizer (wordpiece.h), then greedy longest-match-first
// segmentation of each word with "##" continuation pieces, as Hugging Face `tokenizers` does.
#include "rankemb/text/wordpiece.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/text/detail/loaders.h"
#include "rankemb/util/error.h"

namespace rankemb::text {

using nlohmann::json;

// ---- BertPreprocessor ---------------------------------------------------------------------

BertPreprocessor::BertPreprocessor(const BertNormalizerOptions& options) : options_(options) {
  // Run the generic path once per ASCII byte so the fast path cannot drift from it.
  for (char32_t b = 0; b < 128; ++b) {
    char32_t out[4];
    std::size_t n = 0;
    normalize_codepoint(b, [&](char32_t c) { out[n++] = c; });
    AsciiEntry e{AsciiAction::Drop, 0};
    if (n == 1) {
      char32_t c = out[0];
      if (detail::bert_is_whitespace(c)) e = {AsciiAction::Space, ' '};
      else if (is_bert_punctuation(c)) e = {AsciiAction::Punct, static_cast<char>(c)};
      else e = {AsciiAction::Char, static_cast<char>(c)};
    }
    ascii_[b] = e;
  }
}

bool BertPreprocessor::is_bert_punctuation(char32_t cp) {
  if (cp < 0x80) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  return unicode::is_punctuation(cp);
}

bool BertPreprocessor::is_chinese_char(char32_t cp) {
  // The "CJK Unified Ideographs" blocks and extensions, as BERT defines them (not Hangul/kana).
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

std::string BertPreprocessor::normalize(std::string_view text) const {
  unicode::require_utf8(text, "BertNormalizer input");
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    normalize_codepoint(unicode::next_codepoint(text, i), [&](char32_t c) { unicode::append_utf8(out, c); });
  }
  return out;
}

std::vector<std::string> BertPreprocessor::words(std::string_view text) const {
  unicode::require_utf8(text, "BertPreTokenizer input");
  std::vector<std::string> out;
  std::string buffer;
  for_each_word(text, buffer, [&](std::string_view w, std::size_t) { out.emplace_back(w); });
  return out;
}

namespace {

// ---- the tokenizer ------------------------------------------------------------------------

struct WordPieceConfig {
  BertNormalizerOptions normalizer;
  std::string unk_token = "[UNK]";
  std::string prefix = "##";         // continuing_subword_prefix
  std::size_t max_input_chars = 100;  // longer words become a single unk
  bool decoder_cleanup = true;        // WordPiece decoder's cleanup of " ." " ," " n't" ...
  bool decoder_wordpiece = true;      // false: no decoder, tokens joined with spaces
};

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

class WordPieceTokenizer final : public Tokenizer {
 public:
  // `vocab[id]` is the token with that id; `present[id]` is false for ids no token uses.
  WordPieceTokenizer(std::vector<std::string> vocab, std::vector<bool> present, WordPieceConfig config,
                     const std::string& file)
      : config_(std::move(config)), pre_(config_.normalizer), vocab_(std::move(vocab)), present_(std::move(present)) {
    // The maps hold views into vocab_, which never changes after this point.
    pieces_.reserve(vocab_.size() * 2);
    continuations_.reserve(vocab_.size());
    const std::string_view prefix = config_.prefix;
    for (std::size_t id = 0; id < vocab_.size(); ++id) {
      if (!present_[id]) continue;
      std::string_view tok = vocab_[id];
      // Duplicate tokens (vocab.txt) keep the last id, like tokenizers' HashMap insert.
      pieces_.insert_or_assign(tok, static_cast<TokenId>(id));
      max_piece_bytes_ = std::max(max_piece_bytes_, tok.size());
      if (!prefix.empty() && tok.size() > prefix.size() && tok.substr(0, prefix.size()) == prefix) {
        std::string_view rest = tok.substr(prefix.size());
        continuations_.insert_or_assign(rest, static_cast<TokenId>(id));
        max_continuation_bytes_ = std::max(max_continuation_bytes_, rest.size());
      }
    }
    auto unk = pieces_.find(config_.unk_token);
    if (unk == pieces_.end()) {
      fail(ErrorCode::ModelFormat, "{}: unk_token {:?} is not in the vocabulary", file, config_.unk_token);
    }
    unk_ = unk->second;
    specials_.unk = unk_;
  }

  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const override;
  std::size_t vocab_size() const override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;
  std::string_view kind() const override { return "wordpiece"; }

  // Fills specials_ from the usual BERT names and the post-processing template.
  void set_specials(const std::string& pad_token) {
    auto find = [&](std::string_view t) -> TokenId {
      auto id = token_to_id(t);
      return id ? *id : -1;
    };
    specials_.pad = find(pad_token);
    specials_.cls = template_.prefix.size() == 1 ? template_.prefix.front() : find("[CLS]");
    specials_.sep = !template_.suffix.empty() ? template_.suffix.back() : find("[SEP]");
    specials_.mask = find("[MASK]");
  }

  using Tokenizer::added_;
  using Tokenizer::load_hf_common;
  using Tokenizer::template_;

 protected:
  void encode_tokens(std::string_view text, std::vector<TokenId>& out) const override {
    std::string buffer;
    buffer.reserve(64);
    pre_.for_each_word(text, buffer, [&](std::string_view word, std::size_t n_chars) { encode_word(word, n_chars, out); });
  }

 private:
  void encode_word(std::string_view word, std::size_t n_chars, std::vector<TokenId>& out) const;
  const std::string* token_string(TokenId id) const;

  WordPieceConfig config_;
  BertPreprocessor pre_;
  std::vector<std::string> vocab_;
  std::vector<bool> present_;
  std::unordered_map<std::string_view, TokenId> pieces_;         // every token, as written
  std::unordered_map<std::string_view, TokenId> continuations_;  // "##x" tokens, keyed by "x"
  std::size_t max_piece_bytes_ = 0;
  std::size_t max_continuation_bytes_ = 0;
  TokenId unk_ = -1;
};

void WordPieceTokenizer::encode_word(std::string_view word, std::size_t n_chars, std::vector<TokenId>& out) const {
  if (n_chars > config_.max_input_chars) {
    out.push_back(unk_);
    return;
  }
  const std::size_t mark = out.size();
  const std::size_t n = word.size();
  std::size_t start = 0;
  while (start < n) {
    const auto& map = start == 0 ? pieces_ : continuations_;
    const std::size_t limit = start == 0 ? max_piece_bytes_ : max_continuation_bytes_;
    // No token is longer than `limit` bytes, so start the longest-match search there.
    std::size_t end = n - start > limit ? start + limit : n;
    while (end > start && end < n && is_continuation_byte(word[end])) --end;
    TokenId found = -1;
    while (end > start) {
      auto it = map.find(word.substr(start, end - start));
      if (it != map.end()) {
        found = it->second;
        break;
      }
      do --end; while (end > start && is_continuation_byte(word[end]));
    }
    if (found < 0) {  // one piece has no match: the whole word is unknown
      out.resize(mark);
      out.push_back(unk_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

const std::string* WordPieceTokenizer::token_string(TokenId id) const {
  if (id >= 0 && static_cast<std::size_t>(id) < vocab_.size() && present_[static_cast<std::size_t>(id)]) {
    return &vocab_[static_cast<std::size_t>(id)];
  }
  for (const auto& a : added_) {
    if (a.id == id) return &a.content;
  }
  return nullptr;
}

std::string WordPieceTokenizer::id_to_token(TokenId id) const {
  const std::string* s = token_string(id);
  if (!s) fail(ErrorCode::Input, "token id {} is not in the vocabulary (size {})", id, vocab_size());
  return *s;
}

std::optional<TokenId> WordPieceTokenizer::token_to_id(std::string_view token) const {
  for (const auto& a : added_) {
    if (a.content == token) return a.id;
  }
  auto it = pieces_.find(token);
  if (it == pieces_.end()) return std::nullopt;
  return it->second;
}

std::size_t WordPieceTokenizer::vocab_size() const {
  std::size_t n = vocab_.size();
  for (const auto& a : added_) n = std::max(n, static_cast<std::size_t>(a.id) + 1);
  return n;
}

// The WordPiece decoder's cleanup, applied to each (already space-prefixed) token in this order.
void cleanup_piece(std::string& s) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},   {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},           {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"},       {" 's", "'s"},   {" 've", "'ve"},        {" 're", "'re"}};
  if (s.find(' ') == std::string::npos) return;
  for (const auto& [from, to] : kRules) {
    std::size_t pos = s.find(from);
    if (pos == std::string::npos) continue;
    std::string r;
    std::size_t last = 0;
    for (; pos != std::string::npos; pos = s.find(from, last)) {
      r.append(s, last, pos - last);
      r += to;
      last = pos + from.size();
    }
    r.append(s, last, std::string::npos);
    s = std::move(r);
  }
}

std::string WordPieceTokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  std::string out;
  std::string piece;
  bool first = true;
  const std::string_view prefix = config_.prefix;
  for (TokenId id : ids) {
    const std::string* tok = token_string(id);
    if (!tok) fail(ErrorCode::Input, "decode: token id {} is not in the vocabulary (size {})", id, vocab_size());
    if (skip_special_tokens && is_special(id)) continue;
    if (!config_.decoder_wordpiece) {
      if (!first) out += ' ';
      out += *tok;
      first = false;
      continue;
    }
    std::string_view t = *tok;
    piece.clear();
    if (!first) {
      if (!prefix.empty() && t.substr(0, prefix.size()) == prefix) {
        piece.append(t.substr(prefix.size()));
      } else {
        piece += ' ';
        piece.append(t);
      }
    } else {
      piece.append(t);
    }
    if (config_.decoder_cleanup) cleanup_piece(piece);
    out += piece;
    first = false;
  }
  return out;
}

// ---- loading ------------------------------------------------------------------------------

// Ids must be dense enough to index a vector; a stray huge id would otherwise allocate gigabytes.
void check_id(long long id, std::size_t n_tokens, const std::string& file, std::string_view token) {
  if (id < 0 || static_cast<unsigned long long>(id) >= 4 * n_tokens + 1024 ||
      id > std::numeric_limits<TokenId>::max()) {
    fail(ErrorCode::ModelFormat, "{}: model.vocab: token {:?} has id {}, expected 0..{}", file, token, id, n_tokens - 1);
  }
}

BertNormalizerOptions parse_normalizer(const json& n, const std::string& file) {
  BertNormalizerOptions o;
  if (n.is_null()) return {false, false, false, false};
  auto flag = [&](const char* key, bool dflt) {
    auto it = n.find(key);
    if (it == n.end() || it->is_null()) return dflt;
    if (!it->is_boolean()) fail(ErrorCode::ModelFormat, "{}: normalizer.{} must be a boolean", file, key);
    return it->get<bool>();
  };
  std::string type = n.value("type", "");
  if (type != "BertNormalizer") {
    fail(ErrorCode::ModelFormat, "{}: normalizer type {:?} is not supported for WordPiece (BertNormalizer or null)", file, type);
  }
  o.clean_text = flag("clean_text", true);
  o.handle_chinese_chars = flag("handle_chinese_chars", true);
  o.lowercase = flag("lowercase", true);
  o.strip_accents = flag("strip_accents", o.lowercase);  // null follows lowercase
  return o;
}

}  // namespace

namespace detail {

std::unique_ptr<Tokenizer> make_wordpiece(const json& tj, const std::filesystem::path& path) {
  const std::string file = path.string();
  const json& model = tj.at("model");
  auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object()) {
    fail(ErrorCode::ModelFormat, "{}: model.vocab must be an object of token -> id", file);
  }
  WordPieceConfig config;
  try {
    if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) config.unk_token = it->get<std::string>();
    if (auto it = model.find("continuing_subword_prefix"); it != model.end() && !it->is_null()) {
      config.prefix = it->get<std::string>();
    }
    if (auto it = model.find("max_input_chars_per_word"); it != model.end() && !it->is_null()) {
      config.max_input_chars = it->get<std::size_t>();
    }
  } catch (const json::exception& e) {
    fail(ErrorCode::ModelFormat, "{}: model: {}", file, e.what());
  }
  config.normalizer = parse_normalizer(tj.contains("normalizer") ? tj["normalizer"] : json(), file);
  if (auto it = tj.find("pre_tokenizer"); it == tj.end() || it->is_null() || it->value("type", "") != "BertPreTokenizer") {
    fail(ErrorCode::ModelFormat, "{}: pre_tokenizer must be BertPreTokenizer for WordPiece", file);
  }
  if (auto it = tj.find("decoder"); it != tj.end() && !it->is_null()) {
    std::string type = it->value("type", "");
    if (type != "WordPiece") fail(ErrorCode::ModelFormat, "{}: decoder type {:?} is not supported (WordPiece)", file, type);
    const json& d = *it;
    if (d.contains("cleanup") && d["cleanup"].is_boolean()) config.decoder_cleanup = d["cleanup"].get<bool>();
    if (d.contains("prefix") && d["prefix"].is_string() && d["prefix"].get<std::string>() != config.prefix) {
      fail(ErrorCode::ModelFormat, "{}: decoder.prefix differs from model.continuing_subword_prefix", file);
    }
  } else {
    config.decoder_wordpiece = false;
  }

  const std::size_t n_tokens = vit->size();
  std::vector<std::string> vocab;
  std::vector<bool> present;
  for (const auto& [token, id_json] : vit->items()) {
    if (!id_json.is_number_integer()) {
      fail(ErrorCode::ModelFormat, "{}: model.vocab: id of {:?} must be an integer", file, token);
    }
    auto id = id_json.get<long long>();
    check_id(id, n_tokens, file, token);
    auto idx = static_cast<std::size_t>(id);
    if (idx >= vocab.size()) {
      vocab.resize(idx + 1);
      present.resize(idx + 1, false);
    }
    if (present[idx]) fail(ErrorCode::ModelFormat, "{}: model.vocab: id {} is used twice", file, id);
    vocab[idx] = token;
    present[idx] = true;
  }
  auto tok = std::make_unique<WordPieceTokenizer>(std::move(vocab), std::move(present), std::move(config), file);
  tok->load_hf_common(tj, file);
  std::string pad_token = "[PAD]";
  if (auto it = tj.find("padding"); it != tj.end() && it->is_object() && (*it)["pad_token"].is_string()) {
    pad_token = (*it)["pad_token"].get<std::string>();
  }
  tok->set_specials(pad_token);
  return tok;
}

std::unique_ptr<Tokenizer> make_wordpiece_vocab_txt(const std::filesystem::path& path, bool lowercase) {
  const std::string file = path.string();
  std::string data;
  try {
    data = io::read_file(path);
  } catch (Error& e) {
    throw Error(ErrorCode::ModelFormat, e.message());
  }
  unicode::require_utf8(data, file);
  std::vector<std::string> vocab;
  // One token per line; like tokenizers' WordPiece::read_file, trailing white space is trimmed.
  for (std::size_t pos = 0; pos < data.size();) {
    std::size_t nl = data.find('\n', pos);
    std::size_t end = nl == std::string::npos ? data.size() : nl;
    std::string_view line(data.data() + pos, end - pos);
    while (!line.empty()) {
      std::size_t last = line.size() - 1;
      while (last > 0 && is_continuation_byte(line[last])) --last;
      std::size_t p = last;
      if (!unicode::is_white_space(unicode::next_codepoint(line, p))) break;
      line = line.substr(0, last);
    }
    vocab.emplace_back(line);
    pos = end + 1;
  }
  if (vocab.empty()) fail(ErrorCode::ModelFormat, "{}: the vocabulary is empty", file);
  std::vector<bool> present(vocab.size(), true);
  WordPieceConfig config;
  config.normalizer = {true, true, lowercase, lowercase};
  auto tok = std::make_unique<WordPieceTokenizer>(std::move(vocab), std::move(present), std::move(config), file);
  // BertWordPieceTokenizer registers the BERT specials it finds in the vocabulary as special
  // added tokens, so "[CLS]" typed in the text maps to its id.
  for (const char* name : {"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"}) {
    if (auto id = tok->token_to_id(name)) {
      AddedToken a;
      a.content = name;
      a.id = *id;
      a.special = true;
      tok->added_.push_back(std::move(a));
    }
  }
  auto cls = tok->token_to_id("[CLS]");
  auto sep = tok->token_to_id("[SEP]");
  if (!cls || !sep) fail(ErrorCode::ModelFormat, "{}: [CLS] and [SEP] must be in the vocabulary", file);
  tok->template_.prefix = {*cls};
  tok->template_.suffix = {*sep};
  tok->set_specials("[PAD]");
  return tok;
}

}  // namespace detail
}  // namespace rankemb::text
