#include "rankemb/models/kernels/switch.h"

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include <ATen/Parallel.h>

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

std::int64_t min_parallel_work() {
  // As libgomp reads them: the policy case-insensitive, white space ignored, and
  // GOMP_SPINCOUNT=0 the same as passive.
  static const bool passive = [] {
    auto value = [](const char* name) {
      const char* raw = std::getenv(name);
      std::string v;
      for (const char* c = raw == nullptr ? "" : raw; *c != '\0'; ++c)
        if (!std::isspace(static_cast<unsigned char>(*c))) v += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
      return v;
    };
    return value("OMP_WAIT_POLICY") == "passive" || value("GOMP_SPINCOUNT") == "0";
  }();
  return passive ? std::int64_t{1} << 21 : std::int64_t{1} << 14;
}

int parallel_team_size() {
  std::mutex mu;
  std::set<std::thread::id> seen;
  at::parallel_for(0, 1 << 16, 1, [&](std::int64_t, std::int64_t) {
    const std::lock_guard<std::mutex> lock(mu);
    seen.insert(std::this_thread::get_id());
  });
  return static_cast<int>(seen.size());
}

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

}  // namespace rankemb::models::kernels
