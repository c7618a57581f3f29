#include "rankemb/dist/env.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include "rankemb/util/error.h"

namespace rankemb::dist {

namespace {

// The integer value of variable `name` in [lo, hi]; nullopt when unset or empty.
std::optional<long> int_var(const GetEnv& getenv, const char* name, long lo, long hi) {
  const char* raw = getenv(name);
  if (!raw || !*raw) return std::nullopt;
  std::string_view text(raw);
  long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  RANKEMB_CHECK(ec == std::errc() && end == text.data() + text.size(), ErrorCode::Usage,
                "environment variable {}=\"{}\" is not an integer", name, text);
  RANKEMB_CHECK(value >= lo && value <= hi, ErrorCode::Usage, "environment variable {}={} is outside [{}, {}]", name,
                value, lo, hi);
  return value;
}

}  // namespace

std::optional<LaunchEnv> launch_env_from(const GetEnv& getenv) {
  // 65536 ranks is far beyond any job this trainer runs; the bound keeps the arithmetic in int.
  const auto world = int_var(getenv, "WORLD_SIZE", 1, 65536);
  const auto rank = int_var(getenv, "RANK", 0, 65535);
  if (!world && !rank) return std::nullopt;
  RANKEMB_CHECK(world && rank, ErrorCode::Usage, "environment variable {} is set but {} is not; a launcher sets both",
                world ? "WORLD_SIZE" : "RANK", world ? "RANK" : "WORLD_SIZE");
  RANKEMB_CHECK(*rank < *world, ErrorCode::Usage, "RANK={} must be below WORLD_SIZE={}", *rank, *world);
  LaunchEnv env;
  env.rank = static_cast<int>(*rank);
  env.world_size = static_cast<int>(*world);
  env.local_rank = static_cast<int>(int_var(getenv, "LOCAL_RANK", 0, 65535).value_or(*rank));
  env.restart_count = static_cast<int>(int_var(getenv, "TORCHELASTIC_RESTART_COUNT", 0, 1 << 30).value_or(0));
  if (const auto port = int_var(getenv, "MASTER_PORT", 1, 65535)) env.master_port = static_cast<std::uint16_t>(*port);
  const char* addr = getenv("MASTER_ADDR");
  if (addr && *addr) {
    env.master_addr = addr;
  } else {
    RANKEMB_CHECK(env.world_size == 1, ErrorCode::Usage,
                  "MASTER_ADDR is not set: with WORLD_SIZE={} the ranks need the address of rank 0's store",
                  env.world_size);
  }
  const char* agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
  env.agent_store = agent && std::string_view(agent) == "True";
  return env;
}

std::optional<LaunchEnv> launch_env() {
  return launch_env_from([](const char* name) { return static_cast<const char*>(std::getenv(name)); });
}

Device rank_device(Device requested) {
  if (const auto env = launch_env(); env && requested.is_cuda()) requested.index += env->local_rank;
  return requested;
}

std::string rank_output_path(const std::string& path, int rank) {
  const std::string r = std::to_string(rank);
  if (const auto at = path.find("{rank}"); at != std::string::npos) return path.substr(0, at) + r + path.substr(at + 6);
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  const bool has_ext = dot != std::string::npos && dot > (slash == std::string::npos ? 0 : slash + 1);
  return has_ext ? path.substr(0, dot) + "." + r + path.substr(dot) : path + "." + r;
}

}  // namespace rankemb::dist
