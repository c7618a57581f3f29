#include "rankemb/chains/settings.h"

#include <fmt/format.h>

namespace rankemb::chains {

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
