#include "rankemb/models/kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>

// The inner loops are written for the auto-vectorizer (unit stride, no aliasing); on x86-64 a
// second copy is built for AVX2 + FMA and chosen at load time by the CPU it runs on.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RANKEMB_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RANKEMB_VECTOR_CLONES
#endif

namespace rankemb::models::kernels {
namespace {

// One (sentence, head): `kt` [head_dim, seq] and `scores` [seq] are the caller's scratch.
RANKEMB_VECTOR_CLONES
void attend_one_head(const AttentionArgs& a, std::int64_t b, std::int64_t h, float* __restrict kt,
                     float* __restrict scores) {
  const std::int64_t T = a.seq, D = a.head_dim, width = a.heads * D, token_stride = 3 * width;
  const float* base = a.qkv + b * T * token_stride + h * D;
  const float* mask = a.additive_mask + b * T;
  const float* bias = a.bias ? a.bias + b * a.bias_batch_stride + h * T * T : nullptr;
  const float scale = std::sqrt(static_cast<float>(D));
  for (std::int64_t j = 0; j < T; ++j) {  // kᵀ, so the score loop below runs over contiguous keys
    const float* k = base + j * token_stride + width;
    for (std::int64_t d = 0; d < D; ++d) kt[d * T + j] = k[d];
  }
  for (std::int64_t i = 0; i < T; ++i) {
    const float* __restrict q = base + i * token_stride;
    std::fill(scores, scores + T, 0.0f);
    for (std::int64_t d = 0; d < D; ++d) {
      const float qd = q[d];
      const float* __restrict k = kt + d * T;
      for (std::int64_t j = 0; j < T; ++j) scores[j] += qd * k[j];
    }
    // As the libtorch ops: scores / sqrt(D), then + bias, then + mask, each rounded.
    float top = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < T; ++j) {
      float s = scores[j] / scale;
      if (bias) s += bias[i * T + j];
      s += mask[j];
      scores[j] = s;
      top = std::max(top, s);
    }
    float sum = 0.0f;
    for (std::int64_t j = 0; j < T; ++j) {
      scores[j] = std::exp(scores[j] - top);
      sum += scores[j];
    }
    const float inv = 1.0f / sum;
    float* __restrict o = a.out + (b * T + i) * width + h * D;
    std::fill(o, o + D, 0.0f);
    for (std::int64_t j = 0; j < T; ++j) {
      const float p = scores[j] * inv;
      if (p == 0.0f) continue;  // a masked key (exp underflows to exactly 0) adds nothing
      const float* __restrict v = base + j * token_stride + 2 * width;
      for (std::int64_t d = 0; d < D; ++d) o[d] += p * v[d];
    }
  }
}

}  // namespace

void attention_f32(const AttentionArgs& a) {
  const std::int64_t pairs = a.batch * a.heads;
  // About 64k multiply-adds per task, so a short sentence's heads are grouped, a long one's are not.
  const std::int64_t per_pair = std::max<std::int64_t>(1, 2 * a.seq * a.seq * a.head_dim);
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 16) / per_pair);
  at::parallel_for(0, pairs, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> kt(static_cast<std::size_t>(a.head_dim * a.seq)), scores(static_cast<std::size_t>(a.seq));
    for (std::int64_t p = begin; p < end; ++p) attend_one_head(a, p / a.heads, p % a.heads, kt.data(), scores.data());
  });
}

}  // namespace rankemb::models::kernels
