// rankemb::lexical WordNet: an in-memory reader of the WordNet 3.0 database files (index.*,
// data.*, *.exc as shipped by Debian's wordnet-base in /usr/share/wordnet) for the offline chain
// generator. It owns the lexical relations the generator edits with (synonyms = lemmas of a
// synset, hypernyms, hyponyms, co-hyponyms, antonyms, similar-to) and morphy-style lemmatization.
// Semantics follow NLTK's WordNetCorpusReader (its `synsets` and `_morphy`), which the parity test
// checks against; relation lists are returned in data-file order (NLTK sorts them by name).
// Everything is parsed eagerly at load (~0.5 s) so that all queries are const and thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rankemb::lexical {

// The four index parts of speech (adjective satellites live with the adjectives).
enum class Pos : std::uint8_t { Noun = 0, Verb = 1, Adj = 2, Adv = 3 };
inline constexpr std::array<Pos, 4> kAllPos{Pos::Noun, Pos::Verb, Pos::Adj, Pos::Adv};
char pos_char(Pos pos);  // 'n' 'v' 'a' 'r'

// The pointer symbols the generator uses; everything else is kept as Other.
enum class Relation : std::uint8_t { Hypernym, InstanceHypernym, Hyponym, InstanceHyponym, Antonym, SimilarTo, Other };

struct SynsetRef {
  Pos file = Pos::Noun;       // which data file (satellites: Adj)
  std::uint32_t offset = 0;   // byte offset of the synset's line in that file
  bool operator==(const SynsetRef&) const = default;
};

struct Pointer {
  Relation relation = Relation::Other;
  SynsetRef target;
  std::uint8_t source_word = 0;  // 1-based lemma number in this synset; 0 = the whole synset
  std::uint8_t target_word = 0;  // 1-based lemma number in the target synset; 0 = semantic pointer
};

struct Synset {
  SynsetRef ref;
  char ss_type = 'n';                // n v a s r
  std::vector<std::string> lemmas;   // data-file order, adjective markers like "(a)" removed
  std::vector<Pointer> pointers;     // data-file order
  std::string id() const;            // "<ss_type><8-digit offset>", e.g. "n02084071"
};

// An antonym: the lemma `lemma` of `synset`.
struct LemmaRef {
  const Synset* synset = nullptr;
  std::string lemma;
};

class WordNet {
 public:
  // Reads index.{noun,verb,adj,adv}, data.* and *.exc from `dir`. Throws Error(Input) when a file
  // is missing and Error(ModelFormat) naming "file:line" on malformed data.
  static WordNet load(const std::filesystem::path& dir);

  // NLTK `_morphy(form, pos)`: the exception list's bases (when `form` is an exception) or the
  // one-step suffix rewrites of `form`, preceded by `form` itself, keeping those that are lemmas
  // of `pos`, without duplicates, in that order. `form` is used as given (lowercase it first).
  std::vector<std::string> morphy(std::string_view form, Pos pos) const;
  // NLTK `synsets(word, pos)`: lowercases `word`, then the synsets of each morphy lemma in sense
  // order. Multi-word lemmas use '_' ("ice_cream").
  std::vector<const Synset*> synsets(std::string_view word, Pos pos) const;
  // Synsets of an exact lemma (no morphy), sense order.
  std::vector<const Synset*> lemma_synsets(std::string_view lemma, Pos pos) const;
  // Tagged-sense count of the lemma (a corpus-frequency proxy; 0 when untagged or absent).
  std::uint32_t tagged_count(std::string_view lemma, Pos pos) const;
  // The inflected forms whose exception-list base is `base` ("go" -> "went", "gone", ...), in
  // exception-file order. Used to re-inflect substitutes.
  const std::vector<std::string>& exception_forms(std::string_view base, Pos pos) const;

  const Synset& synset(SynsetRef ref) const;  // throws Error(ModelFormat) for a dangling ref
  std::vector<const Synset*> related(const Synset& s, Relation relation) const;
  std::vector<const Synset*> hypernyms(const Synset& s) const { return related(s, Relation::Hypernym); }
  std::vector<const Synset*> hyponyms(const Synset& s) const { return related(s, Relation::Hyponym); }
  std::vector<const Synset*> similar_tos(const Synset& s) const { return related(s, Relation::SimilarTo); }
  // Siblings: hyponyms of each hypernym, without `s`, without duplicates.
  std::vector<const Synset*> co_hyponyms(const Synset& s) const;
  // Lexical antonyms of every lemma of `s` (pairs: source lemma, antonym), data-file order.
  std::vector<std::pair<std::string, LemmaRef>> antonyms(const Synset& s) const;

  std::size_t synset_count() const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
  struct IndexEntry {
    std::vector<std::uint32_t> offsets;
    std::uint32_t tagged = 0;
  };

  void load_index(const std::filesystem::path& path, Pos pos);
  void load_data(const std::filesystem::path& path, Pos pos);
  void load_exceptions(const std::filesystem::path& path, Pos pos);

  std::array<StringMap<IndexEntry>, 4> index_;
  std::array<std::vector<Synset>, 4> synsets_;  // per data file, in file order
  std::array<std::unordered_map<std::uint32_t, std::uint32_t>, 4> by_offset_;
  std::array<StringMap<std::vector<std::string>>, 4> exceptions_;  // inflected -> bases
  std::array<StringMap<std::vector<std::string>>, 4> inflections_;  // base -> inflected
};

}  // namespace rankemb::lexical
