// rankemb::lexical word lists: the small closed-class and curated vocabularies the lexical
// generator needs beside WordNet: function-word classes (never substituted, left out of sentence
// vectors), verbs and words too generic or awkward to substitute, and the descriptive adjectives
// that may be inserted before a noun of a given WordNet category.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace rankemb::lexical {

enum class WordClass : std::uint8_t { Content, Det, Num, Prep, Conj, Pron, Aux, Other };

// The class of a lowercase word; Content for anything not in the closed-class lists.
WordClass word_class(std::string_view lower);
// Verbs too generic to be a meaningful substitute ("do", "make", "go", ...).
bool generic_verb(std::string_view lemma);
// Quantifier-like or vague words that read badly as a substitute ("much", "entity", ...).
bool awkward_substitute(std::string_view lemma);
// (noun synset offset in data.noun, adjectives) in priority order; offset 0 matches any noun.
// GloVe neighbours of a noun include many adjectives that do not modify it naturally ("hard man"),
// so insertions draw from these lists instead.
const std::vector<std::pair<std::uint32_t, std::vector<const char*>>>& insertable_adjectives();

}  // namespace rankemb::lexical
