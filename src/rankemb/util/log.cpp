#include "rankemb/util/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "rankemb/util/error.h"

namespace rankemb::log {

namespace {
Level initial_level() {
  const char* env = std::getenv("RANKEMB_LOG");
  if (env && *env) {
    try {
      return parse_level(env);
    } catch (const Error&) {
    }
  }
  return Level::Info;
}
std::atomic<Level> g_level{initial_level()};
std::mutex g_mutex;
std::string g_origin;  // guarded by g_mutex
}  // namespace

void set_origin(std::string origin) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_origin = std::move(origin);
}

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }

Level parse_level(std::string_view name) {
  if (name == "error") return Level::Error;
  if (name == "warn") return Level::Warn;
  if (name == "info") return Level::Info;
  if (name == "debug") return Level::Debug;
  fail(ErrorCode::Usage, "unknown log level {:?} (error, warn, info, debug)", name);
}

void write(Level l, std::string_view message) {
  static constexpr const char* kPrefix[] = {"error: ", "warning: ", "", "debug: "};
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s%s%.*s\n", g_origin.c_str(), kPrefix[static_cast<int>(l)], static_cast<int>(message.size()),
               message.data());
}

}  // namespace rankemb::log
