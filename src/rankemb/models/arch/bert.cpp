// BERT and RoBERTa (one implementation; RoBERTa differs only in how position ids are made) with
// the module layout and parameter names of Hugging Face's BertModel / RobertaModel, so
// named_parameters() are the checkpoint's names and save() writes a loadable checkpoint.
#include <cmath>
#include <limits>

#include "rankemb/models/config.h"
#include "rankemb/models/encoder.h"
#include "rankemb/models/registry.h"
#include "rankemb/models/weights.h"
#include "rankemb/util/error.h"

namespace rankemb::models {

namespace {

using torch::Tensor;
namespace nn = torch::nn;

enum class Activation { Gelu, GeluTanh, Relu, Silu, Tanh };

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GeluTanh;
  if (name == "relu") return Activation::Relu;
  if (name == "silu" || name == "swish") return Activation::Silu;
  fail(ErrorCode::ModelFormat, "config.json: hidden_act \"{}\" is not supported (gelu, gelu_new, relu, silu)", name);
}

Tensor activate(const Tensor& x, Activation a) {
  switch (a) {
    case Activation::Gelu: return torch::gelu(x);  // exact (erf) GELU, as HF's "gelu"
    case Activation::GeluTanh: return torch::gelu(x, "tanh");
    case Activation::Relu: return torch::relu(x);
    case Activation::Silu: return torch::silu(x);
    case Activation::Tanh: return torch::tanh(x);
  }
  return x;
}

nn::LayerNorm layer_norm(std::int64_t h, double eps) {
  return nn::LayerNorm(nn::LayerNormOptions({h}).eps(eps));
}

// libtorch 1.13's CPU LayerNorm has no vectorized bfloat16 kernel (~13x slower than float32 on
// the same data, a fifth of a bfloat16 forward), so 16-bit inputs are normalized in float32 and
// cast back, which is also the more accurate of the two.
Tensor apply_norm(nn::LayerNorm& norm, const Tensor& x) {
  auto t = x.scalar_type();
  if (t != torch::kBFloat16 && t != torch::kHalf) return norm(x);
  const auto& o = norm->options;
  return torch::layer_norm(x.to(torch::kFloat), o.normalized_shape(), norm->weight.to(torch::kFloat),
                           norm->bias.to(torch::kFloat), o.eps())
      .to(t);
}

// "dense" + "LayerNorm" applied to (dense(x) + residual): HF's BertSelfOutput and BertOutput.
struct DenseNormImpl : nn::Module {
  DenseNormImpl(std::int64_t in, std::int64_t out, double eps, double dropout) : dropout_(dropout) {
    dense = register_module("dense", nn::Linear(in, out));
    norm = register_module("LayerNorm", layer_norm(out, eps));
  }
  Tensor forward(const Tensor& x, const Tensor& residual) {
    return apply_norm(norm, torch::dropout(dense(x), dropout_, is_training()) + residual);
  }
  nn::Linear dense{nullptr};
  nn::LayerNorm norm{nullptr};
  double dropout_;
};
TORCH_MODULE(DenseNorm);

struct SelfAttentionImpl : nn::Module {
  SelfAttentionImpl(const HfConfig& c) : n_heads(c.num_attention_heads), head_dim(c.head_dim),
                                         dropout_(c.attention_probs_dropout_prob) {
    query = register_module("query", nn::Linear(c.hidden_size, c.hidden_size));
    key = register_module("key", nn::Linear(c.hidden_size, c.hidden_size));
    value = register_module("value", nn::Linear(c.hidden_size, c.hidden_size));
  }
  // x [B, T, H], additive_mask [B, 1, 1, T] -> context [B, T, H]
  Tensor forward(const Tensor& x, const Tensor& additive_mask) {
    auto b = x.size(0), t = x.size(1), h = n_heads * head_dim;
    auto heads = [&](const Tensor& y) { return y.view({b, t, n_heads, head_dim}).transpose(1, 2); };
    Tensor q, k, v;
    if (!is_training() && !torch::GradMode::is_enabled()) {
      // Inference: one [3H, H] product instead of three (a better GEMM shape, one pass over x).
      const Fused& f = fused();
      Tensor qkv = torch::addmm(f.bias, x.reshape({b * t, x.size(2)}), f.weight.t()).view({b, t, 3, n_heads, head_dim});
      q = qkv.select(2, 0).transpose(1, 2);
      k = qkv.select(2, 1).transpose(1, 2);
      v = qkv.select(2, 2).transpose(1, 2);
    } else {
      q = heads(query(x));
      k = heads(key(x));
      v = heads(value(x));
    }
    Tensor scores = torch::matmul(q, k.transpose(-1, -2)).div_(std::sqrt(static_cast<double>(head_dim)));
    Tensor probs = torch::softmax(scores.add_(additive_mask), -1);
    probs = torch::dropout(probs, dropout_, is_training());
    return torch::matmul(probs, v).transpose(1, 2).reshape({b, t, h});
  }
  nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  std::int64_t n_heads, head_dim;
  double dropout_;

 private:
  // The concatenated q/k/v projection, rebuilt whenever a parameter is replaced, modified in place
  // (an optimizer step, load_weights) or converted (to(dtype) swaps the storage). The stamp holds
  // the storages, so a freed one cannot come back at the same address and pass for current.
  using Stamp = std::vector<std::pair<c10::Storage, std::uint32_t>>;
  struct Fused {
    Tensor weight, bias;
    Stamp stamp;
  };
  const Fused& fused() {
    Stamp stamp;
    for (const nn::Linear* l : {&query, &key, &value}) {
      for (const Tensor* p : {&(*l)->weight, &(*l)->bias}) {
        stamp.emplace_back(p->storage(), p->is_inference() ? 0 : p->_version());
      }
    }
    bool same = stamp.size() == fused_.stamp.size();
    for (std::size_t i = 0; same && i < stamp.size(); ++i) {
      same = stamp[i].first.is_alias_of(fused_.stamp[i].first) && stamp[i].second == fused_.stamp[i].second;
    }
    if (!same) {
      torch::NoGradGuard no_grad;
      fused_.weight = torch::cat({query->weight, key->weight, value->weight}, 0);
      fused_.bias = torch::cat({query->bias, key->bias, value->bias}, 0);
      fused_.stamp = std::move(stamp);
    }
    return fused_;
  }
  Fused fused_;
};
TORCH_MODULE(SelfAttention);

struct AttentionImpl : nn::Module {
  AttentionImpl(const HfConfig& c) {
    self = register_module("self", SelfAttention(c));
    output = register_module("output", DenseNorm(c.hidden_size, c.hidden_size, c.layer_norm_eps, c.hidden_dropout_prob));
  }
  Tensor forward(const Tensor& x, const Tensor& additive_mask) { return output(self(x, additive_mask), x); }
  SelfAttention self{nullptr};
  DenseNorm output{nullptr};
};
TORCH_MODULE(Attention);

struct DenseActImpl : nn::Module {
  DenseActImpl(std::int64_t in, std::int64_t out, Activation act) : act_(act) {
    dense = register_module("dense", nn::Linear(in, out));
  }
  Tensor forward(const Tensor& x) { return activate(dense(x), act_); }
  nn::Linear dense{nullptr};
  Activation act_;
};
TORCH_MODULE(DenseAct);

struct LayerImpl : nn::Module {
  LayerImpl(const HfConfig& c, Activation act) {
    attention = register_module("attention", Attention(c));
    intermediate = register_module("intermediate", DenseAct(c.hidden_size, c.intermediate_size, act));
    output = register_module("output", DenseNorm(c.intermediate_size, c.hidden_size, c.layer_norm_eps, c.hidden_dropout_prob));
  }
  Tensor forward(const Tensor& x, const Tensor& additive_mask) {
    Tensor a = attention(x, additive_mask);
    return output(intermediate(a), a);
  }
  Attention attention{nullptr};
  DenseAct intermediate{nullptr};
  DenseNorm output{nullptr};
};
TORCH_MODULE(Layer);

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
    Activation act = parse_activation(c.hidden_act);
    embeddings_ = register_module("embeddings", Embeddings(c, roberta_));
    encoder_ = register_module("encoder", EncoderStack(c, act));
    if (with_pooler) {
      pooler_ = register_module("pooler", DenseAct(c.hidden_size, c.hidden_size, Activation::Tanh));
    }
  }

  EncoderOutput forward(const Tensor& input_ids, const Tensor& attention_mask, bool output_hidden_states) override {
    Tensor position_ids;
    if (roberta_) {
      // RoBERTa numbers real tokens from padding_idx + 1 and gives pads padding_idx.
      Tensor real = input_ids.ne(pad_).to(torch::kLong);
      position_ids = torch::cumsum(real, 1) * real + pad_;
    } else {
      position_ids = torch::arange(input_ids.size(1), input_ids.options().dtype(torch::kLong)).unsqueeze(0);
    }
    Tensor x = embeddings_(input_ids, position_ids);
    auto dtype = x.scalar_type();
    // Pads get the dtype's lowest value, so exp() of their scores is exactly 0.
    Tensor additive = (1.0 - attention_mask.to(dtype)) * lowest(dtype);
    additive = additive.unsqueeze(1).unsqueeze(2);

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

  std::int64_t hidden_size() const override { return hidden_; }
  std::int64_t max_tokens() const override { return roberta_ ? max_positions_ - pad_ - 1 : max_positions_; }
  std::optional<std::int64_t> pad_token_id() const override { return pad_; }

 private:
  static double lowest(torch::ScalarType t) {
    if (t == torch::kBFloat16) return -3.3895313892515355e38;  // torch.finfo(torch.bfloat16).min
    if (t == torch::kHalf) return -65504.0;
    return std::numeric_limits<float>::lowest();
  }

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
  // The sizes config.json asks for, against the weights, before a network of them is allocated.
  w.require("embeddings.word_embeddings.weight", {c.vocab_size, c.hidden_size});
  w.require("embeddings.position_embeddings.weight", {c.max_position_embeddings, c.hidden_size});
  w.require(fmt::format("encoder.layer.{}.intermediate.dense.weight", c.num_hidden_layers - 1),
            {c.intermediate_size, c.hidden_size});
  RANKEMB_CHECK(!w.has(fmt::format("encoder.layer.{}.attention.self.query.weight", c.num_hidden_layers)),
                ErrorCode::ModelFormat, "config.json: num_hidden_layers is {}, but the weights have more layers",
                c.num_hidden_layers);
  auto net = std::make_shared<BertNetwork>(c, w.has("pooler.dense.weight"));
  w.load_into(*net);
  return net;
}

}  // namespace rankemb::models
