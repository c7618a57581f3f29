#include "rankemb/util/device.h"

#include <charconv>

#include "rankemb/util/error.h"

namespace rankemb {

Device parse_device(std::string_view text, std::string_view what) {
  if (text == "cpu") return {};
  if (text == "cuda") return {Device::Kind::Cuda, 0};
  if (text.substr(0, 5) == "cuda:") {
    const std::string_view digits = text.substr(5);
    int index = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size() && index >= 0 && index < 1024)
      return {Device::Kind::Cuda, index};
  }
  fail(ErrorCode::Usage, "{} \"{}\" is not a device (cpu, cuda or cuda:N)", what, text);
}

std::string device_name(Device device) {
  return device.is_cuda() ? "cuda:" + std::to_string(device.index) : std::string("cpu");
}

}  // namespace rankemb
