#include "rankemb/models/kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>

#include "rankemb/models/kernels/target_clones.h"

// The loops run on 8-float vectors (GCC/Clang vector extensions: two SSE registers on a plain
// x86-64 build, one AVX register in the AVX2 + FMA copy that target_clones adds and the loader
// picks by CPU; target_clones.h). Both products keep their accumulators in registers across the
// reduction.

namespace rankemb::models::kernels {
namespace {

using v8 = float __attribute__((vector_size(32)));

// Every helper below is forced inline into attend_head, the function built twice
// (RANKEMB_VECTOR_CLONES): a helper left out of line would run the baseline SSE2 copy only.
#define RANKEMB_KERNEL_INLINE inline __attribute__((always_inline))
constexpr std::int64_t kLanes = 8;

RANKEMB_KERNEL_INLINE v8 load8(const float* p) {
  v8 r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
RANKEMB_KERNEL_INLINE void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// Keys are scored 16 at a time: kᵀ rows are padded with zeros to a multiple of 16.
RANKEMB_KERNEL_INLINE std::int64_t padded_keys(std::int64_t T) {
  return (T + 2 * kLanes - 1) / (2 * kLanes) * (2 * kLanes);
}

// Query rows scored together: their products with one block of keys are independent chains, so
// the multiply-adds overlap instead of waiting on each other.
constexpr std::int64_t kRows = 4;

// Scratch of one thread: kᵀ of one head with its key axis padded to whole vectors (zeros), and
// the scores of kRows query rows.
struct Scratch {
  std::vector<float> kt, scores;
};

// scores[r][j] = q_r · k_j for kRows query rows (`q[r]`) and every key j (each a sequential sum
// over the head dimension), from kᵀ whose rows are `padded` (a multiple of 16) floats long.
RANKEMB_KERNEL_INLINE void score_rows(const float* const* q, const float* __restrict kt, std::int64_t D,
                                      std::int64_t padded, float* __restrict scores) {
  for (std::int64_t jb = 0; jb < padded; jb += 2 * kLanes) {
    v8 a0 = {}, a1 = {}, a2 = {}, a3 = {}, b0 = {}, b1 = {}, b2 = {}, b3 = {};
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    for (std::int64_t d = 0; d < D; ++d) {
      const v8 k0 = load8(kt + d * padded + jb), k1 = load8(kt + d * padded + jb + kLanes);
      a0 += q0[d] * k0, b0 += q0[d] * k1;
      a1 += q1[d] * k0, b1 += q1[d] * k1;
      a2 += q2[d] * k0, b2 += q2[d] * k1;
      a3 += q3[d] * k0, b3 += q3[d] * k1;
    }
    float* row = scores + jb;
    store8(row, a0), store8(row + kLanes, b0), row += padded;
    store8(row, a1), store8(row + kLanes, b1), row += padded;
    store8(row, a2), store8(row + kLanes, b2), row += padded;
    store8(row, a3), store8(row + kLanes, b3);
  }
}

// As the libtorch ops on one row of scores: / sqrt(D), + bias, + mask (each rounded; a packed
// sentence has no mask), softmax.
RANKEMB_KERNEL_INLINE void softmax_row(float* __restrict x, const float* __restrict bias,
                                       const float* __restrict mask, std::int64_t T, float scale) {
  float top = -std::numeric_limits<float>::infinity();
  for (std::int64_t j = 0; j < T; ++j) {
    float y = x[j] / scale;
    if (bias) y += bias[j];
    if (mask) y += mask[j];
    x[j] = y;
    top = std::max(top, y);
  }
  float sum = 0.0f;
  for (std::int64_t j = 0; j < T; ++j) {
    x[j] = std::exp(x[j] - top);
    sum += x[j];
  }
  const float inv = 1.0f / sum;
  for (std::int64_t j = 0; j < T; ++j) x[j] *= inv;
}

// o = sum_j p[j] v_j (sequential over keys), the head (D = 32, 64 or 128: mix_row) held in registers.
template <int kChunks>
RANKEMB_KERNEL_INLINE void weighted_sum(const float* __restrict p, const float* __restrict v, std::int64_t T,
                                        std::int64_t stride, float* __restrict o) {
  v8 acc[kChunks] = {};
  for (std::int64_t j = 0; j < T; ++j) {
    if (p[j] == 0.0f) continue;  // a masked key (exp underflows to exactly 0) adds nothing
    const float* vj = v + j * stride;
    for (int c = 0; c < kChunks; ++c) acc[c] += p[j] * load8(vj + c * kLanes);
  }
  for (int c = 0; c < kChunks; ++c) store8(o + c * kLanes, acc[c]);
}

RANKEMB_KERNEL_INLINE void weighted_sum_any(const float* __restrict p, const float* __restrict v, std::int64_t T,
                                            std::int64_t stride, std::int64_t D, float* __restrict o) {
  std::fill(o, o + D, 0.0f);
  for (std::int64_t j = 0; j < T; ++j) {
    if (p[j] == 0.0f) continue;
    for (std::int64_t d = 0; d < D; ++d) o[d] += p[j] * v[j * stride + d];
  }
}

// o = sum_j p[j] v_j over T rows of v (`stride` floats apart), with the head in registers where
// its width allows.
RANKEMB_KERNEL_INLINE void mix_row(const float* p, const float* v, std::int64_t T, std::int64_t stride, std::int64_t D,
                                   float* o) {
  switch (D) {
    case 32: weighted_sum<4>(p, v, T, stride, o); break;
    case 64: weighted_sum<8>(p, v, T, stride, o); break;
    case 128: weighted_sum<16>(p, v, T, stride, o); break;
    default: weighted_sum_any(p, v, T, stride, D, o);
  }
}

// One (sentence, head): kᵀ into scratch, then kRows query rows at a time: scores, softmax,
// and the weighted sum of v written into the output row.
RANKEMB_VECTOR_CLONES
void attend_head(const AttentionArgs& a, std::int64_t b, std::int64_t h, Scratch& s, float* out) {
  // The sentence's first row and length: the padded batch's b·seq and seq, or the packed one's.
  const std::int64_t row0 = a.offsets ? a.offsets[b] : b * a.seq;
  const std::int64_t T = a.offsets ? a.offsets[b + 1] - row0 : a.seq;
  if (T == 0) return;
  const std::int64_t S = a.seq, D = a.head_dim, width = a.heads * D, padded = padded_keys(T);
  const std::int64_t offset = row0 * a.stride + h * D;
  const float *q = a.q + offset, *k = a.k + offset, *v = a.v + offset;
  const float* mask = a.offsets ? nullptr : a.additive_mask + b * S;
  const float* bias = a.bias ? a.bias + b * a.bias_batch_stride + h * S * S : nullptr;
  const float scale = std::sqrt(static_cast<float>(D));
  float* kt = s.kt.data();
  for (std::int64_t d = 0; d < D; ++d) std::fill(kt + d * padded + T, kt + (d + 1) * padded, 0.0f);
  for (std::int64_t j = 0; j < T; ++j) {
    for (std::int64_t d = 0; d < D; ++d) kt[d * padded + j] = k[j * a.stride + d];
  }
  for (std::int64_t i0 = 0; i0 < T; i0 += kRows) {
    const std::int64_t rows = std::min(kRows, T - i0);
    const float* tile[kRows];  // past the last row, the last row again (scored, not used)
    for (std::int64_t r = 0; r < kRows; ++r) tile[r] = q + (i0 + std::min(r, rows - 1)) * a.stride;
    score_rows(tile, kt, D, padded, s.scores.data());
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = i0 + r;
      float* p = s.scores.data() + r * padded;
      softmax_row(p, bias ? bias + i * S : nullptr, mask, T, scale);
      mix_row(p, v, T, a.stride, D, out + (row0 + i) * width + h * D);
    }
  }
}

}  // namespace

void attention_f32(const AttentionArgs& a, float* out) {
  // About 64k multiply-adds per task: a short sentence's heads are grouped, a long one's are not.
  const std::int64_t per_pair = std::max<std::int64_t>(1, 2 * a.seq * a.seq * a.head_dim);
  const std::int64_t grain = std::max<std::int64_t>(1, (1 << 16) / per_pair);
  const auto padded = static_cast<std::size_t>(padded_keys(a.seq));
  at::parallel_for(0, a.batch * a.heads, grain, [&](std::int64_t begin, std::int64_t end) {
    Scratch s{std::vector<float>(static_cast<std::size_t>(a.head_dim) * padded),
              std::vector<float>(static_cast<std::size_t>(kRows) * padded)};
    for (std::int64_t p = begin; p < end; ++p) attend_head(a, p / a.heads, p % a.heads, s, out);
  });
}

}  // namespace rankemb::models::kernels
