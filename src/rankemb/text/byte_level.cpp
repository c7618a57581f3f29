// The pre-tokenizer half of the BPE tokenizers: PCRE2-backed regex splitting (HF "Split" and the
// GPT-2 pattern of "ByteLevel"), Metaspace, and GPT-2's byte <-> unicode table.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "rankemb/text/detail/bpe_impl.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::text::detail {

using nlohmann::json;

namespace {

// Hugging Face runs these patterns with Oniguruma, whose Unicode \s is the White_Space property;
// PCRE2's UCP \s lacks U+0085 (NEL), so add it wherever \s or \S appears.
std::string translate_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      if (n == 's') out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      else if (n == 'S' && !in_class) out += "[^\\s\\x{85}]";
      else out.append(p.substr(i, 2));
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      auto end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

// Per-thread PCRE2 match state: one ovector pair is all find_all() reads, and a JIT stack large
// enough for \s+(?!\S) over long white-space runs.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  MatchState() {
    if (jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

Regex::Regex(std::string_view pattern, bool literal, std::string_view where) {
  std::string translated = literal ? std::string(pattern) : translate_pattern(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options, &err,
                             &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail(ErrorCode::ModelFormat, "{}: invalid regex {:?} at offset {}: {}", where, pattern, offset,
         reinterpret_cast<const char*>(msg));
  }
  // JIT is an optimization: without it (unsupported CPU, SELinux) the interpreter still matches.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view s, std::vector<std::uint32_t>& bounds) const {
  auto* code = static_cast<const pcre2_code*>(code_);
  MatchState& st = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  std::size_t start = 0;
  while (start <= s.size()) {
    int rc = pcre2_match(code, subject, s.size(), start, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail(ErrorCode::Input, "pre-tokenizer regex failed on a {}-byte text: {}", s.size(),
           reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    bounds.push_back(static_cast<std::uint32_t>(ov[0]));
    bounds.push_back(static_cast<std::uint32_t>(ov[1]));
    if (ov[1] > ov[0]) {
      start = ov[1];
    } else {
      // After an empty match the search resumes one character later, as Oniguruma's iterator does.
      if (ov[1] >= s.size()) break;
      start = ov[1] + unicode::utf8_length(static_cast<unsigned char>(s[ov[1]]));
    }
  }
}

const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

int unicode_to_byte(char32_t cp) {
  static const std::array<int16_t, 512> inverse = [] {
    std::array<int16_t, 512> inv;
    inv.fill(-1);
    const auto& t = byte_to_unicode();
    for (int b = 0; b < 256; ++b) inv[t[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return cp < 512 ? inverse[cp] : -1;
}

namespace {

// Splits every piece of `buf` around the matches of `re`, as HF's NormalizedString::split does.
void split_pieces(const std::string& buf, std::vector<Span>& pieces, const Regex& re, SplitBehavior behavior,
                  bool invert) {
  thread_local std::vector<std::uint32_t> bounds;
  thread_local std::vector<Span> out;
  struct Seg {
    std::uint32_t begin, end;
    bool is_match;
  };
  thread_local std::vector<Seg> segs, merged;
  out.clear();
  for (const Span& p : pieces) {
    std::string_view text(buf.data() + p.begin, p.end - p.begin);
    bounds.clear();
    re.find_all(text, bounds);
    segs.clear();
    std::uint32_t prev = 0;
    for (std::size_t k = 0; k < bounds.size(); k += 2) {
      if (bounds[k] != prev) segs.push_back({prev, bounds[k], invert});
      segs.push_back({bounds[k], bounds[k + 1], !invert});
      prev = bounds[k + 1];
    }
    if (prev != text.size()) segs.push_back({prev, static_cast<std::uint32_t>(text.size()), invert});

    merged.clear();
    bool previous_match = false;
    switch (behavior) {
      case SplitBehavior::Isolated:
        merged = segs;
        break;
      case SplitBehavior::Removed:
        for (const auto& s : segs)
          if (!s.is_match) merged.push_back(s);
        break;
      case SplitBehavior::MergedWithPrevious:
        for (const auto& s : segs) {
          if (s.is_match && !previous_match && !merged.empty()) merged.back().end = s.end;
          else merged.push_back(s);
          previous_match = s.is_match;
        }
        break;
      case SplitBehavior::MergedWithNext:
        for (std::size_t k = segs.size(); k-- > 0;) {
          const auto& s = segs[k];
          if (s.is_match && !previous_match && !merged.empty()) merged.back().begin = s.begin;
          else merged.push_back(s);
          previous_match = s.is_match;
        }
        std::reverse(merged.begin(), merged.end());
        break;
      case SplitBehavior::Contiguous:
        for (const auto& s : segs) {
          if (s.is_match == previous_match && !merged.empty()) merged.back().end = s.end;
          else merged.push_back(s);
          previous_match = s.is_match;
        }
        break;
    }
    for (const auto& s : merged)
      if (s.end > s.begin) out.push_back({p.begin + s.begin, p.begin + s.end});
  }
  pieces.swap(out);
}

SplitBehavior parse_behavior(const std::string& s, const std::string& where) {
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  fail(ErrorCode::ModelFormat, "{}.behavior: unknown split behavior {:?}", where, s);
}

}  // namespace

void PreTokenizer::add_byte_level(bool add_prefix_space, bool use_regex) {
  PreTokenizerStep step(PreTokenizerStep::Kind::ByteLevel);
  step.add_prefix_space = add_prefix_space;
  if (use_regex) step.regex = std::make_shared<Regex>(kGpt2Pattern, false, "GPT-2 pattern");
  steps_.push_back(std::move(step));
  byte_level_ = true;
}

void PreTokenizer::parse(const json& j, const std::string& file) {
  if (j.is_null()) return;
  parse_one(j, file, "pre_tokenizer");
}

void PreTokenizer::parse_one(const json& j, const std::string& file, const std::string& field) {
  const std::string where = file + ": " + field;
  if (!j.is_object()) fail(ErrorCode::ModelFormat, "{}: must be an object", where);
  if (byte_level_) {
    // Our BPE maps bytes after the whole pipeline; a step after ByteLevel would see raw bytes.
    fail(ErrorCode::ModelFormat, "{}: pre-tokenizers after ByteLevel are not supported", where);
  }
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    const auto& list = j.at("pretokenizers");
    for (std::size_t k = 0; k < list.size(); ++k) parse_one(list[k], file, field + ".pretokenizers[" + std::to_string(k) + "]");
  } else if (type == "ByteLevel") {
    add_byte_level(j.value("add_prefix_space", true), j.value("use_regex", true));
  } else if (type == "Split") {
    PreTokenizerStep step(PreTokenizerStep::Kind::Split);
    const json& pat = j.at("pattern");
    if (pat.contains("Regex")) step.regex = std::make_shared<Regex>(pat["Regex"].get<std::string>(), false, where + ".pattern");
    else if (pat.contains("String")) step.regex = std::make_shared<Regex>(pat["String"].get<std::string>(), true, where + ".pattern");
    else fail(ErrorCode::ModelFormat, "{}.pattern: expected {{\"Regex\": ...}} or {{\"String\": ...}}", where);
    step.behavior = parse_behavior(j.at("behavior").get<std::string>(), where);
    step.invert = j.value("invert", false);
    steps_.push_back(std::move(step));
  } else if (type == "Digits") {
    // HF splits at every char::is_numeric character (general category N), each alone or runs kept whole.
    PreTokenizerStep step(PreTokenizerStep::Kind::Split);
    step.regex = std::make_shared<Regex>("\\p{N}", false, where);
    step.behavior = j.value("individual_digits", false) ? SplitBehavior::Isolated : SplitBehavior::Contiguous;
    steps_.push_back(std::move(step));
  } else if (type == "Metaspace") {
    PreTokenizerStep step(PreTokenizerStep::Kind::Metaspace);
    step.replacement = j.value("replacement", std::string("\xE2\x96\x81"));
    if (step.replacement.empty() || unicode::utf8_length(static_cast<unsigned char>(step.replacement[0])) != step.replacement.size()) {
      fail(ErrorCode::ModelFormat, "{}.replacement: must be one character, got {:?}", where, step.replacement);
    }
    std::string scheme = j.value("prepend_scheme", std::string());
    if (scheme.empty()) scheme = j.value("add_prefix_space", true) ? "always" : "never";
    if (scheme == "always") step.prepend = PrependScheme::Always;
    else if (scheme == "never") step.prepend = PrependScheme::Never;
    else if (scheme == "first") step.prepend = PrependScheme::First;
    else fail(ErrorCode::ModelFormat, "{}.prepend_scheme: unknown value {:?}", where, scheme);
    step.split = j.value("split", true);
    step.regex = std::make_shared<Regex>(step.replacement, true, where + ".replacement");
    steps_.push_back(std::move(step));
  } else {
    fail(ErrorCode::ModelFormat, "{}: pre-tokenizer type {:?} is not supported (ByteLevel, Split, Digits, Metaspace, Sequence)", where, type);
  }
}

void PreTokenizer::run(std::string& buf, std::vector<Span>& pieces, bool at_input_start) const {
  thread_local std::string rebuilt;
  thread_local std::vector<Span> respans;
  for (const auto& step : steps_) {
    switch (step.kind) {
      case PreTokenizerStep::Kind::Split:
        split_pieces(buf, pieces, *step.regex, step.behavior, step.invert);
        break;
      case PreTokenizerStep::Kind::ByteLevel:
        if (step.add_prefix_space) {
          bool needed = false;
          for (const auto& p : pieces) needed |= buf[p.begin] != ' ';
          if (needed) {
            rebuilt.clear();
            respans.clear();
            for (const auto& p : pieces) {
              auto b = static_cast<std::uint32_t>(rebuilt.size());
              if (buf[p.begin] != ' ') rebuilt += ' ';
              rebuilt.append(buf, p.begin, p.end - p.begin);
              respans.push_back({b, static_cast<std::uint32_t>(rebuilt.size())});
            }
            buf.swap(rebuilt);
            pieces.swap(respans);
          }
        }
        if (step.regex) split_pieces(buf, pieces, *step.regex, SplitBehavior::Isolated, false);
        break;
      case PreTokenizerStep::Kind::Metaspace: {
        rebuilt.clear();
        respans.clear();
        for (const auto& p : pieces) {
          auto b = static_cast<std::uint32_t>(rebuilt.size());
          std::string_view text(buf.data() + p.begin, p.end - p.begin);
          bool starts = text.substr(0, 1) == " " || text.starts_with(step.replacement);
          bool prepend = step.prepend == PrependScheme::Always ||
                         (step.prepend == PrependScheme::First && p.begin == 0 && at_input_start);
          if (prepend && !starts) rebuilt += step.replacement;
          for (char c : text) {
            if (c == ' ') rebuilt += step.replacement;
            else rebuilt += c;
          }
          respans.push_back({b, static_cast<std::uint32_t>(rebuilt.size())});
        }
        buf.swap(rebuilt);
        pieces.swap(respans);
        if (step.split) split_pieces(buf, pieces, *step.regex, SplitBehavior::MergedWithNext, false);
        break;
      }
    }
  }
}

}  // namespace rankemb::text::detail
