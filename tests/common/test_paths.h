// Where tests find things: the repo (fixtures), the data directory (../shared/data by default,
// RANKEMB_DATA_DIR overrides) and the asset cache (.cache by default, RANKEMB_CACHE_DIR overrides).
// A missing asset fails the test with the command that provides it; tests never skip silently.
#pragma once

#include <filesystem>
#include <string>

namespace rankemb::test {

std::filesystem::path source_dir();
std::filesystem::path fixtures_dir();  // tests/fixtures
std::filesystem::path data_dir();
std::filesystem::path cache_dir();
// cache_dir()/assets/<relative>, after checking it exists (ADD_FAILURE + throw if not).
std::filesystem::path asset(const std::string& relative);
// ../shared/models/<relative> next to the data dir.
std::filesystem::path shared_model(const std::string& relative);

}  // namespace rankemb::test
