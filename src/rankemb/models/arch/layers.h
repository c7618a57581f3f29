// Building blocks shared by the encoder architectures of this folder (BERT/RoBERTa, MPNet):
// activations by their config.json names, post-norm residual blocks with Hugging Face's module
// names ("dense" + "LayerNorm"), the additive attention mask, and scaled dot-product attention with
// a fused q/k/v projection for inference. Internal to models/arch; each arch file composes them
// under its own checkpoint's parameter names.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include "rankemb/models/encoder.h"
#include "rankemb/models/kernels/int8_linear.h"

namespace rankemb::models {
struct HfConfig;
class WeightStore;
}  // namespace rankemb::models

namespace rankemb::models::arch {

// The sizes config.json asks for, checked against the weights before a network of them is
// allocated: the word and position tables, the last layer's feed-forward, and no layer beyond
// num_hidden_layers (`layer_probe` names a tensor every layer has, "{}" standing for its index).
void require_encoder_sizes(const HfConfig& c, const WeightStore& w, std::string_view layer_probe);

enum class Activation { Gelu, GeluTanh, Relu, Silu, Tanh };

// config.json's hidden_act ("gelu", "gelu_new", "relu", "silu", ...); Error(ModelFormat) otherwise.
Activation parse_activation(const std::string& name);
torch::Tensor activate(const torch::Tensor& x, Activation a);

torch::nn::LayerNorm layer_norm(std::int64_t width, double eps);
// LayerNorm computed in float32 for 16-bit inputs and cast back: libtorch 1.13's CPU LayerNorm has
// no vectorized bfloat16 kernel (~13x slower than float32), and float32 is the more accurate.
torch::Tensor apply_norm(torch::nn::LayerNorm& norm, const torch::Tensor& x);

// RoBERTa's and MPNet's position ids: real tokens numbered from pad + 1, pads given pad
// (transformers' create_position_ids_from_input_ids).
torch::Tensor offset_position_ids(const torch::Tensor& input_ids, std::int64_t pad);

// (1 - mask) * lowest(dtype) as [B, 1, 1, T]: pads get the dtype's lowest value, so exp() of their
// scores is exactly 0 (transformers' get_extended_attention_mask).
torch::Tensor additive_attention_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype);

// Inference without padding. A right-padded [B, T] batch of short and long sentences spends most
// of its products on pads (a serve batch of 34 random STS-B sentences: 1,054 padded tokens for
// 486 real ones). Every layer but attention works token by token, so the packed path runs them on
// the real tokens only, as one [N, H] matrix, and attention (kernels/attention) per sentence over
// its own rows. The real tokens' states are those of the padded forward up to float32 rounding.
struct Packing {
  torch::Tensor index;                // [N] int64: b·T + t of each real token, sentence by sentence
  torch::Tensor positions;            // [N] int64: t, the token's place in its sentence
  std::vector<std::int64_t> offsets;  // B + 1: sentence b is packed rows offsets[b] .. offsets[b + 1] - 1
  std::int64_t batch = 0, seq = 0;
  bool int8 = false;                  // the linear layers in int8 (EncoderNetwork::int8_inference)
};
// The packing of `attention_mask` [B, T] when the packed path applies: inference (no grad, and
// `network` in eval mode: the packed attention has no dropout), a float32 CPU network, kernels
// enabled (RANKEMB_KERNELS), and right padding (each row's ones before its zeros, at least one).
// nullopt otherwise: run the padded forward.
std::optional<Packing> pack_tokens(const torch::Tensor& attention_mask, const EncoderNetwork& network);
// [N, ...] packed rows -> [B, T, ...] with zeros at the pads.
torch::Tensor unpack(const torch::Tensor& packed, const Packing& p);
// The first token of each sentence, [B, ...] (what x.select(1, 0) is for a padded batch).
torch::Tensor first_tokens(const torch::Tensor& packed, const Packing& p);

// The parameters a cached copy was made from: their storages (held, so a freed one cannot come
// back at the same address and pass for current) and version counters (bumped by in-place
// changes: an optimizer step, load_weights).
class ParameterStamp {
 public:
  ParameterStamp() = default;
  explicit ParameterStamp(std::initializer_list<const torch::Tensor*> params);
  bool operator==(const ParameterStamp& other) const;

 private:
  std::vector<std::pair<c10::Storage, std::uint32_t>> items_;
};

// A linear layer of the packed path: x · Wᵀ + b in float32, or with Packing::int8 through an int8
// copy of the weights (kernels/int8_linear.h), made on first use and remade when they change.
class PackedLinear {
 public:
  torch::Tensor operator()(torch::nn::Linear& linear, const torch::Tensor& x, const Packing& packing);
  // The same for a weight [out, in] and bias [out] the caller holds (a fused projection).
  torch::Tensor operator()(const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& x,
                           const Packing& packing);

 private:
  std::mutex mutex_;  // guards the two below
  ParameterStamp stamp_;
  std::shared_ptr<const kernels::Int8Linear> int8_;
};

// "dense" + "LayerNorm" applied to (dense(x) + residual): HF's BertSelfOutput, BertOutput and
// MPNetOutput.
struct DenseNormImpl : torch::nn::Module {
  DenseNormImpl(std::int64_t in, std::int64_t out, double eps, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);
  // The packed path (no dropout: inference only). Not an overload of forward: the module holder's
  // operator() needs a single forward.
  torch::Tensor forward_packed(const torch::Tensor& x, const torch::Tensor& residual, const Packing& packing);
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  double dropout_;
  PackedLinear packed_;
};
TORCH_MODULE(DenseNorm);

// "dense" then the activation: HF's BertIntermediate, MPNetIntermediate, and the poolers (tanh).
struct DenseActImpl : torch::nn::Module {
  DenseActImpl(std::int64_t in, std::int64_t out, Activation act);
  torch::Tensor forward(const torch::Tensor& x) { return activate(dense(x), act_); }
  torch::Tensor forward_packed(const torch::Tensor& x, const Packing& packing) {
    return activate(packed_(dense, x, packing), act_);
  }
  torch::nn::Linear dense{nullptr};
  Activation act_;
  PackedLinear packed_;
};
TORCH_MODULE(DenseAct);

// One post-norm transformer layer with HF's names, "attention" + "intermediate" + "output":
// a = attention(x, extra...), then output(intermediate(a), a). BERT's and MPNet's layers differ only
// in their attention module (and what it takes besides x), which is the parameter.
template <typename AttentionHolder>
struct PostNormLayerImpl : torch::nn::Module {
  template <typename Config>
  PostNormLayerImpl(const Config& c, Activation act) {
    attention = register_module("attention", AttentionHolder(c));
    intermediate = register_module("intermediate", DenseAct(c.hidden_size, c.intermediate_size, act));
    output = register_module("output", DenseNorm(c.intermediate_size, c.hidden_size, c.layer_norm_eps, c.hidden_dropout_prob));
  }
  template <typename... Extra>
  torch::Tensor forward(const torch::Tensor& x, const Extra&... extra) {
    torch::Tensor a = attention->forward(x, extra...);  // ->forward: the holder's operator() cannot pick an overload
    return output(intermediate(a), a);
  }
  // The packed path (arch::Packing): x [N, H]; the attention module takes (x, extra..., packing).
  template <typename... Extra>
  torch::Tensor forward_packed(const torch::Tensor& x, const Packing& packing, const Extra&... extra) {
    torch::Tensor a = attention->forward(x, extra..., packing);
    return output->forward_packed(intermediate->forward_packed(a, packing), a, packing);
  }
  AttentionHolder attention{nullptr};
  DenseAct intermediate{nullptr};
  DenseNorm output{nullptr};
};

// The packed forward after the embeddings: x [N, H] through `layers` (each a LayerImpl, called as
// forward_packed(x, packing, extra...)), the states unpacked to [B, T, H] and `pooler` (when it is set)
// over each sentence's first token.
template <typename LayerImpl, typename... Extra>
EncoderOutput run_packed(torch::nn::ModuleList& layers, DenseAct& pooler, torch::Tensor x, const Packing& packing,
                         bool output_hidden_states, const Extra&... extra) {
  EncoderOutput out;
  if (output_hidden_states) out.hidden_states.push_back(unpack(x, packing));
  for (const auto& layer : *layers) {
    x = layer->as<LayerImpl>()->forward_packed(x, packing, extra...);
    if (output_hidden_states) out.hidden_states.push_back(unpack(x, packing));
  }
  out.last_hidden_state = output_hidden_states ? out.hidden_states.back() : unpack(x, packing);
  if (pooler) out.pooler_output = pooler(first_tokens(x, packing));
  return out;
}

// Multi-head scaled dot-product attention over three projections the caller owns (named as its
// checkpoint names them). In inference (eval mode, no grad) the three are one [3H, H] product,
// rebuilt whenever a parameter is replaced, modified in place (an optimizer step, load_weights) or
// converted (to(dtype) swaps the storage), and float32 on the CPU runs kernels/attention on its
// output. The autograd path of training keeps libtorch's operators (a kernel pair was tried: ~2%
// of a MiniLM step, for a step-1 loss that no longer matched to the bit); what a run encodes in
// inference (teacher targets, dev scoring) takes the kernel.
class QkvAttention {
 public:
  QkvAttention(std::int64_t n_heads, std::int64_t head_dim, double dropout) : n_heads_(n_heads), head_dim_(head_dim), dropout_(dropout) {}
  // x [B, T, H]; `bias` (e.g. MPNet's relative position bias, [1|B, heads, T, T]) is added to the
  // scaled scores before `additive_mask` [B, 1, 1, T], or skipped when undefined. -> [B, T, H].
  torch::Tensor forward(const torch::Tensor& x, torch::nn::Linear& q, torch::nn::Linear& k, torch::nn::Linear& v,
                        const torch::Tensor& bias, const torch::Tensor& additive_mask, bool training);
  // Packed inference (pack_tokens): x [N, H] -> [N, H]; `bias` undefined or shared by the batch
  // ([1, heads, T, T] for the padded length T, each sentence reading its top-left block).
  torch::Tensor forward(const torch::Tensor& x, torch::nn::Linear& q, torch::nn::Linear& k, torch::nn::Linear& v,
                        const torch::Tensor& bias, const Packing& packing);

 private:
  struct Fused {
    torch::Tensor weight, bias;
  };
  // A copy (two tensor handles) taken under the lock.
  Fused fused(torch::nn::Linear& q, torch::nn::Linear& k, torch::nn::Linear& v);

  std::int64_t n_heads_, head_dim_;
  double dropout_;
  std::mutex mutex_;  // guards fused_ and fused_stamp_
  Fused fused_;
  ParameterStamp fused_stamp_;
  PackedLinear packed_;
};

// The dtype's lowest finite value (torch.finfo(dtype).min).
double lowest_value(torch::ScalarType t);

}  // namespace rankemb::models::arch
