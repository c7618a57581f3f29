#include "rankemb/lexical/wordnet.h"

#include <charconv>
#include <fmt/format.h>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::lexical {
namespace {

constexpr std::array<const char*, 4> kFileSuffix{"noun", "verb", "adj", "adv"};

// Splits one line into whitespace-separated fields and reports errors as "file:line: ...".
class LineFields {
 public:
  LineFields(std::string_view line, const std::string& file, std::size_t line_no)
      : line_(line), file_(file), line_no_(line_no) {}

  bool done() {
    skip_space();
    return pos_ >= line_.size();
  }
  std::string_view next(std::string_view what) {
    skip_space();
    if (pos_ >= line_.size()) fail(ErrorCode::ModelFormat, "{}:{}: line ends before {}", file_, line_no_, what);
    std::size_t start = pos_;
    while (pos_ < line_.size() && line_[pos_] != ' ') ++pos_;
    return line_.substr(start, pos_ - start);
  }
  std::uint32_t number(std::string_view what, int base = 10) {
    auto tok = next(what);
    std::uint32_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v, base);
    if (ec != std::errc() || p != tok.data() + tok.size())
      fail(ErrorCode::ModelFormat, "{}:{}: {} '{}' is not a base-{} number", file_, line_no_, what, tok, base);
    return v;
  }
  [[noreturn]] void error(std::string_view msg) { fail(ErrorCode::ModelFormat, "{}:{}: {}", file_, line_no_, msg); }

 private:
  void skip_space() {
    while (pos_ < line_.size() && (line_[pos_] == ' ' || line_[pos_] == '\t' || line_[pos_] == '\r')) ++pos_;
  }
  std::string_view line_;
  const std::string& file_;
  std::size_t line_no_;
  std::size_t pos_ = 0;
};

// Calls f(line, line_no) for each line that is not part of the license header (which starts
// every index/data file with lines beginning with two spaces).
template <typename F>
void for_each_line(const std::string& text, F&& f) {
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string_view line(text.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && !(line.size() >= 2 && line[0] == ' ' && line[1] == ' ')) f(line, line_no, pos);
    pos = end + 1;
  }
}

Pos pos_from_char(char c, LineFields& fields) {
  switch (c) {
    case 'n': return Pos::Noun;
    case 'v': return Pos::Verb;
    case 'a':
    case 's': return Pos::Adj;
    case 'r': return Pos::Adv;
    default: fields.error(fmt::format("unknown part of speech '{}'", c));
  }
}

Relation relation_of(std::string_view sym) {
  if (sym == "@") return Relation::Hypernym;
  if (sym == "@i") return Relation::InstanceHypernym;
  if (sym == "~") return Relation::Hyponym;
  if (sym == "~i") return Relation::InstanceHyponym;
  if (sym == "!") return Relation::Antonym;
  if (sym == "&") return Relation::SimilarTo;
  return Relation::Other;
}

const std::vector<std::pair<std::string_view, std::string_view>>& substitutions(Pos pos) {
  // NLTK's MORPHOLOGICAL_SUBSTITUTIONS, in its order (which decides the order of the results).
  static const std::vector<std::pair<std::string_view, std::string_view>> noun{
      {"s", ""}, {"ses", "s"}, {"ves", "f"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}};
  static const std::vector<std::pair<std::string_view, std::string_view>> verb{
      {"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}};
  static const std::vector<std::pair<std::string_view, std::string_view>> adj{{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}};
  static const std::vector<std::pair<std::string_view, std::string_view>> adv{};
  switch (pos) {
    case Pos::Noun: return noun;
    case Pos::Verb: return verb;
    case Pos::Adj: return adj;
    default: return adv;
  }
}

}  // namespace

char pos_char(Pos pos) { return "nvar"[static_cast<int>(pos)]; }

std::string Synset::id() const { return fmt::format("{}{:08d}", ss_type, ref.offset); }

WordNet WordNet::load(const std::filesystem::path& dir) {
  WordNet wn;
  for (Pos pos : kAllPos) {
    const std::string suffix = kFileSuffix[static_cast<int>(pos)];
    wn.load_index(dir / ("index." + suffix), pos);
    wn.load_data(dir / ("data." + suffix), pos);
    wn.load_exceptions(dir / (suffix + ".exc"), pos);
  }
  // Every pointer and index offset must resolve, so that later queries cannot fail.
  for (Pos pos : kAllPos) {
    for (const auto& [lemma, entry] : wn.index_[static_cast<int>(pos)])
      for (auto off : entry.offsets)
        if (!wn.by_offset_[static_cast<int>(pos)].contains(off))
          fail(ErrorCode::ModelFormat, "{}: lemma '{}' points to offset {} missing from data.{}",
               (dir / ("index." + std::string(kFileSuffix[static_cast<int>(pos)]))).string(), lemma, off,
               kFileSuffix[static_cast<int>(pos)]);
    for (const auto& s : wn.synsets_[static_cast<int>(pos)])
      for (const auto& p : s.pointers)
        if (!wn.by_offset_[static_cast<int>(p.target.file)].contains(p.target.offset))
          fail(ErrorCode::ModelFormat, "{}: synset {} points to offset {} missing from data.{}",
               (dir / ("data." + std::string(kFileSuffix[static_cast<int>(pos)]))).string(), s.id(), p.target.offset,
               kFileSuffix[static_cast<int>(p.target.file)]);
  }
  return wn;
}

void WordNet::load_index(const std::filesystem::path& path, Pos pos) {
  const std::string text = io::read_file(path);
  const std::string file = path.string();
  auto& index = index_[static_cast<int>(pos)];
  for_each_line(text, [&](std::string_view line, std::size_t line_no, std::size_t) {
    LineFields f(line, file, line_no);
    std::string lemma(f.next("lemma"));
    auto p = f.next("pos");
    if (p.size() != 1 || pos_from_char(p[0], f) != pos) f.error(fmt::format("part of speech '{}' in index.{}", p, kFileSuffix[static_cast<int>(pos)]));
    std::uint32_t n_synsets = f.number("synset_cnt");
    std::uint32_t n_ptrs = f.number("p_cnt");
    for (std::uint32_t i = 0; i < n_ptrs; ++i) f.next("pointer symbol");
    std::uint32_t n_senses = f.number("sense_cnt");
    if (n_senses != n_synsets) f.error(fmt::format("sense_cnt {} != synset_cnt {}", n_senses, n_synsets));
    IndexEntry entry;
    entry.tagged = f.number("tagsense_cnt");
    entry.offsets.reserve(n_synsets);
    for (std::uint32_t i = 0; i < n_synsets; ++i) entry.offsets.push_back(f.number("synset_offset"));
    if (!f.done()) f.error("trailing fields after the synset offsets");
    if (!index.emplace(std::move(lemma), std::move(entry)).second) f.error("duplicate lemma");
  });
}

void WordNet::load_data(const std::filesystem::path& path, Pos pos) {
  const std::string text = io::read_file(path);
  const std::string file = path.string();
  auto& out = synsets_[static_cast<int>(pos)];
  auto& by_offset = by_offset_[static_cast<int>(pos)];
  for_each_line(text, [&](std::string_view line, std::size_t line_no, std::size_t byte_pos) {
    // The gloss after '|' is free text; only the fields before it are parsed.
    auto bar = line.find(" | ");
    LineFields f(line.substr(0, bar), file, line_no);
    Synset s;
    s.ref = {pos, f.number("synset_offset")};
    if (s.ref.offset != byte_pos) f.error(fmt::format("synset offset {} is not the line's byte offset {}", s.ref.offset, byte_pos));
    f.number("lex_filenum");
    auto type = f.next("ss_type");
    if (type.size() != 1 || pos_from_char(type[0], f) != pos) f.error(fmt::format("ss_type '{}' in data.{}", type, kFileSuffix[static_cast<int>(pos)]));
    s.ss_type = type[0];
    std::uint32_t n_words = f.number("w_cnt", 16);
    if (n_words == 0) f.error("synset without words");
    for (std::uint32_t i = 0; i < n_words; ++i) {
      std::string_view word = f.next("word");
      // Adjective syntactic markers: "galore(ip)" -> "galore" (NLTK strips any trailing "(...)").
      if (!word.empty() && word.back() == ')') {
        auto open = word.find('(');
        if (open != std::string_view::npos) word = word.substr(0, open);
      }
      s.lemmas.emplace_back(word);
      f.number("lex_id", 16);
    }
    std::uint32_t n_ptrs = f.number("p_cnt");
    s.pointers.reserve(n_ptrs);
    for (std::uint32_t i = 0; i < n_ptrs; ++i) {
      Pointer p;
      p.relation = relation_of(f.next("pointer_symbol"));
      p.target.offset = f.number("pointer synset_offset");
      auto tp = f.next("pointer pos");
      if (tp.size() != 1) f.error(fmt::format("pointer part of speech '{}'", tp));
      p.target.file = pos_from_char(tp[0], f);
      std::uint32_t st = f.number("pointer source/target", 16);
      p.source_word = static_cast<std::uint8_t>(st >> 8);
      p.target_word = static_cast<std::uint8_t>(st & 0xff);
      if (p.source_word > n_words) f.error(fmt::format("pointer source word {} > w_cnt {}", p.source_word, n_words));
      s.pointers.push_back(p);
    }
    // Verb frames (and anything else before the gloss) are not needed.
    if (bar == std::string_view::npos) f.error("missing ' | ' before the gloss");
    by_offset.emplace(s.ref.offset, static_cast<std::uint32_t>(out.size()));
    out.push_back(std::move(s));
  });
}

void WordNet::load_exceptions(const std::filesystem::path& path, Pos pos) {
  const std::string text = io::read_file(path);
  const std::string file = path.string();
  auto& exc = exceptions_[static_cast<int>(pos)];
  auto& infl = inflections_[static_cast<int>(pos)];
  for_each_line(text, [&](std::string_view line, std::size_t line_no, std::size_t) {
    LineFields f(line, file, line_no);
    std::string form(f.next("inflected form"));
    std::vector<std::string> bases;
    while (!f.done()) bases.emplace_back(f.next("base form"));
    if (bases.empty()) f.error(fmt::format("exception '{}' has no base form", form));
    for (const auto& b : bases) infl[b].push_back(form);
    // NLTK keeps the last line for a repeated form (dict assignment); so do we.
    exc[form] = std::move(bases);
  });
}

std::vector<std::string> WordNet::morphy(std::string_view form, Pos pos) const {
  const auto& index = index_[static_cast<int>(pos)];
  std::vector<std::string> forms{std::string(form)};
  const auto& exc = exceptions_[static_cast<int>(pos)];
  if (auto it = exc.find(form); it != exc.end()) {
    forms.insert(forms.end(), it->second.begin(), it->second.end());
  } else {
    for (const auto& [old_suffix, new_suffix] : substitutions(pos))
      if (form.ends_with(old_suffix))
        forms.push_back(std::string(form.substr(0, form.size() - old_suffix.size())) + std::string(new_suffix));
  }
  std::vector<std::string> out;
  for (auto& f : forms)
    if (index.contains(f) && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(std::move(f));
  return out;
}

std::vector<const Synset*> WordNet::lemma_synsets(std::string_view lemma, Pos pos) const {
  std::vector<const Synset*> out;
  const auto& index = index_[static_cast<int>(pos)];
  auto it = index.find(lemma);
  if (it == index.end()) return out;
  for (auto off : it->second.offsets) out.push_back(&synset({pos, off}));
  return out;
}

std::vector<const Synset*> WordNet::synsets(std::string_view word, Pos pos) const {
  std::string lower;
  std::size_t i = 0;
  while (i < word.size()) unicode::append_utf8(lower, unicode::simple_lower(unicode::next_codepoint(word, i)));
  std::vector<const Synset*> out;
  for (const auto& form : morphy(lower, pos)) {
    auto s = lemma_synsets(form, pos);
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}


std::uint32_t WordNet::tagged_count(std::string_view lemma, Pos pos) const {
  const auto& index = index_[static_cast<int>(pos)];
  auto it = index.find(lemma);
  return it == index.end() ? 0 : it->second.tagged;
}

const std::vector<std::string>& WordNet::exception_forms(std::string_view base, Pos pos) const {
  static const std::vector<std::string> kEmpty;
  const auto& infl = inflections_[static_cast<int>(pos)];
  auto it = infl.find(base);
  return it == infl.end() ? kEmpty : it->second;
}

const Synset& WordNet::synset(SynsetRef ref) const {
  const auto& by = by_offset_[static_cast<int>(ref.file)];
  auto it = by.find(ref.offset);
  if (it == by.end()) fail(ErrorCode::ModelFormat, "WordNet: no synset at offset {} in data.{}", ref.offset, kFileSuffix[static_cast<int>(ref.file)]);
  return synsets_[static_cast<int>(ref.file)][it->second];
}

std::vector<const Synset*> WordNet::related(const Synset& s, Relation relation) const {
  std::vector<const Synset*> out;
  for (const auto& p : s.pointers) {
    if (p.relation != relation) continue;
    const Synset* t = &synset(p.target);
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  }
  return out;
}

std::vector<const Synset*> WordNet::co_hyponyms(const Synset& s) const {
  std::vector<const Synset*> out;
  for (const Synset* h : hypernyms(s))
    for (const Synset* c : hyponyms(*h))
      if (c != &s && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return out;
}

std::vector<std::pair<std::string, LemmaRef>> WordNet::antonyms(const Synset& s) const {
  std::vector<std::pair<std::string, LemmaRef>> out;
  for (const auto& p : s.pointers) {
    if (p.relation != Relation::Antonym || p.source_word == 0 || p.target_word == 0) continue;
    const Synset& t = synset(p.target);
    if (p.target_word > t.lemmas.size()) continue;
    out.push_back({s.lemmas[p.source_word - 1], LemmaRef{&t, t.lemmas[p.target_word - 1]}});
  }
  return out;
}

std::size_t WordNet::synset_count() const {
  std::size_t n = 0;
  for (const auto& v : synsets_) n += v.size();
  return n;
}

}  // namespace rankemb::lexical
