// The run-settings sidecar of a chain file: "<output>.meta.json", written atomically when a run
// starts, records what produced the file (backend, guidance, steps, seed file, shard, limit,
// backend settings). A resumed run must have the same settings, and shards to be merged must
// agree on all of them but the shard. settings_difference() is also how a training checkpoint
// compares its options (train/trainer.cpp): one comparison, one wording.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace rankemb::chains {

// A run's share of the seeds: those with id % count == index ("i/N" in the sidecar and on the
// command line).
struct Shard {
  std::size_t index = 0;  // i in i/N
  std::size_t count = 1;  // N
  bool operator==(const Shard&) const = default;
};
// "i/N" with 0 <= i < N; an empty string is 0/1. Throws Error(Usage) otherwise.
Shard parse_shard(std::string_view text);
std::string format_shard(const Shard& shard);  // "i/N"

// "<output>.meta.json".
std::filesystem::path meta_path(const std::filesystem::path& output);

// nullopt when `before` and `now` are equal; else the first difference in words:
// "\"steps\" was 32, this run has 8", "\"x\" is missing from the earlier settings",
// "the earlier settings have \"y\", this run has nothing". Both are JSON objects of settings.
std::optional<std::string> settings_difference(const nlohmann::json& before, const nlohmann::json& now);

}  // namespace rankemb::chains
