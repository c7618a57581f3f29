#include "common/test_paths.h"

#include <cstdlib>
#include <stdexcept>

#include <gtest/gtest.h>

namespace rankemb::test {

namespace fs = std::filesystem;

static fs::path env_or(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  return fs::path(v && *v ? v : fallback);
}

fs::path source_dir() { return fs::path(RANKEMB_SOURCE_DIR); }
fs::path fixtures_dir() { return source_dir() / "tests" / "fixtures"; }
fs::path data_dir() { return env_or("RANKEMB_DATA_DIR", RANKEMB_DEFAULT_DATA_DIR); }
fs::path cache_dir() { return env_or("RANKEMB_CACHE_DIR", RANKEMB_DEFAULT_CACHE_DIR); }

static fs::path require(const fs::path& p, const char* how) {
  if (!fs::exists(p)) {
    ADD_FAILURE() << p << " is missing; " << how;
    throw std::runtime_error("missing test asset " + p.string());
  }
  return p;
}

fs::path asset(const std::string& relative) {
  return require(cache_dir() / "assets" / relative, "run scripts/fetch-assets.sh");
}

fs::path shared_model(const std::string& relative) {
  return require(data_dir().parent_path() / "models" / relative, "the shared models folder is expected next to the data dir");
}

}  // namespace rankemb::test
