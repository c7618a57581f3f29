// kernels/: hand-written CPU loops for the few places where libtorch 1.13's sequence of operators
// costs far more than the arithmetic. Plain C++ over raw float rows (no libtorch in the headers);
// the layers in arch/ decide when a kernel applies and fall back to the libtorch ops otherwise.
//
// attention: multi-head scaled dot-product attention for inference in float32. libtorch runs
// q·kᵀ and p·v as batched matrix products that it splits into one small GEMM per (sentence,
// head) with three tensor views each: a 64 x 15-token batch of MiniLM spends more time in that
// bookkeeping than in the 5 GFLOP it computes (bench: scripts/profile_summary.py on
// `bench_encode --profile`). Here each (sentence, head) is one pass over rows already in cache,
// the [B, T, 3, H, D] output of the fused q/k/v projection is read in place, and the result is
// written straight into the [B, T, H·D] layout the output projection reads.
#pragma once

#include <cstdint>

namespace rankemb::models::kernels {

struct AttentionArgs {
  const float* qkv = nullptr;            // [batch, seq, 3, heads, head_dim]: q, k, v of each token
  const float* additive_mask = nullptr;  // [batch, seq]: 0 for a real key, the dtype's lowest for padding
  const float* bias = nullptr;           // optional [1 | batch, heads, seq, seq], added to the scaled scores
  std::int64_t bias_batch_stride = 0;    // 0: one bias shared by the batch; heads·seq·seq: one per sentence
  float* out = nullptr;                  // [batch, seq, heads·head_dim]
  std::int64_t batch = 0, seq = 0, heads = 0, head_dim = 0;
};

// out = softmax(q kᵀ / sqrt(head_dim) + bias + mask) v for every sentence and head, the same
// sequence of roundings as the libtorch ops it replaces up to summation order (a few float32
// ulps). Work is split over (sentence, head) pairs on libtorch's intra-op threads; each pair is
// computed by one thread in a fixed order, so the result does not depend on the thread count.
void attention_f32(const AttentionArgs& a);

}  // namespace rankemb::models::kernels
