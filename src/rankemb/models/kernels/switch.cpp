#include "rankemb/models/kernels/switch.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include "rankemb/util/log.h"

namespace rankemb::models::kernels {
namespace {

bool from_environment() {
  const char* raw = std::getenv("RANKEMB_KERNELS");
  if (raw == nullptr) return true;
  const std::string_view v(raw);
  if (v == "off" || v == "0" || v == "false" || v == "no") return false;
  if (!v.empty() && v != "on" && v != "1" && v != "true" && v != "yes") {
    log::warn("RANKEMB_KERNELS=\"{}\" is neither on nor off; the kernels stay on", v);
  }
  return true;
}

std::atomic<bool>& state() {
  static std::atomic<bool> on{from_environment()};
  return on;
}

}  // namespace

bool enabled() { return state().load(std::memory_order_relaxed); }

void set_enabled(bool on) { state().store(on, std::memory_order_relaxed); }

}  // namespace rankemb::models::kernels
