// kernels/quant_matmul against an independent reference: the same blocks dequantized by
// io::dequantize (bit-identical to gguf-py, its own fixture test) and multiplied in float64.
// Tolerance 1e-5 of Σ|x·w| per output (float32 sums in another order: ~1e-7 here). Q4_1 and
// Q8_0, 1-8 input rows (the AVX2 loop and the portable one), a row order (the q/k unpermutation), stacking, the same bits at 1 and 2
// threads, that the parallel loops do use 2 threads, and the size checks.
#include "rankemb/models/kernels/quant_matmul.h"
#include "rankemb/models/kernels/switch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <random>

#include "common/expect_error.h"
#include "rankemb/io/ggml_quants.h"

namespace {

namespace rk = rankemb::models::kernels;
using torch::Tensor;

struct Raw {
  std::vector<std::uint8_t> bytes;
  rk::BlockType type;
  std::int64_t rows, cols;
};

// Random blocks with float16 scales in a realistic range (d ~ 0.008..0.06, Q4_1's m negative).
Raw random_matrix(rk::BlockType type, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255), scale(0x2000, 0x2BFF), low(0xA000, 0xB3FF);
  const int block = type == rk::BlockType::Q4_1 ? 20 : 34;
  Raw r{std::vector<std::uint8_t>(static_cast<std::size_t>(rows * cols / 32 * block)), type, rows, cols};
  for (std::size_t at = 0; at < r.bytes.size(); at += static_cast<std::size_t>(block)) {
    const int d = scale(rng), m = low(rng);
    r.bytes[at] = static_cast<std::uint8_t>(d & 0xFF), r.bytes[at + 1] = static_cast<std::uint8_t>(d >> 8);
    int from = 2;
    if (type == rk::BlockType::Q4_1) {
      r.bytes[at + 2] = static_cast<std::uint8_t>(m & 0xFF), r.bytes[at + 3] = static_cast<std::uint8_t>(m >> 8);
      from = 4;
    }
    for (int k = from; k < block; ++k) r.bytes[at + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(byte(rng));
  }
  return r;
}

// gguf-py's dequantization of the raw blocks, [rows, cols] float32.
Tensor dequantized(const Raw& r) {
  const auto* info = rankemb::io::ggml_type_info(r.type == rk::BlockType::Q4_1 ? 3 : 8);
  Tensor w = torch::empty({r.rows, r.cols});
  rankemb::io::dequantize(*info, {reinterpret_cast<const std::byte*>(r.bytes.data()), r.bytes.size()},
                          {w.data_ptr<float>(), static_cast<std::size_t>(w.numel())}, "test");
  return w;
}

Tensor run(const rk::QuantMatrix& q, const Tensor& x, bool portable = false) {
  Tensor y = torch::full({x.size(0), q.rows()}, std::nanf(""));
  q.multiply(x.data_ptr<float>(), x.size(0), y.data_ptr<float>(), portable);
  return y;
}

void expect_close(const Tensor& got, const Tensor& x, const Tensor& w) {
  ASSERT_FALSE(got.isnan().any().item<bool>()) << "every output written";
  const Tensor xd = x.to(torch::kDouble), wd = w.to(torch::kDouble);
  const Tensor want = xd.matmul(wd.t()), scale = xd.abs().matmul(wd.abs().t());
  const double worst = ((got.to(torch::kDouble) - want).abs() / scale).max().item<double>();
  EXPECT_LT(worst, 1e-5);
}

TEST(QuantMatmul, MatchesDequantizedFloat64Product) {
  for (auto type : {rk::BlockType::Q4_1, rk::BlockType::Q8_0}) {
    const Raw raw = random_matrix(type, 37, 96, 1);
    const rk::QuantMatrix q(type, raw.bytes, raw.rows, raw.cols);
    const Tensor w = dequantized(raw);
    for (std::int64_t n = 1; n <= rk::QuantMatrix::kMaxRows; ++n) {
      torch::manual_seed(n);
      const Tensor x = torch::randn({n, raw.cols});
      SCOPED_TRACE(testing::Message() << "type " << static_cast<int>(type) << ", rows " << n);
      expect_close(run(q, x), x, w);
      expect_close(run(q, x, /*portable=*/true), x, w);
    }
  }
}

TEST(QuantMatmul, RowOrderAndStacking) {
  const Raw a = random_matrix(rk::BlockType::Q4_1, 8, 64, 2), b = random_matrix(rk::BlockType::Q4_1, 4, 64, 3);
  const std::vector<std::int64_t> order{3, 4, 5, 6, 7, 0, 1, 2};  // row r <- raw row order[r] (not its own inverse)
  const rk::QuantMatrix qa(rk::BlockType::Q4_1, a.bytes, a.rows, a.cols, order), qb(rk::BlockType::Q4_1, b.bytes, b.rows, b.cols);
  const rk::QuantMatrix both = rk::QuantMatrix::stack({&qa, &qb});
  ASSERT_EQ(both.rows(), 12);
  const Tensor w = torch::cat({dequantized(a).index_select(0, torch::tensor(order, torch::kLong)), dequantized(b)}, 0);
  torch::manual_seed(4);
  const Tensor x = torch::randn({3, 64});
  expect_close(run(both, x), x, w);
}

TEST(QuantMatmul, SameBitsAtAnyThreadCount) {
  // 4,096 rows: more than one parallel task even under OMP_WAIT_POLICY=PASSIVE (min_parallel_work).
  const Raw raw = random_matrix(rk::BlockType::Q4_1, 4096, 576, 5);
  const rk::QuantMatrix q(rk::BlockType::Q4_1, raw.bytes, raw.rows, raw.cols);
  torch::manual_seed(6);
  const Tensor x = torch::randn({2, 576});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const Tensor one = run(q, x);
  at::set_num_threads(2);
  const Tensor two = run(q, x);
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one, two));
}

// The kernels' loops really run on the threads asked for: at::parallel_for compiled without
// -fopenmp ran every range on the calling thread (the 1-slot decode took as long at 2 threads as
// at 1), and the test above could not see it.
TEST(QuantMatmul, ParallelLoopsUseTheThreadsAskedFor) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  const int team = rk::parallel_team_size();
  at::set_num_threads(before);
  EXPECT_EQ(team, 2);
}

TEST(QuantMatmul, RefusesSizesThatDoNotFit) {
  using rankemb::ErrorCode;
  const Raw raw = random_matrix(rk::BlockType::Q8_0, 2, 64, 7);
  rankemb::test::expect_error([&] { rk::QuantMatrix(rk::BlockType::Q8_0, raw.bytes, 2, 48); }, ErrorCode::ModelFormat,
                              "multiple of 32");
  rankemb::test::expect_error([&] { rk::QuantMatrix(rk::BlockType::Q8_0, raw.bytes, 3, 64); }, ErrorCode::ModelFormat,
                              "bytes, expected");
  rankemb::test::expect_error([&] { rk::QuantMatrix(rk::BlockType::Q4_1, raw.bytes, 2, 64); }, ErrorCode::ModelFormat,
                              "bytes, expected");
}

}  // namespace
