#include "rankemb/models/kernels/int8_linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/Parallel.h>

#include "rankemb/models/kernels/switch.h"
#include "rankemb/util/error.h"

#if RANKEMB_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#if DNNL_VERSION_MAJOR != 2
// Headers other than the oneDNN 2.x the build links (an upstream libtorch's include directory
// carries its own 3.x ones): build without int8 rather than against a mismatched API.
#undef RANKEMB_WITH_ONEDNN
#define RANKEMB_WITH_ONEDNN 0
#endif
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RANKEMB_INT8_AVX2 1
#endif

namespace rankemb::models::kernels {

#if RANKEMB_WITH_ONEDNN

namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One row of activations -> uint8 with its scale and zero point (the header's recipe). The AVX2
// loop computes the same IEEE operations (division, round half to even), so both give the same bits.
struct RowQuant {
  float scale;
  std::int32_t zero_point;
};

RowQuant row_params(float lo, float hi) {
  const float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  return {scale, static_cast<std::int32_t>(std::nearbyint(-lo / scale))};
}

std::uint8_t quantize(float x, RowQuant p) {
  return static_cast<std::uint8_t>(std::clamp(std::nearbyint(x / p.scale) + float(p.zero_point), 0.0f, 255.0f));
}

RowQuant quantize_row_portable(const float* x, std::int64_t n, std::uint8_t* q) {
  float lo = 0.0f, hi = 0.0f;
  for (std::int64_t k = 0; k < n; ++k) {
    lo = std::min(lo, x[k]);
    hi = std::max(hi, x[k]);
  }
  const RowQuant p = row_params(lo, hi);
  for (std::int64_t k = 0; k < n; ++k) q[k] = quantize(x[k], p);
  return p;
}

// y[n] = s · s_w[n] · (acc[n] − z · colsum[n]) + b[n]
void dequantize_row_portable(const std::int32_t* acc, RowQuant p, const float* weight_scale,
                             const std::int32_t* column_sum, const float* bias, std::int64_t n, float* y) {
  // One rounding for the multiply-add, as the AVX2 loop's fmadd: both paths give the same bits.
  for (std::int64_t j = 0; j < n; ++j) {
    y[j] = std::fma(p.scale * weight_scale[j], static_cast<float>(acc[j] - p.zero_point * column_sum[j]), bias[j]);
  }
}

#ifdef RANKEMB_INT8_AVX2
__attribute__((target("avx2,fma"))) float reduce(__m256 v, bool max) {
  __m128 a = _mm256_castps256_ps128(v), b = _mm256_extractf128_ps(v, 1);
  a = max ? _mm_max_ps(a, b) : _mm_min_ps(a, b);
  b = _mm_movehl_ps(a, a);
  a = max ? _mm_max_ps(a, b) : _mm_min_ps(a, b);
  b = _mm_shuffle_ps(a, a, 1);
  return _mm_cvtss_f32(max ? _mm_max_ss(a, b) : _mm_min_ss(a, b));
}

// Eight values -> int32 in 0..255.
__attribute__((target("avx2,fma"))) inline __m256i quantize8(const float* from, __m256 scale, __m256 zero) {
  const __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(from), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, zero), _mm256_setzero_ps()), _mm256_set1_ps(255.0f)));
}

__attribute__((target("avx2,fma"))) RowQuant quantize_row_avx2(const float* x, std::int64_t n, std::uint8_t* q) {
  __m256 vlo = _mm256_setzero_ps(), vhi = _mm256_setzero_ps();
  std::int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256 v = _mm256_loadu_ps(x + k);
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
  }
  float lo = reduce(vlo, false), hi = reduce(vhi, true);
  for (; k < n; ++k) {
    lo = std::min(lo, x[k]);
    hi = std::max(hi, x[k]);
  }
  const RowQuant p = row_params(lo, hi);
  const __m256 scale = _mm256_set1_ps(p.scale), zero = _mm256_set1_ps(float(p.zero_point));
  // packus works within 128-bit lanes: the permutation puts the four groups of 8 back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (k = 0; k + 32 <= n; k += 32) {
    const __m256i a = _mm256_packus_epi32(quantize8(x + k, scale, zero), quantize8(x + k + 8, scale, zero));
    const __m256i b = _mm256_packus_epi32(quantize8(x + k + 16, scale, zero), quantize8(x + k + 24, scale, zero));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), order));
  }
  for (; k < n; ++k) q[k] = quantize(x[k], p);
  return p;
}

__attribute__((target("avx2,fma"))) void dequantize_row_avx2(const std::int32_t* acc, RowQuant p, const float* weight_scale,
                                                             const std::int32_t* column_sum, const float* bias,
                                                             std::int64_t n, float* y) {
  const __m256i zero = _mm256_set1_epi32(p.zero_point);
  const __m256 scale = _mm256_set1_ps(p.scale);
  std::int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i c = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + j)),
                                       _mm256_mullo_epi32(zero, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(column_sum + j))));
    const __m256 s = _mm256_mul_ps(scale, _mm256_loadu_ps(weight_scale + j));
    _mm256_storeu_ps(y + j, _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(c), _mm256_loadu_ps(bias + j)));
  }
  dequantize_row_portable(acc + j, p, weight_scale + j, column_sum + j, bias + j, n - j, y + j);
}
#endif

RowQuant quantize_row(const float* x, std::int64_t n, std::uint8_t* q) {
#ifdef RANKEMB_INT8_AVX2
  if (cpu_has_avx2_fma()) return quantize_row_avx2(x, n, q);
#endif
  return quantize_row_portable(x, n, q);
}

void dequantize_row(const std::int32_t* acc, RowQuant p, const float* weight_scale, const std::int32_t* column_sum,
                    const float* bias, std::int64_t n, float* y) {
#ifdef RANKEMB_INT8_AVX2
  if (cpu_has_avx2_fma()) return dequantize_row_avx2(acc, p, weight_scale, column_sum, bias, n, y);
#endif
  dequantize_row_portable(acc, p, weight_scale, column_sum, bias, n, y);
}

}  // namespace

struct Int8Linear::Impl {
  std::int64_t in = 0, out = 0;
  std::vector<float> weight_scale, bias;  // [out]
  std::vector<std::int32_t> column_sum;   // [out]: Σ_k q_w[n, k], for the activations' zero point
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul product;
  dnnl::memory weights;  // packed by oneDNN for its GEMM, [in, out]
};

bool int8_available() { return true; }

Int8Linear::Int8Linear(const float* weight, const float* bias, std::int64_t out, std::int64_t in) {
  RANKEMB_CHECK(out > 0 && in > 0 && in <= kMaxIn, ErrorCode::Other, "int8 linear layer of {} x {} (inputs at most {})", out, in,
                kMaxIn);
  auto impl = std::make_shared<Impl>();
  impl->in = in;
  impl->out = out;
  impl->weight_scale.resize(out);
  impl->bias.assign(out, 0.0f);
  if (bias) std::copy(bias, bias + out, impl->bias.begin());
  impl->column_sum.assign(out, 0);
  std::vector<std::int8_t> q(static_cast<std::size_t>(out * in));
  for (std::int64_t n = 0; n < out; ++n) {
    const float* row = weight + n * in;
    float amax = 0.0f;
    for (std::int64_t k = 0; k < in; ++k) amax = std::max(amax, std::fabs(row[k]));
    const float scale = amax > 0.0f ? amax / kWeightMax : 1.0f;
    impl->weight_scale[n] = scale;
    for (std::int64_t k = 0; k < in; ++k) {
      const float v = std::clamp(std::nearbyint(row[k] / scale), float(-kWeightMax), float(kWeightMax));
      q[n * in + k] = static_cast<std::int8_t>(v);
      impl->column_sum[n] += static_cast<std::int32_t>(v);
    }
  }
  try {
    prepare_product(*impl, q);
  } catch (const dnnl::error& e) {
    fail(ErrorCode::Other, "oneDNN could not prepare an int8 product of {} x {}: {}", out, in, e.what());
  }
  impl_ = std::move(impl);
}

// The primitive for every row count (M is given at each call) and the weights packed for it.
void Int8Linear::prepare_product(Impl& impl, const std::vector<std::int8_t>& q) {
  const std::int64_t in = impl.in, out = impl.out;
  using dt = dnnl::memory::data_type;
  const dnnl::memory::dim runtime = DNNL_RUNTIME_DIM_VAL;
  const dnnl::memory::desc src({runtime, in}, dt::u8, dnnl::memory::dims{in, 1});
  const dnnl::memory::desc wei({in, out}, dt::s8, dnnl::memory::format_tag::any);
  const dnnl::memory::desc dst({runtime, out}, dt::s32, dnnl::memory::dims{out, 1});
  impl.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, dst), cpu_engine());
  impl.product = dnnl::matmul(impl.pd);
  // q is [out, in] row-major: the [in, out] matrix in column-major ("ba").
  dnnl::memory plain({{in, out}, dt::s8, dnnl::memory::format_tag::ba}, cpu_engine(), const_cast<std::int8_t*>(q.data()));
  impl.weights = dnnl::memory(impl.pd.weights_desc(), cpu_engine());
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(plain, impl.weights).execute(stream, plain, impl.weights);
  stream.wait();
}

void Int8Linear::forward(const float* x, std::int64_t rows, float* y) const {
  if (rows <= 0) return;
  const Impl& m = *impl_;
  const std::int64_t in = m.in, out = m.out;
  // Uninitialized: every byte is written before it is read.
  std::unique_ptr<std::uint8_t[]> qx(new std::uint8_t[rows * in]);
  std::unique_ptr<std::int32_t[]> acc(new std::int32_t[rows * out]);
  std::vector<RowQuant> params(rows);
  // Elementwise passes: a parallel region only for enough work to pay its wake-up (switch.h).
  const std::int64_t grain = std::max<std::int64_t>(1, min_parallel_work() / std::max(in, out));
  at::parallel_for(0, rows, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) params[i] = quantize_row(x + i * in, in, qx.get() + i * in);
  });
  try {
    using dt = dnnl::memory::data_type;
    dnnl::memory src({{rows, in}, dt::u8, dnnl::memory::format_tag::ab}, cpu_engine(), qx.get());
    dnnl::memory dst({{rows, out}, dt::s32, dnnl::memory::format_tag::ab}, cpu_engine(), acc.get());
    dnnl::stream stream(cpu_engine());
    m.product.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, m.weights}, {DNNL_ARG_DST, dst}});
    stream.wait();
  } catch (const dnnl::error& e) {
    fail(ErrorCode::Other, "oneDNN int8 product of {} rows x {} -> {}: {}", rows, in, out, e.what());
  }
  at::parallel_for(0, rows, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      dequantize_row(acc.get() + i * out, params[i], m.weight_scale.data(), m.column_sum.data(), m.bias.data(), out, y + i * out);
    }
  });
}

std::int64_t Int8Linear::in() const { return impl_->in; }
std::int64_t Int8Linear::out() const { return impl_->out; }

#else  // no oneDNN in this build

struct Int8Linear::Impl {};

bool int8_available() { return false; }

Int8Linear::Int8Linear(const float*, const float*, std::int64_t, std::int64_t) {
  fail(ErrorCode::Usage, "int8 inference needs oneDNN (Debian libdnnl-dev), which this build was configured without");
}
void Int8Linear::prepare_product(Impl&, const std::vector<std::int8_t>&) {}
void Int8Linear::forward(const float*, std::int64_t, float*) const {}
std::int64_t Int8Linear::in() const { return 0; }
std::int64_t Int8Linear::out() const { return 0; }

#endif

}  // namespace rankemb::models::kernels
