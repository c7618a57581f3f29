// MPNet (all-mpnet-base-v2 and other sentence-transformers MPNet checkpoints) with the module
// layout and parameter names of Hugging Face's MPNetModel, so named_parameters() are the
// checkpoint's names and save() writes a checkpoint transformers loads.
//
// What differs from BERT:
// - Embeddings: word + position (no token types); position ids count real tokens from 2 and give
//   pads 1, as RoBERTa's do, with the padding index fixed at 1 (transformers hard-codes it).
// - Attention: "attention.attn.{q,k,v,o}" + "attention.LayerNorm", and a relative position bias
//   added to every layer's scaled scores: one [32 buckets, heads] table
//   ("encoder.relative_attention_bias"), looked up once per forward for the [T, T] matrix of
//   bucketed offsets key - query (T5-style buckets: 16 per direction, exact below 8 tokens, then
//   logarithmic; max_distance 128 scales the log, so every |offset| >= 91 shares the last bucket)
//   and shared by all layers. transformers always buckets into 32, whatever
//   relative_attention_num_buckets says, so the table needs at least 32 rows.
#include <cmath>

#include "rankemb/models/arch/layers.h"
#include "rankemb/models/config.h"
#include "rankemb/models/encoder.h"
#include "rankemb/models/registry.h"
#include "rankemb/models/weights.h"
#include "rankemb/util/error.h"

namespace rankemb::models {

namespace {

using torch::Tensor;
namespace nn = torch::nn;
using arch::Activation;
using arch::DenseAct;
using arch::DenseNorm;

constexpr std::int64_t kPaddingIdx = 1;   // MPNetEmbeddings.padding_idx
constexpr std::int64_t kBuckets = 32;     // MPNetEncoder.compute_position_bias's num_buckets
constexpr std::int64_t kMaxDistance = 128;

// transformers' MPNetEncoder.relative_position_bucket, op for op (float32 log, truncation to long).
Tensor relative_position_bucket(const Tensor& relative_position) {
  const std::int64_t half = kBuckets / 2, max_exact = half / 2;
  Tensor n = -relative_position;
  Tensor ret = n.lt(0).to(torch::kLong) * half;
  n = n.abs();
  Tensor is_small = n.lt(max_exact);
  Tensor large = max_exact + (torch::log(n.to(torch::kFloat) / static_cast<double>(max_exact)) /
                              std::log(static_cast<double>(kMaxDistance) / static_cast<double>(max_exact)) *
                              static_cast<double>(half - max_exact))
                                 .to(torch::kLong);
  large = torch::minimum(large, torch::full_like(large, half - 1));
  return ret + torch::where(is_small, n, large);
}

struct SelfAttentionImpl : nn::Module {
  SelfAttentionImpl(const HfConfig& c) : attention_(c.num_attention_heads, c.head_dim, c.attention_probs_dropout_prob) {
    q = register_module("q", nn::Linear(c.hidden_size, c.hidden_size));
    k = register_module("k", nn::Linear(c.hidden_size, c.hidden_size));
    v = register_module("v", nn::Linear(c.hidden_size, c.hidden_size));
    o = register_module("o", nn::Linear(c.hidden_size, c.hidden_size));
  }
  Tensor forward(const Tensor& x, const Tensor& position_bias, const Tensor& additive_mask) {
    return o(attention_.forward(x, q, k, v, position_bias, additive_mask, is_training()));
  }
  // x [N, H] packed (arch::Packing) -> [N, H]
  Tensor forward(const Tensor& x, const Tensor& position_bias, const arch::Packing& packing) {
    return packed_o_(o, attention_.forward(x, q, k, v, position_bias, packing), packing);
  }
  nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};

 private:
  arch::QkvAttention attention_;
  arch::PackedLinear packed_o_;
};
TORCH_MODULE(SelfAttention);

// MPNetAttention: LayerNorm(dropout(attn(x)) + x).
struct AttentionImpl : nn::Module {
  AttentionImpl(const HfConfig& c) : dropout_(c.hidden_dropout_prob) {
    attn = register_module("attn", SelfAttention(c));
    norm = register_module("LayerNorm", arch::layer_norm(c.hidden_size, c.layer_norm_eps));
  }
  template <typename MaskOrPacking>
  Tensor forward(const Tensor& x, const Tensor& position_bias, const MaskOrPacking& mask) {
    return arch::apply_norm(norm, torch::dropout(attn->forward(x, position_bias, mask), dropout_, is_training()) + x);
  }
  SelfAttention attn{nullptr};
  nn::LayerNorm norm{nullptr};
  double dropout_;
};
TORCH_MODULE(Attention);

using LayerImpl = arch::PostNormLayerImpl<Attention>;
using Layer = nn::ModuleHolder<LayerImpl>;

struct EncoderStackImpl : nn::Module {
  EncoderStackImpl(const HfConfig& c, Activation act) {
    layer = register_module("layer", nn::ModuleList());
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(Layer(c, act));
    relative_attention_bias =
        register_module("relative_attention_bias", nn::Embedding(c.relative_attention_num_buckets, c.num_attention_heads));
  }
  // [1, heads, T, T] for a sequence of T positions (broadcast over the batch).
  Tensor position_bias(std::int64_t t, const Tensor& like) {
    Tensor positions = torch::arange(t, like.options().dtype(torch::kLong));
    Tensor relative = positions.unsqueeze(0) - positions.unsqueeze(1);  // memory - context
    Tensor bias = relative_attention_bias(relative_position_bucket(relative)).permute({2, 0, 1}).unsqueeze(0);
    return bias.to(like.scalar_type()).contiguous();  // contiguous: the attention kernels read it in place
  }
  nn::ModuleList layer{nullptr};
  nn::Embedding relative_attention_bias{nullptr};
};
TORCH_MODULE(EncoderStack);

struct EmbeddingsImpl : nn::Module {
  EmbeddingsImpl(const HfConfig& c) : dropout_(c.hidden_dropout_prob) {
    word_embeddings = register_module(
        "word_embeddings", nn::Embedding(nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(kPaddingIdx)));
    position_embeddings = register_module(
        "position_embeddings",
        nn::Embedding(nn::EmbeddingOptions(c.max_position_embeddings, c.hidden_size).padding_idx(kPaddingIdx)));
    norm = register_module("LayerNorm", arch::layer_norm(c.hidden_size, c.layer_norm_eps));
  }
  // ids and position ids [B, T] (or [N] packed) -> [..., H]
  Tensor forward(const Tensor& input_ids, const Tensor& position_ids) {
    Tensor x = word_embeddings(input_ids) + position_embeddings(position_ids);
    return torch::dropout(arch::apply_norm(norm, x), dropout_, is_training());
  }
  nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
  nn::LayerNorm norm{nullptr};
  double dropout_;
};
TORCH_MODULE(Embeddings);

class MpnetNetwork final : public EncoderNetwork {
 public:
  MpnetNetwork(const HfConfig& c, bool with_pooler) : hidden_(c.hidden_size), max_positions_(c.max_position_embeddings) {
    Activation act = arch::parse_activation(c.hidden_act);
    embeddings_ = register_module("embeddings", Embeddings(c));
    encoder_ = register_module("encoder", EncoderStack(c, act));
    if (with_pooler) pooler_ = register_module("pooler", DenseAct(c.hidden_size, c.hidden_size, Activation::Tanh));
  }

  EncoderOutput forward(const Tensor& input_ids, const Tensor& attention_mask, bool output_hidden_states) override {
    Tensor x = embeddings_(input_ids, arch::offset_position_ids(input_ids, kPaddingIdx));
    Tensor additive = arch::additive_attention_mask(attention_mask, x.scalar_type());
    Tensor bias = encoder_->position_bias(input_ids.size(1), x);
    EncoderOutput out;
    if (output_hidden_states) out.hidden_states.push_back(x);
    for (const auto& layer : *encoder_->layer) {
      x = layer->as<LayerImpl>()->forward(x, bias, additive);
      if (output_hidden_states) out.hidden_states.push_back(x);
    }
    out.last_hidden_state = x;
    if (pooler_) out.pooler_output = pooler_(x.select(1, 0));
    return out;
  }

  bool has_packed_path() const override { return true; }
  EncoderOutput forward_unpadded(const Tensor& input_ids, const Tensor& attention_mask, bool output_hidden_states) override {
    const auto packing = arch::pack_tokens(attention_mask, *this);
    if (!packing) return forward(input_ids, attention_mask, output_hidden_states);
    const Tensor ids = input_ids.reshape({-1}).index_select(0, packing->index);
    Tensor x = embeddings_(ids, packing->positions + (kPaddingIdx + 1));  // right padding: real tokens count from 2
    const Tensor bias = encoder_->position_bias(packing->seq, x);
    return arch::run_packed<LayerImpl>(encoder_->layer, pooler_, x, *packing, output_hidden_states, bias);
  }

  std::int64_t hidden_size() const override { return hidden_; }
  // Positions run from padding_idx + 1.
  std::int64_t max_tokens() const override { return max_positions_ - kPaddingIdx - 1; }
  std::optional<std::int64_t> pad_token_id() const override { return kPaddingIdx; }

 private:
  std::int64_t hidden_, max_positions_;
  Embeddings embeddings_{nullptr};
  EncoderStack encoder_{nullptr};
  DenseAct pooler_{nullptr};
};

}  // namespace

std::shared_ptr<EncoderNetwork> build_mpnet(const HfConfig& c, WeightStore& w) {
  // config.cpp has checked relative_attention_num_buckets >= 32 and max_position_embeddings > 2.
  // MPNetForMaskedLM and friends keep the encoder under "mpnet." next to their heads.
  w.strip_prefix("mpnet.");
  for (const char* unused : {"embeddings.position_ids", "lm_head.", "classifier."}) w.ignore_prefix(unused);
  arch::require_encoder_sizes(c, w, "encoder.layer.{}.attention.attn.q.weight");
  w.require("encoder.relative_attention_bias.weight", {c.relative_attention_num_buckets, c.num_attention_heads});
  auto net = std::make_shared<MpnetNetwork>(c, w.has("pooler.dense.weight"));
  w.load_into(*net);
  return net;
}

}  // namespace rankemb::models
