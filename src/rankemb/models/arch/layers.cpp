#include "rankemb/models/arch/layers.h"

#include <ATen/record_function.h>

#include <cmath>
#include <limits>

#include "rankemb/models/config.h"
#include "rankemb/models/kernels/attention.h"
#include "rankemb/models/kernels/switch.h"
#include "rankemb/models/weights.h"
#include "rankemb/util/error.h"

namespace rankemb::models::arch {

using torch::Tensor;
namespace nn = torch::nn;

void require_encoder_sizes(const HfConfig& c, const WeightStore& w, std::string_view layer_probe) {
  w.require("embeddings.word_embeddings.weight", {c.vocab_size, c.hidden_size});
  w.require("embeddings.position_embeddings.weight", {c.max_position_embeddings, c.hidden_size});
  w.require(fmt::format("encoder.layer.{}.intermediate.dense.weight", c.num_hidden_layers - 1),
            {c.intermediate_size, c.hidden_size});
  RANKEMB_CHECK(!w.has(fmt::format(fmt::runtime(layer_probe), c.num_hidden_layers)), ErrorCode::ModelFormat,
                "config.json: num_hidden_layers is {}, but the weights have more layers", c.num_hidden_layers);
}

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

nn::LayerNorm layer_norm(std::int64_t width, double eps) {
  return nn::LayerNorm(nn::LayerNormOptions({width}).eps(eps));
}

Tensor apply_norm(nn::LayerNorm& norm, const Tensor& x) {
  auto t = x.scalar_type();
  if (t != torch::kBFloat16 && t != torch::kHalf) return norm(x);
  const auto& o = norm->options;
  return torch::layer_norm(x.to(torch::kFloat), o.normalized_shape(), norm->weight.to(torch::kFloat),
                           norm->bias.to(torch::kFloat), o.eps())
      .to(t);
}

double lowest_value(torch::ScalarType t) {
  if (t == torch::kBFloat16) return -3.3895313892515355e38;  // torch.finfo(torch.bfloat16).min
  if (t == torch::kHalf) return -65504.0;
  return std::numeric_limits<float>::lowest();
}

Tensor offset_position_ids(const Tensor& input_ids, std::int64_t pad) {
  Tensor real = input_ids.ne(pad).to(torch::kLong);
  return torch::cumsum(real, 1) * real + pad;
}

Tensor additive_attention_mask(const Tensor& attention_mask, torch::ScalarType dtype) {
  Tensor additive = (1.0 - attention_mask.to(dtype)) * lowest_value(dtype);
  return additive.unsqueeze(1).unsqueeze(2);
}

DenseNormImpl::DenseNormImpl(std::int64_t in, std::int64_t out, double eps, double dropout) : dropout_(dropout) {
  dense = register_module("dense", nn::Linear(in, out));
  norm = register_module("LayerNorm", layer_norm(out, eps));
}

Tensor DenseNormImpl::forward(const Tensor& x, const Tensor& residual) {
  return apply_norm(norm, torch::dropout(dense(x), dropout_, is_training()) + residual);
}

Tensor DenseNormImpl::forward_packed(const Tensor& x, const Tensor& residual, const Packing& packing) {
  return apply_norm(norm, packed_(dense, x, packing) + residual);  // inference: no dropout
}

ParameterStamp::ParameterStamp(std::initializer_list<const Tensor*> params) {
  for (const Tensor* p : params) items_.emplace_back(p->storage(), p->is_inference() ? 0 : p->_version());
}

bool ParameterStamp::operator==(const ParameterStamp& other) const {
  if (items_.size() != other.items_.size()) return false;
  for (std::size_t i = 0; i < items_.size(); ++i) {
    if (!items_[i].first.is_alias_of(other.items_[i].first) || items_[i].second != other.items_[i].second) return false;
  }
  return true;
}

Tensor PackedLinear::operator()(nn::Linear& linear, const Tensor& x, const Packing& packing) {
  if (!packing.int8) return linear(x);
  return (*this)(linear->weight, linear->bias, x, packing);
}

Tensor PackedLinear::operator()(const Tensor& weight, const Tensor& bias, const Tensor& x, const Packing& packing) {
  if (!packing.int8) return bias.defined() ? torch::addmm(bias, x, weight.t()) : torch::mm(x, weight.t());
  std::shared_ptr<const kernels::Int8Linear> int8;
  {
    // Several server workers may run this layer at once (serve --workers).
    std::lock_guard lock(mutex_);
    ParameterStamp stamp = bias.defined() ? ParameterStamp{&weight, &bias} : ParameterStamp{&weight};
    if (!int8_ || !(stamp == stamp_)) {
      const Tensor w = weight.detach().to(torch::kFloat).contiguous();
      const Tensor b = bias.defined() ? bias.detach().to(torch::kFloat).contiguous() : Tensor();
      int8_ = std::make_shared<const kernels::Int8Linear>(w.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
                                                          w.size(0), w.size(1));
      stamp_ = std::move(stamp);
    }
    int8 = int8_;
  }
  const Tensor in = x.contiguous();
  RECORD_FUNCTION("rankemb::linear_int8", std::vector<c10::IValue>({in}));
  Tensor out = torch::empty({in.size(0), int8->out()}, in.options());
  int8->forward(in.data_ptr<float>(), in.size(0), out.data_ptr<float>());
  return out;
}

DenseActImpl::DenseActImpl(std::int64_t in, std::int64_t out, Activation act) : act_(act) {
  dense = register_module("dense", nn::Linear(in, out));
}

namespace {

// The kernel reads the fused projection's [B, T, 3, heads, D] output in place (CPU, float32,
// contiguous), with a [B, T] mask and a [1 | B, heads, T, T] bias (or none). Anything else, or
// RANKEMB_KERNELS=off, runs libtorch's ops.
bool kernel_applies(const Tensor& qkv, const Tensor& bias, const Tensor& mask, std::int64_t heads) {
  const std::int64_t b = qkv.size(0), t = qkv.size(1);
  if (!kernels::enabled() || !qkv.device().is_cpu() || qkv.scalar_type() != torch::kFloat || !qkv.is_contiguous()) {
    return false;
  }
  if (mask.scalar_type() != torch::kFloat || mask.numel() != b * t || !mask.is_contiguous()) return false;
  return !bias.defined() || (bias.scalar_type() == torch::kFloat && bias.is_contiguous() && bias.dim() == 4 &&
                             (bias.size(0) == 1 || bias.size(0) == b) && bias.size(1) == heads &&
                             bias.size(2) == t && bias.size(3) == t);
}

// The kernel's arguments for the fused projection's output `qkv` (q, k, v of a token side by side
// in one row) over `batch` sentences of up to `seq` tokens; the caller adds the mask or offsets.
kernels::AttentionArgs interleaved_args(const Tensor& qkv, const Tensor& bias, std::int64_t batch, std::int64_t seq,
                                        std::int64_t heads, std::int64_t head_dim) {
  const std::int64_t width = heads * head_dim;
  const float* rows = qkv.data_ptr<float>();
  return {.q = rows,
          .k = rows + width,
          .v = rows + 2 * width,
          .stride = 3 * width,
          .bias = bias.defined() ? bias.data_ptr<float>() : nullptr,
          .bias_batch_stride = bias.defined() && bias.size(0) == batch ? heads * seq * seq : 0,
          .batch = batch,
          .seq = seq,
          .heads = heads,
          .head_dim = head_dim};
}

Tensor kernel_attention(const Tensor& qkv, const Tensor& bias, const Tensor& mask, std::int64_t heads,
                        std::int64_t head_dim) {
  RECORD_FUNCTION("rankemb::attention_f32", std::vector<c10::IValue>({qkv}));
  const std::int64_t b = qkv.size(0), t = qkv.size(1);
  Tensor out = torch::empty({b, t, heads * head_dim}, qkv.options());
  kernels::AttentionArgs a = interleaved_args(qkv, bias, b, t, heads, head_dim);
  a.additive_mask = mask.data_ptr<float>();
  kernels::attention_f32(a, out.data_ptr<float>());
  return out;
}

}  // namespace

std::optional<Packing> pack_tokens(const Tensor& attention_mask, const EncoderNetwork& network) {
  const auto params = network.parameters();
  if (torch::GradMode::is_enabled() || network.is_training() || !kernels::enabled() || params.empty() ||
      !params.front().device().is_cpu() || params.front().scalar_type() != torch::kFloat || attention_mask.dim() != 2) {
    return std::nullopt;
  }
  const Tensor mask = attention_mask.to(torch::kCPU, torch::kLong).contiguous();
  Packing p;
  p.int8 = network.int8_inference();
  p.batch = mask.size(0);
  p.seq = mask.size(1);
  p.offsets.assign(1, 0);
  p.offsets.reserve(static_cast<std::size_t>(p.batch) + 1);
  const std::int64_t* m = mask.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < p.batch; ++b) {
    const std::int64_t* row = m + b * p.seq;
    std::int64_t len = 0;
    while (len < p.seq && row[len] != 0) ++len;
    if (len == 0) return std::nullopt;  // an empty row has no first token for the [CLS] poolers
    for (std::int64_t t = len; t < p.seq; ++t) {
      if (row[t] != 0) return std::nullopt;  // not right-padded
    }
    p.offsets.push_back(p.offsets.back() + len);
  }
  p.index = torch::empty({p.offsets.back()}, torch::kLong);
  p.positions = torch::empty({p.offsets.back()}, torch::kLong);
  std::int64_t *index = p.index.data_ptr<std::int64_t>(), *positions = p.positions.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < p.batch; ++b) {
    for (std::int64_t r = p.offsets[b]; r < p.offsets[b + 1]; ++r) {
      positions[r] = r - p.offsets[b];
      index[r] = b * p.seq + positions[r];
    }
  }
  return p;
}

Tensor unpack(const Tensor& packed, const Packing& p) {
  std::vector<std::int64_t> shape{p.batch * p.seq};
  for (std::int64_t d = 1; d < packed.dim(); ++d) shape.push_back(packed.size(d));
  Tensor out = torch::zeros(shape, packed.options()).index_copy_(0, p.index, packed);
  shape[0] = p.seq;
  shape.insert(shape.begin(), p.batch);
  return out.view(shape);
}

Tensor first_tokens(const Tensor& packed, const Packing& p) {
  const Tensor first = torch::tensor(std::vector<std::int64_t>(p.offsets.begin(), p.offsets.end() - 1), torch::kLong);
  return packed.index_select(0, first);
}

Tensor QkvAttention::forward(const Tensor& x, nn::Linear& q_proj, nn::Linear& k_proj, nn::Linear& v_proj,
                             const Tensor& bias, const Packing& packing) {
  RANKEMB_CHECK(!bias.defined() || (bias.scalar_type() == torch::kFloat && bias.is_contiguous() && bias.dim() == 4 &&
                                    bias.size(0) == 1 && bias.size(1) == n_heads_ && bias.size(2) == packing.seq &&
                                    bias.size(3) == packing.seq),
                ErrorCode::Other, "packed attention takes a float32 [1, heads, T, T] bias");
  const Fused f = fused(q_proj, k_proj, v_proj);
  const Tensor qkv = packed_(f.weight, f.bias, x, packing).contiguous();  // [N, 3, heads, D]
  RECORD_FUNCTION("rankemb::attention_f32", std::vector<c10::IValue>({qkv}));
  Tensor out = torch::empty({x.size(0), n_heads_ * head_dim_}, qkv.options());
  kernels::AttentionArgs a = interleaved_args(qkv, bias, packing.batch, packing.seq, n_heads_, head_dim_);
  a.offsets = packing.offsets.data();
  kernels::attention_f32(a, out.data_ptr<float>());
  return out;
}

Tensor QkvAttention::forward(const Tensor& x, nn::Linear& q_proj, nn::Linear& k_proj, nn::Linear& v_proj,
                             const Tensor& bias, const Tensor& additive_mask, bool training) {
  auto b = x.size(0), t = x.size(1), h = n_heads_ * head_dim_;
  auto heads = [&](const Tensor& y) { return y.view({b, t, n_heads_, head_dim_}).transpose(1, 2); };
  Tensor q, k, v;
  if (!training && !torch::GradMode::is_enabled()) {
    // Inference: one [3H, H] product instead of three (a better GEMM shape, one pass over x).
    const Fused f = fused(q_proj, k_proj, v_proj);
    Tensor qkv = torch::addmm(f.bias, x.reshape({b * t, x.size(2)}), f.weight.t()).view({b, t, 3, n_heads_, head_dim_});
    if (kernel_applies(qkv, bias, additive_mask, n_heads_)) {
      return kernel_attention(qkv, bias, additive_mask, n_heads_, head_dim_);
    }
    q = qkv.select(2, 0).transpose(1, 2);
    k = qkv.select(2, 1).transpose(1, 2);
    v = qkv.select(2, 2).transpose(1, 2);
  } else {
    q = heads(q_proj(x));
    k = heads(k_proj(x));
    v = heads(v_proj(x));
  }
  Tensor scores = torch::matmul(q, k.transpose(-1, -2)).div_(std::sqrt(static_cast<double>(head_dim_)));
  if (bias.defined()) scores.add_(bias);
  Tensor probs = torch::softmax(scores.add_(additive_mask), -1);
  probs = torch::dropout(probs, dropout_, training);
  return torch::matmul(probs, v).transpose(1, 2).reshape({b, t, h});
}

QkvAttention::Fused QkvAttention::fused(nn::Linear& q, nn::Linear& k, nn::Linear& v) {
  std::lock_guard lock(mutex_);  // several server workers may run this layer at once
  ParameterStamp stamp{&q->weight, &q->bias, &k->weight, &k->bias, &v->weight, &v->bias};
  if (!(stamp == fused_stamp_)) {
    torch::NoGradGuard no_grad;
    fused_.weight = torch::cat({q->weight, k->weight, v->weight}, 0);
    fused_.bias = torch::cat({q->bias, k->bias, v->bias}, 0);
    fused_stamp_ = std::move(stamp);
  }
  return fused_;
}

}  // namespace rankemb::models::arch
