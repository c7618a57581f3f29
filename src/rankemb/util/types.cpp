#include "rankemb/util/types.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>
#if defined(__linux__)
#include <sched.h>
#endif

#include "rankemb/util/error.h"

namespace rankemb {

std::string_view dtype_name(Dtype dtype) { return dtype == Dtype::BFloat16 ? "bfloat16" : "float32"; }

Dtype parse_dtype(std::string_view name, std::string_view what) {
  if (name == "float32" || name == "fp32" || name == "f32") return Dtype::Float32;
  if (name == "bfloat16" || name == "bf16") return Dtype::BFloat16;
  fail(ErrorCode::Usage, "{} \"{}\" is not supported (float32 or bfloat16)", what, name);
}

bool cpu_has_fast_bfloat16() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

Dtype fastest_training_dtype() { return cpu_has_fast_bfloat16() ? Dtype::BFloat16 : Dtype::Float32; }

int usable_cpu_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::string fnv1a64_hex(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t request_seed(std::uint64_t seed, std::uint64_t chain_id, std::int64_t step) {
  return splitmix64(splitmix64(splitmix64(seed) ^ chain_id) ^ static_cast<std::uint64_t>(step));
}

}  // namespace rankemb
