// Building blocks shared by the encoder architectures of this folder (BERT/RoBERTa, MPNet):
// activations by their config.json names, post-norm residual blocks with Hugging Face's module
// names ("dense" + "LayerNorm"), the additive attention mask, and scaled dot-product attention with
// a fused q/k/v projection for inference. Internal to models/arch; each arch file composes them
// under its own checkpoint's parameter names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

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

// "dense" + "LayerNorm" applied to (dense(x) + residual): HF's BertSelfOutput, BertOutput and
// MPNetOutput.
struct DenseNormImpl : torch::nn::Module {
  DenseNormImpl(std::int64_t in, std::int64_t out, double eps, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  double dropout_;
};
TORCH_MODULE(DenseNorm);

// "dense" then the activation: HF's BertIntermediate, MPNetIntermediate, and the poolers (tanh).
struct DenseActImpl : torch::nn::Module {
  DenseActImpl(std::int64_t in, std::int64_t out, Activation act);
  torch::Tensor forward(const torch::Tensor& x) { return activate(dense(x), act_); }
  torch::nn::Linear dense{nullptr};
  Activation act_;
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
    torch::Tensor a = attention(x, extra...);
    return output(intermediate(a), a);
  }
  AttentionHolder attention{nullptr};
  DenseAct intermediate{nullptr};
  DenseNorm output{nullptr};
};

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

 private:
  // The stamp holds the storages, so a freed one cannot come back at the same address and pass
  // for current.
  using Stamp = std::vector<std::pair<c10::Storage, std::uint32_t>>;
  struct Fused {
    torch::Tensor weight, bias;
    Stamp stamp;
  };
  const Fused& fused(torch::nn::Linear& q, torch::nn::Linear& k, torch::nn::Linear& v);

  std::int64_t n_heads_, head_dim_;
  double dropout_;
  Fused fused_;
};

// The dtype's lowest finite value (torch.finfo(dtype).min).
double lowest_value(torch::ScalarType t);

}  // namespace rankemb::models::arch
