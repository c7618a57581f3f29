// rankemb::lexical inflection: the small English morphology the lexical generator needs to put a
// substituted WordNet lemma into the slot of the word it replaces (plural nouns, verb forms) and
// to keep articles in agreement (a/an). Regular rules plus WordNet's exception lists (noun.exc,
// verb.exc read backwards: base -> irregular forms). Lemmas may be multi-word ("ice_cream"); the
// output uses spaces.
#pragma once

#include <string>
#include <string_view>

namespace rankemb::lexical {

class WordNet;

enum class VerbForm { Base, ThirdSingular, Gerund, Past, Participle };

// "dog" -> "dogs", "box" -> "boxes", "baby" -> "babies", "woman" -> "women", "child" -> "children";
// a multi-word lemma inflects its last word ("hot_dog" -> "hot dogs").
std::string plural_noun(std::string_view lemma, const WordNet& wn);
// "run" -> "running" / "runs" / "ran" / "run"; a multi-word lemma inflects its first word
// ("pick_up" -> "picking up").
std::string inflect_verb(std::string_view lemma, VerbForm form, const WordNet& wn);
// The form of `word` given its lemma (`word` lowercase): "runs"/"run" -> ThirdSingular, "ran" -> Past.
// `after_have_or_be` picks Participle over Past for "-ed" and irregular past forms.
VerbForm verb_form_of(std::string_view word, std::string_view lemma, bool after_have_or_be, const WordNet& wn);
// True when `word` (lowercase) is a plural form of the noun `lemma`.
bool is_plural_of(std::string_view word, std::string_view lemma);
// "an" when `next_word` starts with a vowel sound by spelling rules ("an apple", "an hour",
// "a unicorn", "a one-way"), else "a".
bool takes_an(std::string_view next_word);
// Lemma "hot_dog" -> "hot dog".
std::string lemma_text(std::string_view lemma);

}  // namespace rankemb::lexical
