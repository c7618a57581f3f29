// Logging to stderr (stdout carries results only, so commands pipe cleanly). Levels are set by
// the CLI's -q / -v flags or the RANKEMB_LOG environment variable (error|warn|info|debug).
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace rankemb::log {

enum class Level { Error = 0, Warn = 1, Info = 2, Debug = 3 };

void set_level(Level level);
Level level();
// Parses "error", "warn", "info", "debug"; throws Error(Usage) otherwise.
Level parse_level(std::string_view name);
void write(Level level, std::string_view message);
// Text put before every line, e.g. "[rank 1] " in a data-parallel job (empty by default).
void set_origin(std::string origin);

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::Error) write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::Warn) write(Level::Warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::Info) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace rankemb::log
