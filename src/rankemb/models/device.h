// rankemb::models device mapping: a rankemb::Device (util/device.h) as libtorch's device, checked
// against what this libtorch build and this machine have. The one place models, train, eval and
// the decoders turn --device into a torch::Device.
#pragma once

#include <torch/types.h>

#include "rankemb/util/device.h"

namespace rankemb::models {

// Error(Usage) naming the device for CUDA on a libtorch built without it (Debian's is CPU-only),
// no visible GPU, or an index past the GPUs present.
torch::Device torch_device(rankemb::Device device);

}  // namespace rankemb::models
