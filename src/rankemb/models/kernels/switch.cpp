#include "rankemb/models/kernels/switch.h"

#include <cstdlib>
#include <string_view>

namespace rankemb::models::kernels {

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("RANKEMB_KERNELS");
    return v == nullptr || std::string_view(v) != "off";
  }();
  return on;
}

}  // namespace rankemb::models::kernels
