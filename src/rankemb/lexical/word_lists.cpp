#include "rankemb/lexical/word_lists.h"

#include <unordered_map>
#include <unordered_set>

namespace rankemb::lexical {

// Closed-class words: never substituted, not part of the sentence vector (they barely move the
// meaning and would dilute the content words' mean).
WordClass word_class(std::string_view w) {
  static const std::unordered_map<std::string_view, WordClass> table = [] {
    std::unordered_map<std::string_view, WordClass> t;
    for (auto w : {"a", "an", "the", "this", "that", "these", "those", "some", "any", "each", "every", "no", "another", "its",
                   "his", "her", "their", "our", "my", "your", "'s", "all"})
      t[w] = WordClass::Det;
    for (auto w : {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "several", "many", "few",
                   "both", "multiple", "numerous", "dozens", "hundreds"})
      t[w] = WordClass::Num;
    for (auto w : {"in", "on", "at", "with", "near", "by", "under", "behind", "inside", "outside", "of", "for", "from", "into",
                   "onto", "over", "through", "across", "along", "around", "beside", "between", "toward", "towards",
                   "against", "during", "underneath", "beneath", "above", "below", "past", "among", "without", "upon",
                   "next", "atop", "like", "about", "off", "out"})
      t[w] = WordClass::Prep;
    for (auto w : {"and", "or", "but", "while", "as", "because", "so", "who", "which", "where", "when", "whose", "if", "than",
                   "then", "whilst", "yet"})
      t[w] = WordClass::Conj;
    for (auto w : {"he", "she", "it", "they", "we", "i", "you", "him", "them", "me", "us", "someone", "something", "somebody",
                   "everyone", "nobody", "nothing", "himself", "herself", "themselves", "itself", "one's", "each other"})
      t[w] = WordClass::Pron;
    for (auto w : {"is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had", "do", "does", "did", "will",
                   "would", "can", "could", "should", "may", "might", "must", "'re", "'m", "'ve", "'ll", "'d"})
      t[w] = WordClass::Aux;
    for (auto w : {"not", "n't", "to", "there", "here", "very", "too", "also", "just", "only", "up", "down", "away", "back",
                   "together", "other", "such", "own", "same", "what", "how", "why", "whether"})
      t[w] = WordClass::Other;
    return t;
  }();
  auto it = table.find(w);
  return it == table.end() ? WordClass::Content : it->second;
}

// Verbs too generic to be a meaningful substitute (WordNet hypernyms of many verbs).
bool generic_verb(std::string_view v) {
  static const std::unordered_set<std::string_view> g{"be", "have", "do", "make", "go", "get", "take", "give", "include", "put",
                                                      "set", "come", "let", "second", "use", "move", "act", "cause", "change",
                                                      "is", "hold", "keep", "pass", "run", "turn", "work", "perform", "see",
                                                      "try", "attempt", "think", "promote", "seem", "become", "start", "begin"};
  return g.contains(v);
}

// Quantifier-like or vague words that read badly in an adjective or noun slot ("a much song").
bool awkward_substitute(std::string_view w) {
  static const std::unordered_set<std::string_view> bad{"many", "much", "other", "such", "same", "own", "more", "most", "less",
                                                        "least", "few", "several", "certain", "whole", "entire", "thing",
                                                        "being", "entity", "object", "whole", "unit", "organism", "someone"};
  return bad.contains(w);
}

const std::vector<std::pair<std::uint32_t, std::vector<const char*>>>& insertable_adjectives() {
  static const std::vector<std::pair<std::uint32_t, std::vector<const char*>>> lists{
      {3051540, {"red", "blue", "black", "white", "green", "yellow", "pink", "purple", "orange", "striped", "colorful", "new", "old",
                 "dirty", "warm", "long", "short", "bright", "dark"}},                                     // clothing
      {7846, {"young", "old", "elderly", "tall", "happy", "blond", "little", "older", "younger", "tired", "busy", "sad", "angry",
              "pretty", "strong", "lonely", "proud", "excited", "friendly", "bald", "small", "large"}},   // person
      {15388, {"small", "big", "black", "white", "brown", "young", "wet", "little", "large", "happy", "hungry", "spotted", "old"}},  // animal
      {21265, {"hot", "fresh", "cold", "delicious", "sweet", "warm", "large", "small", "homemade"}},      // food
      {7555863, {"hot", "fresh", "cold", "delicious", "sweet", "warm", "large", "small", "homemade"}},    // solid food
      {17222, {"green", "tall", "small", "large", "dry", "tiny", "young", "old"}},                       // plant
      {27167, {"busy", "crowded", "quiet", "empty", "dark", "sunny", "large", "small", "open", "local", "beautiful", "narrow"}},  // location
      {21939, {"small", "large", "big", "old", "new", "red", "blue", "black", "white", "wooden", "metal", "broken", "empty",
               "heavy", "green", "yellow", "tiny"}},                                                     // artifact
      {0, {"small", "large", "big", "old", "new", "little", "strange"}}};
  return lists;
}

}  // namespace rankemb::lexical
