// The Universal Sentence Encoder Lite tokenizer: a SentencePiece unigram vocabulary (vocab.json,
// a JSON array of [piece, score] pairs) segmented exactly as the package family's own JavaScript
// tokenizer does (@energetic-ai/embeddings 0.2.0, dist/index.js, itself Google's tfjs-models
// universal-sentence-encoder tokenizer). It is not SentencePiece's own decoder: several quirks of
// the JS code change ids, and the model was served with these ids, so they are reproduced here.
//
// The algorithm as the JS package implements it
// - Vocabulary: entry i has id i. Entries 0..5 are reserved ("\uFFFD" = unknown, "<s>", "</s>",
//   extra_token_id_1..3) and never matched in text; entries 6.. go into a trie keyed by code
//   point. A piece listed twice takes the score and id of its last occurrence (the real file has
//   "”5" at ids 230, 238 and 4464; 4464 wins). A null score counts as 0 (JS `null + x`); the real
//   file has seven (":", "://", "▁:", ...).
// - Input: String.normalize("NFKC"); if the result is non-empty, prepend "▁" (U+2581) and replace
//   every U+0020 (only that: tabs, newlines, other spaces stay as they are) by "▁". Runs of
//   spaces therefore give runs of "▁". Empty input gives no ids at all.
// - Symbols: the string iterated by code point (`for...of`), so an emoji is one symbol.
// - Lattice: for each start position, every vocabulary piece that is a prefix of the rest; if
//   none, one unknown candidate of length 1 with score 0 and id 0.
// - Best path: for end = 0..n, for start ascending, candidate score = piece score + best[start];
//   it replaces best[end] when best[end] == 0 (0 means "unset", so a position whose best sum is
//   exactly 0, or that no candidate reaches, is overwritten by the next candidate whatever its
//   score) or when score >= best[end] (ties go to the later start, i.e. the shorter piece).
// - Backtrack from n: emit words[pos], step back by the UTF-16 length (JS String.length) of that
//   piece's text; a position no candidate reached emits id 0 and steps back by the unknown
//   piece's length (1). Then adjacent unknown ids (0) collapse into one, and the list is reversed.
// - The embedder adds nothing: no <s>/</s>, no padding, no truncation. For a batch it feeds the
//   graph a sparse pair: "values" int32 [N] = all texts' ids concatenated, "indices" int32 [N, 2]
//   = [text index, position in text] for each id (an empty text contributes no rows).
//
// NFKC comes from utf8proc (rankemb::unicode); the fixture's reference ran under node's ICU, so a
// character whose decomposition changed between those Unicode versions could differ.
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/text/detail/loaders.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::text::detail {

namespace {

using nlohmann::json;

constexpr TokenId kUnkId = 0;
constexpr std::size_t kReservedCount = 6;  // ids never matched in text (JS RESERVED_SYMBOLS_COUNT)
constexpr char32_t kSeparator = U'\u2581';

class UseUnigram final : public Tokenizer {
 public:
  explicit UseUnigram(const std::filesystem::path& file) {
    const std::string name = file.string();
    json vocab = io::read_json(file);
    if (!vocab.is_array()) fail(ErrorCode::ModelFormat, "{}: expected a JSON array of [piece, score] pairs, got {}", name, vocab.type_name());
    if (vocab.empty()) fail(ErrorCode::ModelFormat, "{}: the vocabulary is empty", name);
    pieces_.reserve(vocab.size());
    utf16_len_.reserve(vocab.size());
    nodes_.push_back({});
    for (std::size_t i = 0; i < vocab.size(); ++i) {
      const json& e = vocab[i];
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !(e[1].is_number() || e[1].is_null())) {
        fail(ErrorCode::ModelFormat, "{}: entry {}: expected [piece, score] (string, number), got {}", name, i, e.dump());
      }
      std::string piece = e[0].get<std::string>();
      if (piece.empty()) fail(ErrorCode::ModelFormat, "{}: entry {}: empty piece", name, i);
      if (auto bad = unicode::find_invalid_utf8(piece)) {
        fail(ErrorCode::ModelFormat, "{}: entry {}: piece is not valid UTF-8 at byte {}", name, i, *bad);
      }
      const double score = e[1].is_null() ? 0.0 : e[1].get<double>();
      std::u32string cps = unicode::to_u32(piece);
      std::size_t units = 0;
      for (char32_t cp : cps) units += cp > 0xFFFF ? 2 : 1;
      utf16_len_.push_back(units);
      const auto id = static_cast<TokenId>(i);
      if (i >= kReservedCount) insert(cps, score, id);
      piece_to_id_[piece] = id;  // last occurrence wins, as in the trie
      pieces_.push_back(std::move(piece));
    }
    specials_.unk = kUnkId;
    if (pieces_.size() > 1) specials_.bos = 1;
    if (pieces_.size() > 2) specials_.eos = 2;
  }

  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const override {
    std::string joined;
    for (TokenId id : ids) {
      check_id(id);
      // Reserved control ids carry no text; the unknown id stands for text that was lost, so it stays.
      if (skip_special_tokens && id != kUnkId && static_cast<std::size_t>(id) < kReservedCount) continue;
      joined += pieces_[static_cast<std::size_t>(id)];
    }
    std::string out;
    out.reserve(joined.size());
    static constexpr std::string_view kSepUtf8 = "\u2581";
    for (std::size_t i = 0; i < joined.size();) {
      if (joined.compare(i, kSepUtf8.size(), kSepUtf8) == 0) {
        out += ' ';
        i += kSepUtf8.size();
      } else {
        out += joined[i++];
      }
    }
    const auto first = out.find_first_not_of(' ');
    if (first == std::string::npos) return {};
    return out.substr(first, out.find_last_not_of(' ') - first + 1);
  }

  std::size_t vocab_size() const override { return pieces_.size(); }

  std::optional<TokenId> token_to_id(std::string_view token) const override {
    auto it = piece_to_id_.find(std::string(token));
    if (it == piece_to_id_.end()) return std::nullopt;
    return it->second;
  }

  std::string id_to_token(TokenId id) const override {
    check_id(id);
    return pieces_[static_cast<std::size_t>(id)];
  }

  std::string_view kind() const override { return "use-unigram"; }

 protected:
  void encode_tokens(std::string_view text, std::vector<TokenId>& out) const override {
    const std::string normalized = unicode::normalize(text, unicode::NormalForm::NFKC);
    if (normalized.empty()) return;
    std::u32string symbols;
    symbols.reserve(normalized.size() + 1);
    symbols.push_back(kSeparator);
    for (char32_t cp : unicode::to_u32(normalized)) symbols.push_back(cp == U' ' ? kSeparator : cp);
    const std::size_t n = symbols.size();

    // Candidates bucketed by end position; within a bucket they stay in ascending start order,
    // which is the order the JS `for (startPos in nodes[endPos])` visits them.
    struct Candidate {
      std::uint32_t start;
      TokenId id;
      double score;
    };
    std::vector<std::uint32_t> bucket_start(n + 2, 0);
    std::vector<std::pair<std::uint32_t, Candidate>> found;  // (end, candidate) in start order
    found.reserve(n * 4);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t before = found.size();
      std::int32_t node = 0;
      for (std::size_t j = i; j < n; ++j) {
        node = child(node, symbols[j]);
        if (node < 0) break;
        const Node& nd = nodes_[static_cast<std::size_t>(node)];
        if (nd.end) found.push_back({static_cast<std::uint32_t>(j + 1), {static_cast<std::uint32_t>(i), nd.id, nd.score}});
      }
      if (found.size() == before) found.push_back({static_cast<std::uint32_t>(i + 1), {static_cast<std::uint32_t>(i), kUnkId, 0.0}});
    }
    for (const auto& f : found) ++bucket_start[f.first + 1];
    for (std::size_t e = 1; e < bucket_start.size(); ++e) bucket_start[e] += bucket_start[e - 1];
    std::vector<Candidate> by_end(found.size());
    {
      std::vector<std::uint32_t> fill(bucket_start.begin(), bucket_start.end() - 1);
      for (const auto& f : found) by_end[fill[f.first]++] = f.second;
    }

    std::vector<double> best(n + 1, 0.0);
    std::vector<TokenId> words(n + 1, kUnkId);
    for (std::size_t end = 1; end <= n; ++end) {
      for (std::uint32_t k = bucket_start[end]; k < bucket_start[end + 1]; ++k) {
        const Candidate& c = by_end[k];
        const double score = c.score + best[c.start];
        if (best[end] == 0.0 || score >= best[end]) {
          best[end] = score;
          words[end] = c.id;
        }
      }
    }

    std::vector<TokenId> path;
    for (std::ptrdiff_t pos = static_cast<std::ptrdiff_t>(n); pos > 0;) {
      const TokenId id = words[static_cast<std::size_t>(pos)];
      path.push_back(id);
      pos -= static_cast<std::ptrdiff_t>(utf16_len_[static_cast<std::size_t>(id)]);
    }
    const std::size_t first_out = out.size();
    bool previous_unk = false;
    for (TokenId id : path) {
      if (!(previous_unk && id == kUnkId)) out.push_back(id);
      previous_unk = id == kUnkId;
    }
    std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first_out), out.end());
  }

 private:
  struct Node {
    bool end = false;
    double score = 0.0;
    TokenId id = kUnkId;
  };

  static std::uint64_t edge_key(std::int32_t node, char32_t cp) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(node)) << 21) | static_cast<std::uint64_t>(cp);
  }

  std::int32_t child(std::int32_t node, char32_t cp) const {
    auto it = edges_.find(edge_key(node, cp));
    return it == edges_.end() ? -1 : it->second;
  }

  void insert(const std::u32string& cps, double score, TokenId id) {
    std::int32_t node = 0;
    for (char32_t cp : cps) {
      auto [it, added] = edges_.try_emplace(edge_key(node, cp), static_cast<std::int32_t>(nodes_.size()));
      if (added) nodes_.push_back({});
      node = it->second;
    }
    Node& nd = nodes_[static_cast<std::size_t>(node)];
    nd.end = true;
    nd.score = score;
    nd.id = id;
  }

  void check_id(TokenId id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= pieces_.size()) {
      fail(ErrorCode::Input, "token id {} is out of range [0, {})", id, pieces_.size());
    }
  }

  std::vector<std::string> pieces_;
  std::vector<std::size_t> utf16_len_;  // JS String.length of each piece: the backtracking step
  std::unordered_map<std::string, TokenId> piece_to_id_;
  std::vector<Node> nodes_;  // trie; node 0 is the root
  std::unordered_map<std::uint64_t, std::int32_t> edges_;  // (node, code point) -> child node
};

}  // namespace

std::unique_ptr<Tokenizer> make_use_unigram(const std::filesystem::path& vocab_json) {
  return std::make_unique<UseUnigram>(vocab_json);
}

}  // namespace rankemb::text::detail
