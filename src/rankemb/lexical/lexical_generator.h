// The offline chain-step backend (issue 7): rewrites the current sentence with one lexical edit
// drawn from WordNet (synonym, hypernym, hyponym, co-hyponym, antonym substitution), a deletion
// (adverb, prepositional phrase; adjective optionally) or an insertion (an adjective before a noun), keeping
// the sentence well-formed (inflection, a/an, capitalisation, punctuation). Direction control
// mirrors the LLM backend's classifier-free guidance in embedding space: each candidate c of x_cur
// (previous x_prev) scores g*sim(c, x_cur) - (g-1)*sim(c, x_prev) plus a plausibility term, so
// g = 1 is "closest plausible edit" and g > 1 keeps moving away from where the chain came from.
// sim is the cosine of mean GloVe vectors, or of an injected sentence encoder. No libtorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rankemb/generate/sentence_generator.h"
#include "rankemb/util/types.h"

namespace rankemb::lexical {

class WordNet;
class WordVectors;
using generate::SentenceGenerator;
using generate::StepRequest;

struct LexicalGeneratorOptions {
  std::filesystem::path wordnet_dir = "/usr/share/wordnet";
  std::filesystem::path vectors_dir;  // output of `rankemb convert glove` (vocab.txt + embeddings.safetensors)
  double guidance = 1.5;              // g; 1 = no direction
  std::uint64_t seed = 0;
  std::size_t batch = 64;             // capacity(): requests per poll()
  // Optional sentence encoder for sim(); empty = mean of unit GloVe vectors of the content words.
  // Called once per request with [cur, prev, candidates...], so results do not depend on batching.
  EmbedFn embed;
  // Scoring knobs. score = direction / sim_temperature + plausibility; the pick is sampled from
  // the top_k candidates with probabilities softmax(score / sample_temperature).
  double sim_temperature = 0.05;
  double sample_temperature = 0.5;
  std::size_t top_k = 4;
  std::size_t senses = 3;             // WordNet senses of a word considered (sense order = frequency)
  std::size_t max_word_rank = 40000;  // new words must be among this many most frequent GloVe words
  double frequency_weight = 0.5;      // penalty per log(1 + rank/1000) of an introduced word
  double context_weight = 2.0;        // reward per unit of GloVe cosine to the other content words
  double min_substitute_cosine = 0.3; // GloVe cosine a substitute must have with the word it replaces
  double edit_bias = -0.3;            // added to deletions and insertions (they carry less meaning)
  // Subtracted, times (g - 1), when an edit brings back a word the last step removed.
  double undo_weight = 4.0;
  // Adjective edits (insert, delete, swap) barely move a sentence vector, so without a handicap
  // they win most steps and chains oscillate between "little"/"big"/"" instead of drifting.
  double adjective_bias = -1.0;
  std::size_t substitute_senses = 1;  // a substitute's meaning must be among its first N senses
  // Synonym (and adjective similar-to) swaps keep the meaning, so they are not a chain step's
  // "small real change" and they cycle (helping -> assisting -> aiding -> helping).
  double synonym_bias = -1.5;
  // Weight of the word-level guidance term: -(g-1) * weight * max cosine between a word the edit
  // introduces and the words the last step removed.
  double guidance_word_weight = 4.0;
  // Deleting an adjective undoes an insertion of an earlier step (chains fall back to the seed);
  // with it off, every remaining edit type has no inverse except substitution, which the guidance
  // terms steer. PP and adverb deletions stay (nothing inserts those).
  bool delete_adjectives = false;
  // A consistent direction for the whole chain, the lexical stand-in for what the negative stream
  // gives an LLM: with g > 1 substitutions toward more frequent (more generic) words pay
  // (g - 1) * weight * log10(rank ratio). Without it, chains drift out and then back to the seed's
  // common words (person -> leader -> ... -> person), since a request carries no older history.
  double specificity_weight = 8.0;
};

// Loads WordNet and the vectors once; the returned backend is single-threaded per instance.
std::unique_ptr<SentenceGenerator> make_lexical_generator(const LexicalGeneratorOptions& options);
// With resources already loaded (tests, several generators sharing one copy).
std::unique_ptr<SentenceGenerator> make_lexical_generator(std::shared_ptr<const lexical::WordNet> wordnet,
                                                          std::shared_ptr<const lexical::WordVectors> vectors,
                                                          const LexicalGeneratorOptions& options);

// One step without the queue: the edit the backend returns for this request (tests, tools).
struct LexicalEdit {
  std::string text;        // == current when no edit was possible
  std::string operation;   // "synonym", "hypernym", "hyponym", "cohyponym", "antonym", "similar",
                           // "delete-adj", "delete-adv", "delete-pp", "insert-adj", "append" (last
                           // resort when nothing is editable), or "none"
  double score = 0;
  std::size_t candidates = 0;
};
LexicalEdit lexical_step(const lexical::WordNet& wordnet, const lexical::WordVectors& vectors,
                         const LexicalGeneratorOptions& options, const StepRequest& request);

}  // namespace rankemb::lexical
