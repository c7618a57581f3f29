// Byte-pair encoding (Hugging Face "BPE" model) for both flavours: byte-level (GPT-2, Llama-3,
// Qwen: regex pre-tokenizer, bytes mapped to printable characters) and SentencePiece-style
// (Llama-2, Mistral, TinyStories: "▁" for spaces, byte fallback). One merge core serves both:
// the pair with the lowest merge rank merges first (leftmost on ties), results cached per word.
#include <algorithm>
#include <array>
#include <climits>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/text/detail/bpe_impl.h"
#include "rankemb/text/detail/loaders.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::text::detail {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

// Open-addressing hash map (token pair) -> (rank, merged id); the merge lookup is the hot loop.
class MergeMap {
 public:
  struct Merge {
    std::int32_t rank;
    TokenId id;
  };

  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    keys_.assign(cap, kEmpty);
    vals_.assign(cap, {});
    mask_ = cap - 1;
  }
  // A later duplicate pair overwrites the earlier one, as a Rust HashMap collect does.
  void insert(TokenId a, TokenId b, Merge m) {
    std::uint64_t k = key(a, b);
    for (std::size_t i = slot(k);; i = (i + 1) & mask_) {
      if (keys_[i] == kEmpty || keys_[i] == k) {
        keys_[i] = k;
        vals_[i] = m;
        return;
      }
    }
  }
  const Merge* find(TokenId a, TokenId b) const {
    std::uint64_t k = key(a, b);
    for (std::size_t i = slot(k);; i = (i + 1) & mask_) {
      if (keys_[i] == k) return &vals_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  static std::uint64_t key(TokenId a, TokenId b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  std::size_t slot(std::uint64_t k) const { return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> 32) & mask_; }
  std::vector<std::uint64_t> keys_{kEmpty};
  std::vector<Merge> vals_{1};
  std::size_t mask_ = 0;
};

// Word -> ids cache shared by all threads; sharded so that parallel encoders rarely contend.
class WordCache {
 public:
  static constexpr std::size_t kMaxWordBytes = 256;

  bool get(std::string_view word, std::vector<TokenId>& out) const {
    Shard& s = shard(word);
    std::lock_guard lock(s.mutex);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void put(std::string_view word, const TokenId* ids, std::size_t n) const {
    if (word.size() >= kMaxWordBytes) return;
    Shard& s = shard(word);
    std::lock_guard lock(s.mutex);
    if (s.map.size() >= kMaxEntriesPerShard) return;  // full: stop growing, like HF's cache
    s.map.try_emplace(std::string(word), ids, ids + n);
  }

 private:
  static constexpr std::size_t kShards = 16, kMaxEntriesPerShard = 8192;
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>> map;
  };
  Shard& shard(std::string_view w) const { return shards_[StringHash{}(w) % kShards]; }
  mutable std::array<Shard, kShards> shards_;
};

// llama.cpp's clean_spaces (llama_vocab::impl::detokenize), pass for pass over the bytes: drops
// the space before ? ! . , ; around a lone apostrophe (" ' " -> "'"); before 's 'm 're 've.
void clean_spaces(std::string& text) {
  const auto pass = [&](auto keep) {
    const std::size_t n = text.size();
    std::size_t total = n ? 1 : 0;
    for (std::size_t i = 1; i < n; ++i) i = keep(i, total);
    text.resize(total);
  };
  pass([&](std::size_t i, std::size_t& total) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    text[total++] = x;
    return i;
  });
  pass([&](std::size_t i, std::size_t& total) {
    const char x = text[i];
    if (x == '\'' && i + 1 < text.size() && text[i - 1] == ' ' && text[i + 1] == ' ') {
      --total;
      text[++i] = '\0';  // the space after it is skipped
    }
    text[total++] = x;
    return i;
  });
  pass([&](std::size_t i, std::size_t& total) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < text.size()) {
      const char x1 = text[i + 1];
      const char x2 = i + 2 < text.size() ? text[i + 2] : '\0';
      if (x1 == 's' || x1 == 'm' || (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
    }
    text[total++] = x;
    return i;
  });
}

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer() { raw_match_normalized_added_ = false; }

  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const override;
  std::size_t vocab_size() const override { return id_to_token_.size(); }
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;
  std::string_view kind() const override { return pre_.byte_level() ? "byte-bpe" : "sp-bpe"; }

  // Reads model.vocab / model.merges (merge k has rank k) and the BPE options.
  void load_model(const json& model, const std::string& file);
  void load_vocab(const json& vocab, const std::string& file, const std::string& field);
  void reserve_merges(std::size_t n) { merges_.reserve(n); }
  void add_merge(std::string_view a, std::string_view b, std::size_t rank, const std::string& where);
  // After vocab, pipelines and added tokens are in place: lookup tables, normalized patterns.
  void finish();
  void set_special(TokenId SpecialTokens::*field, const std::string& token);

  Normalizer normalizer_;
  PreTokenizer pre_;
  Decoder decoder_;
  bool clean_spaces_ = false;       // BpeExtras::clean_spaces
  std::vector<float> piece_scores_;  // BpeExtras::piece_scores
  using Tokenizer::added_;
  using Tokenizer::load_hf_common;
  using Tokenizer::specials_;
  using Tokenizer::template_;

 protected:
  void encode_tokens(std::string_view text, std::vector<TokenId>& out) const override;

 private:
  void encode_normalized(std::string_view text, bool at_input_start, std::vector<TokenId>& out) const;
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;
  void initial_symbols(std::string_view word, std::vector<TokenId>& syms) const;
  void merge_short(std::vector<TokenId>& syms) const;
  void merge_long(std::vector<TokenId>& syms) const;
  void merge_by_scores(std::string_view word, std::vector<TokenId>& syms) const;

  Vocab vocab_;
  std::vector<std::string> id_to_token_;  // model vocabulary; added tokens fill their own ids
  MergeMap merges_;
  std::optional<std::string> unk_token_;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::array<TokenId, 256> byte_ids_{};      // byte-level: id of each byte's mapped character
  bool byte_ids_complete_ = false;           // every byte has one, so words need no lookups
  std::array<TokenId, 256> fallback_ids_{};  // "<0xNN>" tokens, -1 where absent

  struct AddedDecode {
    std::string text;  // what decode() emits: the content, normalized for normalized tokens
    bool skippable;    // removed by skip_special_tokens
  };
  std::unordered_map<TokenId, AddedDecode> added_decode_;
  std::vector<std::string> normalized_texts_;  // storage for normalized_matcher_
  AddedMatcher normalized_matcher_;
  WordCache cache_;
};

void BpeTokenizer::load_vocab(const json& vocab, const std::string& file, const std::string& field) {
  if (!vocab.is_object()) fail(ErrorCode::ModelFormat, "{}: {} must be an object of token -> id", file, field);
  vocab_.reserve(vocab.size());
  std::size_t size = 0;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > INT32_MAX) {
      fail(ErrorCode::ModelFormat, "{}: {}[{:?}]: expected a non-negative integer id, got {}", file, field, token, id.dump());
    }
    auto v = id.get<TokenId>();
    vocab_.emplace(token, v);
    size = std::max(size, static_cast<std::size_t>(v) + 1);
  }
  id_to_token_.assign(size, std::string());
  for (const auto& [token, id] : vocab_) id_to_token_[id] = token;
}

void BpeTokenizer::add_merge(std::string_view a, std::string_view b, std::size_t rank, const std::string& where) {
  auto ia = vocab_.find(a), ib = vocab_.find(b);
  if (ia == vocab_.end()) fail(ErrorCode::ModelFormat, "{}: token {:?} is not in the vocabulary", where, a);
  if (ib == vocab_.end()) fail(ErrorCode::ModelFormat, "{}: token {:?} is not in the vocabulary", where, b);
  std::string merged(a);
  merged += b.substr(std::min(prefix_.size(), b.size()));
  auto im = vocab_.find(merged);
  if (im == vocab_.end()) fail(ErrorCode::ModelFormat, "{}: merged token {:?} is not in the vocabulary", where, merged);
  merges_.insert(ia->second, ib->second, {static_cast<std::int32_t>(rank), im->second});
}

void BpeTokenizer::load_model(const json& model, const std::string& file) {
  auto string_or_null = [&](const char* key) -> std::optional<std::string> {
    auto it = model.find(key);
    if (it == model.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail(ErrorCode::ModelFormat, "{}: model.{} must be a string or null", file, key);
    return it->get<std::string>();
  };
  auto flag = [&](const char* key) {
    auto it = model.find(key);
    if (it == model.end() || it->is_null()) return false;
    if (!it->is_boolean()) fail(ErrorCode::ModelFormat, "{}: model.{} must be a boolean", file, key);
    return it->get<bool>();
  };
  unk_token_ = string_or_null("unk_token");
  prefix_ = string_or_null("continuing_subword_prefix").value_or("");
  suffix_ = string_or_null("end_of_word_suffix").value_or("");
  byte_fallback_ = flag("byte_fallback");
  fuse_unk_ = flag("fuse_unk");
  ignore_merges_ = flag("ignore_merges");

  auto vit = model.find("vocab");
  if (vit == model.end()) fail(ErrorCode::ModelFormat, "{}: model.vocab is missing", file);
  load_vocab(*vit, file, "model.vocab");
  if (unk_token_ && !vocab_.contains(*unk_token_)) {
    fail(ErrorCode::ModelFormat, "{}: model.unk_token {:?} is not in model.vocab", file, *unk_token_);
  }

  auto mit = model.find("merges");
  if (mit == model.end()) fail(ErrorCode::ModelFormat, "{}: model.merges is missing", file);
  if (!mit->is_array()) fail(ErrorCode::ModelFormat, "{}: model.merges must be an array", file);
  merges_.reserve(mit->size());
  for (std::size_t k = 0; k < mit->size(); ++k) {
    const json& m = (*mit)[k];
    std::string where = fmt::format("{}: model.merges[{}]", file, k);
    if (m.is_string()) {
      const auto& s = m.get_ref<const std::string&>();
      auto sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        fail(ErrorCode::ModelFormat, "{}: expected \"<a> <b>\", got {:?}", where, s);
      }
      add_merge(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1), k, where);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      add_merge(m[0].get_ref<const std::string&>(), m[1].get_ref<const std::string&>(), k, where);
    } else {
      fail(ErrorCode::ModelFormat, "{}: expected \"<a> <b>\" or [a, b], got {}", where, m.dump());
    }
  }
}

void BpeTokenizer::finish() {
  // Byte-level words start as one symbol per byte; resolve those symbols once.
  byte_ids_complete_ = pre_.byte_level() && prefix_.empty() && suffix_.empty();
  std::string tmp;
  for (int b = 0; b < 256; ++b) {
    tmp.clear();
    unicode::append_utf8(tmp, byte_to_unicode()[b]);
    auto it = vocab_.find(tmp);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
    if (it == vocab_.end()) byte_ids_complete_ = false;
    auto fb = vocab_.find(fmt::format("<0x{:02X}>", b));
    fallback_ids_[b] = fb == vocab_.end() ? -1 : fb->second;
  }
  // Hugging Face matches normalized added tokens in normalized text, in their normalized form, and
  // that form is also what decode() shows for them (so skip_special_tokens only drops those the
  // normalizer leaves unchanged).
  normalized_texts_.clear();
  normalized_texts_.reserve(added_.size());
  for (const auto& a : added_) {
    std::string text = a.normalized && !normalizer_.empty() ? normalizer_.run(a.content) : a.content;
    if (a.id < 0) fail(ErrorCode::ModelFormat, "added token {:?} has a negative id", a.content);
    if (static_cast<std::size_t>(a.id) >= id_to_token_.size()) id_to_token_.resize(a.id + 1);
    if (id_to_token_[a.id].empty()) id_to_token_[a.id] = text;
    added_decode_[a.id] = {text, a.special && text == a.content};
    normalized_texts_.push_back(std::move(text));
  }
  normalized_matcher_ = {};
  for (std::size_t k = 0; k < added_.size(); ++k) {
    if (added_[k].normalized) normalized_matcher_.add(normalized_texts_[k], &added_[k]);
  }
}

void BpeTokenizer::set_special(TokenId SpecialTokens::*field, const std::string& token) {
  if (auto id = token_to_id(token)) specials_.*field = *id;
}

std::optional<TokenId> BpeTokenizer::token_to_id(std::string_view token) const {
  for (const auto& a : added_) {
    if (a.content == token) return a.id;
  }
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::id_to_token(TokenId id) const {
  if (auto it = added_decode_.find(id); it != added_decode_.end()) return it->second.text;
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size() || id_to_token_[id].empty()) {
    fail(ErrorCode::Input, "token id {} is out of range (vocabulary size {})", id, id_to_token_.size());
  }
  return id_to_token_[id];
}

std::string BpeTokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (TokenId id : ids) {
    if (auto it = added_decode_.find(id); it != added_decode_.end()) {
      if (skip_special_tokens && it->second.skippable) continue;
      tokens.push_back(it->second.text);
      continue;
    }
    tokens.push_back(id_to_token(id));
  }
  std::string text = decoder_.run(std::move(tokens));
  if (clean_spaces_) clean_spaces(text);
  return text;
}

void BpeTokenizer::encode_tokens(std::string_view text, std::vector<TokenId>& out) const {
  const bool at_start = starts_input(text);
  std::string normalized;
  if (!normalizer_.empty()) {
    normalized = normalizer_.run(text);
    text = normalized;
  }
  if (text.empty()) return;
  if (normalized_matcher_.patterns.empty()) {
    encode_normalized(text, at_start, out);
    return;
  }
  split_added(
      text, normalized_matcher_,
      [&](std::string_view piece) { encode_normalized(piece, at_start && piece.data() == text.data(), out); }, out);
}

void BpeTokenizer::encode_normalized(std::string_view text, bool at_input_start, std::vector<TokenId>& out) const {
  if (pre_.empty()) {
    encode_word(text, out);
    return;
  }
  thread_local std::string buf;
  thread_local std::vector<Span> pieces;
  buf.assign(text);
  pieces.assign(1, Span{0, static_cast<std::uint32_t>(text.size())});
  pre_.run(buf, pieces, at_input_start);
  for (const Span& p : pieces) encode_word(std::string_view(buf).substr(p.begin, p.end - p.begin), out);
}

// Symbols of a word before any merge: one per character (byte-level: per byte), with unknown
// characters as byte-fallback tokens or (fused) unk, exactly as HF's BPE::merge_word starts.
void BpeTokenizer::initial_symbols(std::string_view word, std::vector<TokenId>& syms) const {
  syms.clear();
  if (byte_ids_complete_) {
    for (char c : word) syms.push_back(byte_ids_[static_cast<unsigned char>(c)]);
    return;
  }
  thread_local std::string mapped, piece;
  if (pre_.byte_level()) {
    mapped.clear();
    for (char c : word) unicode::append_utf8(mapped, byte_to_unicode()[static_cast<unsigned char>(c)]);
    word = mapped;
  }
  std::optional<TokenId> unk_id;
  if (unk_token_) unk_id = vocab_.find(*unk_token_)->second;
  bool pending_unk = false;  // an unk symbol not yet pushed (fuse_unk merges consecutive ones)
  for (std::size_t pos = 0; pos < word.size();) {
    std::size_t len = unicode::utf8_length(static_cast<unsigned char>(word[pos]));
    std::string_view ch = word.substr(pos, len);
    bool first = pos == 0, last = pos + len >= word.size();
    pos += len;
    std::string_view key = ch;
    if ((!first && !prefix_.empty()) || (last && !suffix_.empty())) {
      piece.assign(first ? std::string_view() : std::string_view(prefix_));
      piece += ch;
      if (last) piece += suffix_;
      key = piece;
    }
    if (auto it = vocab_.find(key); it != vocab_.end()) {
      if (pending_unk) syms.push_back(*unk_id);
      pending_unk = false;
      syms.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char b : key) all &= fallback_ids_[static_cast<unsigned char>(b)] >= 0;
      if (all) {
        // HF pushes the byte tokens without flushing a pending unk first; keep that order.
        for (char b : key) syms.push_back(fallback_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
    }
    if (unk_id) {
      if (pending_unk && !fuse_unk_) syms.push_back(*unk_id);
      pending_unk = true;
    }
  }
  if (pending_unk) syms.push_back(*unk_id);
}

// Words of up to a few dozen symbols: cached pair ranks and a linear scan for the best pair.
void BpeTokenizer::merge_short(std::vector<TokenId>& syms) const {
  thread_local std::vector<std::int32_t> ranks;
  thread_local std::vector<TokenId> merged_ids;
  const std::size_t n = syms.size();
  ranks.resize(n);
  merged_ids.resize(n);
  auto update = [&](std::size_t i) {
    const MergeMap::Merge* m = i + 1 < syms.size() ? merges_.find(syms[i], syms[i + 1]) : nullptr;
    ranks[i] = m ? m->rank : INT32_MAX;
    merged_ids[i] = m ? m->id : -1;
  };
  for (std::size_t i = 0; i < n; ++i) update(i);
  for (;;) {
    std::size_t best = 0;
    std::int32_t best_rank = INT32_MAX;
    for (std::size_t i = 0; i + 1 < syms.size(); ++i) {
      if (ranks[i] < best_rank) {
        best_rank = ranks[i];
        best = i;
      }
    }
    if (best_rank == INT32_MAX) break;
    syms[best] = merged_ids[best];
    syms.erase(syms.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    merged_ids.erase(merged_ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    update(best);
    if (best > 0) update(best - 1);
  }
}

// Long words (e.g. a whole sentence without a pre-tokenizer): a heap of candidate merges ordered
// by (rank, position) over a linked list of symbols; stale candidates are skipped when popped.
void BpeTokenizer::merge_long(std::vector<TokenId>& syms) const {
  struct Node {
    TokenId id;
    std::int32_t prev, next;
  };
  struct Cand {
    std::int32_t rank, pos;
    TokenId id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const auto n = static_cast<std::int32_t>(syms.size());
  std::vector<Node> nodes(syms.size());
  std::vector<Cand> heap;
  heap.reserve(syms.size());
  auto push = [&](std::int32_t pos) {
    std::int32_t next = nodes[pos].next;
    if (next < 0) return;
    if (const auto* m = merges_.find(nodes[pos].id, nodes[next].id)) {
      heap.push_back({m->rank, pos, m->id});
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  };
  for (std::int32_t i = 0; i < n; ++i) nodes[i] = {syms[i], i - 1, i + 1 < n ? i + 1 : -1};
  for (std::int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    Cand c = heap.back();
    heap.pop_back();
    Node& node = nodes[c.pos];
    if (node.id < 0 || node.next < 0) continue;
    const auto* m = merges_.find(node.id, nodes[node.next].id);
    if (!m || m->id != c.id || m->rank != c.rank) continue;
    std::int32_t gone = node.next;
    node.id = c.id;
    node.next = nodes[gone].next;
    nodes[gone].id = -1;
    if (node.next >= 0) nodes[node.next].prev = c.pos;
    if (node.prev >= 0) push(node.prev);
    push(c.pos);
  }
  syms.clear();
  for (std::int32_t i = 0; i >= 0; i = nodes[i].next) syms.push_back(nodes[i].id);
}

// SentencePiece by scores, as llama.cpp's llm_tokenizer_spm_session: symbols start as the word's
// characters (whether or not each is a token); the adjacent pair whose joined text is a token with
// the highest score merges first, the leftmost on equal scores; a candidate whose symbols changed
// since it was queued is skipped. What remains is each symbol's token, or its bytes as <0xXX>
// tokens (unk where a byte token is missing).
void BpeTokenizer::merge_by_scores(std::string_view word, std::vector<TokenId>& syms) const {
  struct Symbol {
    std::uint32_t begin, end;  // bytes of `word`; begin == end once merged into its left neighbour
    std::int32_t prev, next;
  };
  struct Candidate {
    float score;
    std::int32_t left, right;
    std::uint32_t bytes;
    bool operator<(const Candidate& o) const { return score < o.score || (score == o.score && left > o.left); }
  };
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Candidate> heap;
  sym.clear();
  heap.clear();
  for (std::uint32_t pos = 0; pos < word.size();) {
    const auto len = static_cast<std::uint32_t>(std::min<std::size_t>(unicode::utf8_length(static_cast<unsigned char>(word[pos])), word.size() - pos));
    const auto i = static_cast<std::int32_t>(sym.size());
    sym.push_back({pos, pos + len, i - 1, i + 1});
    pos += len;
  }
  if (sym.empty()) return syms.clear();
  sym.back().next = -1;
  const auto consider = [&](std::int32_t left, std::int32_t right) {
    if (left < 0 || right < 0) return;
    const std::string_view joined = word.substr(sym[left].begin, sym[right].end - sym[left].begin);
    if (auto it = vocab_.find(joined); it != vocab_.end()) {
      heap.push_back({piece_scores_[static_cast<std::size_t>(it->second)], left, right, static_cast<std::uint32_t>(joined.size())});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(sym.size()); ++i) consider(i, i + 1);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& l = sym[c.left];
    Symbol& r = sym[c.right];
    if (l.begin == l.end || r.begin == r.end || (l.end - l.begin) + (r.end - r.begin) != c.bytes) continue;
    l.end = r.end;
    r.begin = r.end;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  syms.clear();
  const std::optional<TokenId> unk = unk_token_ ? std::optional(vocab_.find(*unk_token_)->second) : std::nullopt;
  for (std::int32_t i = 0; i >= 0; i = sym[i].next) {
    const std::string_view text = word.substr(sym[i].begin, sym[i].end - sym[i].begin);
    if (auto it = vocab_.find(text); it != vocab_.end()) {
      syms.push_back(it->second);
      continue;
    }
    for (char b : text) {
      const TokenId id = fallback_ids_[static_cast<unsigned char>(b)];
      if (id >= 0) syms.push_back(id);
      else if (unk) syms.push_back(*unk);
    }
  }
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  // The cache holds what the rest of this function produces, so it may answer first.
  if (word.size() < WordCache::kMaxWordBytes && cache_.get(word, out)) return;
  if (ignore_merges_) {
    // A word that is itself a token is emitted whole (Llama-3), without running the merges.
    if (pre_.byte_level()) {
      thread_local std::string mapped;
      mapped.clear();
      for (char c : word) unicode::append_utf8(mapped, byte_to_unicode()[static_cast<unsigned char>(c)]);
      if (auto it = vocab_.find(mapped); it != vocab_.end()) {
        out.push_back(it->second);
        cache_.put(word, &it->second, 1);
        return;
      }
    } else if (auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      cache_.put(word, &it->second, 1);
      return;
    }
  }
  thread_local std::vector<TokenId> syms;
  if (!piece_scores_.empty()) {
    merge_by_scores(word, syms);
  } else {
    initial_symbols(word, syms);
    if (syms.size() > 64) merge_long(syms);
    else if (syms.size() > 1) merge_short(syms);
  }
  out.insert(out.end(), syms.begin(), syms.end());
  cache_.put(word, syms.data(), syms.size());
}

// bos/eos/unk/pad from tokenizer_config.json next to tokenizer.json (strings or {"content": ...}).
void read_tokenizer_config(BpeTokenizer& t, const fs::path& file) {
  fs::path cfg_path = file.parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (!fs::exists(cfg_path, ec)) return;
  json cfg = io::read_json(cfg_path);
  if (!cfg.is_object()) return;
  auto read = [&](const char* key, TokenId SpecialTokens::*field) {
    auto it = cfg.find(key);
    if (it == cfg.end()) return;
    if (it->is_string()) t.set_special(field, it->get<std::string>());
    else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) t.set_special(field, (*it)["content"].get<std::string>());
  };
  read("bos_token", &SpecialTokens::bos);
  read("eos_token", &SpecialTokens::eos);
  read("unk_token", &SpecialTokens::unk);
  read("pad_token", &SpecialTokens::pad);
}

}  // namespace

std::unique_ptr<Tokenizer> make_bpe(const json& tj, const fs::path& file, const SpecialTokens* specials, const BpeExtras& extras) {
  const std::string name = file.string();
  auto t = std::make_unique<BpeTokenizer>();
  t->clean_spaces_ = extras.clean_spaces;
  t->piece_scores_.assign(extras.piece_scores.begin(), extras.piece_scores.end());
  try {
    t->load_model(tj.at("model"), name);
    if (!t->piece_scores_.empty() && t->piece_scores_.size() < t->vocab_size())
      fail(ErrorCode::ModelFormat, "{}: {} piece scores for {} tokens", name, t->piece_scores_.size(), t->vocab_size());
    if (auto it = tj.find("normalizer"); it != tj.end()) t->normalizer_.parse(*it, name);
    if (auto it = tj.find("pre_tokenizer"); it != tj.end()) t->pre_.parse(*it, name);
    if (auto it = tj.find("decoder"); it != tj.end()) t->decoder_.parse(*it, name);
    t->load_hf_common(tj, name);
    t->finish();
    if (const auto& unk = tj.at("model").find("unk_token"); unk != tj.at("model").end() && unk->is_string()) {
      t->set_special(&SpecialTokens::unk, unk->get<std::string>());
    }
    if (specials) t->specials_ = *specials;
    else read_tokenizer_config(*t, file);
    if (t->specials_.bos < 0 && t->template_.prefix.size() == 1) t->specials_.bos = t->template_.prefix[0];
  } catch (const json::exception& e) {
    fail(ErrorCode::ModelFormat, "{}: {}", name, e.what());
  }
  return t;
}

std::unique_ptr<Tokenizer> make_gpt2_bpe_files(const fs::path& vocab_json, const fs::path& merges_txt) {
  auto t = std::make_unique<BpeTokenizer>();
  t->load_vocab(io::read_json(vocab_json), vocab_json.string(), "vocabulary");
  const std::string text = io::read_file(merges_txt);
  std::size_t n_lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  // Merge ranks follow line order; the "#version" header and blank lines are not merges.
  std::vector<std::pair<std::string_view, std::size_t>> lines;  // line, line number
  lines.reserve(n_lines);
  for (std::size_t pos = 0, line_no = 1; pos <= text.size(); ++line_no) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    if (line.empty() || line.starts_with("#version")) continue;
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos) {
      fail(ErrorCode::ModelFormat, "{}:{}: expected \"<a> <b>\", got {:?}", merges_txt.string(), line_no, line);
    }
    lines.emplace_back(line, line_no);
  }
  t->reserve_merges(lines.size());
  for (std::size_t k = 0; k < lines.size(); ++k) {
    auto [line, line_no] = lines[k];
    auto sp = line.find(' ');
    t->add_merge(line.substr(0, sp), line.substr(sp + 1), k, fmt::format("{}:{}", merges_txt.string(), line_no));
  }
  t->pre_.add_byte_level(false, true);
  t->decoder_.add_byte_level();
  if (auto id = t->token_to_id("<|endoftext|>")) {
    t->added_.push_back(AddedToken{.content = "<|endoftext|>", .id = *id, .special = true});
    t->specials_.bos = t->specials_.eos = t->specials_.unk = *id;
  }
  t->finish();
  return t;
}

}  // namespace rankemb::text::detail
