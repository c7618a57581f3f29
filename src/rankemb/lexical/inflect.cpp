#include "rankemb/lexical/inflect.h"

#include <algorithm>
#include <array>

#include "rankemb/lexical/wordnet.h"

namespace rankemb::lexical {
namespace {

bool is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

int vowel_groups(std::string_view w) {
  int n = 0;
  bool in = false;
  for (char c : w) {
    bool v = is_vowel(c);
    if (v && !in) ++n;
    in = v;
  }
  return n;
}

// One-syllable consonant-vowel-consonant words double their last letter: run -> running.
bool doubles_final(std::string_view w) {
  if (w.size() < 3) return false;
  char a = w[w.size() - 3], b = w[w.size() - 2], c = w.back();
  return !is_vowel(a) && is_vowel(b) && !is_vowel(c) && c != 'w' && c != 'x' && c != 'y' && vowel_groups(w) == 1;
}

std::string regular_plural(std::string_view w) {
  std::string s(w);
  if (s.ends_with("s") || s.ends_with("x") || s.ends_with("z") || s.ends_with("ch") || s.ends_with("sh")) return s + "es";
  if (s.size() >= 2 && s.back() == 'y' && !is_vowel(s[s.size() - 2])) return s.substr(0, s.size() - 1) + "ies";
  if (s.ends_with("man") && s.size() > 3 && s != "human" && s != "german" && s != "shaman" && s != "talisman") return s.substr(0, s.size() - 3) + "men";
  return s + "s";
}

std::string verb_word(std::string_view v, VerbForm form, const WordNet& wn) {
  std::string s(v);
  if (form == VerbForm::Base) return s;
  if (s == "be") {
    switch (form) {
      case VerbForm::ThirdSingular: return "is";
      case VerbForm::Gerund: return "being";
      case VerbForm::Past: return "was";
      default: return "been";
    }
  }
  if (s == "have" && form == VerbForm::ThirdSingular) return "has";
  const auto& exc = wn.exception_forms(s, Pos::Verb);
  if (form == VerbForm::Gerund) {
    for (const auto& f : exc)
      if (f.ends_with("ing")) return f;
    if (s.ends_with("ie")) return s.substr(0, s.size() - 2) + "ying";
    if (s.size() > 2 && s.back() == 'e' && !s.ends_with("ee") && !s.ends_with("ye") && !s.ends_with("oe")) return s.substr(0, s.size() - 1) + "ing";
    if (doubles_final(s)) return s + s.back() + "ing";
    return s + "ing";
  }
  if (form == VerbForm::ThirdSingular) {
    if (s.ends_with("s") || s.ends_with("x") || s.ends_with("z") || s.ends_with("ch") || s.ends_with("sh") || s.ends_with("o")) return s + "es";
    if (s.size() >= 2 && s.back() == 'y' && !is_vowel(s[s.size() - 2])) return s.substr(0, s.size() - 1) + "ies";
    return s + "s";
  }
  // Past / participle: irregular forms from verb.exc (not the -ing or -s ones); a participle
  // prefers the one ending in -n ("eaten", "gone"), a simple past the other ("ate", "went").
  std::vector<std::string> irregular;
  for (const auto& f : exc)
    if (!f.ends_with("ing") && !(f.ends_with("s") && !s.ends_with("s"))) irregular.push_back(f);
  if (!irregular.empty()) {
    bool want_n = form == VerbForm::Participle;
    for (const auto& f : irregular)
      if ((f.ends_with("n") || f.ends_with("ne")) == want_n) return f;
    return irregular.front();
  }
  if (s.back() == 'e') return s + "d";
  if (s.size() >= 2 && s.back() == 'y' && !is_vowel(s[s.size() - 2])) return s.substr(0, s.size() - 1) + "ied";
  if (doubles_final(s)) return s + s.back() + "ed";
  return s + "ed";
}

}  // namespace

std::string lemma_text(std::string_view lemma) {
  std::string s(lemma);
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

std::string plural_noun(std::string_view lemma, const WordNet& wn) {
  std::string s = lemma_text(lemma);
  auto sp = s.rfind(' ');
  std::string head = sp == std::string::npos ? s : s.substr(sp + 1);
  std::string prefix = sp == std::string::npos ? "" : s.substr(0, sp + 1);
  const auto& exc = wn.exception_forms(head, Pos::Noun);
  // noun.exc also lists odd Latin/archaic plurals; take an irregular form only when the regular
  // one is not itself attested as a plural ("fishes"), which keeps "children" and "feet".
  if (head == "person") return prefix + "people";
  std::string regular = regular_plural(head);
  // Forms that merely respell the regular plural ("busses") are not irregular.
  for (const auto& f : exc)
    if (!(f.starts_with(head) && f.ends_with("s")) && std::find(exc.begin(), exc.end(), regular) == exc.end()) return prefix + f;
  return prefix + regular;
}

std::string inflect_verb(std::string_view lemma, VerbForm form, const WordNet& wn) {
  std::string s = lemma_text(lemma);
  auto sp = s.find(' ');
  if (sp == std::string::npos) return verb_word(s, form, wn);
  return verb_word(s.substr(0, sp), form, wn) + s.substr(sp);
}

VerbForm verb_form_of(std::string_view word, std::string_view lemma, bool after_have_or_be, const WordNet& wn) {
  if (word == lemma) return after_have_or_be && (lemma == "come" || lemma == "run" || lemma == "become") ? VerbForm::Participle : VerbForm::Base;
  if (word.ends_with("ing")) return VerbForm::Gerund;
  if (word.ends_with("s") && !word.ends_with("ss")) {
    const auto& exc = wn.exception_forms(lemma, Pos::Verb);
    if (std::find(exc.begin(), exc.end(), word) == exc.end()) return VerbForm::ThirdSingular;
  }
  return after_have_or_be ? VerbForm::Participle : VerbForm::Past;
}

bool is_plural_of(std::string_view word, std::string_view lemma) {
  if (word == lemma) return false;
  // Any other surface form of a noun lemma is a plural (morphy only maps plurals to nouns).
  return true;
}

bool takes_an(std::string_view w) {
  std::string s;
  for (char c : w) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s.empty()) return false;
  static const std::array<std::string_view, 6> silent_h{"hour", "honest", "honor", "honour", "heir", "herb"};
  for (auto h : silent_h)
    if (s.starts_with(h)) return true;
  static const std::array<std::string_view, 9> consonant_u{"uni", "use", "usu", "uti", "ura", "ure", "euro", "eu", "one"};
  for (auto u : consonant_u)
    if (s.starts_with(u)) return false;
  if (s.size() == 1) return std::string_view("aefhilmnorsx").find(s[0]) != std::string_view::npos;  // letter names
  return is_vowel(s[0]);
}

}  // namespace rankemb::lexical
