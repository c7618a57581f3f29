#include "rankemb/models/device.h"

#include <torch/cuda.h>

#include "rankemb/util/error.h"

namespace rankemb::models {

torch::Device torch_device(rankemb::Device device) {
  if (!device.is_cuda()) return torch::kCPU;
  RANKEMB_CHECK(torch::cuda::is_available(), ErrorCode::Usage,
                "device {}: this libtorch has no CUDA (a CPU build, such as Debian's) or sees no GPU",
                device_name(device));
  const auto count = static_cast<int>(torch::cuda::device_count());
  RANKEMB_CHECK(device.index < count, ErrorCode::Usage, "device {}: this machine has {} CUDA device(s)",
                device_name(device), count);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device.index));
}

}  // namespace rankemb::models
