// rankemb::Device: where a model's tensors live, the CPU or one CUDA device. Every command's
// --device and every library option spell it through parse_device/device_name; models/ maps it
// to libtorch's device and checks the build and the machine have it (models/device.h).
// Needs no libtorch.
#pragma once

#include <string>
#include <string_view>

namespace rankemb {

struct Device {
  enum class Kind { Cpu, Cuda };
  Kind kind = Kind::Cpu;
  int index = 0;  // CUDA device ordinal; 0 for the CPU
  bool is_cuda() const { return kind == Kind::Cuda; }
  bool operator==(const Device&) const = default;
};

// "cpu", "cuda" (= cuda:0) or "cuda:N" (N in 0..1023); Error(Usage) naming `what` otherwise.
Device parse_device(std::string_view text, std::string_view what = "device");
// "cpu" or "cuda:N".
std::string device_name(Device device);

}  // namespace rankemb
