// The Llama-family decoder behind CausalLm (see causal_lm.h): weights by Hugging Face name, a KV
// cache pool shaped [n_slots, kv_heads, max_tokens, head_dim] per layer, and one batched forward
// pass for any mix of prefill and decode slots.
//
// Batching: the N new tokens of a call are packed ([N, hidden], no padding), so embedding,
// norms, projections and the MLP only see real tokens, and the output head only runs on the
// positions whose logits are returned. Attention runs per group of slots with the same number
// of new tokens (all decode slots form one group, equal-length prefills another): each token's
// position continues its slot's cache (length + t), its key/value is written to the slot's cache
// row, and a query of slot s at position p reads cache rows j <= p of its own slot (the group's
// keys are padded to its longest slot and masked). So every slot sees exactly the keys it would
// see running alone.
#include "rankemb/models/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <set>
#include <string>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "rankemb/io/file.h"
#include "rankemb/io/gguf.h"
#include "rankemb/models/gguf_checkpoint.h"
#include "rankemb/models/kernels/switch.h"
#include "rankemb/models/registry.h"
#include "rankemb/models/safetensors_torch.h"
#include "rankemb/models/weights.h"
#include "rankemb/util/error.h"

namespace rankemb::models {

namespace {

using torch::Tensor;
using torch::indexing::Slice;

// HF's LlamaRMSNorm (and Qwen's): normalize in float32, cast back, then scale in the input type.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  if (x.scalar_type() == torch::kFloat) {
    return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true).add_(eps)) * weight;
  }
  Tensor xf = x.to(torch::kFloat);
  xf = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true).add_(eps));
  return weight * xf.to(x.scalar_type());
}

// [2, max_tokens, head_dim] (cos, sin) as HF builds them: inverse frequencies and their products
// with the positions in float32 (the rounding matches transformers'), duplicated halves. The sin
// table's first half is negated so apply_rope needs no separate negation (see there).
Tensor rope_tables(const HfConfig& c, std::int64_t max_tokens, torch::Dtype dtype) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  const std::int64_t dim = c.head_dim;
  Tensor exponent = torch::arange(0, dim, 2, torch::TensorOptions().dtype(torch::kLong)).to(torch::kFloat) / static_cast<double>(dim);
  Tensor inv_freq = 1.0 / torch::pow(torch::full({}, c.rope_theta, f32), exponent);
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == RopeType::Linear) {
    inv_freq = inv_freq / rs.factor;
  } else if (rs.type == RopeType::Llama3) {
    const double old_len = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    Tensor wavelen = 2 * std::numbers::pi / inv_freq;
    Tensor scaled = torch::where(wavelen > low_wavelen, inv_freq / rs.factor, inv_freq);
    Tensor smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    Tensor smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    Tensor medium = wavelen.ge(high_wavelen).logical_and(wavelen.le(low_wavelen));
    inv_freq = torch::where(medium, smoothed, scaled);
  }
  Tensor pos = torch::arange(max_tokens, torch::TensorOptions().dtype(torch::kLong)).to(torch::kFloat);
  Tensor freqs = pos.unsqueeze(1) * inv_freq.unsqueeze(0);  // [max_tokens, dim/2]
  Tensor emb = torch::cat({freqs, freqs}, -1);
  Tensor sin = emb.sin();
  sin.narrow(-1, 0, dim / 2).neg_();
  return torch::stack({emb.cos(), sin}).to(dtype);
}

// HF's x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1); here as
// x * cos + cat(x2, x1) * signed_sin, signed_sin = cat(-sin, sin) (the same products, exactly).
Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& signed_sin) {
  const std::int64_t half = x.size(-1) / 2;
  Tensor swapped = torch::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return (x * cos).add_(swapped.mul_(signed_sin));
}

struct Layer {
  Tensor input_norm, post_norm;
  Tensor qkv_w, qkv_b;  // q, k, v projections stacked along the output dim; bias undefined when absent
  Tensor o_w, o_b;
  Tensor qk_norm;  // Qwen3: [heads + kv_heads, head_dim], q_norm's row per query head then k_norm's
  Tensor gate_up_w, gate_up_b;
  Tensor down_w, down_b;
  // The same matrices in their GGUF blocks (kernels/quant_matmul) where the file had Q4_1/Q8_0.
  kernels::QuantMatrix qkv_q, o_q, gate_up_q, down_q;
};

// The slots of one forward() call that append the same number of tokens t, attended together:
// their b * t packed rows start at row_off. Keys come from the cache slot range [lo, lo + r)
// (member: the group's rows within the range when r > b) or, when gather is defined, from the
// r = b gathered slots. mask [r, 1, 1, t, key_len] is additive (0 or -inf).
struct AttnGroup {
  std::int64_t b = 0, t = 0, row_off = 0, key_len = 0, lo = 0, r = 0;
  Tensor gather, member, mask;
};

// One forward() call's new tokens in the packed layout (see pack()): per token its id, position,
// slot and place in the [B, T] output; per request the row of its last token.
struct PackedBatch {
  std::vector<std::int64_t> ids, pos, write_slot, last, dest;
  std::vector<AttnGroup> groups;
};

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  return b.defined() ? torch::linear(x, w, b) : torch::linear(x, w);
}

// x · wᵀ + b, from the quantized blocks `q` for a few float32 CPU rows (a decode step: bound by
// the weight bytes read), from the float32 `w` otherwise (prefill, wide batches: bound by the
// arithmetic, where the GEMM is faster) or with RANKEMB_KERNELS=off.
Tensor project(const Tensor& x, const Tensor& w, const Tensor& b, const kernels::QuantMatrix& q) {
  const std::int64_t n = x.size(0);
  if (q.empty() || n > kernels::QuantMatrix::kMaxRows || !kernels::enabled() || !x.device().is_cpu() ||
      x.scalar_type() != torch::kFloat || x.dim() != 2 || x.size(1) != q.cols()) {
    return linear(x, w, b);
  }
  const Tensor in = x.contiguous();
  Tensor y = torch::empty({n, q.rows()}, in.options());
  q.multiply(in.data_ptr<float>(), n, y.data_ptr<float>());
  return b.defined() ? y.add_(b) : y;
}

class LlamaDecoder final : public CausalLm {
 public:
  LlamaDecoder(HfConfig config, std::unique_ptr<text::Tokenizer> tokenizer, std::vector<std::int64_t> stops,
               const CausalLmOptions& options)
      : config_(std::move(config)), tokenizer_(std::move(tokenizer)), stops_(std::move(stops)), options_(options),
        dtype_(scalar_type(options.dtype)) {}

  // `quant`: the GGUF file's Q4_1/Q8_0 matrices by Hugging Face name (gguf_quant_matrices), or nullptr.
  // The matrices it uses are moved out of `quant`.
  void load(WeightStore& w, std::map<std::string, kernels::QuantMatrix>* quant = nullptr);

  const HfConfig& config() const override { return config_; }
  const text::Tokenizer* tokenizer() const override { return tokenizer_.get(); }
  std::int64_t vocab_size() const override { return config_.vocab_size; }
  const std::vector<std::int64_t>& stop_token_ids() const override { return stops_; }

  void reserve(std::size_t n_slots, std::size_t max_tokens) override;
  std::size_t n_slots() const override { return lengths_.size(); }
  void clear(std::size_t slot) override {
    check_slot(slot);
    lengths_[slot] = 0;
  }
  std::size_t length(std::size_t slot) const override {
    check_slot(slot);
    return lengths_[slot];
  }
  torch::Tensor forward(const std::vector<std::size_t>& slots, const std::vector<std::vector<std::int64_t>>& tokens,
                        bool all_positions) override;

  bool can_copy_prefix() const override { return true; }
  void copy_prefix(std::size_t from, std::size_t to, std::size_t n) override {
    check_slot(from);
    check_slot(to);
    if (from == to || lengths_[to] != 0 || n > lengths_[from])
      fail(ErrorCode::Usage, "causal LM: cannot copy {} tokens of slot {} (length {}) into slot {} (length {})", n, from,
           lengths_[from], to, lengths_[to]);
    torch::NoGradGuard no_grad;
    const auto rows = static_cast<std::int64_t>(n);
    for (std::size_t li = 0; li < k_cache_.size(); ++li) {
      k_cache_[li][static_cast<std::int64_t>(to)].narrow(1, 0, rows).copy_(k_cache_[li][static_cast<std::int64_t>(from)].narrow(1, 0, rows));
      v_cache_[li][static_cast<std::int64_t>(to)].narrow(1, 0, rows).copy_(v_cache_[li][static_cast<std::int64_t>(from)].narrow(1, 0, rows));
    }
    lengths_[to] = n;
  }

 private:
  void check_slot(std::size_t slot) const {
    if (slot >= lengths_.size()) fail(ErrorCode::Usage, "causal LM: slot {} out of range ({} slots reserved)", slot, lengths_.size());
  }
  Tensor attention(const Layer& l, std::size_t li, const Tensor& x, const Tensor& cos, const Tensor& sin,
                   const Tensor& write_slot, const Tensor& write_pos, const std::vector<AttnGroup>& groups);
  // forward()'s stages: argument checks (returns the longest token list), packing, one group's
  // attention layout, the layers, and the logits.
  std::size_t check_forward(const std::vector<std::size_t>& slots, const std::vector<std::vector<std::int64_t>>& tokens) const;
  PackedBatch pack(const std::vector<std::size_t>& slots, const std::vector<std::vector<std::int64_t>>& tokens,
                   std::size_t t_max) const;
  // The fused step's batch: row i is slots[i]'s one new token; no attention groups.
  PackedBatch pack_decode(const std::vector<std::size_t>& slots, const std::vector<std::vector<std::int64_t>>& tokens) const;
  AttnGroup group_layout(const std::vector<std::size_t>& slots, const std::vector<std::vector<std::int64_t>>& tokens,
                         const std::vector<std::int64_t>& members, std::size_t t_max, PackedBatch& batch) const;
  Tensor run_layers(const PackedBatch& batch);
  // The one-token decode step of a few slots as plain loops (see the definition), or nothing
  // when the step does not qualify.
  bool fused_step_applies(const std::vector<std::vector<std::int64_t>>& tokens) const;
  bool layers_fusable() const;
  Tensor run_layers_fused(const PackedBatch& batch);
  Tensor logits(const Tensor& x, const PackedBatch& batch, std::int64_t b_all, std::size_t t_max, bool all_positions) const;
  Tensor to_device(const std::vector<std::int64_t>& v) const {
    return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong)).to(options_.device);
  }

  HfConfig config_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::vector<std::int64_t> stops_;
  CausalLmOptions options_;
  torch::ScalarType dtype_;  // options_.dtype as libtorch spells it

  Tensor embed_, final_norm_, lm_head_;
  kernels::QuantMatrix lm_head_q_;
  std::vector<Layer> layers_;
  std::int64_t n_heads_ = 0, n_kv_ = 0, head_dim_ = 0;
  bool fusable_ = false;  // layers_fusable(), set by load()

  std::size_t max_tokens_ = 0;
  std::vector<std::size_t> lengths_;
  std::vector<Tensor> k_cache_, v_cache_;  // per layer [n_slots, n_kv, max_tokens, head_dim]
  Tensor rope_;                            // [2, max_tokens, head_dim]
};

void LlamaDecoder::load(WeightStore& w, std::map<std::string, kernels::QuantMatrix>* quant) {
  torch::NoGradGuard no_grad;
  // The blocks of these matrices stacked, when every one is quantized alike; else none.
  auto quantized = [&](const std::vector<std::string>& names) {
    std::vector<kernels::QuantMatrix*> parts;
    for (const auto& name : names) {
      if (!quant) return kernels::QuantMatrix();
      const auto it = quant->find("model." + name);
      if (it == quant->end() || (!parts.empty() && it->second.type() != parts.front()->type())) return kernels::QuantMatrix();
      parts.push_back(&it->second);
    }
    if (parts.size() == 1) return std::move(*parts.front());
    return kernels::QuantMatrix::stack({parts.begin(), parts.end()});
  };
  const HfConfig& c = config_;
  n_heads_ = c.num_attention_heads;
  n_kv_ = c.num_key_value_heads;
  head_dim_ = c.head_dim;
  const std::int64_t h = c.hidden_size, inter = c.intermediate_size;
  const std::int64_t q_dim = n_heads_ * head_dim_, kv_dim = n_kv_ * head_dim_;
  // Every weight owns its memory (not a view of the file mapping), copied exactly once: a
  // conversion already copies, only a tensor that needed none is cloned.
  auto dev = [&](const Tensor& t) {
    Tensor out = t.to(options_.device, dtype_).contiguous();
    return out.is_alias_of(t) ? out.clone() : out;
  };
  // Concatenation copies, so fused weights own their memory even when the store maps the file.
  auto cat = [&](std::vector<Tensor> parts) { return torch::cat(parts, 0).to(options_.device, dtype_); };

  w.strip_prefix("model.");
  final_norm_ = dev(w.take("norm.weight", {h}));
  if (c.tie_word_embeddings) {
    // Tied checkpoints store the matrix under either name or both (TinyStories: lm_head only).
    const char* name = w.has("embed_tokens.weight") || !w.has("lm_head.weight") ? "embed_tokens.weight" : "lm_head.weight";
    embed_ = dev(w.take(name, {c.vocab_size, h}));
    w.ignore_prefix("lm_head.");
    lm_head_ = embed_;
    lm_head_q_ = quantized({name});
  } else {
    embed_ = dev(w.take("embed_tokens.weight", {c.vocab_size, h}));
    lm_head_ = dev(w.take("lm_head.weight", {c.vocab_size, h}));
  }
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("layers.{}.", i);
    Layer l;
    l.input_norm = dev(w.take(p + "input_layernorm.weight", {h}));
    l.post_norm = dev(w.take(p + "post_attention_layernorm.weight", {h}));
    const std::string a = p + "self_attn.";
    l.qkv_w = cat({w.take(a + "q_proj.weight", {q_dim, h}), w.take(a + "k_proj.weight", {kv_dim, h}),
                   w.take(a + "v_proj.weight", {kv_dim, h})});
    l.qkv_q = quantized({a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"});
    l.o_q = quantized({a + "o_proj.weight"});
    if (c.qkv_bias) {
      l.qkv_b = cat({w.take(a + "q_proj.bias", {q_dim}), w.take(a + "k_proj.bias", {kv_dim}), w.take(a + "v_proj.bias", {kv_dim})});
    }
    l.o_w = dev(w.take(a + "o_proj.weight", {h, q_dim}));
    if (c.o_proj_bias) l.o_b = dev(w.take(a + "o_proj.bias", {h}));
    if (c.qk_norm) {
      // q and k are adjacent in the fused projection, so one norm (and one RoPE) covers both.
      Tensor qn = w.take(a + "q_norm.weight", {head_dim_}), kn = w.take(a + "k_norm.weight", {head_dim_});
      l.qk_norm = cat({qn.unsqueeze(0).expand({n_heads_, head_dim_}), kn.unsqueeze(0).expand({n_kv_, head_dim_})});
    }
    w.ignore_prefix(a + "rotary_emb.");  // inv_freq buffers of old checkpoints; recomputed from config
    const std::string m = p + "mlp.";
    l.gate_up_w = cat({w.take(m + "gate_proj.weight", {inter, h}), w.take(m + "up_proj.weight", {inter, h})});
    l.gate_up_q = quantized({m + "gate_proj.weight", m + "up_proj.weight"});
    l.down_q = quantized({m + "down_proj.weight"});
    if (c.mlp_bias) l.gate_up_b = cat({w.take(m + "gate_proj.bias", {inter}), w.take(m + "up_proj.bias", {inter})});
    l.down_w = dev(w.take(m + "down_proj.weight", {h, inter}));
    if (c.mlp_bias) l.down_b = dev(w.take(m + "down_proj.bias", {h}));
    layers_.push_back(std::move(l));
  }
  w.finish();
  fusable_ = layers_fusable();
}

void LlamaDecoder::reserve(std::size_t n_slots, std::size_t max_tokens) {
  if (n_slots == 0 || max_tokens == 0) fail(ErrorCode::Usage, "causal LM: reserve needs at least one slot and one token");
  torch::NoGradGuard no_grad;
  // Free the old pool first so peak memory is one pool, not two.
  k_cache_.clear();
  v_cache_.clear();
  auto opts = torch::TensorOptions().dtype(dtype_).device(options_.device);
  const auto s = static_cast<std::int64_t>(n_slots), t = static_cast<std::int64_t>(max_tokens);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    // Zeros, not empty: masked-out keys still enter the products, and must not be NaN/Inf.
    k_cache_.push_back(torch::zeros({s, n_kv_, t, head_dim_}, opts));
    v_cache_.push_back(torch::zeros({s, n_kv_, t, head_dim_}, opts));
  }
  if (max_tokens != max_tokens_ || !rope_.defined()) rope_ = rope_tables(config_, t, dtype_).to(options_.device);
  max_tokens_ = max_tokens;
  lengths_.assign(n_slots, 0);
}

Tensor LlamaDecoder::attention(const Layer& l, std::size_t li, const Tensor& x, const Tensor& cos, const Tensor& sin,
                               const Tensor& write_slot, const Tensor& write_pos, const std::vector<AttnGroup>& groups) {
  const std::int64_t n = x.size(0), g = n_heads_ / n_kv_;
  Tensor qkv = project(x, l.qkv_w, l.qkv_b, l.qkv_q);  // [N, (H + 2 KV) * D]
  Tensor qk = qkv.narrow(-1, 0, (n_heads_ + n_kv_) * head_dim_).view({n, n_heads_ + n_kv_, head_dim_});
  Tensor v = qkv.narrow(-1, (n_heads_ + n_kv_) * head_dim_, n_kv_ * head_dim_).view({n, n_kv_, head_dim_});
  if (l.qk_norm.defined()) qk = rms_norm(qk, l.qk_norm, config_.rms_norm_eps);
  qk = apply_rope(qk, cos, sin);  // cos/sin [N, 1, D]
  Tensor q = qk.narrow(1, 0, n_heads_), k = qk.narrow(1, n_heads_, n_kv_);

  // Every new token's key/value into its slot's cache: cache[slot, :, pos, :] = k.
  Tensor& kc = k_cache_[li];
  Tensor& vc = v_cache_[li];
  kc.index_put_({write_slot, Slice(), write_pos}, k);
  vc.index_put_({write_slot, Slice(), write_pos}, v);

  // Grouped-query attention without repeating keys: the g query heads sharing a KV head are
  // stacked along the query axis, [B, KV, g*T, D] (HF's head h reads KV head h / g).
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  std::vector<Tensor> ctxs;
  ctxs.reserve(groups.size());
  for (const AttnGroup& gr : groups) {
    const std::int64_t b = gr.b, t = gr.t, kl = gr.key_len;
    Tensor qg = (q.narrow(0, gr.row_off, b * t).reshape({b, t, n_heads_, head_dim_}).transpose(1, 2) * scale)
                    .reshape({b, n_kv_, g * t, head_dim_});
    // The group's keys [R, KV, L, D]: a view of the slot range [lo, lo + R) when the group fills
    // most of it (queries of the other slots in the range are zero and their rows dropped), else
    // a gather of the group's slots.
    Tensor keys, values;
    if (gr.gather.defined()) {
      keys = kc.narrow(2, 0, kl).index_select(0, gr.gather);
      values = vc.narrow(2, 0, kl).index_select(0, gr.gather);
    } else {
      keys = kc.narrow(0, gr.lo, gr.r).narrow(2, 0, kl);
      values = vc.narrow(0, gr.lo, gr.r).narrow(2, 0, kl);
      if (gr.member.defined()) qg = torch::zeros({gr.r, n_kv_, g * t, head_dim_}, qg.options()).index_copy_(0, gr.member, qg);
    }
    const std::int64_t r = qg.size(0);
    Tensor scores = torch::matmul(qg, keys.transpose(2, 3)).view({r, n_kv_, g, t, kl});
    scores.add_(gr.mask);
    Tensor probs = x.scalar_type() == torch::kFloat ? torch::softmax(scores, -1)
                                                     : torch::softmax(scores, -1, torch::kFloat).to(x.scalar_type());
    Tensor ctx = torch::matmul(probs.view({r, n_kv_, g * t, kl}), values);  // [R, KV, g*T, D]
    if (gr.member.defined()) ctx = ctx.index_select(0, gr.member);
    ctxs.push_back(ctx.view({b, n_heads_, t, head_dim_}).transpose(1, 2).reshape({b * t, n_heads_ * head_dim_}));
  }
  Tensor ctx = ctxs.size() == 1 ? ctxs[0] : torch::cat(ctxs, 0);
  return project(ctx, l.o_w, l.o_b, l.o_q);
}

torch::Tensor LlamaDecoder::forward(const std::vector<std::size_t>& slots,
                                    const std::vector<std::vector<std::int64_t>>& tokens, bool all_positions) {
  const std::size_t t_max = check_forward(slots, tokens);
  torch::NoGradGuard no_grad;
  const bool fused = fused_step_applies(tokens);
  const PackedBatch batch = fused ? pack_decode(slots, tokens) : pack(slots, tokens, t_max);
  Tensor x = fused ? run_layers_fused(batch) : run_layers(batch);
  for (std::size_t i = 0; i < slots.size(); ++i) lengths_[slots[i]] += tokens[i].size();
  return logits(x, batch, static_cast<std::int64_t>(slots.size()), t_max, all_positions);
}

std::size_t LlamaDecoder::check_forward(const std::vector<std::size_t>& slots,
                                        const std::vector<std::vector<std::int64_t>>& tokens) const {
  if (lengths_.empty()) fail(ErrorCode::Usage, "causal LM: forward() before reserve()");
  if (slots.size() != tokens.size())
    fail(ErrorCode::Usage, "causal LM: {} slots but {} token lists", slots.size(), tokens.size());
  if (slots.empty()) fail(ErrorCode::Usage, "causal LM: forward() with no slots");
  std::vector<bool> seen(lengths_.size(), false);
  std::size_t t_max = 0;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    check_slot(slots[i]);
    if (seen[slots[i]]) fail(ErrorCode::Usage, "causal LM: slot {} appears twice in one forward()", slots[i]);
    seen[slots[i]] = true;
    if (tokens[i].empty()) fail(ErrorCode::Usage, "causal LM: no tokens for slot {}", slots[i]);
    if (lengths_[slots[i]] + tokens[i].size() > max_tokens_)
      fail(ErrorCode::Usage, "causal LM: slot {} would hold {} + {} tokens, more than the {} reserved", slots[i],
           lengths_[slots[i]], tokens[i].size(), max_tokens_);
    for (std::int64_t id : tokens[i]) {
      if (id < 0 || id >= config_.vocab_size)
        fail(ErrorCode::Usage, "causal LM: token id {} for slot {} is outside the vocabulary [0, {})", id, slots[i], config_.vocab_size);
    }
    t_max = std::max(t_max, tokens[i].size());
  }
  return t_max;
}

// Packed layout: the slots are grouped by their number of new tokens T (each group's slots in
// increasing slot order) and each group's tokens are stored row-major [slot, t]; the token-wise
// parts of the network run on these N real tokens only, attention runs per group.
PackedBatch LlamaDecoder::pack(const std::vector<std::size_t>& slots, const std::vector<std::vector<std::int64_t>>& tokens,
                               std::size_t t_max) const {
  std::map<std::size_t, std::vector<std::int64_t>> by_len;  // T -> indices into slots
  for (std::size_t i = 0; i < slots.size(); ++i) by_len[tokens[i].size()].push_back(static_cast<std::int64_t>(i));
  PackedBatch batch;
  batch.last.resize(slots.size());
  for (auto& [t_sz, members] : by_len) {
    std::sort(members.begin(), members.end(), [&](std::int64_t a, std::int64_t b) { return slots[a] < slots[b]; });
    batch.groups.push_back(group_layout(slots, tokens, members, t_max, batch));
  }
  return batch;
}

// One group of equally long requests: how its attention reads the caches (a slot range or a
// gather), its additive mask, and its tokens appended to `batch`.
AttnGroup LlamaDecoder::group_layout(const std::vector<std::size_t>& slots,
                                     const std::vector<std::vector<std::int64_t>>& tokens,
                                     const std::vector<std::int64_t>& members, std::size_t t_max,
                                     PackedBatch& batch) const {
  const auto i64 = torch::TensorOptions().dtype(torch::kLong);
  AttnGroup gr;
  gr.b = static_cast<std::int64_t>(members.size());
  gr.t = static_cast<std::int64_t>(tokens[members.front()].size());
  gr.row_off = static_cast<std::int64_t>(batch.ids.size());
  std::size_t key_len = 0;
  for (std::int64_t i : members) key_len = std::max(key_len, lengths_[slots[i]] + tokens[i].size());
  gr.key_len = static_cast<std::int64_t>(key_len);
  const auto lo = static_cast<std::int64_t>(slots[members.front()]), hi = static_cast<std::int64_t>(slots[members.back()]);
  const std::int64_t range = hi - lo + 1;
  // A view over the slot range costs at most range/b times the attention arithmetic but copies
  // no keys; a gather copies b slots' keys.
  const bool use_range = range <= 2 * gr.b;
  gr.lo = lo;
  gr.r = use_range ? range : gr.b;
  std::vector<std::int64_t> member_rows;
  for (std::int64_t i : members) member_rows.push_back(static_cast<std::int64_t>(slots[i]) - lo);
  if (!use_range) {
    std::vector<std::int64_t> group_slots;
    for (std::int64_t i : members) group_slots.push_back(static_cast<std::int64_t>(slots[i]));
    gr.gather = to_device(group_slots);
  } else if (range != gr.b) {
    gr.member = to_device(member_rows);
  }
  // mask[r, 0, 0, t, j] (additive, 0 or -inf): key j is in the query's past (j <= length + t);
  // Mistral also limits it to the sliding window (j > position - window), as transformers
  // does. Range rows of slots outside the group allow every key (finite cache values).
  Tensor qpos = torch::full({gr.r, gr.t}, static_cast<std::int64_t>(key_len) - 1, i64);
  auto* qp = qpos.data_ptr<std::int64_t>();
  for (std::size_t m = 0; m < members.size(); ++m) {
    const std::int64_t i = members[m];
    const auto len = static_cast<std::int64_t>(lengths_[slots[i]]);
    const std::int64_t row = use_range ? member_rows[m] : static_cast<std::int64_t>(m);
    for (std::int64_t j = 0; j < gr.t; ++j) {
      qp[row * gr.t + j] = len + j;
      if (j == gr.t - 1) batch.last[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(batch.ids.size());
      batch.ids.push_back(tokens[i][static_cast<std::size_t>(j)]);
      batch.pos.push_back(len + j);
      batch.write_slot.push_back(static_cast<std::int64_t>(slots[i]));
      batch.dest.push_back(i * static_cast<std::int64_t>(t_max) + j);
    }
  }
  Tensor key_idx = torch::arange(gr.key_len, i64).view({1, 1, gr.key_len});
  Tensor qpos3 = qpos.unsqueeze(-1);
  Tensor allowed = key_idx.le(qpos3);
  const bool window = config_.model_type == "mistral" && config_.sliding_window.has_value();
  if (window) allowed = allowed.logical_and(key_idx.gt(qpos3 - *config_.sliding_window));
  gr.mask = torch::zeros({gr.r, 1, 1, gr.t, gr.key_len}, torch::TensorOptions().dtype(dtype_))
                .masked_fill_(allowed.logical_not().view({gr.r, 1, 1, gr.t, gr.key_len}),
                              -std::numeric_limits<double>::infinity())
                .to(options_.device);
  return gr;
}

PackedBatch LlamaDecoder::pack_decode(const std::vector<std::size_t>& slots,
                                      const std::vector<std::vector<std::int64_t>>& tokens) const {
  PackedBatch batch;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const auto row = static_cast<std::int64_t>(i);
    batch.ids.push_back(tokens[i].front());
    batch.pos.push_back(static_cast<std::int64_t>(lengths_[slots[i]]));
    batch.write_slot.push_back(static_cast<std::int64_t>(slots[i]));
    batch.last.push_back(row);
    batch.dest.push_back(row);
  }
  return batch;
}

// A decode step of up to QuantMatrix::kMaxRows slots, one token each, float32 on the CPU, every
// matrix in GGUF blocks and no q/k norm (Llama, SmolLM2, Mistral, Qwen2 files).
bool LlamaDecoder::fused_step_applies(const std::vector<std::vector<std::int64_t>>& tokens) const {
  if (!fusable_ || tokens.size() > static_cast<std::size_t>(kernels::QuantMatrix::kMaxRows) || !kernels::enabled() ||
      !rope_.is_contiguous())
    return false;
  return std::all_of(tokens.begin(), tokens.end(), [](const auto& t) { return t.size() == 1; });
}

// Whether the loaded layers allow fused steps at all: float32 on the CPU, every matrix in blocks
// of the expected shape, no q/k norm. Decided once, after load().
bool LlamaDecoder::layers_fusable() const {
  if (dtype_ != torch::kFloat || !options_.device.is_cpu() || layers_.empty()) return false;
  const std::int64_t h = config_.hidden_size, inter = config_.intermediate_size, q_dim = n_heads_ * head_dim_;
  const std::int64_t qkv = (n_heads_ + 2 * n_kv_) * head_dim_;
  return std::all_of(layers_.begin(), layers_.end(), [&](const Layer& l) {
    return !l.qk_norm.defined() && l.qkv_q.rows() == qkv && l.qkv_q.cols() == h && l.o_q.rows() == h && l.o_q.cols() == q_dim &&
           l.gate_up_q.rows() == 2 * inter && l.gate_up_q.cols() == h && l.down_q.rows() == h && l.down_q.cols() == inter;
  });
}

namespace {

// y[i] = x[i] · rsqrt(mean(x²) + eps) · w[i], as rms_norm() computes it.
void rms_norm_row(const float* x, const float* w, std::int64_t n, double eps, float* y) {
  float sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float r = 1.0f / std::sqrt(sum / static_cast<float>(n) + static_cast<float>(eps));
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] * r * w[i];
}

// apply_rope() on one head vector in place: v·cos + swap_halves(v)·signed_sin.
void rope_row(float* v, const float* cos, const float* signed_sin, std::int64_t d, float* scratch) {
  const std::int64_t half = d / 2;
  for (std::int64_t j = 0; j < d; ++j) scratch[j] = v[j] * cos[j] + v[j < half ? j + half : j - half] * signed_sin[j];
  std::copy(scratch, scratch + d, v);
}

// Σ a[j]·b[j] in 8 independent partial sums, so the compiler keeps them in one vector register.
float dot(const float* a, const float* b, std::int64_t n) {
  float part[8] = {};
  std::int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) part[k] += a[j + k] * b[j + k];
  float sum = 0;
  for (; j < n; ++j) sum += a[j] * b[j];
  for (float p : part) sum += p;
  return sum;
}

// One head of one token: softmax((q·scale)·kᵀ) over keys [first, end) of its slot, times the
// values, into ctx[0, d). `probs` holds at least `end` floats.
void attend(const float* q, const float* keys, const float* values, std::int64_t first, std::int64_t end, std::int64_t d,
            float scale, float* probs, float* ctx) {
  float top = -std::numeric_limits<float>::infinity();
  for (std::int64_t t = first; t < end; ++t) top = std::max(top, probs[t] = dot(q, keys + t * d, d) * scale);
  float total = 0;
  for (std::int64_t t = first; t < end; ++t) total += probs[t] = std::exp(probs[t] - top);
  std::fill_n(ctx, d, 0.0f);
  for (std::int64_t t = first; t < end; ++t) {
    const float p = probs[t] / total;
    const float* v = values + t * d;
    for (std::int64_t j = 0; j < d; ++j) ctx[j] += p * v[j];
  }
}

void add_bias(float* y, std::int64_t n, const Tensor& b) {
  if (!b.defined()) return;
  const std::int64_t cols = b.numel();
  const float* bp = b.data_ptr<float>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < cols; ++j) y[i * cols + j] += bp[j];
}

}  // namespace

// The layers of a fused decode step (fused_step_applies): the same arithmetic as run_layers, as
// plain loops over the few rows. A one-sequence step runs ~20 libtorch operators per layer
// (norms, RoPE, cache writes, masks, attention over the cache), each microseconds of work behind
// ~10 µs of dispatch, which was half of the step (README "Decode from the GGUF blocks"). Each
// row attends its own slot's keys 0..pos (Mistral: within the sliding window).
Tensor LlamaDecoder::run_layers_fused(const PackedBatch& batch) {
  const auto n = static_cast<std::int64_t>(batch.ids.size());
  const std::int64_t h = config_.hidden_size, inter = config_.intermediate_size, d = head_dim_;
  const std::int64_t q_dim = n_heads_ * d, qkv_dim = (n_heads_ + 2 * n_kv_) * d, g = n_heads_ / n_kv_;
  const std::int64_t t_cap = static_cast<std::int64_t>(max_tokens_);
  const double eps = config_.rms_norm_eps;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const std::int64_t window = config_.model_type == "mistral" ? config_.sliding_window.value_or(0) : 0;  // 0: none
  Tensor x = embed_.index_select(0, to_device(batch.ids)).contiguous();  // [n, h]
  float* xp = x.data_ptr<float>();
  std::vector<float> normed(static_cast<std::size_t>(n * h)), qkv(static_cast<std::size_t>(n * qkv_dim)),
      ctx(static_cast<std::size_t>(n * q_dim)), out(static_cast<std::size_t>(n * h)), gu(static_cast<std::size_t>(n * 2 * inter)),
      act(static_cast<std::size_t>(n * inter)), scratch(static_cast<std::size_t>(d));
  const float* cos_table = rope_[0].data_ptr<float>();
  const float* sin_table = rope_[1].data_ptr<float>();
  // (row, head) tasks per parallel region: each is ~2·(pos + 1)·d multiply-adds.
  const std::int64_t longest = *std::max_element(batch.pos.begin(), batch.pos.end()) + 1;
  const std::int64_t attention_grain = std::max<std::int64_t>(1, kernels::min_parallel_work() / (2 * longest * d));
  for (std::size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    float* kc = k_cache_[li].data_ptr<float>();
    float* vc = v_cache_[li].data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i) rms_norm_row(xp + i * h, l.input_norm.data_ptr<float>(), h, eps, normed.data() + i * h);
    l.qkv_q.multiply(normed.data(), n, qkv.data());
    add_bias(qkv.data(), n, l.qkv_b);
    // RoPE, and each token's key and value into its slot: cache[slot, kv_head, pos, :].
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t pos = batch.pos[static_cast<std::size_t>(i)], slot = batch.write_slot[static_cast<std::size_t>(i)];
      float* q = qkv.data() + i * qkv_dim;
      for (std::int64_t head = 0; head < n_heads_ + n_kv_; ++head)
        rope_row(q + head * d, cos_table + pos * d, sin_table + pos * d, d, scratch.data());
      for (std::int64_t kv = 0; kv < n_kv_; ++kv) {
        const std::int64_t at = ((slot * n_kv_ + kv) * t_cap + pos) * d;
        std::copy_n(q + (n_heads_ + kv) * d, d, kc + at);
        std::copy_n(q + (n_heads_ + n_kv_ + kv) * d, d, vc + at);
      }
    }
    // Attention, one (row, head) per task: the row's query over its own slot's keys 0..pos.
    at::parallel_for(0, n * n_heads_, attention_grain, [&](std::int64_t begin, std::int64_t end) {
      thread_local std::vector<float> probs;
      probs.resize(max_tokens_);
      for (std::int64_t task = begin; task < end; ++task) {
        const std::int64_t i = task / n_heads_, head = task % n_heads_, kv = head / g;
        const std::int64_t pos = batch.pos[static_cast<std::size_t>(i)], slot = batch.write_slot[static_cast<std::size_t>(i)];
        const std::int64_t first = window > 0 ? std::max<std::int64_t>(0, pos - window + 1) : 0;
        attend(qkv.data() + i * qkv_dim + head * d, kc + (slot * n_kv_ + kv) * t_cap * d, vc + (slot * n_kv_ + kv) * t_cap * d,
               first, pos + 1, d, scale, probs.data(), ctx.data() + i * q_dim + head * d);
      }
    });
    l.o_q.multiply(ctx.data(), n, out.data());
    add_bias(out.data(), n, l.o_b);
    for (std::int64_t k = 0; k < n * h; ++k) xp[k] += out[static_cast<std::size_t>(k)];
    for (std::int64_t i = 0; i < n; ++i) rms_norm_row(xp + i * h, l.post_norm.data_ptr<float>(), h, eps, normed.data() + i * h);
    l.gate_up_q.multiply(normed.data(), n, gu.data());
    add_bias(gu.data(), n, l.gate_up_b);
    for (std::int64_t i = 0; i < n; ++i) {
      const float* gate = gu.data() + i * 2 * inter;
      const float* up = gate + inter;
      for (std::int64_t j = 0; j < inter; ++j) act[static_cast<std::size_t>(i * inter + j)] = gate[j] / (1.0f + std::exp(-gate[j])) * up[j];
    }
    l.down_q.multiply(act.data(), n, out.data());
    add_bias(out.data(), n, l.down_b);
    for (std::int64_t k = 0; k < n * h; ++k) xp[k] += out[static_cast<std::size_t>(k)];
  }
  return x;
}

// The decoder layers over the packed tokens: [N, hidden] after the last layer.
Tensor LlamaDecoder::run_layers(const PackedBatch& batch) {
  const auto n = static_cast<std::int64_t>(batch.ids.size());
  Tensor pos = to_device(batch.pos);
  Tensor write_slot = to_device(batch.write_slot);
  Tensor cos = rope_[0].index_select(0, pos).view({n, 1, head_dim_});
  Tensor sin = rope_[1].index_select(0, pos).view({n, 1, head_dim_});
  Tensor x = embed_.index_select(0, to_device(batch.ids));  // [N, hidden]
  const double eps = config_.rms_norm_eps;
  const std::int64_t inter = config_.intermediate_size;
  for (std::size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    x.add_(attention(l, li, rms_norm(x, l.input_norm, eps), cos, sin, write_slot, pos, batch.groups));
    Tensor gu = project(rms_norm(x, l.post_norm, eps), l.gate_up_w, l.gate_up_b, l.gate_up_q);
    Tensor act = torch::silu(gu.narrow(-1, 0, inter)).mul_(gu.narrow(-1, inter, inter));
    x.add_(project(act, l.down_w, l.down_b, l.down_q));
  }
  return x;
}

Tensor LlamaDecoder::logits(const Tensor& x, const PackedBatch& batch, std::int64_t b_all, std::size_t t_max,
                            bool all_positions) const {
  const double eps = config_.rms_norm_eps;
  if (!all_positions) {
    Tensor last = x.index_select(0, to_device(batch.last));
    return project(rms_norm(last, final_norm_, eps), lm_head_, Tensor(), lm_head_q_).to(torch::kCPU, torch::kFloat).contiguous();
  }
  // Every new position, scattered into [B, T, vocab]; rows past a slot's own length stay zero.
  Tensor out_logits = torch::linear(rms_norm(x, final_norm_, eps), lm_head_).to(torch::kCPU, torch::kFloat);
  const auto t = static_cast<std::int64_t>(t_max);
  Tensor out = torch::zeros({b_all * t, config_.vocab_size}, torch::TensorOptions().dtype(torch::kFloat));
  out.index_copy_(0, torch::tensor(batch.dest, torch::TensorOptions().dtype(torch::kLong)), out_logits);
  return out.view({b_all, t, config_.vocab_size});
}

// eos_token_id of generation_config.json (an int, a list or absent/null).
std::vector<std::int64_t> generation_eos(const std::filesystem::path& dir) {
  std::filesystem::path path = dir / "generation_config.json";
  if (!std::filesystem::exists(path)) return {};
  nlohmann::json j = io::read_json(path);
  std::vector<std::int64_t> out;
  if (!j.is_object() || !j.contains("eos_token_id") || j["eos_token_id"].is_null()) return out;
  const nlohmann::json& e = j["eos_token_id"];
  auto bad = [&] { fail(ErrorCode::ModelFormat, "{}: eos_token_id must be an integer or a list of integers", path.string()); };
  if (e.is_number_integer()) {
    out.push_back(e.get<std::int64_t>());
  } else if (e.is_array()) {
    for (const auto& v : e) {
      if (!v.is_number_integer()) bad();
      out.push_back(v.get<std::int64_t>());
    }
  } else {
    bad();
  }
  return out;
}

}  // namespace

void CausalLm::copy_prefix(std::size_t, std::size_t, std::size_t) {
  fail(ErrorCode::Usage, "this causal LM cannot copy prompt prefixes between slots");
}

namespace {

void check_decoder_config(const HfConfig& config, const std::string& origin) {
  if (!config.is_decoder())
    fail(ErrorCode::ModelFormat, "{}: model_type \"{}\" is not a causal LM ({})", origin, config.model_type,
         fmt::join(model_types(ModelKind::Decoder), ", "));
  if (config.hidden_act != "silu" && config.hidden_act != "swish")
    fail(ErrorCode::ModelFormat, "{}: hidden_act \"{}\" is not supported (silu)", origin, config.hidden_act);
  if (config.head_dim % 2 != 0) fail(ErrorCode::ModelFormat, "{}: head_dim {} must be even for RoPE", origin, config.head_dim);
}

// See CausalLm::stop_token_ids().
std::vector<std::int64_t> stop_ids(const HfConfig& config, const std::vector<std::int64_t>& extra_eos, const text::Tokenizer* tokenizer) {
  std::vector<std::int64_t> stops = config.eos_token_ids;
  stops.insert(stops.end(), extra_eos.begin(), extra_eos.end());
  if (tokenizer) {
    for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|end_of_text|>"}) {
      if (auto id = tokenizer->token_to_id(name)) stops.push_back(static_cast<std::int64_t>(*id));
    }
  }
  std::set<std::int64_t> seen;
  std::erase_if(stops, [&](std::int64_t id) { return !seen.insert(id).second; });
  return stops;
}

// A GGUF file: config, tokenizer and dequantized weights all come from the one file.
std::unique_ptr<CausalLm> load_gguf_causal_lm(const std::filesystem::path& path, const CausalLmOptions& options) {
  const io::GgufFile file = io::GgufFile::open(path);
  HfConfig config = parse_hf_config(gguf_config_json(file), path.string() + " (metadata)");
  check_decoder_config(config, path.string());
  std::unique_ptr<text::Tokenizer> tokenizer = text::load_gguf_tokenizer(file);
  std::vector<std::int64_t> stops = stop_ids(config, {}, tokenizer.get());
  WeightStore store(gguf_tensors(file, config), path.string());
  // The blocks serve float32 decode on the CPU only; elsewhere they would be dead weight.
  const bool quantized = options.device.is_cpu() && options.dtype == Dtype::Float32;
  auto quant = quantized ? gguf_quant_matrices(file, config) : std::map<std::string, kernels::QuantMatrix>{};
  auto model = std::make_unique<LlamaDecoder>(std::move(config), std::move(tokenizer), std::move(stops), options);
  model->load(store, &quant);
  return model;
}

}  // namespace

std::unique_ptr<CausalLm> load_causal_lm(const std::filesystem::path& model_dir, const CausalLmOptions& options) {
  try {
    if (io::GgufFile::has_magic(model_dir)) return load_gguf_causal_lm(model_dir, options);
    HfConfig config = load_hf_config(model_dir);
    const std::string config_path = (model_dir / "config.json").string();
    check_decoder_config(config, config_path);

    std::unique_ptr<text::Tokenizer> tokenizer;
    if (std::filesystem::exists(model_dir / "tokenizer.json")) tokenizer = text::load_tokenizer(model_dir / "tokenizer.json");
    std::vector<std::int64_t> stops = stop_ids(config, generation_eos(model_dir), tokenizer.get());

    std::filesystem::path origin = model_dir / "model.safetensors";
    if (!std::filesystem::exists(origin)) {
      origin = model_dir / "model.safetensors.index.json";
      if (!std::filesystem::exists(origin))
        fail(ErrorCode::ModelFormat, "{}: missing model.safetensors (or model.safetensors.index.json)", model_dir.string());
    }
    // Keep the file's dtype here; load() converts each tensor once, to the compute dtype.
    WeightStore store(models::load_model_weights(model_dir, {.dtype = std::nullopt, .copy = false}), origin.string());
    auto model = std::make_unique<LlamaDecoder>(std::move(config), std::move(tokenizer), std::move(stops), options);
    model->load(store);
    return model;
  } catch (Error& e) {
    throw e.with_context(fmt::format("loading causal LM {}", model_dir.string()));
  }
}

}  // namespace rankemb::models
