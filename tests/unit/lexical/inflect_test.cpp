// Inflection rules used to re-inflect substitutes: plurals, verb forms (with verb.exc / noun.exc
// irregulars) and a/an agreement.
#include <gtest/gtest.h>

#include "rankemb/lexical/inflect.h"
#include "rankemb/lexical/wordnet.h"

namespace rankemb::lexical {
namespace {

const WordNet& wordnet() {
  static const WordNet wn = WordNet::load("/usr/share/wordnet");
  return wn;
}

TEST(Inflect, PluralNouns) {
  const auto& wn = wordnet();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"dog", "dogs"},     {"box", "boxes"},       {"baby", "babies"}, {"woman", "women"}, {"child", "children"},
      {"person", "people"}, {"hot_dog", "hot dogs"}, {"man", "men"},   {"human", "humans"}, {"foot", "feet"},
      {"boy", "boys"},     {"church", "churches"}, {"mouse", "mice"},  {"bus", "buses"}};
  for (const auto& [lemma, plural] : cases) EXPECT_EQ(plural_noun(lemma, wn), plural) << lemma;
}

TEST(Inflect, VerbForms) {
  const auto& wn = wordnet();
  struct Case {
    const char* lemma;
    VerbForm form;
    const char* want;
  };
  const std::vector<Case> cases{
      {"run", VerbForm::Gerund, "running"},      {"sit", VerbForm::Gerund, "sitting"},     {"make", VerbForm::Gerund, "making"},
      {"lie", VerbForm::Gerund, "lying"},        {"play", VerbForm::Gerund, "playing"},    {"see", VerbForm::Gerund, "seeing"},
      {"visit", VerbForm::Gerund, "visiting"},   {"run", VerbForm::ThirdSingular, "runs"}, {"go", VerbForm::ThirdSingular, "goes"},
      {"carry", VerbForm::ThirdSingular, "carries"}, {"watch", VerbForm::ThirdSingular, "watches"},
      {"have", VerbForm::ThirdSingular, "has"},  {"go", VerbForm::Past, "went"},           {"eat", VerbForm::Past, "ate"},
      {"eat", VerbForm::Participle, "eaten"},    {"walk", VerbForm::Past, "walked"},       {"stop", VerbForm::Past, "stopped"},
      {"carry", VerbForm::Past, "carried"},      {"smile", VerbForm::Past, "smiled"},      {"pick_up", VerbForm::Gerund, "picking up"},
      {"stand", VerbForm::Base, "stand"},        {"throw", VerbForm::Participle, "thrown"}};
  for (const auto& c : cases) EXPECT_EQ(inflect_verb(c.lemma, c.form, wn), c.want) << c.lemma;
}

TEST(Inflect, DetectsVerbForms) {
  const auto& wn = wordnet();
  EXPECT_EQ(verb_form_of("running", "run", false, wn), VerbForm::Gerund);
  EXPECT_EQ(verb_form_of("rides", "ride", false, wn), VerbForm::ThirdSingular);
  EXPECT_EQ(verb_form_of("ran", "run", false, wn), VerbForm::Past);
  EXPECT_EQ(verb_form_of("thrown", "throw", true, wn), VerbForm::Participle);
  EXPECT_EQ(verb_form_of("sit", "sit", false, wn), VerbForm::Base);
}

TEST(Inflect, Articles) {
  for (const char* w : {"apple", "hour", "elephant", "honest", "Umbrella", "old", "X", "item"}) EXPECT_TRUE(takes_an(w)) << w;
  for (const char* w : {"dog", "unicorn", "university", "one", "European", "user", "house", "B", "young"}) EXPECT_FALSE(takes_an(w)) << w;
}

}  // namespace
}  // namespace rankemb::lexical
