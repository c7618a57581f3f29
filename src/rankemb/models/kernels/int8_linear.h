// int8_linear: y = x · Wᵀ + b in 8-bit integers, for encoder inference (`--int8`). In float32
// the encoder's linear layers run at the CPU's FMA rate (OpenBLAS ~140-170 GFLOP/s on this 2-core
// AVX2 EPYC); oneDNN's integer GEMM does the same products at ~270-350 Gop/s.
//
// Quantization:
// - activations: per row, asymmetric uint8 over [min(x, 0), max(x, 0)]: scale s = (hi - lo) / 255,
//   zero point z = round(-lo / s), q = clamp(round(x / s) + z, 0, 255);
// - weights: per output channel, symmetric, |q| <= 63 (7 bits). AVX2 has no 8-bit dot product
//   that cannot overflow: vpmaddubsw adds two uint8·int8 products into a saturating int16, and
//   255·127·2 > 32767 (measured: oneDNN's AVX2 GEMM returned wrong sums for full-range inputs).
//   255·63·2 = 32130 fits, so every sum is exact;
// - y[i, n] = s_x[i] · s_w[n] · (Σ_k q_x[i, k] q_w[n, k] − z[i] Σ_k q_w[n, k]) + b[n], the
//   correction and scales applied in float32 after the integer product.
// all-MiniLM-L6-v2 on 2,000 STS-B sentences: cosine to float32 worst 0.987, mean 0.997
// (bench/serve_bench.py --encode). ONNX Runtime's int8 dynamic quantization, one activation scale
// per tensor, gives 0.81 / 0.96. The int32 sums hold inputs up to kMaxIn wide.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace rankemb::models::kernels {

// Whether this build has the integer GEMM (oneDNN, Debian libdnnl-dev).
bool int8_available();

class Int8Linear {
 public:
  static constexpr int kWeightMax = 63;
  static constexpr std::int64_t kMaxIn = 2147483647 / (2 * 255 * kWeightMax);  // 66,837
  // `weight` [out, in] and `bias` [out] (nullptr: none), float32 row-major; copied and quantized.
  // Error(Usage) when the build has no oneDNN.
  Int8Linear(const float* weight, const float* bias, std::int64_t out, std::int64_t in);
  // y [rows, out] = x [rows, in] · Wᵀ + b, row-major and contiguous. Each row's result depends on
  // that row only (its own scale): a sentence encodes the same whatever shares its batch.
  void forward(const float* x, std::int64_t rows, float* y) const;

  std::int64_t in() const;
  std::int64_t out() const;

 private:
  struct Impl;
  static void prepare_product(Impl& impl, const std::vector<std::int8_t>& q);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace rankemb::models::kernels
