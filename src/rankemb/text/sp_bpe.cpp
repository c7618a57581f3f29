// The text-rewriting halves of the BPE tokenizers: Hugging Face normalizers (NFC/NFKC/...,
// Lowercase, Prepend, Replace: the SentencePiece-style "▁" handling) and decoders (ByteLevel,
// Replace, ByteFallback, Fuse, Strip, Metaspace), with the semantics of the `tokenizers` library.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "rankemb/text/detail/bpe_impl.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::text::detail {

using nlohmann::json;

namespace {

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty() || s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos);
  s.swap(out);
}

// The single-character "content" of Strip and "replacement" of Metaspace.
char32_t one_char(const std::string& s, const std::string& where) {
  if (s.empty() || unicode::utf8_length(static_cast<unsigned char>(s[0])) != s.size()) {
    fail(ErrorCode::ModelFormat, "{}: must be a single character, got {:?}", where, s);
  }
  std::size_t pos = 0;
  return unicode::next_codepoint(s, pos);
}

PrependScheme parse_prepend(const json& j, const std::string& where) {
  std::string scheme = j.value("prepend_scheme", std::string());
  if (scheme.empty()) return j.value("add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
  if (scheme == "always") return PrependScheme::Always;
  if (scheme == "never") return PrependScheme::Never;
  if (scheme == "first") return PrependScheme::First;
  fail(ErrorCode::ModelFormat, "{}.prepend_scheme: unknown value {:?}", where, scheme);
}

}  // namespace

void Normalizer::parse(const json& j, const std::string& file) {
  if (j.is_null()) return;
  parse_one(j, file, "normalizer");
}

void Normalizer::parse_one(const json& j, const std::string& file, const std::string& field) {
  const std::string where = file + ": " + field;
  if (!j.is_object()) fail(ErrorCode::ModelFormat, "{}: must be an object", where);
  const std::string type = j.value("type", "");
  using K = NormalizerStep::Kind;
  if (type == "Sequence") {
    const auto& list = j.at("normalizers");
    for (std::size_t k = 0; k < list.size(); ++k) parse_one(list[k], file, field + ".normalizers[" + std::to_string(k) + "]");
  } else if (type == "NFC") {
    steps_.emplace_back(K::NFC);
  } else if (type == "NFD") {
    steps_.emplace_back(K::NFD);
  } else if (type == "NFKC") {
    steps_.emplace_back(K::NFKC);
  } else if (type == "NFKD") {
    steps_.emplace_back(K::NFKD);
  } else if (type == "Lowercase") {
    steps_.emplace_back(K::Lowercase);
  } else if (type == "Prepend") {
    steps_.emplace_back(K::Prepend, j.at("prepend").get<std::string>());
  } else if (type == "Replace") {
    NormalizerStep step(K::Replace);
    const json& pat = j.at("pattern");
    step.content = j.at("content").get<std::string>();
    if (pat.contains("String")) step.text = pat["String"].get<std::string>();
    else if (pat.contains("Regex")) step.regex = std::make_shared<Regex>(pat["Regex"].get<std::string>(), false, where + ".pattern");
    else fail(ErrorCode::ModelFormat, "{}.pattern: expected {{\"Regex\": ...}} or {{\"String\": ...}}", where);
    steps_.push_back(std::move(step));
  } else {
    fail(ErrorCode::ModelFormat, "{}: normalizer type {:?} is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Sequence)",
         where, type);
  }
}

std::string Normalizer::run(std::string_view text) const {
  std::string s(text);
  for (const auto& step : steps_) {
    using K = NormalizerStep::Kind;
    switch (step.kind) {
      case K::NFC:
      case K::NFD:
      case K::NFKC:
      case K::NFKD:
        if (!is_ascii(s)) {
          auto form = step.kind == K::NFC    ? unicode::NormalForm::NFC
                      : step.kind == K::NFD  ? unicode::NormalForm::NFD
                      : step.kind == K::NFKC ? unicode::NormalForm::NFKC
                                             : unicode::NormalForm::NFKD;
          s = unicode::normalize(s, form);
        }
        break;
      case K::Lowercase: {
        std::string out;
        out.reserve(s.size());
        for (std::size_t pos = 0; pos < s.size();) unicode::append_utf8(out, unicode::simple_lower(unicode::next_codepoint(s, pos)));
        s.swap(out);
        break;
      }
      case K::Prepend:
        if (!s.empty()) s.insert(0, step.text);
        break;
      case K::Replace:
        if (!step.regex) {
          replace_all(s, step.text, step.content);
        } else {
          std::vector<std::uint32_t> bounds;
          step.regex->find_all(s, bounds);
          if (bounds.empty()) break;
          std::string out;
          std::size_t prev = 0;
          for (std::size_t k = 0; k < bounds.size(); k += 2) {
            out.append(s, prev, bounds[k] - prev);
            out += step.content;
            prev = bounds[k + 1];
          }
          out.append(s, prev);
          s.swap(out);
        }
        break;
    }
  }
  return s;
}

void Decoder::parse(const json& j, const std::string& file) {
  if (j.is_null()) return;
  parse_one(j, file, "decoder");
}

void Decoder::parse_one(const json& j, const std::string& file, const std::string& field) {
  const std::string where = file + ": " + field;
  if (!j.is_object()) fail(ErrorCode::ModelFormat, "{}: must be an object", where);
  const std::string type = j.value("type", "");
  using K = DecoderStep::Kind;
  if (type == "Sequence") {
    const auto& list = j.at("decoders");
    for (std::size_t k = 0; k < list.size(); ++k) parse_one(list[k], file, field + ".decoders[" + std::to_string(k) + "]");
  } else if (type == "ByteLevel") {
    steps_.emplace_back(K::ByteLevel);
  } else if (type == "ByteFallback") {
    steps_.emplace_back(K::ByteFallback);
  } else if (type == "Fuse") {
    steps_.emplace_back(K::Fuse);
  } else if (type == "Replace") {
    const json& pat = j.at("pattern");
    if (!pat.contains("String")) fail(ErrorCode::ModelFormat, "{}.pattern: only {{\"String\": ...}} patterns are supported", where);
    steps_.emplace_back(K::Replace, pat["String"].get<std::string>(), j.at("content").get<std::string>());
  } else if (type == "Strip") {
    DecoderStep step(K::Strip);
    step.content = j.at("content").get<std::string>();
    one_char(step.content, where + ".content");
    step.start = j.value("start", std::size_t{0});
    step.stop = j.value("stop", std::size_t{0});
    steps_.push_back(std::move(step));
  } else if (type == "Metaspace") {
    DecoderStep step(K::Metaspace);
    step.content = j.value("replacement", std::string("\xE2\x96\x81"));
    one_char(step.content, where + ".replacement");
    step.prepend = parse_prepend(j, where) != PrependScheme::Never;
    steps_.push_back(std::move(step));
  } else {
    fail(ErrorCode::ModelFormat, "{}: decoder type {:?} is not supported (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)",
         where, type);
  }
}

namespace {

// "<0xNN>" -> NN, as HF's ByteFallback decoder reads it.
int byte_token_value(std::string_view t) {
  if (t.size() != 6 || !t.starts_with("<0x") || t.back() != '>') return -1;
  int v = 0;
  for (char c : t.substr(3, 2)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

void flush_bytes(std::string& bytes, std::vector<std::string>& out) {
  if (bytes.empty()) return;
  if (!unicode::find_invalid_utf8(bytes)) {
    out.push_back(bytes);
  } else {
    for (std::size_t k = 0; k < bytes.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
  }
  bytes.clear();
}

// ByteLevel: map each token's characters back to the bytes GPT-2 encoded them as, and decode the
// whole sequence at once (a character may span tokens).
void decode_byte_level(std::vector<std::string>& tokens) {
  std::string bytes;
  for (const auto& t : tokens) {
    std::size_t mark = bytes.size();
    bool all_mapped = true;
    for (std::size_t pos = 0; pos < t.size();) {
      int b = unicode_to_byte(unicode::next_codepoint(t, pos));
      if (b < 0) {
        all_mapped = false;
        break;
      }
      bytes += static_cast<char>(b);
    }
    // A token with a character outside the byte map (an added token) passes through as is.
    if (!all_mapped) {
      bytes.resize(mark);
      bytes += t;
    }
  }
  tokens.assign(1, unicode::utf8_lossy(bytes));
}

// ByteFallback: runs of "<0xNN>" tokens become the text they spell, or one U+FFFD per byte when
// the run is not valid UTF-8 (flush_bytes).
void decode_byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  out.reserve(tokens.size());
  std::string bytes;
  for (auto& t : tokens) {
    int b = byte_token_value(t);
    if (b >= 0) {
      bytes += static_cast<char>(b);
      continue;
    }
    flush_bytes(bytes, out);
    out.push_back(std::move(t));
  }
  flush_bytes(bytes, out);
  tokens.swap(out);
}

void decode_fuse(std::vector<std::string>& tokens) {
  std::string all;
  for (const auto& t : tokens) all += t;
  tokens.assign(1, std::move(all));
}

// Strip: up to `start` leading and `stop` trailing copies of the content character, per token.
void decode_strip(std::vector<std::string>& tokens, const DecoderStep& step) {
  for (auto& t : tokens) {
    std::u32string cps = unicode::to_u32(t);
    std::size_t pos = 0;
    char32_t c = unicode::next_codepoint(step.content, pos);
    std::size_t start_cut = 0, stop_cut = 0;
    while (start_cut < step.start && start_cut < cps.size() && cps[start_cut] == c) ++start_cut;
    while (stop_cut < step.stop && stop_cut < cps.size() && cps[cps.size() - 1 - stop_cut] == c) ++stop_cut;
    // HF takes (byte length - cuts) characters, so the stop cut only bites on ASCII tokens.
    std::size_t take_bytes = t.size() >= start_cut + stop_cut ? t.size() - start_cut - stop_cut : 0;
    std::size_t take = std::min(cps.size() - start_cut, take_bytes);
    t = unicode::to_utf8(std::u32string_view(cps).substr(start_cut, take));
  }
}

// Metaspace: the replacement character reads as a space, except on the first token when the
// encoder prepended it there.
void decode_metaspace(std::vector<std::string>& tokens, const DecoderStep& step) {
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    bool drop = k == 0 && step.prepend;
    replace_all(tokens[k], step.content, drop ? "" : " ");
  }
}

// Replace: a literal pattern, in each token separately.
void decode_replace(std::vector<std::string>& tokens, const DecoderStep& step) {
  for (auto& t : tokens) replace_all(t, step.pattern, step.content);
}

void apply_decoder_step(const DecoderStep& step, std::vector<std::string>& tokens) {
  using K = DecoderStep::Kind;
  switch (step.kind) {
    case K::ByteLevel: decode_byte_level(tokens); break;
    case K::Replace: decode_replace(tokens, step); break;
    case K::ByteFallback: decode_byte_fallback(tokens); break;
    case K::Fuse: decode_fuse(tokens); break;
    case K::Strip: decode_strip(tokens, step); break;
    case K::Metaspace: decode_metaspace(tokens, step); break;
  }
}

std::string join_tokens(const std::vector<std::string>& tokens, std::string_view separator) {
  std::string out;
  for (std::size_t k = 0; k < tokens.size(); ++k) {
    if (k) out += separator;
    out += tokens[k];
  }
  return out;
}

}  // namespace

std::string Decoder::run(std::vector<std::string> tokens) const {
  if (steps_.empty()) return join_tokens(tokens, " ");
  for (const auto& step : steps_) apply_decoder_step(step, tokens);
  return join_tokens(tokens, "");
}

}  // namespace rankemb::text::detail
