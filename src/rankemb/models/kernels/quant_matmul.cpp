#include "rankemb/models/kernels/quant_matmul.h"

#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <ATen/Parallel.h>

#include "rankemb/io/safetensors.h"
#include "rankemb/models/kernels/switch.h"
#include "rankemb/util/error.h"

namespace rankemb::models::kernels {
namespace {

constexpr std::int64_t kBlock = 32;

struct Rows {
  const float* scale;
  const float* min;  // nullptr: Q8_0
  const std::uint8_t* quants;
  std::int64_t blocks_per_row, quant_bytes;  // quant_bytes per block: 16 or 32
};

// Any CPU: one block's 32 values in element order (Q4_1: element j < 16 is the low nibble of
// byte j, element j >= 16 the high nibble of byte j - 16).
void unpack_block(const Rows& w, std::int64_t blk, float q[kBlock]) {
  const std::uint8_t* b = w.quants + blk * w.quant_bytes;
  for (int j = 0; j < 16 && w.min; ++j) q[j] = static_cast<float>(b[j] & 0x0F), q[j + 16] = static_cast<float>(b[j] >> 4);
  for (int j = 0; j < kBlock && !w.min; ++j) q[j] = static_cast<float>(static_cast<std::int8_t>(b[j]));
}

// y[i][r] for rows r in [begin, end) and n input rows; xsum[i][b]: the sum of x[i]'s block b.
void rows_generic(const Rows& w, const float* x, const float* xsum, std::int64_t n, std::int64_t cols, std::int64_t out_cols,
                  std::int64_t begin, std::int64_t end, float* y) {
  const std::int64_t nb = w.blocks_per_row;
  float q[kBlock];
  for (std::int64_t r = begin; r < end; ++r) {
    for (std::int64_t i = 0; i < n; ++i) {
      float acc = 0.0f, offset = 0.0f;
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::int64_t blk = r * nb + b;
        unpack_block(w, blk, q);
        float t = 0.0f;
        for (int j = 0; j < kBlock; ++j) t += q[j] * x[i * cols + b * kBlock + j];
        acc += w.scale[blk] * t;
        if (w.min) offset += w.min[blk] * xsum[i * nb + b];
      }
      y[i * out_cols + r] = acc + offset;
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define RANKEMB_QUANT_AVX2 1
// AVX2 + FMA: bytes widen with vpmovzxbd/vpmovsxbd (GCC's vector extensions turned the upper
// eight bytes into lane-by-lane extracts, so this loop is written with intrinsics).
template <int N>
__attribute__((target("avx2,fma"))) void rows_avx2_n(const Rows& w, const float* x, const float* xsum, std::int64_t cols,
                                                     std::int64_t out_cols, std::int64_t begin, std::int64_t end, float* y) {
  const std::int64_t nb = w.blocks_per_row;
  const __m128i low4 = _mm_set1_epi8(0x0F);
  for (std::int64_t r = begin; r < end; ++r) {
    __m256 acc[N];
    float offset[N] = {};
    for (int i = 0; i < N; ++i) acc[i] = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < nb; ++b) {
      const std::int64_t blk = r * nb + b;
      const std::uint8_t* p = w.quants + blk * w.quant_bytes;
      __m256 q[4];
      if (w.min) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i lo = _mm_and_si128(bytes, low4), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low4);
        q[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
        q[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
        q[2] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
        q[3] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
      } else {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
        q[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(a));
        q[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(a, 8)));
        q[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
        q[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(c, 8)));
      }
      const __m256 d = _mm256_set1_ps(w.scale[blk]);
      for (int i = 0; i < N; ++i) {
        const float* xb = x + i * cols + b * kBlock;
        __m256 t = _mm256_mul_ps(q[0], _mm256_loadu_ps(xb));
        t = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(xb + 8), t);
        t = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(xb + 16), t);
        t = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(xb + 24), t);
        acc[i] = _mm256_fmadd_ps(d, t, acc[i]);
        if (w.min) offset[i] += w.min[blk] * xsum[i * nb + b];
      }
    }
    for (int i = 0; i < N; ++i) {
      alignas(32) float v[8];
      _mm256_store_ps(v, acc[i]);
      y[i * out_cols + r] = (((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))) + offset[i];
    }
  }
}

void rows_avx2(const Rows& w, const float* x, const float* xsum, std::int64_t n, std::int64_t cols, std::int64_t out_cols,
               std::int64_t begin, std::int64_t end, float* y) {
  switch (n) {
    case 1: rows_avx2_n<1>(w, x, xsum, cols, out_cols, begin, end, y); break;
    case 2: rows_avx2_n<2>(w, x, xsum, cols, out_cols, begin, end, y); break;
    case 3: rows_avx2_n<3>(w, x, xsum, cols, out_cols, begin, end, y); break;
    case 4: rows_avx2_n<4>(w, x, xsum, cols, out_cols, begin, end, y); break;
    case 5: rows_avx2_n<5>(w, x, xsum, cols, out_cols, begin, end, y); break;
    case 6: rows_avx2_n<6>(w, x, xsum, cols, out_cols, begin, end, y); break;
    case 7: rows_avx2_n<7>(w, x, xsum, cols, out_cols, begin, end, y); break;
    default: rows_avx2_n<8>(w, x, xsum, cols, out_cols, begin, end, y); break;
  }
}
#endif

float f16(const std::uint8_t* p) {
  std::uint16_t bits;
  std::memcpy(&bits, p, 2);
  return io::half_to_float(bits);
}

}  // namespace

QuantMatrix::QuantMatrix(BlockType type, std::span<const std::uint8_t> raw, std::int64_t rows, std::int64_t cols,
                         std::span<const std::int64_t> row_order)
    : type_(type), rows_(rows), cols_(cols) {
  RANKEMB_CHECK(rows > 0 && cols > 0 && cols % kBlock == 0, ErrorCode::ModelFormat,
                "quantized matrix {} x {}: the row length must be a multiple of 32", rows, cols);
  const std::int64_t nb = cols / kBlock, raw_block = type == BlockType::Q4_1 ? 20 : 34;
  const std::int64_t quant_bytes = type == BlockType::Q4_1 ? 16 : 32;
  RANKEMB_CHECK(static_cast<std::int64_t>(raw.size()) == rows * nb * raw_block, ErrorCode::ModelFormat,
                "quantized matrix {} x {}: {} bytes, expected {}", rows, cols, raw.size(), rows * nb * raw_block);
  RANKEMB_CHECK(row_order.empty() || static_cast<std::int64_t>(row_order.size()) == rows, ErrorCode::Other,
                "row order of {} rows for a matrix of {}", row_order.size(), rows);
  scale_.resize(static_cast<std::size_t>(rows * nb));
  if (type == BlockType::Q4_1) min_.resize(scale_.size());
  quants_.resize(scale_.size() * static_cast<std::size_t>(quant_bytes));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t from = row_order.empty() ? r : row_order[static_cast<std::size_t>(r)];
    RANKEMB_CHECK(from >= 0 && from < rows, ErrorCode::Other, "row order names row {} of {}", from, rows);
    for (std::int64_t b = 0; b < nb; ++b) {
      const std::uint8_t* src = raw.data() + (from * nb + b) * raw_block;
      const auto blk = static_cast<std::size_t>(r * nb + b);
      scale_[blk] = f16(src);
      if (type == BlockType::Q4_1) min_[blk] = f16(src + 2);
      std::memcpy(quants_.data() + blk * static_cast<std::size_t>(quant_bytes), src + raw_block - quant_bytes,
                  static_cast<std::size_t>(quant_bytes));
    }
  }
}

QuantMatrix QuantMatrix::stack(const std::vector<const QuantMatrix*>& parts) {
  RANKEMB_CHECK(!parts.empty(), ErrorCode::Other, "stacking no quantized matrices");
  QuantMatrix out;
  out.type_ = parts.front()->type_;
  out.cols_ = parts.front()->cols_;
  for (const QuantMatrix* p : parts) {
    RANKEMB_CHECK(p->type_ == out.type_ && p->cols_ == out.cols_ && !p->empty(), ErrorCode::Other,
                  "stacking quantized matrices of different types or widths");
    out.rows_ += p->rows_;
    out.scale_.insert(out.scale_.end(), p->scale_.begin(), p->scale_.end());
    out.min_.insert(out.min_.end(), p->min_.begin(), p->min_.end());
    out.quants_.insert(out.quants_.end(), p->quants_.begin(), p->quants_.end());
  }
  return out;
}

void QuantMatrix::multiply(const float* x, std::int64_t n, float* y, bool portable) const {
  RANKEMB_CHECK(n >= 1 && n <= kMaxRows && !empty(), ErrorCode::Other, "quantized product of {} rows", n);
  const std::int64_t nb = cols_ / kBlock;
  // Σx per block of each input row: the m·Σx term of Q4_1 (Q8_0 has no m).
  std::vector<float> xsum(type_ == BlockType::Q4_1 ? static_cast<std::size_t>(n * nb) : 0);
  for (std::int64_t i = 0; i < n && !xsum.empty(); ++i) {
    for (std::int64_t b = 0; b < nb; ++b) {
      float s = 0.0f;
      for (std::int64_t k = 0; k < kBlock; ++k) s += x[i * cols_ + b * kBlock + k];
      xsum[static_cast<std::size_t>(i * nb + b)] = s;
    }
  }
  const Rows w{scale_.data(), min_.empty() ? nullptr : min_.data(), quants_.data(), nb,
               type_ == BlockType::Q4_1 ? 16 : 32};
  // Rows per task from the least work worth a parallel region (switch.h): with spinning threads
  // ~16k multiply-adds, a 576-wide SmolLM2 row of one input is 18 blocks, so ~28 rows.
  const std::int64_t grain = std::max<std::int64_t>(1, min_parallel_work() / (cols_ * n));
  at::parallel_for(0, rows_, grain, [&](std::int64_t begin, std::int64_t end) {
#ifdef RANKEMB_QUANT_AVX2
    if (!portable && cpu_has_avx2_fma()) return rows_avx2(w, x, xsum.data(), n, cols_, rows_, begin, end, y);
#endif
    rows_generic(w, x, xsum.data(), n, cols_, rows_, begin, end, y);
  });
}

}  // namespace rankemb::models::kernels
