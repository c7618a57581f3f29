// A toy CausalLm and byte tokenizer for the guided-generation tests, mirrored exactly by
// scripts/regen/llm_guided.py. The logits of a slot depend on the slot's whole token history
// (FNV-1a hash), so any mix-up of slots, a token fed twice or a token missing changes them.
// The fake records every forward call and the history of every slot it clears.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "rankemb/models/causal_lm.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace rankemb::test {

// Ids: 0 "<s>" (BOS, the post-processor prefix), 1 "</s>" (EOS), 2 "<|eot|>" (end of turn),
// 3 "<|sep|>" (special, not a stop token), 4 + b for byte b.
class ByteTokenizer final : public text::Tokenizer {
 public:
  static constexpr std::int64_t kVocab = 260;
  ByteTokenizer() {
    const char* names[] = {"<s>", "</s>", "<|eot|>", "<|sep|>"};
    for (int i = 0; i < 4; ++i) {
      text::AddedToken t;
      t.content = names[i];
      t.id = i;
      t.special = true;
      added_.push_back(t);
    }
    specials_.bos = 0;
    specials_.eos = 1;
    template_.prefix = {0};
  }
  std::string decode(std::span<const text::TokenId> ids, bool skip_special_tokens = true) const override {
    std::string out;
    for (auto id : ids) {
      if (id < 0 || id >= kVocab) fail(ErrorCode::Input, "unknown id {}", id);
      if (id < 4) {
        if (!skip_special_tokens) out += added_[static_cast<std::size_t>(id)].content;
      } else {
        out += static_cast<char>(id - 4);
      }
    }
    return out;
  }
  std::size_t vocab_size() const override { return kVocab; }
  std::optional<text::TokenId> token_to_id(std::string_view token) const override {
    for (const auto& t : added_)
      if (t.content == token) return t.id;
    if (token.size() == 1) return 4 + static_cast<unsigned char>(token[0]);
    return std::nullopt;
  }
  std::string id_to_token(text::TokenId id) const override {
    if (id < 4) return added_[static_cast<std::size_t>(id)].content;
    return std::string(1, static_cast<char>(id - 4));
  }
  std::string_view kind() const override { return "test-bytes"; }

 protected:
  void encode_tokens(std::string_view text, std::vector<text::TokenId>& out) const override {
    for (unsigned char c : text) out.push_back(4 + c);
  }
};

inline std::uint64_t toy_mix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The toy's next-token logits after `history` (see scripts/regen/llm_guided.py).
inline std::vector<float> toy_logits(std::span<const std::int64_t> history) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (auto t : history) h = (h ^ static_cast<std::uint64_t>(t)) * 0x100000001B3ull;
  std::vector<float> out(ByteTokenizer::kVocab);
  for (std::int64_t v = 0; v < ByteTokenizer::kVocab; ++v) {
    std::uint64_t q = toy_mix(h + static_cast<std::uint64_t>(v) * 0x9E3779B97F4A7C15ull) % 257;
    bool printable = v >= 4 && v - 4 >= 0x20 && v - 4 <= 0x7E;
    out[static_cast<std::size_t>(v)] = printable ? (static_cast<float>(q) - 128.0f) / 32.0f : -8.0f + static_cast<float>(q) / 256.0f;
  }
  return out;
}

class FakeCausalLm final : public models::CausalLm {
 public:
  FakeCausalLm() {
    config_.model_type = "llama";
    config_.vocab_size = ByteTokenizer::kVocab;
    stops_ = {1, 2};
  }

  const models::HfConfig& config() const override { return config_; }
  const text::Tokenizer* tokenizer() const override { return with_tokenizer ? &tokenizer_ : nullptr; }
  std::int64_t vocab_size() const override { return ByteTokenizer::kVocab; }
  const std::vector<std::int64_t>& stop_token_ids() const override { return stops_; }

  void reserve(std::size_t n_slots, std::size_t max_tokens) override {
    ++reserve_calls;
    histories_.assign(n_slots, {});
    max_tokens_ = max_tokens;
  }
  std::size_t n_slots() const override { return histories_.size(); }
  void clear(std::size_t slot) override {
    check_slot(slot);
    cleared.push_back(histories_[slot]);
    histories_[slot].clear();
  }
  std::size_t length(std::size_t slot) const override {
    check_slot(slot);
    return histories_[slot].size();
  }

  torch::Tensor forward(const std::vector<std::size_t>& slots, const std::vector<std::vector<std::int64_t>>& tokens,
                        bool all_positions = false) override {
    RANKEMB_CHECK(slots.size() == tokens.size() && !slots.empty(), ErrorCode::Usage, "fake forward: bad batch");
    RANKEMB_CHECK(!all_positions, ErrorCode::Usage, "fake forward: all_positions not supported");
    std::vector<std::size_t> seen;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      check_slot(slots[i]);
      for (auto s : seen) RANKEMB_CHECK(s != slots[i], ErrorCode::Usage, "fake forward: slot {} twice", s);
      seen.push_back(slots[i]);
      RANKEMB_CHECK(!tokens[i].empty(), ErrorCode::Usage, "fake forward: no tokens for slot {}", slots[i]);
      RANKEMB_CHECK(histories_[slots[i]].size() + tokens[i].size() <= max_tokens_, ErrorCode::Usage,
                    "fake forward: slot {} over {} tokens", slots[i], max_tokens_);
    }
    Call call;
    torch::Tensor out = torch::empty({static_cast<std::int64_t>(slots.size()), ByteTokenizer::kVocab});
    for (std::size_t i = 0; i < slots.size(); ++i) {
      auto& h = histories_[slots[i]];
      h.insert(h.end(), tokens[i].begin(), tokens[i].end());
      call.slots.push_back(slots[i]);
      call.n_tokens.push_back(tokens[i].size());
      std::vector<float> row = toy_logits(h);
      if (auto it = forced.find(h.size()); it != forced.end()) row[static_cast<std::size_t>(it->second)] = 50.0f;
      std::copy(row.begin(), row.end(), out[static_cast<std::int64_t>(i)].data_ptr<float>());
    }
    calls.push_back(std::move(call));
    return out;
  }

  std::size_t busy_slots() const {
    std::size_t n = 0;
    for (const auto& h : histories_) n += !h.empty();
    return n;
  }

  struct Call {
    std::vector<std::size_t> slots;
    std::vector<std::size_t> n_tokens;
  };
  std::vector<Call> calls;
  std::vector<std::vector<std::int64_t>> cleared;  // histories of cleared slots, in clear order
  std::map<std::size_t, std::int64_t> forced;      // history length -> token whose logit becomes 50
  int reserve_calls = 0;
  bool with_tokenizer = true;

 private:
  void check_slot(std::size_t slot) const {
    RANKEMB_CHECK(slot < histories_.size(), ErrorCode::Usage, "fake: slot {} of {}", slot, histories_.size());
  }
  models::HfConfig config_;
  ByteTokenizer tokenizer_;
  std::vector<std::int64_t> stops_;
  std::vector<std::vector<std::int64_t>> histories_;
  std::size_t max_tokens_ = 0;
};

}  // namespace rankemb::test
