// quant_matmul: x · Wᵀ for a weight matrix kept in ggml's 32-value blocks (Q4_1, Q8_0), for the
// decoder's one-token steps. A step of one sequence multiplies a single row by every weight
// matrix: it is bound by the bytes of weights read, not by arithmetic. Float32 copies of
// SmolLM2-135M's weights are 538 MB a step (54 ms here, about 10 GB/s); its GGUF blocks are 96 MB.
// So for a few rows the decoder reads the blocks and multiplies in registers, and keeps its
// float32 copy for prefill and wide batches, where the products are bound by arithmetic.
//
// The blocks are repacked once at load with float32 scales (ggml stores float16), so a step
// converts nothing but the 4- or 8-bit values. Per block of 32 weights w = d·q + m (Q4_1) or
// d·q (Q8_0): Σ x·w = d·Σ x·q + m·Σ x, the same sum as over the dequantized weights in another
// rounding order (tests: within 1e-5 of a float64 product of gguf-py's dequantized values).
// Each output element is summed by one thread in a fixed order: the thread count changes no bit.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace rankemb::models::kernels {

enum class BlockType { Q4_1, Q8_0 };

// A [rows, cols] matrix in repacked blocks, row by row (cols a multiple of 32).
class QuantMatrix {
 public:
  QuantMatrix() = default;
  // `raw`: the matrix's GGUF bytes, rows x (cols / 32) ggml blocks of `type`; `row_order[r]` is the
  // raw row that becomes row r (empty: the identity). Error(ModelFormat) when the bytes do not
  // hold rows x cols values of `type` or cols is not a multiple of 32.
  QuantMatrix(BlockType type, std::span<const std::uint8_t> raw, std::int64_t rows, std::int64_t cols,
              std::span<const std::int64_t> row_order = {});
  // The rows of `parts`, one after the other (all of one type and width): q, k, v as one matrix.
  static QuantMatrix stack(const std::vector<const QuantMatrix*>& parts);

  bool empty() const { return rows_ == 0; }
  BlockType type() const { return type_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  // y [n, rows] = x [n, cols] · Wᵀ (row-major, contiguous), 1 <= n <= kMaxRows. `portable`: the
  // plain C++ loop any CPU runs (an AVX2 + FMA loop otherwise, where the CPU has them).
  void multiply(const float* x, std::int64_t n, float* y, bool portable = false) const;

  static constexpr std::int64_t kMaxRows = 8;

 private:
  BlockType type_ = BlockType::Q4_1;
  std::int64_t rows_ = 0, cols_ = 0;
  std::vector<float> scale_, min_;  // per block, row-major; min_ empty for Q8_0
  std::vector<std::uint8_t> quants_;  // per block 16 bytes of nibbles (Q4_1) or 32 int8 (Q8_0)
};

}  // namespace rankemb::models::kernels
