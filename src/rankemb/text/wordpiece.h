// BERT text preprocessing shared by the WordPiece tokenizer: the Hugging Face BertNormalizer
// (clean_text, CJK padding, accent stripping, lowercasing) fused with BertPreTokenizer (split on
// white space, isolate punctuation) into one pass that hands out words without allocating per
// character. The WordPiece model itself lives in wordpiece.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rankemb/util/unicode.h"

namespace rankemb::text {

struct BertNormalizerOptions {
  bool clean_text = true;            // drop NUL, U+FFFD and control chars; white space -> ' '
  bool handle_chinese_chars = true;  // put spaces around CJK ideographs so each is a word
  bool strip_accents = true;         // NFD, then drop nonspacing marks (Mn)
  bool lowercase = true;             // full lowercase mapping per code point
};

class BertPreprocessor {
 public:
  explicit BertPreprocessor(const BertNormalizerOptions& options);

  const BertNormalizerOptions& options() const { return options_; }

  // Calls on_word(std::string_view word, std::size_t n_chars) for every pre-token of the
  // normalized `text` (valid UTF-8), in order. `word` is only valid during the call.
  template <typename OnWord>
  void for_each_word(std::string_view text, std::string& buffer, OnWord&& on_word) const;

  // The normalized text, as BertNormalizer.normalize_str would return it (tests, debugging).
  std::string normalize(std::string_view text) const;
  // The pre-tokens of the normalized text (tests, debugging).
  std::vector<std::string> words(std::string_view text) const;

  // BertPreTokenizer's punctuation: ASCII punctuation (which includes symbols like $ + < = > ^ `
  // | ~) or any Unicode P* code point.
  static bool is_bert_punctuation(char32_t cp);
  static bool is_chinese_char(char32_t cp);

  // Normalizes one input code point; calls emit(char32_t) zero or more times.
  template <typename Emit>
  void normalize_codepoint(char32_t cp, Emit&& emit) const;

 private:
  enum class AsciiAction : std::uint8_t { Drop, Space, Punct, Char };
  struct AsciiEntry {
    AsciiAction action;
    char byte;  // the normalized byte for Char and Punct
  };

  BertNormalizerOptions options_;
  std::array<AsciiEntry, 128> ascii_{};  // precomputed normalize + classify for ASCII input
};

// ---- implementation of the templates ------------------------------------------------------

namespace detail {

// Rust's char::is_whitespace plus the explicit \t \n \r of the BERT helpers (already included).
inline bool bert_is_whitespace(char32_t cp) { return unicode::is_white_space(cp); }

// tokenizers' is_control: \t \n \r are not control; otherwise Cc, Cf, Co (and Cs). Unassigned
// code points (Cn) are kept: the Hugging Face tables do not count them as "other".
inline bool bert_is_control(char32_t cp) {
  if (cp == U'\t' || cp == U'\n' || cp == U'\r') return false;
  return unicode::category(cp) == unicode::Category::Other && unicode::category_code(cp) != "Cn";
}

}  // namespace detail

template <typename Emit>
void BertPreprocessor::normalize_codepoint(char32_t cp, Emit&& emit) const {
  if (options_.clean_text) {
    if (cp == 0 || cp == 0xFFFD || detail::bert_is_control(cp)) return;
    if (detail::bert_is_whitespace(cp)) cp = U' ';
  }
  const bool pad = options_.handle_chinese_chars && is_chinese_char(cp);
  if (pad) emit(U' ');
  auto finish = [&](char32_t c) {
    if (!options_.lowercase) {
      emit(c);
    } else if (c == 0x130) {  // the one unconditional multi-code-point lowercase mapping
      emit(U'i');
      emit(char32_t{0x307});
    } else {
      emit(c < 0x80 ? (c >= U'A' && c <= U'Z' ? c + 32 : c) : unicode::simple_lower(c));
    }
  };
  if (options_.strip_accents && cp >= 0x80) {
    char32_t parts[unicode::kMaxCanonicalDecomposition];
    std::size_t n = unicode::decompose_canonical(cp, parts, unicode::kMaxCanonicalDecomposition);
    for (std::size_t i = 0; i < n; ++i) {
      if (!unicode::is_nonspacing_mark(parts[i])) finish(parts[i]);
    }
  } else {
    finish(cp);
  }
  if (pad) emit(U' ');
}

template <typename OnWord>
void BertPreprocessor::for_each_word(std::string_view text, std::string& buffer, OnWord&& on_word) const {
  std::string& word = buffer;
  word.clear();
  std::size_t n_chars = 0;
  auto flush = [&] {
    if (!word.empty()) {
      on_word(std::string_view(word), n_chars);
      word.clear();
      n_chars = 0;
    }
  };
  auto single = [&](char32_t cp) {
    flush();
    unicode::append_utf8(word, cp);
    n_chars = 1;
    flush();
  };
  auto consume = [&](char32_t cp) {
    if (detail::bert_is_whitespace(cp)) {
      flush();
    } else if (is_bert_punctuation(cp)) {
      single(cp);
    } else {
      unicode::append_utf8(word, cp);
      ++n_chars;
    }
  };
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      const AsciiEntry& e = ascii_[byte];
      ++i;
      switch (e.action) {
        case AsciiAction::Drop: break;
        case AsciiAction::Space: flush(); break;
        case AsciiAction::Punct:
          flush();
          word.push_back(e.byte);
          n_chars = 1;
          flush();
          break;
        case AsciiAction::Char:
          word.push_back(e.byte);
          ++n_chars;
          break;
      }
      continue;
    }
    char32_t cp = unicode::next_codepoint(text, i);
    normalize_codepoint(cp, consume);
  }
  flush();
}

}  // namespace rankemb::text
