// The attention kernel (src/rankemb/models/kernels/attention.h).
// - attention_f32 against the attention it replaces, computed independently in
//   float64 with libtorch ops: softmax(q kᵀ / sqrt(D) + bias + mask) v. Tolerance 2e-6 absolute
//   on outputs of magnitude ~1 (float32 summation order). Padded keys, a one-token sentence, a
//   bias shared by the batch and one per sentence, long rows, the same bits at 1 and 2 threads.
// - Through arch::QkvAttention in eval mode, against libtorch's operators in the same process
//   (kernels::set_enabled(false)): the layer's wiring of rows, mask and a bias.
#include "rankemb/models/kernels/attention.h"

#include "rankemb/models/arch/layers.h"
#include "rankemb/models/kernels/switch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

namespace {

namespace rk = rankemb::models::kernels;
using torch::Tensor;

struct Case {
  std::int64_t batch, seq, heads, head_dim;
  std::vector<std::int64_t> lengths;  // real tokens per sentence; the rest is padding
  int bias = 0;                       // 0 none, 1 shared [1, H, T, T], 2 per sentence [B, H, T, T]
};

struct Inputs {
  Tensor qkv, mask, bias;
};

Inputs make_inputs(const Case& c, std::uint64_t seed) {
  torch::manual_seed(seed);
  Inputs in;
  in.qkv = torch::randn({c.batch, c.seq, 3, c.heads, c.head_dim});
  Tensor real = torch::zeros({c.batch, c.seq});
  for (std::int64_t b = 0; b < c.batch; ++b) real[b].narrow(0, 0, c.lengths[b]).fill_(1.0);
  in.mask = ((1.0 - real) * std::numeric_limits<float>::lowest()).contiguous();
  if (c.bias) in.bias = torch::randn({c.bias == 1 ? 1 : c.batch, c.heads, c.seq, c.seq});
  return in;
}

Tensor run_kernel(const Case& c, const Inputs& in) {
  Tensor out = torch::full({c.batch, c.seq, c.heads * c.head_dim}, std::nanf(""));
  const float* rows = in.qkv.data_ptr<float>();
  const std::int64_t width = c.heads * c.head_dim;
  rk::attention_f32({.q = rows,
                     .k = rows + width,
                     .v = rows + 2 * width,
                     .stride = 3 * width,
                     .additive_mask = in.mask.data_ptr<float>(),
                     .bias = c.bias ? in.bias.data_ptr<float>() : nullptr,
                     .bias_batch_stride = c.bias == 2 ? c.heads * c.seq * c.seq : 0,
                     .batch = c.batch,
                     .seq = c.seq,
                     .heads = c.heads,
                     .head_dim = c.head_dim},
                    out.data_ptr<float>());
  return out;
}

Tensor reference(const Case& c, const Inputs& in) {
  Tensor qkv = in.qkv.to(torch::kDouble);
  Tensor q = qkv.select(2, 0).transpose(1, 2), k = qkv.select(2, 1).transpose(1, 2), v = qkv.select(2, 2).transpose(1, 2);
  Tensor s = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(c.head_dim));
  if (c.bias) s = s + in.bias.to(torch::kDouble);
  Tensor keep = in.mask.eq(0).view({c.batch, 1, 1, c.seq});
  s = s.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::matmul(torch::softmax(s, -1), v).transpose(1, 2).reshape({c.batch, c.seq, c.heads * c.head_dim});
}

void expect_matches(const Case& c, std::uint64_t seed) {
  Inputs in = make_inputs(c, seed);
  Tensor got = run_kernel(c, in), want = reference(c, in);
  ASSERT_FALSE(got.isnan().any().item<bool>()) << "every output row is written";
  EXPECT_LT((got.to(torch::kDouble) - want).abs().max().item<double>(), 2e-6);
}

TEST(AttentionKernel, MatchesFloat64ReferenceWithPadding) {
  expect_matches({.batch = 3, .seq = 7, .heads = 4, .head_dim = 8, .lengths = {7, 4, 1}}, 1);
}

TEST(AttentionKernel, OneTokenSentences) {
  expect_matches({.batch = 2, .seq = 1, .heads = 3, .head_dim = 16, .lengths = {1, 1}}, 2);
}

TEST(AttentionKernel, SharedAndPerSentenceBias) {
  expect_matches({.batch = 3, .seq = 9, .heads = 2, .head_dim = 8, .lengths = {9, 5, 2}, .bias = 1}, 3);
  expect_matches({.batch = 3, .seq = 9, .heads = 2, .head_dim = 8, .lengths = {9, 5, 2}, .bias = 2}, 4);
}

TEST(AttentionKernel, LongRowsAndWideHeads) {
  expect_matches({.batch = 2, .seq = 67, .heads = 12, .head_dim = 64, .lengths = {67, 30}}, 5);
  expect_matches({.batch = 2, .seq = 20, .heads = 2, .head_dim = 128, .lengths = {20, 17}}, 7);
  expect_matches({.batch = 2, .seq = 5, .heads = 3, .head_dim = 24, .lengths = {5, 4}}, 8);  // no register path
}

TEST(AttentionKernel, SameBitsAtAnyThreadCount) {
  const Case c{.batch = 5, .seq = 13, .heads = 6, .head_dim = 32, .lengths = {13, 12, 7, 3, 1}, .bias = 1};
  Inputs in = make_inputs(c, 6);
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  Tensor one = run_kernel(c, in);
  at::set_num_threads(2);
  Tensor two = run_kernel(c, in);
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one, two));
}

// The packed layout (AttentionArgs::offsets): the real rows of each sentence side by side, no
// mask. Each must equal, bit for bit, the same row of the padded batch (the masked keys add exact
// zeros there), so the float64 comparison above covers it too. Includes an empty sentence.
TEST(AttentionKernel, PackedRowsEqualPaddedRows) {
  for (int bias : {0, 1}) {
    const Case c{.batch = 4, .seq = 13, .heads = 3, .head_dim = 32, .lengths = {13, 5, 0, 1}, .bias = bias};
    Case padded_case = c;
    padded_case.lengths[2] = 1;  // a padded row needs one real key; the packed batch drops it again below
    Inputs in = make_inputs(padded_case, 40 + bias);
    const Tensor padded = run_kernel(padded_case, in);
    std::vector<std::int64_t> offsets{0}, index;
    for (std::int64_t b = 0; b < c.batch; ++b) {
      for (std::int64_t t = 0; t < c.lengths[b]; ++t) index.push_back(b * c.seq + t);
      offsets.push_back(offsets.back() + c.lengths[b]);
    }
    const Tensor rows = torch::tensor(index, torch::kLong);
    const std::int64_t width = c.heads * c.head_dim;
    const Tensor qkv = in.qkv.view({c.batch * c.seq, 3 * width}).index_select(0, rows).contiguous();
    Tensor packed = torch::full({offsets.back(), width}, std::nanf(""));
    const float* q = qkv.data_ptr<float>();
    rk::attention_f32({.q = q,
                       .k = q + width,
                       .v = q + 2 * width,
                       .stride = 3 * width,
                       .offsets = offsets.data(),
                       .bias = bias ? in.bias.data_ptr<float>() : nullptr,
                       .batch = c.batch,
                       .seq = c.seq,
                       .heads = c.heads,
                       .head_dim = c.head_dim},
                      packed.data_ptr<float>());
    EXPECT_TRUE(torch::equal(packed, padded.view({c.batch * c.seq, width}).index_select(0, rows))) << "bias " << bias;
  }
}

// Sets the kernel switch for its scope and restores what it was.
class KernelsSwitch {
 public:
  explicit KernelsSwitch(bool on) : before_(rankemb::models::kernels::enabled()) {
    rankemb::models::kernels::set_enabled(on);
  }
  ~KernelsSwitch() { rankemb::models::kernels::set_enabled(before_); }

 private:
  bool before_;
};

// QkvAttention's inference forward with the kernel and with libtorch's operators.
Tensor layer_output(bool kernels, const Case& c, std::uint64_t seed) {
  KernelsSwitch use(kernels);
  torch::manual_seed(seed);
  const std::int64_t width = c.heads * c.head_dim;
  torch::nn::Linear q(width, width), k(width, width), v(width, width);
  Inputs in = make_inputs(c, seed);
  Tensor x = torch::randn({c.batch, c.seq, width});
  rankemb::models::arch::QkvAttention attention(c.heads, c.head_dim, /*dropout=*/0.1);
  torch::NoGradGuard no_grad;
  Tensor out = attention.forward(x, q, k, v, c.bias ? in.bias : Tensor(), in.mask.view({c.batch, 1, 1, c.seq}),
                                 /*training=*/false);
  return out;
}

TEST(AttentionKernel, LayerMatchesLibtorchOps) {
  for (int bias : {0, 1, 2}) {
    const Case c{.batch = 3, .seq = 11, .heads = 4, .head_dim = 32, .lengths = {11, 6, 1}, .bias = bias};
    Tensor ops = layer_output(false, c, 30 + bias), kernel = layer_output(true, c, 30 + bias);
    const double diff = (kernel - ops).abs().max().item<double>();
    EXPECT_LT(diff, 2e-6) << "bias kind " << bias;
    // Its sums run in another order than libtorch's GEMMs: identical bits would mean the layer
    // fell back to the operators and the comparison above tested nothing.
    EXPECT_GT(diff, 0.0) << "bias kind " << bias << ": the kernel did not run";
  }
}

}  // namespace
