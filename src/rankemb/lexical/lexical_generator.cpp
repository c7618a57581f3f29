#include "rankemb/lexical/lexical_generator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "rankemb/lexical/inflect.h"
#include "rankemb/lexical/word_lists.h"
#include "rankemb/lexical/word_vectors.h"
#include "rankemb/lexical/wordnet.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::lexical {
namespace {

using generate::StepResult;
using generate::strip_generated;
using Cls = WordClass;

// ---------------------------------------------------------------------------------------------
// Tokens: words and punctuation, each with the whitespace that followed it, so that rendering an
// unedited token list reproduces the input byte for byte.

enum class Tag : std::uint8_t { Func, Noun, Verb, Adj, Adv, Proper, Punct, Other };

struct Token {
  std::string text;
  std::string space;  // whitespace after the token
  bool word = false;
  // Analysis (filled by tag()).
  Tag tag = Tag::Other;
  Cls cls = Cls::Content;
  std::string lower;
  std::string lemma;
};

bool is_word_char(char32_t cp) { return unicode::is_letter(cp) || unicode::is_number(cp) || unicode::is_mark(cp); }

std::string lower_ascii_utf8(std::string_view s) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) unicode::append_utf8(out, unicode::simple_lower(unicode::next_codepoint(s, i)));
  return out;
}

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t start = i;
    char32_t cp = unicode::next_codepoint(s, i);
    if (unicode::is_white_space(cp)) {
      // Any whitespace run renders as spaces; leading whitespace is dropped (outputs are stripped anyway).
      if (!out.empty()) out.back().space += ' ';
      continue;
    }
    Token t;
    if (is_word_char(cp)) {
      // Letters/digits with inner hyphens; an apostrophe starts a clitic token ('s, n't handled below).
      std::size_t end = i;
      for (;;) {
        std::size_t j = end;
        if (j >= s.size()) break;
        char32_t c = unicode::next_codepoint(s, j);
        if (is_word_char(c)) {
          end = j;
        } else if ((c == '-' || c == '.') && j < s.size()) {
          std::size_t k = j;
          char32_t d = unicode::next_codepoint(s, k);
          if (is_word_char(d) && c == '-') end = k; else break;
        } else {
          break;
        }
      }
      i = end;
      t.text = std::string(s.substr(start, end - start));
      t.word = true;
      // "don't" -> "do" + "n't" (GloVe's tokenization).
      if (t.text.size() > 1 && (t.text.back() == 'n' || t.text.back() == 'N') && s.substr(i).starts_with("'t")) {
        Token clitic;
        clitic.text = t.text.substr(t.text.size() - 1) + "'t";
        clitic.word = true;
        t.text.pop_back();
        out.push_back(std::move(t));
        out.push_back(std::move(clitic));
        i += 2;
        continue;
      }
    } else if (cp == '\'' && i < s.size() && !out.empty() && out.back().word && out.back().space.empty()) {
      std::size_t end = i;
      while (end < s.size() && std::isalpha(static_cast<unsigned char>(s[end]))) ++end;
      t.text = std::string(s.substr(start, end - start));
      t.word = end > i;
      i = end;
    } else {
      t.text = std::string(s.substr(start, i - start));
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::string render(const std::vector<Token>& toks) {
  std::string out;
  for (std::size_t i = 0; i < toks.size(); ++i) {
    out += toks[i].text;
    if (i + 1 < toks.size()) out += toks[i].space;
  }
  return out;
}

bool starts_upper(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = 0;
  char32_t cp = unicode::next_codepoint(s, i);
  return unicode::simple_lower(cp) != cp;
}

std::string capitalize(std::string_view s) {
  if (s.empty()) return std::string(s);
  std::size_t i = 0;
  char32_t cp = unicode::next_codepoint(s, i);
  std::string out;
  unicode::append_utf8(out, unicode::simple_upper(cp));
  out += s.substr(i);
  return out;
}

struct Resources {
  const WordNet& wn;
  const WordVectors& wv;
  // Adjectives to insert before a noun, by the noun's WordNet category (first match wins).
  struct AdjectiveSet {
    std::uint32_t root = 0;  // noun synset offset; 0 = any noun
    std::vector<std::uint32_t> ids;  // GloVe ids
  };
  std::vector<AdjectiveSet> adjectives;
};

// Part of speech in context: WordNet's possible parts, weighted by tagged-sense counts and a few
// left-context rules (determiner -> noun/adjective, auxiliary -> verb/adjective, ...).
void tag(std::vector<Token>& toks, const Resources& r) {
  int prev_word = -1;
  for (std::size_t i = 0; i < toks.size(); ++i) {
    Token& t = toks[i];
    if (!t.word) {
      t.tag = Tag::Punct;
      if (t.text != "'" && t.text != "-") prev_word = -1;
      continue;
    }
    t.lower = lower_ascii_utf8(t.text);
    t.cls = word_class(t.lower);
    const bool first = prev_word < 0 && (i == 0 || toks[i - 1].text == "." || toks[i - 1].text == "!" || toks[i - 1].text == "?");
    const Token* p = prev_word >= 0 ? &toks[static_cast<std::size_t>(prev_word)] : nullptr;
    prev_word = static_cast<int>(i);
    if (t.cls != Cls::Content) {
      t.tag = Tag::Func;
      continue;
    }
    if (!first && starts_upper(t.text)) {
      t.tag = Tag::Proper;
      continue;
    }
    double best = -1e9;
    t.tag = Tag::Other;
    for (Pos pos : lexical::kAllPos) {
      auto lemmas = r.wn.morphy(t.lower, pos);
      if (lemmas.empty()) continue;
      double s = std::log1p(static_cast<double>(r.wn.tagged_count(lemmas.front(), pos)));
      const bool ing = t.lower.ends_with("ing"), ed = t.lower.ends_with("ed") || t.lower.ends_with("en");
      if (p) {
        const bool det = p->tag == Tag::Func && (p->cls == Cls::Det || p->cls == Cls::Num);
        const bool aux = p->tag == Tag::Func && p->cls == Cls::Aux;
        const bool prep = p->tag == Tag::Func && p->cls == Cls::Prep;
        if (det || p->tag == Tag::Adj) s += pos == Pos::Noun ? 3 : pos == Pos::Adj ? 2 : -4;
        if (aux) s += pos == Pos::Verb ? ((ing || ed) ? 4 : 0) : pos == Pos::Adj ? 2 : pos == Pos::Adv ? 1 : -1;
        if (p->lower == "to") s += pos == Pos::Verb ? 2 : 0;
        if (prep) s += pos == Pos::Noun ? 2 : pos == Pos::Adj ? 1 : pos == Pos::Verb ? (ing ? 1 : -2) : 0;
        if ((p->tag == Tag::Noun || p->tag == Tag::Proper || p->cls == Cls::Pron) && pos == Pos::Verb) s += 2;
        if (p->tag == Tag::Verb && pos == Pos::Verb) s -= 2;
      } else if (first && pos == Pos::Verb && !ing) {
        s -= 2;
      }
      if (ing && pos == Pos::Verb) s += 1.5;
      if (pos == Pos::Adj) {  // "working people": an adjective reading before a possible noun
        for (std::size_t j = i + 1; j < toks.size(); ++j) {
          if (!toks[j].word) break;
          std::string nl = lower_ascii_utf8(toks[j].text);
          if (word_class(nl) == Cls::Content && !r.wn.morphy(nl, Pos::Noun).empty()) s += 1.5;
          break;
        }
      }
      if (t.lower.ends_with("ly") && pos == Pos::Adv) s += 2;
      if (s > best) {
        best = s;
        t.tag = pos == Pos::Noun ? Tag::Noun : pos == Pos::Verb ? Tag::Verb : pos == Pos::Adj ? Tag::Adj : Tag::Adv;
        t.lemma = lemmas.front();
      }
    }
    if (t.tag == Tag::Other && first && !r.wv.id(t.lower)) t.tag = Tag::Proper;
  }
}

Pos pos_of(Tag t) {
  switch (t) {
    case Tag::Noun: return Pos::Noun;
    case Tag::Verb: return Pos::Verb;
    case Tag::Adj: return Pos::Adj;
    default: return Pos::Adv;
  }
}

bool is_content(const Token& t) { return t.word && t.tag != Tag::Func && word_class(t.lower) == Cls::Content; }

// Mean unit GloVe vector of the content words (falls back to all words for function-only text).
std::vector<float> sentence_vector(const std::vector<Token>& toks, const WordVectors& wv) {
  std::vector<float> v(wv.dim(), 0.0f);
  int n = 0;
  for (int pass = 0; pass < 2 && n == 0; ++pass)
    for (const auto& t : toks) {
      if (!t.word) continue;
      std::string low = t.lower.empty() ? lower_ascii_utf8(t.text) : t.lower;
      if (pass == 0 && word_class(low) != Cls::Content) continue;
      // Multi-word substitutes ("ice cream") contribute each word.
      std::size_t start = 0;
      while (start <= low.size()) {
        std::size_t end = std::min(low.find(' ', start), low.size());
        if (auto id = wv.id(std::string_view(low).substr(start, end - start))) {
          auto u = wv.unit(*id);
          for (std::size_t d = 0; d < v.size(); ++d) v[d] += u[d];
          ++n;
        }
        start = end + 1;
      }
    }
  return v;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return (aa > 0 && bb > 0) ? ab / std::sqrt(aa * bb) : 0.0;
}

// ---------------------------------------------------------------------------------------------
// Candidate edits.

struct Candidate {
  std::vector<Token> toks;
  const char* op = "none";
  double plausibility = 0;
  double toward_frequent = 0;  // substitutions: log10 of how much more frequent the new word is
  std::string text;
};

// Articles agree with the next word; the first word is capitalised when the input's was.
void fix_surface(std::vector<Token>& toks, bool initial_cap) {
  for (std::size_t i = 0; i + 1 < toks.size(); ++i) {
    std::string low = lower_ascii_utf8(toks[i].text);
    if (low != "a" && low != "an") continue;
    std::size_t j = i + 1;
    if (!toks[j].word) continue;
    std::string want = lexical::takes_an(toks[j].text) ? "an" : "a";
    if (want != low) toks[i].text = starts_upper(toks[i].text) ? capitalize(want) : want;
  }
  for (auto& t : toks)
    if (t.word) {
      if (initial_cap) t.text = capitalize(t.text);
      break;
    }
}

// Lowercases a capitalised first word when it is a common word, so that edits can move it.
void decapitalize_first(std::vector<Token>& toks) {
  for (auto& t : toks)
    if (t.word) {
      if (t.tag != Tag::Proper && starts_upper(t.text) && t.text.size() > 1 && !starts_upper(t.text.substr(1))) t.text = t.lower;
      else if (t.tag != Tag::Proper && t.text.size() == 1) t.text = t.lower;
      break;
    }
}

// Word-count of content words, for the minimum-length guard on deletions.
std::size_t word_count(const std::vector<Token>& toks) {
  return static_cast<std::size_t>(std::count_if(toks.begin(), toks.end(), [](const Token& t) { return t.word; }));
}

void erase_span(std::vector<Token>& toks, std::size_t b, std::size_t e) {
  if (b > 0) toks[b - 1].space = toks[e - 1].space;
  toks.erase(toks.begin() + static_cast<std::ptrdiff_t>(b), toks.begin() + static_cast<std::ptrdiff_t>(e));
}

struct Scorer {
  const Resources& r;
  const LexicalGeneratorOptions& o;
  std::vector<std::uint32_t> context;  // GloVe ids of the sentence's content words

  double fit(std::uint32_t id, std::uint32_t skip) const {
    double s = 0;
    int n = 0;
    for (auto c : context)
      if (c != skip && c != id) {
        s += r.wv.cosine(id, c);
        ++n;
      }
    return n ? s / n : 0.0;
  }
  double frequency_penalty(std::uint32_t rank) const { return -o.frequency_weight * std::log1p(rank / 1000.0); }
};

// A lemma usable as a substitute: lowercase ASCII words, each a frequent GloVe word. Returns the
// largest GloVe rank among its words (its rarity) or nullopt.
std::optional<std::uint32_t> usable_lemma(std::string_view lemma, std::size_t max_words, const Resources& r, std::size_t max_rank) {
  std::size_t words = 1;
  for (char c : lemma) {
    if (c == '_') ++words;
    else if (!(c >= 'a' && c <= 'z') && c != '-') return std::nullopt;
  }
  if (words > max_words || lemma.empty() || lemma.front() == '_' || lemma.back() == '_') return std::nullopt;
  std::uint32_t worst = 0;
  std::size_t start = 0;
  while (start <= lemma.size()) {
    std::size_t end = lemma.find('_', start);
    if (end == std::string_view::npos) end = lemma.size();
    auto id = r.wv.id(lemma.substr(start, end - start));
    if (!id || *id >= max_rank) return std::nullopt;
    worst = std::max(worst, *id);
    start = end + 1;
  }
  return worst;
}

// The sentence's words, lowercase: substitutes and insertions must not repeat one.
std::unordered_set<std::string> words_of(const std::vector<Token>& toks) {
  std::unordered_set<std::string> out;
  for (const auto& x : toks)
    if (x.word) out.insert(x.lower);
  return out;
}

// A form of "be" or "have" among the two words before toks[i]: an "-ed" verb there is a participle
// ("was painted"), not a past tense, and its substitute must inflect the same way.
bool follows_have_or_be(const std::vector<Token>& toks, std::size_t i) {
  static const std::unordered_set<std::string_view> aux{"is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "'s", "'re"};
  bool after_aux = false;
  for (std::size_t k = i, n = 0; k-- > 0 && n < 2;)
    if (toks[k].word) {
      ++n;
      if (aux.contains(toks[k].lower)) after_aux = true;
    }
  return after_aux;
}

using Lemmas = std::vector<std::pair<std::string, const Synset*>>;  // lemma, the synset it came from

Lemmas lemmas_of(const std::vector<const Synset*>& synsets) {
  Lemmas out;
  for (const Synset* x : synsets)
    for (const auto& l : x->lemmas) out.emplace_back(l, x);
  return out;
}

// WordNet's antonyms are lexical: those of this lemma in sense `s`, plus, for a satellite
// adjective (which has none of its own), those of its head adjective.
Lemmas antonyms_of(const WordNet& wn, const Synset& s, const std::string& lemma, Pos pos) {
  Lemmas ants;
  for (const auto& [src, a] : wn.antonyms(s))
    if (src == lemma) ants.emplace_back(a.lemma, a.synset);
  if (pos == Pos::Adj && s.ss_type == 's')
    for (const Synset* head : wn.similar_tos(s))
      for (const auto& [src, a] : wn.antonyms(*head)) ants.emplace_back(a.lemma, a.synset);
  return ants;
}

// How often WordNet's tagged corpus reads a lemma as `pos`, and as its most frequent other part.
struct PosUsage {
  std::uint32_t mine = 0, other = 0;
};

PosUsage pos_usage(const WordNet& wn, const std::string& lemma, Pos pos) {
  PosUsage u{wn.tagged_count(lemma, pos), 0};
  for (Pos q : lexical::kAllPos)
    if (q != pos) u.other = std::max(u.other, wn.tagged_count(lemma, q));
  return u;
}

// Substitutes for the word toks[index]: WordNet relatives of its senses, inflected like it, that
// GloVe also finds related and that read naturally in its place.
struct SubstituteFinder {
  const std::vector<Token>& toks;
  std::size_t index;
  Pos pos;
  const Scorer& sc;
  std::uint32_t old_id;  // GloVe id of the word being replaced
  double old_fit;  // how well it fits the other content words
  double min_cos;  // least GloVe cosine between the word and a substitute
  bool plural;
  lexical::VerbForm form;
  std::unordered_set<std::string> present;
  std::string prev_word, next_word;
  std::unordered_set<std::string> seen;  // lemmas already considered, by any relation or sense
  std::vector<Candidate>& out;

  SubstituteFinder(const std::vector<Token>& toks_, std::size_t i, Pos pos_, std::uint32_t old_id_, const Scorer& sc_, std::vector<Candidate>& out_)
      : toks(toks_),
        index(i),
        pos(pos_),
        sc(sc_),
        old_id(old_id_),
        old_fit(sc_.fit(old_id_, old_id_)),
        // Verb relations drift off quickly: a closer GloVe neighbour is required.
        min_cos(sc_.o.min_substitute_cosine + (pos_ == Pos::Verb ? 0.1 : 0.0)),
        plural(pos_ == Pos::Noun && lexical::is_plural_of(toks_[i].lower, toks_[i].lemma)),
        form(pos_ == Pos::Verb ? lexical::verb_form_of(toks_[i].lower, toks_[i].lemma, follows_have_or_be(toks_, i), sc_.r.wn) : lexical::VerbForm::Base),
        present(words_of(toks_)),
        prev_word(i > 0 ? toks_[i - 1].lower : ""),
        next_word(i + 1 < toks_.size() ? toks_[i + 1].lower : ""),
        seen{toks_[i].lemma},
        out(out_) {}

  // Adds the candidates among `lemmas` (one relation of sense number `sense`) as edits named `op`.
  void consider(const Lemmas& lemmas, const char* op, std::size_t sense, double bias) {
    for (const auto& [rank, l] : most_frequent(lemmas)) {
      seen.insert(l);
      if (auto c = substitute(l, rank, op, sense, bias)) out.push_back(std::move(*c));
    }
  }

  // The most frequent few usable lemmas of a possibly long list (co-hyponyms of "man": dozens),
  // with their GloVe ranks, most frequent first.
  std::vector<std::pair<std::uint32_t, std::string>> most_frequent(const Lemmas& lemmas) const {
    const Resources& r = sc.r;
    std::vector<std::pair<std::uint32_t, std::string>> ok;
    for (const auto& [l, from] : lemmas) {
      if (seen.contains(l)) continue;
      if (l.size() < 3) continue;  // "ex", "pa": abbreviations read badly
      auto rank = usable_lemma(l, 1, r, sc.o.max_word_rank);
      if (!rank) continue;
      // The substitute must carry this meaning in its most common senses, else the reader sees a
      // different word ("men" -> "hands" through hand = worker, sense 2).
      auto its = r.wn.lemma_synsets(l, pos);
      const auto top = its.begin() + std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(sc.o.substitute_senses), static_cast<std::ptrdiff_t>(its.size()));
      if (std::find(its.begin(), top, from) == top) continue;
      ok.emplace_back(*rank, l);
    }
    std::sort(ok.begin(), ok.end());
    if (ok.size() > 6) ok.resize(6);
    return ok;
  }

  // The sentence with `l` in place of the word, scored; nullopt when `l` does not qualify.
  std::optional<Candidate> substitute(const std::string& l, std::uint32_t rank, const char* op, std::size_t sense, double bias) const {
    const Resources& r = sc.r;
    if ((pos == Pos::Verb && generic_verb(l)) || word_class(l) != Cls::Content || awkward_substitute(l)) return std::nullopt;
    auto new_id = r.wv.id(l);
    // A real but small change: the substitute must be related to the word in GloVe too, which
    // also filters WordNet's rare senses ("package" -> "information").
    if (!new_id || r.wv.cosine(*new_id, old_id) < min_cos) return std::nullopt;
    std::string surface = inflected(l);
    if (repeats_neighbour(surface)) return std::nullopt;
    auto surface_id = r.wv.id(surface);  // the inflected form must be a real, common word ("informations")
    if (!surface_id || *surface_id >= sc.o.max_word_rank) return std::nullopt;
    auto p = plausibility(l, rank, sense, bias);
    if (!p) return std::nullopt;
    Candidate c;
    c.toks = toks;
    c.toks[index].text = surface;
    c.toks[index].lower = surface;
    c.op = op;
    c.plausibility = *p;
    c.toward_frequent = std::max(0.0, std::log10((old_id + 100.0) / (*new_id + 100.0)));
    return c;
  }

  // `l` in the word's number or verb form.
  std::string inflected(const std::string& l) const {
    const WordNet& wn = sc.r.wn;
    return pos == Pos::Noun ? (plural ? lexical::plural_noun(l, wn) : lexical::lemma_text(l))
           : pos == Pos::Verb ? lexical::inflect_verb(l, form, wn)
                              : lexical::lemma_text(l);
  }

  // A substitute that repeats a word of the sentence, or its neighbour, reads as a stutter.
  bool repeats_neighbour(const std::string& surface) const {
    std::string first = surface.substr(0, surface.find(' ')), last = surface.substr(surface.rfind(' ') + 1);
    return present.contains(surface) || first == prev_word || last == next_word || present.contains(last);
  }

  // Relation bias, frequency and sense number, then context fit and part-of-speech usage;
  // nullopt for a lemma never read as this part of speech.
  std::optional<double> plausibility(const std::string& l, std::uint32_t rank, std::size_t sense, double bias) const {
    const Resources& r = sc.r;
    double p = bias + sc.frequency_penalty(rank) - 0.3 * static_cast<double>(sense) + (pos == Pos::Adj ? sc.o.adjective_bias : 0.0);
    // The new word should fit the other content words about as well as the old one did.
    if (l.find('_') == std::string::npos) {
      if (auto id = r.wv.id(l)) p += sc.o.context_weight * (sc.fit(*id, old_id) - old_fit);
      const auto [mine, other] = pos_usage(r.wn, l, pos);
      if (mine == 0 && other > 0) return std::nullopt;  // "longer" as a noun (a yearner): never read that way
      if (other > mine) p -= 0.5;  // "saw" as a noun: more often another part of speech
    }
    return p;
  }
};

void substitutions(const std::vector<Token>& toks, std::size_t i, const Scorer& sc, std::vector<Candidate>& out) {
  const Resources& r = sc.r;
  const Token& t = toks[i];
  const Pos pos = pos_of(t.tag);
  if (pos == Pos::Adj && t.lower != t.lemma) return;  // comparatives/superlatives: leave them
  auto senses = r.wn.lemma_synsets(t.lemma, pos);
  // Verb senses are fine-grained and their relations drift off quickly ("embrace" -> "believe"):
  // only the first sense (and a closer GloVe neighbour, SubstituteFinder::min_cos).
  const std::size_t max_senses = pos == Pos::Verb ? 1 : sc.o.senses;
  if (senses.size() > max_senses) senses.resize(max_senses);
  const auto old_id = r.wv.id(t.lower);
  if (!old_id) return;  // a substitute must be GloVe-related to the word: without its vector, none qualifies
  SubstituteFinder finder(toks, i, pos, *old_id, sc, out);
  for (std::size_t k = 0; k < senses.size(); ++k) {
    const Synset& s = *senses[k];
    finder.consider(lemmas_of({&s}), "synonym", k, sc.o.synonym_bias);
    finder.consider(antonyms_of(r.wn, s, t.lemma, pos), "antonym", k, 0.0);
    finder.consider(lemmas_of(r.wn.hypernyms(s)), "hypernym", k, 0.0);
    finder.consider(lemmas_of(r.wn.hyponyms(s)), "hyponym", k, -0.2);
    finder.consider(lemmas_of(r.wn.co_hyponyms(s)), "cohyponym", k, 0.0);
    if (pos == Pos::Adj) finder.consider(lemmas_of(r.wn.similar_tos(s)), "similar", k, sc.o.synonym_bias);
  }
}

void deletions(const std::vector<Token>& toks, double bias, double adjective_bias, bool delete_adjectives, std::vector<Candidate>& out) {
  if (word_count(toks) < 5) return;
  auto next_word = [&](std::size_t i) -> const Token* {
    for (std::size_t j = i + 1; j < toks.size(); ++j)
      if (toks[j].word) return &toks[j];
      else return nullptr;
    return nullptr;
  };
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const Token& t = toks[i];
    if (!t.word) continue;
    const Token* nx = next_word(i);
    if (delete_adjectives && t.tag == Tag::Adj && nx && (nx->tag == Tag::Noun || nx->tag == Tag::Adj)) {
      Candidate c{toks, "delete-adj", bias + adjective_bias, {}};
      erase_span(c.toks, i, i + 1);
      out.push_back(std::move(c));
    } else if (t.tag == Tag::Adv && (t.lower.ends_with("ly") || t.lower == "very") && i > 0) {
      Candidate c{toks, "delete-adv", bias, {}};
      erase_span(c.toks, i, i + 1);
      out.push_back(std::move(c));
    } else if (t.tag == Tag::Func && t.cls == Cls::Prep && t.lower != "of" && i > 0) {
      // preposition + (det/number)* + (adjective/noun/name)+
      std::size_t j = i + 1;
      while (j < toks.size() && toks[j].word && toks[j].tag == Tag::Func && (toks[j].cls == Cls::Det || toks[j].cls == Cls::Num)) ++j;
      std::size_t head = j;
      bool noun = false;
      while (j < toks.size() && toks[j].word && (toks[j].tag == Tag::Adj || toks[j].tag == Tag::Noun || toks[j].tag == Tag::Proper)) {
        noun = noun || toks[j].tag != Tag::Adj;
        ++j;
      }
      if (!noun || j == head) continue;
      // Only before punctuation, the end or another preposition: "girl with pigtails and wearing"
      // would leave "girl and wearing".
      if (j < toks.size() && toks[j].word && !(toks[j].tag == Tag::Func && toks[j].cls == Cls::Prep)) continue;
      if (j < toks.size() && !toks[j].word && toks[j].text == "," && j + 1 < toks.size() && toks[j + 1].lower == "and") continue;
      if (word_count(toks) - (j - i) < 4) continue;
      Candidate c{toks, "delete-pp", bias, {}};
      erase_span(c.toks, i, j);
      out.push_back(std::move(c));
    }
  }
}

// The adjective set for a noun: walk up the hypernyms of its first sense.
const std::vector<std::uint32_t>& adjectives_for(const Resources& r, const std::string& lemma) {
  auto senses = r.wn.lemma_synsets(lemma, Pos::Noun);
  std::vector<const Synset*> frontier(senses.begin(), senses.begin() + std::min<std::size_t>(1, senses.size()));
  std::unordered_set<std::uint32_t> up;
  for (int depth = 0; depth < 20 && !frontier.empty(); ++depth) {
    std::vector<const Synset*> next;
    for (const Synset* s : frontier) {
      if (!up.insert(s->ref.offset).second) continue;
      for (auto rel : {lexical::Relation::Hypernym, lexical::Relation::InstanceHypernym})
        for (const Synset* h : r.wn.related(*s, rel)) next.push_back(h);
    }
    frontier = std::move(next);
  }
  for (const auto& set : r.adjectives)
    if (set.root == 0 || up.contains(set.root)) return set.ids;
  return r.adjectives.back().ids;
}

void insertions(const std::vector<Token>& toks, const Scorer& sc, std::vector<Candidate>& out) {
  const Resources& r = sc.r;
  const std::unordered_set<std::string> present = words_of(toks);
  int prev = -1;
  for (std::size_t i = 0; i < toks.size(); ++i) {
    if (!toks[i].word) {
      prev = -1;
      continue;
    }
    const Token* p = prev >= 0 ? &toks[static_cast<std::size_t>(prev)] : nullptr;
    prev = static_cast<int>(i);
    if (toks[i].tag != Tag::Noun || !p || p->tag != Tag::Func || !(p->cls == Cls::Det || p->cls == Cls::Num || p->cls == Cls::Prep)) continue;
    auto noun = r.wv.id(toks[i].lower);
    if (!noun) continue;
    const auto& pool = adjectives_for(r, toks[i].lemma);
    std::vector<std::pair<float, std::uint32_t>> best;
    for (auto a : pool) {
      if (present.contains(r.wv.word(a))) continue;
      best.emplace_back(-r.wv.cosine(a, *noun), a);
    }
    std::size_t k = std::min<std::size_t>(6, best.size());
    std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(k), best.end());
    for (std::size_t b = 0; b < k; ++b) {
      std::uint32_t a = best[b].second;
      Candidate c{toks, "insert-adj", 0.0, {}};
      Token adj{r.wv.word(a), " ", true, Tag::Adj, Cls::Content, r.wv.word(a), r.wv.word(a)};
      c.toks.insert(c.toks.begin() + static_cast<std::ptrdiff_t>(i), std::move(adj));
      c.plausibility = sc.frequency_penalty(a) + sc.o.context_weight * (sc.fit(a, *noun) - 0.2) + sc.o.edit_bias + sc.o.adjective_bias;
      out.push_back(std::move(c));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One step: analyse the request -> propose edits -> filter them -> score -> choose.

// The request's sentences, analysed once for every stage.
struct Analysis {
  std::string cur_text, prev_text;  // stripped of generation markup
  std::vector<Token> toks;  // the current sentence, tagged, its first word decapitalised
  bool initial_cap = false;  // the input's first word was capitalised (edits keep that)
  std::unordered_set<std::string> words;  // the current sentence's words, lowercase
  std::unordered_set<std::string> removed;  // content words of the previous sentence it lacks
};

bool first_word_capitalised(const std::vector<Token>& toks) {
  for (const auto& t : toks)
    if (t.word) return starts_upper(t.text);
  return false;
}

// Words the last step removed. The request carries no longer history, so this is all a step can
// know of where the chain has been.
std::unordered_set<std::string> words_removed(const std::string& prev_text, const std::unordered_set<std::string>& now) {
  std::unordered_set<std::string> removed;
  for (const auto& t : tokenize(prev_text))
    if (t.word) {
      std::string low = lower_ascii_utf8(t.text);
      if (!now.contains(low) && word_class(low) == Cls::Content) removed.insert(low);
    }
  return removed;
}

Analysis analyse(const Resources& r, std::string cur_text, std::string prev_text) {
  unicode::require_utf8(cur_text, "lexical generator input");
  Analysis a;
  a.toks = tokenize(cur_text);
  tag(a.toks, r);
  a.initial_cap = first_word_capitalised(a.toks);
  decapitalize_first(a.toks);
  a.words = words_of(a.toks);
  a.removed = words_removed(prev_text, a.words);
  a.cur_text = std::move(cur_text);
  a.prev_text = std::move(prev_text);
  return a;
}

// GloVe ids of the content words: the context a substitute or an inserted adjective must fit.
std::vector<std::uint32_t> content_ids(const std::vector<Token>& toks, const WordVectors& wv) {
  std::vector<std::uint32_t> ids;
  for (const auto& t : toks)
    if (is_content(t))
      if (auto id = wv.id(t.lower)) ids.push_back(*id);
  return ids;
}

// Content words with a WordNet lemma; auxiliaries ("be", "have") carry grammar, not meaning.
bool substitutable(const Token& t) {
  return t.word && (t.tag == Tag::Noun || t.tag == Tag::Verb || t.tag == Tag::Adj || t.tag == Tag::Adv) && !t.lemma.empty() &&
         !(t.tag == Tag::Verb && word_class(t.lemma) == Cls::Aux);
}

std::vector<Candidate> propose(const Analysis& a, const Scorer& sc) {
  std::vector<Candidate> cands;
  for (std::size_t i = 0; i < a.toks.size(); ++i)
    if (substitutable(a.toks[i])) substitutions(a.toks, i, sc, cands);
  deletions(a.toks, sc.o.edit_bias, sc.o.adjective_bias, sc.o.delete_adjectives, cands);
  insertions(a.toks, sc, cands);
  return cands;
}

// Renders a candidate as the chain will see it: articles agreeing, the first word capitalised
// like the input's.
void finish_surface(Candidate& c, const Analysis& a) {
  fix_surface(c.toks, a.initial_cap);
  c.text = strip_generated(render(c.toks));
}

bool brings_back(const Candidate& c, const std::unordered_set<std::string>& removed) {
  for (const auto& t : c.toks)
    if (t.word && removed.contains(t.lower)) return true;
  return false;
}

// Drops no-ops, the previous sentence and duplicates (`texts`: the renderings kept so far).
// Bringing back a word the last step removed undoes that step (little -> big -> little), which
// makes a chain oscillate instead of drifting. Steering away from x_prev is the guidance's job,
// so the penalty scales with g - 1 (none at g = 1).
std::vector<Candidate> keep_new(std::vector<Candidate>& cands, const Analysis& a, const LexicalGeneratorOptions& o, std::unordered_set<std::string>& texts) {
  std::vector<Candidate> kept;
  for (auto& c : cands) {
    finish_surface(c, a);
    if (c.text.empty() || c.text == a.cur_text || c.text == a.prev_text || !texts.insert(c.text).second) continue;
    if (!a.removed.empty() && brings_back(c, a.removed)) c.plausibility -= (o.guidance - 1.0) * o.undo_weight;
    kept.push_back(std::move(c));
  }
  return kept;
}

// Nothing to edit (all function words, unknown words): append an adverbial so the chain still
// moves rather than repeating itself.
std::vector<Candidate> append_adverbials(const Analysis& a, const LexicalGeneratorOptions& o, std::unordered_set<std::string>& texts) {
  const std::vector<Token>& toks = a.toks;
  std::size_t end = toks.size();
  while (end > 0 && !toks[end - 1].word) --end;
  std::vector<Candidate> kept;
  for (const char* phrase : {"today", "again", "outside", "at night", "now", "together", "in the morning", "here"}) {
    Candidate c{toks, "append", o.edit_bias, {}};
    Token t;
    t.text = phrase;
    t.word = true;
    t.space = end > 0 ? toks[end - 1].space : "";
    if (end > 0) c.toks[end - 1].space = " ";
    c.toks.insert(c.toks.begin() + static_cast<std::ptrdiff_t>(end), std::move(t));
    finish_surface(c, a);
    if (c.text == a.cur_text || c.text == a.prev_text || !texts.insert(c.text).second) continue;
    kept.push_back(std::move(c));
  }
  return kept;
}

std::vector<Candidate> filter(std::vector<Candidate> cands, const Analysis& a, const LexicalGeneratorOptions& o) {
  std::unordered_set<std::string> texts;
  std::vector<Candidate> kept = keep_new(cands, a, o, texts);
  if (kept.empty()) kept = append_adverbials(a, o, texts);
  return kept;
}

// Each candidate's cosine similarity to the current and to the previous sentence.
struct Similarities {
  std::vector<double> cur, prev;
};

// By the encoder being trained (the embed callback): the direction the guidance steers in.
Similarities encoder_similarities(const std::vector<Candidate>& kept, const Analysis& a, const LexicalGeneratorOptions& o) {
  Similarities sim{std::vector<double>(kept.size()), std::vector<double>(kept.size())};
  std::vector<std::string> texts_in{a.cur_text, a.prev_text};
  for (const auto& c : kept) texts_in.push_back(c.text);
  auto vecs = o.embed(texts_in);
  if (vecs.size() != texts_in.size()) fail(ErrorCode::Other, "lexical generator: embed callback returned {} vectors for {} texts", vecs.size(), texts_in.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    sim.cur[i] = cosine(vecs[i + 2], vecs[0]);
    sim.prev[i] = cosine(vecs[i + 2], vecs[1]);
  }
  return sim;
}

// Without an encoder: mean GloVe vectors of the sentences' content words.
Similarities glove_similarities(const std::vector<Candidate>& kept, const Analysis& a, const WordVectors& wv) {
  Similarities sim{std::vector<double>(kept.size()), std::vector<double>(kept.size())};
  auto prev_toks = tokenize(a.prev_text);
  for (auto& t : prev_toks)
    if (t.word) t.lower = lower_ascii_utf8(t.text);
  auto vc = sentence_vector(a.toks, wv), vp = sentence_vector(prev_toks, wv);
  for (std::size_t i = 0; i < kept.size(); ++i) {
    auto v = sentence_vector(kept[i].toks, wv);
    sim.cur[i] = cosine(v, vc);
    sim.prev[i] = cosine(v, vp);
  }
  return sim;
}

// The closest GloVe cosine between a word the candidate introduces and a removed word.
double resemblance_to_removed(const Candidate& c, const Analysis& a, const std::vector<std::uint32_t>& removed_ids, const WordVectors& wv) {
  double back = 0;
  for (const auto& t : c.toks) {
    if (!t.word || a.words.contains(t.lower)) continue;
    if (auto id = wv.id(t.lower))
      for (auto rid : removed_ids) back = std::max(back, static_cast<double>(wv.cosine(*id, rid)));
  }
  return back;
}

// Scores every candidate: the guidance direction g*sim(c, cur) - (g-1)*sim(c, prev), over the
// similarity temperature, plus its plausibility after the guidance's word-level penalties.
// Returns (negated score, index into `kept`), best first; ties keep candidate order, so that the
// ranking is deterministic.
std::vector<std::pair<double, std::size_t>> rank_candidates(std::vector<Candidate>& kept, const Similarities& sim, const Analysis& a, const Resources& r,
                                                            const LexicalGeneratorOptions& o) {
  const double g = o.guidance;
  // Word-level analogue of the negative stream: a word the edit introduces should not resemble
  // the words the last step removed (helping -> assisting -> aiding -> helping), weighted by g - 1
  // so that g = 1 stays undirected.
  std::vector<std::uint32_t> removed_ids;
  for (const auto& w : a.removed)
    if (auto id = r.wv.id(w)) removed_ids.push_back(*id);
  std::vector<std::pair<double, std::size_t>> order;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    double direction = g * sim.cur[i] - (g - 1.0) * sim.prev[i];
    if (g > 1.0 && !removed_ids.empty()) kept[i].plausibility -= (g - 1.0) * o.guidance_word_weight * resemblance_to_removed(kept[i], a, removed_ids, r.wv);
    kept[i].plausibility -= (g - 1.0) * o.specificity_weight * kept[i].toward_frequent;
    order.emplace_back(-(direction / o.sim_temperature + kept[i].plausibility), i);
  }
  std::sort(order.begin(), order.end());
  return order;
}

// Samples among the best top_k by exp(score difference / sample_temperature). The uniform comes
// from the request's own seed, so that a chain's step picks the same edit whatever else shares
// its batch. Returns a position in `order`.
std::size_t sample_top_k(const std::vector<std::pair<double, std::size_t>>& order, const LexicalGeneratorOptions& o, const StepRequest& req) {
  std::size_t k = std::max<std::size_t>(1, std::min(o.top_k, order.size()));
  std::vector<double> w(k);
  double total = 0;
  for (std::size_t i = 0; i < k; ++i) total += w[i] = std::exp((order[0].first - order[i].first) / std::max(1e-9, o.sample_temperature));
  const std::uint64_t h = request_seed(o.seed, req.chain_id, req.step);
  double u = static_cast<double>(h >> 11) * 0x1.0p-53 * total;
  std::size_t pick = 0;
  for (; pick + 1 < k; ++pick) {
    if (u < w[pick]) break;
    u -= w[pick];
  }
  return pick;
}

LexicalEdit edit(const Resources& r, const LexicalGeneratorOptions& o, const StepRequest& req) {
  LexicalEdit result;
  result.text = req.current;
  result.operation = "none";
  std::string cur_text = strip_generated(req.current);
  if (cur_text.empty()) return result;
  const Analysis a = analyse(r, std::move(cur_text), strip_generated(req.previous));
  const Scorer sc{r, o, content_ids(a.toks, r.wv)};
  std::vector<Candidate> kept = filter(propose(a, sc), a, o);
  result.candidates = kept.size();
  if (kept.empty()) return result;
  const Similarities sim = o.embed ? encoder_similarities(kept, a, o) : glove_similarities(kept, a, r.wv);
  const auto order = rank_candidates(kept, sim, a, r, o);
  const std::size_t pick = sample_top_k(order, o, req);
  const Candidate& c = kept[order[pick].second];
  result.text = c.text;
  result.operation = c.op;
  result.score = -order[pick].first;
  return result;
}

std::vector<Resources::AdjectiveSet> adjective_sets(const WordVectors& wv) {
  std::vector<Resources::AdjectiveSet> out;
  for (const auto& [root, words] : lexical::insertable_adjectives()) {
    Resources::AdjectiveSet set{root, {}};
    for (const char* w : words)
      if (auto id = wv.id(w)) set.ids.push_back(*id);
    out.push_back(std::move(set));
  }
  return out;
}

class LexicalGenerator final : public SentenceGenerator {
 public:
  LexicalGenerator(std::shared_ptr<const WordNet> wn, std::shared_ptr<const WordVectors> wv, LexicalGeneratorOptions o)
      : wn_(std::move(wn)), wv_(std::move(wv)), options_(std::move(o)), res_{*wn_, *wv_, adjective_sets(*wv_)} {
    if (options_.batch == 0 || options_.batch > generate::kMaxBatch)
      fail(ErrorCode::Usage, "lexical generator: batch must be in [1, {}], got {}", generate::kMaxBatch, options_.batch);
    if (!(options_.guidance >= 1.0) || !std::isfinite(options_.guidance))
      fail(ErrorCode::Usage, "lexical generator: guidance {} must be a finite number >= 1", options_.guidance);
  }
  std::size_t capacity() const override { return options_.batch; }
  void submit(StepRequest request) override {
    if (queue_.size() >= options_.batch) fail(ErrorCode::Other, "lexical generator: submit with {} requests already pending (capacity {})", queue_.size(), options_.batch);
    queue_.push_back(std::move(request));
  }
  std::vector<StepResult> poll() override {
    std::vector<StepResult> out;
    out.reserve(queue_.size());
    for (auto& req : queue_) {
      LexicalEdit e = edit(res_, options_, req);
      out.push_back({req.ticket, e.text, e.operation == "none" ? 0u : 1u, false});
    }
    queue_.clear();
    return out;
  }
  std::size_t pending() const override { return queue_.size(); }
  std::string model_name() const override { return options_.embed ? "lexical:wordnet+glove+encoder" : "lexical:wordnet+glove"; }
  double guidance() const override { return options_.guidance; }

 private:
  std::shared_ptr<const WordNet> wn_;
  std::shared_ptr<const WordVectors> wv_;
  LexicalGeneratorOptions options_;
  Resources res_;
  std::deque<StepRequest> queue_;
};

}  // namespace

std::unique_ptr<SentenceGenerator> make_lexical_generator(std::shared_ptr<const lexical::WordNet> wordnet,
                                                          std::shared_ptr<const lexical::WordVectors> vectors,
                                                          const LexicalGeneratorOptions& options) {
  if (!wordnet || !vectors) fail(ErrorCode::Usage, "lexical generator: WordNet and word vectors are required");
  return std::make_unique<LexicalGenerator>(std::move(wordnet), std::move(vectors), options);
}

std::unique_ptr<SentenceGenerator> make_lexical_generator(const LexicalGeneratorOptions& options) {
  if (options.vectors_dir.empty()) fail(ErrorCode::Usage, "lexical generator: vectors_dir is required (rankemb convert glove)");
  auto wn = std::make_shared<const WordNet>(WordNet::load(options.wordnet_dir));
  auto wv = std::make_shared<const WordVectors>(WordVectors::load(options.vectors_dir));
  return make_lexical_generator(std::move(wn), std::move(wv), options);
}

LexicalEdit lexical_step(const lexical::WordNet& wordnet, const lexical::WordVectors& vectors, const LexicalGeneratorOptions& options,
                         const StepRequest& request) {
  Resources r{wordnet, vectors, adjective_sets(vectors)};
  return edit(r, options, request);
}

}  // namespace rankemb::lexical
