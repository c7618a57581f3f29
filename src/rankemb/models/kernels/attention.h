// kernels/: hand-written CPU loops for the few places where libtorch 1.13's sequence of operators
// costs far more than the arithmetic. Plain C++ over raw float rows (no libtorch in the headers);
// the layers in arch/ decide when a kernel applies and fall back to the libtorch ops otherwise.
//
// attention: multi-head scaled dot-product attention in float32, for inference. libtorch runs q·kᵀ and p·v as
// batched matrix products that it splits into one small GEMM per (sentence, head) with three
// tensor views each: a 64 x 15-token batch of MiniLM spends more time in that bookkeeping than
// in the arithmetic (bench/results/profile_train_step.md). Here each (sentence, head) is one pass
// over rows already in cache, with register tiles; q, k and v are read in place from the
// projections' outputs and results are written straight into the [B, T, H·D] layout the output
// projection reads.
//
// Work is split over (sentence, head) pairs on libtorch's intra-op threads; each pair is
// computed by one thread in a fixed order, so results do not depend on the thread count. Sums
// run in a different order from libtorch's GEMMs: results differ from its operators by float32
// rounding (tests: 2e-6 against float64).
#pragma once

#include <cstdint>

namespace rankemb::models::kernels {

struct AttentionArgs {
  // Token t of sentence b, head h: q + (row(b) + t)·stride + h·head_dim (likewise k, v), where
  // row(b) = b·seq for a padded batch, offsets[b] for a packed one. The fused inference projection
  // gives q, k, v interleaved in one [rows, 3, H, D] tensor (stride 3·H·D).
  const float *q = nullptr, *k = nullptr, *v = nullptr;
  std::int64_t stride = 0;
  // Padded batch: [batch, seq], 0 for a real key, the dtype's lowest for padding.
  const float* additive_mask = nullptr;
  // Packed batch (no padding; additive_mask unused): sentence b is rows offsets[b] ..
  // offsets[b + 1] - 1, at most `seq` of them; batch + 1 non-decreasing entries from 0.
  const std::int64_t* offsets = nullptr;
  // Optional [1 | batch, heads, seq, seq], added to the scaled scores; a packed sentence of L
  // tokens reads the top-left L x L block of its head's matrix.
  const float* bias = nullptr;
  std::int64_t bias_batch_stride = 0;    // 0: one bias shared by the batch; heads·seq·seq: one per sentence
  std::int64_t batch = 0, seq = 0, heads = 0, head_dim = 0;
};

// out = softmax(q kᵀ / sqrt(head_dim) + bias + mask) v, in one pass: [B, T, H·D] for a padded
// batch, [offsets[batch], H·D] for a packed one. A packed sentence's rows equal, bit for bit, the
// real rows of the same sentence in a padded batch (the masked keys add exact zeros there).
void attention_f32(const AttentionArgs& a, float* out);

}  // namespace rankemb::models::kernels
