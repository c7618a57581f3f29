#include "rankemb/models/kernels/switch.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

namespace rankemb::models::kernels {
namespace {

std::atomic<bool>& state() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("RANKEMB_KERNELS");
    return v == nullptr || std::string_view(v) != "off";
  }()};
  return on;
}

}  // namespace

bool enabled() { return state().load(std::memory_order_relaxed); }

void set_enabled(bool on) { state().store(on, std::memory_order_relaxed); }

}  // namespace rankemb::models::kernels
