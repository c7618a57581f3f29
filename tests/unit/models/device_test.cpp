// --device for encoders (src/rankemb/models/device.h, LoadOptions::device). On a machine without
// CUDA (Debian's libtorch, CI) CUDA is refused naming the device; where a GPU is visible, the
// tiny BERT and all-MiniLM-L6-v2 encode on cuda:0 within cosine 0.9999 of the CPU, and an index
// past the GPUs present is refused.
#include "rankemb/models/device.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "common/expect_error.h"
#include "common/test_paths.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/error.h"

namespace {

using rankemb::Device;
using rankemb::ErrorCode;
namespace rm = rankemb::models;

const std::vector<std::string> kTexts = {"A man is playing a guitar.", "A dog runs in the park.",
                                         "the kids are playing outdoors", "Rain fell all day on the little town."};

TEST(Device, CpuIsAlwaysThere) { EXPECT_EQ(rm::torch_device(Device{}), torch::Device(torch::kCPU)); }

TEST(Device, CudaOnlyWhereTheBuildAndMachineHaveIt) {
  const Device cuda0{Device::Kind::Cuda, 0};
  if (!torch::cuda::is_available()) {
    rankemb::test::expect_error([&] { rm::torch_device(cuda0); }, ErrorCode::Usage, "device cuda:0");
    rankemb::test::expect_error([&] { rm::load_encoder(rankemb::test::fixtures_dir() / "models" / "tiny-bert-a", {.device = cuda0}); },
                                ErrorCode::Usage, "cuda:0");
    return;
  }
  EXPECT_EQ(rm::torch_device(cuda0), torch::Device(torch::kCUDA, 0));
  const Device past{Device::Kind::Cuda, static_cast<int>(torch::cuda::device_count())};
  rankemb::test::expect_error([&] { rm::torch_device(past); }, ErrorCode::Usage, "CUDA device(s)");
}

// Encoder embeddings on the GPU against the CPU (the cosine >= 0.9999); runs where CUDA is.
TEST(Device, CudaEmbeddingsMatchCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA in this libtorch or no GPU visible (checked above)";
  rankemb::NullProgress quiet;
  for (const auto& dir : {rankemb::test::fixtures_dir() / "models" / "tiny-bert-a", rankemb::test::asset("all-MiniLM-L6-v2")}) {
    auto cpu = rm::load_encoder(dir);
    auto gpu = rm::load_encoder(dir, {.device = {Device::Kind::Cuda, 0}});
    torch::Tensor a = cpu->encode(kTexts, {}, quiet), b = gpu->encode(kTexts, {}, quiet);
    EXPECT_TRUE(b.device().is_cpu());
    const double worst = torch::cosine_similarity(a, b, 1).min().item<double>();
    EXPECT_GE(worst, 0.9999) << dir;
  }
}

}  // namespace
