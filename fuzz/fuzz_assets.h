// Where fuzz targets find model assets: $RANKEMB_CACHE_DIR/assets, else the repo's .cache/assets
// (filled by scripts/fetch-assets.sh).
#pragma once

#include <cstdlib>
#include <filesystem>

inline std::filesystem::path fuzz_assets_dir() {
  const char* env = std::getenv("RANKEMB_CACHE_DIR");
  return std::filesystem::path(env && *env ? env : RANKEMB_SOURCE_DIR "/.cache") / "assets";
}
