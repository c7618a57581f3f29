#include "rankemb/chains/training.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "rankemb/chains/chain_file.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::chains {

namespace {

// ---- Python string literals (the subset ast.literal_eval turns into a list of str) ----------------

class PythonListParser {
 public:
  explicit PythonListParser(std::string_view text) : s_(text) {}

  std::vector<std::string> parse() {
    if (const auto bad = unicode::find_invalid_utf8(s_)) {
      pos_ = *bad;
      error("invalid UTF-8");
    }
    std::vector<std::string> items;
    skip_space();
    expect('[', "expected '[' to open a list");
    skip_space();
    if (peek() == ']') {
      ++pos_;
    } else {
      for (;;) {
        items.push_back(parse_string());
        skip_space();
        if (peek() == ',') {
          ++pos_;
          skip_space();
          if (peek() == ']') {  // trailing comma
            ++pos_;
            break;
          }
          continue;
        }
        expect(']', "expected ',' or ']' after a list item");
        break;
      }
    }
    skip_space();
    if (pos_ != s_.size()) error("unexpected text after the list");
    return items;
  }

 private:
  [[noreturn]] void error(std::string_view what) const { fail(ErrorCode::Input, "{} at offset {}", what, pos_); }

  char peek(std::size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  bool at_end() const { return pos_ >= s_.size(); }

  void expect(char c, std::string_view what) {
    if (at_end() || s_[pos_] != c) error(what);
    ++pos_;
  }

  // Whitespace between tokens of a bracketed expression: newlines are free inside brackets,
  // a backslash continues a line, and a comment runs to the end of its line.
  void skip_space() {
    while (!at_end()) {
      const char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
        ++pos_;
      } else if (c == '\\' && (peek(1) == '\n' || peek(1) == '\r')) {
        pos_ += 2;
      } else if (c == '#') {
        while (!at_end() && s_[pos_] != '\n' && s_[pos_] != '\r') ++pos_;
      } else {
        break;
      }
    }
  }

  // Letters before a quote, if this is the start of a string literal.
  std::optional<std::string_view> literal_prefix() const {
    std::size_t n = 0;
    while (n < 3 && std::isalpha(static_cast<unsigned char>(peek(n)))) ++n;
    if (peek(n) != '\'' && peek(n) != '"') return std::nullopt;
    return s_.substr(pos_, n);
  }

  // One or more adjacent literals ('a' "b" -> "ab").
  std::string parse_string() {
    if (!literal_prefix()) error("expected a string literal");
    std::string out;
    do {
      out += parse_literal();
      skip_space();
    } while (literal_prefix());
    return out;
  }

  std::string parse_literal() {
    std::string prefix(*literal_prefix());
    std::transform(prefix.begin(), prefix.end(), prefix.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
    if (prefix.find('b') != std::string::npos) error("a bytes literal is not a str");
    if (prefix.find('f') != std::string::npos) error("an f-string is not a literal");
    if (!prefix.empty() && prefix != "r" && prefix != "u") error("invalid string prefix");
    const bool raw = prefix == "r";
    pos_ += prefix.size();

    const char quote = s_[pos_];
    const bool triple = peek(1) == quote && peek(2) == quote;
    pos_ += triple ? 3 : 1;
    std::string out;
    for (;;) {
      if (at_end()) error("unterminated string literal");
      const char c = s_[pos_];
      if (c == quote && (!triple || (peek(1) == quote && peek(2) == quote))) {
        pos_ += triple ? 3 : 1;
        return out;
      }
      if (c == '\n' || c == '\r') {
        if (!triple) error("end of line inside a string literal");
        // Python reads source with universal newlines: \r\n and \r become \n.
        out += '\n';
        pos_ += (c == '\r' && peek(1) == '\n') ? 2 : 1;
        continue;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= s_.size()) error("unterminated string literal");
      if (raw) {
        // A raw string keeps the backslash, which still stops the next character from closing it.
        out += '\\';
        out += s_[pos_ + 1];
        pos_ += 2;
        continue;
      }
      escape(out);
    }
  }

  // pos_ is at a backslash inside a non-raw literal.
  void escape(std::string& out) {
    const std::size_t start = pos_;
    const char e = s_[pos_ + 1];
    pos_ += 2;
    switch (e) {
      case '\n': return;  // line continuation
      case '\r':
        if (peek() == '\n') ++pos_;
        return;
      case '\\': out += '\\'; return;
      case '\'': out += '\''; return;
      case '"': out += '"'; return;
      case 'a': out += '\a'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'v': out += '\v'; return;
      case 'x': return code_point(out, hex_digits(2, start, "\\xXX"), start);
      case 'u': return code_point(out, hex_digits(4, start, "\\uXXXX"), start);
      case 'U': return code_point(out, hex_digits(8, start, "\\UXXXXXXXX"), start);
      case 'N':
        pos_ = start;
        error("\\N{...} escapes are not supported");
      default: break;
    }
    if (e >= '0' && e <= '7') {
      char32_t cp = static_cast<char32_t>(e - '0');
      for (int i = 0; i < 2 && peek() >= '0' && peek() <= '7'; ++i) cp = cp * 8 + static_cast<char32_t>(s_[pos_++] - '0');
      return code_point(out, cp, start);
    }
    // Python keeps an unknown escape as written (with a warning): the backslash stays and the
    // character after it is read normally.
    out += '\\';
    pos_ = start + 1;
  }

  char32_t hex_digits(int n, std::size_t start, std::string_view form) {
    char32_t v = 0;
    for (int i = 0; i < n; ++i) {
      const char c = peek();
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) {
        pos_ = start;
        error(fmt::format("truncated {} escape", form));
      }
      v = v * 16 + static_cast<char32_t>(d);
      ++pos_;
    }
    return v;
  }

  void code_point(std::string& out, char32_t cp, std::size_t start) {
    if (cp > 0x10FFFF) {
      pos_ = start;
      error(fmt::format("escape beyond U+10FFFF (0x{:X})", static_cast<uint32_t>(cp)));
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) {
      // Python keeps a surrogate as a lone code point (it never pairs escapes); it has no UTF-8 form.
      pos_ = start;
      error(fmt::format("surrogate code point U+{:04X} has no UTF-8 form", static_cast<uint32_t>(cp)));
    }
    unicode::append_utf8(out, cp);
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

// ---- CSV as pandas writes it (RFC 4180: quoted fields, "" for a quote, newlines inside quotes) ---

// A malformed record: where the problem is and why. Internal to the CSV reader.
struct CsvError {
  std::size_t line;
  std::string reason;
};

struct CsvRecord {
  std::vector<std::string> fields;
  std::size_t line = 0;  // line where the record starts
};

class CsvReader {
 public:
  CsvReader(std::string_view text, char delimiter) : s_(text), delim_(delimiter) {
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // a UTF-8 byte-order mark, as pandas skips it
  }

  // The next non-blank record, or false at the end. A malformed record throws CsvError; the
  // reader then resumes at the next line (or at the end, for an unterminated quote, which
  // swallows the rest of the file).
  bool next(CsvRecord& rec) {
    for (;;) {
      if (pos_ >= s_.size()) return false;
      rec.fields.clear();
      rec.line = line_;
      const std::size_t line_start = pos_;
      try {
        read_record(rec);
      } catch (const CsvError&) {
        recover(line_start);
        throw;
      }
      const bool blank = rec.fields.size() == 1 && rec.fields[0].empty() && !last_quoted_;
      if (!blank) return true;
    }
  }

 private:
  void read_record(CsvRecord& rec) {
    for (;;) {
      std::string field;
      last_quoted_ = false;
      if (pos_ < s_.size() && s_[pos_] == '"') {
        last_quoted_ = true;
        ++pos_;
        for (;;) {
          if (pos_ >= s_.size()) {
            pos_ = s_.size();
            throw CsvError{rec.line, "unterminated quoted field"};
          }
          const char c = s_[pos_++];
          if (c == '"') {
            if (pos_ < s_.size() && s_[pos_] == '"') {
              field += '"';
              ++pos_;
              continue;
            }
            break;
          }
          if (c == '\n') ++line_;
          field += c;
        }
        // After a closing quote only a delimiter or the end of the record may follow.
        if (pos_ < s_.size() && s_[pos_] == '\r' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '\n') ++pos_;
        if (pos_ < s_.size() && s_[pos_] != delim_ && s_[pos_] != '\n') {
          throw CsvError{line_, "text after the closing quote of a field"};
        }
      } else {
        while (pos_ < s_.size() && s_[pos_] != delim_ && s_[pos_] != '\n') {
          if (s_[pos_] == '"') throw CsvError{line_, "quote inside an unquoted field"};
          field += s_[pos_++];
        }
        if (!field.empty() && field.back() == '\r' && (pos_ >= s_.size() || s_[pos_] == '\n')) field.pop_back();
      }
      rec.fields.push_back(std::move(field));
      if (pos_ >= s_.size()) return;
      if (s_[pos_++] == '\n') {
        ++line_;
        return;
      }
    }
  }

  // Skips to just after the newline that ends the physical line where parsing stopped.
  void recover(std::size_t line_start) {
    if (pos_ >= s_.size()) return;
    pos_ = std::max(pos_, line_start);
    while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
    if (pos_ < s_.size()) {
      ++pos_;
      ++line_;
    }
  }

  std::string_view s_;
  char delim_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  bool last_quoted_ = false;
};

// ---- shared ---------------------------------------------------------------------------------------

class Collector {
 public:
  Collector(std::string_view source, const ChainReadOptions& options) : source_(source), options_(options) {}

  std::string where(std::size_t line) const { return fmt::format("{}:{}", source_, line); }

  void malformed(std::size_t line, std::string_view reason) {
    if (options_.strict) fail(ErrorCode::Input, "{}: {}", where(line), reason);
    file_.malformed.push_back(fmt::format("{}: {}", where(line), reason));
  }

  void add(std::size_t line, std::string id, std::vector<std::string> sentences) {
    if (sentences.size() < options_.min_sentences) {
      return malformed(line, fmt::format("chain of {} sentence(s), at least {} needed", sentences.size(),
                                         options_.min_sentences));
    }
    file_.chains.push_back(Chain{std::move(id), std::move(sentences), where(line)});
  }

  void dropped() { ++file_.n_dropped; }

  ChainFile finish() {
    if (file_.chains.empty()) {
      fail(ErrorCode::Input, "{}: no usable chain ({} dropped by the generator, {} malformed{}{})", source_,
           file_.n_dropped, file_.malformed.size(), file_.malformed.empty() ? "" : "; first: ",
           file_.malformed.empty() ? "" : file_.malformed.front());
    }
    return std::move(file_);
  }

 private:
  std::string source_;
  const ChainReadOptions& options_;
  ChainFile file_;
};

std::string json_id(const nlohmann::json& id, std::size_t line) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number()) return id.dump();
  return fmt::format("line {}", line);
}

}  // namespace

std::vector<std::string> parse_python_string_list(std::string_view literal) {
  return PythonListParser(literal).parse();
}

namespace {
// One JSONL line as a training chain, or the reason it is malformed.
void add_jsonl_chain(Collector& out, std::size_t line, std::string_view row) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(row);
  } catch (const nlohmann::json::exception& e) {
    return out.malformed(line, fmt::format("invalid JSON ({})", e.what()));
  }
  if (!j.is_object()) return out.malformed(line, "expected a JSON object");
  if (const auto kept = j.find("kept"); kept != j.end()) {
    if (!kept->is_boolean()) return out.malformed(line, "\"kept\" must be true or false");
    if (!kept->get<bool>()) return out.dropped();
  }
  const auto seed = j.find("seed");
  if (seed == j.end() || !seed->is_string()) return out.malformed(line, "\"seed\" must be a string");
  const auto generated = j.find("sentences");
  if (generated == j.end() || !generated->is_array() ||
      !std::all_of(generated->begin(), generated->end(), [](const nlohmann::json& s) { return s.is_string(); }))
    return out.malformed(line, "\"sentences\" must be an array of strings");
  std::vector<std::string> sentences;
  sentences.reserve(generated->size() + 1);
  sentences.push_back(seed->get<std::string>());
  for (const auto& s : *generated) sentences.push_back(s.get<std::string>());
  const auto id = j.find("id");
  out.add(line, json_id(id == j.end() ? nlohmann::json() : *id, line), std::move(sentences));
}
}  // namespace

namespace {
ChainFile chains_from_lines(const ChainLines& file, const ChainReadOptions& options) {
  Collector out(file.source, options);
  for (const auto& line : file.lines) add_jsonl_chain(out, line.number, file.view(line));
  // chain_file.h's rule: an unfinished last line (a run still writing) is left out, and said so.
  if (file.unfinished()) out.malformed(file.unfinished_line(), "unfinished last line (a run still writing?), left out");
  return out.finish();
}
}  // namespace

ChainFile parse_chains_jsonl(std::string_view text, std::string_view source, const ChainReadOptions& options) {
  return chains_from_lines(split_chain_lines(std::string(text), std::string(source)), options);
}

ChainFile parse_chains_csv(std::string_view text, std::string_view source, const ChainReadOptions& options,
                           char delimiter) {
  Collector out(source, options);
  CsvReader reader(text, delimiter);
  CsvRecord rec;
  std::optional<std::size_t> column;
  std::size_t n_columns = 0;
  std::size_t row_index = 0;
  for (;;) {
    try {
      if (!reader.next(rec)) break;
    } catch (const CsvError& e) {
      if (!column) fail(ErrorCode::Input, "{}:{}: header: {}", source, e.line, e.reason);
      ++row_index;  // ids stay the data-row index whatever was skipped
      out.malformed(e.line, e.reason);
      continue;
    }
    if (!column) {
      const auto it = std::find(rec.fields.begin(), rec.fields.end(), "list_sent");
      if (it == rec.fields.end()) {
        fail(ErrorCode::Input, "{}:{}: no 'list_sent' column in the header (columns: {})", source, rec.line,
             fmt::join(rec.fields, ", "));
      }
      column = static_cast<std::size_t>(it - rec.fields.begin());
      n_columns = rec.fields.size();
      continue;
    }
    const std::size_t index = row_index++;
    if (rec.fields.size() != n_columns) {
      out.malformed(rec.line, fmt::format("{} fields, the header has {}", rec.fields.size(), n_columns));
      continue;
    }
    std::vector<std::string> sentences;
    try {
      sentences = parse_python_string_list(rec.fields[*column]);
    } catch (const Error& e) {
      out.malformed(rec.line, fmt::format("list_sent: {}", e.message()));
      continue;
    }
    out.add(rec.line, std::to_string(index), std::move(sentences));
  }
  if (!column) fail(ErrorCode::Input, "{}: empty file, expected a header with a 'list_sent' column", source);
  return out.finish();
}

ChainFile read_chains(const std::filesystem::path& path, const ChainReadOptions& options) {
  const ChainLines file = read_chain_lines(path);  // refuses a directory, as every chain reader does
  const std::string ext = path.extension().string();
  ChainFormat format = options.format;
  if (format == ChainFormat::Auto) format = (ext == ".csv" || ext == ".tsv") ? ChainFormat::Csv : ChainFormat::Jsonl;
  if (format == ChainFormat::Csv) return parse_chains_csv(file.text, file.source, options, ext == ".tsv" ? '\t' : ',');
  return chains_from_lines(file, options);
}

}  // namespace rankemb::chains
