#include "rankemb/chains/settings.h"

#include <charconv>

#include <fmt/format.h>

#include "rankemb/util/error.h"

namespace rankemb::chains {

Shard parse_shard(std::string_view text) {
  if (text.empty()) return {};
  const auto slash = text.find('/');
  Shard s;
  const auto number = [&](std::string_view part, std::size_t& v) {
    const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    return !part.empty() && ec == std::errc() && p == part.data() + part.size();
  };
  if (slash == std::string_view::npos || !number(text.substr(0, slash), s.index) ||
      !number(text.substr(slash + 1), s.count) || s.count == 0 || s.index >= s.count)
    fail(ErrorCode::Usage, "shard {}: expected i/N with 0 <= i < N, e.g. 0/4", text);
  return s;
}

std::string format_shard(const Shard& shard) { return fmt::format("{}/{}", shard.index, shard.count); }

std::filesystem::path meta_path(const std::filesystem::path& output) {
  return std::filesystem::path(output.string() + ".meta.json");
}

std::optional<std::string> settings_difference(const nlohmann::json& before, const nlohmann::json& now) {
  if (before == now) return std::nullopt;
  if (!before.is_object()) return "the earlier settings are not a JSON object";
  for (const auto& [key, value] : now.items()) {
    const auto it = before.find(key);
    if (it == before.end()) return fmt::format("\"{}\" is missing from the earlier settings", key);
    if (*it != value) return fmt::format("\"{}\" was {}, this run has {}", key, it->dump(), value.dump());
  }
  for (const auto& [key, value] : before.items())
    if (!now.contains(key)) return fmt::format("the earlier settings have \"{}\" = {}, this run has nothing", key, value.dump());
  return "unknown difference";
}

}  // namespace rankemb::chains
