// BERT and RoBERTa (one implementation; RoBERTa differs only in how position ids are made) with
// the module layout and parameter names of Hugging Face's BertModel / RobertaModel, so
// named_parameters() are the checkpoint's names and save() writes a loadable checkpoint.
#include <type_traits>

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
using arch::apply_norm;
using arch::layer_norm;

struct SelfAttentionImpl : nn::Module {
  SelfAttentionImpl(const HfConfig& c) : attention_(c.num_attention_heads, c.head_dim, c.attention_probs_dropout_prob) {
    query = register_module("query", nn::Linear(c.hidden_size, c.hidden_size));
    key = register_module("key", nn::Linear(c.hidden_size, c.hidden_size));
    value = register_module("value", nn::Linear(c.hidden_size, c.hidden_size));
  }
  // x [B, T, H], additive_mask [B, 1, 1, T] -> context [B, T, H]
  Tensor forward(const Tensor& x, const Tensor& additive_mask) {
    return attention_.forward(x, query, key, value, Tensor(), additive_mask, is_training());
  }
  // x [N, H] packed (arch::Packing) -> [N, H]
  Tensor forward(const Tensor& x, const arch::Packing& packing) {
    return attention_.forward(x, query, key, value, Tensor(), packing);
  }
  nn::Linear query{nullptr}, key{nullptr}, value{nullptr};

 private:
  arch::QkvAttention attention_;
};
TORCH_MODULE(SelfAttention);

struct AttentionImpl : nn::Module {
  AttentionImpl(const HfConfig& c) {
    self = register_module("self", SelfAttention(c));
    output = register_module("output", DenseNorm(c.hidden_size, c.hidden_size, c.layer_norm_eps, c.hidden_dropout_prob));
  }
  template <typename MaskOrPacking>
  Tensor forward(const Tensor& x, const MaskOrPacking& mask) {
    if constexpr (std::is_same_v<MaskOrPacking, arch::Packing>) {
      return output->forward_packed(self->forward(x, mask), x, mask);
    } else {
      return output(self->forward(x, mask), x);
    }
  }
  SelfAttention self{nullptr};
  DenseNorm output{nullptr};
};
TORCH_MODULE(Attention);

using LayerImpl = arch::PostNormLayerImpl<Attention>;
using Layer = nn::ModuleHolder<LayerImpl>;

struct EncoderStackImpl : nn::Module {
  EncoderStackImpl(const HfConfig& c, Activation act) {
    layer = register_module("layer", nn::ModuleList());
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(Layer(c, act));
  }
  nn::ModuleList layer{nullptr};
};
TORCH_MODULE(EncoderStack);

struct EmbeddingsImpl : nn::Module {
  EmbeddingsImpl(const HfConfig& c, bool roberta) : dropout_(c.hidden_dropout_prob) {
    auto pad = c.pad_token_id;
    auto word_opts = nn::EmbeddingOptions(c.vocab_size, c.hidden_size);
    if (pad) word_opts.padding_idx(*pad);
    word_embeddings = register_module("word_embeddings", nn::Embedding(word_opts));
    auto pos_opts = nn::EmbeddingOptions(c.max_position_embeddings, c.hidden_size);
    if (roberta && pad) pos_opts.padding_idx(*pad);
    position_embeddings = register_module("position_embeddings", nn::Embedding(pos_opts));
    if (c.type_vocab_size > 0) {
      token_type_embeddings = register_module("token_type_embeddings", nn::Embedding(c.type_vocab_size, c.hidden_size));
    }
    norm = register_module("LayerNorm", layer_norm(c.hidden_size, c.layer_norm_eps));
  }
  // ids and positions [B, T] (or [N] packed) -> [..., H]
  Tensor forward(const Tensor& input_ids, const Tensor& position_ids) {
    Tensor x = word_embeddings(input_ids) + position_embeddings(position_ids);
    // Single sentences: every token has type 0.
    if (token_type_embeddings) x = x + token_type_embeddings->weight[0];
    return torch::dropout(apply_norm(norm, x), dropout_, is_training());
  }
  nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  nn::LayerNorm norm{nullptr};
  double dropout_;
};
TORCH_MODULE(Embeddings);

class BertNetwork final : public EncoderNetwork {
 public:
  BertNetwork(const HfConfig& c, bool with_pooler)
      : roberta_(c.model_type == "roberta"), hidden_(c.hidden_size), max_positions_(c.max_position_embeddings),
        pad_(c.pad_token_id.value_or(roberta_ ? 1 : 0)) {
    Activation act = arch::parse_activation(c.hidden_act);
    embeddings_ = register_module("embeddings", Embeddings(c, roberta_));
    encoder_ = register_module("encoder", EncoderStack(c, act));
    if (with_pooler) {
      pooler_ = register_module("pooler", DenseAct(c.hidden_size, c.hidden_size, Activation::Tanh));
    }
  }

  EncoderOutput forward(const Tensor& input_ids, const Tensor& attention_mask, bool output_hidden_states) override {
    Tensor position_ids;
    if (roberta_) {
      position_ids = arch::offset_position_ids(input_ids, pad_);
    } else {
      position_ids = torch::arange(input_ids.size(1), input_ids.options().dtype(torch::kLong)).unsqueeze(0);
    }
    Tensor x = embeddings_(input_ids, position_ids);
    auto dtype = x.scalar_type();
    Tensor additive = arch::additive_attention_mask(attention_mask, dtype);

    EncoderOutput out;
    if (output_hidden_states) out.hidden_states.push_back(x);
    for (const auto& layer : *encoder_->layer) {
      x = layer->as<LayerImpl>()->forward(x, additive);
      if (output_hidden_states) out.hidden_states.push_back(x);
    }
    out.last_hidden_state = x;
    if (pooler_) out.pooler_output = pooler_(x.select(1, 0));  // dense + tanh over [CLS]
    return out;
  }

  bool has_packed_path() const override { return true; }
  EncoderOutput forward_unpadded(const Tensor& input_ids, const Tensor& attention_mask, bool output_hidden_states) override {
    const auto packing = arch::pack_tokens(attention_mask, *this);
    if (!packing) return forward(input_ids, attention_mask, output_hidden_states);
    const Tensor ids = input_ids.reshape({-1}).index_select(0, packing->index);
    // Right padding: a real token's absolute position is its place t (RoBERTa: pad + 1 + t).
    Tensor x = embeddings_(ids, roberta_ ? packing->positions + (pad_ + 1) : packing->positions);
    return arch::run_packed<LayerImpl>(encoder_->layer, pooler_, x, *packing, output_hidden_states);
  }

  std::int64_t hidden_size() const override { return hidden_; }
  std::int64_t max_tokens() const override { return roberta_ ? max_positions_ - pad_ - 1 : max_positions_; }
  std::optional<std::int64_t> pad_token_id() const override { return pad_; }

 private:
  bool roberta_;
  std::int64_t hidden_, max_positions_, pad_;
  Embeddings embeddings_{nullptr};
  EncoderStack encoder_{nullptr};
  DenseAct pooler_{nullptr};
};

}  // namespace

std::shared_ptr<EncoderNetwork> build_bert(const HfConfig& c, WeightStore& w) {
  bool roberta = c.model_type == "roberta";
  RANKEMB_CHECK(c.position_embedding_type == "absolute", ErrorCode::ModelFormat,
                "config.json: position_embedding_type \"{}\" is not supported (only \"absolute\")",
                c.position_embedding_type);
  RANKEMB_CHECK(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0, ErrorCode::ModelFormat,
                "config.json: hidden_size {} is not a multiple of num_attention_heads {}", c.hidden_size,
                c.num_attention_heads);
  // SimCSE-style checkpoints keep the encoder under "bert." / "roberta." next to training heads.
  w.strip_prefix(roberta ? "roberta." : "bert.");
  // SimCSE's MLP head over [CLS] is what BERT's pooler is (its converter renames it so too).
  if (w.has("mlp.dense.weight") && !w.has("pooler.dense.weight")) w.rename_prefix("mlp.", "pooler.");
  for (const char* unused : {"embeddings.position_ids", "embeddings.token_type_ids", "lm_head.", "cls.", "mlp."}) {
    w.ignore_prefix(unused);
  }
  arch::require_encoder_sizes(c, w, "encoder.layer.{}.attention.self.query.weight");
  auto net = std::make_shared<BertNetwork>(c, w.has("pooler.dense.weight"));
  w.load_into(*net);
  return net;
}

}  // namespace rankemb::models
